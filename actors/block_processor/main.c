/*  alys-block-processor: BlockProcessorActor. Moves bytes between the
 *  sockets and the pipeline (pipeline.c holds every decision):
 *
 *    mailbox ROUTER (ep_block_processor)  ProcessBatch in, BatchProcessed out
 *    worker ROUTER (ep_validators)        local validators, NULL security
 *    worker ROUTER (worker_listen)        remote validators; CURVE + zauth
 *                                         allow-list when tcp and curve_enabled
 *    storage DEALER (ep_storage)          ExecuteBatch / GetHead, monitored so
 *                                         a restarted StorageActor gets the
 *                                         outstanding request again at once
 *
 *  The mailbox also keeps PeerManager's parked ranges (park.h: Park, Unpark,
 *  ParkRekey, GetParked -> Parked), and storage's answers tell the park the
 *  committed head.
 *
 *  In-process validation (sequential mode, or no worker for a while) runs in
 *  slices of about INLINE_SLICE_MS from a zero-delay timer, so the mailbox and
 *  heartbeats are served in between.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "actor.h"
#include "chain/chain.h"
#include "log.h"
#include "membudget.h"
#include "park.h"
#include "pipeline.h"
#include "sockmon.h"
#include "util.h"

#define TICK_MS         100
#define INLINE_SLICE_MS 20
#define SOCK_LOCAL      0
#define SOCK_REMOTE     1

typedef struct {
    alys_actor_t *actor;
    const alys_config_t *cfg;
    alys_genesis_t genesis;
    bool have_genesis;
    uint8_t *genesis_bytes; /* encoded, for WorkerWelcome */
    size_t genesis_len;
    pipeline_t *pl;
    park_t *park; /* PeerManager's parked ranges */
    /* The head storage last reported (park_set_head's), told in Parked. */
    uint64_t head_height;
    uint8_t head_hash[ALYS_HASH_LEN];
    bool have_head;
    zsock_t *workers[2]; /* SOCK_LOCAL, SOCK_REMOTE (may be NULL) */
    zsock_t *remote_mon;
    zactor_t *auth;
    zsock_t *storage;
    zsock_t *storage_mon;
    bool inline_scheduled;
} bp_t;

/* Who to answer: owned by the pipeline once a batch is accepted. */
typedef struct {
    zframe_t *identity;
    uint64_t corr_id;
} reply_ctx_t;

static void reply_ctx_free(void *p)
{
    reply_ctx_t *r = p;
    if (r) {
        zframe_destroy(&r->identity);
        free(r);
    }
}

/* ---------------------------------------------------------------- genesis */

static int load_genesis(bp_t *bp)
{
    if (bp->have_genesis)
        return 0;
    if (!*bp->cfg->genesis_file)
        return -1;
    char err[256];
    /* Light: the processor never executes (storage does), so it needs no
     * state root, whose lattice costs a vector per genesis account on every
     * start before Ready. */
    if (alys_genesis_load_light(bp->cfg->genesis_file, &bp->genesis, err, sizeof err) != 0) {
        log_error("cannot load the genesis: %s", err);
        return -1;
    }
    if (alys_genesis_encode(&bp->genesis, &bp->genesis_bytes, &bp->genesis_len) != 0) {
        log_error("cannot encode the genesis for workers");
        alys_genesis_clear(&bp->genesis);
        return -1;
    }
    bp->have_genesis = true;
    pipeline_set_genesis(bp->pl, &bp->genesis);
    return 0;
}

/* ---------------------------------------------------------------- ops */

static alys_env_t processor_env(Alys__Processor__ProcessorMsg *msg)
{
    alys_env_t env = ALYS__BUS__ENVELOPE__INIT;
    env.body_case = ALYS__BUS__ENVELOPE__BODY_PROCESSOR;
    env.processor = msg;
    return env;
}

static int op_send_task(void *ctx, int sock, const char *id, uint64_t task_id,
                        const ProtobufCBinaryData *blocks, size_t n)
{
    bp_t *bp = ctx;
    Alys__Processor__ValidateTask task = ALYS__PROCESSOR__VALIDATE_TASK__INIT;
    task.task_id = task_id;
    task.n_blocks = n;
    task.blocks = (ProtobufCBinaryData *) blocks; /* packing only reads */
    Alys__Processor__ProcessorMsg msg = ALYS__PROCESSOR__PROCESSOR_MSG__INIT;
    msg.msg_case = ALYS__PROCESSOR__PROCESSOR_MSG__MSG_VALIDATE_TASK;
    msg.validate_task = &task;
    alys_env_t env = processor_env(&msg);
    return bp->workers[sock] ? alys_send_to_name(bp->workers[sock], id, &env) : -1;
}

