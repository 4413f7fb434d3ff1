/*  peer_serve.c: the server side of the wire protocol (see peer_serve.h). */
#include "peer_serve.h"

#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "pm_admit.h"
#include "pm_cost.h"
#include "pm_judge.h"
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
    uint64_t reserve; /* bytes reserved against the client's budget; 0 = given back */
    /* A GetHeaders with a locator: storage places the answer (its Blocks
     * start); the hashes are owned copies until then. */
    bool located;
    uint8_t (*locator)[ALYS_HASH_LEN];
    size_t n_locator;
} job_t;

struct ps {
    pm_t *pm;
    serve_limiter_t *limiter;
    pm_ledger_t *ledger;   /* misbehaviour of inbound clients (pm_cost.h) */
    pm_clients_t *clients; /* PS_MAX_CLIENTS */
    job_t jobs[PS_MAX_JOBS];
    uint64_t next_job;
    pm_inbound_cfg_t budget;    /* from [network] */
    pm_inbound_totals_t totals; /* bytes owed, BUSY, evictions */
    pm_inbound_cand_t *cands;   /* PS_MAX_CLIENTS: eviction scratch */
    uint64_t item_max[2];       /* largest block [0] / header [1] served: the reservations */
};

#define MIB (1024ull * 1024ull)


static void declare_counters(ps_t *self);

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
    self->cands = calloc(PS_MAX_CLIENTS, sizeof *self->cands);
    self->budget = (pm_inbound_cfg_t){.max_peers = cfg->max_inbound_peers,
                                      .per_address = cfg->max_inbound_per_address,
                                      .max_requests = cfg->serve_max_requests,
                                      .client_bytes = cfg->serve_client_mb * MIB,
                                      .total_bytes = cfg->serve_memory_mb * MIB};
    const peer_table_config_t *tc = peer_table_config(pm->table);
    self->ledger = pm_ledger_new(PS_MAX_CLIENTS, tc->ban_score, tc->half_life_ms);
    if (!self->clients || !self->limiter || !self->ledger || !self->cands) {
        ps_destroy(&self);
        return NULL;
    }
    serve_limiter_set_byte_rate(self->limiter, (uint64_t) cfg->serve_byte_rate_kb * 1024u);
    declare_counters(self);
    return self;
}

static void job_clear(job_t *j)
{
    for (size_t i = 0; j->items && i < j->n; i++)
        free(j->items[i].data);
    free(j->items);
    free(j->locator);
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
    pm_ledger_destroy(&self->ledger);
    pm_clients_destroy(&self->clients);
    free(self->cands);
    free(self);
    *self_p = NULL;
}

/* ---- sending ----------------------------------------------------------------- */

/* The counters of serving (declared at 0 when serving starts). */
static const struct {
    const char *name, *help;
} s_counters[] = {
    {"alys_peer_serve_frames_total", "Frames received from inbound clients"},
    {"alys_peer_serve_busy_total",
     "Range requests answered BUSY: the client's credit or a byte budget was spent"},
    {"alys_peer_serve_dropped_total",
     "Answers to inbound clients not sent: over a byte budget, or the socket full"},
    {"alys_peer_inbound_evicted_total", "Inbound clients evicted to make room for a newcomer"},
    {"alys_peer_inbound_dropped_total",
     "Stalled inbound clients dropped because the total serving budget was spent"},
};
#define REFUSED_HELP "Inbound clients refused: slots full (nobody to evict), or per-address limit"

static void count_by(ps_t *self, const char *name, double by)
{
    for (size_t i = 0; i < sizeof s_counters / sizeof s_counters[0]; i++)
        if (strcmp(s_counters[i].name, name) == 0)
            alys_metric_add(self->pm->metrics, name, NULL, s_counters[i].help, by);
}

static void count(ps_t *self, const char *name)
{
    count_by(self, name, 1);
}

