/*  hostile.h: hostile peers for the integration tests, written as an
 *  attacker would write them: they speak proto/wire.proto through the
 *  generated code and common/wire/wire.h when they want to be understood,
 *  and send whatever bytes they like when they do not.
 *
 *  hc_client_t: a raw ZeroMQ DEALER connected to a node's [network] listen
 *  endpoint (the node's serving ROUTER), with a routing id of our choosing
 *  and, to an alys://KEY@... endpoint, a CURVE link under a fresh key pair
 *  of its own (common/peerlink.h): the node knows the client by that key
 *  (hc_key; tests/integration/test_hostile.c reads its ban). To a tcp://
 *  endpoint (a node with [network] plaintext) it is known by its routing
 *  id, "in:<routing id>". It sends WireMsgs (hc_send, any
 *  size: packed by protobuf-c, not bounded by alys_wire_encode), raw bytes
 *  (hc_send_raw) and multi-part messages (hc_send_parts), and reads answers
 *  decoded with the wire bounds.
 *
 *  hs_server_t: a ROUTER the node dials as a bootstrap peer, run by a
 *  thread (a CZMQ zactor) so it keeps answering while the test does other
 *  things. It is a CURVE server with a key pair of its own (its endpoint,
 *  hs_endpoint, is alys://KEY@127.0.0.1:PORT; hs_key its key). It answers
 *  the node's Status probes with a valid Status (the node's genesis, a head
 *  height of the test's choosing, its key as node id unless told to lie),
 *  so the node takes it for a ready peer, and then misbehaves in its mode:
 *  each time the node
 *  sends it anything, and every HS_TICK_MS while it has a link, it sends a
 *  burst of the mode's frames. hs_sent counts them.
 *
 *  Chains: hc_chain_get makes (once, cached under /tmp/alys-hostile-chains;
 *  chaingen is deterministic) a chain of n blocks and loads the blocks as
 *  chaingen exported them, for byte-exact comparison.
 *
 *  Ownership: *_new / *_destroy(&p) (nulls the pointer); messages from
 *  hc_recv are freed with alys_wire_free; hc_chain_free frees the blocks.
 *  Functions return -1 / NULL on failure and never assert: the tests do.
 */
#ifndef ALYS_IT_HOSTILE_H
#define ALYS_IT_HOSTILE_H

#include <czmq.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "chain/chain.h"
#include "wire/wire.h"

/* ---- a chain to serve and compare with ------------------------------------ */

typedef struct {
    char dir[256];
    char genesis_file[300];
    char export_path[300];
    uint8_t genesis_hash[ALYS_HASH_LEN];
    uint8_t head_hash[ALYS_HASH_LEN];
    uint64_t n;                 /* head height */
    ProtobufCBinaryData *block; /* height h at index h - 1 */
} hc_chain_t;

/* chaingen: the alys-chaingen binary. 0, or -1 with err. */
int hc_chain_get(hc_chain_t *c, const char *chaingen, int blocks, int txs, char *err, size_t errlen);
void hc_chain_free(hc_chain_t *c);

/* ---- the hostile client ----------------------------------------------------- */

typedef struct {
    zsock_t *sock;
    char id[128];
    uint64_t next_id;
    struct alys_nodekey *key; /* ours; on a plaintext link unused */
    bool curve;               /* linked with CURVE: the node knows us by hc_key */
} hc_client_t;

/* A DEALER to endpoint (alys://: CURVE; tcp://: plaintext) with routing id
 * `id` (1..127 bytes). */
hc_client_t *hc_client_new(const char *endpoint, const char *id);
/* Who the node takes this client for: its key (hex) on a CURVE link, else
 * "in:<routing id>". */
const char *hc_who(hc_client_t *self);
void hc_client_destroy(hc_client_t **self_p);

