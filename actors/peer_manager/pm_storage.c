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
#include "pm.h"
#include "util.h"

typedef struct {
    uint64_t     corr_id;       /* 0 = free slot */
    pm_store_cb *cb;
    void        *arg;
    uint64_t     tag;
    int64_t      deadline;
} store_req_t;

static store_req_t s_reqs[PM_MAX_STORE_REQS];
static bool s_head_pending;
static bool s_bans_loading;
static bool s_genesis_warned;

uint64_t pm_now(void) { return (uint64_t) alys_now_ms(); }
int64_t  pm_mono(void) { return alys_mono_ms(); }

static alys_env_t storage_env(Alys__Storage__StorageMsg *msg)
{
    alys_env_t env = ALYS__BUS__ENVELOPE__INIT;
    env.body_case = ALYS__BUS__ENVELOPE__BODY_STORAGE;
    env.storage = msg;
    return env;
}

static store_req_t *free_req(void)
{
    for (size_t i = 0; i < PM_MAX_STORE_REQS; i++)
        if (s_reqs[i].corr_id == 0)
            return &s_reqs[i];
    return NULL;
}

int pm_storage_request(pm_t *pm, Alys__Storage__StorageMsg *msg, uint32_t timeout_ms,
                       pm_store_cb *cb, void *arg, uint64_t tag)
{
    store_req_t *r = free_req();
    if (!r || !pm->storage)
        return -1;
    alys_env_t env = storage_env(msg);
    env.corr_id = alys_next_corr_id();
    if (alys_send(pm->storage, &env) != 0)
        return -1;
    *r = (store_req_t){.corr_id = env.corr_id, .cb = cb, .arg = arg, .tag = tag,
                       .deadline = pm_mono() + timeout_ms};
    return 0;
}

void pm_storage_cancel(pm_t *pm, void *arg)
{
    (void) pm;
    for (size_t i = 0; i < PM_MAX_STORE_REQS; i++)
        if (s_reqs[i].corr_id && s_reqs[i].arg == arg)
            s_reqs[i].corr_id = 0;
}

/* Take the request out of the table before its callback runs, so the
 * callback may issue new requests (and reuse the slot). */
static void complete(pm_t *pm, store_req_t *r, const alys_env_t *reply)
{
    store_req_t copy = *r;
    r->corr_id = 0;
    copy.cb(pm, copy.arg, copy.tag, reply);
}

int pm_storage_on_reply(alys_actor_t *actor, zsock_t *sock, void *arg)
{
    (void) actor;
    pm_t *pm = arg;
    alys_env_t *env = NULL;
    int rc = alys_recv(sock, &env);
    if (rc != 0)
        return rc < 0 ? -1 : 0;
    for (size_t i = 0; env->reply && i < PM_MAX_STORE_REQS; i++) {
        if (s_reqs[i].corr_id == env->corr_id) {
            complete(pm, &s_reqs[i], env);
            break;
        }
    }
    alys_env_free(&env);
    return 0;
}

void pm_storage_tick(pm_t *pm)
{
    int64_t now = pm_mono();
    for (size_t i = 0; i < PM_MAX_STORE_REQS; i++)
        if (s_reqs[i].corr_id && now >= s_reqs[i].deadline)
            complete(pm, &s_reqs[i], NULL);
}

/* ---- head ------------------------------------------------------------------ */

static const Alys__Storage__StorageMsg *storage_body(const alys_env_t *reply,
                                                      Alys__Storage__StorageMsg__MsgCase want)
{
    if (!reply || reply->body_case != ALYS__BUS__ENVELOPE__BODY_STORAGE ||
        reply->storage->msg_case != want)
        return NULL;
    return reply->storage;
}

static void on_head(pm_t *pm, void *arg, uint64_t tag, const alys_env_t *reply)
{
    (void) arg;
    s_head_pending = false;
    const Alys__Storage__StorageMsg *m = storage_body(reply, ALYS__STORAGE__STORAGE_MSG__MSG_HEAD);
    if (!m)
        return;
    const Alys__Storage__Head *h = m->head;
    if (h->genesis_hash.len != ALYS_HASH_LEN) {
        if (!s_genesis_warned)
            log_warn("storage has no genesis yet: not talking to peers until it has");
        s_genesis_warned = true;
        return;
    }
    if (!pm->have_head)
        log_info("head %llu from storage; serving and dialling peers",
                 (unsigned long long) h->height);
    memcpy(pm->genesis_hash, h->genesis_hash.data, ALYS_HASH_LEN);
    pm->checkpoint = h->last_checkpoint;
    pm->head_at = pm_mono();
    pm->have_head = true;
    /* A BatchProcessed that arrived after we asked knows a fresher head. */
    if ((int64_t) tag < pm->bp_reply_at)
        return;
    memset(pm->head_hash, 0, ALYS_HASH_LEN);
    if (h->hash.len == ALYS_HASH_LEN)
        memcpy(pm->head_hash, h->hash.data, ALYS_HASH_LEN);
    pm->head_height = h->height;
    pm_deliver_on_head(pm, h->height, (int64_t) tag, pm->head_ask_seq);
}

