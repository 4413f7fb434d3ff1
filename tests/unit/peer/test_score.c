/*  Scoring per outcome, clamping, decay, thresholds, metrics, table bounds. */
#include "peer_test_util.h"

Test(score, fresh_peer_is_neutral_and_eligible)
{
    peer_table_t *t = table_with(NULL);
    add_connected(t, "a", 10, T0);
    peer_view_t v = view_of(t, "a", T0);
    cr_expect_eq(v.score, 0.0);
    cr_expect(v.eligible);
    cr_expect_eq(v.info.state, PEER_STATE_CONNECTED);
    assert_near(v.metrics.reliability_score, 0.5, 1e-9);
    peer_table_destroy(&t);
    cr_expect_null(t);
}

Test(score, each_outcome_moves_the_score)
{
    peer_table_t *t = table_with(NULL);
    const char *ids[] = {"ok", "timeout", "short", "invalid", "violation"};
    for (int i = 0; i < 5; i++)
        add_connected(t, ids[i], 10, T0);
    cr_expect_eq(record(t, "ok", PEER_OUTCOME_OK, T0), PEER_ACTION_NONE);
    cr_expect_eq(record(t, "timeout", PEER_OUTCOME_TIMEOUT, T0), PEER_ACTION_NONE);
    cr_expect_eq(record(t, "short", PEER_OUTCOME_SHORT, T0), PEER_ACTION_NONE);
    /* One invalid response from a neutral peer: -40, past the disconnect line. */
    cr_expect_eq(record(t, "invalid", PEER_OUTCOME_INVALID, T0), PEER_ACTION_DISCONNECT);
    cr_expect_eq(record(t, "violation", PEER_OUTCOME_VIOLATION, T0), PEER_ACTION_BAN);
    assert_near(score_of(t, "ok", T0), 1, 1e-9);
    assert_near(score_of(t, "timeout", T0), -5, 1e-9);
    assert_near(score_of(t, "short", T0), -3, 1e-9);
    assert_near(score_of(t, "invalid", T0), -40, 1e-9);
    assert_near(score_of(t, "violation", T0), -100, 1e-9);
    peer_table_destroy(&t);
}

Test(score, ok_reward_is_capped)
{
    peer_table_t *t = table_with(NULL);
    add_connected(t, "a", 10, T0);
    for (int i = 0; i < 100; i++)
        record_ok(t, "a", 10, 1000, 1, T0);
    assert_near(score_of(t, "a", T0), 20, 1e-9);
    /* Banked credit absorbs one invalid response, not two. */
    cr_expect_eq(record(t, "a", PEER_OUTCOME_INVALID, T0), PEER_ACTION_NONE);
    cr_expect_eq(record(t, "a", PEER_OUTCOME_INVALID, T0), PEER_ACTION_BAN);
    peer_table_destroy(&t);
}

Test(score, clamped_to_range)
{
    peer_table_config_t cfg;
    peer_table_config_defaults(&cfg);
    cfg.ok_reward = 70;
    cfg.ok_cap = 1000;
    peer_table_t *t = table_with(&cfg);
    add_connected(t, "good", 10, T0);
    add_connected(t, "bad", 10, T0);
    record(t, "good", PEER_OUTCOME_OK, T0);
    record(t, "good", PEER_OUTCOME_OK, T0);
    assert_near(score_of(t, "good", T0), 100, 1e-9);
    for (int i = 0; i < 5; i++)
        record(t, "bad", PEER_OUTCOME_INVALID, T0);
    assert_near(score_of(t, "bad", T0), -100, 1e-9);
    peer_table_destroy(&t);
}

Test(score, decays_toward_zero_with_half_life)
{
    peer_table_t *t = table_with(NULL);
    add_connected(t, "a", 10, T0);
    add_connected(t, "b", 10, T0);
    record(t, "a", PEER_OUTCOME_INVALID, T0); /* -40 */
    for (int i = 0; i < 20; i++)
        record_ok(t, "b", 10, 1000, 1, T0); /* +20 */
    assert_near(score_of(t, "a", T0 + 10 * MINUTE), -20, 1e-6);
    assert_near(score_of(t, "a", T0 + 20 * MINUTE), -10, 1e-6);
    assert_near(score_of(t, "b", T0 + 10 * MINUTE), 10, 1e-6);
    /* Far enough out it is exactly neutral, not a tiny negative forever. */
    cr_expect_eq(score_of(t, "a", T0 + 24 * HOUR), 0.0);
    peer_table_destroy(&t);
}

