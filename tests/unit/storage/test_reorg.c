/*  test_reorg.c: fork choice's storage side (storage_execute_reorg, the
 *  ExecuteBatch reorg fields, GetLocator and GetBlocks.locator) on
 *  temporary directories. Forks are two testchains of one seed: the same
 *  blocks up to the fork point, then tchain_diverge on one of them.
 */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fixture.h"
#include "util.h"

TestSuite(reorg, .fini = fx_remove_test_dir);

/* A branch of f's chain (built with tchain_extend(.., prefix_txs)): its
 * blocks up to fork, then `extra` blocks of txs transfers of its own
 * (heights fork+1 .. fork+extra). */
static tchain_t *branch_of(const fx_t *f, uint64_t fork, uint32_t prefix_txs, uint32_t extra,
                           uint32_t txs)
{
    tchain_t *b = tchain_new(f->chain->naccounts, 42, "storage-test");
    cr_assert_not_null(b);
    cr_assert_eq(tchain_extend(b, (uint32_t) fork, prefix_txs), 0);
    cr_assert_arr_eq(b->tip_hash, fork ? f->chain->hashes[fork - 1] : f->chain->genesis.hash,
                     ALYS_HASH_LEN, "the branch shares the chain's blocks up to %llu",
                     (unsigned long long) fork);
    tchain_diverge(b, 0x5eed);
    cr_assert_eq(tchain_extend(b, extra, txs), 0);
    return b;
}

/* Our chain: `height` blocks of txs transfers, committed in a store opened
 * with f's configuration as the caller set it. */
static storage_t *open_committed(fx_t *f, uint32_t height, uint32_t txs)
{
    cr_assert_eq(tchain_extend(f->chain, height, txs), 0);
    storage_t *s = fx_open(f);
    storage_batch_result_t r;
    run_batch(s, f->chain, 1, height, &r);
    cr_assert_not(r.failed, "%s", r.verdict.detail);
    return s;
}

/* Reorg s to c's blocks (fork, to] with ancestor c's block at fork. */
static int reorg_to(storage_t *s, const tchain_t *c, uint64_t fork, uint64_t to,
                    storage_batch_result_t *r, char *err, size_t errlen)
{
    const uint8_t *anc = fork ? c->hashes[fork - 1] : c->genesis.hash;
    return storage_execute_reorg(s, fork, anc, &c->blocks[fork], (size_t) (to - fork), NULL, r,
                                 err, errlen);
}

/* Heights fork+1..to of c are (present) or are not in the hash index. */
static void expect_indexed(storage_t *s, const tchain_t *c, uint64_t from, uint64_t to, bool present)
{
    for (uint64_t h = from; h <= to; h++) {
        uint64_t at = 0;
        int rc = storage_find_block(s, c->hashes[h - 1], &at);
        cr_assert_eq(rc, present ? 1 : 0, "block %llu indexed: %d", (unsigned long long) h, rc);
        if (present)
            cr_assert_eq(at, h);
    }
}

/* Nothing of the refused request was written: head, state, index as before. */
static void expect_untouched(storage_t *s, const fx_t *f, uint64_t head, const tchain_t *branch,
                             uint64_t fork, uint64_t branch_to)
{
    expect_head(s, f->chain, head);
    expect_state_equals_chain(s, f->chain);
    expect_indexed(s, f->chain, 1, head, true);
    expect_indexed(s, branch, fork + 1, branch_to, false);
    expect_consistent(s);
}

