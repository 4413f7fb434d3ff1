/*  pipeline.c: batches in flight, tasks, workers, verdicts, storage hand-off.
 *  See pipeline.h for the stages and the rules.
 *
 *  Data layout. Batches live in an array in admission order (at most
 *  max_batches); batches[0] is the next one to go to storage. Each batch owns
 *  copies of its block bytes, a small per-block record (header hash, tx
 *  count, stateless verdict) and its tasks, whose ids are a contiguous
 *  range [first_task_id, first_task_id + ntasks), so a result finds its task
 *  by a range check per batch. Workers live in an array; each remembers the
 *  task ids it holds with their deadlines, which is its credit count
 *  (capacity - held) and its timeout list in one.
 *
 *  Ids (tasks, storage requests) start from random 64-bit values so a
 *  result addressed to an earlier incarnation of the processor (a worker or
 *  storage answering across a restart) cannot match a task of this one.
 *
 *  Storage requests. One storage operation (a batch) at a time, resent on a
 *  timeout or a reconnect under a new id each time; an answer to any of the
 *  sends completes it (storage's ExecuteBatch is idempotent, so a late answer
 *  to an earlier send is as good as the newest), exactly once. The ids of the
 *  operation's sends are a common/pending table of PL_STORE_SENDS entries:
 *  the first answer takes its entry and ends the others, so every later
 *  answer finds nothing. When storage stays silent through more resends than
 *  that, the oldest send is forgotten (an answer to it would be ignored and
 *  the newest one answered instead).
 */
#include "pipeline.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "pending.h"
#include "util.h"

#define PL_MAX_CHUNK    64 /* blocks per task, hard cap */
#define PL_STORE_SENDS  32 /* sends of one storage operation remembered */
#define PL_MAX_ATTEMPTS 3  /* unusable results before a task goes in-process */

enum { SL_PENDING = 0, SL_OK, SL_FAIL };
enum { T_QUEUED = 0, T_DISPATCHED, T_DONE, T_CANCELLED };

typedef struct worker worker_t;

typedef struct {
    alys_hash_t hash;
    uint32_t tx_count;
    bool decoded;
    uint8_t sl; /* stateless verdict: SL_* */
} block_t;

typedef struct {
    uint32_t first;
    uint32_t count;
    uint8_t state;    /* T_* */
    uint8_t attempts; /* unusable results so far */
    bool inline_only; /* workers failed it PL_MAX_ATTEMPTS times */
    worker_t *worker; /* valid while T_DISPATCHED */
} task_t;

typedef struct {
    uint64_t seq;      /* ExecuteBatch batch_id, unique per processor */
    uint64_t batch_id; /* the requester's */
    char requester[PL_ID_MAX];
    char origin[PL_ORIGIN_MAX];
    void *reply_ctx;
    int64_t started_ms;
    uint32_t n;
    ProtobufCBinaryData *bytes; /* n copies, owned */
    block_t *blocks;            /* n */
    uint32_t adm_idx;           /* first admission failure, n if none */
    alys_verdict_t adm_v;
    uint32_t sl_idx; /* first stateless failure, n if none */
    alys_verdict_t sl_v;
    uint32_t ok_prefix; /* blocks [0, ok_prefix) passed the stateless checks */
    task_t *tasks;
    uint32_t ntasks;
    uint64_t first_task_id;
    uint32_t scan_from; /* no queued task below this index */
    bool is_reorg;
    pl_reorg_t reorg;
} batch_t;

typedef struct {
    uint64_t task_id;
    int64_t deadline;
} held_t;

struct worker {
    int sock;
    char id[PL_ID_MAX];
    int32_t pid;
    uint32_t capacity;
    uint32_t phantom; /* tasks of a previous processor it still works on */
    held_t held[PL_MAX_CAPACITY];
    uint32_t nheld;
    uint64_t ready_seq; /* LRU order: lowest waited longest */
    int64_t last_seen;
    bool suspect; /* a task timed out: no work until it speaks again */
};

typedef struct {
    batch_t *batch;   /* NULL = storage idle */
    uint32_t prefix;  /* blocks sent */
    int64_t deadline; /* resend when reached */
} store_t;

struct pipeline {
    pl_config_t cfg;
    const alys_genesis_t *genesis;
    pl_ops_t ops;
    void *ctx;
    batch_t **batches; /* admission order, cfg.max_batches slots */
    uint32_t nbatches;
    worker_t *workers[PL_MAX_WORKERS];
    uint32_t nworkers;
    uint64_t next_task_id;
    uint64_t next_req_id;
    uint64_t next_seq;
    uint64_t ready_seq;
    int64_t no_workers_since; /* -1 = not known yet */
    bool inline_logged;
    store_t store;
    alys_pending_t *store_reqs; /* ids of store's sends: any answer counts, once */
};

