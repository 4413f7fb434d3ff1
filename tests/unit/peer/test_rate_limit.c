/*  The serving side's per-peer token bucket: burst, limit, refill, isolation,
 *  bounded table, odd keys and clocks. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "rate_limit.h"

#define T0 1700000000000ull

static int allowed_n(serve_limiter_t *l, const char *key, int tries, uint64_t now)
{
    int ok = 0;
    for (int i = 0; i < tries; i++)
        ok += serve_limiter_allow_str(l, key, now);
    return ok;
}

Test(rate_limit, burst_then_limit_then_refill)
{
    serve_limiter_t *l = serve_limiter_new(10, 0); /* 10/s, burst 20 */
    cr_assert_not_null(l);
    cr_expect_eq(allowed_n(l, "flood", 25, T0), 20);
    cr_expect_eq(serve_limiter_refused(l), 5);
    cr_expect_not(serve_limiter_allow_str(l, "flood", T0 + 99));
    cr_expect(serve_limiter_allow_str(l, "flood", T0 + 100)); /* one token per 100 ms */
    cr_expect_not(serve_limiter_allow_str(l, "flood", T0 + 100));
    /* A long quiet spell refills to the burst, not beyond. */
    cr_expect_eq(allowed_n(l, "flood", 30, T0 + 60000), 20);
    /* Sustained: 10 per second. */
    int ok = 0;
    for (uint64_t ms = 0; ms < 1000; ms += 10)
        ok += serve_limiter_allow_str(l, "flood", T0 + 60000 + ms + 10);
    cr_expect(ok >= 9 && ok <= 11, "sustained %d", ok);
    serve_limiter_destroy(&l);
    cr_expect_null(l);
}

Test(rate_limit, peers_are_independent)
{
    serve_limiter_t *l = serve_limiter_new(5, 0);
    cr_assert_not_null(l);
    cr_expect_eq(allowed_n(l, "flood", 100, T0), 10);
    cr_expect_eq(allowed_n(l, "polite", 3, T0), 3);
    serve_limiter_destroy(&l);
}

Test(rate_limit, zero_rate_disables)
{
    serve_limiter_t *l = serve_limiter_new(0, 0);
    cr_assert_not_null(l);
    cr_expect_eq(allowed_n(l, "any", 10000, T0), 10000);
    cr_expect_eq(serve_limiter_size(l), 0);
    serve_limiter_destroy(&l);
}

Test(rate_limit, table_is_bounded_and_keeps_the_flooder)
{
    serve_limiter_t *l = serve_limiter_new(1, 4); /* burst 2, 4 buckets */
    cr_assert_not_null(l);
    char key[32];
    for (int i = 0; i < 3; i++) {
        snprintf(key, sizeof key, "quiet%d", i);
        cr_expect(serve_limiter_allow_str(l, key, T0 + (uint64_t) i));
    }
    cr_expect_eq(allowed_n(l, "flood", 5, T0 + 10), 2);
    /* Many new peers later: the quiet ones are recycled, the flooder (seen
     * most recently) keeps its empty bucket. */
    for (int i = 0; i < 50; i++) {
        snprintf(key, sizeof key, "new%d", i);
        cr_expect(serve_limiter_allow_str(l, key, T0 + 20));
        cr_expect_not(serve_limiter_allow_str(l, "flood", T0 + 20));
        cr_expect_leq(serve_limiter_size(l), 4);
    }
    cr_expect_eq(serve_limiter_size(l), 4);
    serve_limiter_destroy(&l);
}

