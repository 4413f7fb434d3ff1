/*  test_mempool.c: common/chain/mempool, one test per rule and bound. */
#include <criterion/criterion.h>
#include <string.h>

#include "chain/mempool.h"
#include "mp_fixture.h"

#define BAL 1000

static mpf_t f;
static alys_mempool_t *pool;

static void setup_n(uint32_t max_txs, uint32_t per_sender)
{
    mpf_init(&f, 8, BAL);
    alys_mempool_limits_t lim = {.max_txs = max_txs, .max_per_sender = per_sender};
    pool = alys_mempool_new(&lim);
    cr_assert_not_null(pool);
}

static void setup(void)
{
    setup_n(100, 16);
}

static void teardown(void)
{
    alys_mempool_destroy(&pool);
    mpf_fini(&f);
}

static alys_mempool_result_t add(uint32_t from, uint64_t amount, uint64_t fee, uint64_t nonce)
{
    alys_tx_t tx = mpf_tx(&f, from, 7, amount, fee, nonce);
    return alys_mempool_add(pool, &tx, &f.view, NULL);
}

TestSuite(mempool, .init = setup, .fini = teardown);

Test(mempool, limits_out_of_range_are_refused)
{
    alys_mempool_limits_t zero = {.max_txs = 0, .max_per_sender = 1};
    alys_mempool_limits_t big = {.max_txs = ALYS_MEMPOOL_MAX_TXS + 1, .max_per_sender = 1};
    alys_mempool_limits_t sender0 = {.max_txs = 10, .max_per_sender = 0};
    cr_assert_null(alys_mempool_new(&zero));
    cr_assert_null(alys_mempool_new(&big));
    cr_assert_null(alys_mempool_new(&sender0));
}

Test(mempool, valid_tx_is_admitted_and_copied)
{
    alys_tx_t tx = mpf_tx(&f, 0, 1, 10, 2, 0);
    cr_assert_eq(alys_mempool_add(pool, &tx, &f.view, NULL), ALYS_MEMPOOL_ADDED);
    memset(&tx, 0, sizeof tx);
    alys_tx_t got;
    cr_assert(alys_mempool_get(pool, f.keys.account_pub[0], 0, &got));
    cr_assert_eq(got.amount, 10);
    cr_assert_eq(alys_mempool_size(pool), 1);
    cr_assert_eq(alys_mempool_senders(pool), 1);
}

Test(mempool, bad_signature_is_refused)
{
    alys_tx_t tx = mpf_tx(&f, 0, 1, 10, 2, 0);
    tx.amount = 11; /* signature now covers another tx */
    cr_assert_eq(alys_mempool_add(pool, &tx, &f.view, NULL), ALYS_MEMPOOL_BAD_SIGNATURE);
    cr_assert_eq(alys_mempool_size(pool), 0);
}

Test(mempool, same_tx_twice_is_a_duplicate)
{
    cr_assert_eq(add(0, 10, 1, 0), ALYS_MEMPOOL_ADDED);
    cr_assert_eq(add(0, 10, 1, 0), ALYS_MEMPOOL_DUPLICATE);
    cr_assert_eq(alys_mempool_size(pool), 1);
}

Test(mempool, another_tx_with_a_pooled_nonce_is_refused)
{
    cr_assert_eq(add(0, 10, 1, 0), ALYS_MEMPOOL_ADDED);
    cr_assert_eq(add(0, 20, 5, 0), ALYS_MEMPOOL_NONCE_TAKEN);
    alys_tx_t got;
    cr_assert(alys_mempool_get(pool, f.keys.account_pub[0], 0, &got));
    cr_assert_eq(got.amount, 10);
}

Test(mempool, nonce_below_the_account_nonce_is_too_low)
{
    mpf_set(&f, 0, BAL, 3);
    cr_assert_eq(add(0, 10, 1, 2), ALYS_MEMPOOL_NONCE_TOO_LOW);
    cr_assert_eq(add(0, 10, 1, 3), ALYS_MEMPOOL_ADDED);
}

