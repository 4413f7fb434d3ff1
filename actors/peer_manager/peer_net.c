/*  peer_net.c: the client side of the wire protocol (see peer_net.h). */
#include "peer_net.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "util.h"

typedef enum {
    C_FREE = 0,
    C_IDLE,       /* known, not dialled yet (or waiting for its backoff) */
    C_DIALING,    /* Status sent, no answer yet */
    C_READY,      /* handshake done: a connected peer */
    C_DOWN,       /* was ready, stopped answering: probed with backoff */
    C_CLOSED,     /* dropped for its score or banned: re-dialled when allowed */
    C_REFUSED,    /* another genesis / bad handshake: looked at again after long */
    C_SELF,       /* it was us */
} cstate_t;

typedef struct {
    cstate_t state;
    char     endpoint[PEER_ENDPOINT_MAX];
    char     peer_id[PEER_ID_MAX];      /* "" until the first handshake */
    zsock_t *sock;                      /* made once, kept (see peer_net.h) */
    bool     connected;                 /* zsock_connect done */
    uint64_t probe_id;                  /* outstanding Status, 0 = none */
    int64_t  probe_sent;
    int64_t  next_probe;
    uint32_t failures;                  /* probes unanswered in a row */
    int64_t  next_peers;
    int64_t  refused_at;
    char     reason[PEER_REASON_MAX];
} conn_t;

typedef enum { R_HEADERS, R_BLOCKS, R_PEERS } rkind_t;

typedef struct {
    uint64_t wire_id;                   /* 0 = free */
    rkind_t  kind;
    conn_t  *conn;
    uint64_t request_id;                /* SyncActor's */
    char     peer_id[PEER_ID_MAX];
    uint64_t start;
    uint32_t count;
    uint8_t (*expected)[ALYS_HASH_LEN]; /* owned, count hashes or NULL */
    int64_t  sent_at;
    int64_t  deadline;
} req_t;

struct pn {
    pm_t    *pm;
    conn_t   conns[PN_MAX_CONNS];
    req_t    reqs[PN_MAX_REQS];
    bool     started;
    uint64_t late;                      /* responses with no pending request */
};

static int on_conn(alys_actor_t *actor, zsock_t *sock, void *arg);

pn_t *pn_new(pm_t *pm)
{
    pn_t *self = calloc(1, sizeof *self);
    if (self)
        self->pm = pm;
    return self;
}

static void req_clear(req_t *r)
{
    free(r->expected);
    memset(r, 0, sizeof *r);
}

void pn_destroy(pn_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    pn_t *self = *self_p;
    for (size_t i = 0; i < PN_MAX_REQS; i++)
        req_clear(&self->reqs[i]);
    for (size_t i = 0; i < PN_MAX_CONNS; i++) {
        if (self->conns[i].sock) {
            alys_actor_remove_reader(self->pm->actor, self->conns[i].sock);
            zsock_destroy(&self->conns[i].sock);
        }
    }
    free(self);
    *self_p = NULL;
}

/* ---- small helpers --------------------------------------------------------- */

static int conn_send(conn_t *c, const alys_wire_msg_t *m)
{
    zframe_t *f = alys_wire_encode(m);
    if (!f || !c->sock)
        return -1;
    int rc = zframe_send(&f, c->sock, ZFRAME_DONTWAIT);
    zframe_destroy(&f);
    return rc;
}

static conn_t *conn_by_endpoint(pn_t *self, const char *ep)
{
    for (size_t i = 0; i < PN_MAX_CONNS; i++)
        if (self->conns[i].state != C_FREE && strcmp(self->conns[i].endpoint, ep) == 0)
            return &self->conns[i];
    return NULL;
}

static conn_t *conn_by_peer(pn_t *self, const char *peer_id)
{
    for (size_t i = 0; peer_id && *peer_id && i < PN_MAX_CONNS; i++)
        if (self->conns[i].state != C_FREE && strcmp(self->conns[i].peer_id, peer_id) == 0)
            return &self->conns[i];
    return NULL;
}

static void metric_outcome(pm_t *pm, const char *kind, const char *outcome)
{
    char labels[96];
    snprintf(labels, sizeof labels, "kind=\"%s\",outcome=\"%s\"", kind, outcome);
    alys_metric_add(alys_actor_metrics(pm->actor), "alys_peer_requests_total", labels,
                    "Requests to remote peers by kind and outcome", 1);
}

static const char *outcome_label(int outcome)
{
    switch (outcome) {
    case ALYS__PEER__OUTCOME__OK: return "ok";
    case ALYS__PEER__OUTCOME__TIMEOUT: return "timeout";
    case ALYS__PEER__OUTCOME__INVALID: return "invalid";
    case ALYS__PEER__OUTCOME__SHORT: return "short";
    case ALYS__PEER__OUTCOME__VIOLATION: return "violation";
    case ALYS__PEER__OUTCOME__NO_PEER: return "no_peer";
    case ALYS__PEER__OUTCOME__BUSY: return "busy";
    default: return "unknown";
    }
}

/* ---- reports to SyncActor -------------------------------------------------- */

