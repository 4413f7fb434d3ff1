/*  test_mempool_bytes.c: the mempool's byte bounds (total and per sender),
 *  eviction of up to two cheaper tails for a byte shortfall, the byte-bounded
 *  selection the producer asks for (GetMempoolTxs), revalidation after a head
 *  change the pool was not shown, and the tx codec (mempool_tx.h). */
#include <criterion/criterion.h>
#include <string.h>

#include "chain/mempool.h"
#include "chain/mempool_tx.h"
#include "mp_fixture.h"

#define BAL 1000000

static mpf_t f;
static alys_mempool_t *pool;

static void make(uint32_t max_txs, uint32_t per_sender, uint64_t max_bytes, uint64_t sender_bytes)
{
    alys_mempool_destroy(&pool);
    alys_mempool_limits_t lim = {.max_txs = max_txs,
                                 .max_per_sender = per_sender,
                                 .max_bytes = max_bytes,
                                 .max_sender_bytes = sender_bytes};
    pool = alys_mempool_new(&lim);
    cr_assert_not_null(pool);
}

static void setup(void)
{
    mpf_init(&f, 8, BAL);
    make(100, 16, 0, 0);
}

static void teardown(void)
{
    alys_mempool_destroy(&pool);
    mpf_fini(&f);
}

TestSuite(mempool_bytes, .init = setup, .fini = teardown);

static alys_mempool_result_t add(uint32_t from, uint64_t amount, uint64_t fee, uint64_t nonce)
{
    alys_tx_t tx = mpf_tx(&f, from, 7, amount, fee, nonce);
    return alys_mempool_add(pool, &tx, &f.view, NULL);
}

static uint64_t size_of(uint64_t amount, uint64_t fee, uint64_t nonce)
{
    alys_tx_t tx = mpf_tx(&f, 0, 7, amount, fee, nonce);
    return alys_tx_encoded_size(&tx);
}

Test(mempool_bytes, bytes_are_the_sum_of_encoded_sizes)
{
    cr_assert_eq(add(0, 1, 1, 0), ALYS_MEMPOOL_ADDED);
    cr_assert_eq(add(1, 100000, 1, 0), ALYS_MEMPOOL_ADDED);
    cr_assert_eq(alys_mempool_bytes(pool), size_of(1, 1, 0) + size_of(100000, 1, 0));
    cr_assert_gt(size_of(100000, 1, 0), size_of(1, 1, 0)); /* varints: sizes differ */
}

Test(mempool_bytes, zero_byte_limits_mean_the_count_bounds_alone)
{
    make(3, 2, 0, 0);
    cr_assert_eq(add(0, 1, 1, 0), ALYS_MEMPOOL_ADDED);
    cr_assert_eq(add(0, 1, 1, 1), ALYS_MEMPOOL_ADDED);
    cr_assert_eq(add(0, 1, 1, 2), ALYS_MEMPOOL_SENDER_FULL);
}

Test(mempool_bytes, per_sender_byte_bound)
{
    make(100, 16, 0, size_of(1, 1, 0) + size_of(1, 1, 1)); /* a nonce of 0 is not encoded */
    cr_assert_eq(add(0, 1, 1, 0), ALYS_MEMPOOL_ADDED);
    cr_assert_eq(add(0, 1, 1, 1), ALYS_MEMPOOL_ADDED);
    cr_assert_eq(add(0, 1, 1, 2), ALYS_MEMPOOL_SENDER_FULL);
    cr_assert_eq(add(1, 1, 1, 0), ALYS_MEMPOOL_ADDED); /* another sender has its own */
}

Test(mempool_bytes, total_byte_bound_evicts_a_cheaper_tx_for_a_dearer_one)
{
    uint64_t s = size_of(1, 1, 0);
    make(100, 16, 3 * s, 0);
    cr_assert_eq(add(0, 1, 1, 0), ALYS_MEMPOOL_ADDED);
    cr_assert_eq(add(1, 1, 2, 0), ALYS_MEMPOOL_ADDED);
    cr_assert_eq(add(2, 1, 3, 0), ALYS_MEMPOOL_ADDED);
    cr_assert_eq(add(3, 1, 1, 0), ALYS_MEMPOOL_POOL_FULL); /* fee not above the cheapest */
    cr_assert_eq(add(3, 1, 4, 0), ALYS_MEMPOOL_ADDED_EVICTED);
    cr_assert_not(alys_mempool_get(pool, f.keys.account_pub[0], 0, NULL));
    cr_assert_leq(alys_mempool_bytes(pool), 3 * s);
}

