/*  sim_chain.c: see sim_chain.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim_chain.h"

#define CHAIN_MAX       64       /* distinct chains in one process */
#define SIM_CHAIN_LIMIT 20000ULL /* blocks per honest chain at most */
#define FORK_TAIL       64       /* blocks a fork chain has after its fault */

typedef struct {
    alys_hash_t key;
    bool used;
    bool ok;
    alys_verdict_t v;
} memo_t;

struct sim_chain_cache {
    sim_chain_t *chains[CHAIN_MAX];
    size_t n;
    memo_t *memo;
    size_t memo_cap, memo_n;
    bool memo_off;
};

sim_chain_cache_t *sim_chain_cache_new(void)
{
    sim_chain_cache_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->memo_cap = 1 << 14;
    self->memo = calloc(self->memo_cap, sizeof *self->memo);
    if (!self->memo) {
        free(self);
        return NULL;
    }
    return self;
}

static void chain_free(sim_chain_t *c)
{
    if (!c)
        return;
    for (uint64_t i = 0; i < c->n; i++) {
        free(c->block[i].data);
        free(c->header[i].data);
    }
    free(c->block);
    free(c->header);
    free(c->hash);
    free(c->state_root);
    free(c->slot);
    alys_chaingen_destroy(&c->gen);
    free(c);
}

void sim_chain_cache_destroy(sim_chain_cache_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    sim_chain_cache_t *self = *self_p;
    for (size_t i = 0; i < self->n; i++)
        chain_free(self->chains[i]);
    free(self->memo);
    free(self);
    *self_p = NULL;
}

void sim_chain_memo_off(sim_chain_cache_t *self)
{
    self->memo_off = true;
}

static bool key_eq(const sim_chain_key_t *a, const sim_chain_key_t *b)
{
    return a->variant == b->variant && a->slot_ms == b->slot_ms && a->txs == b->txs &&
           a->fault == b->fault && (a->fault == ALYS_BLOCK_OK || a->fault_height == b->fault_height);
}

static sim_chain_t *chain_new(const sim_chain_key_t *key, char *err, size_t errlen)
{
    sim_chain_t *c = calloc(1, sizeof *c);
    if (!c) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    c->key = *key;
    alys_chaingen_config_t cfg;
    alys_chaingen_config_default(&cfg);
    c->max_blocks = key->fault ? key->fault_height + FORK_TAIL : SIM_CHAIN_LIMIT;
    cfg.blocks = c->max_blocks;
    cfg.txs_per_block = key->txs;
    cfg.accounts = 16;
    cfg.authorities = 3;
    snprintf(cfg.seed, sizeof cfg.seed, "alys-sim/%u", key->variant);
    cfg.slot_ms = key->slot_ms;
    cfg.fault = key->fault;
    cfg.fault_height = key->fault_height;
    cfg.threads = 1;
    cfg.no_verify = true;
    c->gen = alys_chaingen_new(&cfg, err, errlen);
    if (!c->gen) {
        free(c);
        return NULL;
    }
    return c;
}