Test(mempool, nonce_gap_is_refused_and_the_next_nonce_accepted)
{
    cr_assert_eq(add(0, 10, 1, 1), ALYS_MEMPOOL_NONCE_GAP);
    cr_assert_eq(add(0, 10, 1, 0), ALYS_MEMPOOL_ADDED);
    cr_assert_eq(add(0, 10, 1, 2), ALYS_MEMPOOL_NONCE_GAP);
    cr_assert_eq(add(0, 10, 1, 1), ALYS_MEMPOOL_ADDED);
}

Test(mempool, amount_plus_fee_over_balance_is_refused)
{
    cr_assert_eq(add(0, BAL, 1, 0), ALYS_MEMPOOL_INSUFFICIENT_BALANCE);
    cr_assert_eq(add(0, BAL - 1, 1, 0), ALYS_MEMPOOL_ADDED); /* exactly the balance */
}

Test(mempool, balance_covers_all_pooled_txs_of_the_sender)
{
    cr_assert_eq(add(0, 590, 10, 0), ALYS_MEMPOOL_ADDED);
    cr_assert_eq(add(0, 390, 11, 1), ALYS_MEMPOOL_INSUFFICIENT_BALANCE); /* 600 + 401 */
    cr_assert_eq(add(0, 390, 10, 1), ALYS_MEMPOOL_ADDED);                /* 600 + 400 */
}

Test(mempool, amount_plus_fee_overflowing_is_refused)
{
    mpf_set(&f, 0, UINT64_MAX, 0);
    cr_assert_eq(add(0, UINT64_MAX, 1, 0), ALYS_MEMPOOL_INSUFFICIENT_BALANCE);
}

Test(mempool, per_sender_bound)
{
    alys_mempool_destroy(&pool);
    alys_mempool_limits_t lim = {.max_txs = 100, .max_per_sender = 3};
    pool = alys_mempool_new(&lim);
    for (uint64_t n = 0; n < 3; n++)
        cr_assert_eq(add(0, 1, 1, n), ALYS_MEMPOOL_ADDED);
    cr_assert_eq(add(0, 1, 100, 3), ALYS_MEMPOOL_SENDER_FULL);
    cr_assert_eq(add(1, 1, 1, 0), ALYS_MEMPOOL_ADDED);
    cr_assert_eq(alys_mempool_sender_count(pool, f.keys.account_pub[0]), 3);
}

static void small_pool(void)
{
    setup_n(3, 16);
}
TestSuite(mempool_full, .init = small_pool, .fini = teardown);

Test(mempool_full, full_pool_refuses_a_fee_not_above_the_cheapest)
{
    cr_assert_eq(add(0, 1, 5, 0), ALYS_MEMPOOL_ADDED);
    cr_assert_eq(add(1, 1, 3, 0), ALYS_MEMPOOL_ADDED);
    cr_assert_eq(add(2, 1, 4, 0), ALYS_MEMPOOL_ADDED);
    cr_assert_eq(add(3, 1, 3, 0), ALYS_MEMPOOL_POOL_FULL); /* equal: not more */
    cr_assert_eq(add(3, 1, 2, 0), ALYS_MEMPOOL_POOL_FULL);
    cr_assert_eq(alys_mempool_size(pool), 3);
}

Test(mempool_full, full_pool_evicts_the_cheapest_for_a_higher_fee)
{
    cr_assert_eq(add(0, 1, 5, 0), ALYS_MEMPOOL_ADDED);
    cr_assert_eq(add(1, 1, 3, 0), ALYS_MEMPOOL_ADDED);
    cr_assert_eq(add(2, 1, 4, 0), ALYS_MEMPOOL_ADDED);
    alys_tx_t tx = mpf_tx(&f, 3, 7, 1, 4, 0), ev;
    cr_assert_eq(alys_mempool_add(pool, &tx, &f.view, &ev), ALYS_MEMPOOL_ADDED_EVICTED);
    cr_assert_eq(memcmp(ev.from, f.keys.account_pub[1], ALYS_PUBKEY_LEN), 0);
    cr_assert_eq(ev.fee, 3);
    cr_assert_not(alys_mempool_get(pool, f.keys.account_pub[1], 0, NULL));
    cr_assert_eq(alys_mempool_size(pool), 3);
    cr_assert_eq(alys_mempool_senders(pool), 3); /* the emptied sender is gone */
}

