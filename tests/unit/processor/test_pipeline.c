/*  Unit tests of the BlockProcessor's pipeline (actors/block_processor/
 *  pipeline.c) without sockets: real blocks from chaingen, fake workers and
 *  a fake storage recorded through the ops callbacks, time passed in.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chaingen.h"
#include "pipeline.h"

#define MAXB   256
#define MAXREC 512
#define W      0 /* socket tag of the fake workers */

/* ---------------------------------------------------------------- chain */

typedef struct {
    alys_chaingen_t *gen;
    const alys_genesis_t *g;
    ProtobufCBinaryData b[MAXB];
    size_t n;
} chain_t;

static chain_t C;

/* n blocks of `txs` txs each; fault (ALYS_BLOCK_OK = none) at position fh. */
static void chain_make(uint64_t n, uint32_t txs, alys_block_error_t fault, uint64_t fh)
{
    alys_chaingen_config_t cfg;
    alys_chaingen_config_default(&cfg);
    cfg.blocks = n;
    cfg.txs_per_block = txs;
    cfg.accounts = 8;
    cfg.authorities = 3;
    cfg.threads = 1;
    cfg.fault = fault;
    cfg.fault_height = fh;
    snprintf(cfg.seed, sizeof cfg.seed, "pipeline-test");
    char err[256];
    C.gen = alys_chaingen_new(&cfg, err, sizeof err);
    cr_assert(C.gen, "chaingen: %s", err);
    C.g = alys_chaingen_genesis(C.gen);
    const uint8_t *bytes;
    size_t len;
    C.n = 0;
    while (alys_chaingen_next(C.gen, &bytes, &len, NULL, err, sizeof err) == 1) {
        C.b[C.n].data = malloc(len + 1);
        memcpy(C.b[C.n].data, bytes, len);
        C.b[C.n].len = len;
        C.n++;
    }
    cr_assert_eq(C.n, n);
}

static void chain_free(void)
{
    for (size_t i = 0; i < C.n; i++)
        free(C.b[i].data);
    alys_chaingen_destroy(&C.gen);
    memset(&C, 0, sizeof C);
}

static uint64_t height_of(const uint8_t *data, size_t len)
{
    alys_block_t b;
    cr_assert_eq(alys_block_decode(data, len, &b, NULL), 0);
    uint64_t h = b.header.height;
    alys_block_clear(&b);
    return h;
}

/* ---------------------------------------------------------------- recorder */

typedef struct {
    int sock;
    char id[64];
    uint64_t task_id;
    uint64_t first_height;
    size_t n;
} sent_task_t;

typedef struct {
    uint64_t req;
    uint64_t seq;
    size_t n;
    uint64_t first_height;
    bool is_reorg;
    pl_reorg_t reorg;
} sent_store_t;

typedef struct {
    sent_task_t tasks[MAXREC];
    size_t ntasks;
    sent_store_t stores[MAXREC];
    size_t nstores;
    pl_outcome_t replies[MAXREC];
    int reply_tag[MAXREC];
    size_t nreplies;
    int freed;
    char unreachable[64]; /* send_task to this id fails */
    bool storage_down;
} rec_t;

static rec_t R;

static int op_send_task(void *ctx, int sock, const char *id, uint64_t task_id,
                        const ProtobufCBinaryData *blocks, size_t n)
{
    (void) ctx;
    if (strcmp(id, R.unreachable) == 0)
        return -1;
    cr_assert_lt(R.ntasks, MAXREC);
    sent_task_t *t = &R.tasks[R.ntasks++];
    t->sock = sock;
    snprintf(t->id, sizeof t->id, "%s", id);
    t->task_id = task_id;
    t->n = n;
    t->first_height = height_of(blocks[0].data, blocks[0].len);
    return 0;
}

static int op_send_storage(void *ctx, uint64_t req_id, uint64_t seq, const ProtobufCBinaryData *blocks,
                           size_t n, const char *origin, const pl_reorg_t *reorg)
{
    (void) ctx;
    (void) origin;
    if (R.storage_down)
        return -1;
    sent_store_t *s = &R.stores[R.nstores++];
    *s = (sent_store_t){.req = req_id, .seq = seq, .n = n, .is_reorg = reorg != NULL};
    if (reorg)
        s->reorg = *reorg;
    if (n)
        s->first_height = height_of(blocks[0].data, blocks[0].len);
    return 0;
}

static void op_reply(void *ctx, void *reply_ctx, const pl_outcome_t *o)
{
    (void) ctx;
    R.reply_tag[R.nreplies] = reply_ctx ? *(int *) reply_ctx : -1;
    R.replies[R.nreplies++] = *o;
}

static void op_free(void *p)
{
    R.freed++;
    free(p);
}

static int *tag(int v)
{
    int *p = malloc(sizeof *p);
    *p = v;
    return p;
}

static pipeline_t *make(pl_config_t *cfg)
{
    memset(&R, 0, sizeof R);
    pl_ops_t ops = {op_send_task, op_send_storage, op_reply, op_free};
    pipeline_t *p = pipeline_new(cfg, C.g, &ops, NULL);
    cr_assert(p);
    return p;
}

static pl_config_t small_chunks(void)
{
    pl_config_t c;
    pipeline_config_default(&c);
    c.chunk_sigs = 10; /* 2-tx blocks: 3 sigs each, 4 blocks per task */
    return c;
}

/* ---------------------------------------------------------------- helpers */

static pl_submit_t submit(pipeline_t *p, const char *who, uint64_t batch_id, size_t first,
                          size_t n, int reply_tag, int64_t now)
{
    char err[256] = "";
    int *t = tag(reply_tag);
    pl_submit_t rc = pipeline_submit(p, who, batch_id, "test", &C.b[first], n, NULL, 0, t, now,
                                     err, sizeof err);
    if (rc != PL_ACCEPTED && rc != PL_DUPLICATE)
        free(t); /* refused: still ours */
    return rc;
}