/* At 0 from the start, so that rate() works before the first event. */
static void declare_counters(ps_t *self)
{
    for (size_t i = 0; i < sizeof s_counters / sizeof s_counters[0]; i++)
        count_by(self, s_counters[i].name, 0);
    alys_metric_add(self->pm->metrics, "alys_peer_inbound_refused_total",
                    "reason=\"per_address\"", REFUSED_HELP, 0);
    alys_metric_add(self->pm->metrics, "alys_peer_inbound_refused_total", "reason=\"slots_full\"",
                    REFUSED_HELP, 0);
}

static void drop_stalled(ps_t *self, int64_t now);

/* Hand m to the client's socket if its budgets allow (pm_inbound.h);
 * range: it answers a range request. 0 handed, -1 not. */
static int send_to(ps_t *self, const uint8_t *id, size_t id_len, const alys_wire_msg_t *m, bool range)
{
    pm_t *pm = self->pm;
    pm_client_t *c = pm_clients_find(self->clients, id, id_len);
    uint64_t bytes = alys__wire__wire_msg__get_packed_size(m);
    if (!c || !pm_inbound_may_send(&self->budget, &c->in, &self->totals, bytes, range)) {
        if (c && pm_inbound_total_spent(&self->budget, &self->totals, bytes))
            drop_stalled(self, pm_mono(pm));
        self->totals.dropped++;
        count(self, "alys_peer_serve_dropped_total");
        return -1;
    }
    int rc = pm->port.client_send(pm->port.ctx, id, id_len, m, range);
    if (rc != 0) {
        /* Gone, or its pipe is full (the send high-water mark): the answer
         * is dropped, never parked; the client asks again. */
        log_debug("answer to an inbound client dropped (%s)",
                  rc == PM_SEND_FULL ? "pipe full" : "gone");
        self->totals.dropped++;
        count(self, "alys_peer_serve_dropped_total");
        return -1;
    }
    pm_inbound_charge(&c->in, &self->totals, bytes, range, pm_mono(pm));
    return 0;
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
    send_to(self, id, id_len, &m, false);
    char labels[64];
    snprintf(labels, sizeof labels, "code=\"%d\"", (int) code);
    alys_metric_add(self->pm->metrics, "alys_peer_serve_errors_total", labels,
                    "Requests from peers answered with an error, by WireError code", 1);
}

static void send_busy(ps_t *self, const uint8_t *id, size_t id_len, uint64_t request_id,
                      const char *why)
{
    self->totals.busy++;
    count(self, "alys_peer_serve_busy_total");
    send_error(self, id, id_len, request_id, ALYS__WIRE__WIRE_ERROR__CODE__BUSY, why);
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
    send_to(self, c->id, c->id_len, &r, false);
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
    ProtobufCBinaryData loc[ALYS_LOCATOR_MAX];
    for (size_t i = 0; i < j->n_locator && i < ALYS_LOCATOR_MAX; i++)
        loc[i] = (ProtobufCBinaryData){ALYS_HASH_LEN, j->locator[i]};
    /* Until placed, the read carries the locator (storage ignores start). */
    gb.n_locator = j->n_locator < ALYS_LOCATOR_MAX ? j->n_locator : ALYS_LOCATOR_MAX;
    gb.locator = gb.n_locator ? loc : NULL;
    Alys__Storage__StorageMsg msg = ALYS__STORAGE__STORAGE_MSG__INIT;
    msg.msg_case = ALYS__STORAGE__STORAGE_MSG__MSG_GET_BLOCKS;
    msg.get_blocks = &gb;
    return pm_storage_request(self->pm, &msg, PM_STORE_TIMEOUT_MS, on_storage, self, j->job_id);
}

/* The read is over: its reservation and credit come back (once). */
static void job_release(ps_t *self, job_t *j)
{
    if (!j->reserve)
        return;
    pm_client_t *c = pm_clients_find(self->clients, j->id, j->id_len);
    pm_inbound_read_end(c ? &c->in : NULL, &self->totals, j->reserve);
    j->reserve = 0;
}