Test(mempool_full, eviction_takes_a_senders_last_tx_never_a_middle_one)
{
    cr_assert_eq(add(0, 1, 1, 0), ALYS_MEMPOOL_ADDED); /* cheapest, but not a tail */
    cr_assert_eq(add(0, 1, 9, 1), ALYS_MEMPOOL_ADDED);
    cr_assert_eq(add(1, 1, 3, 0), ALYS_MEMPOOL_ADDED);
    alys_tx_t tx = mpf_tx(&f, 2, 7, 1, 4, 0), ev;
    cr_assert_eq(alys_mempool_add(pool, &tx, &f.view, &ev), ALYS_MEMPOOL_ADDED_EVICTED);
    cr_assert_eq(memcmp(ev.from, f.keys.account_pub[1], ALYS_PUBKEY_LEN), 0);
    cr_assert(alys_mempool_get(pool, f.keys.account_pub[0], 0, NULL));
    cr_assert(alys_mempool_get(pool, f.keys.account_pub[0], 1, NULL));
}

Test(mempool_full, eviction_never_takes_the_newcomers_own_sender)
{
    cr_assert_eq(add(0, 1, 1, 0), ALYS_MEMPOOL_ADDED);
    cr_assert_eq(add(0, 1, 1, 1), ALYS_MEMPOOL_ADDED);
    cr_assert_eq(add(0, 1, 1, 2), ALYS_MEMPOOL_ADDED);
    cr_assert_eq(add(0, 1, 50, 3), ALYS_MEMPOOL_POOL_FULL);
}

Test(mempool_full, an_invalid_tx_never_evicts)
{
    cr_assert_eq(add(0, 1, 1, 0), ALYS_MEMPOOL_ADDED);
    cr_assert_eq(add(1, 1, 1, 0), ALYS_MEMPOOL_ADDED);
    cr_assert_eq(add(2, 1, 1, 0), ALYS_MEMPOOL_ADDED);
    alys_tx_t tx = mpf_tx(&f, 3, 7, 1, 99, 0);
    tx.fee = 100;
    cr_assert_eq(alys_mempool_add(pool, &tx, &f.view, NULL), ALYS_MEMPOOL_BAD_SIGNATURE);
    cr_assert_eq(add(3, 1, 99, 5), ALYS_MEMPOOL_NONCE_GAP);
    cr_assert_eq(alys_mempool_size(pool), 3);
    cr_assert(alys_mempool_get(pool, f.keys.account_pub[0], 0, NULL));
    cr_assert(alys_mempool_get(pool, f.keys.account_pub[1], 0, NULL));
    cr_assert(alys_mempool_get(pool, f.keys.account_pub[2], 0, NULL));
}

/* ---------------------------------------------------------------- commit, undo */

static alys_block_t block_of(alys_tx_t *txs, uint32_t n)
{
    alys_block_t b;
    memset(&b, 0, sizeof b);
    b.txs = txs;
    b.tx_count = n;
    return b;
}

Test(mempool, committed_block_removes_included_and_stale_txs)
{
    for (uint64_t n = 0; n < 4; n++)
        cr_assert_eq(add(0, 1, 1, n), ALYS_MEMPOOL_ADDED);
    cr_assert_eq(add(1, 1, 1, 0), ALYS_MEMPOOL_ADDED);
    /* The block holds account 0's nonces 0 and 1, one of them a tx the pool
     * never saw (another tx with nonce 1): both pooled 0 and 1 go. */
    alys_tx_t txs[2] = {mpf_tx(&f, 0, 7, 1, 1, 0), mpf_tx(&f, 0, 6, 2, 2, 1)};
    alys_block_t b = block_of(txs, 2);
    cr_assert_eq(alys_mempool_on_block(pool, &b, NULL), 2);
    cr_assert_not(alys_mempool_get(pool, f.keys.account_pub[0], 1, NULL));
    cr_assert(alys_mempool_get(pool, f.keys.account_pub[0], 2, NULL));
    cr_assert(alys_mempool_get(pool, f.keys.account_pub[0], 3, NULL));
    cr_assert(alys_mempool_get(pool, f.keys.account_pub[1], 0, NULL));
    cr_assert_eq(alys_mempool_size(pool), 3);
}