static void ok_verdicts(alys_verdict_t *v, size_t n)
{
    memset(v, 0, n * sizeof *v);
    for (size_t i = 0; i < n; i++)
        v[i].tx_index = -1;
}

/* Answer sent task i: all ok, or failing at height fail_h if it is inside. */
static bool answer(pipeline_t *p, size_t i, uint64_t fail_h, int64_t now)
{
    sent_task_t *t = &R.tasks[i];
    alys_verdict_t v[64];
    ok_verdicts(v, t->n);
    size_t n = t->n;
    if (fail_h >= t->first_height && fail_h < t->first_height + t->n) {
        n = fail_h - t->first_height + 1;
        v[n - 1].code = ALYS_BLOCK_BAD_TX_SIG;
        v[n - 1].tx_index = 1;
        snprintf(v[n - 1].detail, sizeof v[n - 1].detail, "tx 1: signature does not verify");
    }
    return pipeline_task_result(p, t->sock, t->id, t->task_id, v, n, now);
}

/* Storage's answer: `committed` blocks of the batch in, head at h. */
static pl_outcome_t stored(uint32_t committed, uint64_t h)
{
    pl_outcome_t o;
    memset(&o, 0, sizeof o);
    o.committed = committed;
    o.head_height = h;
    o.has_head = true;
    memset(o.head_hash, 0xab, sizeof o.head_hash);
    o.tx_index = -1;
    return o;
}

static void join(pipeline_t *p, const char *id, uint32_t capacity, int64_t now)
{
    cr_assert_eq(pipeline_worker_seen(p, W, id, 100, capacity, 0, true, true, now), PL_WORKER_OK);
}

static void init(void)
{
    chain_make(40, 2, ALYS_BLOCK_OK, 0);
}
static void fini(void)
{
    chain_free();
}

TestSuite(pipeline, .init = init, .fini = fini);

/* ---------------------------------------------------------------- reorg */

/* A reorg batch is validated like any batch and reaches storage with its
 * ancestor (storage undoes and applies in one WriteBatch); its reorg depth
 * comes back in the outcome. A plain batch carries no reorg fields. */
Test(pipeline, reorg_batch_reaches_storage_with_its_ancestor)
{
    pl_config_t c = small_chunks();
    pipeline_t *p = make(&c);
    join(p, "w", 16, 0);
    pl_reorg_t rg = {.ancestor_height = 0};
    memset(rg.ancestor_hash, 0x5a, sizeof rg.ancestor_hash);
    char err[128] = "";
    int *t = tag(1);
    cr_assert_eq(pipeline_submit_reorg(p, "sync", 9, "peer", C.b, 8, NULL, 0, &rg, t, 0, err,
                                       sizeof err),
                 PL_ACCEPTED, "%s", err);
    for (size_t i = 0; i < R.ntasks; i++)
        cr_assert(answer(p, i, 0, 1));
    cr_assert_eq(R.nstores, 1);
    cr_assert(R.stores[0].is_reorg);
    cr_assert_eq(R.stores[0].reorg.ancestor_height, 0);
    cr_assert_eq(memcmp(R.stores[0].reorg.ancestor_hash, rg.ancestor_hash, ALYS_HASH_LEN), 0);
    cr_assert_eq(R.stores[0].n, 8);
    pl_outcome_t st = stored(8, 8);
    st.reorg_depth = 5;
    cr_assert(pipeline_storage_result(p, R.stores[0].req, &st, 2));
    cr_assert_eq(R.nreplies, 1);
    cr_assert_eq(R.replies[0].reorg_depth, 5);
    cr_assert_eq(R.replies[0].committed, 8);
    cr_assert_eq(submit(p, "req", 10, 8, 4, 2, 3), PL_ACCEPTED);
    for (size_t i = 0; i < R.ntasks; i++)
        answer(p, i, 0, 4);
    cr_assert_eq(R.nstores, 2);
    cr_assert_not(R.stores[1].is_reorg, "a plain batch has no ancestor");
    pipeline_destroy(&p);
}

/* ---------------------------------------------------------------- chunking */

Test(pipeline, chunks_by_signature_count)
{
    pl_config_t c = small_chunks();
    pipeline_t *p = make(&c);
    join(p, "w1", 16, 0);
    cr_assert_eq(submit(p, "req", 1, 0, 40, 1, 0), PL_ACCEPTED);
    cr_assert_eq(R.ntasks, 10, "40 blocks x 3 sigs, ~10 sigs per task: 10 tasks, got %zu", R.ntasks);
    for (size_t i = 0; i < R.ntasks; i++) {
        cr_assert_eq(R.tasks[i].n, 4);
        cr_assert_eq(R.tasks[i].first_height, 1 + 4 * i, "tasks in height order");
        cr_assert_eq(R.tasks[i].task_id, R.tasks[0].task_id + i);
    }
    pipeline_destroy(&p);
}

/* The core draws no ids (issue 7): task ids start from the config's
 * id_base, so two pipelines with one base number their work alike and a
 * shell that passes a fresh base per incarnation never reuses an id. */
Test(pipeline, ids_start_from_the_config_base)
{
    uint64_t first[3];
    const uint64_t bases[3] = {1000, 1000, 1ull << 42};
    for (int k = 0; k < 3; k++) {
        pl_config_t c = small_chunks();
        c.id_base = bases[k];
        pipeline_t *p = make(&c);
        join(p, "w1", 16, 0);
        cr_assert_eq(submit(p, "req", 1, 0, 8, 1, 0), PL_ACCEPTED);
        cr_assert_gt(R.ntasks, 0);
        first[k] = R.tasks[0].task_id;
        pipeline_destroy(&p);
    }
    cr_expect_eq(first[0], first[1], "the same base, the same ids");
    cr_expect_neq(first[0], first[2], "another base, other ids");
    cr_expect_neq(first[0], 0, "0 means no correlation");
}

