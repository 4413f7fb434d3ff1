/*  sync_pending.c: see sync_pending.h. */
#include "sync_pending.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    uint64_t corr;
    uint64_t req_id;
    bool     headers;
} fetch_t;

struct sync_pending {
    size_t cap;
    bool *used;
    sync_pend_t *p;
    fetch_t fetch[SYNC_PENDING_FETCHES];
    size_t fetch_next;
};

sync_pending_t *sync_pending_new(size_t cap)
{
    sync_pending_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->cap = cap ? cap : 1;
    self->used = calloc(self->cap, sizeof *self->used);
    self->p = calloc(self->cap, sizeof *self->p);
    if (!self->used || !self->p)
        sync_pending_destroy(&self);
    return self;
}

void sync_pending_destroy(sync_pending_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    free((*self_p)->used);
    free((*self_p)->p);
    free(*self_p);
    *self_p = NULL;
}

sync_pend_t *sync_pending_add(sync_pending_t *self, sync_pend_kind_t kind, uint64_t corr_id,
                              uint64_t now_ms, uint32_t timeout_ms)
{
    for (size_t i = 0; i < self->cap; i++) {
        if (self->used[i])
            continue;
        self->used[i] = true;
        self->p[i] = (sync_pend_t){.kind = kind, .corr_id = corr_id,
                                   .deadline = now_ms + timeout_ms};
        return &self->p[i];
    }
    return NULL;
}

static long find(const sync_pending_t *self, uint64_t corr_id)
{
    for (size_t i = 0; i < self->cap; i++)
        if (self->used[i] && self->p[i].corr_id == corr_id)
            return (long) i;
    return -1;
}

bool sync_pending_known(const sync_pending_t *self, uint64_t corr_id)
{
    return corr_id != 0 && find(self, corr_id) >= 0;
}

bool sync_pending_has_kind(const sync_pending_t *self, sync_pend_kind_t kind)
{
    for (size_t i = 0; i < self->cap; i++)
        if (self->used[i] && self->p[i].kind == kind)
            return true;
    return false;
}

static bool take_at(sync_pending_t *self, long i, sync_pend_t *out)
{
    if (i < 0)
        return false;
    if (out)
        *out = self->p[i];
    self->used[i] = false;
    return true;
}

bool sync_pending_take(sync_pending_t *self, uint64_t corr_id, sync_pend_t *out)
{
    return corr_id != 0 && take_at(self, find(self, corr_id), out);
}

bool sync_pending_next_expired(sync_pending_t *self, uint64_t now_ms, sync_pend_t *out)
{
    for (size_t i = 0; i < self->cap; i++)
        if (self->used[i] && now_ms >= self->p[i].deadline)
            return take_at(self, (long) i, out);
    return false;
}

bool sync_pending_next_of_kind(sync_pending_t *self, sync_pend_kind_t kind, sync_pend_t *out)
{
    for (size_t i = 0; i < self->cap; i++)
        if (self->used[i] && self->p[i].kind == kind)
            return take_at(self, (long) i, out);
    return false;
}

const char *sync_pending_kind_name(sync_pend_kind_t kind)
{
    static const char *const n[] = {"GetHead", "CreateCheckpoint", "ListCheckpoints", "Rollback",
                                    "ProcessBatch", "GetPeers"};
    return (unsigned) kind < sizeof n / sizeof n[0] ? n[kind] : "?";
}

void sync_pending_fetch_sent(sync_pending_t *self, uint64_t corr_id, uint64_t req_id, bool headers)
{
    self->fetch[self->fetch_next++ % SYNC_PENDING_FETCHES] = (fetch_t){corr_id, req_id, headers};
}

bool sync_pending_fetch_refused(sync_pending_t *self, uint64_t corr_id, uint64_t *req_id,
                                bool *headers)
{
    for (size_t i = 0; corr_id && i < SYNC_PENDING_FETCHES; i++) {
        fetch_t *f = &self->fetch[i];
        if (f->corr != corr_id)
            continue;
        *req_id = f->req_id;
        *headers = f->headers;
        f->corr = 0;
        return true;
    }
    return false;
}