static int op_send_storage(void *ctx, uint64_t req_id, uint64_t batch_seq,
                           const ProtobufCBinaryData *blocks, size_t n, const char *origin,
                           const pl_reorg_t *reorg)
{
    bp_t *bp = ctx;
    Alys__Storage__ExecuteBatch exec = ALYS__STORAGE__EXECUTE_BATCH__INIT;
    Alys__Storage__GetHead get_head = ALYS__STORAGE__GET_HEAD__INIT;
    Alys__Storage__StorageMsg msg = ALYS__STORAGE__STORAGE_MSG__INIT;
    if (n > 0) {
        exec.batch_id = batch_seq;
        exec.n_blocks = n;
        exec.blocks = (ProtobufCBinaryData *) blocks;
        exec.origin = (char *) origin;
        if (reorg) {
            exec.reorg_ancestor_height = reorg->ancestor_height;
            exec.reorg_ancestor_hash = (ProtobufCBinaryData){ALYS_HASH_LEN,
                                                             (uint8_t *) reorg->ancestor_hash};
        }
        msg.msg_case = ALYS__STORAGE__STORAGE_MSG__MSG_EXECUTE_BATCH;
        msg.execute_batch = &exec;
    } else {
        msg.msg_case = ALYS__STORAGE__STORAGE_MSG__MSG_GET_HEAD;
        msg.get_head = &get_head;
    }
    alys_env_t env = ALYS__BUS__ENVELOPE__INIT;
    env.corr_id = req_id;
    env.body_case = ALYS__BUS__ENVELOPE__BODY_STORAGE;
    env.storage = &msg;
    return alys_send(bp->storage, &env);
}

static void count_outcome(bp_t *bp, const pl_outcome_t *o)
{
    alys_metrics_t *m = alys_actor_metrics(bp->actor);
    alys_metric_observe(m, "alys_batch_processing_duration_seconds", NULL,
                        "Time from ProcessBatch to BatchProcessed", (double) o->duration_ms / 1000.0);
    alys_metric_add(m, "alys_blocks_processed_total", NULL, "Blocks validated and committed",
                    (double) o->committed);
    alys_metric_add(m, "alys_txs_processed_total", NULL, "Transactions in committed blocks",
                    (double) o->committed_txs);
    if (o->failed) {
        char labels[64];
        snprintf(labels, sizeof labels, "reason=\"%s\"", o->reason);
        alys_metric_add(m, "alys_blocks_failed_total", labels, "Blocks refused, by reason", 1);
        log_warn("batch %llu from %s: block %llu refused: %s (%s)%s",
                 (unsigned long long) o->batch_id, o->origin, (unsigned long long) o->failed_height,
                 o->reason, o->detail, o->committed ? ", the blocks before it are committed" : "");
    }
}

static void op_reply(void *ctx, void *reply_ctx, const pl_outcome_t *o)
{
    bp_t *bp = ctx;
    reply_ctx_t *r = reply_ctx;
    count_outcome(bp, o);
    Alys__Processor__BatchProcessed bpm = ALYS__PROCESSOR__BATCH_PROCESSED__INIT;
    bpm.batch_id = o->batch_id;
    bpm.committed = o->committed;
    bpm.head_height = o->head_height;
    if (o->has_head) {
        bpm.head_hash = (ProtobufCBinaryData){ALYS_HASH_LEN, (uint8_t *) o->head_hash};
        bpm.state_root = (ProtobufCBinaryData){ALYS_HASH_LEN, (uint8_t *) o->state_root};
    }
    bpm.failed = o->failed;
    bpm.failed_height = o->failed_height;
    if (o->has_failed_hash)
        bpm.failed_hash = (ProtobufCBinaryData){ALYS_HASH_LEN, (uint8_t *) o->failed_hash};
    bpm.reason = (char *) o->reason;
    bpm.detail = (char *) o->detail;
    bpm.tx_index = o->tx_index;
    bpm.checkpoint_height = o->checkpoint_height;
    bpm.reorg_depth = o->reorg_depth;
    Alys__Processor__ProcessorMsg msg = ALYS__PROCESSOR__PROCESSOR_MSG__INIT;
    msg.msg_case = ALYS__PROCESSOR__PROCESSOR_MSG__MSG_BATCH_PROCESSED;
    msg.batch_processed = &bpm;
    alys_env_t env = processor_env(&msg);
    env.corr_id = r->corr_id;
    env.reply = true;
    if (alys_send_to(alys_actor_mailbox(bp->actor), r->identity, &env) != 0)
        log_warn("cannot answer batch %llu: the requester is gone", (unsigned long long) o->batch_id);
}

/* ---------------------------------------------------------------- in-process */

static int on_inline(alys_actor_t *actor, void *arg);