Test(pipeline, chunk_block_cap)
{
    pl_config_t c = small_chunks();
    c.chunk_sigs = 100000;
    c.chunk_max_blocks = 7;
    pipeline_t *p = make(&c);
    join(p, "w1", 16, 0);
    cr_assert_eq(submit(p, "req", 1, 0, 40, 1, 0), PL_ACCEPTED);
    cr_assert_eq(R.ntasks, 6); /* 7,7,7,7,7,5 */
    cr_assert_eq(R.tasks[5].n, 5);
    pipeline_destroy(&p);
}

/* ---------------------------------------------------------------- dispatch */

Test(pipeline, dispatch_only_to_free_workers)
{
    pl_config_t c = small_chunks();
    pipeline_t *p = make(&c);
    cr_assert_eq(submit(p, "req", 1, 0, 40, 1, 0), PL_ACCEPTED);
    cr_assert_eq(R.ntasks, 0, "no worker, nothing sent");
    join(p, "w1", 1, 0);
    join(p, "w2", 1, 0);
    cr_assert_eq(R.ntasks, 2, "one task per free worker");
    cr_assert_str_neq(R.tasks[0].id, R.tasks[1].id);
    cr_assert_eq(pipeline_worker_credits(p, W, "w1"), 0);
    pipeline_tick(p, 10);
    cr_assert_eq(R.ntasks, 2, "busy workers get nothing more");
    /* w2 finishes: only w2 gets the next task. */
    size_t i2 = strcmp(R.tasks[0].id, "w2") == 0 ? 0 : 1;
    cr_assert(answer(p, i2, 0, 20));
    cr_assert_eq(R.ntasks, 3);
    cr_assert_str_eq(R.tasks[2].id, "w2");
    pipeline_destroy(&p);
}

Test(pipeline, least_recently_ready_worker_first)
{
    pl_config_t c = small_chunks();
    pipeline_t *p = make(&c);
    join(p, "a", 1, 0);
    join(p, "b", 1, 0);
    join(p, "c", 1, 0);
    cr_assert_eq(submit(p, "req", 1, 0, 40, 1, 0), PL_ACCEPTED);
    cr_assert_eq(R.ntasks, 3);
    /* They finish in the order c, a: the queue hands out to c, then a. */
    size_t ic = 0, ia = 0;
    for (size_t i = 0; i < 3; i++) {
        if (!strcmp(R.tasks[i].id, "c"))
            ic = i;
        if (!strcmp(R.tasks[i].id, "a"))
            ia = i;
    }
    cr_assert(answer(p, ic, 0, 1));
    cr_assert(answer(p, ia, 0, 2));
    cr_assert_str_eq(R.tasks[3].id, "c");
    cr_assert_str_eq(R.tasks[4].id, "a");
    pipeline_destroy(&p);
}

Test(pipeline, capacity_is_prefetch_depth)
{
    pl_config_t c = small_chunks();
    pipeline_t *p = make(&c);
    join(p, "w", 3, 0);
    cr_assert_eq(submit(p, "req", 1, 0, 40, 1, 0), PL_ACCEPTED);
    cr_assert_eq(R.ntasks, 3);
    cr_assert_eq(pipeline_worker_credits(p, W, "w"), 0);
    pipeline_destroy(&p);
}

Test(pipeline, unreachable_worker_is_dropped_and_work_goes_elsewhere)
{
    pl_config_t c = small_chunks();
    pipeline_t *p = make(&c);
    snprintf(R.unreachable, sizeof R.unreachable, "gone");
    join(p, "gone", 1, 0);
    cr_assert_eq(submit(p, "req", 1, 0, 40, 1, 0), PL_ACCEPTED);
    cr_assert_eq(pipeline_worker_count(p), 0);
    snprintf(R.unreachable, sizeof R.unreachable, "x");
    join(p, "ok", 1, 1);
    cr_assert_eq(R.ntasks, 1);
    cr_assert_eq(R.tasks[0].first_height, 1, "the first task was not lost");
    pipeline_destroy(&p);
}

/* ---------------------------------------------------------------- timeouts */

Test(pipeline, redispatch_after_task_timeout)
{
    pl_config_t c = small_chunks();
    c.task_timeout_ms = 1000;
    c.worker_timeout_ms = 5000;
    pipeline_t *p = make(&c);
    join(p, "slow", 1, 0);
    cr_assert_eq(submit(p, "req", 1, 0, 4, 1, 0), PL_ACCEPTED); /* one task */
    cr_assert_eq(R.ntasks, 1);
    join(p, "fast", 1, 10);
    pipeline_tick(p, 999);
    cr_assert_eq(R.ntasks, 1, "not before the timeout");
    pipeline_tick(p, 1001);
    cr_assert_eq(R.ntasks, 2, "re-dispatched after the timeout");
    cr_assert_str_eq(R.tasks[1].id, "fast");
    cr_assert_eq(R.tasks[1].task_id, R.tasks[0].task_id);
    /* fast answers first: used; slow's late answer: ignored. */
    cr_assert(answer(p, 1, 0, 1100));
    cr_assert_not(answer(p, 0, 0, 1200), "late result ignored");
    cr_assert_not(answer(p, 1, 0, 1300), "duplicate result ignored");
    cr_assert_eq(R.nstores, 1, "the batch went to storage once");
    cr_assert_eq(R.stores[0].n, 4);
    pipeline_destroy(&p);
}

