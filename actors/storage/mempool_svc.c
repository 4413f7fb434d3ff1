/*  mempool_svc.c: see mempool_svc.h. */
#include "mempool_svc.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

struct mempool_svc {
    storage_t *store;        /* borrowed */
    alys_metrics_t *metrics; /* borrowed, may be NULL */
    alys_mempool_t *pool;
    alys_mempool_limits_t limits;
    uint64_t epoch; /* this pool's identity (SubmitTxReply.pool_epoch) */
    /* Counters since start (the pool is volatile). */
    uint64_t admitted;
    uint64_t refused[ALYS_MEMPOOL_RESULT_COUNT + 1]; /* + "undecodable" */
    uint64_t removed_included;
    uint64_t readmitted;
    /* The head before the request being served, and the blocks a Rollback
     * or a reorg would undo (read before they are deleted). */
    storage_head_t before;
    alys_block_t *undo;
    size_t n_undo;
    bool reorg; /* the request is a reorg (ExecuteBatch with an ancestor) */
    uint64_t reorg_ancestor;
    uint32_t max_reorg_depth; /* [storage]: bounds the blocks read for a reorg */
};

#define UNDECODABLE ALYS_MEMPOOL_RESULT_COUNT /* index of "undecodable" in refused[] */

static const char *result_name(size_t r)
{
    return r == UNDECODABLE ? "undecodable" : alys_mempool_result_name((alys_mempool_result_t) r);
}

/* ---- the state view: the committed head, read through the store ---- */

static int read_account(void *ctx, const uint8_t pubkey[ALYS_PUBKEY_LEN], alys_account_t *out)
{
    return storage_get_account(ctx, pubkey, out);
}

static void head_view(mempool_svc_t *self, alys_state_view_t *view)
{
    memset(view, 0, sizeof *view);
    view->genesis = storage_genesis(self->store);
    view->read = read_account;
    view->read_ctx = self->store;
}

/* ---- metrics ---- */

static void publish(mempool_svc_t *self)
{
    alys_metrics_t *m = self->metrics;
    if (!m)
        return;
    alys_metric_set(m, "alys_mempool_txs", NULL, "Transactions in the mempool",
                    (double) alys_mempool_size(self->pool));
    alys_metric_set(m, "alys_mempool_bytes", NULL, "Bytes of encoded transactions in the mempool",
                    (double) alys_mempool_bytes(self->pool));
    alys_metric_set(m, "alys_mempool_senders", NULL, "Senders with transactions in the mempool",
                    (double) alys_mempool_senders(self->pool));
}

static void count_result(mempool_svc_t *self, size_t r)
{
    char labels[64];
    if (r < ALYS_MEMPOOL_RESULT_COUNT && alys_mempool_admitted((alys_mempool_result_t) r)) {
        self->admitted++;
        if (self->metrics)
            alys_metric_add(self->metrics, "alys_mempool_admitted_total", NULL,
                            "Transactions admitted to the mempool", 1);
        return;
    }
    self->refused[r]++;
    snprintf(labels, sizeof labels, "reason=\"%s\"", result_name(r));
    if (self->metrics)
        alys_metric_add(self->metrics, "alys_mempool_refused_total", labels,
                        "Transactions refused by the mempool, by reason", 1);
}

static void declare_metrics(mempool_svc_t *self)
{
    if (!self->metrics)
        return;
    alys_metric_declare(self->metrics, "alys_mempool_admitted_total", NULL,
                        "Transactions admitted to the mempool");
    for (size_t r = 0; r <= UNDECODABLE; r++) {
        if (r < ALYS_MEMPOOL_RESULT_COUNT && alys_mempool_admitted((alys_mempool_result_t) r))
            continue;
        char labels[64];
        snprintf(labels, sizeof labels, "reason=\"%s\"", result_name(r));
        alys_metric_declare(self->metrics, "alys_mempool_refused_total", labels,
                            "Transactions refused by the mempool, by reason");
    }
    alys_metric_declare(self->metrics, "alys_mempool_removed_total", "why=\"included\"",
                        "Transactions that left the mempool because a committed block "
                        "included them or made them invalid");
    alys_metric_declare(self->metrics, "alys_mempool_readmitted_total", NULL,
                        "Transactions of undone blocks back in the mempool");
    alys_metric_declare(self->metrics, "alys_mempool_reorg_returned_total", NULL,
                        "Transactions of blocks undone by a reorg back in the mempool");
    publish(self);
}

