/*  peer_net.c: the client side of the wire protocol (see peer_net.h): moves
 *  bytes between the peer DEALERs and the pure cores (pm_addrbook.h decides
 *  what to dial, pm_conn.h the connections, pm_reqs.h holds the requests,
 *  pm_cost.h prices how each ends, wire/wire.h checks the answers). */
#include "peer_net.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "log.h"
#include "nodeaddr.h"
#include "pm_addrbook.h"
#include "pm_flow.h"
#include "pm_judge.h"
#include "util.h"

struct pn {
    pm_t *pm;
    pm_conns_t *book;     /* the connection slots */
    pm_addrbook_t *addrs; /* every endpoint heard of: what to dial */
    pm_reqs_t *reqs;
    pm_late_t late; /* requests that ended unanswered: their answers are late */
    bool started;
};

static void apply(pm_t *pm, int slot, pm_conn_fx_t fx, int64_t now);

pn_t *pn_new(pm_t *pm)
{
    pn_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->pm = pm;
    /* The bucket key: random per process, so nobody can aim at a bucket. */
    uint8_t key[16];
    if (getrandom(key, sizeof key, 0) != (ssize_t) sizeof key) {
        uint64_t mix = (uint64_t) getpid() * 0x9e3779b97f4a7c15ULL ^ (uint64_t) (uintptr_t) self;
        for (size_t i = 0; i < sizeof key; i++)
            key[i] = (uint8_t) (mix >> (8 * (i % 8))) ^ (uint8_t) i;
    }
    self->book = pm_conns_new(pm->cfg->listen);
    self->addrs = pm_addrbook_new(key, pm->cfg->listen);
    self->reqs = pm_reqs_new(PM_REQS_MAX);
    if (!self->book || !self->addrs || !self->reqs)
        pn_destroy(&self);
    return self;
}

void pn_destroy(pn_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    pn_t *self = *self_p;
    pm_reqs_destroy(&self->reqs);
    pm_conns_destroy(&self->book);
    pm_addrbook_destroy(&self->addrs);
    free(self);
    *self_p = NULL;
}

static pm_conn_t *conn_at(pm_t *pm, int slot)
{
    return pm_conns_at(pm->net->book, (size_t) slot);
}

static int send_msg(pm_t *pm, int slot, const alys_wire_msg_t *m)
{
    return pm->port.peer_send(pm->port.ctx, slot, m);
}

/* A request ends without data: charge what it costs, tell who asked. */
static void req_end(pm_t *pm, pm_req_t *r, pm_cost_t cost, const char *why, int64_t now)
{
    uint32_t latency = (uint32_t) (now - r->sent_at);
    if (cost.charge && r->kind != PM_REQ_PEERS) {
        peer_outcome_t o = {.kind = cost.kind, .latency_ms = latency, .reason = why};
        pm_record(pm, r->peer_id, &o);
    }
    pm_result_t res = {.outcome = cost.report, .latency_ms = latency, .detail = why};
    pm_report(pm, r->kind == PM_REQ_HEADERS, r->kind == PM_REQ_PEERS, r->request_id, r->peer_id,
              r->start, &res);
    pm_req_clear(r);
}

/* ---- connections ----------------------------------------------------------- */

/* PM_DO_PLUG: connect the slot's socket. false = refused (cannot connect). */
static bool plug(pm_t *pm, int slot, int64_t now)
{
    pm_conn_t *c = conn_at(pm, slot);
    int rc = pm->port.peer_dial(pm->port.ctx, slot, c->endpoint);
    if (rc == PM_DIAL_NO_SOCKET) {
        log_warn("no socket for %s: trying again later", c->endpoint);
        apply(pm, slot, pm_conn_send_failed(c, now), now); /* backs off */
        return false;
    }
    if (rc != PM_DIAL_OK) {
        pm_addrbook_failed(pm->net->addrs, c->endpoint, pm_now(pm));
        apply(pm, slot, pm_conn_refuse(c, now, "cannot connect to this endpoint"), now);
        log_warn("peer at %s refused: cannot connect", c->endpoint);
        return false;
    }
    pm_conn_plugged(c);
    return true;
}

/* PM_DO_LOST: every request on the slot ends; a ready peer is gone. */
static void lost(pm_t *pm, int slot, const pm_conn_fx_t *fx, int64_t now)
{
    pm_conn_t *c = conn_at(pm, slot);
    pm_cost_t cost = pm_cost_of(fx->link_lost ? PM_END_LINK_LOST : PM_END_CLOSED, 0);
    pm_req_t r;
    while (pm_reqs_take_conn(pm->net->reqs, slot, &r)) {
        pm_late_note(&pm->net->late, slot, r.wire_id);
        req_end(pm, &r, cost, fx->why, now);
    }
    if (c->peer_id[0])
        peer_table_set_disconnected(pm->table, c->peer_id, pm_now(pm));
    if (fx->was_ready) {
        log_info("peer %s (%s) disconnected: %s", c->peer_id, c->endpoint, fx->why);
        pm_peer_disconnected(pm, c->peer_id, fx->why);
    }
    pm->peerset_dirty = true;
}

