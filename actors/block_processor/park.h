/*  park.h: copies of PeerManager's reorder buffer, parked at BlockProcessor
 *  (pure: no sockets, no clock; time is an input).
 *
 *  Why. PeerManager holds downloaded ranges in its reorder buffer until
 *  they are committed (actors/peer_manager/peer_reorder.h). A kill -9 of
 *  PeerManager used to lose them all, and SyncActor downloaded them again
 *  (512-682 blocks of a 6,000-block sync). PeerManager now mirrors every
 *  entry of its buffer here (Park on insert, Unpark when it leaves, rekey
 *  when a re-issued fetch takes it over), and its successor asks for them
 *  back at start (GetParked) and re-adopts them: only what was on the wire
 *  is downloaded again. BlockProcessor is the natural keeper: it is where
 *  the blocks go next, and a PeerManager kill does not take it down.
 *
 *  Keys. An entry belongs to its requester (its routing id on the mailbox,
 *  "peer_manager") and is keyed by (requester, request_id): a requester
 *  sees and changes only its own. A Park of a key already held replaces it.
 *
 *  Bounds. At most max_entries entries and max_bytes bytes of blocks and
 *  hashes (cfg; BlockProcessor sizes max_bytes from common/membudget.h as
 *  PeerManager sizes its reorder buffer: the mirror never needs more). A
 *  Park that does not fit is refused and counted (park_refused), nothing is
 *  evicted: a parked copy is only a saving, and evicting another range
 *  would lose it silently. A range of over PARK_MAX_BLOCKS blocks, or with
 *  a hash count other than 0 or one per block, or a hash not 32 bytes, is
 *  invalid (checked before anything is allocated).
 *
 *  Commit. An entry wholly at or below the committed head is dropped
 *  (park_set_head; BlockProcessor learns the head from storage's answers):
 *  it will never be needed again. PeerManager's Unpark usually comes first.
 *  The head read may be older than a rollback (SyncActor rolls storage back
 *  to a checkpoint): then an entry above the new head may be dropped early,
 *  which costs only its re-download.
 *
 *  Listing. park_list gives a requester's entries lowest start first, as
 *  many as fit in max_bytes of encoded message (park_wire_bytes estimates
 *  an entry's share from above), and says whether some were left out.
 *
 *  Ownership: park_new allocates, park_destroy frees and nulls. Blocks and
 *  hashes given to park_put are copied. Entries from park_list point into
 *  the store and stay valid until the next call that changes it.
 */
#ifndef ALYS_PARK_H
#define ALYS_PARK_H

#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PARK_OWNER_MAX  128   /* requester routing id, bytes with the NUL */
#define PARK_PEER_MAX   128   /* peer id, bytes with the NUL */
#define PARK_MAX_BLOCKS 65536 /* blocks of one range: far above one 8 MiB download */
#define PARK_HASH_LEN   32

typedef struct {
    uint32_t max_entries; /* 64: twice PeerManager's reorder entries */
    size_t max_bytes;     /* 64 MiB; BlockProcessor: membudget's reorder_bytes */
} park_config_t;

void park_config_defaults(park_config_t *cfg);

/* One parked range (read-only for callers). */
typedef struct {
    char owner[PARK_OWNER_MAX];
    uint64_t request_id;
    char peer_id[PARK_PEER_MAX];
    uint64_t start;
    size_t n;                          /* blocks */
    const ProtobufCBinaryData *blocks; /* n items */
    const ProtobufCBinaryData *hashes; /* n items, or NULL */
    size_t bytes;                      /* blocks and hashes */
    uint64_t parked_at;                /* now_ms of park_put */
} park_entry_t;

typedef enum {
    PARK_OK = 0,
    PARK_FULL,    /* over max_entries or max_bytes: refused, nothing evicted */
    PARK_INVALID, /* empty, over PARK_MAX_BLOCKS, bad hashes, bad key, out of memory */
} park_put_t;

typedef struct park park_t;

/* NULL cfg = defaults. NULL on out-of-memory. */
park_t *park_new(const park_config_t *cfg);
void park_destroy(park_t **self_p);

/* Keep a copy of blocks [start, start + n) for owner's request_id (hashes:
 * n_hashes of 0 or n). Replaces an entry of the same key. */
park_put_t park_put(park_t *self, const char *owner, uint64_t request_id, const char *peer_id,
                    uint64_t start, const ProtobufCBinaryData *blocks, size_t n,
                    const ProtobufCBinaryData *hashes, size_t n_hashes, uint64_t now_ms);
/* Forget owner's entries with these request ids. Returns how many went. */
size_t park_unpark(park_t *self, const char *owner, const uint64_t *ids, size_t n);
/* owner's entry old_id now answers new_id (an entry already under new_id
 * is replaced). false if old_id is not parked. */
bool park_rekey(park_t *self, const char *owner, uint64_t old_id, uint64_t new_id);
/* The committed head: entries wholly at or below it are dropped. Returns
 * how many went. */
size_t park_set_head(park_t *self, uint64_t head);

/* An entry's share of an encoded Parked message, from above. */
size_t park_wire_bytes(const park_entry_t *e);
/* owner's entries, lowest start first (ties: lowest request id), as many as
 * fit in max_bytes of park_wire_bytes and cap: pointers into out. Returns
 * how many were listed; *total: how many owner has (> the return value
 * when some were left out). */
size_t park_list(const park_t *self, const char *owner, size_t max_bytes,
                 const park_entry_t **out, size_t cap, size_t *total);

size_t park_entries(const park_t *self);
size_t park_bytes(const park_t *self);
/* Parks refused since park_new (PARK_FULL). */
uint64_t park_refused(const park_t *self);
/* Entries dropped by park_set_head since park_new. */
uint64_t park_committed(const park_t *self);

#endif
