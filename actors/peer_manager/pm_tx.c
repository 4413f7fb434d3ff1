/*  pm_tx.c: transactions through PeerManager (see pm.h): SubmitTx from
 *  inbound clients and peers (the wire) and from the bus (alysctl tx),
 *  forwarded to StorageActor's mempool; what it admits is relayed to every
 *  ready peer. Every decision (seen set, budgets, relay batches) is in
 *  pm_txgossip.h; this file translates between messages and those calls.
 *
 *  A submission is a job: the txs (copies), who sent them and how to
 *  answer, and where each forwarded tx sits in the sender's list (txs
 *  decided here, "seen" or "undecodable", are not forwarded). Jobs are
 *  bounded (PM_TX_JOBS); with none free a wire sender gets UNAVAILABLE and
 *  a bus sender an Error.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "pm.h"
#include "pm_txgossip.h"

#define PM_TX_JOBS       32
#define PM_TX_SEEN       65536 /* tx ids remembered (2 MiB with the hash) */
#define PM_TX_QUEUE      4096  /* txs waiting for the next relay flush */
#define PM_TX_BUDGETS    256   /* peers and clients with a tx budget */
#define PM_TX_MAX_BUS    1024  /* txs in one bus SubmitTx (proto/mempool.proto) */
#define PM_TX_BAD_FACTOR 16    /* a bad tx costs its sender this many times its bytes */

typedef enum { JOB_FREE = 0, JOB_WIRE, JOB_BUS } job_kind_t;

typedef struct {
    job_kind_t kind;
    uint64_t tag;
    uint8_t route[PM_CLIENT_ID_MAX]; /* wire: the client's routing id; bus: the requester's */
    size_t route_len;
    uint64_t reply_id; /* wire request_id / bus corr_id; 0 = no answer wanted */
    char origin[ALYS_WIRE_ID_MAX];
    size_t n;                /* txs submitted */
    const char **results;    /* n, static strings; NULL = forwarded, waiting */
    ProtobufCBinaryData *fw; /* forwarded txs (owned copies) */
    size_t *fw_at;           /* their positions in the submission */
    size_t n_fw;
} job_t;

struct pm_txs {
    txg_t *g;
    uint64_t epoch; /* the mempool's SubmitTxReply.pool_epoch last seen */
    job_t jobs[PM_TX_JOBS];
    uint64_t next_tag;
};

static void job_clear(job_t *j)
{
    for (size_t i = 0; j->fw && i < j->n_fw; i++)
        free(j->fw[i].data);
    free(j->fw);
    free(j->fw_at);
    free(j->results);
    memset(j, 0, sizeof *j);
}

static void declare(pm_t *pm)
{
    static const char *const drops[] = {"rate_limited", "seen", "queue_full", "peer_budget",
                                        "send_failed"};
    alys_metric_add(pm->metrics, "alys_tx_gossip_received_total", NULL,
                    "Transactions received over the wire (peers and clients)", 0);
    alys_metric_add(pm->metrics, "alys_tx_gossip_relayed_total", NULL,
                    "Transaction copies relayed to peers", 0);
    for (size_t i = 0; i < sizeof drops / sizeof drops[0]; i++) {
        char labels[48];
        snprintf(labels, sizeof labels, "reason=\"%s\"", drops[i]);
        alys_metric_add(pm->metrics, "alys_tx_gossip_dropped_total", labels,
                        "Transactions dropped by gossip, by reason", 0);
    }
}

static void dropped(pm_t *pm, const char *reason, size_t n)
{
    char labels[48];
    snprintf(labels, sizeof labels, "reason=\"%s\"", reason);
    alys_metric_add(pm->metrics, "alys_tx_gossip_dropped_total", labels,
                    "Transactions dropped by gossip, by reason", (double) n);
}

