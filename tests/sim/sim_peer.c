/*  sim_peer.c: the PeerManagerActor adapter. It runs the real core
 *  (actors/peer_manager/pm_core.h: connections, probes, the request table,
 *  costs, blame, the reorder buffer, the PeerSet) and is its port and its
 *  shell, as actors/peer_manager/main.c is with sockets:
 *
 *    - the clocks: before every input, pm_core_clock(unix ms of the virtual
 *      clock, virtual ms + MONO_BASE_MS); a timer every 100 ms calls
 *      pm_core_tick_fast, every 500 ms pm_core_tick_head, every 1000 ms
 *      pm_core_tick_slow (main.c's three timers);
 *    - peer slots: peer_dial connects a slot to "alys://<its key>@peer-N.sim:30303"; the
 *      link (main.c's socket monitor) comes up one latency later when the
 *      peer is not down, drops when a disconnect fault takes the peer down
 *      (a reset connection), and is re-made like ZeroMQ's reconnect (100 ms
 *      doubling to 5 s). Partitions, loss and silent peers do not touch the
 *      link (no heartbeats on peer sockets): the messages are lost;
 *    - peer_send: with the link down it fails (ZMQ_IMMEDIATE); otherwise the
 *      wire message becomes a sim_msg_t for the simulated network
 *      (sim_net.c). Responses come back as encoded wire frames
 *      (alys_wire_encode, cut at the frame limit like peer_serve.c) into
 *      pm_core_on_peer_frame. GetPeers is answered with an empty Peers;
 *    - a (re)started SyncActor's GetInFlight is answered with
 *      pm_core_on_get_in_flight, as main.c does;
 *    - envelopes to SyncActor and BlockProcessor are encoded and decoded on
 *      the other side of a FIFO channel (as over a ZeroMQ pipe) and handed to
 *      sim_sync.c / sim_pipeline.c; BatchProcessed and refusals come back as
 *      envelopes into pm_core_on_processor;
 *    - the park at BlockProcessor (pm_park.c) keeps nothing: GetParked is
 *      answered with no ranges, Park, Unpark and ParkRekey are dropped;
 *    - StorageActor's part for PeerManager (GetHead, Get/PutPeerBans,
 *      Get/PutAddrBook) is answered here from the storage model; the bans
 *      and the book saved survive a PeerManager restart (sim_pm_inherit).
 *
 *  Invariant: after every input, no honest peer has an INVALID or VIOLATION
 *  on its record or is banned (the peer table's counters, read through
 *  pm.h: a simulator may look inside the core).
 *
 *  Determinism: correlation ids start from a fixed base
 *  (alys_corr_id_set_base), slots are chosen by the core in the order of the
 *  bootstrap list, and every timer and message carries the incarnation so a
 *  dead PeerManager's events do nothing.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bus.h"
#include "metrics_client.h"
#include "peer_reorder.h"
#include "peer_table.h"
#include "pm.h"
#include "pm_conn.h"
#include "pm_core.h"
#include "sim_internal.h"
#include "sync_known.h"
#include "wire/wire.h"

#define MONO_BASE_MS     1000000 /* a monotonic clock that did not start at 0 */
#define TICK_MS          100
#define RECONNECT_MIN_MS 100 /* main.c: zsock_set_reconnect_ivl */
#define RECONNECT_MAX_MS 5000
#define SIM_PORT         30303
#define CORR_BASE        (1ULL << 32)

/* One genesis hash for the node and every honest peer (storage's Head and
 * the peers' Status): the handshake only compares them. */
static const uint8_t k_genesis[ALYS_HASH_LEN] = {0x47, 0x45, 0x4e, 0x45, 0x53, 0x49, 0x53, 0x2d,
                                                 0x73, 0x69, 0x6d, 0x01, 0x02, 0x03, 0x04, 0x05,
                                                 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d,
                                                 0x0e, 0x0f, 0x10, 0x11, 0x12, 0x13, 0x14, 0x15};

typedef struct {
    int peer;        /* sim peer on this slot, -1 = none */
    bool plugged;    /* dialled (peer_dial) and not hung up */
    bool link;       /* the TCP link is up */
    bool connecting; /* a connect attempt is in flight */
    uint64_t retry_at;
    uint32_t retry_ms;
} slot_t;

struct sim_pm {
    sim_t *sim;
    uint32_t inc; /* our incarnation */
    alys_config_t cfg;
    alys_metrics_t *metrics;
    pm_t *core;
    slot_t slot[PM_CONN_MAX];
    uint64_t ticks;
    peer_ban_t bans[PEER_MAX_BANS]; /* what StorageActor keeps */
    size_t n_bans;
    Alys__Storage__PeerBan ban_pb[PEER_MAX_BANS]; /* a PeerBans answer, built here */
    Alys__Storage__PeerBan *ban_ptrs[PEER_MAX_BANS];
    uint8_t *book; /* the address book storage keeps: a packed PutAddrBook */
    size_t book_len;
    bool honest[SIM_MAX_PEERS];
};

static bool alive(sim_t *sim, uint32_t inc)
{
    return inc == sim_incarnation(sim, ACT_PEER_MANAGER) && sim_get_pm(sim);
}

/* The core, its clocks set to now. */
static pm_t *core(sim_pm_t *pm)
{
    uint64_t now = sim_now(pm->sim);
    pm_core_clock(pm->core, sim_unix_ms(pm->sim), (int64_t) (now + MONO_BASE_MS));
    return pm->core;
}

/* The table's view of sim peer p: under its node id, or (refused at the
 * handshake, e.g. another genesis) under its endpoint's id "@host:port". */
