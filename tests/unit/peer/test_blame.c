/*  Blame: the peer that served bad data is suspected, then convicted only when
 *  another peer's copy of the same range validates; honest peers never pay. */
#include "peer_test_util.h"

Test(blame, suspect_then_convict_when_another_peer_validates)
{
    peer_table_t *t = table_with(NULL);
    add_connected(t, "liar", 500, T0);
    add_connected(t, "honest", 500, T0);
    cr_assert_eq(peer_table_suspect(t, "liar", 100, 101, "bad_tx_signature", T0), PEER_OK);
    cr_expect_eq(score_of(t, "liar", T0), 0.0); /* suspected, not punished */
    cr_expect_eq(peer_table_suspect_count(t), 1);

    peer_ref_t blamed[4];
    peer_action_t actions[4];
    size_t n = peer_table_range_validated(t, "honest", 100, 228, T0 + 1, blamed, actions, 4);
    cr_assert_eq(n, 1);
    cr_expect_str_eq(blamed[0].id, "liar");
    cr_expect_eq(actions[0], PEER_ACTION_DISCONNECT);
    assert_near(score_of(t, "liar", T0 + 1), -40, 1e-3);
    cr_expect_eq(view_of(t, "liar", T0 + 1).metrics.requests_invalid, 1);
    cr_expect_eq(score_of(t, "honest", T0 + 1), 0.0);
    cr_expect_eq(peer_table_suspect_count(t), 0);
    /* Settled: validating the range again convicts no one twice. */
    cr_expect_eq(peer_table_range_validated(t, "honest", 100, 228, T0 + 2, NULL, NULL, 0), 0);
    peer_table_destroy(&t);
}

Test(blame, honest_peer_never_penalised_for_a_liar)
{
    peer_table_t *t = table_with(NULL);
    add_connected(t, "liar", 500, T0);
    add_connected(t, "h1", 500, T0);
    add_connected(t, "h2", 500, T0);
    /* Each honest peer serves a range and is credited for the delivery. */
    record_ok(t, "h1", 10, 1000, 128, T0);
    record_ok(t, "h2", 10, 1000, 128, T0);
    record_ok(t, "liar", 10, 1000, 128, T0);
    double h1 = score_of(t, "h1", T0), h2 = score_of(t, "h2", T0);
    /* h1's range [0,128) validates; the liar's [128,256) fails at 130. */
    cr_expect_eq(peer_table_range_validated(t, "h1", 0, 128, T0, NULL, NULL, 0), 0);
    cr_assert_eq(peer_table_suspect(t, "liar", 130, 131, "tx_root_mismatch", T0), PEER_OK);
    /* h2 re-serves [128,256) and it validates. */
    peer_ref_t blamed[4];
    cr_assert_eq(peer_table_range_validated(t, "h2", 128, 256, T0, blamed, NULL, 4), 1);
    cr_expect_str_eq(blamed[0].id, "liar");
    cr_expect_eq(score_of(t, "h1", T0), h1);
    cr_expect_eq(score_of(t, "h2", T0), h2);
    cr_expect_eq(view_of(t, "h1", T0).metrics.requests_invalid, 0);
    cr_expect_eq(view_of(t, "h2", T0).metrics.requests_invalid, 0);
    cr_expect(score_of(t, "liar", T0) < -30);
    peer_table_destroy(&t);
}

Test(blame, own_range_validating_clears_the_suspect)
{
    peer_table_t *t = table_with(NULL);
    add_connected(t, "p", 500, T0);
    add_connected(t, "q", 500, T0);
    cr_assert_eq(peer_table_suspect(t, "p", 100, 101, "our hiccup", T0), PEER_OK);
    /* p serves it again and this time it validates: the failure was not p's data. */
    cr_expect_eq(peer_table_range_validated(t, "p", 100, 200, T0 + 1, NULL, NULL, 0), 0);
    cr_expect_eq(peer_table_suspect_count(t), 0);
    cr_expect_eq(peer_table_range_validated(t, "q", 100, 200, T0 + 2, NULL, NULL, 0), 0);
    cr_expect_eq(score_of(t, "p", T0 + 2), 0.0);
    peer_table_destroy(&t);
}

