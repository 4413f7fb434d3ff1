/*  test_storage.c: the store module (actors/storage/storage.h) and its
 *  mailbox protocol (service.h) on temporary directories, with chains built
 *  by testchain.c. No sockets.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <sys/stat.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fixture.h"
#include "service.h"
#include "storage.h"
#include "testchain.h"
#include "util.h"

TestSuite(storage, .fini = fx_remove_test_dir);

/* ------------------------------------------------------------ genesis */

Test(storage, genesis_init_and_reopen)
{
    fx_t f;
    fx_init(&f, 16);
    storage_t *s = fx_open(&f);
    expect_head(s, f.chain, 0);
    expect_state_equals_chain(s, f.chain);
    expect_consistent(s);
    storage_destroy(&s);
    cr_assert_null(s);
    s = fx_open(&f);
    expect_head(s, f.chain, 0);
    expect_consistent(s);
    storage_destroy(&s);
    /* A non-empty database runs on its stored genesis without genesis_file. */
    f.cfg.genesis_file[0] = '\0';
    s = fx_open(&f);
    expect_head(s, f.chain, 0);
    cr_assert_arr_eq(storage_genesis(s)->hash, f.chain->genesis.hash, ALYS_HASH_LEN);
    storage_destroy(&s);
    fx_fini(&f);
}

Test(storage, empty_db_without_genesis_refused)
{
    fx_t f;
    fx_init(&f, 4);
    f.cfg.genesis_file[0] = '\0';
    char err[512] = "";
    storage_t *s = storage_open(&f.cfg, err, sizeof err);
    cr_assert_null(s);
    cr_assert(strstr(err, "no genesis is configured"), "err: %s", err);
    fx_fini(&f);
}

Test(storage, wrong_genesis_refused)
{
    fx_t f;
    fx_init(&f, 4);
    storage_t *s = fx_open(&f);
    storage_destroy(&s);
    tchain_t *other = tchain_new(4, 42, "another-chain");
    char path[160];
    snprintf(path, sizeof path, "%s/genesis2", f.dir);
    cr_assert_eq(tchain_save_genesis(other, path), 0);
    snprintf(f.cfg.genesis_file, sizeof f.cfg.genesis_file, "%s", path);
    char err[512] = "", a[65], b[65];
    s = storage_open(&f.cfg, err, sizeof err);
    cr_assert_null(s);
    alys_hex(f.chain->genesis.hash, ALYS_HASH_LEN, a);
    alys_hex(other->genesis.hash, ALYS_HASH_LEN, b);
    cr_assert(strstr(err, "belongs to genesis") && strstr(err, a) && strstr(err, b), "err: %s", err);
    tchain_destroy(&other);
    fx_fini(&f);
}

/* ------------------------------------------------------------ batches */

Test(storage, commit_valid_batch)
{
    fx_t f;
    fx_init(&f, 32);
    cr_assert_eq(tchain_extend(f.chain, 30, 10), 0);
    storage_t *s = fx_open(&f);
    storage_batch_result_t r;
    run_batch(s, f.chain, 1, 30, &r);
    cr_assert_not(r.failed, "failed at %llu: %s", (unsigned long long) r.failed_height,
                  r.verdict.detail);
    cr_assert_eq(r.committed, 30);
    cr_assert_eq(r.already_committed, 0);
    cr_assert_eq(r.head.height, 30);
    expect_head(s, f.chain, 30);
    expect_state_equals_chain(s, f.chain);
    expect_consistent(s);
    uint64_t at;
    cr_assert_eq(storage_find_block(s, f.chain->hashes[16], &at), 1);
    cr_assert_eq(at, 17);
    storage_destroy(&s);
    s = fx_open(&f);
    expect_head(s, f.chain, 30);
    expect_state_equals_chain(s, f.chain);
    storage_destroy(&s);
    fx_fini(&f);
}

/* Bytes in the write-ahead log files of the database under data_dir. */
static long long wal_bytes(const char *data_dir)
{
    char path[600];
    snprintf(path, sizeof path, "%s/db", data_dir);
    DIR *d = opendir(path);
    cr_assert_not_null(d, "opendir %s", path);
    long long total = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t n = strlen(e->d_name);
        if (n < 4 || strcmp(e->d_name + n - 4, ".log") != 0)
            continue;
        char f[900];
        snprintf(f, sizeof f, "%s/%s", path, e->d_name);
        struct stat st;
        if (stat(f, &st) == 0)
            total += (long long) st.st_size;
    }
    closedir(d);
    return total;
}

/* A clean close writes the memtables out, so the next open has no log to
 * replay (a long replay outlasts the supervisor's start timeout). */
Test(storage, clean_close_leaves_no_log_to_replay)
{
    fx_t f;
    fx_init(&f, 64);
    f.cfg.wal_sync = false;
    cr_assert_eq(tchain_extend(f.chain, 60, 10), 0);
    storage_t *s = fx_open(&f);
    storage_batch_result_t r;
    run_batch(s, f.chain, 1, 60, &r);
    cr_assert_eq(r.committed, 60);
    cr_assert_gt(wal_bytes(f.cfg.data_dir), 0, "the batch went through the log");
    storage_destroy(&s);
    cr_assert_eq(wal_bytes(f.cfg.data_dir), 0, "a clean close leaves log bytes to replay");
    s = fx_open(&f);
    expect_head(s, f.chain, 60);
    expect_state_equals_chain(s, f.chain);
    storage_destroy(&s);
    fx_fini(&f);
}

static void expect_prefix_commit(tchain_fault_t kind, const char *reason, bool about_tx)
{
    fx_t f;
    fx_init(&f, 16);
    cr_assert_eq(tchain_extend(f.chain, 10, 6), 0);
    storage_t *s = fx_open(&f);
    ProtobufCBinaryData bad;
    cr_assert_eq(tchain_corrupt(f.chain, 6, kind, &bad), 0);
    ProtobufCBinaryData batch[10];
    memcpy(batch, f.chain->blocks, sizeof batch);
    batch[5] = bad;
    storage_batch_result_t r;
    char err[256];
    cr_assert_eq(storage_execute_batch(s, batch, 10, NULL, &r, err, sizeof err), STORAGE_OK);
    cr_assert(r.failed);
    cr_assert_eq(r.committed, 5);
    cr_assert_eq(r.failed_height, 6);
    cr_assert_str_eq(alys_block_error_name(r.verdict.code), reason, "detail: %s", r.verdict.detail);
    cr_assert_eq(r.verdict.tx_index, about_tx ? 3 : -1, "tx_index %d", r.verdict.tx_index);
    alys_hash_t h;
    alys_block_t blk;
    alys_verdict_t v;
    cr_assert_eq(alys_block_decode(bad.data, bad.len, &blk, &v), 0);
    alys_header_hash(&blk.header, h);
    alys_block_clear(&blk);
    cr_assert_arr_eq(r.failed_hash, h, ALYS_HASH_LEN);
    expect_head(s, f.chain, 5);
    expect_consistent(s);
    cr_assert_eq(storage_get_block(s, 6, &blk), 0, "nothing after the failing block");
    /* The valid blocks then go in on top of the prefix. */
    run_batch(s, f.chain, 6, 10, &r);
    cr_assert_not(r.failed, "%s", r.verdict.detail);
    expect_head(s, f.chain, 10);
    expect_state_equals_chain(s, f.chain);
    free(bad.data);
    storage_destroy(&s);
    fx_fini(&f);
}

Test(storage, invalid_state_root_commits_prefix)
{
    expect_prefix_commit(TBAD_STATE_ROOT, "state_root_mismatch", false);
}

/* A body that is not the one its header commits to is refused by the tx
 * root rule (common/chain's alys_block_check_tx_root) before execution. */
Test(storage, body_not_matching_header_commits_prefix)
{
    expect_prefix_commit(TBAD_TX_ROOT, "tx_root_mismatch", false);
}

Test(storage, bad_nonce_commits_prefix)
{
    expect_prefix_commit(TBAD_NONCE, "bad_nonce", true);
}

Test(storage, insufficient_balance_commits_prefix)
{
    expect_prefix_commit(TBAD_BALANCE, "insufficient_balance", true);
}

Test(storage, malformed_block_commits_prefix)
{
    fx_t f;
    fx_init(&f, 8);
    cr_assert_eq(tchain_extend(f.chain, 4, 2), 0);
    storage_t *s = fx_open(&f);
    uint8_t junk[] = {0x0a, 0xff, 0xff, 0x01};
    ProtobufCBinaryData batch[4] = {f.chain->blocks[0],
                                    f.chain->blocks[1],
                                    {sizeof junk, junk},
                                    f.chain->blocks[3]};
    storage_batch_result_t r;
    char err[256];
    cr_assert_eq(storage_execute_batch(s, batch, 4, NULL, &r, err, sizeof err), STORAGE_OK);
    cr_assert(r.failed);
    cr_assert_eq(r.committed, 2);
    cr_assert_eq(r.failed_height, 3);
    cr_assert_str_eq(alys_block_error_name(r.verdict.code), "malformed");
    expect_head(s, f.chain, 2);
    storage_destroy(&s);
    fx_fini(&f);
}

