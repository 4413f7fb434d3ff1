/*  pm_peerset.c: the PeerSet (see pm.h) for SyncActor and alysctl peers, and
 *  the peer gauges. What it lists, in which order, and when it is pushed
 *  are pm_list.h's; this file gathers peer_net's and peer_serve's unlisted
 *  endpoints, sends, and sets the gauges. */
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "pm.h"
#include "pm_addrbook.h"
#include "pm_reqs.h"

Alys__Peer__PeerSet *pm_peerset_new(pm_t *pm, bool all)
{
    pm_unlisted_t *unlisted = NULL;
    size_t n = 0;
    if (all) {
        unlisted = calloc(PM_LIST_UNLISTED_CAP * 2, sizeof *unlisted);
        if (!unlisted)
            return NULL;
        n = pn_refused(pm, unlisted, PM_LIST_UNLISTED_CAP);
        n += ps_refused(pm, unlisted + n, PM_LIST_UNLISTED_CAP);
    }
    Alys__Peer__PeerSet *set = pm_list_peerset(pm->table, pm_now(pm), all, unlisted, n);
    free(unlisted);
    if (set && all) { /* alysctl peers: the address book's size too */
        pm_book_stats_t st;
        pm_addrbook_stats(pn_addrbook(pm), &st);
        set->book_new = (uint32_t) st.n_new;
        set->book_tried = (uint32_t) st.n_tried;
        set->book_bootstrap = (uint32_t) st.n_boot;
    }
    return set;
}

void pm_peerset_free(Alys__Peer__PeerSet **set_p)
{
    pm_list_free(set_p);
}

static void peer_metrics(pm_t *pm, const Alys__Peer__PeerSet *set)
{
    alys_metrics_t *m = pm->metrics;
    uint64_t now = pm_now(pm);
    alys_metric_set(m, "alys_sync_peer_count", NULL, "Number of peers available for sync",
                    (double) peer_table_eligible_count(pm->table, now));
    alys_metric_set(m, "alys_peers_connected", NULL, "Remote peers with a live handshake",
                    (double) pn_connected_count(pm));
    alys_metric_set(m, "alys_peers_banned", NULL, "Peers under an active ban",
                    (double) peer_table_ban_count(pm->table, now));
    alys_metric_set(m, "alys_peer_batch_size", NULL, "Adaptive blocks per request",
                    (double) set->batch_size);
    for (size_t i = 0; i < set->n_peers; i++) {
        char labels[96];
        snprintf(labels, sizeof labels, "peer_id=\"%s\"", set->peers[i]->peer_id);
        alys_metric_set(m, "alys_peer_score", labels, "Peer score [-100, 100]", set->peers[i]->score);
    }
}

void pm_push_peerset(pm_t *pm, bool force)
{
    int64_t now = pm_mono(pm);
    if (!pm_list_push_due(force, pm->peerset_dirty, pm->peerset_at, now))
        return;
    Alys__Peer__PeerSet *set = pm_peerset_new(pm, false);
    if (!set)
        return;
    Alys__Peer__PeerMsg msg = ALYS__PEER__PEER_MSG__INIT;
    msg.msg_case = ALYS__PEER__PEER_MSG__MSG_PEER_SET;
    msg.peer_set = set;
    if (pm_send_sync_peer(pm, &msg) != 0)
        log_debug("cannot send the peer set to sync");
    peer_metrics(pm, set);
    pm_peerset_free(&set);
    pm->peerset_dirty = false;
    pm->peerset_at = now;
}

/* ---- GetInFlight --------------------------------------------------------------- */

/* One allocation: the message, the pointer array, the ranges and their
 * peer ids (pm_in_flight_free frees it, not protobuf-c). */
typedef struct {
    Alys__Peer__InFlight msg;
    Alys__Peer__InFlightRange **ptrs;
    Alys__Peer__InFlightRange *ranges;
    char (*ids)[PEER_ID_MAX];
    size_t cap;
} in_flight_buf_t;

static void buf_free(in_flight_buf_t *b)
{
    if (!b)
        return;
    free(b->ptrs);
    free(b->ranges);
    free(b->ids);
    free(b);
}

static void in_flight_add(in_flight_buf_t *b, uint64_t request_id, const char *peer,
                          uint64_t start, uint32_t count, bool delivered)
{
    if (b->msg.n_ranges >= b->cap || (request_id & PM_GOSSIP_REQ_BIT))
        return;
    size_t i = b->msg.n_ranges++;
    Alys__Peer__InFlightRange *r = &b->ranges[i];
    alys__peer__in_flight_range__init(r);
    snprintf(b->ids[i], sizeof b->ids[i], "%s", peer);
    r->request_id = request_id;
    r->peer_id = b->ids[i];
    r->start = start;
    r->count = count;
    r->delivered = delivered;
    b->ptrs[i] = r;
}

