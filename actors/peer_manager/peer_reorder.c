/*  peer_reorder.c: see peer_reorder.h. */
#include "peer_reorder.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum { E_FREE = 0, E_WAITING, E_SENT } estate_t;

typedef struct {
    estate_t state;
    uint64_t seq; /* insertion order: newest wins a tie */
    uint64_t request_id;
    char peer_id[PEER_ID_MAX];
    uint64_t start;
    uint32_t count;
    uint8_t *buf; /* every block, concatenated (owned) */
    size_t bytes;
    ProtobufCBinaryData *blocks;   /* count items pointing into buf (owned array) */
    uint8_t *hashes;               /* count * 32, or NULL (owned) */
    ProtobufCBinaryData *expected; /* count items into hashes, or NULL (owned array) */
    uint64_t batch_id;             /* of the chunk at BlockProcessor */
    uint64_t sent_from;            /* chunk [sent_from, sent_to) */
    uint64_t sent_to;
    uint64_t sent_at;
    uint32_t busy_attempts;
    uint64_t retry_at;
} entry_t;

struct _reorder_t {
    reorder_config_t cfg;
    entry_t *entries; /* cfg.max_entries slots */
    uint64_t head;
    uint64_t head_seq; /* entries up to this seq arrived before head was seen */
    uint64_t next_seq;
    size_t used;
    size_t bytes;
};

void reorder_config_defaults(reorder_config_t *cfg)
{
    *cfg = (reorder_config_t){
        .max_entries = 32,
        .max_bytes = 64u * 1024 * 1024,
        .max_inflight = 2,
        .chunk_blocks = 1024,
        .chunk_bytes = 4u * 1024 * 1024,
        .busy_backoff_min_ms = 100,
        .busy_backoff_max_ms = 2000,
        .processing_timeout_ms = 30000,
    };
}

const char *reorder_drop_name(reorder_drop_t why)
{
    switch (why) {
    case REORDER_DROP_COMMITTED: return "committed";
    case REORDER_DROP_AFTER_FAILURE: return "after_failure";
    case REORDER_DROP_EVICTED: return "evicted";
    case REORDER_DROP_SUPERSEDED: return "superseded";
    default: return "?";
    }
}

reorder_t *reorder_new(const reorder_config_t *cfg)
{
    reorder_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    if (cfg)
        self->cfg = *cfg;
    else
        reorder_config_defaults(&self->cfg);
    /* bounded: evictable() keeps an array of this many pointers on the stack */
    if (self->cfg.max_entries == 0)
        self->cfg.max_entries = 1;
    if (self->cfg.max_entries > 4096)
        self->cfg.max_entries = 4096;
    if (self->cfg.max_inflight == 0)
        self->cfg.max_inflight = 1;
    if (self->cfg.chunk_blocks == 0)
        self->cfg.chunk_blocks = 1;
    self->entries = calloc(self->cfg.max_entries, sizeof *self->entries);
    if (!self->entries) {
        free(self);
        return NULL;
    }
    return self;
}

static void entry_free(reorder_t *self, entry_t *e)
{
    if (e->state == E_FREE)
        return;
    free(e->buf);
    free(e->blocks);
    free(e->hashes);
    free(e->expected);
    self->used--;
    self->bytes -= e->bytes;
    memset(e, 0, sizeof *e);
}

void reorder_destroy(reorder_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    reorder_t *self = *self_p;
    for (uint32_t i = 0; i < self->cfg.max_entries; i++)
        entry_free(self, &self->entries[i]);
    free(self->entries);
    free(self);
    *self_p = NULL;
}

/* ---- helpers --------------------------------------------------------------- */

static uint64_t entry_end(const entry_t *e)
{
    return e->start + e->count;
}

/* Entirely at or below the head. */
static bool committed(const reorder_t *self, const entry_t *e)
{
    return entry_end(e) <= self->head + 1;
}

static void describe(const entry_t *e, reorder_drop_t why, reorder_ref_t *out)
{
    memset(out, 0, sizeof *out);
    out->request_id = e->request_id;
    memcpy(out->peer_id, e->peer_id, sizeof out->peer_id);
    out->start = e->start;
    out->count = e->count;
    out->why = why;
}