Test(score, decay_is_a_parameter_and_tolerates_clock_steps)
{
    peer_score_t s = {.value = -80, .as_of_ms = T0};
    peer_score_decay(&s, T0 + 1000, 1000);
    assert_near(s.value, -40, 1e-9);
    peer_score_decay(&s, T0, 1000); /* clock stepped back */
    assert_near(s.value, -40, 1e-9);
    peer_score_decay(&s, T0 + 1000, 1000); /* forward again: 1 s really passed */
    assert_near(s.value, -20, 1e-9);
}

Test(score, disconnect_threshold_and_reconnect_backoff)
{
    peer_table_t *t = table_with(NULL);
    add_connected(t, "a", 10, T0);
    for (int i = 0; i < 9; i++)
        cr_expect_eq(record(t, "a", PEER_OUTCOME_SHORT, T0), PEER_ACTION_NONE);
    cr_expect_eq(record(t, "a", PEER_OUTCOME_SHORT, T0), PEER_ACTION_DISCONNECT); /* -30 */
    peer_view_t v = view_of(t, "a", T0);
    cr_expect_eq(v.info.state, PEER_STATE_DISCONNECTED);
    cr_expect_not(v.eligible);
    /* No redial until decay has lifted the score above the threshold. */
    cr_expect_not(peer_table_may_connect(t, "a", T0));
    cr_expect(peer_table_may_connect(t, "a", T0 + MINUTE));
    cr_expect_eq(peer_table_set_connecting(t, "a", T0 + MINUTE), PEER_OK);
    peer_table_destroy(&t);
}

Test(score, ban_threshold_ban_period_and_expiry)
{
    peer_table_t *t = table_with(NULL);
    add_connected(t, "a", 10, T0);
    cr_expect_eq(record(t, "a", PEER_OUTCOME_INVALID, T0), PEER_ACTION_DISCONNECT);
    cr_expect_eq(record(t, "a", PEER_OUTCOME_INVALID, T0), PEER_ACTION_BAN); /* -80 */
    peer_view_t v = view_of(t, "a", T0);
    cr_expect_eq(v.info.state, PEER_STATE_BANNED);
    cr_expect_eq(v.info.ban_until, T0 + HOUR);
    cr_expect(peer_table_is_banned(t, "a", NULL, T0 + HOUR - 1));
    cr_expect_not(peer_table_may_connect(t, "a", T0 + HOUR - 1));
    cr_expect_eq(peer_table_on_status(t, "a", 10, NULL, NULL, T0 + 1), PEER_ERR_BANNED);
    cr_expect_eq(peer_table_set_connecting(t, "a", T0 + 1), PEER_ERR_BANNED);
    /* Late news about a banned peer changes nothing. */
    cr_expect_eq(record(t, "a", PEER_OUTCOME_TIMEOUT, T0 + 2), PEER_ACTION_NONE);
    cr_expect_eq(peer_table_tick(t, T0 + HOUR - 1), 0);
    cr_expect_eq(peer_table_tick(t, T0 + HOUR), 1);
    v = view_of(t, "a", T0 + HOUR);
    cr_expect_eq(v.info.state, PEER_STATE_DISCONNECTED);
    cr_expect_eq(v.info.ban_until, 0);
    cr_expect_str_eq(v.ban_reason, "");
    cr_expect_not(peer_table_is_banned(t, "a", NULL, T0 + HOUR));
    cr_expect(peer_table_may_connect(t, "a", T0 + HOUR));
    cr_expect_eq(peer_table_on_status(t, "a", 10, NULL, NULL, T0 + HOUR), PEER_OK);
    peer_table_destroy(&t);
}

Test(score, violation_is_an_immediate_ban)
{
    peer_table_t *t = table_with(NULL);
    add_connected(t, "a", 10, T0);
    for (int i = 0; i < 20; i++)
        record_ok(t, "a", 10, 1000, 1, T0); /* best credit */
    peer_outcome_t o = {.kind = PEER_OUTCOME_VIOLATION, .reason = "response larger than asked"};
    peer_action_t a;
    cr_assert_eq(peer_table_record(t, "a", &o, T0, &a), PEER_OK);
    cr_expect_eq(a, PEER_ACTION_BAN);
    cr_expect_eq(view_of(t, "a", T0).info.state, PEER_STATE_BANNED);
    cr_expect(strstr(view_of(t, "a", T0).ban_reason, "larger than asked") != NULL);
    peer_ban_t bans[4];
    cr_assert_eq(peer_table_export_bans(t, T0, bans, 4), 1);
    cr_expect(strstr(bans[0].reason, "violation") != NULL);
    cr_expect(strstr(bans[0].reason, "larger than asked") != NULL);
    peer_table_destroy(&t);
}