Alys__Peer__InFlight *pm_in_flight_new(pm_t *pm)
{
    size_t n_buf = reorder_capacity(pm->reorder), n_req = PM_REQS_MAX;
    in_flight_buf_t *b = calloc(1, sizeof *b);
    reorder_ref_t *buffered = calloc(n_buf, sizeof *buffered);
    pn_block_req_t *reqs = calloc(n_req, sizeof *reqs);
    size_t cap = n_buf + n_req;
    if (b) {
        b->ptrs = calloc(cap, sizeof *b->ptrs);
        b->ranges = calloc(cap, sizeof *b->ranges);
        b->ids = calloc(cap, sizeof *b->ids);
    }
    if (!b || !buffered || !reqs || !b->ptrs || !b->ranges || !b->ids) {
        free(buffered);
        free(reqs);
        buf_free(b);
        return NULL;
    }
    b->cap = cap;
    alys__peer__in_flight__init(&b->msg);
    b->msg.ranges = b->ptrs;
    size_t n = pn_block_requests(pm, reqs, n_req);
    for (size_t i = 0; i < n && i < n_req; i++)
        in_flight_add(b, reqs[i].request_id, reqs[i].peer_id, reqs[i].start, reqs[i].count, false);
    n = reorder_list(pm->reorder, buffered, n_buf);
    for (size_t i = 0; i < n && i < n_buf; i++)
        in_flight_add(b, buffered[i].request_id, buffered[i].peer_id, buffered[i].start,
                      buffered[i].count, true);
    free(buffered);
    free(reqs);
    return &b->msg;
}

void pm_in_flight_free(Alys__Peer__InFlight **p)
{
    if (!p || !*p)
        return;
    buf_free((in_flight_buf_t *) (void *) *p); /* msg is its first member */
    *p = NULL;
}

int pm_core_on_get_in_flight(pm_t *self, uint64_t corr_id)
{
    Alys__Peer__InFlight *inf = pm_in_flight_new(self);
    if (!inf)
        return -1;
    Alys__Peer__PeerMsg msg = ALYS__PEER__PEER_MSG__INIT;
    msg.msg_case = ALYS__PEER__PEER_MSG__MSG_IN_FLIGHT;
    msg.in_flight = inf;
    alys_env_t env = ALYS__BUS__ENVELOPE__INIT;
    env.corr_id = corr_id;
    env.reply = true;
    env.body_case = ALYS__BUS__ENVELOPE__BODY_PEER;
    env.peer = &msg;
    int rc = self->port.send(self->port.ctx, PM_TO_SYNC, &env);
    if (rc == 0)
        log_info("told sync of %zu ranges we hold for it", inf->n_ranges);
    pm_in_flight_free(&inf);
    return rc == 0 ? 0 : -1;
}

/* A mailbox reply through the port: msg, or else an error (code, text). */
static void mailbox_answer(pm_t *self, const uint8_t *route, size_t route_len, uint64_t corr,
                           Alys__Peer__PeerMsg *msg, uint32_t code, const char *text, const char *what)
{
    alys_env_t rep = ALYS__BUS__ENVELOPE__INIT;
    Alys__Bus__Error error = ALYS__BUS__ERROR__INIT;
    if (msg) {
        rep.body_case = ALYS__BUS__ENVELOPE__BODY_PEER;
        rep.peer = msg;
    } else {
        error.code = code;
        error.message = (char *) text;
        rep.body_case = ALYS__BUS__ENVELOPE__BODY_ERROR;
        rep.error = &error;
    }
    if (self->port.mailbox_reply(self->port.ctx, route, route_len, corr, &rep) != 0)
        log_debug("cannot answer %s (requester gone)", what);
}

static void answer_peers(pm_t *self, const uint8_t *route, size_t route_len, uint64_t corr)
{
    Alys__Peer__PeerSet *set = pm_peerset_new(self, true);
    if (!set) {
        mailbox_answer(self, route, route_len, corr, NULL, ALYS_ERR_INTERNAL, "out of memory",
                       "GetPeers");
        return;
    }
    Alys__Peer__PeerMsg msg = ALYS__PEER__PEER_MSG__INIT;
    msg.msg_case = ALYS__PEER__PEER_MSG__MSG_PEER_SET;
    msg.peer_set = set;
    mailbox_answer(self, route, route_len, corr, &msg, 0, NULL, "GetPeers");
    pm_peerset_free(&set);
}

/* SyncActor's goes back on our socket to it (pm_core_on_get_in_flight:
 * behind the results sent before it); anyone else's as a mailbox reply. */
static void answer_in_flight(pm_t *self, const uint8_t *route, size_t route_len, const alys_env_t *req)
{
    if (req->sender && strcmp(req->sender, "sync") == 0) {
        if (pm_core_on_get_in_flight(self, req->corr_id) != 0)
            mailbox_answer(self, route, route_len, req->corr_id, NULL, ALYS_ERR_INTERNAL,
                           "cannot answer GetInFlight", "GetInFlight");
        return;
    }
    Alys__Peer__InFlight *inf = pm_in_flight_new(self);
    if (!inf) {
        mailbox_answer(self, route, route_len, req->corr_id, NULL, ALYS_ERR_INTERNAL,
                       "out of memory", "GetInFlight");
        return;
    }
    Alys__Peer__PeerMsg msg = ALYS__PEER__PEER_MSG__INIT;
    msg.msg_case = ALYS__PEER__PEER_MSG__MSG_IN_FLIGHT;
    msg.in_flight = inf;
    mailbox_answer(self, route, route_len, req->corr_id, &msg, 0, NULL, "GetInFlight");
    pm_in_flight_free(&inf);
}

void pm_core_on_mailbox_request(pm_t *self, const uint8_t *route, size_t route_len,
                                const alys_env_t *req)
{
    if (req->body_case != ALYS__BUS__ENVELOPE__BODY_PEER || !req->peer)
        return;
    if (req->peer->msg_case == ALYS__PEER__PEER_MSG__MSG_GET_PEERS)
        answer_peers(self, route, route_len, req->corr_id);
    else if (req->peer->msg_case == ALYS__PEER__PEER_MSG__MSG_GET_IN_FLIGHT)
        answer_in_flight(self, route, route_len, req);
}
