/*  Adaptive batch size (the seed's formula and its bounds, fixed mode) and the
 *  per-peer adaptive request timeout. */
#include "peer_test_util.h"

#define MB 1e6

Test(batch, formula_no_data_is_the_base)
{
    cr_expect_eq(peer_batch_size_formula(0, 0, 0, 16, 1024), 128);
    cr_expect_eq(peer_batch_size_formula(50 * MB, 0, 3, 16, 1024), 128); /* no latency */
    cr_expect_eq(peer_batch_size_formula(0, 0, 0, 200, 1024), 200);      /* base clamped */
}

Test(batch, formula_factors)
{
    /* 20 MB/s -> 2, 100 ms -> 1, 5 peers -> 1 */
    cr_expect_eq(peer_batch_size_formula(20 * MB, 100, 5, 16, 1024), 256);
    /* no bandwidth measured -> 1; 50 ms -> 2; 10 peers -> 2 */
    cr_expect_eq(peer_batch_size_formula(0, 50, 10, 16, 1024), 512);
    /* slow: factor floors 1 * 0.5 * 0.5 */
    cr_expect_eq(peer_batch_size_formula(0.1 * MB, 1000, 1, 16, 1024), 32);
}

Test(batch, formula_clamps)
{
    /* Fast big network: 128 * 8 * 4 * 2 = 8192 -> max. */
    cr_expect_eq(peer_batch_size_formula(500 * MB, 1, 50, 16, 1024), 1024);
    /* Slow single peer: 32 -> min. */
    cr_expect_eq(peer_batch_size_formula(0.1 * MB, 5000, 1, 64, 1024), 64);
}

Test(batch, table_fast_network_clamps_to_max)
{
    peer_table_t *t = table_with(NULL);
    char id[16];
    for (int i = 0; i < 10; i++) {
        snprintf(id, sizeof id, "p%d", i);
        add_connected(t, id, 10, T0);
        record_ok(t, id, 2, 1000000, 128, T0); /* 500 MB/s, 2 ms */
    }
    cr_expect_eq(peer_table_batch_size(t, T0), 1024);
    peer_table_destroy(&t);
}

Test(batch, table_slow_single_peer_clamps_to_min)
{
    peer_table_config_t cfg;
    peer_table_config_defaults(&cfg);
    cfg.min_batch_size = 64;
    peer_table_t *t = table_with(&cfg);
    add_connected(t, "slow", 10, T0);
    record_ok(t, "slow", 2000, 100000, 16, T0); /* 50 kB/s, 2 s */
    cr_expect_eq(peer_table_batch_size(t, T0), 64);
    peer_table_destroy(&t);
}

Test(batch, table_no_data_is_base_and_fixed_mode)
{
    peer_table_t *t = table_with(NULL);
    cr_expect_eq(peer_table_batch_size(t, T0), 128); /* no peers at all */
    add_connected(t, "a", 10, T0);
    cr_expect_eq(peer_table_batch_size(t, T0), 128); /* peer, nothing measured */
    peer_table_destroy(&t);

    peer_table_config_t cfg;
    peer_table_config_defaults(&cfg);
    cfg.adaptive_batch = false;
    cfg.fixed_batch_size = 256;
    t = table_with(&cfg);
    add_connected(t, "a", 10, T0);
    record_ok(t, "a", 1, 10000000, 128, T0);
    cr_expect_eq(peer_table_batch_size(t, T0), 256);
    peer_table_destroy(&t);
}

Test(batch, banned_peers_do_not_count)
{
    peer_table_t *t = table_with(NULL);
    add_connected(t, "slow", 10, T0);
    add_connected(t, "fast-liar", 10, T0);
    record_ok(t, "slow", 100, 2000000, 128, T0); /* 20 MB/s, 100 ms */
    record_ok(t, "fast-liar", 1, 10000000, 128, T0);
    record(t, "fast-liar", PEER_OUTCOME_VIOLATION, T0);
    /* slow alone: 2 * 1 * 0.5 (1 peer) */
    cr_expect_eq(peer_table_batch_size(t, T0), 128);
    peer_table_destroy(&t);
}