static void send_probe(pm_t *pm, int slot, int64_t now)
{
    Alys__Wire__Status st;
    if (!pm_status(pm, &st))
        return;
    alys_wire_msg_t m = ALYS__WIRE__WIRE_MSG__INIT;
    m.request_id = alys_next_corr_id();
    m.body_case = ALYS__WIRE__WIRE_MSG__BODY_STATUS;
    m.status = &st;
    if (send_msg(pm, slot, &m) != 0)
        apply(pm, slot, pm_conn_send_failed(conn_at(pm, slot), now), now);
    else
        pm_conn_probe_sent(conn_at(pm, slot), m.request_id, now);
}

static void send_get_peers(pm_t *pm, int slot, int64_t now)
{
    alys_wire_msg_t m = ALYS__WIRE__WIRE_MSG__INIT;
    Alys__Wire__GetPeers gp = ALYS__WIRE__GET_PEERS__INIT;
    m.request_id = alys_next_corr_id();
    m.body_case = ALYS__WIRE__WIRE_MSG__BODY_GET_PEERS;
    m.get_peers = &gp;
    pm_req_t r = {.kind = PM_REQ_PEERS, .conn = slot, .sent_at = now, .wire_id = m.request_id};
    snprintf(r.peer_id, sizeof r.peer_id, "%s", conn_at(pm, slot)->peer_id);
    if (send_msg(pm, slot, &m) != 0)
        apply(pm, slot, pm_conn_send_failed(conn_at(pm, slot), now), now);
    else if (pm_reqs_add(pm->net->reqs, m.request_id, now + PM_CONN_PROBE_TIMEOUT_MS, &r) != 0)
        log_debug("GetPeers not tracked (request table full)");
}

/* PM_DO_GIVE_UP: the dial (or the lost peer) did not answer: the address
 * book counts the failure and the slot is free for the next dial. */
static void give_up(pm_t *pm, int slot)
{
    pm_conn_t *c = conn_at(pm, slot);
    if (c->plugged)
        pm->port.peer_hangup(pm->port.ctx, slot, c->endpoint);
    pm_req_t r;
    while (pm_reqs_take_conn(pm->net->reqs, slot, &r))
        req_end(pm, &r, pm_cost_of(PM_END_CLOSED, 0), "connection given up", pm_mono(pm));
    if (c->peer_id[0] && c->state == PM_CONN_DIALING)
        peer_table_set_disconnected(pm->table, c->peer_id, pm_now(pm)); /* was connecting */
    /* An operator's own bootstrap peer that never answers is worth a line
     * (a wrong key in its endpoint fails exactly so: CURVE cannot complete);
     * its backoff is capped (PM_BOOK_BOOT_BACKOFF_MAX_MS), so this is at
     * most one line per peer every few seconds. Endpoints heard from
     * strangers stay at debug: junk announcements would fill the log. */
    if (pm_addrbook_table_of(pm->net->addrs, c->endpoint) == PM_BOOK_BOOT)
        log_info("bootstrap peer %s does not answer our handshake (down, not a node, or not "
                 "that key): dialled again later",
                 c->endpoint);
    else
        log_debug("peer endpoint %s not answering: given up for now", c->endpoint);
    pm_addrbook_failed(pm->net->addrs, c->endpoint, pm_now(pm));
    pm_conns_release(pm->net->book, (size_t) slot);
    pm->peerset_dirty = true;
}

/* Carry out what the connection core decided, in pm_conn.h's order. */
static void apply(pm_t *pm, int slot, pm_conn_fx_t fx, int64_t now)
{
    pm_conn_t *c = conn_at(pm, slot);
    if (fx.todo & PM_DO_UNPLUG)
        pm->port.peer_hangup(pm->port.ctx, slot, c->endpoint);
    if (fx.todo & PM_DO_LOST)
        lost(pm, slot, &fx, now);
    if ((fx.todo & PM_DO_CHARGE) && c->peer_id[0]) {
        peer_outcome_t o = {.kind = PEER_OUTCOME_TIMEOUT, .reason = fx.why};
        pm_record(pm, c->peer_id, &o);
    }
    if ((fx.todo & PM_DO_PLUG) && !plug(pm, slot, now))
        return;
    if (fx.dialing && c->peer_id[0])
        peer_table_set_connecting(pm->table, c->peer_id, pm_now(pm));
    if (fx.todo & PM_DO_PROBE)
        send_probe(pm, slot, now);
    if ((fx.todo & PM_DO_GET_PEERS) && c->state == PM_CONN_READY)
        send_get_peers(pm, slot, now);
    if (fx.todo & PM_DO_GIVE_UP)
        give_up(pm, slot);
}

void pn_flush_closes(pm_t *pm)
{
    /* A close may record (its requests end) and so queue more: drain. */
    for (size_t i = 0; i < pm->n_closing; i++) {
        int slot = pm_conns_by_peer(pm->net->book, pm->closing[i].peer_id);
        if (slot >= 0)
            apply(pm, slot, pm_conn_close(conn_at(pm, slot), pm->closing[i].why), pm_mono(pm));
    }
    pm->n_closing = 0;
}