Test(pipeline, silent_worker_dropped_and_its_tasks_redispatched)
{
    pl_config_t c = small_chunks();
    c.task_timeout_ms = 10000;
    c.worker_timeout_ms = 2000;
    pipeline_t *p = make(&c);
    join(p, "dies", 2, 0);
    cr_assert_eq(submit(p, "req", 1, 0, 8, 1, 0), PL_ACCEPTED); /* two tasks */
    cr_assert_eq(R.ntasks, 2);
    join(p, "lives", 2, 0);
    for (int64_t t = 100; t <= 2000; t += 100) {
        pipeline_worker_seen(p, W, "lives", 100, 2, 0, true, false, t); /* heartbeats */
        pipeline_tick(p, t);
    }
    cr_assert_eq(pipeline_worker_count(p), 2);
    pipeline_worker_seen(p, W, "lives", 100, 2, 0, true, false, 2100);
    pipeline_tick(p, 2100);
    cr_assert_eq(pipeline_worker_count(p), 1, "the silent one is out");
    cr_assert_eq(R.ntasks, 4, "both of its tasks went to the live worker");
    cr_assert_str_eq(R.tasks[2].id, "lives");
    cr_assert_str_eq(R.tasks[3].id, "lives");
    cr_assert(answer(p, 2, 0, 2200));
    cr_assert(answer(p, 3, 0, 2200));
    cr_assert_eq(R.nstores, 1);
    pipeline_destroy(&p);
}

Test(pipeline, restarted_worker_gets_its_tasks_redispatched_at_once)
{
    pl_config_t c = small_chunks();
    pipeline_t *p = make(&c);
    join(p, "v1", 1, 0);
    cr_assert_eq(submit(p, "req", 1, 0, 4, 1, 0), PL_ACCEPTED);
    cr_assert_eq(R.ntasks, 1);
    /* Same name, new pid: the old process died with the task. */
    cr_assert_eq(pipeline_worker_seen(p, W, "v1", 200, 1, 0, true, true, 5), PL_WORKER_OK);
    cr_assert_eq(R.ntasks, 2);
    cr_assert_eq(R.tasks[1].task_id, R.tasks[0].task_id);
    pipeline_destroy(&p);
}

Test(pipeline, unknown_and_foreign_results_ignored)
{
    pl_config_t c = small_chunks();
    pipeline_t *p = make(&c);
    join(p, "w", 1, 0);
    cr_assert_eq(submit(p, "req", 1, 0, 4, 1, 0), PL_ACCEPTED);
    alys_verdict_t v[4];
    ok_verdicts(v, 4);
    cr_assert_not(pipeline_task_result(p, W, "w", R.tasks[0].task_id + 99, v, 4, 1));
    cr_assert_not(pipeline_task_result(p, W, "w", R.tasks[0].task_id, v, 3, 1),
                  "stopping early without a failure is not a result");
    cr_assert_eq(R.nstores, 0);
    pipeline_destroy(&p);
}

Test(pipeline, worker_without_genesis_is_not_registered)
{
    pl_config_t c = small_chunks();
    pipeline_t *p = make(&c);
    cr_assert_eq(pipeline_worker_seen(p, W, "new", 1, 2, 0, false, true, 0), PL_WORKER_NEEDS_GENESIS);
    cr_assert_eq(pipeline_worker_count(p), 0);
    pipeline_destroy(&p);
}

/* ---------------------------------------------------------------- verdicts */

Test(pipeline, valid_prefix_cut_at_first_invalid_block)
{
    pl_config_t c = small_chunks();
    pipeline_t *p = make(&c);
    join(p, "w", 16, 0);
    cr_assert_eq(submit(p, "req", 7, 0, 40, 1, 0), PL_ACCEPTED);
    cr_assert_eq(R.ntasks, 10);
    /* Answer out of order; block 13 fails, and a later block fails too. */
    cr_assert(answer(p, 9, 38, 1));
    cr_assert(answer(p, 3, 13, 1));
    cr_assert(answer(p, 0, 0, 1));
    cr_assert(answer(p, 1, 0, 1));
    cr_assert_eq(R.nstores, 0, "block 12 has no verdict yet");
    cr_assert(answer(p, 2, 0, 1));
    cr_assert_eq(R.nstores, 1);
    cr_assert_eq(R.stores[0].n, 12, "blocks 1..12 go to storage, nothing after");
    cr_assert_eq(R.stores[0].first_height, 1);
    pl_outcome_t st = stored(12, 12);
    cr_assert(pipeline_storage_result(p, R.stores[0].req, &st, 2));
    cr_assert_eq(R.nreplies, 1);
    pl_outcome_t *o = &R.replies[0];
    cr_assert_eq(o->batch_id, 7);
    cr_assert(o->failed);
    cr_assert_eq(o->failed_height, 13);
    cr_assert_str_eq(o->reason, "bad_tx_signature");
    cr_assert_eq(o->tx_index, 1);
    cr_assert_eq(o->committed, 12);
    cr_assert_eq(o->committed_txs, 24);
    cr_assert(o->has_failed_hash);
    cr_assert_eq(o->head_height, 12);
    cr_assert_eq(pipeline_batch_count(p), 0);
    cr_assert_eq(R.freed, 1, "reply context released once");
    pipeline_destroy(&p);
}

Test(pipeline, tasks_after_a_failure_are_cancelled)
{
    pl_config_t c = small_chunks();
    pipeline_t *p = make(&c);
    join(p, "w", 1, 0);
    cr_assert_eq(submit(p, "req", 1, 0, 40, 1, 0), PL_ACCEPTED);
    cr_assert(answer(p, 0, 2, 1)); /* block 2 fails */
    cr_assert_eq(R.ntasks, 1, "nothing after the failure is dispatched");
    cr_assert_eq(R.nstores, 1);
    cr_assert_eq(R.stores[0].n, 1);
    pipeline_destroy(&p);
}