Test(mempool, committed_block_cuts_what_the_senders_new_balance_no_longer_covers)
{
    cr_assert_eq(add(0, 590, 10, 0), ALYS_MEMPOOL_ADDED);
    cr_assert_eq(add(0, 190, 10, 1), ALYS_MEMPOOL_ADDED);
    cr_assert_eq(add(0, 90, 10, 2), ALYS_MEMPOOL_ADDED);
    /* The block holds another nonce-0 tx of account 0 costing 750: the
     * state after it has 250 left, which covers nonce 1 (200), not also
     * nonce 2 (100). */
    alys_tx_t txs[1] = {mpf_tx(&f, 0, 6, 740, 10, 0)};
    mpf_set(&f, 0, BAL - 750, 1);
    alys_block_t b = block_of(txs, 1);
    cr_assert_eq(alys_mempool_on_block(pool, &b, &f.view), 2);
    cr_assert(alys_mempool_get(pool, f.keys.account_pub[0], 1, NULL));
    cr_assert_not(alys_mempool_get(pool, f.keys.account_pub[0], 2, NULL));
    cr_assert_eq(alys_mempool_size(pool), 1);
}

Test(mempool, committed_block_drops_a_run_that_no_longer_starts_at_the_account_nonce)
{
    cr_assert_eq(add(0, 1, 1, 0), ALYS_MEMPOOL_ADDED);
    cr_assert_eq(add(0, 1, 1, 1), ALYS_MEMPOOL_ADDED);
    alys_tx_t txs[1] = {mpf_tx(&f, 0, 6, 1, 1, 0)};
    mpf_set(&f, 0, BAL, 5); /* the account moved on further than the block says */
    alys_block_t b = block_of(txs, 1);
    cr_assert_eq(alys_mempool_on_block(pool, &b, &f.view), 2);
    cr_assert_eq(alys_mempool_size(pool), 0);
    cr_assert_eq(alys_mempool_senders(pool), 0);
}

Test(mempool, committed_block_of_unknown_senders_changes_nothing)
{
    cr_assert_eq(add(0, 1, 1, 0), ALYS_MEMPOOL_ADDED);
    alys_tx_t txs[1] = {mpf_tx(&f, 3, 7, 1, 1, 0)};
    alys_block_t b = block_of(txs, 1);
    cr_assert_eq(alys_mempool_on_block(pool, &b, &f.view), 0);
    cr_assert_eq(alys_mempool_size(pool), 1);
}

Test(mempool, undone_block_txs_come_back_before_the_senders_pooled_ones)
{
    /* Head: a block with account 0's nonces 0, 1 was committed (state nonce 2);
     * the pool holds nonce 2. A reorg undoes that block: state back to nonce 0. */
    alys_tx_t undone[2] = {mpf_tx(&f, 0, 7, 5, 1, 0), mpf_tx(&f, 0, 7, 5, 1, 1)};
    mpf_set(&f, 0, BAL - 12, 2);
    cr_assert_eq(add(0, 5, 1, 2), ALYS_MEMPOOL_ADDED);
    mpf_set(&f, 0, BAL, 0);
    alys_block_t b = block_of(undone, 2);
    cr_assert_eq(alys_mempool_readmit(pool, &b, 1, &f.view), 2);
    cr_assert_eq(alys_mempool_sender_count(pool, f.keys.account_pub[0]), 3);
    alys_tx_t out[3];
    cr_assert_eq(alys_mempool_select(pool, out, 3), 3);
    for (uint64_t n = 0; n < 3; n++)
        cr_assert_eq(out[n].nonce, n);
}

Test(mempool, undone_txs_the_new_branch_included_are_dropped)
{
    alys_tx_t undone[2] = {mpf_tx(&f, 0, 7, 5, 1, 0), mpf_tx(&f, 0, 7, 5, 1, 1)};
    mpf_set(&f, 0, BAL - 6, 1); /* the new branch included nonce 0 */
    alys_block_t b = block_of(undone, 2);
    cr_assert_eq(alys_mempool_readmit(pool, &b, 1, &f.view), 1);
    cr_assert_not(alys_mempool_get(pool, f.keys.account_pub[0], 0, NULL));
    cr_assert(alys_mempool_get(pool, f.keys.account_pub[0], 1, NULL));
}

/* ---------------------------------------------------------------- selection */