/* Send the answer: items up to the frame limit (truncated when cut). */
static void job_answer(ps_t *self, job_t *j, const ProtobufCBinaryData *items, size_t n)
{
    /* The answer replaces the reservation (send_to checks it). */
    job_release(self, j);
    if (n == 0 && !j->located) {
        /* Our cached head was ahead of storage's (a rollback): nothing there. */
        send_error(self, j->id, j->id_len, j->request_id, ALYS__WIRE__WIRE_ERROR__CODE__NOT_FOUND,
                   "range above our head");
        return;
    }
    size_t fit = alys_wire_fit_items(items, n, 64, ALYS_MAX_MSG_BYTES);
    for (size_t i = 0; i < fit; i++)
        if (items[i].len > self->item_max[j->headers])
            self->item_max[j->headers] = items[i].len;
    /* Fewer than asked while more exist below our head: only the frame
     * limit (ours or storage's) cuts an answer short. An empty (located)
     * answer never is: an asker takes that for a violation. */
    bool truncated = fit > 0 && (fit < n || (n < j->count && j->start + n <= self->pm->head_height));
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
    if (send_to(self, j->id, j->id_len, &m, true) != 0) {
        send_busy(self, j->id, j->id_len, j->request_id, "over the bytes owed budget");
        return;
    }
    alys_metric_add(self->pm->metrics, "alys_peer_served_items_total",
                    j->headers ? "kind=\"headers\"" : "kind=\"blocks\"",
                    "Headers and blocks served to peers", (double) fit);
}

static void job_end(ps_t *self, job_t *j)
{
    job_release(self, j);
    job_clear(j);
}

static void job_fail(ps_t *self, job_t *j, const char *why)
{
    send_error(self, j->id, j->id_len, j->request_id, ALYS__WIRE__WIRE_ERROR__CODE__UNAVAILABLE, why);
    job_end(self, j);
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

/* Storage answered a located read: the answer starts where it says (the
 * height above the first locator hash on our chain, at least 1); later
 * reads continue from there without the locator. */
static int place(job_t *j, const Alys__Storage__Blocks *b)
{
    if (b->start == 0 || b->start > UINT64_MAX - j->count)
        return -1;
    j->start = j->next = b->start;
    free(j->locator);
    j->locator = NULL;
    j->n_locator = 0;
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
    if (j->n_locator && place(j, b) != 0) {
        job_fail(self, j, "storage answered another range");
        return;
    }
    if (b->n_blocks > 0 && b->start != j->next) {
        job_fail(self, j, "storage answered another range");
        return;
    }
    if (!j->headers) {
        job_answer(self, j, b->blocks, b->n_blocks);
        job_end(self, j);
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
    job_end(self, j);
}

static job_t *job_new(ps_t *self, pm_client_t *c, uint64_t request_id, bool headers,
                      uint64_t start, uint32_t count, uint64_t reserve)
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
        j->reserve = reserve;
        pm_inbound_read_start(&c->in, &self->totals, reserve);
        return j;
    }
    return NULL;
}

/* Keep a copy of the locator (the request is gone when storage answers);
 * the decoder bounded it (wire/wire.h). */
static int job_locate(job_t *j, const Alys__Wire__GetHeaders *gh)
{
    size_t n = gh->n_locator < ALYS_LOCATOR_MAX ? gh->n_locator : ALYS_LOCATOR_MAX;
    if (!(j->locator = malloc(n * ALYS_HASH_LEN)))
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (gh->locator[i].len != ALYS_HASH_LEN)
            return -1;
        memcpy(j->locator[i], gh->locator[i].data, ALYS_HASH_LEN);
    }
    j->n_locator = n;
    j->located = true;
    return 0;
}

static bool read_free(const ps_t *self)
{
    for (size_t i = 0; i < PS_MAX_JOBS; i++)
        if (!self->jobs[i].job_id)
            return true;
    return false;
}

static void inbound_decide(ps_t *self, pm_client_t *c, pm_inbound_state_t st, int64_t now);

/* The total budget is spent: drop the stalled client owing the most (its
 * bytes come back when its connection is closed). */
