/*  pm_flow.c: see pm_flow.h. */
#include "pm_flow.h"

#include <stdio.h>

#include "nodeaddr.h"
#include "util.h"

bool pm_flow_discover(bool newly_ready, bool was_in_table, uint64_t height_before, uint64_t height_now)
{
    return newly_ready || !was_in_table || height_before != height_now;
}

bool pm_flow_wrong_genesis(peer_table_t *table, const char *endpoint, const char *node_id,
                           uint64_t now, char *id, size_t idlen, char *why, size_t whylen)
{
    /* The key, when the endpoint has one: CURVE proved it is this peer's,
     * so the ban cannot land on an honest node. */
    if (alys_nodeaddr_key_hex(endpoint, id, idlen) != 0)
        alys_wire_endpoint_id(endpoint, id, idlen);
    snprintf(why, whylen, "wrong genesis (node %s)", node_id && *node_id ? node_id : "?");
    int rc = peer_table_add(table, id, endpoint, now);
    if (rc != PEER_OK && rc != PEER_ERR_EXISTS)
        return false;
    peer_action_t action = PEER_ACTION_NONE;
    peer_table_blame_now(table, id, PEER_OUTCOME_VIOLATION, why, now, &action);
    return action == PEER_ACTION_BAN;
}

bool pm_flow_drop_outcome(const reorder_ref_t *d, Alys__Peer__BatchOutcome *bo)
{
    if (d->why == REORDER_DROP_SUPERSEDED)
        return false;
    *bo = (Alys__Peer__BatchOutcome) ALYS__PEER__BATCH_OUTCOME__INIT;
    bo->request_id = d->request_id;
    bo->peer_id = (char *) d->peer_id;
    bo->start = d->start;
    if (d->why == REORDER_DROP_COMMITTED) {
        bo->committed = d->count;
        bo->detail = "already committed";
    } else {
        bo->failed = true;
        bo->failed_height = d->start;
        bo->reason = "dropped";
        bo->detail = (char *) reorder_drop_name(d->why);
    }
    return true;
}

bool pm_flow_bp_busy(uint32_t code)
{
    return code != ALYS_ERR_BAD_REQUEST;
}

pm_head_t pm_flow_head(const Alys__Storage__Head *h, int64_t asked_at, int64_t bp_reply_at)
{
    if (h->genesis_hash.len != ALYS_HASH_LEN)
        return PM_HEAD_NO_GENESIS;
    return asked_at < bp_reply_at ? PM_HEAD_STALE : PM_HEAD_MOVED;
}
