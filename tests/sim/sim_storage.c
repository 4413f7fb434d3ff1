/*  sim_storage.c: the storage model. StorageActor's rules over an
 *  in-memory state (common/chain/memstate.h) instead of RocksDB: blocks are
 *  decoded, linked to the head, executed in order with the real chain
 *  rules; the batch stops at the first failing block, everything before it
 *  is committed; replays of committed blocks are acknowledged, a different
 *  block at a committed height is parent_mismatch; a checkpoint is written
 *  every checkpoint_interval blocks.
 *
 *  --inject-bug makes it commit a block whose execution failed (a storage
 *  that trusts what it is given): the simulator's own test that its
 *  invariants catch an invalid committed block.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chain/memstate.h"
#include "chain/state.h"
#include "sim_internal.h"

#define CP_MAX 4096

struct sim_storage {
    const alys_genesis_t *g;
    alys_memstate_t *ms;
    alys_overlay_t *ov;
    alys_state_view_t view;
    uint64_t head;
    alys_header_t head_header;
    alys_hash_t *hashes; /* [h]: committed header hash, [0] = genesis */
    uint64_t cap;
    uint64_t interval;
    size_t n_cp;
    uint64_t cp_height[CP_MAX];
    alys_hash_t cp_hash[CP_MAX];
    alys_hash_t cp_root[CP_MAX];
};

sim_storage_t *sim_storage_new(sim_t *sim)
{
    sim_storage_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->g = sim_genesis(sim);
    self->ms = alys_memstate_new();
    self->ov = alys_overlay_new();
    self->cap = 1024;
    self->hashes = calloc(self->cap, sizeof *self->hashes);
    if (!self->ms || !self->ov || !self->hashes || alys_memstate_load_genesis(self->ms, self->g) != 0) {
        sim_storage_destroy(&self);
        return NULL;
    }
    alys_memstate_view_init(self->ms, self->g, self->ov, &self->view);
    alys_genesis_parent(self->g, &self->head_header);
    memcpy(self->hashes[0], self->g->hash, ALYS_HASH_LEN);
    self->interval = sim_case(sim)->checkpoint_interval;
    return self;
}

void sim_storage_destroy(sim_storage_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    sim_storage_t *self = *self_p;
    alys_memstate_destroy(&self->ms);
    alys_overlay_destroy(&self->ov);
    free(self->hashes);
    free(self);
    *self_p = NULL;
}

static int remember(sim_storage_t *self, uint64_t h, const alys_hash_t hash)
{
    if (h >= self->cap) {
        uint64_t cap = self->cap * 2;
        while (cap <= h)
            cap *= 2;
        alys_hash_t *p = realloc(self->hashes, cap * sizeof *p);
        if (!p)
            return -1;
        self->hashes = p;
        self->cap = cap;
    }
    memcpy(self->hashes[h], hash, ALYS_HASH_LEN);
    return 0;
}

static void checkpoint(sim_storage_t *self, uint64_t h, const alys_hash_t hash, const alys_hash_t root)
{
    if (self->interval == 0 || h % self->interval != 0)
        return;
    if (self->n_cp == CP_MAX) { /* pruned to max_checkpoints, oldest first */
        memmove(self->cp_height, self->cp_height + 1, (CP_MAX - 1) * sizeof *self->cp_height);
        memmove(self->cp_hash, self->cp_hash + 1, (CP_MAX - 1) * sizeof *self->cp_hash);
        memmove(self->cp_root, self->cp_root + 1, (CP_MAX - 1) * sizeof *self->cp_root);
        self->n_cp--;
    }
    self->cp_height[self->n_cp] = h;
    memcpy(self->cp_hash[self->n_cp], hash, ALYS_HASH_LEN);
    memcpy(self->cp_root[self->n_cp], root, ALYS_HASH_LEN);
    self->n_cp++;
}

static void fail(pl_outcome_t *o, uint64_t h, const alys_hash_t hash, const alys_verdict_t *v)
{
    o->failed = true;
    o->failed_height = h;
    if (hash) {
        memcpy(o->failed_hash, hash, ALYS_HASH_LEN);
        o->has_failed_hash = true;
    }
    snprintf(o->reason, sizeof o->reason, "%s", alys_block_error_name(v->code));
    snprintf(o->detail, sizeof o->detail, "%s", v->detail);
    o->tx_index = v->tx_index;
}