static void schedule_inline(bp_t *bp)
{
    if (bp->inline_scheduled || !pipeline_inline_wanted(bp->pl, alys_mono_ms()))
        return;
    if (alys_actor_add_timer(bp->actor, 0, 1, on_inline, bp) >= 0)
        bp->inline_scheduled = true;
}

/* One slice: tasks until INLINE_SLICE_MS passed, then back to the loop. */
static int on_inline(alys_actor_t *actor, void *arg)
{
    (void) actor;
    bp_t *bp = arg;
    bp->inline_scheduled = false;
    int64_t start = alys_mono_us();
    for (;;) {
        int64_t t0 = alys_mono_us();
        size_t n = pipeline_run_inline(bp->pl, 1, t0 / 1000);
        if (n == 0)
            break;
        double per_block = (double) (alys_mono_us() - t0) / 1e6 / (double) n;
        for (size_t i = 0; i < n; i++)
            alys_metric_observe(alys_actor_metrics(bp->actor),
                                "alys_block_validation_duration_seconds", NULL,
                                "Stateless checks of one block", per_block);
        if (alys_mono_us() - start >= INLINE_SLICE_MS * 1000)
            break;
    }
    schedule_inline(bp);
    return 0;
}

/* ---------------------------------------------------------------- mailbox */

static void submit(bp_t *bp, zframe_t *from, alys_env_t *env, Alys__Processor__ProcessBatch *pb)
{
    char requester[PL_ID_MAX];
    snprintf(requester, sizeof requester, "%.*s",
             (int) (zframe_size(from) < PL_ID_MAX - 1 ? zframe_size(from) : PL_ID_MAX - 1),
             (const char *) zframe_data(from));
    zsock_t *mailbox = alys_actor_mailbox(bp->actor);
    if (load_genesis(bp) != 0) {
        alys_reply_error(mailbox, from, env, ALYS_ERR_UNAVAILABLE,
                         "no genesis (genesis_file = \"%s\")", bp->cfg->genesis_file);
        return;
    }
    reply_ctx_t *r = calloc(1, sizeof *r);
    if (!r || !(r->identity = zframe_dup(from))) {
        reply_ctx_free(r);
        alys_reply_error(mailbox, from, env, ALYS_ERR_INTERNAL, "out of memory");
        return;
    }
    r->corr_id = env->corr_id;
    char err[256];
    pl_reorg_t reorg = {.ancestor_height = pb->reorg_ancestor_height};
    bool is_reorg = pb->reorg_ancestor_hash.len == ALYS_HASH_LEN;
    if (is_reorg)
        memcpy(reorg.ancestor_hash, pb->reorg_ancestor_hash.data, ALYS_HASH_LEN);
    pl_submit_t rc = PL_BAD_REQUEST;
    if (pb->reorg_ancestor_hash.len != 0 && !is_reorg)
        snprintf(err, sizeof err, "reorg_ancestor_hash of %zu bytes (want %d)",
                 pb->reorg_ancestor_hash.len, ALYS_HASH_LEN);
    else
        rc = pipeline_submit_reorg(bp->pl, requester, pb->batch_id, pb->origin, pb->blocks,
                                   pb->n_blocks, pb->expected_hashes, pb->n_expected_hashes,
                                   is_reorg ? &reorg : NULL, r, alys_mono_ms(), err, sizeof err);
    if (rc == PL_ACCEPTED || rc == PL_DUPLICATE)
        return;
    reply_ctx_free(r);
    uint32_t code = rc == PL_BUSY          ? ALYS_ERR_BUSY
                    : rc == PL_BAD_REQUEST ? ALYS_ERR_BAD_REQUEST
                                           : ALYS_ERR_UNAVAILABLE;
    if (rc == PL_BUSY)
        alys_metric_add(alys_actor_metrics(bp->actor), "alys_processor_busy_total", NULL,
                        "ProcessBatch refused because the pipeline was full", 1);
    else
        log_warn("batch %llu from %s refused: %s", (unsigned long long) pb->batch_id, requester, err);
    alys_reply_error(mailbox, from, env, code, "%s", err);
}

/* ---------------------------------------------------------------- parking */

/* The requester's routing id as a string (the park's owner). */
static void requester_of(zframe_t *from, char *out, size_t cap)
{
    size_t len = zframe_size(from) < cap - 1 ? zframe_size(from) : cap - 1;
    snprintf(out, cap, "%.*s", (int) len, (const char *) zframe_data(from));
}

static void park_metrics(bp_t *bp)
{
    alys_metrics_t *m = alys_actor_metrics(bp->actor);
    alys_metric_set(m, "alys_processor_parked_bytes", NULL,
                    "Bytes of PeerManager's reorder buffer parked here",
                    (double) park_bytes(bp->park));
    alys_metric_set(m, "alys_processor_parked_ranges", NULL, "Ranges parked by PeerManager",
                    (double) park_entries(bp->park));
}

