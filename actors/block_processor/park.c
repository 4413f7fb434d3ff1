/*  park.c: parked copies of PeerManager's reorder buffer (see park.h). */
#include "park.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* An entry and the one allocation that holds its bytes. */
typedef struct {
    park_entry_t pub;
    ProtobufCBinaryData *blocks; /* n, then n hashes (when any), into data */
    uint8_t *data;
} slot_t;

struct park {
    park_config_t cfg;
    slot_t **slots; /* cfg.max_entries; NULL = free */
    size_t n;
    size_t bytes;
    uint64_t refused;
    uint64_t committed;
};

void park_config_defaults(park_config_t *cfg)
{
    cfg->max_entries = 64;
    cfg->max_bytes = (size_t) 64 << 20;
}

park_t *park_new(const park_config_t *cfg)
{
    park_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    if (cfg)
        self->cfg = *cfg;
    else
        park_config_defaults(&self->cfg);
    if (self->cfg.max_entries == 0)
        self->cfg.max_entries = 1;
    self->slots = calloc(self->cfg.max_entries, sizeof *self->slots);
    if (!self->slots) {
        free(self);
        return NULL;
    }
    return self;
}

static void slot_free(slot_t **s_p)
{
    slot_t *s = *s_p;
    if (s) {
        free(s->blocks);
        free(s->data);
        free(s);
        *s_p = NULL;
    }
}

static void drop_at(park_t *self, size_t i)
{
    self->bytes -= self->slots[i]->pub.bytes;
    self->n--;
    slot_free(&self->slots[i]);
}

void park_destroy(park_t **self_p)
{
    park_t *self = *self_p;
    if (!self)
        return;
    for (size_t i = 0; i < self->cfg.max_entries; i++)
        slot_free(&self->slots[i]);
    free(self->slots);
    free(self);
    *self_p = NULL;
}

static long find(const park_t *self, const char *owner, uint64_t id)
{
    for (size_t i = 0; i < self->cfg.max_entries; i++) {
        const slot_t *s = self->slots[i];
        if (s && s->pub.request_id == id && strcmp(s->pub.owner, owner) == 0)
            return (long) i;
    }
    return -1;
}

/* Bytes of blocks and hashes, or SIZE_MAX when the range is invalid. */
static size_t range_bytes(const ProtobufCBinaryData *blocks, size_t n,
                          const ProtobufCBinaryData *hashes, size_t n_hashes)
{
    if (n == 0 || n > PARK_MAX_BLOCKS || !blocks || (n_hashes != 0 && n_hashes != n) ||
        (n_hashes && !hashes))
        return SIZE_MAX;
    size_t bytes = 0;
    for (size_t i = 0; i < n; i++) {
        if (blocks[i].len == 0 || !blocks[i].data || blocks[i].len > SIZE_MAX / 2 - bytes)
            return SIZE_MAX;
        bytes += blocks[i].len;
    }
    for (size_t i = 0; i < n_hashes; i++)
        if (hashes[i].len != PARK_HASH_LEN || !hashes[i].data)
            return SIZE_MAX;
    return bytes + n_hashes * PARK_HASH_LEN;
}

/* A copy of the range in one allocation (NULL: out of memory). */
static slot_t *slot_new(const ProtobufCBinaryData *blocks, size_t n,
                        const ProtobufCBinaryData *hashes, size_t n_hashes, size_t bytes)
{
    slot_t *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->blocks = calloc(n + n_hashes, sizeof *s->blocks);
    s->data = malloc(bytes);
    if (!s->blocks || !s->data) {
        slot_free(&s);
        return NULL;
    }
    size_t at = 0;
    for (size_t i = 0; i < n + n_hashes; i++) {
        const ProtobufCBinaryData *src = i < n ? &blocks[i] : &hashes[i - n];
        memcpy(s->data + at, src->data, src->len);
        s->blocks[i] = (ProtobufCBinaryData){src->len, s->data + at};
        at += src->len;
    }
    s->pub.n = n;
    s->pub.blocks = s->blocks;
    s->pub.hashes = n_hashes ? s->blocks + n : NULL;
    s->pub.bytes = bytes;
    return s;
}

