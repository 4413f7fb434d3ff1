/*  pm_inbound.c: see pm_inbound.h. */
#include "pm_inbound.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void pm_inbound_group(const char *addr, char *out, size_t outlen)
{
    unsigned a, b, c, d;
    char tail;
    if (sscanf(addr, "%u.%u.%u.%u%c", &a, &b, &c, &d, &tail) == 4 && a < 256 && b < 256) {
        snprintf(out, outlen, "%u.%u", a, b);
        return;
    }
    if (strchr(addr, ':')) {
        /* IPv6: the first two groups (32 bits). "::..." keeps its prefix. */
        const char *colon = strchr(addr, ':');
        const char *second = colon ? strchr(colon + 1, ':') : NULL;
        size_t len = second ? (size_t) (second - addr) : strlen(addr);
        snprintf(out, outlen, "%.*s", (int) len, addr);
        return;
    }
    snprintf(out, outlen, "%s", addr);
}

bool pm_inbound_live(const pm_inbound_t *in, int64_t last_seen, int64_t now)
{
    return in->state == PM_INBOUND_ADMITTED && now - last_seen < PM_INBOUND_IDLE_MS;
}

bool pm_inbound_ignored(pm_inbound_t *in, int64_t now)
{
    if (in->state == PM_INBOUND_NEW || in->state == PM_INBOUND_ADMITTED)
        return false;
    if (now - in->decided_at < PM_INBOUND_REFUSED_MS)
        return true;
    in->state = PM_INBOUND_NEW;
    return false;
}

pm_inbound_state_t pm_inbound_admit(const pm_inbound_cfg_t *cfg, size_t live, size_t from_addr)
{
    if (from_addr >= cfg->per_address)
        return PM_INBOUND_TOO_MANY_FROM_ADDRESS;
    return live >= cfg->max_peers ? PM_INBOUND_FULL : PM_INBOUND_ADMITTED;
}

void pm_inbound_set(pm_inbound_t *in, pm_inbound_state_t state, pm_inbound_totals_t *t, int64_t now)
{
    if (state == PM_INBOUND_ADMITTED && in->state != PM_INBOUND_ADMITTED)
        in->connected_at = now;
    if (state == PM_INBOUND_EVICTED)
        t->evicted++;
    else if (state == PM_INBOUND_FULL || state == PM_INBOUND_TOO_MANY_FROM_ADDRESS)
        t->refused++;
    in->state = state;
    in->decided_at = now;
}

/* ---- budgets ----------------------------------------------------------------- */

static uint64_t minus(uint64_t a, uint64_t b)
{
    return a > b ? a - b : 0;
}

bool pm_inbound_may_send(const pm_inbound_cfg_t *cfg, const pm_inbound_t *in,
                         const pm_inbound_totals_t *t, uint64_t bytes, bool range)
{
    if (range)
        return in->owed + in->reserved + bytes <= cfg->client_bytes &&
               t->owed + t->reserved + bytes <= cfg->total_bytes;
    /* Other answers (errors, Status, Peers) are small: they may use what
     * reads have reserved and an eighth more than the total, so that a
     * BUSY or a newcomer's Status gets through while clients that do not
     * read hold the whole budget. */
    return in->owed + bytes <= cfg->client_bytes &&
           t->owed + bytes <= cfg->total_bytes + cfg->total_bytes / 8;
}

uint64_t pm_inbound_reserve(uint32_t count, uint64_t item_max, uint64_t frame_max)
{
    if (item_max == 0)
        return frame_max;
    /* Per item: its bytes and a few of framing. */
    uint64_t r = (uint64_t) count * (item_max + 8) + 1024;
    return r < frame_max ? r : frame_max;
}

bool pm_inbound_may_request(const pm_inbound_cfg_t *cfg, const pm_inbound_t *in,
                            const pm_inbound_totals_t *t, uint64_t reserve)
{
    return in->in_flight + in->owed_ranges < cfg->max_requests &&
           in->owed + in->reserved + reserve <= cfg->client_bytes &&
           t->owed + t->reserved + reserve <= cfg->total_bytes;
}

void pm_inbound_read_start(pm_inbound_t *in, pm_inbound_totals_t *t, uint64_t reserve)
{
    in->in_flight++;
    in->reserved += reserve;
    t->reserved += reserve;
}

void pm_inbound_read_end(pm_inbound_t *in, pm_inbound_totals_t *t, uint64_t reserve)
{
    t->reserved = minus(t->reserved, reserve);
    if (!in)
        return;
    if (in->in_flight)
        in->in_flight--;
    in->reserved = minus(in->reserved, reserve);
}

void pm_inbound_charge(pm_inbound_t *in, pm_inbound_totals_t *t, uint64_t bytes, bool range,
                       int64_t now)
{
    if (in->owed == 0)
        in->progress_at = now;
    in->owed += bytes;
    t->owed += bytes;
    if (range)
        in->owed_ranges++;
}