/* One block; true when it is (now or already) committed. */
static bool one_block(sim_t *sim, sim_storage_t *self, const ProtobufCBinaryData *raw, pl_outcome_t *o)
{
    alys_block_t b;
    alys_verdict_t v;
    memset(&b, 0, sizeof b);
    if (alys_block_decode(raw->data, raw->len, &b, &v) != 0) {
        fail(o, self->head + 1, NULL, &v);
        return false;
    }
    alys_hash_t hash;
    alys_header_hash(&b.header, hash);
    uint64_t h = b.header.height;
    bool ok = false;
    if (h >= 1 && h <= self->head) {
        ok = memcmp(self->hashes[h], hash, ALYS_HASH_LEN) == 0; /* idempotent replay */
        if (!ok) {
            v = (alys_verdict_t){.code = ALYS_BLOCK_PARENT_MISMATCH, .tx_index = -1};
            snprintf(v.detail, sizeof v.detail, "another block is committed at %llu",
                     (unsigned long long) h);
            fail(o, h, hash, &v);
        }
        alys_block_clear(&b);
        return ok;
    }
    if (!alys_header_check_link(&self->head_header, self->hashes[self->head], &b.header,
                                sim_now_slot(sim), &v)) {
        fail(o, h, hash, &v);
    } else if (alys_execute_block(&self->view, &b, &v)) {
        ok = alys_memstate_commit_overlay(self->ms, self->ov) == 0;
        if (!ok) {
            v = (alys_verdict_t){.code = ALYS_BLOCK_INTERNAL_ERROR, .tx_index = -1};
            fail(o, h, hash, &v);
        }
    } else if (sim_case(sim)->inject_bug && v.code != ALYS_BLOCK_INTERNAL_ERROR) {
        alys_overlay_reset(self->ov); /* THE BUG: a refused block is committed */
        ok = true;
    } else {
        fail(o, h, hash, &v);
    }
    if (ok) {
        if (remember(self, h, hash) != 0) {
            alys_block_clear(&b);
            sim_fail(sim, "storage model", "out of memory");
            return false;
        }
        self->head = h;
        self->head_header = b.header;
        sim_check_commit(sim, h, hash);
        alys_hash_t root;
        alys_lattice_root(&self->view.lattice, root);
        checkpoint(self, h, hash, root);
    }
    alys_block_clear(&b);
    return ok;
}

void sim_storage_execute(sim_t *sim, const ProtobufCBinaryData *blocks, size_t n, pl_outcome_t *o)
{
    sim_storage_t *self = sim_get_storage(sim);
    memset(o, 0, sizeof *o);
    o->tx_index = -1;
    for (size_t i = 0; i < n; i++) {
        if (!one_block(sim, self, &blocks[i], o))
            break;
        o->committed++;
    }
    o->head_height = self->head;
    memcpy(o->head_hash, self->hashes[self->head], ALYS_HASH_LEN);
    alys_lattice_root(&self->view.lattice, o->state_root);
    o->has_head = true;
    o->checkpoint_height = self->n_cp ? self->cp_height[self->n_cp - 1] : 0;
}

uint64_t sim_storage_head(const sim_t *sim, alys_hash_t hash, alys_hash_t state_root)
{
    const sim_storage_t *self = sim_get_storage_c(sim);
    if (hash)
        memcpy(hash, self->hashes[self->head], ALYS_HASH_LEN);
    if (state_root)
        alys_lattice_root(&self->view.lattice, state_root);
    return self->head;
}

void sim_storage_recompute_root(const sim_t *sim, alys_hash_t out)
{
    const sim_storage_t *self = sim_get_storage_c(sim);
    alys_lattice_t l;
    alys_memstate_lattice(self->ms, &l);
    alys_lattice_root(&l, out);
}

size_t sim_storage_checkpoints(const sim_t *sim, uint64_t *heights, alys_hash_t *hashes,
                               alys_hash_t *roots, size_t cap)
{
    const sim_storage_t *self = sim_get_storage_c(sim);
    size_t n = self->n_cp < cap ? self->n_cp : cap;
    for (size_t i = 0; i < n; i++) {
        heights[i] = self->cp_height[i];
        memcpy(hashes[i], self->cp_hash[i], ALYS_HASH_LEN);
        memcpy(roots[i], self->cp_root[i], ALYS_HASH_LEN);
    }
    return n;
}

uint64_t sim_storage_last_checkpoint(const sim_t *sim)
{
    const sim_storage_t *self = sim_get_storage_c(sim);
    return self->n_cp ? self->cp_height[self->n_cp - 1] : 0;
}