static int chain_grow(sim_chain_t *c, uint64_t height, char *err, size_t errlen)
{
    if (height > c->max_blocks) {
        snprintf(err, errlen, "height %llu beyond the chain's %llu blocks",
                 (unsigned long long) height, (unsigned long long) c->max_blocks);
        return -1;
    }
    if (height > c->cap) {
        uint64_t cap = c->cap ? c->cap : 1024;
        while (cap < height)
            cap *= 2;
        if (cap > c->max_blocks)
            cap = c->max_blocks;
        void *p[5] = {realloc(c->block, cap * sizeof *c->block), NULL, NULL, NULL, NULL};
        if (p[0])
            c->block = p[0];
        p[1] = realloc(c->header, cap * sizeof *c->header);
        if (p[1])
            c->header = p[1];
        p[2] = realloc(c->hash, cap * sizeof *c->hash);
        if (p[2])
            c->hash = p[2];
        p[3] = realloc(c->state_root, cap * sizeof *c->state_root);
        if (p[3])
            c->state_root = p[3];
        p[4] = realloc(c->slot, cap * sizeof *c->slot);
        if (p[4])
            c->slot = p[4];
        for (int i = 0; i < 5; i++)
            if (!p[i]) {
                snprintf(err, errlen, "out of memory");
                return -1;
            }
        c->cap = cap;
    }
    while (c->n < height) {
        const uint8_t *bytes;
        size_t len;
        const alys_block_t *b;
        int rc = alys_chaingen_next(c->gen, &bytes, &len, &b, err, errlen);
        if (rc <= 0) {
            if (rc == 0)
                snprintf(err, errlen, "generator ended at %llu", (unsigned long long) c->n);
            return -1;
        }
        uint64_t i = c->n;
        c->block[i].data = malloc(len);
        uint8_t *hb = NULL;
        size_t hlen = 0;
        if (!c->block[i].data || alys_header_encode(&b->header, &hb, &hlen) != 0) {
            free(c->block[i].data);
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        memcpy(c->block[i].data, bytes, len);
        c->block[i].len = len;
        c->header[i] = (ProtobufCBinaryData){hlen, hb};
        alys_header_hash(&b->header, c->hash[i]);
        memcpy(c->state_root[i], b->header.state_root, ALYS_HASH_LEN);
        c->slot[i] = b->header.slot;
        c->n++;
    }
    return 0;
}

sim_chain_t *sim_chain_need(sim_chain_cache_t *self, const sim_chain_key_t *key, uint64_t height,
                            char *err, size_t errlen)
{
    sim_chain_t *c = NULL;
    for (size_t i = 0; i < self->n && !c; i++)
        if (key_eq(&self->chains[i]->key, key))
            c = self->chains[i];
    if (!c) {
        if (self->n >= CHAIN_MAX) {
            /* Evict the oldest: a sweep only needs the chains of its cases. */
            chain_free(self->chains[0]);
            memmove(self->chains, self->chains + 1, (CHAIN_MAX - 1) * sizeof *self->chains);
            self->n--;
        }
        c = chain_new(key, err, errlen);
        if (!c)
            return NULL;
        self->chains[self->n++] = c;
    }
    if (height > c->max_blocks)
        height = c->max_blocks;
    return chain_grow(c, height, err, errlen) == 0 ? c : NULL;
}

const alys_genesis_t *sim_chain_genesis(const sim_chain_t *c)
{
    return alys_chaingen_genesis(c->gen);
}

const alys_forge_keys_t *sim_chain_keys(const sim_chain_t *c)
{
    return alys_chaingen_keys(c->gen);
}

/* ---- verdict memo ------------------------------------------------------------ */

static memo_t *memo_slot(sim_chain_cache_t *self, const alys_hash_t key)
{
    uint64_t h;
    memcpy(&h, key, sizeof h);
    size_t mask = self->memo_cap - 1;
    for (size_t i = (size_t) h & mask;; i = (i + 1) & mask)
        if (!self->memo[i].used || memcmp(self->memo[i].key, key, ALYS_HASH_LEN) == 0)
            return &self->memo[i];
}

static void memo_grow(sim_chain_cache_t *self)
{
    if (self->memo_n * 2 < self->memo_cap)
        return;
    memo_t *old = self->memo;
    size_t old_cap = self->memo_cap;
    memo_t *fresh = calloc(old_cap * 2, sizeof *fresh);
    if (!fresh)
        return; /* keeps working, just fuller */
    self->memo = fresh;
    self->memo_cap = old_cap * 2;
    for (size_t i = 0; i < old_cap; i++)
        if (old[i].used)
            *memo_slot(self, old[i].key) = old[i];
    free(old);
}

static void memo_key(const alys_genesis_t *g, char tag, const uint8_t *buf, size_t len, alys_hash_t out)
{
    alys_hash_t inner;
    alys_sha256(buf, len, inner);
    uint8_t k[1 + 2 * ALYS_HASH_LEN];
    k[0] = (uint8_t) tag;
    memcpy(k + 1, g->hash, ALYS_HASH_LEN);
    memcpy(k + 1 + ALYS_HASH_LEN, inner, ALYS_HASH_LEN);
    alys_sha256(k, sizeof k, out);
}

static bool memo_get(sim_chain_cache_t *self, const alys_hash_t key, alys_verdict_t *v, bool *ok)
{
    if (self->memo_off)
        return false;
    memo_t *m = memo_slot(self, key);
    if (!m->used)
        return false;
    *v = m->v;
    *ok = m->ok;
    return true;
}

static void memo_put(sim_chain_cache_t *self, const alys_hash_t key, const alys_verdict_t *v, bool ok)
{
    if (self->memo_off)
        return;
    memo_grow(self);
    memo_t *m = memo_slot(self, key);
    if (!m->used)
        self->memo_n++;
    *m = (memo_t){.used = true, .ok = ok, .v = *v};
    memcpy(m->key, key, ALYS_HASH_LEN);
}

bool sim_chain_check_block(sim_chain_cache_t *self, const alys_genesis_t *g, const uint8_t *buf,
                           size_t len, alys_verdict_t *v)
{
    alys_hash_t key;
    bool ok;
    memo_key(g, 'B', buf, len, key);
    if (memo_get(self, key, v, &ok))
        return ok;
    ok = alys_block_decode_check(g, buf, len, v);
    if (ok)
        *v = (alys_verdict_t){.code = ALYS_BLOCK_OK, .tx_index = -1};
    memo_put(self, key, v, ok);
    return ok;
}

bool sim_chain_check_header(sim_chain_cache_t *self, const alys_genesis_t *g, const uint8_t *buf,
                            size_t len, const alys_header_t *h, alys_verdict_t *v)
{
    alys_hash_t key;
    bool ok;
    memo_key(g, 'H', buf, len, key);
    if (memo_get(self, key, v, &ok))
        return ok;
    ok = alys_header_check(g, h, v);
    if (ok)
        *v = (alys_verdict_t){.code = ALYS_BLOCK_OK, .tx_index = -1};
    memo_put(self, key, v, ok);
    return ok;
}