Test(reorg, longer_branch_commits_atomically)
{
    fx_t f;
    fx_init(&f, 16);
    f.cfg.max_reorg_depth = 8;
    storage_t *s = open_committed(&f, 10, 6);
    storage_batch_result_t r;
    tchain_t *b = branch_of(&f, 6, 6, 7, 6); /* 7..13 */
    char err[256] = "";
    cr_assert_eq(reorg_to(s, b, 6, 13, &r, err, sizeof err), STORAGE_OK, "%s", err);
    cr_assert_not(r.failed, "%s: %s", storage_batch_reason(&r), r.verdict.detail);
    cr_assert_eq(r.committed, 7);
    cr_assert_eq(r.reorg_depth, 4);
    cr_assert_eq(r.old_head.height, 10);
    expect_head(s, b, 13);
    expect_state_equals_chain(s, b);
    expect_indexed(s, b, 1, 13, true);
    expect_indexed(s, f.chain, 7, 10, false);
    expect_consistent(s);
    storage_stats_t st;
    storage_stats(s, &st);
    cr_assert_eq(st.blocks, 13);
    cr_assert_eq(st.undo_records, 8, "undo for the last max_reorg_depth blocks");
    cr_assert_eq(st.undo_lowest, 6);
    storage_destroy(&s);
    s = fx_open(&f); /* what was written is what reopens */
    expect_head(s, b, 13);
    expect_state_equals_chain(s, b);
    expect_consistent(s);
    /* The branch goes on as our chain. */
    cr_assert_eq(tchain_extend(b, 2, 6), 0);
    run_batch(s, b, 14, 15, &r);
    cr_assert_not(r.failed, "%s", r.verdict.detail);
    expect_head(s, b, 15);
    storage_destroy(&s);
    tchain_destroy(&b);
    fx_fini(&f);
}

/* An ancestor named lower than where the branches part: our blocks above
 * it that the branch shares are undone and executed again, and stay
 * indexed (their deletions are staged before the branch's puts). An
 * ancestor at the head is an atomic extension, depth 0. */
Test(reorg, shared_blocks_above_the_ancestor_and_depth_zero)
{
    fx_t f;
    fx_init(&f, 8);
    f.cfg.max_reorg_depth = 8;
    f.cfg.checkpoint_interval = 5;
    storage_t *s = open_committed(&f, 10, 4);
    tchain_t *b = branch_of(&f, 6, 4, 6, 4); /* 7..12 */
    storage_batch_result_t r;
    char err[256] = "";
    cr_assert_eq(reorg_to(s, b, 4, 12, &r, err, sizeof err), STORAGE_OK, "%s", err);
    cr_assert_not(r.failed, "%s", r.verdict.detail);
    cr_assert_eq(r.reorg_depth, 6);
    expect_head(s, b, 12);
    expect_indexed(s, b, 1, 12, true);
    expect_state_equals_chain(s, b);
    expect_consistent(s);
    cr_assert_eq(r.head.last_checkpoint, 10);
    cr_assert_eq(tchain_extend(b, 2, 4), 0);
    cr_assert_eq(reorg_to(s, b, 12, 14, &r, err, sizeof err), STORAGE_OK, "%s", err);
    cr_assert_not(r.failed, "%s", r.verdict.detail);
    cr_assert_eq(r.reorg_depth, 0);
    expect_head(s, b, 14);
    expect_consistent(s);
    storage_destroy(&s);
    tchain_destroy(&b);
    fx_fini(&f);
}

/* The undo data of the old branch brings the state back: a reorg whose
 * branch re-creates nothing of ours still ends in the branch's exact state
 * (accounts the old branch created are gone). */
Test(reorg, to_a_branch_of_empty_blocks_restores_state_exactly)
{
    fx_t f;
    fx_init(&f, 8);
    f.cfg.max_reorg_depth = 16;
    storage_t *s = open_committed(&f, 12, 8);
    storage_batch_result_t r;
    tchain_t *b = branch_of(&f, 2, 8, 11, 0); /* 3..13, no txs */
    char err[256] = "";
    cr_assert_eq(reorg_to(s, b, 2, 13, &r, err, sizeof err), STORAGE_OK, "%s", err);
    cr_assert_not(r.failed, "%s", r.verdict.detail);
    cr_assert_eq(r.reorg_depth, 10);
    expect_head(s, b, 13);
    expect_state_equals_chain(s, b);
    expect_consistent(s);
    storage_destroy(&s);
    tchain_destroy(&b);
    fx_fini(&f);
}

Test(reorg, equal_or_shorter_branch_is_not_longer_and_writes_nothing)
{
    fx_t f;
    fx_init(&f, 8);
    f.cfg.max_reorg_depth = 8;
    storage_t *s = open_committed(&f, 10, 4);
    storage_batch_result_t r;
    tchain_t *b = branch_of(&f, 6, 4, 4, 4); /* 7..10: a tie */
    char err[256] = "";
    for (uint64_t to = 10; to >= 9; to--) {
        cr_assert_eq(reorg_to(s, b, 6, to, &r, err, sizeof err), STORAGE_OK, "%s", err);
        cr_assert(r.failed);
        cr_assert(r.not_longer);
        cr_assert_str_eq(storage_batch_reason(&r), "not_longer");
        cr_assert_eq(r.verdict.code, ALYS_BLOCK_PARENT_MISMATCH);
        cr_assert_eq(r.failed_height, to, "names the branch's tip");
        cr_assert_arr_eq(r.failed_hash, b->hashes[to - 1], ALYS_HASH_LEN);
        cr_assert(strstr(r.verdict.detail, "not above our head 10"), "%s", r.verdict.detail);
        cr_assert_eq(r.committed, 0);
        cr_assert_eq(r.reorg_depth, 0);
        expect_untouched(s, &f, 10, b, 6, 10);
    }
    storage_destroy(&s);
    tchain_destroy(&b);
    fx_fini(&f);
}

