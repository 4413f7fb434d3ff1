/*  memstate.c: open addressing with linear probing and backward-shift
 *  deletion (no tombstones, so lookups stay short however many accounts are
 *  removed). Load factor kept under 1/2.
 */
#include "memstate.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define INITIAL_SLOTS 1024

typedef struct {
    uint8_t pubkey[ALYS_PUBKEY_LEN];
    alys_account_t acct;
    bool used;
} slot_t;

struct alys_memstate {
    slot_t *slots;
    size_t cap; /* power of two */
    size_t count;
};

/* Public keys are x-coordinates of random points: their bytes are uniform,
 * so the first 8 make a good hash without mixing. */
static size_t home_of(const uint8_t pubkey[ALYS_PUBKEY_LEN], size_t cap)
{
    uint64_t h;
    memcpy(&h, pubkey, sizeof h);
    return (size_t) (h & (cap - 1));
}

static bool is_zero(const alys_account_t *a)
{
    return a->balance == 0 && a->nonce == 0;
}

alys_memstate_t *alys_memstate_new(void)
{
    alys_memstate_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->cap = INITIAL_SLOTS;
    self->slots = calloc(self->cap, sizeof *self->slots);
    if (!self->slots) {
        free(self);
        return NULL;
    }
    return self;
}

void alys_memstate_destroy(alys_memstate_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    free((*self_p)->slots);
    free(*self_p);
    *self_p = NULL;
}

/* Index of pubkey's slot, or of the empty slot where it would go. */
static size_t find(const alys_memstate_t *self, const uint8_t pubkey[ALYS_PUBKEY_LEN])
{
    size_t i = home_of(pubkey, self->cap);
    while (self->slots[i].used && memcmp(self->slots[i].pubkey, pubkey, ALYS_PUBKEY_LEN) != 0)
        i = (i + 1) & (self->cap - 1);
    return i;
}

static int grow(alys_memstate_t *self)
{
    size_t old_cap = self->cap;
    slot_t *old = self->slots;
    slot_t *fresh = calloc(old_cap * 2, sizeof *fresh);
    if (!fresh)
        return -1;
    self->slots = fresh;
    self->cap = old_cap * 2;
    for (size_t i = 0; i < old_cap; i++)
        if (old[i].used)
            self->slots[find(self, old[i].pubkey)] = old[i];
    free(old);
    return 0;
}

/* Backward-shift deletion: pull later members of the probe run into the
 * hole so that find() never stops early at it. */
static void remove_at(alys_memstate_t *self, size_t hole)
{
    size_t mask = self->cap - 1;
    size_t j = hole;
    for (;;) {
        j = (j + 1) & mask;
        if (!self->slots[j].used)
            break;
        size_t home = home_of(self->slots[j].pubkey, self->cap);
        /* j may move into the hole only if its home is not in (hole, j]. */
        bool home_between = hole <= j ? (home > hole && home <= j) : (home > hole || home <= j);
        if (!home_between) {
            self->slots[hole] = self->slots[j];
            hole = j;
        }
    }
    self->slots[hole].used = false;
    self->count--;
}

int alys_memstate_put(alys_memstate_t *self, const uint8_t pubkey[ALYS_PUBKEY_LEN],
                      const alys_account_t *a)
{
    size_t i = find(self, pubkey);
    if (self->slots[i].used) {
        if (is_zero(a))
            remove_at(self, i);
        else
            self->slots[i].acct = *a;
        return 0;
    }
    if (is_zero(a))
        return 0;
    if ((self->count + 1) * 2 > self->cap) {
        if (grow(self) != 0)
            return -1;
        i = find(self, pubkey);
    }
    memcpy(self->slots[i].pubkey, pubkey, ALYS_PUBKEY_LEN);
    self->slots[i].acct = *a;
    self->slots[i].used = true;
    self->count++;
    return 0;
}

int alys_memstate_get(const alys_memstate_t *self, const uint8_t pubkey[ALYS_PUBKEY_LEN],
                      alys_account_t *out)
{
    size_t i = find(self, pubkey);
    if (!self->slots[i].used) {
        out->balance = 0;
        out->nonce = 0;
        return 0;
    }
    *out = self->slots[i].acct;
    return 1;
}

size_t alys_memstate_size(const alys_memstate_t *self)
{
    return self->count;
}

int alys_memstate_read(void *ctx, const uint8_t pubkey[ALYS_PUBKEY_LEN], alys_account_t *out)
{
    return alys_memstate_get(ctx, pubkey, out);
}

int alys_memstate_load_genesis(alys_memstate_t *self, const alys_genesis_t *g)
{
    for (uint32_t i = 0; i < g->balance_count; i++) {
        alys_account_t a;
        alys_memstate_get(self, g->balances[i].pubkey, &a);
        if (a.balance > UINT64_MAX - g->balances[i].balance)
            return -1;
        a.balance += g->balances[i].balance;
        if (alys_memstate_put(self, g->balances[i].pubkey, &a) != 0)
            return -1;
    }
    return 0;
}

static int commit_one(void *ctx, const uint8_t pubkey[ALYS_PUBKEY_LEN], const alys_account_t *now,
                      const alys_account_t *before)
{
    (void) before;
    return alys_memstate_put(ctx, pubkey, now);
}

int alys_memstate_commit_overlay(alys_memstate_t *self, alys_overlay_t *ov)
{
    if (alys_overlay_foreach(ov, commit_one, self) != 0)
        return -1;
    alys_overlay_reset(ov);
    return 0;
}

int alys_memstate_foreach(const alys_memstate_t *self, alys_memstate_visit_fn fn, void *ctx)
{
    for (size_t i = 0; i < self->cap; i++) {
        if (!self->slots[i].used)
            continue;
        int rc = fn(ctx, self->slots[i].pubkey, &self->slots[i].acct);
        if (rc != 0)
            return rc;
    }
    return 0;
}

static int add_to_lattice(void *ctx, const uint8_t pubkey[ALYS_PUBKEY_LEN], const alys_account_t *a)
{
    alys_lattice_add_account(ctx, pubkey, a);
    return 0;
}

void alys_memstate_lattice(const alys_memstate_t *self, alys_lattice_t *out)
{
    alys_lattice_zero(out);
    (void) alys_memstate_foreach(self, add_to_lattice, out);
}

void alys_memstate_view_init(alys_memstate_t *self, const alys_genesis_t *g, alys_overlay_t *ov,
                             alys_state_view_t *view)
{
    memset(view, 0, sizeof *view);
    view->genesis = g;
    view->read = alys_memstate_read;
    view->read_ctx = self;
    view->overlay = ov;
    alys_memstate_lattice(self, &view->lattice);
}
