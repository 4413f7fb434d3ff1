/*  pm_gossip.c: see pm_gossip.h. */
#include "pm_gossip.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct pmg {
    alys_hash_t seen[PMG_SEEN_MAX]; /* ring */
    size_t seen_n, seen_next;
    pmg_block_t orphans[PMG_ORPHANS_MAX]; /* bytes == NULL: free */
    pmg_block_t inflight[PMG_INFLIGHT_MAX];
};

const char *pmg_verdict_name(pmg_verdict_t v)
{
    switch (v) {
    case PMG_PROCESS: return "process";
    case PMG_DROP_SEEN: return "duplicate";
    case PMG_DROP_OLD: return "old";
    case PMG_ORPHAN: return "orphan";
    case PMG_BEHIND: return "behind";
    }
    return "?";
}

pmg_t *pmg_new(void)
{
    return calloc(1, sizeof(pmg_t));
}

static void entry_clear(pmg_block_t *b)
{
    free(b->bytes);
    memset(b, 0, sizeof *b);
}

void pmg_destroy(pmg_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    pmg_t *self = *self_p;
    for (size_t i = 0; i < PMG_ORPHANS_MAX; i++)
        entry_clear(&self->orphans[i]);
    for (size_t i = 0; i < PMG_INFLIGHT_MAX; i++)
        entry_clear(&self->inflight[i]);
    free(self);
    *self_p = NULL;
}

/* ---- seen-set */

static size_t seen_find(const pmg_t *self, const alys_hash_t hash)
{
    for (size_t i = 0; i < self->seen_n; i++)
        if (memcmp(self->seen[i], hash, ALYS_HASH_LEN) == 0)
            return i;
    return SIZE_MAX;
}

bool pmg_seen(const pmg_t *self, const alys_hash_t hash)
{
    return seen_find(self, hash) != SIZE_MAX;
}

void pmg_mark_seen(pmg_t *self, const alys_hash_t hash)
{
    if (pmg_seen(self, hash))
        return;
    memcpy(self->seen[self->seen_next], hash, ALYS_HASH_LEN);
    self->seen_next = (self->seen_next + 1) % PMG_SEEN_MAX;
    if (self->seen_n < PMG_SEEN_MAX)
        self->seen_n++;
}

/* Forget one hash (an orphan we could not keep): its entry is zeroed, which
 * no real block hash is. */
static void seen_forget(pmg_t *self, const alys_hash_t hash)
{
    size_t i = seen_find(self, hash);
    if (i != SIZE_MAX)
        memset(self->seen[i], 0, ALYS_HASH_LEN);
}

pmg_verdict_t pmg_on_block(pmg_t *self, const alys_hash_t hash, uint64_t height, uint64_t head_height)
{
    if (pmg_seen(self, hash))
        return PMG_DROP_SEEN;
    if (height <= head_height)
        return PMG_DROP_OLD;
    pmg_verdict_t v = PMG_PROCESS;
    if (height > head_height + 1)
        v = height - (head_height + 1) <= PMG_MAX_GAP ? PMG_ORPHAN : PMG_BEHIND;
    if (v != PMG_BEHIND)
        pmg_mark_seen(self, hash);
    return v;
}

/* ---- orphans */

size_t pmg_orphan_count(const pmg_t *self, const char *peer)
{
    size_t n = 0;
    for (size_t i = 0; i < PMG_ORPHANS_MAX; i++)
        if (self->orphans[i].bytes && (!peer || strcmp(self->orphans[i].peer, peer) == 0))
            n++;
    return n;
}

static int copy_block(pmg_block_t *dst, const pmg_block_t *src)
{
    uint8_t *bytes = malloc(src->len ? src->len : 1);
    if (!bytes)
        return -1;
    memcpy(bytes, src->bytes, src->len);
    *dst = *src;
    dst->bytes = bytes;
    return 0;
}

