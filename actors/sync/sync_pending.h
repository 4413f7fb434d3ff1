/*  sync_pending.h: the SyncActor's requests to other actors awaiting a
 *  reply, matched by correlation id, each completed exactly once: by its
 *  reply, or by its deadline. Pure: time is passed in (now_ms, monotonic).
 *
 *  Also the fetches sent to PeerManager (FetchHeaders/FetchBlocks), by
 *  envelope corr_id, so an Error reply in place of a result still reaches
 *  the machine's request id; those have no deadline (the machine's own
 *  timers cover a lost fetch): the most recent SYNC_PENDING_FETCHES are
 *  remembered.
 *
 *  The requests live in common/pending.h's table (bounded, exactly once);
 *  this adds what the SyncActor keeps with each (its kind, its client) and
 *  the fetch ring.
 *
 *  Ownership: sync_pending_new/destroy. A request's client is the caller's
 *  opaque pointer: the table never frees it; whoever takes a request out
 *  (take, next_expired, drop_kind) owns its client.
 */
#ifndef SYNC_PENDING_H
#define SYNC_PENDING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SYNC_PENDING_FETCHES 256

typedef enum {
    SYNC_PEND_GET_HEAD,
    SYNC_PEND_CREATE_CP,
    SYNC_PEND_LIST_CP,
    SYNC_PEND_ROLLBACK,
    SYNC_PEND_PROCESS,
    SYNC_PEND_GET_PEERS,
    SYNC_PEND_GET_IN_FLIGHT,
    SYNC_PEND_LOCATOR, /* fork choice's GetLocator */
    SYNC_PEND_REORG    /* fork choice's reorg ProcessBatch */
} sync_pend_kind_t;

/* A request awaiting its reply, and who asked us for it. */
typedef struct {
    sync_pend_kind_t kind;
    uint64_t corr_id;
    uint64_t deadline; /* now_ms past which it has timed out */
    void *client;      /* the caller's; NULL when no client waits */
    uint64_t client_corr;
    uint64_t height; /* what the request was about */
} sync_pend_t;

typedef struct sync_pending sync_pending_t;

/* cap: requests in flight at once. NULL on allocation failure. */
sync_pending_t *sync_pending_new(size_t cap);
void sync_pending_destroy(sync_pending_t **self_p);

/* A request sent at now_ms with corr_id; NULL when the table is full (the
 * caller answers its client or retries later), or corr_id is 0 or already
 * pending. The entry is valid until it ends. */
sync_pend_t *sync_pending_add(sync_pending_t *self, sync_pend_kind_t kind, uint64_t corr_id,
                              uint64_t now_ms, uint32_t timeout_ms);
bool sync_pending_known(const sync_pending_t *self, uint64_t corr_id);
bool sync_pending_has_kind(const sync_pending_t *self, sync_pend_kind_t kind);
/* The reply for corr_id came: copy the request out and forget it. False
 * when unknown (late, expired, or answered already). */
bool sync_pending_take(sync_pending_t *self, uint64_t corr_id, sync_pend_t *out);
/* One request past its deadline at now_ms, removed; false when none. */
bool sync_pending_next_expired(sync_pending_t *self, uint64_t now_ms, sync_pend_t *out);
/* End every request of kind (e.g. GetHeads made stale by a Rollback), each
 * handed to done first (its client is then done's to free). Returns how
 * many ended. */
size_t sync_pending_drop_kind(sync_pending_t *self, sync_pend_kind_t kind,
                              void (*done)(sync_pend_t *p));
const char *sync_pending_kind_name(sync_pend_kind_t kind); /* "GetHead", ... */

/* A fetch sent with envelope corr_id for the machine's req_id. */
void sync_pending_fetch_sent(sync_pending_t *self, uint64_t corr_id, uint64_t req_id, bool headers);
/* PeerManager answered corr_id with an Error: the fetch, once. */
bool sync_pending_fetch_refused(sync_pending_t *self, uint64_t corr_id, uint64_t *req_id,
                                bool *headers);

#endif