Test(timeout, unmeasured_gets_the_ceiling)
{
    peer_table_t *t = table_with(NULL);
    add_connected(t, "a", 10, T0);
    cr_expect_eq(peer_table_request_timeout(t, "a", 128), 5000);
    cr_expect_eq(peer_table_request_timeout(t, "nobody", 128), 5000);
    peer_table_destroy(&t);
}

Test(timeout, adapts_to_latency_and_its_variance)
{
    peer_table_t *t = table_with(NULL);
    add_connected(t, "a", 10, T0);
    record_ok(t, "a", 1000, 100000, 100, T0);
    /* First sample: srtt 1000, rttvar 500 -> 3000. */
    cr_expect_eq(peer_table_request_timeout(t, "a", 100), 3000);
    for (int i = 0; i < 30; i++)
        record_ok(t, "a", 1000, 100000, 100, T0);
    /* Steady latency: the variance term fades, the timeout tightens. */
    uint32_t steady = peer_table_request_timeout(t, "a", 100);
    cr_expect(steady >= 1000 && steady < 1100, "steady %u", steady);
    /* Twice the usual request size: twice the time. */
    uint32_t big = peer_table_request_timeout(t, "a", 200);
    cr_expect(big >= 2 * steady - 2 && big <= 2 * steady + 2, "big %u", big);
    /* Smaller requests are not given less than the usual. */
    cr_expect_eq(peer_table_request_timeout(t, "a", 10), steady);
    peer_table_destroy(&t);
}

Test(timeout, stays_within_bounds)
{
    peer_table_t *t = table_with(NULL);
    add_connected(t, "fast", 10, T0);
    add_connected(t, "slow", 10, T0);
    for (int i = 0; i < 10; i++) {
        record_ok(t, "fast", 2, 100000, 128, T0);
        /* Slow without a byte counted (latency only): no bandwidth says a
         * transfer needs longer, so request_timeout_ms bounds it. */
        record_ok(t, "slow", 6000, 0, 128, T0);
    }
    cr_expect_eq(peer_table_request_timeout(t, "fast", 128), 500);  /* floor */
    cr_expect_eq(peer_table_request_timeout(t, "slow", 128), 5000); /* ceiling */
    /* 50 MB/s, but 10^7 blocks would take minutes: the hard bound. */
    cr_expect_eq(peer_table_request_timeout(t, "fast", 10000000),
                 5000 * ALYS_REQUEST_TIMEOUT_HARD_FACTOR);
    peer_table_destroy(&t);
}

/* Issue 11: a peer whose upload is capped at ~300 blocks/s of 1631 bytes
 * (what scripts/bench_sync.sh's fault proxy does) is asked for 1024 blocks:
 * 3.4 s of pure transfer, more behind a queued request. It must get the time
 * its measured bandwidth says, past request_timeout_ms, below the hard bound. */
Test(timeout, bandwidth_bound_peer_gets_its_transfer_time)
{
    peer_table_t *t = table_with(NULL);
    add_connected(t, "capped", 10, T0);
    cr_assert_eq(peer_table_record_rtt(t, "capped", 2, T0), PEER_OK); /* a Status ping */
    for (int i = 0; i < 10; i++)
        record_ok(t, "capped", 855, 256 * 1631, 256, T0); /* ~488 kB/s */
    uint32_t ms = peer_table_request_timeout(t, "capped", 1024);
    /* need = 2 + 2 * 1024 * 1631 / 488346 B/s = ~6842 ms */
    cr_expect(ms > 5000, "timeout %u ms: cut off at request_timeout_ms", ms);
    cr_expect(ms >= 6800 && ms <= 6900, "timeout %u ms", ms);
    cr_expect(ms < 5000 * ALYS_REQUEST_TIMEOUT_HARD_FACTOR);
    /* The range it usually answers fits the ceiling: the latency RTO rules. */
    cr_expect(peer_table_request_timeout(t, "capped", 256) <= 5000);
    peer_table_destroy(&t);
}

/* The first range asked of a fresh peer in a bandwidth-bound network is
 * predicted with the measured peers' bandwidth: with the sequential
 * strategy one timeout fails the sync. Nothing measured anywhere: the
 * ceiling for 256 blocks, proportionally more for a bigger range. */
