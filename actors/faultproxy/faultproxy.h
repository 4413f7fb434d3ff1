/*  faultproxy.h: the misbehaviour of alys-faultproxy as pure functions (no
 *  sockets, no clock), so tests can check that each fault kind changes what
 *  it should and nothing else.
 *
 *  alys-faultproxy sits between a syncing node and an honest serving node
 *  and forwards WireMsg frames both ways (main.c). Requests (downstream ->
 *  upstream) go through fp_request, responses (upstream -> downstream)
 *  through fp_response, which says whether to forward, delay, drop, or send
 *  other bytes instead. Kinds (--fault KIND, --fault-arg N):
 *
 *    delay N            every response held N ms (default 50) before it goes
 *    drop N             1 in N Headers/Blocks responses dropped, from the
 *                       first (the 1st, N+1th, ...; default 3)
 *    stall K            per client, Blocks responses flow until K blocks were
 *                       served (default 64), then GetBlocks are never
 *                       answered again: the peer stalls mid-sync while its
 *                       Status keeps saying it is alive and high
 *    corrupt[:<kind>]   one block of every Blocks response (the middle one)
 *                       made invalid in exactly that way (bare "corrupt":
 *                       bad_tx_signature), using common/forge's
 *                       alys_forge_corrupt_block / _corrupt_encoding and
 *                       the authority (--keys) or all (--seed) keys to re-sign
 *                       what the kind changes; kinds: forge/fault.h's fault
 *                       names (bad_proposer_signature, bad_tx_signature,
 *                       tx_root_mismatch, state_root_mismatch, bad_nonce, ...)
 *    truncate           Headers/Blocks responses of 2+ items cut to half,
 *                       truncated = false (a short answer without reason)
 *    lie_height         Status head_height = 2^40, beyond any wall-clock slot
 *    lie_height_near N  Status head_height + N (default 1000): plausible, but
 *                       the proxy's upstream cannot serve it
 *    disconnect N       every N-th request (default 20) is swallowed and the
 *                       proxy goes down (closes its sockets) for a while,
 *                       then comes back
 *    wrong_genesis      Status genesis_hash bits flipped
 *    none               nothing changed (a plain proxy; with --upload-kbps,
 *                       a merely slow peer)
 *
 *  Upload cap (--upload-kbps N, cfg.upload_kbps; 0 = none), with any kind:
 *  the proxy sends each downstream client (per routing id) at most N KiB/s,
 *  like a peer whose upload is the limit. fp_shape gives the time a frame of
 *  `len` bytes has finished leaving that client's link:
 *      due = max(now, busy_until) + len * 1000 / (N * 1024) ms; busy_until = due
 *  A virtual finish time (a token bucket whose burst is one frame), not a
 *  bucket that banks idle time: an idle peer does not then send a burst at
 *  loopback speed, so over any busy stretch the rate is exactly N, which is
 *  what a benchmark of bandwidth-bound peers needs. busy_until is kept in
 *  microseconds so that many small frames do not round the rate away. Each
 *  frame's due time is >= the previous one's for that client, so frames
 *  held until their due time keep their order. --fault delay D composes as
 *  latency after the link: the frame goes at fp_shape(...) + D (fp_due),
 *  and D does not occupy the link. The per-client table is bounded
 *  (FP_CLIENTS, least recently seen recycled: a recycled client starts
 *  with a free link).
 *  The proxy is a peer of its own, with its own key (cfg.node_id, hex): it
 *  terminates CURVE on both sides (main.c), so in every mode Status
 *  responses name the proxy's key and give the proxy's alys:// listen
 *  endpoint, and Status requests go up naming the proxy's key (the link
 *  upstream is the proxy's) without the client's listen endpoint (see
 *  fp_request). A proxied node and the same node reached directly are two
 *  peers, as they behave differently. Without a key (cfg.node_id "")
 *  responses name the node "<node_id>/<tag>" and requests keep theirs.
 *
 *  Ownership: fp_new copies the config but borrows genesis and keys, which
 *  must outlive it; fp_destroy(&self) frees. Replacement bytes in fp_out_t
 *  are malloc'ed and the caller's to free.
 */