/* Truncated and bit-flipped blocks: refused with a reason or (a flip in a
 * signature, which the store does not check) committed; never a crash,
 * never an inconsistent database. */
Test(storage, damaged_blocks_never_crash)
{
    fx_t f;
    fx_init(&f, 8);
    cr_assert_eq(tchain_extend(f.chain, 1, 6), 0);
    storage_t *s = fx_open(&f);
    const ProtobufCBinaryData *good = &f.chain->blocks[0];
    uint8_t *buf = malloc(good->len);
    srand(1234);
    int refused = 0;
    for (int i = 0; i < 300; i++) {
        memcpy(buf, good->data, good->len);
        ProtobufCBinaryData d = {good->len, buf};
        if (i % 3 == 0)
            d.len = (size_t) rand() % good->len; /* truncated */
        else
            buf[(size_t) rand() % good->len] ^= (uint8_t) (1u << (rand() % 8));
        storage_batch_result_t r;
        char err[256];
        cr_assert_eq(storage_execute_batch(s, &d, 1, NULL, &r, err, sizeof err), STORAGE_OK, "%s",
                     err);
        if (r.failed) {
            refused++;
            cr_assert_eq(r.committed, 0);
            cr_assert_neq(r.verdict.code, ALYS_BLOCK_OK);
            cr_assert_neq(r.verdict.code, ALYS_BLOCK_INTERNAL_ERROR, "%s", r.verdict.detail);
        } else if (r.committed == 1) {
            cr_assert_eq(storage_rollback(s, 0, err, sizeof err), STORAGE_OK, "%s", err);
        }
    }
    cr_assert_gt(refused, 150);
    expect_head(s, f.chain, 0);
    expect_consistent(s);
    free(buf);
    storage_destroy(&s);
    fx_fini(&f);
}

Test(storage, idempotent_replay)
{
    fx_t f;
    fx_init(&f, 16);
    cr_assert_eq(tchain_extend(f.chain, 15, 4), 0);
    storage_t *s = fx_open(&f);
    storage_batch_result_t r;
    run_batch(s, f.chain, 1, 10, &r);
    cr_assert_eq(r.committed, 10);
    /* The same batch again (a retry after a restart): acknowledged. */
    run_batch(s, f.chain, 1, 10, &r);
    cr_assert_not(r.failed, "%s", r.verdict.detail);
    cr_assert_eq(r.committed, 10);
    cr_assert_eq(r.already_committed, 10);
    expect_head(s, f.chain, 10);
    /* Overlapping: 5..10 known, 11..15 new. */
    run_batch(s, f.chain, 5, 15, &r);
    cr_assert_not(r.failed, "%s", r.verdict.detail);
    cr_assert_eq(r.committed, 11);
    cr_assert_eq(r.already_committed, 6);
    expect_head(s, f.chain, 15);
    expect_state_equals_chain(s, f.chain);
    /* A different block at a committed height is a fork, not a duplicate. */
    ProtobufCBinaryData other;
    cr_assert_eq(tchain_corrupt(f.chain, 8, TBAD_STATE_ROOT, &other), 0);
    char err[256];
    cr_assert_eq(storage_execute_batch(s, &other, 1, NULL, &r, err, sizeof err), STORAGE_OK);
    cr_assert(r.failed);
    cr_assert_eq(r.committed, 0);
    cr_assert_eq(r.failed_height, 8);
    cr_assert_str_eq(alys_block_error_name(r.verdict.code), "parent_mismatch");
    cr_assert(strstr(r.verdict.detail, "conflicts"), "%s", r.verdict.detail);
    free(other.data);
    expect_head(s, f.chain, 15);
    storage_destroy(&s);
    fx_fini(&f);
}

Test(storage, height_gap)
{
    fx_t f;
    fx_init(&f, 8);
    cr_assert_eq(tchain_extend(f.chain, 6, 2), 0);
    storage_t *s = fx_open(&f);
    storage_batch_result_t r;
    run_batch(s, f.chain, 3, 5, &r);
    cr_assert(r.failed);
    cr_assert_eq(r.committed, 0);
    /* Named by its place in the chain (the height after the head), as
     * BlockProcessor names it; the height it claims is in the detail. */
    cr_assert_eq(r.failed_height, 1);
    cr_assert(strstr(r.verdict.detail, "height 3") != NULL, "%s", r.verdict.detail);
    cr_assert_str_eq(alys_block_error_name(r.verdict.code), "height_gap");
    expect_head(s, f.chain, 0);
    /* A hole inside a batch: 1, 2, 4. */
    ProtobufCBinaryData batch[3] = {f.chain->blocks[0], f.chain->blocks[1], f.chain->blocks[3]};
    char err[256];
    cr_assert_eq(storage_execute_batch(s, batch, 3, NULL, &r, err, sizeof err), STORAGE_OK);
    cr_assert(r.failed);
    cr_assert_eq(r.committed, 2);
    cr_assert_eq(r.failed_height, 3);
    cr_assert(strstr(r.verdict.detail, "height 4") != NULL, "%s", r.verdict.detail);
    cr_assert_str_eq(alys_block_error_name(r.verdict.code), "height_gap");
    expect_head(s, f.chain, 2);
    /* Empty batch: nothing to do, not a failure. */
    cr_assert_eq(storage_execute_batch(s, NULL, 0, NULL, &r, err, sizeof err), STORAGE_OK);
    cr_assert_not(r.failed);
    cr_assert_eq(r.committed, 0);
    /* Over the batch bound: refused before anything is looked at. */
    cr_assert_eq(storage_execute_batch(s, f.chain->blocks, STORAGE_MAX_BATCH_BLOCKS + 1, NULL, &r,
                                       err, sizeof err),
                 STORAGE_EINVAL);
    storage_destroy(&s);
    fx_fini(&f);
}

/* ------------------------------------------------------------ checkpoints */

Test(storage, checkpoints_every_interval_and_pruned)
{
    fx_t f;
    fx_init(&f, 8);
    f.cfg.checkpoint_interval = 5;
    f.cfg.max_checkpoints = 3;
    cr_assert_eq(tchain_extend(f.chain, 23, 2), 0);
    storage_t *s = fx_open(&f);
    storage_batch_result_t r;
    run_batch(s, f.chain, 1, 7, &r);
    cr_assert_eq(r.head.last_checkpoint, 5);
    Alys__Progress__SyncProgress p = ALYS__PROGRESS__SYNC_PROGRESS__INIT;
    p.target_height = 999;
    char err[256];
    cr_assert_eq(storage_execute_batch(s, &f.chain->blocks[7], 9, &p, &r, err, sizeof err),
                 STORAGE_OK);
    cr_assert_eq(r.head.last_checkpoint, 15);
    run_batch(s, f.chain, 17, 23, &r);
    cr_assert_eq(r.head.last_checkpoint, 20);
    Alys__Chain__BlockCheckpoint **cps;
    size_t n;
    cr_assert_eq(storage_list_checkpoints(s, &cps, &n, err, sizeof err), STORAGE_OK);
    cr_assert_eq(n, 3);
    uint64_t want[] = {10, 15, 20};
    for (size_t i = 0; i < n; i++) {
        uint64_t h = want[i];
        cr_assert_eq(cps[i]->height, h);
        cr_assert(cps[i]->verified);
        cr_assert_arr_eq(cps[i]->hash.data, f.chain->hashes[h - 1], ALYS_HASH_LEN);
        cr_assert_arr_eq(cps[i]->parent_hash.data, f.chain->hashes[h - 2], ALYS_HASH_LEN);
        cr_assert_arr_eq(cps[i]->state_root.data, f.chain->roots[h - 1], ALYS_HASH_LEN);
        cr_assert_not_null(cps[i]->sync_progress);
        cr_assert(cps[i]->timestamp > 0);
    }
    cr_assert_eq(cps[0]->sync_progress->target_height, 999, "batch progress copied");
    cr_assert_eq(cps[2]->sync_progress->current_height, 20, "progress filled by the store");
    storage_checkpoints_free(cps, n);
    /* On demand, at the head (23). */
    Alys__Chain__BlockCheckpoint *cp;
    cr_assert_eq(storage_create_checkpoint(s, &p, &cp, err, sizeof err), STORAGE_OK, "%s", err);
    cr_assert_eq(cp->height, 23);
    cr_assert_arr_eq(cp->state_root.data, f.chain->roots[22], ALYS_HASH_LEN);
    alys__chain__block_checkpoint__free_unpacked(cp, NULL);
    storage_destroy(&s);
    s = fx_open(&f); /* the list survives a restart */
    cr_assert_eq(storage_list_checkpoints(s, &cps, &n, err, sizeof err), STORAGE_OK);
    cr_assert_eq(n, 3);
    cr_assert_eq(cps[0]->height, 15);
    cr_assert_eq(cps[2]->height, 23);
    storage_checkpoints_free(cps, n);
    storage_head_t head;
    storage_head(s, &head);
    cr_assert_eq(head.last_checkpoint, 23);
    storage_stats_t st;
    storage_stats(s, &st);
    cr_assert_eq(st.checkpoints, 3);
    storage_destroy(&s);
    fx_fini(&f);
}