Test(pipeline, linkage_inside_the_batch)
{
    pl_config_t c = small_chunks();
    pipeline_t *p = make(&c);
    join(p, "w", 16, 0);
    /* Blocks 1..5 then 7: block 7 does not follow block 5. */
    ProtobufCBinaryData b[6] = {C.b[0], C.b[1], C.b[2], C.b[3], C.b[4], C.b[6]};
    char err[128];
    cr_assert_eq(pipeline_submit(p, "req", 1, "t", b, 6, NULL, 0, tag(1), 0, err, sizeof err),
                 PL_ACCEPTED);
    /* Tasks cover blocks up to and including the unlinked one (its own
     * stateless verdict ranks first). */
    size_t covered = 0;
    for (size_t i = 0; i < R.ntasks; i++)
        covered += R.tasks[i].n;
    cr_assert_eq(covered, 6);
    for (size_t i = 0; i < R.ntasks; i++)
        answer(p, i, 0, 1);
    cr_assert_eq(R.nstores, 1);
    cr_assert_eq(R.stores[0].n, 5);
    pl_outcome_t st = stored(5, 5);
    pipeline_storage_result(p, R.stores[0].req, &st, 2);
    cr_assert_str_eq(R.replies[0].reason, "height_gap");
    cr_assert_eq(R.replies[0].failed_height, 6, "the position of the block that does not link");
    cr_assert_eq(R.replies[0].committed, 5);
    pipeline_destroy(&p);
}

Test(pipeline, stateless_failure_ranks_before_linkage_at_the_same_block)
{
    pl_config_t c = small_chunks();
    pipeline_t *p = make(&c);
    join(p, "w", 16, 0);
    ProtobufCBinaryData b[3] = {C.b[0], C.b[1], C.b[3]}; /* block 4 after 2 */
    char err[128];
    cr_assert_eq(pipeline_submit(p, "req", 1, "t", b, 3, NULL, 0, tag(1), 0, err, sizeof err),
                 PL_ACCEPTED);
    cr_assert_eq(R.ntasks, 1);
    /* The unlinked (third) block also has a bad signature. */
    alys_verdict_t v[3];
    ok_verdicts(v, 3);
    v[2].code = ALYS_BLOCK_BAD_TX_SIG;
    cr_assert(pipeline_task_result(p, W, "w", R.tasks[0].task_id, v, 3, 1));
    pl_outcome_t st = stored(2, 2);
    pipeline_storage_result(p, R.stores[0].req, &st, 2);
    cr_assert_str_eq(R.replies[0].reason, "bad_tx_signature");
    pipeline_destroy(&p);
}

Test(pipeline, undecodable_block_and_empty_prefix)
{
    pl_config_t c = small_chunks();
    pipeline_t *p = make(&c);
    join(p, "w", 16, 0);
    uint8_t junk[] = {0x0a, 0x7f, 0x01}; /* a field running past the end */
    ProtobufCBinaryData b[2] = {{sizeof junk, junk}, C.b[1]};
    char err[128];
    cr_assert_eq(pipeline_submit(p, "req", 3, "t", b, 2, NULL, 0, tag(1), 0, err, sizeof err),
                 PL_ACCEPTED);
    cr_assert_eq(R.ntasks, 0, "nothing to validate before the broken block");
    cr_assert_eq(R.nstores, 1);
    cr_assert_eq(R.stores[0].n, 0, "empty prefix: storage is only asked for the head");
    pl_outcome_t st = stored(0, 41);
    pipeline_storage_result(p, R.stores[0].req, &st, 1);
    cr_assert(R.replies[0].failed);
    cr_assert_str_eq(R.replies[0].reason, "malformed");
    cr_assert_eq(R.replies[0].failed_height, 42, "due after the head");
    cr_assert_not(R.replies[0].has_failed_hash);
    cr_assert_eq(R.replies[0].committed, 0);
    pipeline_destroy(&p);
}

Test(pipeline, expected_hash_mismatch)
{
    pl_config_t c = small_chunks();
    pipeline_t *p = make(&c);
    join(p, "w", 16, 0);
    uint8_t hashes[4][32];
    ProtobufCBinaryData exp[4];
    for (int i = 0; i < 4; i++) {
        alys_block_t blk;
        cr_assert_eq(alys_block_decode(C.b[i].data, C.b[i].len, &blk, NULL), 0);
        alys_header_hash(&blk.header, hashes[i]);
        alys_block_clear(&blk);
        exp[i] = (ProtobufCBinaryData){32, hashes[i]};
    }
    hashes[2][0] ^= 1;
    char err[128];
    cr_assert_eq(pipeline_submit(p, "req", 1, "t", C.b, 4, exp, 4, tag(1), 0, err, sizeof err),
                 PL_ACCEPTED);
    for (size_t i = 0; i < R.ntasks; i++)
        answer(p, i, 0, 1);
    cr_assert_eq(R.stores[0].n, 2);
    pl_outcome_t st = stored(2, 2);
    pipeline_storage_result(p, R.stores[0].req, &st, 2);
    cr_assert_str_eq(R.replies[0].reason, "header_mismatch");
    cr_assert_eq(R.replies[0].failed_height, 3);
    pipeline_destroy(&p);
}

Test(pipeline, storage_failure_is_the_outcome)
{
    pl_config_t c = small_chunks();
    pipeline_t *p = make(&c);
    join(p, "w", 16, 0);
    cr_assert_eq(submit(p, "req", 1, 0, 8, 1, 0), PL_ACCEPTED);
    answer(p, 0, 0, 1);
    answer(p, 1, 0, 1);
    cr_assert_eq(R.stores[0].n, 8);
    pl_outcome_t st = stored(4, 4);
    st.failed = true;
    st.failed_height = 5;
    snprintf(st.reason, sizeof st.reason, "bad_nonce");
    st.tx_index = 0;
    pipeline_storage_result(p, R.stores[0].req, &st, 2);
    cr_assert_str_eq(R.replies[0].reason, "bad_nonce");
    cr_assert_eq(R.replies[0].committed, 4);
    cr_assert_eq(R.replies[0].committed_txs, 8);
    pipeline_destroy(&p);
}