/* Append a drop record (counted even when the array is full). */
static void note_drop(const entry_t *e, reorder_drop_t why, reorder_ref_t *drops, size_t cap,
                      size_t *n)
{
    if (drops && *n < cap)
        describe(e, why, &drops[*n]);
    (*n)++;
}

/* Drop waiting entries wholly at or below a head seen after they arrived. */
static void drop_committed(reorder_t *self, reorder_ref_t *drops, size_t cap, size_t *n)
{
    for (uint32_t i = 0; i < self->cfg.max_entries; i++) {
        entry_t *e = &self->entries[i];
        if (e->state == E_WAITING && committed(self, e) && e->seq <= self->head_seq) {
            note_drop(e, REORDER_DROP_COMMITTED, drops, cap, n);
            entry_free(self, e);
        }
    }
}

static entry_t *find_sent(reorder_t *self, uint64_t batch_id)
{
    for (uint32_t i = 0; i < self->cfg.max_entries; i++) {
        entry_t *e = &self->entries[i];
        if (e->state == E_SENT && e->batch_id == batch_id)
            return e;
    }
    return NULL;
}

static void to_waiting(entry_t *e, uint64_t retry_at)
{
    e->state = E_WAITING;
    e->batch_id = 0;
    e->retry_at = retry_at;
}

/* ---- queries --------------------------------------------------------------- */

uint64_t reorder_head(const reorder_t *self)
{
    return self->head;
}
size_t reorder_entries(const reorder_t *self)
{
    return self->used;
}
size_t reorder_bytes(const reorder_t *self)
{
    return self->bytes;
}

size_t reorder_blocks(const reorder_t *self)
{
    size_t n = 0;
    for (uint32_t i = 0; i < self->cfg.max_entries; i++)
        if (self->entries[i].state != E_FREE)
            n += self->entries[i].count;
    return n;
}

size_t reorder_inflight(const reorder_t *self)
{
    size_t n = 0;
    for (uint32_t i = 0; i < self->cfg.max_entries; i++)
        n += self->entries[i].state == E_SENT;
    return n;
}

uint64_t reorder_next_height(const reorder_t *self)
{
    uint64_t next = self->head + 1;
    for (uint32_t i = 0; i < self->cfg.max_entries; i++) {
        const entry_t *e = &self->entries[i];
        if (e->state == E_SENT && e->sent_to > next)
            next = e->sent_to;
    }
    return next;
}

/* ---- head ------------------------------------------------------------------ */

void reorder_set_head(reorder_t *self, uint64_t head, uint64_t seen_seq, reorder_ref_t *drops,
                      size_t cap, size_t *n_drops)
{
    *n_drops = 0;
    if (reorder_inflight(self) > 0)
        return;
    self->head = head;
    self->head_seq = seen_seq;
    drop_committed(self, drops, cap, n_drops);
}

uint64_t reorder_seq(const reorder_t *self)
{
    return self->next_seq;
}

/* ---- insert ---------------------------------------------------------------- */

static size_t batch_bytes(const reorder_batch_t *b)
{
    size_t total = 0;
    for (size_t i = 0; i < b->n; i++)
        total += b->blocks[i].len;
    return total;
}

static bool supersedes(const reorder_batch_t *b, const entry_t *e)
{
    return e->state == E_WAITING && e->start == b->start && e->count <= b->n;
}

/* Waiting entries starting above `start`, farthest first, into order[]. */
static size_t evictable(reorder_t *self, const reorder_batch_t *b, entry_t **order)
{
    size_t n = 0;
    for (uint32_t i = 0; i < self->cfg.max_entries; i++) {
        entry_t *e = &self->entries[i];
        if (e->state == E_WAITING && e->start > b->start && !supersedes(b, e))
            order[n++] = e;
    }
    /* insertion sort by start, descending: n <= max_entries, small */
    for (size_t i = 1; i < n; i++)
        for (size_t j = i; j > 0 && order[j]->start > order[j - 1]->start; j--) {
            entry_t *t = order[j];
            order[j] = order[j - 1];
            order[j - 1] = t;
        }
    return n;
}