static void drop_stalled(ps_t *self, int64_t now)
{
    pm_client_t *worst = NULL, *c;
    for (size_t i = 0; (c = pm_clients_at(self->clients, i)); i++)
        if (c->used && c->in.state == PM_INBOUND_ADMITTED && pm_inbound_stalled(&c->in, now) &&
            (!worst || c->in.owed > worst->in.owed))
            worst = c;
    if (!worst)
        return;
    log_info("inbound client %s (%s) stalled owing %llu bytes: dropped", worst->node_id,
             worst->in.addr[0] ? worst->in.addr : "address unknown",
             (unsigned long long) worst->in.owed);
    inbound_decide(self, worst, PM_INBOUND_EVICTED, now); /* closes its connection */
    count(self, "alys_peer_inbound_dropped_total");
}

/* Admitted (pm_admit): read it from storage. */
static void serve_range(ps_t *self, pm_client_t *c, const alys_wire_msg_t *m)
{
    bool headers = m->body_case == ALYS__WIRE__WIRE_MSG__BODY_GET_HEADERS;
    bool located = headers && m->get_headers->n_locator > 0;
    /* Located: 1 until storage places it (its reads count from there). */
    uint64_t start = located ? 1 : headers ? m->get_headers->start : m->get_blocks->start;
    uint32_t count = headers ? m->get_headers->count : m->get_blocks->count;
    uint64_t reserve = pm_inbound_reserve(count, self->item_max[headers], ALYS_MAX_MSG_BYTES);
    if (!pm_inbound_may_request(&self->budget, &c->in, &self->totals, reserve)) {
        send_busy(self, c->id, c->id_len, m->request_id,
                  "over the serving budget: read the answers owed first");
        if (pm_inbound_total_spent(&self->budget, &self->totals, reserve))
            drop_stalled(self, pm_mono(self->pm));
        return;
    }
    job_t *j = job_new(self, c, m->request_id, headers, start, count, reserve);
    if (!j)
        send_error(self, c->id, c->id_len, m->request_id,
                   ALYS__WIRE__WIRE_ERROR__CODE__UNAVAILABLE, "too many reads in flight");
    else if (located && job_locate(j, m->get_headers) != 0)
        job_fail(self, j, "out of memory");
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
    send_to(self, c->id, c->id_len, &r, false);
}

/* NewBlock pushed by a client: kept for block gossip (see peer_net.c). */
static void forward_new_block(ps_t *self, pm_client_t *c, const alys_wire_msg_t *m)
{
    pm_stash_new_block(self->pm, c->node_id, &m->new_block->block);
}

/* ---- misbehaviour ------------------------------------------------------------- */

/* A frame outside any exchange from client c (who: its ban id): its ledger
 * pays (pm_cost.h's table); at the ban score it is banned in the peer
 * table's list (persisted, shown by alysctl peers) and refused: true. */
static bool bad(ps_t *self, pm_client_t *c, const char *who, pm_bad_t what, size_t len,
                const char *detail, int64_t now)
{
    pm_t *pm = self->pm;
    char labels[64];
    snprintf(labels, sizeof labels, "side=\"inbound\",offence=\"%s\"", pm_bad_name(what));
    alys_metric_add(pm->metrics, "alys_peer_misbehaviour_total", labels,
                    "Frames outside any exchange, by side and offence (each costs its sender)", 1);
    double score;
    if (!pm_ledger_charge(self->ledger, c->id, c->id_len, pm_bad_cost(what, len), now, &score))
        return false;
    char why[PEER_REASON_MAX];
    snprintf(why, sizeof why, "misbehaviour (score %.0f): %s frame of %zu bytes%s%.32s", score,
             pm_bad_name(what), len, detail ? ": " : "", detail ? detail : "");
    if (peer_table_ban(pm->table, who, PM_INBOUND_BAN_MS, why, pm_now(pm)) == PEER_OK) {
        pm_bans_changed(&pm->bans);
        alys_metric_add(pm->metrics, "alys_peer_bans_total", NULL, "Peers banned", 1);
    }
    log_warn("inbound peer %s (node id %s) banned: %s", who, c->node_id[0] ? c->node_id : "?", why);
    c->state = PM_CLIENT_REFUSED;
    c->refused_at = now;
    snprintf(c->reason, sizeof c->reason, "banned: %.80s", why);
    pm->peerset_dirty = true;
    return true;
}