Test(score, metrics_follow_outcomes)
{
    peer_table_t *t = table_with(NULL);
    add_connected(t, "a", 10, T0);
    record_ok(t, "a", 100, 1000000, 50, T0 + 5);
    peer_view_t v = view_of(t, "a", T0 + 5);
    assert_near(v.metrics.average_latency_ms, 100, 1e-9);
    assert_near(v.metrics.latency_dev_ms, 50, 1e-9);
    assert_near(v.metrics.bandwidth_bps, 1e7, 1);
    assert_near(v.metrics.min_rtt_ms, 100, 1e-9);
    cr_expect_eq(v.metrics.blocks_served, 50);
    cr_expect_eq(v.info.last_response, T0 + 5);
    record_ok(t, "a", 200, 1000000, 50, T0 + 6);
    v = view_of(t, "a", T0 + 6);
    assert_near(v.metrics.average_latency_ms, 112.5, 1e-9); /* srtt += (200-100)/8 */
    assert_near(v.metrics.min_rtt_ms, 100, 1e-9);
    record(t, "a", PEER_OUTCOME_TIMEOUT, T0 + 7);
    v = view_of(t, "a", T0 + 7);
    cr_expect_eq(v.metrics.requests_ok, 2);
    cr_expect_eq(v.metrics.requests_timeout, 1);
    assert_near(v.metrics.reliability_score, 3.0 / 5.0, 1e-9);
    assert_near(v.metrics.error_rate, 0.1, 1e-9);
    cr_expect_eq(v.info.last_response, T0 + 6); /* a timeout is silence */
    cr_expect_eq(peer_table_record_rtt(t, "a", 7, T0 + 8), PEER_OK);
    assert_near(view_of(t, "a", T0 + 8).metrics.min_rtt_ms, 7, 1e-9);
    peer_table_destroy(&t);
}

Test(score, unknown_peer_and_bad_arguments)
{
    peer_table_t *t = table_with(NULL);
    peer_outcome_t o = {.kind = PEER_OUTCOME_OK};
    peer_action_t a = PEER_ACTION_BAN;
    cr_expect_eq(peer_table_record(t, "nobody", &o, T0, &a), PEER_ERR_UNKNOWN);
    cr_expect_eq(a, PEER_ACTION_NONE);
    add_connected(t, "a", 1, T0);
    o.kind = (peer_outcome_kind_t) 99;
    cr_expect_eq(peer_table_record(t, "a", &o, T0, &a), PEER_ERR_INVALID);
    cr_expect_eq(peer_table_record(t, "a", NULL, T0, &a), PEER_ERR_INVALID);
    peer_table_destroy(&t);
}

Test(table, bounded_with_reasons)
{
    peer_table_t *t = table_with(NULL);
    char id[80];
    for (int i = 0; i < PEER_TABLE_MAX_PEERS; i++) {
        snprintf(id, sizeof id, "peer-%03d", i);
        add_connected(t, id, 1, T0);
    }
    cr_expect_eq(peer_table_size(t), PEER_TABLE_MAX_PEERS);
    int rc = peer_table_add(t, "one-too-many", "tcp://x:1", T0);
    cr_expect_eq(rc, PEER_ERR_FULL);
    cr_expect_str_eq(peer_err_name(rc), "peer table full");
    cr_expect_eq(peer_table_add(t, "peer-000", "tcp://y:1", T0), PEER_ERR_EXISTS);
    peer_table_destroy(&t);
}

Test(table, strings_are_bounded)
{
    peer_table_t *t = table_with(NULL);
    char id[PEER_ID_MAX + 1];
    memset(id, 'x', sizeof id - 1);
    id[PEER_ID_MAX] = '\0'; /* 65 chars: too long */
    cr_expect_eq(peer_table_add(t, id, "tcp://x:1", T0), PEER_ERR_INVALID);
    id[PEER_ID_MAX - 1] = '\0'; /* 64 chars: fine */
    cr_expect_eq(peer_table_add(t, id, "tcp://x:1", T0), PEER_OK);
    cr_expect_eq(peer_table_add(t, "", "tcp://x:1", T0), PEER_ERR_INVALID);
    cr_expect_eq(peer_table_add(t, NULL, "tcp://x:1", T0), PEER_ERR_INVALID);
    char ep[PEER_ENDPOINT_MAX + 8];
    memset(ep, 'e', sizeof ep - 1);
    ep[sizeof ep - 1] = '\0';
    cr_expect_eq(peer_table_add(t, "b", ep, T0), PEER_ERR_INVALID);
    /* Over-long version strings are cut, not overflowed. */
    cr_expect_eq(peer_table_add(t, "c", "tcp://c:1", T0), PEER_OK);
    char ver[200];
    memset(ver, 'v', sizeof ver - 1);
    ver[sizeof ver - 1] = '\0';
    cr_expect_eq(peer_table_on_status(t, "c", 1, NULL, ver, T0), PEER_OK);
    cr_expect_eq(strlen(view_of(t, "c", T0).info.protocol_version), PEER_VERSION_MAX - 1);
    peer_table_destroy(&t);
}

