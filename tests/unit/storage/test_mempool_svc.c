/*  test_mempool_svc.c: StorageActor's mempool service (actors/storage/
 *  mempool_svc.h) on a real store in a temporary directory, driven the way
 *  main.c drives it: MempoolMsg requests to mempool_svc_serve, every
 *  StorageMsg between mempool_svc_before and _after. Chains from
 *  testchain.c. No sockets.
 */
#include <criterion/criterion.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "chain/mempool_tx.h"
#include "mempool_svc.h"
#include "service.h"
#include "storage.h"
#include "testchain.h"

typedef struct {
    char dir[64];
    char genesis[128];
    alys_config_t cfg;
    tchain_t *chain;
    storage_t *store;
    mempool_svc_t *mp;
} fx_t;

static fx_t f;

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void) st, (void) flag, (void) ftw;
    return remove(path);
}

static void setup(void)
{
    memset(&f, 0, sizeof f);
    snprintf(f.dir, sizeof f.dir, "/tmp/alys-mpsvc-test-XXXXXX");
    cr_assert_not_null(mkdtemp(f.dir));
    snprintf(f.genesis, sizeof f.genesis, "%s/genesis", f.dir);
    alys_config_defaults(&f.cfg);
    snprintf(f.cfg.data_dir, sizeof f.cfg.data_dir, "%s/data", f.dir);
    snprintf(f.cfg.genesis_file, sizeof f.cfg.genesis_file, "%s", f.genesis);
    f.cfg.cache_size_mb = 8;
    f.cfg.wal_sync = false;
    f.chain = tchain_new(8, 7, "mempool-svc-test");
    cr_assert_not_null(f.chain);
    cr_assert_eq(tchain_save_genesis(f.chain, f.genesis), 0);
    cr_assert_eq(tchain_extend(f.chain, 3, 4), 0);
    char err[512] = "";
    f.store = storage_open(&f.cfg, err, sizeof err);
    cr_assert_not_null(f.store, "storage_open: %s", err);
    f.mp = mempool_svc_new(&f.cfg, f.store, NULL, 42);
    cr_assert_not_null(f.mp);
}

