/*  sim_peer.c: the PeerManagerActor adapter. Drives PeerManager's pure
 *  logic as its shell does today (peer_net.c, peer_deliver.c): Status probes
 *  every second (two unanswered in a row: the peer is down, charged a
 *  timeout per request it held and one for the probes; re-probed with
 *  backoff 100 ms doubling to 30 s), one request table with deadlines,
 *  response checks, scoring and blame, the reorder buffer in front of
 *  BlockProcessor, and the PeerSet for SyncActor every 2 s or on change.
 *
 *  Core API used (peer_logic): peer_table_config_defaults, peer_table_new,
 *  peer_table_destroy, peer_table_add, peer_table_contains,
 *  peer_table_on_status, peer_table_set_connecting,
 *  peer_table_set_disconnected, peer_table_may_connect, peer_table_is_banned,
 *  peer_table_record, peer_table_record_rtt, peer_table_blame_now,
 *  peer_table_suspect, peer_table_range_validated, peer_table_ban,
 *  peer_table_select, peer_table_get, peer_table_list, peer_table_batch_size,
 *  peer_table_request_timeout, peer_table_tick, peer_table_size,
 *  pm_judge_headers, pm_judge_blocks, pm_judge_fetch_report, pm_judge_refusal,
 *  pm_judge_penalty,
 *  reorder_config_defaults, reorder_new, reorder_destroy, reorder_insert,
 *  reorder_next, reorder_on_processed, reorder_on_refused, reorder_on_busy,
 *  reorder_expire, reorder_entries, reorder_bytes, peer_table_suspect_count,
 *  peer_table_export_bans, peer_table_import_bans, reorder_on_lost,
 *  reorder_set_head, reorder_seq, peer_outcome_name, peer_state_name,
 *  reorder_drop_name.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "peer_reorder.h"
#include "peer_table.h"
#include "pm_judge.h"
#include "wire/wire.h"
#include "sim_internal.h"
#include "sync_machine.h"

#define PM_MAX_REQS    512
#define DROPS_MAX      32
#define STATUS_EVERY   1000
#define STATUS_TIMEOUT 3000
#define DOWN_AFTER     2
#define BACKOFF_MAX    30000
#define MAX_TIMEOUT    60000

typedef struct {
    bool ready;
    bool banned_genesis;
    uint64_t probe_id;
    uint64_t probe_sent;
    uint64_t next_probe;
    uint32_t failures;
} conn_t;

typedef enum { R_FREE = 0, R_HEADERS, R_BLOCKS } rkind_t;

typedef struct {
    rkind_t kind;
    uint64_t wire_id;
    uint64_t req_id;
    uint32_t peer;
    uint64_t start;
    uint32_t count;
    alys_hash_t *expected;
    uint64_t sent_at, deadline;
} req_t;

struct sim_pm {
    sim_t *sim;
    peer_table_t *table;
    reorder_t *reorder;
    conn_t conn[SIM_MAX_PEERS];
    req_t reqs[PM_MAX_REQS];
    uint64_t next_wire;
    uint64_t next_batch;
    uint64_t head;
    alys_hash_t head_hash;
    uint64_t peerset_at;
    uint64_t bp_reply_at; /* last BatchProcessed (it carries the head) */
    uint64_t head_at;     /* last head read from storage */
    bool head_pending;
    bool dirty;
    uint64_t last_table_tick;
};

/* ---- to SyncActor (messages on CH_PM_SYNC) ----------------------------------- */

typedef struct {
    int what; /* 0 status, 1 gone, 2 headers, 3 fetch, 4 outcome, 5 batch size */
    char peer[PEER_ID_MAX];
    uint64_t req_id, start, height, failed_height, head;
    uint32_t rank;
    double score;
    int outcome;
    bool failed;
    alys_hash_t head_hash;
    char reason[48], detail[64];
    size_t n;
    ProtobufCBinaryData *items;
} to_sync_t;

static void to_sync_drop(void *arg)
{
    to_sync_t *m = arg;
    for (size_t i = 0; i < m->n; i++)
        free(m->items[i].data);
    free(m->items);
    free(m);
}

static void to_sync_run(sim_t *sim, void *arg)
{
    to_sync_t *m = arg;
    switch (m->what) {
    case 0: sim_sync_on_peer_status(sim, m->peer, m->height, m->rank, m->score); break;
    case 1: sim_sync_on_peer_gone(sim, m->peer, m->reason); break;
    case 2: sim_sync_on_headers(sim, m->req_id, m->outcome, m->start, m->items, m->n); break;
    case 3: sim_sync_on_fetch_result(sim, m->req_id, m->outcome); break;
    case 4:
        sim_sync_on_batch_outcome(sim, m->head, m->head_hash, m->failed, m->failed_height,
                                  m->start, m->reason, m->detail);
        break;
    default: sim_sync_on_batch_size(sim, (uint32_t) m->height); break;
    }
    for (size_t i = 0; i < m->n; i++)
        free(m->items[i].data);
    free(m->items);
    free(m);
}

