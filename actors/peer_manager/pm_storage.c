/*  pm_storage.c: PeerManager's StorageActor client (see pm.h).
 *
 *  One DEALER, many requests in flight, each with a deadline: StorageActor
 *  may be restarting, and a peer waiting for our blocks must get UNAVAILABLE
 *  rather than silence. A reply after its deadline finds no pending request
 *  and is dropped.
 */
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "pending.h"
#include "pm.h"
#include "util.h"

/* One request's context in the pending table (common/pending.h). */
typedef struct {
    pm_store_cb *cb;
    void *arg;
    uint64_t tag;
} store_req_t;

struct pm_store {
    alys_pending_t *pending; /* store_req_t, PM_MAX_STORE_REQS */
};

pm_store_t *pm_storage_new(void)
{
    pm_store_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->pending = alys_pending_new(PM_MAX_STORE_REQS, sizeof(store_req_t));
    if (!self->pending)
        pm_storage_destroy(&self);
    return self;
}

void pm_storage_destroy(pm_store_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    alys_pending_destroy(&(*self_p)->pending);
    free(*self_p);
    *self_p = NULL;
}

const Alys__Storage__StorageMsg *pm_storage_body(const alys_env_t *reply,
                                                 Alys__Storage__StorageMsg__MsgCase want)
{
    if (!reply || reply->body_case != ALYS__BUS__ENVELOPE__BODY_STORAGE ||
        reply->storage->msg_case != want)
        return NULL;
    return reply->storage;
}

int pm_storage_request(pm_t *pm, Alys__Storage__StorageMsg *msg, uint32_t timeout_ms,
                       pm_store_cb *cb, void *arg, uint64_t tag)
{
    alys_env_t env = ALYS__BUS__ENVELOPE__INIT;
    env.body_case = ALYS__BUS__ENVELOPE__BODY_STORAGE;
    env.storage = msg;
    return pm_storage_request_env(pm, &env, timeout_ms, cb, arg, tag);
}

int pm_storage_request_env(pm_t *pm, alys_env_t *env, uint32_t timeout_ms, pm_store_cb *cb,
                           void *arg, uint64_t tag)
{
    alys_pending_t *pending = pm->store->pending;
    if (alys_pending_count(pending) >= alys_pending_capacity(pending))
        return -1;
    env->corr_id = alys_next_corr_id();
    if (pm->port.send(pm->port.ctx, PM_TO_STORAGE, env) != 0)
        return -1;
    store_req_t *r = alys_pending_add(pending, env->corr_id, pm_mono(pm) + timeout_ms);
    if (!r)
        return -1; /* cannot happen: checked above */
    *r = (store_req_t){.cb = cb, .arg = arg, .tag = tag};
    return 0;
}

static bool has_arg(const void *payload, void *arg)
{
    return ((const store_req_t *) payload)->arg == arg;
}

void pm_storage_cancel(pm_t *pm, void *arg)
{
    alys_pending_remove_if(pm->store->pending, has_arg, NULL, arg);
}

void pm_storage_on_env(pm_t *pm, const alys_env_t *env)
{
    /* Taken out of the table before its callback runs, so the callback may
     * issue new requests; a late or duplicate reply finds nothing. */
    store_req_t r;
    if (env->reply && alys_pending_take(pm->store->pending, env->corr_id, &r))
        r.cb(pm, r.arg, r.tag, env);
}

void pm_storage_tick(pm_t *pm)
{
    store_req_t r;
    while (alys_pending_expire(pm->store->pending, pm_mono(pm), NULL, &r))
        r.cb(pm, r.arg, r.tag, NULL);
}

/* ---- our Status ---------------------------------------------------------------- */

bool pm_status(pm_t *pm, Alys__Wire__Status *out)
{
    if (!pm->have_head)
        return false;
    *out = (Alys__Wire__Status) ALYS__WIRE__STATUS__INIT;
    out->protocol_version = ALYS_WIRE_PROTOCOL_VERSION;
    out->genesis_hash = (ProtobufCBinaryData){ALYS_HASH_LEN, pm->genesis_hash};
    out->head_height = pm->head_height;
    out->head_hash = (ProtobufCBinaryData){ALYS_HASH_LEN, pm->head_hash};
    out->latest_checkpoint = pm->checkpoint;
    /* We are our key; the listen endpoint carries it (alys://). */
    out->node_id = pm->key_hex[0] ? pm->key_hex : (char *) pm->cfg->node_name;
    out->listen = pm->our_endpoint;
    return true;
}

/* ---- bans ------------------------------------------------------------------ */

/* Copy one stored ban; false when a field does not fit (never truncate an id
 * into another peer's). */