/* The client table is full and id is new: the least recently seen client
 * is forgotten, and its connection closed with it (a stranger must not
 * keep a descriptor we no longer account for). */
static void forget_oldest(ps_t *self, const uint8_t *id, size_t id_len)
{
    pm_client_t *old = pm_clients_recycled(self->clients, id, id_len);
    if (old && self->pm->port.client_drop)
        self->pm->port.client_drop(self->pm->port.ctx, old->id, old->id_len);
}

/* Who an inbound client is for scores and bans: the key CURVE proved for
 * its link; on a plaintext link (tests) its routing id. */
static void client_who(const uint8_t *id, size_t id_len, const char *key, char *who, size_t cap)
{
    if (key && key[0])
        snprintf(who, cap, "%s", key);
    else
        pm_judge_who_id(id, id_len, who, cap);
}

/* One frame from a client: m decoded, or NULL (err). */
static void handle(ps_t *self, pm_client_t *c, const alys_wire_msg_t *m, const char *err, int64_t now)
{
    pm_serve_t s = pm_admit(c, self->limiter, m, err, self->pm->head_height, read_free(self), now);
    uint64_t request_id = m ? m->request_id : 0;
    if (s.what == PM_SERVE_ERROR && s.code == ALYS__WIRE__WIRE_ERROR__CODE__RATE_LIMITED) {
        char who[ALYS_WIRE_ID_MAX];
        client_who(c->id, c->id_len, c->key, who, sizeof who);
        if (bad(self, c, who, PM_BAD_OVER_RATE, 0, NULL, now))
            return; /* banned just now: no more answers */
    }
    switch (s.what) {
    case PM_SERVE_ERROR: send_error(self, c->id, c->id_len, request_id, s.code, s.why); break;
    case PM_SERVE_STATUS: on_status(self, c, m, now); break;
    case PM_SERVE_RANGE: serve_range(self, c, m); break;
    case PM_SERVE_PEERS: serve_peers(self, c, m); break;
    case PM_SERVE_NEW_BLOCK:
        c->in.last_block_at = now;
        forward_new_block(self, c, m);
        break;
    case PM_SERVE_SUBMIT_TX: pm_tx_on_wire(self->pm, c->id, c->id_len, c->node_id, m); break;
    default: break;
    }
}

/* ---- admission ----------------------------------------------------------------- */

static const char *inbound_why(pm_inbound_state_t st)
{
    switch (st) {
    case PM_INBOUND_TOO_MANY_FROM_ADDRESS: return "too many clients from its address";
    case PM_INBOUND_FULL: return "inbound slots full";
    case PM_INBOUND_EVICTED: return "evicted for a newcomer";
    default: return "admitted";
    }
}

static void inbound_metric(ps_t *self, pm_inbound_state_t st)
{
    if (st == PM_INBOUND_EVICTED) {
        count(self, "alys_peer_inbound_evicted_total");
        return;
    }
    char labels[64];
    snprintf(labels, sizeof labels, "reason=\"%s\"",
             st == PM_INBOUND_FULL ? "slots_full" : "per_address");
    alys_metric_add(self->pm->metrics, "alys_peer_inbound_refused_total", labels, REFUSED_HELP, 1);
}

static void inbound_decide(ps_t *self, pm_client_t *c, pm_inbound_state_t st, int64_t now)
{
    pm_inbound_set(&c->in, st, &self->totals, now);
    if (st == PM_INBOUND_ADMITTED)
        return;
    log_info("inbound client %s (%s) %s", c->node_id[0] ? c->node_id : "?",
             c->in.addr[0] ? c->in.addr : "address unknown", inbound_why(st));
    inbound_metric(self, st);
    /* Refused or evicted: its connection is closed too, or strangers could
     * hold descriptors (and libzmq's buffers) without end, up to EMFILE. */
    if (self->pm->port.client_drop)
        self->pm->port.client_drop(self->pm->port.ctx, c->id, c->id_len);
}