/* ---------------------------------------------------------------- helpers */

void pipeline_config_default(pl_config_t *c)
{
    *c = (pl_config_t){
        .max_batches = 4,
        .max_batch_blocks = 1024,
        .max_batch_bytes = 6u * 1024 * 1024,
        .chunk_sigs = 256,
        .chunk_max_blocks = PL_MAX_CHUNK,
        .task_timeout_ms = 2000,
        .worker_timeout_ms = 2000,
        .inline_after_ms = 2000,
        .storage_timeout_ms = 15000,
        .storage_retry_ms = 200,
        .sequential = false,
        .overlap = true,
    };
}

const char *pipeline_reason_name(uint32_t code)
{
    if (code == PL_HEADER_MISMATCH)
        return "header_mismatch";
    return alys_block_error_name((alys_block_error_t) code);
}

static void verdict_set(alys_verdict_t *v, uint32_t code, int32_t tx_index, const char *detail)
{
    v->code = (alys_block_error_t) code;
    v->tx_index = tx_index;
    snprintf(v->detail, sizeof v->detail, "%s", detail ? detail : "");
}

/* ---------------------------------------------------------------- batches */

static uint32_t batch_cut(const batch_t *b)
{
    return b->adm_idx < b->sl_idx ? b->adm_idx : b->sl_idx;
}

/* Every verdict the outcome depends on is in: all blocks before the cut
 * passed, and the reason at the cut is settled (an admission failure of a
 * decoded block still waits for that block's stateless verdict, which
 * ranks first). */
static bool batch_complete(const batch_t *b)
{
    uint32_t cut = batch_cut(b);
    if (b->ok_prefix < cut)
        return false;
    if (cut == b->n || b->sl_idx == cut)
        return true;
    return !b->blocks[cut].decoded || b->ok_prefix > cut;
}

static void batch_free(pipeline_t *self, batch_t **b_p)
{
    batch_t *b = *b_p;
    if (!b)
        return;
    if (b->bytes)
        for (uint32_t i = 0; i < b->n; i++)
            free(b->bytes[i].data);
    free(b->bytes);
    free(b->blocks);
    free(b->tasks);
    if (b->reply_ctx && self->ops.free_reply_ctx)
        self->ops.free_reply_ctx(b->reply_ctx);
    free(b);
    *b_p = NULL;
}

static task_t *find_task(pipeline_t *self, uint64_t task_id, batch_t **b_out)
{
    for (uint32_t i = 0; i < self->nbatches; i++) {
        batch_t *b = self->batches[i];
        uint64_t k = task_id - b->first_task_id; /* wraps to huge when below */
        if (k < b->ntasks) {
            *b_out = b;
            return &b->tasks[k];
        }
    }
    return NULL;
}

static void requeue(batch_t *b, task_t *t)
{
    t->state = T_QUEUED;
    t->worker = NULL;
    uint32_t idx = (uint32_t) (t - b->tasks);
    if (idx < b->scan_from)
        b->scan_from = idx;
}

/* Tasks wholly after the cut will never matter: drop the queued ones. Ones
 * already out finish and are ignored. */
static void cancel_after_cut(batch_t *b)
{
    uint32_t cut = batch_cut(b);
    for (uint32_t i = 0; i < b->ntasks; i++)
        if (b->tasks[i].first > cut && b->tasks[i].state == T_QUEUED)
            b->tasks[i].state = T_CANCELLED;
}

/* ---------------------------------------------------------------- admission */

static int copy_blocks(batch_t *b, const ProtobufCBinaryData *blocks, size_t n)
{
    b->bytes = calloc(n, sizeof *b->bytes);
    b->blocks = calloc(n, sizeof *b->blocks);
    if (!b->bytes || !b->blocks)
        return -1;
    for (size_t i = 0; i < n; i++) {
        /* +1 so an empty block still gets a distinct non-NULL buffer. */
        b->bytes[i].data = malloc(blocks[i].len + 1);
        if (!b->bytes[i].data)
            return -1;
        memcpy(b->bytes[i].data, blocks[i].data, blocks[i].len);
        b->bytes[i].len = blocks[i].len;
    }
    return 0;
}

static void admission_fail(batch_t *b, uint32_t i, const alys_verdict_t *v)
{
    b->adm_idx = i;
    b->adm_v = *v;
}

/* Decode, hash, link and compare every block; stop at the first failure.
 * Only the previous header is kept: the processor holds no decoded blocks. */