#ifndef ALYS_FAULTPROXY_H
#define ALYS_FAULTPROXY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "chain/chain.h"
#include "config.h"
#include "forge/keys.h"
#include "wire/wire.h"

typedef enum {
    FP_NONE = 0, /* "--fault none": forward unchanged */
    FP_DELAY,
    FP_DROP,
    FP_STALL,
    FP_CORRUPT,
    FP_TRUNCATE,
    FP_LIE_HEIGHT,
    FP_LIE_HEIGHT_NEAR,
    FP_DISCONNECT,
    FP_WRONG_GENESIS,
} fp_kind_t;

#define FP_LIE_HEIGHT_VALUE (1ULL << 40)
#define FP_TAG_MAX          24
#define FP_UPLOAD_KBPS_MAX  1000000u /* --upload-kbps: 1..this KiB/s */

typedef struct {
    fp_kind_t kind;
    uint64_t arg;                   /* 0 = the kind's default */
    alys_block_error_t corrupt;     /* FP_CORRUPT: which invalid kind */
    const alys_genesis_t *genesis;  /* FP_CORRUPT: wrong_proposer, *_slot need it */
    const alys_forge_keys_t *keys;  /* FP_CORRUPT: for re-signing; may be NULL */
    char tag[FP_TAG_MAX];           /* appended to node ids */
    char listen[ALYS_ENDPOINT_MAX]; /* replaces Status.listen; "" = keep */
    char node_id[ALYS_WIRE_ID_MAX]; /* the proxy's key (hex): Status node ids; "" = tag */
    uint32_t upload_kbps;           /* KiB/s per client, 0 = uncapped (fp_shape) */
} fp_config_t;

/* Parse "--fault KIND" (and the corrupt kind after "corrupt:") into cfg->kind,
 * cfg->corrupt, with the arg's default filled in when arg is 0. Returns 0, or
 * -1 with err naming the valid kinds. */
int fp_parse(const char *spec, uint64_t arg, fp_config_t *cfg, char *err, size_t errlen);
const char *fp_kind_name(fp_kind_t k);
/* Whether cfg has what its kind needs (genesis, keys) and upload_kbps is
 * within 0..FP_UPLOAD_KBPS_MAX; -1 with err if not. */
int fp_check(const fp_config_t *cfg, char *err, size_t errlen);

typedef struct fp fp_t;

fp_t *fp_new(const fp_config_t *cfg);
void fp_destroy(fp_t **self_p);

typedef struct {
    bool drop;         /* swallow it */
    uint32_t delay_ms; /* hold it this long first */
    uint8_t *bytes;    /* send these instead (malloc'ed; NULL = unchanged) */
    size_t len;
    char note[128]; /* what was done, "" = nothing */
} fp_out_t;

/* A response from upstream for the downstream client `client` (its routing
 * id). Always fills out; undecodable frames are forwarded unchanged. */
void fp_response(fp_t *self, const void *client, size_t client_len, const uint8_t *in, size_t len,
                 fp_out_t *out);
/* A request from downstream. true = swallow it and go down now
 * (disconnect mode). Otherwise out says what to send up: a Status goes with
 * its listen endpoint blanked, so the upstream node does not learn the
 * client's address and dial it back (the client would then reach it
 * directly, around the proxy). */
bool fp_request(fp_t *self, const uint8_t *in, size_t len, fp_out_t *out);

/* The upload cap: a frame of len bytes (what is actually sent: fp_out_t's
 * replacement when there is one) for `client`, handed over at now_ms, has
 * left the client's link at the returned time (ms, same clock as now_ms,
 * rounded up); the link is busy until then. Without a cap, now_ms. Call it
 * once per frame sent, in sending order; not for dropped frames (they use
 * no bandwidth). */
int64_t fp_shape(fp_t *self, const void *client, size_t client_len, size_t len, int64_t now_ms);
/* When a capped proxy sends a frame on: fp_shape, then the latency
 * delay_ms (fp_out_t's, --fault delay) after it has left the link. */
int64_t fp_due(fp_t *self, const void *client, size_t client_len, size_t len, uint32_t delay_ms,
               int64_t now_ms);

/* Counters, for logs and tests. */
uint64_t fp_responses(const fp_t *self);
uint64_t fp_altered(const fp_t *self);

#endif