static void refuse(pm_t *pm, int slot, const char *why)
{
    log_warn("peer at %s refused: %s", conn_at(pm, slot)->endpoint, why);
    pm_addrbook_failed(pm->net->addrs, conn_at(pm, slot)->endpoint, pm_now(pm));
    int64_t now = pm_mono(pm);
    apply(pm, slot, pm_conn_refuse(conn_at(pm, slot), now, why), now);
}

void pn_set_key(pm_t *pm, const char *key_hex)
{
    pm_conns_set_key(pm->net->book, key_hex);
}

/* Endpoints go to the book in their canonical form (hex key), so one peer
 * announced with a z85 key and with a hex key is one entry; our own key is
 * never booked. */
void pn_learn_from(pm_t *pm, const char *endpoint, const char *source)
{
    char canon[ALYS_ENDPOINT_MAX];
    if (!endpoint || !*endpoint || alys_nodeaddr_canonical(endpoint, canon, sizeof canon) != 0 ||
        pm_conns_is_ours(pm->net->book, canon))
        return;
    /* Debug only: a flood of junk must not flood the log either. */
    if (pm_addrbook_add(pm->net->addrs, canon, source, pm_now(pm)) == PM_BOOK_ADDED)
        log_debug("peer endpoint %s heard of (from %s)", canon, source);
}

void pn_learn_endpoint(pm_t *pm, const char *endpoint)
{
    pn_learn_from(pm, endpoint, PM_BOOK_SOURCE_INBOUND);
}

pm_addrbook_t *pn_addrbook(pm_t *pm)
{
    return pm->net->addrs;
}

static void start_once(pm_t *pm)
{
    pn_t *self = pm->net;
    /* Bans first: a banned bootstrap endpoint must not be dialled once. */
    if (self->started || !pm->bans.loaded || !pm->have_head || !pm_book_store_ready(pm))
        return;
    self->started = true;
    for (uint32_t i = 0; i < pm->cfg->bootstrap_peer_count; i++) {
        const char *ep = pm->cfg->bootstrap_peers[i];
        char canon[ALYS_ENDPOINT_MAX];
        if (alys_nodeaddr_canonical(ep, canon, sizeof canon) != 0 ||
            pm_conns_is_ours(self->book, canon) || !pm_addrbook_add_bootstrap(self->addrs, canon))
            log_warn("bootstrap peer '%s' skipped (not alys://KEY@HOST:PORT, ours, or too many)", ep);
        else
            log_info("peer endpoint %s added", ep);
    }
}

/* Give free slots to what the address book picks, while fewer than
 * PM_CONN_OUTBOUND_MAX are live. A banned endpoint picked counts as a
 * failed attempt (it comes back after its backoff, or is evicted). */
static void fill_slots(pm_t *pm)
{
    pn_t *self = pm->net;
    uint64_t wall = pm_now(pm);
    char ep[ALYS_ENDPOINT_MAX], old[ALYS_ENDPOINT_MAX];
    for (int n = 0; n < PM_CONN_MAX && pm_conns_active(self->book) < PM_CONN_OUTBOUND_MAX; n++) {
        if (!pm_addrbook_pick(self->addrs, wall, ep, sizeof ep))
            return;
        if (peer_table_is_banned(pm->table, NULL, ep, wall)) {
            pm_addrbook_failed(self->addrs, ep, wall);
            continue;
        }
        bool was_closed = false;
        int slot = pm_conns_open(self->book, ep, old, sizeof old, &was_closed);
        if (slot < 0) { /* every slot live: give it back, try later */
            pm_addrbook_released(self->addrs, ep, wall);
            return;
        }
        if (was_closed) /* closed for its score: the book counts it a failure */
            pm_addrbook_failed(self->addrs, old, wall);
        log_debug("dialling %s (slot %d)", ep, slot);
    }
}

static void book_metrics(pm_t *pm)
{
    pm_book_stats_t st;
    pm_addrbook_stats(pm->net->addrs, &st);
    const char *help = "Endpoints in the address book by table";
    alys_metric_set(pm->metrics, "alys_peer_book_entries", "table=\"new\"", help, (double) st.n_new);
    alys_metric_set(pm->metrics, "alys_peer_book_entries", "table=\"tried\"", help,
                    (double) st.n_tried);
    alys_metric_set(pm->metrics, "alys_peer_book_entries", "table=\"bootstrap\"", help,
                    (double) st.n_boot);
}

void pn_tick(pm_t *pm)
{
    start_once(pm);
    if (!pm->net->started)
        return;
    int64_t now = pm_mono(pm);
    pm_req_t r;
    while (pm_reqs_expire(pm->net->reqs, now, &r)) {
        pm_late_note(&pm->net->late, r.conn, r.wire_id);
        req_end(pm, &r, pm_cost_of(PM_END_DEADLINE, 0), "no answer before the deadline", now);
    }
    uint64_t wall = pm_now(pm);
    fill_slots(pm);
    bool busy[PM_CONN_MAX];
    pm_reqs_busy_conns(pm->net->reqs, busy, PM_CONN_MAX);
    for (int i = 0; i < PM_CONN_MAX; i++) {
        pm_conn_t *c = conn_at(pm, i);
        if (busy[i])
            pm_conn_response_due(c, now);
        apply(pm, i, pm_conn_tick(c, now, pm_conn_may_dial(c, pm->table, now, wall)), now);
    }
    pn_flush_closes(pm);
    book_metrics(pm);
}