Test(storage, checkpoint_refused_at_genesis)
{
    fx_t f;
    fx_init(&f, 4);
    storage_t *s = fx_open(&f);
    char err[256] = "";
    cr_assert_eq(storage_create_checkpoint(s, NULL, NULL, err, sizeof err), STORAGE_EINVAL);
    cr_assert(strstr(err, "height 0"), "%s", err);
    storage_destroy(&s);
    fx_fini(&f);
}

/* ------------------------------------------------------------ rollback */

typedef struct {
    uint8_t pk[ALYS_PUBKEY_LEN];
    alys_account_t a;
} snap_t;

typedef struct {
    snap_t *v;
    size_t n, cap;
} snaps_t;

static int snap_one(void *ctx, const uint8_t pk[ALYS_PUBKEY_LEN], const alys_account_t *a)
{
    snaps_t *s = ctx;
    if (s->n == s->cap) {
        s->cap = s->cap ? 2 * s->cap : 64;
        s->v = realloc(s->v, s->cap * sizeof *s->v);
    }
    memcpy(s->v[s->n].pk, pk, ALYS_PUBKEY_LEN);
    s->v[s->n++].a = *a;
    return 0;
}

Test(storage, rollback_restores_state_exactly)
{
    fx_t f;
    fx_init(&f, 16);
    f.cfg.max_reorg_depth = 8;
    f.cfg.checkpoint_interval = 5;
    cr_assert_eq(tchain_extend(f.chain, 12, 8), 0);
    storage_t *s = fx_open(&f);
    storage_batch_result_t r;
    run_batch(s, f.chain, 1, 12, &r);
    snaps_t at12 = {0};
    alys_memstate_foreach(f.chain->state, snap_one, &at12); /* state at 12 */
    cr_assert_eq(tchain_extend(f.chain, 8, 8), 0);
    run_batch(s, f.chain, 13, 16, &r);
    run_batch(s, f.chain, 17, 20, &r);
    expect_head(s, f.chain, 20);
    cr_assert_eq(r.head.last_checkpoint, 20);
    storage_stats_t st;
    storage_stats(s, &st);
    cr_assert_eq(st.undo_records, 8, "undo kept for max_reorg_depth blocks");
    cr_assert_eq(st.undo_lowest, 13);
    size_t accounts_at_20 = st.accounts;

    char err[256] = "";
    cr_assert_eq(storage_rollback(s, 11, err, sizeof err), STORAGE_EINVAL);
    cr_assert(strstr(err, "max_reorg_depth"), "%s", err);
    cr_assert_eq(storage_rollback(s, 21, err, sizeof err), STORAGE_EINVAL);
    expect_head(s, f.chain, 20);

    cr_assert_eq(storage_rollback(s, 12, err, sizeof err), STORAGE_OK, "%s", err);
    expect_head(s, f.chain, 12);
    expect_consistent(s);
    for (size_t i = 0; i < at12.n; i++) {
        alys_account_t a;
        cr_assert_eq(storage_get_account(s, at12.v[i].pk, &a), 1);
        cr_assert_eq(a.balance, at12.v[i].a.balance);
        cr_assert_eq(a.nonce, at12.v[i].a.nonce);
    }
    storage_stats(s, &st);
    cr_assert_eq(st.accounts, at12.n, "accounts created after 12 are gone (%zu at 20)",
                 accounts_at_20);
    cr_assert_eq(st.blocks, 12);
    storage_head_t head;
    storage_head(s, &head);
    cr_assert_eq(head.last_checkpoint, 10, "checkpoints above the target are dropped");
    uint64_t at;
    cr_assert_eq(storage_find_block(s, f.chain->hashes[14], &at), 0);

    /* The chain goes on again from 12, and a restart sees the rolled-back db. */
    storage_destroy(&s);
    s = fx_open(&f);
    expect_head(s, f.chain, 12);
    run_batch(s, f.chain, 13, 20, &r);
    cr_assert_not(r.failed, "%s", r.verdict.detail);
    expect_head(s, f.chain, 20);
    expect_state_equals_chain(s, f.chain);
    expect_consistent(s);
    free(at12.v);
    storage_destroy(&s);
    fx_fini(&f);
}

/* The open prunes undo records a smaller max_reorg_depth no longer keeps,
 * and leaves them alone (no write) when there is nothing to prune. */
Test(storage, open_prunes_undo_beyond_max_reorg_depth)
{
    fx_t f;
    fx_init(&f, 16);
    f.cfg.max_reorg_depth = 8;
    cr_assert_eq(tchain_extend(f.chain, 20, 8), 0);
    storage_t *s = fx_open(&f);
    storage_batch_result_t r;
    run_batch(s, f.chain, 1, 20, &r);
    storage_stats_t st;
    storage_stats(s, &st);
    cr_assert_eq(st.undo_records, 8);
    cr_assert_eq(st.undo_lowest, 13);
    storage_destroy(&s);

    f.cfg.max_reorg_depth = 4;
    s = fx_open(&f);
    storage_stats(s, &st);
    cr_assert_eq(st.undo_records, 4, "reopened with max_reorg_depth 4: four undo records left");
    cr_assert_eq(st.undo_lowest, 17);
    expect_consistent(s);
    storage_destroy(&s);

    s = fx_open(&f); /* nothing stale: the open writes nothing */
    cr_assert_eq(wal_bytes(f.cfg.data_dir), 0, "an open with nothing to prune wrote to the log");
    storage_stats(s, &st);
    cr_assert_eq(st.undo_records, 4);
    cr_assert_eq(st.undo_lowest, 17);
    expect_head(s, f.chain, 20);
    expect_consistent(s);
    storage_destroy(&s);
    fx_fini(&f);
}

Test(storage, rollback_to_genesis)
{
    fx_t f;
    fx_init(&f, 8);
    cr_assert_eq(tchain_extend(f.chain, 5, 4), 0);
    storage_t *s = fx_open(&f);
    storage_batch_result_t r;
    run_batch(s, f.chain, 1, 5, &r);
    char err[256] = "";
    cr_assert_eq(storage_rollback(s, 0, err, sizeof err), STORAGE_OK, "%s", err);
    expect_head(s, f.chain, 0);
    expect_consistent(s);
    storage_stats_t st;
    storage_stats(s, &st);
    cr_assert_eq(st.accounts, f.chain->genesis.balance_count);
    cr_assert_eq(st.undo_records, 0);
    storage_destroy(&s);
    fx_fini(&f);
}

Test(storage, rollback_refused_without_undo)
{
    fx_t f;
    fx_init(&f, 8);
    f.cfg.max_reorg_depth = 4;
    cr_assert_eq(tchain_extend(f.chain, 10, 2), 0);
    storage_t *s = fx_open(&f);
    storage_batch_result_t r;
    run_batch(s, f.chain, 1, 10, &r);
    storage_destroy(&s);
    /* A larger depth after a restart: undo exists only for the last 4. */
    f.cfg.max_reorg_depth = 8;
    s = fx_open(&f);
    char err[256] = "";
    cr_assert_eq(storage_rollback(s, 4, err, sizeof err), STORAGE_EINVAL);
    cr_assert(strstr(err, "no undo data for block 6"), "%s", err);
    expect_head(s, f.chain, 10);
    expect_consistent(s);
    cr_assert_eq(storage_rollback(s, 6, err, sizeof err), STORAGE_OK, "%s", err);
    expect_head(s, f.chain, 6);
    storage_destroy(&s);
    fx_fini(&f);
}

/* ------------------------------------------------------------ peers */

