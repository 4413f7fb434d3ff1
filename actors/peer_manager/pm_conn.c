/*  pm_conn.c: see pm_conn.h. */
#include "pm_conn.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nodeaddr.h"

struct pm_conns {
    pm_conn_t conns[PM_CONN_MAX];
    char our_listen[ALYS_ENDPOINT_MAX];
    char our_key[ALYS_WIRE_ID_MAX]; /* hex; "" = not set */
};

pm_conns_t *pm_conns_new(const char *our_listen)
{
    pm_conns_t *self = calloc(1, sizeof *self);
    if (self)
        snprintf(self->our_listen, sizeof self->our_listen, "%s", our_listen ? our_listen : "");
    return self;
}

void pm_conns_destroy(pm_conns_t **self_p)
{
    if (self_p && *self_p) {
        free(*self_p);
        *self_p = NULL;
    }
}

void pm_conns_set_key(pm_conns_t *self, const char *key_hex)
{
    snprintf(self->our_key, sizeof self->our_key, "%s", key_hex ? key_hex : "");
}

bool pm_conns_is_ours(const pm_conns_t *self, const char *endpoint)
{
    char key[ALYS_WIRE_ID_MAX];
    if (self->our_key[0] && alys_nodeaddr_key_hex(endpoint, key, sizeof key) == 0 &&
        strcmp(key, self->our_key) == 0)
        return true;
    return self->our_listen[0] && endpoint && strcmp(self->our_listen, endpoint) == 0;
}

pm_conn_t *pm_conns_at(pm_conns_t *self, size_t slot)
{
    return slot < PM_CONN_MAX ? &self->conns[slot] : NULL;
}

int pm_conns_by_endpoint(const pm_conns_t *self, const char *endpoint)
{
    char canon[ALYS_ENDPOINT_MAX];
    if (!endpoint || alys_nodeaddr_canonical(endpoint, canon, sizeof canon) != 0)
        return -1;
    for (int i = 0; i < PM_CONN_MAX; i++)
        if (self->conns[i].state != PM_CONN_FREE && strcmp(self->conns[i].endpoint, canon) == 0)
            return i;
    return -1;
}

/* A key may be known at two endpoints (one node, two addresses): the ready
 * one answers for it. */
int pm_conns_by_peer(const pm_conns_t *self, const char *peer_id)
{
    int found = -1;
    for (int i = 0; peer_id && *peer_id && i < PM_CONN_MAX; i++) {
        const pm_conn_t *c = &self->conns[i];
        if (c->state == PM_CONN_FREE || strcmp(c->peer_id, peer_id) != 0)
            continue;
        if (c->state == PM_CONN_READY)
            return i;
        if (found < 0)
            found = i;
    }
    return found;
}

int pm_conns_learn(pm_conns_t *self, const char *endpoint)
{
    char canon[ALYS_ENDPOINT_MAX], key[ALYS_WIRE_ID_MAX];
    if (!endpoint || alys_nodeaddr_canonical(endpoint, canon, sizeof canon) != 0 ||
        alys_nodeaddr_key_hex(canon, key, sizeof key) != 0 || pm_conns_is_ours(self, canon))
        return -1;
    int slot = pm_conns_by_endpoint(self, canon);
    if (slot >= 0)
        return slot;
    for (int i = 0; i < PM_CONN_MAX; i++) {
        pm_conn_t *c = &self->conns[i];
        if (c->state == PM_CONN_FREE) {
            *c = (pm_conn_t){.state = PM_CONN_IDLE};
            snprintf(c->endpoint, sizeof c->endpoint, "%s", canon);
            /* The peer is its key, from the moment we know of it: the
             * handshake can only confirm it (CURVE) or contradict it. */
            snprintf(c->peer_id, sizeof c->peer_id, "%s", key);
            return i;
        }
    }
    return -1;
}