Test(table, full_table_recycles_only_clean_disconnected_peers)
{
    peer_table_t *t = table_with(NULL);
    char id[80];
    for (int i = 0; i < PEER_TABLE_MAX_PEERS; i++) {
        snprintf(id, sizeof id, "peer-%03d", i);
        add_connected(t, id, 1, T0);
    }
    /* A penalised, disconnected peer is kept: eviction must not wash its score. */
    record(t, "peer-007", PEER_OUTCOME_INVALID, T0);
    cr_expect_eq(peer_table_add(t, "new-1", "tcp://n1:1", T0), PEER_ERR_FULL);
    /* Clean disconnected peers are recycled, the longest-gone first. */
    cr_assert_eq(peer_table_set_disconnected(t, "peer-010", T0 + 2), PEER_OK);
    cr_assert_eq(peer_table_set_disconnected(t, "peer-020", T0 + 1), PEER_OK);
    cr_expect_eq(peer_table_add(t, "new-1", "tcp://n1:1", T0 + 3), PEER_OK);
    cr_expect_not(peer_table_contains(t, "peer-020"));
    cr_expect(peer_table_contains(t, "peer-010"));
    cr_expect(peer_table_contains(t, "peer-007"));
    cr_expect_eq(peer_table_size(t), PEER_TABLE_MAX_PEERS);
    peer_table_destroy(&t);
}

Test(table, remove_and_list)
{
    peer_table_t *t = table_with(NULL);
    add_connected(t, "a", 1, T0);
    add_connected(t, "b", 2, T0);
    cr_expect_eq(peer_table_remove(t, "a"), PEER_OK);
    cr_expect_eq(peer_table_remove(t, "a"), PEER_ERR_UNKNOWN);
    peer_view_t v[4];
    cr_assert_eq(peer_table_list(t, T0, v, 4), 1);
    cr_expect_str_eq(v[0].info.peer_id, "b");
    cr_expect_eq(v[0].info.reported_height, 2);
    cr_expect_eq(v[0].timeout_ms, 5000); /* unmeasured: the ceiling */
    peer_table_destroy(&t);
}

Test(config, from_node_config)
{
    alys_config_t ac;
    memset(&ac, 0, sizeof ac);
    snprintf(ac.peer_selection, sizeof ac.peer_selection, "proximity");
    snprintf(ac.batch_size, sizeof ac.batch_size, "fixed");
    ac.latency_weight = 0.5;
    ac.reliability_weight = 0.3;
    ac.bandwidth_weight = 0.2;
    ac.peer_score_threshold = 0.5;
    ac.fixed_batch_size = 300;
    ac.min_batch_size = 16;
    ac.max_batch_size = 1024;
    ac.request_timeout_ms = 4000;
    peer_table_config_t cfg;
    char err[128] = "";
    cr_assert_eq(peer_table_config_from_alys(&cfg, &ac, err, sizeof err), 0, "%s", err);
    cr_expect_eq(cfg.strategy, PEER_SELECT_PROXIMITY);
    cr_expect_not(cfg.adaptive_batch);
    cr_expect_eq(cfg.fixed_batch_size, 300);
    cr_expect_eq(cfg.timeout_ceiling_ms, 4000);
    cr_expect_eq(cfg.timeout_hard_ms, 4000 * ALYS_REQUEST_TIMEOUT_HARD_FACTOR);
    snprintf(ac.peer_selection, sizeof ac.peer_selection, "random");
    cr_expect_eq(peer_table_config_from_alys(&cfg, &ac, err, sizeof err), -1);
    cr_expect(strstr(err, "peer_selection") != NULL);
    snprintf(ac.peer_selection, sizeof ac.peer_selection, "weighted");
    ac.peer_score_threshold = 1.5;
    cr_expect_eq(peer_table_config_from_alys(&cfg, &ac, err, sizeof err), -1);
}