/* ---- handshake ------------------------------------------------------------- */

/* Another genesis: ban its key (pm_flow.h). */
static void wrong_genesis(pm_t *pm, int slot, const char *node_id)
{
    pm_conn_t *c = conn_at(pm, slot);
    char id[ALYS_WIRE_ID_MAX], why[PEER_REASON_MAX];
    if (pm_flow_wrong_genesis(pm->table, c->endpoint, node_id, pm_now(pm), id, sizeof id, why,
                              sizeof why)) {
        pm_bans_changed(&pm->bans);
        alys_metric_add(pm->metrics, "alys_peer_bans_total", NULL, "Peers banned", 1);
    }
    refuse(pm, slot, why);
}

/* Its Status contradicts the key the link proved: a protocol violation on
 * the key's record (the key is who is lying; nobody else can speak for it). */
static void wrong_key(pm_t *pm, int slot, const Alys__Wire__Status *st)
{
    pm_conn_t *c = conn_at(pm, slot);
    char why[PEER_REASON_MAX];
    snprintf(why, sizeof why, "status contradicts its key (node id %.16s, listen %.24s)",
             alys_wire_valid_node_id(st->node_id) ? st->node_id : "?",
             st->listen && *st->listen ? st->listen : "none");
    int rc = peer_table_add(pm->table, c->peer_id, c->endpoint, pm_now(pm));
    if (rc == PEER_OK || rc == PEER_ERR_EXISTS) {
        peer_outcome_t o = {.kind = PEER_OUTCOME_VIOLATION, .reason = why};
        pm_record(pm, c->peer_id, &o);
    }
    alys_metric_add(pm->metrics, "alys_peer_key_mismatch_total", NULL,
                    "Handshakes whose Status contradicted the link's key", 1);
    refuse(pm, slot, why);
}

static bool table_admit(pm_t *pm, int slot, const char *id)
{
    if (peer_table_contains(pm->table, id))
        return true;
    int rc = peer_table_add(pm->table, id, conn_at(pm, slot)->endpoint, pm_now(pm));
    if (rc == PEER_OK)
        return true;
    char why[PEER_REASON_MAX];
    snprintf(why, sizeof why, "not admitted: %s", peer_err_name(rc));
    refuse(pm, slot, why);
    return false;
}

/* The handshake passed the checks: ready as id, tell SyncActor what it has. */
static void now_ready(pm_t *pm, int slot, const char *id, const Alys__Wire__Status *st, int64_t now)
{
    pm_conn_t *c = conn_at(pm, slot);
    peer_view_t before;
    bool had = peer_table_get(pm->table, id, pm_now(pm), &before) == PEER_OK;
    const uint8_t *hh = st->head_hash.len == ALYS_HASH_LEN ? st->head_hash.data : NULL;
    if (peer_table_on_status(pm->table, id, st->head_height, hh, "1", pm_now(pm)) != PEER_OK) {
        refuse(pm, slot, "banned");
        return;
    }
    peer_table_record_rtt(pm->table, id, (uint32_t) (now - c->probe_sent), pm_now(pm));
    bool newly = pm_conn_ready(c, now);
    if (newly)
        pm_addrbook_good(pm->net->addrs, c->endpoint, pm_now(pm));
    if (newly)
        log_info("peer %s connected at %s, height %llu", id, c->endpoint,
                 (unsigned long long) st->head_height);
    if (pm_flow_discover(newly, had, had ? before.info.reported_height : 0, st->head_height))
        pm_peer_discovered(pm, id, st->head_height, hh);
    if (newly)
        pm->peerset_dirty = true;
    if (st->listen && *st->listen)
        pn_learn_from(pm, st->listen, c->endpoint);
}

static void on_status(pm_t *pm, int slot, const alys_wire_msg_t *m, int64_t now)
{
    pm_conn_t *c = conn_at(pm, slot);
    const Alys__Wire__Status *st = m->status;
    if (!pm_conn_is_probe(c, m->request_id))
        return; /* stale answer */
    switch (pm_judge_status(st, pm->genesis_hash, pm->key_hex, c->peer_id)) {
    case PM_HS_WRONG_GENESIS: wrong_genesis(pm, slot, st->node_id); break;
    case PM_HS_SELF:
        pm_addrbook_self(pm->net->addrs, c->endpoint);
        apply(pm, slot, pm_conn_self(c), now);
        log_info("%s is this node: not a peer", c->endpoint);
        break;
    case PM_HS_BAD_ID: refuse(pm, slot, "handshake with an invalid node id"); break;
    case PM_HS_WRONG_KEY: wrong_key(pm, slot, st); break;
    default:
        if (pm_conns_duplicate(pm->net->book, (size_t) slot) >= 0)
            refuse(pm, slot, "this key is connected at another endpoint");
        else if (table_admit(pm, slot, c->peer_id))
            now_ready(pm, slot, c->peer_id, st, now);
        break;
    }
}