static bool view_of(sim_pm_t *pm, uint32_t p, peer_view_t *v)
{
    uint64_t now = sim_unix_ms(pm->sim);
    if (peer_table_get(pm->core->table, sim_peer_id(p), now, v) == PEER_OK)
        return true;
    char ep[ALYS_ENDPOINT_MAX], id[ALYS_WIRE_ID_MAX];
    snprintf(ep, sizeof ep, "alys://%s@peer-%u.sim:%d", sim_peer_id(p), p, SIM_PORT);
    alys_wire_endpoint_id(ep, id, sizeof id);
    return peer_table_get(pm->core->table, id, now, v) == PEER_OK;
}

/* Invariant: an honest peer is never charged INVALID/VIOLATION, convicted or
 * banned (all of them leave a mark in the table). */
static void check_penalties(sim_pm_t *pm)
{
    const sim_case_t *c = sim_case(pm->sim);
    for (uint32_t p = 0; p < c->peers; p++) {
        peer_view_t v;
        if (!pm->honest[p] || !view_of(pm, p, &v))
            continue;
        char what[PEER_REASON_MAX + 16];
        if (v.metrics.requests_invalid || v.metrics.requests_violation) {
            snprintf(what, sizeof what, "%llu invalid, %llu violations",
                     (unsigned long long) v.metrics.requests_invalid,
                     (unsigned long long) v.metrics.requests_violation);
            sim_check_penalty(pm->sim, sim_peer_id(p), what);
        } else if (v.info.state == PEER_STATE_BANNED) {
            snprintf(what, sizeof what, "banned: %s", v.ban_reason);
            sim_check_penalty(pm->sim, sim_peer_id(p), what);
        }
    }
}

/* ---- envelopes across a channel ------------------------------------------------ */

typedef struct {
    uint32_t inc;
    size_t len;
    uint8_t data[];
} blob_t;

static blob_t *blob_of_env(alys_env_t *env, uint32_t inc)
{
    zframe_t *f = alys_env_encode(env);
    if (!f)
        return NULL;
    blob_t *b = malloc(sizeof *b + zframe_size(f));
    if (b) {
        b->inc = inc;
        b->len = zframe_size(f);
        memcpy(b->data, zframe_data(f), b->len);
    }
    zframe_destroy(&f);
    return b;
}

static alys_env_t *env_of_blob(sim_t *sim, const blob_t *b)
{
    char err[160];
    alys_env_t *env = alys_env_decode(b->data, b->len, err, sizeof err);
    if (!env)
        sim_fail(sim, "simulator", "an envelope did not decode: %s", err);
    return env;
}

/* ---- to SyncActor ------------------------------------------------------------------ */

static void sync_peer_set(sim_t *sim, const Alys__Peer__PeerSet *ps)
{
    for (size_t i = 0; i < ps->n_peers; i++) {
        const Alys__Peer__PeerEntry *e = ps->peers[i];
        sync_entry_kind_t kind = sync_known_entry_kind(e->state);
        if (kind == SYNC_ENTRY_CONNECTED && sim_peer_index(e->peer_id) >= 0)
            sim_sync_on_peer_status(sim, e->peer_id, e->reported_height, (uint32_t) i, e->score);
        else if (kind == SYNC_ENTRY_GONE && sim_peer_index(e->peer_id) >= 0)
            sim_sync_on_peer_gone(sim, e->peer_id, e->state);
    }
    if (ps->batch_size)
        sim_sync_on_batch_size(sim, ps->batch_size);
}

static void sync_peer_msg(sim_t *sim, const Alys__Peer__PeerMsg *m)
{
    switch (m->msg_case) {
    case ALYS__PEER__PEER_MSG__MSG_HEADERS_RESULT: {
        const Alys__Peer__HeadersResult *hr = m->headers_result;
        sim_sync_on_headers(sim, hr->request_id, (int) hr->outcome, hr->start, hr->headers,
                            hr->n_headers);
        break;
    }
    case ALYS__PEER__PEER_MSG__MSG_FETCH_RESULT:
        sim_sync_on_fetch_result(sim, m->fetch_result->request_id, (int) m->fetch_result->outcome);
        break;
    case ALYS__PEER__PEER_MSG__MSG_BATCH_OUTCOME: {
        const Alys__Peer__BatchOutcome *bo = m->batch_outcome;
        alys_hash_t hh = {0};
        if (bo->head_hash.len == ALYS_HASH_LEN)
            memcpy(hh, bo->head_hash.data, ALYS_HASH_LEN);
        sim_sync_on_batch_outcome(sim, bo->head_height, hh, bo->failed, bo->failed_height, bo->start,
                                  bo->reason ? bo->reason : "", bo->detail ? bo->detail : "");
        break;
    }
    case ALYS__PEER__PEER_MSG__MSG_PEER_SET: sync_peer_set(sim, m->peer_set); break;
    case ALYS__PEER__PEER_MSG__MSG_IN_FLIGHT: sim_sync_on_in_flight(sim, m->in_flight); break;
    default: break;
    }
}

static void sync_sync_msg(sim_t *sim, const Alys__Sync__SyncMsg *m)
{
    if (m->msg_case == ALYS__SYNC__SYNC_MSG__MSG_PEER_DISCOVERED) {
        const Alys__Sync__PeerDiscovered *pd = m->peer_discovered;
        if (sim_peer_index(pd->peer_id) >= 0)
            sim_sync_on_peer_status(sim, pd->peer_id, pd->reported_height, UINT32_MAX, 0);
    } else if (m->msg_case == ALYS__SYNC__SYNC_MSG__MSG_PEER_DISCONNECTED) {
        const Alys__Sync__PeerDisconnected *pd = m->peer_disconnected;
        if (sim_peer_index(pd->peer_id) >= 0)
            sim_sync_on_peer_gone(sim, pd->peer_id, pd->reason ? pd->reason : "");
    }
}