static void admit(pipeline_t *self, batch_t *b, const ProtobufCBinaryData *expected)
{
    uint64_t now_slot = alys_genesis_slot_at(self->genesis, (uint64_t) alys_now_ms());
    alys_header_t prev;
    memset(&prev, 0, sizeof prev);
    for (uint32_t i = 0; i < b->n; i++) {
        alys_block_t blk;
        alys_verdict_t v;
        memset(&blk, 0, sizeof blk);
        if (alys_block_decode(b->bytes[i].data, b->bytes[i].len, &blk, &v) != 0) {
            admission_fail(b, i, &v);
            return;
        }
        block_t *k = &b->blocks[i];
        k->decoded = true;
        k->tx_count = blk.tx_count;
        alys_header_hash(&blk.header, k->hash);
        bool ok = i == 0 ||
                  alys_header_check_link(&prev, b->blocks[i - 1].hash, &blk.header, now_slot, &v);
        if (ok && expected && memcmp(expected[i].data, k->hash, ALYS_HASH_LEN) != 0) {
            verdict_set(&v, PL_HEADER_MISMATCH, -1,
                        "header hash differs from the expected header at this height");
            ok = false;
        }
        prev = blk.header;
        alys_block_clear(&blk);
        if (!ok) {
            admission_fail(b, i, &v);
            return;
        }
    }
}

/* Cut the blocks that need a stateless verdict into tasks of about
 * chunk_sigs signatures (a block has tx_count + 1). */
static int make_tasks(pipeline_t *self, batch_t *b)
{
    uint32_t limit = b->adm_idx;
    if (limit < b->n && b->blocks[limit].decoded)
        limit++;
    uint32_t max_blocks = self->cfg.sequential ? 1 : self->cfg.chunk_max_blocks;
    b->tasks = calloc(limit ? limit : 1, sizeof *b->tasks);
    if (!b->tasks)
        return -1;
    for (uint32_t i = 0; i < limit;) {
        task_t *t = &b->tasks[b->ntasks++];
        t->first = i;
        uint64_t sigs = 0;
        while (i < limit && t->count < max_blocks && (t->count == 0 || sigs < self->cfg.chunk_sigs)) {
            sigs += (uint64_t) b->blocks[i].tx_count + 1;
            t->count++;
            i++;
        }
    }
    b->first_task_id = self->next_task_id;
    self->next_task_id += b->ntasks;
    return 0;
}

static batch_t *find_batch(pipeline_t *self, const char *requester, uint64_t batch_id)
{
    for (uint32_t i = 0; i < self->nbatches; i++) {
        batch_t *b = self->batches[i];
        if (b->batch_id == batch_id && strcmp(b->requester, requester) == 0)
            return b;
    }
    return NULL;
}

static pl_submit_t check_request(pipeline_t *self, const ProtobufCBinaryData *blocks, size_t n,
                                 const ProtobufCBinaryData *expected, size_t n_expected,
                                 char *err, size_t errlen)
{
    if (!self->genesis) {
        snprintf(err, errlen, "no genesis: the processor cannot validate yet");
        return PL_UNAVAILABLE;
    }
    if (n == 0 || n > self->cfg.max_batch_blocks) {
        snprintf(err, errlen, "batch of %zu blocks (allowed 1..%u)", n, self->cfg.max_batch_blocks);
        return PL_BAD_REQUEST;
    }
    size_t total = 0;
    for (size_t i = 0; i < n; i++)
        total += blocks[i].len;
    if (total > self->cfg.max_batch_bytes) {
        snprintf(err, errlen, "batch of %zu bytes exceeds the limit %zu", total,
                 self->cfg.max_batch_bytes);
        return PL_BAD_REQUEST;
    }
    if (n_expected != 0 && n_expected != n) {
        snprintf(err, errlen, "%zu expected hashes for %zu blocks", n_expected, n);
        return PL_BAD_REQUEST;
    }
    for (size_t i = 0; i < n_expected; i++) {
        if (expected[i].len != ALYS_HASH_LEN) {
            snprintf(err, errlen, "expected hash %zu has %zu bytes (want %d)", i, expected[i].len,
                     ALYS_HASH_LEN);
            return PL_BAD_REQUEST;
        }
    }
    return PL_ACCEPTED;
}

static void pump(pipeline_t *self, int64_t now_ms);

pl_submit_t pipeline_submit(pipeline_t *self, const char *requester, uint64_t batch_id,
                            const char *origin, const ProtobufCBinaryData *blocks, size_t n,
                            const ProtobufCBinaryData *expected, size_t n_expected,
                            void *reply_ctx, int64_t now_ms, char *err, size_t errlen)
{
    return pipeline_submit_reorg(self, requester, batch_id, origin, blocks, n, expected,
                                 n_expected, NULL, reply_ctx, now_ms, err, errlen);
}

