/*  pm_record.c: an outcome on a peer's record, and the action it earns (see
 *  pm.h). A connection to close is queued on pm_t (pm_close_later) for
 *  peer_net to carry out (pn_flush_closes) once the current event is
 *  handled: the modules that record (peer_net, peer_deliver, main) never
 *  call up into peer_net, and a connection is never closed under the
 *  handler that is still using it. */
#include <stdio.h>
#include <string.h>

#include "log.h"
#include "pm.h"

void pm_close_later(pm_t *pm, const char *peer_id, const char *why)
{
    for (size_t i = 0; i < pm->n_closing; i++)
        if (strcmp(pm->closing[i].peer_id, peer_id) == 0)
            return;
    if (pm->n_closing >= PM_CLOSING_MAX) {
        /* Not lost: a banned peer is refused every request and never
         * re-dialled, a dropped one is not selected (its score). */
        log_warn("close queue full: peer %s stays connected for now", peer_id);
        return;
    }
    pm_closing_t *c = &pm->closing[pm->n_closing++];
    snprintf(c->peer_id, sizeof c->peer_id, "%s", peer_id);
    snprintf(c->why, sizeof c->why, "%s", why);
}

void pm_apply_action(pm_t *pm, const char *peer_id, peer_action_t action, const char *reason)
{
    if (action == PEER_ACTION_NONE)
        return;
    char why[PEER_REASON_MAX + 32];
    snprintf(why, sizeof why, "%s: %s", action == PEER_ACTION_BAN ? "banned" : "score too low",
             reason ? reason : "");
    log_warn("peer %s %s", peer_id, why);
    if (action == PEER_ACTION_BAN) {
        pm_bans_changed(&pm->bans);
        alys_metric_add(pm->metrics, "alys_peer_bans_total", NULL, "Peers banned", 1);
    }
    pm_close_later(pm, peer_id, why);
    pm->peerset_dirty = true;
}

void pm_record(pm_t *pm, const char *peer_id, const peer_outcome_t *o)
{
    peer_action_t action = PEER_ACTION_NONE;
    uint64_t now = pm_now(pm);
    int rc = o->kind == PEER_OUTCOME_INVALID || o->kind == PEER_OUTCOME_VIOLATION
                 ? peer_table_blame_now(pm->table, peer_id, o->kind, o->reason, now, &action)
                 : peer_table_record(pm->table, peer_id, o, now, &action);
    if (rc != PEER_OK)
        return;
    if (o->kind != PEER_OUTCOME_OK)
        log_info("peer %s: %s (%s)", peer_id, peer_outcome_name(o->kind), o->reason ? o->reason : "");
    pm_apply_action(pm, peer_id, action, o->reason);
    pm->peerset_dirty = true;
}
