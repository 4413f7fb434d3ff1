/*  sync_peers.c: the machine's view of the peers: their plausible heights,
 *  what they have in flight, their recent failures, and which one gets the
 *  next range.
 *
 *  PeerManager owns connections and scores; the machine keeps only what it
 *  needs to spread ranges: a fixed table of SYNC_MAX_PEERS entries.
 */
#include <stdint.h>
#include <string.h>

#include "sync_internal.h"

sync_peer_t *sync_peer_find(sync_machine_t *self, const char *id)
{
    for (size_t i = 0; i < SYNC_MAX_PEERS; i++)
        if (self->peers[i].used && strcmp(self->peers[i].id, id) == 0)
            return &self->peers[i];
    return NULL;
}

sync_peer_t *sync_peer_add(sync_machine_t *self, const char *id)
{
    for (size_t i = 0; i < SYNC_MAX_PEERS; i++) {
        sync_peer_t *p = &self->peers[i];
        if (p->used)
            continue;
        memset(p, 0, sizeof *p);
        p->used = true;
        sync_copy_id(p->id, id);
        p->served_cap = UINT64_MAX;
        p->rank = UINT32_MAX;
        p->in_flight = sync_window_peer_load(self, id); /* adopted before it was known */
        return p;
    }
    return NULL;
}

void sync_peer_remove(sync_machine_t *self, sync_peer_t *p)
{
    (void) self;
    memset(p, 0, sizeof *p);
}

/* The height we believe: its claim, unless it recently failed to serve what
 * it claimed (a peer that lies within the slot bound cannot hold the target
 * up for ever). The cap expires so an honest peer's blip is forgiven. */
uint64_t sync_peer_height(const sync_peer_t *p, uint64_t now_ms)
{
    if (p->served_cap != UINT64_MAX && now_ms < p->cap_until && p->served_cap < p->reported_height)
        return p->served_cap;
    return p->reported_height;
}

void sync_peer_cap_height(sync_peer_t *p, uint64_t proven, uint64_t now_ms)
{
    p->served_cap = proven;
    p->cap_until = now_ms + SYNC_HEIGHT_CAP_MS;
}

bool sync_peer_usable(const sync_peer_t *p)
{
    return p->used && !p->lying;
}

uint32_t sync_usable_peers(const sync_machine_t *self)
{
    uint32_t n = 0;
    for (size_t i = 0; i < SYNC_MAX_PEERS; i++)
        n += sync_peer_usable(&self->peers[i]);
    return n;
}

uint32_t sync_connected_peers(const sync_machine_t *self)
{
    uint32_t n = 0;
    for (size_t i = 0; i < SYNC_MAX_PEERS; i++)
        n += self->peers[i].used;
    return n;
}

uint64_t sync_best_peer_height(const sync_machine_t *self, uint64_t now_ms)
{
    uint64_t best = 0;
    for (size_t i = 0; i < SYNC_MAX_PEERS; i++) {
        const sync_peer_t *p = &self->peers[i];
        if (sync_peer_usable(p) && sync_peer_height(p, now_ms) > best)
            best = sync_peer_height(p, now_ms);
    }
    return best;
}

/* Max of the plausible peer heights, capped by StartSync's target. */
uint64_t sync_target(const sync_machine_t *self, uint64_t now_ms)
{
    uint64_t t = sync_best_peer_height(self, now_ms);
    if (self->has_target_cap && t > self->target_cap)
        t = self->target_cap;
    return t;
}

static bool avoided(const sync_peer_t *p, const sync_peer_id_t *avoid, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++)
        if (strcmp(avoid[i], p->id) == 0)
            return true;
    return false;
}

/* Is a better than b for the next range? Fewest ranges in flight first (so
 * ranges land on different peers), then PeerManager's order (its configured
 * selection strategy), then its score, then the least recently used. */
static bool better(const sync_peer_t *a, const sync_peer_t *b)
{
    if (a->in_flight != b->in_flight)
        return a->in_flight < b->in_flight;
    if (a->rank != b->rank)
        return a->rank < b->rank;
    double sa = a->has_score ? a->score : 0, sb = b->has_score ? b->score : 0;
    if (sa != sb)
        return sa > sb;
    return a->last_assigned < b->last_assigned;
}

/* A peer that has need_height, is not cooling down after a failure, and is
 * not in avoid (the peers this range already failed on) unless no other
 * peer can serve it. The cool-down sends retries elsewhere first; when the
 * failing peer is the only one with the height there is nowhere else, and
 * waiting only adds its length to every lost response: it is taken at once
 * (PeerManager's per-peer timeout already backs off). NULL when nobody can. */
sync_peer_t *sync_pick_peer(sync_machine_t *self, uint64_t now_ms, uint64_t need_height,
                            const sync_peer_id_t *avoid, uint32_t avoid_count)
{
    sync_peer_t *best = NULL, *fallback = NULL, *cooling = NULL;
    size_t can = 0; /* usable peers with the height, cooling or not */
    for (size_t i = 0; i < SYNC_MAX_PEERS; i++) {
        sync_peer_t *p = &self->peers[i];
        if (!sync_peer_usable(p) || sync_peer_height(p, now_ms) < need_height)
            continue;
        can++;
        if (now_ms < p->cooldown_until) {
            cooling = p;
            continue;
        }
        if (avoided(p, avoid, avoid_count)) {
            if (!fallback || better(p, fallback))
                fallback = p;
        } else if (!best || better(p, best)) {
            best = p;
        }
    }
    if (!best && !fallback && can == 1)
        return cooling;
    return best ? best : fallback;
}

/* Back off a failing peer for a while, doubling per consecutive failure, so
 * retries go elsewhere first without banning anyone (PeerManager bans). */
void sync_peer_failed(sync_machine_t *self, sync_peer_t *p, uint64_t now_ms)
{
    (void) self;
    if (p->consecutive_failures < 16)
        p->consecutive_failures++;
    uint64_t ms = (uint64_t) SYNC_COOLDOWN_BASE_MS << (p->consecutive_failures - 1);
    p->cooldown_until = now_ms + (ms > SYNC_COOLDOWN_MAX_MS ? SYNC_COOLDOWN_MAX_MS : ms);
}

void sync_peer_succeeded(sync_peer_t *p)
{
    p->consecutive_failures = 0;
    p->cooldown_until = 0;
}

/* xorshift64*: deterministic from the configured seed, for tests and bench. */
uint64_t sync_rand(sync_machine_t *self)
{
    uint64_t x = self->rng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    self->rng = x;
    return x * 0x2545f4914f6cdd1dull;
}
