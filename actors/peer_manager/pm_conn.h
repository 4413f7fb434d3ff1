/*  pm_conn.h: PeerManager's outbound connections as a pure core: the
 *  connection slots and, per slot, the connection state machine. Which
 *  endpoint a free slot dials is the address book's (pm_addrbook.h): a slot
 *  holds an endpoint only while it is being dialled, connected, or kept for
 *  a listing (refused, closed, this node), and those kept ones are recycled
 *  when a dial needs the slot (pm_conns_open). No sockets, no clock: every input carries the
 *  monotonic time, and every transition returns what the shell must do
 *  (pm_conn_fx_t). tests/unit/peer/test_conn.c drives it directly.
 *
 *  States:
 *    IDLE     known, not dialled yet, or waiting for its backoff
 *    DIALING  our Status sent (the handshake), no answer yet
 *    READY    handshake done: a connected peer
 *    DOWN     was ready, lost: probed again with backoff until it answers
 *    CLOSED   dropped for its score or banned: re-dialled when the peer
 *             table allows (pm_conn_may_dial)
 *    REFUSED  another genesis, bad handshake: looked at again after
 *             PM_CONN_REFUSED_RETRY_MS
 *    SELF     it was this node
 *
 *  Giving up. A dial not answered after PM_CONN_DIAL_TRIES probes, or a
 *  lost peer not back after PM_CONN_DOWN_TRIES, gives its slot up
 *  (PM_DO_GIVE_UP): the address book counts the failure and decides when
 *  (and whether) to dial it again.
 *
 *  Probes. A Status every PM_CONN_PROBE_EVERY_MS while connected; one not
 *  answered within PM_CONN_PROBE_TIMEOUT_MS fails. A failed probe of a ready
 *  peer costs it a timeout (PM_DO_CHARGE), like a swallowed request; two in
 *  a row and it is DOWN. A peer that is not ready is probed with backoff:
 *  100 ms doubling to PM_CONN_BACKOFF_MAX_MS (the first probe of a fresh
 *  dial often fails only because TCP is not up yet: ZMQ_IMMEDIATE).
 *
 *  The link. ZeroMQ re-makes dropped TCP connections by itself, and a
 *  socket monitor tells the shell when it does. A disconnect of a ready
 *  peer (pm_conn_link_down), or a send to it that fails because nothing is
 *  connected (pm_conn_send_failed: ZMQ_IMMEDIATE), is the link failing
 *  under that peer: it goes DOWN at once and is charged one timeout
 *  (PM_DO_LOST | PM_DO_CHARGE); the requests it had in flight are lost with
 *  the link and are charged as timeouts by the shell (pm_cost.h). It is not
 *  "nobody's fault". When the link is back (pm_conn_link_up) the next probe
 *  goes at once, and an answer makes it READY again.
 *
 *  Ownership: pm_conns_new allocates the book, pm_conns_destroy(&self)
 *  frees it and nulls the pointer. pm_conn_t pointers stay valid for the
 *  book's life (slots are reused, never moved). Strings in pm_conn_fx_t are
 *  static.
 */
#ifndef PM_CONN_H
#define PM_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "peer_table.h"
#include "wire/wire.h"

#define PM_CONN_MAX              64
#define PM_CONN_PROBE_EVERY_MS   1000
#define PM_CONN_PROBE_TIMEOUT_MS 3000
#define PM_CONN_DOWN_AFTER       2 /* failed probes in a row */
#define PM_CONN_BACKOFF_MAX_MS   30000
#define PM_CONN_PEERS_EVERY_MS   10000  /* GetPeers */
#define PM_CONN_REFUSED_RETRY_MS 600000 /* another look at a refused endpoint */
#define PM_CONN_OUTBOUND_MAX     32     /* slots dialling or connected at once */
#define PM_CONN_DIAL_TRIES       4      /* probes of a fresh dial before giving up */
#define PM_CONN_DOWN_TRIES       8      /* probes of a lost peer before giving up */