Test(storage, peer_bans_persist)
{
    fx_t f;
    fx_init(&f, 4);
    storage_t *s = fx_open(&f);
    Alys__Storage__PeerBan b[3];
    Alys__Storage__PeerBan *list[3];
    const char *ids[] = {"peer-a", "peer-b", "peer-c"};
    for (int i = 0; i < 3; i++) {
        b[i] = (Alys__Storage__PeerBan) ALYS__STORAGE__PEER_BAN__INIT;
        b[i].peer_id = (char *) ids[i];
        b[i].endpoint = "tcp://10.0.0.1:30303";
        b[i].ban_until = 1700000000000ULL + (uint64_t) i;
        b[i].reason = "invalid block";
        list[i] = &b[i];
    }
    char err[256];
    cr_assert_eq(storage_put_peer_bans(s, list, 3, err, sizeof err), STORAGE_OK, "%s", err);
    storage_destroy(&s);
    s = fx_open(&f);
    Alys__Storage__PeerBan **got;
    size_t n;
    cr_assert_eq(storage_get_peer_bans(s, &got, &n, err, sizeof err), STORAGE_OK);
    cr_assert_eq(n, 3);
    for (size_t i = 0; i < n; i++) {
        cr_assert_str_eq(got[i]->peer_id, ids[i]);
        cr_assert_eq(got[i]->ban_until, 1700000000000ULL + i);
        cr_assert_str_eq(got[i]->reason, "invalid block");
    }
    storage_peer_bans_free(got, n);
    /* Replaced whole. */
    cr_assert_eq(storage_put_peer_bans(s, &list[1], 1, err, sizeof err), STORAGE_OK);
    cr_assert_eq(storage_get_peer_bans(s, &got, &n, err, sizeof err), STORAGE_OK);
    cr_assert_eq(n, 1);
    cr_assert_str_eq(got[0]->peer_id, "peer-b");
    storage_peer_bans_free(got, n);
    b[0].peer_id = "";
    cr_assert_eq(storage_put_peer_bans(s, list, 1, err, sizeof err), STORAGE_EINVAL);
    storage_destroy(&s);
    fx_fini(&f);
}

Test(storage, addr_book_persists_bounded)
{
    fx_t f;
    fx_init(&f, 4);
    storage_t *s = fx_open(&f);
    char err[256];
    Alys__Storage__AddrBook *got = NULL;
    cr_assert_eq(storage_get_addr_book(s, &got, err, sizeof err), STORAGE_OK, "%s", err);
    cr_assert_eq(got->n_entries, 0, "nothing stored: an empty book");
    storage_addr_book_free(&got);
    cr_assert_null(got);

    Alys__Storage__BookEntry e[2], *list[2];
    const char *eps[] = {"tcp://10.0.0.1:30303", "tcp://10.0.0.2:30303"};
    for (int i = 0; i < 2; i++) {
        e[i] = (Alys__Storage__BookEntry) ALYS__STORAGE__BOOK_ENTRY__INIT;
        e[i].endpoint = (char *) eps[i];
        e[i].source = "10.0";
        e[i].tried = i == 0;
        e[i].last_success = 1700000000000ULL + (uint64_t) i;
        e[i].failures = (uint32_t) i;
        list[i] = &e[i];
    }
    Alys__Storage__PutAddrBook put = ALYS__STORAGE__PUT_ADDR_BOOK__INIT;
    put.n_entries = 2;
    put.entries = list;
    cr_assert_eq(storage_put_addr_book(s, &put, err, sizeof err), STORAGE_OK, "%s", err);
    storage_destroy(&s);
    s = fx_open(&f);
    cr_assert_eq(storage_get_addr_book(s, &got, err, sizeof err), STORAGE_OK, "%s", err);
    cr_assert_eq(got->n_entries, 2);
    cr_assert_str_eq(got->entries[0]->endpoint, eps[0]);
    cr_assert(got->entries[0]->tried);
    cr_assert_eq(got->entries[1]->failures, 1);
    storage_addr_book_free(&got);
    /* Over a bound: refused, nothing replaced. */
    e[1].endpoint = "";
    cr_assert_eq(storage_put_addr_book(s, &put, err, sizeof err), STORAGE_EINVAL);
    put.n_entries = STORAGE_MAX_BOOK_ENTRIES + 1;
    cr_assert_eq(storage_put_addr_book(s, &put, err, sizeof err), STORAGE_EINVAL);
    cr_assert_eq(storage_get_addr_book(s, &got, err, sizeof err), STORAGE_OK, "%s", err);
    cr_assert_eq(got->n_entries, 2);
    storage_addr_book_free(&got);
    storage_destroy(&s);
    fx_fini(&f);
}

/* ------------------------------------------------------------ reads */

Test(storage, get_blocks_bounds)
{
    fx_t f;
    fx_init(&f, 8);
    cr_assert_eq(tchain_extend(f.chain, 20, 3), 0);
    storage_t *s = fx_open(&f);
    storage_batch_result_t r;
    run_batch(s, f.chain, 1, 20, &r);
    storage_blobs_t b;
    uint64_t first;
    char err[256];
    cr_assert_eq(storage_get_blocks(s, 0, 5, false, 1 << 20, &first, &b, err, sizeof err), STORAGE_OK);
    cr_assert_eq(first, 1);
    cr_assert_eq(b.count, 5);
    for (size_t i = 0; i < b.count; i++) {
        cr_assert_eq(b.items[i].len, f.chain->blocks[i].len);
        cr_assert_arr_eq(b.items[i].data, f.chain->blocks[i].data, b.items[i].len,
                         "bytes as imported");
    }
    storage_blobs_clear(&b);
    cr_assert_eq(storage_get_blocks(s, 18, 100000, true, 1 << 20, &first, &b, err, sizeof err),
                 STORAGE_OK);
    cr_assert_eq(b.count, 3, "stops at the head");
    alys_header_t h;
    alys_verdict_t v;
    cr_assert_eq(alys_header_decode(b.items[0].data, b.items[0].len, &h, &v), 0);
    cr_assert_eq(h.height, 18);
    storage_blobs_clear(&b);
    size_t one = f.chain->blocks[0].len + 6;
    cr_assert_eq(storage_get_blocks(s, 1, 20, false, 2 * one + 10, &first, &b, err, sizeof err),
                 STORAGE_OK);
    cr_assert(b.count >= 1 && b.count <= 3, "byte budget: %zu", b.count);
    cr_assert(b.bytes + 6 * b.count <= 2 * one + 10);
    storage_blobs_clear(&b);
    cr_assert_eq(storage_get_blocks(s, 21, 5, false, 1 << 20, &first, &b, err, sizeof err),
                 STORAGE_OK);
    cr_assert_eq(b.count, 0);
    storage_blobs_clear(&b);
    storage_destroy(&s);
    fx_fini(&f);
}

/* ------------------------------------------------------------ service */