pm_txs_t *pm_tx_new(pm_t *pm)
{
    pm_txs_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    const alys_config_t *cfg = pm->cfg;
    txg_config_t gc = {.msg_rate = cfg->tx_gossip_rate,
                       .byte_rate = cfg->tx_gossip_bytes,
                       .seen_cap = PM_TX_SEEN,
                       .budget_cap = PM_TX_BUDGETS,
                       .queue_cap = PM_TX_QUEUE};
    self->g = txg_new(&gc);
    if (!self->g) {
        free(self);
        return NULL;
    }
    declare(pm);
    return self;
}

void pm_tx_destroy(pm_t *pm, pm_txs_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    pm_txs_t *self = *self_p;
    if (pm->store)
        pm_storage_cancel(pm, self);
    for (size_t i = 0; i < PM_TX_JOBS; i++)
        job_clear(&self->jobs[i]);
    txg_destroy(&self->g);
    free(self);
    *self_p = NULL;
}

/* ---- answers ---- */

static void answer_wire(pm_t *pm, const job_t *j)
{
    if (!j->reply_id)
        return;
    Alys__Wire__TxResults r = ALYS__WIRE__TX_RESULTS__INIT;
    r.n_results = j->n;
    r.results = (char **) j->results;
    alys_wire_msg_t m = ALYS__WIRE__WIRE_MSG__INIT;
    m.request_id = j->reply_id;
    m.body_case = ALYS__WIRE__WIRE_MSG__BODY_TX_RESULTS;
    m.tx_results = &r;
    if (ps_send(pm, j->route, j->route_len, &m) != 0)
        log_debug("tx results to a client dropped (gone)");
}

static void answer_bus(pm_t *pm, const job_t *j, uint64_t head)
{
    if (!j->reply_id || !pm->port.mailbox_reply)
        return;
    Alys__Mempool__SubmitTxReply r = ALYS__MEMPOOL__SUBMIT_TX_REPLY__INIT;
    r.n_results = j->n;
    r.results = (char **) j->results;
    r.head_height = head;
    Alys__Mempool__MempoolMsg msg = ALYS__MEMPOOL__MEMPOOL_MSG__INIT;
    msg.msg_case = ALYS__MEMPOOL__MEMPOOL_MSG__MSG_SUBMIT_TX_REPLY;
    msg.submit_tx_reply = &r;
    alys_env_t env = ALYS__BUS__ENVELOPE__INIT;
    env.body_case = ALYS__BUS__ENVELOPE__BODY_MEMPOOL;
    env.mempool = &msg;
    if (pm->port.mailbox_reply(pm->port.ctx, j->route, j->route_len, j->reply_id, &env) != 0)
        log_debug("tx results to %s dropped (gone)", j->origin);
}

static void answer(pm_t *pm, const job_t *j, uint64_t head)
{
    if (j->kind == JOB_WIRE)
        answer_wire(pm, j);
    else
        answer_bus(pm, j, head);
}

static void wire_error(pm_t *pm, const uint8_t *route, size_t route_len, uint64_t request_id,
                       Alys__Wire__WireError__Code code, const char *why)
{
    if (!request_id)
        return; /* gossip: nobody waits for an answer */
    Alys__Wire__WireError e = ALYS__WIRE__WIRE_ERROR__INIT;
    e.code = code;
    e.message = (char *) why;
    alys_wire_msg_t m = ALYS__WIRE__WIRE_MSG__INIT;
    m.request_id = request_id;
    m.body_case = ALYS__WIRE__WIRE_MSG__BODY_ERROR;
    m.error = &e;
    if (ps_send(pm, route, route_len, &m) != 0)
        log_debug("tx error to a client dropped (gone)");
}

/* ---- storage's verdicts ---- */

static bool admitted(const char *r)
{
    return strcmp(r, "added") == 0 || strcmp(r, "added_evicted") == 0;
}

static job_t *job_by_tag(pm_txs_t *self, uint64_t tag)
{
    for (size_t i = 0; i < PM_TX_JOBS; i++)
        if (self->jobs[i].kind != JOB_FREE && self->jobs[i].tag == tag)
            return &self->jobs[i];
    return NULL;
}

