/*  Selection: every strategy on a crafted table, round robin rotation, the
 *  eligibility rules and the score-threshold mapping. */
#include "peer_test_util.h"

static size_t pick(peer_table_t *t, peer_strategy_t s, size_t count, uint64_t min_height,
                   uint64_t now, peer_ref_t *out)
{
    peer_select_req_t req = {.count = count, .min_height = min_height};
    return peer_table_select_with(t, s, &req, now, out, 8);
}

#define expect_order(out, n, ...)                                             \
    do {                                                                      \
        const char *want_[] = {__VA_ARGS__};                                  \
        size_t nw_ = sizeof want_ / sizeof want_[0];                          \
        cr_assert_eq((n), nw_, "got %zu peers, want %zu", (size_t) (n), nw_); \
        for (size_t i_ = 0; i_ < nw_; i_++)                                   \
            cr_expect_str_eq((out)[i_].id, want_[i_], "position %zu", i_);    \
    } while (0)

Test(select, lowest_latency_with_unmeasured_in_the_middle)
{
    peer_table_t *t = table_with(NULL);
    add_connected(t, "a", 10, T0);
    add_connected(t, "b", 10, T0);
    add_connected(t, "c", 10, T0);
    add_connected(t, "new", 10, T0);
    record_ok(t, "a", 80, 1000, 1, T0);
    record_ok(t, "b", 20, 1000, 1, T0);
    record_ok(t, "c", 30, 1000, 1, T0);
    /* "new" gets the mean, 43.3 ms: tried before the slow one. */
    peer_ref_t out[8];
    size_t n = pick(t, PEER_SELECT_LOWEST_LATENCY, 8, 0, T0, out);
    expect_order(out, n, "b", "c", "new", "a");
    n = pick(t, PEER_SELECT_LOWEST_LATENCY, 2, 0, T0, out);
    expect_order(out, n, "b", "c");
    peer_table_destroy(&t);
}

Test(select, most_reliable)
{
    peer_table_t *t = table_with(NULL);
    const char *ids[] = {"a", "b", "c", "d"};
    for (int i = 0; i < 4; i++)
        add_connected(t, ids[i], 10, T0);
    for (int i = 0; i < 9; i++)
        record_ok(t, "a", 10, 1000, 1, T0);
    record(t, "a", PEER_OUTCOME_TIMEOUT, T0); /* 10/12 */
    for (int i = 0; i < 3; i++)
        record_ok(t, "b", 10, 1000, 1, T0); /* 4/5 */
    record_ok(t, "c", 10, 1000, 1, T0);
    for (int i = 0; i < 3; i++)
        record(t, "c", PEER_OUTCOME_TIMEOUT, T0); /* 2/6 */
    /* d: unmeasured, 1/2. Let the scores decay so that all stay eligible. */
    uint64_t later = T0 + 2 * HOUR;
    peer_ref_t out[8];
    size_t n = pick(t, PEER_SELECT_MOST_RELIABLE, 8, 0, later, out);
    expect_order(out, n, "a", "b", "d", "c");
    peer_table_destroy(&t);
}

Test(select, round_robin_rotates)
{
    peer_table_t *t = table_with(NULL);
    add_connected(t, "a", 10, T0);
    add_connected(t, "b", 10, T0);
    add_connected(t, "c", 10, T0);
    peer_ref_t out[8];
    const char *want[] = {"a", "b", "c", "a", "b"};
    for (int i = 0; i < 5; i++) {
        size_t n = pick(t, PEER_SELECT_ROUND_ROBIN, 1, 0, T0, out);
        expect_order(out, n, want[i]);
    }
    size_t n = pick(t, PEER_SELECT_ROUND_ROBIN, 2, 0, T0, out); /* after b */
    expect_order(out, n, "c", "a");
    n = pick(t, PEER_SELECT_ROUND_ROBIN, 2, 0, T0, out);
    expect_order(out, n, "b", "c");
    /* An ineligible peer is skipped, the rotation goes on. */
    cr_assert_eq(peer_table_set_disconnected(t, "a", T0), PEER_OK);
    n = pick(t, PEER_SELECT_ROUND_ROBIN, 2, 0, T0, out);
    expect_order(out, n, "b", "c");
    peer_table_destroy(&t);
}

/* fast: 10 ms, 1 MB/s; fat: 100 ms, 10 MB/s; same reliability. */
static peer_table_t *weighted_table(double lw, double rw, double bw)
{
    peer_table_config_t cfg;
    peer_table_config_defaults(&cfg);
    cfg.latency_weight = lw;
    cfg.reliability_weight = rw;
    cfg.bandwidth_weight = bw;
    peer_table_t *t = table_with(&cfg);
    add_connected(t, "fat", 10, T0);
    add_connected(t, "fast", 10, T0);
    record_ok(t, "fast", 10, 10000, 1, T0);
    record_ok(t, "fat", 100, 1000000, 1, T0);
    return t;
}