Test(mempool_bytes, a_byte_shortfall_evicts_two_cheaper_tails)
{
    uint64_t small = size_of(1, 1, 0), big = size_of(1ULL << 40, 9, 0);
    mpf_set(&f, 4, UINT64_MAX / 2, 0);
    cr_assert_lt(small, big); /* so one victim is not enough: 2 small + big > 3 small */
    /* Room for three small txs, not for two small and one big one. */
    make(100, 16, 3 * small, 0);
    cr_assert_eq(add(0, 1, 1, 0), ALYS_MEMPOOL_ADDED);
    cr_assert_eq(add(1, 1, 2, 0), ALYS_MEMPOOL_ADDED);
    cr_assert_eq(add(2, 1, 3, 0), ALYS_MEMPOOL_ADDED);
    alys_tx_t tx = mpf_tx(&f, 4, 7, 1ULL << 40, 9, 0), evicted;
    cr_assert_eq(alys_mempool_add(pool, &tx, &f.view, &evicted), ALYS_MEMPOOL_ADDED_EVICTED);
    cr_assert_eq(evicted.fee, 1); /* the cheapest first */
    cr_assert_eq(alys_mempool_size(pool), 2);
    cr_assert(alys_mempool_get(pool, f.keys.account_pub[2], 0, NULL)); /* fee 3 stays */
    cr_assert_leq(alys_mempool_bytes(pool), 3 * small);
}

Test(mempool_bytes, a_shortfall_not_covered_by_cheaper_tails_evicts_nothing)
{
    uint64_t small = size_of(1, 1, 0);
    mpf_set(&f, 4, UINT64_MAX / 2, 0);
    make(100, 16, 3 * small, 0);
    cr_assert_eq(add(0, 1, 1, 0), ALYS_MEMPOOL_ADDED);
    cr_assert_eq(add(1, 1, 20, 0), ALYS_MEMPOOL_ADDED);
    cr_assert_eq(add(2, 1, 30, 0), ALYS_MEMPOOL_ADDED);
    /* Needs two victims; the second (fee 20) is not cheaper than 9. */
    cr_assert_eq(add(4, 1ULL << 40, 9, 0), ALYS_MEMPOOL_POOL_FULL);
    cr_assert_eq(alys_mempool_size(pool), 3);
    cr_assert(alys_mempool_get(pool, f.keys.account_pub[0], 0, NULL));
}

Test(mempool_bytes, bytes_follow_every_removal)
{
    cr_assert_eq(add(0, 1, 1, 0), ALYS_MEMPOOL_ADDED);
    cr_assert_eq(add(0, 1, 1, 1), ALYS_MEMPOOL_ADDED);
    cr_assert_eq(add(1, 1, 1, 0), ALYS_MEMPOOL_ADDED);
    alys_block_t b = {.tx_count = 1};
    alys_tx_t inc = mpf_tx(&f, 0, 7, 1, 1, 0);
    b.txs = &inc;
    mpf_set(&f, 0, BAL - 2, 1);
    cr_assert_eq(alys_mempool_on_block(pool, &b, &f.view), 1);
    cr_assert_eq(alys_mempool_bytes(pool), size_of(1, 1, 1) + size_of(1, 1, 0));
    mpf_set(&f, 1, 0, 0); /* sender 1 emptied behind the pool's back */
    cr_assert_eq(alys_mempool_revalidate(pool, &f.view), 1);
    cr_assert_eq(alys_mempool_bytes(pool), size_of(1, 1, 1));
    cr_assert_eq(alys_mempool_size(pool), 1);
}

Test(mempool_bytes, revalidate_cuts_runs_the_state_no_longer_allows)
{
    for (uint64_t n = 0; n < 3; n++)
        cr_assert_eq(add(0, 100, 1, n), ALYS_MEMPOOL_ADDED);
    cr_assert_eq(add(1, 100, 1, 0), ALYS_MEMPOOL_ADDED);
    cr_assert_eq(add(2, 100, 1, 0), ALYS_MEMPOOL_ADDED);
    mpf_set(&f, 0, 202, 0); /* covers two of sender 0's three */
    mpf_set(&f, 1, BAL, 1); /* its nonce 0 was spent elsewhere */
    cr_assert_eq(alys_mempool_revalidate(pool, &f.view), 2);
    cr_assert_eq(alys_mempool_sender_count(pool, f.keys.account_pub[0]), 2);
    cr_assert_eq(alys_mempool_sender_count(pool, f.keys.account_pub[1]), 0);
    cr_assert_eq(alys_mempool_sender_count(pool, f.keys.account_pub[2]), 1);
}

