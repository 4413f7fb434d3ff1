/*  sync_known.c: see sync_known.h. */
#include "sync_known.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    bool used;
    sync_peer_id_t id;
    uint64_t seen_at; /* now_ms of the last "connected" report */
} entry_t;

struct sync_known {
    size_t cap;
    uint32_t absent_ms;
    entry_t e[SYNC_MAX_PEERS];
};

sync_known_t *sync_known_new(size_t cap, uint32_t absent_ms)
{
    sync_known_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->cap = cap < 1 ? 1 : cap > SYNC_MAX_PEERS ? SYNC_MAX_PEERS : cap;
    self->absent_ms = absent_ms;
    return self;
}

void sync_known_destroy(sync_known_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    free(*self_p);
    *self_p = NULL;
}

bool sync_known_valid_id(const char *id)
{
    return id && *id && strlen(id) <= SYNC_PEER_ID_MAX;
}

sync_entry_kind_t sync_known_entry_kind(const char *state)
{
    if (!state)
        return SYNC_ENTRY_OTHER;
    if (strcmp(state, "connected") == 0)
        return SYNC_ENTRY_CONNECTED;
    if (strcmp(state, "disconnected") == 0 || strcmp(state, "banned") == 0 ||
        strcmp(state, "refused") == 0)
        return SYNC_ENTRY_GONE;
    return SYNC_ENTRY_OTHER;
}

static entry_t *find(const sync_known_t *self, const char *id)
{
    for (size_t i = 0; i < self->cap; i++)
        if (self->e[i].used && strcmp(self->e[i].id, id) == 0)
            return (entry_t *) &self->e[i];
    return NULL;
}

/* A free entry, or the one reported longest ago (evicted into out). */
static entry_t *make_room(sync_known_t *self, bool *evicted, sync_peer_id_t out)
{
    entry_t *oldest = &self->e[0];
    for (size_t i = 0; i < self->cap; i++) {
        if (!self->e[i].used)
            return &self->e[i];
        if (self->e[i].seen_at < oldest->seen_at)
            oldest = &self->e[i];
    }
    *evicted = true;
    memcpy(out, oldest->id, sizeof(sync_peer_id_t));
    oldest->used = false;
    return oldest;
}

bool sync_known_seen(sync_known_t *self, const char *id, uint64_t now_ms, bool *evicted,
                     sync_peer_id_t evicted_id)
{
    *evicted = false;
    if (!sync_known_valid_id(id))
        return false;
    entry_t *e = find(self, id);
    if (!e) {
        e = make_room(self, evicted, evicted_id);
        e->used = true;
        snprintf(e->id, sizeof e->id, "%s", id);
    }
    e->seen_at = now_ms;
    return true;
}

bool sync_known_gone(sync_known_t *self, const char *id)
{
    entry_t *e = sync_known_valid_id(id) ? find(self, id) : NULL;
    if (!e)
        return false;
    e->used = false;
    return true;
}

bool sync_known_next_absent(sync_known_t *self, uint64_t now_ms, sync_peer_id_t out)
{
    for (size_t i = 0; i < self->cap; i++) {
        entry_t *e = &self->e[i];
        if (e->used && now_ms >= e->seen_at && now_ms - e->seen_at >= self->absent_ms) {
            memcpy(out, e->id, sizeof(sync_peer_id_t));
            e->used = false;
            return true;
        }
    }
    return false;
}

bool sync_known_has(const sync_known_t *self, const char *id)
{
    return sync_known_valid_id(id) && find(self, id) != NULL;
}

size_t sync_known_count(const sync_known_t *self)
{
    size_t n = 0;
    for (size_t i = 0; i < self->cap; i++)
        n += self->e[i].used;
    return n;
}