Test(storage, service_requests_and_malformed_input)
{
    fx_t f;
    fx_init(&f, 8);
    cr_assert_eq(tchain_extend(f.chain, 4, 2), 0);
    storage_t *s = fx_open(&f);
    storage_reply_t rep;

    alys_env_t env = ALYS__BUS__ENVELOPE__INIT; /* not a storage body */
    storage_serve(s, &env, &rep);
    expect_error(&rep, ALYS_ERR_BAD_REQUEST, "storage serves");
    storage_reply_clear(&rep);

    Alys__Storage__StorageMsg m = ALYS__STORAGE__STORAGE_MSG__INIT;
    serve(s, &m, &rep); /* oneof not set */
    expect_error(&rep, ALYS_ERR_BAD_REQUEST, "does not serve");
    storage_reply_clear(&rep);

    Alys__Storage__BatchResult br = ALYS__STORAGE__BATCH_RESULT__INIT;
    m.msg_case = ALYS__STORAGE__STORAGE_MSG__MSG_BATCH_RESULT; /* a reply as request */
    m.batch_result = &br;
    serve(s, &m, &rep);
    expect_error(&rep, ALYS_ERR_BAD_REQUEST, "batch_result");
    storage_reply_clear(&rep);

    Alys__Storage__GetAccount ga = ALYS__STORAGE__GET_ACCOUNT__INIT;
    uint8_t short_key[3] = {1, 2, 3};
    ga.pubkey = (ProtobufCBinaryData){3, short_key};
    m.msg_case = ALYS__STORAGE__STORAGE_MSG__MSG_GET_ACCOUNT;
    m.get_account = &ga;
    serve(s, &m, &rep);
    expect_error(&rep, ALYS_ERR_BAD_REQUEST, "pubkey of 3 bytes");
    storage_reply_clear(&rep);

    ga.pubkey = (ProtobufCBinaryData){ALYS_PUBKEY_LEN, f.chain->acc_pub[0]};
    serve(s, &m, &rep);
    cr_assert_eq(rep.env.body_case, ALYS__BUS__ENVELOPE__BODY_STORAGE);
    cr_assert(rep.env.storage->account_state->found);
    cr_assert_eq(rep.env.storage->account_state->balance, f.chain->genesis.balances[0].balance);
    storage_reply_clear(&rep);

    /* ExecuteBatch with junk and then valid blocks. */
    uint8_t junk[64];
    memset(junk, 0xff, sizeof junk);
    ProtobufCBinaryData blocks[2] = {{sizeof junk, junk}, f.chain->blocks[0]};
    Alys__Storage__ExecuteBatch eb = ALYS__STORAGE__EXECUTE_BATCH__INIT;
    eb.batch_id = 99;
    eb.n_blocks = 2;
    eb.blocks = blocks;
    m.msg_case = ALYS__STORAGE__STORAGE_MSG__MSG_EXECUTE_BATCH;
    m.execute_batch = &eb;
    serve(s, &m, &rep);
    cr_assert_eq(rep.env.body_case, ALYS__BUS__ENVELOPE__BODY_STORAGE);
    Alys__Storage__BatchResult *res = rep.env.storage->batch_result;
    cr_assert_eq(res->batch_id, 99);
    cr_assert(res->failed);
    cr_assert_eq(res->failed_height, 1);
    cr_assert_str_eq(res->reason, "malformed");
    cr_assert_eq(res->failed_hash.len, 0);
    cr_assert_not(rep.head_changed);
    storage_reply_clear(&rep);

    eb.blocks = f.chain->blocks;
    eb.n_blocks = 4;
    serve(s, &m, &rep);
    res = rep.env.storage->batch_result;
    cr_assert_not(res->failed, "%s", res->detail);
    cr_assert_eq(res->committed, 4);
    cr_assert_eq(res->head_height, 4);
    cr_assert_eq(res->tx_index, -1);
    cr_assert_arr_eq(res->state_root.data, f.chain->roots[3], ALYS_HASH_LEN);
    cr_assert(rep.head_changed);
    /* The reply encodes (the runtime would send it). */
    zframe_t *frame = alys_env_encode(&rep.env);
    cr_assert_not_null(frame);
    zframe_destroy(&frame);
    storage_reply_clear(&rep);

    Alys__Storage__Rollback rb = ALYS__STORAGE__ROLLBACK__INIT;
    rb.height = 100;
    m.msg_case = ALYS__STORAGE__STORAGE_MSG__MSG_ROLLBACK;
    m.rollback = &rb;
    serve(s, &m, &rep);
    expect_error(&rep, ALYS_ERR_INVALID, "above the head");
    storage_reply_clear(&rep);

    Alys__Storage__GetBlocks gb = ALYS__STORAGE__GET_BLOCKS__INIT;
    gb.start = 2;
    gb.count = 4000000000u;
    m.msg_case = ALYS__STORAGE__STORAGE_MSG__MSG_GET_BLOCKS;
    m.get_blocks = &gb;
    serve(s, &m, &rep);
    cr_assert_eq(rep.env.storage->blocks->n_blocks, 3);
    cr_assert_eq(rep.env.storage->blocks->start, 2);
    storage_reply_clear(&rep);

    Alys__Storage__GetHead gh = ALYS__STORAGE__GET_HEAD__INIT;
    m.msg_case = ALYS__STORAGE__STORAGE_MSG__MSG_GET_HEAD;
    m.get_head = &gh;
    serve(s, &m, &rep);
    cr_assert_eq(rep.env.storage->head->height, 4);
    cr_assert_arr_eq(rep.env.storage->head->genesis_hash.data, f.chain->genesis.hash, ALYS_HASH_LEN);
    storage_reply_clear(&rep);

    Alys__Storage__FindBlock fb = ALYS__STORAGE__FIND_BLOCK__INIT;
    fb.hash = (ProtobufCBinaryData){ALYS_HASH_LEN, f.chain->hashes[2]};
    m.msg_case = ALYS__STORAGE__STORAGE_MSG__MSG_FIND_BLOCK;
    m.find_block = &fb;
    serve(s, &m, &rep);
    cr_assert(rep.env.storage->block_ref->found);
    cr_assert_eq(rep.env.storage->block_ref->height, 3);
    storage_reply_clear(&rep);

    storage_destroy(&s);
    fx_fini(&f);
}

/* What main.c does with a reply is decided by storage_serve: a reply
 * envelope is not served and not answered; corr_id 0 is served but not
 * answered; anything else is answered. */
Test(storage, service_answers_requests_only)
{
    fx_t f;
    fx_init(&f, 8);
    cr_assert_eq(tchain_extend(f.chain, 3, 2), 0);
    storage_t *s = fx_open(&f);
    storage_reply_t rep;
    Alys__Storage__ExecuteBatch eb = ALYS__STORAGE__EXECUTE_BATCH__INIT;
    eb.blocks = f.chain->blocks;
    eb.n_blocks = 2;
    Alys__Storage__StorageMsg m = ALYS__STORAGE__STORAGE_MSG__INIT;
    m.msg_case = ALYS__STORAGE__STORAGE_MSG__MSG_EXECUTE_BATCH;
    m.execute_batch = &eb;
    alys_env_t env = ALYS__BUS__ENVELOPE__INIT;
    env.body_case = ALYS__BUS__ENVELOPE__BODY_STORAGE;
    env.storage = &m;

    env.corr_id = 5;
    env.reply = true; /* a stray reply: neither served nor answered */
    storage_serve(s, &env, &rep);
    cr_assert_not(rep.answer);
    cr_assert_not(rep.head_changed);
    cr_assert_eq(rep.env.body_case, ALYS__BUS__ENVELOPE__BODY__NOT_SET);
    storage_reply_clear(&rep);
    expect_head(s, f.chain, 0);

    env.reply = false;
    env.corr_id = 0; /* served, no reply wanted */
    storage_serve(s, &env, &rep);
    cr_assert_not(rep.answer);
    cr_assert(rep.head_changed);
    storage_reply_clear(&rep);
    expect_head(s, f.chain, 2);

    env.corr_id = 6; /* an error is answered too */
    m.msg_case = ALYS__STORAGE__STORAGE_MSG__MSG_BATCH_RESULT;
    storage_serve(s, &env, &rep);
    cr_assert(rep.answer);
    cr_assert_eq(rep.env.body_case, ALYS__BUS__ENVELOPE__BODY_ERROR);
    storage_reply_clear(&rep);
    storage_destroy(&s);
    fx_fini(&f);
}

static void expect_event(const storage_reply_t *rep, const char *kind, const tchain_t *c,
                         uint64_t height)
{
    cr_assert(rep->head_changed);
    cr_assert_str_eq(rep->head_event, kind);
    char hash[2 * ALYS_HASH_LEN + 1], root[2 * ALYS_HASH_LEN + 1], want[STORAGE_EVENT_TEXT];
    alys_hex(c->hashes[height - 1], ALYS_HASH_LEN, hash);
    alys_hex(c->roots[height - 1], ALYS_HASH_LEN, root);
    snprintf(want, sizeof want, "height=%llu hash=%s state_root=%s", (unsigned long long) height,
             hash, root);
    cr_assert_str_eq(rep->event_text, want);
}

/* The event main.c publishes: only when the head moved, naming the new head. */
Test(storage, service_head_events)
{
    fx_t f;
    fx_init(&f, 8);
    cr_assert_eq(tchain_extend(f.chain, 6, 2), 0);
    storage_t *s = fx_open(&f);
    storage_reply_t rep;
    Alys__Storage__ExecuteBatch eb = ALYS__STORAGE__EXECUTE_BATCH__INIT;
    eb.blocks = f.chain->blocks;
    eb.n_blocks = 6;
    Alys__Storage__StorageMsg m = ALYS__STORAGE__STORAGE_MSG__INIT;
    m.msg_case = ALYS__STORAGE__STORAGE_MSG__MSG_EXECUTE_BATCH;
    m.execute_batch = &eb;
    serve(s, &m, &rep);
    expect_event(&rep, "head_advanced", f.chain, 6);
    storage_reply_clear(&rep);

    serve(s, &m, &rep); /* a replay of committed blocks moves nothing */
    cr_assert_eq(rep.env.storage->batch_result->already_committed, 6);
    cr_assert_not(rep.head_changed);
    cr_assert_str_eq(rep.event_text, "");
    storage_reply_clear(&rep);

    Alys__Storage__Rollback rb = ALYS__STORAGE__ROLLBACK__INIT;
    rb.height = 4;
    m.msg_case = ALYS__STORAGE__STORAGE_MSG__MSG_ROLLBACK;
    m.rollback = &rb;
    serve(s, &m, &rep);
    cr_assert_eq(rep.env.storage->head->height, 4);
    expect_event(&rep, "rolled_back", f.chain, 4);
    storage_reply_clear(&rep);

    serve(s, &m, &rep); /* to where it already is */
    cr_assert_eq(rep.env.body_case, ALYS__BUS__ENVELOPE__BODY_STORAGE);
    cr_assert_not(rep.head_changed);
    storage_reply_clear(&rep);
    storage_destroy(&s);
    fx_fini(&f);
}