static void at_sync(sim_t *sim, void *arg)
{
    alys_env_t *env = env_of_blob(sim, arg);
    if (env && env->body_case == ALYS__BUS__ENVELOPE__BODY_PEER)
        sync_peer_msg(sim, env->peer);
    else if (env && env->body_case == ALYS__BUS__ENVELOPE__BODY_SYNC)
        sync_sync_msg(sim, env->sync);
    alys_env_free(&env);
    free(arg);
}

/* ---- to BlockProcessor ------------------------------------------------------------- */

static void at_processor(sim_t *sim, void *arg)
{
    alys_env_t *env = env_of_blob(sim, arg);
    if (env && env->body_case == ALYS__BUS__ENVELOPE__BODY_PROCESSOR &&
        env->processor->msg_case == ALYS__PROCESSOR__PROCESSOR_MSG__MSG_PROCESS_BATCH) {
        const Alys__Processor__ProcessBatch *pb = env->processor->process_batch;
        sim_pl_submit(sim, pb->batch_id, pb->origin ? pb->origin : "", pb->blocks, pb->n_blocks,
                      pb->expected_hashes, pb->n_expected_hashes);
    }
    alys_env_free(&env);
    free(arg);
}

/* ---- StorageActor (its PeerManager part) ---------------------------------------------- */

/* An answer to PeerManager's core (on: its entry for the sender), unless
 * the incarnation it was meant for is gone. Frees b. */
static void reply_to_core(sim_t *sim, blob_t *b, void (*on)(pm_t *, const alys_env_t *))
{
    if (alive(sim, b->inc)) {
        sim_pm_t *pm = sim_get_pm(sim);
        alys_env_t *env = env_of_blob(sim, b);
        if (env)
            on(core(pm), env);
        alys_env_free(&env);
        check_penalties(pm);
    }
    free(b);
}

static void storage_reply(sim_t *sim, void *arg)
{
    reply_to_core(sim, arg, pm_core_on_storage);
}

static void answer_head(sim_t *sim, Alys__Storage__StorageMsg *out, Alys__Storage__Head *h,
                        alys_hash_t hash)
{
    h->height = sim_storage_head(sim, hash, NULL);
    h->hash = (ProtobufCBinaryData){ALYS_HASH_LEN, hash};
    h->genesis_hash = (ProtobufCBinaryData){ALYS_HASH_LEN, (uint8_t *) k_genesis};
    h->last_checkpoint = sim_storage_last_checkpoint(sim);
    out->msg_case = ALYS__STORAGE__STORAGE_MSG__MSG_HEAD;
    out->head = h;
}

/* The bans storage keeps, as PeerBans (pointers into pm->bans). */
static void answer_bans(sim_pm_t *pm, Alys__Storage__StorageMsg *out, Alys__Storage__PeerBans *pbs)
{
    Alys__Storage__PeerBan *pb = pm->ban_pb;
    Alys__Storage__PeerBan **ptrs = pm->ban_ptrs;
    for (size_t i = 0; i < pm->n_bans; i++) {
        alys__storage__peer_ban__init(&pb[i]);
        pb[i].peer_id = pm->bans[i].peer_id;
        pb[i].endpoint = pm->bans[i].endpoint;
        pb[i].ban_until = pm->bans[i].ban_until;
        pb[i].reason = pm->bans[i].reason;
        ptrs[i] = &pb[i];
    }
    pbs->n_bans = pm->n_bans;
    pbs->bans = ptrs;
    out->msg_case = ALYS__STORAGE__STORAGE_MSG__MSG_PEER_BANS;
    out->peer_bans = pbs;
}

static void keep_bans(sim_pm_t *pm, const Alys__Storage__PutPeerBans *put)
{
    pm->n_bans = 0;
    for (size_t i = 0; i < put->n_bans && pm->n_bans < PEER_MAX_BANS; i++) {
        const Alys__Storage__PeerBan *b = put->bans[i];
        peer_ban_t *k = &pm->bans[pm->n_bans++];
        memset(k, 0, sizeof *k);
        snprintf(k->peer_id, sizeof k->peer_id, "%s", b->peer_id ? b->peer_id : "");
        snprintf(k->endpoint, sizeof k->endpoint, "%s", b->endpoint ? b->endpoint : "");
        snprintf(k->reason, sizeof k->reason, "%s", b->reason ? b->reason : "");
        k->ban_until = b->ban_until;
    }
}

/* PutAddrBook replaces the book whole; AddrBook has the same fields, so the
 * packed bytes are kept and unpacked as the answer to GetAddrBook. */
static void keep_book(sim_pm_t *pm, const Alys__Storage__PutAddrBook *put)
{
    size_t len = alys__storage__put_addr_book__get_packed_size(put);
    uint8_t *bytes = malloc(len ? len : 1);
    if (!bytes)
        return;
    alys__storage__put_addr_book__pack(put, bytes);
    free(pm->book);
    pm->book = bytes;
    pm->book_len = len;
}

