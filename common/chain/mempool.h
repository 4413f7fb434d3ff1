/*  mempool.h: a bounded pool of pending transfers, pure (no I/O, no clock).
 *
 *  WHERE IT LIVES AND WHY. The pool's rules are chain rules (a tx's
 *  signature, its nonce and its balance against a state view, state.h), and
 *  more than one process needs them: the producer selects a block's txs from
 *  it at its slot, and the process that takes SubmitTx and gossiped txs off
 *  the wire (PeerManager, or a tx-pool actor of its own: issue 9 leaves that
 *  open) admits, de-duplicates and relays with it; a node that is not an
 *  authority runs no producer and still relays txs. So it sits beside
 *  state.h in common/chain, knows no actor, and whichever process ends up
 *  owning the node's pool instance links it from alys_common.
 *
 *  RULES (each has a unit test in tests/unit/mempool):
 *    admission   signature verifies under tx.from; nonce is exactly the
 *                sender's next one (account nonce + txs of this sender
 *                already pooled: a sender's pooled txs are always a
 *                contiguous nonce run starting at its account nonce, so
 *                every pooled tx is includable in order; gapped txs are
 *                refused, there is no future queue); the sender's balance
 *                covers amount + fee of all its pooled txs plus this one
 *                (credits the sender may receive are not counted: a
 *                conservative rule, never admits what cannot pay);
 *                (sender, nonce) not already pooled.
 *    bounds      at most limits.max_per_sender txs and max_sender_bytes
 *                per sender, limits.max_txs txs and max_bytes in all. A
 *                tx's bytes are its encoded size (mempool_tx.h, 134..167).
 *    eviction    when full (count or bytes), the lowest-fee tx among the
 *                senders' LAST txs (evicting a middle tx would leave a gap)
 *                of senders other than the newcomer's is evicted, only if
 *                the newcomer pays strictly more fee; else the newcomer is
 *                refused. Ties: the highest nonce, then the greatest sender
 *                key (deterministic). When bytes are short, up to
 *                ALYS_MEMPOOL_MAX_VICTIMS are evicted, each cheaper than
 *                the newcomer; if that is not enough nothing is evicted.
 *                Sizes differ by at most 33 bytes, so fee is the fee rate.
 *    commit      alys_mempool_on_block removes, per sender of a committed
 *                block, every pooled tx with a nonce at or below the highest
 *                one the block included (included, or made stale by it),
 *                then cuts what the sender's new balance no longer covers.
 *    undo        alys_mempool_readmit puts the txs of blocks undone by a
 *                reorg back, with the affected senders' pooled txs, through
 *                admission against the new head's state (txs the new branch
 *                already included fail their nonce and are dropped).
 *    selection   alys_mempool_iter: per sender in nonce order, across
 *                senders by fee (highest first; ties by sender key), so a
 *                block builder can also drop a sender's remaining txs when
 *                one of them fails against the block's running state.
 *
 *  Cost: admission and removal are O(1) per sender lookup plus O(pooled txs
 *  of that sender); eviction scans the senders (O(senders), bounded by
 *  max_txs); an iterator costs O(senders) to start and O(log senders) per
 *  tx. Sender lookup is a czmq hash on the key's hex form: keys are chosen by
 *  whoever signs txs, so colliding keys could be ground; the pool's bound
 *  caps what that costs.
 *
 *  Ownership: the pool copies every tx it admits. Pointers returned by an
 *  iterator are the pool's and valid until the pool next changes; do not
 *  change the pool while an iterator lives. Not thread-safe.
 */
#ifndef ALYS_MEMPOOL_H
#define ALYS_MEMPOOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "chain.h"
#include "mempool_tx.h"
#include "state.h"

/* Hard ceilings on configured bounds (a typo cannot ask for 2^40 txs). */
#define ALYS_MEMPOOL_MAX_TXS        (1u << 20)
#define ALYS_MEMPOOL_MAX_PER_SENDER 4096u

/* Evictions one admission may make (bytes: two txs always make room). */
#define ALYS_MEMPOOL_MAX_VICTIMS 2

typedef struct {
    uint32_t max_txs;        /* 1 .. ALYS_MEMPOOL_MAX_TXS */
    uint32_t max_per_sender; /* 1 .. ALYS_MEMPOOL_MAX_PER_SENDER */
    /* Byte bounds; 0 = count x ALYS_TX_MAX_BYTES (the count bound alone). */
    uint64_t max_bytes;
    uint64_t max_sender_bytes;
} alys_mempool_limits_t;

/* Outcome of an admission. Names (alys_mempool_result_name) are stable
 * strings for logs and metric labels. */
