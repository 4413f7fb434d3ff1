/*  pm_out.c: PeerManager's messages to SyncActor (see pm.h). The bottom of
 *  the shell: it calls no other module. */
#include "log.h"
#include "pm.h"

int pm_send_sync_peer(pm_t *pm, Alys__Peer__PeerMsg *msg)
{
    alys_env_t env = ALYS__BUS__ENVELOPE__INIT;
    env.body_case = ALYS__BUS__ENVELOPE__BODY_PEER;
    env.peer = msg;
    return alys_send(pm->sync, &env);
}

int pm_send_sync_msg(pm_t *pm, Alys__Sync__SyncMsg *msg)
{
    alys_env_t env = ALYS__BUS__ENVELOPE__INIT;
    env.body_case = ALYS__BUS__ENVELOPE__BODY_SYNC;
    env.sync = msg;
    return alys_send(pm->sync, &env);
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
}

