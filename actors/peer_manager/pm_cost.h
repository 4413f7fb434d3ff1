/*  pm_cost.h: what each way a request to a remote peer can end costs that
 *  peer, and what SyncActor is told (pure; tests/unit/peer/test_cost.c).
 *
 *    event                              charged        SyncActor hears
 *    answer checked (wire/wire.h)       its verdict    the verdict
 *    deadline passed                    TIMEOUT        TIMEOUT
 *    in flight when the link failed     TIMEOUT        TIMEOUT
 *    not sent: the link failed under a
 *      ready peer (ZMQ_IMMEDIATE)       (the link's    NO_PEER
 *                                       charge: once)
 *    closed by us (score, ban, refused) nothing        NO_PEER
 *    asked of a peer not ready/unknown  nothing        NO_PEER
 *    answer of the wrong kind           VIOLATION      VIOLATION
 *    error RATE_LIMITED / BAD_REQUEST   nothing        BUSY (ours to fix)
 *    error UNAVAILABLE                  TIMEOUT        TIMEOUT (as useful
 *                                                      as silence, as mild)
 *    error NOT_FOUND, other             SHORT          SHORT (it lacks
 *                                                      what it claimed)
 *    an undecodable frame from a ready
 *      peer                             VIOLATION      (no request)
 *
 *  A failed link is charged to the peer whose link it is, once per outage
 *  (pm_conn.h: PM_DO_CHARGE), never to "nobody": a peer that drops out
 *  under load must not look as good as a steady one.
 */
#ifndef PM_COST_H
#define PM_COST_H

#include <stdbool.h>

#include "peer_table.h"
#include "wire.pb-c.h"

typedef enum {
    PM_END_DEADLINE = 0,
    PM_END_LINK_LOST,
    PM_END_SEND_FAILED,
    PM_END_CLOSED,
    PM_END_NOT_READY,
    PM_END_WRONG_KIND,
    PM_END_ERROR, /* a WireError answer: see code */
    PM_END_BAD_FRAME,
} pm_end_t;

typedef struct {
    bool charge; /* record kind against the peer */
    peer_outcome_kind_t kind;
    int report; /* Alys__Peer__Outcome for SyncActor */
} pm_cost_t;

/* code: the WireError code for PM_END_ERROR, ignored otherwise. */
pm_cost_t pm_cost_of(pm_end_t end, Alys__Wire__WireError__Code code);

#endif
