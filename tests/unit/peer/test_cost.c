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
    expect(PM_END_BAD_FRAME, 0, true, PEER_OUTCOME_VIOLATION, ALYS__PEER__OUTCOME__VIOLATION);
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
