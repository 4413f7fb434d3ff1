/*  mempool_svc.h: the node's mempool as StorageActor serves it
 *  (proto/mempool.proto), without sockets. The pool's rules are
 *  common/chain/mempool.h; this file feeds them the head state the store
 *  holds and follows the head.
 *
 *  WHY HERE. Admission checks nonce and balance against the head state and
 *  the pool must change exactly when the head does (a committed block's txs
 *  leave, an undone block's txs come back). StorageActor holds that state
 *  and is the one writer of the head, so it sees every commit and every
 *  undo at the moment it happens, with no event to miss and no copy of the
 *  state to keep in step. It costs storage little: the pool is volatile
 *  (empty after a restart, which keeps storage's restart as fast as
 *  before), and admission is one signature check and one account read per
 *  tx, behind PeerManager's per-peer tx budgets.
 *
 *  Following the head: main.c calls mempool_svc_before and _after around
 *  every StorageMsg it serves. A Rollback's blocks are read before it runs
 *  and their txs re-admitted after. A reorg (ExecuteBatch with
 *  reorg_ancestor_hash) likewise: the blocks above its ancestor (at most
 *  [storage] max_reorg_depth) are read before it runs; once it committed,
 *  the new branch's blocks are shown to the pool, every sender is
 *  re-checked, and the undone txs are re-admitted against the new head
 *  (counted in alys_mempool_reorg_returned_total; a reorg that wrote
 *  nothing changes nothing). Blocks that extend the head are shown
 *  to the pool one by one (only when it holds txs: during a sync the pool
 *  is usually empty and costs nothing); any other change of head (a
 *  request that replaced blocks without a Rollback) re-checks every sender.
 *
 *  Ownership: mempool_svc_new / mempool_svc_destroy(&self). The store and
 *  metrics are borrowed and must outlive it. A reply's env points into the
 *  reply; send it, then mempool_reply_clear.
 */
#ifndef ALYS_MEMPOOL_SVC_H
#define ALYS_MEMPOOL_SVC_H

#include <stdbool.h>

#include "bus.h"
#include "chain/mempool.h"
#include "config.h"
#include "metrics_client.h"
#include "storage.h"

#define MEMPOOL_SVC_MAX_SUBMIT   1024          /* txs in one SubmitTx */
#define MEMPOOL_SVC_MAX_SELECT   4096          /* GetMempoolTxs.max_txs (a block's bound) */
#define MEMPOOL_SVC_MAX_SEL_BYTE (1024 * 1024) /* GetMempoolTxs.max_bytes */
#define MEMPOOL_SVC_MAX_UNDO     1024          /* blocks a Rollback may give back */

typedef struct mempool_svc mempool_svc_t;

typedef struct {
    alys_env_t env; /* the reply body (or an Error) */
    bool answer;    /* send it (not for corr_id 0) */

    /* Storage env points into. */
    Alys__Bus__Error error;
    char error_text[256];
    Alys__Mempool__MempoolMsg msg;
    Alys__Mempool__SubmitTxReply submit;
    Alys__Mempool__MempoolTxs txs;
    Alys__Mempool__MempoolStatus status;
    Alys__Mempool__ReasonCount reasons[ALYS_MEMPOOL_RESULT_COUNT + 1];
    Alys__Mempool__ReasonCount *reason_ptrs[ALYS_MEMPOOL_RESULT_COUNT + 1];
    alys_hash_t head_hash;
    char **results;             /* owned array of static strings */
    ProtobufCBinaryData *items; /* owned, each item's data owned */
    size_t n_items;
    /* MempoolTxs.accounts (with a proposer): all three owned. */
    uint8_t (*acct_keys)[ALYS_PUBKEY_LEN];
    Alys__Storage__AccountState *accts;
    Alys__Storage__AccountState **acct_ptrs;
    size_t n_accts;
} mempool_reply_t;

/* NULL if the [mempool] limits are out of range or out of memory. epoch:
 * this pool's identity, different for every process start (main.c: pid
 * and start time), told in every SubmitTxReply. */
mempool_svc_t *mempool_svc_new(const alys_config_t *cfg, storage_t *store,
                               alys_metrics_t *metrics, uint64_t epoch);
void mempool_svc_destroy(mempool_svc_t **self_p);

/* Is req a request for the mempool (a MempoolMsg body)? */
bool mempool_svc_wants(const alys_env_t *req);
/* Serve a MempoolMsg request; always fills rep. */
void mempool_svc_serve(mempool_svc_t *self, const alys_env_t *req, mempool_reply_t *rep);
void mempool_reply_clear(mempool_reply_t *rep);

/* Around every other request storage serves: remember the head (and a
 * Rollback's blocks) before, follow the head after. */
void mempool_svc_before(mempool_svc_t *self, const alys_env_t *req);
void mempool_svc_after(mempool_svc_t *self);

/* The pool (tests, status). */
const alys_mempool_t *mempool_svc_pool(const mempool_svc_t *self);

#endif