pl_submit_t pipeline_submit_reorg(pipeline_t *self, const char *requester, uint64_t batch_id,
                                  const char *origin, const ProtobufCBinaryData *blocks, size_t n,
                                  const ProtobufCBinaryData *expected, size_t n_expected,
                                  const pl_reorg_t *reorg, void *reply_ctx, int64_t now_ms,
                                  char *err, size_t errlen)
{
    pl_submit_t rc = check_request(self, blocks, n, expected, n_expected, err, errlen);
    if (rc != PL_ACCEPTED)
        return rc;
    /* A resend of a batch still in flight: answer the newest request once. */
    batch_t *dup = find_batch(self, requester, batch_id);
    if (dup) {
        if (dup->reply_ctx && self->ops.free_reply_ctx)
            self->ops.free_reply_ctx(dup->reply_ctx);
        dup->reply_ctx = reply_ctx;
        return PL_DUPLICATE;
    }
    if (self->nbatches >= self->cfg.max_batches) {
        snprintf(err, errlen, "%u batches in flight: retry later", self->nbatches);
        return PL_BUSY;
    }
    batch_t *b = calloc(1, sizeof *b);
    if (!b || copy_blocks(b, blocks, n) != 0) {
        if (b)
            b->n = (uint32_t) n;
        batch_free(self, &b);
        snprintf(err, errlen, "out of memory");
        return PL_UNAVAILABLE;
    }
    b->n = (uint32_t) n;
    b->seq = self->next_seq++;
    b->batch_id = batch_id;
    snprintf(b->requester, sizeof b->requester, "%s", requester);
    snprintf(b->origin, sizeof b->origin, "%s", origin ? origin : "");
    b->started_ms = now_ms;
    b->adm_idx = b->sl_idx = b->n;
    if (reorg) {
        b->is_reorg = true;
        b->reorg = *reorg;
    }
    admit(self, b, n_expected ? expected : NULL);
    if (make_tasks(self, b) != 0) {
        batch_free(self, &b);
        snprintf(err, errlen, "out of memory");
        return PL_UNAVAILABLE;
    }
    b->reply_ctx = reply_ctx;
    self->batches[self->nbatches++] = b;
    log_debug("batch %llu from %s: %u blocks, %u tasks, %u in flight",
              (unsigned long long) batch_id, requester, b->n, b->ntasks, self->nbatches);
    pump(self, now_ms);
    return PL_ACCEPTED;
}

/* ---------------------------------------------------------------- workers */

static worker_t *find_worker(pipeline_t *self, int sock, const char *id, uint32_t *idx)
{
    for (uint32_t i = 0; i < self->nworkers; i++) {
        worker_t *w = self->workers[i];
        if (w->sock == sock && strcmp(w->id, id) == 0) {
            if (idx)
                *idx = i;
            return w;
        }
    }
    return NULL;
}

static uint32_t credits(const worker_t *w)
{
    if (w->suspect)
        return 0;
    uint32_t used = w->nheld + w->phantom;
    return used >= w->capacity ? 0 : w->capacity - used;
}

/* Give back what the worker held: its tasks go to the front of the queue. */
static void release_held(pipeline_t *self, worker_t *w)
{
    for (uint32_t i = 0; i < w->nheld; i++) {
        batch_t *b;
        task_t *t = find_task(self, w->held[i].task_id, &b);
        if (t && t->state == T_DISPATCHED && t->worker == w)
            requeue(b, t);
    }
    w->nheld = 0;
}

static void evict(pipeline_t *self, uint32_t idx, const char *why, int64_t now_ms)
{
    worker_t *w = self->workers[idx];
    log_info("validator %s left the pool (%s); %u task(s) re-dispatched", w->id, why, w->nheld);
    release_held(self, w);
    free(w);
    self->workers[idx] = self->workers[--self->nworkers];
    if (self->nworkers == 0)
        self->no_workers_since = now_ms;
}

static worker_t *add_worker(pipeline_t *self, int sock, const char *id, int32_t pid,
                            uint32_t capacity, uint32_t queued, int64_t now_ms)
{
    if (self->nworkers >= PL_MAX_WORKERS)
        return NULL;
    worker_t *w = calloc(1, sizeof *w);
    if (!w)
        return NULL;
    w->sock = sock;
    snprintf(w->id, sizeof w->id, "%s", id);
    w->pid = pid;
    w->capacity = capacity < 1 ? 1 : capacity > PL_MAX_CAPACITY ? PL_MAX_CAPACITY : capacity;
    w->phantom = queued;
    w->ready_seq = ++self->ready_seq;
    w->last_seen = now_ms;
    self->workers[self->nworkers++] = w;
    if (self->inline_logged)
        log_info("validator %s connected: in-process validation ends", id);
    self->inline_logged = false;
    log_info("validator %s joined the pool (pid %d, capacity %u)", id, pid, w->capacity);
    return w;
}

