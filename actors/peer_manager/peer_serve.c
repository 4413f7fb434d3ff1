/*  peer_serve.c: the server side of the wire protocol (see peer_serve.h). */
#include "peer_serve.h"

#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "pm_admit.h"
#include "util.h"

typedef struct {
    uint64_t job_id;              /* 0 = free; the storage request's tag */
    uint8_t id[PM_CLIENT_ID_MAX]; /* the client's routing id */
    size_t id_len;
    uint64_t request_id; /* the client's wire request id */
    bool headers;
    uint64_t start;
    uint32_t count;
    uint64_t next;              /* next height to read */
    ProtobufCBinaryData *items; /* headers collected so far (owned copies) */
    size_t n;
} job_t;

struct ps {
    pm_t *pm;
    serve_limiter_t *limiter;
    pm_clients_t *clients; /* PS_MAX_CLIENTS */
    job_t jobs[PS_MAX_JOBS];
    uint64_t next_job;
};


ps_t *ps_new(pm_t *pm)
{
    ps_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->pm = pm;
    const alys_config_t *cfg = pm->cfg;
    if (!cfg->listen[0])
        return self; /* not serving: nothing else to make */
    self->clients = pm_clients_new(PS_MAX_CLIENTS);
    self->limiter = serve_limiter_new(cfg->serve_rate_limit, 0);
    if (!self->clients || !self->limiter)
        ps_destroy(&self);
    return self;
}

static void job_clear(job_t *j)
{
    for (size_t i = 0; j->items && i < j->n; i++)
        free(j->items[i].data);
    free(j->items);
    memset(j, 0, sizeof *j);
}

void ps_destroy(ps_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    ps_t *self = *self_p;
    pm_storage_cancel(self->pm, self);
    for (size_t i = 0; i < PS_MAX_JOBS; i++)
        job_clear(&self->jobs[i]);
    serve_limiter_destroy(&self->limiter);
    pm_clients_destroy(&self->clients);
    free(self);
    *self_p = NULL;
}

/* ---- sending ----------------------------------------------------------------- */

static void send_to(ps_t *self, const uint8_t *id, size_t id_len, const alys_wire_msg_t *m)
{
    pm_t *pm = self->pm;
    if (pm->port.client_send(pm->port.ctx, id, id_len, m) != 0)
        log_debug("answer to a peer dropped (gone, or over the limit)");
}

static void send_error(ps_t *self, const uint8_t *id, size_t id_len, uint64_t request_id,
                       Alys__Wire__WireError__Code code, const char *text)
{
    Alys__Wire__WireError e = ALYS__WIRE__WIRE_ERROR__INIT;
    e.code = code;
    e.message = (char *) text;
    alys_wire_msg_t m = ALYS__WIRE__WIRE_MSG__INIT;
    m.request_id = request_id;
    m.body_case = ALYS__WIRE__WIRE_MSG__BODY_ERROR;
    m.error = &e;
    send_to(self, id, id_len, &m);
    char labels[64];
    snprintf(labels, sizeof labels, "code=\"%d\"", (int) code);
    alys_metric_add(self->pm->metrics, "alys_peer_serve_errors_total", labels,
                    "Requests from peers answered with an error, by WireError code", 1);
}

/* ---- the handshake ---------------------------------------------------------- */

/* An inbound Status contradicted the key CURVE proved: a violation on the
 * key's record (the same record as when we dial it: a peer is its key). */
static void charge_key(pm_t *pm, const pm_client_t *c)
{
    int rc = peer_table_add(pm->table, c->key, c->listen, pm_now(pm));
    if (rc == PEER_OK || rc == PEER_ERR_EXISTS) {
        peer_outcome_t o = {.kind = PEER_OUTCOME_VIOLATION, .reason = "status contradicts its key"};
        pm_record(pm, c->key, &o);
    }
    alys_metric_add(pm->metrics, "alys_peer_key_mismatch_total", NULL,
                    "Handshakes whose Status contradicted the link's key", 1);
}

