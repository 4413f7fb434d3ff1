/*  wire/wire.h: the node-to-node wire protocol (proto/wire.proto) as pure
 *  functions: bounded decode and encode of one WireMsg frame, and the checks
 *  a response must pass before anything is done with it. No sockets, no
 *  clock, no actor: shared by the PeerManagerActor (both sides) and
 *  alys-faultproxy, and driven directly by tests/unit/peer/test_net_wire.c.
 *
 *  Bounds. A frame is at most ALYS_MAX_MSG_BYTES; alys_wire_decode unpacks it with a
 *  budgeted allocator (like alys_env_decode) so a small frame cannot unpack
 *  into a huge structure, then refuses item counts above the protocol's
 *  limits (ALYS_WIRE_MAX_HEADERS, ALYS_WIRE_MAX_BLOCKS, ALYS_WIRE_MAX_ENDPOINTS) and items above
 *  their own size bound, before any caller looks at them.
 *
 *  Matching rules (alys_wire_check_range), for a response to GetHeaders/GetBlocks
 *  {start, count}:
 *    more items than asked                          VIOLATION
 *    items that start elsewhere than asked          VIOLATION
 *    no items but truncated = true                  VIOLATION (nothing can
 *                                                   overflow an empty frame)
 *    fewer than asked, truncated = false            SHORT
 *    fewer than asked, truncated = true             OK (partial: *partial set)
 *    exactly as asked                               OK
 *  Content rules (alys_wire_check_blocks / alys_wire_check_headers), after matching:
 *    an item that does not decode (bounded decode)  INVALID
 *    an item whose height is not start + i          INVALID
 *    a block whose header hash differs from the
 *    verified expected hash for its height          INVALID (the body does not
 *                                                   match the verified header)
 *  The verdicts' values are those of the peer protocol's Outcome (and of
 *  PeerManager's peer_outcome_kind_t): INVALID and VIOLATION are the serving
 *  peer's fault whatever others serve; SHORT and OK are ordinary records.
 *
 *  Ownership: alys_wire_decode returns a message freed with
 *  alys_wire_free(&msg). alys_wire_encode returns a new zframe the caller sends or destroys. Check
 *  functions only read their inputs and write detail (may be NULL).
 */
#ifndef ALYS_WIRE_H
#define ALYS_WIRE_H

#include <czmq.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "chain/chain.h"
#include "config.h"
#include "wire.pb-c.h"

#define ALYS_WIRE_PROTOCOL_VERSION 1
#define ALYS_WIRE_MAX_HEADERS      2048 /* GetHeaders count bound */
#define ALYS_WIRE_MAX_BLOCKS       1024 /* GetBlocks count bound */
#define ALYS_WIRE_MAX_ENDPOINTS    64   /* Peers list bound */
#define ALYS_WIRE_MAX_HEADER_BYTES 1024 /* one encoded header */
#define ALYS_WIRE_MAX_TEXT         512  /* node_id, listen, error text */
#define ALYS_WIRE_MAX_TXS          256  /* txs in one SubmitTx (issue 9) */
#define ALYS_WIRE_MAX_TX_BYTES     200  /* one encoded tx (ALYS_TX_MAX_BYTES) */
#define ALYS_WIRE_MAX_RESULT       32   /* one TxResults entry */
#define ALYS_WIRE_DETAIL_MAX       160
#define ALYS_LOCATOR_MAX           128 /* hashes in a block locator (GetHeaders.locator) */
#define ALYS_LOCATOR_DENSE_MAX     96  /* heights listed one by one below the head */
#define ALYS_WIRE_ID_MAX           65  /* a peer id: <= 64 chars + NUL */

/* What a response's checks conclude. Same values as Alys__Peer__Outcome. */
typedef enum {
    ALYS_WIRE_OK = 0,
    ALYS_WIRE_INVALID = 2,   /* provably invalid data */
    ALYS_WIRE_SHORT = 3,     /* fewer items than asked, without reason */
    ALYS_WIRE_VIOLATION = 4, /* larger than asked, not matching */
} alys_wire_verdict_t;

typedef Alys__Wire__WireMsg alys_wire_msg_t;

/* Decode one frame with every bound above. NULL with the reason in err. */
alys_wire_msg_t *alys_wire_decode(const uint8_t *data, size_t len, char *err, size_t errlen);
void alys_wire_free(alys_wire_msg_t **msg_p);
/* Encode into a new frame; NULL when the message would exceed the frame
 * limit (the caller must have cut it: see alys_wire_fit_items). */
zframe_t *alys_wire_encode(const alys_wire_msg_t *msg);
/* Name of the body for logs: "status", "get_blocks", ... */
const char *alys_wire_body_name(const alys_wire_msg_t *msg);

/* Largest n <= count such that n items of the given sizes, plus `overhead`
 * bytes, encode within limit bytes (protobuf framing of each item counted).
 * Servers use it to cut a response at the frame limit (truncated = true). */
size_t alys_wire_fit_items(const ProtobufCBinaryData *items, size_t count, size_t overhead,
                           size_t limit);

/* The matching rules above. partial (may be NULL) is set when the answer is
 * OK but holds fewer items than asked (truncated at the frame limit). */
alys_wire_verdict_t alys_wire_check_range(uint64_t req_start, uint32_t req_count,
                                          uint64_t resp_start, size_t n, bool truncated,
                                          bool *partial, char *detail, size_t detail_len);

/* The content rules for blocks [start, start + n). expected may be NULL
 * (n_expected 0) or hold one 32-byte hash per block (n_expected >= n).
 * bad (may be NULL) gets the index of the first failing block. */
alys_wire_verdict_t alys_wire_check_blocks(const ProtobufCBinaryData *blocks, size_t n,
                                           uint64_t start, const uint8_t (*expected)[ALYS_HASH_LEN],
                                           size_t n_expected, size_t *bad, char *detail,
                                           size_t detail_len);

/* The content rules for headers [start, start + n). */
alys_wire_verdict_t alys_wire_check_headers(const ProtobufCBinaryData *headers, size_t n,
                                            uint64_t start, size_t *bad, char *detail,
                                            size_t detail_len);

/* The heights of a block locator of a chain whose head is at head
 * (GetHeaders.locator, storage's GetLocator): head and the heights below
 * it one by one, dense heights in all (1..ALYS_LOCATOR_DENSE_MAX; 10 is
 * Bitcoin's shape), then doubling steps, and 0 (the genesis) always last;
 * strictly descending. At most cap (<= ALYS_LOCATOR_MAX) heights; returns
 * how many. The dense part is where a fork point is found exactly (fork
 * choice asks for max_reorg_depth + 2 of them); with the densest, the
 * doubling tail still reaches 2^32 blocks back before the genesis. */
size_t alys_locator_heights(uint64_t head, uint32_t dense, uint64_t *out, size_t cap);

/* A node id we accept as a peer id and metric label: 1..64 bytes of
 * [A-Za-z0-9._:@/-]. */
bool alys_wire_valid_node_id(const char *id);
/* A peer endpoint we dial: "tcp://HOST:PORT", shorter than ALYS_ENDPOINT_MAX,
 * no spaces or quotes. */
bool alys_wire_valid_endpoint(const char *ep);
/* Peer id for a connection known only by its endpoint (refused before it
 * told its node id, or whose node id is taken): "@" + the endpoint without
 * "tcp://", cut to fit ALYS_WIRE_ID_MAX. */
void alys_wire_endpoint_id(const char *endpoint, char *out, size_t outlen);

#endif
