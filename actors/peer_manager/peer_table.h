/*  peer_table.h: the PeerManagerActor's pure logic (no sockets, no clock, no I/O).
 *
 *  One peer_table_t holds, per remote peer, the seed's PeerInfo and PeerMetrics
 *  plus a PeerScore, and answers the questions main.c asks: whom to fetch from
 *  (select), how much to ask for (batch size), how long to wait (per-peer
 *  timeout), whom to drop or ban (actions returned by record/blame), and which
 *  bans to persist (export/import). The serving side's rate limiter is in
 *  rate_limit.h.
 *
 *  Time: every call that needs the time takes now_ms, unix epoch milliseconds
 *  (CLOCK_REALTIME), because ban_until is persisted and must mean the same after
 *  a restart. A clock that steps backwards is tolerated: negative intervals
 *  count as zero (no decay, no refill), never as huge positive ones.
 *
 *  Score: a double in [-100, 100], 0 = neutral (fresh peer). Request outcomes
 *  move it (ok +1 up to a cap, short -3, timeout -5, invalid -40, violation:
 *  straight to -100 and banned). It decays exponentially toward 0 with a
 *  half-life (10 min), so old sins and old merits fade. At or below
 *  disconnect_score (-30) the peer is disconnected; at or below ban_score
 *  (-60) it is banned for ban_ms (1 h). Timeouts alone never take a peer to
 *  the disconnect score (they stop 1 above it): slowness is not
 *  misbehaviour, it is answered by choosing other peers.
 *
 *  peer_score_threshold t (config, 0..1, default 0.5) maps to a score cutoff
 *  for sync selection:  eligible iff score >= disconnect_score * (1 - t).
 *  It is the share of the penalty budget between neutral (0) and the
 *  disconnect threshold that a peer may have used and still be picked.
 *    t = 0.5 -> cutoff -15: three timeouts are tolerated, a fourth (or one
 *               invalid response) drops the peer until decay lifts it back;
 *    t = 1.0 -> cutoff 0: only peers with no outstanding penalty;
 *    t = 0.0 -> cutoff -30: any peer not yet disconnected.
 *  A fresh peer (score 0) is eligible for every t. When no connected peer
 *  passes the cutoff, selection falls back to the connected peers above the
 *  disconnect score (best first), so a few timeouts against every peer never
 *  leave nobody to ask. The naive mapping
 *  (score + 100) / 200 >= t was rejected: with t = 0.5 a single timeout would
 *  exclude a peer for hours (exponential decay never quite reaches 0), and with
 *  three peers one bad second would leave none.
 *
 *  Ownership: peer_table_new allocates, peer_table_destroy frees and nulls the
 *  pointer. Every output (peer_view_t, peer_ref_t, peer_ban_t, blamed ids) is
 *  copied into arrays the caller provides; no pointer into the table escapes,
 *  so removing a peer never leaves the caller with a dangling string.
 */
#ifndef PEER_TABLE_H
#define PEER_TABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"

#define PEER_TABLE_MAX_PEERS 256  /* table capacity; adds beyond are refused */
#define PEER_MAX_BANS        1024 /* ban list outlives table entries */
#define PEER_MAX_SUSPECTS    256  /* pending blame records */
#define PEER_ID_MAX          65   /* <= 64 chars + NUL */
#define PEER_ENDPOINT_MAX    256  /* == ALYS_ENDPOINT_MAX */
#define PEER_VERSION_MAX     32
#define PEER_REASON_MAX      96
#define PEER_HASH_LEN        32

#define PEER_SCORE_MIN (-100.0)
#define PEER_SCORE_MAX 100.0

/* Why a call was refused. peer_err_name gives a stable string for logs and
 * for the "why" of a refused add. */
typedef enum {
    PEER_OK = 0,
    PEER_ERR_INVALID = -1, /* empty or over-long id/endpoint, bad argument */
    PEER_ERR_FULL = -2,    /* table holds PEER_TABLE_MAX_PEERS live peers */
    PEER_ERR_BANNED = -3,  /* id or endpoint is under an active ban */
    PEER_ERR_EXISTS = -4,  /* add of a peer id already in the table */
    PEER_ERR_UNKNOWN = -5, /* no peer with that id */
} peer_err_t;

const char *peer_err_name(int err);

/* A peer id copied out of the table. */
typedef struct {
    char id[PEER_ID_MAX];
} peer_ref_t;

typedef enum {
    PEER_STATE_CONNECTING = 0,
    PEER_STATE_CONNECTED,
    PEER_STATE_DISCONNECTED,
    PEER_STATE_BANNED,
} peer_state_t;