pl_worker_t pipeline_worker_seen(pipeline_t *self, int sock, const char *id, int32_t pid,
                                 uint32_t capacity, uint32_t queued, bool has_genesis, bool ready,
                                 int64_t now_ms)
{
    uint32_t idx;
    worker_t *w = find_worker(self, sock, id, &idx);
    if (w && (w->pid != pid || !has_genesis)) {
        evict(self, idx, w->pid != pid ? "restarted" : "lost its genesis", now_ms);
        w = NULL;
    }
    if (!has_genesis)
        return PL_WORKER_NEEDS_GENESIS;
    if (!w) {
        w = add_worker(self, sock, id, pid, capacity, ready ? 0 : queued, now_ms);
        if (!w)
            return PL_WORKER_REFUSED;
    } else if (ready && w->nheld > 0) {
        /* It says it holds nothing: what we think it holds was lost on the
         * way (a reconnect drops queued messages). */
        release_held(self, w);
    }
    if (queued == 0)
        w->phantom = 0;
    w->last_seen = now_ms;
    w->suspect = false;
    pump(self, now_ms);
    return PL_WORKER_OK;
}

/* Drop task_id from what w holds; true if it held it (a credit comes back). */
static bool unhold(pipeline_t *self, worker_t *w, uint64_t task_id)
{
    for (uint32_t i = 0; i < w->nheld; i++) {
        if (w->held[i].task_id == task_id) {
            w->held[i] = w->held[--w->nheld];
            w->ready_seq = ++self->ready_seq;
            return true;
        }
    }
    return false;
}

/* The free worker that has waited longest (the guide's LRU queue). */
static worker_t *lru_free_worker(pipeline_t *self)
{
    worker_t *best = NULL;
    for (uint32_t i = 0; i < self->nworkers; i++) {
        worker_t *w = self->workers[i];
        if (credits(w) > 0 && (!best || w->ready_seq < best->ready_seq))
            best = w;
    }
    return best;
}

/* ---------------------------------------------------------------- tasks */

/* Batches whose tasks may run now: all of them when validation overlaps
 * storage, else only the oldest and only while storage is idle. */
static uint32_t eligible_batches(const pipeline_t *self)
{
    if (self->cfg.overlap)
        return self->nbatches;
    return self->store.batch || self->nbatches == 0 ? 0 : 1;
}

static task_t *next_queued(pipeline_t *self, bool for_worker, batch_t **b_out)
{
    uint32_t nb = eligible_batches(self);
    for (uint32_t i = 0; i < nb; i++) {
        batch_t *b = self->batches[i];
        bool first = true;
        for (uint32_t k = b->scan_from; k < b->ntasks; k++) {
            task_t *t = &b->tasks[k];
            if (t->state != T_QUEUED)
                continue;
            if (first) {
                b->scan_from = k; /* nothing queued before k */
                first = false;
            }
            if (for_worker && t->inline_only)
                continue;
            *b_out = b;
            return t;
        }
        if (first)
            b->scan_from = b->ntasks;
    }
    return NULL;
}

static uint64_t task_id_of(const batch_t *b, const task_t *t)
{
    return b->first_task_id + (uint64_t) (t - b->tasks);
}

static void dispatch(pipeline_t *self, int64_t now_ms)
{
    if (self->cfg.sequential)
        return;
    for (;;) {
        batch_t *b;
        task_t *t = next_queued(self, true, &b);
        worker_t *w = t ? lru_free_worker(self) : NULL;
        if (!w)
            return;
        uint64_t id = task_id_of(b, t);
        if (self->ops.send_task(self->ctx, w->sock, w->id, id, &b->bytes[t->first], t->count) != 0) {
            uint32_t idx;
            if (find_worker(self, w->sock, w->id, &idx))
                evict(self, idx, "unreachable", now_ms);
            continue;
        }
        t->state = T_DISPATCHED;
        t->worker = w;
        w->held[w->nheld++] = (held_t){.task_id = id, .deadline = now_ms + self->cfg.task_timeout_ms};
        w->ready_seq = ++self->ready_seq;
    }
}

/* A result is usable when it covers the task's blocks in order and stops
 * only at a failure, and no verdict is an internal error (not the block's
 * fault: retry elsewhere). */
static bool result_usable(const task_t *t, const alys_verdict_t *v, size_t n)
{
    if (n == 0 || n > t->count)
        return false;
    for (size_t j = 0; j < n; j++) {
        uint32_t c = (uint32_t) v[j].code;
        if (c == ALYS_BLOCK_INTERNAL_ERROR || c >= ALYS_BLOCK_ERROR_COUNT)
            return false;
        if (c != ALYS_BLOCK_OK)
            return j == n - 1;
    }
    return n == t->count;
}