static to_sync_t *msg_new(sim_pm_t *pm, int what, const char *peer)
{
    to_sync_t *m = calloc(1, sizeof *m);
    if (!m) {
        sim_fail(pm->sim, "simulator", "out of memory");
        return NULL;
    }
    m->what = what;
    snprintf(m->peer, sizeof m->peer, "%.*s", PEER_ID_MAX - 1, peer ? peer : "");
    return m;
}

static void to_sync(sim_pm_t *pm, to_sync_t *m, const char *label)
{
    sim_post_d(pm->sim, CH_PM_SYNC, 1, label, m->req_id, (uint64_t) m->outcome, to_sync_run, m,
               to_sync_drop);
}

static void report_fetch(sim_pm_t *pm, const req_t *r, int outcome)
{
    to_sync_t *m = msg_new(pm, 3, sim_peer_id(r->peer));
    if (!m)
        return;
    m->req_id = r->req_id;
    m->outcome = outcome;
    to_sync(pm, m, "fetch_result");
}

static void report_headers(sim_pm_t *pm, const req_t *r, int outcome,
                           const ProtobufCBinaryData *h, size_t n)
{
    to_sync_t *m = msg_new(pm, 2, sim_peer_id(r->peer));
    if (!m)
        return;
    m->req_id = r->req_id;
    m->outcome = outcome;
    m->start = r->start;
    if (n) {
        m->items = calloc(n, sizeof *m->items);
        for (size_t i = 0; m->items && i < n; i++) {
            m->items[i].data = malloc(h[i].len ? h[i].len : 1);
            if (!m->items[i].data)
                break;
            memcpy(m->items[i].data, h[i].data, h[i].len);
            m->items[i].len = h[i].len;
            m->n = i + 1;
        }
    }
    to_sync(pm, m, "headers_result");
}

static void report_failure(sim_pm_t *pm, const req_t *r, int outcome)
{
    if (r->kind == R_HEADERS)
        report_headers(pm, r, outcome, NULL, 0);
    else
        report_fetch(pm, r, outcome);
}

static void peer_gone(sim_pm_t *pm, uint32_t peer, const char *why)
{
    to_sync_t *m = msg_new(pm, 1, sim_peer_id(peer));
    if (!m)
        return;
    snprintf(m->reason, sizeof m->reason, "%s", why);
    to_sync(pm, m, "peer_disconnected");
    pm->dirty = true;
}

/* ---- requests ------------------------------------------------------------------ */

static void req_clear(req_t *r)
{
    free(r->expected);
    *r = (req_t){0};
}

static void conn_lost(sim_pm_t *pm, uint32_t peer, const char *why);

static void apply_action(sim_pm_t *pm, uint32_t peer, peer_action_t action)
{
    if (action == PEER_ACTION_NONE)
        return;
    if (action == PEER_ACTION_BAN)
        sim_note(pm->sim, "%s banned", sim_peer_id(peer));
    conn_lost(pm, peer, action == PEER_ACTION_BAN ? "banned" : "score too low");
}

/* pm_record: INVALID and VIOLATION are blamed at once, the rest recorded. */
static void record(sim_pm_t *pm, uint32_t peer, const peer_outcome_t *o)
{
    peer_action_t action = PEER_ACTION_NONE;
    uint64_t now = sim_now(pm->sim);
    const char *id = sim_peer_id(peer);
    int rc;
    if (o->kind == PEER_OUTCOME_INVALID || o->kind == PEER_OUTCOME_VIOLATION) {
        sim_check_penalty(pm->sim, id, o->reason ? o->reason : peer_outcome_name(o->kind));
        rc = peer_table_blame_now(pm->table, id, o->kind, o->reason, now, &action);
    } else {
        rc = peer_table_record(pm->table, id, o, now, &action);
    }
    if (rc != PEER_OK)
        return;
    apply_action(pm, peer, action);
    pm->dirty = true;
}

static void req_timed_out(sim_pm_t *pm, req_t *r, const char *why)
{
    (void) why;
    peer_outcome_t o = {.kind = PEER_OUTCOME_TIMEOUT,
                        .latency_ms = (uint32_t) (sim_now(pm->sim) - r->sent_at)};
    req_t copy = *r;
    r->expected = NULL;
    req_clear(r);
    record(pm, copy.peer, &o);
    report_failure(pm, &copy, SYNC_OUTCOME_TIMEOUT);
    free(copy.expected);
}