/* How many of order[] must go for the new batch to fit, or -1 if it cannot. */
static long evictions_needed(const reorder_t *self, entry_t *const *order, size_t n_order,
                             size_t freed_entries, size_t freed_bytes, size_t new_bytes)
{
    size_t entries = self->used - freed_entries;
    size_t bytes = self->bytes - freed_bytes;
    for (size_t k = 0;; k++) {
        if (entries + 1 <= self->cfg.max_entries && bytes + new_bytes <= self->cfg.max_bytes)
            return (long) k;
        if (k == n_order)
            return -1;
        entries--;
        bytes -= order[k]->bytes;
    }
}

static int entry_fill(entry_t *e, const reorder_batch_t *b, size_t total)
{
    e->buf = malloc(total ? total : 1);
    e->blocks = calloc(b->n, sizeof *e->blocks);
    if (b->expected) {
        e->hashes = malloc(b->n * ALYS_HASH_LEN);
        e->expected = calloc(b->n, sizeof *e->expected);
    }
    if (!e->buf || !e->blocks || (b->expected && (!e->hashes || !e->expected)))
        return -1;
    size_t off = 0;
    for (size_t i = 0; i < b->n; i++) {
        memcpy(e->buf + off, b->blocks[i].data, b->blocks[i].len);
        e->blocks[i] = (ProtobufCBinaryData){b->blocks[i].len, e->buf + off};
        off += b->blocks[i].len;
        if (b->expected) {
            memcpy(e->hashes + i * ALYS_HASH_LEN, b->expected[i], ALYS_HASH_LEN);
            e->expected[i] = (ProtobufCBinaryData){ALYS_HASH_LEN, e->hashes + i * ALYS_HASH_LEN};
        }
    }
    return 0;
}

static entry_t *free_slot(reorder_t *self)
{
    for (uint32_t i = 0; i < self->cfg.max_entries; i++)
        if (self->entries[i].state == E_FREE)
            return &self->entries[i];
    return NULL;
}

/* Make the new entry (space was checked). -1 on out-of-memory. */
static int add_entry(reorder_t *self, const reorder_batch_t *b, size_t total)
{
    entry_t *e = free_slot(self);
    if (!e)
        return -1;
    *e = (entry_t){.state = E_WAITING,
                   .seq = ++self->next_seq,
                   .request_id = b->request_id,
                   .start = b->start,
                   .count = (uint32_t) b->n,
                   .bytes = total};
    snprintf(e->peer_id, sizeof e->peer_id, "%s", b->peer_id ? b->peer_id : "");
    self->used++;
    self->bytes += total;
    if (entry_fill(e, b, total) != 0) {
        entry_free(self, e);
        return -1;
    }
    return 0;
}

reorder_insert_t reorder_insert(reorder_t *self, const reorder_batch_t *b, reorder_ref_t *drops,
                                size_t cap, size_t *n_drops)
{
    *n_drops = 0;
    if (!b || b->n == 0 || !b->blocks || b->n > UINT32_MAX)
        return REORDER_INVALID;
    size_t total = batch_bytes(b);
    size_t freed_entries = 0, freed_bytes = 0;
    for (uint32_t i = 0; i < self->cfg.max_entries; i++)
        if (supersedes(b, &self->entries[i])) {
            freed_entries++;
            freed_bytes += self->entries[i].bytes;
        }
    entry_t *order[self->cfg.max_entries];
    size_t n_order = evictable(self, b, order);
    long k = evictions_needed(self, order, n_order, freed_entries, freed_bytes, total);
    if (k < 0)
        return REORDER_FULL;
    /* It fits: now change things. */
    for (long i = 0; i < k; i++) {
        note_drop(order[i], REORDER_DROP_EVICTED, drops, cap, n_drops);
        entry_free(self, order[i]);
    }
    for (uint32_t i = 0; i < self->cfg.max_entries; i++)
        if (supersedes(b, &self->entries[i])) {
            note_drop(&self->entries[i], REORDER_DROP_SUPERSEDED, drops, cap, n_drops);
            entry_free(self, &self->entries[i]);
        }
    return add_entry(self, b, total) == 0 ? REORDER_ACCEPTED : REORDER_INVALID;
}

/* ---- sending --------------------------------------------------------------- */