park_put_t park_put(park_t *self, const char *owner, uint64_t request_id, const char *peer_id,
                    uint64_t start, const ProtobufCBinaryData *blocks, size_t n,
                    const ProtobufCBinaryData *hashes, size_t n_hashes, uint64_t now_ms)
{
    if (!owner || !*owner || strlen(owner) >= PARK_OWNER_MAX)
        return PARK_INVALID;
    size_t bytes = range_bytes(blocks, n, hashes, n_hashes);
    if (bytes == SIZE_MAX || start > UINT64_MAX - n)
        return PARK_INVALID;
    /* What a replaced entry frees counts as room. */
    long old = find(self, owner, request_id);
    size_t freed = old >= 0 ? self->slots[old]->pub.bytes : 0;
    size_t entries = self->n - (old >= 0);
    if (entries >= self->cfg.max_entries || bytes > self->cfg.max_bytes ||
        self->bytes - freed > self->cfg.max_bytes - bytes) {
        self->refused++;
        return PARK_FULL;
    }
    slot_t *s = slot_new(blocks, n, hashes, n_hashes, bytes);
    if (!s)
        return PARK_INVALID;
    snprintf(s->pub.owner, sizeof s->pub.owner, "%s", owner);
    snprintf(s->pub.peer_id, sizeof s->pub.peer_id, "%s", peer_id ? peer_id : "");
    s->pub.request_id = request_id;
    s->pub.start = start;
    s->pub.parked_at = now_ms;
    if (old >= 0)
        drop_at(self, (size_t) old);
    for (size_t i = 0; i < self->cfg.max_entries; i++) {
        if (!self->slots[i]) {
            self->slots[i] = s;
            break;
        }
    }
    self->n++;
    self->bytes += bytes;
    return PARK_OK;
}

size_t park_unpark(park_t *self, const char *owner, const uint64_t *ids, size_t n)
{
    size_t gone = 0;
    for (size_t k = 0; k < n; k++) {
        long i = find(self, owner, ids[k]);
        if (i >= 0) {
            drop_at(self, (size_t) i);
            gone++;
        }
    }
    return gone;
}

bool park_rekey(park_t *self, const char *owner, uint64_t old_id, uint64_t new_id)
{
    long i = find(self, owner, old_id);
    if (i < 0)
        return false;
    if (old_id == new_id)
        return true;
    long clash = find(self, owner, new_id);
    if (clash >= 0)
        drop_at(self, (size_t) clash);
    self->slots[i]->pub.request_id = new_id;
    return true;
}

size_t park_set_head(park_t *self, uint64_t head)
{
    size_t gone = 0;
    for (size_t i = 0; i < self->cfg.max_entries; i++) {
        const slot_t *s = self->slots[i];
        if (s && s->pub.start + s->pub.n - 1 <= head) {
            drop_at(self, i);
            gone++;
        }
    }
    self->committed += gone;
    return gone;
}

/* Field tags and length prefixes of one Park inside Parked: each repeated
 * bytes item costs at most 1 tag byte and a 10-byte varint, the scalars and
 * the peer id as much, the entry itself (a length-delimited field) as much. */
#define ITEM_OVERHEAD 11

size_t park_wire_bytes(const park_entry_t *e)
{
    size_t items = e->n + (e->hashes ? e->n : 0);
    return e->bytes + items * ITEM_OVERHEAD + strlen(e->peer_id) + 4 * ITEM_OVERHEAD;
}

static int by_start(const void *a, const void *b)
{
    const park_entry_t *x = *(const park_entry_t *const *) a;
    const park_entry_t *y = *(const park_entry_t *const *) b;
    if (x->start != y->start)
        return x->start < y->start ? -1 : 1;
    if (x->request_id != y->request_id)
        return x->request_id < y->request_id ? -1 : 1;
    return 0;
}

size_t park_list(const park_t *self, const char *owner, size_t max_bytes,
                 const park_entry_t **out, size_t cap, size_t *total)
{
    /* Every entry of owner, sorted, then the prefix that fits. */
    *total = 0;
    const park_entry_t **all = calloc(self->cfg.max_entries, sizeof *all);
    if (!all)
        return 0; /* out of memory: nothing listed, the caller says so */
    size_t n = 0;
    for (size_t i = 0; i < self->cfg.max_entries; i++) {
        const slot_t *s = self->slots[i];
        if (s && strcmp(s->pub.owner, owner) == 0)
            all[n++] = &s->pub;
    }
    *total = n;
    qsort(all, n, sizeof all[0], by_start);
    size_t listed = 0, used = 0;
    for (size_t i = 0; i < n && listed < cap; i++) {
        size_t w = park_wire_bytes(all[i]);
        if (w > max_bytes - used)
            break; /* the lowest ones first: stop at the first that does not fit */
        used += w;
        out[listed++] = all[i];
    }
    free(all);
    return listed;
}

size_t park_entries(const park_t *self)
{
    return self->n;
}

size_t park_bytes(const park_t *self)
{
    return self->bytes;
}

uint64_t park_refused(const park_t *self)
{
    return self->refused;
}

uint64_t park_committed(const park_t *self)
{
    return self->committed;
}