typedef enum {
    PM_CONN_FREE = 0,
    PM_CONN_IDLE,
    PM_CONN_DIALING,
    PM_CONN_READY,
    PM_CONN_DOWN,
    PM_CONN_CLOSED,
    PM_CONN_REFUSED,
    PM_CONN_SELF,
} pm_conn_state_t;

typedef struct {
    pm_conn_state_t state;
    char endpoint[ALYS_ENDPOINT_MAX];
    char peer_id[ALYS_WIRE_ID_MAX]; /* the endpoint's key (hex): the peer's id, fixed */
    bool plugged;                   /* the shell's socket is connected to endpoint */
    uint64_t probe_id;              /* outstanding Status, 0 = none */
    int64_t probe_sent;
    int64_t next_probe;
    uint32_t failures; /* probes failed in a row */
    int64_t next_peers;
    int64_t refused_at;
    char reason[PEER_REASON_MAX];
} pm_conn_t;

/* What the shell does after a transition, in this order:
 *   UNPLUG     disconnect the socket from the endpoint
 *   LOST       no longer live: end its requests (pm_cost says how), the
 *              table marks it disconnected
 *   CHARGE     record a timeout against peer_id (why)
 *   PLUG       connect the socket, then pm_conn_plugged
 *   PROBE      send a Status, then pm_conn_probe_sent or pm_conn_send_failed
 *   GET_PEERS  send GetPeers (a request of the table)
 *   GIVE_UP    (after the above) the address book counts a failure, the
 *              slot is hung up and freed (pm_conns_release) */
enum {
    PM_DO_UNPLUG = 1 << 0,
    PM_DO_LOST = 1 << 1,
    PM_DO_CHARGE = 1 << 2,
    PM_DO_PLUG = 1 << 3,
    PM_DO_PROBE = 1 << 4,
    PM_DO_GET_PEERS = 1 << 5,
    PM_DO_GIVE_UP = 1 << 6,
};

/* was_ready (with LOST): tell SyncActor (PeerDisconnected). link_lost (with
 * LOST): the link failed under it, its requests are charged; not closed by
 * us. dialing (with PLUG/PROBE from IDLE/CLOSED/REFUSED): a new dial (peer
 * table: connecting). why: for logs, reports and the charge; valid until
 * the caller's string (or static). */
typedef struct {
    unsigned todo; /* PM_DO_* */
    bool was_ready;
    bool link_lost;
    bool dialing;
    const char *why;
} pm_conn_fx_t;

/* ---- the endpoint book ---------------------------------------------------- */

typedef struct pm_conns pm_conns_t;

/* our_listen: this node's listen endpoint ("" = none), never dialled. */
pm_conns_t *pm_conns_new(const char *our_listen);
void pm_conns_destroy(pm_conns_t **self_p);
/* Our public key (hex): an endpoint with it is ours, never dialled. */
void pm_conns_set_key(pm_conns_t *self, const char *key_hex);
/* Learn an endpoint: its slot (new IDLE, or the one it already has), or -1
 * when it is not alys://KEY@HOST:PORT (common/nodeaddr.h), is ours (our
 * key), or the book is full. The endpoint is kept in its canonical form and
 * its key is the connection's peer_id from then on: a peer is its key
 * (CURVE proves it on the link; see peer_net.h). */
int pm_conns_learn(pm_conns_t *self, const char *endpoint);
/* A slot to dial endpoint from: the one it has, a free one, or one kept
 * only for a listing (self, refused, then closed), recycled: its endpoint
 * is copied to recycled (ALYS_ENDPOINT_MAX, "" when none) and, when it was
 * closed (the book still counts it in use), *was_closed is set. The
 * recycled slot was unplugged when it left the live states. -1 when the
 * endpoint is invalid or ours, or every slot is live. */
int pm_conns_open(pm_conns_t *self, const char *endpoint, char *recycled, size_t len,
                  bool *was_closed);
