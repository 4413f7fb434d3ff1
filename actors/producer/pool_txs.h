/*  pool_txs.h: the txs a producer may put in its block, and the accounts
 *  they touch, taken from StorageActor's MempoolTxs reply to
 *  GetMempoolTxs{proposer} (proto/mempool.proto). Pure: no I/O.
 *
 *  WHY THE ACCOUNTS COME WITH THE TXS. The producer holds no state: storage
 *  is the one process with the head state. To check each tx's nonce and
 *  balance and to compute the new state root, the builder needs exactly
 *  the accounts the txs and the fee touch, as the head holds them; storage
 *  reads them while it selects the txs (it serves one request at a time, so
 *  both describe the head named in the reply). A reply about another head
 *  than the one the block goes on is not used (pool_txs_for_head).
 *
 *  Trust: storage is our own process; nothing here can prove an account's
 *  value (the state commitment is a lattice sum, not a tree). A wrong value
 *  gives a wrong state root, which storage's own execution refuses at
 *  commit: a missed slot, never a bad block committed.
 *
 *  A reply is taken only if it is whole and agrees with itself: the head
 *  hash is 32 bytes, at most max_txs txs that each decode, at most
 *  2 x txs + 1 accounts of 32-byte keys in strictly ascending order, an
 *  absent account is the zero account, and every tx's sender and recipient
 *  and the proposer are among them.
 *
 *  Ownership: pool_txs_take allocates the arrays; pool_txs_clear frees them
 *  (safe on a zeroed or already cleared value).
 */
#ifndef ALYS_PRODUCER_POOL_TXS_H
#define ALYS_PRODUCER_POOL_TXS_H

#include <stdbool.h>
#include <stddef.h>

#include "chain/chain.h"
#include "chain/state.h"
#include "mempool.pb-c.h"

typedef struct {
    uint8_t key[ALYS_PUBKEY_LEN];
    alys_account_t account; /* zero when absent */
} pool_account_t;

typedef struct {
    bool valid;
    uint64_t head_height;
    alys_hash_t head_hash;
    alys_tx_t *txs; /* in selection order */
    size_t tx_count;
    pool_account_t *accounts; /* sorted by key */
    size_t account_count;
} pool_txs_t;

/* Take m into pt (the proposer is the one asked for). 0, or -1 with err
 * saying what was wrong (pt cleared, valid false). */
int pool_txs_take(pool_txs_t *pt, const Alys__Mempool__MempoolTxs *m, uint32_t max_txs,
                  const uint8_t proposer[ALYS_PUBKEY_LEN], char *err, size_t errlen);
void pool_txs_clear(pool_txs_t *pt);

/* Were these txs selected on the head named by hash? */
bool pool_txs_for_head(const pool_txs_t *pt, const alys_hash_t hash);

/* alys_state_read_fn over the reply's accounts (ctx: the pool_txs_t):
 * 1 found (non-zero), 0 zero account, -1 for a key the reply does not hold
 * (a read the builder must not guess). */
int pool_txs_read(void *ctx, const uint8_t pubkey[ALYS_PUBKEY_LEN], alys_account_t *out);

#endif