/* Slots full: the candidates are the other live admitted clients. */
static bool evict_one(ps_t *self, const pm_client_t *newcomer, int64_t now)
{
    pm_t *pm = self->pm;
    size_t n = 0;
    pm_client_t *c;
    for (size_t i = 0; (c = pm_clients_at(self->clients, i)); i++) {
        if (c == newcomer || !pm_inbound_live(&c->in, c->last_seen, now))
            continue;
        pm_inbound_cand_t *k = &self->cands[n++];
        *k = (pm_inbound_cand_t){.handle = i,
                                 .connected_at = c->in.connected_at,
                                 .last_block_at = c->in.last_block_at};
        pm_inbound_group(c->in.addr, k->group, sizeof k->group);
        if (c->node_id[0] && c->node_id[0] != '?' &&
            peer_table_score(pm->table, c->node_id, pm_now(pm), &k->score) != 0)
            k->score = 0;
    }
    long v = pm_inbound_pick_victim(self->cands, n);
    if (v < 0)
        return false;
    inbound_decide(self, pm_clients_at(self->clients, self->cands[v].handle), PM_INBOUND_EVICTED, now);
    return true;
}

/* A client speaking for the first time (or after PM_INBOUND_IDLE_MS of
 * silence): admit it, evicting the worst when slots are full, or refuse. */
static bool admit(ps_t *self, pm_client_t *c, int64_t now)
{
    size_t live = 0, from_addr = 0;
    pm_client_t *o;
    for (size_t i = 0; (o = pm_clients_at(self->clients, i)); i++) {
        if (o == c || !pm_inbound_live(&o->in, o->last_seen, now))
            continue;
        live++;
        from_addr += c->in.addr[0] && strcmp(o->in.addr, c->in.addr) == 0;
    }
    pm_inbound_state_t st = pm_inbound_admit(&self->budget, live, from_addr);
    if (st == PM_INBOUND_FULL && evict_one(self, c, now))
        st = PM_INBOUND_ADMITTED;
    inbound_decide(self, c, st, now);
    return st == PM_INBOUND_ADMITTED;
}

void ps_on_frame(pm_t *pm, const uint8_t *id, size_t id_len, const char *addr, const char *key,
                 const uint8_t *data, size_t len)
{
    ps_t *self = pm->serve;
    if (!self || !self->clients)
        return; /* not serving */
    int64_t now = pm_mono(pm);
    char who[ALYS_WIRE_ID_MAX];
    client_who(id, id_len, key, who, sizeof who);
    if (peer_table_is_banned(pm->table, who, NULL, pm_now(pm))) {
        alys_metric_add(pm->metrics, "alys_peer_banned_frames_total", NULL,
                        "Frames from banned inbound clients, dropped unread", 1);
        return;
    }
    count(self, "alys_peer_serve_frames_total");
    forget_oldest(self, id, id_len);
    pm_client_t *c = pm_clients_get(self->clients, id, id_len, now);
    if (!c)
        return;
    pm_client_set_key(c, key);
    if (addr && addr[0])
        snprintf(c->in.addr, sizeof c->in.addr, "%s", addr);
    if (pm_inbound_ignored(&c->in, now))
        return; /* refused or evicted: not even decoded */
    if (c->in.state == PM_INBOUND_ADMITTED && now - c->prev_seen >= PM_INBOUND_IDLE_MS)
        c->in.state = PM_INBOUND_NEW; /* its slot lapsed: admitted again, or not */
    if (c->in.state == PM_INBOUND_NEW && !admit(self, c, now))
        return;
    /* Bytes before decoding: a refused frame is not even decoded. */
    if (!serve_limiter_bytes(self->limiter, id, id_len, len, now)) {
        bad(self, c, who, PM_BAD_OVER_BYTES, len, NULL, now);
        return;
    }
    char err[160];
    alys_wire_msg_t *m = alys_wire_decode(data, len, err, sizeof err);
    pm_frame_t f = m ? pm_judge_frame(m, len, true) : PM_FRAME_OK;
    bool banned = false;
    if (!m)
        banned = bad(self, c, who, PM_BAD_UNDECODABLE, len, err, now);
    else if (f != PM_FRAME_OK)
        banned = bad(self, c, who, f == PM_FRAME_OVERSIZE ? PM_BAD_OVERSIZE : PM_BAD_WRONG_WAY,
                     len, alys_wire_body_name(m), now);
    /* Undecodable still gets its BAD_REQUEST within the rate limit, and a
     * response goes on to pm_admit (which ignores it, after its token); an
     * over-size frame is not served. */
    if (!banned && f != PM_FRAME_OVERSIZE)
        handle(self, c, m, err, now);
    alys_wire_free(&m);
}