const char *peer_state_name(peer_state_t s);

/* What main.c must do after a score change. */
typedef enum {
    PEER_ACTION_NONE = 0,
    PEER_ACTION_DISCONNECT, /* close the connection; may reconnect later */
    PEER_ACTION_BAN,        /* close, refuse until ban_until, persist bans */
} peer_action_t;

const char *peer_action_name(peer_action_t a);

/* The seed's PeerSelectionStrategy; chosen by config string. */
typedef enum {
    PEER_SELECT_LOWEST_LATENCY = 0,
    PEER_SELECT_MOST_RELIABLE,
    PEER_SELECT_ROUND_ROBIN,
    PEER_SELECT_WEIGHTED,
    PEER_SELECT_PROXIMITY,
} peer_strategy_t;

/* "lowest_latency", "most_reliable", "round_robin", "weighted", "proximity".
 * Returns 0, or -1 on an unknown name (out untouched). */
int peer_strategy_parse(const char *name, peer_strategy_t *out);
const char *peer_strategy_name(peer_strategy_t s);

/* The seed's PeerInfo (location dropped: we have no geo data). */
typedef struct {
    char peer_id[PEER_ID_MAX];
    char endpoint[PEER_ENDPOINT_MAX];
    uint64_t reported_height;
    uint8_t head_hash[PEER_HASH_LEN];
    uint64_t connected_at;  /* ms; 0 = never connected */
    uint64_t last_response; /* ms of the last data or status received;
                                           0 = never answered */
    char protocol_version[PEER_VERSION_MAX];
    peer_state_t state;
    uint64_t ban_until; /* ms; 0 = not banned */
} peer_info_t;

/* The seed's PeerMetrics, plus the counters the score is made of. All averages
 * are 0 until measured; has_latency etc. say whether they are. */
typedef struct {
    uint64_t blocks_served;
    double average_latency_ms; /* EWMA (1/8) of response time, TCP's srtt */
    double latency_dev_ms;     /* EWMA (1/4) of |sample - srtt|, TCP's rttvar */
    double min_rtt_ms;         /* lowest round trip seen: proximity's distance */
    double error_rate;         /* EWMA (0.1) of failures, 0..1: the recent view */
    double bandwidth_bps;      /* EWMA (0.2) of bytes/s of responses */
    double reliability_score;  /* (ok + 1) / (outcomes + 2): the long view */
    double avg_request_blocks; /* EWMA of blocks per answered request */
    double avg_block_bytes;    /* EWMA (0.2) of response bytes per block;
                                  0 = no block response measured yet */
    uint32_t timeout_backoff;  /* 1, doubled per timeout (Karn), reset on ok */
    bool has_latency;
    bool has_rtt;
    bool has_bandwidth;
    uint64_t requests_ok;
    uint64_t requests_timeout;
    uint64_t requests_invalid;
    uint64_t requests_short;
    uint64_t requests_violation;
} peer_metrics_t;

/* The seed's PeerScore: a value and when it was last brought up to date. */
typedef struct {
    double value; /* [-100, 100] */
    uint64_t as_of_ms;
} peer_score_t;

/* Decay s toward 0 to now_ms with the given half-life. Pure; exposed for tests
 * and for anything that shows scores. */
void peer_score_decay(peer_score_t *s, uint64_t now_ms, uint64_t half_life_ms);

/* What happened to one request. latency_ms/bytes/blocks matter for OK and
 * SHORT (both delivered data); reason is optional and ends up in a ban.
 * The values are those of proto alys.peer.Outcome 0..4; its NO_PEER and
 * BUSY are not the peer's doing and are never recorded here. */
typedef enum {
    PEER_OUTCOME_OK = 0,
    PEER_OUTCOME_TIMEOUT,
    PEER_OUTCOME_INVALID,   /* served data that is provably invalid */
    PEER_OUTCOME_SHORT,     /* fewer blocks than asked, without reason */
    PEER_OUTCOME_VIOLATION, /* larger than asked, not matching, other genesis */
} peer_outcome_kind_t;

const char *peer_outcome_name(peer_outcome_kind_t k);

typedef struct {
    peer_outcome_kind_t kind;
    uint32_t latency_ms;
    uint64_t bytes;
    uint32_t blocks;
    const char *reason; /* may be NULL; copied, truncated to PEER_REASON_MAX */
} peer_outcome_t;

/* Every tunable, with peer_table_config_defaults() giving the values the
 * header comment explains. */