static void conn_lost(sim_pm_t *pm, uint32_t peer, const char *why)
{
    conn_t *c = &pm->conn[peer];
    bool was = c->ready;
    c->ready = false;
    c->probe_id = 0;
    for (size_t i = 0; i < PM_MAX_REQS; i++) {
        req_t *r = &pm->reqs[i];
        if (r->kind != R_FREE && r->peer == peer) {
            report_failure(pm, r, SYNC_OUTCOME_NO_PEER);
            req_clear(r);
        }
    }
    peer_table_set_disconnected(pm->table, sim_peer_id(peer), sim_now(pm->sim));
    c->next_probe = sim_now(pm->sim) + 100;
    if (was)
        peer_gone(pm, peer, why);
}

static req_t *req_free_slot(sim_pm_t *pm)
{
    for (size_t i = 0; i < PM_MAX_REQS; i++)
        if (pm->reqs[i].kind == R_FREE)
            return &pm->reqs[i];
    return NULL;
}

static sim_msg_t *msg(sim_msg_kind_t kind, uint32_t peer, uint64_t wire_id)
{
    sim_msg_t *m = calloc(1, sizeof *m);
    if (m) {
        m->kind = kind;
        m->peer = peer;
        m->wire_id = wire_id;
    }
    return m;
}

static void fetch(sim_t *sim, rkind_t kind, uint64_t req_id, const char *peer, uint64_t start,
                  uint32_t count, const alys_hash_t *expected, uint32_t timeout_ms)
{
    sim_pm_t *pm = sim_get_pm(sim);
    int idx = sim_peer_index(peer);
    req_t probe = {.kind = kind, .req_id = req_id, .peer = idx < 0 ? 0 : (uint32_t) idx, .start = start};
    uint64_t now = sim_now(sim);
    if (idx < 0 || !pm->conn[idx].ready || peer_table_is_banned(pm->table, peer, NULL, now)) {
        report_failure(pm, &probe, SYNC_OUTCOME_NO_PEER);
        return;
    }
    uint32_t max = kind == R_HEADERS ? ALYS_WIRE_MAX_HEADERS : ALYS_WIRE_MAX_BLOCKS;
    req_t *r = req_free_slot(pm);
    if (!r) {
        report_failure(pm, &probe, SYNC_OUTCOME_BUSY);
        return;
    }
    if (count == 0 || count > max || start == 0) {
        report_failure(pm, &probe, SYNC_OUTCOME_NO_PEER);
        return;
    }
    sim_msg_t *m = msg(kind == R_HEADERS ? M_GET_HEADERS : M_GET_BLOCKS, (uint32_t) idx,
                       ++pm->next_wire);
    alys_hash_t *exp = NULL;
    if (expected) {
        exp = malloc((size_t) count * sizeof *exp);
        if (exp)
            memcpy(exp, expected, (size_t) count * sizeof *exp);
    }
    if (!m || (expected && !exp)) {
        free(m);
        free(exp);
        report_failure(pm, &probe, SYNC_OUTCOME_BUSY);
        return;
    }
    m->start = start;
    m->count = count;
    uint32_t ms = timeout_ms ? timeout_ms : peer_table_request_timeout(pm->table, peer, count);
    *r = (req_t){.kind = kind,
                 .wire_id = m->wire_id,
                 .req_id = req_id,
                 .peer = (uint32_t) idx,
                 .start = start,
                 .count = count,
                 .expected = exp,
                 .sent_at = now,
                 .deadline = now + (ms < MAX_TIMEOUT ? ms : MAX_TIMEOUT)};
    sim_net_send(sim, m);
}

void sim_pm_fetch_headers(sim_t *sim, uint64_t req_id, const char *peer, uint64_t start,
                          uint32_t count, uint32_t timeout_ms)
{
    fetch(sim, R_HEADERS, req_id, peer, start, count, NULL, timeout_ms);
}

void sim_pm_fetch_blocks(sim_t *sim, uint64_t req_id, const char *peer, uint64_t start,
                         uint32_t count, const alys_hash_t *expected, uint32_t timeout_ms)
{
    fetch(sim, R_BLOCKS, req_id, peer, start, count, expected, timeout_ms);
}

void sim_pm_penalise(sim_t *sim, const char *peer, int outcome, const char *reason)
{
    sim_pm_t *pm = sim_get_pm(sim);
    int idx = sim_peer_index(peer);
    peer_outcome_t o = {.reason = reason};
    if (idx < 0 || !pm_judge_penalty(outcome, &o.kind))
        return;
    record(pm, (uint32_t) idx, &o);
}