Test(select, weighted_uses_its_weights)
{
    peer_ref_t out[8];
    /* Defaults 0.4/0.4/0.2: fast = .4*1 + .2*.1, fat = .4*.1 + .2*1. */
    peer_table_t *t = weighted_table(0.4, 0.4, 0.2);
    size_t n = peer_table_select(t, &(peer_select_req_t){.count = 8}, T0, out, 8);
    expect_order(out, n, "fast", "fat");
    peer_table_destroy(&t);
    /* Bandwidth-heavy weights flip it. */
    t = weighted_table(0.1, 0.0, 0.9);
    n = peer_table_select(t, &(peer_select_req_t){.count = 8}, T0, out, 8);
    expect_order(out, n, "fat", "fast");
    peer_table_destroy(&t);
    /* Reliability only: equal, so score then table order decide. */
    t = weighted_table(0.0, 1.0, 0.0);
    n = peer_table_select(t, &(peer_select_req_t){.count = 8}, T0, out, 8);
    expect_order(out, n, "fat", "fast");
    peer_table_destroy(&t);
}

Test(select, weighted_reliability_counts)
{
    peer_table_config_t cfg;
    peer_table_config_defaults(&cfg);
    cfg.latency_weight = 0.2;
    cfg.reliability_weight = 0.8;
    cfg.bandwidth_weight = 0.0;
    peer_table_t *t = table_with(&cfg);
    add_connected(t, "flaky", 10, T0);
    add_connected(t, "steady", 10, T0);
    record_ok(t, "flaky", 5, 1000, 1, T0);
    record(t, "flaky", PEER_OUTCOME_TIMEOUT, T0);
    record(t, "flaky", PEER_OUTCOME_TIMEOUT, T0); /* 2/5 = 0.4 */
    for (int i = 0; i < 8; i++)
        record_ok(t, "steady", 20, 1000, 1, T0); /* 9/10 */
    /* flaky: .2*1 + .8*.4 = .52; steady: .2*.25 + .8*.9 = .77 */
    peer_ref_t out[8];
    size_t n = peer_table_select(t, &(peer_select_req_t){.count = 8}, T0 + 2 * HOUR, out, 8);
    expect_order(out, n, "steady", "flaky");
    peer_table_destroy(&t);
}

Test(select, proximity_by_min_rtt)
{
    peer_table_t *t = table_with(NULL);
    add_connected(t, "far", 10, T0);
    add_connected(t, "near", 10, T0);
    add_connected(t, "mid", 10, T0);
    cr_assert_eq(peer_table_record_rtt(t, "far", 30, T0), PEER_OK);
    cr_assert_eq(peer_table_record_rtt(t, "near", 50, T0), PEER_OK);
    cr_assert_eq(peer_table_record_rtt(t, "near", 5, T0), PEER_OK); /* the minimum counts */
    record_ok(t, "mid", 12, 1000, 1, T0);                           /* a reply is an RTT too */
    /* near has the worst average latency but is the closest. */
    record_ok(t, "near", 500, 1000, 1, T0);
    peer_ref_t out[8];
    size_t n = pick(t, PEER_SELECT_PROXIMITY, 8, 0, T0, out);
    expect_order(out, n, "near", "mid", "far");
    peer_table_destroy(&t);
}

Test(select, configured_strategy_is_used)
{
    peer_table_config_t cfg;
    peer_table_config_defaults(&cfg);
    cfg.strategy = PEER_SELECT_PROXIMITY;
    peer_table_t *t = table_with(&cfg);
    add_connected(t, "a", 10, T0);
    add_connected(t, "b", 10, T0);
    cr_assert_eq(peer_table_record_rtt(t, "a", 30, T0), PEER_OK);
    cr_assert_eq(peer_table_record_rtt(t, "b", 3, T0), PEER_OK);
    peer_ref_t out[8];
    size_t n = peer_table_select(t, &(peer_select_req_t){.count = 1}, T0, out, 8);
    expect_order(out, n, "b");
    peer_table_destroy(&t);
}

Test(select, eligibility_rules)
{
    peer_table_t *t = table_with(NULL);
    add_connected(t, "ok", 1000, T0);
    add_connected(t, "banned", 1000, T0);
    add_connected(t, "gone", 1000, T0);
    add_connected(t, "low", 1000, T0);
    add_connected(t, "edge", 1000, T0);
    add_connected(t, "short", 999, T0);
    add_connected(t, "busy", 1000, T0);
    cr_assert_eq(peer_table_add(t, "dialling", "tcp://d:1", T0), PEER_OK);
    record(t, "banned", PEER_OUTCOME_VIOLATION, T0);
    cr_assert_eq(peer_table_set_disconnected(t, "gone", T0), PEER_OK);
    for (int i = 0; i < 4; i++)
        record(t, "low", PEER_OUTCOME_TIMEOUT, T0); /* -20 < -15 */
    for (int i = 0; i < 3; i++)
        record(t, "edge", PEER_OUTCOME_TIMEOUT, T0); /* -15: just eligible */
    const char *busy[] = {"busy"};
    peer_select_req_t req = {.count = 10, .min_height = 1000, .exclude = busy, .exclude_count = 1};
    peer_ref_t out[10];
    size_t n = peer_table_select_with(t, PEER_SELECT_ROUND_ROBIN, &req, T0, out, 10);
    expect_order(out, n, "ok", "edge");
    cr_expect_eq(peer_table_eligible_count(t, T0), 4); /* ok, edge, short, busy */
    /* Decay brings "low" back: -20 -> -10 after one half-life. */
    n = peer_table_select_with(t, PEER_SELECT_ROUND_ROBIN, &req, T0 + 10 * MINUTE, out, 10);
    cr_expect_eq(n, 3);
    cr_expect_not(view_of(t, "banned", T0).eligible);
    peer_table_destroy(&t);
}

