/*  fixture.c: see fixture.h. */
#include <criterion/criterion.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fixture.h"


static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void) st, (void) flag, (void) ftw;
    return remove(path);
}

/* The temp dir of the running test, removed by the suite's fini even when
 * an assertion ends the test early (each test runs in its own process). */
static char s_test_dir[64];

void fx_remove_test_dir(void)
{
    if (s_test_dir[0])
        nftw(s_test_dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    s_test_dir[0] = '\0';
}


void fx_init(fx_t *f, uint32_t accounts)
{
    memset(f, 0, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/alys-storage-test-XXXXXX");
    cr_assert_not_null(mkdtemp(f->dir));
    snprintf(s_test_dir, sizeof s_test_dir, "%s", f->dir);
    snprintf(f->genesis, sizeof f->genesis, "%s/genesis", f->dir);
    alys_config_defaults(&f->cfg);
    snprintf(f->cfg.data_dir, sizeof f->cfg.data_dir, "%s/data", f->dir);
    snprintf(f->cfg.genesis_file, sizeof f->cfg.genesis_file, "%s", f->genesis);
    f->cfg.cache_size_mb = 8;
    f->cfg.wal_sync = false; /* speed; the kill test uses true */
    f->chain = tchain_new(accounts, 42, "storage-test");
    cr_assert_not_null(f->chain);
    cr_assert_eq(tchain_save_genesis(f->chain, f->genesis), 0);
}

void fx_fini(fx_t *f)
{
    tchain_destroy(&f->chain);
    fx_remove_test_dir();
}

storage_t *fx_open(fx_t *f)
{
    char err[512] = "";
    storage_t *s = storage_open(&f->cfg, err, sizeof err);
    cr_assert_not_null(s, "storage_open: %s", err);
    return s;
}

/* Execute chain blocks [from, to] (heights) as one batch. */
void run_batch(storage_t *s, const tchain_t *c, uint64_t from, uint64_t to, storage_batch_result_t *r)
{
    char err[256] = "";
    int rc = storage_execute_batch(s, &c->blocks[from - 1], (size_t) (to - from + 1), NULL, r,
                                   err, sizeof err);
    cr_assert_eq(rc, STORAGE_OK, "execute_batch: %s", err);
}

void expect_head(storage_t *s, const tchain_t *c, uint64_t height)
{
    storage_head_t h;
    storage_head(s, &h);
    cr_assert_eq(h.height, height, "head %llu, want %llu", (unsigned long long) h.height,
                 (unsigned long long) height);
    const uint8_t *hash = height ? c->hashes[height - 1] : c->genesis.hash;
    const uint8_t *root = height ? c->roots[height - 1] : c->genesis.state_root;
    cr_assert_arr_eq(h.hash, hash, ALYS_HASH_LEN, "head hash at %llu", (unsigned long long) height);
    cr_assert_arr_eq(h.state_root, root, ALYS_HASH_LEN, "state root at %llu",
                     (unsigned long long) height);
    cr_assert_arr_eq(h.genesis_hash, c->genesis.hash, ALYS_HASH_LEN);
}

void expect_consistent(storage_t *s)
{
    char err[256] = "";
    cr_assert_eq(storage_check(s, true, err, sizeof err), 0, "storage_check: %s", err);
}

static int compare_account(void *ctx, const uint8_t pk[ALYS_PUBKEY_LEN], const alys_account_t *a)
{
    alys_account_t got;
    if (storage_get_account(ctx, pk, &got) != 1)
        return 1;
    return got.balance == a->balance && got.nonce == a->nonce ? 0 : 2;
}

/* Every account of the chain builder's state equals the store's, and the
 * store has no others. */
void expect_state_equals_chain(storage_t *s, const tchain_t *c)
{
    cr_assert_eq(alys_memstate_foreach(c->state, compare_account, s), 0, "an account differs");
    storage_stats_t st;
    storage_stats(s, &st);
    cr_assert_eq(st.accounts, alys_memstate_size(c->state));
}


void serve(storage_t *s, Alys__Storage__StorageMsg *m, storage_reply_t *rep)
{
    alys_env_t env = ALYS__BUS__ENVELOPE__INIT;
    env.corr_id = 7;
    env.body_case = ALYS__BUS__ENVELOPE__BODY_STORAGE;
    env.storage = m;
    storage_serve(s, &env, rep);
}

void expect_error(storage_reply_t *rep, uint32_t code, const char *text)
{
    cr_assert_eq(rep->env.body_case, ALYS__BUS__ENVELOPE__BODY_ERROR);
    cr_assert_eq(rep->env.error->code, code, "code %u: %s", rep->env.error->code,
                 rep->env.error->message);
    cr_assert(strstr(rep->env.error->message, text), "message: %s", rep->env.error->message);
}