void sim_pm_verdict(sim_t *sim, const char *peer, uint64_t start, uint32_t count, bool valid,
                    const char *reason)
{
    sim_pm_t *pm = sim_get_pm(sim);
    uint64_t now = sim_now(sim);
    if (count == 0 || sim_peer_index(peer) < 0)
        return;
    if (!valid) {
        peer_table_suspect(pm->table, peer, start, start + count, reason, now);
        return;
    }
    peer_ref_t blamed[16];
    peer_action_t actions[16];
    size_t n = peer_table_range_validated(pm->table, peer, start, start + count, now, blamed,
                                          actions, 16);
    for (size_t i = 0; i < n && i < 16; i++) {
        sim_check_penalty(sim, blamed[i].id, "convicted: served blocks that failed");
        int idx = sim_peer_index(blamed[i].id);
        if (idx >= 0)
            apply_action(pm, (uint32_t) idx, actions[i]);
    }
    if (n)
        pm->dirty = true;
}

/* ---- to BlockProcessor --------------------------------------------------------- */

typedef struct {
    uint64_t batch_id;
    char origin[PEER_ID_MAX];
    size_t n, n_exp;
    ProtobufCBinaryData *blocks, *expected;
} to_pl_t;

static void to_pl_drop(void *arg)
{
    to_pl_t *t = arg;
    for (size_t i = 0; t->blocks && i < t->n; i++)
        free(t->blocks[i].data);
    for (size_t i = 0; t->expected && i < t->n_exp; i++)
        free(t->expected[i].data);
    free(t->blocks);
    free(t->expected);
    free(t);
}

static void to_pl_run(sim_t *sim, void *arg)
{
    to_pl_t *t = arg;
    sim_pl_submit(sim, t->batch_id, t->origin, t->blocks, t->n, t->expected, t->n_exp);
    to_pl_drop(t);
}

static int copy_items(ProtobufCBinaryData **out, const ProtobufCBinaryData *in, size_t n)
{
    *out = calloc(n ? n : 1, sizeof **out);
    if (!*out)
        return -1;
    for (size_t i = 0; i < n; i++) {
        (*out)[i].data = malloc(in[i].len ? in[i].len : 1);
        if (!(*out)[i].data)
            return -1;
        memcpy((*out)[i].data, in[i].data, in[i].len);
        (*out)[i].len = in[i].len;
    }
    return 0;
}

static void pump(sim_pm_t *pm)
{
    for (;;) {
        reorder_send_t s;
        uint64_t id = ++pm->next_batch;
        if (!reorder_next(pm->reorder, sim_now(pm->sim), id, &s))
            break;
        to_pl_t *t = calloc(1, sizeof *t);
        if (!t) {
            sim_fail(pm->sim, "simulator", "out of memory");
            return;
        }
        t->n = s.count;
        t->n_exp = s.expected ? s.count : 0;
        if (copy_items(&t->blocks, s.blocks, s.count) != 0 ||
            (s.expected && copy_items(&t->expected, s.expected, s.count) != 0)) {
            to_pl_drop(t);
            sim_fail(pm->sim, "simulator", "out of memory");
            return;
        }
        t->batch_id = id;
        snprintf(t->origin, sizeof t->origin, "%s", s.peer_id);
        sim_post_d(pm->sim, CH_PM_PL, 1, "process_batch", s.start, s.count, to_pl_run, t, to_pl_drop);
    }
}

static void send_outcome(sim_pm_t *pm, const char *peer, uint64_t start, bool failed,
                         uint64_t failed_height, const char *reason, const char *detail)
{
    to_sync_t *m = msg_new(pm, 4, peer);
    if (!m)
        return;
    m->head = pm->head;
    memcpy(m->head_hash, pm->head_hash, ALYS_HASH_LEN);
    m->failed = failed;
    m->failed_height = failed_height;
    m->start = start;
    snprintf(m->reason, sizeof m->reason, "%s", reason ? reason : "");
    snprintf(m->detail, sizeof m->detail, "%s", detail ? detail : "");
    sim_post_d(pm->sim, CH_PM_SYNC, 1, "batch_outcome", start, failed, to_sync_run, m, to_sync_drop);
}

static void report_drops(sim_pm_t *pm, const reorder_ref_t *drops, size_t n)
{
    for (size_t i = 0; i < n && i < DROPS_MAX; i++) {
        const reorder_ref_t *d = &drops[i];
        if (d->why == REORDER_DROP_SUPERSEDED)
            continue;
        if (d->why == REORDER_DROP_COMMITTED)
            send_outcome(pm, d->peer_id, d->start, false, 0, "", "already committed");
        else
            send_outcome(pm, d->peer_id, d->start, true, d->start, "dropped",
                         reorder_drop_name(d->why));
    }
}

