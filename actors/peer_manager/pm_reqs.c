/*  pm_reqs.c: see pm_reqs.h. */
#include "pm_reqs.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pending.h"

struct pm_reqs {
    alys_pending_t *pending; /* payload: pm_req_t */
};

pm_reqs_t *pm_reqs_new(size_t capacity)
{
    pm_reqs_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->pending = alys_pending_new(capacity, sizeof(pm_req_t));
    if (!self->pending) {
        free(self);
        return NULL;
    }
    return self;
}

static void free_expected(uint64_t corr_id, void *payload, void *arg)
{
    (void) corr_id;
    (void) arg;
    pm_req_clear(payload);
}

void pm_reqs_destroy(pm_reqs_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    pm_reqs_t *self = *self_p;
    alys_pending_each(self->pending, free_expected, NULL);
    alys_pending_destroy(&self->pending);
    free(self);
    *self_p = NULL;
}

bool pm_reqs_full(const pm_reqs_t *self)
{
    return alys_pending_count(self->pending) >= alys_pending_capacity(self->pending);
}

size_t pm_reqs_count(const pm_reqs_t *self)
{
    return alys_pending_count(self->pending);
}

int pm_reqs_add(pm_reqs_t *self, uint64_t wire_id, int64_t deadline, const pm_req_t *r)
{
    pm_req_t *slot = alys_pending_add(self->pending, wire_id, deadline);
    if (!slot)
        return -1;
    *slot = *r;
    return 0;
}

bool pm_reqs_take(pm_reqs_t *self, int conn, uint64_t wire_id, pm_req_t *out)
{
    const pm_req_t *r = alys_pending_find(self->pending, wire_id);
    if (!r || r->conn != conn)
        return false;
    return alys_pending_take(self->pending, wire_id, out);
}

bool pm_reqs_expire(pm_reqs_t *self, int64_t now, pm_req_t *out)
{
    return alys_pending_expire(self->pending, now, NULL, out);
}

typedef struct {
    int conn;
    uint64_t found;
} by_conn_t;

static void find_conn(uint64_t corr_id, void *payload, void *arg)
{
    by_conn_t *b = arg;
    if (!b->found && ((const pm_req_t *) payload)->conn == b->conn)
        b->found = corr_id;
}

bool pm_reqs_take_conn(pm_reqs_t *self, int conn, pm_req_t *out)
{
    by_conn_t b = {.conn = conn};
    alys_pending_each(self->pending, find_conn, &b);
    return b.found && alys_pending_take(self->pending, b.found, out);
}

typedef struct {
    bool *busy;
    size_t n;
} busy_t;

static void mark_busy(uint64_t corr_id, void *payload, void *arg)
{
    (void) corr_id;
    busy_t *b = arg;
    int conn = ((const pm_req_t *) payload)->conn;
    if (conn >= 0 && (size_t) conn < b->n)
        b->busy[conn] = true;
}

void pm_reqs_busy_conns(pm_reqs_t *self, bool *busy, size_t n)
{
    memset(busy, 0, n * sizeof *busy);
    busy_t b = {.busy = busy, .n = n};
    alys_pending_each(self->pending, mark_busy, &b);
}

void pm_req_clear(pm_req_t *r)
{
    if (r) {
        free(r->expected);
        free(r->locator);
        memset(r, 0, sizeof *r);
    }
}

int pm_req_check(pm_req_kind_t kind, uint64_t start, uint32_t count,
                 const ProtobufCBinaryData *expected, size_t n_expected, char *why, size_t why_len)
{
    uint32_t max = kind == PM_REQ_HEADERS ? ALYS_WIRE_MAX_HEADERS : ALYS_WIRE_MAX_BLOCKS;
    if (count == 0 || count > max || start == 0) {
        snprintf(why, why_len, "bad request: count must be 1..%u and start >= 1", max);
        return -1;
    }
    bool hashes_ok = n_expected == 0 || n_expected == count;
    for (size_t i = 0; hashes_ok && i < n_expected; i++)
        hashes_ok = expected[i].len == ALYS_HASH_LEN;
    if (!hashes_ok) {
        snprintf(why, why_len, "bad request: expected_hashes must be count 32-byte hashes");
        return -1;
    }
    return 0;
}

int pm_req_check_locator(uint32_t count, const ProtobufCBinaryData *locator, size_t n_locator,
                         char *why, size_t why_len)
{
    if (count == 0 || count > ALYS_WIRE_MAX_HEADERS) {
        snprintf(why, why_len, "bad request: count must be 1..%u", ALYS_WIRE_MAX_HEADERS);
        return -1;
    }
    /* The wire decoder refuses more (wire/wire.h): never send what a peer
     * must refuse. */
    bool ok = n_locator >= 1 && n_locator <= ALYS_LOCATOR_MAX;
    for (size_t i = 0; ok && i < n_locator; i++)
        ok = locator[i].len == ALYS_HASH_LEN;
    if (!ok) {
        snprintf(why, why_len, "bad request: locator must be 1..%u 32-byte hashes", ALYS_LOCATOR_MAX);
        return -1;
    }
    return 0;
}

uint32_t pm_req_timeout_ms(uint32_t asked, uint32_t adaptive)
{
    /* SyncActor's timeout is an upper bound (sync_machine.h): the peer's
     * own RTO (peer_table_request_timeout) is used when shorter, so a lost
     * response costs about a round trip, not the whole bound. */
    uint32_t ms = asked && (!adaptive || asked < adaptive) ? asked : adaptive;
    return ms < PM_REQ_MAX_TIMEOUT_MS ? ms : PM_REQ_MAX_TIMEOUT_MS;
}

typedef struct {
    pm_reqs_each_fn fn;
    void *arg;
} each_t;

static void each_one(uint64_t corr_id, void *payload, void *arg)
{
    (void) corr_id;
    each_t *e = arg;
    e->fn(payload, e->arg);
}

void pm_reqs_each(pm_reqs_t *self, pm_reqs_each_fn fn, void *arg)
{
    each_t e = {.fn = fn, .arg = arg};
    alys_pending_each(self->pending, each_one, &e);
}