/* At StorageActor: answer one request, one hop later back to PeerManager. */
static void at_storage(sim_t *sim, void *arg)
{
    blob_t *q = arg;
    sim_pm_t *pm = sim_get_pm(sim);
    alys_env_t *req = alive(sim, q->inc) ? env_of_blob(sim, q) : NULL;
    if (req && req->body_case == ALYS__BUS__ENVELOPE__BODY_STORAGE) {
        Alys__Storage__StorageMsg out = ALYS__STORAGE__STORAGE_MSG__INIT;
        Alys__Storage__Head head = ALYS__STORAGE__HEAD__INIT;
        Alys__Storage__PeerBans pbs = ALYS__STORAGE__PEER_BANS__INIT;
        Alys__Storage__AddrBook empty_book = ALYS__STORAGE__ADDR_BOOK__INIT, *book = NULL;
        alys_hash_t hash;
        switch (req->storage->msg_case) {
        case ALYS__STORAGE__STORAGE_MSG__MSG_GET_HEAD: answer_head(sim, &out, &head, hash); break;
        case ALYS__STORAGE__STORAGE_MSG__MSG_PUT_PEER_BANS:
            keep_bans(pm, req->storage->put_peer_bans);
            answer_bans(pm, &out, &pbs);
            break;
        case ALYS__STORAGE__STORAGE_MSG__MSG_GET_PEER_BANS: answer_bans(pm, &out, &pbs); break;
        case ALYS__STORAGE__STORAGE_MSG__MSG_PUT_ADDR_BOOK:
            keep_book(pm, req->storage->put_addr_book);
            out.msg_case = ALYS__STORAGE__STORAGE_MSG__MSG_ADDR_BOOK;
            out.addr_book = &empty_book; /* the stored entries are not echoed */
            break;
        case ALYS__STORAGE__STORAGE_MSG__MSG_GET_ADDR_BOOK:
            book = pm->book ? alys__storage__addr_book__unpack(NULL, pm->book_len, pm->book) : NULL;
            out.msg_case = ALYS__STORAGE__STORAGE_MSG__MSG_ADDR_BOOK;
            out.addr_book = book ? book : &empty_book;
            break;
        default: break;
        }
        if (out.msg_case != ALYS__STORAGE__STORAGE_MSG__MSG__NOT_SET) {
            alys_env_t rep = ALYS__BUS__ENVELOPE__INIT;
            rep.body_case = ALYS__BUS__ENVELOPE__BODY_STORAGE;
            rep.storage = &out;
            rep.reply = true;
            rep.corr_id = req->corr_id;
            blob_t *b = blob_of_env(&rep, q->inc);
            if (b)
                sim_post(sim, -1, 1, "storage_reply", out.msg_case, 0, storage_reply, b);
        }
        if (book)
            alys__storage__addr_book__free_unpacked(book, NULL);
    }
    alys_env_free(&req);
    free(q);
}

/* ---- BlockProcessor's park (actors/peer_manager/pm_park.c) -------------------------------- */

/* The simulated BlockProcessor keeps no parked copies: Park, Unpark and
 * ParkRekey are dropped, and GetParked is answered with none (what a
 * restarted BlockProcessor answers), one hop later. A restarted PeerManager
 * then downloads again what its buffer held, as before parking, and its
 * fetches are held only for that hop. */
static void parked_reply(sim_t *sim, void *arg)
{
    reply_to_core(sim, arg, pm_core_on_processor);
}

static void at_park(sim_t *sim, void *arg)
{
    blob_t *q = arg;
    alys_env_t *req = alive(sim, q->inc) ? env_of_blob(sim, q) : NULL;
    if (req && req->body_case == ALYS__BUS__ENVELOPE__BODY_PROCESSOR &&
        req->processor->msg_case == ALYS__PROCESSOR__PROCESSOR_MSG__MSG_GET_PARKED) {
        Alys__Processor__Parked none = ALYS__PROCESSOR__PARKED__INIT;
        Alys__Processor__ProcessorMsg msg = ALYS__PROCESSOR__PROCESSOR_MSG__INIT;
        msg.msg_case = ALYS__PROCESSOR__PROCESSOR_MSG__MSG_PARKED;
        msg.parked = &none;
        alys_env_t rep = ALYS__BUS__ENVELOPE__INIT;
        rep.body_case = ALYS__BUS__ENVELOPE__BODY_PROCESSOR;
        rep.processor = &msg;
        rep.reply = true;
        rep.corr_id = req->corr_id;
        blob_t *b = blob_of_env(&rep, q->inc);
        if (b)
            sim_post(sim, -1, 1, "parked_reply", 0, 0, parked_reply, b);
    }
    alys_env_free(&req);
    free(q);
}

/* ---- the port ------------------------------------------------------------------------ */

static int port_send(void *ctx, pm_dest_t to, alys_env_t *env)
{
    sim_pm_t *pm = ctx;
    blob_t *b = blob_of_env(env, pm->inc);
    if (!b)
        return -1;
    if (to == PM_TO_SYNC)
        sim_post(pm->sim, CH_PM_SYNC, 1, "pm_to_sync", env->body_case, 0, at_sync, b);
    else if (to == PM_TO_PROCESSOR)
        sim_post(pm->sim, CH_PM_PL, 1, "process_batch", env->corr_id - CORR_BASE, 0, at_processor, b);
    else if (to == PM_TO_PARK)
        sim_post(pm->sim, CH_PM_PL, 1, "park", env->processor ? env->processor->msg_case : 0, 0,
                 at_park, b);
    else
        sim_post(pm->sim, -1, 1, "pm_to_storage", 0, 0, at_storage, b);
    return 0;
}

static int endpoint_peer(const char *endpoint)
{
    unsigned p;
    if (sscanf(endpoint, "alys://%*64[0-9a-f]@peer-%u.sim:", &p) != 1 || p >= SIM_MAX_PEERS)
        return -1;
    return (int) p;
}

