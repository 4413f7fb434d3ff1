/*  alys-sync: SyncActor. Sockets, the loop, and the translation between
 *  messages and the pure machine (sync_machine.h); every decision is the
 *  machine's. Helpers that build messages and verify headers: sync_bus.c.
 *
 *    mailbox ROUTER (ep_sync)          SyncMsg from alysctl and PeerManager,
 *                                      PeerMsg pushes from PeerManager
 *    DEALER -> ep_peer_manager         FetchHeaders, FetchBlocks, Penalise,
 *                                      RangeVerdict, GetPeers; results back
 *    DEALER -> ep_storage              GetHead, CreateCheckpoint,
 *                                      ListCheckpoints, Rollback
 *    DEALER -> ep_block_processor      ProcessBatch (ProcessBlockBatch)
 *    SUB    -> ep_events               "lifecycle" (actor restarts) and
 *                                      "storage" (head_advanced, rolled_back)
 *
 *  Message -> machine: StartSync/PauseSync/ResumeSync -> start/pause/resume;
 *  PeerDiscovered and every connected PeerSet entry -> on_peer_status (+score,
 *  rank); PeerDisconnected and entries that left the set -> on_peer_disconnected;
 *  HeadersResult -> verified here, then on_headers (OK with hashes, or
 *  INVALID); FetchResult -> on_range_outcome; BatchOutcome, storage
 *  head_advanced and Head -> on_committed, then on_block_failed if it failed;
 *  CreateCheckpoint -> create_checkpoint; RecoverFromCheckpoint ->
 *  recover_from_checkpoint (with the checkpoint's hash from Storage).
 *  Machine -> messages: drained after EVERY input call (see drain()):
 *  FETCH_HEADERS/FETCH_BLOCKS -> FetchHeaders/FetchBlocks to PeerManager;
 *  CANCEL -> dropped here (no Cancel message: the machine ignores late
 *  results); PENALISE_PEER -> Penalise; RANGE_VERDICT -> RangeVerdict;
 *  CREATE_CHECKPOINT / ROLLBACK -> Storage; STATE_CHANGED,
 *  CAN_PRODUCE_CHANGED -> log, event, metric; RECOVERED -> metric; LOG -> log.
 *
 *  Events (topic "sync"): state_changed ("From -> To: reason"),
 *  can_produce_blocks ("true"/"false"), and every second progress
 *  ("state=... height=... target=... bps=... eta=... peers=a/t ...").
 *  Metrics: alys_sync_* and alys_checkpoint* (publish_metrics()).
 *
 *  ALYS_SYNC_START_PAUSED=1 in the environment starts the first sync paused
 *  (`alysctl sync resume` lets it go): tests and benchmarks use it to hold
 *  a sync until every peer is connected (the process pauses at each start:
 *  do not combine it with killing the SyncActor).
 *
 *  Restarts: a peer actor's restart is seen on the lifecycle events (a
 *  "ready" with a new pid) and on our own socket to it (disconnected, then
 *  connected again); the first of the two acts, the other is ignored for
 *  RESTART_DEDUP_MS. PeerManager -> on_peer_manager_restarted and
 *  on_processor_restarted (its reorder buffer of downloaded ranges is lost
 *  with it); BlockProcessor -> nothing (PeerManager resends what it held);
 *  Storage -> GetHead again.
 */
#include <czmq.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "actor.h"
#include "chain/chain.h"
#include "log.h"
#include "sockmon.h"
#include "sync_bus.h"
#include "sync_machine.h"
#include "util.h"

#define TICK_MS             100
#define PROGRESS_MS         1000
#define STORAGE_TIMEOUT_MS  2000
#define HEAD_POLL_MS        5000
#define PEERS_POLL_MS       2500       /* PeerManager pushes one at least every 2 s */
#define PROCESS_TIMEOUT_MS  30000
#define RESTART_DEDUP_MS    5000
#define GENESIS_RETRY_MS    2000
#define MAX_PENDING         64
#define MAX_HDR_CTX         8
#define MAX_BATCH_BLOCKS    1024       /* ProcessBlockBatch bound */
#define HDR_RING            16384
#define READ_BURST          64
#define FETCH_CORR          256        /* recent fetch corr_ids, for Error replies */
#define PEER_ABSENT_MS      1500       /* missing from PeerSets this long: gone */

typedef enum { P_GET_HEAD, P_CREATE_CP, P_LIST_CP, P_ROLLBACK, P_PROCESS, P_GET_PEERS } pend_kind_t;

static const char *pend_name(pend_kind_t k)
{
    static const char *n[] = {"GetHead", "CreateCheckpoint", "ListCheckpoints", "Rollback",
                              "ProcessBatch", "GetPeers"};
    return n[k];
}

/* A request to another actor awaiting its reply, and who asked us for it. */
typedef struct {
    bool        used;
    pend_kind_t kind;
    uint64_t    corr_id;
    int64_t     deadline;       /* monotonic ms */
    zframe_t   *client;         /* owned; NULL when no client waits */
    uint64_t    client_corr;
    uint64_t    height;
} pending_t;

/* A FETCH_HEADERS in flight: what its answer must link to. */
typedef struct {
    bool        used;
    uint64_t    req_id;
    sync_peer_id_t peer;
    uint64_t    start;
    uint32_t    count;
    alys_hash_t parent;
    int64_t     deadline;
} hdr_ctx_t;

/* A peer actor whose restarts we act on. */
typedef struct {
    const char *name;
    int         pid;            /* from its last "ready", 0 = unknown */
    bool        lost;           /* our socket to it disconnected */
    int64_t     handled_at;
} watch_t;

enum { W_STORAGE, W_PEER_MANAGER, W_PROCESSOR, W_COUNT };

/* A fetch sent to PeerManager: its envelope corr_id and the machine's
 * request id, so an Error reply instead of a result still reaches it. */
typedef struct {
    uint64_t corr;
    uint64_t req_id;
    bool     headers;
} fetch_corr_t;

typedef struct {
    alys_actor_t  *actor;
    const alys_config_t *cfg;
    alys_metrics_t *metrics;
    alys_genesis_t genesis;
    bool           have_genesis;
    sync_machine_t *m;
    bool           initialised;
    sync_hdr_ring_t *ring;

    zsock_t *pm, *storage, *bp, *sub;
    zsock_t *mon[W_COUNT];
    watch_t  watch[W_COUNT];

    pending_t pend[MAX_PENDING];
    hdr_ctx_t hctx[MAX_HDR_CTX];
    alys_hash_t hashes[SYNC_HEADERS_MAX];
    fetch_corr_t fcorr[FETCH_CORR];
    size_t   fcorr_next;
    ProtobufCBinaryData *expected;      /* FetchBlocks expected_hashes scratch */
    size_t   expected_cap;

    /* Client of the input call being made (its actions answer it). */
    zframe_t *client;
    uint64_t  client_corr;

    sync_peer_id_t known[SYNC_MAX_PEERS];   /* peers the machine was told about */
    bool     known_used[SYNC_MAX_PEERS];
    int64_t  known_seen[SYNC_MAX_PEERS];    /* mono ms last reported connected */

    int64_t  last_peer_set;             /* mono ms of the last PeerSet */
    int64_t  last_head_poll;
    int64_t  last_genesis_try;
    uint64_t production_allowed_at;     /* unix ms */
    uint64_t last_checkpoint_seen;
    /* Our Rollback in flight (and a moment after): commit reports then may
     * predate it and would move the machine back above storage's head. */
    bool     rolling_back;
    int64_t  rollback_settled_at;
} sa_t;

static uint64_t now_ms(void) { return (uint64_t) alys_mono_ms(); }

/* ---------------------------------------------------------------- sending */

static int send_env(zsock_t *sock, alys_env_t *env, const char *to)
{
    if (alys_send(sock, env) == 0)
        return 0;
    log_debug("cannot send %s to %s: %s", alys_env_body_name(env), to, zmq_strerror(zmq_errno()));
    return -1;
}

static int send_peer(sa_t *sa, Alys__Peer__PeerMsg *pm, uint64_t corr)
{
    alys_env_t env = ALYS__BUS__ENVELOPE__INIT;
    env.corr_id = corr;
    env.body_case = ALYS__BUS__ENVELOPE__BODY_PEER;
    env.peer = pm;
    return send_env(sa->pm, &env, "peer_manager");
}

static int send_storage(sa_t *sa, Alys__Storage__StorageMsg *sm, uint64_t corr)
{
    alys_env_t env = ALYS__BUS__ENVELOPE__INIT;
    env.corr_id = corr;
    env.body_case = ALYS__BUS__ENVELOPE__BODY_STORAGE;
    env.storage = sm;
    return send_env(sa->storage, &env, "storage");
}