/* One frame of len bytes (may be 0). 0 or -1. */
int hc_send_raw(hc_client_t *self, const void *data, size_t len);
/* One message of n frames. 0 or -1. */
int hc_send_parts(hc_client_t *self, const void *const *parts, const size_t *lens, size_t n);
/* m with the next request id (set in m), packed by protobuf-c whatever its
 * size, plus pad bytes of an unknown field (field 100: decoders skip it,
 * but it is in the frame). The request id, or 0 on failure. */
uint64_t hc_send(hc_client_t *self, alys_wire_msg_t *m, size_t pad);
/* node_id NULL: the client's own key (the only id a CURVE link allows). */
uint64_t hc_send_status(hc_client_t *self, const uint8_t *genesis, uint64_t head_height,
                        const char *node_id);
uint64_t hc_send_range(hc_client_t *self, bool headers, uint64_t start, uint32_t count);
/* The next message within timeout_ms, decoded with the wire bounds; NULL
 * when none came (or it did not decode: *bad set, may be NULL). */
alys_wire_msg_t *hc_recv(hc_client_t *self, int timeout_ms, bool *bad);
/* The answer to request id within timeout_ms, others skipped. */
alys_wire_msg_t *hc_answer(hc_client_t *self, uint64_t id, int timeout_ms);
/* Handshake with the node (genesis): its Status answer, or NULL. */
alys_wire_msg_t *hc_handshake(hc_client_t *self, const uint8_t *genesis, int timeout_ms);

/* ---- frames an attacker sends ----------------------------------------------- */

/* A WireMsg packed into a new buffer (caller frees), pad bytes of unknown
 * field appended; its length in *len. NULL on OOM. */
uint8_t *hc_pack(const alys_wire_msg_t *m, size_t pad, size_t *len);
/* A Blocks answer of n opaque items of item_len bytes each, packed (the
 * items are not blocks; only a request that asked for them would look). */
uint8_t *hc_pack_blocks(uint64_t request_id, uint64_t start, size_t n, size_t item_len, size_t *len);

/* ---- the hostile server ----------------------------------------------------- */

#define HS_TICK_MS 20

typedef enum {
    HS_HONEST_STATUS = 0, /* only answers Status: a ready peer that never serves */
    HS_JUNK,              /* undecodable frames */
    HS_EMPTY,             /* empty frames */
    HS_UNSOLICITED,       /* small Headers answers with request ids never asked */
    HS_UNSOLICITED_BIG,   /* Blocks answers of ~7 MiB with ids never asked */
    HS_OVERSIZE,          /* WireErrors padded to 1 MiB (an error is ~100 bytes) */
    HS_WRONG_WAY,         /* GetBlocks requests to the node that dialled us */
    HS_MULTIPART,         /* a valid Status answer split into three frames */
    HS_DUPLICATE,         /* answers every request twice (empty, valid) */
    HS_MISMATCH,          /* answers GetHeaders/GetBlocks with one item more than asked */
} hs_mode_t;

typedef struct hs_server hs_server_t;

/* Bind a CURVE ROUTER at endpoint ("tcp://127.0.0.1:PORT", or ":*" for a
 * port of the kernel's choosing) and start the thread. genesis: the node's
 * (so the handshake passes); height: what its Status claims; node_id: the
 * id its Status claims, NULL = its key (honest; any other id contradicts
 * the key the node dialled). */
hs_server_t *hs_new(const char *endpoint, hs_mode_t mode, const uint8_t *genesis, uint64_t height,
                    const char *node_id);
void hs_destroy(hs_server_t **self_p);
/* Its alys://KEY@127.0.0.1:PORT (a "*" port resolved): what the node dials. */
const char *hs_endpoint(hs_server_t *self);
/* Its key (hex): its id in the node's peer table. */
const char *hs_key(hs_server_t *self);
/* Attack frames sent so far; Status probes answered so far. */
uint64_t hs_sent(hs_server_t *self);
uint64_t hs_probes(hs_server_t *self);

#endif
