/*  sim_pipeline.c: the BlockProcessorActor adapter. Drives the real
 *  pipeline (actors/block_processor/pipeline.h) as main.c does: one
 *  validator worker (sock 0, "w0", 2 credits) whose results come back after
 *  a simulated validation time, and the storage model behind
 *  send_storage. The worker's check is the validators' own
 *  (alys_block_decode_check), memoised by block bytes (sim_chain.h).
 *
 *  Core API used: pipeline_config_default, pipeline_new, pipeline_destroy,
 *  pipeline_submit, pipeline_worker_seen, pipeline_task_result,
 *  pipeline_storage_result, pipeline_tick, pipeline_batch_count.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim_internal.h"

#define W_SOCK 0
#define W_ID   "w0"
#define W_CAP  2

struct sim_pl {
    sim_t *sim;
    pipeline_t *p;
    uint32_t held;    /* tasks at the worker */
    uint64_t last_cp; /* latest checkpoint SyncActor was told of */
};

typedef struct {
    uint64_t task_id;
    size_t n;
    alys_verdict_t v[];
} w_result_t;

typedef struct {
    uint64_t req_id;
    size_t n;
    ProtobufCBinaryData b[];
} st_req_t;

typedef struct {
    uint64_t req_id;
    pl_outcome_t o;
} st_reply_t;

static void on_w_result(sim_t *sim, void *arg)
{
    w_result_t *r = arg;
    sim_pl_t *self = sim_get_pl(sim);
    if (self->held)
        self->held--;
    pipeline_task_result(self->p, W_SOCK, W_ID, r->task_id, r->v, r->n, (int64_t) sim_now(sim));
    free(r);
}

static int op_send_task(void *ctx, int sock, const char *id, uint64_t task_id,
                        const ProtobufCBinaryData *blocks, size_t n)
{
    (void) sock;
    (void) id;
    sim_pl_t *self = ctx;
    w_result_t *r = calloc(1, sizeof *r + (n ? n : 1) * sizeof r->v[0]);
    if (!r)
        return -1;
    r->task_id = task_id;
    /* The verdicts are computed now (the bytes are only borrowed for the
     * call) and delivered after the validation time. */
    for (size_t i = 0; i < n; i++) {
        r->n = i + 1;
        if (!sim_chain_check_block(sim_cache(self->sim), sim_genesis(self->sim), blocks[i].data,
                                   blocks[i].len, &r->v[i]))
            break;
    }
    self->held++;
    /* Task and storage request ids start from the config's id_base (per
     * incarnation); they stay out of the trace all the same. */
    sim_post(self->sim, CH_W_PL, 1 + n / 8, "worker_result", 0, r->n, on_w_result, r);
    return 0;
}

static void on_storage_reply(sim_t *sim, void *arg)
{
    st_reply_t *r = arg;
    pipeline_storage_result(sim_get_pl(sim)->p, r->req_id, &r->o, (int64_t) sim_now(sim));
    free(r);
}

static void cp_event(sim_t *sim, void *arg)
{
    sim_sync_on_checkpoint(sim, *(uint64_t *) arg);
    free(arg);
}

static void st_req_drop(void *arg)
{
    st_req_t *q = arg;
    for (size_t i = 0; i < q->n; i++)
        free(q->b[i].data);
    free(q);
}

static void on_storage_req(sim_t *sim, void *arg)
{
    st_req_t *q = arg;
    st_reply_t *r = calloc(1, sizeof *r);
    if (r) {
        alys_hash_t before;
        uint64_t head0 = sim_storage_head(sim, before, NULL);
        r->req_id = q->req_id;
        sim_storage_execute(sim, q->b, q->n, &r->o);
        if (r->o.head_height != head0) {
            sim_head_advanced(sim, r->o.head_height);
            uint64_t *h = malloc(sizeof *h + ALYS_HASH_LEN);
            if (h) {
                h[0] = r->o.head_height;
                memcpy(h + 1, r->o.head_hash, ALYS_HASH_LEN);
                /* StorageActor publishes head_advanced; SyncActor listens. */
                sim_post(sim, CH_ST_SYNC, 1, "head_advanced", h[0], 0, sim_sync_head_event, h);
            }
        }
        sim_pl_t *self = sim_get_pl(sim);
        if (r->o.checkpoint_height != self->last_cp) {
            /* StorageActor announces the checkpoints it writes. */
            self->last_cp = r->o.checkpoint_height;
            uint64_t *cp = malloc(sizeof *cp);
            if (cp) {
                *cp = self->last_cp;
                sim_post(sim, CH_ST_SYNC, 1, "checkpoint_written", *cp, 0, cp_event, cp);
            }
        }
        sim_post(sim, CH_ST_PL, 1, "storage_reply", r->o.head_height, r->o.committed,
                 on_storage_reply, r);
    }
    for (size_t i = 0; i < q->n; i++)
        free(q->b[i].data);
    free(q);
}