/* Reply with a SyncMsg body to a client (identity + its corr_id). */
static void reply_sync(sa_t *sa, zframe_t *client, uint64_t corr, Alys__Sync__SyncMsg *msg)
{
    if (!client || corr == 0)
        return;
    alys_env_t rep = ALYS__BUS__ENVELOPE__INIT;
    rep.corr_id = corr;
    rep.reply = true;
    rep.body_case = ALYS__BUS__ENVELOPE__BODY_SYNC;
    rep.sync = msg;
    if (alys_send_to(alys_actor_mailbox(sa->actor), client, &rep) != 0)
        log_debug("reply to a client failed: %s", zmq_strerror(zmq_errno()));
}

static void reply_ack(sa_t *sa, zframe_t *client, uint64_t corr, bool ok, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static void reply_ack(sa_t *sa, zframe_t *client, uint64_t corr, bool ok, const char *fmt, ...)
{
    char text[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    Alys__Sync__Ack ack = ALYS__SYNC__ACK__INIT;
    ack.ok = ok;
    ack.message = text;
    Alys__Sync__SyncMsg msg = ALYS__SYNC__SYNC_MSG__INIT;
    msg.msg_case = ALYS__SYNC__SYNC_MSG__MSG_ACK;
    msg.ack = &ack;
    reply_sync(sa, client, corr, &msg);
}

static void error_metric(sa_t *sa, const char *type)
{
    char labels[96];
    snprintf(labels, sizeof labels, "error_type=\"%s\"", type);
    alys_metric_add(sa->metrics, "alys_sync_errors_total", labels, "Sync errors by type", 1);
}

/* ---------------------------------------------------------------- pending */

static pending_t *pend_add(sa_t *sa, pend_kind_t kind, int64_t timeout_ms)
{
    pending_t *slot = NULL;
    for (size_t i = 0; i < MAX_PENDING && !slot; i++)
        if (!sa->pend[i].used)
            slot = &sa->pend[i];
    if (!slot)
        return NULL;
    *slot = (pending_t){.used = true, .kind = kind, .corr_id = alys_next_corr_id(),
                        .deadline = alys_mono_ms() + timeout_ms};
    return slot;
}

static void pend_take_client(sa_t *sa, pending_t *p)
{
    if (sa->client) {
        p->client = zframe_dup(sa->client);
        p->client_corr = sa->client_corr;
    }
}

static pending_t *pend_find(sa_t *sa, uint64_t corr_id)
{
    for (size_t i = 0; i < MAX_PENDING; i++)
        if (sa->pend[i].used && sa->pend[i].corr_id == corr_id)
            return &sa->pend[i];
    return NULL;
}

static bool pend_has(sa_t *sa, pend_kind_t kind)
{
    for (size_t i = 0; i < MAX_PENDING; i++)
        if (sa->pend[i].used && sa->pend[i].kind == kind)
            return true;
    return false;
}

static void pend_free(pending_t *p)
{
    zframe_destroy(&p->client);
    p->used = false;
}

/* ---------------------------------------------------------------- requests out */

static uint64_t machine_head(sa_t *sa);

static void request_head(sa_t *sa)
{
    if (pend_has(sa, P_GET_HEAD))
        return;
    pending_t *p = pend_add(sa, P_GET_HEAD, STORAGE_TIMEOUT_MS);
    if (!p)
        return;
    p->height = sa->initialised ? machine_head(sa) : 0;     /* what we knew when asking */
    Alys__Storage__GetHead gh = ALYS__STORAGE__GET_HEAD__INIT;
    Alys__Storage__StorageMsg sm = ALYS__STORAGE__STORAGE_MSG__INIT;
    sm.msg_case = ALYS__STORAGE__STORAGE_MSG__MSG_GET_HEAD;
    sm.get_head = &gh;
    send_storage(sa, &sm, p->corr_id);
    sa->last_head_poll = alys_mono_ms();
}

static void request_peers(sa_t *sa)
{
    if (pend_has(sa, P_GET_PEERS))
        return;
    pending_t *p = pend_add(sa, P_GET_PEERS, PEERS_POLL_MS);
    if (!p)
        return;
    Alys__Peer__GetPeers gp = ALYS__PEER__GET_PEERS__INIT;
    Alys__Peer__PeerMsg pm = ALYS__PEER__PEER_MSG__INIT;
    pm.msg_case = ALYS__PEER__PEER_MSG__MSG_GET_PEERS;
    pm.get_peers = &gp;
    send_peer(sa, &pm, p->corr_id);
}

static void request_list_checkpoints(sa_t *sa, uint64_t height)
{
    pending_t *p = pend_add(sa, P_LIST_CP, STORAGE_TIMEOUT_MS);
    if (!p) {
        reply_ack(sa, sa->client, sa->client_corr, false, "too many requests in flight");
        return;
    }
    pend_take_client(sa, p);
    p->height = height;
    Alys__Storage__ListCheckpoints lc = ALYS__STORAGE__LIST_CHECKPOINTS__INIT;
    Alys__Storage__StorageMsg sm = ALYS__STORAGE__STORAGE_MSG__INIT;
    sm.msg_case = ALYS__STORAGE__STORAGE_MSG__MSG_LIST_CHECKPOINTS;
    sm.list_checkpoints = &lc;
    send_storage(sa, &sm, p->corr_id);
}

/* ---------------------------------------------------------------- actions */

static uint64_t fetch_corr(sa_t *sa, uint64_t req_id, bool headers)
{
    uint64_t corr = alys_next_corr_id();
    sa->fcorr[sa->fcorr_next++ % FETCH_CORR] = (fetch_corr_t){corr, req_id, headers};
    return corr;
}

static hdr_ctx_t *hctx_find(sa_t *sa, uint64_t req_id)
{
    for (size_t i = 0; i < MAX_HDR_CTX; i++)
        if (sa->hctx[i].used && sa->hctx[i].req_id == req_id)
            return &sa->hctx[i];
    return NULL;
}

static hdr_ctx_t *hctx_alloc(sa_t *sa)
{
    hdr_ctx_t *oldest = &sa->hctx[0];
    for (size_t i = 0; i < MAX_HDR_CTX; i++) {
        if (!sa->hctx[i].used)
            return &sa->hctx[i];
        if (sa->hctx[i].deadline < oldest->deadline)
            oldest = &sa->hctx[i];
    }
    return oldest;                     /* evict: its answer will be ignored */
}

static void act_fetch_headers(sa_t *sa, const sync_action_t *a)
{
    hdr_ctx_t *c = hctx_alloc(sa);
    *c = (hdr_ctx_t){.used = true, .req_id = a->fetch_headers.req_id,
                     .start = a->fetch_headers.start, .count = a->fetch_headers.count,
                     .deadline = alys_mono_ms() + 2 * (int64_t) a->fetch_headers.timeout_ms + 3000};
    memcpy(c->peer, a->fetch_headers.peer, sizeof c->peer);
    memcpy(c->parent, a->fetch_headers.parent_hash, ALYS_HASH_LEN);
    Alys__Peer__FetchHeaders fh = ALYS__PEER__FETCH_HEADERS__INIT;
    fh.request_id = a->fetch_headers.req_id;
    fh.peer_id = (char *) a->fetch_headers.peer;
    fh.start = a->fetch_headers.start;
    fh.count = a->fetch_headers.count;
    fh.timeout_ms = a->fetch_headers.timeout_ms;
    Alys__Peer__PeerMsg pm = ALYS__PEER__PEER_MSG__INIT;
    pm.msg_case = ALYS__PEER__PEER_MSG__MSG_FETCH_HEADERS;
    pm.fetch_headers = &fh;
    log_debug("fetch headers [%" PRIu64 ",+%u) from %s (request %" PRIu64 ")", fh.start, fh.count,
              fh.peer_id, fh.request_id);
    send_peer(sa, &pm, fetch_corr(sa, fh.request_id, true));
}

static void act_fetch_blocks(sa_t *sa, const sync_action_t *a)
{
    uint32_t n = a->fetch_blocks.expected ? a->fetch_blocks.expected_count : 0;
    if (n > sa->expected_cap) {
        ProtobufCBinaryData *e = realloc(sa->expected, n * sizeof *e);
        if (!e) {
            log_error("out of memory for %u expected hashes", n);
            return;                    /* the machine's lost-request timer re-issues it */
        }
        sa->expected = e;
        sa->expected_cap = n;
    }
    for (uint32_t i = 0; i < n; i++) {
        sa->expected[i].len = ALYS_HASH_LEN;
        sa->expected[i].data = (uint8_t *) a->fetch_blocks.expected[i];
    }
    Alys__Peer__FetchBlocks fb = ALYS__PEER__FETCH_BLOCKS__INIT;
    fb.request_id = a->fetch_blocks.req_id;
    fb.peer_id = (char *) a->fetch_blocks.peer;
    fb.start = a->fetch_blocks.start;
    fb.count = a->fetch_blocks.count;
    fb.n_expected_hashes = n;
    fb.expected_hashes = sa->expected;
    fb.timeout_ms = a->fetch_blocks.timeout_ms;
    Alys__Peer__PeerMsg pm = ALYS__PEER__PEER_MSG__INIT;
    pm.msg_case = ALYS__PEER__PEER_MSG__MSG_FETCH_BLOCKS;
    pm.fetch_blocks = &fb;
    log_debug("fetch blocks [%" PRIu64 ",+%u) from %s (request %" PRIu64 ")", fb.start, fb.count,
              fb.peer_id, fb.request_id);
    alys_metric_add(sa->metrics, "alys_sync_blocks_requested_total", NULL,
                    "Blocks asked of PeerManager (re-requests included)", fb.count);
    alys_metric_add(sa->metrics, "alys_sync_range_requests_total", NULL,
                    "Block ranges asked of PeerManager", 1);
    send_peer(sa, &pm, fetch_corr(sa, fb.request_id, false));
}

static void act_cancel(sa_t *sa, const sync_action_t *a)
{
    /* No Cancel message exists: PeerManager finishes or times the request
     * out and the machine ignores the late result. Forget our context. */
    hdr_ctx_t *c = hctx_find(sa, a->cancel.req_id);
    if (c)
        c->used = false;
}

static void act_penalise(sa_t *sa, const sync_action_t *a)
{
    Alys__Peer__Penalise pen = ALYS__PEER__PENALISE__INIT;
    pen.peer_id = (char *) a->penalise.peer;
    pen.outcome = sync_bus_penalty_outcome(a->penalise.kind);
    pen.reason = (char *) sync_penalty_name(a->penalise.kind);
    Alys__Peer__PeerMsg pm = ALYS__PEER__PEER_MSG__INIT;
    pm.msg_case = ALYS__PEER__PEER_MSG__MSG_PENALISE;
    pm.penalise = &pen;
    log_info("penalising peer %s: %s", pen.peer_id, pen.reason);
    error_metric(sa, pen.reason);
    send_peer(sa, &pm, 0);
}

static void act_verdict(sa_t *sa, const sync_action_t *a)
{
    Alys__Peer__RangeVerdict rv = ALYS__PEER__RANGE_VERDICT__INIT;
    rv.start = a->range_verdict.start;
    rv.count = a->range_verdict.count;
    rv.peer_id = (char *) a->range_verdict.peer;
    rv.valid = a->range_verdict.valid;
    rv.reason = (char *) a->range_verdict.reason;
    Alys__Peer__PeerMsg pm = ALYS__PEER__PEER_MSG__INIT;
    pm.msg_case = ALYS__PEER__PEER_MSG__MSG_RANGE_VERDICT;
    pm.range_verdict = &rv;
    log_info("range [%" PRIu64 ",+%u) verdict for %s: %s (%s)", rv.start, rv.count, rv.peer_id,
             rv.valid ? "valid" : "served bad data", rv.reason);
    send_peer(sa, &pm, 0);
}

static double state_gauge(sync_state_kind_t k) { return (double) k; }

static void act_state_changed(sa_t *sa, const sync_action_t *a)
{
    const char *from = sync_state_name(a->state_changed.from);
    const char *to = sync_state_name(a->state_changed.to);
    const char *paused = a->state_changed.paused ? " (paused)" : "";
    log_info("state %s -> %s%s: %s", from, to, paused, a->state_changed.reason);
    alys_actor_event(sa->actor, "sync", "state_changed", "%s -> %s%s: %s", from, to, paused,
                     a->state_changed.reason);
    alys_metric_set(sa->metrics, "alys_sync_state", NULL,
                    "Current sync state (0=discovering, 1=headers, 2=blocks, 3=catchup, 4=synced, 5=failed)",
                    state_gauge(a->state_changed.to));
    if (a->state_changed.to == SYNC_FAILED && a->state_changed.from != SYNC_FAILED)
        error_metric(sa, "sync_failed");
}

static void act_can_produce(sa_t *sa, const sync_action_t *a)
{
    bool v = a->can_produce.value;
    sync_progress_t p;
    sync_machine_get_progress(sa->m, now_ms(), &p);
    if (v)
        sa->production_allowed_at = (uint64_t) alys_now_ms();
    log_info("block production %s at height %" PRIu64 " (target %" PRIu64 ")",
             v ? "allowed" : "not allowed", p.current_height, p.target_height);
    alys_actor_event(sa->actor, "sync", "can_produce_blocks", "%s", v ? "true" : "false");
    alys_metric_set(sa->metrics, "alys_sync_can_produce_blocks", NULL,
                    "1 when block production is allowed (CanProduceBlocks)", v ? 1 : 0);
}

static void act_create_checkpoint(sa_t *sa, const sync_action_t *a)
{
    pending_t *p = pend_add(sa, P_CREATE_CP, STORAGE_TIMEOUT_MS);
    if (!p) {
        reply_ack(sa, sa->client, sa->client_corr, false, "too many requests in flight");
        return;
    }
    pend_take_client(sa, p);
    p->height = a->create_checkpoint.height;
    static sync_progress_buf_t buf;    /* large; one at a time */
    sync_bus_progress(&buf, sa->m, now_ms());
    Alys__Storage__CreateCheckpoint cc = ALYS__STORAGE__CREATE_CHECKPOINT__INIT;
    cc.progress = &buf.msg;
    Alys__Storage__StorageMsg sm = ALYS__STORAGE__STORAGE_MSG__INIT;
    sm.msg_case = ALYS__STORAGE__STORAGE_MSG__MSG_CREATE_CHECKPOINT;
    sm.create_checkpoint = &cc;
    log_info("creating a checkpoint at height %" PRIu64, p->height);
    send_storage(sa, &sm, p->corr_id);
}

static void act_rollback(sa_t *sa, const sync_action_t *a)
{
    /* A head asked for before the rollback would move the machine back up. */
    for (size_t i = 0; i < MAX_PENDING; i++)
        if (sa->pend[i].used && sa->pend[i].kind == P_GET_HEAD)
            pend_free(&sa->pend[i]);
    pending_t *p = pend_add(sa, P_ROLLBACK, STORAGE_TIMEOUT_MS * 5);
    if (!p) {
        reply_ack(sa, sa->client, sa->client_corr, false, "too many requests in flight");
        return;
    }
    pend_take_client(sa, p);
    p->height = a->rollback.height;
    sa->rolling_back = true;
    Alys__Storage__Rollback rb = ALYS__STORAGE__ROLLBACK__INIT;
    rb.height = a->rollback.height;
    Alys__Storage__StorageMsg sm = ALYS__STORAGE__STORAGE_MSG__INIT;
    sm.msg_case = ALYS__STORAGE__STORAGE_MSG__MSG_ROLLBACK;
    sm.rollback = &rb;
    log_warn("rolling storage back to height %" PRIu64, rb.height);
    send_storage(sa, &sm, p->corr_id);
}

static void act_log(const sync_action_t *a)
{
    static const alys_log_level_t map[] = {ALYS_LOG_DEBUG, ALYS_LOG_INFO, ALYS_LOG_WARN, ALYS_LOG_ERROR};
    unsigned lvl = (unsigned) a->log.level < 4 ? (unsigned) a->log.level : 1;
    alys_log(map[lvl], "%s", a->log.text);
}

/* Translate every queued action. Called after EVERY machine input: the
 * FETCH_BLOCKS expected pointer is only valid until the next input. */
static void drain(sa_t *sa)
{
    sync_action_t a;
    while (sync_machine_next_action(sa->m, &a)) {
        switch (a.kind) {
        case SYNC_ACTION_FETCH_HEADERS: act_fetch_headers(sa, &a); break;
        case SYNC_ACTION_FETCH_BLOCKS: act_fetch_blocks(sa, &a); break;
        case SYNC_ACTION_CANCEL: act_cancel(sa, &a); break;
        case SYNC_ACTION_PENALISE_PEER: act_penalise(sa, &a); break;
        case SYNC_ACTION_STATE_CHANGED: act_state_changed(sa, &a); break;
        case SYNC_ACTION_CAN_PRODUCE_CHANGED: act_can_produce(sa, &a); break;
        case SYNC_ACTION_CREATE_CHECKPOINT: act_create_checkpoint(sa, &a); break;
        case SYNC_ACTION_ROLLBACK: act_rollback(sa, &a); break;
        case SYNC_ACTION_RECOVERED:
            log_info("recovery %u from height %" PRIu64, a.recovered.attempt, a.recovered.from_height);
            alys_metric_add(sa->metrics, "alys_sync_recoveries_total", NULL,
                            "Number of successful sync recoveries", 1);
            break;
        case SYNC_ACTION_LOG: act_log(&a); break;
        case SYNC_ACTION_RANGE_VERDICT: act_verdict(sa, &a); break;
        }
    }
    uint64_t dropped = sync_machine_dropped_actions(sa->m);
    if (dropped)
        alys_metric_set(sa->metrics, "alys_sync_dropped_actions", NULL,
                        "Machine actions lost to a full queue (a bug if not 0)", (double) dropped);
}

/* ---------------------------------------------------------------- head */

static uint64_t machine_head(sa_t *sa)
{
    sync_progress_t p;
    sync_machine_get_progress(sa->m, now_ms(), &p);
    return p.current_height;
}

/* A checkpoint exists at height: ours (explicit, CreateCheckpoint) or one
 * Storage wrote on its own every checkpoint_interval blocks as it committed
 * (we only see the latest: count the interval multiples passed). */
static void checkpoint_seen(sa_t *sa, uint64_t height, bool explicit)
{
    if (explicit)
        alys_metric_add(sa->metrics, "alys_checkpoints_created_total", NULL,
                        "Total checkpoints created", 1);
    if (height <= sa->last_checkpoint_seen)
        return;
    uint64_t interval = sa->cfg->checkpoint_interval ? sa->cfg->checkpoint_interval : 1;
    uint64_t n = (height - sa->last_checkpoint_seen) / interval;
    if (!explicit)
        alys_metric_add(sa->metrics, "alys_checkpoints_created_total", NULL,
                        "Total checkpoints created", (double) (n ? n : 1));
    sa->last_checkpoint_seen = height;
    sync_machine_on_checkpoint_written(sa->m, now_ms(), height);
    drain(sa);
}

#define ROLLBACK_QUIET_MS 300

static void committed(sa_t *sa, uint64_t height, const uint8_t *hash, size_t hash_len)
{
    if (!sa->initialised || hash_len != ALYS_HASH_LEN)
        return;
    if (sa->rolling_back || alys_mono_ms() - sa->rollback_settled_at < ROLLBACK_QUIET_MS)
        return;
    sync_machine_on_committed(sa->m, now_ms(), height, hash);
    drain(sa);
}

/* Storage's head. asked_at_head: the machine's head when we asked; a
 * reply below it means storage went back (a rollback), while a reply below
 * the machine's head now may only be older than a commit reported since. */
static void on_head(sa_t *sa, const Alys__Storage__Head *h, uint64_t asked_at_head)
{
    if (h->hash.len != ALYS_HASH_LEN)
        return;
    if (sa->have_genesis && h->genesis_hash.len == ALYS_HASH_LEN
        && memcmp(h->genesis_hash.data, sa->genesis.hash, ALYS_HASH_LEN) != 0)
        log_error("storage holds another chain than genesis_file %s", sa->cfg->genesis_file);
    sync_hdr_ring_put(sa->ring, h->height, h->slot, h->hash.data);
    uint64_t now = now_ms();
    if (!sa->initialised || h->height < asked_at_head) {
        /* First start (or the head went back: a rollback we did not ask
         * for): resume from the committed head, never from genesis. */
        log_info("%s from committed head %" PRIu64 " (last checkpoint %" PRIu64 ")",
                 sa->initialised ? "restarting" : "starting", h->height, h->last_checkpoint);
        sync_machine_init(sa->m, now, h->height, h->hash.data, h->last_checkpoint);
        drain(sa);
        if (!sa->initialised) {
            sa->initialised = true;
            sync_machine_start(sa->m, now, false, 0, false, 0);     /* auto start */
            drain(sa);
            const char *hold = getenv("ALYS_SYNC_START_PAUSED");
            if (hold && strcmp(hold, "1") == 0) {
                log_info("ALYS_SYNC_START_PAUSED=1: waiting for `alysctl sync resume`");
                sync_machine_pause(sa->m, now);
                drain(sa);
            }
            request_peers(sa);         /* the peers now, not at the next push */
        }
        sa->last_checkpoint_seen = h->last_checkpoint;
        return;
    }
    committed(sa, h->height, h->hash.data, h->hash.len);
    checkpoint_seen(sa, h->last_checkpoint, false);
}

/* ---------------------------------------------------------------- peers */

static int known_find(sa_t *sa, const char *id)
{
    for (int i = 0; i < SYNC_MAX_PEERS; i++)
        if (sa->known_used[i] && strcmp(sa->known[i], id) == 0)
            return i;
    return -1;
}

static void known_add(sa_t *sa, const char *id)
{
    int k = known_find(sa, id);
    for (int i = 0; i < SYNC_MAX_PEERS && k < 0; i++)
        if (!sa->known_used[i]) {
            sa->known_used[i] = true;
            snprintf(sa->known[i], sizeof sa->known[i], "%s", id);
            k = i;
        }
    if (k >= 0)
        sa->known_seen[k] = alys_mono_ms();
}

static uint64_t plausible_height(sa_t *sa)
{
    return sa->have_genesis ? alys_genesis_slot_at(&sa->genesis, (uint64_t) alys_now_ms()) : 0;
}

static void peer_status(sa_t *sa, const char *id, uint64_t height)
{
    if (!id || !*id || strlen(id) > SYNC_PEER_ID_MAX)
        return;
    known_add(sa, id);
    sync_machine_on_peer_status(sa->m, now_ms(), id, height, plausible_height(sa));
    drain(sa);
}

static void peer_gone(sa_t *sa, const char *id, const char *reason)
{
    int k = id ? known_find(sa, id) : -1;
    if (k < 0)
        return;
    sa->known_used[k] = false;
    log_info("peer %s gone: %s", id, reason);
    sync_machine_on_peer_disconnected(sa->m, now_ms(), id, reason);
    drain(sa);
}

/* PeerSet: connected entries are (re)reported to the machine with their
 * rank and score; entries disconnected/banned/refused are gone at once;
 * peers missing from the sets for PEER_ABSENT_MS are gone too (a peer just
 * announced by PeerDiscovered may miss one push, and a restarted
 * PeerManager's first sets are empty: no flapping for those). */
static bool gone_state(const char *state)
{
    return state && (strcmp(state, "disconnected") == 0 || strcmp(state, "banned") == 0
                     || strcmp(state, "refused") == 0);
}

static void on_peer_set(sa_t *sa, const Alys__Peer__PeerSet *ps)
{
    for (size_t i = 0; i < ps->n_peers; i++) {
        const Alys__Peer__PeerEntry *e = ps->peers[i];
        if (!e->peer_id || !*e->peer_id || strlen(e->peer_id) > SYNC_PEER_ID_MAX)
            continue;
        if (e->state && strcmp(e->state, "connected") == 0) {
            sync_machine_on_peer_rank(sa->m, e->peer_id, (uint32_t) i);
            sync_machine_on_peer_score(sa->m, e->peer_id, e->score);
            peer_status(sa, e->peer_id, e->reported_height);
            sync_machine_on_peer_rank(sa->m, e->peer_id, (uint32_t) i);
            sync_machine_on_peer_score(sa->m, e->peer_id, e->score);
            drain(sa);
        } else if (gone_state(e->state)) {
            peer_gone(sa, e->peer_id, e->state);
        }
    }
    int64_t now = alys_mono_ms();
    for (int k = 0; k < SYNC_MAX_PEERS; k++)
        if (sa->known_used[k] && now - sa->known_seen[k] >= PEER_ABSENT_MS) {
            char id[SYNC_PEER_ID_MAX + 1];
            snprintf(id, sizeof id, "%s", sa->known[k]);
            peer_gone(sa, id, "no longer in PeerManager's peer set");
        }
    if (ps->batch_size) {
        sync_machine_on_batch_size(sa->m, ps->batch_size);
        drain(sa);
    }
}

/* ---------------------------------------------------------------- peer results */

static void on_headers_result(sa_t *sa, const Alys__Peer__HeadersResult *hr)
{
    uint64_t now = now_ms();
    sync_outcome_t outcome = sync_bus_outcome(hr->outcome);
    hdr_ctx_t *c = hctx_find(sa, hr->request_id);
    if (!c) {
        log_debug("headers for unknown request %" PRIu64 " ignored", hr->request_id);
        return;
    }
    hdr_ctx_t ctx = *c;
    c->used = false;
    /* A short answer still carries headers (PeerManager scored the peer for
     * it): keep what verifies; the next request continues from there, and a
     * peer that has nothing more answers with none and is capped then. */
    if (outcome == SYNC_OUTCOME_SHORT && hr->n_headers > 0)
        outcome = SYNC_OUTCOME_OK;
    if (outcome != SYNC_OUTCOME_OK) {
        error_metric(sa, sync_outcome_name(outcome));
        sync_machine_on_headers(sa->m, now, ctx.req_id, outcome, ctx.start, 0, NULL);
        drain(sa);
        return;
    }
    char why[256];
    if (!sa->have_genesis
        || sync_verify_headers(&sa->genesis, sa->ring, (uint64_t) alys_now_ms(), ctx.start, ctx.count,
                               ctx.parent, hr->headers, hr->n_headers, sa->hashes, why,
                               sizeof why) != 0) {
        if (!sa->have_genesis)
            snprintf(why, sizeof why, "no genesis loaded");
        log_warn("invalid headers from %s for [%" PRIu64 ",+%u): %s", ctx.peer, ctx.start, ctx.count, why);
        error_metric(sa, "invalid_header");
        sync_machine_on_headers(sa->m, now, ctx.req_id, SYNC_OUTCOME_INVALID, ctx.start, 0, NULL);
        drain(sa);
        return;
    }
    sync_machine_on_headers(sa->m, now, ctx.req_id, SYNC_OUTCOME_OK, ctx.start,
                            (uint32_t) hr->n_headers, (const alys_hash_t *) sa->hashes);
    drain(sa);
}

static void on_fetch_result(sa_t *sa, const Alys__Peer__FetchResult *fr)
{
    sync_outcome_t outcome = sync_bus_outcome(fr->outcome);
    if (outcome != SYNC_OUTCOME_OK) {
        error_metric(sa, sync_outcome_name(outcome));
        log_debug("range [%" PRIu64 ",...) from %s: %s %s", fr->start, fr->peer_id,
                  sync_outcome_name(outcome), fr->detail ? fr->detail : "");
    } else {
        log_debug("range [%" PRIu64 ",+%u) from %s delivered (request %" PRIu64 ", %u ms)", fr->start,
                  fr->delivered, fr->peer_id, fr->request_id, fr->latency_ms);
        alys_metric_add(sa->metrics, "alys_sync_blocks_downloaded_total", NULL,
                        "Blocks PeerManager delivered to BlockProcessor for us", fr->delivered);
        alys_metric_add(sa->metrics, "alys_sync_bytes_downloaded_total", NULL,
                        "Bytes of the ranges PeerManager fetched for us", (double) fr->bytes);
    }
    sync_machine_on_range_outcome(sa->m, now_ms(), fr->request_id, outcome);
    drain(sa);
}

static void on_batch_outcome(sa_t *sa, const Alys__Peer__BatchOutcome *bo)
{
    committed(sa, bo->head_height, bo->head_hash.data, bo->head_hash.len);
    if (!bo->failed)
        return;
    const char *reason = bo->reason ? bo->reason : "";
    const char *detail = bo->detail ? bo->detail : "";
    if (strcmp(reason, "dropped") == 0 && strcmp(detail, "after_failure") == 0)
        return;             /* on_block_failed of the lower range re-queued it already */
    bool fault = sync_bus_reason_is_peer_fault(reason, bo->failed_height, bo->start);
    log_warn("block %" PRIu64 " from %s refused: %s %s", bo->failed_height, bo->peer_id, reason,
             detail);
    error_metric(sa, fault ? "block_invalid" : "block_processing");
    sync_machine_on_block_failed(sa->m, now_ms(), bo->failed_height, fault, reason);
    drain(sa);
}

static void on_peer_msg(sa_t *sa, const alys_env_t *env)
{
    const Alys__Peer__PeerMsg *pm = env->peer;
    switch (pm->msg_case) {
    case ALYS__PEER__PEER_MSG__MSG_HEADERS_RESULT: on_headers_result(sa, pm->headers_result); break;
    case ALYS__PEER__PEER_MSG__MSG_FETCH_RESULT: on_fetch_result(sa, pm->fetch_result); break;
    case ALYS__PEER__PEER_MSG__MSG_BATCH_OUTCOME: on_batch_outcome(sa, pm->batch_outcome); break;
    case ALYS__PEER__PEER_MSG__MSG_PEER_SET: {
        pending_t *p = env->reply ? pend_find(sa, env->corr_id) : NULL;
        if (p)
            pend_free(p);
        sa->last_peer_set = alys_mono_ms();
        on_peer_set(sa, pm->peer_set);
        break;
    }
    default:
        log_debug("ignoring peer message %d from %s", (int) pm->msg_case, env->sender);
        break;
    }
}

/* ---------------------------------------------------------------- storage replies */

static void on_checkpoints(sa_t *sa, pending_t *p, const Alys__Storage__Checkpoints *cps)
{
    if (p->kind == P_CREATE_CP) {
        Alys__Chain__BlockCheckpoint *cp = cps->n_checkpoints ? cps->checkpoints[0] : NULL;
        if (cp) {
            alys_metric_set(sa->metrics, "alys_checkpoint_height", NULL, "Latest checkpoint height",
                            (double) cp->height);
            checkpoint_seen(sa, cp->height, true);
            log_info("checkpoint written at height %" PRIu64, cp->height);
        }
        Alys__Sync__SyncMsg msg = ALYS__SYNC__SYNC_MSG__INIT;
        msg.msg_case = ALYS__SYNC__SYNC_MSG__MSG_CHECKPOINT;
        msg.checkpoint = cp;
        if (cp)
            reply_sync(sa, p->client, p->client_corr, &msg);
        else
            reply_ack(sa, p->client, p->client_corr, false, "storage wrote no checkpoint");
        return;
    }
    /* P_LIST_CP: RecoverFromCheckpoint{height} needs the checkpoint's hash. */
    const Alys__Chain__BlockCheckpoint *found = NULL;
    for (size_t i = 0; i < cps->n_checkpoints; i++)
        if (cps->checkpoints[i]->height == p->height && cps->checkpoints[i]->hash.len == ALYS_HASH_LEN)
            found = cps->checkpoints[i];
    if (!found) {
        reply_ack(sa, p->client, p->client_corr, false,
                  "no checkpoint at height %" PRIu64 " (see alysctl checkpoint list)", p->height);
        return;
    }
    sa->client = p->client;                /* the ROLLBACK action answers it */
    sa->client_corr = p->client_corr;
    int rc = sync_machine_recover_from_checkpoint(sa->m, now_ms(), found->height, found->hash.data);
    drain(sa);
    sa->client = NULL;
    if (rc != 0)
        reply_ack(sa, p->client, p->client_corr, false,
                  "cannot recover to %" PRIu64 ": above the committed head", p->height);
}

static void on_storage_reply(sa_t *sa, pending_t *p, const alys_env_t *env)
{
    if (env->body_case == ALYS__BUS__ENVELOPE__BODY_ERROR) {
        const char *msg = env->error && env->error->message ? env->error->message : "error";
        log_warn("storage refused %s: %s", pend_name(p->kind), msg);
        reply_ack(sa, p->client, p->client_corr, false, "storage refused: %s", msg);
        if (p->kind == P_ROLLBACK) {
            sa->rolling_back = false;
            request_head(sa);              /* the machine moved; storage did not */
        }
        return;
    }
    if (env->body_case != ALYS__BUS__ENVELOPE__BODY_STORAGE)
        return;
    const Alys__Storage__StorageMsg *sm = env->storage;
    if (sm->msg_case == ALYS__STORAGE__STORAGE_MSG__MSG_HEAD) {
        if (p->kind == P_ROLLBACK)
            reply_ack(sa, p->client, p->client_corr, true, "rolled back to height %" PRIu64,
                      sm->head->height);
        /* After a rollback, storage's head is the truth whatever we knew. */
        if (p->kind == P_ROLLBACK) {
            sa->rolling_back = false;
            sa->rollback_settled_at = alys_mono_ms();
        }
        on_head(sa, sm->head, p->kind == P_GET_HEAD ? p->height : UINT64_MAX);
    } else if (sm->msg_case == ALYS__STORAGE__STORAGE_MSG__MSG_CHECKPOINTS) {
        on_checkpoints(sa, p, sm->checkpoints);
    }
}

/* ---------------------------------------------------------------- processor replies */

static void on_processed(sa_t *sa, pending_t *p, const alys_env_t *env)
{
    if (env->body_case == ALYS__BUS__ENVELOPE__BODY_ERROR) {
        reply_ack(sa, p->client, p->client_corr, false, "block processor refused: %s",
                  env->error && env->error->message ? env->error->message : "error");
        return;
    }
    if (env->body_case != ALYS__BUS__ENVELOPE__BODY_PROCESSOR
        || env->processor->msg_case != ALYS__PROCESSOR__PROCESSOR_MSG__MSG_BATCH_PROCESSED)
        return;
    const Alys__Processor__BatchProcessed *bp = env->processor->batch_processed;
    /* Not a range of ours: no on_block_failed (it would suspect whoever
     * served an overlapping range). The head moves all the same. */
    committed(sa, bp->head_height, bp->head_hash.data, bp->head_hash.len);
    if (bp->failed) {
        error_metric(sa, "block_pushed_invalid");
        reply_ack(sa, p->client, p->client_corr, false, "block %" PRIu64 " refused: %s",
                  bp->failed_height, bp->reason ? bp->reason : "");
    } else {
        reply_ack(sa, p->client, p->client_corr, true, "%u committed, head %" PRIu64, bp->committed,
                  bp->head_height);
    }
}

/* ---------------------------------------------------------------- replies (any socket) */

static void on_reply(sa_t *sa, const alys_env_t *env)
{
    pending_t *p = pend_find(sa, env->corr_id);
    if (!p) {
        log_debug("late or unknown reply %s %" PRIu64 " from %s", alys_env_body_name(env),
                  env->corr_id, env->sender);
        return;
    }
    pending_t copy = *p;                  /* handlers may add pendings */
    p->used = false;
    p->client = NULL;
    switch (copy.kind) {
    case P_GET_HEAD: case P_CREATE_CP: case P_LIST_CP: case P_ROLLBACK:
        on_storage_reply(sa, &copy, env);
        break;
    case P_PROCESS: on_processed(sa, &copy, env); break;
    case P_GET_PEERS: break;
    }
    zframe_destroy(&copy.client);
}

/* ---------------------------------------------------------------- sync mailbox */

static void on_status_request(sa_t *sa, zframe_t *from, const alys_env_t *env)
{
    static sync_status_buf_t buf;
    sync_bus_status(&buf, sa->m, now_ms(), sa->production_allowed_at);
    Alys__Sync__SyncMsg msg = ALYS__SYNC__SYNC_MSG__INIT;
    msg.msg_case = ALYS__SYNC__SYNC_MSG__MSG_SYNC_STATUS;
    msg.sync_status = &buf.msg;
    reply_sync(sa, from, env->corr_id, &msg);
}

static void on_can_produce(sa_t *sa, zframe_t *from, const alys_env_t *env)
{
    char reason[256];
    sync_bus_can_produce_reason(sa->m, now_ms(), reason, sizeof reason);
    Alys__Sync__CanProduceBlocksReply r = ALYS__SYNC__CAN_PRODUCE_BLOCKS_REPLY__INIT;
    r.can_produce = sync_machine_can_produce_blocks(sa->m);
    r.reason = reason;
    Alys__Sync__SyncMsg msg = ALYS__SYNC__SYNC_MSG__INIT;
    msg.msg_case = ALYS__SYNC__SYNC_MSG__MSG_CAN_PRODUCE_REPLY;
    msg.can_produce_reply = &r;
    reply_sync(sa, from, env->corr_id, &msg);
}

static void on_process_block_batch(sa_t *sa, zframe_t *from, const alys_env_t *env)
{
    const Alys__Sync__ProcessBlockBatch *b = env->sync->process_block_batch;
    if (b->n_blocks == 0 || b->n_blocks > MAX_BATCH_BLOCKS) {
        reply_ack(sa, from, env->corr_id, false, "%zu blocks: 1..%d per batch", b->n_blocks,
                  MAX_BATCH_BLOCKS);
        return;
    }
    pending_t *p = pend_add(sa, P_PROCESS, PROCESS_TIMEOUT_MS);
    if (!p) {
        reply_ack(sa, from, env->corr_id, false, "too many batches in flight");
        return;
    }
    if (from && env->corr_id) {
        p->client = zframe_dup(from);
        p->client_corr = env->corr_id;
    }
    Alys__Processor__ProcessBatch pb = ALYS__PROCESSOR__PROCESS_BATCH__INIT;
    pb.batch_id = p->corr_id;
    pb.n_blocks = b->n_blocks;
    pb.blocks = b->blocks;
    pb.origin = b->from_peer && *b->from_peer ? b->from_peer : (char *) env->sender;
    Alys__Processor__ProcessorMsg pm = ALYS__PROCESSOR__PROCESSOR_MSG__INIT;
    pm.msg_case = ALYS__PROCESSOR__PROCESSOR_MSG__MSG_PROCESS_BATCH;
    pm.process_batch = &pb;
    alys_env_t out = ALYS__BUS__ENVELOPE__INIT;
    out.corr_id = p->corr_id;
    out.body_case = ALYS__BUS__ENVELOPE__BODY_PROCESSOR;
    out.processor = &pm;
    if (send_env(sa->bp, &out, "block_processor") != 0) {
        reply_ack(sa, p->client, p->client_corr, false, "block processor unreachable");
        pend_free(p);
    }
}

/* A command that is one machine call; answered with Ack. */
static void on_command(sa_t *sa, zframe_t *from, const alys_env_t *env)
{
    const Alys__Sync__SyncMsg *sm = env->sync;
    uint64_t now = now_ms();
    int rc = 0;
    const char *what = "";
    switch (sm->msg_case) {
    case ALYS__SYNC__SYNC_MSG__MSG_START_SYNC: {
        const Alys__Sync__StartSync *s = sm->start_sync;
        rc = sync_machine_start(sa->m, now, s->has_from, s->from_height, s->has_target, s->target_height);
        what = "sync started";
        break;
    }
    case ALYS__SYNC__SYNC_MSG__MSG_PAUSE_SYNC:
        rc = sync_machine_pause(sa->m, now);
        what = "sync paused";
        break;
    case ALYS__SYNC__SYNC_MSG__MSG_RESUME_SYNC:
        rc = sync_machine_resume(sa->m, now);
        what = "sync resumed";
        break;
    default:
        return;
    }
    drain(sa);
    log_info("%s by %s", what, env->sender ? env->sender : "?");
    reply_ack(sa, from, env->corr_id, rc == 0, "%s", rc == 0 ? what : "refused");
}

static void on_sync_msg(sa_t *sa, zframe_t *from, const alys_env_t *env)
{
    const Alys__Sync__SyncMsg *sm = env->sync;
    bool ready = sa->initialised;
    switch (sm->msg_case) {
    case ALYS__SYNC__SYNC_MSG__MSG_PEER_DISCOVERED:
        peer_status(sa, sm->peer_discovered->peer_id, sm->peer_discovered->reported_height);
        reply_ack(sa, from, env->corr_id, true, "ok");
        return;
    case ALYS__SYNC__SYNC_MSG__MSG_PEER_DISCONNECTED:
        peer_gone(sa, sm->peer_disconnected->peer_id,
                  sm->peer_disconnected->reason ? sm->peer_disconnected->reason : "");
        reply_ack(sa, from, env->corr_id, true, "ok");
        return;
    case ALYS__SYNC__SYNC_MSG__MSG_GET_SYNC_STATUS: on_status_request(sa, from, env); return;
    case ALYS__SYNC__SYNC_MSG__MSG_CAN_PRODUCE_BLOCKS: on_can_produce(sa, from, env); return;
    case ALYS__SYNC__SYNC_MSG__MSG_PROCESS_BLOCK_BATCH: on_process_block_batch(sa, from, env); return;
    default: break;
    }
    if (!ready) {
        reply_ack(sa, from, env->corr_id, false, "not started yet: waiting for StorageActor's head");
        return;
    }
    switch (sm->msg_case) {
    case ALYS__SYNC__SYNC_MSG__MSG_CREATE_CHECKPOINT:
        sa->client = from;
        sa->client_corr = env->corr_id;
        sync_machine_create_checkpoint(sa->m, now_ms());
        drain(sa);
        sa->client = NULL;
        return;
    case ALYS__SYNC__SYNC_MSG__MSG_RECOVER_FROM_CHECKPOINT:
        sa->client = from;
        sa->client_corr = env->corr_id;
        request_list_checkpoints(sa, sm->recover_from_checkpoint->height);
        sa->client = NULL;
        return;
    default:
        on_command(sa, from, env);
        return;
    }
}

/* PeerManager answered a fetch with an Error instead of a result: nobody
 * served anything, so the machine re-issues it without blame. */
static void on_fetch_error(sa_t *sa, const alys_env_t *env)
{
    for (size_t i = 0; i < FETCH_CORR; i++) {
        fetch_corr_t *f = &sa->fcorr[i];
        if (!f->corr || f->corr != env->corr_id)
            continue;
        const char *msg = env->error && env->error->message ? env->error->message : "";
        sync_outcome_t o = env->error && env->error->code == ALYS_ERR_BUSY ? SYNC_OUTCOME_BUSY
                                                                           : SYNC_OUTCOME_NO_PEER;
        log_warn("peer_manager refused request %" PRIu64 ": %s", f->req_id, msg);
        if (f->headers) {
            hdr_ctx_t *c = hctx_find(sa, f->req_id);
            if (c) {
                c->used = false;
                sync_machine_on_headers(sa->m, now_ms(), f->req_id, o, c->start, 0, NULL);
            }
        } else {
            sync_machine_on_range_outcome(sa->m, now_ms(), f->req_id, o);
        }
        drain(sa);
        f->corr = 0;
        return;
    }
}

static void dispatch(sa_t *sa, zframe_t *from, const alys_env_t *env)
{
    if (env->reply && env->corr_id && pend_find(sa, env->corr_id)) {
        if (env->body_case == ALYS__BUS__ENVELOPE__BODY_PEER)
            on_peer_msg(sa, env);          /* GetPeers -> PeerSet */
        else
            on_reply(sa, env);
        return;
    }
    switch (env->body_case) {
    case ALYS__BUS__ENVELOPE__BODY_PEER: on_peer_msg(sa, env); break;
    case ALYS__BUS__ENVELOPE__BODY_SYNC:
        if (!env->reply)
            on_sync_msg(sa, from, env);
        break;
    case ALYS__BUS__ENVELOPE__BODY_ERROR:
        if (env->reply)
            on_fetch_error(sa, env);
        break;
    default:
        if (!env->reply && from && env->corr_id)
            alys_reply_error(alys_actor_mailbox(sa->actor), from, env, ALYS_ERR_BAD_REQUEST,
                             "sync does not serve %s", alys_env_body_name(env));
        break;
    }
}

static int on_mailbox(alys_actor_t *actor, zframe_t *from, alys_env_t *env, void *arg)
{
    (void) actor;
    dispatch(arg, from, env);
    return 0;
}

static int on_dealer(alys_actor_t *actor, zsock_t *sock, void *arg)
{
    (void) actor;
    for (int i = 0; i < READ_BURST && (zsock_events(sock) & ZMQ_POLLIN); i++) {
        alys_env_t *env = NULL;
        int rc = alys_recv(sock, &env);
        if (rc < 0)
            return 0;
        if (rc == 0) {
            dispatch(arg, NULL, env);
            alys_env_free(&env);
        }
    }
    return 0;
}

/* ---------------------------------------------------------------- restarts */

static void restarted(sa_t *sa, int w, const char *how)
{
    watch_t *wt = &sa->watch[w];
    int64_t now = alys_mono_ms();
    if (wt->handled_at && now - wt->handled_at < RESTART_DEDUP_MS)
        return;
    wt->handled_at = now;
    log_warn("%s restarted (%s)", wt->name, how);
    char labels[64];
    snprintf(labels, sizeof labels, "actor=\"%s\"", wt->name);
    alys_metric_add(sa->metrics, "alys_sync_actor_restarts_seen_total", labels,
                    "Restarts of other actors the SyncActor acted on", 1);
    if (!sa->initialised) {
        if (w == W_STORAGE)
            request_head(sa);
        return;
    }
    switch (w) {
    case W_STORAGE: request_head(sa); break;
    case W_PEER_MANAGER:
        /* Its requests in flight are lost, and so are the ranges it had
         * downloaded but not yet handed to BlockProcessor (its reorder
         * buffer): re-issue both. Ranges it had handed over and that commit
         * after all are dropped from the window when the head passes them. */
        for (size_t i = 0; i < MAX_HDR_CTX; i++)
            sa->hctx[i].used = false;
        sync_machine_on_peer_manager_restarted(sa->m, now_ms());
        drain(sa);
        sync_machine_on_processor_restarted(sa->m, now_ms());
        drain(sa);
        request_peers(sa);
        break;
    case W_PROCESSOR:
        /* Nothing to re-fetch: PeerManager keeps every range in its reorder
         * buffer until it is committed and resends what the old
         * BlockProcessor held (peer_reorder.h). Should that fail, the
         * machine's processing timeout re-fetches. */
        break;
    }
}

static int on_sockmon(alys_actor_t *actor, zsock_t *sock, void *arg)
{
    (void) actor;
    sa_t *sa = arg;
    int w = 0;
    while (w < W_COUNT && sa->mon[w] != sock)
        w++;
    int ev = sockmon_read(sock, NULL, 0);
    if (w == W_COUNT)
        return 0;
    if (ev == ZMQ_EVENT_DISCONNECTED)
        sa->watch[w].lost = true;
    else if (ev == ZMQ_EVENT_CONNECTED && sa->watch[w].lost) {
        sa->watch[w].lost = false;
        restarted(sa, w, "its socket reconnected");
    }
    return 0;
}

static void on_lifecycle(sa_t *sa, const Alys__Control__Event *ev)
{
    if (!ev->kind || strcmp(ev->kind, "ready") != 0 || !ev->actor || !ev->detail)
        return;
    const char *p = strstr(ev->detail, "pid ");
    int pid = p ? atoi(p + 4) : 0;
    for (int w = 0; w < W_COUNT; w++) {
        watch_t *wt = &sa->watch[w];
        if (strcmp(ev->actor, wt->name) != 0 || pid <= 0)
            continue;
        int old = wt->pid;
        wt->pid = pid;
        if (old && old != pid)
            restarted(sa, w, "a new process is ready");
    }
}

static void on_storage_event(sa_t *sa, const Alys__Control__Event *ev)
{
    if (!ev->kind || !ev->detail || !sa->initialised)
        return;
    if (strcmp(ev->kind, "rolled_back") == 0) {
        request_head(sa);
        return;
    }
    if (strcmp(ev->kind, "head_advanced") != 0)
        return;
    unsigned long long height = 0;
    char hex[2 * ALYS_HASH_LEN + 1];
    alys_hash_t hash;
    if (sscanf(ev->detail, "height=%llu hash=%64s", &height, hex) == 2
        && alys_unhex(hex, hash, ALYS_HASH_LEN) == 0)
        committed(sa, height, hash, ALYS_HASH_LEN);
}

static int on_event(alys_actor_t *actor, zsock_t *sock, void *arg)
{
    (void) actor;
    sa_t *sa = arg;
    for (int i = 0; i < READ_BURST && (zsock_events(sock) & ZMQ_POLLIN); i++) {
        char topic[32];
        alys_env_t *env = NULL;
        int rc = alys_recv_topic(sock, topic, sizeof topic, &env);
        if (rc < 0)
            return 0;
        if (rc != 0)
            continue;
        if (env->body_case == ALYS__BUS__ENVELOPE__BODY_EVENT && env->event) {
            if (strcmp(topic, "lifecycle") == 0)
                on_lifecycle(sa, env->event);
            else if (strcmp(topic, "storage") == 0)
                on_storage_event(sa, env->event);
        }
        alys_env_free(&env);
    }
    return 0;
}

/* ---------------------------------------------------------------- timers */

static bool load_genesis(sa_t *sa)
{
    if (sa->have_genesis)
        return true;
    int64_t now = alys_mono_ms();
    if (sa->last_genesis_try && now - sa->last_genesis_try < GENESIS_RETRY_MS)
        return false;
    sa->last_genesis_try = now;
    char err[256];
    if (!*sa->cfg->genesis_file) {
        log_error("no genesis_file in [node]: cannot verify headers; waiting");
        return false;
    }
    if (alys_genesis_load(sa->cfg->genesis_file, &sa->genesis, err, sizeof err) != 0) {
        log_error("cannot load the genesis: %s", err);
        return false;
    }
    sa->have_genesis = true;
    char hex[2 * ALYS_HASH_LEN + 1];
    alys_hex(sa->genesis.hash, ALYS_HASH_LEN, hex);
    log_info("genesis %s (%s, %u authorities, slot %" PRIu64 " ms)", hex, sa->genesis.chain_id,
             sa->genesis.authority_count, sa->genesis.slot_duration_ms);
    return true;
}

static void expire_pending(sa_t *sa)
{
    int64_t now = alys_mono_ms();
    for (size_t i = 0; i < MAX_PENDING; i++) {
        pending_t *p = &sa->pend[i];
        if (!p->used || now < p->deadline)
            continue;
        log_debug("%s %" PRIu64 " timed out", pend_name(p->kind), p->corr_id);
        if (p->kind != P_GET_PEERS && p->kind != P_GET_HEAD)
            error_metric(sa, "request_timeout");
        reply_ack(sa, p->client, p->client_corr, false, "%s timed out", pend_name(p->kind));
        pending_t copy = *p;
        pend_free(p);
        if (copy.kind == P_ROLLBACK) {
            sa->rolling_back = false;
            request_head(sa);
        }
    }
    for (size_t i = 0; i < MAX_HDR_CTX; i++)
        if (sa->hctx[i].used && now >= sa->hctx[i].deadline)
            sa->hctx[i].used = false;
}

static int on_tick(alys_actor_t *actor, void *arg)
{
    (void) actor;
    sa_t *sa = arg;
    if (!load_genesis(sa))
        return 0;
    expire_pending(sa);
    int64_t now = alys_mono_ms();
    if (!sa->initialised) {
        request_head(sa);              /* retried until StorageActor answers */
        return 0;
    }
    if (sa->rollback_settled_at && now - sa->rollback_settled_at >= ROLLBACK_QUIET_MS) {
        sa->rollback_settled_at = 0;   /* commits reported meanwhile were ignored: catch up */
        request_head(sa);
    } else if (now - sa->last_head_poll >= HEAD_POLL_MS) {
        request_head(sa);
    }
    if (now - sa->last_peer_set >= PEERS_POLL_MS)
        request_peers(sa);
    sync_machine_tick(sa->m, now_ms());
    drain(sa);
    return 0;
}

static void publish_metrics(sa_t *sa, const sync_progress_t *p)
{
    alys_metrics_t *m = sa->metrics;
    alys_metric_set(m, "alys_sync_state", NULL,
                    "Current sync state (0=discovering, 1=headers, 2=blocks, 3=catchup, 4=synced, 5=failed)",
                    state_gauge(p->state));
    alys_metric_set(m, "alys_sync_current_height", NULL, "Current synced height", (double) p->current_height);
    alys_metric_set(m, "alys_sync_target_height", NULL, "Target sync height from peers",
                    (double) p->target_height);
    alys_metric_set(m, "alys_sync_blocks_per_second", NULL, "Current sync speed in blocks per second",
                    p->blocks_per_second);
    alys_metric_set(m, "alys_sync_blocks_behind", NULL, "Number of blocks behind the network",
                    (double) p->blocks_behind);
    alys_metric_set(m, "alys_checkpoint_height", NULL, "Latest checkpoint height",
                    (double) p->last_checkpoint);
    alys_metric_set(m, "alys_sync_can_produce_blocks", NULL,
                    "1 when block production is allowed (CanProduceBlocks)", p->can_produce_blocks ? 1 : 0);
    alys_metric_set(m, "alys_sync_paused", NULL, "1 while sync is paused", p->paused ? 1 : 0);
    alys_metric_set(m, "alys_sync_header_height", NULL, "Highest verified header", (double) p->header_height);
    alys_metric_set(m, "alys_sync_ranges_in_flight", NULL, "Block ranges being downloaded",
                    (double) p->ranges_in_flight);
    alys_metric_set(m, "alys_sync_retries", NULL, "Range attempts that failed since the start",
                    (double) p->retries);
    alys_metric_set(m, "alys_sync_reassignments", NULL, "Stalled ranges moved to another peer",
                    (double) p->reassignments);
    alys_metric_set(m, "alys_sync_stall_timeout_seconds", NULL,
                    "Current adaptive stall timeout of a full range", p->stall_timeout_ms / 1000.0);
    alys_metric_set(m, "alys_sync_active_peers", NULL, "Peers usable for sync", (double) p->active_peers);
}

static int on_progress(alys_actor_t *actor, void *arg)
{
    sa_t *sa = arg;
    if (!sa->initialised)
        return 0;
    sync_progress_t p;
    sync_machine_get_progress(sa->m, now_ms(), &p);
    publish_metrics(sa, &p);
    char line[400];
    sync_bus_progress_line(&p, line, sizeof line);
    alys_actor_event(actor, "sync", "progress", "%s", line);
    return 0;
}

/* ---------------------------------------------------------------- setup */

static int connect_peer_actor(sa_t *sa, int w, zsock_t **sock, const char *endpoint)
{
    *sock = alys_dealer_connect(endpoint, alys_actor_name(sa->actor));
    if (!*sock)
        return -1;
    sa->mon[w] = sockmon_new(*sock, sa->watch[w].name, ZMQ_EVENT_CONNECTED | ZMQ_EVENT_DISCONNECTED);
    if (alys_actor_add_reader(sa->actor, *sock, on_dealer, sa) != 0)
        return -1;
    if (sa->mon[w] && alys_actor_add_reader(sa->actor, sa->mon[w], on_sockmon, sa) != 0)
        return -1;
    return 0;
}

static int setup(sa_t *sa)
{
    const alys_config_t *cfg = sa->cfg;
    sa->watch[W_STORAGE] = (watch_t){.name = "storage"};
    sa->watch[W_PEER_MANAGER] = (watch_t){.name = "peer_manager"};
    sa->watch[W_PROCESSOR] = (watch_t){.name = "block_processor"};
    sync_machine_config_t mcfg;
    sync_machine_config_from(&mcfg, cfg);
    /* Unique per incarnation: a restarted actor never matches a stale id. */
    mcfg.req_id_base = ((uint64_t) alys_now_ms() << 16) | ((uint64_t) getpid() & 0xffff);
    mcfg.random_seed = (uint64_t) alys_now_ms() ^ ((uint64_t) getpid() << 32);
    sa->m = sync_machine_new(&mcfg);
    sa->ring = sync_hdr_ring_new(HDR_RING);
    if (!sa->m || !sa->ring) {
        log_error("out of memory");
        return -1;
    }
    if (alys_actor_bind(sa->actor, cfg->ep_sync, on_mailbox, sa) != 0) {
        log_error("cannot bind the mailbox %s", cfg->ep_sync);
        return -1;
    }
    if (connect_peer_actor(sa, W_PEER_MANAGER, &sa->pm, cfg->ep_peer_manager) != 0
        || connect_peer_actor(sa, W_STORAGE, &sa->storage, cfg->ep_storage) != 0
        || connect_peer_actor(sa, W_PROCESSOR, &sa->bp, cfg->ep_block_processor) != 0) {
        log_error("cannot connect to the other actors");
        return -1;
    }
    sa->sub = alys_sub_connect(cfg->ep_events, "lifecycle");
    if (!sa->sub)
        return -1;
    zsock_set_subscribe(sa->sub, "storage");
    if (alys_actor_add_reader(sa->actor, sa->sub, on_event, sa) != 0
        || alys_actor_add_timer(sa->actor, TICK_MS, 0, on_tick, sa) < 0
        || alys_actor_add_timer(sa->actor, PROGRESS_MS, 0, on_progress, sa) < 0)
        return -1;
    load_genesis(sa);
    if (sa->have_genesis)
        request_head(sa);
    return 0;
}

static void teardown(sa_t *sa)
{
    for (size_t i = 0; i < MAX_PENDING; i++)
        if (sa->pend[i].used)
            pend_free(&sa->pend[i]);
    for (int w = 0; w < W_COUNT; w++)
        zsock_destroy(&sa->mon[w]);
    zsock_destroy(&sa->pm);
    zsock_destroy(&sa->storage);
    zsock_destroy(&sa->bp);
    zsock_destroy(&sa->sub);
    sync_machine_destroy(&sa->m);
    sync_hdr_ring_destroy(&sa->ring);
    free(sa->expected);
    if (sa->have_genesis)
        alys_genesis_clear(&sa->genesis);
}

int main(int argc, char **argv)
{
    static sa_t sa;                        /* large (hash scratch); zeroed */
    sa.actor = alys_actor_new("sync", argc, argv);
    if (!sa.actor)
        return 2;
    sa.cfg = alys_actor_config(sa.actor);
    sa.metrics = alys_actor_metrics(sa.actor);
    int rc = 1;
    if (setup(&sa) == 0 && alys_actor_ready(sa.actor) == 0)
        rc = alys_actor_run(sa.actor) == 0 ? 0 : 1;
    /* The actor's loop and readers go first: they reference our sockets. */
    alys_actor_destroy(&sa.actor);
    teardown(&sa);
    return rc;
}
