/*  peer_reorder.h: the reorder buffer between downloads and BlockProcessor
 *  (pure: no sockets, no clock; time is an input).
 *
 *  Why. SyncActor fetches several ranges in parallel from different peers;
 *  they arrive in any order, but BlockProcessor and StorageActor execute
 *  blocks strictly in height order, a batch's first block linking to the
 *  head. So downloaded ranges wait here and are handed over only
 *  contiguously from the next expected height.
 *
 *  Heights. `head` is the committed head: from StorageActor at start and
 *  every BatchProcessed.head_height after. The next height to hand over is
 *  max(head + 1, end of every chunk now at BlockProcessor). An entry that
 *  covers that height is sent from it (its leading blocks at or below it are
 *  trimmed off: already committed or in flight). An entry wholly at or below
 *  the head is dropped as already committed (storage is idempotent anyway),
 *  but only once a head observed after the entry arrived says so: the head
 *  also goes down (SyncActor rolls storage back to a checkpoint), and a
 *  range dropped on a head from before the rollback would never be
 *  committed. (A chunk trimmed on such a stale head fails for its missing
 *  parent and waits, see below, until the next head read corrects it.)
 *
 *  Chunks. An entry goes to BlockProcessor in chunks of at most chunk_blocks
 *  blocks and chunk_bytes bytes (a full 8 MiB download exceeds what one
 *  ProcessBatch may carry), one chunk of an entry at a time, up to
 *  max_inflight chunks overall (so BlockProcessor validates the next batch
 *  while storage executes the previous one). Every send of a chunk has a new
 *  batch id (the caller's correlation id): replies to an abandoned send are
 *  unknown and ignored, never mistaken for the current one.
 *
 *  Outcomes (reorder_on_processed):
 *    committed           the entry advances; complete when the head passed
 *                        its end; entries now wholly at or below the head
 *                        are dropped (DROP_COMMITTED: report them done)
 *    failed, not its     the failure is at the chunk's first block, the head
 *    fault               is below its parent and the reason is not about the
 *                        block's content: an earlier batch did not land
 *                        (busy, restart). Back to waiting, no report.
 *    failed              the entry is removed (report it), and every entry
 *                        starting above the failed height is dropped
 *                        (DROP_AFTER_FAILURE): SyncActor re-fetches what lies
 *                        above a failure. Overlapping entries that cover the
 *                        failed height (the same range from another peer)
 *                        stay and are sent next.
 *  BlockProcessor busy (reorder_on_busy): the chunk waits with exponential
 *  backoff; chunks sent after it go back to waiting too (they could only fail
 *  for the missing parent). Lost (restart, reorder_on_lost, or no reply for
 *  processing_timeout_ms, reorder_expire): every chunk at BlockProcessor goes
 *  back to waiting and is resent in order.
 *
 *  Bounds. At most max_entries entries and max_bytes bytes. A new entry that
 *  does not fit evicts waiting entries that start above it, farthest first
 *  (DROP_EVICTED: report them so SyncActor re-fetches); if it still would not
 *  fit it is refused (REORDER_FULL). A waiting entry with the same start and
 *  no more blocks than a new one is replaced by it (DROP_SUPERSEDED: the same
 *  blocks are still buffered, under the newer request).
 *
 *  Ownership: reorder_new allocates, reorder_destroy frees and nulls. Batches
 *  given to reorder_insert are copied. Pointers in reorder_send_t point into
 *  the buffer and stay valid until the next call that changes it.
 */
#ifndef PEER_REORDER_H
#define PEER_REORDER_H

#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "chain/chain.h"
#include "peer_table.h"

typedef struct {
    uint32_t max_entries;           /* 32 */
    size_t max_bytes;               /* 64 MiB; PeerManager: membudget.h */
    uint32_t max_inflight;          /* 2 chunks at BlockProcessor */
    uint32_t chunk_blocks;          /* 1024 */
    size_t chunk_bytes;             /* 4 MiB */
    uint32_t busy_backoff_min_ms;   /* 100 */
    uint32_t busy_backoff_max_ms;   /* 2000 */
    uint32_t processing_timeout_ms; /* 30000: no reply at all -> resend */
} reorder_config_t;

void reorder_config_defaults(reorder_config_t *cfg);

/* A downloaded range, as the caller hands it in (copied). */
typedef struct {
    uint64_t request_id; /* SyncActor's */
    const char *peer_id;
    uint64_t start;
    const ProtobufCBinaryData *blocks;
    size_t n;
    const uint8_t (*expected)[ALYS_HASH_LEN]; /* NULL or n hashes */
} reorder_batch_t;

typedef enum {
    REORDER_DROP_COMMITTED = 0, /* wholly at or below the head */
    REORDER_DROP_AFTER_FAILURE, /* above a failed height */
    REORDER_DROP_EVICTED,       /* buffer full */
    REORDER_DROP_SUPERSEDED,    /* replaced by a newer download of it */
} reorder_drop_t;

const char *reorder_drop_name(reorder_drop_t why);

