/*  What each way a request ends costs the peer (pm_cost.h). */
#include <criterion/criterion.h>

#include "peer.pb-c.h"
#include "pm_cost.h"

static void expect(pm_end_t end, int code, bool charge, peer_outcome_kind_t kind, int report)
{
    pm_cost_t c = pm_cost_of(end, (Alys__Wire__WireError__Code) code);
    cr_expect_eq(c.charge, charge, "end %d code %d: charge", (int) end, code);
    if (charge)
        cr_expect_eq(c.kind, kind, "end %d code %d: kind", (int) end, code);
    cr_expect_eq(c.report, report, "end %d code %d: report", (int) end, code);
}

Test(cost, silence_and_a_lost_link_cost_a_timeout)
{
    expect(PM_END_DEADLINE, 0, true, PEER_OUTCOME_TIMEOUT, ALYS__PEER__OUTCOME__TIMEOUT);
    expect(PM_END_LINK_LOST, 0, true, PEER_OUTCOME_TIMEOUT, ALYS__PEER__OUTCOME__TIMEOUT);
}

Test(cost, ours_to_end_is_not_charged)
{
    expect(PM_END_CLOSED, 0, false, PEER_OUTCOME_OK, ALYS__PEER__OUTCOME__NO_PEER);
    expect(PM_END_NOT_READY, 0, false, PEER_OUTCOME_OK, ALYS__PEER__OUTCOME__NO_PEER);
}

Test(cost, a_send_failing_on_a_dead_link_is_no_peer_and_the_link_pays)
{
    /* The request itself is NO_PEER for SyncActor; the charge is the
     * link's, once per outage (pm_conn_send_failed), not per request. */
    expect(PM_END_SEND_FAILED, 0, false, PEER_OUTCOME_OK, ALYS__PEER__OUTCOME__NO_PEER);
}

Test(cost, wrong_answers_are_violations)
{
    expect(PM_END_WRONG_KIND, 0, true, PEER_OUTCOME_VIOLATION, ALYS__PEER__OUTCOME__VIOLATION);
}

Test(cost, error_answers_by_code)
{
    expect(PM_END_ERROR, ALYS__WIRE__WIRE_ERROR__CODE__RATE_LIMITED, false, PEER_OUTCOME_OK,
           ALYS__PEER__OUTCOME__BUSY);
    expect(PM_END_ERROR, ALYS__WIRE__WIRE_ERROR__CODE__BAD_REQUEST, false, PEER_OUTCOME_OK,
           ALYS__PEER__OUTCOME__BUSY);
    expect(PM_END_ERROR, ALYS__WIRE__WIRE_ERROR__CODE__UNAVAILABLE, true, PEER_OUTCOME_TIMEOUT,
           ALYS__PEER__OUTCOME__TIMEOUT);
    expect(PM_END_ERROR, ALYS__WIRE__WIRE_ERROR__CODE__NOT_FOUND, true, PEER_OUTCOME_SHORT,
           ALYS__PEER__OUTCOME__SHORT);
}

/* ---- misbehaviour: the cost table and the inbound ledger ------------------- */

#define MIB       (1024u * 1024u)
#define BAN       (-60.0)
#define HALF_LIFE 600000u

Test(cost, every_offence_costs_something_and_bytes_cost_more)
{
    for (int b = 0; b < PM_BAD_COUNT; b++) {
        cr_expect_gt(pm_bad_cost((pm_bad_t) b, 0), 0.0, "%s free", pm_bad_name((pm_bad_t) b));
        cr_expect_geq(pm_bad_cost((pm_bad_t) b, 8 * MIB), pm_bad_cost((pm_bad_t) b, 0));
    }
    cr_expect_eq(pm_bad_cost(PM_BAD_COUNT, 100), 0.0);
    cr_expect_str_eq(pm_bad_name(PM_BAD_COUNT), "unknown");
}