/* Forget slot (it was unplugged): FREE. */
void pm_conns_release(pm_conns_t *self, size_t slot);
/* Slots dialling, connected or lost-and-probed (IDLE, DIALING, READY, DOWN). */
size_t pm_conns_active(const pm_conns_t *self);
pm_conn_t *pm_conns_at(pm_conns_t *self, size_t slot); /* NULL past the end */
int pm_conns_by_peer(const pm_conns_t *self, const char *peer_id);
int pm_conns_by_endpoint(const pm_conns_t *self, const char *endpoint);
size_t pm_conns_ready(const pm_conns_t *self);
/* The slot a request for peer_id may go out on now: its connection is
 * READY and neither its id nor its endpoint is banned. -1 with why
 * ("unknown peer", "peer not connected", "peer banned": NO_PEER). */
int pm_conns_usable(const pm_conns_t *self, peer_table_t *table, const char *peer_id,
                    uint64_t wall_ms, const char **why);
bool pm_conns_is_ours(const pm_conns_t *self, const char *endpoint);

/* ---- the state machine ---------------------------------------------------- */

const char *pm_conn_state_name(pm_conn_state_t s);
/* Backoff before the n-th probe of a peer that is not ready. */
int64_t pm_conn_backoff(uint32_t failures);

/* Whether an IDLE/CLOSED/REFUSED connection may be dialled now: its backoff
 * passed, not banned (id or endpoint), a closed peer's score recovered,
 * a refused endpoint waited long enough. wall_ms is unix ms (the table's). */
bool pm_conn_may_dial(const pm_conn_t *c, peer_table_t *table, int64_t now, uint64_t wall_ms);

/* Timers: dial when allowed (may_dial from pm_conn_may_dial), fail a probe
 * past its timeout, probe when due, GetPeers when due. */
pm_conn_fx_t pm_conn_tick(pm_conn_t *c, int64_t now, bool may_dial);
/* The shell connected the socket (PM_DO_PLUG). */
void pm_conn_plugged(pm_conn_t *c);
/* A probe went out with wire id probe_id. */
void pm_conn_probe_sent(pm_conn_t *c, uint64_t probe_id, int64_t now);
/* A response to one of our requests is still due on c's link (call before
 * pm_conn_tick). The peer answers in order and a bandwidth-bound link
 * delivers in order, so a probe sent meanwhile is answered behind that
 * response: its clock does not run until nothing of ours is due. Liveness
 * meanwhile is the request's own deadline (pm_reqs.h), bounded. Without
 * this a peer whose upload is the limit was called down (two probes
 * unanswered) in the middle of sending us a 1,024-block range. */
void pm_conn_response_due(pm_conn_t *c, int64_t now);
/* A send (probe or request) failed: nothing connected (ZMQ_IMMEDIATE). */
pm_conn_fx_t pm_conn_send_failed(pm_conn_t *c, int64_t now);
/* The socket monitor: the TCP link dropped / is (re)connected. */
pm_conn_fx_t pm_conn_link_down(pm_conn_t *c, int64_t now);
void pm_conn_link_up(pm_conn_t *c, int64_t now);
/* A Status answered our probe (request id probe_id). false = stale or not
 * ours (ignore it). The handshake's checks are the caller's; then
 * pm_conn_ready or pm_conn_refuse. */
bool pm_conn_is_probe(const pm_conn_t *c, uint64_t request_id);
/* The handshake passed: READY (as its key, c->peer_id). Returns true when
 * it was not ready before (connected: PeerDiscovered, GetPeers at once). */
bool pm_conn_ready(pm_conn_t *c, int64_t now);
/* An error answered our probe (unavailable, rate limited): try later. */
pm_conn_fx_t pm_conn_probe_error(pm_conn_t *c, int64_t now);
/* We end it: CLOSED (score, ban), REFUSED (genesis, handshake), SELF. */
pm_conn_fx_t pm_conn_close(pm_conn_t *c, const char *why);
pm_conn_fx_t pm_conn_refuse(pm_conn_t *c, int64_t now, const char *why);
pm_conn_fx_t pm_conn_self(pm_conn_t *c);
/* Another ready connection with slot's key (the same node reached at two
 * endpoints): its slot, or -1. One connection per key. */
int pm_conns_duplicate(const pm_conns_t *self, size_t slot);

#endif
