/*  pm_list.c: see pm_list.h. */
#include "pm_list.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define UNLISTED_MAX (PM_LIST_UNLISTED_CAP * 2)
#define PS_CAP       (PEER_TABLE_MAX_PEERS + PEER_MAX_BANS + UNLISTED_MAX)

/* Everything a PeerSet points to; set is first so a PeerSet* is a holder*. */
typedef struct {
    Alys__Peer__PeerSet set;
    Alys__Peer__PeerEntry *entries; /* PS_CAP */
    Alys__Peer__PeerEntry **ptrs;
    uint32_t *timeouts;
    peer_view_t *views;     /* PEER_TABLE_MAX_PEERS: strings live here */
    peer_ban_t *bans;       /* PEER_MAX_BANS */
    pm_unlisted_t *refused; /* UNLISTED_MAX */
    peer_ref_t *order;      /* PEER_TABLE_MAX_PEERS */
} holder_t;

void pm_list_free(Alys__Peer__PeerSet **set_p)
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

/* selected: in peer_table_select's order, which takes peers below the
 * cutoff when nobody eligible can serve: those are for sync too. */
static void entry_from_view(Alys__Peer__PeerEntry *e, peer_view_t *v, bool selected)
{
    e->peer_id = v->info.peer_id;
    e->endpoint = v->info.endpoint;
    /* Connected, below the score cutoff and not selected: not for sync, and
     * said so, as SyncActor reads "connected" as usable. */
    e->state = v->info.state == PEER_STATE_CONNECTED && !v->eligible && !selected
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
    e->direction = "out"; /* the table holds the peers we dial */
}

static bool in_order(const holder_t *h, size_t n_order, const char *id)
{
    for (size_t i = 0; i < n_order; i++)
        if (strcmp(h->order[i].id, id) == 0)
            return true;
    return false;
}

/* Selected peers first, best first; then (all) every other entry. */
static void add_table(peer_table_t *table, holder_t *h, bool all, uint64_t now)
{
    peer_select_req_t req = {.count = PEER_TABLE_MAX_PEERS};
    size_t n_order = peer_table_select(table, &req, now, h->order, PEER_TABLE_MAX_PEERS);
    size_t n_views = 0;
    for (size_t i = 0; i < n_order; i++) {
        peer_view_t *v = &h->views[n_views];
        if (peer_table_get(table, h->order[i].id, now, v) != PEER_OK)
            continue;
        n_views++;
        Alys__Peer__PeerEntry *e = entry_add(h);
        entry_from_view(e, v, true);
        h->timeouts[h->set.n_timeout_ms++] = peer_table_request_timeout(table, v->info.peer_id,
                                                                        h->set.batch_size);
    }
    if (!all)
        return;
    peer_view_t *rest = &h->views[n_views];
    size_t n = peer_table_list(table, now, rest, PEER_TABLE_MAX_PEERS - n_views);
    for (size_t i = 0; i < n; i++) {
        if (in_order(h, n_order, rest[i].info.peer_id))
            continue;
        Alys__Peer__PeerEntry *e = entry_add(h);
        if (!e)
            return;
        entry_from_view(e, &rest[i], false);
        h->timeouts[h->set.n_timeout_ms++] = rest[i].timeout_ms;
    }
}