void sim_pm_on_processed(sim_t *sim, const pl_outcome_t *o)
{
    sim_pm_t *pm = sim_get_pm(sim);
    reorder_result_t r = {.batch_id = o->batch_id,
                          .committed = o->committed,
                          .head_height = o->head_height,
                          .failed = o->failed,
                          .failed_height = o->failed_height,
                          .content_fault = pm_judge_refusal(o->reason, o->failed_height, 0).content_fault};
    reorder_ref_t ref, drops[DROPS_MAX];
    size_t nd = 0;
    reorder_done_t done = reorder_on_processed(pm->reorder, &r, sim_now(sim), &ref, drops,
                                               DROPS_MAX, &nd);
    if (done == REORDER_UNKNOWN) {
        pump(pm);
        return;
    }
    pm->head = o->head_height;
    pm->bp_reply_at = sim_now(sim);
    if (o->has_head)
        memcpy(pm->head_hash, o->head_hash, ALYS_HASH_LEN);
    if (done == REORDER_REQUEUED) {
        pump(pm);
        return;
    }
    if (done == REORDER_FAILED) {
        if (pm_judge_refusal(o->reason, o->failed_height, ref.start).suspect)
            peer_table_suspect(pm->table, ref.peer_id, o->failed_height, o->failed_height + 1,
                               o->reason, sim_now(sim));
    }
    send_outcome(pm, ref.peer_id, ref.start, done == REORDER_FAILED, o->failed_height,
                 done == REORDER_FAILED ? o->reason : "", o->detail);
    report_drops(pm, drops, nd);
    pump(pm);
}

void sim_pm_on_refused(sim_t *sim, uint64_t batch_id, bool bad_request)
{
    sim_pm_t *pm = sim_get_pm(sim);
    if (!bad_request) {
        reorder_on_busy(pm->reorder, batch_id, sim_now(sim));
        return;
    }
    reorder_ref_t ref, drops[DROPS_MAX];
    size_t nd = 0;
    if (reorder_on_refused(pm->reorder, batch_id, sim_now(sim), &ref, drops, DROPS_MAX, &nd) ==
        REORDER_UNKNOWN)
        return;
    send_outcome(pm, ref.peer_id, ref.start, true, ref.start, "dropped", "refused");
    report_drops(pm, drops, nd);
    pump(pm);
}

/* ---- from the network ----------------------------------------------------------- */

static req_t *req_take(sim_pm_t *pm, uint32_t peer, uint64_t wire_id)
{
    for (size_t i = 0; i < PM_MAX_REQS; i++)
        if (pm->reqs[i].kind != R_FREE && pm->reqs[i].wire_id == wire_id && pm->reqs[i].peer == peer)
            return &pm->reqs[i];
    return NULL;
}

static void on_status(sim_pm_t *pm, const sim_msg_t *m)
{
    conn_t *c = &pm->conn[m->peer];
    const char *id = sim_peer_id(m->peer);
    uint64_t now = sim_now(pm->sim);
    if (m->wire_id != c->probe_id || c->probe_id == 0)
        return; /* late answer to an older probe */
    c->probe_id = 0;
    if (!m->genesis_ok) {
        /* Another chain: banned by endpoint, never dialled again. */
        peer_action_t a = PEER_ACTION_NONE;
        if (!peer_table_contains(pm->table, id))
            peer_table_add(pm->table, id, id, now);
        sim_check_penalty(pm->sim, id, "wrong genesis");
        peer_table_blame_now(pm->table, id, PEER_OUTCOME_VIOLATION, "wrong genesis", now, &a);
        peer_table_ban(pm->table, id, 0, "wrong genesis", now);
        c->banned_genesis = true;
        if (c->ready)
            conn_lost(pm, m->peer, "wrong genesis");
        return;
    }
    if (!peer_table_contains(pm->table, id) && peer_table_add(pm->table, id, id, now) != PEER_OK)
        return;
    if (peer_table_on_status(pm->table, id, m->height, NULL, "1", now) != PEER_OK)
        return;
    peer_table_record_rtt(pm->table, id, (uint32_t) (now - c->probe_sent), now);
    c->failures = 0;
    c->next_probe = now + STATUS_EVERY;
    bool was = c->ready;
    c->ready = true;
    if (!was) {
        to_sync_t *s = msg_new(pm, 0, id);
        if (s) {
            s->height = m->height;
            s->rank = UINT32_MAX;
            to_sync(pm, s, "peer_discovered");
        }
    }
    pm->dirty = true;
}