Test(reorg, deeper_than_max_reorg_depth_is_refused_and_counted)
{
    fx_t f;
    fx_init(&f, 8);
    f.cfg.max_reorg_depth = 4;
    cr_assert_eq(tchain_extend(f.chain, 10, 4), 0);
    storage_t *s = fx_open(&f);
    alys_metrics_t *m = alys_metrics_new();
    cr_assert_not_null(m);
    storage_set_metrics(s, m);
    cr_assert(alys_metric_has(m, "alys_chain_reorgs_refused_total", NULL, NULL), "declared at 0");
    cr_assert(alys_metric_has(m, "alys_chain_reorgs_total", NULL, NULL), "declared at 0");
    storage_batch_result_t r;
    run_batch(s, f.chain, 1, 10, &r);
    tchain_t *b = branch_of(&f, 5, 4, 8, 4); /* depth 5 > 4 */
    char err[256] = "";
    cr_assert_eq(reorg_to(s, b, 5, 13, &r, err, sizeof err), STORAGE_EINVAL);
    cr_assert(strncmp(err, "too_deep: reorg of depth 5", 26) == 0, "%s", err);
    cr_assert(strstr(err, "max_reorg_depth 4"), "%s", err);
    cr_assert_eq(alys_metric_value(m, "alys_chain_reorgs_refused_total", NULL), 1);
    cr_assert_eq(alys_metric_value(m, "alys_chain_reorgs_total", NULL), 0);
    expect_untouched(s, &f, 10, b, 5, 13);
    storage_destroy(&s);
    alys_metrics_destroy(&m);
    tchain_destroy(&b);
    fx_fini(&f);
}

Test(reorg, wrong_or_unknown_ancestor_is_refused)
{
    fx_t f;
    fx_init(&f, 8);
    f.cfg.max_reorg_depth = 8;
    storage_t *s = open_committed(&f, 10, 4);
    storage_batch_result_t r;
    tchain_t *b = branch_of(&f, 6, 4, 6, 4);
    char err[256] = "";
    /* Height 6 named with the hash of our block 5. */
    cr_assert_eq(storage_execute_reorg(s, 6, f.chain->hashes[4], &b->blocks[6], 6, NULL, &r, err,
                                       sizeof err),
                 STORAGE_EINVAL);
    cr_assert(strncmp(err, "ancestor_mismatch:", 18) == 0, "%s", err);
    cr_assert_eq(storage_execute_reorg(s, 11, b->hashes[10], &b->blocks[11], 1, NULL, &r, err,
                                       sizeof err),
                 STORAGE_EINVAL);
    cr_assert(strncmp(err, "bad_ancestor:", 13) == 0, "%s", err);
    /* The genesis is named by its hash. */
    alys_hash_t wrong;
    memcpy(wrong, f.chain->genesis.hash, ALYS_HASH_LEN);
    wrong[0] ^= 1;
    f.cfg.max_reorg_depth = 16;
    storage_destroy(&s);
    s = fx_open(&f);
    cr_assert_eq(storage_execute_reorg(s, 0, wrong, b->blocks, 12, NULL, &r, err, sizeof err),
                 STORAGE_EINVAL);
    cr_assert(strncmp(err, "ancestor_mismatch:", 18) == 0, "%s", err);
    expect_untouched(s, &f, 10, b, 6, 12);
    storage_destroy(&s);
    tchain_destroy(&b);
    fx_fini(&f);
}