Test(timeout, fresh_peer_among_capped_ones_gets_their_transfer_time)
{
    peer_table_t *t = table_with(NULL);
    add_connected(t, "fresh", 10, T0);
    /* Nothing measured: request_timeout_ms per ALYS_REQUEST_TIMEOUT_REF_BLOCKS. */
    cr_expect_eq(peer_table_request_timeout(t, "fresh", 1024),
                 5000 * 1024 / ALYS_REQUEST_TIMEOUT_REF_BLOCKS, "nothing measured");
    cr_expect_eq(peer_table_request_timeout(t, "fresh", 128), 5000, "nothing measured, small range");
    add_connected(t, "capped", 10, T0);
    for (int i = 0; i < 10; i++)
        record_ok(t, "capped", 855, 256 * 1631, 256, T0); /* ~488 kB/s */
    uint32_t ms = peer_table_request_timeout(t, "fresh", 1024);
    cr_expect(ms >= 6800 && ms <= 6900, "timeout %u ms", ms); /* 2 x 3.42 s */
    peer_table_destroy(&t);
}

/* 60 kB/s, 1024 blocks of 1.6 kB: 27 s of transfer, 55 s with the margin:
 * past request_timeout_ms, held at the hard bound. */
Test(timeout, slow_peer_is_held_at_the_hard_bound)
{
    peer_table_t *t = table_with(NULL);
    add_connected(t, "slow", 10, T0);
    for (int i = 0; i < 10; i++)
        record_ok(t, "slow", 3413, 128 * 1600, 128, T0); /* 60 kB/s */
    cr_expect_eq(peer_table_request_timeout(t, "slow", 1024), 5000 * ALYS_REQUEST_TIMEOUT_HARD_FACTOR);
    peer_table_destroy(&t);
}

/* Headers are a fraction of a block range's bytes: the same 60 kB/s peer
 * asked for 1024 headers (~197 kB: seconds past the ceiling) is not given
 * the hard bound a 1024-block range gets, and 256 headers stay under the
 * ceiling. */
Test(timeout, headers_are_timed_by_header_bytes)
{
    peer_table_t *t = table_with(NULL);
    add_connected(t, "slow", 10, T0);
    for (int i = 0; i < 10; i++)
        record_ok(t, "slow", 3413, 128 * 1600, 128, T0); /* 60 kB/s */
    uint32_t blocks = peer_table_request_timeout(t, "slow", 1024);
    uint32_t headers = peer_table_headers_timeout(t, "slow", 1024);
    cr_expect(headers > 5000, "1024 headers at 60 kB/s: %u ms", headers);
    cr_expect(headers < blocks / 2, "headers %u ms, blocks %u ms", headers, blocks);
    cr_expect(peer_table_headers_timeout(t, "slow", 256) <= 5000);
    peer_table_destroy(&t);
}

/* Bandwidth collapsing to a trickle (a slow-loris peer) cannot take the
 * timeout past the hard bound, nor can timeouts on top of it (backoff). */
Test(timeout, collapsing_bandwidth_cannot_pass_the_hard_bound)
{
    peer_table_t *t = table_with(NULL);
    add_connected(t, "loris", 10, T0);
    for (int i = 0; i < 5; i++)
        record_ok(t, "loris", 855, 256 * 1631, 256, T0);
    uint32_t before = peer_table_request_timeout(t, "loris", 1024);
    for (int i = 0; i < 20; i++)
        record_ok(t, "loris", 60000, 1631, 1, T0); /* 27 B/s */
    uint32_t hard = 5000 * ALYS_REQUEST_TIMEOUT_HARD_FACTOR;
    uint32_t after = peer_table_request_timeout(t, "loris", 1024);
    cr_expect(after > before, "before %u after %u", before, after);
    cr_expect_eq(after, hard);
    cr_expect(peer_table_request_timeout(t, "loris", 1) <= hard, "one block: bounded too");
    for (int i = 0; i < 4; i++)
        record(t, "loris", PEER_OUTCOME_TIMEOUT, T0);
    cr_expect_eq(peer_table_request_timeout(t, "loris", 1024), hard);
    peer_table_destroy(&t);
}