/* Issue 7: when nobody passes the cutoff, the connected peers above the
 * disconnect score are offered, best first, rather than nobody. */
Test(select, falls_back_to_below_cutoff_peers_when_nobody_passes)
{
    peer_table_t *t = table_with(NULL);
    add_connected(t, "worn", 1000, T0);
    add_connected(t, "worse", 1000, T0);
    add_connected(t, "liar", 1000, T0);
    add_connected(t, "gone", 1000, T0);
    for (int i = 0; i < 4; i++)
        record(t, "worn", PEER_OUTCOME_TIMEOUT, T0); /* -20 */
    for (int i = 0; i < 8; i++)
        record(t, "worse", PEER_OUTCOME_TIMEOUT, T0); /* -29 */
    record(t, "liar", PEER_OUTCOME_INVALID, T0);      /* -40: dropped */
    for (int i = 0; i < 4; i++)
        record(t, "gone", PEER_OUTCOME_TIMEOUT, T0);
    cr_assert_eq(peer_table_set_disconnected(t, "gone", T0), PEER_OK);
    peer_ref_t out[10];
    peer_select_req_t req = {.count = 10, .min_height = 1000};
    size_t n = peer_table_select_with(t, PEER_SELECT_MOST_RELIABLE, &req, T0, out, 10);
    expect_order(out, n, "worn", "worse");
    cr_expect_eq(peer_table_eligible_count(t, T0), 2);
    /* Someone passes the cutoff: only it is offered. */
    add_connected(t, "fresh", 1000, T0);
    n = peer_table_select_with(t, PEER_SELECT_MOST_RELIABLE, &req, T0, out, 10);
    expect_order(out, n, "fresh");
    peer_table_destroy(&t);
}

/* A peer far behind must not stand for the network: a below-cutoff peer
 * that has blocks no eligible peer has is offered too, after them. */
Test(select, a_below_cutoff_peer_with_blocks_nobody_eligible_has_is_offered_last)
{
    peer_table_t *t = table_with(NULL);
    add_connected(t, "behind", 200, T0);
    add_connected(t, "slow", 5000, T0);
    add_connected(t, "slow_short", 150, T0);
    for (int i = 0; i < 5; i++) {
        record(t, "slow", PEER_OUTCOME_TIMEOUT, T0); /* -25 */
        record(t, "slow_short", PEER_OUTCOME_TIMEOUT, T0);
    }
    peer_ref_t out[10];
    size_t n = peer_table_select_with(t, PEER_SELECT_LOWEST_LATENCY, NULL, T0, out, 10);
    expect_order(out, n, "behind", "slow");
    peer_table_destroy(&t);
}

Test(select, score_threshold_mapping)
{
    peer_table_config_t cfg;
    peer_table_config_defaults(&cfg);
    cfg.score_threshold = 1.0; /* cutoff 0 */
    peer_table_t *strict = table_with(&cfg);
    add_connected(strict, "fresh", 10, T0);
    add_connected(strict, "once", 10, T0);
    record(strict, "once", PEER_OUTCOME_SHORT, T0);
    cr_expect(view_of(strict, "fresh", T0).eligible);
    cr_expect_not(view_of(strict, "once", T0).eligible);
    peer_table_destroy(&strict);

    cfg.score_threshold = 0.0; /* cutoff -30: anyone still connected */
    peer_table_t *lax = table_with(&cfg);
    add_connected(lax, "fresh", 10, T0);
    add_connected(lax, "worn", 10, T0);
    for (int i = 0; i < 5; i++)
        record(lax, "worn", PEER_OUTCOME_TIMEOUT, T0); /* -25 */
    cr_expect(view_of(lax, "fresh", T0).eligible);
    cr_expect(view_of(lax, "worn", T0).eligible);
    peer_table_destroy(&lax);
}

Test(select, bounded_by_count_and_cap)
{
    peer_table_t *t = table_with(NULL);
    char id[16];
    for (int i = 0; i < 20; i++) {
        snprintf(id, sizeof id, "p%02d", i);
        add_connected(t, id, 10, T0);
    }
    peer_ref_t out[4];
    peer_select_req_t req = {.count = 10};
    cr_expect_eq(peer_table_select(t, &req, T0, out, 4), 4);
    req.count = 2;
    cr_expect_eq(peer_table_select(t, &req, T0, out, 4), 2);
    req.min_height = 11;
    cr_expect_eq(peer_table_select(t, &req, T0, out, 4), 0);
    peer_table_destroy(&t);
}
