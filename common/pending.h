/*  pending.h: the table of requests awaiting a reply.

    Every actor that asks another process something keeps the same record:
    the correlation id it put on the request, a deadline, and a little
    context to act on when the reply (or the deadline) comes. This is that
    record, written once. The rules it enforces:

    - bounded: a fixed capacity chosen at creation; when full, _add fails
      and the caller must refuse or queue the request, never grow;
    - exactly once: an entry ends either by _take (the reply came) or by
      _expire (its deadline passed) or by _remove_if (cancelled), and never
      twice, so a late or duplicated reply finds nothing and is ignored;
    - pure: time is passed in (any monotonic ms clock the caller likes), so
      tests drive it without sockets or sleeps.

    The payload is an opaque fixed-size block copied in and out; the table
    owns no pointers inside it (whatever a payload points to stays the
    caller's to free, typically in the branch that handles _take/_expire).
    Lookup is linear: tables are small (tens to a few thousand entries) and
    a scan of a few KB beats hashing at that size.
*/
#ifndef ALYS_PENDING_H
#define ALYS_PENDING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct alys_pending alys_pending_t;

/* Create a table of at most capacity entries with payload_size bytes of
 * context each (0 is allowed). NULL if capacity is 0 or out of memory.
 * The caller owns the table and frees it with alys_pending_destroy. */
alys_pending_t *alys_pending_new(size_t capacity, size_t payload_size);
/* Free the table and set *self_p to NULL. Safe on NULL. */
void alys_pending_destroy(alys_pending_t **self_p);

/* Record a request. Returns a pointer to its zeroed payload, valid until the
 * entry ends, or NULL when the table is full, corr_id is 0 (0 marks a free
 * slot) or corr_id is already pending (ids must be unique). */
void *alys_pending_add(alys_pending_t *self, uint64_t corr_id, int64_t deadline);

/* The payload of a pending request, or NULL. The entry stays pending. */
void *alys_pending_find(alys_pending_t *self, uint64_t corr_id);

/* Complete a request: if corr_id is pending, copy its payload to out (when
 * out is not NULL), end the entry and return true; else return false (a
 * reply that is late, duplicated or was never asked for). */
bool alys_pending_take(alys_pending_t *self, uint64_t corr_id, void *out);

/* End one entry whose deadline is <= now: copy its id to *corr_id (if not
 * NULL) and its payload to out (if not NULL), return true. Returns false
 * when none has expired. Call in a loop to drain; the earliest deadline
 * comes first. */
bool alys_pending_expire(alys_pending_t *self, int64_t now, uint64_t *corr_id, void *out);

/* End every entry for which pred(payload, arg) is true; each is first handed
 * to on_removed(corr_id, payload, arg) when that is not NULL (the payload
 * pointer is valid only during the call). Returns how many ended. */
typedef bool (*alys_pending_pred_fn)(const void *payload, void *arg);
typedef void (*alys_pending_each_fn)(uint64_t corr_id, void *payload, void *arg);
size_t alys_pending_remove_if(alys_pending_t *self, alys_pending_pred_fn pred,
                              alys_pending_each_fn on_removed, void *arg);

/* Call fn on every pending entry (any order). fn must not add or end entries. */
void alys_pending_each(alys_pending_t *self, alys_pending_each_fn fn, void *arg);

/* The earliest deadline of any pending entry, or INT64_MAX when empty. */
int64_t alys_pending_next_deadline(const alys_pending_t *self);
size_t alys_pending_count(const alys_pending_t *self);
size_t alys_pending_capacity(const alys_pending_t *self);

#endif