typedef struct {
    uint32_t inc;
    int slot;
} link_ev_t;

/* A connect attempt reached the peer (one latency after it started). */
static void link_attempt(sim_t *sim, void *arg)
{
    link_ev_t *e = arg;
    if (alive(sim, e->inc)) {
        sim_pm_t *pm = sim_get_pm(sim);
        slot_t *s = &pm->slot[e->slot];
        s->connecting = false;
        if (s->plugged && !s->link && s->peer >= 0 && sim_net_link_ok(sim, (uint32_t) s->peer)) {
            s->link = true;
            s->retry_ms = RECONNECT_MIN_MS;
            pm_core_on_peer_link(core(pm), e->slot, true);
            check_penalties(pm);
        } else if (s->plugged && !s->link) {
            s->retry_at = sim_now(sim) + s->retry_ms;
            s->retry_ms = s->retry_ms * 2 < RECONNECT_MAX_MS ? s->retry_ms * 2 : RECONNECT_MAX_MS;
        }
    }
    free(e);
}

static void start_connect(sim_pm_t *pm, int slot)
{
    slot_t *s = &pm->slot[slot];
    link_ev_t *e = malloc(sizeof *e);
    if (!e || s->connecting) {
        free(e);
        return;
    }
    *e = (link_ev_t){pm->inc, slot};
    s->connecting = true;
    sim_post(pm->sim, -1, sim_case(pm->sim)->latency_ms + 1, "link_attempt", (uint64_t) slot,
             (uint64_t) s->peer, link_attempt, e);
}

static int port_peer_dial(void *ctx, int slot, const char *endpoint)
{
    sim_pm_t *pm = ctx;
    int peer = endpoint_peer(endpoint);
    if (peer < 0 || (uint32_t) peer >= sim_case(pm->sim)->peers)
        return PM_DIAL_REFUSED;
    slot_t *s = &pm->slot[slot];
    s->peer = peer;
    s->plugged = true;
    s->link = false;
    s->retry_ms = RECONNECT_MIN_MS;
    start_connect(pm, slot);
    return PM_DIAL_OK;
}

static void port_peer_hangup(void *ctx, int slot, const char *endpoint)
{
    (void) endpoint;
    sim_pm_t *pm = ctx;
    pm->slot[slot].plugged = false;
    pm->slot[slot].link = false;
}

typedef struct {
    uint32_t inc;
    int slot;
    uint64_t request_id;
} peers_ev_t;

static void deliver_frame(sim_pm_t *pm, int slot, const alys_wire_msg_t *m)
{
    zframe_t *f = alys_wire_encode(m);
    if (!f) {
        sim_fail(pm->sim, "simulator", "a %s response did not encode", alys_wire_body_name(m));
        return;
    }
    pm_core_on_peer_frame(core(pm), slot, zframe_data(f), zframe_size(f), 1);
    zframe_destroy(&f);
    check_penalties(pm);
}

/* GetPeers: the simulated peers know no one else (lost like any answer
 * while the peer is out of reach). */
static void peers_reply(sim_t *sim, void *arg)
{
    peers_ev_t *e = arg;
    const slot_t *s = alive(sim, e->inc) ? &sim_get_pm(sim)->slot[e->slot] : NULL;
    if (s && s->link && s->peer >= 0 && sim_net_reachable(sim, (uint32_t) s->peer)) {
        Alys__Wire__Peers peers = ALYS__WIRE__PEERS__INIT;
        alys_wire_msg_t m = ALYS__WIRE__WIRE_MSG__INIT;
        m.request_id = e->request_id;
        m.body_case = ALYS__WIRE__WIRE_MSG__BODY_PEERS;
        m.peers = &peers;
        deliver_frame(sim_get_pm(sim), e->slot, &m);
    }
    free(e);
}

static sim_msg_t *sim_msg_new(sim_msg_kind_t kind, uint32_t peer, uint64_t wire_id)
{
    sim_msg_t *m = calloc(1, sizeof *m);
    if (m) {
        m->kind = kind;
        m->peer = peer;
        m->wire_id = wire_id;
    }
    return m;
}

static int port_peer_send(void *ctx, int slot, const alys_wire_msg_t *w)
{
    sim_pm_t *pm = ctx;
    slot_t *s = &pm->slot[slot];
    if (!s->plugged || !s->link || s->peer < 0)
        return -1; /* ZMQ_IMMEDIATE: nothing connected */
    sim_msg_t *m = NULL;
    switch (w->body_case) {
    case ALYS__WIRE__WIRE_MSG__BODY_STATUS:
        m = sim_msg_new(M_STATUS_REQ, (uint32_t) s->peer, w->request_id);
        break;
    case ALYS__WIRE__WIRE_MSG__BODY_GET_HEADERS:
        if ((m = sim_msg_new(M_GET_HEADERS, (uint32_t) s->peer, w->request_id))) {
            m->start = w->get_headers->start;
            m->count = w->get_headers->count;
        }
        break;
    case ALYS__WIRE__WIRE_MSG__BODY_GET_BLOCKS:
        if ((m = sim_msg_new(M_GET_BLOCKS, (uint32_t) s->peer, w->request_id))) {
            m->start = w->get_blocks->start;
            m->count = w->get_blocks->count;
        }
        break;
    case ALYS__WIRE__WIRE_MSG__BODY_GET_PEERS: {
        peers_ev_t *e = malloc(sizeof *e);
        if (!e)
            return -1;
        *e = (peers_ev_t){pm->inc, slot, w->request_id};
        sim_post(pm->sim, CH_NET_BASE + 2 * s->peer + 1, 2 * sim_case(pm->sim)->latency_ms + 1,
                 "peers", (uint64_t) s->peer, 0, peers_reply, e);
        return 0;
    }
    default: return 0; /* nothing else goes out on a peer slot */
    }
    if (!m)
        return -1;
    sim_net_send(pm->sim, m);
    return 0;
}