static void on_status_error(pm_t *pm, int slot, const alys_wire_msg_t *m, int64_t now)
{
    if (m->error->code == ALYS__WIRE__WIRE_ERROR__CODE__WRONG_GENESIS)
        wrong_genesis(pm, slot, NULL);
    else /* unavailable, rate limited: later */
        apply(pm, slot, pm_conn_probe_error(conn_at(pm, slot), now), now);
}

/* ---- requests -------------------------------------------------------------- */

/* Send GetHeaders/GetBlocks for r on slot and record it. NULL, or why not
 * (*cost then says what it is). */
static const char *send_range(pm_t *pm, int slot, pm_req_t *r, uint32_t timeout_ms, pm_cost_t *cost)
{
    alys_wire_msg_t m = ALYS__WIRE__WIRE_MSG__INIT;
    Alys__Wire__GetHeaders gh = ALYS__WIRE__GET_HEADERS__INIT;
    Alys__Wire__GetBlocks gb = ALYS__WIRE__GET_BLOCKS__INIT;
    ProtobufCBinaryData loc[ALYS_LOCATOR_MAX];
    m.request_id = alys_next_corr_id();
    if (r->kind == PM_REQ_HEADERS) {
        /* With a locator the server ignores start (wire.proto GetHeaders). */
        for (size_t i = 0; i < r->n_locator && i < ALYS_LOCATOR_MAX; i++)
            loc[i] = (ProtobufCBinaryData){ALYS_HASH_LEN, r->locator[i]};
        gh.n_locator = r->n_locator < ALYS_LOCATOR_MAX ? r->n_locator : ALYS_LOCATOR_MAX;
        gh.locator = gh.n_locator ? loc : NULL;
        gh.start = r->start;
        gh.count = r->count;
        m.body_case = ALYS__WIRE__WIRE_MSG__BODY_GET_HEADERS;
        m.get_headers = &gh;
    } else {
        gb.start = r->start;
        gb.count = r->count;
        m.body_case = ALYS__WIRE__WIRE_MSG__BODY_GET_BLOCKS;
        m.get_blocks = &gb;
    }
    int64_t now = pm_mono(pm);
    if (send_msg(pm, slot, &m) != 0) {
        /* The link failed under a ready peer: its charge, once (pm_cost.h). */
        *cost = pm_cost_of(PM_END_SEND_FAILED, 0);
        apply(pm, slot, pm_conn_send_failed(conn_at(pm, slot), now), now);
        return "cannot send to the peer";
    }
    r->conn = slot;
    r->sent_at = now;
    r->wire_id = m.request_id;
    uint32_t adaptive = r->kind == PM_REQ_HEADERS
                            ? peer_table_headers_timeout(pm->table, r->peer_id, r->count)
                            : peer_table_request_timeout(pm->table, r->peer_id, r->count);
    if (pm_reqs_add(pm->net->reqs, m.request_id, now + pm_req_timeout_ms(timeout_ms, adaptive), r) !=
        0) {
        *cost = pm_cost_of(PM_END_NOT_READY, 0);
        return "request not recorded";
    }
    return NULL;
}

/* What a fetch carries besides its range (borrowed for the call). */
typedef struct {
    const ProtobufCBinaryData *expected; /* FetchBlocks: verified header hashes */
    size_t n_expected;
    const ProtobufCBinaryData *locator; /* FetchHeaders: a block locator */
    size_t n_locator;
    bool to_requester; /* FetchBlocks: the blocks go back in FetchResult */
} fetch_opts_t;

/* Admission (pm_reqs.h): NULL, or why not (in why). */
static const char *admit(const pm_req_t *r, const fetch_opts_t *o, char *why, size_t len)
{
    int rc = o->n_locator
                 ? pm_req_check_locator(r->count, o->locator, o->n_locator, why, len)
                 : pm_req_check(r->kind, r->start, r->count, o->expected, o->n_expected, why, len);
    return rc == 0 ? NULL : why;
}

/* Copies of an admitted request's hashes, owned by r (pm_req_clear frees
 * them): the message they came in is gone when the answer comes. */
static int copy_hashes(pm_req_t *r, const fetch_opts_t *o)
{
    if (o->n_expected && !(r->expected = malloc(o->n_expected * ALYS_HASH_LEN)))
        return -1;
    for (size_t i = 0; i < o->n_expected; i++)
        memcpy(r->expected[i], o->expected[i].data, ALYS_HASH_LEN);
    if (o->n_locator && !(r->locator = malloc(o->n_locator * ALYS_HASH_LEN)))
        return -1;
    for (size_t i = 0; i < o->n_locator; i++)
        memcpy(r->locator[i], o->locator[i].data, ALYS_HASH_LEN);
    r->n_locator = o->n_locator;
    return 0;
}