/* The newest waiting entry covering height h whose backoff is over. */
static entry_t *covering(reorder_t *self, uint64_t h, uint64_t now_ms)
{
    entry_t *best = NULL;
    for (uint32_t i = 0; i < self->cfg.max_entries; i++) {
        entry_t *e = &self->entries[i];
        if (e->state != E_WAITING || e->start > h || entry_end(e) <= h || e->retry_at > now_ms)
            continue;
        if (!best || e->seq > best->seq)
            best = e;
    }
    return best;
}

/* Blocks of e from index skip that fit one chunk (at least one). */
static uint32_t chunk_len(const reorder_t *self, const entry_t *e, uint32_t skip)
{
    uint32_t n = 0;
    size_t bytes = 0;
    while (skip + n < e->count && n < self->cfg.chunk_blocks) {
        size_t len = e->blocks[skip + n].len;
        if (n > 0 && bytes + len > self->cfg.chunk_bytes)
            break;
        bytes += len;
        n++;
    }
    return n;
}

bool reorder_next(reorder_t *self, uint64_t now_ms, uint64_t batch_id, reorder_send_t *out)
{
    if (reorder_inflight(self) >= self->cfg.max_inflight)
        return false;
    uint64_t h = reorder_next_height(self);
    entry_t *e = covering(self, h, now_ms);
    if (!e)
        return false;
    uint32_t skip = (uint32_t) (h - e->start);
    uint32_t n = chunk_len(self, e, skip);
    e->state = E_SENT;
    e->batch_id = batch_id;
    e->sent_from = h;
    e->sent_to = h + n;
    e->sent_at = now_ms;
    memset(out, 0, sizeof *out);
    out->batch_id = batch_id;
    out->request_id = e->request_id;
    memcpy(out->peer_id, e->peer_id, sizeof out->peer_id);
    out->start = h;
    out->count = n;
    out->blocks = &e->blocks[skip];
    out->expected = e->expected ? &e->expected[skip] : NULL;
    for (uint32_t i = 0; i < n; i++)
        out->bytes += out->blocks[i].len;
    return true;
}

/* ---- outcomes -------------------------------------------------------------- */

static void result_ref(const entry_t *e, uint32_t committed, bool complete, reorder_ref_t *ref)
{
    if (!ref)
        return;
    describe(e, REORDER_DROP_COMMITTED, ref);
    ref->start = e->sent_from;
    ref->count = committed;
    ref->complete = complete;
}

static reorder_done_t on_success(reorder_t *self, entry_t *e, const reorder_result_t *r,
                                 reorder_ref_t *ref, reorder_ref_t *drops, size_t cap, size_t *n)
{
    bool complete = committed(self, e);
    result_ref(e, r->committed, complete, ref);
    if (complete)
        entry_free(self, e);
    else
        to_waiting(e, 0); /* its next chunk goes as soon as it may */
    drop_committed(self, drops, cap, n);
    return REORDER_PROGRESS;
}

static reorder_done_t on_failure(reorder_t *self, entry_t *e, const reorder_result_t *r,
                                 reorder_ref_t *ref, reorder_ref_t *drops, size_t cap, size_t *n)
{
    result_ref(e, r->committed, true, ref);
    entry_free(self, e);
    for (uint32_t i = 0; i < self->cfg.max_entries; i++) {
        entry_t *o = &self->entries[i];
        if (o->state != E_FREE && o->start > r->failed_height) {
            note_drop(o, REORDER_DROP_AFTER_FAILURE, drops, cap, n);
            entry_free(self, o);
        }
    }
    /* Chunks of overlapping entries still at BlockProcessor sit above the
     * failure now: they can only fail for the missing parent. Resend. */
    for (uint32_t i = 0; i < self->cfg.max_entries; i++)
        if (self->entries[i].state == E_SENT)
            to_waiting(&self->entries[i], 0);
    drop_committed(self, drops, cap, n);
    return REORDER_FAILED;
}

reorder_done_t reorder_on_processed(reorder_t *self, const reorder_result_t *r, uint64_t now_ms,
                                    reorder_ref_t *ref, reorder_ref_t *drops, size_t cap,
                                    size_t *n_drops)
{
    *n_drops = 0;
    entry_t *e = find_sent(self, r->batch_id);
    if (!e)
        return REORDER_UNKNOWN;
    self->head = r->head_height;
    self->head_seq = self->next_seq; /* fresh: every entry arrived before it */
    e->busy_attempts = 0;
    if (!r->failed)
        return on_success(self, e, r, ref, drops, cap, n_drops);
    bool parent_missing = r->failed_height == e->sent_from && r->head_height + 1 < e->sent_from;
    if (parent_missing && !r->content_fault) {
        to_waiting(e, now_ms);
        return REORDER_REQUEUED;
    }
    return on_failure(self, e, r, ref, drops, cap, n_drops);
}