static bool ban_from_pb(const Alys__Storage__PeerBan *pb, peer_ban_t *out)
{
    memset(out, 0, sizeof *out);
    if (alys_strlcpy(out->peer_id, pb->peer_id ? pb->peer_id : "", sizeof out->peer_id) != 0 ||
        alys_strlcpy(out->endpoint, pb->endpoint ? pb->endpoint : "", sizeof out->endpoint) != 0)
        return false;
    snprintf(out->reason, sizeof out->reason, "%s", pb->reason ? pb->reason : "");
    out->ban_until = pb->ban_until;
    return true;
}

static void on_bans_loaded(pm_t *pm, void *arg, uint64_t tag, const alys_env_t *reply)
{
    (void) arg;
    (void) tag;
    const Alys__Storage__StorageMsg *m = pm_storage_body(reply,
                                                         ALYS__STORAGE__STORAGE_MSG__MSG_PEER_BANS);
    size_t n = m ? m->peer_bans->n_bans : 0;
    n = n < PEER_MAX_BANS ? n : PEER_MAX_BANS;
    peer_ban_t *bans = m ? calloc(n ? n : 1, sizeof *bans) : NULL;
    if (!bans) {
        log_warn("cannot load the peer bans from storage (%s): retrying",
                 !m ? (reply ? "error reply" : "no answer") : "out of memory");
        pm_bans_loaded(&pm->bans, false, 0, 0);
        return;
    }
    size_t ok = 0;
    for (size_t i = 0; i < n; i++)
        if (ban_from_pb(m->peer_bans->bans[i], &bans[ok]))
            ok++;
    size_t imported = peer_table_import_bans(pm->table, bans, ok, pm_now(pm));
    free(bans);
    pm_bans_loaded(&pm->bans, true, imported, peer_table_ban_count(pm->table, pm_now(pm)));
    pm->peerset_dirty = true;
    log_info("loaded %zu active peer bans from storage", imported);
}

static void on_bans_saved(pm_t *pm, void *arg, uint64_t tag, const alys_env_t *reply)
{
    (void) arg;
    bool ok = pm_storage_body(reply, ALYS__STORAGE__STORAGE_MSG__MSG_PEER_BANS) != NULL;
    if (!ok)
        log_warn("cannot save the peer bans (%s): retrying", reply ? "error reply" : "no answer");
    pm_bans_saved(&pm->bans, ok, (size_t) tag);
}

static void save_bans(pm_t *pm)
{
    peer_ban_t *bans = calloc(PEER_MAX_BANS, sizeof *bans);
    Alys__Storage__PeerBan *pb = calloc(PEER_MAX_BANS, sizeof *pb);
    Alys__Storage__PeerBan **ptrs = calloc(PEER_MAX_BANS, sizeof *ptrs);
    if (!bans || !pb || !ptrs)
        goto out;
    size_t n = peer_table_export_bans(pm->table, pm_now(pm), bans, PEER_MAX_BANS);
    for (size_t i = 0; i < n; i++) {
        pb[i] = (Alys__Storage__PeerBan) ALYS__STORAGE__PEER_BAN__INIT;
        pb[i].peer_id = bans[i].peer_id;
        pb[i].endpoint = bans[i].endpoint;
        pb[i].ban_until = bans[i].ban_until;
        pb[i].reason = bans[i].reason;
        ptrs[i] = &pb[i];
    }
    Alys__Storage__PutPeerBans put = ALYS__STORAGE__PUT_PEER_BANS__INIT;
    put.n_bans = n;
    put.bans = ptrs;
    Alys__Storage__StorageMsg msg = ALYS__STORAGE__STORAGE_MSG__INIT;
    msg.msg_case = ALYS__STORAGE__STORAGE_MSG__MSG_PUT_PEER_BANS;
    msg.put_peer_bans = &put;
    if (pm_storage_request(pm, &msg, PM_STORE_TIMEOUT_MS, on_bans_saved, NULL, n) == 0) {
        pm_bans_sent(&pm->bans, PM_BANS_SAVE);
        log_info("saving %zu peer bans", n);
    }
out:
    free(bans);
    free(pb);
    free(ptrs);
}

void pm_bans_tick(pm_t *pm)
{
    pm_bans_do_t what = pm_bans_next(&pm->bans, peer_table_ban_count(pm->table, pm_now(pm)));
    if (what == PM_BANS_SAVE) {
        save_bans(pm);
    } else if (what == PM_BANS_LOAD) {
        Alys__Storage__GetPeerBans get = ALYS__STORAGE__GET_PEER_BANS__INIT;
        Alys__Storage__StorageMsg msg = ALYS__STORAGE__STORAGE_MSG__INIT;
        msg.msg_case = ALYS__STORAGE__STORAGE_MSG__MSG_GET_PEER_BANS;
        msg.get_peer_bans = &get;
        if (pm_storage_request(pm, &msg, PM_STORE_TIMEOUT_MS, on_bans_loaded, NULL, 0) == 0)
            pm_bans_sent(&pm->bans, PM_BANS_LOAD);
    }
}