static void apply_verdicts(batch_t *b, task_t *t, const alys_verdict_t *v, size_t n)
{
    t->state = T_DONE;
    t->worker = NULL;
    for (size_t j = 0; j < n; j++) {
        uint32_t i = t->first + (uint32_t) j;
        if (v[j].code == ALYS_BLOCK_OK) {
            b->blocks[i].sl = SL_OK;
            continue;
        }
        b->blocks[i].sl = SL_FAIL;
        if (i < b->sl_idx) {
            b->sl_idx = i;
            b->sl_v = v[j];
            cancel_after_cut(b);
        }
        break;
    }
    while (b->ok_prefix < b->n && b->blocks[b->ok_prefix].sl == SL_OK)
        b->ok_prefix++;
}

/* A worker answered nonsense or could not check (internal error): retry,
 * and after PL_MAX_ATTEMPTS check the task here. */
static void unusable_result(batch_t *b, task_t *t, uint64_t task_id)
{
    t->attempts++;
    if (t->attempts >= PL_MAX_ATTEMPTS && !t->inline_only) {
        t->inline_only = true;
        log_warn("task %llu got %u unusable results from workers: validating it in-process",
                 (unsigned long long) task_id, (unsigned) t->attempts);
    }
    requeue(b, t);
}

bool pipeline_task_result(pipeline_t *self, int sock, const char *id, uint64_t task_id,
                          const alys_verdict_t *verdicts, size_t n, int64_t now_ms)
{
    worker_t *w = find_worker(self, sock, id, NULL);
    if (w) {
        w->last_seen = now_ms;
        w->suspect = false;
        if (!unhold(self, w, task_id) && w->phantom > 0)
            w->phantom--;
    }
    batch_t *b;
    task_t *t = find_task(self, task_id, &b);
    bool used = false;
    if (t && (t->state == T_QUEUED || t->state == T_DISPATCHED)) {
        if (result_usable(t, verdicts, n)) {
            apply_verdicts(b, t, verdicts, n);
            used = true;
        } else if (t->state == T_QUEUED || t->worker == w) {
            unusable_result(b, t, task_id);
        }
    }
    pump(self, now_ms);
    return used;
}

/* ---------------------------------------------------------------- in-process */

bool pipeline_inline_wanted(pipeline_t *self, int64_t now_ms)
{
    batch_t *b;
    task_t *t = next_queued(self, false, &b);
    if (!t)
        return false;
    if (self->cfg.sequential || t->inline_only)
        return true;
    if (self->nworkers > 0)
        return false;
    if (self->no_workers_since < 0)
        self->no_workers_since = now_ms;
    if (now_ms - self->no_workers_since < (int64_t) self->cfg.inline_after_ms)
        return false;
    if (!self->inline_logged) {
        log_warn("no validator connected for %lld ms: validating in-process",
                 (long long) (now_ms - self->no_workers_since));
        self->inline_logged = true;
    }
    return true;
}

size_t pipeline_run_inline(pipeline_t *self, size_t max_blocks, int64_t now_ms)
{
    size_t checked = 0;
    alys_verdict_t v[PL_MAX_CHUNK];
    while (checked < max_blocks && pipeline_inline_wanted(self, now_ms)) {
        batch_t *b;
        task_t *t = next_queued(self, false, &b);
        size_t n = 0;
        while (n < t->count) {
            const ProtobufCBinaryData *raw = &b->bytes[t->first + n];
            bool ok = alys_block_decode_check(self->genesis, raw->data, raw->len, &v[n]);
            n++;
            if (!ok)
                break;
        }
        checked += n;
        if (result_usable(t, v, n))
            apply_verdicts(b, t, v, n);
        else
            unusable_result(b, t, task_id_of(b, t));
        pump(self, now_ms);
    }
    return checked;
}

/* ---------------------------------------------------------------- storage */

/* Register a send before it goes out (so no answer can precede it). A full
 * table forgets its oldest send: the earliest deadline, as every send gets
 * the same timeout. Returns false only if the id cannot be registered. */
static bool store_track(pipeline_t *self, uint64_t req, int64_t deadline)
{
    alys_pending_t *t = self->store_reqs;
    if (alys_pending_count(t) == alys_pending_capacity(t) &&
        alys_pending_expire(t, INT64_MAX, NULL, NULL))
        log_debug("storage silent through %d sends: the oldest is forgotten", PL_STORE_SENDS);
    return alys_pending_add(t, req, deadline) != NULL;
}

static bool any_request(const void *payload, void *arg)
{
    (void) payload;
    (void) arg;
    return true;
}

static void storage_send(pipeline_t *self, int64_t now_ms)
{
    store_t *s = &self->store;
    batch_t *b = s->batch;
    uint64_t req = self->next_req_id++;
    if (req == 0) /* 0 is no correlation id */
        req = self->next_req_id++;
    if (!store_track(self, req, now_ms + self->cfg.storage_timeout_ms)) {
        log_warn("storage request %llu cannot be tracked: retrying", (unsigned long long) req);
        s->deadline = now_ms + self->cfg.storage_retry_ms;
        return;
    }
    int rc = self->ops.send_storage(self->ctx, req, b->seq, b->bytes, s->prefix, b->origin,
                                    b->is_reorg ? &b->reorg : NULL);
    if (rc != 0) /* it never left: no answer can come */
        (void) alys_pending_take(self->store_reqs, req, NULL);
    s->deadline = now_ms + (rc == 0 ? self->cfg.storage_timeout_ms : self->cfg.storage_retry_ms);
}