/* ---- life ---- */

mempool_svc_t *mempool_svc_new(const alys_config_t *cfg, storage_t *store,
                               alys_metrics_t *metrics, uint64_t epoch)
{
    mempool_svc_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->epoch = epoch;
    self->max_reorg_depth = cfg->max_reorg_depth;
    self->store = store;
    self->metrics = metrics;
    self->limits = (alys_mempool_limits_t){.max_txs = cfg->mempool_max_txs,
                                           .max_per_sender = cfg->mempool_max_per_sender,
                                           .max_bytes = cfg->mempool_max_bytes,
                                           .max_sender_bytes = cfg->mempool_max_sender_bytes};
    self->pool = alys_mempool_new(&self->limits);
    if (!self->pool) {
        free(self);
        return NULL;
    }
    declare_metrics(self);
    return self;
}

static void undo_clear(mempool_svc_t *self)
{
    for (size_t i = 0; i < self->n_undo; i++)
        alys_block_clear(&self->undo[i]);
    free(self->undo);
    self->undo = NULL;
    self->n_undo = 0;
}

void mempool_svc_destroy(mempool_svc_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    mempool_svc_t *self = *self_p;
    undo_clear(self);
    alys_mempool_destroy(&self->pool);
    free(self);
    *self_p = NULL;
}

const alys_mempool_t *mempool_svc_pool(const mempool_svc_t *self)
{
    return self->pool;
}

bool mempool_svc_wants(const alys_env_t *req)
{
    return req->body_case == ALYS__BUS__ENVELOPE__BODY_MEMPOOL;
}

/* ---- following the head ---- */

/* Read the blocks above height that the request may undo, at most limit
 * of them (best effort: a read failure means fewer txs come back, never a
 * wrong one). */
static void read_undo(mempool_svc_t *self, uint64_t height, uint64_t limit)
{
    if (height >= self->before.height || self->before.height - height > limit)
        return;
    size_t n = (size_t) (self->before.height - height);
    self->undo = calloc(n, sizeof *self->undo);
    if (!self->undo)
        return;
    for (uint64_t h = height + 1; h <= self->before.height; h++)
        if (storage_get_block(self->store, h, &self->undo[self->n_undo]) == 1)
            self->n_undo++;
}

/* An ExecuteBatch naming a reorg ancestor (service.c checks the rest). */
static bool is_reorg(const Alys__Storage__StorageMsg *m)
{
    const Alys__Storage__ExecuteBatch *eb = m->execute_batch;
    return m->msg_case == ALYS__STORAGE__STORAGE_MSG__MSG_EXECUTE_BATCH && eb &&
           eb->reorg_ancestor_hash.len == ALYS_HASH_LEN;
}

void mempool_svc_before(mempool_svc_t *self, const alys_env_t *req)
{
    storage_head(self->store, &self->before);
    undo_clear(self);
    self->reorg = false;
    if (req->body_case != ALYS__BUS__ENVELOPE__BODY_STORAGE || !req->storage || req->reply)
        return;
    const Alys__Storage__StorageMsg *m = req->storage;
    if (m->msg_case == ALYS__STORAGE__STORAGE_MSG__MSG_ROLLBACK && m->rollback) {
        read_undo(self, m->rollback->height, MEMPOOL_SVC_MAX_UNDO);
    } else if (is_reorg(m)) {
        /* Storage refuses a reorg deeper than max_reorg_depth: no more
         * blocks than that can come back. */
        self->reorg = true;
        self->reorg_ancestor = m->execute_batch->reorg_ancestor_height;
        uint64_t limit = self->max_reorg_depth < MEMPOOL_SVC_MAX_UNDO ? self->max_reorg_depth
                                                                      : MEMPOOL_SVC_MAX_UNDO;
        read_undo(self, self->reorg_ancestor, limit);
    }
}