/* An entry described by value (for reports). */
typedef struct {
    uint64_t request_id;
    char peer_id[PEER_ID_MAX];
    uint64_t start; /* of the entry, or of the chunk for results */
    uint32_t count;
    reorder_drop_t why; /* for drops */
    bool complete;      /* for results: nothing of it is left */
} reorder_ref_t;

typedef enum {
    REORDER_ACCEPTED = 0,
    REORDER_FULL,    /* does not fit: refused, nothing evicted */
    REORDER_INVALID, /* empty, or out of memory */
} reorder_insert_t;

/* A chunk to hand to BlockProcessor now. */
typedef struct {
    uint64_t batch_id;
    uint64_t request_id;
    char peer_id[PEER_ID_MAX];
    uint64_t start;
    uint32_t count;
    const ProtobufCBinaryData *blocks;   /* count items */
    const ProtobufCBinaryData *expected; /* count items, or NULL */
    size_t bytes;
} reorder_send_t;

/* BatchProcessed, as far as the buffer cares. */
typedef struct {
    uint64_t batch_id;
    uint32_t committed;
    uint64_t head_height;
    bool failed;
    uint64_t failed_height;
    bool content_fault; /* the reason is about the block's own content */
} reorder_result_t;

typedef enum {
    REORDER_UNKNOWN = 0, /* no chunk has this batch id: late or abandoned, ignore */
    REORDER_PROGRESS,    /* committed: report; ref.complete says if it is done */
    REORDER_REQUEUED,    /* failed for a missing parent: waits again, no report */
    REORDER_FAILED,      /* failed: report; drops listed */
} reorder_done_t;

typedef struct _reorder_t reorder_t;

/* NULL cfg = defaults. NULL on out-of-memory. */
reorder_t *reorder_new(const reorder_config_t *cfg);
void reorder_destroy(reorder_t **self_p);

/* The committed head as storage reports it, read after the entries up to
 * seen_seq (reorder_seq() when the read was asked) had arrived. Ignored while
 * chunks are at BlockProcessor (their replies carry the head). Entries up to
 * seen_seq now wholly at or below the head are dropped into drops (up to
 * cap; *n_drops counts all). */
void reorder_set_head(reorder_t *self, uint64_t head, uint64_t seen_seq, reorder_ref_t *drops,
                      size_t cap, size_t *n_drops);
/* Sequence number of the newest entry inserted so far. */
uint64_t reorder_seq(const reorder_t *self);

reorder_insert_t reorder_insert(reorder_t *self, const reorder_batch_t *b, reorder_ref_t *drops,
                                size_t cap, size_t *n_drops);

/* The next chunk to send, if one may go now: marks it sent under batch_id. */
bool reorder_next(reorder_t *self, uint64_t now_ms, uint64_t batch_id, reorder_send_t *out);

reorder_done_t reorder_on_processed(reorder_t *self, const reorder_result_t *r, uint64_t now_ms,
                                    reorder_ref_t *ref, reorder_ref_t *drops, size_t cap,
                                    size_t *n_drops);
/* BlockProcessor refused the chunk batch_id outright (a bad request: it
 * will never take it): handled as a failure at the chunk's first block,
 * without blame. */
reorder_done_t reorder_on_refused(reorder_t *self, uint64_t batch_id, uint64_t now_ms,
                                  reorder_ref_t *ref, reorder_ref_t *drops, size_t cap,
                                  size_t *n_drops);
/* BlockProcessor refused batch_id as busy (or unavailable). false if unknown. */
bool reorder_on_busy(reorder_t *self, uint64_t batch_id, uint64_t now_ms);
/* BlockProcessor restarted: everything sent goes back to waiting. Returns how many. */
size_t reorder_on_lost(reorder_t *self);
/* A chunk unanswered for processing_timeout_ms: as reorder_on_lost. */
size_t reorder_expire(reorder_t *self, uint64_t now_ms);

/* A fetch of [start, start + count) that the buffer already holds: an
 * entry with the same start and at least count blocks (and, when expected
 * is not NULL, those count expected hashes: a copy checked against other
 * headers is not the one asked for) now answers new_request_id (its
 * results and reports carry it). A PeerManager restarted with the ranges
 * parked at BlockProcessor (pm_park.c) answers SyncActor's re-issued
 * fetches this way instead of downloading them again. true, with the entry
 * as it was (*old: its previous id and peer), when one did. */
bool reorder_rekey(reorder_t *self, uint64_t start, uint32_t count,
                   const uint8_t (*expected)[ALYS_HASH_LEN], uint64_t new_request_id,
                   reorder_ref_t *old);

/* Every entry (waiting or at BlockProcessor), as stored: start and count
 * of the blocks it holds (the leading ones may be committed already).
 * Fills up to cap, returns how many there are. */
size_t reorder_list(const reorder_t *self, reorder_ref_t *out, size_t cap);
/* The most entries the buffer holds (its config's max_entries). */
size_t reorder_capacity(const reorder_t *self);

uint64_t reorder_head(const reorder_t *self);
uint64_t reorder_next_height(const reorder_t *self);
size_t reorder_entries(const reorder_t *self);
size_t reorder_bytes(const reorder_t *self);
size_t reorder_blocks(const reorder_t *self);
size_t reorder_inflight(const reorder_t *self);

#endif