static void report_headers(pm_t *pm, uint64_t request_id, const char *peer_id, int outcome,
                           uint64_t start, const ProtobufCBinaryData *headers, size_t n,
                           const char *detail, uint32_t latency_ms)
{
    Alys__Peer__HeadersResult hr = ALYS__PEER__HEADERS_RESULT__INIT;
    hr.request_id = request_id;
    hr.peer_id = (char *) peer_id;
    hr.outcome = (Alys__Peer__Outcome) outcome;
    hr.start = start;
    hr.n_headers = n;
    hr.headers = (ProtobufCBinaryData *) headers;
    hr.detail = (char *) detail;
    hr.latency_ms = latency_ms;
    Alys__Peer__PeerMsg msg = ALYS__PEER__PEER_MSG__INIT;
    msg.msg_case = ALYS__PEER__PEER_MSG__MSG_HEADERS_RESULT;
    msg.headers_result = &hr;
    metric_outcome(pm, "headers", outcome_label(outcome));
    if (pm_send_sync_peer(pm, &msg) != 0)
        log_warn("cannot report headers request %llu to sync", (unsigned long long) request_id);
}

static void report_fetch(pm_t *pm, uint64_t request_id, const char *peer_id, int outcome,
                         uint64_t start, uint32_t delivered, uint32_t latency_ms, uint64_t bytes,
                         const char *detail)
{
    Alys__Peer__FetchResult fr = ALYS__PEER__FETCH_RESULT__INIT;
    fr.request_id = request_id;
    fr.peer_id = (char *) peer_id;
    fr.outcome = (Alys__Peer__Outcome) outcome;
    fr.start = start;
    fr.delivered = delivered;
    fr.latency_ms = latency_ms;
    fr.bytes = bytes;
    fr.detail = (char *) detail;
    Alys__Peer__PeerMsg msg = ALYS__PEER__PEER_MSG__INIT;
    msg.msg_case = ALYS__PEER__PEER_MSG__MSG_FETCH_RESULT;
    msg.fetch_result = &fr;
    metric_outcome(pm, "blocks", outcome_label(outcome));
    if (pm_send_sync_peer(pm, &msg) != 0)
        log_warn("cannot report blocks request %llu to sync", (unsigned long long) request_id);
}

/* A request ends without data (timeout, error, no peer): report it. */
static void report_failure(pm_t *pm, const req_t *r, int outcome, const char *detail)
{
    uint32_t latency = (uint32_t) (pm_mono() - r->sent_at);
    if (r->kind == R_HEADERS)
        report_headers(pm, r->request_id, r->peer_id, outcome, r->start, NULL, 0, detail, latency);
    else if (r->kind == R_BLOCKS)
        report_fetch(pm, r->request_id, r->peer_id, outcome, r->start, 0, latency, 0, detail);
}

/* r got no answer: a timeout on the peer's record (a small cost) and for
 * whoever asked; a GetPeers of our own only goes away. */
static void req_timed_out(pm_t *pm, req_t *r, int64_t now, const char *why)
{
    if (r->kind != R_PEERS) {
        peer_outcome_t o = {.kind = PEER_OUTCOME_TIMEOUT, .latency_ms = (uint32_t) (now - r->sent_at)};
        pm_record(pm, r->peer_id, &o);
        report_failure(pm, r, ALYS__PEER__OUTCOME__TIMEOUT, why);
    }
    req_clear(r);
}

/* ---- connections ----------------------------------------------------------- */

static zsock_t *make_socket(pm_t *pm)
{
    zsock_t *sock = zsock_new(ZMQ_DEALER);
    if (!sock)
        return NULL;
    alys_sock_limits(sock);
    zsock_set_identity(sock, pm->identity);
    /* Nothing queues for a peer that is not there: a send fails at once and
     * counts as an unanswered probe, instead of a burst of stale requests
     * reaching the peer when it comes back. */
    zsock_set_immediate(sock, 1);
    zsock_set_reconnect_ivl(sock, 100);
    zsock_set_reconnect_ivl_max(sock, 5000);
    if (alys_actor_add_reader(pm->actor, sock, on_conn, pm) != 0) {
        zsock_destroy(&sock);
        return NULL;
    }
    return sock;
}

static void conn_unplug(conn_t *c)
{
    if (c->sock && c->connected)
        zsock_disconnect(c->sock, "%s", c->endpoint);
    c->connected = false;
    c->probe_id = 0;
}

/* Fail every request waiting on c (it went away). */
static void fail_requests(pm_t *pm, conn_t *c, const char *why)
{
    for (size_t i = 0; i < PN_MAX_REQS; i++) {
        req_t *r = &pm->net->reqs[i];
        if (r->wire_id && r->conn == c) {
            report_failure(pm, r, ALYS__PEER__OUTCOME__NO_PEER, why);
            req_clear(r);
        }
    }
}

/* A ready peer is no longer: tell everyone. */
static void conn_lost(pm_t *pm, conn_t *c, cstate_t next, const char *why)
{
    bool was_ready = c->state == C_READY;
    c->state = next;
    snprintf(c->reason, sizeof c->reason, "%s", why);
    fail_requests(pm, c, why);
    if (c->peer_id[0])
        peer_table_set_disconnected(pm->table, c->peer_id, pm_now());
    if (was_ready) {
        log_info("peer %s (%s) disconnected: %s", c->peer_id, c->endpoint, why);
        pm_peer_disconnected(pm, c->peer_id, why);
    }
    pm->peerset_dirty = true;
}