/* Kept only for a listing or a late retry: may be recycled. rank: the
 * order to recycle in (self and refused before closed, which a recovered
 * score would re-dial), 0 = not recyclable. */
static int recycle_rank(const pm_conn_t *c)
{
    switch (c->state) {
    case PM_CONN_SELF:
    case PM_CONN_REFUSED: return 2;
    case PM_CONN_CLOSED: return 1;
    default: return 0;
    }
}

int pm_conns_open(pm_conns_t *self, const char *endpoint, char *recycled, size_t len, bool *was_closed)
{
    recycled[0] = '\0';
    *was_closed = false;
    int slot = pm_conns_learn(self, endpoint);
    if (slot >= 0 || !alys_nodeaddr_valid(endpoint) || pm_conns_is_ours(self, endpoint))
        return slot;
    int best = -1;
    for (int i = 0; i < PM_CONN_MAX; i++)
        if (recycle_rank(&self->conns[i]) > (best < 0 ? 0 : recycle_rank(&self->conns[best])))
            best = i;
    if (best < 0)
        return -1;
    pm_conn_t *c = &self->conns[best];
    snprintf(recycled, len, "%s", c->endpoint);
    *was_closed = c->state == PM_CONN_CLOSED;
    pm_conns_release(self, (size_t) best);
    return pm_conns_learn(self, endpoint);
}

void pm_conns_release(pm_conns_t *self, size_t slot)
{
    if (slot < PM_CONN_MAX)
        self->conns[slot] = (pm_conn_t){.state = PM_CONN_FREE};
}

size_t pm_conns_active(const pm_conns_t *self)
{
    size_t n = 0;
    for (size_t i = 0; i < PM_CONN_MAX; i++) {
        pm_conn_state_t s = self->conns[i].state;
        n += s == PM_CONN_IDLE || s == PM_CONN_DIALING || s == PM_CONN_READY || s == PM_CONN_DOWN;
    }
    return n;
}

size_t pm_conns_ready(const pm_conns_t *self)
{
    size_t n = 0;
    for (size_t i = 0; i < PM_CONN_MAX; i++)
        n += self->conns[i].state == PM_CONN_READY;
    return n;
}

int pm_conns_usable(const pm_conns_t *self, peer_table_t *table, const char *peer_id,
                    uint64_t wall_ms, const char **why)
{
    int slot = pm_conns_by_peer(self, peer_id);
    const pm_conn_t *c = slot >= 0 ? &self->conns[slot] : NULL;
    if (!c || c->state != PM_CONN_READY) {
        *why = c ? "peer not connected" : "unknown peer";
        return -1;
    }
    if (peer_table_is_banned(table, peer_id, c->endpoint, wall_ms)) {
        *why = "peer banned";
        return -1;
    }
    return slot;
}

int pm_conns_duplicate(const pm_conns_t *self, size_t slot)
{
    const pm_conn_t *c = &self->conns[slot];
    for (int i = 0; c->peer_id[0] && i < PM_CONN_MAX; i++)
        if ((size_t) i != slot && self->conns[i].state == PM_CONN_READY &&
            strcmp(self->conns[i].peer_id, c->peer_id) == 0)
            return i;
    return -1;
}

/* ---- the state machine ---------------------------------------------------- */

const char *pm_conn_state_name(pm_conn_state_t s)
{
    static const char *const names[] = {"free", "idle",   "dialing", "ready",
                                        "down", "closed", "refused", "self"};
    return (size_t) s < sizeof names / sizeof names[0] ? names[s] : "?";
}

int64_t pm_conn_backoff(uint32_t failures)
{
    int64_t ms = 100;
    for (uint32_t i = 1; i < failures && ms < PM_CONN_BACKOFF_MAX_MS; i++)
        ms *= 2;
    return ms < PM_CONN_BACKOFF_MAX_MS ? ms : PM_CONN_BACKOFF_MAX_MS;
}