static void storage_start(pipeline_t *self, int64_t now_ms)
{
    if (self->store.batch || self->nbatches == 0 || !batch_complete(self->batches[0]))
        return;
    batch_t *b = self->batches[0];
    self->store = (store_t){.batch = b, .prefix = batch_cut(b)};
    log_debug("batch %llu validated in %lld ms: %u blocks to storage",
              (unsigned long long) b->batch_id, (long long) (now_ms - b->started_ms),
              self->store.prefix);
    storage_send(self, now_ms);
}

static void fill_failure(pl_outcome_t *o, const batch_t *b, uint32_t i, const alys_verdict_t *v)
{
    o->failed = true;
    o->has_failed_hash = b->blocks[i].decoded;
    if (o->has_failed_hash)
        memcpy(o->failed_hash, b->blocks[i].hash, ALYS_HASH_LEN);
    snprintf(o->reason, sizeof o->reason, "%s", pipeline_reason_name((uint32_t) v->code));
    snprintf(o->detail, sizeof o->detail, "%s", v->detail);
    o->tx_index = v->tx_index;
}

/* A reorg batch: storage names its own failures by their heights on the
 * branch (never the head's next). A block of the batch that failed its
 * stateless checks is reported unless storage refused an earlier one;
 * when storage found the valid prefix not longer than our chain, the
 * invalid block is what the requester must hear (the peer served an
 * invalid branch), not the length. */
static void reorg_outcome(const batch_t *b, uint32_t prefix, pl_outcome_t *o)
{
    if (prefix >= b->n || (o->failed && strcmp(o->reason, "not_longer") != 0))
        return;
    fill_failure(o, b, prefix, b->sl_idx == prefix ? &b->sl_v : &b->adm_v);
    o->failed_height = b->reorg.ancestor_height + 1 + prefix;
}

/* Storage's answer plus the batch's own failure make the outcome. The
 * failing block is named by its place in the chain, the height after the
 * head the valid prefix reached (not by the height its header claims: a
 * height_gap block claims another), except when storage refused a block at
 * or below its head (a fork), which storage names itself. Storage names a
 * link failure by its place too; the correction stays for an older store. */
static void build_outcome(const pipeline_t *self, const batch_t *b, const pl_outcome_t *r,
                          int64_t now_ms, pl_outcome_t *o)
{
    uint32_t prefix = self->store.prefix;
    *o = *r;
    o->batch_id = b->batch_id;
    o->received = b->n;
    o->duration_ms = now_ms - b->started_ms;
    snprintf(o->origin, sizeof o->origin, "%s", b->origin);
    uint32_t committed = r->committed < prefix ? r->committed : prefix;
    if (b->is_reorg) {
        reorg_outcome(b, prefix, o);
    } else if (r->failed) {
        if (r->failed_height > r->head_height)
            o->failed_height = r->head_height + 1;
    } else if (committed < prefix) {
        o->failed = true;
        o->failed_height = r->head_height + 1;
        snprintf(o->reason, sizeof o->reason, "%s", alys_block_error_name(ALYS_BLOCK_INTERNAL_ERROR));
        snprintf(o->detail, sizeof o->detail,
                 "storage committed %u of %u blocks and named no failure", committed, prefix);
        o->tx_index = -1;
    } else if (prefix < b->n) {
        fill_failure(o, b, prefix, b->sl_idx == prefix ? &b->sl_v : &b->adm_v);
        o->failed_height = r->head_height + 1;
    }
    o->committed = committed;
    o->committed_txs = 0;
    for (uint32_t i = 0; i < committed; i++)
        o->committed_txs += b->blocks[i].tx_count;
}

bool pipeline_storage_result(pipeline_t *self, uint64_t req_id, const pl_outcome_t *r, int64_t now_ms)
{
    store_t *s = &self->store;
    if (!s->batch || !alys_pending_take(self->store_reqs, req_id, NULL))
        return false;
    /* The operation is over: answers to its other sends come too late. */
    (void) alys_pending_remove_if(self->store_reqs, any_request, NULL, NULL);
    batch_t *b = s->batch;
    pl_outcome_t o;
    build_outcome(self, b, r, now_ms, &o);
    self->ops.reply(self->ctx, b->reply_ctx, &o);
    /* batches[0] is the one storage had: remove it, keep the order. */
    memmove(self->batches, self->batches + 1, (self->nbatches - 1) * sizeof *self->batches);
    self->nbatches--;
    *s = (store_t){0};
    batch_free(self, &b);
    pump(self, now_ms);
    return true;
}