/* What FetchHeaders and FetchBlocks share. */
static void fetch(pm_t *pm, pm_req_kind_t kind, uint64_t request_id, const char *peer,
                  uint64_t start, uint32_t count, uint32_t timeout_ms, const fetch_opts_t *o)
{
    char why_buf[96];
    const char *why = NULL;
    pm_cost_t cost = pm_cost_of(PM_END_NOT_READY, 0);
    pm_req_t r = {.kind = kind,
                  .request_id = request_id,
                  .start = start,
                  .count = count,
                  .to_requester = o->to_requester};
    snprintf(r.peer_id, sizeof r.peer_id, "%s", peer);
    int slot = pm_conns_usable(pm->net->book, pm->table, peer, pm_now(pm), &why);
    if (slot < 0) {
    } else if (pm_reqs_full(pm->net->reqs)) {
        why = "too many requests in flight";
        cost.report = ALYS__PEER__OUTCOME__BUSY;
    } else if ((why = admit(&r, o, why_buf, sizeof why_buf))) {
    } else if (copy_hashes(&r, o) != 0) {
        why = "out of memory";
        cost.report = ALYS__PEER__OUTCOME__BUSY;
    } else {
        why = send_range(pm, slot, &r, timeout_ms, &cost);
    }
    if (why) {
        pm_result_t res = {.outcome = cost.report, .detail = why};
        pm_report(pm, kind == PM_REQ_HEADERS, false, request_id, peer, start, &res);
        pm_req_clear(&r);
    }
}

void pn_fetch_headers(pm_t *pm, const Alys__Peer__FetchHeaders *req)
{
    fetch_opts_t o = {.locator = req->locator, .n_locator = req->n_locator};
    fetch(pm, PM_REQ_HEADERS, req->request_id, req->peer_id ? req->peer_id : "", req->start,
          req->count, req->timeout_ms, &o);
}

void pn_fetch_blocks(pm_t *pm, const Alys__Peer__FetchBlocks *req)
{
    fetch_opts_t o = {.expected = req->expected_hashes,
                      .n_expected = req->n_expected_hashes,
                      .to_requester = req->to_requester};
    fetch(pm, PM_REQ_BLOCKS, req->request_id, req->peer_id ? req->peer_id : "", req->start,
          req->count, req->timeout_ms, &o);
}

/* ---- misbehaviour ----------------------------------------------------------- */

/* A frame outside any exchange from the peer on c: its score pays
 * (pm_cost.h's table); a flood ends in a ban (closed at pn_flush_closes). */
static void misbehaved(pm_t *pm, const pm_conn_t *c, pm_bad_t bad, size_t len, const char *detail)
{
    char labels[64];
    snprintf(labels, sizeof labels, "side=\"outbound\",offence=\"%s\"", pm_bad_name(bad));
    alys_metric_add(pm->metrics, "alys_peer_misbehaviour_total", labels,
                    "Frames outside any exchange, by side and offence (each costs its sender)", 1);
    if (!c->peer_id[0])
        return; /* not in the table yet: the handshake decides */
    char why[PEER_REASON_MAX];
    snprintf(why, sizeof why, "%s frame of %zu bytes%s%.40s", pm_bad_name(bad), len,
             detail ? ": " : "", detail ? detail : "");
    peer_action_t action = PEER_ACTION_NONE;
    if (peer_table_penalise(pm->table, c->peer_id, pm_bad_cost(bad, len), why, pm_now(pm),
                            &action) != PEER_OK)
        return;
    /* Per frame at debug only: a flood must not flood the log too. */
    log_debug("peer %s: %s", c->peer_id, why);
    pm_apply_action(pm, c->peer_id, action, why);
    pm->peerset_dirty = true;
}

/* ---- responses ------------------------------------------------------------- */

static void observe_latency(pm_t *pm, const char *peer_id, uint32_t ms)
{
    char labels[96];
    snprintf(labels, sizeof labels, "peer_id=\"%s\"", peer_id);
    alys_metric_observe(pm->metrics, "alys_peer_response_time_seconds", labels,
                        "Response time of remote peers", ms / 1000.0);
}

static void on_headers(pm_t *pm, const pm_req_t *r, const alys_wire_msg_t *m, uint32_t latency)
{
    /* A locator answer starts where the server chose: SyncActor learns
     * from HeadersResult.start where the branches meet. */
    bool located = r->n_locator > 0;
    pm_verdict_t v = located ? pm_judge_locator_headers(r->count, m->headers)
                             : pm_judge_headers(r->start, r->count, m->headers);
    /* A latency sample only: header bytes and counts would skew the
     * bandwidth and blocks-per-request that batch sizes and timeouts use. */
    peer_outcome_t o = {.kind = v.kind, .latency_ms = latency, .reason = v.detail};
    pm_record(pm, r->peer_id, &o);
    pm_result_t res = {.outcome = v.report,
                       .headers = v.data ? m->headers->headers : NULL,
                       .n_headers = v.data ? m->headers->n_headers : 0,
                       .latency_ms = latency,
                       .detail = v.detail};
    pm_report(pm, r->kind == PM_REQ_HEADERS, r->kind == PM_REQ_PEERS, r->request_id, r->peer_id,
              located ? m->headers->start : r->start, &res);
}

/* A to_requester fetch: its blocks go back in the FetchResult instead of
 * the reorder buffer, as many as one bus message holds; a cut answer is
 * partial, so SyncActor hears SHORT and fetches the rest. */