/* Does the block at height still have hash (the head moved forward only)? */
static bool still_there(mempool_svc_t *self, uint64_t height, const alys_hash_t hash)
{
    if (height == 0)
        return true;
    uint64_t at = 0;
    return storage_find_block(self->store, hash, &at) == 1 && at == height;
}

static void apply_blocks(mempool_svc_t *self, uint64_t from, uint64_t to, const alys_state_view_t *view)
{
    for (uint64_t h = from; h <= to && alys_mempool_size(self->pool) > 0; h++) {
        alys_block_t b;
        memset(&b, 0, sizeof b);
        if (storage_get_block(self->store, h, &b) != 1) {
            self->removed_included += alys_mempool_revalidate(self->pool, view);
            return;
        }
        self->removed_included += alys_mempool_on_block(self->pool, &b, view);
        alys_block_clear(&b);
    }
}

static void count_back(mempool_svc_t *self, long back, const char *metric, const char *help)
{
    if (back <= 0)
        return;
    self->readmitted += (uint64_t) back;
    if (self->metrics) {
        alys_metric_add(self->metrics, "alys_mempool_readmitted_total", NULL,
                        "Transactions of undone blocks back in the mempool", (double) back);
        if (metric)
            alys_metric_add(self->metrics, metric, NULL, help, (double) back);
    }
}

/* A committed reorg: the new branch's blocks leave the pool as any commit
 * does, every sender is re-checked (undone credits may no longer cover
 * what it pooled), then the undone blocks' txs are re-admitted against the
 * new head (those the new branch included fail as stale nonces). */
static void follow_reorg(mempool_svc_t *self, const storage_head_t *now, const alys_state_view_t *view)
{
    apply_blocks(self, self->reorg_ancestor + 1, now->height, view);
    self->removed_included += alys_mempool_revalidate(self->pool, view);
    long back = alys_mempool_readmit(self->pool, self->undo, self->n_undo, view);
    count_back(self, back, "alys_mempool_reorg_returned_total",
               "Transactions of blocks undone by a reorg back in the mempool");
    log_info("mempool: reorg: %ld txs of %zu undone blocks back in the pool", back, self->n_undo);
}

/* Did the request undo blocks of ours (a reorg that committed)? The old
 * head's block is then no longer on the chain. */
static bool reorged(mempool_svc_t *self, const storage_head_t *now)
{
    return self->reorg && self->reorg_ancestor < self->before.height &&
           memcmp(now->hash, self->before.hash, ALYS_HASH_LEN) != 0 &&
           !still_there(self, self->before.height, self->before.hash);
}

void mempool_svc_after(mempool_svc_t *self)
{
    storage_head_t now;
    storage_head(self->store, &now);
    size_t before_txs = alys_mempool_size(self->pool);
    uint64_t removed = self->removed_included;
    alys_state_view_t view;
    head_view(self, &view);
    if (reorged(self, &now)) {
        follow_reorg(self, &now, &view);
    } else if (self->n_undo > 0 && !self->reorg && now.height < self->before.height) {
        long back = alys_mempool_readmit(self->pool, self->undo, self->n_undo, &view);
        count_back(self, back, NULL, NULL);
        log_info("mempool: %ld txs of %zu undone blocks back in the pool", back, self->n_undo);
    } else if (now.height > self->before.height &&
               still_there(self, self->before.height, self->before.hash)) {
        apply_blocks(self, self->before.height + 1, now.height, &view);
    } else if (now.height != self->before.height ||
               memcmp(now.hash, self->before.hash, ALYS_HASH_LEN) != 0) {
        self->removed_included += alys_mempool_revalidate(self->pool, &view);
    }
    undo_clear(self);
    self->reorg = false;
    if (self->metrics && self->removed_included > removed)
        alys_metric_add(self->metrics, "alys_mempool_removed_total", "why=\"included\"",
                        "Transactions that left the mempool because a committed block "
                        "included them or made them invalid",
                        (double) (self->removed_included - removed));
    if (alys_mempool_size(self->pool) != before_txs)
        publish(self);
}