static void on_status(ps_t *self, pm_client_t *c, const alys_wire_msg_t *m, int64_t now)
{
    pm_t *pm = self->pm;
    Alys__Wire__Status ours;
    bool have = pm_status(pm, &ours);
    pm_serve_t s = pm_admit_status(c, m->status, have, pm->genesis_hash, pm->table, pm_now(pm), now);
    if (s.what == PM_SERVE_ERROR)
        send_error(self, c->id, c->id_len, m->request_id, s.code, s.why);
    if (s.refused) {
        log_warn("inbound peer %s (%s) refused: %s", c->node_id[0] ? c->node_id : "?",
                 c->listen[0] ? c->listen : "no listen endpoint", c->reason);
        pm->peerset_dirty = true;
    }
    if (s.violation)
        charge_key(pm, c);
    if (s.what != PM_SERVE_STATUS)
        return;
    alys_wire_msg_t r = ALYS__WIRE__WIRE_MSG__INIT;
    r.request_id = m->request_id;
    r.body_case = ALYS__WIRE__WIRE_MSG__BODY_STATUS;
    r.status = &ours;
    send_to(self, c->id, c->id_len, &r);
    if (s.learn)
        pn_learn_endpoint(pm, c->listen);
}

/* ---- serving ranges ---------------------------------------------------------- */

static void on_storage(pm_t *pm, void *arg, uint64_t tag, const alys_env_t *reply);

static job_t *job_by_id(ps_t *self, uint64_t job_id)
{
    for (size_t i = 0; i < PS_MAX_JOBS; i++)
        if (self->jobs[i].job_id == job_id)
            return &self->jobs[i];
    return NULL;
}

static int job_read(ps_t *self, job_t *j)
{
    uint64_t left = j->start + j->count - j->next;
    Alys__Storage__GetBlocks gb = ALYS__STORAGE__GET_BLOCKS__INIT;
    gb.start = j->next;
    gb.count = (uint32_t) (left < PS_STORAGE_CHUNK ? left : PS_STORAGE_CHUNK);
    gb.headers_only = j->headers;
    Alys__Storage__StorageMsg msg = ALYS__STORAGE__STORAGE_MSG__INIT;
    msg.msg_case = ALYS__STORAGE__STORAGE_MSG__MSG_GET_BLOCKS;
    msg.get_blocks = &gb;
    return pm_storage_request(self->pm, &msg, PM_STORE_TIMEOUT_MS, on_storage, self, j->job_id);
}

/* Send the answer: items up to the frame limit (truncated when cut). */
static void job_answer(ps_t *self, job_t *j, const ProtobufCBinaryData *items, size_t n)
{
    if (n == 0) {
        /* Our cached head was ahead of storage's (a rollback): nothing there. */
        send_error(self, j->id, j->id_len, j->request_id, ALYS__WIRE__WIRE_ERROR__CODE__NOT_FOUND,
                   "range above our head");
        return;
    }
    size_t fit = alys_wire_fit_items(items, n, 64, ALYS_MAX_MSG_BYTES);
    /* Fewer than asked while more exist below our head: only the frame
     * limit (ours or storage's) cuts an answer short. */
    bool truncated = fit < n || (n < j->count && j->start + n <= self->pm->head_height);
    alys_wire_msg_t m = ALYS__WIRE__WIRE_MSG__INIT;
    Alys__Wire__Headers h = ALYS__WIRE__HEADERS__INIT;
    Alys__Wire__Blocks b = ALYS__WIRE__BLOCKS__INIT;
    m.request_id = j->request_id;
    if (j->headers) {
        h = (Alys__Wire__Headers){.base = h.base,
                                  .start = j->start,
                                  .n_headers = fit,
                                  .headers = (ProtobufCBinaryData *) items,
                                  .truncated = truncated};
        m.body_case = ALYS__WIRE__WIRE_MSG__BODY_HEADERS;
        m.headers = &h;
    } else {
        b = (Alys__Wire__Blocks){.base = b.base,
                                 .start = j->start,
                                 .n_blocks = fit,
                                 .blocks = (ProtobufCBinaryData *) items,
                                 .truncated = truncated};
        m.body_case = ALYS__WIRE__WIRE_MSG__BODY_BLOCKS;
        m.blocks = &b;
    }
    send_to(self, j->id, j->id_len, &m);
    alys_metric_add(self->pm->metrics, "alys_peer_served_items_total",
                    j->headers ? "kind=\"headers\"" : "kind=\"blocks\"",
                    "Headers and blocks served to peers", (double) fit);
}