/* Checkpoints and bans through the mailbox: bodies, refusals as INVALID. */
Test(storage, service_checkpoints_and_bans)
{
    fx_t f;
    fx_init(&f, 8);
    cr_assert_eq(tchain_extend(f.chain, 3, 2), 0);
    storage_t *s = fx_open(&f);
    storage_reply_t rep;
    Alys__Storage__StorageMsg m = ALYS__STORAGE__STORAGE_MSG__INIT;
    Alys__Storage__CreateCheckpoint cc = ALYS__STORAGE__CREATE_CHECKPOINT__INIT;
    m.msg_case = ALYS__STORAGE__STORAGE_MSG__MSG_CREATE_CHECKPOINT;
    m.create_checkpoint = &cc;
    serve(s, &m, &rep);
    expect_error(&rep, ALYS_ERR_INVALID, "height 0");
    storage_reply_clear(&rep);

    storage_batch_result_t r;
    run_batch(s, f.chain, 1, 3, &r);
    serve(s, &m, &rep);
    cr_assert_eq(rep.env.body_case, ALYS__BUS__ENVELOPE__BODY_STORAGE);
    cr_assert_eq(rep.env.storage->checkpoints->n_checkpoints, 1);
    cr_assert_eq(rep.env.storage->checkpoints->checkpoints[0]->height, 3);
    cr_assert_not(rep.head_changed, "a checkpoint does not move the head");
    storage_reply_clear(&rep);

    Alys__Storage__ListCheckpoints lc = ALYS__STORAGE__LIST_CHECKPOINTS__INIT;
    m.msg_case = ALYS__STORAGE__STORAGE_MSG__MSG_LIST_CHECKPOINTS;
    m.list_checkpoints = &lc;
    serve(s, &m, &rep);
    cr_assert_eq(rep.env.storage->checkpoints->n_checkpoints, 1);
    cr_assert_arr_eq(rep.env.storage->checkpoints->checkpoints[0]->hash.data, f.chain->hashes[2],
                     ALYS_HASH_LEN);
    storage_reply_clear(&rep);

    Alys__Storage__PeerBan ban = ALYS__STORAGE__PEER_BAN__INIT;
    Alys__Storage__PeerBan *list[1] = {&ban};
    ban.peer_id = "peer-z";
    ban.ban_until = 42;
    Alys__Storage__PutPeerBans pb = ALYS__STORAGE__PUT_PEER_BANS__INIT;
    pb.bans = list;
    pb.n_bans = 1;
    m.msg_case = ALYS__STORAGE__STORAGE_MSG__MSG_PUT_PEER_BANS;
    m.put_peer_bans = &pb;
    serve(s, &m, &rep); /* answered with the stored list */
    cr_assert_eq(rep.env.storage->peer_bans->n_bans, 1);
    cr_assert_str_eq(rep.env.storage->peer_bans->bans[0]->peer_id, "peer-z");
    storage_reply_clear(&rep);

    ban.peer_id = "";
    serve(s, &m, &rep);
    expect_error(&rep, ALYS_ERR_INVALID, "peer_id empty");
    storage_reply_clear(&rep);

    Alys__Storage__GetPeerBans gp = ALYS__STORAGE__GET_PEER_BANS__INIT;
    m.msg_case = ALYS__STORAGE__STORAGE_MSG__MSG_GET_PEER_BANS;
    m.get_peer_bans = &gp;
    serve(s, &m, &rep); /* the refused list changed nothing */
    cr_assert_eq(rep.env.storage->peer_bans->n_bans, 1);
    cr_assert_eq(rep.env.storage->peer_bans->bans[0]->ban_until, 42);
    storage_reply_clear(&rep);
    storage_destroy(&s);
    fx_fini(&f);
}

/* ------------------------------------------------------------ crash atomicity */

/* Child: open the store and commit the chain in batches of 7 from its head;
 * every third batch is followed by a rollback of 3 blocks, so kills also
 * land in rollbacks. */
#define CRASH_ROLLBACK 3

static void commit_forever(fx_t *f)
{
    char err[512];
    storage_t *s = storage_open(&f->cfg, err, sizeof err);
    if (!s)
        _exit(3);
    for (unsigned i = 0;; i++) {
        storage_head_t h;
        storage_head(s, &h);
        if (h.height >= f->chain->nblocks)
            break;
        uint64_t n = f->chain->nblocks - h.height < 7 ? f->chain->nblocks - h.height : 7;
        storage_batch_result_t r;
        if (storage_execute_batch(s, &f->chain->blocks[h.height], n, NULL, &r, err, sizeof err) != 0 ||
            r.failed)
            _exit(4);
        if (i % 3 == 2 && r.head.height < f->chain->nblocks &&
            storage_rollback(s, r.head.height - CRASH_ROLLBACK, err, sizeof err) != 0)
            _exit(5);
    }
    storage_destroy(&s);
    _exit(0);
}

Test(storage, crash_at_any_instant_leaves_old_or_new_head, .timeout = 120)
{
    fx_t f;
    fx_init(&f, 32);
    f.cfg.wal_sync = true;
    f.cfg.checkpoint_interval = 10;
    f.cfg.max_reorg_depth = 16;
    cr_assert_eq(tchain_extend(f.chain, 1200, 5), 0);
    unsigned seed = (unsigned) time(NULL) ^ (unsigned) getpid();
    srand(seed);
    uint64_t last = 0;
    int kills = 0;
    for (int round = 0; round < 60 && kills < 12; round++) {
        pid_t pid = fork();
        cr_assert(pid >= 0);
        if (pid == 0)
            commit_forever(&f);
        usleep((useconds_t) (2000 + rand() % 38000)); /* the whole chain takes ~0.5 s */
        kill(pid, SIGKILL);
        int status;
        waitpid(pid, &status, 0);
        if (WIFSIGNALED(status))
            kills++;
        else
            cr_assert_eq(WEXITSTATUS(status), 0, "child failed (seed %u)", seed);
        storage_t *s = fx_open(&f);
        storage_head_t h;
        storage_head(s, &h);
        cr_assert_geq(h.height + CRASH_ROLLBACK, last, "head went back from %llu to %llu (seed %u)",
                      (unsigned long long) last, (unsigned long long) h.height, seed);
        expect_head(s, f.chain, h.height);
        expect_consistent(s);
        last = h.height;
        storage_destroy(&s);
        if (last == f.chain->nblocks)
            break;
    }
    cr_assert_geq(kills, 1, "no kill landed mid-run (seed %u)", seed);
    /* Finish and compare with the chain's final state. */
    storage_t *s = fx_open(&f);
    storage_head_t h;
    storage_head(s, &h);
    storage_batch_result_t r;
    if (h.height < f.chain->nblocks)
        run_batch(s, f.chain, h.height + 1, f.chain->nblocks, &r);
    expect_head(s, f.chain, f.chain->nblocks);
    expect_state_equals_chain(s, f.chain);
    expect_consistent(s);
    storage_destroy(&s);
    cr_log_info("crash test: %d kills, seed %u", kills, seed);
    fx_fini(&f);
}

/* ------------------------------------------------------------ RocksDB's own ldb */

/* Run ldb and return the first 16 hex digits after "0x" (the head height). */
static int ldb_head_height(const char *cmd, uint64_t *height)
{
    FILE *p = popen(cmd, "r");
    if (!p)
        return -1;
    char line[8192] = "";
    char *got = fgets(line, sizeof line, p);
    int rc = pclose(p);
    if (!got || rc != 0)
        return -1;
    char *x = strstr(line, "0x");
    if (!x || strlen(x) < 18)
        return -1;
    char digits[17];
    memcpy(digits, x + 2, 16);
    digits[16] = '\0';
    *height = strtoull(digits, NULL, 16);
    return 0;
}

Test(storage, ldb_reads_the_head, .timeout = 60)
{
    fx_t f;
    fx_init(&f, 8);
    cr_assert_eq(tchain_extend(f.chain, 7, 2), 0);
    storage_t *s = fx_open(&f);
    storage_batch_result_t r;
    run_batch(s, f.chain, 1, 7, &r);
    cr_assert_eq(access("/usr/bin/ldb", X_OK), 0,
                 "RocksDB's ldb is missing: apt-get install rocksdb-tools");
    char cmd[1024];
    uint64_t height = 0;
    /* While the store is open: as a secondary instance (read-only). */
    snprintf(cmd, sizeof cmd,
             "/usr/bin/ldb --db=%s/data/db --secondary_path=%s/ldb-secondary "
             "--column_family=meta --value_hex get head 2>/dev/null",
             f.dir, f.dir);
    cr_assert_eq(ldb_head_height(cmd, &height), 0, "ldb failed: %s", cmd);
    cr_assert_eq(height, 7);
    storage_destroy(&s);
    /* After close: plain open. */
    snprintf(cmd, sizeof cmd,
             "/usr/bin/ldb --db=%s/data/db --column_family=meta --value_hex get head 2>/dev/null",
             f.dir);
    cr_assert_eq(ldb_head_height(cmd, &height), 0, "ldb failed: %s", cmd);
    cr_assert_eq(height, 7);
    /* And the store still opens after ldb had it. */
    s = fx_open(&f);
    expect_head(s, f.chain, 7);
    storage_destroy(&s);
    fx_fini(&f);
}

/* ------------------------------------------------------------ signing fence */

