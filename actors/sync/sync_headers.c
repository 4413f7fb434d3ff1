/*  sync_headers.c: see sync_headers.h. */
#include "sync_headers.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- verified headers ----------------------------------------------------------- */

typedef struct {
    bool used;
    uint64_t height;
    uint64_t slot;
    alys_hash_t hash;
} ring_entry_t;

struct sync_hdr_ring {
    size_t cap;
    ring_entry_t *e;
    sync_header_check_fn check; /* NULL: alys_header_check */
    void *check_ctx;
};

void sync_hdr_ring_set_check(sync_hdr_ring_t *self, sync_header_check_fn fn, void *ctx)
{
    self->check = fn;
    self->check_ctx = ctx;
}

static bool check_one(const sync_hdr_ring_t *ring, const alys_genesis_t *g,
                      const ProtobufCBinaryData *bytes, const alys_header_t *h, alys_verdict_t *v)
{
    if (ring->check)
        return ring->check(ring->check_ctx, g, bytes->data, bytes->len, h, v);
    return alys_header_check(g, h, v);
}

sync_hdr_ring_t *sync_hdr_ring_new(size_t cap)
{
    sync_hdr_ring_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->cap = cap ? cap : 1;
    self->e = calloc(self->cap, sizeof *self->e);
    if (!self->e) {
        free(self);
        return NULL;
    }
    return self;
}

void sync_hdr_ring_destroy(sync_hdr_ring_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    free((*self_p)->e);
    free(*self_p);
    *self_p = NULL;
}

void sync_hdr_ring_put(sync_hdr_ring_t *self, uint64_t height, uint64_t slot, const alys_hash_t hash)
{
    ring_entry_t *e = &self->e[height % self->cap];
    e->used = true;
    e->height = height;
    e->slot = slot;
    memcpy(e->hash, hash, ALYS_HASH_LEN);
}

bool sync_hdr_ring_slot(const sync_hdr_ring_t *self, uint64_t height, const alys_hash_t hash,
                        uint64_t *slot)
{
    const ring_entry_t *e = &self->e[height % self->cap];
    if (!e->used || e->height != height || memcmp(e->hash, hash, ALYS_HASH_LEN) != 0)
        return false;
    *slot = e->slot;
    return true;
}

static int fail(char *why, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(char *why, size_t len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, len, fmt, ap);
    va_end(ap);
    return -1;
}

int sync_verify_headers(const alys_genesis_t *g, sync_hdr_ring_t *ring, uint64_t now_unix_ms,
                        uint64_t start, uint32_t asked, const alys_hash_t parent_hash,
                        const ProtobufCBinaryData *headers, size_t n, alys_hash_t *hashes,
                        char *why, size_t whylen)
{
    if (n == 0)
        return fail(why, whylen, "no headers");
    if (n > asked || n > SYNC_HEADERS_MAX)
        return fail(why, whylen, "%zu headers for a request of %u", n, asked);
    if (start == 0)
        return fail(why, whylen, "headers from height 0");
    uint64_t now_slot = alys_genesis_slot_at(g, now_unix_ms);
    /* The parent: height start-1 with the hash the machine expects. Its slot
     * comes from the ring (slot 0 for the genesis' virtual parent); when it
     * is not held, slot 0 still checks height, parent hash and the clock. */
    alys_header_t parent;
    memset(&parent, 0, sizeof parent);
    parent.height = start - 1;
    if (start > 1 && !sync_hdr_ring_slot(ring, start - 1, parent_hash, &parent.slot))
        parent.slot = 0;
    alys_hash_t prev_hash;
    memcpy(prev_hash, parent_hash, ALYS_HASH_LEN);
    uint64_t slots[SYNC_HEADERS_MAX];
    alys_header_t h;
    alys_verdict_t v;
    for (size_t i = 0; i < n; i++) {
        uint64_t height = start + i;
        if (!headers[i].data || headers[i].len == 0 || headers[i].len > SYNC_HEADER_MAX_BYTES)
            return fail(why, whylen, "header %llu: %zu bytes", (unsigned long long) height,
                        headers[i].len);
        if (alys_header_decode(headers[i].data, headers[i].len, &h, &v) != 0)
            return fail(why, whylen, "header %llu: %s: %s", (unsigned long long) height,
                        alys_block_error_name(v.code), v.detail);
        if (h.height != height)
            return fail(why, whylen, "header at position %zu has height %llu, expected %llu", i,
                        (unsigned long long) h.height, (unsigned long long) height);
        if (!check_one(ring, g, &headers[i], &h, &v))
            return fail(why, whylen, "header %llu: %s: %s", (unsigned long long) height,
                        alys_block_error_name(v.code), v.detail);
        if (!alys_header_check_link(&parent, prev_hash, &h, now_slot, &v)) {
            /* A valid header whose parent is not the one we named: another
             * branch, not (yet) a lie; see sync_machine_on_headers_fork. */
            bool fork = i == 0 && v.code == ALYS_BLOCK_PARENT_MISMATCH;
            fail(why, whylen, "header %llu: %s: %s", (unsigned long long) height,
                 alys_block_error_name(v.code), v.detail);
            return fork ? -2 : -1;
        }
        alys_header_hash(&h, hashes[i]);
        memcpy(prev_hash, hashes[i], ALYS_HASH_LEN);
        slots[i] = h.slot;
        parent = h;
    }
    /* Recorded only once the whole reply verified. */
    for (size_t i = 0; i < n; i++)
        sync_hdr_ring_put(ring, start + i, slots[i], hashes[i]);
    return 0;
}