/* ---- replies ---- */

static void reply_error(mempool_reply_t *rep, uint32_t code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void reply_error(mempool_reply_t *rep, uint32_t code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(rep->error_text, sizeof rep->error_text, fmt, ap);
    va_end(ap);
    rep->error = (Alys__Bus__Error) ALYS__BUS__ERROR__INIT;
    rep->error.code = code;
    rep->error.message = rep->error_text;
    rep->env.body_case = ALYS__BUS__ENVELOPE__BODY_ERROR;
    rep->env.error = &rep->error;
}

static void reply_body(mempool_reply_t *rep, Alys__Mempool__MempoolMsg__MsgCase c)
{
    rep->msg.msg_case = c;
    rep->env.body_case = ALYS__BUS__ENVELOPE__BODY_MEMPOOL;
    rep->env.mempool = &rep->msg;
}

static void serve_submit(mempool_svc_t *self, mempool_reply_t *rep, const Alys__Mempool__SubmitTx *req)
{
    if (req->n_txs > MEMPOOL_SVC_MAX_SUBMIT) {
        reply_error(rep, ALYS_ERR_BAD_REQUEST, "submit_tx: %zu txs, at most %d", req->n_txs,
                    MEMPOOL_SVC_MAX_SUBMIT);
        return;
    }
    rep->results = calloc(req->n_txs ? req->n_txs : 1, sizeof *rep->results);
    if (!rep->results) {
        reply_error(rep, ALYS_ERR_INTERNAL, "submit_tx: out of memory");
        return;
    }
    alys_state_view_t view;
    head_view(self, &view);
    size_t before_txs = alys_mempool_size(self->pool);
    size_t admitted = 0;
    for (size_t i = 0; i < req->n_txs; i++) {
        alys_tx_t tx;
        size_t r = UNDECODABLE;
        if (alys_tx_decode(req->txs[i].data, req->txs[i].len, &tx, NULL) == 0)
            r = alys_mempool_add(self->pool, &tx, &view, NULL);
        count_result(self, r);
        admitted += r < ALYS_MEMPOOL_RESULT_COUNT && alys_mempool_admitted((alys_mempool_result_t) r);
        rep->results[i] = (char *) result_name(r);
    }
    log_debug("mempool: %zu of %zu txs from %s admitted", admitted, req->n_txs,
              req->origin && *req->origin ? req->origin : "?");
    storage_head_t h;
    storage_head(self->store, &h);
    rep->submit = (Alys__Mempool__SubmitTxReply) ALYS__MEMPOOL__SUBMIT_TX_REPLY__INIT;
    rep->submit.n_results = req->n_txs;
    rep->submit.results = rep->results;
    rep->submit.head_height = h.height;
    rep->submit.pool_epoch = self->epoch;
    rep->msg.submit_tx_reply = &rep->submit;
    reply_body(rep, ALYS__MEMPOOL__MEMPOOL_MSG__MSG_SUBMIT_TX_REPLY);
    if (alys_mempool_size(self->pool) != before_txs)
        publish(self);
}

static int encode_items(mempool_reply_t *rep, const alys_tx_t *txs, size_t n)
{
    rep->items = calloc(n ? n : 1, sizeof *rep->items);
    if (!rep->items)
        return -1;
    for (size_t i = 0; i < n; i++) {
        uint8_t *buf = malloc(ALYS_TX_MAX_BYTES);
        if (!buf)
            return -1;
        rep->items[i] = (ProtobufCBinaryData){alys_tx_encode(&txs[i], buf), buf};
        rep->n_items++;
    }
    return 0;
}

static int key_cmp(const void *a, const void *b)
{
    return memcmp(a, b, ALYS_PUBKEY_LEN);
}

/* The accounts a block of txs by proposer touches, each once, sorted, as
 * the committed head holds them: the producer has no state of its own and
 * builds from these (proto/mempool.proto). 0, or -1 (out of memory, a
 * failed read: the reply is then an error, never a guess). */
static int fill_accounts(mempool_svc_t *self, mempool_reply_t *rep, const alys_tx_t *txs,
                         size_t n, const uint8_t proposer[ALYS_PUBKEY_LEN])
{
    size_t cap = 2 * n + 1, k = 0;
    rep->acct_keys = calloc(cap, sizeof *rep->acct_keys);
    rep->accts = calloc(cap, sizeof *rep->accts);
    rep->acct_ptrs = calloc(cap, sizeof *rep->acct_ptrs);
    if (!rep->acct_keys || !rep->accts || !rep->acct_ptrs)
        return -1;
    memcpy(rep->acct_keys[k++], proposer, ALYS_PUBKEY_LEN);
    for (size_t i = 0; i < n; i++) {
        memcpy(rep->acct_keys[k++], txs[i].from, ALYS_PUBKEY_LEN);
        memcpy(rep->acct_keys[k++], txs[i].to, ALYS_PUBKEY_LEN);
    }
    qsort(rep->acct_keys, k, sizeof *rep->acct_keys, key_cmp);
    for (size_t i = 0; i < k; i++) {
        if (rep->n_accts &&
            memcmp(rep->acct_keys[i], rep->acct_keys[rep->n_accts - 1], ALYS_PUBKEY_LEN) == 0)
            continue;
        memmove(rep->acct_keys[rep->n_accts], rep->acct_keys[i], ALYS_PUBKEY_LEN);
        alys_account_t a;
        int rc = storage_get_account(self->store, rep->acct_keys[rep->n_accts], &a);
        if (rc < 0)
            return -1;
        Alys__Storage__AccountState *m = &rep->accts[rep->n_accts];
        *m = (Alys__Storage__AccountState) ALYS__STORAGE__ACCOUNT_STATE__INIT;
        m->pubkey = (ProtobufCBinaryData){ALYS_PUBKEY_LEN, rep->acct_keys[rep->n_accts]};
        m->balance = a.balance;
        m->nonce = a.nonce;
        m->found = rc == 1;
        rep->acct_ptrs[rep->n_accts] = m;
        rep->n_accts++;
    }
    return 0;
}

static void serve_get_txs(mempool_svc_t *self, mempool_reply_t *rep,
                          const Alys__Mempool__GetMempoolTxs *req)
{
    if (req->max_txs == 0 || req->max_txs > MEMPOOL_SVC_MAX_SELECT || req->max_bytes == 0 ||
        req->max_bytes > MEMPOOL_SVC_MAX_SEL_BYTE) {
        reply_error(rep, ALYS_ERR_BAD_REQUEST,
                    "get_mempool_txs: max_txs 1..%d and max_bytes 1..%d, got %u and %llu",
                    MEMPOOL_SVC_MAX_SELECT, MEMPOOL_SVC_MAX_SEL_BYTE, req->max_txs,
                    (unsigned long long) req->max_bytes);
        return;
    }
    if (req->proposer.len != 0 && req->proposer.len != ALYS_PUBKEY_LEN) {
        reply_error(rep, ALYS_ERR_BAD_REQUEST, "get_mempool_txs: proposer of %zu bytes, not %d",
                    req->proposer.len, ALYS_PUBKEY_LEN);
        return;
    }
    alys_tx_t *txs = calloc(req->max_txs, sizeof *txs);
    uint64_t bytes = 0;
    size_t n = txs ? alys_mempool_select_bounded(self->pool, txs, req->max_txs, req->max_bytes, &bytes)
                   : 0;
    int rc = txs ? encode_items(rep, txs, n) : -1;
    if (rc == 0 && req->proposer.len)
        rc = fill_accounts(self, rep, txs, n, req->proposer.data);
    free(txs);
    if (rc != 0) {
        reply_error(rep, ALYS_ERR_INTERNAL, "get_mempool_txs: out of memory or a state read failed");
        return;
    }
    storage_head_t h;
    storage_head(self->store, &h);
    memcpy(rep->head_hash, h.hash, ALYS_HASH_LEN);
    rep->txs = (Alys__Mempool__MempoolTxs) ALYS__MEMPOOL__MEMPOOL_TXS__INIT;
    rep->txs.n_txs = rep->n_items;
    rep->txs.txs = rep->items;
    rep->txs.head_height = h.height;
    rep->txs.head_hash = (ProtobufCBinaryData){ALYS_HASH_LEN, rep->head_hash};
    rep->txs.bytes = bytes;
    rep->txs.n_accounts = rep->n_accts;
    rep->txs.accounts = rep->acct_ptrs;
    rep->msg.mempool_txs = &rep->txs;
    reply_body(rep, ALYS__MEMPOOL__MEMPOOL_MSG__MSG_MEMPOOL_TXS);
}

static void serve_status(mempool_svc_t *self, mempool_reply_t *rep)
{
    storage_head_t h;
    storage_head(self->store, &h);
    Alys__Mempool__MempoolStatus *s = &rep->status;
    *s = (Alys__Mempool__MempoolStatus) ALYS__MEMPOOL__MEMPOOL_STATUS__INIT;
    s->txs = alys_mempool_size(self->pool);
    s->bytes = alys_mempool_bytes(self->pool);
    s->senders = alys_mempool_senders(self->pool);
    s->max_txs = self->limits.max_txs;
    s->max_bytes = self->limits.max_bytes;
    s->head_height = h.height;
    s->admitted = self->admitted;
    s->removed_included = self->removed_included;
    s->readmitted = self->readmitted;
    size_t n = 0;
    for (size_t r = 0; r <= UNDECODABLE; r++) {
        if (!self->refused[r])
            continue;
        rep->reasons[n] = (Alys__Mempool__ReasonCount) ALYS__MEMPOOL__REASON_COUNT__INIT;
        rep->reasons[n].reason = (char *) result_name(r);
        rep->reasons[n].count = self->refused[r];
        rep->reason_ptrs[n] = &rep->reasons[n];
        n++;
    }
    s->n_refused = n;
    s->refused = rep->reason_ptrs;
    rep->msg.mempool_status = s;
    reply_body(rep, ALYS__MEMPOOL__MEMPOOL_MSG__MSG_MEMPOOL_STATUS);
}

void mempool_svc_serve(mempool_svc_t *self, const alys_env_t *req, mempool_reply_t *rep)
{
    memset(rep, 0, sizeof *rep);
    rep->env = (alys_env_t) ALYS__BUS__ENVELOPE__INIT;
    rep->msg = (Alys__Mempool__MempoolMsg) ALYS__MEMPOOL__MEMPOOL_MSG__INIT;
    if (req->reply)
        return; /* storage asks nobody: a reply here is stray */
    rep->answer = req->corr_id != 0;
    const Alys__Mempool__MempoolMsg *m = req->mempool;
    switch (m ? m->msg_case : ALYS__MEMPOOL__MEMPOOL_MSG__MSG__NOT_SET) {
    case ALYS__MEMPOOL__MEMPOOL_MSG__MSG_SUBMIT_TX: serve_submit(self, rep, m->submit_tx); break;
    case ALYS__MEMPOOL__MEMPOOL_MSG__MSG_GET_MEMPOOL_TXS:
        serve_get_txs(self, rep, m->get_mempool_txs);
        break;
    case ALYS__MEMPOOL__MEMPOOL_MSG__MSG_GET_MEMPOOL_STATUS: serve_status(self, rep); break;
    default:
        reply_error(rep, ALYS_ERR_BAD_REQUEST, "storage's mempool does not serve this message");
        break;
    }
}

void mempool_reply_clear(mempool_reply_t *rep)
{
    free(rep->results);
    rep->results = NULL;
    for (size_t i = 0; i < rep->n_items; i++)
        free(rep->items[i].data);
    free(rep->items);
    rep->items = NULL;
    rep->n_items = 0;
    free(rep->acct_keys);
    free(rep->accts);
    free(rep->acct_ptrs);
    rep->acct_keys = NULL;
    rep->accts = NULL;
    rep->acct_ptrs = NULL;
    rep->n_accts = 0;
}