static bool live(const pm_conn_t *c)
{
    return c->state == PM_CONN_DIALING || c->state == PM_CONN_READY || c->state == PM_CONN_DOWN;
}

bool pm_conn_may_dial(const pm_conn_t *c, peer_table_t *table, int64_t now, uint64_t wall_ms)
{
    if (c->state != PM_CONN_IDLE && c->state != PM_CONN_CLOSED && c->state != PM_CONN_REFUSED)
        return false;
    if (now < c->next_probe)
        return false;
    if (c->state == PM_CONN_REFUSED && now - c->refused_at < PM_CONN_REFUSED_RETRY_MS)
        return false;
    const char *id = c->peer_id[0] ? c->peer_id : NULL;
    if (peer_table_is_banned(table, id, c->endpoint, wall_ms))
        return false;
    if (c->state == PM_CONN_CLOSED && id && peer_table_contains(table, id))
        return peer_table_may_connect(table, id, wall_ms);
    return true;
}

/* Leave the live states for next: the shell ends its requests. */
static pm_conn_fx_t lose(pm_conn_t *c, pm_conn_state_t next, bool link_lost, const char *why)
{
    pm_conn_fx_t fx = {.todo = PM_DO_LOST,
                       .was_ready = c->state == PM_CONN_READY,
                       .link_lost = link_lost,
                       .why = why};
    c->state = next;
    c->probe_id = 0;
    snprintf(c->reason, sizeof c->reason, "%s", why);
    return fx;
}

/* A probe got no answer (timeout, error): a ready peer pays for a swallowed
 * one as for a swallowed request (charge), and is down after
 * PM_CONN_DOWN_AFTER in a row; others are probed again after a backoff. */
static pm_conn_fx_t probe_failed(pm_conn_t *c, int64_t now, bool charge, const char *why)
{
    pm_conn_fx_t fx = {.why = why};
    c->probe_id = 0;
    c->failures++;
    if (c->state == PM_CONN_READY) {
        if (charge)
            fx.todo |= PM_DO_CHARGE;
        if (c->failures >= PM_CONN_DOWN_AFTER) {
            pm_conn_fx_t lost = lose(c, PM_CONN_DOWN, charge, why);
            fx.todo |= lost.todo;
            fx.was_ready = lost.was_ready;
            fx.link_lost = lost.link_lost;
        }
    } else if ((c->state == PM_CONN_DIALING && c->failures >= PM_CONN_DIAL_TRIES) ||
               (c->state == PM_CONN_DOWN && c->failures >= PM_CONN_DOWN_TRIES)) {
        fx.todo |= PM_DO_GIVE_UP; /* the address book decides when to come back */
    }
    c->next_probe = now + (c->state == PM_CONN_READY ? PM_CONN_PROBE_EVERY_MS
                                                     : pm_conn_backoff(c->failures));
    return fx;
}

pm_conn_fx_t pm_conn_tick(pm_conn_t *c, int64_t now, bool may_dial)
{
    pm_conn_fx_t fx = {0};
    if (c->state == PM_CONN_IDLE || c->state == PM_CONN_CLOSED || c->state == PM_CONN_REFUSED) {
        if (!may_dial)
            return fx;
        fx.todo = (c->plugged ? 0u : (unsigned) PM_DO_PLUG) | PM_DO_PROBE;
        fx.dialing = true;
        c->state = PM_CONN_DIALING;
        c->failures = 0;
        c->probe_id = 0;
        return fx;
    }
    if (!live(c))
        return fx;
    if (c->probe_id && now - c->probe_sent >= PM_CONN_PROBE_TIMEOUT_MS)
        fx = probe_failed(c, now, true, "status probe unanswered");
    /* Not plugged while live: making the socket failed; try again. */
    if (!c->probe_id && now >= c->next_probe)
        fx.todo |= PM_DO_PROBE | (c->plugged ? 0u : (unsigned) PM_DO_PLUG);
    if (c->state == PM_CONN_READY && now >= c->next_peers) {
        c->next_peers = now + PM_CONN_PEERS_EVERY_MS;
        fx.todo |= PM_DO_GET_PEERS;
    }
    return fx;
}