static int op_send_storage(void *ctx, uint64_t req_id, uint64_t batch_seq,
                           const ProtobufCBinaryData *blocks, size_t n, const char *origin,
                           const pl_reorg_t *reorg)
{
    (void) batch_seq;
    (void) origin;
    (void) reorg; /* the simulated chain has one branch */
    sim_pl_t *self = ctx;
    st_req_t *q = calloc(1, sizeof *q + (n ? n : 1) * sizeof q->b[0]);
    if (!q)
        return -1;
    q->req_id = req_id;
    for (size_t i = 0; i < n; i++) {
        q->b[i].data = malloc(blocks[i].len ? blocks[i].len : 1);
        if (!q->b[i].data) {
            q->n = i;
            st_req_drop(q);
            return -1;
        }
        memcpy(q->b[i].data, blocks[i].data, blocks[i].len);
        q->b[i].len = blocks[i].len;
        q->n = i + 1;
    }
    sim_post_d(self->sim, CH_PL_ST, 1 + n / 32, n ? "execute_batch" : "get_head", 0, n,
               on_storage_req, q, st_req_drop);
    return 0;
}

static void on_reply(sim_t *sim, void *arg)
{
    sim_pm_on_processed(sim, arg);
    free(arg);
}

static void op_reply(void *ctx, void *reply_ctx, const pl_outcome_t *o)
{
    (void) reply_ctx;
    sim_pl_t *self = ctx;
    pl_outcome_t *copy = malloc(sizeof *copy);
    if (!copy) {
        sim_fail(self->sim, "simulator", "out of memory");
        return;
    }
    *copy = *o;
    sim_post(self->sim, CH_PL_PM, 1, "batch_processed", o->batch_id, o->committed, on_reply, copy);
}

sim_pl_t *sim_pl_new(sim_t *sim)
{
    sim_pl_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->sim = sim;
    pl_config_t cfg;
    pipeline_config_default(&cfg);
    /* Unique per incarnation, as the actor's random base. */
    cfg.id_base = (uint64_t) sim_incarnation(sim, ACT_PROCESSOR) << 42;
    static const pl_ops_t ops = {.send_task = op_send_task,
                                 .send_storage = op_send_storage,
                                 .reply = op_reply,
                                 .free_reply_ctx = NULL};
    self->p = pipeline_new(&cfg, sim_genesis(sim), &ops, self);
    if (!self->p) {
        free(self);
        return NULL;
    }
    return self;
}

void sim_pl_destroy(sim_pl_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    pipeline_destroy(&(*self_p)->p);
    free(*self_p);
    *self_p = NULL;
}

static void tick(sim_t *sim, void *arg)
{
    if ((uintptr_t) arg != sim_incarnation(sim, ACT_PROCESSOR))
        return; /* a dead incarnation's timer */
    sim_pl_t *self = sim_get_pl(sim);
    int64_t now = (int64_t) sim_now(sim);
    /* The worker's heartbeat, as alys-validator sends it. */
    pipeline_worker_seen(self->p, W_SOCK, W_ID, 1, W_CAP, self->held, true, false, now);
    pipeline_tick(self->p, now);
    sim_post_d(sim, -1, 100, "pl_tick", 0, 0, tick, arg, NULL);
}

void sim_pl_start(sim_t *sim)
{
    sim_pl_t *self = sim_get_pl(sim);
    pipeline_worker_seen(self->p, W_SOCK, W_ID, 1, W_CAP, 0, true, true, (int64_t) sim_now(sim));
    sim_post_d(sim, -1, 100, "pl_tick", 0, 0, tick,
               SIM_INC_ARG(sim_incarnation(sim, ACT_PROCESSOR)), NULL);
}

typedef struct {
    uint64_t batch_id;
    bool bad;
} refused_t;

static void on_refused(sim_t *sim, void *arg)
{
    refused_t *r = arg;
    sim_pm_on_refused(sim, r->batch_id, r->bad);
    free(r);
}

void sim_pl_submit(sim_t *sim, uint64_t batch_id, const char *origin,
                   const ProtobufCBinaryData *blocks, size_t n,
                   const ProtobufCBinaryData *expected, size_t n_expected)
{
    sim_pl_t *self = sim_get_pl(sim);
    char err[160];
    int64_t now = (int64_t) sim_now(sim);
    pl_submit_t rc = pipeline_submit(self->p, "peer_manager", batch_id, origin, blocks, n,
                                     expected, n_expected, NULL, now, err, sizeof err);
    if (rc == PL_ACCEPTED || rc == PL_DUPLICATE) {
        pipeline_tick(self->p, now);
        return;
    }
    refused_t *r = malloc(sizeof *r);
    if (!r)
        return;
    r->batch_id = batch_id;
    r->bad = rc == PL_BAD_REQUEST;
    sim_post(sim, CH_PL_PM, 1, r->bad ? "process_refused" : "process_busy", batch_id, 0,
             on_refused, r);
}

size_t sim_pl_batches(const sim_t *sim)
{
    return pipeline_batch_count(((const sim_pl_t *) sim_get_pl((sim_t *) sim))->p);
}
