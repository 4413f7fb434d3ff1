/*  sync_known.h: the peers the SyncActor has told the machine about, kept
 *  exactly in step with PeerManager's connected peers. Pure: time is passed
 *  in (now_ms, the caller's monotonic clock).
 *
 *  Every peer the machine knows is in this table and only those: a peer
 *  enters when PeerManager reports it connected (PeerDiscovered, or a
 *  "connected" entry of a PeerSet) and leaves when PeerManager reports it
 *  gone (PeerDisconnected, a "disconnected"/"banned"/"refused" entry) or
 *  when it has been missing from the PeerSets for absent_ms (a restarted
 *  PeerManager does not announce the peers it lost). Each exit is returned to
 *  the caller, which tells the machine (sync_machine_on_peer_disconnected),
 *  so the machine is never left with a ghost.
 *
 *  Bounded: at most SYNC_MAX_PEERS entries, the machine's own bound. When it
 *  is full, a new peer evicts the one reported longest ago, and the caller
 *  tells the machine that one is gone before adding the new one.
 *
 *  Ownership: sync_known_new/destroy. Ids are copied in and out.
 */
#ifndef SYNC_KNOWN_H
#define SYNC_KNOWN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sync_machine.h"

/* Missing from PeerManager's sets this long: gone. PeerManager pushes a set
 * at least every 2 s and on every change; a peer just announced by
 * PeerDiscovered may miss one push. */
#define SYNC_KNOWN_ABSENT_MS 1500

/* What a PeerSet entry's state says about the peer. */
typedef enum {
    SYNC_ENTRY_CONNECTED, /* "connected": (re)report it */
    SYNC_ENTRY_GONE,      /* "disconnected", "banned", "refused" */
    SYNC_ENTRY_OTHER,     /* dialing, handshaking...: not yet ours */
} sync_entry_kind_t;

typedef struct sync_known sync_known_t;

/* cap: entries, clamped to [1, SYNC_MAX_PEERS]. NULL on allocation failure. */
sync_known_t *sync_known_new(size_t cap, uint32_t absent_ms);
void sync_known_destroy(sync_known_t **self_p);

/* A usable peer id: non-empty, at most SYNC_PEER_ID_MAX bytes. */
bool sync_known_valid_id(const char *id);
sync_entry_kind_t sync_known_entry_kind(const char *state);

/* PeerManager reports id connected at now. False when id is not a usable
 * id (the caller drops the report). When the table was full, the entry
 * reported longest ago is evicted to make room: *evicted is true and
 * evicted_id holds it (the caller tells the machine it is gone first). */
bool sync_known_seen(sync_known_t *self, const char *id, uint64_t now_ms, bool *evicted,
                     sync_peer_id_t evicted_id);
/* PeerManager reports id gone. True when it was known (tell the machine). */
bool sync_known_gone(sync_known_t *self, const char *id);
/* After a PeerSet at now: removes one peer missing from the sets for
 * absent_ms or more and copies its id. False when there is none. Call until
 * false. */
bool sync_known_next_absent(sync_known_t *self, uint64_t now_ms, sync_peer_id_t out);

bool sync_known_has(const sync_known_t *self, const char *id);
size_t sync_known_count(const sync_known_t *self);

#endif