static void teardown(void)
{
    mempool_svc_destroy(&f.mp);
    storage_destroy(&f.store);
    tchain_destroy(&f.chain);
    nftw(f.dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

TestSuite(mempool_svc, .init = setup, .fini = teardown);

/* ---- driving it as main.c does ---- */

static void storage_call(Alys__Storage__StorageMsg *m)
{
    alys_env_t env = ALYS__BUS__ENVELOPE__INIT;
    env.corr_id = 1;
    env.body_case = ALYS__BUS__ENVELOPE__BODY_STORAGE;
    env.storage = m;
    storage_reply_t rep;
    mempool_svc_before(f.mp, &env);
    storage_serve(f.store, &env, &rep);
    mempool_svc_after(f.mp);
    cr_assert_neq(rep.env.body_case, ALYS__BUS__ENVELOPE__BODY_ERROR, "%s",
                  rep.env.error ? rep.env.error->message : "");
    storage_reply_clear(&rep);
}

static void execute(Alys__Storage__ExecuteBatch *eb)
{
    Alys__Storage__StorageMsg m = ALYS__STORAGE__STORAGE_MSG__INIT;
    m.msg_case = ALYS__STORAGE__STORAGE_MSG__MSG_EXECUTE_BATCH;
    m.execute_batch = eb;
    storage_call(&m);
}

static void commit(uint64_t from, uint64_t to)
{
    Alys__Storage__ExecuteBatch eb = ALYS__STORAGE__EXECUTE_BATCH__INIT;
    eb.blocks = &f.chain->blocks[from - 1];
    eb.n_blocks = (size_t) (to - from + 1);
    execute(&eb);
    storage_head_t h;
    storage_head(f.store, &h);
    cr_assert_eq(h.height, to);
}

static void rollback(uint64_t height)
{
    Alys__Storage__Rollback rb = ALYS__STORAGE__ROLLBACK__INIT;
    rb.height = height;
    Alys__Storage__StorageMsg m = ALYS__STORAGE__STORAGE_MSG__INIT;
    m.msg_case = ALYS__STORAGE__STORAGE_MSG__MSG_ROLLBACK;
    m.rollback = &rb;
    storage_call(&m);
}

static void mempool_call(Alys__Mempool__MempoolMsg *m, mempool_reply_t *rep)
{
    alys_env_t env = ALYS__BUS__ENVELOPE__INIT;
    env.corr_id = 1;
    env.body_case = ALYS__BUS__ENVELOPE__BODY_MEMPOOL;
    env.mempool = m;
    mempool_svc_serve(f.mp, &env, rep);
    cr_assert(rep->answer);
}

/* Submit txs; the results are copied into results (static names). */
static void submit(const alys_tx_t *txs, size_t n, const char **results)
{
    uint8_t bufs[16][ALYS_TX_MAX_BYTES];
    ProtobufCBinaryData items[16];
    cr_assert_leq(n, 16);
    for (size_t i = 0; i < n; i++)
        items[i] = (ProtobufCBinaryData){alys_tx_encode(&txs[i], bufs[i]), bufs[i]};
    Alys__Mempool__SubmitTx st = ALYS__MEMPOOL__SUBMIT_TX__INIT;
    st.n_txs = n;
    st.txs = items;
    Alys__Mempool__MempoolMsg m = ALYS__MEMPOOL__MEMPOOL_MSG__INIT;
    m.msg_case = ALYS__MEMPOOL__MEMPOOL_MSG__MSG_SUBMIT_TX;
    m.submit_tx = &st;
    mempool_reply_t rep;
    mempool_call(&m, &rep);
    cr_assert_eq(rep.env.body_case, ALYS__BUS__ENVELOPE__BODY_MEMPOOL);
    cr_assert_eq(rep.env.mempool->submit_tx_reply->n_results, n);
    cr_assert_eq(rep.env.mempool->submit_tx_reply->pool_epoch, 42);
    for (size_t i = 0; i < n; i++)
        results[i] = rep.env.mempool->submit_tx_reply->results[i];
    mempool_reply_clear(&rep);
}

static size_t pool_size(void)
{
    return alys_mempool_size(mempool_svc_pool(f.mp));
}

/* The txs of chain block height (decoded; alys_block_clear frees). */
static void block_txs(uint64_t height, alys_block_t *b)
{
    alys_verdict_t v;
    memset(b, 0, sizeof *b);
    cr_assert_eq(alys_block_decode(f.chain->blocks[height - 1].data,
                                   f.chain->blocks[height - 1].len, b, &v),
                 0);
}

/* A transfer from account `from` at its head nonce + k. */
static alys_tx_t transfer(uint32_t from, uint64_t k, uint64_t fee)
{
    alys_account_t a;
    cr_assert_geq(storage_get_account(f.store, f.chain->acc_pub[from], &a), 0);
    alys_tx_t tx;
    memset(&tx, 0, sizeof tx);
    memcpy(tx.from, f.chain->acc_pub[from], ALYS_PUBKEY_LEN);
    memcpy(tx.to, f.chain->acc_pub[(from + 1) % f.chain->naccounts], ALYS_PUBKEY_LEN);
    tx.amount = 1;
    tx.fee = fee;
    tx.nonce = a.nonce + k;
    alys_hash_t h;
    alys_tx_hash(&tx, h);
    cr_assert_eq(alys_sign(f.chain->acc_sec[from], h, tx.signature), 0);
    return tx;
}

/* ---- tests ---- */

Test(mempool_svc, submit_answers_each_tx_with_its_reason)
{
    commit(1, 1);
    alys_tx_t txs[4] = {transfer(0, 0, 5), transfer(0, 0, 5), transfer(1, 2, 5), transfer(2, 0, 5)};
    txs[3].amount = 2; /* signature no longer covers it */
    const char *r[4];
    submit(txs, 4, r);
    cr_assert_str_eq(r[0], "added");
    cr_assert(strcmp(r[1], "duplicate") == 0 || strcmp(r[1], "nonce_taken") == 0, "%s", r[1]);
    cr_assert_str_eq(r[2], "nonce_gap");
    cr_assert_str_eq(r[3], "bad_signature");
    cr_assert_eq(pool_size(), 1);
}

Test(mempool_svc, undecodable_bytes_are_refused_by_name)
{
    uint8_t junk[8] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    ProtobufCBinaryData item = {sizeof junk, junk};
    Alys__Mempool__SubmitTx st = ALYS__MEMPOOL__SUBMIT_TX__INIT;
    st.n_txs = 1;
    st.txs = &item;
    Alys__Mempool__MempoolMsg m = ALYS__MEMPOOL__MEMPOOL_MSG__INIT;
    m.msg_case = ALYS__MEMPOOL__MEMPOOL_MSG__MSG_SUBMIT_TX;
    m.submit_tx = &st;
    mempool_reply_t rep;
    mempool_call(&m, &rep);
    cr_assert_str_eq(rep.env.mempool->submit_tx_reply->results[0], "undecodable");
    mempool_reply_clear(&rep);
}

Test(mempool_svc, txs_a_committed_block_includes_leave_the_pool)
{
    commit(1, 1);
    alys_block_t b;
    block_txs(2, &b);
    const char *r[16];
    submit(b.txs, b.tx_count, r);
    for (uint32_t i = 0; i < b.tx_count; i++)
        cr_assert_str_eq(r[i], "added", "tx %u: %s", i, r[i]);
    cr_assert_eq(pool_size(), b.tx_count);
    commit(2, 2);
    cr_assert_eq(pool_size(), 0);
    alys_block_clear(&b);
}

Test(mempool_svc, txs_of_a_rolled_back_block_come_back)
{
    commit(1, 3);
    cr_assert_eq(pool_size(), 0);
    alys_block_t b;
    block_txs(3, &b);
    rollback(2);
    cr_assert_eq(pool_size(), b.tx_count);
    for (uint32_t i = 0; i < b.tx_count; i++)
        cr_assert(alys_mempool_get(mempool_svc_pool(f.mp), b.txs[i].from, b.txs[i].nonce, NULL));
    /* The same block again: they leave again. */
    commit(3, 3);
    cr_assert_eq(pool_size(), 0);
    alys_block_clear(&b);
}

Test(mempool_svc, get_mempool_txs_is_ordered_by_fee_then_nonce_within_bounds)
{
    commit(1, 1);
    alys_tx_t txs[5] = {transfer(0, 0, 2), transfer(0, 1, 9), transfer(1, 0, 5),
                        transfer(1, 1, 1), transfer(2, 0, 3)};
    const char *r[5];
    submit(txs, 5, r);
    cr_assert_eq(pool_size(), 5);
    Alys__Mempool__GetMempoolTxs g = ALYS__MEMPOOL__GET_MEMPOOL_TXS__INIT;
    g.max_txs = 4;
    g.max_bytes = 1024 * 1024;
    Alys__Mempool__MempoolMsg m = ALYS__MEMPOOL__MEMPOOL_MSG__INIT;
    m.msg_case = ALYS__MEMPOOL__MEMPOOL_MSG__MSG_GET_MEMPOOL_TXS;
    m.get_mempool_txs = &g;
    mempool_reply_t rep;
    mempool_call(&m, &rep);
    const Alys__Mempool__MempoolTxs *got = rep.env.mempool->mempool_txs;
    cr_assert_eq(got->n_txs, 4);
    cr_assert_eq(got->head_height, 1);
    /* Sender 1 heads with fee 5, then sender 2's 3 and sender 0's 2 (its
     * fee-9 tx must follow its nonce-0 one), then sender 0's 9. */
    uint64_t want_fee[4] = {5, 3, 2, 9};
    for (size_t i = 0; i < 4; i++) {
        alys_tx_t t;
        cr_assert_eq(alys_tx_decode(got->txs[i].data, got->txs[i].len, &t, NULL), 0);
        cr_assert_eq(t.fee, want_fee[i], "tx %zu: fee %llu", i, (unsigned long long) t.fee);
    }
    mempool_reply_clear(&rep);
    /* A byte bound of two txs gives two. */
    g.max_txs = 10;
    g.max_bytes = 2 * alys_tx_encoded_size(&txs[0]) + 10;
    mempool_call(&m, &rep);
    cr_assert_eq(rep.env.mempool->mempool_txs->n_txs, 2);
    cr_assert_leq(rep.env.mempool->mempool_txs->bytes, g.max_bytes);
    mempool_reply_clear(&rep);
    /* Out of range bounds are refused. */
    g.max_txs = 0;
    mempool_call(&m, &rep);
    cr_assert_eq(rep.env.body_case, ALYS__BUS__ENVELOPE__BODY_ERROR);
    mempool_reply_clear(&rep);
}

/* Is key among the reply's accounts? Its entry, or NULL. */
static const Alys__Storage__AccountState *find_account(const Alys__Mempool__MempoolTxs *got,
                                                       const uint8_t *key)
{
    for (size_t i = 0; i < got->n_accounts; i++)
        if (memcmp(got->accounts[i]->pubkey.data, key, ALYS_PUBKEY_LEN) == 0)
            return got->accounts[i];
    return NULL;
}

Test(mempool_svc, get_mempool_txs_with_a_proposer_carries_every_touched_account_once)
{
    commit(1, 1);
    /* Two txs of one sender: its key and its recipient's come once each. */
    alys_tx_t txs[3] = {transfer(0, 0, 2), transfer(0, 1, 3), transfer(1, 0, 4)};
    const char *r[3];
    submit(txs, 3, r);
    uint8_t proposer[ALYS_PUBKEY_LEN];
    memset(proposer, 0xAB, sizeof proposer); /* an account the chain never saw */
    Alys__Mempool__GetMempoolTxs g = ALYS__MEMPOOL__GET_MEMPOOL_TXS__INIT;
    g.max_txs = 16;
    g.max_bytes = 1024 * 1024;
    g.proposer = (ProtobufCBinaryData){sizeof proposer, proposer};
    Alys__Mempool__MempoolMsg m = ALYS__MEMPOOL__MEMPOOL_MSG__INIT;
    m.msg_case = ALYS__MEMPOOL__MEMPOOL_MSG__MSG_GET_MEMPOOL_TXS;
    m.get_mempool_txs = &g;
    mempool_reply_t rep;
    mempool_call(&m, &rep);
    const Alys__Mempool__MempoolTxs *got = rep.env.mempool->mempool_txs;
    cr_assert_eq(got->n_txs, 3);
    /* Accounts 0, 1 and 2 (1 is a sender and a recipient) and the proposer. */
    cr_assert_eq(got->n_accounts, 4);
    for (size_t i = 1; i < got->n_accounts; i++)
        cr_assert_lt(memcmp(got->accounts[i - 1]->pubkey.data, got->accounts[i]->pubkey.data,
                            ALYS_PUBKEY_LEN),
                     0, "accounts sorted, each once");
    for (uint32_t a = 0; a < 3; a++) {
        const Alys__Storage__AccountState *e = find_account(got, f.chain->acc_pub[a]);
        cr_assert_not_null(e, "account %u", a);
        alys_account_t want;
        cr_assert_eq(storage_get_account(f.store, f.chain->acc_pub[a], &want), 1);
        cr_assert(e->found);
        cr_assert_eq(e->balance, want.balance);
        cr_assert_eq(e->nonce, want.nonce);
    }
    const Alys__Storage__AccountState *p = find_account(got, proposer);
    cr_assert_not_null(p);
    cr_assert(!p->found);
    cr_assert_eq(p->balance, 0);
    mempool_reply_clear(&rep);
    /* Without a proposer: no accounts. A proposer that is not 32 bytes is
     * refused by name. */
    g.proposer = (ProtobufCBinaryData){0, NULL};
    mempool_call(&m, &rep);
    cr_assert_eq(rep.env.mempool->mempool_txs->n_accounts, 0);
    mempool_reply_clear(&rep);
    g.proposer = (ProtobufCBinaryData){31, proposer};
    mempool_call(&m, &rep);
    cr_assert_eq(rep.env.body_case, ALYS__BUS__ENVELOPE__BODY_ERROR);
    cr_assert(strstr(rep.env.error->message, "proposer"), "%s", rep.env.error->message);
    mempool_reply_clear(&rep);
}

Test(mempool_svc, status_counts_admitted_and_refused_by_reason)
{
    alys_tx_t txs[2] = {transfer(0, 0, 2), transfer(0, 5, 2)};
    const char *r[2];
    submit(txs, 2, r);
    Alys__Mempool__GetMempoolStatus gs = ALYS__MEMPOOL__GET_MEMPOOL_STATUS__INIT;
    Alys__Mempool__MempoolMsg m = ALYS__MEMPOOL__MEMPOOL_MSG__INIT;
    m.msg_case = ALYS__MEMPOOL__MEMPOOL_MSG__MSG_GET_MEMPOOL_STATUS;
    m.get_mempool_status = &gs;
    mempool_reply_t rep;
    mempool_call(&m, &rep);
    const Alys__Mempool__MempoolStatus *s = rep.env.mempool->mempool_status;
    cr_assert_eq(s->txs, 1);
    cr_assert_eq(s->admitted, 1);
    cr_assert_eq(s->bytes, alys_tx_encoded_size(&txs[0]));
    cr_assert_eq(s->n_refused, 1);
    cr_assert_str_eq(s->refused[0]->reason, "nonce_gap");
    cr_assert_eq(s->refused[0]->count, 1);
    cr_assert_eq(s->max_txs, f.cfg.mempool_max_txs);
    mempool_reply_clear(&rep);
}

/* ---- reorgs ---- */

/* A branch of the fixture's chain: its block 1, then n blocks of txs
 * transfers of its own (heights 2..n+1). */
static tchain_t *branch(uint32_t n, uint32_t txs)
{
    tchain_t *b = tchain_new(8, 7, "mempool-svc-test");
    cr_assert_not_null(b);
    cr_assert_eq(tchain_extend(b, 1, 4), 0);
    cr_assert_arr_eq(b->tip_hash, f.chain->hashes[0], ALYS_HASH_LEN);
    tchain_diverge(b, 99);
    cr_assert_eq(tchain_extend(b, n, txs), 0);
    return b;
}

/* ExecuteBatch of b's blocks above 1 as a reorg with ancestor block 1. */
static void reorg_to(const tchain_t *b)
{
    Alys__Storage__ExecuteBatch eb = ALYS__STORAGE__EXECUTE_BATCH__INIT;
    eb.blocks = &b->blocks[1];
    eb.n_blocks = b->nblocks - 1;
    eb.reorg_ancestor_height = 1;
    eb.reorg_ancestor_hash = (ProtobufCBinaryData){ALYS_HASH_LEN, (uint8_t *) b->hashes[0]};
    execute(&eb);
    storage_head_t h;
    storage_head(f.store, &h);
    cr_assert_eq(h.height, b->nblocks);
    cr_assert_arr_eq(h.hash, b->tip_hash, ALYS_HASH_LEN, "the reorg committed");
}

Test(mempool_svc, txs_of_blocks_a_reorg_undid_come_back)
{
    alys_metrics_t *metrics = alys_metrics_new();
    cr_assert_not_null(metrics);
    mempool_svc_destroy(&f.mp);
    f.mp = mempool_svc_new(&f.cfg, f.store, metrics, 42);
    cr_assert_not_null(f.mp);
    cr_assert(alys_metric_has(metrics, "alys_mempool_reorg_returned_total", NULL, NULL));
    commit(1, 3);
    tchain_t *b = branch(3, 0); /* empty blocks: nothing of ours is in them */
    reorg_to(b);
    size_t undone = 0;
    for (uint64_t h = 2; h <= 3; h++) {
        alys_block_t blk;
        block_txs(h, &blk);
        undone += blk.tx_count;
        for (uint32_t i = 0; i < blk.tx_count; i++)
            cr_assert(alys_mempool_get(mempool_svc_pool(f.mp), blk.txs[i].from, blk.txs[i].nonce, NULL),
                      "tx %u of undone block %llu is back", i, (unsigned long long) h);
        alys_block_clear(&blk);
    }
    cr_assert_gt(undone, 0);
    cr_assert_eq(pool_size(), undone);
    cr_assert_eq(alys_metric_value(metrics, "alys_mempool_reorg_returned_total", NULL),
                 (double) undone);
    mempool_svc_destroy(&f.mp); /* before the registry it borrows */
    alys_metrics_destroy(&metrics);
    tchain_destroy(&b);
}

Test(mempool_svc, txs_the_new_branch_includes_leave_the_pool)
{
    commit(1, 1);
    tchain_t *b = branch(3, 4);
    alys_block_t blk;
    memset(&blk, 0, sizeof blk);
    alys_verdict_t v;
    cr_assert_eq(alys_block_decode(b->blocks[1].data, b->blocks[1].len, &blk, &v), 0);
    const char *r[16];
    submit(blk.txs, blk.tx_count, r); /* the branch's block 2, pooled on our block 1 */
    for (uint32_t i = 0; i < blk.tx_count; i++)
        cr_assert_str_eq(r[i], "added", "tx %u: %s", i, r[i]);
    alys_block_clear(&blk);
    commit(2, 3);
    reorg_to(b);
    for (uint64_t h = 2; h <= b->nblocks; h++) {
        cr_assert_eq(alys_block_decode(b->blocks[h - 1].data, b->blocks[h - 1].len, &blk, &v), 0);
        for (uint32_t i = 0; i < blk.tx_count; i++)
            cr_assert_not(alys_mempool_get(mempool_svc_pool(f.mp), blk.txs[i].from,
                                           blk.txs[i].nonce, NULL),
                          "tx %u of the new branch's block %llu left the pool", i,
                          (unsigned long long) h);
        alys_block_clear(&blk);
    }
    tchain_destroy(&b);
}
