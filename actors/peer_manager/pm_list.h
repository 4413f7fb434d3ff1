/*  pm_list.h: PeerManager's listings as a pure core (tests/unit/peer/
 *  test_list.c): the PeerSet that SyncActor gets and alysctl peers shows,
 *  the endpoints known but not in the peer table, and when the PeerSet is
 *  pushed. No sockets, no clock: time is a parameter.
 *
 *  PeerSet order: the peers peer_table_select picks for sync, best first,
 *  each with its adaptive timeout for the set's batch size; a connected
 *  peer below the score cutoff shows as "low_score" (SyncActor reads
 *  "connected" as usable). With all (alysctl): then every other table
 *  entry (its own timeout), every ban of a peer not in the table
 *  ("banned"), then the unlisted endpoints given (timeout 0).
 *
 *  Unlisted endpoints: outbound connections refused at the handshake
 *  ("refused", with the reason) or dialled and never answered
 *  ("connecting": "no answer yet" once a dial failed), unless their peer
 *  id is in the table (listed from there); inbound clients refused less
 *  than PM_ADMIT_REFUSED_TTL_MS ago, or refused or evicted by the inbound
 *  limits less than PM_INBOUND_REFUSED_MS ago ("refused", reason
 *  "inbound: ..."), and inbound clients holding a slot ("inbound", with
 *  their bytes owed); endpoint their listen address or "inbound:<node id>",
 *  address their remote address.
 *
 *  Push to SyncActor: on change (dirty), when forced, and at least every
 *  PM_LIST_PUSH_MS.
 */
#ifndef PM_LIST_H
#define PM_LIST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bus.h"
#include "peer_table.h"
#include "pm_admit.h"
#include "pm_conn.h"

#define PM_LIST_PUSH_MS      2000 /* the PeerSet goes to SyncActor at least this often */
#define PM_LIST_UNLISTED_CAP 64   /* unlisted endpoints taken from each side */

typedef struct {
    char peer_id[PEER_ID_MAX]; /* "@host:port", or the inbound node id */
    char endpoint[PEER_ENDPOINT_MAX];
    const char *state; /* "refused", "connecting" or "inbound" (static) */
    char reason[PEER_REASON_MAX];
    uint64_t bytes_owed;               /* inbound: answers not yet taken by its socket */
    char address[PM_INBOUND_ADDR_MAX]; /* inbound: remote address */
    bool inbound;                      /* an inbound client (else a connection we dial) */
} pm_unlisted_t;

/* Outbound connections in book not listed from table: up to cap into out. */
size_t pm_list_conns(pm_conns_t *book, const peer_table_t *table, pm_unlisted_t *out, size_t cap);
/* Inbound clients refused recently and those holding a slot (now:
 * monotonic ms): up to cap. */
size_t pm_list_clients(pm_clients_t *clients, int64_t now, pm_unlisted_t *out, size_t cap);

/* The PeerSet at now (unix ms); unlisted (n_unlisted, copied) only with
 * all. NULL on out-of-memory. Free with pm_list_free. */
Alys__Peer__PeerSet *pm_list_peerset(peer_table_t *table, uint64_t now, bool all,
                                     const pm_unlisted_t *unlisted, size_t n_unlisted);
void pm_list_free(Alys__Peer__PeerSet **set_p);

/* Push the PeerSet now? last_at and now: monotonic ms. */
bool pm_list_push_due(bool force, bool dirty, int64_t last_at, int64_t now);

#endif
