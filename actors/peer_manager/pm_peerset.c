/*  pm_peerset.c: the PeerSet (see pm.h) for SyncActor and alysctl peers, and
 *  the peer gauges. What it lists, in which order, and when it is pushed
 *  are pm_list.h's; this file gathers peer_net's and peer_serve's unlisted
 *  endpoints, sends, and sets the gauges. */
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "pm.h"
#include "pm_addrbook.h"

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