static void conn_refuse(pm_t *pm, conn_t *c, const char *why)
{
    conn_unplug(c);
    conn_lost(pm, c, C_REFUSED, why);
    c->refused_at = pm_mono();
    log_warn("peer at %s refused: %s", c->endpoint, why);
}

void pn_disconnect(pm_t *pm, const char *peer_id, const char *reason)
{
    conn_t *c = conn_by_peer(pm->net, peer_id);
    if (!c || c->state == C_CLOSED || c->state == C_REFUSED)
        return;
    conn_unplug(c);
    conn_lost(pm, c, C_CLOSED, reason);
}

static bool is_our_listen(pm_t *pm, const char *ep)
{
    return pm->cfg->listen[0] && strcmp(pm->cfg->listen, ep) == 0;
}

static conn_t *conn_add(pn_t *self, const char *ep)
{
    if (!alys_wire_valid_endpoint(ep) || is_our_listen(self->pm, ep))
        return NULL;
    conn_t *c = conn_by_endpoint(self, ep);
    if (c)
        return c;
    for (size_t i = 0; i < PN_MAX_CONNS; i++) {
        c = &self->conns[i];
        if (c->state != C_FREE)
            continue;
        zsock_t *keep = c->sock;           /* a freed slot keeps its socket */
        *c = (conn_t){.state = C_IDLE, .sock = keep};
        snprintf(c->endpoint, sizeof c->endpoint, "%s", ep);
        log_info("peer endpoint %s added", ep);
        return c;
    }
    return NULL;
}

void pn_learn_endpoint(pm_t *pm, const char *endpoint)
{
    if (pm->net->started && endpoint && *endpoint)
        conn_add(pm->net, endpoint);
}

/* ---- probes (Status) ------------------------------------------------------- */

/* Wait before the next probe of a peer that is not ready: 100 ms doubling
 * to 30 s. Starts short because the first probe of a fresh dial usually
 * fails only because TCP is not connected yet (ZMQ_IMMEDIATE). */
static int64_t backoff(uint32_t failures)
{
    int64_t ms = 100;
    for (uint32_t i = 1; i < failures && ms < PN_BACKOFF_MAX_MS; i++)
        ms *= 2;
    return ms < PN_BACKOFF_MAX_MS ? ms : PN_BACKOFF_MAX_MS;
}

/* A ready peer stopped answering. It took our requests and dropped them, so
 * each one counts as a timeout (a small cost, as when its deadline passes),
 * and so do the unanswered probes: a peer that keeps dropping out must not
 * look as good as a steady one just because it vanished before a deadline. */
static void conn_down(pm_t *pm, conn_t *c, int64_t now)
{
    for (size_t i = 0; i < PN_MAX_REQS; i++) {
        req_t *r = &pm->net->reqs[i];
        if (r->wire_id && r->conn == c)
            req_timed_out(pm, r, now, "peer stopped answering");
    }
    if (c->peer_id[0]) {
        peer_outcome_t o = {.kind = PEER_OUTCOME_TIMEOUT, .reason = "status probes unanswered"};
        pm_record(pm, c->peer_id, &o);
    }
    if (c->state == C_READY)             /* a record may have closed it already */
        conn_lost(pm, c, C_DOWN, "not answering");
}

static void probe_failed(pm_t *pm, conn_t *c, int64_t now)
{
    c->probe_id = 0;
    c->failures++;
    if (c->state == C_READY && c->failures >= PN_DOWN_AFTER)
        conn_down(pm, c, now);
    c->next_probe = now + (c->state == C_READY ? PN_STATUS_EVERY_MS : backoff(c->failures));
}

static void send_probe(pm_t *pm, conn_t *c, int64_t now)
{
    Alys__Wire__Status st;
    if (!pm_status(pm, &st))
        return;
    alys_wire_msg_t m = ALYS__WIRE__WIRE_MSG__INIT;
    m.request_id = alys_next_corr_id();
    m.body_case = ALYS__WIRE__WIRE_MSG__BODY_STATUS;
    m.status = &st;
    c->probe_sent = now;
    if (conn_send(c, &m) != 0) {
        probe_failed(pm, c, now);          /* nobody there (ZMQ_IMMEDIATE) */
        return;
    }
    c->probe_id = m.request_id;
}

static bool may_dial(pm_t *pm, conn_t *c, int64_t now)
{
    if (c->state == C_SELF || now < c->next_probe)
        return false;
    if (c->state == C_REFUSED && now - c->refused_at < PN_REFUSED_RETRY_MS)
        return false;
    uint64_t wall = pm_now();
    if (peer_table_is_banned(pm->table, c->peer_id[0] ? c->peer_id : NULL, c->endpoint, wall))
        return false;
    if (c->state == C_CLOSED && c->peer_id[0] && peer_table_contains(pm->table, c->peer_id))
        return peer_table_may_connect(pm->table, c->peer_id, wall);
    return true;
}

static void dial(pm_t *pm, conn_t *c, int64_t now)
{
    if (!c->sock && !(c->sock = make_socket(pm)))
        return;
    if (!c->connected) {
        if (zsock_connect(c->sock, "%s", c->endpoint) != 0) {
            conn_refuse(pm, c, "cannot connect to this endpoint");
            return;
        }
        c->connected = true;
    }
    if (c->peer_id[0])
        peer_table_set_connecting(pm->table, c->peer_id, pm_now());
    c->state = C_DIALING;
    c->failures = 0;
    send_probe(pm, c, now);
}