/* A distinct header hash per (slot, variant). */
static void fence_hash(uint64_t slot, uint8_t variant, alys_hash_t out)
{
    memset(out, variant, ALYS_HASH_LEN);
    memcpy(out, &slot, sizeof slot);
}

static void expect_fence(storage_t *s, const uint8_t *authority, bool any, uint64_t slot,
                         uint8_t variant)
{
    char err[256] = "";
    alys_fence_record_t r;
    cr_assert_eq(storage_fence_get(s, authority, &r, err, sizeof err), STORAGE_OK, "%s", err);
    cr_assert_eq(r.any, any);
    if (!any)
        return;
    alys_hash_t want;
    fence_hash(slot, variant, want);
    cr_assert_eq(r.slot, slot, "record at slot %llu, want %llu", (unsigned long long) r.slot,
                 (unsigned long long) slot);
    cr_assert_arr_eq(r.hash, want, ALYS_HASH_LEN);
}

static storage_fence_result_t fence_record(storage_t *s, const uint8_t *authority, uint64_t slot,
                                           uint8_t variant)
{
    char err[256] = "";
    alys_hash_t h;
    fence_hash(slot, variant, h);
    storage_fence_result_t r;
    cr_assert_eq(storage_fence_record(s, authority, slot, h, &r, err, sizeof err), STORAGE_OK,
                 "%s", err);
    return r;
}

Test(storage, fence_every_verdict)
{
    fx_t f;
    fx_init(&f, 4);
    storage_t *s = fx_open(&f);
    const uint8_t *a = f.chain->genesis.authorities[0], *b = f.chain->genesis.authorities[1];
    expect_fence(s, a, false, 0, 0);

    storage_fence_result_t r = fence_record(s, a, 10, 1);
    cr_assert_eq(r.verdict, ALYS_FENCE_ALLOW_NEW);
    cr_assert(r.ok && r.written);
    expect_fence(s, a, true, 10, 1);

    r = fence_record(s, a, 10, 1); /* the same block again */
    cr_assert_eq(r.verdict, ALYS_FENCE_ALLOW_RESIGN);
    cr_assert(r.ok);
    cr_assert_not(r.written, "the same record is not written again");

    r = fence_record(s, a, 10, 2); /* another block for the slot */
    cr_assert_eq(r.verdict, ALYS_FENCE_REFUSE_DOUBLE);
    cr_assert_not(r.ok || r.written);
    cr_assert(r.stored.any && r.stored.slot == 10, "the refusing record is reported");
    expect_fence(s, a, true, 10, 1);

    r = fence_record(s, a, 9, 1); /* below the record */
    cr_assert_eq(r.verdict, ALYS_FENCE_REFUSE_STALE);
    cr_assert_not(r.ok || r.written);
    expect_fence(s, a, true, 10, 1);

    r = fence_record(s, a, 11, 3);
    cr_assert_eq(r.verdict, ALYS_FENCE_ALLOW_NEW);
    cr_assert(r.ok && r.written);
    expect_fence(s, a, true, 11, 3);

    /* One record per authority: b is independent of a. */
    expect_fence(s, b, false, 0, 0);
    r = fence_record(s, b, 5, 7);
    cr_assert_eq(r.verdict, ALYS_FENCE_ALLOW_NEW);
    expect_fence(s, a, true, 11, 3);
    expect_fence(s, b, true, 5, 7);
    storage_destroy(&s);
    fx_fini(&f);
}

Test(storage, fence_survives_reopen)
{
    fx_t f;
    fx_init(&f, 4);
    storage_t *s = fx_open(&f);
    const uint8_t *a = f.chain->genesis.authorities[2];
    cr_assert(fence_record(s, a, 1234, 9).ok);
    storage_destroy(&s);
    s = fx_open(&f);
    expect_fence(s, a, true, 1234, 9);
    cr_assert_eq(fence_record(s, a, 1234, 8).verdict, ALYS_FENCE_REFUSE_DOUBLE,
                 "after a restart the record still refuses a second block");
    storage_destroy(&s);
    fx_fini(&f);
}

/* Rollback, batches (what import does), checkpoints, the consistency check
 * and recovery at open never lower or delete the record. */
Test(storage, fence_untouched_by_rollback_batches_and_checks)
{
    fx_t f;
    fx_init(&f, 16);
    f.cfg.max_reorg_depth = 16;
    f.cfg.checkpoint_interval = 3;
    cr_assert_eq(tchain_extend(f.chain, 10, 4), 0);
    storage_t *s = fx_open(&f);
    const uint8_t *a = f.chain->genesis.authorities[0];
    cr_assert(fence_record(s, a, 500, 4).ok);
    storage_batch_result_t r;
    run_batch(s, f.chain, 1, 10, &r);
    cr_assert_not(r.failed);
    expect_fence(s, a, true, 500, 4);
    char err[256] = "";
    cr_assert_eq(storage_rollback(s, 2, err, sizeof err), STORAGE_OK, "%s", err);
    expect_head(s, f.chain, 2);
    expect_fence(s, a, true, 500, 4);
    cr_assert_eq(storage_create_checkpoint(s, NULL, NULL, err, sizeof err), STORAGE_OK, "%s", err);
    expect_consistent(s);
    expect_fence(s, a, true, 500, 4);
    cr_assert_eq(storage_rollback(s, 0, err, sizeof err), STORAGE_OK, "%s", err);
    expect_fence(s, a, true, 500, 4);
    storage_destroy(&s);
    s = fx_open(&f);
    expect_head(s, f.chain, 0);
    expect_fence(s, a, true, 500, 4);
    storage_destroy(&s);
    fx_fini(&f);
}

/* Child: from the stored record on, record slot after slot for authority
 * and report each acknowledged slot (8 bytes) on fd, until killed. */
static void fence_forever(fx_t *f, const uint8_t *authority, int fd)
{
    char err[512];
    storage_t *s = storage_open(&f->cfg, err, sizeof err);
    if (!s)
        _exit(3);
    alys_fence_record_t last;
    if (storage_fence_get(s, authority, &last, err, sizeof err) != STORAGE_OK)
        _exit(4);
    for (uint64_t slot = last.any ? last.slot + 1 : 1;; slot++) {
        alys_hash_t h;
        fence_hash(slot, 0x33, h);
        storage_fence_result_t r;
        if (storage_fence_record(s, authority, slot, h, &r, err, sizeof err) != STORAGE_OK || !r.ok)
            _exit(5);
        if (write(fd, &slot, sizeof slot) != (ssize_t) sizeof slot)
            _exit(6);
    }
}

/* The last slot the child reported acknowledged, from slot on (reads to
 * the end: the child is dead). */
static uint64_t last_acknowledged(int fd, uint64_t slot)
{
    uint64_t got;
    while (read(fd, &got, sizeof got) == (ssize_t) sizeof got)
        slot = got;
    return slot;
}

Test(storage, fence_survives_kill_at_any_instant, .timeout = 120)
{
    fx_t f;
    fx_init(&f, 4);
    f.cfg.wal_sync = false;     /* the fence is fsync'ed whatever wal_sync says */
    storage_t *s = fx_open(&f); /* initialise the database once */
    storage_destroy(&s);
    const uint8_t *a = f.chain->genesis.authorities[1];
    unsigned seed = (unsigned) time(NULL) ^ (unsigned) getpid();
    srand(seed);
    uint64_t floor = 0;
    int kills = 0;
    for (int round = 0; round < 12; round++) {
        int fds[2];
        cr_assert_eq(pipe(fds), 0);
        pid_t pid = fork();
        cr_assert(pid >= 0);
        if (pid == 0) {
            close(fds[0]);
            fence_forever(&f, a, fds[1]);
        }
        close(fds[1]);
        /* Wait for the fact that the child is recording (its first ack),
         * then kill it at a random moment of its loop. */
        uint64_t first = 0;
        ssize_t n = read(fds[0], &first, sizeof first);
        usleep((useconds_t) (rand() % 30000));
        kill(pid, SIGKILL);
        int status;
        waitpid(pid, &status, 0);
        cr_assert_eq(n, (ssize_t) sizeof first, "child acknowledged nothing: status %d (seed %u)",
                     status, seed);
        cr_assert(WIFSIGNALED(status), "child ended by itself: status %d (seed %u)", status, seed);
        kills++;
        uint64_t acked = last_acknowledged(fds[0], first);
        close(fds[0]);
        cr_assert_gt(acked, floor, "the child started at or below the record (seed %u)", seed);
        s = fx_open(&f);
        alys_fence_record_t r;
        char err[256] = "";
        cr_assert_eq(storage_fence_get(s, a, &r, err, sizeof err), STORAGE_OK, "%s", err);
        cr_assert(r.any, "acknowledged slot %llu lost (seed %u)", (unsigned long long) acked, seed);
        cr_assert_geq(r.slot, acked, "record at %llu below acknowledged %llu (seed %u)",
                      (unsigned long long) r.slot, (unsigned long long) acked, seed);
        /* The stored hash is the one recorded for that slot; the next round
         * must stay at or above this record (checked above and here). */
        expect_fence(s, a, true, r.slot, 0x33);
        floor = r.slot;
        storage_destroy(&s);
    }
    cr_log_info("fence kill test: %d kills, record at slot %llu, seed %u", kills,
                (unsigned long long) floor, seed);
    fx_fini(&f);
}