Test(reorg, invalid_block_in_branch_writes_nothing_and_is_named)
{
    fx_t f;
    fx_init(&f, 8);
    f.cfg.max_reorg_depth = 8;
    f.cfg.checkpoint_interval = 4;
    storage_t *s = open_committed(&f, 10, 4);
    storage_batch_result_t r;
    tchain_t *b = branch_of(&f, 6, 4, 7, 4);
    ProtobufCBinaryData blocks[7], bad;
    cr_assert_eq(tchain_corrupt(b, 12, TBAD_STATE_ROOT, &bad), 0);
    memcpy(blocks, &b->blocks[6], sizeof blocks);
    blocks[5] = bad; /* height 12, above our head */
    char err[256] = "";
    cr_assert_eq(storage_execute_reorg(s, 6, b->hashes[5], blocks, 7, NULL, &r, err, sizeof err),
                 STORAGE_OK, "%s", err);
    cr_assert(r.failed);
    cr_assert_not(r.not_longer);
    cr_assert_eq(r.failed_height, 12);
    cr_assert_str_eq(storage_batch_reason(&r), "state_root_mismatch");
    cr_assert_eq(r.committed, 0, "all or nothing");
    cr_assert_eq(r.head.height, 10);
    expect_untouched(s, &f, 10, b, 6, 13);
    storage_head_t h;
    storage_head(s, &h);
    cr_assert_eq(h.last_checkpoint, 8, "the checkpoint list is back");
    /* The same branch, valid, then commits. */
    cr_assert_eq(reorg_to(s, b, 6, 13, &r, err, sizeof err), STORAGE_OK, "%s", err);
    cr_assert_not(r.failed, "%s", r.verdict.detail);
    expect_head(s, b, 13);
    free(bad.data);
    storage_destroy(&s);
    tchain_destroy(&b);
    fx_fini(&f);
}

/* Checkpoints above the ancestor are the old branch's: replaced by the new
 * branch's, those at or below it kept. */
Test(reorg, checkpoints_above_the_ancestor_are_replaced)
{
    fx_t f;
    fx_init(&f, 8);
    f.cfg.max_reorg_depth = 8;
    f.cfg.checkpoint_interval = 3;
    storage_t *s = open_committed(&f, 10, 4);
    storage_batch_result_t r;
    tchain_t *b = branch_of(&f, 4, 4, 8, 4); /* 5..12: crosses 6 and 9, adds 12 */
    char err[256] = "";
    cr_assert_eq(reorg_to(s, b, 4, 12, &r, err, sizeof err), STORAGE_OK, "%s", err);
    cr_assert_not(r.failed, "%s", r.verdict.detail);
    cr_assert_eq(r.head.last_checkpoint, 12);
    Alys__Chain__BlockCheckpoint **cps;
    size_t n;
    cr_assert_eq(storage_list_checkpoints(s, &cps, &n, err, sizeof err), STORAGE_OK, "%s", err);
    cr_assert_eq(n, 4);
    for (size_t i = 0; i < n; i++) {
        uint64_t h = 3 * (i + 1);
        cr_assert_eq(cps[i]->height, h);
        cr_assert_arr_eq(cps[i]->hash.data, b->hashes[h - 1], ALYS_HASH_LEN, "checkpoint %llu",
                         (unsigned long long) h);
    }
    storage_checkpoints_free(cps, n);
    storage_destroy(&s);
    s = fx_open(&f);
    storage_stats_t st;
    storage_stats(s, &st);
    cr_assert_eq(st.checkpoints, 4);
    expect_consistent(s);
    storage_destroy(&s);
    tchain_destroy(&b);
    fx_fini(&f);
}

/* ------------------------------------------------------------ service */

static void execute_msg(Alys__Storage__ExecuteBatch *eb, Alys__Storage__StorageMsg *m)
{
    *m = (Alys__Storage__StorageMsg) ALYS__STORAGE__STORAGE_MSG__INIT;
    m->msg_case = ALYS__STORAGE__STORAGE_MSG__MSG_EXECUTE_BATCH;
    m->execute_batch = eb;
}

