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
 *  Bytes are counted too, in a second bucket per peer (serve_limiter_bytes):
 *  `byte_rate` bytes per second sustained, bursts of twice that but never
 *  less than one whole frame (ALYS_MAX_MSG_BYTES), so any single legal
 *  frame can pass a rested bucket. Requests are tiny, so a peer that sends
 *  a few 8 MiB frames a second is cut off by bytes long before its message
 *  count is high; the shell checks bytes before it decodes (a refused frame
 *  costs no decode).
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

#define SERVE_LIMITER_KEY_MAX        255  /* ZeroMQ routing ids are <= 255 bytes */
#define SERVE_LIMITER_DEFAULT_CAP    1024 /* peers tracked at once */
/* One whole frame (bus.h ALYS_MAX_MSG_BYTES): the least a byte bucket holds. */
#define SERVE_LIMITER_MIN_BYTE_BURST (8u * 1024u * 1024u)

typedef struct _serve_limiter_t serve_limiter_t;

/* rate_per_s: serve_rate_limit; 0 disables limiting (every request allowed).
 * capacity: buckets kept; 0 = SERVE_LIMITER_DEFAULT_CAP. NULL on OOM.
 * Bytes are not limited until serve_limiter_set_byte_rate. */
serve_limiter_t *serve_limiter_new(uint32_t rate_per_s, size_t capacity);
/* bytes_per_s: sustained bytes a second per peer; 0 = bytes not limited.
 * The burst is max(2 * bytes_per_s, SERVE_LIMITER_MIN_BYTE_BURST). */
void serve_limiter_set_byte_rate(serve_limiter_t *self, uint64_t bytes_per_s);
void serve_limiter_destroy(serve_limiter_t **self_p);

/* May this peer be served now? Takes a token when it may. */
bool serve_limiter_allow(serve_limiter_t *self, const void *key, size_t key_len, uint64_t now_ms);
/* May this peer's frame of `bytes` bytes be read now? Takes the bytes from
 * its byte bucket when it may; a refusal takes nothing (the bucket keeps
 * refilling, a peer that slows down gets through). Counted apart from
 * requests: serve_limiter_refused_bytes. */
bool serve_limiter_bytes(serve_limiter_t *self, const void *key, size_t key_len, uint64_t bytes,
                         uint64_t now_ms);
/* Convenience for string keys. */
bool serve_limiter_allow_str(serve_limiter_t *self, const char *key, uint64_t now_ms);

size_t serve_limiter_size(const serve_limiter_t *self);            /* buckets in use */
uint64_t serve_limiter_refused(const serve_limiter_t *self);       /* total refusals */
uint64_t serve_limiter_refused_bytes(const serve_limiter_t *self); /* frames refused for bytes */

#endif