static void on_park(bp_t *bp, const char *owner, const Alys__Processor__Park *p)
{
    park_put_t rc = park_put(bp->park, owner, p->request_id, p->peer_id, p->start, p->blocks,
                             p->n_blocks, p->expected_hashes, p->n_expected_hashes,
                             (uint64_t) alys_mono_ms());
    if (rc == PARK_FULL)
        alys_metric_add(alys_actor_metrics(bp->actor), "alys_processor_park_refused_total", NULL,
                        "Parks refused for want of room (that range is re-downloaded if PeerManager dies)",
                        1);
    else if (rc != PARK_OK)
        log_warn("park of [%llu,+%zu) from %s refused: invalid", (unsigned long long) p->start,
                 p->n_blocks, owner);
}

/* Parked: the owner's ranges, lowest first, as many as one bus message
 * holds (what the envelope adds is left as margin). */
static void on_get_parked(bp_t *bp, zframe_t *from, const char *owner, const alys_env_t *req)
{
    size_t cap = park_entries(bp->park);
    const park_entry_t **e = calloc(cap ? cap : 1, sizeof *e);
    Alys__Processor__Park *parks = calloc(cap ? cap : 1, sizeof *parks);
    Alys__Processor__Park **ptrs = calloc(cap ? cap : 1, sizeof *ptrs);
    if (!e || !parks || !ptrs) {
        alys_reply_error(alys_actor_mailbox(bp->actor), from, req, ALYS_ERR_INTERNAL, "out of memory");
    } else {
        size_t total = 0;
        size_t n = park_list(bp->park, owner, ALYS_MAX_MSG_BYTES - 64 * 1024, e, cap, &total);
        for (size_t i = 0; i < n; i++) {
            Alys__Processor__Park *p = &parks[i];
            alys__processor__park__init(p);
            p->request_id = e[i]->request_id;
            p->peer_id = (char *) e[i]->peer_id;
            p->start = e[i]->start;
            p->n_blocks = e[i]->n;
            p->blocks = (ProtobufCBinaryData *) e[i]->blocks;
            p->n_expected_hashes = e[i]->hashes ? e[i]->n : 0;
            p->expected_hashes = (ProtobufCBinaryData *) e[i]->hashes;
            ptrs[i] = p;
        }
        Alys__Processor__Parked out = ALYS__PROCESSOR__PARKED__INIT;
        out.n_ranges = n;
        out.ranges = ptrs;
        out.truncated = n < total;
        out.total = (uint32_t) total;
        if (bp->have_head) {
            out.head_height = bp->head_height;
            out.head_hash = (ProtobufCBinaryData){ALYS_HASH_LEN, bp->head_hash};
        }
        Alys__Processor__ProcessorMsg msg = ALYS__PROCESSOR__PROCESSOR_MSG__INIT;
        msg.msg_case = ALYS__PROCESSOR__PROCESSOR_MSG__MSG_PARKED;
        msg.parked = &out;
        alys_env_t rep = processor_env(&msg);
        log_info("%s asked for its parked ranges: %zu of %zu sent", owner, n, total);
        if (alys_reply(alys_actor_mailbox(bp->actor), from, req, &rep) != 0)
            log_warn("cannot answer %s's GetParked", owner);
    }
    free(ptrs);
    free(parks);
    free(e);
}

/* A parking message; false if m is none. */
static bool parking(bp_t *bp, zframe_t *from, const alys_env_t *env)
{
    const Alys__Processor__ProcessorMsg *m = env->processor;
    char owner[PARK_OWNER_MAX];
    requester_of(from, owner, sizeof owner);
    switch (m->msg_case) {
    case ALYS__PROCESSOR__PROCESSOR_MSG__MSG_PARK: on_park(bp, owner, m->park); break;
    case ALYS__PROCESSOR__PROCESSOR_MSG__MSG_UNPARK:
        park_unpark(bp->park, owner, m->unpark->request_ids, m->unpark->n_request_ids);
        break;
    case ALYS__PROCESSOR__PROCESSOR_MSG__MSG_PARK_REKEY:
        park_rekey(bp->park, owner, m->park_rekey->old_request_id, m->park_rekey->new_request_id);
        break;
    case ALYS__PROCESSOR__PROCESSOR_MSG__MSG_GET_PARKED:
        on_get_parked(bp, from, owner, env);
        break;
    default: return false;
    }
    park_metrics(bp);
    return true;
}