typedef struct {
    /* scoring */
    double ok_reward;        /* +1 */
    double ok_cap;           /* +20: ok never lifts the score above this */
    double short_penalty;    /* -3 */
    double timeout_penalty;  /* -5 */
    double invalid_penalty;  /* -40 */
    double disconnect_score; /* -30 */
    double ban_score;        /* -60 */
    uint64_t half_life_ms;   /* 600000 (10 min) */
    uint64_t ban_ms;         /* 3600000 (1 h) */
    uint64_t suspect_ttl_ms; /* 600000: unproven suspicions are dropped */
    double score_threshold;  /* peer_score_threshold, 0..1 */
    /* selection */
    peer_strategy_t strategy;
    double latency_weight;
    double reliability_weight;
    double bandwidth_weight;
    /* batch size */
    bool adaptive_batch; /* batch_size == "adaptive" */
    uint32_t fixed_batch_size;
    uint32_t min_batch_size;
    uint32_t max_batch_size;
    /* per-peer request timeout */
    uint32_t timeout_floor_ms;   /* 500 */
    uint32_t timeout_ceiling_ms; /* request_timeout_ms, 5000: the bound unless
                                    the measured bandwidth needs longer */
    uint32_t timeout_hard_ms;    /* request_timeout_ms * ALYS_REQUEST_TIMEOUT_
                                    HARD_FACTOR, 40000: never longer */
} peer_table_config_t;

void peer_table_config_defaults(peer_table_config_t *cfg);

/* Defaults, then the [sync] keys of the node config. Returns 0, or -1 with a
 * message in err when a value is unusable (unknown strategy, min > max...). */
int peer_table_config_from_alys(peer_table_config_t *cfg, const alys_config_t *ac, char *err,
                                size_t errlen);

typedef struct _peer_table_t peer_table_t;

/* NULL cfg = defaults. Returns NULL on out-of-memory or an invalid cfg. */
peer_table_t *peer_table_new(const peer_table_config_t *cfg);
void peer_table_destroy(peer_table_t **self_p);
const peer_table_config_t *peer_table_config(const peer_table_t *self);

/* ---- membership and connection state ---------------------------------- */

/* Add a peer in state connecting. Refused with PEER_ERR_BANNED when its id or
 * endpoint is banned, PEER_ERR_FULL when every slot holds a live peer. When
 * full, the longest-disconnected peer without outstanding penalty (score >= 0)
 * is recycled; penalised and banned entries are kept so that being pushed out
 * of the table can never launder a bad score. */
int peer_table_add(peer_table_t *self, const char *peer_id, const char *endpoint, uint64_t now_ms);
int peer_table_remove(peer_table_t *self, const char *peer_id);
bool peer_table_contains(const peer_table_t *self, const char *peer_id);
size_t peer_table_size(const peer_table_t *self);

/* Handshake done or Status received: connected, with what the peer reports.
 * head_hash may be NULL, version may be NULL (kept). PEER_ERR_BANNED if banned. */
int peer_table_on_status(peer_table_t *self, const char *peer_id, uint64_t height,
                         const uint8_t *head_hash, const char *version, uint64_t now_ms);
/* (Re)dialling: connecting again. PEER_ERR_BANNED while banned. */
int peer_table_set_connecting(peer_table_t *self, const char *peer_id, uint64_t now_ms);
int peer_table_set_disconnected(peer_table_t *self, const char *peer_id, uint64_t now_ms);

/* Whether main.c may dial this peer now: not banned, and, if it was dropped
 * for its score, the score has decayed back above disconnect_score. This is
 * the reconnect backoff, and it falls out of the decay. */
bool peer_table_may_connect(peer_table_t *self, const char *peer_id, uint64_t now_ms);

/* ---- outcomes and score ------------------------------------------------ */

/* Record one request's outcome: metrics, score, and the action main.c must
 * take (action may be NULL). PEER_ERR_UNKNOWN if no such peer. */
int peer_table_record(peer_table_t *self, const char *peer_id, const peer_outcome_t *o,
                      uint64_t now_ms, peer_action_t *action);

/* Misbehaviour outside any request (pm_cost.h's table): the score falls by
 * points (> 0), no request counters move. Only a ban is earned (score at or
 * below ban_score), never a mere drop: a dropped peer is re-dialled as soon
 * as its score decays back, and a flood would start over without ever
 * reaching the ban. PEER_ERR_UNKNOWN if no such peer. */
int peer_table_penalise(peer_table_t *self, const char *peer_id, double points,
                        const char *reason, uint64_t now_ms, peer_action_t *action);