static void job_fail(ps_t *self, job_t *j, const char *why)
{
    send_error(self, j->id, j->id_len, j->request_id, ALYS__WIRE__WIRE_ERROR__CODE__UNAVAILABLE, why);
    job_clear(j);
}

/* Keep copies of a header chunk (a second read may follow). */
static int job_keep(job_t *j, const Alys__Storage__Blocks *b)
{
    size_t total = j->n + b->n_blocks;
    if (total > j->count)
        return -1;
    ProtobufCBinaryData *grown = realloc(j->items, (total ? total : 1) * sizeof *grown);
    if (!grown)
        return -1;
    j->items = grown;
    for (size_t i = 0; i < b->n_blocks; i++) {
        ProtobufCBinaryData *it = &j->items[j->n];
        it->len = b->blocks[i].len;
        it->data = malloc(it->len ? it->len : 1);
        if (!it->data)
            return -1;
        memcpy(it->data, b->blocks[i].data, it->len);
        j->n++;
    }
    return 0;
}

static void on_storage(pm_t *pm, void *arg, uint64_t tag, const alys_env_t *reply)
{
    ps_t *self = arg;
    job_t *j = job_by_id(self, tag);
    if (!j)
        return;
    if (!reply || reply->body_case != ALYS__BUS__ENVELOPE__BODY_STORAGE ||
        reply->storage->msg_case != ALYS__STORAGE__STORAGE_MSG__MSG_BLOCKS) {
        job_fail(self, j, reply ? "storage refused the read" : "storage not answering");
        return;
    }
    const Alys__Storage__Blocks *b = reply->storage->blocks;
    if (b->n_blocks > 0 && b->start != j->next) {
        job_fail(self, j, "storage answered another range");
        return;
    }
    if (!j->headers) {
        job_answer(self, j, b->blocks, b->n_blocks);
        job_clear(j);
        return;
    }
    if (job_keep(j, b) != 0) {
        job_fail(self, j, "out of memory");
        return;
    }
    j->next += b->n_blocks;
    bool more = b->n_blocks == PS_STORAGE_CHUNK && j->n < j->count && j->next <= pm->head_height;
    if (more && job_read(self, j) == 0)
        return;
    job_answer(self, j, j->items, j->n);
    job_clear(j);
}

static job_t *job_new(ps_t *self, const pm_client_t *c, uint64_t request_id, bool headers,
                      uint64_t start, uint32_t count)
{
    for (size_t i = 0; i < PS_MAX_JOBS; i++) {
        job_t *j = &self->jobs[i];
        if (j->job_id)
            continue;
        *j = (job_t){.job_id = ++self->next_job,
                     .request_id = request_id,
                     .headers = headers,
                     .start = start,
                     .count = count,
                     .next = start,
                     .id_len = c->id_len};
        memcpy(j->id, c->id, c->id_len);
        return j;
    }
    return NULL;
}

static bool read_free(const ps_t *self)
{
    for (size_t i = 0; i < PS_MAX_JOBS; i++)
        if (!self->jobs[i].job_id)
            return true;
    return false;
}

