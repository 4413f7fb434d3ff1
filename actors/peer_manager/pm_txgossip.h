/*  pm_txgossip.h: what PeerManager decides about transactions on the wire,
 *  as a pure module (no sockets, no clock: time is a parameter).
 *  tests/unit/peer/test_txgossip.c drives it.
 *
 *  - Seen set: the ids (alys_tx_id: SHA-256 of the encoded tx) of the txs
 *    that went through us, bounded (seen_cap; the oldest is forgotten
 *    first). A seen tx is neither sent to the mempool again nor relayed
 *    again, so a tx crosses each link at most about once and gossip stops.
 *  - Budgets: per key (an inbound client's routing id, or "out/" + a
 *    peer's id for what we relay to it) a token bucket of messages and one
 *    of bytes per second, bursts of twice the rate; a message is taken only
 *    when both allow it. txg_charge takes bytes without a message (a
 *    client that sent what no honest node relays: undecodable or badly
 *    signed txs), and may leave the bytes bucket below zero, so a hostile
 *    sender is refused for longer. The table is bounded (budget_cap); the
 *    key seen longest ago is recycled (a flooder is always recent).
 *  - Relay queue: txs the mempool admitted, each with the peer it came
 *    from (not sent back to it), bounded (queue_cap; beyond, dropped).
 *    The shell flushes it every tick: txg_batch picks one peer's batch.
 *
 *  Ownership: txg_new / txg_destroy(&self). Pointers returned into the
 *  queue are valid until txg_queue_clear.
 */
#ifndef PM_TXGOSSIP_H
#define PM_TXGOSSIP_H

#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "chain/mempool_tx.h"

#define TXG_KEY_MAX 256 /* "out/" + a peer id, or a routing id (<= 255) */

typedef struct {
    uint32_t msg_rate;  /* messages per second per key, >= 1 */
    uint64_t byte_rate; /* bytes per second per key, >= 1 */
    size_t seen_cap;    /* tx ids remembered, >= 1 */
    size_t budget_cap;  /* keys tracked, >= 1 */
    size_t queue_cap;   /* txs waiting for relay, >= 1 */
} txg_config_t;

typedef struct txg txg_t;

/* NULL on a zero bound or out of memory. */
txg_t *txg_new(const txg_config_t *cfg);
void txg_destroy(txg_t **self_p);

/* ---- seen set ---- */
bool txg_seen(txg_t *self, const alys_hash_t id);
/* Remember id (no-op if known); forgets the oldest when full. */
void txg_mark(txg_t *self, const alys_hash_t id);
size_t txg_seen_count(const txg_t *self);
/* Forget every id (the mempool behind us restarted empty). */
void txg_seen_clear(txg_t *self);

/* ---- budgets ---- */
/* May key send a message of bytes now? Takes one message and bytes when
 * both buckets hold them. Keys are key_len bytes (1..TXG_KEY_MAX). */
bool txg_take(txg_t *self, const void *key, size_t key_len, size_t bytes, int64_t now_ms);
/* Take bytes from key's byte bucket whatever it holds (down to minus
 * twice the burst). */
void txg_charge(txg_t *self, const void *key, size_t key_len, size_t bytes, int64_t now_ms);

/* ---- relay queue ---- */
/* Queue an encoded tx (len <= ALYS_TX_MAX_BYTES) from origin ("" = ours).
 * -1 when the queue is full or len is out of bounds (dropped). */
int txg_queue(txg_t *self, const uint8_t *tx, size_t len, const char *origin);
size_t txg_queued(const txg_t *self);
/* The queued txs not from peer_id, from index *pos on, at most max of
 * them into out (pointing into the queue); *pos moves past what was taken
 * so a caller can cut several batches. Returns the count. */
size_t txg_batch(const txg_t *self, const char *peer_id, size_t *pos, ProtobufCBinaryData *out,
                 size_t max);
void txg_queue_clear(txg_t *self);

#endif