void pm_inbound_credit(pm_inbound_t *in, pm_inbound_totals_t *t, uint64_t bytes, bool range,
                       int64_t now)
{
    t->owed = minus(t->owed, bytes);
    if (!in)
        return;
    in->progress_at = now;
    in->owed = minus(in->owed, bytes);
    if (range && in->owed_ranges)
        in->owed_ranges--;
}

bool pm_inbound_total_spent(const pm_inbound_cfg_t *cfg, const pm_inbound_totals_t *t, uint64_t reserve)
{
    return t->owed + t->reserved + reserve > cfg->total_bytes;
}

bool pm_inbound_stalled(const pm_inbound_t *in, int64_t now)
{
    return in->owed > 0 && now - in->progress_at >= PM_INBOUND_STALL_MS;
}

/* ---- eviction ---------------------------------------------------------------- */

/* Move the protected candidate at i to the end; the unprotected stay at
 * cands[0..*n). */
static void protect(pm_inbound_cand_t *cands, size_t *n, size_t i)
{
    pm_inbound_cand_t keep = cands[i];
    cands[i] = cands[*n - 1];
    cands[*n - 1] = keep;
    (*n)--;
}

static size_t group_size(const pm_inbound_cand_t *cands, size_t n, const char *group)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        k += strcmp(cands[i].group, group) == 0;
    return k;
}

/* 1. the longest-connected member of each of the smallest groups. */
static void protect_groups(pm_inbound_cand_t *cands, size_t *n)
{
    for (int round = 0; round<PM_INBOUND_PROTECT && * n> 0; round++) {
        long best = -1;
        size_t best_size = 0;
        for (size_t i = 0; i < *n; i++) {
            size_t size = group_size(cands, *n, cands[i].group);
            if (best < 0 || size < best_size ||
                (size == best_size && cands[i].connected_at < cands[best].connected_at)) {
                best = (long) i;
                best_size = size;
            }
        }
        protect(cands, n, (size_t) best);
    }
}

static int by_score_desc(const void *a, const void *b)
{
    double x = ((const pm_inbound_cand_t *) a)->score, y = ((const pm_inbound_cand_t *) b)->score;
    return (x < y) - (x > y);
}

static int by_block_desc(const void *a, const void *b)
{
    int64_t x = ((const pm_inbound_cand_t *) a)->last_block_at;
    int64_t y = ((const pm_inbound_cand_t *) b)->last_block_at;
    return (x < y) - (x > y);
}

static int by_age_desc(const void *a, const void *b)
{
    /* Oldest connection first. */
    int64_t x = ((const pm_inbound_cand_t *) a)->connected_at;
    int64_t y = ((const pm_inbound_cand_t *) b)->connected_at;
    return (x > y) - (x < y);
}

/* Sort by cmp and protect up to k from the front that pass (score > 0,
 * block pushed): the protected go to the end. */
static void protect_best(pm_inbound_cand_t *cands, size_t *n, size_t k,
                         int (*cmp)(const void *, const void *), bool by_score)
{
    qsort(cands, *n, sizeof *cands, cmp);
    size_t taken = 0;
    while (taken<k && * n> 0) {
        const pm_inbound_cand_t *c = &cands[0];
        if (by_score ? c->score <= 0 : c->last_block_at <= 0)
            break;
        /* The front is protected: swap it to the end, then re-sort the rest. */
        protect(cands, n, 0);
        qsort(cands, *n, sizeof *cands, cmp);
        taken++;
    }
}

long pm_inbound_pick_victim(pm_inbound_cand_t *cands, size_t n)
{
    if (n > PM_INBOUND_MAX_CANDS)
        n = PM_INBOUND_MAX_CANDS;
    protect_groups(cands, &n);
    protect_best(cands, &n, PM_INBOUND_PROTECT, by_score_desc, true);
    protect_best(cands, &n, PM_INBOUND_PROTECT, by_block_desc, false);
    /* 4. the longer-connected half. */
    qsort(cands, n, sizeof *cands, by_age_desc);
    size_t keep = n / 2;
    pm_inbound_cand_t *rest = cands + keep;
    size_t m = n - keep;
    if (m == 0)
        return -1;
    /* The largest group (ties: the one with the youngest member) loses its
     * youngest member. */
    long victim = -1;
    size_t victim_group = 0;
    for (size_t i = 0; i < m; i++) {
        size_t size = group_size(rest, m, rest[i].group);
        if (victim < 0 || size > victim_group ||
            (size == victim_group && rest[i].connected_at > rest[victim].connected_at)) {
            victim = (long) i;
            victim_group = size;
        }
    }
    return victim + (long) keep;
}
