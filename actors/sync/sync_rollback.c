/*  sync_rollback.c: see sync_rollback.h. */
#include "sync_rollback.h"

#include <stdlib.h>

struct sync_rollback {
    uint32_t quiet_ms;
    bool in_flight; /* our Rollback, not answered yet */
    bool settling;  /* answered at settled_at: the window is open */
    uint64_t settled_at;
};

sync_rollback_t *sync_rollback_new(uint32_t quiet_ms)
{
    sync_rollback_t *self = calloc(1, sizeof *self);
    if (self)
        self->quiet_ms = quiet_ms;
    return self;
}

void sync_rollback_destroy(sync_rollback_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    free(*self_p);
    *self_p = NULL;
}

void sync_rollback_sent(sync_rollback_t *self)
{
    self->in_flight = true;
}

void sync_rollback_done(sync_rollback_t *self, uint64_t now_ms)
{
    self->in_flight = false;
    self->settling = true;
    self->settled_at = now_ms;
}

void sync_rollback_failed(sync_rollback_t *self)
{
    self->in_flight = false;
}

static bool quiet(const sync_rollback_t *self, uint64_t now_ms)
{
    return self->settling &&
           (now_ms < self->settled_at || now_ms - self->settled_at < self->quiet_ms);
}

bool sync_rollback_accepts_commit(const sync_rollback_t *self, uint64_t now_ms)
{
    return !self->in_flight && !quiet(self, now_ms);
}

bool sync_rollback_window_closed(sync_rollback_t *self, uint64_t now_ms)
{
    if (!self->settling || quiet(self, now_ms))
        return false;
    self->settling = false;
    return true;
}