static void on_headers(sim_pm_t *pm, req_t *r, const sim_msg_t *m)
{
    Alys__Wire__Headers h = ALYS__WIRE__HEADERS__INIT;
    h.start = m->start;
    h.n_headers = m->n;
    h.headers = m->items;
    h.truncated = m->truncated;
    pm_verdict_t v = pm_judge_headers(r->start, r->count, &h);
    req_t copy = *r;
    r->expected = NULL;
    req_clear(r);
    peer_outcome_t o = {.kind = v.kind,
                        .latency_ms = (uint32_t) (sim_now(pm->sim) - copy.sent_at),
                        .reason = v.detail};
    record(pm, copy.peer, &o);
    report_headers(pm, &copy, v.report, v.data ? m->items : NULL, v.data ? m->n : 0);
}

static void on_blocks(sim_pm_t *pm, req_t *r, const sim_msg_t *m)
{
    size_t bytes = 0;
    for (size_t i = 0; i < m->n; i++)
        bytes += m->items[i].len;
    Alys__Wire__Blocks bl = ALYS__WIRE__BLOCKS__INIT;
    bl.start = m->start;
    bl.n_blocks = m->n;
    bl.blocks = m->items;
    bl.truncated = m->truncated;
    const uint8_t(*expected)[ALYS_HASH_LEN] = (const uint8_t(*)[ALYS_HASH_LEN]) r->expected;
    pm_verdict_t v = pm_judge_blocks(r->start, r->count, expected, &bl);
    req_t copy = *r;
    r->expected = NULL;
    req_clear(r);
    peer_outcome_t o = {.kind = v.kind,
                        .latency_ms = (uint32_t) (sim_now(pm->sim) - copy.sent_at),
                        .bytes = bytes + 16 * m->n,
                        .blocks = (uint32_t) m->n,
                        .reason = v.detail};
    if (v.conflict) /* peer_net.c: a suspect, not charged */
        peer_table_suspect(pm->table, sim_peer_id(copy.peer), copy.start, copy.start + copy.count,
                           v.detail, sim_now(pm->sim));
    else
        record(pm, copy.peer, &o);
    int delivered = SYNC_OUTCOME_OK;
    if (v.data) {
        reorder_batch_t b = {.request_id = copy.req_id,
                             .peer_id = sim_peer_id(copy.peer),
                             .start = copy.start,
                             .blocks = m->items,
                             .n = m->n,
                             .expected = (const uint8_t(*)[ALYS_HASH_LEN]) copy.expected};
        reorder_ref_t drops[DROPS_MAX];
        size_t nd = 0;
        reorder_insert_t rc = reorder_insert(pm->reorder, &b, drops, DROPS_MAX, &nd);
        report_drops(pm, drops, nd);
        if (rc != REORDER_ACCEPTED)
            delivered = SYNC_OUTCOME_BUSY;
    }
    report_fetch(pm, &copy, pm_judge_fetch_report(&v, delivered));
    free(copy.expected);
    pump(pm);
}

void sim_pm_on_net(sim_t *sim, sim_msg_t *m)
{
    sim_pm_t *pm = sim_get_pm(sim);
    if (m->kind == M_STATUS) {
        on_status(pm, m);
    } else {
        req_t *r = req_take(pm, m->peer, m->wire_id);
        if (!r) {
            /* late or duplicate: ignored */
        } else if (m->kind == M_NOT_FOUND) {
            peer_outcome_t o = {.kind = PEER_OUTCOME_SHORT, .reason = "not found"};
            req_t copy = *r;
            r->expected = NULL;
            req_clear(r);
            record(pm, copy.peer, &o);
            report_failure(pm, &copy, SYNC_OUTCOME_SHORT);
            free(copy.expected);
        } else if ((m->kind == M_HEADERS) != (r->kind == R_HEADERS)) {
            peer_outcome_t o = {.kind = PEER_OUTCOME_VIOLATION, .reason = "wrong kind"};
            req_t copy = *r;
            r->expected = NULL;
            req_clear(r);
            record(pm, copy.peer, &o);
            report_failure(pm, &copy, SYNC_OUTCOME_VIOLATION);
            free(copy.expected);
        } else if (m->kind == M_HEADERS) {
            on_headers(pm, r, m);
        } else {
            on_blocks(pm, r, m);
        }
    }
    sim_msg_free(&m);
}

/* ---- the head from storage (pm_storage.c: at start and every 500 ms) -------------- */

typedef struct {
    uint32_t inc;
    uint64_t asked_at, seq, head;
} head_read_t;

