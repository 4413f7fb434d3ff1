/*  rate_limit.h: the serving side's per-peer rate limiter (pure, no clock).
 *
 *  A token bucket per requesting peer: `rate` requests per second sustained,
 *  bursts of up to 2 * rate (a syncing peer pipelines several requests at
 *  once and should not be refused for it). A peer over its budget gets a
 *  "rate limited" answer instead of our disk time.
 *
 *  The table is bounded: when full, the bucket of the peer seen longest ago is
 *  recycled. A flooding peer is seen constantly, so it is never the one
 *  evicted and cannot reset its own bucket by making others' appear; a
 *  recycled quiet peer comes back with a full bucket, which costs nothing.
 *
 *  Keys are opaque bytes (a ZeroMQ routing id, a peer id), at most
 *  SERVE_LIMITER_KEY_MAX; a longer key is refused (not allowed), never
 *  truncated into another peer's bucket.
 *
 *  Ownership: serve_limiter_new allocates; serve_limiter_destroy frees and
 *  nulls the pointer. Time is now_ms (any monotonic-enough ms clock); a clock
 *  stepping back refills nothing.
 */
#ifndef PEER_RATE_LIMIT_H
#define PEER_RATE_LIMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SERVE_LIMITER_KEY_MAX     255  /* ZeroMQ routing ids are <= 255 bytes */
#define SERVE_LIMITER_DEFAULT_CAP 1024 /* peers tracked at once */

typedef struct _serve_limiter_t serve_limiter_t;

/* rate_per_s: serve_rate_limit; 0 disables limiting (every request allowed).
 * capacity: buckets kept; 0 = SERVE_LIMITER_DEFAULT_CAP. NULL on OOM. */
serve_limiter_t *serve_limiter_new(uint32_t rate_per_s, size_t capacity);
void serve_limiter_destroy(serve_limiter_t **self_p);

/* May this peer be served now? Takes a token when it may. */
bool serve_limiter_allow(serve_limiter_t *self, const void *key, size_t key_len, uint64_t now_ms);
/* Convenience for string keys. */
bool serve_limiter_allow_str(serve_limiter_t *self, const char *key, uint64_t now_ms);

size_t serve_limiter_size(const serve_limiter_t *self);      /* buckets in use */
uint64_t serve_limiter_refused(const serve_limiter_t *self); /* total refusals */

#endif