static int port_client_send(void *ctx, const uint8_t *id, size_t id_len, const alys_wire_msg_t *m,
                            bool range)
{
    (void) ctx;
    (void) id;
    (void) id_len;
    (void) m;
    (void) range;
    return PM_SEND_GONE; /* the simulated node does not serve */
}

/* ---- from the network ------------------------------------------------------------------ */

static int slot_of_peer(const sim_pm_t *pm, uint32_t peer)
{
    for (int i = 0; i < PM_CONN_MAX; i++)
        if (pm->slot[i].peer == (int) peer && pm->slot[i].plugged)
            return i;
    return -1;
}

static void status_frame(sim_pm_t *pm, int slot, const sim_msg_t *m)
{
    uint8_t other[ALYS_HASH_LEN];
    memcpy(other, k_genesis, ALYS_HASH_LEN);
    other[0] ^= 0xff;
    char listen[ALYS_ENDPOINT_MAX];
    snprintf(listen, sizeof listen, "alys://%s@peer-%u.sim:%d", sim_peer_id(m->peer), m->peer,
             SIM_PORT);
    Alys__Wire__Status st = ALYS__WIRE__STATUS__INIT;
    st.protocol_version = ALYS_WIRE_PROTOCOL_VERSION;
    st.genesis_hash = (ProtobufCBinaryData){ALYS_HASH_LEN,
                                            m->genesis_ok ? (uint8_t *) k_genesis : other};
    st.head_height = m->height;
    st.node_id = (char *) sim_peer_id(m->peer);
    st.listen = listen;
    alys_wire_msg_t w = ALYS__WIRE__WIRE_MSG__INIT;
    w.request_id = m->wire_id;
    w.body_case = ALYS__WIRE__WIRE_MSG__BODY_STATUS;
    w.status = &st;
    deliver_frame(pm, slot, &w);
}

/* Headers/Blocks, cut at the frame limit as a real server does. */
static void range_frame(sim_pm_t *pm, int slot, const sim_msg_t *m)
{
    size_t n = alys_wire_fit_items(m->items, m->n, 64, ALYS_MAX_MSG_BYTES);
    Alys__Wire__Headers h = ALYS__WIRE__HEADERS__INIT;
    Alys__Wire__Blocks b = ALYS__WIRE__BLOCKS__INIT;
    alys_wire_msg_t w = ALYS__WIRE__WIRE_MSG__INIT;
    w.request_id = m->wire_id;
    if (m->kind == M_HEADERS) {
        h.start = m->start;
        h.n_headers = n;
        h.headers = m->items;
        h.truncated = m->truncated || n < m->n;
        w.body_case = ALYS__WIRE__WIRE_MSG__BODY_HEADERS;
        w.headers = &h;
    } else {
        b.start = m->start;
        b.n_blocks = n;
        b.blocks = m->items;
        b.truncated = m->truncated || n < m->n;
        w.body_case = ALYS__WIRE__WIRE_MSG__BODY_BLOCKS;
        w.blocks = &b;
    }
    deliver_frame(pm, slot, &w);
}

/* peer_serve.c answers a range past its head with NOT_FOUND. */
static void not_found_frame(sim_pm_t *pm, int slot, const sim_msg_t *m)
{
    Alys__Wire__WireError e = ALYS__WIRE__WIRE_ERROR__INIT;
    e.code = ALYS__WIRE__WIRE_ERROR__CODE__NOT_FOUND;
    e.message = "not found";
    alys_wire_msg_t w = ALYS__WIRE__WIRE_MSG__INIT;
    w.request_id = m->wire_id;
    w.body_case = ALYS__WIRE__WIRE_MSG__BODY_ERROR;
    w.error = &e;
    deliver_frame(pm, slot, &w);
}

void sim_pm_on_net(sim_t *sim, sim_msg_t *m)
{
    sim_pm_t *pm = sim_get_pm(sim);
    int slot = slot_of_peer(pm, m->peer);
    if (slot >= 0 && pm->slot[slot].link) { /* else: nothing connected to take it */
        if (m->kind == M_STATUS)
            status_frame(pm, slot, m);
        else if (m->kind == M_NOT_FOUND)
            not_found_frame(pm, slot, m);
        else if (m->kind == M_HEADERS || m->kind == M_BLOCKS)
            range_frame(pm, slot, m);
    }
    sim_msg_free(&m);
}

/* ---- from SyncActor ----------------------------------------------------------------------- */

void sim_pm_fetch_headers(sim_t *sim, uint64_t req_id, const char *peer, uint64_t start,
                          uint32_t count, uint32_t timeout_ms)
{
    sim_pm_t *pm = sim_get_pm(sim);
    Alys__Peer__FetchHeaders fh = ALYS__PEER__FETCH_HEADERS__INIT;
    fh.request_id = req_id;
    fh.peer_id = (char *) peer;
    fh.start = start;
    fh.count = count;
    fh.timeout_ms = timeout_ms;
    Alys__Peer__PeerMsg msg = ALYS__PEER__PEER_MSG__INIT;
    msg.msg_case = ALYS__PEER__PEER_MSG__MSG_FETCH_HEADERS;
    msg.fetch_headers = &fh;
    pm_core_on_peer_msg(core(pm), &msg);
    check_penalties(pm);
}

