/*  head_state.h: the head a producer builds on, taken from StorageActor's
 *  Head reply to GetHead{with_state} (proto/storage.proto), checked before
 *  anything is built on it. Pure: no I/O.
 *
 *  A reply is taken only if it is whole and agrees with itself: 32-byte
 *  hashes, a lattice of ALYS_LATTICE_BYTES whose root is the state root,
 *  and the head's header (absent at height 0, where the genesis parent
 *  stands in and the hash must be the genesis hash) that decodes, has the
 *  head's height and state root, and hashes to the head hash.
 *
 *  The state view has the head's lattice; its account reads are those of
 *  the slot's mempool reply (pool_txs.h) when that reply was selected on
 *  this very head, else none (the block then has no txs and reads nothing).
 *  A read of an account the reply does not hold fails the build
 *  (BUILD_STATE_ERROR): it is never guessed.
 *
 *  Ownership: a head_state_t holds no pointers to the reply; copy freely.
 */
#ifndef ALYS_PRODUCER_HEAD_STATE_H
#define ALYS_PRODUCER_HEAD_STATE_H

#include <stdbool.h>
#include <stddef.h>

#include "builder.h"
#include "chain/chain.h"
#include "chain/state.h"
#include "pool_txs.h"
#include "storage.pb-c.h"

typedef struct {
    bool valid;
    uint64_t height;
    alys_header_t header;   /* alys_genesis_parent at height 0 */
    alys_hash_t hash;       /* header hash; the genesis hash at height 0 */
    alys_state_view_t view; /* lattice after the head; reads: head_state_input */
} head_state_t;

/* Take m into hs (hs->valid says whether it was taken). 0, or -1 with err
 * saying what was wrong (hs->valid false). */
int head_state_take(head_state_t *hs, const alys_genesis_t *g, const Alys__Storage__Head *m,
                    char *err, size_t errlen);

/* The builder's input for slot on hs, with pt's txs (up to max_txs) and
 * account reads when pt (may be NULL) was selected on hs's head; else no
 * txs. Returns whether pt's txs are in. hs and pt must stay where they are
 * while the input is used (it points at hs->view, which reads from pt). */
bool head_state_input(head_state_t *hs, const alys_genesis_t *g, uint64_t slot, uint64_t hash_seed,
                      const pool_txs_t *pt, uint32_t max_txs, builder_input_t *in);

#endif
