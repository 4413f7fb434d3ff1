/*  pm_peerset.c: the PeerSet (see pm.h): the peer table's entries, best
 *  first, for SyncActor (pushed on change and every 2 s) and, with every
 *  ban and refused endpoint, for alysctl peers; and the peer gauges. The top
 *  of the shell below main.c: it reads peer_net's and peer_serve's listings. */
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "pm.h"

#define PN_REFUSED_CAP 64 /* unlisted endpoints taken from each side */
#define PS_CAP         (PEER_TABLE_MAX_PEERS + PEER_MAX_BANS + PN_REFUSED_CAP * 2)

/* Everything a PeerSet points to; set is first so a PeerSet* is a holder*. */
typedef struct {
    Alys__Peer__PeerSet set;
    Alys__Peer__PeerEntry *entries; /* PS_CAP */
    Alys__Peer__PeerEntry **ptrs;
    uint32_t *timeouts;
    peer_view_t *views;    /* PEER_TABLE_MAX_PEERS: strings live here */
    peer_ban_t *bans;      /* PEER_MAX_BANS */
    pn_refused_t *refused; /* PN_REFUSED_CAP * 2 */
    peer_ref_t *order;     /* PEER_TABLE_MAX_PEERS */
} holder_t;

void pm_peerset_free(Alys__Peer__PeerSet **set_p)
{
    if (!set_p || !*set_p)
        return;
    holder_t *h = (holder_t *) *set_p;
    free(h->entries);
    free(h->ptrs);
    free(h->timeouts);
    free(h->views);
    free(h->bans);
    free(h->refused);
    free(h->order);
    free(h);
    *set_p = NULL;
}

static Alys__Peer__PeerEntry *entry_add(holder_t *h)
{
    if (h->set.n_peers >= PS_CAP)
        return NULL;
    Alys__Peer__PeerEntry *e = &h->entries[h->set.n_peers];
    *e = (Alys__Peer__PeerEntry) ALYS__PEER__PEER_ENTRY__INIT;
    h->ptrs[h->set.n_peers++] = e;
    return e;
}

static void entry_from_view(Alys__Peer__PeerEntry *e, peer_view_t *v)
{
    e->peer_id = v->info.peer_id;
    e->endpoint = v->info.endpoint;
    /* Connected but below the score cutoff: not for sync, and said so, as
     * SyncActor reads "connected" as usable. */
    e->state = v->info.state == PEER_STATE_CONNECTED && !v->eligible
                   ? "low_score"
                   : (char *) peer_state_name(v->info.state);
    e->reported_height = v->info.reported_height;
    e->score = v->score;
    e->latency_ms = v->metrics.average_latency_ms;
    e->bandwidth = v->metrics.bandwidth_bps;
    e->error_rate = v->metrics.error_rate;
    e->reliability = v->metrics.reliability_score;
    e->blocks_served = v->metrics.blocks_served;
    e->ban_until = v->info.state == PEER_STATE_BANNED ? v->info.ban_until : 0;
    e->ban_reason = v->ban_reason;
    e->min_rtt_ms = v->metrics.min_rtt_ms;
}

static bool in_order(const holder_t *h, size_t n_order, const char *id)
{
    for (size_t i = 0; i < n_order; i++)
        if (strcmp(h->order[i].id, id) == 0)
            return true;
    return false;
}

/* Selected peers first, best first; then (all) every other entry. */
static void add_table(pm_t *pm, holder_t *h, bool all, uint64_t now)
{
    peer_select_req_t req = {.count = PEER_TABLE_MAX_PEERS};
    size_t n_order = peer_table_select(pm->table, &req, now, h->order, PEER_TABLE_MAX_PEERS);
    size_t n_views = 0;
    for (size_t i = 0; i < n_order; i++) {
        peer_view_t *v = &h->views[n_views];
        if (peer_table_get(pm->table, h->order[i].id, now, v) != PEER_OK)
            continue;
        n_views++;
        Alys__Peer__PeerEntry *e = entry_add(h);
        entry_from_view(e, v);
        h->timeouts[h->set.n_timeout_ms++] = peer_table_request_timeout(pm->table, v->info.peer_id,
                                                                        h->set.batch_size);
    }
    if (!all)
        return;
    peer_view_t *rest = &h->views[n_views];
    size_t n = peer_table_list(pm->table, now, rest, PEER_TABLE_MAX_PEERS - n_views);
    for (size_t i = 0; i < n; i++) {
        if (in_order(h, n_order, rest[i].info.peer_id))
            continue;
        Alys__Peer__PeerEntry *e = entry_add(h);
        if (!e)
            return;
        entry_from_view(e, &rest[i]);
        h->timeouts[h->set.n_timeout_ms++] = rest[i].timeout_ms;
    }
}