Test(rate_limit, bad_keys_and_clock_steps)
{
    serve_limiter_t *l = serve_limiter_new(1, 0);
    cr_assert_not_null(l);
    uint8_t big[SERVE_LIMITER_KEY_MAX + 1];
    memset(big, 1, sizeof big);
    cr_expect_not(serve_limiter_allow(l, big, sizeof big, T0));
    cr_expect(serve_limiter_allow(l, big, SERVE_LIMITER_KEY_MAX, T0));
    cr_expect_not(serve_limiter_allow(l, NULL, 0, T0));
    cr_expect_not(serve_limiter_allow_str(l, "", T0));
    /* Binary routing ids with zeros are distinct keys. */
    uint8_t a[5] = {0, 1, 2, 3, 4}, b[5] = {0, 1, 2, 3, 5};
    cr_expect_eq(serve_limiter_allow(l, a, 5, T0) + serve_limiter_allow(l, a, 5, T0), 2);
    cr_expect(serve_limiter_allow(l, b, 5, T0));
    cr_expect_not(serve_limiter_allow(l, a, 5, T0));
    /* Clock steps back then forward: no free tokens from the step. */
    cr_expect_not(serve_limiter_allow(l, a, 5, T0 - 5000));
    cr_expect_not(serve_limiter_allow(l, a, 5, T0 - 4500));
    cr_expect(serve_limiter_allow(l, a, 5, T0 - 4000));
    serve_limiter_destroy(&l);
}

/* ---- bytes ------------------------------------------------------------------ */

#define MIB (1024u * 1024u)

Test(rate_limit, bytes_cut_off_big_frames_long_before_the_message_count_does)
{
    serve_limiter_t *l = serve_limiter_new(100, 0); /* 100 msgs/s: 200 burst */
    serve_limiter_set_byte_rate(l, 1 * MIB);        /* burst: one frame, 8 MiB */
    int passed = 0;
    for (int i = 0; i < 10; i++)
        passed += serve_limiter_bytes(l, "big", 3, 3 * MIB, T0);
    cr_expect_eq(passed, 2, "8 MiB of burst: two 3 MiB frames, not %d", passed);
    cr_expect_eq(serve_limiter_refused_bytes(l), 8);
    cr_expect_eq(serve_limiter_refused(l), 0, "no message was refused for its count");
    /* The same peer's small requests still pass the message bucket. */
    cr_expect(serve_limiter_allow(l, "big", 3, T0));
    /* 2 MiB were left, refilled at 1 MiB/s: one more frame of 3 MiB after
     * a second, not before. */
    cr_expect_not(serve_limiter_bytes(l, "big", 3, 3 * MIB, T0 + 999));
    cr_expect(serve_limiter_bytes(l, "big", 3, 3 * MIB, T0 + 1000));
    serve_limiter_destroy(&l);
}

Test(rate_limit, a_rested_byte_bucket_passes_one_whole_frame_whatever_the_rate)
{
    serve_limiter_t *l = serve_limiter_new(10, 0);
    serve_limiter_set_byte_rate(l, 1024); /* 1 KiB/s */
    cr_expect(serve_limiter_bytes(l, "a", 1, SERVE_LIMITER_MIN_BYTE_BURST, T0));
    cr_expect_not(serve_limiter_bytes(l, "a", 1, 1, T0));
    cr_expect_not(serve_limiter_bytes(l, "a", 1, SERVE_LIMITER_MIN_BYTE_BURST + 1, T0 + 10000000));
    serve_limiter_destroy(&l);
}

Test(rate_limit, byte_buckets_are_per_peer_and_off_by_default)
{
    serve_limiter_t *l = serve_limiter_new(10, 0);
    cr_expect(serve_limiter_bytes(l, "x", 1, UINT64_MAX, T0), "bytes limited before set");
    serve_limiter_set_byte_rate(l, MIB);
    cr_expect(serve_limiter_bytes(l, "x", 1, 8 * MIB, T0));
    cr_expect_not(serve_limiter_bytes(l, "x", 1, 1, T0));
    cr_expect(serve_limiter_bytes(l, "y", 1, 8 * MIB, T0), "another peer paid for x");
    cr_expect_not(serve_limiter_bytes(l, "", 0, 1, T0), "an empty key is refused");
    serve_limiter_destroy(&l);
}

Test(rate_limit, a_clock_stepping_back_refills_no_bytes)
{
    serve_limiter_t *l = serve_limiter_new(10, 0);
    serve_limiter_set_byte_rate(l, MIB);
    cr_expect(serve_limiter_bytes(l, "x", 1, 8 * MIB, T0 + 5000));
    cr_expect_not(serve_limiter_bytes(l, "x", 1, MIB, T0));
    cr_expect_not(serve_limiter_bytes(l, "x", 1, MIB, T0 + 500));
    serve_limiter_destroy(&l);
}