/* One forwarded tx's result: remember, relay, charge. */
static void on_result(pm_t *pm, pm_txs_t *self, job_t *j, size_t k, const char *r)
{
    const ProtobufCBinaryData *tx = &j->fw[k];
    alys_tx_t t;
    alys_hash_t id;
    bool ok = alys_tx_decode(tx->data, tx->len, &t, NULL) == 0;
    if (ok)
        alys_tx_id(&t, id);
    if (ok && (admitted(r) || strcmp(r, "duplicate") == 0))
        txg_mark(self->g, id);
    if (admitted(r) && txg_queue(self->g, tx->data, tx->len, j->origin) != 0)
        dropped(pm, "queue_full", 1);
    /* No honest node relays a badly signed tx: its sender pays for it. */
    if (j->kind == JOB_WIRE && strcmp(r, "bad_signature") == 0)
        txg_charge(self->g, j->route, j->route_len, PM_TX_BAD_FACTOR * tx->len, pm_mono(pm));
}

static void on_storage(pm_t *pm, void *arg, uint64_t tag, const alys_env_t *reply)
{
    pm_txs_t *self = arg;
    job_t *j = job_by_tag(self, tag);
    if (!j)
        return;
    const Alys__Mempool__SubmitTxReply *r = NULL;
    if (reply && reply->body_case == ALYS__BUS__ENVELOPE__BODY_MEMPOOL && reply->mempool &&
        reply->mempool->msg_case == ALYS__MEMPOOL__MEMPOOL_MSG__MSG_SUBMIT_TX_REPLY)
        r = reply->mempool->submit_tx_reply;
    if (r && r->pool_epoch != self->epoch) {
        /* StorageActor restarted with an empty pool: what we saw may come
         * again and must reach it. */
        if (self->epoch)
            log_info("mempool restarted: forgetting %zu seen txs", txg_seen_count(self->g));
        txg_seen_clear(self->g);
        self->epoch = r->pool_epoch;
    }
    for (size_t k = 0; k < j->n_fw; k++) {
        const char *res = "unavailable"; /* storage did not answer (restarting) */
        if (r && k < r->n_results && r->results[k])
            res = r->results[k];
        /* Results must outlive the reply: map to our own static names. */
        res = pm_tx_result_name(res);
        j->results[j->fw_at[k]] = res;
        on_result(pm, self, j, k, res);
    }
    answer(pm, j, r ? r->head_height : pm->head_height);
    job_clear(j);
}

/* ---- submissions ---- */

static job_t *job_new(pm_txs_t *self, job_kind_t kind, const uint8_t *route, size_t route_len,
                      uint64_t reply_id, const char *origin, size_t n)
{
    if (route_len > PM_CLIENT_ID_MAX)
        return NULL;
    for (size_t i = 0; i < PM_TX_JOBS; i++) {
        job_t *j = &self->jobs[i];
        if (j->kind != JOB_FREE)
            continue;
        j->results = calloc(n ? n : 1, sizeof *j->results);
        j->fw = calloc(n ? n : 1, sizeof *j->fw);
        j->fw_at = calloc(n ? n : 1, sizeof *j->fw_at);
        if (!j->results || !j->fw || !j->fw_at) {
            job_clear(j);
            return NULL;
        }
        j->kind = kind;
        j->tag = ++self->next_tag;
        memcpy(j->route, route, route_len);
        j->route_len = route_len;
        j->reply_id = reply_id;
        j->n = n;
        snprintf(j->origin, sizeof j->origin, "%s", origin ? origin : "");
        return j;
    }
    return NULL;
}