Test(mempool, selection_is_nonce_order_per_sender_and_fee_across_senders)
{
    cr_assert_eq(add(0, 1, 1, 0), ALYS_MEMPOOL_ADDED);
    cr_assert_eq(add(0, 1, 10, 1), ALYS_MEMPOOL_ADDED);
    cr_assert_eq(add(1, 1, 5, 0), ALYS_MEMPOOL_ADDED);
    cr_assert_eq(add(2, 1, 3, 0), ALYS_MEMPOOL_ADDED);
    alys_tx_t out[8];
    cr_assert_eq(alys_mempool_select(pool, out, 8), 4);
    uint64_t fees[4] = {5, 3, 1, 10};
    for (int i = 0; i < 4; i++)
        cr_assert_eq(out[i].fee, fees[i], "position %d: fee %llu", i, (unsigned long long) out[i].fee);
    cr_assert_eq(out[2].nonce, 0);
    cr_assert_eq(out[3].nonce, 1);
}

Test(mempool, selection_stops_at_max)
{
    for (uint32_t a = 0; a < 5; a++)
        cr_assert_eq(add(a, 1, 1 + a, 0), ALYS_MEMPOOL_ADDED);
    alys_tx_t out[2];
    cr_assert_eq(alys_mempool_select(pool, out, 2), 2);
    cr_assert_eq(out[0].fee, 5);
    cr_assert_eq(out[1].fee, 4);
}

Test(mempool, dropping_a_sender_skips_its_later_txs)
{
    cr_assert_eq(add(0, 1, 9, 0), ALYS_MEMPOOL_ADDED);
    cr_assert_eq(add(0, 1, 9, 1), ALYS_MEMPOOL_ADDED);
    cr_assert_eq(add(1, 1, 1, 0), ALYS_MEMPOOL_ADDED);
    alys_mempool_iter_t *it = alys_mempool_iter_new(pool);
    const alys_tx_t *tx = alys_mempool_iter_next(it);
    cr_assert_eq(memcmp(tx->from, f.keys.account_pub[0], ALYS_PUBKEY_LEN), 0);
    alys_mempool_iter_drop_sender(it);
    tx = alys_mempool_iter_next(it);
    cr_assert_eq(memcmp(tx->from, f.keys.account_pub[1], ALYS_PUBKEY_LEN), 0);
    cr_assert_null(alys_mempool_iter_next(it));
    alys_mempool_iter_destroy(&it);
    cr_assert_null(it);
}

Test(mempool, result_names_are_stable)
{
    cr_assert_str_eq(alys_mempool_result_name(ALYS_MEMPOOL_POOL_FULL), "pool_full");
    cr_assert_str_eq(alys_mempool_result_name(ALYS_MEMPOOL_NONCE_GAP), "nonce_gap");
    for (int r = 0; r < ALYS_MEMPOOL_RESULT_COUNT; r++)
        cr_assert_not_null(alys_mempool_result_name((alys_mempool_result_t) r));
    cr_assert_str_eq(alys_mempool_result_name(ALYS_MEMPOOL_RESULT_COUNT), "unknown");
}

Test(mempool, readmitting_many_txs_of_one_sender_keeps_them_all_in_order)
{
    alys_mempool_destroy(&pool);
    alys_mempool_limits_t lim = {.max_txs = 1000, .max_per_sender = 100};
    pool = alys_mempool_new(&lim);
    alys_tx_t undone[50];
    for (uint64_t n = 0; n < 50; n++)
        undone[n] = mpf_tx(&f, 0, 7, 1, 1, n);
    mpf_set(&f, 0, BAL - 100, 50); /* the head after the undone block */
    for (uint64_t n = 50; n < 60; n++)
        cr_assert_eq(add(0, 1, 1, n), ALYS_MEMPOOL_ADDED);
    mpf_set(&f, 0, BAL, 0); /* the new head: the block is undone */
    alys_block_t b = block_of(undone, 50);
    cr_assert_eq(alys_mempool_readmit(pool, &b, 1, &f.view), 50);
    cr_assert_eq(alys_mempool_size(pool), 60);
    alys_tx_t out[60];
    cr_assert_eq(alys_mempool_select(pool, out, 60), 60);
    for (uint64_t n = 0; n < 60; n++)
        cr_assert_eq(out[n].nonce, n);
}