void sim_pm_fetch_blocks(sim_t *sim, uint64_t req_id, const char *peer, uint64_t start,
                         uint32_t count, const alys_hash_t *expected, uint32_t timeout_ms)
{
    sim_pm_t *pm = sim_get_pm(sim);
    ProtobufCBinaryData *hashes = expected ? calloc(count ? count : 1, sizeof *hashes) : NULL;
    if (expected && !hashes) {
        sim_fail(sim, "simulator", "out of memory");
        return;
    }
    for (uint32_t i = 0; hashes && i < count; i++)
        hashes[i] = (ProtobufCBinaryData){ALYS_HASH_LEN, (uint8_t *) expected[i]};
    Alys__Peer__FetchBlocks fb = ALYS__PEER__FETCH_BLOCKS__INIT;
    fb.request_id = req_id;
    fb.peer_id = (char *) peer;
    fb.start = start;
    fb.count = count;
    fb.timeout_ms = timeout_ms;
    fb.n_expected_hashes = hashes ? count : 0;
    fb.expected_hashes = hashes;
    Alys__Peer__PeerMsg msg = ALYS__PEER__PEER_MSG__INIT;
    msg.msg_case = ALYS__PEER__PEER_MSG__MSG_FETCH_BLOCKS;
    msg.fetch_blocks = &fb;
    pm_core_on_peer_msg(core(pm), &msg);
    free(hashes);
    check_penalties(pm);
}

/* As main.c's reply_in_flight for SyncActor: on the channel to it,
 * behind the results sent before. */
void sim_pm_get_in_flight(sim_t *sim)
{
    if (pm_core_on_get_in_flight(core(sim_get_pm(sim)), 1) != 0)
        sim_fail(sim, "simulator", "out of memory");
}

void sim_pm_penalise(sim_t *sim, const char *peer, int outcome, const char *reason)
{
    sim_pm_t *pm = sim_get_pm(sim);
    Alys__Peer__Penalise p = ALYS__PEER__PENALISE__INIT;
    p.peer_id = (char *) peer;
    p.outcome = (Alys__Peer__Outcome) outcome;
    p.reason = (char *) reason;
    Alys__Peer__PeerMsg msg = ALYS__PEER__PEER_MSG__INIT;
    msg.msg_case = ALYS__PEER__PEER_MSG__MSG_PENALISE;
    msg.penalise = &p;
    pm_core_on_peer_msg(core(pm), &msg);
    check_penalties(pm);
}

void sim_pm_verdict(sim_t *sim, const char *peer, uint64_t start, uint32_t count, bool valid,
                    const char *reason)
{
    sim_pm_t *pm = sim_get_pm(sim);
    Alys__Peer__RangeVerdict v = ALYS__PEER__RANGE_VERDICT__INIT;
    v.peer_id = (char *) peer;
    v.start = start;
    v.count = count;
    v.valid = valid;
    v.reason = (char *) reason;
    Alys__Peer__PeerMsg msg = ALYS__PEER__PEER_MSG__INIT;
    msg.msg_case = ALYS__PEER__PEER_MSG__MSG_RANGE_VERDICT;
    msg.range_verdict = &v;
    pm_core_on_peer_msg(core(pm), &msg);
    check_penalties(pm);
}

/* ---- from BlockProcessor ---------------------------------------------------------------- */

void sim_pm_on_processed(sim_t *sim, const pl_outcome_t *o)
{
    sim_pm_t *pm = sim_get_pm(sim);
    Alys__Processor__BatchProcessed bp = ALYS__PROCESSOR__BATCH_PROCESSED__INIT;
    bp.batch_id = o->batch_id;
    bp.committed = o->committed;
    bp.head_height = o->head_height;
    if (o->has_head)
        bp.head_hash = (ProtobufCBinaryData){ALYS_HASH_LEN, (uint8_t *) o->head_hash};
    bp.failed = o->failed;
    bp.failed_height = o->failed_height;
    bp.reason = (char *) o->reason;
    bp.detail = (char *) o->detail;
    Alys__Processor__ProcessorMsg msg = ALYS__PROCESSOR__PROCESSOR_MSG__INIT;
    msg.msg_case = ALYS__PROCESSOR__PROCESSOR_MSG__MSG_BATCH_PROCESSED;
    msg.batch_processed = &bp;
    alys_env_t env = ALYS__BUS__ENVELOPE__INIT;
    env.body_case = ALYS__BUS__ENVELOPE__BODY_PROCESSOR;
    env.processor = &msg;
    env.reply = true;
    env.corr_id = o->batch_id;
    pm_core_on_processor(core(pm), &env);
    check_penalties(pm);
}

void sim_pm_on_refused(sim_t *sim, uint64_t batch_id, bool bad_request)
{
    sim_pm_t *pm = sim_get_pm(sim);
    Alys__Bus__Error err = ALYS__BUS__ERROR__INIT;
    err.code = bad_request ? ALYS_ERR_BAD_REQUEST : ALYS_ERR_BUSY;
    err.message = bad_request ? "refused" : "busy";
    alys_env_t env = ALYS__BUS__ENVELOPE__INIT;
    env.body_case = ALYS__BUS__ENVELOPE__BODY_ERROR;
    env.error = &err;
    env.reply = true;
    env.corr_id = batch_id;
    pm_core_on_processor(core(pm), &env);
    check_penalties(pm);
}