/* A round trip that carried no blocks (Status ping): min RTT only. */
int peer_table_record_rtt(peer_table_t *self, const char *peer_id, uint32_t rtt_ms, uint64_t now_ms);

/* Current (decayed) score; PEER_ERR_UNKNOWN if no such peer. */
int peer_table_score(peer_table_t *self, const char *peer_id, uint64_t now_ms, double *score);

/* Decay every score, lift expired bans (state -> disconnected), drop expired
 * bans and suspicions. Call it on a timer (e.g. every second); every other
 * call also brings what it touches up to date, so it is never required for
 * correctness, only for tidy listings. Returns the number of bans lifted. */
size_t peer_table_tick(peer_table_t *self, uint64_t now_ms);

/* ---- bans (persisted by main.c through StorageActor) --------------------- */

typedef struct {
    char peer_id[PEER_ID_MAX];
    char endpoint[PEER_ENDPOINT_MAX];
    uint64_t ban_until; /* unix ms */
    char reason[PEER_REASON_MAX];
} peer_ban_t;

/* Ban by hand (alysctl) or from outside logic. duration_ms 0 = cfg ban_ms. */
int peer_table_ban(peer_table_t *self, const char *peer_id, uint64_t duration_ms,
                   const char *reason, uint64_t now_ms);
bool peer_table_is_banned(peer_table_t *self, const char *peer_id, const char *endpoint,
                          uint64_t now_ms);
size_t peer_table_ban_count(peer_table_t *self, uint64_t now_ms);
/* Copy up to cap active bans into out; returns how many were written. */
size_t peer_table_export_bans(peer_table_t *self, uint64_t now_ms, peer_ban_t *out, size_t cap);
/* Import bans (e.g. after a restart). Expired entries and entries whose strings
 * are not NUL-terminated within their arrays are skipped. Matching table
 * entries become banned. Returns how many were imported. */
size_t peer_table_import_bans(peer_table_t *self, const peer_ban_t *bans, size_t n, uint64_t now_ms);

/* ---- blame ------------------------------------------------------------- */

/* Path 1, when the fault may not be the peer's (the failure could be ours or
 * the range may be disputed): range [start, end) served by peer_id failed
 * validation. Nothing is penalised yet; the peer is suspected. Pass the
 * failing block's own height as [h, h+1) when it is known: blocks after the
 * first bad one fail only because their parent did, and must not make their
 * server a suspect. Suspect only for verdicts about the block's own content
 * (signatures, tx root, linkage inside the range, state root): a failure
 * caused by our state or clock (missing parent, future slot) would convict
 * an honest peer once someone else serves the same blocks later. */
int peer_table_suspect(peer_table_t *self, const char *peer_id, uint64_t start, uint64_t end,
                       const char *reason, uint64_t now_ms);
/* Range [start, end) served by peer_id validated. Every *other* peer suspected
 * of a range inside it lied: each gets the invalid-data penalty and its id is
 * copied to blamed (up to cap; may be NULL). A suspicion against peer_id
 * itself is cleared without penalty (the earlier failure was not its data's
 * fault). A peer is convicted at most once per call. Returns the number of
 * peers convicted (may exceed cap; only cap are copied). Actions for them are
 * in actions[] (parallel to blamed, may be NULL). */
size_t peer_table_range_validated(peer_table_t *self, const char *peer_id, uint64_t start,
                                  uint64_t end, uint64_t now_ms, peer_ref_t *blamed,
                                  peer_action_t *actions, size_t cap);
/* Path 2, when the fault is the peer's whatever others serve (malformed
 * bytes, body not matching its verified header: PEER_OUTCOME_INVALID;
 * response not matching the request, other genesis: PEER_OUTCOME_VIOLATION):
 * penalise at once. */
int peer_table_blame_now(peer_table_t *self, const char *peer_id, peer_outcome_kind_t kind,
                         const char *reason, uint64_t now_ms, peer_action_t *action);
size_t peer_table_suspect_count(const peer_table_t *self);

/* ---- views ------------------------------------------------------------- */

typedef struct {
    peer_info_t info;
    peer_metrics_t metrics;
    double score;                     /* decayed to now */
    char ban_reason[PEER_REASON_MAX]; /* "" unless banned */
    bool eligible;                    /* for sync selection, ignoring height */
    uint32_t timeout_ms;              /* for a request of avg_request_blocks */
} peer_view_t;

int peer_table_get(peer_table_t *self, const char *peer_id, uint64_t now_ms, peer_view_t *out);
/* Copy up to cap peers (table order); returns how many were written. */
size_t peer_table_list(peer_table_t *self, uint64_t now_ms, peer_view_t *out, size_t cap);