void ps_on_parts(pm_t *pm, const uint8_t *id, size_t id_len, const char *key, size_t len)
{
    ps_t *self = pm->serve;
    if (!self || !self->clients)
        return;
    int64_t now = pm_mono(pm);
    char who[ALYS_WIRE_ID_MAX];
    client_who(id, id_len, key, who, sizeof who);
    if (id_len == 0 || peer_table_is_banned(pm->table, who, NULL, pm_now(pm)))
        return;
    pm_client_t *c = pm_clients_get(self->clients, id, id_len, now);
    if (c)
        bad(self, c, who, PM_BAD_SHAPE, len, "multi-part message", now);
}

void ps_on_taken(pm_t *pm, const uint8_t *id, size_t id_len, uint64_t bytes, bool range)
{
    ps_t *self = pm->serve;
    if (!self || !self->clients)
        return;
    pm_client_t *c = pm_clients_find(self->clients, id, id_len);
    pm_inbound_credit(c ? &c->in : NULL, &self->totals, bytes, range, pm_mono(pm));
}

void ps_tick(pm_t *pm)
{
    ps_t *self = pm->serve;
    if (!self || !self->clients)
        return;
    int64_t now = pm_mono(pm);
    size_t live = 0;
    pm_client_t *c;
    for (size_t i = 0; (c = pm_clients_at(self->clients, i)); i++)
        live += pm_inbound_live(&c->in, c->last_seen, now);
    alys_metric_set(pm->metrics, "alys_peer_serve_bytes_owed", NULL,
                    "Bytes of answers handed to the listen socket and not yet taken by it, all clients",
                    (double) self->totals.owed);
    alys_metric_set(pm->metrics, "alys_peer_serve_bytes_reserved", NULL,
                    "Bytes reserved by range reads in progress for inbound clients",
                    (double) self->totals.reserved);
    alys_metric_set(pm->metrics, "alys_peer_inbound_clients", NULL,
                    "Inbound clients holding a slot (admitted, heard from recently)", (double) live);
}

size_t ps_refused(pm_t *pm, pm_unlisted_t *out, size_t cap)
{
    ps_t *self = pm->serve;
    return self ? pm_list_clients(self->clients, pm_mono(pm), out, cap) : 0;
}

/* ---- gossip (peer_gossip.c), transactions (pm_tx.c) ----------------------------- */

size_t ps_ready_clients(pm_t *pm, size_t *idx, const char **ids, size_t cap)
{
    ps_t *self = pm->serve;
    size_t n = 0;
    if (!self || !self->clients)
        return 0;
    pm_client_t *c;
    for (size_t i = 0; n < cap && (c = pm_clients_at(self->clients, i)) != NULL; i++)
        if (c->used && c->state == PM_CLIENT_OK && strcmp(c->node_id, "?") != 0) {
            idx[n] = i;
            ids[n++] = c->node_id;
        }
    return n;
}

/* Pushes and answers outside a range go through the same budget as every
 * answer (send_to), so bytes owed stay exact. */
int ps_push(pm_t *pm, size_t idx, const alys_wire_msg_t *m)
{
    ps_t *self = pm->serve;
    pm_client_t *c = self && self->clients ? pm_clients_at(self->clients, idx) : NULL;
    if (!c || !c->used)
        return -1;
    return send_to(self, c->id, c->id_len, m, false);
}

int ps_send(pm_t *pm, const uint8_t *id, size_t id_len, const alys_wire_msg_t *m)
{
    ps_t *self = pm->serve;
    return self && self->clients ? send_to(self, id, id_len, m, false) : -1;
}

uint64_t ps_bytes_owed(pm_t *pm)
{
    ps_t *self = pm->serve;
    return self ? self->totals.owed : 0;
}