static int on_mailbox(alys_actor_t *actor, zframe_t *from, alys_env_t *env, void *arg)
{
    bp_t *bp = arg;
    if (env->body_case == ALYS__BUS__ENVELOPE__BODY_PROCESSOR &&
        env->processor->msg_case == ALYS__PROCESSOR__PROCESSOR_MSG__MSG_PROCESS_BATCH)
        submit(bp, from, env, env->processor->process_batch);
    else if (env->body_case == ALYS__BUS__ENVELOPE__BODY_PROCESSOR && !env->reply &&
             parking(bp, from, env))
        ; /* kept, dropped or listed */
    else if (env->corr_id && !env->reply)
        alys_reply_error(alys_actor_mailbox(actor), from, env, ALYS_ERR_BAD_REQUEST,
                         "block_processor does not serve %s", alys_env_body_name(env));
    schedule_inline(bp);
    return 0;
}

/* ---------------------------------------------------------------- workers */

static void send_welcome(bp_t *bp, int sock, const char *id)
{
    if (load_genesis(bp) != 0)
        return;
    Alys__Processor__WorkerWelcome w = ALYS__PROCESSOR__WORKER_WELCOME__INIT;
    w.genesis = (ProtobufCBinaryData){bp->genesis_len, bp->genesis_bytes};
    w.genesis_hash = (ProtobufCBinaryData){ALYS_HASH_LEN, bp->genesis.hash};
    Alys__Processor__ProcessorMsg msg = ALYS__PROCESSOR__PROCESSOR_MSG__INIT;
    msg.msg_case = ALYS__PROCESSOR__PROCESSOR_MSG__MSG_WORKER_WELCOME;
    msg.worker_welcome = &w;
    alys_env_t env = processor_env(&msg);
    if (alys_send_to_name(bp->workers[sock], id, &env) != 0)
        log_warn("cannot send the genesis to validator %s", id);
}

static bool genesis_matches(bp_t *bp, ProtobufCBinaryData h)
{
    return load_genesis(bp) == 0 && h.len == ALYS_HASH_LEN &&
           memcmp(h.data, bp->genesis.hash, ALYS_HASH_LEN) == 0;
}

static void worker_seen(bp_t *bp, int sock, const char *id, int32_t pid, uint32_t capacity,
                        uint32_t queued, ProtobufCBinaryData genesis_hash, bool ready)
{
    pl_worker_t rc = pipeline_worker_seen(bp->pl, sock, id, pid, capacity, queued,
                                          genesis_matches(bp, genesis_hash), ready, alys_mono_ms());
    if (rc == PL_WORKER_NEEDS_GENESIS)
        send_welcome(bp, sock, id);
    else if (rc == PL_WORKER_REFUSED)
        log_warn("validator %s refused: %d workers already", id, PL_MAX_WORKERS);
}

static void worker_result(bp_t *bp, int sock, const char *id, Alys__Processor__ValidateResult *r)
{
    /* One more than a task can hold is enough to tell "too many" apart. */
    size_t n = r->n_verdicts < 65 ? r->n_verdicts : 65;
    alys_verdict_t v[65];
    for (size_t i = 0; i < n; i++) {
        v[i].code = (alys_block_error_t) r->verdicts[i]->code;
        v[i].tx_index = r->verdicts[i]->tx_index;
        snprintf(v[i].detail, sizeof v[i].detail, "%s", r->verdicts[i]->detail);
    }
    if (!pipeline_task_result(bp->pl, sock, id, r->task_id, v, n, alys_mono_ms()))
        return;
    double per_block = n ? (double) r->elapsed_us / 1e6 / (double) n : 0;
    for (size_t i = 0; i < n; i++)
        alys_metric_observe(alys_actor_metrics(bp->actor), "alys_block_validation_duration_seconds",
                            NULL, "Stateless checks of one block", per_block);
}