static void hand_back(const Alys__Wire__Blocks *b, pm_verdict_t *v, pm_result_t *res)
{
    size_t fit = pm_judge_result_fit(b->blocks, b->n_blocks);
    if (fit < b->n_blocks) {
        v->partial = true;
        snprintf(v->detail, sizeof v->detail, "%zu of %zu blocks fit in one bus message", fit,
                 b->n_blocks);
    }
    res->blocks = b->blocks;
    res->n_blocks = fit;
    res->delivered = (uint32_t) fit;
}

static void on_blocks(pm_t *pm, const pm_req_t *r, const alys_wire_msg_t *m, size_t frame_len,
                      uint32_t latency)
{
    const Alys__Wire__Blocks *b = m->blocks;
    const uint8_t(*expected)[ALYS_HASH_LEN] = (const uint8_t(*)[ALYS_HASH_LEN]) r->expected;
    pm_verdict_t v = pm_judge_blocks(r->start, r->count, expected, b);
    peer_outcome_t o = {.kind = v.kind,
                        .latency_ms = latency,
                        .bytes = frame_len,
                        .blocks = (uint32_t) b->n_blocks,
                        .reason = v.detail};
    if (v.conflict) /* a suspect, not charged: the header came from someone else */
        peer_table_suspect(pm->table, r->peer_id, r->start, r->start + r->count, v.detail, pm_now(pm));
    else
        pm_record(pm, r->peer_id, &o);
    pm_result_t res = {.latency_ms = latency, .bytes = frame_len, .detail = v.detail};
    int delivered = ALYS__PEER__OUTCOME__OK;
    if (v.data && r->to_requester)
        hand_back(b, &v, &res);
    else if (v.data)
        delivered = pm_deliver(pm, r->request_id, r->peer_id, r->start, b->blocks, b->n_blocks,
                               expected, &res.delivered);
    res.outcome = pm_judge_fetch_report(&v, delivered);
    pm_report(pm, r->kind == PM_REQ_HEADERS, r->kind == PM_REQ_PEERS, r->request_id, r->peer_id,
              r->start, &res);
}

static void on_error(pm_t *pm, pm_req_t *r, const alys_wire_msg_t *m, int64_t now)
{
    const Alys__Wire__WireError *e = m->error;
    char detail[ALYS_WIRE_DETAIL_MAX];
    snprintf(detail, sizeof detail, "peer answered error %d: %s", (int) e->code,
             e->message ? e->message : "");
    req_end(pm, r, pm_cost_of(PM_END_ERROR, e->code), detail, now);
}

/* A response of the wrong kind for its request is a violation. */
static bool body_matches(const pm_req_t *r, const alys_wire_msg_t *m)
{
    switch (m->body_case) {
    case ALYS__WIRE__WIRE_MSG__BODY_HEADERS: return r->kind == PM_REQ_HEADERS;
    case ALYS__WIRE__WIRE_MSG__BODY_BLOCKS: return r->kind == PM_REQ_BLOCKS;
    case ALYS__WIRE__WIRE_MSG__BODY_PEERS: return r->kind == PM_REQ_PEERS;
    case ALYS__WIRE__WIRE_MSG__BODY_ERROR: return true;
    default: return false;
    }
}

static void on_response(pm_t *pm, int slot, const alys_wire_msg_t *m, size_t frame_len)
{
    pm_req_t r;
    if (!pm_reqs_take(pm->net->reqs, slot, m->request_id, &r)) {
        if (pm_late_take(&pm->net->late, slot, m->request_id))
            alys_metric_add(pm->metrics, "alys_peer_late_responses_total", NULL,
                            "Answers to requests that had ended unanswered (deadline, link)", 1);
        else /* made up, or a duplicate */
            misbehaved(pm, conn_at(pm, slot), PM_BAD_UNSOLICITED, frame_len, alys_wire_body_name(m));
        return;
    }
    int64_t now = pm_mono(pm);
    uint32_t latency = (uint32_t) (now - r.sent_at);
    if (r.kind != PM_REQ_PEERS)
        observe_latency(pm, r.peer_id, latency);
    if (!body_matches(&r, m)) {
        req_end(pm, &r, pm_cost_of(PM_END_WRONG_KIND, 0), "response of the wrong kind", now);
    } else if (m->body_case == ALYS__WIRE__WIRE_MSG__BODY_ERROR) {
        on_error(pm, &r, m, now);
    } else if (m->body_case == ALYS__WIRE__WIRE_MSG__BODY_HEADERS) {
        on_headers(pm, &r, m, latency);
    } else if (m->body_case == ALYS__WIRE__WIRE_MSG__BODY_BLOCKS) {
        on_blocks(pm, &r, m, frame_len, latency);
    } else {
        /* Heard from this peer: its endpoints share its source's buckets. */
        for (size_t i = 0; i < m->peers->n_endpoints; i++)
            pn_learn_from(pm, m->peers->endpoints[i], conn_at(pm, slot)->endpoint);
    }
    pm_req_clear(&r);
}

/* NewBlock pushed by a peer: kept for block gossip, which the core calls
 * once this frame is handled (peer_gossip.c sits above this module). */