void sim_pm_processor_restarted(sim_t *sim)
{
    sim_pm_t *pm = sim_get_pm(sim);
    /* main.c's monitor on the processor socket: down, then up again. */
    pm_core_on_processor_link(core(pm), false);
    pm_core_on_processor_link(core(pm), true);
}

/* ---- timers and links -------------------------------------------------------------------- */

/* main.c's socket monitors: a peer that went down (disconnect fault) reset
 * its connection; a plugged slot without a link tries again. */
static void watch_links(sim_pm_t *pm)
{
    uint64_t now = sim_now(pm->sim);
    for (int i = 0; i < PM_CONN_MAX; i++) {
        slot_t *s = &pm->slot[i];
        if (!s->plugged || s->peer < 0)
            continue;
        if (s->link && !sim_net_link_ok(pm->sim, (uint32_t) s->peer)) {
            s->link = false;
            s->retry_at = now + RECONNECT_MIN_MS;
            s->retry_ms = RECONNECT_MIN_MS;
            pm_core_on_peer_link(core(pm), i, false);
        } else if (!s->link && !s->connecting && now >= s->retry_at) {
            start_connect(pm, i);
        }
    }
}

static void tick(sim_t *sim, void *arg)
{
    uint32_t inc = (uint32_t) (uintptr_t) arg;
    if (!alive(sim, inc))
        return; /* a dead incarnation's timer */
    sim_pm_t *pm = sim_get_pm(sim);
    watch_links(pm);
    pm->ticks++;
    pm_core_tick_fast(core(pm));
    if (pm->ticks % 5 == 0)
        pm_core_tick_head(core(pm));
    if (pm->ticks % 10 == 0)
        pm_core_tick_slow(core(pm));
    check_penalties(pm);
    sim_post_d(sim, -1, TICK_MS, "pm_tick", 0, 0, tick, arg, NULL);
}

/* ---- life ------------------------------------------------------------------------------- */

sim_pm_t *sim_pm_new(sim_t *sim)
{
    sim_pm_t *pm = calloc(1, sizeof *pm);
    if (!pm)
        return NULL;
    pm->sim = sim;
    pm->inc = sim_incarnation(sim, ACT_PEER_MANAGER);
    if (pm->inc == 0)
        alys_corr_id_set_base(CORR_BASE); /* a new case: ids from a fixed base */
    const sim_case_t *c = sim_case(sim);
    alys_config_defaults(&pm->cfg);
    snprintf(pm->cfg.node_name, sizeof pm->cfg.node_name, "sim-node");
    for (uint32_t p = 0; p < c->peers && p < ALYS_MAX_BOOTSTRAP; p++) {
        snprintf(pm->cfg.bootstrap_peers[p], sizeof pm->cfg.bootstrap_peers[p],
                 "alys://%s@peer-%u.sim:%d", sim_peer_id(p), p, SIM_PORT);
        pm->cfg.bootstrap_peer_count = p + 1;
        pm->honest[p] = sim_peer_honest(sim, p);
    }
    for (int i = 0; i < PM_CONN_MAX; i++)
        pm->slot[i].peer = -1;
    pm_port_t port = {.ctx = pm,
                      .send = port_send,
                      .peer_dial = port_peer_dial,
                      .peer_hangup = port_peer_hangup,
                      .peer_send = port_peer_send,
                      .client_send = port_client_send};
    char err[160];
    pm->metrics = alys_metrics_new();
    pm->core = pm->metrics ? pm_core_new(&pm->cfg, pm->metrics, &port, err, sizeof err) : NULL;
    if (!pm->core)
        sim_pm_destroy(&pm);
    return pm;
}

void sim_pm_destroy(sim_pm_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    sim_pm_t *pm = *self_p;
    pm_core_destroy(&pm->core);
    alys_metrics_destroy(&pm->metrics);
    free(pm->book);
    free(pm);
    *self_p = NULL;
}

void sim_pm_start(sim_t *sim)
{
    sim_pm_t *pm = sim_get_pm(sim);
    pm_core_start(core(pm));
    sim_post_d(sim, -1, TICK_MS, "pm_tick", 0, 0, tick, SIM_INC_ARG(pm->inc), NULL);
}

/* ---- views for the invariants ------------------------------------------------------------ */

size_t sim_pm_reorder_entries(const sim_t *sim)
{
    return reorder_entries(sim_get_pm_c(sim)->core->reorder);
}

size_t sim_pm_reorder_bytes(const sim_t *sim)
{
    return reorder_bytes(sim_get_pm_c(sim)->core->reorder);
}

int sim_pm_score(sim_t *sim, const char *peer, double *score, bool *banned)
{
    sim_pm_t *pm = sim_get_pm(sim);
    peer_view_t v;
    int p = sim_peer_index(peer);
    if (p < 0 || !view_of(pm, (uint32_t) p, &v))
        return -1;
    *score = v.score;
    *banned = v.info.state == PEER_STATE_BANNED;
    return 0;
}

size_t sim_pm_suspects(const sim_t *sim)
{
    return peer_table_suspect_count(sim_get_pm_c(sim)->core->table);
}

size_t sim_pm_table_size(const sim_t *sim)
{
    return peer_table_size(sim_get_pm_c(sim)->core->table);
}

void sim_pm_inherit(sim_pm_t *self, const sim_pm_t *old)
{
    if (!old)
        return;
    self->n_bans = old->n_bans;
    memcpy(self->bans, old->bans, old->n_bans * sizeof old->bans[0]);
    if (old->book && (self->book = malloc(old->book_len ? old->book_len : 1))) {
        memcpy(self->book, old->book, old->book_len);
        self->book_len = old->book_len;
    }
}