/* FenceRecord and GetFence through the mailbox protocol. */
Test(storage, service_fence)
{
    fx_t f;
    fx_init(&f, 4);
    storage_t *s = fx_open(&f);
    storage_reply_t rep;
    Alys__Storage__StorageMsg m = ALYS__STORAGE__STORAGE_MSG__INIT;
    uint8_t *a = f.chain->genesis.authorities[0];

    Alys__Storage__GetFence gf = ALYS__STORAGE__GET_FENCE__INIT;
    gf.authority = (ProtobufCBinaryData){ALYS_PUBKEY_LEN - 1, a};
    m.msg_case = ALYS__STORAGE__STORAGE_MSG__MSG_GET_FENCE;
    m.get_fence = &gf;
    serve(s, &m, &rep);
    expect_error(&rep, ALYS_ERR_BAD_REQUEST, "authority of 31 bytes");
    storage_reply_clear(&rep);
    gf.authority.len = ALYS_PUBKEY_LEN;
    serve(s, &m, &rep);
    cr_assert_eq(rep.env.body_case, ALYS__BUS__ENVELOPE__BODY_STORAGE);
    cr_assert_eq(rep.env.storage->msg_case, ALYS__STORAGE__STORAGE_MSG__MSG_FENCE);
    cr_assert_not(rep.env.storage->fence->found);
    storage_reply_clear(&rep);

    alys_hash_t h1, h2;
    fence_hash(40, 1, h1);
    fence_hash(40, 2, h2);
    Alys__Storage__FenceRecord fr = ALYS__STORAGE__FENCE_RECORD__INIT;
    fr.authority = (ProtobufCBinaryData){ALYS_PUBKEY_LEN, a};
    fr.slot = 40;
    fr.height = 12;
    fr.block_hash = (ProtobufCBinaryData){ALYS_HASH_LEN + 1, h1};
    m.msg_case = ALYS__STORAGE__STORAGE_MSG__MSG_FENCE_RECORD;
    m.fence_record = &fr;
    serve(s, &m, &rep);
    expect_error(&rep, ALYS_ERR_BAD_REQUEST, "block_hash of 33 bytes");
    storage_reply_clear(&rep);
    expect_fence(s, a, false, 0, 0);
    fr.block_hash.len = ALYS_HASH_LEN;
    fr.authority.len = 0;
    serve(s, &m, &rep);
    expect_error(&rep, ALYS_ERR_BAD_REQUEST, "authority of 0 bytes");
    storage_reply_clear(&rep);
    fr.authority.len = ALYS_PUBKEY_LEN;

    const char *want_reason[3] = {NULL, NULL, "refuse_double"};
    const uint8_t *want_hash[3] = {h1, h1, h1};
    bool want_ok[3] = {true, true, false};
    for (int i = 0; i < 3; i++) {
        fr.block_hash.data = i == 2 ? h2 : h1;
        serve(s, &m, &rep);
        cr_assert_eq(rep.env.body_case, ALYS__BUS__ENVELOPE__BODY_STORAGE);
        Alys__Storage__FenceRecorded *fd = rep.env.storage->fence_recorded;
        cr_assert_eq(rep.env.storage->msg_case, ALYS__STORAGE__STORAGE_MSG__MSG_FENCE_RECORDED);
        cr_assert_eq(fd->ok, want_ok[i], "request %d", i);
        cr_assert(fd->found);
        cr_assert_eq(fd->slot, 40);
        cr_assert_arr_eq(fd->block_hash.data, want_hash[i], ALYS_HASH_LEN, "the stored record");
        if (want_reason[i])
            cr_assert_str_eq(fd->reason, want_reason[i]);
        storage_reply_clear(&rep);
    }
    fr.slot = 39;
    serve(s, &m, &rep);
    cr_assert_not(rep.env.storage->fence_recorded->ok);
    cr_assert_str_eq(rep.env.storage->fence_recorded->reason, "refuse_stale");
    storage_reply_clear(&rep);

    m.msg_case = ALYS__STORAGE__STORAGE_MSG__MSG_GET_FENCE;
    serve(s, &m, &rep);
    Alys__Storage__Fence *fe = rep.env.storage->fence;
    cr_assert(fe->found);
    cr_assert_eq(fe->slot, 40);
    cr_assert_arr_eq(fe->block_hash.data, h1, ALYS_HASH_LEN);
    cr_assert_arr_eq(fe->authority.data, a, ALYS_PUBKEY_LEN);
    storage_reply_clear(&rep);
    storage_destroy(&s);
    fx_fini(&f);
}

/* GetHead with_state carries what a producer builds on: the head's header
 * and the lattice whose root is the head's state root. */
Test(storage, service_head_with_state)
{
    fx_t f;
    fx_init(&f, 8);
    cr_assert_eq(tchain_extend(f.chain, 3, 2), 0);
    storage_t *s = fx_open(&f);
    storage_reply_t rep;
    Alys__Storage__GetHead gh = ALYS__STORAGE__GET_HEAD__INIT;
    Alys__Storage__StorageMsg m = ALYS__STORAGE__STORAGE_MSG__INIT;
    m.msg_case = ALYS__STORAGE__STORAGE_MSG__MSG_GET_HEAD;
    m.get_head = &gh;
    for (int round = 0; round < 2; round++) {
        gh.with_state = false;
        serve(s, &m, &rep);
        cr_assert_eq(rep.env.storage->head->lattice.len, 0, "not asked: not sent");
        cr_assert_eq(rep.env.storage->head->header.len, 0);
        storage_reply_clear(&rep);
        gh.with_state = true;
        serve(s, &m, &rep);
        Alys__Storage__Head *h = rep.env.storage->head;
        cr_assert_eq(h->lattice.len, ALYS_LATTICE_BYTES);
        alys_lattice_t l;
        alys_lattice_from_bytes(&l, h->lattice.data);
        alys_hash_t root;
        alys_lattice_root(&l, root);
        cr_assert_arr_eq(root, h->state_root.data, ALYS_HASH_LEN);
        if (round == 0) {
            cr_assert_eq(h->height, 0);
            cr_assert_eq(h->header.len, 0, "the genesis is not a block");
        } else {
            cr_assert_eq(h->height, 3);
            alys_header_t hdr;
            alys_verdict_t v;
            cr_assert_eq(alys_header_decode(h->header.data, h->header.len, &hdr, &v), 0);
            alys_hash_t hash;
            alys_header_hash(&hdr, hash);
            cr_assert_arr_eq(hash, h->hash.data, ALYS_HASH_LEN);
        }
        storage_reply_clear(&rep);
        storage_batch_result_t r;
        if (round == 0)
            run_batch(s, f.chain, 1, 3, &r);
    }
    storage_destroy(&s);
    fx_fini(&f);
}

/* The RocksDB memory gauges: committed blocks sit in the memtables, the
 * block cache's index and filter blocks are counted, and nothing is set
 * without metrics. */
Test(storage, memory_gauges_follow_rocksdb)
{
    fx_t f;
    fx_init(&f, 32);
    cr_assert_eq(tchain_extend(f.chain, 30, 10), 0);
    storage_t *s = fx_open(&f);
    storage_publish_memory(s); /* no metrics yet: a no-op, no crash */
    alys_metrics_t *m = alys_metrics_new();
    cr_assert_not_null(m);
    storage_set_metrics(s, m);
    storage_publish_memory(s);
    const char *memtables = "part=\"memtables\"";
    double before = alys_metric_value(m, "alys_storage_rocksdb_bytes", memtables);
    storage_batch_result_t r;
    run_batch(s, f.chain, 1, 30, &r);
    cr_assert_not(r.failed);
    storage_publish_memory(s);
    double after = alys_metric_value(m, "alys_storage_rocksdb_bytes", memtables);
    cr_assert_gt(after, before, "30 blocks written: memtables %.0f -> %.0f", before, after);
    const char *parts[] = {"table_readers", "block_cache", "block_cache_pinned"};
    for (size_t i = 0; i < 3; i++) {
        char labels[48];
        snprintf(labels, sizeof labels, "part=\"%s\"", parts[i]);
        cr_assert(alys_metric_has(m, "alys_storage_rocksdb_bytes", labels, NULL), "%s", parts[i]);
        cr_assert_geq(alys_metric_value(m, "alys_storage_rocksdb_bytes", labels), 0);
    }
    storage_destroy(&s);
    alys_metrics_destroy(&m);
    fx_fini(&f);
}
