/*  pm_flow.h: the small decisions PeerManager's shell used to make inline
 *  (peer_net.c, peer_deliver.c), as pure functions: no sockets, no clock
 *  (time is a parameter), tests/unit/peer/test_flow.c.
 *
 *  PeerDiscovered (pm_flow_discover): sent when a handshake makes a
 *  connection ready for the first time, when the peer was not in the table
 *  before, or when its reported height changed; a repeated probe answer at
 *  the same height says nothing new.
 *
 *  Another genesis (pm_flow_wrong_genesis): the peer is banned under the
 *  key of its alys:// endpoint (the link proved the key; its node id is not
 *  ours to trust), or "@host:port" for an endpoint without one, and a ban
 *  by endpoint keeps it from being re-dialled.
 *
 *  Ranges the reorder buffer let go (pm_flow_drop_outcome): a superseded
 *  range is not reported (its blocks are still there, under a newer
 *  request); a committed one is reported committed; any other drop is
 *  reported failed ("dropped", with the drop's name as the detail).
 *
 *  BlockProcessor errors (pm_flow_bp_busy): only BAD_REQUEST refuses a
 *  batch; every other code (busy, unavailable, restarting storage) means
 *  "keep it, back off, try again".
 *
 *  Our head from StorageActor (pm_flow_head): no genesis yet -> not usable;
 *  an answer to a GetHead asked before the last BatchProcessed arrived is
 *  stale for the head (the BatchProcessed knew a fresher one) but still
 *  gives the genesis and checkpoint; otherwise the head moved.
 */
#ifndef PM_FLOW_H
#define PM_FLOW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bus.h"
#include "peer_reorder.h"
#include "peer_table.h"
#include "wire/wire.h"

bool pm_flow_discover(bool newly_ready, bool was_in_table, uint64_t height_before,
                      uint64_t height_now);

/* Ban endpoint (the peer that answered with another genesis, node_id may
 * be NULL or "") as its key (else "@host:port") in table at now (unix ms). Writes the id
 * to id (idlen) and the reason to why (whylen). true when this made a new
 * ban (the caller saves the bans and counts it). */
bool pm_flow_wrong_genesis(peer_table_t *table, const char *endpoint, const char *node_id,
                           uint64_t now, char *id, size_t idlen, char *why, size_t whylen);

/* The BatchOutcome SyncActor hears for a dropped range; false = none
 * (superseded). Strings in *bo are borrowed from d (and static). */
bool pm_flow_drop_outcome(const reorder_ref_t *d, Alys__Peer__BatchOutcome *bo);

/* A BlockProcessor error reply with this code: true = busy (retry later),
 * false = the batch is refused. */
bool pm_flow_bp_busy(uint32_t code);

typedef enum {
    PM_HEAD_NO_GENESIS = 0, /* storage has no genesis yet: not usable */
    PM_HEAD_STALE,          /* genesis/checkpoint only: the head is older than ours */
    PM_HEAD_MOVED,          /* take the head (and genesis/checkpoint) */
} pm_head_t;

/* h: StorageActor's Head; asked_at: when its GetHead was sent; bp_reply_at:
 * when the last BatchProcessed arrived (same clock). */
pm_head_t pm_flow_head(const Alys__Storage__Head *h, int64_t asked_at, int64_t bp_reply_at);

#endif