static void head_reply(sim_t *sim, void *arg)
{
    head_read_t *h = arg;
    if (h->inc == sim_incarnation(sim, ACT_PEER_MANAGER)) {
        sim_pm_t *pm = sim_get_pm(sim);
        pm->head_pending = false;
        /* A BatchProcessed that arrived after we asked knows a fresher head. */
        if (h->asked_at >= pm->bp_reply_at) {
            pm->head = h->head;
            reorder_ref_t drops[DROPS_MAX];
            size_t nd = 0;
            reorder_set_head(pm->reorder, h->head, h->seq, drops, DROPS_MAX, &nd);
            report_drops(pm, drops, nd);
            pump(pm);
        }
    }
    free(h);
}

static void head_read(sim_t *sim, void *arg)
{
    head_read_t *h = arg;
    h->head = sim_storage_head(sim, NULL, NULL);
    sim_post(sim, -1, 1, "head", h->head, 0, head_reply, h);
}

static void ask_head(sim_pm_t *pm, uint64_t now)
{
    if (pm->head_pending || (pm->head_at && now - pm->head_at < 500))
        return;
    head_read_t *h = calloc(1, sizeof *h);
    if (!h)
        return;
    h->inc = sim_incarnation(pm->sim, ACT_PEER_MANAGER);
    h->asked_at = now;
    h->seq = reorder_seq(pm->reorder);
    pm->head_pending = true;
    pm->head_at = now;
    sim_post(pm->sim, -1, 1, "get_head", 0, 0, head_read, h);
}

/* ---- timers ------------------------------------------------------------------------ */

static uint64_t backoff(uint32_t failures)
{
    uint64_t ms = 100;
    for (uint32_t i = 1; i < failures && ms < BACKOFF_MAX; i++)
        ms *= 2;
    return ms < BACKOFF_MAX ? ms : BACKOFF_MAX;
}

static void conn_down(sim_pm_t *pm, uint32_t peer)
{
    for (size_t i = 0; i < PM_MAX_REQS; i++) {
        req_t *r = &pm->reqs[i];
        if (r->kind != R_FREE && r->peer == peer)
            req_timed_out(pm, r, "peer stopped answering");
    }
    peer_outcome_t o = {.kind = PEER_OUTCOME_TIMEOUT, .reason = "status probes unanswered"};
    record(pm, peer, &o);
    if (pm->conn[peer].ready)
        conn_lost(pm, peer, "not answering");
}

static void probes(sim_pm_t *pm, uint64_t now)
{
    for (uint32_t p = 0; p < sim_case(pm->sim)->peers; p++) {
        conn_t *c = &pm->conn[p];
        const char *id = sim_peer_id(p);
        if (c->banned_genesis)
            continue;
        if (c->probe_id && now >= c->probe_sent + STATUS_TIMEOUT) {
            c->probe_id = 0;
            c->failures++;
            if (c->ready && c->failures >= DOWN_AFTER)
                conn_down(pm, p);
            c->next_probe = now + (c->ready ? STATUS_EVERY : backoff(c->failures));
        }
        if (c->probe_id || now < c->next_probe)
            continue;
        if (peer_table_contains(pm->table, id) && !c->ready) {
            if (!peer_table_may_connect(pm->table, id, now)) {
                c->next_probe = now + 1000;
                continue;
            }
            peer_table_set_connecting(pm->table, id, now);
        }
        sim_msg_t *m = msg(M_STATUS_REQ, p, ++pm->next_wire);
        if (!m)
            return;
        c->probe_id = m->wire_id;
        c->probe_sent = now;
        c->next_probe = now + STATUS_EVERY;
        sim_net_send(pm->sim, m);
    }
}

static void push_peerset(sim_pm_t *pm, uint64_t now)
{
    if (!pm->dirty && now - pm->peerset_at < 2000)
        return;
    pm->dirty = false;
    pm->peerset_at = now;
    peer_ref_t order[SIM_MAX_PEERS];
    peer_select_req_t req = {.count = SIM_MAX_PEERS};
    size_t n = peer_table_select(pm->table, &req, now, order, SIM_MAX_PEERS);
    for (size_t i = 0; i < n; i++) {
        peer_view_t v;
        if (peer_table_get(pm->table, order[i].id, now, &v) != PEER_OK)
            continue;
        to_sync_t *s = msg_new(pm, 0, order[i].id);
        if (!s)
            return;
        s->height = v.info.reported_height;
        s->rank = (uint32_t) i;
        s->score = v.score;
        to_sync(pm, s, "peerset_entry");
    }
    /* Not selectable (disconnected, banned, low score): gone for sync. */
    peer_view_t views[SIM_MAX_PEERS];
    size_t nv = peer_table_list(pm->table, now, views, SIM_MAX_PEERS);
    for (size_t i = 0; i < nv; i++) {
        bool sel = false;
        for (size_t j = 0; j < n && !sel; j++)
            sel = strcmp(order[j].id, views[i].info.peer_id) == 0;
        if (!sel && views[i].info.state != PEER_STATE_CONNECTING) {
            to_sync_t *s = msg_new(pm, 1, views[i].info.peer_id);
            if (!s)
                return;
            snprintf(s->reason, sizeof s->reason, "%s",
                     views[i].info.state == PEER_STATE_CONNECTED
                         ? "low_score"
                         : peer_state_name(views[i].info.state));
            to_sync(pm, s, "peerset_gone");
        }
    }
    to_sync_t *b = msg_new(pm, 5, "");
    if (b) {
        b->height = peer_table_batch_size(pm->table, now);
        to_sync(pm, b, "batch_size");
    }
}