/* ---------------------------------------------------------------- storage order */

Test(pipeline, storage_gets_batches_in_order_one_at_a_time)
{
    pl_config_t c = small_chunks();
    pipeline_t *p = make(&c);
    join(p, "w", 16, 0);
    cr_assert_eq(submit(p, "req", 1, 0, 8, 1, 0), PL_ACCEPTED);  /* tasks 0,1 */
    cr_assert_eq(submit(p, "req", 2, 8, 8, 2, 0), PL_ACCEPTED);  /* tasks 2,3 */
    cr_assert_eq(submit(p, "req", 3, 16, 8, 3, 0), PL_ACCEPTED); /* tasks 4,5 */
    cr_assert_eq(R.ntasks, 6, "later batches validate in parallel");
    answer(p, 2, 0, 1);
    answer(p, 3, 0, 1);
    cr_assert_eq(R.nstores, 0, "batch 2 waits for batch 1");
    answer(p, 0, 0, 1);
    answer(p, 1, 0, 1);
    cr_assert_eq(R.nstores, 1);
    cr_assert_eq(R.stores[0].first_height, 1);
    answer(p, 4, 0, 1);
    answer(p, 5, 0, 1);
    cr_assert_eq(R.nstores, 1, "one storage request at a time");
    pl_outcome_t st = stored(8, 8);
    pipeline_storage_result(p, R.stores[0].req, &st, 2);
    cr_assert_eq(R.nstores, 2);
    cr_assert_eq(R.stores[1].first_height, 9);
    st = stored(8, 16);
    pipeline_storage_result(p, R.stores[1].req, &st, 3);
    cr_assert_eq(R.stores[2].first_height, 17);
    st = stored(8, 24);
    pipeline_storage_result(p, R.stores[2].req, &st, 4);
    cr_assert_eq(R.nreplies, 3);
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(R.reply_tag[i], i + 1, "replies in order");
        cr_assert_not(R.replies[i].failed);
        cr_assert_eq(R.replies[i].committed, 8);
    }
    pipeline_destroy(&p);
}

Test(pipeline, storage_resend_on_timeout_and_reconnect)
{
    pl_config_t c = small_chunks();
    c.storage_timeout_ms = 1000;
    pipeline_t *p = make(&c);
    join(p, "w", 16, 0);
    cr_assert_eq(submit(p, "req", 1, 0, 4, 1, 0), PL_ACCEPTED);
    answer(p, 0, 0, 0);
    cr_assert_eq(R.nstores, 1);
    pipeline_tick(p, 999);
    cr_assert_eq(R.nstores, 1);
    pipeline_tick(p, 1000);
    cr_assert_eq(R.nstores, 2, "resent after the timeout");
    pipeline_storage_reconnected(p, 1100);
    cr_assert_eq(R.nstores, 3, "resent when storage came back");
    cr_assert_eq(R.stores[2].seq, R.stores[0].seq, "same batch");
    pl_outcome_t st = stored(4, 4);
    cr_assert_not(pipeline_storage_result(p, 12345, &st, 1200), "unknown request ignored");
    cr_assert(pipeline_storage_result(p, R.stores[0].req, &st, 1200), "a late answer counts");
    cr_assert_not(pipeline_storage_result(p, R.stores[2].req, &st, 1300), "only once");
    cr_assert_eq(R.nreplies, 1);
    pipeline_destroy(&p);
}

Test(pipeline, storage_error_and_unreachable_retry)
{
    pl_config_t c = small_chunks();
    c.storage_retry_ms = 200;
    pipeline_t *p = make(&c);
    join(p, "w", 16, 0);
    R.storage_down = true;
    cr_assert_eq(submit(p, "req", 1, 0, 4, 1, 0), PL_ACCEPTED);
    answer(p, 0, 0, 0);
    R.storage_down = false;
    pipeline_tick(p, 199);
    cr_assert_eq(R.nstores, 0);
    pipeline_tick(p, 200);
    cr_assert_eq(R.nstores, 1);
    pipeline_storage_error(p, R.stores[0].req, 300);
    pipeline_tick(p, 500);
    cr_assert_eq(R.nstores, 2, "retried after an error answer");
    pipeline_destroy(&p);
}

/* The sends of one storage operation are a bounded table (common/pending):
 * an answer to any remembered send completes the batch, once. */
Test(pipeline, storage_error_answers_that_send_only)
{
    pl_config_t c = small_chunks();
    c.storage_timeout_ms = 1000;
    c.storage_retry_ms = 200;
    pipeline_t *p = make(&c);
    join(p, "w", 16, 0);
    cr_assert_eq(submit(p, "req", 1, 0, 4, 1, 0), PL_ACCEPTED);
    answer(p, 0, 0, 0);
    pipeline_tick(p, 1000);
    cr_assert_eq(R.nstores, 2);
    pipeline_storage_error(p, R.stores[0].req, 1100);
    pl_outcome_t st = stored(4, 4);
    cr_assert_not(pipeline_storage_result(p, R.stores[0].req, &st, 1150),
                  "a send answered with an error is not answered again");
    cr_assert(pipeline_storage_result(p, R.stores[1].req, &st, 1160), "the other send still counts");
    cr_assert_eq(R.nreplies, 1);
    pipeline_destroy(&p);
}