int pmg_orphan_add(pmg_t *self, const char *peer, const alys_hash_t hash,
                   const alys_hash_t parent, uint64_t height, const uint8_t *bytes, size_t len)
{
    size_t free_at = SIZE_MAX;
    for (size_t i = 0; i < PMG_ORPHANS_MAX && free_at == SIZE_MAX; i++)
        if (!self->orphans[i].bytes)
            free_at = i;
    pmg_block_t b = {.height = height, .bytes = (uint8_t *) bytes, .len = len};
    snprintf(b.peer, sizeof b.peer, "%s", peer);
    memcpy(b.hash, hash, ALYS_HASH_LEN);
    memcpy(b.parent, parent, ALYS_HASH_LEN);
    if (free_at == SIZE_MAX || pmg_orphan_count(self, peer) >= PMG_ORPHANS_PER_PEER ||
        copy_block(&self->orphans[free_at], &b) != 0) {
        seen_forget(self, hash);
        return -1;
    }
    return 0;
}

bool pmg_orphan_next(pmg_t *self, uint64_t head_height, const alys_hash_t head_hash, pmg_block_t *out)
{
    for (size_t i = 0; i < PMG_ORPHANS_MAX; i++) {
        pmg_block_t *o = &self->orphans[i];
        if (o->bytes && o->height == head_height + 1 &&
            memcmp(o->parent, head_hash, ALYS_HASH_LEN) == 0) {
            *out = *o;
            memset(o, 0, sizeof *o); /* the bytes are the caller's now */
            return true;
        }
    }
    return false;
}

size_t pmg_orphans_prune(pmg_t *self, uint64_t head_height)
{
    size_t n = 0;
    for (size_t i = 0; i < PMG_ORPHANS_MAX; i++)
        if (self->orphans[i].bytes && self->orphans[i].height <= head_height) {
            entry_clear(&self->orphans[i]);
            n++;
        }
    return n;
}

void pmg_peer_gone(pmg_t *self, const char *peer)
{
    for (size_t i = 0; i < PMG_ORPHANS_MAX; i++)
        if (self->orphans[i].bytes && strcmp(self->orphans[i].peer, peer) == 0)
            entry_clear(&self->orphans[i]);
}

/* ---- in flight */

int pmg_inflight_add(pmg_t *self, uint64_t batch_id, const pmg_block_t *b)
{
    for (size_t i = 0; i < PMG_INFLIGHT_MAX; i++)
        if (!self->inflight[i].bytes) {
            if (copy_block(&self->inflight[i], b) != 0)
                return -1;
            self->inflight[i].batch_id = batch_id;
            return 0;
        }
    return -1;
}

bool pmg_inflight_has(const pmg_t *self, uint64_t batch_id)
{
    for (size_t i = 0; i < PMG_INFLIGHT_MAX; i++)
        if (self->inflight[i].bytes && self->inflight[i].batch_id == batch_id)
            return true;
    return false;
}

bool pmg_inflight_take(pmg_t *self, uint64_t batch_id, pmg_block_t *out)
{
    for (size_t i = 0; i < PMG_INFLIGHT_MAX; i++) {
        pmg_block_t *b = &self->inflight[i];
        if (b->bytes && b->batch_id == batch_id) {
            *out = *b;
            memset(b, 0, sizeof *b);
            return true;
        }
    }
    return false;
}

/* ---- push */

size_t pmg_push_pick(size_t n, size_t except, size_t cap, uint64_t seed, size_t *out)
{
    size_t k = 0;
    if (n == 0)
        return 0;
    size_t start = (size_t) (seed % n);
    for (size_t j = 0; j < n && k < cap; j++) {
        size_t i = (start + j) % n;
        if (i != except)
            out[k++] = i;
    }
    return k;
}

bool pmg_other_branch(bool linkage_refused, uint64_t height, uint64_t head_height)
{
    /* Longest chain wins, a tie keeps ours: only a longer branch matters. */
    return linkage_refused && height > head_height;
}