void pipeline_storage_error(pipeline_t *self, uint64_t req_id, int64_t now_ms)
{
    store_t *s = &self->store;
    /* That send is answered (storage answers a request once); the
     * operation's other sends may still be. */
    if (s->batch && alys_pending_take(self->store_reqs, req_id, NULL))
        s->deadline = now_ms + self->cfg.storage_retry_ms;
}

void pipeline_storage_reconnected(pipeline_t *self, int64_t now_ms)
{
    if (self->store.batch) {
        log_info("storage reconnected: resending batch %llu",
                 (unsigned long long) self->store.batch->batch_id);
        storage_send(self, now_ms);
    }
}

/* ---------------------------------------------------------------- tick */

static void pump(pipeline_t *self, int64_t now_ms)
{
    if (self->no_workers_since < 0 && self->nworkers == 0)
        self->no_workers_since = now_ms;
    storage_start(self, now_ms);
    dispatch(self, now_ms);
}

static void expire_tasks(pipeline_t *self, worker_t *w, int64_t now_ms)
{
    for (uint32_t i = 0; i < w->nheld;) {
        if (w->held[i].deadline > now_ms) {
            i++;
            continue;
        }
        uint64_t id = w->held[i].task_id;
        w->held[i] = w->held[--w->nheld];
        batch_t *b;
        task_t *t = find_task(self, id, &b);
        if (t && t->state == T_DISPATCHED && t->worker == w) {
            log_warn("task %llu held by %s for %u ms: re-dispatching", (unsigned long long) id,
                     w->id, self->cfg.task_timeout_ms);
            requeue(b, t);
        }
        /* Its credit comes back, but not before it shows it is alive: else
         * the task would go straight back to the worker that sat on it. */
        w->suspect = true;
    }
}

void pipeline_tick(pipeline_t *self, int64_t now_ms)
{
    for (uint32_t i = 0; i < self->nworkers;) {
        worker_t *w = self->workers[i];
        if (now_ms - w->last_seen > (int64_t) self->cfg.worker_timeout_ms) {
            evict(self, i, "silent", now_ms);
            continue; /* slot i now holds another worker */
        }
        expire_tasks(self, w, now_ms);
        i++;
    }
    store_t *s = &self->store;
    if (s->batch && now_ms >= s->deadline) {
        log_warn("storage has not answered batch %llu: resending",
                 (unsigned long long) s->batch->batch_id);
        storage_send(self, now_ms);
    }
    pump(self, now_ms);
}

/* ---------------------------------------------------------------- lifecycle */

pipeline_t *pipeline_new(const pl_config_t *cfg, const alys_genesis_t *genesis,
                         const pl_ops_t *ops, void *ctx)
{
    pipeline_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->cfg = *cfg;
    if (self->cfg.max_batches == 0)
        self->cfg.max_batches = 1;
    if (self->cfg.chunk_max_blocks == 0 || self->cfg.chunk_max_blocks > PL_MAX_CHUNK)
        self->cfg.chunk_max_blocks = PL_MAX_CHUNK;
    self->batches = calloc(self->cfg.max_batches, sizeof *self->batches);
    self->store_reqs = alys_pending_new(PL_STORE_SENDS, 0);
    if (!self->batches || !self->store_reqs) {
        alys_pending_destroy(&self->store_reqs);
        free(self->batches);
        free(self);
        return NULL;
    }
    self->genesis = genesis;
    self->ops = *ops;
    self->ctx = ctx;
    /* Keep clear of wrap-around and of 0 (= "no correlation" on the bus). */
    uint64_t base = (self->cfg.id_base >> 2) | 1;
    self->next_task_id = base;
    self->next_req_id = base;
    self->next_seq = base;
    self->no_workers_since = -1;
    return self;
}

void pipeline_destroy(pipeline_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    pipeline_t *self = *self_p;
    for (uint32_t i = 0; i < self->nbatches; i++)
        batch_free(self, &self->batches[i]);
    free(self->batches);
    for (uint32_t i = 0; i < self->nworkers; i++)
        free(self->workers[i]);
    alys_pending_destroy(&self->store_reqs);
    free(self);
    *self_p = NULL;
}

void pipeline_set_genesis(pipeline_t *self, const alys_genesis_t *genesis)
{
    self->genesis = genesis;
}

size_t pipeline_worker_count(const pipeline_t *self)
{
    return self->nworkers;
}
size_t pipeline_batch_count(const pipeline_t *self)
{
    return self->nbatches;
}

uint32_t pipeline_worker_credits(const pipeline_t *self, int sock, const char *id)
{
    worker_t *w = find_worker((pipeline_t *) self, sock, id, NULL);
    return w ? credits(w) : 0;
}