/* ---- selection, batch size, timeout (peer_select.c) --------------------- */

typedef struct {
    size_t count;               /* how many peers wanted */
    uint64_t min_height;        /* reported_height must be >= this */
    const char *const *exclude; /* ids to skip (e.g. already busy); may be NULL */
    size_t exclude_count;
} peer_select_req_t;

/* Up to min(req->count, cap) eligible peers (connected, not banned, score at
 * or above the cutoff, high enough, not excluded), best first by the
 * configured strategy. Peers not yet measured get the average of the measured
 * ones (reliability: its 0.5 prior) so they are ranked mid-field and get
 * tried. Ties go to the higher score, then to table order. round_robin
 * advances its cursor, hence the non-const self. Returns how many written. */
size_t peer_table_select(peer_table_t *self, const peer_select_req_t *req, uint64_t now_ms,
                         peer_ref_t *out, size_t cap);

/* Same, with the strategy given (so tests and tools can compare). */
size_t peer_table_select_with(peer_table_t *self, peer_strategy_t strategy,
                              const peer_select_req_t *req, uint64_t now_ms, peer_ref_t *out,
                              size_t cap);

/* Eligible peers ignoring height (alys_sync_peer_count). */
size_t peer_table_eligible_count(peer_table_t *self, uint64_t now_ms);

/* Blocks per request. Fixed mode: fixed_batch_size. Adaptive: the seed's
 * formula over the eligible peers' averages, clamped to [min, max]. */
uint32_t peer_table_batch_size(peer_table_t *self, uint64_t now_ms);

/* The seed's formula on its own: 128 * clamp(MB/s / 10, 1, 8)
 * * clamp(100 ms / latency, 0.5, 4) * clamp(peers / 5, 0.5, 2), clamped to
 * [min_batch, max_batch]. No latency measured (avg_latency_ms <= 0) = no data:
 * the base 128 (clamped). No bandwidth measured: bandwidth factor 1. */
uint32_t peer_batch_size_formula(double avg_bandwidth_bps, double avg_latency_ms, size_t peers,
                                 uint32_t min_batch, uint32_t max_batch);

/* How long to wait for peer_id to answer a request of `blocks` blocks.
 *
 *   rto  = clamp((srtt + 4 * rttvar) * max(1, blocks / avg_request_blocks)
 *                * backoff, timeout_floor_ms, timeout_ceiling_ms)
 *   xfer = 2 * blocks * avg_block_bytes / bandwidth_bps
 *   timeout = xfer > timeout_ceiling_ms ? min(min_rtt + xfer, timeout_hard_ms)
 *                                       : rto
 *
 * rto is TCP's retransmission timeout (RFC 6298, Karn's backoff) and, as
 * long as the transfer fits, request_timeout_ms (the ceiling) bounds it.
 * xfer is twice the time the response's bytes take at the peer's measured
 * bandwidth (issue 11; the margin covers a request queued ahead on the same
 * connection and a bandwidth halving before the EWMA follows it): a peer
 * whose upload is the limit answers a big range honestly but slowly, and is
 * given that time plus one bare round trip, beyond the ceiling, up to the
 * hard bound so that a peer measured at a trickle cannot hold a range for
 * ever (its low bandwidth and high latency also rank it low in selection).
 * Latency alone, and timeouts alone (the backoff), never take a request
 * past the ceiling.
 * A peer that has answered no block range yet is predicted with the mean
 * bandwidth and bytes per block of the peers that have, so that the first
 * range asked of each peer of a bandwidth-bound network is not held to the
 * ceiling. With no peer's bandwidth measured, a range of more than
 * ALYS_REQUEST_TIMEOUT_REF_BLOCKS blocks gets the ceiling per that many
 * blocks, up to the hard bound (alys_request_timeout_unmeasured_ms); an
 * unknown peer, or a smaller range with nothing measured, the ceiling. */
uint32_t peer_table_request_timeout(peer_table_t *self, const char *peer_id, uint32_t blocks);
/* The same for a header request of `headers` headers: its transfer term
 * counts PEER_HEADER_WIRE_BYTES a header, not the peer's bytes per block
 * (a header range is a fraction of the bytes of the same block range, and
 * a peer stalling headers must not be given a block range's time). */
#define PEER_HEADER_WIRE_BYTES 192 /* an encoded Header: 3 hashes, a signature, 4 varints */
uint32_t peer_table_headers_timeout(peer_table_t *self, const char *peer_id, uint32_t headers);

#endif
