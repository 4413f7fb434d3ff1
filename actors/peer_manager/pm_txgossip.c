/*  pm_txgossip.c: see pm_txgossip.h.
 *
 *  Seen set: a ring of ids in arrival order plus a czmq hash of their hex
 *  form for membership; the ring slot being overwritten is deleted from the
 *  hash first. Budgets: a small array searched linearly (a node has tens of
 *  peers and clients, budget_cap bounds it).
 */
#include "pm_txgossip.h"

#include <czmq.h>
#include <stdlib.h>
#include <string.h>

#define ID_HEX (2 * ALYS_HASH_LEN + 1)

typedef struct {
    bool used;
    uint8_t key[TXG_KEY_MAX];
    size_t key_len;
    double msgs;  /* tokens */
    double bytes; /* tokens; may be negative after txg_charge */
    int64_t at;   /* last refill, ms */
    int64_t seen; /* last use, ms (recycling) */
} budget_t;

typedef struct {
    uint8_t tx[ALYS_TX_MAX_BYTES];
    size_t len;
    char origin[TXG_KEY_MAX];
} queued_t;

struct txg {
    txg_config_t cfg;
    alys_hash_t *ring; /* seen_cap ids */
    size_t ring_next, ring_n;
    zhashx_t *seen; /* hex id -> (void *) 1 */
    budget_t *budgets;
    queued_t *queue;
    size_t queued;
};

txg_t *txg_new(const txg_config_t *cfg)
{
    if (!cfg || !cfg->msg_rate || !cfg->byte_rate || !cfg->seen_cap || !cfg->budget_cap ||
        !cfg->queue_cap)
        return NULL;
    txg_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->cfg = *cfg;
    self->ring = calloc(cfg->seen_cap, sizeof *self->ring);
    self->seen = zhashx_new();
    self->budgets = calloc(cfg->budget_cap, sizeof *self->budgets);
    self->queue = calloc(cfg->queue_cap, sizeof *self->queue);
    if (!self->ring || !self->seen || !self->budgets || !self->queue)
        txg_destroy(&self);
    return self;
}

void txg_destroy(txg_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    txg_t *self = *self_p;
    free(self->ring);
    zhashx_destroy(&self->seen);
    free(self->budgets);
    free(self->queue);
    free(self);
    *self_p = NULL;
}

/* ---- seen set ---- */

static void id_hex(const alys_hash_t id, char out[ID_HEX])
{
    alys_hex(id, ALYS_HASH_LEN, out);
}

bool txg_seen(txg_t *self, const alys_hash_t id)
{
    char hex[ID_HEX];
    id_hex(id, hex);
    return zhashx_lookup(self->seen, hex) != NULL;
}

void txg_mark(txg_t *self, const alys_hash_t id)
{
    char hex[ID_HEX];
    id_hex(id, hex);
    if (zhashx_lookup(self->seen, hex))
        return;
    if (self->ring_n == self->cfg.seen_cap) {
        char old[ID_HEX];
        id_hex(self->ring[self->ring_next], old);
        zhashx_delete(self->seen, old);
        self->ring_n--;
    }
    if (zhashx_insert(self->seen, hex, (void *) 1) != 0)
        return; /* out of memory: it will be relayed again, nothing worse */
    memcpy(self->ring[self->ring_next], id, ALYS_HASH_LEN);
    self->ring_next = (self->ring_next + 1) % self->cfg.seen_cap;
    self->ring_n++;
}

size_t txg_seen_count(const txg_t *self)
{
    return self->ring_n;
}

void txg_seen_clear(txg_t *self)
{
    zhashx_purge(self->seen);
    self->ring_n = 0;
    self->ring_next = 0;
}

/* ---- budgets ---- */

static budget_t *budget_get(txg_t *self, const void *key, size_t key_len, int64_t now)
{
    if (key_len == 0 || key_len > TXG_KEY_MAX)
        return NULL;
    budget_t *free_slot = NULL, *oldest = NULL;
    for (size_t i = 0; i < self->cfg.budget_cap; i++) {
        budget_t *b = &self->budgets[i];
        if (!b->used) {
            if (!free_slot)
                free_slot = b;
            continue;
        }
        if (b->key_len == key_len && memcmp(b->key, key, key_len) == 0)
            return b;
        if (!oldest || b->seen < oldest->seen)
            oldest = b;
    }
    budget_t *b = free_slot ? free_slot : oldest;
    *b = (budget_t){.used = true,
                    .key_len = key_len,
                    .msgs = 2.0 * self->cfg.msg_rate,
                    .bytes = 2.0 * (double) self->cfg.byte_rate,
                    .at = now,
                    .seen = now};
    memcpy(b->key, key, key_len);
    return b;
}

static void refill(const txg_t *self, budget_t *b, int64_t now)
{
    if (now > b->at) {
        double secs = (double) (now - b->at) / 1000.0;
        double mcap = 2.0 * self->cfg.msg_rate, bcap = 2.0 * (double) self->cfg.byte_rate;
        b->msgs += secs * self->cfg.msg_rate;
        b->bytes += secs * (double) self->cfg.byte_rate;
        b->msgs = b->msgs > mcap ? mcap : b->msgs;
        b->bytes = b->bytes > bcap ? bcap : b->bytes;
        b->at = now;
    }
    b->seen = now;
}

bool txg_take(txg_t *self, const void *key, size_t key_len, size_t bytes, int64_t now_ms)
{
    budget_t *b = budget_get(self, key, key_len, now_ms);
    if (!b)
        return false;
    refill(self, b, now_ms);
    if (b->msgs < 1.0 || b->bytes < (double) bytes)
        return false;
    b->msgs -= 1.0;
    b->bytes -= (double) bytes;
    return true;
}

void txg_charge(txg_t *self, const void *key, size_t key_len, size_t bytes, int64_t now_ms)
{
    budget_t *b = budget_get(self, key, key_len, now_ms);
    if (!b)
        return;
    refill(self, b, now_ms);
    double floor = -4.0 * (double) self->cfg.byte_rate;
    b->bytes -= (double) bytes;
    b->bytes = b->bytes < floor ? floor : b->bytes;
}

/* ---- relay queue ---- */

int txg_queue(txg_t *self, const uint8_t *tx, size_t len, const char *origin)
{
    if (self->queued == self->cfg.queue_cap || len == 0 || len > ALYS_TX_MAX_BYTES)
        return -1;
    queued_t *q = &self->queue[self->queued++];
    memcpy(q->tx, tx, len);
    q->len = len;
    snprintf(q->origin, sizeof q->origin, "%s", origin ? origin : "");
    return 0;
}

size_t txg_queued(const txg_t *self)
{
    return self->queued;
}

size_t txg_batch(const txg_t *self, const char *peer_id, size_t *pos, ProtobufCBinaryData *out,
                 size_t max)
{
    size_t n = 0;
    while (*pos < self->queued && n < max) {
        const queued_t *q = &self->queue[(*pos)++];
        if (peer_id && peer_id[0] && strcmp(q->origin, peer_id) == 0)
            continue;
        out[n++] = (ProtobufCBinaryData){q->len, (uint8_t *) q->tx};
    }
    return n;
}

void txg_queue_clear(txg_t *self)
{
    self->queued = 0;
}