static int forward_copy(job_t *j, size_t at, const ProtobufCBinaryData *tx)
{
    uint8_t *copy = malloc(tx->len ? tx->len : 1);
    if (!copy)
        return -1;
    memcpy(copy, tx->data, tx->len);
    j->fw[j->n_fw] = (ProtobufCBinaryData){tx->len, copy};
    j->fw_at[j->n_fw++] = at;
    return 0;
}

/* Send the forwarded txs to storage; answer at once if none is left. */
static void dispatch(pm_t *pm, pm_txs_t *self, job_t *j)
{
    if (j->n_fw == 0) {
        answer(pm, j, pm->head_height);
        job_clear(j);
        return;
    }
    Alys__Mempool__SubmitTx st = ALYS__MEMPOOL__SUBMIT_TX__INIT;
    st.n_txs = j->n_fw;
    st.txs = j->fw;
    st.origin = j->origin;
    Alys__Mempool__MempoolMsg msg = ALYS__MEMPOOL__MEMPOOL_MSG__INIT;
    msg.msg_case = ALYS__MEMPOOL__MEMPOOL_MSG__MSG_SUBMIT_TX;
    msg.submit_tx = &st;
    alys_env_t env = ALYS__BUS__ENVELOPE__INIT;
    env.body_case = ALYS__BUS__ENVELOPE__BODY_MEMPOOL;
    env.mempool = &msg;
    if (pm_storage_request_env(pm, &env, PM_STORE_TIMEOUT_MS, on_storage, self, j->tag) != 0)
        on_storage(pm, self, j->tag, NULL); /* answers "unavailable" */
}

void pm_tx_on_wire(pm_t *pm, const uint8_t *route, size_t route_len, const char *origin,
                   const alys_wire_msg_t *m)
{
    pm_txs_t *self = pm->txs;
    const Alys__Wire__SubmitTx *st = m->submit_tx;
    size_t bytes = 0;
    for (size_t i = 0; i < st->n_txs; i++)
        bytes += st->txs[i].len;
    alys_metric_add(pm->metrics, "alys_tx_gossip_received_total", NULL,
                    "Transactions received over the wire (peers and clients)", (double) st->n_txs);
    if (!txg_take(self->g, route, route_len, bytes, pm_mono(pm))) {
        dropped(pm, "rate_limited", st->n_txs);
        wire_error(pm, route, route_len, m->request_id,
                   ALYS__WIRE__WIRE_ERROR__CODE__RATE_LIMITED, "over the transaction budget");
        return;
    }
    job_t *j = job_new(self, JOB_WIRE, route, route_len, m->request_id, origin, st->n_txs);
    if (!j) {
        wire_error(pm, route, route_len, m->request_id, ALYS__WIRE__WIRE_ERROR__CODE__UNAVAILABLE,
                   "too many transaction submissions in flight");
        return;
    }
    size_t seen = 0;
    for (size_t i = 0; i < st->n_txs; i++) {
        alys_tx_t t;
        alys_hash_t id;
        if (alys_tx_decode(st->txs[i].data, st->txs[i].len, &t, NULL) != 0) {
            j->results[i] = "undecodable";
            txg_charge(self->g, route, route_len, PM_TX_BAD_FACTOR * st->txs[i].len, pm_mono(pm));
            continue;
        }
        alys_tx_id(&t, id);
        if (txg_seen(self->g, id)) {
            j->results[i] = "seen";
            seen++;
        } else if (forward_copy(j, i, &st->txs[i]) != 0) {
            j->results[i] = "no_memory";
        }
    }
    if (seen)
        dropped(pm, "seen", seen);
    dispatch(pm, self, j);
}