/* Bans of peers not in the table (after a restart, or never connected). */
static void add_bans(peer_table_t *table, holder_t *h, uint64_t now)
{
    size_t n = peer_table_export_bans(table, now, h->bans, PEER_MAX_BANS);
    for (size_t i = 0; i < n; i++) {
        if (h->bans[i].peer_id[0] && peer_table_contains(table, h->bans[i].peer_id))
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

static void add_refused(holder_t *h, const pm_unlisted_t *unlisted, size_t n)
{
    n = n < UNLISTED_MAX ? n : UNLISTED_MAX;
    if (n)
        memcpy(h->refused, unlisted, n * sizeof *unlisted);
    for (size_t i = 0; i < n; i++) {
        Alys__Peer__PeerEntry *e = entry_add(h);
        if (!e)
            return;
        e->peer_id = h->refused[i].peer_id;
        e->endpoint = h->refused[i].endpoint;
        e->state = (char *) h->refused[i].state;
        e->ban_reason = h->refused[i].reason;
        e->bytes_owed = h->refused[i].bytes_owed;
        e->address = h->refused[i].address;
        e->direction = h->refused[i].inbound ? "in" : "out";
        h->timeouts[h->set.n_timeout_ms++] = 0;
    }
}

Alys__Peer__PeerSet *pm_list_peerset(peer_table_t *table, uint64_t now, bool all,
                                     const pm_unlisted_t *unlisted, size_t n_unlisted)
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
    h->refused = all ? calloc(UNLISTED_MAX, sizeof *h->refused) : NULL;
    Alys__Peer__PeerSet *set = &h->set;
    if (!h->entries || !h->ptrs || !h->timeouts || !h->views || !h->order ||
        (all && (!h->bans || !h->refused))) {
        pm_list_free(&set);
        return NULL;
    }
    h->set = (Alys__Peer__PeerSet) ALYS__PEER__PEER_SET__INIT;
    h->set.peers = h->ptrs;
    h->set.timeout_ms = h->timeouts;
    h->set.batch_size = peer_table_batch_size(table, now);
    h->set.strategy = (char *) peer_strategy_name(peer_table_config(table)->strategy);
    add_table(table, h, all, now);
    if (all) {
        add_bans(table, h, now);
        add_refused(h, unlisted, n_unlisted);
    }
    return set;
}

/* ---- unlisted endpoints ------------------------------------------------------- */

size_t pm_list_conns(pm_conns_t *book, const peer_table_t *table, pm_unlisted_t *out, size_t cap)
{
    size_t n = 0;
    for (size_t i = 0; i < PM_CONN_MAX && n < cap; i++) {
        const pm_conn_t *c = pm_conns_at(book, i);
        if (!c)
            break;
        bool refused = c->state == PM_CONN_REFUSED;
        bool dialling = c->state == PM_CONN_IDLE || c->state == PM_CONN_DIALING;
        /* Those with a table entry (or a ban) are listed from the table. */
        if ((!refused && !dialling) || (c->peer_id[0] && peer_table_contains(table, c->peer_id)))
            continue;
        snprintf(out[n].endpoint, sizeof out[n].endpoint, "%s", c->endpoint);
        snprintf(out[n].reason, sizeof out[n].reason, "%s",
                 refused       ? c->reason
                 : c->failures ? "no answer yet"
                               : "");
        snprintf(out[n].peer_id, sizeof out[n].peer_id, "%s", c->peer_id);
        out[n].state = refused ? "refused" : "connecting";
        n++;
    }
    return n;
}

static const char *inbound_refusal(const pm_client_t *c, int64_t now)
{
    if (pm_client_refused(c, now))
        return c->reason;
    if (now - c->in.decided_at >= PM_INBOUND_REFUSED_MS)
        return NULL;
    switch (c->in.state) {
    case PM_INBOUND_TOO_MANY_FROM_ADDRESS: return "too many clients from its address";
    case PM_INBOUND_FULL: return "inbound slots full";
    case PM_INBOUND_EVICTED: return "evicted for a newcomer";
    default: return NULL;
    }
}

size_t pm_list_clients(pm_clients_t *clients, int64_t now, pm_unlisted_t *out, size_t cap)
{
    size_t n = 0;
    const pm_client_t *c;
    for (size_t i = 0; clients && n < cap && (c = pm_clients_at(clients, i)); i++) {
        if (!c->used)
            continue;
        const char *refused = inbound_refusal(c, now);
        if (!refused && !pm_inbound_live(&c->in, c->last_seen, now))
            continue;
        pm_unlisted_t *u = &out[n++];
        memset(u, 0, sizeof *u);
        if (c->listen[0])
            snprintf(u->endpoint, sizeof u->endpoint, "%s", c->listen);
        else
            snprintf(u->endpoint, sizeof u->endpoint, "inbound:%s", c->node_id[0] ? c->node_id : "?");
        snprintf(u->peer_id, sizeof u->peer_id, "%s", c->node_id[0] ? c->node_id : "?");
        snprintf(u->address, sizeof u->address, "%s", c->in.addr);
        u->bytes_owed = c->in.owed;
        u->inbound = true;
        if (refused) {
            snprintf(u->reason, sizeof u->reason, "inbound: %.80s", refused);
            u->state = "refused";
        } else {
            u->state = "inbound";
        }
    }
    return n;
}

/* ---- the push ------------------------------------------------------------------ */

bool pm_list_push_due(bool force, bool dirty, int64_t last_at, int64_t now)
{
    return force || dirty || now - last_at >= PM_LIST_PUSH_MS;
}