static void conn_tick(pm_t *pm, conn_t *c, int64_t now)
{
    switch (c->state) {
    case C_IDLE:
    case C_CLOSED:
    case C_REFUSED:
        if (may_dial(pm, c, now))
            dial(pm, c, now);
        return;
    case C_DIALING:
    case C_READY:
    case C_DOWN:
        break;
    default:
        return;
    }
    if (c->probe_id && now - c->probe_sent >= PN_STATUS_TIMEOUT_MS)
        probe_failed(pm, c, now);
    if (!c->probe_id && now >= c->next_probe)
        send_probe(pm, c, now);
    if (c->state == C_READY && now >= c->next_peers) {
        alys_wire_msg_t m = ALYS__WIRE__WIRE_MSG__INIT;
        Alys__Wire__GetPeers gp = ALYS__WIRE__GET_PEERS__INIT;
        m.request_id = alys_next_corr_id();
        m.body_case = ALYS__WIRE__WIRE_MSG__BODY_GET_PEERS;
        m.get_peers = &gp;
        c->next_peers = now + PN_PEERS_EVERY_MS;
        if (conn_send(c, &m) != 0)
            return;
        for (size_t i = 0; i < PN_MAX_REQS; i++) {
            req_t *r = &pm->net->reqs[i];
            if (r->wire_id == 0) {
                *r = (req_t){.wire_id = m.request_id, .kind = R_PEERS, .conn = c,
                             .sent_at = now, .deadline = now + PN_STATUS_TIMEOUT_MS};
                snprintf(r->peer_id, sizeof r->peer_id, "%s", c->peer_id);
                break;
            }
        }
    }
}

static void start_once(pm_t *pm)
{
    pn_t *self = pm->net;
    /* Bans first: a banned bootstrap endpoint must not be dialled once. */
    if (self->started || !pm->bans_loaded || !pm->have_head)
        return;
    self->started = true;
    for (uint32_t i = 0; i < pm->cfg->bootstrap_peer_count; i++)
        if (!conn_add(self, pm->cfg->bootstrap_peers[i]))
            log_warn("bootstrap peer '%s' skipped (not tcp://HOST:PORT, ours, or too many)",
                     pm->cfg->bootstrap_peers[i]);
}

static void requests_tick(pm_t *pm, int64_t now)
{
    for (size_t i = 0; i < PN_MAX_REQS; i++) {
        req_t *r = &pm->net->reqs[i];
        if (r->wire_id && now >= r->deadline)
            req_timed_out(pm, r, now, "no answer before the deadline");
    }
}

void pn_tick(pm_t *pm)
{
    start_once(pm);
    if (!pm->net->started)
        return;
    int64_t now = pm_mono();
    requests_tick(pm, now);
    for (size_t i = 0; i < PN_MAX_CONNS; i++)
        conn_tick(pm, &pm->net->conns[i], now);
}

/* ---- handshake ------------------------------------------------------------- */

/* Another genesis: ban the endpoint under "@host:port" (see peer_net.h). */
static void wrong_genesis(pm_t *pm, conn_t *c, const char *node_id)
{
    char id[PEER_ID_MAX], why[PEER_REASON_MAX];
    alys_wire_endpoint_id(c->endpoint, id, sizeof id);
    snprintf(why, sizeof why, "wrong genesis (node %s)", node_id && *node_id ? node_id : "?");
    uint64_t now = pm_now();
    int rc = peer_table_add(pm->table, id, c->endpoint, now);
    if (rc == PEER_OK || rc == PEER_ERR_EXISTS) {
        peer_action_t action = PEER_ACTION_NONE;
        peer_table_blame_now(pm->table, id, PEER_OUTCOME_VIOLATION, why, now, &action);
        if (action == PEER_ACTION_BAN) {
            pm->bans_dirty = true;
            alys_metric_add(alys_actor_metrics(pm->actor), "alys_peer_bans_total", NULL,
                            "Peers banned", 1);
        }
    }
    if (!c->peer_id[0])
        snprintf(c->peer_id, sizeof c->peer_id, "%s", id);
    conn_refuse(pm, c, why);
}

/* The peer id for a handshake on c, or false (refused, reason in why). */
static bool choose_id(pm_t *pm, conn_t *c, const char *node_id, char *id, size_t idlen)
{
    if (c->peer_id[0] && (strcmp(c->peer_id, node_id) == 0 || c->peer_id[0] == '@')) {
        snprintf(id, idlen, "%s", c->peer_id);
        return true;
    }
    conn_t *other = conn_by_peer(pm->net, node_id);
    bool taken = other && other != c && other->state == C_READY;
    if (taken)
        alys_wire_endpoint_id(c->endpoint, id, idlen);
    else
        snprintf(id, idlen, "%s", node_id);
    if (other && other != c && !taken)
        other->peer_id[0] = '\0';          /* the id moves to this endpoint */
    return true;
}

static bool table_admit(pm_t *pm, conn_t *c, const char *id)
{
    uint64_t now = pm_now();
    if (!peer_table_contains(pm->table, id)) {
        int rc = peer_table_add(pm->table, id, c->endpoint, now);
        if (rc != PEER_OK) {
            char why[PEER_REASON_MAX];
            snprintf(why, sizeof why, "not admitted: %s", peer_err_name(rc));
            conn_refuse(pm, c, why);
            return false;
        }
    }
    return true;
}