/* Admitted (pm_admit): read it from storage. */
static void serve_range(ps_t *self, pm_client_t *c, const alys_wire_msg_t *m)
{
    bool headers = m->body_case == ALYS__WIRE__WIRE_MSG__BODY_GET_HEADERS;
    uint64_t start = headers ? m->get_headers->start : m->get_blocks->start;
    uint32_t count = headers ? m->get_headers->count : m->get_blocks->count;
    job_t *j = job_new(self, c, m->request_id, headers, start, count);
    if (!j)
        send_error(self, c->id, c->id_len, m->request_id,
                   ALYS__WIRE__WIRE_ERROR__CODE__UNAVAILABLE, "too many reads in flight");
    else if (job_read(self, j) != 0)
        job_fail(self, j, "storage not reachable");
}

static void serve_peers(ps_t *self, pm_client_t *c, const alys_wire_msg_t *m)
{
    const char *eps[ALYS_WIRE_MAX_ENDPOINTS];
    size_t n = pn_endpoints(self->pm, eps, ALYS_WIRE_MAX_ENDPOINTS);
    Alys__Wire__Peers p = ALYS__WIRE__PEERS__INIT;
    p.n_endpoints = n;
    p.endpoints = (char **) eps;
    alys_wire_msg_t r = ALYS__WIRE__WIRE_MSG__INIT;
    r.request_id = m->request_id;
    r.body_case = ALYS__WIRE__WIRE_MSG__BODY_PEERS;
    r.peers = &p;
    send_to(self, c->id, c->id_len, &r);
}

static void forward_new_block(ps_t *self, pm_client_t *c, const alys_wire_msg_t *m)
{
    Alys__Sync__ProcessBlockBatch pbb = ALYS__SYNC__PROCESS_BLOCK_BATCH__INIT;
    ProtobufCBinaryData block = m->new_block->block;
    pbb.n_blocks = 1;
    pbb.blocks = &block;
    pbb.from_peer = c->node_id;
    Alys__Sync__SyncMsg msg = ALYS__SYNC__SYNC_MSG__INIT;
    msg.msg_case = ALYS__SYNC__SYNC_MSG__MSG_PROCESS_BLOCK_BATCH;
    msg.process_block_batch = &pbb;
    if (pm_send_sync_msg(self->pm, &msg) != 0)
        log_debug("cannot forward a new block from %s", c->node_id);
}

/* One frame from a client: m decoded, or NULL (err). */
static void handle(ps_t *self, pm_client_t *c, const alys_wire_msg_t *m, const char *err, int64_t now)
{
    pm_serve_t s = pm_admit(c, self->limiter, m, err, self->pm->head_height, read_free(self), now);
    uint64_t request_id = m ? m->request_id : 0;
    switch (s.what) {
    case PM_SERVE_ERROR: send_error(self, c->id, c->id_len, request_id, s.code, s.why); break;
    case PM_SERVE_STATUS: on_status(self, c, m, now); break;
    case PM_SERVE_RANGE: serve_range(self, c, m); break;
    case PM_SERVE_PEERS: serve_peers(self, c, m); break;
    case PM_SERVE_NEW_BLOCK: forward_new_block(self, c, m); break;
    default: break;
    }
}

void ps_on_frame(pm_t *pm, const uint8_t *id, size_t id_len, const char *key, const uint8_t *data,
                 size_t len)
{
    ps_t *self = pm->serve;
    if (!self || !self->clients)
        return; /* not serving */
    int64_t now = pm_mono(pm);
    pm_client_t *c = pm_clients_get(self->clients, id, id_len, now);
    if (!c)
        return;
    pm_client_set_key(c, key);
    char err[160];
    alys_wire_msg_t *m = alys_wire_decode(data, len, err, sizeof err);
    handle(self, c, m, err, now);
    alys_wire_free(&m);
}

size_t ps_refused(pm_t *pm, pm_unlisted_t *out, size_t cap)
{
    ps_t *self = pm->serve;
    return self ? pm_list_clients(self->clients, pm_mono(pm), out, cap) : 0;
}
