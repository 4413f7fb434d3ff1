/*  builder.h: building a block on the head, pure (no I/O, no clock).
 *
 *  builder_assemble takes the head (its header, header hash and state
 *  view), the slot, candidate txs and the block bounds, and fills a block
 *  whose header is complete except the signature: height = head + 1,
 *  parent = head hash, slot, timestamp = the slot's (chain.c's rule),
 *  proposer = slot mod n, tx root and state root. The candidates come in
 *  the mempool's selection order (GetMempoolTxs, alys_mempool_select: by
 *  nonce within a sender) and each is checked against the block's running
 *  state with the execution rules of state.c (nonce equal to the sender's
 *  next, amount + fee within its balance, fee credited to the proposer at
 *  once); a tx whose nonce the head already used is skipped alone; any
 *  other failing tx with all later txs of its sender (they could not follow
 *  it). Signatures are not checked here: the pool admitted only signed
 *  txs, and the validators check every block (ours too) before storage
 *  commits it. Bounds: at most max_txs txs and
 *  max_bytes encoded bytes (an exact upper bound of each tx's encoding is
 *  counted; the real encoding is checked at the end).
 *
 *  SELF-CHECK. Before returning, the block is executed with the chain's own
 *  alys_execute_block on a scratch overlay over the head state: a state
 *  root this module computed wrong is caught here (BUILD_SELF_CHECK), never
 *  signed. The head state is only read.
 *
 *  The signature is separate (builder_sign) because the signing fence must
 *  record (slot, header hash) durably between the two (common/chain/fence.h);
 *  builder_sign refuses a block the durable record does not name.
 *
 *  Ownership: out is filled with a malloc'ed tx array; the caller frees it
 *  with alys_block_clear.
 */
#ifndef ALYS_PRODUCER_BUILDER_H
#define ALYS_PRODUCER_BUILDER_H

#include <stddef.h>
#include <stdint.h>

#include "chain/chain.h"
#include "chain/fence.h"
#include "chain/state.h"

typedef struct {
    const alys_genesis_t *genesis;
    const alys_state_view_t *head_state; /* the state after head; its lattice's root
                                             must be head.state_root */
    alys_header_t head;                  /* alys_genesis_parent() for an empty chain */
    alys_hash_t head_hash;               /* its header hash (genesis->hash for height 0) */
    uint64_t slot;
    const alys_tx_t *txs; /* candidates in selection order (borrowed), or NULL */
    size_t tx_count;
    uint32_t max_txs;   /* <= ALYS_MAX_TXS_PER_BLOCK */
    size_t max_bytes;   /* <= ALYS_MAX_BLOCK_BYTES */
    uint64_t hash_seed; /* keys the scratch account table (random in
                                             the process, fixed in tests) */
} builder_input_t;

typedef struct {
    uint32_t considered; /* candidates looked at */
    uint32_t included;
    uint32_t skipped_nonce;   /* nonce no longer the sender's next */
    uint32_t skipped_balance; /* cannot pay amount + fee (or a credit overflows) */
    uint32_t skipped_size;    /* would pass max_bytes */
    uint32_t skipped_sender;  /* after an earlier tx of its sender was skipped */
    size_t encoded_bytes;     /* the block's real encoded size */
} builder_stats_t;

typedef enum {
    BUILD_OK = 0,
    BUILD_BAD_INPUT, /* slot not after head, no authorities, bounds, head state */
    BUILD_NO_MEMORY,
    BUILD_STATE_ERROR, /* the head state could not be read */
    BUILD_SELF_CHECK,  /* the chain's own execution refused the result: a bug */
} builder_result_t;

const char *builder_result_name(builder_result_t r);

/* Fill out (unsigned). On error out is empty and err says why. st may be NULL. */
builder_result_t builder_assemble(const builder_input_t *in, alys_block_t *out,
                                  builder_stats_t *st, char *err, size_t errlen);
/* Sign the header with the authority's secret key, only if durable, the
 * fence record StorageActor acknowledged as written (FenceRecorded ok), names
 * exactly this block: its slot and its header hash. So no signature can
 * exist for a block the fence does not hold, whatever the caller's order
 * of steps. 0, or -1 (nothing signed, signature zeroed) if the record does
 * not name this block, the key does not sign, or it is not the key of the
 * header's proposer. */
int builder_sign(const alys_genesis_t *g, const alys_fence_record_t *durable, alys_block_t *b,
                 const uint8_t seckey[ALYS_SECKEY_LEN]);

/* An exact upper bound of one tx's bytes inside an encoded Block (field tag
 * and length included). */
size_t builder_tx_encoded_bound(const alys_tx_t *tx);
/* Bytes reserved for the header in max_bytes. */
#define BUILDER_HEADER_BOUND 256

#endif
