/*  pm_admit.c: see pm_admit.h. */
#include "pm_admit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nodeaddr.h"

struct pm_clients {
    pm_client_t *clients;
    size_t capacity;
};

pm_clients_t *pm_clients_new(size_t capacity)
{
    pm_clients_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->clients = capacity ? calloc(capacity, sizeof *self->clients) : NULL;
    if (!self->clients) {
        free(self);
        return NULL;
    }
    self->capacity = capacity;
    return self;
}

void pm_clients_destroy(pm_clients_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    free((*self_p)->clients);
    free(*self_p);
    *self_p = NULL;
}

pm_client_t *pm_clients_at(pm_clients_t *self, size_t i)
{
    return i < self->capacity ? &self->clients[i] : NULL;
}

pm_client_t *pm_clients_get(pm_clients_t *self, const uint8_t *id, size_t id_len, int64_t now)
{
    if (id_len == 0 || id_len > PM_CLIENT_ID_MAX)
        return NULL;
    pm_client_t *victim = NULL;
    for (size_t i = 0; i < self->capacity; i++) {
        pm_client_t *c = &self->clients[i];
        if (c->used && c->id_len == id_len && memcmp(c->id, id, id_len) == 0) {
            c->prev_seen = c->last_seen;
            c->last_seen = now;
            return c;
        }
        if (!victim || (victim->used && (!c->used || c->last_seen < victim->last_seen)))
            victim = c;
    }
    *victim = (pm_client_t){.used = true, .id_len = id_len, .last_seen = now, .prev_seen = now};
    memcpy(victim->id, id, id_len);
    return victim;
}

pm_client_t *pm_clients_recycled(pm_clients_t *self, const uint8_t *id, size_t id_len)
{
    if (id_len == 0 || id_len > PM_CLIENT_ID_MAX || pm_clients_find(self, id, id_len))
        return NULL;
    pm_client_t *victim = NULL;
    for (size_t i = 0; i < self->capacity; i++) {
        pm_client_t *c = &self->clients[i];
        if (!c->used)
            return NULL;
        if (!victim || c->last_seen < victim->last_seen)
            victim = c;
    }
    return victim;
}

pm_client_t *pm_clients_find(pm_clients_t *self, const uint8_t *id, size_t id_len)
{
    for (size_t i = 0; i < self->capacity; i++) {
        pm_client_t *c = &self->clients[i];
        if (c->used && c->id_len == id_len && memcmp(c->id, id, id_len) == 0)
            return c;
    }
    return NULL;
}

void pm_client_set_key(pm_client_t *c, const char *key)
{
    const char *k = key ? key : "";
    if (strcmp(c->key, k) == 0)
        return;
    if (c->key[0]) {
        /* A connection's identity never changes: another key on this
         * routing id is another client, whose handshake starts over. What
         * is owed on the routing id (c->in) stays counted: the socket
         * still holds those bytes until it reports them taken. */
        c->state = PM_CLIENT_NEW;
        c->refused_at = 0;
        c->node_id[0] = c->listen[0] = c->reason[0] = '\0';
    }
    snprintf(c->key, sizeof c->key, "%s", k);
}

bool pm_client_refused(const pm_client_t *c, int64_t now)
{
    return c->used && c->state == PM_CLIENT_REFUSED && now - c->refused_at < PM_ADMIT_REFUSED_TTL_MS;
}

static pm_serve_t error(Alys__Wire__WireError__Code code, const char *why)
{
    pm_serve_t s = {.what = PM_SERVE_ERROR, .code = code};
    snprintf(s.why, sizeof s.why, "%s", why);
    return s;
}

/* A GetHeaders with a locator (bounded by the decoder): storage finds
 * where it starts (above the first hash on our chain), so only the count
 * is ours to check. */
static pm_serve_t located(uint32_t count, bool read_free)
{
    if (count == 0 || count > ALYS_WIRE_MAX_HEADERS) {
        char why[PM_ADMIT_WHY_MAX];
        snprintf(why, sizeof why, "count must be 1..%u", ALYS_WIRE_MAX_HEADERS);
        return error(ALYS__WIRE__WIRE_ERROR__CODE__BAD_REQUEST, why);
    }
    if (!read_free)
        return error(ALYS__WIRE__WIRE_ERROR__CODE__UNAVAILABLE, "too many reads in flight");
    return (pm_serve_t){.what = PM_SERVE_RANGE};
}

static pm_serve_t range(const alys_wire_msg_t *m, uint64_t head, bool read_free)
{
    bool headers = m->body_case == ALYS__WIRE__WIRE_MSG__BODY_GET_HEADERS;
    uint64_t start = headers ? m->get_headers->start : m->get_blocks->start;
    uint32_t count = headers ? m->get_headers->count : m->get_blocks->count;
    uint32_t max = headers ? ALYS_WIRE_MAX_HEADERS : ALYS_WIRE_MAX_BLOCKS;
    char why[PM_ADMIT_WHY_MAX];
    if (headers && m->get_headers->n_locator > 0)
        return located(count, read_free);
    if (count == 0 || count > max || start == 0) {
        snprintf(why, sizeof why, "count must be 1..%u and start >= 1", max);
        return error(ALYS__WIRE__WIRE_ERROR__CODE__BAD_REQUEST, why);
    }
    if (start > head) {
        snprintf(why, sizeof why, "start %llu is above our head %llu", (unsigned long long) start,
                 (unsigned long long) head);
        return error(ALYS__WIRE__WIRE_ERROR__CODE__NOT_FOUND, why);
    }
    if (!read_free)
        return error(ALYS__WIRE__WIRE_ERROR__CODE__UNAVAILABLE, "too many reads in flight");
    return (pm_serve_t){.what = PM_SERVE_RANGE};
}