static void on_status(pm_t *pm, conn_t *c, const alys_wire_msg_t *m, int64_t now)
{
    const Alys__Wire__Status *st = m->status;
    if (m->request_id != c->probe_id || c->state == C_REFUSED || c->state == C_CLOSED)
        return;                            /* stale answer */
    c->probe_id = 0;
    const char *node_id = st->node_id ? st->node_id : "";
    if (memcmp(st->genesis_hash.data, pm->genesis_hash, ALYS_HASH_LEN) != 0) {
        wrong_genesis(pm, c, node_id);
        return;
    }
    if (st->listen && is_our_listen(pm, st->listen) && strcmp(node_id, pm->cfg->node_name) == 0) {
        conn_unplug(c);
        c->state = C_SELF;
        log_info("%s is this node: not a peer", c->endpoint);
        return;
    }
    if (!alys_wire_valid_node_id(node_id)) {
        conn_refuse(pm, c, "handshake with an invalid node id");
        return;
    }
    char id[PEER_ID_MAX];
    if (!choose_id(pm, c, node_id, id, sizeof id) || !table_admit(pm, c, id))
        return;
    snprintf(c->peer_id, sizeof c->peer_id, "%s", id);
    peer_view_t before;
    bool had = peer_table_get(pm->table, id, pm_now(), &before) == PEER_OK;
    const uint8_t *hh = st->head_hash.len == ALYS_HASH_LEN ? st->head_hash.data : NULL;
    if (peer_table_on_status(pm->table, id, st->head_height, hh, "1", pm_now()) != PEER_OK) {
        conn_refuse(pm, c, "banned");
        return;
    }
    peer_table_record_rtt(pm->table, id, (uint32_t) (now - c->probe_sent), pm_now());
    bool newly = c->state != C_READY;
    c->state = C_READY;
    c->failures = 0;
    c->next_probe = now + PN_STATUS_EVERY_MS;
    if (newly) {
        log_info("peer %s connected at %s, height %llu", id, c->endpoint,
                 (unsigned long long) st->head_height);
        c->next_peers = now;
    }
    if (newly || !had || before.info.reported_height != st->head_height)
        pm_peer_discovered(pm, id, st->head_height, hh);
    if (newly)
        pm->peerset_dirty = true;
    if (st->listen && *st->listen)
        pn_learn_endpoint(pm, st->listen);
}

static void on_status_error(pm_t *pm, conn_t *c, const alys_wire_msg_t *m, int64_t now)
{
    if (m->request_id != c->probe_id)
        return;
    if (m->error->code == ALYS__WIRE__WIRE_ERROR__CODE__WRONG_GENESIS) {
        c->probe_id = 0;
        wrong_genesis(pm, c, NULL);
        return;
    }
    probe_failed(pm, c, now);             /* unavailable, rate limited: try later */
}

/* ---- requests -------------------------------------------------------------- */

static req_t *req_take(pn_t *self, conn_t *c, uint64_t wire_id)
{
    for (size_t i = 0; i < PN_MAX_REQS; i++)
        if (self->reqs[i].wire_id == wire_id && self->reqs[i].conn == c)
            return &self->reqs[i];
    return NULL;
}

static req_t *req_free_slot(pn_t *self)
{
    for (size_t i = 0; i < PN_MAX_REQS; i++)
        if (self->reqs[i].wire_id == 0)
            return &self->reqs[i];
    return NULL;
}

/* The ready connection of a peer SyncActor names, or NULL with why. */
static conn_t *usable_conn(pm_t *pm, const char *peer_id, const char **why)
{
    conn_t *c = conn_by_peer(pm->net, peer_id);
    if (!c || c->state != C_READY) {
        *why = c ? "peer not connected" : "unknown peer";
        return NULL;
    }
    if (peer_table_is_banned(pm->table, peer_id, c->endpoint, pm_now())) {
        *why = "peer banned";
        return NULL;
    }
    return c;
}

static uint32_t deadline_ms(pm_t *pm, const char *peer_id, uint32_t count, uint32_t asked)
{
    uint32_t ms = asked ? asked : peer_table_request_timeout(pm->table, peer_id, count);
    return ms < PN_MAX_TIMEOUT_MS ? ms : PN_MAX_TIMEOUT_MS;
}