/* The hard bound follows request_timeout_ms (8 x). */
Test(timeout, hard_bound_follows_request_timeout_ms)
{
    alys_config_t ac;
    alys_config_defaults(&ac);
    ac.request_timeout_ms = 2000;
    peer_table_config_t cfg;
    char err[128] = "";
    cr_assert_eq(peer_table_config_from_alys(&cfg, &ac, err, sizeof err), 0, "%s", err);
    peer_table_t *t = table_with(&cfg);
    add_connected(t, "slow", 10, T0);
    for (int i = 0; i < 10; i++)
        record_ok(t, "slow", 3413, 128 * 1600, 128, T0); /* 60 kB/s */
    cr_expect_eq(peer_table_request_timeout(t, "slow", 1024), 2000 * ALYS_REQUEST_TIMEOUT_HARD_FACTOR);
    /* 128 blocks: 3.4 s + 2 * 3.4 s = 10.2 s, past 2 s, below 16 s. */
    uint32_t ms = peer_table_request_timeout(t, "slow", 128);
    cr_expect(ms > 10000 && ms < 10500, "timeout %u ms", ms);
    peer_table_destroy(&t);
}

/* Latency alone (header answers carry no bytes) never passes the ceiling. */
Test(timeout, latency_alone_stays_under_the_ceiling)
{
    peer_table_t *t = table_with(NULL);
    add_connected(t, "far", 10, T0);
    for (int i = 0; i < 10; i++)
        record_ok(t, "far", 4000, 0, 0, T0);
    for (int i = 0; i < 3; i++)
        record(t, "far", PEER_OUTCOME_TIMEOUT, T0);
    /* 256 blocks: a size request_timeout_ms covers with nothing measured
     * (ALYS_REQUEST_TIMEOUT_REF_BLOCKS), so only latency could lift it. */
    cr_expect_eq(peer_table_request_timeout(t, "far", ALYS_REQUEST_TIMEOUT_REF_BLOCKS), 5000);
    peer_table_destroy(&t);
}

/* The sequential strategy's first range: 1024 blocks from a peer known only
 * by its Status answers (latency, no bytes). Its latency says nothing of the
 * transfer: request_timeout_ms per 256 blocks, not the 5 s a peer capped at
 * 100 blocks/s (~10 s for the range) cannot meet (bench_sync, capped). */
Test(timeout, first_big_range_known_by_latency_only_gets_time_for_its_size)
{
    peer_table_t *t = table_with(NULL);
    add_connected(t, "capped", 10, T0);
    for (int i = 0; i < 10; i++)
        record_ok(t, "capped", 20, 0, 0, T0);
    cr_expect_eq(peer_table_request_timeout(t, "capped", 1024),
                 5000 * 1024 / ALYS_REQUEST_TIMEOUT_REF_BLOCKS);
    cr_expect(peer_table_request_timeout(t, "capped", 128) < 5000, "small: the latency RTO");
    peer_table_destroy(&t);
}

Test(timeout, backs_off_after_a_timeout_and_resets)
{
    peer_table_t *t = table_with(NULL);
    add_connected(t, "a", 10, T0);
    for (int i = 0; i < 30; i++)
        record_ok(t, "a", 1000, 100000, 100, T0);
    uint32_t base = peer_table_request_timeout(t, "a", 100);
    record(t, "a", PEER_OUTCOME_TIMEOUT, T0);
    uint32_t once = peer_table_request_timeout(t, "a", 100);
    cr_expect(once >= 2 * base - 2 && once <= 2 * base + 2, "base %u once %u", base, once);
    record(t, "a", PEER_OUTCOME_TIMEOUT, T0);
    record(t, "a", PEER_OUTCOME_TIMEOUT, T0);
    cr_expect_eq(peer_table_request_timeout(t, "a", 100), 5000); /* 8x, capped */
    record_ok(t, "a", 1000, 100000, 100, T0);
    cr_expect(peer_table_request_timeout(t, "a", 100) <= base + 5);
    peer_table_destroy(&t);
}
