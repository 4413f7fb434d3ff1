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
 *
 *  A failed link is charged to the peer whose link it is, once per outage
 *  (pm_conn.h: PM_DO_CHARGE), never to "nobody": a peer that drops out
 *  under load must not look as good as a steady one.
 *
 *  Misbehaviour: frames that are not part of any exchange. Each costs its
 *  sender points off the PeerScore scale (peer_table.h: ban at -60, a
 *  half-life of 10 min), so one is forgiven and a flood ends in a ban,
 *  whichever side it arrives on: an outbound peer's score in the peer
 *  table (peer_table_penalise: misbehaviour bans, it never only drops, or
 *  the peer would be re-dialled as soon as its score decayed back and
 *  start over), an inbound client's in a ledger keyed by who it is
 *  (pm_ledger_t below: its routing id today, its key once links are
 *  authenticated), banned through the peer table's ban list like any peer.
 *  THE COST TABLE (pm_bad_cost = base + per_mib * MiB of the frame):
 *
 *    offence        base  /MiB  why
 *    UNDECODABLE     20    0    our own codec on both ends: no honest node
 *                               sends bytes it refuses; three and banned,
 *                               not one (a bound that differs between
 *                               versions must not ban a network at once)
 *    OVERSIZE        20    5    a frame larger than its kind can be (a
 *                               padded Status, a Blocks of 9 MiB): the
 *                               padding is the point of it
 *    UNSOLICITED      5    5    a response to nothing we asked: a made-up
 *                               or duplicate request id. An answer to a
 *                               request that timed out or lost its link is
 *                               late, not unsolicited, and free
 *                               (pm_late_t). Twelve small ones, or two of
 *                               8 MiB, and banned: bytes are what it costs us
 *    WRONG_WAY       10    5    a response on our serving socket, a request
 *                               on a link where we only ask: no honest node
 *                               confuses the two
 *    SHAPE           10    5    a multi-part message (one WireMsg per frame)
 *    OVER_RATE        0.5  0    a request past the token bucket: it got
 *                               RATE_LIMITED; an honest client backs off,
 *                               one that does not pays, slowly (120 in a
 *                               half-life): a burst is not an attack
 *    OVER_BYTES       2    5    a frame past the byte bucket (rate_limit.h),
 *                               not even decoded
 *
 *  What is not charged: an empty frame is UNDECODABLE like any other bytes;
 *  a Status answer with a stale request id (an earlier probe's) and a
 *  pushed NewBlock are the connection's and the block path's business.
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
} pm_end_t;

typedef struct {
    bool charge; /* record kind against the peer */
    peer_outcome_kind_t kind;
    int report; /* Alys__Peer__Outcome for SyncActor */
} pm_cost_t;

/* code: the WireError code for PM_END_ERROR, ignored otherwise. */
pm_cost_t pm_cost_of(pm_end_t end, Alys__Wire__WireError__Code code);

/* ---- misbehaviour ------------------------------------------------------- */

typedef enum {
    PM_BAD_UNDECODABLE = 0,
    PM_BAD_OVERSIZE,
    PM_BAD_UNSOLICITED,
    PM_BAD_WRONG_WAY,
    PM_BAD_SHAPE,
    PM_BAD_OVER_RATE,
    PM_BAD_OVER_BYTES,
    PM_BAD_COUNT
} pm_bad_t;

/* Points (> 0) the offence costs for a frame of `bytes` bytes; 0 for an
 * unknown offence. */
double pm_bad_cost(pm_bad_t what, size_t bytes);
/* "undecodable", "oversize", ... (metric labels, reasons). */
const char *pm_bad_name(pm_bad_t what);

/* The ledger of inbound clients: a score per "who" (opaque bytes, at most
 * PM_LEDGER_WHO_MAX), 0 for a stranger, falling by each charge and decaying
 * back toward 0 with the half-life, as the peer table's scores do. A charge
 * that takes it to ban_score or below says so (once: the entry starts over
 * at 0, the ban itself is the peer table's). Bounded: when full, the entry
 * closest to 0 (decayed) is recycled, so the worst offenders are the ones
 * remembered. Time: any ms clock (monotonic); a clock stepping back decays
 * nothing. Ownership: pm_ledger_new / pm_ledger_destroy(&self). */
#define PM_LEDGER_WHO_MAX 255
/* How long an inbound client is banned: 10 minutes, not the peer table's
 * hour. Who it is costs it nothing to change (a routing id; a fresh key
 * later), so a long ban buys little, and the ban list is shared and
 * bounded (PEER_MAX_BANS, the entry ending soonest makes room): a swarm of
 * throw-away identities banned for an hour each would push out the bans of
 * peers we dialled; banned for less, they can only displace bans in their
 * last ten minutes. */
#define PM_INBOUND_BAN_MS 600000

typedef struct pm_ledger pm_ledger_t;

/* NULL on OOM or capacity 0. ban_score < 0. */
pm_ledger_t *pm_ledger_new(size_t capacity, double ban_score, uint64_t half_life_ms);
void pm_ledger_destroy(pm_ledger_t **self_p);
/* Charge who points; true when this charge reaches the ban score. *score
 * (may be NULL) gets the score after the charge (before any reset). A who
 * out of bounds is never charged (false). */
bool pm_ledger_charge(pm_ledger_t *self, const void *who, size_t len, double points, int64_t now,
                      double *score);
/* The decayed score of who now (0 for a stranger). */
double pm_ledger_score(pm_ledger_t *self, const void *who, size_t len, int64_t now);
size_t pm_ledger_size(const pm_ledger_t *self);

#endif