Test(reorg, service_reorg_result_events_and_bad_requests)
{
    fx_t f;
    fx_init(&f, 8);
    f.cfg.max_reorg_depth = 8;
    storage_t *s = open_committed(&f, 8, 3);
    tchain_t *b = branch_of(&f, 5, 3, 4, 3); /* 6..9 */
    storage_reply_t rep;
    Alys__Storage__StorageMsg m;
    Alys__Storage__ExecuteBatch eb = ALYS__STORAGE__EXECUTE_BATCH__INIT;
    execute_msg(&eb, &m);
    eb.blocks = &b->blocks[5];
    eb.n_blocks = 4;
    eb.reorg_ancestor_height = 5; /* hash missing: half set */
    serve(s, &m, &rep);
    expect_error(&rep, ALYS_ERR_BAD_REQUEST, "reorg_ancestor_hash of 0 bytes");
    storage_reply_clear(&rep);
    eb.reorg_ancestor_hash = (ProtobufCBinaryData){31, b->hashes[4]};
    serve(s, &m, &rep);
    expect_error(&rep, ALYS_ERR_BAD_REQUEST, "reorg_ancestor_hash of 31 bytes");
    storage_reply_clear(&rep);
    expect_head(s, f.chain, 8);

    eb.reorg_ancestor_hash = (ProtobufCBinaryData){ALYS_HASH_LEN, b->hashes[4]};
    eb.n_blocks = 3; /* ends at 8: a tie */
    serve(s, &m, &rep);
    const Alys__Storage__BatchResult *br = rep.env.storage->batch_result;
    cr_assert(br->failed);
    cr_assert_str_eq(br->reason, "not_longer");
    cr_assert_eq(br->failed_height, 8);
    cr_assert_eq(br->committed, 0);
    cr_assert_eq(br->head_height, 8);
    cr_assert_not(rep.head_changed);
    cr_assert_not(rep.reorged);
    storage_reply_clear(&rep);

    eb.n_blocks = 4;
    serve(s, &m, &rep);
    br = rep.env.storage->batch_result;
    cr_assert_not(br->failed, "%s", br->detail);
    cr_assert_eq(br->reorg_depth, 3);
    cr_assert_eq(br->head_height, 9);
    cr_assert(rep.reorged);
    char o[2 * ALYS_HASH_LEN + 1], n[2 * ALYS_HASH_LEN + 1], want[STORAGE_REORG_TEXT];
    alys_hex(f.chain->hashes[7], ALYS_HASH_LEN, o);
    alys_hex(b->hashes[8], ALYS_HASH_LEN, n);
    snprintf(want, sizeof want, "depth=3 old_height=8 old_hash=%s new_height=9 new_hash=%s", o, n);
    cr_assert_str_eq(rep.reorg_text, want);
    cr_assert(rep.head_changed);
    cr_assert_str_eq(rep.head_event, "head_advanced");
    storage_reply_clear(&rep);

    eb.reorg_ancestor_hash = (ProtobufCBinaryData){0};
    eb.reorg_ancestor_height = 0;
    eb.blocks = f.chain->blocks;
    eb.n_blocks = 8; /* a plain batch: our old block 6 is now a fork */
    serve(s, &m, &rep);
    br = rep.env.storage->batch_result;
    cr_assert(br->failed);
    cr_assert_str_eq(br->reason, "parent_mismatch");
    cr_assert_eq(br->failed_height, 6);
    cr_assert_eq(br->reorg_depth, 0);
    storage_reply_clear(&rep);
    storage_destroy(&s);
    tchain_destroy(&b);
    fx_fini(&f);
}

static void get_locator(storage_t *s, storage_reply_t *rep)
{
    Alys__Storage__GetLocator gl = ALYS__STORAGE__GET_LOCATOR__INIT;
    Alys__Storage__StorageMsg m = ALYS__STORAGE__STORAGE_MSG__INIT;
    m.msg_case = ALYS__STORAGE__STORAGE_MSG__MSG_GET_LOCATOR;
    m.get_locator = &gl;
    serve(s, &m, rep);
    cr_assert_eq(rep->env.body_case, ALYS__BUS__ENVELOPE__BODY_STORAGE);
    cr_assert_eq(rep->env.storage->msg_case, ALYS__STORAGE__STORAGE_MSG__MSG_LOCATOR);
}