Test(pipeline, a_send_that_failed_is_never_an_answer)
{
    pl_config_t c = small_chunks();
    c.storage_retry_ms = 200;
    pipeline_t *p = make(&c);
    join(p, "w", 16, 0);
    cr_assert_eq(submit(p, "req", 1, 0, 4, 1, 0), PL_ACCEPTED);
    R.storage_down = true;
    answer(p, 0, 0, 0); /* the send fails: id 1 of the sequence is used */
    R.storage_down = false;
    pipeline_tick(p, 200);
    cr_assert_eq(R.nstores, 1);
    pl_outcome_t st = stored(4, 4);
    cr_assert_not(pipeline_storage_result(p, R.stores[0].req - 1, &st, 250),
                  "the id of the send that never left matches nothing");
    cr_assert(pipeline_storage_result(p, R.stores[0].req, &st, 260));
    pipeline_destroy(&p);
}

Test(pipeline, storage_silent_through_many_resends_keeps_the_latest_sends)
{
    pl_config_t c = small_chunks();
    c.storage_timeout_ms = 1000;
    pipeline_t *p = make(&c);
    join(p, "w", 16, 0);
    cr_assert_eq(submit(p, "req", 1, 0, 4, 1, 0), PL_ACCEPTED);
    answer(p, 0, 0, 0);
    int64_t now = 0;
    for (int i = 0; i < 40; i++)
        pipeline_tick(p, now += 1000);
    cr_assert_eq(R.nstores, 41, "one send, then one per timeout");
    pl_outcome_t st = stored(4, 4);
    cr_assert_not(pipeline_storage_result(p, R.stores[0].req, &st, now),
                  "the oldest sends are forgotten (the table is bounded)");
    cr_assert(pipeline_storage_result(p, R.stores[41 - 32].req, &st, now),
              "the 32 latest sends are remembered");
    cr_assert_not(pipeline_storage_result(p, R.stores[40].req, &st, now), "only once");
    cr_assert_eq(R.nreplies, 1);
    pipeline_destroy(&p);
}

/* ---------------------------------------------------------------- admission */

Test(pipeline, in_flight_bound_and_duplicates)
{
    pl_config_t c = small_chunks();
    c.max_batches = 2;
    pipeline_t *p = make(&c);
    join(p, "w", 16, 0);
    cr_assert_eq(submit(p, "req", 1, 0, 4, 1, 0), PL_ACCEPTED);
    cr_assert_eq(submit(p, "req", 2, 4, 4, 2, 0), PL_ACCEPTED);
    cr_assert_eq(submit(p, "req", 3, 8, 4, 3, 0), PL_BUSY);
    cr_assert_eq(submit(p, "req", 2, 4, 4, 22, 0), PL_DUPLICATE, "a resend is not a new batch");
    cr_assert_eq(R.freed, 1, "the replaced reply context is released");
    cr_assert_eq(submit(p, "other", 2, 4, 4, 4, 0), PL_BUSY, "batch ids are per requester");
    answer(p, 0, 0, 1);
    pl_outcome_t st = stored(4, 4);
    pipeline_storage_result(p, R.stores[0].req, &st, 2);
    cr_assert_eq(submit(p, "req", 3, 8, 4, 3, 3), PL_ACCEPTED, "room again");
    answer(p, 1, 0, 4);
    st = stored(4, 8);
    pipeline_storage_result(p, R.stores[1].req, &st, 5);
    cr_assert_eq(R.reply_tag[1], 22, "the newest request is answered");
    pipeline_destroy(&p);
}

Test(pipeline, bad_requests)
{
    pl_config_t c = small_chunks();
    c.max_batch_blocks = 8;
    pipeline_t *p = make(&c);
    char err[128];
    int dummy = 0;
    cr_assert_eq(pipeline_submit(p, "r", 1, "", C.b, 0, NULL, 0, &dummy, 0, err, sizeof err),
                 PL_BAD_REQUEST);
    cr_assert_eq(pipeline_submit(p, "r", 1, "", C.b, 9, NULL, 0, &dummy, 0, err, sizeof err),
                 PL_BAD_REQUEST);
    cr_assert_eq(pipeline_submit(p, "r", 1, "", C.b, 4, C.b, 3, &dummy, 0, err, sizeof err),
                 PL_BAD_REQUEST);
    cr_assert_eq(pipeline_submit(p, "r", 1, "", C.b, 4, C.b, 4, &dummy, 0, err, sizeof err),
                 PL_BAD_REQUEST, "expected hashes must be 32 bytes");
    pipeline_set_genesis(p, NULL);
    cr_assert_eq(pipeline_submit(p, "r", 1, "", C.b, 4, NULL, 0, &dummy, 0, err, sizeof err),
                 PL_UNAVAILABLE);
    cr_assert_eq(R.freed, 0, "refused requests keep their reply context");
    pipeline_destroy(&p);
}

/* ---------------------------------------------------------------- in-process */

Test(pipeline, fallback_in_process_when_no_worker)
{
    pl_config_t c = small_chunks();
    c.inline_after_ms = 1000;
    pipeline_t *p = make(&c);
    cr_assert_eq(submit(p, "req", 1, 0, 8, 1, 0), PL_ACCEPTED);
    cr_assert_not(pipeline_inline_wanted(p, 999));
    cr_assert(pipeline_inline_wanted(p, 1000));
    cr_assert_eq(pipeline_run_inline(p, 1000, 1000), 8);
    cr_assert_eq(R.nstores, 1);
    cr_assert_eq(R.stores[0].n, 8, "real checks: the blocks are valid");
    pipeline_destroy(&p);
}

Test(pipeline, no_fallback_while_a_worker_is_connected)
{
    pl_config_t c = small_chunks();
    c.inline_after_ms = 1000;
    pipeline_t *p = make(&c);
    join(p, "w", 1, 0);
    cr_assert_eq(submit(p, "req", 1, 0, 8, 1, 0), PL_ACCEPTED);
    cr_assert_not(pipeline_inline_wanted(p, 5000));
    pipeline_destroy(&p);
}

