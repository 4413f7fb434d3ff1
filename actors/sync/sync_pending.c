/*  sync_pending.c: see sync_pending.h. The requests are common/pending's
 *  entries with a sync_pend_t payload. */
#include "sync_pending.h"

#include <stdlib.h>
#include <string.h>

#include "pending.h"

typedef struct {
    uint64_t corr;
    uint64_t req_id;
    bool headers;
} fetch_t;

struct sync_pending {
    alys_pending_t *table;
    fetch_t fetch[SYNC_PENDING_FETCHES];
    size_t fetch_next;
};

/* common/pending's deadlines are int64_t; ours never come near the top. */
static int64_t to_deadline(uint64_t ms)
{
    return ms > (uint64_t) INT64_MAX ? INT64_MAX : (int64_t) ms;
}

sync_pending_t *sync_pending_new(size_t cap)
{
    sync_pending_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->table = alys_pending_new(cap ? cap : 1, sizeof(sync_pend_t));
    if (!self->table)
        sync_pending_destroy(&self);
    return self;
}

void sync_pending_destroy(sync_pending_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    alys_pending_destroy(&(*self_p)->table);
    free(*self_p);
    *self_p = NULL;
}

sync_pend_t *sync_pending_add(sync_pending_t *self, sync_pend_kind_t kind, uint64_t corr_id,
                              uint64_t now_ms, uint32_t timeout_ms)
{
    uint64_t deadline = now_ms + timeout_ms;
    sync_pend_t *p = alys_pending_add(self->table, corr_id, to_deadline(deadline));
    if (p)
        *p = (sync_pend_t){.kind = kind, .corr_id = corr_id, .deadline = deadline};
    return p;
}

bool sync_pending_known(const sync_pending_t *self, uint64_t corr_id)
{
    return corr_id != 0 && alys_pending_find(self->table, corr_id) != NULL;
}

typedef struct {
    sync_pend_kind_t kind;
    bool found;
} kind_q_t;

static void kind_seen(uint64_t corr_id, void *payload, void *arg)
{
    (void) corr_id;
    kind_q_t *q = arg;
    if (((const sync_pend_t *) payload)->kind == q->kind)
        q->found = true;
}

bool sync_pending_has_kind(const sync_pending_t *self, sync_pend_kind_t kind)
{
    kind_q_t q = {kind, false};
    alys_pending_each(self->table, kind_seen, &q);
    return q.found;
}

bool sync_pending_take(sync_pending_t *self, uint64_t corr_id, sync_pend_t *out)
{
    return corr_id != 0 && alys_pending_take(self->table, corr_id, out);
}

bool sync_pending_next_expired(sync_pending_t *self, uint64_t now_ms, sync_pend_t *out)
{
    return alys_pending_expire(self->table, to_deadline(now_ms), NULL, out);
}

static bool is_kind(const void *payload, void *arg)
{
    return ((const sync_pend_t *) payload)->kind == *(const sync_pend_kind_t *) arg;
}

typedef struct {
    sync_pend_kind_t kind;
    void (*done)(sync_pend_t *p);
} drop_t;

static bool drop_match(const void *payload, void *arg)
{
    return is_kind(payload, &((drop_t *) arg)->kind);
}

static void drop_one(uint64_t corr_id, void *payload, void *arg)
{
    (void) corr_id;
    drop_t *d = arg;
    if (d->done)
        d->done(payload);
}

size_t sync_pending_drop_kind(sync_pending_t *self, sync_pend_kind_t kind,
                              void (*done)(sync_pend_t *p))
{
    drop_t d = {kind, done};
    return alys_pending_remove_if(self->table, drop_match, drop_one, &d);
}

const char *sync_pending_kind_name(sync_pend_kind_t kind)
{
    static const char *const n[] = {"GetHead",     "CreateCheckpoint", "ListCheckpoints",
                                    "Rollback",    "ProcessBatch",     "GetPeers",
                                    "GetInFlight", "GetLocator",       "ReorgBatch"};
    return (unsigned) kind < sizeof n / sizeof n[0] ? n[kind] : "?";
}

void sync_pending_fetch_sent(sync_pending_t *self, uint64_t corr_id, uint64_t req_id, bool headers)
{
    self->fetch[self->fetch_next++ % SYNC_PENDING_FETCHES] = (fetch_t){corr_id, req_id, headers};
}

bool sync_pending_fetch_refused(sync_pending_t *self, uint64_t corr_id, uint64_t *req_id, bool *headers)
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