/* ---- requests in flight ------------------------------------------------------ */

struct sync_hdr_reqs {
    size_t cap;
    bool *used;
    sync_hdr_req_t *r;
};

sync_hdr_reqs_t *sync_hdr_reqs_new(size_t cap)
{
    sync_hdr_reqs_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->cap = cap ? cap : 1;
    self->used = calloc(self->cap, sizeof *self->used);
    self->r = calloc(self->cap, sizeof *self->r);
    if (!self->used || !self->r) {
        sync_hdr_reqs_destroy(&self);
        return NULL;
    }
    return self;
}

void sync_hdr_reqs_destroy(sync_hdr_reqs_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    free((*self_p)->used);
    free((*self_p)->r);
    free(*self_p);
    *self_p = NULL;
}

static size_t reqs_slot(const sync_hdr_reqs_t *self)
{
    size_t oldest = 0;
    for (size_t i = 0; i < self->cap; i++) {
        if (!self->used[i])
            return i;
        if (self->r[i].deadline < self->r[oldest].deadline)
            oldest = i;
    }
    return oldest;
}

void sync_hdr_reqs_add(sync_hdr_reqs_t *self, const sync_action_t *a, uint64_t now_ms)
{
    size_t i = reqs_slot(self);
    sync_hdr_req_t *r = &self->r[i];
    self->used[i] = true;
    memset(r, 0, sizeof *r);
    r->req_id = a->fetch_headers.req_id;
    memcpy(r->peer, a->fetch_headers.peer, sizeof r->peer);
    r->start = a->fetch_headers.start;
    r->count = a->fetch_headers.count;
    memcpy(r->parent, a->fetch_headers.parent_hash, ALYS_HASH_LEN);
    r->deadline = now_ms + 2 * (uint64_t) a->fetch_headers.timeout_ms + 3000;
}

bool sync_hdr_reqs_take(sync_hdr_reqs_t *self, uint64_t req_id, sync_hdr_req_t *out)
{
    for (size_t i = 0; i < self->cap; i++)
        if (self->used[i] && self->r[i].req_id == req_id) {
            if (out)
                *out = self->r[i];
            self->used[i] = false;
            return true;
        }
    return false;
}

void sync_hdr_reqs_clear(sync_hdr_reqs_t *self)
{
    memset(self->used, 0, self->cap * sizeof *self->used);
}

void sync_hdr_reqs_expire(sync_hdr_reqs_t *self, uint64_t now_ms)
{
    for (size_t i = 0; i < self->cap; i++)
        if (self->used[i] && now_ms >= self->r[i].deadline)
            self->used[i] = false;
}

size_t sync_hdr_reqs_count(const sync_hdr_reqs_t *self)
{
    size_t n = 0;
    for (size_t i = 0; i < self->cap; i++)
        n += self->used[i];
    return n;
}

/* ---- the verdict on one HeadersResult ------------------------------------------ */

sync_outcome_t sync_headers_judge(const alys_genesis_t *g, sync_hdr_ring_t *ring,
                                  uint64_t now_unix_ms, const sync_hdr_req_t *req,
                                  sync_outcome_t reported, const ProtobufCBinaryData *headers,
                                  size_t n, alys_hash_t *hashes, uint32_t *count, bool *fork,
                                  char *why, size_t whylen)
{
    *count = 0;
    *fork = false;
    if (whylen)
        why[0] = '\0';
    if (reported == SYNC_OUTCOME_SHORT && n > 0)
        reported = SYNC_OUTCOME_OK;
    if (reported != SYNC_OUTCOME_OK)
        return reported;
    if (!g) {
        snprintf(why, whylen, "no genesis loaded");
        return SYNC_OUTCOME_INVALID;
    }
    int rc = sync_verify_headers(g, ring, now_unix_ms, req->start, req->count, req->parent,
                                 headers, n, hashes, why, whylen);
    if (rc != 0) {
        *fork = rc == -2;
        return SYNC_OUTCOME_INVALID;
    }
    *count = (uint32_t) n;
    return SYNC_OUTCOME_OK;
}