static void on_new_block(pm_t *pm, pm_conn_t *c, const alys_wire_msg_t *m)
{
    pm_stash_new_block(pm, c->peer_id, &m->new_block->block);
}

static void dispatch(pm_t *pm, int slot, const alys_wire_msg_t *m, size_t frame_len)
{
    pm_conn_t *c = conn_at(pm, slot);
    int64_t now = pm_mono(pm);
    pm_frame_t f = pm_judge_frame(m, frame_len, false);
    if (f != PM_FRAME_OK) {
        misbehaved(pm, c, f == PM_FRAME_OVERSIZE ? PM_BAD_OVERSIZE : PM_BAD_WRONG_WAY, frame_len,
                   alys_wire_body_name(m));
        return;
    }
    if (m->body_case == ALYS__WIRE__WIRE_MSG__BODY_STATUS) {
        on_status(pm, slot, m, now);
    } else if (m->body_case == ALYS__WIRE__WIRE_MSG__BODY_ERROR && pm_conn_is_probe(c, m->request_id)) {
        on_status_error(pm, slot, m, now);
    } else if (m->body_case == ALYS__WIRE__WIRE_MSG__BODY_NEW_BLOCK) {
        if (c->state == PM_CONN_READY)
            on_new_block(pm, c, m);
    } else if (c->state == PM_CONN_READY || c->state == PM_CONN_DOWN) {
        on_response(pm, slot, m, frame_len);
    }
}

void pn_on_frame(pm_t *pm, int slot, const uint8_t *data, size_t len, size_t n_frames)
{
    pm_conn_t *c = slot >= 0 && slot < PM_CONN_MAX ? conn_at(pm, slot) : NULL;
    if (c && c->state != PM_CONN_FREE) {
        char err[160];
        alys_wire_msg_t *m = n_frames == 1 ? alys_wire_decode(data, len, err, sizeof err) : NULL;
        if (n_frames != 1) /* one WireMsg per frame: the rest is padding */
            misbehaved(pm, c, PM_BAD_SHAPE, len, "multi-part message");
        else if (!m) /* undecodable or over its bounds: its fault, whatever it was */
            misbehaved(pm, c, PM_BAD_UNDECODABLE, len, err);
        else
            dispatch(pm, slot, m, len);
        alys_wire_free(&m);
    }
    pn_flush_closes(pm);
}

/* The link under a connection dropped or is back. */
void pn_on_link(pm_t *pm, int slot, bool up)
{
    if (slot < 0 || slot >= PM_CONN_MAX)
        return;
    int64_t now = pm_mono(pm);
    if (!up)
        apply(pm, slot, pm_conn_link_down(conn_at(pm, slot), now), now);
    else
        pm_conn_link_up(conn_at(pm, slot), now);
    pn_flush_closes(pm);
}

/* ---- listings -------------------------------------------------------------- */

size_t pn_endpoints(pm_t *pm, const char **out, size_t cap)
{
    size_t n = 0;
    for (int i = 0; i < PM_CONN_MAX && n < cap; i++)
        if (conn_at(pm, i)->state == PM_CONN_READY)
            out[n++] = conn_at(pm, i)->endpoint;
    return n;
}

size_t pn_refused(pm_t *pm, pm_unlisted_t *out, size_t cap)
{
    return pm_list_conns(pm->net->book, pm->table, out, cap);
}

size_t pn_connected_count(pm_t *pm)
{
    return pm_conns_ready(pm->net->book);
}

/* ---- gossip (peer_gossip.c), transactions (pm_tx.c) ---------------------------- */

size_t pn_ready_peers(pm_t *pm, int *slots, const char **ids, size_t cap)
{
    size_t n = 0;
    pm_conn_t *c;
    for (size_t i = 0; n < cap && (c = pm_conns_at(pm->net->book, i)); i++)
        if (c->state == PM_CONN_READY && c->peer_id[0]) {
            slots[n] = (int) i;
            ids[n++] = c->peer_id;
        }
    return n;
}

int pn_push(pm_t *pm, int slot, const alys_wire_msg_t *m)
{
    return send_msg(pm, slot, m);
}

/* ---- what SyncActor left with us (GetInFlight) ----------------------------- */

typedef struct {
    pn_block_req_t *out;
    size_t cap, n;
} block_reqs_t;

static void block_req(const pm_req_t *r, void *arg)
{
    block_reqs_t *b = arg;
    /* Gossip's own fetches and to_requester ones are not the reorder
     * buffer's: a restarted SyncActor has nothing to adopt there. */
    if (r->kind != PM_REQ_BLOCKS || (r->request_id & PM_GOSSIP_REQ_BIT) || r->to_requester)
        return;
    if (b->n < b->cap) {
        pn_block_req_t *o = &b->out[b->n];
        o->request_id = r->request_id;
        snprintf(o->peer_id, sizeof o->peer_id, "%s", r->peer_id);
        o->start = r->start;
        o->count = r->count;
    }
    b->n++;
}

size_t pn_block_requests(pm_t *pm, pn_block_req_t *out, size_t cap)
{
    block_reqs_t b = {.out = out, .cap = cap};
    pm_reqs_each(pm->net->reqs, block_req, &b);
    return b.n;
}