Test(config, strategy_names_round_trip)
{
    const char *names[] = {"lowest_latency", "most_reliable", "round_robin", "weighted", "proximity"};
    for (int i = 0; i < 5; i++) {
        peer_strategy_t s;
        cr_assert_eq(peer_strategy_parse(names[i], &s), 0);
        cr_expect_str_eq(peer_strategy_name(s), names[i]);
    }
    peer_strategy_t s = PEER_SELECT_WEIGHTED;
    cr_expect_eq(peer_strategy_parse("geo", &s), -1);
    cr_expect_eq(s, PEER_SELECT_WEIGHTED);
}

Test(score, late_penalties_on_a_disconnected_peer_delay_redial)
{
    peer_table_t *t = table_with(NULL);
    add_connected(t, "a", 10, T0);
    cr_assert_eq(peer_table_set_disconnected(t, "a", T0), PEER_OK);
    cr_expect(peer_table_may_connect(t, "a", T0));
    /* Requests that were in flight are judged after the disconnect. */
    cr_expect_eq(record(t, "a", PEER_OUTCOME_INVALID, T0 + 1), PEER_ACTION_NONE);
    cr_expect_not(peer_table_may_connect(t, "a", T0 + 1));
    cr_expect(peer_table_may_connect(t, "a", T0 + 10 * MINUTE));
    peer_table_destroy(&t);
}

/* Slowness is not misbehaviour (issue 7): timeouts alone stop just above
 * the disconnect score, however many; the peer stays connected and
 * redialable, and is still charged (below the cutoff, chosen last). */
Test(score, timeouts_alone_never_reach_the_disconnect_score)
{
    peer_table_t *t = table_with(NULL);
    add_connected(t, "slow", 10, T0);
    add_connected(t, "gone", 10, T0);
    cr_assert_eq(peer_table_set_disconnected(t, "gone", T0), PEER_OK);
    for (int i = 0; i < 20; i++) {
        cr_expect_eq(record(t, "slow", PEER_OUTCOME_TIMEOUT, T0), PEER_ACTION_NONE);
        cr_expect_eq(record(t, "gone", PEER_OUTCOME_TIMEOUT, T0), PEER_ACTION_NONE);
    }
    assert_near(score_of(t, "slow", T0), -29, 1e-9);
    cr_expect_eq(view_of(t, "slow", T0).info.state, PEER_STATE_CONNECTED);
    cr_expect_not(view_of(t, "slow", T0).eligible, "below the cutoff: others first");
    cr_expect(peer_table_may_connect(t, "gone", T0 + 1), "timeouts do not delay a redial");
    /* Misbehaviour still counts in full on top of it. */
    cr_expect_eq(record(t, "slow", PEER_OUTCOME_INVALID, T0), PEER_ACTION_BAN);
    peer_table_destroy(&t);
}

Test(score, a_timeout_does_not_lift_a_score_already_below_the_floor)
{
    peer_table_t *t = table_with(NULL);
    add_connected(t, "a", 10, T0);
    cr_expect_eq(record(t, "a", PEER_OUTCOME_INVALID, T0), PEER_ACTION_DISCONNECT); /* -40 */
    record(t, "a", PEER_OUTCOME_TIMEOUT, T0);
    assert_near(score_of(t, "a", T0), -40, 1e-9);
    peer_table_destroy(&t);
}

Test(score, only_deliveries_are_latency_samples)
{
    peer_table_t *t = table_with(NULL);
    add_connected(t, "a", 10, T0);
    record_ok(t, "a", 100, 1000, 10, T0 + 1);
    record(t, "a", PEER_OUTCOME_SHORT, T0 + 2); /* empty: no sample */
    peer_outcome_t o = {.kind = PEER_OUTCOME_SHORT, .latency_ms = 300, .blocks = 3};
    cr_assert_eq(peer_table_record(t, "a", &o, T0 + 3, NULL), PEER_OK);
    record(t, "a", PEER_OUTCOME_INVALID, T0 + 4); /* a verdict, not a reply */
    peer_view_t v = view_of(t, "a", T0 + 4);
    assert_near(v.metrics.average_latency_ms, 125, 1e-9); /* 100 + (300-100)/8 */
    cr_expect_eq(v.metrics.blocks_served, 13);
    cr_expect_eq(v.metrics.requests_short, 2);
    cr_expect_eq(v.info.last_response, T0 + 3);
    peer_table_destroy(&t);
}