reorder_done_t reorder_on_refused(reorder_t *self, uint64_t batch_id, uint64_t now_ms,
                                  reorder_ref_t *ref, reorder_ref_t *drops, size_t cap,
                                  size_t *n_drops)
{
    (void) now_ms;
    *n_drops = 0;
    entry_t *e = find_sent(self, batch_id);
    if (!e)
        return REORDER_UNKNOWN;
    reorder_result_t r = {.batch_id = batch_id,
                          .head_height = self->head,
                          .failed = true,
                          .failed_height = e->sent_from};
    return on_failure(self, e, &r, ref, drops, cap, n_drops);
}

static uint64_t backoff_ms(const reorder_config_t *cfg, uint32_t attempts)
{
    uint64_t ms = cfg->busy_backoff_min_ms;
    for (uint32_t i = 1; i < attempts && ms < cfg->busy_backoff_max_ms; i++)
        ms *= 2;
    return ms < cfg->busy_backoff_max_ms ? ms : cfg->busy_backoff_max_ms;
}

bool reorder_on_busy(reorder_t *self, uint64_t batch_id, uint64_t now_ms)
{
    entry_t *e = find_sent(self, batch_id);
    if (!e)
        return false;
    uint64_t from = e->sent_from;
    e->busy_attempts++;
    to_waiting(e, now_ms + backoff_ms(&self->cfg, e->busy_attempts));
    /* What went after it cannot link until it lands: send again after it. */
    for (uint32_t i = 0; i < self->cfg.max_entries; i++) {
        entry_t *o = &self->entries[i];
        if (o->state == E_SENT && o->sent_from > from)
            to_waiting(o, now_ms);
    }
    return true;
}

size_t reorder_on_lost(reorder_t *self)
{
    size_t n = 0;
    for (uint32_t i = 0; i < self->cfg.max_entries; i++) {
        entry_t *e = &self->entries[i];
        if (e->state == E_SENT) {
            to_waiting(e, 0);
            n++;
        }
    }
    return n;
}

size_t reorder_expire(reorder_t *self, uint64_t now_ms)
{
    for (uint32_t i = 0; i < self->cfg.max_entries; i++) {
        const entry_t *e = &self->entries[i];
        if (e->state == E_SENT && now_ms >= e->sent_at + self->cfg.processing_timeout_ms)
            return reorder_on_lost(self);
    }
    return 0;
}

static bool same_hashes(const entry_t *e, uint32_t count, const uint8_t (*expected)[ALYS_HASH_LEN])
{
    if (!expected)
        return true;
    return e->hashes && memcmp(e->hashes, expected, (size_t) count * ALYS_HASH_LEN) == 0;
}

bool reorder_rekey(reorder_t *self, uint64_t start, uint32_t count,
                   const uint8_t (*expected)[ALYS_HASH_LEN], uint64_t new_request_id,
                   reorder_ref_t *old)
{
    if (count == 0)
        return false;
    for (uint32_t i = 0; i < self->cfg.max_entries; i++) {
        entry_t *e = &self->entries[i];
        if (e->state == E_FREE || e->start != start || e->count < count ||
            !same_hashes(e, count, expected))
            continue;
        describe(e, REORDER_DROP_COMMITTED, old);
        e->request_id = new_request_id;
        return true;
    }
    return false;
}

size_t reorder_list(const reorder_t *self, reorder_ref_t *out, size_t cap)
{
    size_t n = 0;
    for (uint32_t i = 0; i < self->cfg.max_entries; i++) {
        const entry_t *e = &self->entries[i];
        if (e->state == E_FREE)
            continue;
        if (n < cap)
            describe(e, REORDER_DROP_COMMITTED, &out[n]);
        n++;
    }
    return n;
}

size_t reorder_capacity(const reorder_t *self)
{
    return self->cfg.max_entries;
}