Test(blame, partial_overlap_is_not_proof)
{
    peer_table_t *t = table_with(NULL);
    add_connected(t, "p", 500, T0);
    add_connected(t, "q", 500, T0);
    cr_assert_eq(peer_table_suspect(t, "p", 100, 228, "range failed", T0), PEER_OK);
    /* q validated only part of it: the bad block may be in the rest. */
    cr_expect_eq(peer_table_range_validated(t, "q", 100, 164, T0, NULL, NULL, 0), 0);
    cr_expect_eq(score_of(t, "p", T0), 0.0);
    cr_expect_eq(peer_table_suspect_count(t), 1);
    cr_expect_eq(peer_table_range_validated(t, "q", 64, 300, T0, NULL, NULL, 0), 1);
    peer_table_destroy(&t);
}

Test(blame, suspicions_expire_unpunished)
{
    peer_table_t *t = table_with(NULL);
    add_connected(t, "p", 500, T0);
    add_connected(t, "q", 500, T0);
    cr_assert_eq(peer_table_suspect(t, "p", 100, 101, "x", T0), PEER_OK);
    cr_expect_eq(peer_table_range_validated(t, "q", 0, 1000, T0 + 10 * MINUTE, NULL, NULL, 0), 0);
    cr_expect_eq(score_of(t, "p", T0 + 10 * MINUTE), 0.0);
    peer_table_destroy(&t);
}

Test(blame, duplicate_reports_convict_once_and_every_liar_pays)
{
    peer_table_t *t = table_with(NULL);
    add_connected(t, "l1", 500, T0);
    add_connected(t, "l2", 500, T0);
    add_connected(t, "h", 500, T0);
    cr_assert_eq(peer_table_suspect(t, "l1", 100, 101, "x", T0), PEER_OK);
    cr_assert_eq(peer_table_suspect(t, "l1", 100, 101, "x", T0), PEER_OK); /* same report */
    cr_assert_eq(peer_table_suspect(t, "l1", 150, 151, "y", T0), PEER_OK);
    cr_assert_eq(peer_table_suspect(t, "l2", 100, 101, "z", T0), PEER_OK);
    cr_expect_eq(peer_table_suspect_count(t), 3);
    peer_ref_t blamed[1];
    peer_action_t actions[1];
    /* cap 1: both convicted, only the first copied out. */
    cr_expect_eq(peer_table_range_validated(t, "h", 0, 200, T0, blamed, actions, 1), 2);
    cr_expect_str_eq(blamed[0].id, "l1");
    assert_near(score_of(t, "l1", T0), -40, 1e-6);
    assert_near(score_of(t, "l2", T0), -40, 1e-6);
    cr_expect_eq(score_of(t, "h", T0), 0.0);
    peer_table_destroy(&t);
}

Test(blame, objective_faults_are_penalised_at_once)
{
    peer_table_t *t = table_with(NULL);
    add_connected(t, "malformed", 500, T0);
    add_connected(t, "mismatch", 500, T0);
    peer_action_t a;
    cr_assert_eq(peer_table_blame_now(t, "malformed", PEER_OUTCOME_INVALID,
                                      "body does not match verified header", T0, &a),
                 PEER_OK);
    cr_expect_eq(a, PEER_ACTION_DISCONNECT);
    assert_near(score_of(t, "malformed", T0), -40, 1e-9);
    cr_assert_eq(peer_table_blame_now(t, "mismatch", PEER_OUTCOME_VIOLATION,
                                      "response does not match request", T0, &a),
                 PEER_OK);
    cr_expect_eq(a, PEER_ACTION_BAN);
    cr_expect(peer_table_is_banned(t, "mismatch", NULL, T0));
    cr_expect_eq(peer_table_blame_now(t, "malformed", PEER_OUTCOME_OK, "", T0, &a), PEER_ERR_INVALID);
    cr_expect_eq(peer_table_suspect(t, "nobody", 1, 2, "x", T0), PEER_ERR_UNKNOWN);
    cr_expect_eq(peer_table_suspect(t, "malformed", 2, 2, "x", T0), PEER_ERR_INVALID);
    peer_table_destroy(&t);
}

Test(blame, suspect_list_is_bounded)
{
    peer_table_t *t = table_with(NULL);
    add_connected(t, "p", 500000, T0);
    for (uint64_t h = 0; h < PEER_MAX_SUSPECTS + 50; h++)
        cr_assert_eq(peer_table_suspect(t, "p", h, h + 1, "x", T0 + h), PEER_OK);
    cr_expect_eq(peer_table_suspect_count(t), PEER_MAX_SUSPECTS);
    peer_table_destroy(&t);
}