static void tick(sim_t *sim, void *arg)
{
    if ((uintptr_t) arg != sim_incarnation(sim, ACT_PEER_MANAGER))
        return; /* a dead incarnation's timer */
    sim_pm_t *pm = sim_get_pm(sim);
    uint64_t now = sim_now(sim);
    for (size_t i = 0; i < PM_MAX_REQS; i++) {
        req_t *r = &pm->reqs[i];
        if (r->kind != R_FREE && now >= r->deadline)
            req_timed_out(pm, r, "deadline passed");
    }
    ask_head(pm, now);
    probes(pm, now);
    if (reorder_expire(pm->reorder, now))
        sim_note(sim, "reorder: chunks unanswered by the processor, resending");
    pump(pm);
    if (now - pm->last_table_tick >= 1000) {
        peer_table_tick(pm->table, now);
        pm->last_table_tick = now;
    }
    push_peerset(pm, now);
    sim_post_d(sim, -1, 100, "pm_tick", 0, 0, tick, arg, NULL);
}

sim_pm_t *sim_pm_new(sim_t *sim)
{
    sim_pm_t *pm = calloc(1, sizeof *pm);
    if (!pm)
        return NULL;
    pm->sim = sim;
    /* Ids unique per incarnation (the real PeerManager starts them from its
     * pid): replies meant for a dead incarnation never match. */
    pm->next_wire = pm->next_batch = (uint64_t) sim_incarnation(sim, ACT_PEER_MANAGER) << 40;
    peer_table_config_t cfg;
    peer_table_config_defaults(&cfg);
    pm->table = peer_table_new(&cfg);
    reorder_config_t rc;
    reorder_config_defaults(&rc);
    pm->reorder = reorder_new(&rc);
    if (!pm->table || !pm->reorder) {
        sim_pm_destroy(&pm);
        return NULL;
    }
    return pm;
}

void sim_pm_destroy(sim_pm_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    sim_pm_t *pm = *self_p;
    for (size_t i = 0; i < PM_MAX_REQS; i++)
        free(pm->reqs[i].expected);
    peer_table_destroy(&pm->table);
    reorder_destroy(&pm->reorder);
    free(pm);
    *self_p = NULL;
}

void sim_pm_start(sim_t *sim)
{
    sim_post_d(sim, -1, 0, "pm_tick", 0, 0, tick,
               SIM_INC_ARG(sim_incarnation(sim, ACT_PEER_MANAGER)), NULL);
}

size_t sim_pm_reorder_entries(const sim_t *sim)
{
    return reorder_entries(sim_get_pm_c(sim)->reorder);
}

size_t sim_pm_reorder_bytes(const sim_t *sim)
{
    return reorder_bytes(sim_get_pm_c(sim)->reorder);
}

int sim_pm_score(sim_t *sim, const char *peer, double *score, bool *banned)
{
    sim_pm_t *pm = sim_get_pm(sim);
    peer_view_t v;
    if (peer_table_get(pm->table, peer, sim_now(sim), &v) != PEER_OK)
        return -1;
    *score = v.score;
    *banned = v.info.state == PEER_STATE_BANNED;
    return 0;
}

size_t sim_pm_suspects(const sim_t *sim)
{
    return peer_table_suspect_count(sim_get_pm_c(sim)->table);
}

size_t sim_pm_table_size(const sim_t *sim)
{
    return peer_table_size(sim_get_pm_c(sim)->table);
}

void sim_pm_processor_restarted(sim_t *sim)
{
    sim_pm_t *pm = sim_get_pm(sim);
    if (reorder_on_lost(pm->reorder))
        sim_note(sim, "block processor reconnected: resending");
    pump(pm);
}

size_t sim_pm_export_bans(sim_t *sim, void *out, size_t cap)
{
    return peer_table_export_bans(sim_get_pm(sim)->table, sim_now(sim), out, cap);
}

void sim_pm_import_bans(sim_t *sim, const void *bans, size_t n)
{
    peer_table_import_bans(sim_get_pm(sim)->table, bans, n, sim_now(sim));
}