void pm_storage_refresh_head(pm_t *pm)
{
    if (s_head_pending)
        return;
    Alys__Storage__GetHead get = ALYS__STORAGE__GET_HEAD__INIT;
    Alys__Storage__StorageMsg msg = ALYS__STORAGE__STORAGE_MSG__INIT;
    msg.msg_case = ALYS__STORAGE__STORAGE_MSG__MSG_GET_HEAD;
    msg.get_head = &get;
    uint64_t seq = reorder_seq(pm->reorder);
    if (pm_storage_request(pm, &msg, PM_STORE_TIMEOUT_MS, on_head, NULL, (uint64_t) pm_mono()) == 0) {
        s_head_pending = true;
        pm->head_ask_seq = seq;
    }
}

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
    out->node_id = (char *) pm->cfg->node_name;
    out->listen = (char *) pm->cfg->listen;
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
    s_bans_loading = false;
    const Alys__Storage__StorageMsg *m = storage_body(reply, ALYS__STORAGE__STORAGE_MSG__MSG_PEER_BANS);
    if (!m) {
        log_warn("cannot load the peer bans from storage (%s): retrying",
                 reply ? "error reply" : "no answer");
        return;
    }
    size_t n = m->peer_bans->n_bans < PEER_MAX_BANS ? m->peer_bans->n_bans : PEER_MAX_BANS;
    peer_ban_t *bans = calloc(n ? n : 1, sizeof *bans);
    if (!bans)
        return;
    size_t ok = 0;
    for (size_t i = 0; i < n; i++)
        if (ban_from_pb(m->peer_bans->bans[i], &bans[ok]))
            ok++;
    size_t imported = peer_table_import_bans(pm->table, bans, ok, pm_now());
    free(bans);
    pm->bans_loaded = true;
    /* Bans made before the load (none normally) must be saved with the rest. */
    pm->bans_dirty = peer_table_ban_count(pm->table, pm_now()) != imported;
    pm->bans_saved_count = imported;
    pm->peerset_dirty = true;
    log_info("loaded %zu active peer bans from storage", imported);
}

static void on_bans_saved(pm_t *pm, void *arg, uint64_t tag, const alys_env_t *reply)
{
    (void) arg;
    pm->bans_saving = false;
    if (!storage_body(reply, ALYS__STORAGE__STORAGE_MSG__MSG_PEER_BANS)) {
        log_warn("cannot save the peer bans (%s): retrying", reply ? "error reply" : "no answer");
        pm->bans_dirty = true;
        return;
    }
    pm->bans_saved_count = (size_t) tag;
}

static void save_bans(pm_t *pm)
{
    peer_ban_t *bans = calloc(PEER_MAX_BANS, sizeof *bans);
    Alys__Storage__PeerBan *pb = calloc(PEER_MAX_BANS, sizeof *pb);
    Alys__Storage__PeerBan **ptrs = calloc(PEER_MAX_BANS, sizeof *ptrs);
    if (!bans || !pb || !ptrs)
        goto out;
    size_t n = peer_table_export_bans(pm->table, pm_now(), bans, PEER_MAX_BANS);
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
        pm->bans_saving = true;
        pm->bans_dirty = false;
        log_info("saving %zu peer bans", n);
    }
out:
    free(bans);
    free(pb);
    free(ptrs);
}

void pm_bans_tick(pm_t *pm)
{
    if (!pm->bans_loaded) {
        if (s_bans_loading)
            return;
        Alys__Storage__GetPeerBans get = ALYS__STORAGE__GET_PEER_BANS__INIT;
        Alys__Storage__StorageMsg msg = ALYS__STORAGE__STORAGE_MSG__INIT;
        msg.msg_case = ALYS__STORAGE__STORAGE_MSG__MSG_GET_PEER_BANS;
        msg.get_peer_bans = &get;
        if (pm_storage_request(pm, &msg, PM_STORE_TIMEOUT_MS, on_bans_loaded, NULL, 0) == 0)
            s_bans_loading = true;
        return;
    }
    /* Expired bans change the count too: the stored list follows. */
    if (peer_table_ban_count(pm->table, pm_now()) != pm->bans_saved_count)
        pm->bans_dirty = true;
    if (pm->bans_dirty && !pm->bans_saving)
        save_bans(pm);
}