Test(cost, one_bad_frame_is_forgiven_and_a_flood_is_not)
{
    /* Every offence: one alone stays above the ban score... */
    for (int b = 0; b < PM_BAD_COUNT; b++)
        cr_expect_gt(-pm_bad_cost((pm_bad_t) b, 100), BAN, "%s bans at once",
                     pm_bad_name((pm_bad_t) b));
    /* ...a few hundred small ones at once do not, */
    for (int b = 0; b < PM_BAD_COUNT; b++)
        cr_expect_leq(-300 * pm_bad_cost((pm_bad_t) b, 100), BAN, "%s never bans",
                      pm_bad_name((pm_bad_t) b));
    /* and two unsolicited 8 MiB frames cost what twelve small ones do. */
    cr_expect_leq(-2 * pm_bad_cost(PM_BAD_UNSOLICITED, 8 * MIB), BAN);
    cr_expect_gt(-2 * pm_bad_cost(PM_BAD_UNSOLICITED, 100), BAN);
}

Test(cost, the_ledger_bans_once_at_the_ban_score_and_starts_over)
{
    pm_ledger_t *l = pm_ledger_new(4, BAN, HALF_LIFE);
    cr_assert_not_null(l);
    double score = 0;
    cr_expect_not(pm_ledger_charge(l, "a", 1, 25, 0, &score));
    cr_expect_float_eq(score, -25.0, 1e-9);
    cr_expect_not(pm_ledger_charge(l, "a", 1, 25, 0, &score));
    cr_expect(pm_ledger_charge(l, "a", 1, 25, 0, &score), "-75 is past the ban score");
    cr_expect_float_eq(score, -75.0, 1e-9);
    cr_expect_float_eq(pm_ledger_score(l, "a", 1, 0), 0.0, 1e-9, "not reset after the ban");
    cr_expect_float_eq(pm_ledger_score(l, "b", 1, 0), 0.0, 1e-9, "a stranger owes");
    pm_ledger_destroy(&l);
    cr_expect_null(l);
}

Test(cost, the_ledger_forgets_with_the_half_life_and_not_backwards)
{
    pm_ledger_t *l = pm_ledger_new(4, BAN, HALF_LIFE);
    pm_ledger_charge(l, "a", 1, 40, 1000, NULL);
    cr_expect_float_eq(pm_ledger_score(l, "a", 1, 1000 + HALF_LIFE), -20.0, 1e-6);
    cr_expect_float_eq(pm_ledger_score(l, "a", 1, 0), -20.0, 1e-6, "time went back and decayed");
    /* Slow enough a trickle never adds up to a ban: 20 every half-life
     * settles at -40. */
    bool ever = false;
    for (int i = 0; i < 50; i++)
        ever |= pm_ledger_charge(l, "slow", 4, 20, (int64_t) i * HALF_LIFE, NULL);
    cr_expect_not(ever, "a trickle within the decay was banned");
    pm_ledger_destroy(&l);
}

Test(cost, a_full_ledger_recycles_the_least_owing_and_keeps_the_worst)
{
    pm_ledger_t *l = pm_ledger_new(2, BAN, HALF_LIFE);
    pm_ledger_charge(l, "worst", 5, 50, 0, NULL);
    pm_ledger_charge(l, "mild", 4, 1, 0, NULL);
    pm_ledger_charge(l, "new", 3, 2, 0, NULL); /* takes mild's entry */
    cr_expect_eq(pm_ledger_size(l), 2);
    cr_expect_float_eq(pm_ledger_score(l, "worst", 5, 0), -50.0, 1e-9);
    cr_expect_float_eq(pm_ledger_score(l, "mild", 4, 0), 0.0, 1e-9);
    cr_expect_float_eq(pm_ledger_score(l, "new", 3, 0), -2.0, 1e-9);
    cr_expect_not(pm_ledger_charge(l, "", 0, 100, 0, NULL), "an empty who charged");
    cr_expect_not(pm_ledger_charge(l, "x", 1, -5, 0, NULL), "a negative charge");
    pm_ledger_destroy(&l);
}