Test(reorg, service_get_locator)
{
    fx_t f;
    fx_init(&f, 8);
    cr_assert_eq(tchain_extend(f.chain, 40, 1), 0);
    storage_t *s = fx_open(&f);
    storage_reply_t rep;
    get_locator(s, &rep); /* at the genesis: itself */
    cr_assert_eq(rep.env.storage->locator->n_heights, 1);
    cr_assert_eq(rep.env.storage->locator->heights[0], 0);
    cr_assert_arr_eq(rep.env.storage->locator->hashes[0].data, f.chain->genesis.hash, ALYS_HASH_LEN);
    storage_reply_clear(&rep);
    storage_batch_result_t r;
    run_batch(s, f.chain, 1, 40, &r);
    get_locator(s, &rep);
    const Alys__Storage__Locator *l = rep.env.storage->locator;
    uint64_t want[ALYS_LOCATOR_MAX];
    size_t n = alys_locator_heights(40, 10, want, ALYS_LOCATOR_MAX);
    cr_assert_eq(l->n_heights, n);
    cr_assert_eq(l->n_hashes, n);
    for (size_t i = 0; i < n; i++) {
        cr_assert_eq(l->heights[i], want[i]);
        const uint8_t *h = want[i] ? f.chain->hashes[want[i] - 1] : f.chain->genesis.hash;
        cr_assert_eq(l->hashes[i].len, ALYS_HASH_LEN);
        cr_assert_arr_eq(l->hashes[i].data, h, ALYS_HASH_LEN, "height %llu",
                         (unsigned long long) want[i]);
    }
    storage_reply_clear(&rep);
    storage_destroy(&s);
    fx_fini(&f);
}

static void get_blocks_at(storage_t *s, ProtobufCBinaryData *loc, size_t n, bool headers_only,
                          storage_reply_t *rep)
{
    Alys__Storage__GetBlocks gb = ALYS__STORAGE__GET_BLOCKS__INIT;
    gb.start = 999; /* ignored when a locator is given */
    gb.count = 3;
    gb.headers_only = headers_only;
    gb.locator = loc;
    gb.n_locator = n;
    Alys__Storage__StorageMsg m = ALYS__STORAGE__STORAGE_MSG__INIT;
    m.msg_case = ALYS__STORAGE__STORAGE_MSG__MSG_GET_BLOCKS;
    m.get_blocks = &gb;
    serve(s, &m, rep);
}

/* A peer on a branch sends its locator: we answer from above the first of
 * its hashes that is on our chain. */
Test(reorg, service_get_blocks_from_a_locator)
{
    fx_t f;
    fx_init(&f, 8);
    f.cfg.max_reorg_depth = 8;
    storage_t *s = open_committed(&f, 20, 2);
    tchain_t *b = branch_of(&f, 11, 2, 11, 2); /* the peer's chain: 12..22 its own */
    uint64_t hs[ALYS_LOCATOR_MAX];
    size_t n = alys_locator_heights(22, 10, hs, ALYS_LOCATOR_MAX);
    ProtobufCBinaryData loc[ALYS_LOCATOR_MAX + 1];
    for (size_t i = 0; i < n; i++)
        loc[i] = (ProtobufCBinaryData){ALYS_HASH_LEN, hs[i] ? b->hashes[hs[i] - 1] : b->genesis.hash};
    storage_reply_t rep;
    get_blocks_at(s, loc, n, true, &rep);
    cr_assert_eq(rep.env.body_case, ALYS__BUS__ENVELOPE__BODY_STORAGE);
    const Alys__Storage__Blocks *bl = rep.env.storage->blocks;
    /* Its locator: 22..13 one by one (not ours), then 11: ours. */
    cr_assert_eq(bl->start, 12, "the branches meet at 11: start %llu", (unsigned long long) bl->start);
    cr_assert_eq(bl->n_blocks, 3);
    alys_header_t h;
    alys_verdict_t v;
    cr_assert_eq(alys_header_decode(bl->blocks[0].data, bl->blocks[0].len, &h, &v), 0,
                 "headers_only respected");
    cr_assert_eq(h.height, 12);
    storage_reply_clear(&rep);

    get_blocks_at(s, &loc[n - 1], 1, false, &rep); /* the genesis alone */
    cr_assert_eq(rep.env.storage->blocks->start, 1);
    cr_assert_eq(rep.env.storage->blocks->blocks[0].len, f.chain->blocks[0].len);
    storage_reply_clear(&rep);

    alys_hash_t nobody = {7};
    loc[0] = (ProtobufCBinaryData){ALYS_HASH_LEN, nobody};
    get_blocks_at(s, loc, 1, false, &rep); /* nothing known: from 1 */
    cr_assert_eq(rep.env.storage->blocks->start, 1);
    storage_reply_clear(&rep);

    loc[0] = (ProtobufCBinaryData){ALYS_HASH_LEN, f.chain->hashes[19]};
    get_blocks_at(s, loc, 1, false, &rep); /* our head: nothing above it */
    cr_assert_eq(rep.env.storage->blocks->start, 21);
    cr_assert_eq(rep.env.storage->blocks->n_blocks, 0);
    storage_reply_clear(&rep);

    loc[1] = (ProtobufCBinaryData){16, nobody};
    get_blocks_at(s, loc, 2, false, &rep);
    expect_error(&rep, ALYS_ERR_BAD_REQUEST, "locator hash 1 of 16 bytes");
    storage_reply_clear(&rep);
    for (size_t i = 0; i <= ALYS_LOCATOR_MAX; i++)
        loc[i] = (ProtobufCBinaryData){ALYS_HASH_LEN, nobody};
    get_blocks_at(s, loc, ALYS_LOCATOR_MAX + 1, false, &rep);
    expect_error(&rep, ALYS_ERR_BAD_REQUEST, "locator of 129 hashes");
    storage_reply_clear(&rep);
    storage_destroy(&s);
    tchain_destroy(&b);
    fx_fini(&f);
}