typedef enum {
    ALYS_MEMPOOL_ADDED = 0,
    ALYS_MEMPOOL_ADDED_EVICTED, /* added, a lower-fee tx was evicted */
    ALYS_MEMPOOL_DUPLICATE,     /* the same tx is already pooled */
    ALYS_MEMPOOL_NONCE_TAKEN,   /* another tx of this sender has this nonce */
    ALYS_MEMPOOL_BAD_SIGNATURE,
    ALYS_MEMPOOL_NONCE_TOO_LOW, /* below the sender's account nonce */
    ALYS_MEMPOOL_NONCE_GAP,     /* above the sender's next nonce */
    ALYS_MEMPOOL_INSUFFICIENT_BALANCE,
    ALYS_MEMPOOL_SENDER_FULL,
    ALYS_MEMPOOL_POOL_FULL,   /* full and the fee does not beat the cheapest */
    ALYS_MEMPOOL_STATE_ERROR, /* the state view could not be read */
    ALYS_MEMPOOL_NO_MEMORY,
    ALYS_MEMPOOL_RESULT_COUNT
} alys_mempool_result_t;

const char *alys_mempool_result_name(alys_mempool_result_t r);
static inline bool alys_mempool_admitted(alys_mempool_result_t r)
{
    return r == ALYS_MEMPOOL_ADDED || r == ALYS_MEMPOOL_ADDED_EVICTED;
}

typedef struct alys_mempool alys_mempool_t;
typedef struct alys_mempool_iter alys_mempool_iter_t;

/* NULL if a limit is 0 or above its ceiling, or out of memory. */
alys_mempool_t *alys_mempool_new(const alys_mempool_limits_t *limits);
void alys_mempool_destroy(alys_mempool_t **self_p);

size_t alys_mempool_size(const alys_mempool_t *self);
/* Sum of the pooled txs' encoded sizes. */
uint64_t alys_mempool_bytes(const alys_mempool_t *self);
size_t alys_mempool_senders(const alys_mempool_t *self);
/* Pooled txs of one sender. */
size_t alys_mempool_sender_count(const alys_mempool_t *self, const uint8_t from[ALYS_PUBKEY_LEN]);
/* Is (from, nonce) pooled? If so and out is not NULL, copy it there. */
bool alys_mempool_get(const alys_mempool_t *self, const uint8_t from[ALYS_PUBKEY_LEN],
                      uint64_t nonce, alys_tx_t *out);

/* Admit tx (copied) if the rules above allow it against view, the state of
 * the head the pool follows (read only). When evicted is not NULL and the
 * result is ADDED_EVICTED, the evicted tx is copied there (so a relay can
 * forget it). */
alys_mempool_result_t alys_mempool_add(alys_mempool_t *self, const alys_tx_t *tx,
                                       const alys_state_view_t *view, alys_tx_t *evicted);

/* A block was committed on the head the pool follows: drop what it included
 * or made stale (see RULES). With view (the state after b; may be NULL),
 * each of the block's senders still pooled is re-checked against it: its
 * pooled run must start at its account nonce and its balance must cover
 * them, else the run is cut where it fails (a tx of the block the pool did
 * not hold may have cost more than the pooled one it replaced). Returns
 * the number of txs removed. */
size_t alys_mempool_on_block(alys_mempool_t *self, const alys_block_t *b,
                             const alys_state_view_t *view);

/* Blocks[0..n) were undone by a reorg; view is the new head's state (after
 * the new branch's blocks were applied and passed to on_block). Returns the
 * number of undone txs that are pooled again; -1 on out of memory (the pool
 * then holds a subset of what it should, all of it valid). */
long alys_mempool_readmit(alys_mempool_t *self, const alys_block_t *blocks, size_t n,
                          const alys_state_view_t *view);

/* The head moved in a way the pool could not follow block by block (a
 * change of head it was not shown): re-check every sender against view
 * (its run must start at its account nonce and be covered by its balance;
 * the rest is cut). Returns the number of txs removed. */
size_t alys_mempool_revalidate(alys_mempool_t *self, const alys_state_view_t *view);

/* Selection order (see RULES). NULL on out of memory. */
alys_mempool_iter_t *alys_mempool_iter_new(const alys_mempool_t *self);
void alys_mempool_iter_destroy(alys_mempool_iter_t **self_p);
/* The next tx, or NULL when none is left. */
const alys_tx_t *alys_mempool_iter_next(alys_mempool_iter_t *self);
/* The sender of the tx last returned yields nothing more (its next nonce
 * cannot follow a tx the caller skipped). */
void alys_mempool_iter_drop_sender(alys_mempool_iter_t *self);

/* Up to max txs in selection order, copied into out. Returns the count. */
size_t alys_mempool_select(const alys_mempool_t *self, alys_tx_t *out, size_t max);
/* As alys_mempool_select, also bounded by max_bytes of encoded txs: a tx
 * that does not fit ends its sender's run (what follows it could not be
 * included without it) and smaller ones of other senders may still come.
 * The result is valid as one sequence against the pool's head state (each
 * sender's run starts at its account nonce and its balance covers the run;
 * others' txs only credit it). *bytes (may be NULL) gets the total. */
size_t alys_mempool_select_bounded(const alys_mempool_t *self, alys_tx_t *out, size_t max_txs,
                                   uint64_t max_bytes, uint64_t *bytes);

#endif