/* Routing ids of workers are their names: printable, short. */
static bool worker_id(zframe_t *from, char *id)
{
    size_t n = zframe_size(from);
    const uint8_t *p = zframe_data(from);
    if (n == 0 || n >= PL_ID_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (p[i] < 0x21 || p[i] > 0x7e)
            return false;
    memcpy(id, p, n);
    id[n] = '\0';
    return true;
}

static void worker_message(bp_t *bp, int sock, const char *id, Alys__Processor__ProcessorMsg *m)
{
    switch (m->msg_case) {
    case ALYS__PROCESSOR__PROCESSOR_MSG__MSG_WORKER_READY:
        worker_seen(bp, sock, id, m->worker_ready->pid, m->worker_ready->capacity, 0,
                    m->worker_ready->genesis_hash, true);
        break;
    case ALYS__PROCESSOR__PROCESSOR_MSG__MSG_WORKER_HEARTBEAT:
        worker_seen(bp, sock, id, m->worker_heartbeat->pid, m->worker_heartbeat->capacity,
                    m->worker_heartbeat->queued, m->worker_heartbeat->genesis_hash, false);
        break;
    case ALYS__PROCESSOR__PROCESSOR_MSG__MSG_VALIDATE_RESULT:
        worker_result(bp, sock, id, m->validate_result);
        break;
    default: log_warn("validator %s sent an unexpected message", id);
    }
}

static int on_workers(alys_actor_t *actor, zsock_t *sock, void *arg)
{
    (void) actor;
    bp_t *bp = arg;
    int which = sock == bp->workers[SOCK_REMOTE] ? SOCK_REMOTE : SOCK_LOCAL;
    zframe_t *from = NULL;
    alys_env_t *env = NULL;
    if (alys_recv_from(sock, &from, &env) != 0)
        return 0;
    char id[PL_ID_MAX];
    if (!worker_id(from, id))
        log_warn("dropped a worker message with an unusable routing id");
    else if (env->body_case == ALYS__BUS__ENVELOPE__BODY_PROCESSOR)
        worker_message(bp, which, id, env->processor);
    alys_env_free(&env);
    zframe_destroy(&from);
    schedule_inline(bp);
    return 0;
}

/* ---------------------------------------------------------------- storage */

static void copy_hash(uint8_t *dst, ProtobufCBinaryData src)
{
    memset(dst, 0, ALYS_HASH_LEN);
    if (src.len == ALYS_HASH_LEN)
        memcpy(dst, src.data, ALYS_HASH_LEN);
}

static void from_batch_result(const Alys__Storage__BatchResult *br, pl_outcome_t *o)
{
    o->committed = br->committed;
    o->head_height = br->head_height;
    copy_hash(o->head_hash, br->head_hash);
    copy_hash(o->state_root, br->state_root);
    o->has_head = br->head_hash.len == ALYS_HASH_LEN;
    o->failed = br->failed;
    o->failed_height = br->failed_height;
    copy_hash(o->failed_hash, br->failed_hash);
    o->has_failed_hash = br->failed_hash.len == ALYS_HASH_LEN;
    snprintf(o->reason, sizeof o->reason, "%s", br->reason);
    snprintf(o->detail, sizeof o->detail, "%s", br->detail);
    o->tx_index = br->tx_index;
    o->checkpoint_height = br->checkpoint_height;
    o->reorg_depth = br->reorg_depth;
}

static void from_head(const Alys__Storage__Head *h, pl_outcome_t *o)
{
    o->head_height = h->height;
    copy_hash(o->head_hash, h->hash);
    copy_hash(o->state_root, h->state_root);
    o->has_head = h->hash.len == ALYS_HASH_LEN;
    o->tx_index = -1;
    o->checkpoint_height = h->last_checkpoint;
}

static int on_storage(alys_actor_t *actor, zsock_t *sock, void *arg)
{
    (void) actor;
    bp_t *bp = arg;
    alys_env_t *env = NULL;
    if (alys_recv(sock, &env) != 0)
        return 0;
    int64_t now = alys_mono_ms();
    pl_outcome_t o;
    memset(&o, 0, sizeof o);
    o.tx_index = -1;
    Alys__Storage__StorageMsg *m = env->body_case == ALYS__BUS__ENVELOPE__BODY_STORAGE ? env->storage
                                                                                       : NULL;
    if (env->body_case == ALYS__BUS__ENVELOPE__BODY_ERROR) {
        log_warn("storage refused a request: %s", env->error->message);
        pipeline_storage_error(bp->pl, env->corr_id, now);
    } else if (m && m->msg_case == ALYS__STORAGE__STORAGE_MSG__MSG_BATCH_RESULT) {
        from_batch_result(m->batch_result, &o);
        pipeline_storage_result(bp->pl, env->corr_id, &o, now);
    } else if (m && m->msg_case == ALYS__STORAGE__STORAGE_MSG__MSG_HEAD) {
        from_head(m->head, &o);
        pipeline_storage_result(bp->pl, env->corr_id, &o, now);
    }
    if (o.has_head) {
        bp->have_head = true;
        bp->head_height = o.head_height;
        memcpy(bp->head_hash, o.head_hash, ALYS_HASH_LEN);
        if (park_set_head(bp->park, o.head_height))
            park_metrics(bp); /* committed: parked copies of it are no longer needed */
    }
    alys_env_free(&env);
    schedule_inline(bp);
    return 0;
}

static int on_storage_event(alys_actor_t *actor, zsock_t *sock, void *arg)
{
    (void) actor;
    bp_t *bp = arg;
    int ev = sockmon_read(sock, NULL, 0);
    if (ev == ZMQ_EVENT_DISCONNECTED)
        log_warn("storage disconnected");
    else if (ev == ZMQ_EVENT_CONNECTED)
        pipeline_storage_reconnected(bp->pl, alys_mono_ms());
    return 0;
}

static int on_remote_event(alys_actor_t *actor, zsock_t *sock, void *arg)
{
    (void) actor;
    (void) arg;
    static int64_t last_log;
    char addr[128];
    int ev = sockmon_read(sock, addr, sizeof addr);
    bool refused = ev == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH ||
                   ev == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL ||
                   ev == ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL;
    /* A refused worker retries every few ms: one line every few seconds. */
    if (refused && alys_mono_ms() - last_log >= 5000) {
        last_log = alys_mono_ms();
        log_warn("remote validator refused at %s: CURVE handshake or authentication failed", addr);
    }
    return 0;
}

static int on_tick(alys_actor_t *actor, void *arg)
{
    bp_t *bp = arg;
    pipeline_tick(bp->pl, alys_mono_ms());
    alys_metrics_t *m = alys_actor_metrics(actor);
    alys_metric_set(m, "alys_validators_connected", NULL, "Validator workers in the pool",
                    (double) pipeline_worker_count(bp->pl));
    alys_metric_set(m, "alys_processor_batches_in_flight", NULL,
                    "Batches admitted and not yet answered", (double) pipeline_batch_count(bp->pl));
    schedule_inline(bp);
    return 0;
}

/* ---------------------------------------------------------------- sockets */

static zsock_t *worker_router(void)
{
    zsock_t *s = zsock_new(ZMQ_ROUTER);
    if (!s)
        return NULL;
    alys_sock_limits(s);
    zsock_set_router_handover(s, 1);  /* a restarted worker keeps its name */
    zsock_set_router_mandatory(s, 1); /* a task to a gone worker fails now */
    return s;
}

static int secure_remote(bp_t *bp, zsock_t *s)
{
    const alys_config_t *cfg = bp->cfg;
    bp->auth = zactor_new(zauth, NULL);
    if (!bp->auth)
        return -1;
    /* zauth checks every CURVE client key against the public certs in the
     * directory; unknown keys fail the handshake and never reach us. */
    if (zstr_sendx(bp->auth, "CURVE", cfg->curve_allowed_dir, NULL) != 0 || zsock_wait(bp->auth) != 0)
        return -1;
    zcert_t *cert = zcert_load(cfg->curve_server_cert);
    if (!cert) {
        log_error("cannot load curve_server_cert %s", cfg->curve_server_cert);
        return -1;
    }
    static const uint8_t zero[32];
    bool has_secret = memcmp(zcert_secret_key(cert), zero, sizeof zero) != 0;
    if (has_secret) {
        zcert_apply(cert, s);
        zsock_set_curve_server(s, 1);
        zsock_set_zap_domain(s, "alys-validators");
    } else {
        log_error("curve_server_cert %s holds no secret key", cfg->curve_server_cert);
    }
    zcert_destroy(&cert);
    return has_secret ? 0 : -1;
}

static int bind_remote(bp_t *bp)
{
    const alys_config_t *cfg = bp->cfg;
    if (!*cfg->worker_listen)
        return 0;
    bool tcp = strncmp(cfg->worker_listen, "tcp://", 6) == 0;
    zsock_t *s = worker_router();
    if (!s)
        return -1;
    bp->workers[SOCK_REMOTE] = s;
    if (tcp && cfg->curve_enabled) {
        if (secure_remote(bp, s) != 0)
            return -1;
    } else if (tcp) {
        log_warn("worker_listen %s without CURVE: any host that reaches it can join",
                 cfg->worker_listen);
    }
    bp->remote_mon = sockmon_new(s, "remote",
                                 ZMQ_EVENT_HANDSHAKE_FAILED_AUTH | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |
                                     ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL);
    if (zsock_bind(s, "%s", cfg->worker_listen) < 0) {
        log_error("cannot bind worker_listen %s: %s", cfg->worker_listen, zmq_strerror(zmq_errno()));
        return -1;
    }
    log_info("remote validators: %s%s", cfg->worker_listen,
             tcp && cfg->curve_enabled ? " (CURVE)" : "");
    if (bp->remote_mon && alys_actor_add_reader(bp->actor, bp->remote_mon, on_remote_event, bp) != 0)
        return -1;
    return alys_actor_add_reader(bp->actor, s, on_workers, bp);
}

static int bind_local(bp_t *bp)
{
    zsock_t *s = worker_router();
    if (!s)
        return -1;
    bp->workers[SOCK_LOCAL] = s;
    alys_unlink_ipc(bp->cfg->ep_validators);
    if (zsock_bind(s, "%s", bp->cfg->ep_validators) < 0) {
        log_error("cannot bind %s: %s", bp->cfg->ep_validators, zmq_strerror(zmq_errno()));
        return -1;
    }
    return alys_actor_add_reader(bp->actor, s, on_workers, bp);
}

static int connect_storage(bp_t *bp)
{
    bp->storage = alys_dealer_connect(bp->cfg->ep_storage, alys_actor_name(bp->actor));
    if (!bp->storage)
        return -1;
    bp->storage_mon = sockmon_new(bp->storage, "storage",
                                  ZMQ_EVENT_CONNECTED | ZMQ_EVENT_DISCONNECTED);
    if (!bp->storage_mon)
        return -1;
    if (alys_actor_add_reader(bp->actor, bp->storage_mon, on_storage_event, bp) != 0)
        return -1;
    return alys_actor_add_reader(bp->actor, bp->storage, on_storage, bp);
}

static pipeline_t *make_pipeline(bp_t *bp)
{
    const alys_config_t *cfg = bp->cfg;
    pl_config_t pc;
    pipeline_config_default(&pc);
    pc.sequential = strcmp(cfg->strategy, "sequential") == 0;
    /* The seed's behaviour: validate a batch, commit it, then the next. */
    pc.overlap = !pc.sequential;
    pc.max_batch_blocks = cfg->max_batch_size > pc.max_batch_blocks ? cfg->max_batch_size
                                                                    : pc.max_batch_blocks;
    pc.task_timeout_ms = pc.worker_timeout_ms = pc.inline_after_ms = cfg->task_timeout_ms;
    /* Ids unique per incarnation: the pipeline (a pure core) draws none. */
    if (getrandom(&pc.id_base, sizeof pc.id_base, 0) != (ssize_t) sizeof pc.id_base)
        pc.id_base = (uint64_t) alys_now_ms() * 0x9e3779b97f4a7c15ull;
    pl_ops_t ops = {.send_task = op_send_task,
                    .send_storage = op_send_storage,
                    .reply = op_reply,
                    .free_reply_ctx = reply_ctx_free};
    log_info("strategy %s, task timeout %u ms", cfg->strategy, cfg->task_timeout_ms);
    return pipeline_new(&pc, NULL, &ops, bp);
}

/* As big as PeerManager's reorder buffer (the same share of the memory
 * budget): the mirror of it never needs more. */
static park_t *make_park(const alys_config_t *cfg)
{
    alys_membudget_t mb;
    char err[256];
    if (alys_membudget_derive(&mb, cfg->max_memory_gb, cfg->cache_size_mb, err, sizeof err) != 0) {
        log_error("%s", err);
        return NULL;
    }
    park_config_t pc;
    park_config_defaults(&pc);
    pc.max_bytes = (size_t) mb.reorder_bytes;
    return park_new(&pc);
}

static int setup(bp_t *bp)
{
    const alys_config_t *cfg = bp->cfg;
    bp->pl = make_pipeline(bp);
    bp->park = make_park(cfg);
    if (!bp->pl || !bp->park)
        return -1;
    if (load_genesis(bp) != 0)
        log_warn("no usable genesis yet: batches are refused until genesis_file loads");
    if (alys_actor_bind(bp->actor, cfg->ep_block_processor, on_mailbox, bp) != 0 ||
        bind_local(bp) != 0 || bind_remote(bp) != 0 || connect_storage(bp) != 0)
        return -1;
    return alys_actor_add_timer(bp->actor, TICK_MS, 0, on_tick, bp) < 0 ? -1 : 0;
}

static void teardown(bp_t *bp)
{
    pipeline_destroy(&bp->pl);
    park_destroy(&bp->park);
    /* The runtime's loop goes first: it still points at these sockets. */
    alys_actor_destroy(&bp->actor);
    zsock_destroy(&bp->storage_mon);
    zsock_destroy(&bp->storage);
    zsock_destroy(&bp->remote_mon);
    zsock_destroy(&bp->workers[SOCK_REMOTE]);
    zsock_destroy(&bp->workers[SOCK_LOCAL]);
    zactor_destroy(&bp->auth);
    if (bp->have_genesis)
        alys_genesis_clear(&bp->genesis);
    free(bp->genesis_bytes);
}

int main(int argc, char **argv)
{
    bp_t bp;
    memset(&bp, 0, sizeof bp);
    bp.actor = alys_actor_new("block_processor", argc, argv);
    if (!bp.actor)
        return 2;
    bp.cfg = alys_actor_config(bp.actor);
    if (setup(&bp) != 0) {
        log_error("cannot start");
        teardown(&bp);
        return 1;
    }
    alys_actor_ready(bp.actor);
    int rc = alys_actor_run(bp.actor);
    teardown(&bp);
    return rc == 0 ? 0 : 1;
}