pm_serve_t pm_admit(pm_client_t *c, serve_limiter_t *limiter, const alys_wire_msg_t *m,
                    const char *err, uint64_t head, bool read_free, int64_t now)
{
    if (c->state == PM_CLIENT_REFUSED) {
        if (now - c->refused_at < PM_ADMIT_REFUSED_TTL_MS)
            return (pm_serve_t){0}; /* ignored thereafter */
        c->state = PM_CLIENT_NEW;
    }
    /* Garbage costs a token too, and past the limit gets no answer:
     * otherwise a peer could make us reply to a flood for free. */
    if (!serve_limiter_allow(limiter, c->id, c->id_len, (uint64_t) now))
        return m ? error(ALYS__WIRE__WIRE_ERROR__CODE__RATE_LIMITED, "over the per-peer rate limit")
                 : (pm_serve_t){0};
    if (!m)
        return error(ALYS__WIRE__WIRE_ERROR__CODE__BAD_REQUEST, err ? err : "undecodable");
    if (m->body_case == ALYS__WIRE__WIRE_MSG__BODY_STATUS)
        return (pm_serve_t){.what = PM_SERVE_STATUS};
    if (c->state != PM_CLIENT_OK)
        return error(ALYS__WIRE__WIRE_ERROR__CODE__BAD_REQUEST, "handshake first: send Status");
    switch (m->body_case) {
    case ALYS__WIRE__WIRE_MSG__BODY_GET_HEADERS:
    case ALYS__WIRE__WIRE_MSG__BODY_GET_BLOCKS: return range(m, head, read_free);
    case ALYS__WIRE__WIRE_MSG__BODY_GET_PEERS: return (pm_serve_t){.what = PM_SERVE_PEERS};
    case ALYS__WIRE__WIRE_MSG__BODY_NEW_BLOCK: return (pm_serve_t){.what = PM_SERVE_NEW_BLOCK};
    case ALYS__WIRE__WIRE_MSG__BODY_SUBMIT_TX: return (pm_serve_t){.what = PM_SERVE_SUBMIT_TX};
    default: return (pm_serve_t){0}; /* responses have no business here */
    }
}

static void refuse(pm_client_t *c, pm_serve_t *s, const char *why, int64_t now)
{
    c->state = PM_CLIENT_REFUSED;
    c->refused_at = now;
    snprintf(c->reason, sizeof c->reason, "%s", why);
    s->refused = true;
}

/* On a CURVE link: the Status must name the link's key, and a listen
 * endpoint it gives must carry that key. */
static bool contradicts_key(const pm_client_t *c, const Alys__Wire__Status *st)
{
    char listen_key[ALYS_WIRE_ID_MAX];
    if (!c->key[0])
        return false;
    if (!st->node_id || strcmp(st->node_id, c->key) != 0)
        return true;
    return st->listen && *st->listen &&
           (alys_nodeaddr_key_hex(st->listen, listen_key, sizeof listen_key) != 0 ||
            strcmp(listen_key, c->key) != 0);
}

pm_serve_t pm_admit_status(pm_client_t *c, const Alys__Wire__Status *st, bool ours,
                           const uint8_t *genesis, peer_table_t *table, uint64_t wall_ms, int64_t now)
{
    snprintf(c->node_id, sizeof c->node_id, "%s",
             c->key[0]                              ? c->key
             : alys_wire_valid_node_id(st->node_id) ? st->node_id
                                                    : "?");
    snprintf(c->listen, sizeof c->listen, "%s", alys_nodeaddr_valid(st->listen) ? st->listen : "");
    if (!ours)
        return error(ALYS__WIRE__WIRE_ERROR__CODE__UNAVAILABLE, "starting: storage not answering yet");
    if (memcmp(st->genesis_hash.data, genesis, ALYS_HASH_LEN) != 0) {
        pm_serve_t s = error(ALYS__WIRE__WIRE_ERROR__CODE__WRONG_GENESIS, "another genesis");
        refuse(c, &s, "wrong genesis", now);
        return s;
    }
    if (contradicts_key(c, st)) {
        pm_serve_t s = error(ALYS__WIRE__WIRE_ERROR__CODE__BAD_REQUEST,
                             "status contradicts the link's key");
        refuse(c, &s, "status contradicts its key", now);
        s.violation = true;
        return s;
    }
    const char *nid = c->node_id[0] != '?' ? c->node_id : NULL;
    if (peer_table_is_banned(table, nid, c->listen[0] ? c->listen : NULL, wall_ms)) {
        pm_serve_t s = {0};
        refuse(c, &s, "banned", now);
        return s;
    }
    c->state = PM_CLIENT_OK;
    return (pm_serve_t){.what = PM_SERVE_STATUS, .learn = c->listen[0] != '\0'};
}
