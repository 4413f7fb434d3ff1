/*  pm_out.c: PeerManager's messages to SyncActor, and the stash of a pushed
 *  block for block gossip (see pm.h). The bottom of the shell: it calls no
 *  other module of it (only the pure pm_gossip.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "pm.h"
#include "pm_gossip.h"

int pm_send_sync_peer(pm_t *pm, Alys__Peer__PeerMsg *msg)
{
    alys_env_t env = ALYS__BUS__ENVELOPE__INIT;
    env.body_case = ALYS__BUS__ENVELOPE__BODY_PEER;
    env.peer = msg;
    return pm->port.send(pm->port.ctx, PM_TO_SYNC, &env);
}

int pm_send_sync_msg(pm_t *pm, Alys__Sync__SyncMsg *msg)
{
    alys_env_t env = ALYS__BUS__ENVELOPE__INIT;
    env.body_case = ALYS__BUS__ENVELOPE__BODY_SYNC;
    env.sync = msg;
    return pm->port.send(pm->port.ctx, PM_TO_SYNC, &env);
}

void pm_peer_discovered(pm_t *pm, const char *peer_id, uint64_t height, const uint8_t *head_hash)
{
    Alys__Sync__PeerDiscovered pd = ALYS__SYNC__PEER_DISCOVERED__INIT;
    pd.peer_id = (char *) peer_id;
    pd.reported_height = height;
    if (head_hash)
        pd.head_hash = (ProtobufCBinaryData){ALYS_HASH_LEN, (uint8_t *) head_hash};
    Alys__Sync__SyncMsg msg = ALYS__SYNC__SYNC_MSG__INIT;
    msg.msg_case = ALYS__SYNC__SYNC_MSG__MSG_PEER_DISCOVERED;
    msg.peer_discovered = &pd;
    if (pm_send_sync_msg(pm, &msg) != 0)
        log_debug("cannot tell sync about peer %s", peer_id);
    pm->peerset_dirty = true;
}

void pm_peer_disconnected(pm_t *pm, const char *peer_id, const char *reason)
{
    Alys__Sync__PeerDisconnected pd = ALYS__SYNC__PEER_DISCONNECTED__INIT;
    pd.peer_id = (char *) peer_id;
    pd.reason = (char *) reason;
    Alys__Sync__SyncMsg msg = ALYS__SYNC__SYNC_MSG__INIT;
    msg.msg_case = ALYS__SYNC__SYNC_MSG__MSG_PEER_DISCONNECTED;
    msg.peer_disconnected = &pd;
    if (pm_send_sync_msg(pm, &msg) != 0)
        log_debug("cannot tell sync peer %s left", peer_id);
    pm->peerset_dirty = true;
    if (pm->gossip)
        pmg_peer_gone(pm->gossip, peer_id); /* its orphans go with it */
}

void pm_stash_new_block(pm_t *pm, const char *peer, const ProtobufCBinaryData *block)
{
    pm_stash_clear(pm);
    if (!(pm->stash.bytes = malloc(block->len ? block->len : 1))) {
        log_warn("out of memory: a block pushed by %s is dropped", peer);
        return;
    }
    memcpy(pm->stash.bytes, block->data, block->len);
    pm->stash.len = block->len;
    snprintf(pm->stash.peer, sizeof pm->stash.peer, "%s", peer);
}

void pm_stash_clear(pm_t *pm)
{
    free(pm->stash.bytes);
    pm->stash.bytes = NULL;
    pm->stash.len = 0;
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

static void metric_outcome(pm_t *pm, const char *kind, int outcome)
{
    char labels[96];
    snprintf(labels, sizeof labels, "kind=\"%s\",outcome=\"%s\"", kind, outcome_label(outcome));
    alys_metric_add(pm->metrics, "alys_peer_requests_total", labels,
                    "Requests to remote peers by kind and outcome", 1);
}

void pm_report(pm_t *pm, bool headers, bool ours, uint64_t request_id, const char *peer_id,
               uint64_t start, const pm_result_t *res)
{
    if (ours || (request_id & PM_GOSSIP_REQ_BIT))
        return; /* GetPeers, gossip's ancestor fetches: nobody to tell */
    Alys__Peer__PeerMsg msg = ALYS__PEER__PEER_MSG__INIT;
    Alys__Peer__HeadersResult hr = ALYS__PEER__HEADERS_RESULT__INIT;
    Alys__Peer__FetchResult fr = ALYS__PEER__FETCH_RESULT__INIT;
    if (headers) {
        hr.request_id = request_id;
        hr.peer_id = (char *) peer_id;
        hr.outcome = (Alys__Peer__Outcome) res->outcome;
        hr.start = start;
        hr.n_headers = res->n_headers;
        hr.headers = (ProtobufCBinaryData *) res->headers;
        hr.detail = (char *) res->detail;
        hr.latency_ms = res->latency_ms;
        msg.msg_case = ALYS__PEER__PEER_MSG__MSG_HEADERS_RESULT;
        msg.headers_result = &hr;
    } else {
        fr.request_id = request_id;
        fr.peer_id = (char *) peer_id;
        fr.outcome = (Alys__Peer__Outcome) res->outcome;
        fr.start = start;
        fr.delivered = res->delivered;
        fr.latency_ms = res->latency_ms;
        fr.bytes = res->bytes;
        fr.detail = (char *) res->detail;
        fr.n_blocks = res->n_blocks;
        fr.blocks = (ProtobufCBinaryData *) res->blocks;
        msg.msg_case = ALYS__PEER__PEER_MSG__MSG_FETCH_RESULT;
        msg.fetch_result = &fr;
    }
    metric_outcome(pm, headers ? "headers" : "blocks", res->outcome);
    if (pm_send_sync_peer(pm, &msg) != 0)
        log_warn("cannot report request %llu to sync", (unsigned long long) request_id);
}