/* Send GetHeaders/GetBlocks; the request slot is filled on success. */
static const char *send_range(pm_t *pm, conn_t *c, req_t *r, uint32_t timeout_ms)
{
    alys_wire_msg_t m = ALYS__WIRE__WIRE_MSG__INIT;
    Alys__Wire__GetHeaders gh = ALYS__WIRE__GET_HEADERS__INIT;
    Alys__Wire__GetBlocks gb = ALYS__WIRE__GET_BLOCKS__INIT;
    m.request_id = alys_next_corr_id();
    if (r->kind == R_HEADERS) {
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
    if (conn_send(c, &m) != 0)
        return "cannot send to the peer";
    r->wire_id = m.request_id;
    r->conn = c;
    r->sent_at = pm_mono();
    r->deadline = r->sent_at + deadline_ms(pm, r->peer_id, r->count, timeout_ms);
    return NULL;
}

/* What FetchHeaders and FetchBlocks share: a usable connection, a free
 * request slot and a count within the wire bound. Returns the slot, filled
 * with the request, or NULL with *why (and *outcome) set. */
static req_t *admit_range(pm_t *pm, rkind_t kind, uint64_t request_id, const char *peer,
                          uint64_t start, uint32_t count, uint32_t max, conn_t **conn,
                          char *why_buf, size_t why_len, const char **why, int *outcome)
{
    *outcome = ALYS__PEER__OUTCOME__NO_PEER;
    *conn = usable_conn(pm, peer, why);
    if (!*conn)
        return NULL;
    req_t *r = req_free_slot(pm->net);
    if (!r) {
        *why = "too many requests in flight";
        *outcome = ALYS__PEER__OUTCOME__BUSY;
        return NULL;
    }
    if (count == 0 || count > max || start == 0) {
        snprintf(why_buf, why_len, "bad request: count must be 1..%u and start >= 1", max);
        *why = why_buf;
        return NULL;
    }
    *r = (req_t){.kind = kind, .request_id = request_id, .start = start, .count = count};
    snprintf(r->peer_id, sizeof r->peer_id, "%s", peer);
    return r;
}

void pn_fetch_headers(pm_t *pm, const Alys__Peer__FetchHeaders *req)
{
    const char *why = NULL;
    char why_buf[96];
    const char *peer = req->peer_id ? req->peer_id : "";
    int outcome;
    conn_t *c;
    req_t *r = admit_range(pm, R_HEADERS, req->request_id, peer, req->start, req->count,
                           ALYS_WIRE_MAX_HEADERS, &c, why_buf, sizeof why_buf, &why, &outcome);
    if (r) {
        why = send_range(pm, c, r, req->timeout_ms);
        if (why)
            req_clear(r);
    }
    if (why)
        report_headers(pm, req->request_id, peer, outcome, req->start, NULL, 0, why, 0);
}

/* Expected hashes: none, or exactly count 32-byte hashes. */
static int copy_expected(const Alys__Peer__FetchBlocks *req, req_t *r)
{
    if (req->n_expected_hashes == 0)
        return 0;
    if (req->n_expected_hashes != req->count)
        return -1;
    r->expected = malloc((size_t) req->count * ALYS_HASH_LEN);
    if (!r->expected)
        return -1;
    for (size_t i = 0; i < req->count; i++) {
        if (req->expected_hashes[i].len != ALYS_HASH_LEN)
            return -1;
        memcpy(r->expected[i], req->expected_hashes[i].data, ALYS_HASH_LEN);
    }
    return 0;
}

void pn_fetch_blocks(pm_t *pm, const Alys__Peer__FetchBlocks *req)
{
    const char *why = NULL;
    char why_buf[96];
    const char *peer = req->peer_id ? req->peer_id : "";
    int outcome;
    conn_t *c;
    req_t *r = admit_range(pm, R_BLOCKS, req->request_id, peer, req->start, req->count,
                           ALYS_WIRE_MAX_BLOCKS, &c, why_buf, sizeof why_buf, &why, &outcome);
    if (r) {
        if (copy_expected(req, r) != 0)
            why = "bad request: expected_hashes must be count 32-byte hashes";
        else
            why = send_range(pm, c, r, req->timeout_ms);
        if (why)
            req_clear(r);
    }
    if (why)
        report_fetch(pm, req->request_id, peer, outcome, req->start, 0, 0, 0, why);
}

/* ---- responses ------------------------------------------------------------- */

static void observe_latency(pm_t *pm, const char *peer_id, uint32_t ms)
{
    char labels[96];
    snprintf(labels, sizeof labels, "peer_id=\"%s\"", peer_id);
    alys_metric_observe(alys_actor_metrics(pm->actor), "alys_peer_response_time_seconds", labels,
                        "Response time of remote peers", ms / 1000.0);
}

static void on_headers(pm_t *pm, req_t *r, const alys_wire_msg_t *m)
{
    const Alys__Wire__Headers *h = m->headers;
    uint32_t latency = (uint32_t) (pm_mono() - r->sent_at);
    char detail[ALYS_WIRE_DETAIL_MAX];
    bool partial = false;
    alys_wire_verdict_t k = alys_wire_check_range(r->start, r->count, h->start, h->n_headers,
                                           h->truncated, &partial, detail, sizeof detail);
    if (k == ALYS_WIRE_OK)
        k = alys_wire_check_headers(h->headers, h->n_headers, r->start, NULL, detail, sizeof detail);
    observe_latency(pm, r->peer_id, latency);
    /* A latency sample only: header bytes and counts would skew the
     * bandwidth and blocks-per-request that batch sizes and timeouts use. */
    peer_outcome_t o = {.kind = (peer_outcome_kind_t) k, .latency_ms = latency, .reason = detail};
    pm_record(pm, r->peer_id, &o);
    /* Headers are only as good as SyncActor's verification: a short answer
     * still carries them, it verifies what it got. */
    bool data = k == ALYS_WIRE_OK || k == ALYS_WIRE_SHORT;
    int outcome = k == ALYS_WIRE_OK && partial ? ALYS__PEER__OUTCOME__OK : (int) k;
    report_headers(pm, r->request_id, r->peer_id, outcome, r->start, data ? h->headers : NULL,
                   data ? h->n_headers : 0, detail, latency);
}

static void on_blocks(pm_t *pm, req_t *r, const alys_wire_msg_t *m, size_t frame_len)
{
    const Alys__Wire__Blocks *b = m->blocks;
    uint32_t latency = (uint32_t) (pm_mono() - r->sent_at);
    char detail[ALYS_WIRE_DETAIL_MAX];
    bool partial = false;
    alys_wire_verdict_t k = alys_wire_check_range(r->start, r->count, b->start, b->n_blocks,
                                           b->truncated, &partial, detail, sizeof detail);
    if (k == ALYS_WIRE_OK || k == ALYS_WIRE_SHORT)
        k = alys_wire_check_blocks(b->blocks, b->n_blocks, r->start,
                            (const uint8_t (*)[ALYS_HASH_LEN]) r->expected,
                            r->expected ? r->count : 0, NULL, detail, sizeof detail) == ALYS_WIRE_OK
                ? k : ALYS_WIRE_INVALID;
    observe_latency(pm, r->peer_id, latency);
    peer_outcome_t o = {.kind = (peer_outcome_kind_t) k, .latency_ms = latency, .bytes = frame_len,
                        .blocks = (uint32_t) b->n_blocks, .reason = detail};
    pm_record(pm, r->peer_id, &o);
    uint32_t delivered = 0;
    int outcome = (int) k;
    if ((k == ALYS_WIRE_OK || k == ALYS_WIRE_SHORT) && b->n_blocks > 0) {
        outcome = pm_deliver(pm, r->request_id, r->peer_id, r->start, b->blocks, b->n_blocks,
                             (const uint8_t (*)[ALYS_HASH_LEN]) r->expected, &delivered);
        if (outcome == ALYS__PEER__OUTCOME__OK && (k == ALYS_WIRE_SHORT || partial))
            outcome = ALYS__PEER__OUTCOME__SHORT;  /* SyncActor fetches the rest */
    }
    report_fetch(pm, r->request_id, r->peer_id, outcome, r->start, delivered, latency, frame_len,
                 detail);
}

static void on_error(pm_t *pm, req_t *r, const alys_wire_msg_t *m)
{
    const Alys__Wire__WireError *e = m->error;
    uint32_t latency = (uint32_t) (pm_mono() - r->sent_at);
    char detail[ALYS_WIRE_DETAIL_MAX];
    snprintf(detail, sizeof detail, "peer answered error %d: %s", (int) e->code,
             e->message ? e->message : "");
    peer_outcome_t o = {.kind = PEER_OUTCOME_SHORT, .latency_ms = latency, .reason = detail};
    int outcome = ALYS__PEER__OUTCOME__SHORT;
    switch (e->code) {
    case ALYS__WIRE__WIRE_ERROR__CODE__RATE_LIMITED:
    case ALYS__WIRE__WIRE_ERROR__CODE__BAD_REQUEST:
        outcome = ALYS__PEER__OUTCOME__BUSY;   /* ours to fix, not the peer's fault */
        break;
    case ALYS__WIRE__WIRE_ERROR__CODE__UNAVAILABLE:
        o.kind = PEER_OUTCOME_TIMEOUT;         /* as useful as a silent peer, as mild */
        outcome = ALYS__PEER__OUTCOME__TIMEOUT;
        break;
    default:                                   /* NOT_FOUND: it lacks what it claimed */
        break;
    }
    if (outcome != ALYS__PEER__OUTCOME__BUSY)
        pm_record(pm, r->peer_id, &o);
    report_failure(pm, r, outcome, detail);
}

static void on_peers(pm_t *pm, const alys_wire_msg_t *m)
{
    for (size_t i = 0; i < m->peers->n_endpoints; i++)
        pn_learn_endpoint(pm, m->peers->endpoints[i]);
}

/* A response of the wrong kind for its request is a violation. */
static bool body_matches(const req_t *r, const alys_wire_msg_t *m)
{
    switch (m->body_case) {
    case ALYS__WIRE__WIRE_MSG__BODY_HEADERS: return r->kind == R_HEADERS;
    case ALYS__WIRE__WIRE_MSG__BODY_BLOCKS: return r->kind == R_BLOCKS;
    case ALYS__WIRE__WIRE_MSG__BODY_PEERS: return r->kind == R_PEERS;
    case ALYS__WIRE__WIRE_MSG__BODY_ERROR: return true;
    default: return false;
    }
}

static void on_response(pm_t *pm, conn_t *c, const alys_wire_msg_t *m, size_t frame_len)
{
    req_t *r = req_take(pm->net, c, m->request_id);
    if (!r) {
        pm->net->late++;
        alys_metric_add(alys_actor_metrics(pm->actor), "alys_peer_late_responses_total", NULL,
                        "Responses to requests no longer pending (timed out, duplicates)", 1);
        return;
    }
    if (!body_matches(r, m)) {
        peer_outcome_t o = {.kind = PEER_OUTCOME_VIOLATION, .reason = "response of the wrong kind"};
        pm_record(pm, r->peer_id, &o);
        report_failure(pm, r, ALYS__PEER__OUTCOME__VIOLATION, "response of the wrong kind");
    } else if (m->body_case == ALYS__WIRE__WIRE_MSG__BODY_HEADERS) {
        on_headers(pm, r, m);
    } else if (m->body_case == ALYS__WIRE__WIRE_MSG__BODY_BLOCKS) {
        on_blocks(pm, r, m, frame_len);
    } else if (m->body_case == ALYS__WIRE__WIRE_MSG__BODY_ERROR) {
        if (r->kind != R_PEERS)
            on_error(pm, r, m);
    } else {
        on_peers(pm, m);
    }
    req_clear(r);
}

/* NewBlock pushed by a peer: SyncActor decides (ProcessBlockBatch). */
static void on_new_block(pm_t *pm, conn_t *c, const alys_wire_msg_t *m)
{
    Alys__Sync__ProcessBlockBatch pbb = ALYS__SYNC__PROCESS_BLOCK_BATCH__INIT;
    ProtobufCBinaryData block = m->new_block->block;
    pbb.n_blocks = 1;
    pbb.blocks = &block;
    pbb.from_peer = c->peer_id;
    Alys__Sync__SyncMsg msg = ALYS__SYNC__SYNC_MSG__INIT;
    msg.msg_case = ALYS__SYNC__SYNC_MSG__MSG_PROCESS_BLOCK_BATCH;
    msg.process_block_batch = &pbb;
    if (pm_send_sync_msg(pm, &msg) != 0)
        log_debug("cannot forward a new block from %s", c->peer_id);
}

static conn_t *conn_by_sock(pn_t *self, zsock_t *sock)
{
    for (size_t i = 0; i < PN_MAX_CONNS; i++)
        if (self->conns[i].sock == sock)
            return &self->conns[i];
    return NULL;
}

static void dispatch(pm_t *pm, conn_t *c, const alys_wire_msg_t *m, size_t frame_len)
{
    int64_t now = pm_mono();
    bool handshaking = c->state == C_DIALING || c->state == C_DOWN || c->state == C_READY;
    if (m->body_case == ALYS__WIRE__WIRE_MSG__BODY_STATUS) {
        if (handshaking)
            on_status(pm, c, m, now);
    } else if (m->body_case == ALYS__WIRE__WIRE_MSG__BODY_ERROR && c->probe_id &&
               m->request_id == c->probe_id) {
        on_status_error(pm, c, m, now);
    } else if (m->body_case == ALYS__WIRE__WIRE_MSG__BODY_NEW_BLOCK) {
        if (c->state == C_READY)
            on_new_block(pm, c, m);
    } else if (c->state == C_READY || c->state == C_DOWN) {
        on_response(pm, c, m, frame_len);
    }
}

static int on_conn(alys_actor_t *actor, zsock_t *sock, void *arg)
{
    (void) actor;
    pm_t *pm = arg;
    zmsg_t *msg = zmsg_recv(sock);
    if (!msg)
        return 0;
    conn_t *c = conn_by_sock(pm->net, sock);
    zframe_t *f = zmsg_first(msg);
    if (c && c->state != C_FREE && zmsg_size(msg) == 1) {
        char err[160];
        alys_wire_msg_t *m = alys_wire_decode(zframe_data(f), zframe_size(f), err, sizeof err);
        if (m) {
            dispatch(pm, c, m, zframe_size(f));
            alys_wire_free(&m);
        } else if (c->peer_id[0] && c->state == C_READY) {
            /* Undecodable or over its bounds: its fault, whatever it was. */
            log_warn("peer %s sent a bad frame: %s", c->peer_id, err);
            peer_outcome_t o = {.kind = PEER_OUTCOME_VIOLATION, .reason = err};
            pm_record(pm, c->peer_id, &o);
        }
    }
    zmsg_destroy(&msg);
    return 0;
}

/* ---- listings -------------------------------------------------------------- */

size_t pn_endpoints(pm_t *pm, const char **out, size_t cap)
{
    size_t n = 0;
    for (size_t i = 0; i < PN_MAX_CONNS && n < cap; i++)
        if (pm->net->conns[i].state == C_READY)
            out[n++] = pm->net->conns[i].endpoint;
    return n;
}

size_t pn_refused(pm_t *pm, pn_refused_t *out, size_t cap)
{
    size_t n = 0;
    for (size_t i = 0; i < PN_MAX_CONNS && n < cap; i++) {
        const conn_t *c = &pm->net->conns[i];
        bool refused = c->state == C_REFUSED;
        bool dialling = (c->state == C_IDLE || c->state == C_DIALING) && !c->peer_id[0];
        /* Those with a table entry (or a ban) are listed from the table. */
        if ((!refused && !dialling) || (c->peer_id[0] && peer_table_contains(pm->table, c->peer_id)))
            continue;
        snprintf(out[n].endpoint, sizeof out[n].endpoint, "%s", c->endpoint);
        snprintf(out[n].reason, sizeof out[n].reason, "%s",
                 refused ? c->reason : c->failures ? "no answer yet" : "");
        alys_wire_endpoint_id(c->endpoint, out[n].peer_id, sizeof out[n].peer_id);
        out[n].state = refused ? "refused" : "connecting";
        n++;
    }
    return n;
}

size_t pn_connected_count(pm_t *pm)
{
    size_t n = 0;
    for (size_t i = 0; i < PN_MAX_CONNS; i++)
        n += pm->net->conns[i].state == C_READY;
    return n;
}
