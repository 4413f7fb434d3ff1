/*  test_loadgen.c: alys-loadgen's pure core (actors/loadgen/loadgen.c):
 *  its txs are valid (a mempool on the chain's genesis admits every one),
 *  their encoding round-trips, the genesis budget holds, the pacing. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "chain.pb-c.h"
#include "chain/mempool.h"
#include "loadgen.h"
#include "mp_fixture.h"
#include "submit.h"

#define ACCOUNTS 6

static mpf_t f;
static const loadgen_params_t P = {.amount_max = 100, .fee_min = 2, .fee_max = 9, .rng_seed = 3};

static void setup(void)
{
    mpf_init(&f, ACCOUNTS, 1000000);
}
static void teardown(void)
{
    mpf_fini(&f);
}
TestSuite(loadgen, .init = setup, .fini = teardown);

Test(loadgen, every_tx_is_admitted_by_a_mempool_on_the_genesis_state)
{
    char err[256] = "";
    loadgen_t *gen = loadgen_new(&f.keys, &f.g, &P, err, sizeof err);
    cr_assert_not_null(gen, "%s", err);
    alys_mempool_limits_t lim = {.max_txs = 1000, .max_per_sender = 100};
    alys_mempool_t *pool = alys_mempool_new(&lim);
    for (int i = 0; i < 300; i++) {
        alys_tx_t tx;
        cr_assert_eq(loadgen_next(gen, &tx), 1);
        cr_assert_neq(memcmp(tx.from, tx.to, ALYS_PUBKEY_LEN), 0);
        cr_assert(tx.amount >= 1 && tx.amount <= 100);
        cr_assert(tx.fee >= 2 && tx.fee <= 9);
        cr_assert_eq(tx.nonce, (uint64_t) (i / ACCOUNTS), "round-robin: consecutive nonces");
        alys_mempool_result_t r = alys_mempool_add(pool, &tx, &f.view, NULL);
        cr_assert(alys_mempool_admitted(r), "tx %d: %s", i, alys_mempool_result_name(r));
    }
    alys_mempool_destroy(&pool);
    loadgen_destroy(&gen);
    cr_assert_null(gen);
}

Test(loadgen, encoding_is_the_chains_tx_and_round_trips)
{
    char err[256];
    loadgen_t *gen = loadgen_new(&f.keys, NULL, &P, err, sizeof err);
    alys_tx_t tx;
    cr_assert_eq(loadgen_next(gen, &tx), 1);
    tx.amount = tx.fee = tx.nonce = UINT64_MAX; /* the longest varints */
    uint8_t buf[LOADGEN_TX_MAX_BYTES];
    size_t len = loadgen_encode_tx(&tx, buf, sizeof buf);
    cr_assert_gt(len, 0);
    Alys__Chain__Tx *m = alys__chain__tx__unpack(NULL, len, buf);
    cr_assert_not_null(m);
    cr_assert_eq(m->from.len, ALYS_PUBKEY_LEN);
    cr_assert_eq(memcmp(m->from.data, tx.from, ALYS_PUBKEY_LEN), 0);
    cr_assert_eq(memcmp(m->to.data, tx.to, ALYS_PUBKEY_LEN), 0);
    cr_assert_eq(memcmp(m->signature.data, tx.signature, ALYS_SIG_LEN), 0);
    cr_assert_eq(m->amount, UINT64_MAX);
    cr_assert_eq(m->nonce, UINT64_MAX);
    alys__chain__tx__free_unpacked(m, NULL);
    cr_assert_eq(loadgen_encode_tx(&tx, buf, 10), 0, "a buffer too small is refused");
    loadgen_destroy(&gen);
}

Test(loadgen, an_account_never_spends_more_than_its_genesis_balance)
{
    mpf_fini(&f);
    mpf_init(&f, 2, 50);
    char err[256] = "";
    loadgen_t *gen = loadgen_new(&f.keys, &f.g, &P, err, sizeof err);
    cr_assert_not_null(gen, "%s", err);
    uint64_t spent[2] = {0, 0};
    alys_tx_t tx;
    int n = 0, rc;
    while ((rc = loadgen_next(gen, &tx)) == 1 && n < 1000) {
        int i = memcmp(tx.from, f.keys.account_pub[0], ALYS_PUBKEY_LEN) == 0 ? 0 : 1;
        spent[i] += tx.amount + tx.fee;
        n++;
    }
    cr_assert_eq(rc, 0, "the generator stops when nobody can pay");
    cr_assert_leq(spent[0], 50);
    cr_assert_leq(spent[1], 50);
    loadgen_destroy(&gen);
}

Test(loadgen, a_seed_whose_accounts_the_genesis_does_not_fund_is_refused)
{
    alys_forge_keys_t other;
    cr_assert_eq(alys_forge_keys_derive("another-seed", 0, 2, &other), 0);
    char err[256] = "";
    cr_assert_null(loadgen_new(&other, &f.g, &P, err, sizeof err));
    cr_assert(strstr(err, "not funded in the genesis"), "%s", err);
    alys_forge_keys_clear(&other);
}

Test(loadgen, bad_parameters_are_refused)
{
    char err[256];
    loadgen_params_t p = P;
    p.amount_max = 0;
    cr_assert_null(loadgen_new(&f.keys, NULL, &p, err, sizeof err));
    p = P;
    p.fee_min = 10;
    p.fee_max = 9;
    cr_assert_null(loadgen_new(&f.keys, NULL, &p, err, sizeof err));
}

