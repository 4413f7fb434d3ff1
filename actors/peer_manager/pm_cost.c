/*  pm_cost.c: see pm_cost.h. */
#include "pm_cost.h"

#include "peer.pb-c.h"

static pm_cost_t charged(peer_outcome_kind_t kind, int report)
{
    return (pm_cost_t){.charge = true, .kind = kind, .report = report};
}

static pm_cost_t free_of_charge(int report)
{
    return (pm_cost_t){.charge = false, .kind = PEER_OUTCOME_OK, .report = report};
}

static pm_cost_t error_cost(Alys__Wire__WireError__Code code)
{
    switch (code) {
    case ALYS__WIRE__WIRE_ERROR__CODE__RATE_LIMITED:
    case ALYS__WIRE__WIRE_ERROR__CODE__BUSY:
    case ALYS__WIRE__WIRE_ERROR__CODE__BAD_REQUEST:
        return free_of_charge(ALYS__PEER__OUTCOME__BUSY);
    case ALYS__WIRE__WIRE_ERROR__CODE__UNAVAILABLE:
        return charged(PEER_OUTCOME_TIMEOUT, ALYS__PEER__OUTCOME__TIMEOUT);
    default: return charged(PEER_OUTCOME_SHORT, ALYS__PEER__OUTCOME__SHORT);
    }
}

pm_cost_t pm_cost_of(pm_end_t end, Alys__Wire__WireError__Code code)
{
    switch (end) {
    case PM_END_DEADLINE:
    case PM_END_LINK_LOST: return charged(PEER_OUTCOME_TIMEOUT, ALYS__PEER__OUTCOME__TIMEOUT);
    case PM_END_WRONG_KIND:
    case PM_END_BAD_FRAME: return charged(PEER_OUTCOME_VIOLATION, ALYS__PEER__OUTCOME__VIOLATION);
    case PM_END_ERROR: return error_cost(code);
    case PM_END_SEND_FAILED: /* the link's charge covers it */
    case PM_END_CLOSED:
    case PM_END_NOT_READY:
    default: return free_of_charge(ALYS__PEER__OUTCOME__NO_PEER);
    }
}