Test(mempool_bytes, bounded_selection_keeps_order_and_skips_what_does_not_fit)
{
    mpf_set(&f, 1, UINT64_MAX / 2, 0);
    cr_assert_eq(add(1, 1ULL << 40, 9, 0), ALYS_MEMPOOL_ADDED); /* 143 bytes */
    cr_assert_eq(add(1, 1, 9, 1), ALYS_MEMPOOL_ADDED);          /* 140 */
    cr_assert_eq(add(0, 1, 5, 0), ALYS_MEMPOOL_ADDED);          /* 138 */
    cr_assert_eq(add(0, 1, 5, 1), ALYS_MEMPOOL_ADDED);          /* 140 */
    cr_assert_eq(add(2, 1, 1, 0), ALYS_MEMPOOL_ADDED);          /* 138 */
    alys_tx_t out[8];
    uint64_t bytes = 0;
    /* 140 bytes: sender 1's first tx does not fit, so its second (which
     * would) cannot follow; sender 0's first fits, its second no longer;
     * sender 2's then does not fit either. */
    uint64_t room = size_of(1, 5, 1);
    size_t n = alys_mempool_select_bounded(pool, out, 8, room, &bytes);
    cr_assert_eq(n, 1);
    cr_assert_eq(bytes, size_of(1, 5, 0));
    cr_assert_arr_eq(out[0].from, f.keys.account_pub[0], ALYS_PUBKEY_LEN);
    cr_assert_eq(out[0].nonce, 0);
    /* With room for everything: fee order, each sender's run in nonce order. */
    n = alys_mempool_select_bounded(pool, out, 8, 1 << 20, &bytes);
    cr_assert_eq(n, 5);
    uint64_t fees[5] = {9, 9, 5, 5, 1}, nonces[5] = {0, 1, 0, 1, 0};
    for (size_t i = 0; i < n; i++) {
        cr_assert_eq(out[i].fee, fees[i], "tx %zu", i);
        cr_assert_eq(out[i].nonce, nonces[i], "tx %zu", i);
    }
    /* A count bound cuts in the same order. */
    cr_assert_eq(alys_mempool_select_bounded(pool, out, 2, 1 << 20, NULL), 2);
    cr_assert_eq(out[1].nonce, 1);
    cr_assert_eq(out[1].fee, 9);
}

/* ---- the tx codec ---- */

Test(mempool_bytes, tx_encoding_round_trips)
{
    alys_tx_t tx = mpf_tx(&f, 3, 4, 123456789, 77, 5), back;
    uint8_t buf[ALYS_TX_MAX_BYTES];
    size_t len = alys_tx_encode(&tx, buf);
    cr_assert_eq(len, alys_tx_encoded_size(&tx));
    cr_assert_eq(alys_tx_decode(buf, len, &back, NULL), 0);
    cr_assert_arr_eq(&back, &tx, sizeof tx);
}

Test(mempool_bytes, tx_decode_refuses_oversize_junk_and_bad_fields)
{
    uint8_t big[ALYS_TX_MAX_BYTES + 1] = {0};
    const char *why = NULL;
    alys_tx_t out;
    cr_assert_eq(alys_tx_decode(big, sizeof big, &out, &why), -1);
    cr_assert_str_eq(why, "oversize");
    uint8_t junk[4] = {0xff, 0xff, 0xff, 0xff};
    cr_assert_eq(alys_tx_decode(junk, sizeof junk, &out, &why), -1);
    cr_assert_str_eq(why, "undecodable");
    /* A field of the wrong length (a 1-byte "from"). */
    uint8_t short_from[3] = {0x0a, 0x01, 0x00};
    cr_assert_eq(alys_tx_decode(short_from, sizeof short_from, &out, &why), -1);
    cr_assert_str_eq(why, "bad_field");
}

Test(mempool_bytes, tx_id_covers_the_signature)
{
    alys_tx_t a = mpf_tx(&f, 0, 1, 5, 1, 0), b = a;
    b.signature[0] ^= 1;
    alys_hash_t ia, ib, ia2;
    alys_tx_id(&a, ia);
    alys_tx_id(&b, ib);
    alys_tx_id(&a, ia2);
    cr_assert_arr_neq(ia, ib, ALYS_HASH_LEN);
    cr_assert_arr_eq(ia, ia2, ALYS_HASH_LEN);
}