/* Bans of peers not in the table (after a restart, or never connected). */
static void add_bans(pm_t *pm, holder_t *h, uint64_t now)
{
    size_t n = peer_table_export_bans(pm->table, now, h->bans, PEER_MAX_BANS);
    for (size_t i = 0; i < n; i++) {
        if (h->bans[i].peer_id[0] && peer_table_contains(pm->table, h->bans[i].peer_id))
            continue;
        Alys__Peer__PeerEntry *e = entry_add(h);
        if (!e)
            return;
        e->peer_id = h->bans[i].peer_id;
        e->endpoint = h->bans[i].endpoint;
        e->state = "banned";
        e->ban_until = h->bans[i].ban_until;
        e->ban_reason = h->bans[i].reason;
        h->timeouts[h->set.n_timeout_ms++] = 0;
    }
}

static void add_refused(pm_t *pm, holder_t *h)
{
    size_t n = pn_refused(pm, h->refused, PN_REFUSED_CAP);
    n += ps_refused(pm, h->refused + n, PN_REFUSED_CAP);
    for (size_t i = 0; i < n; i++) {
        Alys__Peer__PeerEntry *e = entry_add(h);
        if (!e)
            return;
        e->peer_id = h->refused[i].peer_id;
        e->endpoint = h->refused[i].endpoint;
        e->state = (char *) h->refused[i].state;
        e->ban_reason = h->refused[i].reason;
        h->timeouts[h->set.n_timeout_ms++] = 0;
    }
}

Alys__Peer__PeerSet *pm_peerset_new(pm_t *pm, bool all)
{
    holder_t *h = calloc(1, sizeof *h);
    if (!h)
        return NULL;
    h->entries = calloc(PS_CAP, sizeof *h->entries);
    h->ptrs = calloc(PS_CAP, sizeof *h->ptrs);
    h->timeouts = calloc(PS_CAP, sizeof *h->timeouts);
    h->views = calloc(PEER_TABLE_MAX_PEERS, sizeof *h->views);
    h->order = calloc(PEER_TABLE_MAX_PEERS, sizeof *h->order);
    h->bans = all ? calloc(PEER_MAX_BANS, sizeof *h->bans) : NULL;
    h->refused = all ? calloc(PN_REFUSED_CAP * 2, sizeof *h->refused) : NULL;
    Alys__Peer__PeerSet *set = &h->set;
    if (!h->entries || !h->ptrs || !h->timeouts || !h->views || !h->order ||
        (all && (!h->bans || !h->refused))) {
        pm_peerset_free(&set);
        return NULL;
    }
    uint64_t now = pm_now();
    h->set = (Alys__Peer__PeerSet) ALYS__PEER__PEER_SET__INIT;
    h->set.peers = h->ptrs;
    h->set.timeout_ms = h->timeouts;
    h->set.batch_size = peer_table_batch_size(pm->table, now);
    h->set.strategy = (char *) peer_strategy_name(peer_table_config(pm->table)->strategy);
    add_table(pm, h, all, now);
    if (all) {
        add_bans(pm, h, now);
        add_refused(pm, h);
    }
    return set;
}

static void peer_metrics(pm_t *pm, const Alys__Peer__PeerSet *set)
{
    alys_metrics_t *m = alys_actor_metrics(pm->actor);
    uint64_t now = pm_now();
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
    int64_t now = pm_mono();
    if (!force && !pm->peerset_dirty && now - pm->peerset_at < 2000)
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