Test(pipeline, unusable_results_end_up_in_process)
{
    pl_config_t c = small_chunks();
    pipeline_t *p = make(&c);
    join(p, "w", 1, 0);
    cr_assert_eq(submit(p, "req", 1, 0, 4, 1, 0), PL_ACCEPTED);
    alys_verdict_t v[4];
    for (int k = 0; k < 3; k++) {
        ok_verdicts(v, 4);
        v[0].code = ALYS_BLOCK_INTERNAL_ERROR; /* not the block's fault */
        sent_task_t *t = &R.tasks[R.ntasks - 1];
        cr_assert_not(pipeline_task_result(p, W, t->id, t->task_id, v, 1, k + 1));
    }
    cr_assert(pipeline_inline_wanted(p, 10), "after three, the processor checks it itself");
    cr_assert_eq(pipeline_run_inline(p, 100, 10), 4);
    cr_assert_eq(R.stores[0].n, 4);
    pipeline_destroy(&p);
}

Test(pipeline, sequential_never_uses_workers_and_does_not_overlap)
{
    pl_config_t c = small_chunks();
    c.sequential = true;
    c.overlap = false;
    pipeline_t *p = make(&c);
    join(p, "w", 4, 0);
    cr_assert_eq(submit(p, "req", 1, 0, 4, 1, 0), PL_ACCEPTED);
    cr_assert_eq(submit(p, "req", 2, 4, 4, 2, 0), PL_ACCEPTED);
    cr_assert_eq(R.ntasks, 0, "no task to any worker");
    cr_assert(pipeline_inline_wanted(p, 0));
    cr_assert_eq(pipeline_run_inline(p, 1, 0), 1, "one block at a time");
    cr_assert_eq(pipeline_run_inline(p, 100, 0), 3, "batch 1 only");
    cr_assert_eq(R.nstores, 1);
    cr_assert_not(pipeline_inline_wanted(p, 0), "batch 2 waits for batch 1's commit");
    pl_outcome_t st = stored(4, 4);
    pipeline_storage_result(p, R.stores[0].req, &st, 1);
    cr_assert_eq(pipeline_run_inline(p, 100, 1), 4);
    cr_assert_eq(R.nstores, 2);
    cr_assert_eq(R.stores[1].first_height, 5);
    pipeline_destroy(&p);
}

Test(pipeline, sequential_finds_a_real_fault)
{
    chain_free();
    chain_make(12, 3, ALYS_BLOCK_BAD_PROPOSER_SIG, 7);
    pl_config_t c = small_chunks();
    c.sequential = true;
    pipeline_t *p = make(&c);
    cr_assert_eq(submit(p, "req", 1, 0, 12, 1, 0), PL_ACCEPTED);
    cr_assert_eq(pipeline_run_inline(p, 100, 0), 7, "stops at the bad block");
    cr_assert_eq(R.stores[0].n, 6);
    pl_outcome_t st = stored(6, 6);
    pipeline_storage_result(p, R.stores[0].req, &st, 1);
    cr_assert_str_eq(R.replies[0].reason, "bad_proposer_signature");
    cr_assert_eq(R.replies[0].failed_height, 7);
    pipeline_destroy(&p);
}

Test(pipeline, storage_failures_are_named_by_their_place_in_the_chain)
{
    pl_config_t c = small_chunks();
    pipeline_t *p = make(&c);
    join(p, "w", 16, 0);
    /* A block whose header claims height 12 where 11 was due: storage
     * reports the header's height; the outcome names the place, 11. */
    cr_assert_eq(submit(p, "req", 1, 0, 4, 1, 0), PL_ACCEPTED);
    answer(p, 0, 0, 1);
    pl_outcome_t st = stored(0, 10);
    st.failed = true;
    st.failed_height = 12;
    snprintf(st.reason, sizeof st.reason, "height_gap");
    pipeline_storage_result(p, R.stores[0].req, &st, 2);
    cr_assert_eq(R.replies[0].failed_height, 11);
    cr_assert_eq(R.replies[0].committed, 0);
    /* A block at or below the head that differs from the committed one (a
     * fork): storage's own height stands. */
    cr_assert_eq(submit(p, "req", 2, 0, 4, 2, 3), PL_ACCEPTED);
    answer(p, 1, 0, 4);
    st = stored(0, 10);
    st.failed = true;
    st.failed_height = 1;
    snprintf(st.reason, sizeof st.reason, "parent_mismatch");
    pipeline_storage_result(p, R.stores[1].req, &st, 5);
    cr_assert_eq(R.replies[1].failed_height, 1);
    pipeline_destroy(&p);
}

Test(pipeline, a_worker_that_timed_out_gets_work_again_once_it_speaks)
{
    pl_config_t c = small_chunks();
    c.task_timeout_ms = 1000;
    c.worker_timeout_ms = 5000;
    pipeline_t *p = make(&c);
    join(p, "w", 1, 0);
    cr_assert_eq(submit(p, "req", 1, 0, 8, 1, 0), PL_ACCEPTED);
    cr_assert_eq(R.ntasks, 1);
    pipeline_tick(p, 1001);
    cr_assert_eq(R.ntasks, 1, "not straight back to the worker that sat on it");
    cr_assert_eq(pipeline_worker_credits(p, W, "w"), 0);
    pipeline_worker_seen(p, W, "w", 100, 1, 0, true, false, 1100); /* a heartbeat */
    cr_assert_eq(R.ntasks, 2);
    cr_assert_eq(R.tasks[1].task_id, R.tasks[0].task_id, "the timed-out task first");
    pipeline_destroy(&p);
}