void pm_tx_on_bus(pm_t *pm, const uint8_t *route, size_t route_len, uint64_t corr_id,
                  const char *sender, const Alys__Mempool__SubmitTx *st)
{
    pm_txs_t *self = pm->txs;
    if (st->n_txs > PM_TX_MAX_BUS) {
        pm_tx_bus_error(pm, route, route_len, corr_id, ALYS_ERR_BAD_REQUEST, "too many txs");
        return;
    }
    job_t *j = job_new(self, JOB_BUS, route, route_len, corr_id, sender, st->n_txs);
    if (!j) {
        pm_tx_bus_error(pm, route, route_len, corr_id, ALYS_ERR_BUSY,
                        "too many transaction submissions in flight");
        return;
    }
    for (size_t i = 0; i < st->n_txs; i++)
        if (forward_copy(j, i, &st->txs[i]) != 0)
            j->results[i] = "no_memory";
    dispatch(pm, self, j);
}

void pm_tx_bus_error(pm_t *pm, const uint8_t *route, size_t route_len, uint64_t corr_id,
                     uint32_t code, const char *why)
{
    if (!corr_id || !pm->port.mailbox_reply)
        return;
    Alys__Bus__Error e = ALYS__BUS__ERROR__INIT;
    e.code = code;
    e.message = (char *) why;
    alys_env_t env = ALYS__BUS__ENVELOPE__INIT;
    env.body_case = ALYS__BUS__ENVELOPE__BODY_ERROR;
    env.error = &e;
    if (pm->port.mailbox_reply(pm->port.ctx, route, route_len, corr_id, &env) != 0)
        log_debug("error to a bus client dropped (gone)");
}

/* ---- relay ---- */

void pm_tx_flush(pm_t *pm)
{
    pm_txs_t *self = pm->txs;
    size_t queued = txg_queued(self->g);
    if (queued == 0)
        return;
    int slots[PM_CONN_MAX];
    const char *ids[PM_CONN_MAX];
    size_t np = pn_ready_peers(pm, slots, ids, PM_CONN_MAX);
    /* With no peer ready (a node still dialling, or between peers) the txs
     * wait for the first one: clearing them would lose a tx submitted just
     * after start for good. The queue is bounded (PM_TX_QUEUE). */
    if (np == 0)
        return;
    ProtobufCBinaryData batch[ALYS_WIRE_MAX_TXS];
    for (size_t p = 0; p < np; p++) {
        char key[TXG_KEY_MAX];
        int klen = snprintf(key, sizeof key, "out/%s", ids[p]);
        size_t pos = 0, n;
        while ((n = txg_batch(self->g, ids[p], &pos, batch, ALYS_WIRE_MAX_TXS)) > 0) {
            size_t bytes = 0;
            for (size_t i = 0; i < n; i++)
                bytes += batch[i].len;
            if (klen <= 0 || !txg_take(self->g, key, (size_t) klen, bytes, pm_mono(pm))) {
                dropped(pm, "peer_budget", n);
                continue;
            }
            Alys__Wire__SubmitTx st = ALYS__WIRE__SUBMIT_TX__INIT;
            st.n_txs = n;
            st.txs = batch;
            alys_wire_msg_t m = ALYS__WIRE__WIRE_MSG__INIT;
            m.body_case = ALYS__WIRE__WIRE_MSG__BODY_SUBMIT_TX; /* request_id 0: no answer */
            m.submit_tx = &st;
            if (pm->port.peer_send(pm->port.ctx, slots[p], &m) != 0) {
                dropped(pm, "send_failed", n);
                continue;
            }
            alys_metric_add(pm->metrics, "alys_tx_gossip_relayed_total", NULL,
                            "Transaction copies relayed to peers", (double) n);
        }
    }
    txg_queue_clear(self->g);
}

const char *pm_tx_result_name(const char *r)
{
    static const char *const names[] = {
        "added",         "added_evicted", "duplicate",    "nonce_taken",
        "bad_signature", "nonce_too_low", "nonce_gap",    "insufficient_balance",
        "sender_full",   "pool_full",     "state_error",  "no_memory",
        "undecodable",   "seen",          "rate_limited", "unavailable"};
    for (size_t i = 0; r && i < sizeof names / sizeof names[0]; i++)
        if (strcmp(r, names[i]) == 0)
            return names[i];
    return "unknown";
}