Test(loadgen, the_same_rng_seed_gives_the_same_txs)
{
    char err[256];
    loadgen_t *a = loadgen_new(&f.keys, NULL, &P, err, sizeof err);
    loadgen_t *b = loadgen_new(&f.keys, NULL, &P, err, sizeof err);
    for (int i = 0; i < 20; i++) {
        alys_tx_t x, y;
        cr_assert_eq(loadgen_next(a, &x), 1);
        cr_assert_eq(loadgen_next(b, &y), 1);
        cr_assert_eq(memcmp(&x, &y, sizeof x), 0);
    }
    loadgen_destroy(&a);
    loadgen_destroy(&b);
}

Test(loadgen, first_nonce_starts_every_account_there)
{
    char err[256];
    loadgen_params_t p = P;
    p.first_nonce = 41;
    loadgen_t *gen = loadgen_new(&f.keys, NULL, &p, err, sizeof err);
    alys_tx_t tx;
    for (int i = 0; i < ACCOUNTS; i++) {
        cr_assert_eq(loadgen_next(gen, &tx), 1);
        cr_assert_eq(tx.nonce, 41);
    }
    cr_assert_eq(loadgen_next(gen, &tx), 1);
    cr_assert_eq(tx.nonce, 42);
    loadgen_destroy(&gen);
}

Test(loadgen, pacing_releases_rate_txs_per_second)
{
    const uint64_t s = 1000000;
    cr_assert_eq(loadgen_due(10, s, s, 0), 1, "the first is due at the start");
    cr_assert_eq(loadgen_due(10, s, s, 1), 0);
    cr_assert_eq(loadgen_wait_ms(10, s, s, 1), 100);
    cr_assert_eq(loadgen_due(10, s, s + 99, 1), 0);
    cr_assert_eq(loadgen_due(10, s, s + 100, 1), 1);
    cr_assert_eq(loadgen_due(10, s, s + 1000, 1), 10);
    cr_assert_eq(loadgen_due(3, s, s + 1000, 3), 1);
    cr_assert_eq(loadgen_wait_ms(3, s, s + 1, 1), 333, "tx 1 of 3/s is due at 334 ms");
    cr_assert_eq(loadgen_due(10, s, s - 5, 0), 0);
    cr_assert_eq(loadgen_due(0, s, s, 12345), 1, "rate 0: always one more");
    cr_assert_eq(loadgen_wait_ms(0, s, s, 12345), 0);
}

Test(loadgen, set_account_starts_an_account_at_the_heads_nonce_and_balance)
{
    char err[256] = "";
    loadgen_t *gen = loadgen_new(&f.keys, &f.g, &P, err, sizeof err);
    cr_assert_not_null(gen, "%s", err);
    for (uint32_t i = 0; i < ACCOUNTS; i++)
        cr_assert_eq(loadgen_set_account(gen, i, 7, i == 0 ? 30 : 0), 0);
    cr_assert_eq(loadgen_set_account(gen, ACCOUNTS, 0, 0), -1);
    alys_tx_t tx;
    uint64_t spent = 0;
    int n = 0;
    while (loadgen_next(gen, &tx) == 1) {
        cr_assert_eq(memcmp(tx.from, f.keys.account_pub[0], ALYS_PUBKEY_LEN), 0,
                     "only the funded account sends");
        cr_assert_eq(tx.nonce, 7 + (uint64_t) n);
        spent += tx.amount + tx.fee;
        n++;
    }
    cr_assert_gt(n, 0);
    cr_assert_leq(spent, 30);
    loadgen_destroy(&gen);
    gen = loadgen_new(&f.keys, NULL, &P, err, sizeof err);
    cr_assert_eq(loadgen_set_account(gen, 0, 1, 1), -1, "no budgets without a genesis");
    loadgen_destroy(&gen);
}

/* ---- alys-loadgen --submit: the tally of the node's answers (submit.h) ---- */

Test(loadgen, submit_tally_counts_accepted_and_each_refusal_reason)
{
    submit_tally_t t;
    memset(&t, 0, sizeof t);
    const char *rs[] = {"added", "nonce_gap", "added_evicted", "nonce_gap", "bad_signature"};
    for (size_t i = 0; i < 5; i++)
        submit_tally_result(&t, rs[i]);
    cr_assert_eq(t.accepted, 2);
    cr_assert_str_eq(t.reason[0], "nonce_gap");
    cr_assert_eq(t.count[0], 2);
    cr_assert_str_eq(t.reason[1], "bad_signature");
    cr_assert_eq(t.count[1], 1);
    cr_assert_eq(t.reason[2][0], 0);
}

Test(loadgen, submit_tally_is_bounded_in_reasons)
{
    submit_tally_t t;
    memset(&t, 0, sizeof t);
    char name[32];
    for (int i = 0; i < SUBMIT_REASONS + 5; i++) {
        snprintf(name, sizeof name, "r%d", i);
        submit_tally_result(&t, name);
    }
    cr_assert_str_eq(t.reason[SUBMIT_REASONS - 1], "r23");
    cr_assert_eq(t.count[SUBMIT_REASONS - 1], 1);
}