/* ------------------------------------------------------------ crash atomicity */

/* Child: flip between our chain (head 10) and the branch (head 13) forever:
 * a reorg to the branch, then back by a rollback to the fork point and a
 * batch of our blocks (the branch is longer: a reorg back would be refused). */
static void flip_forever(fx_t *f, const tchain_t *b)
{
    char err[512];
    storage_t *s = storage_open(&f->cfg, err, sizeof err);
    if (!s)
        _exit(3);
    for (;;) {
        storage_head_t h;
        storage_head(s, &h);
        storage_batch_result_t r;
        if (h.height == 10) {
            if (reorg_to(s, b, 5, 13, &r, err, sizeof err) != 0 || r.failed)
                _exit(4);
        } else if (storage_rollback(s, 5, err, sizeof err) != 0 ||
                   storage_execute_batch(s, &f->chain->blocks[5], 5, NULL, &r, err, sizeof err) != 0 ||
                   r.failed) {
            _exit(5);
        }
    }
}

/* After a kill: our head 10, the branch's 13, or the fork point 5 between
 * the rollback and the batch; never anything else, always consistent. */
static uint64_t check_after_kill(fx_t *f, const tchain_t *b, unsigned seed)
{
    storage_t *s = fx_open(f);
    storage_head_t h;
    storage_head(s, &h);
    cr_assert(h.height == 5 || h.height == 10 || h.height == 13, "head %llu (seed %u)",
              (unsigned long long) h.height, seed);
    expect_head(s, h.height == 13 ? b : f->chain, h.height);
    if (h.height == 10)
        expect_state_equals_chain(s, f->chain);
    if (h.height == 13)
        expect_state_equals_chain(s, b);
    expect_consistent(s);
    storage_destroy(&s);
    return h.height;
}

Test(reorg, crash_at_any_instant_leaves_old_or_new_head, .timeout = 120)
{
    fx_t f;
    fx_init(&f, 16);
    f.cfg.wal_sync = true;
    f.cfg.checkpoint_interval = 4;
    f.cfg.max_reorg_depth = 8;
    cr_assert_eq(tchain_extend(f.chain, 10, 20), 0);
    tchain_t *b = branch_of(&f, 5, 20, 8, 20);
    storage_t *s = fx_open(&f);
    storage_batch_result_t r;
    run_batch(s, f.chain, 1, 10, &r);
    storage_destroy(&s);
    unsigned seed = (unsigned) time(NULL) ^ (unsigned) getpid();
    srand(seed);
    int kills = 0, on_branch = 0;
    for (int round = 0; round < 40 && kills < 12; round++) {
        pid_t pid = fork();
        cr_assert(pid >= 0);
        if (pid == 0)
            flip_forever(&f, b);
        usleep((useconds_t) (5000 + rand() % 45000));
        kill(pid, SIGKILL);
        int status;
        waitpid(pid, &status, 0);
        cr_assert(WIFSIGNALED(status), "child exited %d (seed %u)", WEXITSTATUS(status), seed);
        kills++;
        on_branch += check_after_kill(&f, b, seed) == 13;
    }
    cr_log_info("reorg crash test: %d kills, %d on the branch, seed %u", kills, on_branch, seed);
    tchain_destroy(&b);
    fx_fini(&f);
}