void pm_conn_response_due(pm_conn_t *c, int64_t now)
{
    if (c->probe_id && c->state == PM_CONN_READY)
        c->probe_sent = now;
}

void pm_conn_plugged(pm_conn_t *c)
{
    c->plugged = true;
}

void pm_conn_probe_sent(pm_conn_t *c, uint64_t probe_id, int64_t now)
{
    c->probe_id = probe_id;
    c->probe_sent = now;
}

pm_conn_fx_t pm_conn_link_down(pm_conn_t *c, int64_t now)
{
    if (c->state == PM_CONN_READY) {
        pm_conn_fx_t fx = lose(c, PM_CONN_DOWN, true, "connection lost");
        fx.todo |= PM_DO_CHARGE;
        c->failures = 1;
        c->next_probe = now + pm_conn_backoff(c->failures);
        return fx;
    }
    /* Not ready: an outstanding probe went with the link. */
    if (live(c) && c->probe_id)
        return probe_failed(c, now, false, "connection lost");
    return (pm_conn_fx_t){0};
}

pm_conn_fx_t pm_conn_send_failed(pm_conn_t *c, int64_t now)
{
    if (c->state == PM_CONN_READY)
        return pm_conn_link_down(c, now); /* nothing connected under a ready peer */
    if (!live(c))
        return (pm_conn_fx_t){0};
    c->probe_sent = now;
    return probe_failed(c, now, false, "nobody there");
}

void pm_conn_link_up(pm_conn_t *c, int64_t now)
{
    if ((c->state == PM_CONN_DIALING || c->state == PM_CONN_DOWN) && !c->probe_id)
        c->next_probe = now; /* it is back: ask at once */
}

bool pm_conn_is_probe(const pm_conn_t *c, uint64_t request_id)
{
    return live(c) && c->probe_id != 0 && request_id == c->probe_id;
}

bool pm_conn_ready(pm_conn_t *c, int64_t now)
{
    bool newly = c->state != PM_CONN_READY;
    c->state = PM_CONN_READY;
    c->probe_id = 0;
    c->failures = 0;
    c->next_probe = now + PM_CONN_PROBE_EVERY_MS;
    c->reason[0] = '\0';
    if (newly)
        c->next_peers = now;
    return newly;
}

pm_conn_fx_t pm_conn_probe_error(pm_conn_t *c, int64_t now)
{
    /* It answered: busy or rate limited, not silent. No charge. */
    return probe_failed(c, now, false, "status probe refused");
}

static pm_conn_fx_t end(pm_conn_t *c, pm_conn_state_t next, const char *why)
{
    unsigned unplug = c->plugged ? (unsigned) PM_DO_UNPLUG : 0u;
    c->plugged = false;
    pm_conn_fx_t fx = lose(c, next, false, why);
    fx.todo |= unplug;
    return fx;
}

pm_conn_fx_t pm_conn_close(pm_conn_t *c, const char *why)
{
    if (c->state == PM_CONN_CLOSED || c->state == PM_CONN_REFUSED || c->state == PM_CONN_FREE)
        return (pm_conn_fx_t){0};
    return end(c, PM_CONN_CLOSED, why);
}

pm_conn_fx_t pm_conn_refuse(pm_conn_t *c, int64_t now, const char *why)
{
    pm_conn_fx_t fx = end(c, PM_CONN_REFUSED, why);
    c->refused_at = now;
    return fx;
}

pm_conn_fx_t pm_conn_self(pm_conn_t *c)
{
    pm_conn_fx_t fx = end(c, PM_CONN_SELF, "this node");
    fx.todo &= ~(unsigned) PM_DO_LOST; /* never a peer: nothing to end */
    return fx;
}
