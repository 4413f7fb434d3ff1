/*  pm_cost.c: see pm_cost.h. */
#include "pm_cost.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "peer.pb-c.h"

static pm_cost_t charged(peer_outcome_kind_t kind, int report)
{
    return (pm_cost_t){.charge = true, .kind = kind, .report = report};
}

static pm_cost_t free_of_charge(int report)
{
    return (pm_cost_t){.charge = false, .kind = PEER_OUTCOME_OK, .report = report};
}

static pm_cost_t error_cost(Alys__Wire__WireError__Code code)
{
    switch (code) {
    case ALYS__WIRE__WIRE_ERROR__CODE__RATE_LIMITED:
    case ALYS__WIRE__WIRE_ERROR__CODE__BUSY:
    case ALYS__WIRE__WIRE_ERROR__CODE__BAD_REQUEST:
        return free_of_charge(ALYS__PEER__OUTCOME__BUSY);
    case ALYS__WIRE__WIRE_ERROR__CODE__UNAVAILABLE:
        return charged(PEER_OUTCOME_TIMEOUT, ALYS__PEER__OUTCOME__TIMEOUT);
    default: return charged(PEER_OUTCOME_SHORT, ALYS__PEER__OUTCOME__SHORT);
    }
}

pm_cost_t pm_cost_of(pm_end_t end, Alys__Wire__WireError__Code code)
{
    switch (end) {
    case PM_END_DEADLINE:
    case PM_END_LINK_LOST: return charged(PEER_OUTCOME_TIMEOUT, ALYS__PEER__OUTCOME__TIMEOUT);
    case PM_END_WRONG_KIND:
        return charged(PEER_OUTCOME_VIOLATION, ALYS__PEER__OUTCOME__VIOLATION);
    case PM_END_ERROR: return error_cost(code);
    case PM_END_SEND_FAILED: /* the link's charge covers it */
    case PM_END_CLOSED:
    case PM_END_NOT_READY:
    default: return free_of_charge(ALYS__PEER__OUTCOME__NO_PEER);
    }
}

/* ---- misbehaviour --------------------------------------------------------- */

/* The table of pm_cost.h, in the same order as pm_bad_t. */
static const struct {
    const char *name;
    double base;
    double per_mib;
} k_bad[PM_BAD_COUNT] = {
    [PM_BAD_UNDECODABLE] = {"undecodable", 20.0, 0.0},
    [PM_BAD_OVERSIZE] = {"oversize", 20.0, 5.0},
    [PM_BAD_UNSOLICITED] = {"unsolicited", 5.0, 5.0},
    [PM_BAD_WRONG_WAY] = {"wrong_way", 10.0, 5.0},
    [PM_BAD_SHAPE] = {"shape", 10.0, 5.0},
    [PM_BAD_OVER_RATE] = {"over_rate", 0.5, 0.0},
    [PM_BAD_OVER_BYTES] = {"over_bytes", 2.0, 5.0},
};

double pm_bad_cost(pm_bad_t what, size_t bytes)
{
    if ((unsigned) what >= PM_BAD_COUNT)
        return 0.0;
    return k_bad[what].base + k_bad[what].per_mib * (double) bytes / (1024.0 * 1024.0);
}

const char *pm_bad_name(pm_bad_t what)
{
    return (unsigned) what < PM_BAD_COUNT ? k_bad[what].name : "unknown";
}

typedef struct {
    bool used;
    uint8_t who[PM_LEDGER_WHO_MAX];
    size_t len;
    double score; /* <= 0 */
    int64_t as_of;
} entry_t;

struct pm_ledger {
    entry_t *entries;
    size_t capacity;
    double ban_score;
    uint64_t half_life_ms;
};

pm_ledger_t *pm_ledger_new(size_t capacity, double ban_score, uint64_t half_life_ms)
{
    if (capacity == 0)
        return NULL;
    pm_ledger_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->entries = calloc(capacity, sizeof *self->entries);
    if (!self->entries) {
        free(self);
        return NULL;
    }
    self->capacity = capacity;
    self->ban_score = ban_score;
    self->half_life_ms = half_life_ms;
    return self;
}

void pm_ledger_destroy(pm_ledger_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    free((*self_p)->entries);
    free(*self_p);
    *self_p = NULL;
}

static void decay(const pm_ledger_t *self, entry_t *e, int64_t now)
{
    if (now > e->as_of && self->half_life_ms > 0)
        e->score *= exp2(-(double) (now - e->as_of) / (double) self->half_life_ms);
    if (now > e->as_of || self->half_life_ms == 0)
        e->as_of = now; /* a clock stepping back decays nothing */
}

static entry_t *find(pm_ledger_t *self, const void *who, size_t len)
{
    for (size_t i = 0; i < self->capacity; i++) {
        entry_t *e = &self->entries[i];
        if (e->used && e->len == len && memcmp(e->who, who, len) == 0)
            return e;
    }
    return NULL;
}

/* A free entry, else the one closest to 0 now. */
static entry_t *claim(pm_ledger_t *self, const void *who, size_t len, int64_t now)
{
    entry_t *victim = NULL;
    for (size_t i = 0; i < self->capacity; i++) {
        entry_t *e = &self->entries[i];
        if (!e->used) {
            victim = e;
            break;
        }
        decay(self, e, now);
        if (!victim || e->score > victim->score)
            victim = e;
    }
    *victim = (entry_t){.used = true, .len = len, .as_of = now};
    memcpy(victim->who, who, len);
    return victim;
}

static bool who_ok(const void *who, size_t len)
{
    return who && len > 0 && len <= PM_LEDGER_WHO_MAX;
}

bool pm_ledger_charge(pm_ledger_t *self, const void *who, size_t len, double points, int64_t now,
                      double *score)
{
    if (score)
        *score = 0.0;
    if (!who_ok(who, len) || !(points > 0.0))
        return false;
    entry_t *e = find(self, who, len);
    if (!e)
        e = claim(self, who, len, now);
    decay(self, e, now);
    e->score -= points;
    if (score)
        *score = e->score;
    if (e->score > self->ban_score)
        return false;
    e->score = 0.0; /* banned: the ban list holds it from here */
    return true;
}

double pm_ledger_score(pm_ledger_t *self, const void *who, size_t len, int64_t now)
{
    entry_t *e = who_ok(who, len) ? find(self, who, len) : NULL;
    if (!e)
        return 0.0;
    decay(self, e, now);
    return e->score;
}

size_t pm_ledger_size(const pm_ledger_t *self)
{
    size_t n = 0;
    for (size_t i = 0; i < self->capacity; i++)
        n += self->entries[i].used;
    return n;
}
