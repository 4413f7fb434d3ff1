/*  rate_limit.c: token buckets per requesting peer, bounded.
 *  Tokens are kept in thousandths so refill is exact integer arithmetic:
 *  rate r tokens/s = r milli-tokens per ms.
 */
#include "rate_limit.h"

#include <stdlib.h>
#include <string.h>

#define MILLI 1000u

typedef struct {
    uint8_t key[SERVE_LIMITER_KEY_MAX];
    uint8_t key_len;
    uint64_t tokens_milli;
    uint64_t refilled_at; /* ms of the last refill */
    uint64_t bytes_milli; /* the byte bucket, in thousandths of a byte */
    uint64_t bytes_at;    /* ms of its last refill */
    uint64_t seen_at;     /* ms of the last request: eviction order */
} bucket_t;

struct _serve_limiter_t {
    uint64_t rate;        /* tokens per second */
    uint64_t burst_milli; /* bucket size: 2 * rate tokens */
    size_t capacity;
    size_t used;
    uint64_t refused;
    uint64_t byte_rate;  /* bytes per second; 0 = not limited */
    uint64_t byte_burst; /* byte bucket size */
    uint64_t refused_bytes;
    bucket_t *buckets; /* [capacity], first `used` in use */
};

serve_limiter_t *serve_limiter_new(uint32_t rate_per_s, size_t capacity)
{
    serve_limiter_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->capacity = capacity ? capacity : SERVE_LIMITER_DEFAULT_CAP;
    self->buckets = calloc(self->capacity, sizeof *self->buckets);
    if (!self->buckets) {
        free(self);
        return NULL;
    }
    self->rate = rate_per_s;
    self->burst_milli = 2u * (uint64_t) rate_per_s * MILLI;
    return self;
}

void serve_limiter_destroy(serve_limiter_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    free((*self_p)->buckets);
    free(*self_p);
    *self_p = NULL;
}

static bucket_t *find(serve_limiter_t *self, const void *key, size_t len)
{
    for (size_t i = 0; i < self->used; i++) {
        bucket_t *b = &self->buckets[i];
        if (b->key_len == len && memcmp(b->key, key, len) == 0)
            return b;
    }
    return NULL;
}

/* A fresh full bucket: a free slot, else the one seen longest ago. */
static bucket_t *claim(serve_limiter_t *self, const void *key, size_t len, uint64_t now_ms)
{
    bucket_t *b;
    if (self->used < self->capacity) {
        b = &self->buckets[self->used++];
    } else {
        b = &self->buckets[0];
        for (size_t i = 1; i < self->used; i++) {
            if (self->buckets[i].seen_at < b->seen_at)
                b = &self->buckets[i];
        }
    }
    memcpy(b->key, key, len);
    b->key_len = (uint8_t) len;
    b->tokens_milli = self->burst_milli;
    b->refilled_at = now_ms;
    b->bytes_milli = self->byte_burst * MILLI;
    b->bytes_at = now_ms;
    return b;
}

static void refill(const serve_limiter_t *self, bucket_t *b, uint64_t now_ms)
{
    if (now_ms <= b->refilled_at) {
        b->refilled_at = now_ms; /* clock stepped back: re-anchor, no gift */
        return;
    }
    uint64_t elapsed = now_ms - b->refilled_at;
    /* Past a full refill the exact amount no longer matters (and the
     * multiplication below could overflow on a huge gap). */
    uint64_t full_after = self->burst_milli / self->rate + 1;
    uint64_t add = elapsed >= full_after ? self->burst_milli : elapsed * self->rate;
    b->tokens_milli = b->tokens_milli + add > self->burst_milli ? self->burst_milli
                                                                : b->tokens_milli + add;
    b->refilled_at = now_ms;
}

bool serve_limiter_allow(serve_limiter_t *self, const void *key, size_t key_len, uint64_t now_ms)
{
    if (self->rate == 0)
        return true;
    if (!key || key_len == 0 || key_len > SERVE_LIMITER_KEY_MAX) {
        self->refused++;
        return false;
    }
    bucket_t *b = find(self, key, key_len);
    if (!b)
        b = claim(self, key, key_len, now_ms);
    b->seen_at = now_ms;
    refill(self, b, now_ms);
    if (b->tokens_milli < MILLI) {
        self->refused++;
        return false;
    }
    b->tokens_milli -= MILLI;
    return true;
}

void serve_limiter_set_byte_rate(serve_limiter_t *self, uint64_t bytes_per_s)
{
    /* Bounded so that the burst in thousandths cannot overflow. */
    if (bytes_per_s > UINT64_MAX / 4 / MILLI / MILLI)
        bytes_per_s = UINT64_MAX / 4 / MILLI / MILLI;
    self->byte_rate = bytes_per_s;
    uint64_t burst = 2 * bytes_per_s;
    self->byte_burst = burst < SERVE_LIMITER_MIN_BYTE_BURST ? SERVE_LIMITER_MIN_BYTE_BURST : burst;
    for (size_t i = 0; i < self->used; i++) {
        self->buckets[i].bytes_milli = self->byte_burst * MILLI;
        self->buckets[i].bytes_at = self->buckets[i].refilled_at;
    }
}

static void refill_bytes(const serve_limiter_t *self, bucket_t *b, uint64_t now_ms)
{
    if (now_ms <= b->bytes_at) {
        b->bytes_at = now_ms; /* clock stepped back: re-anchor, no gift */
        return;
    }
    /* In thousandths of a byte, like the request tokens: exact, whatever
     * the spacing of the calls. */
    uint64_t elapsed = now_ms - b->bytes_at;
    uint64_t burst_milli = self->byte_burst * MILLI;
    uint64_t full_after = burst_milli / self->byte_rate + 1;
    uint64_t add = elapsed >= full_after ? burst_milli : elapsed * self->byte_rate;
    b->bytes_milli = b->bytes_milli + add > burst_milli ? burst_milli : b->bytes_milli + add;
    b->bytes_at = now_ms;
}

bool serve_limiter_bytes(serve_limiter_t *self, const void *key, size_t key_len, uint64_t bytes,
                         uint64_t now_ms)
{
    if (self->byte_rate == 0)
        return true;
    if (!key || key_len == 0 || key_len > SERVE_LIMITER_KEY_MAX) {
        self->refused_bytes++;
        return false;
    }
    bucket_t *b = find(self, key, key_len);
    if (!b)
        b = claim(self, key, key_len, now_ms);
    b->seen_at = now_ms;
    refill_bytes(self, b, now_ms);
    if (bytes > b->bytes_milli / MILLI) {
        self->refused_bytes++;
        return false;
    }
    b->bytes_milli -= bytes * MILLI;
    return true;
}

bool serve_limiter_allow_str(serve_limiter_t *self, const char *key, uint64_t now_ms)
{
    return serve_limiter_allow(self, key, key ? strlen(key) : 0, now_ms);
}

size_t serve_limiter_size(const serve_limiter_t *self)
{
    return self->used;
}

uint64_t serve_limiter_refused(const serve_limiter_t *self)
{
    return self->refused;
}

uint64_t serve_limiter_refused_bytes(const serve_limiter_t *self)
{
    return self->refused_bytes;
}
