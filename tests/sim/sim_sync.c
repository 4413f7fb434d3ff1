/*  sim_sync.c: the SyncActor adapter. Drives the real sync machine
 *  (actors/sync/sync_machine.h) as the actor's shell does (sync_inbox.c,
 *  sync_act.c): peer reports in, header verification by the actor's own
 *  module (sync_headers.h, with the signature check memoised) before the
 *  machine sees a header, range outcomes and batch outcomes in,
 *  actions out to PeerManager, a tick every 100 ms. It also checks the
 *  machine's own invariants after every input: in-flight ranges within the
 *  window and the parallelism limit, no action dropped.
 *
 *  Core API used (sync_logic): sync_machine_config_defaults,
 *  sync_machine_new, sync_machine_destroy, sync_machine_init,
 *  sync_machine_start, sync_machine_on_peer_status,
 *  sync_machine_on_peer_disconnected, sync_machine_on_peer_score,
 *  sync_machine_on_peer_rank, sync_machine_on_batch_size,
 *  sync_machine_on_headers, sync_machine_on_headers_fork, sync_machine_on_range_outcome,
 *  sync_machine_on_committed, sync_machine_on_block_failed,
 *  sync_machine_on_checkpoint_written, sync_machine_tick,
 *  sync_machine_get_progress, sync_machine_get_batches,
 *  sync_machine_next_action, sync_machine_dropped_actions,
 *  sync_machine_on_processor_restarted,
 *  sync_machine_on_peer_manager_restarted, sync_machine_await_in_flight,
 *  sync_machine_adopt, sync_state_name, sync_penalty_name;
 *  sync_hdr_ring_new, sync_hdr_ring_destroy, sync_hdr_ring_set_check,
 *  sync_headers_judge.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim_internal.h"
#include "sync_headers.h"
#include "sync_machine.h"

#define HCTX_MAX    64
#define HDR_RING    16384 /* as the actor's (sync_core.c) */
#define BATCHES_MAX 256

typedef struct {
    bool used;
    uint64_t req_id, start;
    uint32_t count;
    alys_hash_t parent;
} hctx_t;

struct sim_sync {
    sim_t *sim;
    sync_machine_t *m;
    sync_machine_config_t cfg;
    hctx_t hctx[HCTX_MAX];
    sync_hdr_ring_t *ring; /* verified headers' slots (sync_headers.h) */
    alys_hash_t hashes[SYNC_HEADERS_MAX];
    sync_batch_info_t batches[BATCHES_MAX];
    int state;
};

static void drain(sim_sync_t *s);

/* The header check alone, memoised by the bytes' SHA-256 (a pure function of
 * genesis and bytes): a sweep verifies each header's signature once. */
static bool memo_check(void *ctx, const alys_genesis_t *g, const uint8_t *bytes, size_t len,
                       const alys_header_t *h, alys_verdict_t *v)
{
    return sim_chain_check_header(sim_cache(ctx), g, bytes, len, h, v);
}

sim_sync_t *sim_sync_new(sim_t *sim)
{
    sim_sync_t *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->sim = sim;
    const sim_case_t *c = sim_case(sim);
    sync_machine_config_defaults(&s->cfg);
    s->cfg.checkpoint_interval = c->checkpoint_interval;
    s->cfg.download_window = c->download_window;
    s->cfg.max_parallel_downloads = c->max_parallel;
    s->cfg.random_seed = c->seed;
    /* Unique per incarnation, as the actor's unix ms << 16. */
    s->cfg.req_id_base = 1000 + ((uint64_t) sim_incarnation(sim, ACT_SYNC) << 40);
    s->m = sync_machine_new(&s->cfg);
    s->ring = sync_hdr_ring_new(HDR_RING);
    if (s->ring)
        sync_hdr_ring_set_check(s->ring, memo_check, sim);
    if (!s->m || !s->ring) {
        sim_sync_destroy(&s);
        return NULL;
    }
    return s;
}

void sim_sync_destroy(sim_sync_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    sim_sync_t *s = *self_p;
    sync_machine_destroy(&s->m);
    sync_hdr_ring_destroy(&s->ring);
    free(s);
    *self_p = NULL;
}

/* ---- actions out ------------------------------------------------------------ */

typedef struct {
    int what; /* 0 headers, 1 blocks, 2 penalise, 3 verdict, 4 GetInFlight */
    uint64_t req_id, start;
    uint32_t count, timeout_ms;
    sync_peer_id_t peer;
    int outcome;
    bool valid;
    char reason[SYNC_LOG_MAX / 2];
    alys_hash_t *expected;
} to_pm_t;

static void to_pm_drop(void *arg)
{
    to_pm_t *t = arg;
    free(t->expected);
    free(t);
}

static void to_pm_run(sim_t *sim, void *arg)
{
    to_pm_t *t = arg;
    switch (t->what) {
    case 0:
        sim_pm_fetch_headers(sim, t->req_id, t->peer, t->start, t->count, t->timeout_ms);
        break;
    case 1:
        sim_pm_fetch_blocks(sim, t->req_id, t->peer, t->start, t->count, t->expected, t->timeout_ms);
        break;
    case 2: sim_pm_penalise(sim, t->peer, t->outcome, t->reason); break;
    case 4: sim_pm_get_in_flight(sim); break;
    default: sim_pm_verdict(sim, t->peer, t->start, t->count, t->valid, t->reason); break;
    }
    free(t->expected);
    free(t);
}

static void hctx_add(sim_sync_t *s, const sync_action_t *a)
{
    for (size_t i = 0; i < HCTX_MAX; i++)
        if (!s->hctx[i].used) {
            s->hctx[i] = (hctx_t){.used = true,
                                  .req_id = a->fetch_headers.req_id,
                                  .start = a->fetch_headers.start,
                                  .count = a->fetch_headers.count};
            memcpy(s->hctx[i].parent, a->fetch_headers.parent_hash, ALYS_HASH_LEN);
            return;
        }
    sim_fail(s->sim, "bounded tables", "more than %d header requests in flight", HCTX_MAX);
}

static hctx_t *hctx_find(sim_sync_t *s, uint64_t req_id)
{
    for (size_t i = 0; i < HCTX_MAX; i++)
        if (s->hctx[i].used && s->hctx[i].req_id == req_id)
            return &s->hctx[i];
    return NULL;
}

static void check_window(sim_sync_t *s, uint64_t now)
{
    sync_progress_t p;
    sync_machine_get_progress(s->m, now, &p);
    if (p.ranges_in_flight > s->cfg.max_parallel_downloads)
        sim_fail(s->sim, "in-flight ranges within the limit", "%u ranges in flight, limit %u",
                 p.ranges_in_flight, s->cfg.max_parallel_downloads);
    size_t n = sync_machine_get_batches(s->m, s->batches, BATCHES_MAX);
    for (size_t i = 0; i < n && i < BATCHES_MAX; i++) {
        const sync_batch_info_t *b = &s->batches[i];
        if (b->state != SYNC_BATCH_DOWNLOADING)
            continue;
        if (b->start + b->count - 1 > p.current_height + s->cfg.download_window)
            sim_fail(s->sim, "in-flight ranges within the window",
                     "range [%llu,+%u) downloading with head %llu, window %llu",
                     (unsigned long long) b->start, b->count, (unsigned long long) p.current_height,
                     (unsigned long long) s->cfg.download_window);
    }
    if (sync_machine_dropped_actions(s->m))
        sim_fail(s->sim, "bounded tables", "the sync machine dropped %llu actions",
                 (unsigned long long) sync_machine_dropped_actions(s->m));
}

static void act(sim_sync_t *s, const sync_action_t *a)
{
    to_pm_t *t = NULL;
    switch (a->kind) {
    case SYNC_ACTION_FETCH_HEADERS:
        hctx_add(s, a);
        t = calloc(1, sizeof *t);
        if (!t)
            break;
        t->what = 0;
        t->req_id = a->fetch_headers.req_id;
        t->start = a->fetch_headers.start;
        t->count = a->fetch_headers.count;
        t->timeout_ms = a->fetch_headers.timeout_ms;
        memcpy(t->peer, a->fetch_headers.peer, sizeof t->peer);
        break;
    case SYNC_ACTION_FETCH_BLOCKS:
        t = calloc(1, sizeof *t);
        if (!t)
            break;
        t->what = 1;
        t->req_id = a->fetch_blocks.req_id;
        t->start = a->fetch_blocks.start;
        t->count = a->fetch_blocks.count;
        t->timeout_ms = a->fetch_blocks.timeout_ms;
        memcpy(t->peer, a->fetch_blocks.peer, sizeof t->peer);
        if (a->fetch_blocks.expected && a->fetch_blocks.expected_count == a->fetch_blocks.count) {
            t->expected = malloc((size_t) t->count * sizeof *t->expected);
            if (t->expected)
                memcpy(t->expected, a->fetch_blocks.expected, (size_t) t->count * sizeof *t->expected);
        }
        break;
    case SYNC_ACTION_CANCEL: {
        hctx_t *c = hctx_find(s, a->cancel.req_id);
        if (c)
            c->used = false;
        break;
    }
    case SYNC_ACTION_PENALISE_PEER:
        t = calloc(1, sizeof *t);
        if (!t)
            break;
        t->what = 2;
        memcpy(t->peer, a->penalise.peer, sizeof t->peer);
        t->outcome = a->penalise.kind == SYNC_PENALTY_STALL ? SYNC_OUTCOME_TIMEOUT
                                                            : SYNC_OUTCOME_INVALID;
        snprintf(t->reason, sizeof t->reason, "%s", sync_penalty_name(a->penalise.kind));
        break;
    case SYNC_ACTION_RANGE_VERDICT:
        t = calloc(1, sizeof *t);
        if (!t)
            break;
        t->what = 3;
        memcpy(t->peer, a->range_verdict.peer, sizeof t->peer);
        t->start = a->range_verdict.start;
        t->count = a->range_verdict.count;
        t->valid = a->range_verdict.valid;
        snprintf(t->reason, sizeof t->reason, "%s", a->range_verdict.reason);
        break;
    case SYNC_ACTION_STATE_CHANGED:
        s->state = a->state_changed.to;
        sim_note(s->sim, "sync %s -> %s%s: %s", sync_state_name(a->state_changed.from),
                 sync_state_name(a->state_changed.to), a->state_changed.paused ? " (paused)" : "",
                 a->state_changed.reason);
        break;
    case SYNC_ACTION_ROLLBACK:
        sim_fail(s->sim, "no rollback", "the machine asked for a rollback to %llu",
                 (unsigned long long) a->rollback.height);
        break;
    case SYNC_ACTION_LOG:
        if (a->log.level >= SYNC_LOG_WARN)
            sim_note(s->sim, "sync: %s", a->log.text);
        break;
    default: break; /* checkpoints (storage writes its own), can-produce */
    }
    if (t) {
        const char *label = a->kind == SYNC_ACTION_FETCH_HEADERS   ? "fetch_headers"
                            : a->kind == SYNC_ACTION_FETCH_BLOCKS  ? "fetch_blocks"
                            : a->kind == SYNC_ACTION_PENALISE_PEER ? "penalise"
                                                                   : "range_verdict";
        sim_post_d(s->sim, CH_SYNC_PM, 1, label, t->start, t->count, to_pm_run, t, to_pm_drop);
    }
}

static void drain(sim_sync_t *s)
{
    sync_action_t a;
    while (sync_machine_next_action(s->m, &a))
        act(s, &a);
    check_window(s, sim_now(s->sim));
}

/* ---- inputs ------------------------------------------------------------------ */

void sim_sync_on_peer_status(sim_t *sim, const char *peer, uint64_t height, uint32_t rank, double score)
{
    sim_sync_t *s = sim_get_sync(sim);
    uint64_t now = sim_now(sim);
    if (rank != UINT32_MAX) {
        sync_machine_on_peer_rank(s->m, peer, rank);
        sync_machine_on_peer_score(s->m, peer, score);
    }
    sync_machine_on_peer_status(s->m, now, peer, height, sim_now_slot(sim));
    drain(s);
}

void sim_sync_on_peer_gone(sim_t *sim, const char *peer, const char *reason)
{
    sim_sync_t *s = sim_get_sync(sim);
    sync_machine_on_peer_disconnected(s->m, sim_now(sim), peer, reason);
    drain(s);
}

void sim_sync_on_batch_size(sim_t *sim, uint32_t batch_size)
{
    sim_sync_t *s = sim_get_sync(sim);
    if (batch_size)
        sync_machine_on_batch_size(s->m, batch_size);
    drain(s);
}

void sim_sync_on_headers(sim_t *sim, uint64_t req_id, int outcome, uint64_t start,
                         const ProtobufCBinaryData *headers, size_t n)
{
    (void) start;
    sim_sync_t *s = sim_get_sync(sim);
    uint64_t now = sim_now(sim);
    hctx_t *cp = hctx_find(s, req_id);
    if (!cp)
        return;
    sync_hdr_req_t req = {.req_id = req_id, .start = cp->start, .count = cp->count};
    memcpy(req.parent, cp->parent, ALYS_HASH_LEN);
    cp->used = false;
    /* As sync_inbox.c's on_headers_result: the real verification. */
    char why[256];
    uint32_t count = 0;
    bool fork = false;
    sync_outcome_t o = sync_headers_judge(sim_genesis(sim), s->ring, sim_unix_ms(sim), &req,
                                          (sync_outcome_t) outcome, headers, n, s->hashes, &count,
                                          &fork, why, sizeof why);
    if (fork) {
        sim_note(sim, "headers for [%llu,+%u) are another branch: %s",
                 (unsigned long long) req.start, req.count, why);
        sync_machine_on_headers_fork(s->m, now, req_id);
    } else {
        if (*why)
            sim_note(sim, "invalid headers for [%llu,+%u): %s", (unsigned long long) req.start,
                     req.count, why);
        sync_machine_on_headers(s->m, now, req_id, o, req.start, count,
                                (const alys_hash_t *) s->hashes);
    }
    drain(s);
}

void sim_sync_on_in_flight(sim_t *sim, const Alys__Peer__InFlight *inf)
{
    sim_sync_t *s = sim_get_sync(sim);
    size_t n = inf->n_ranges < SYNC_ADOPT_MAX ? inf->n_ranges : SYNC_ADOPT_MAX;
    sync_adopt_range_t *r = n ? calloc(n, sizeof *r) : NULL;
    if (n && !r) {
        sim_fail(sim, "simulator", "out of memory");
        return;
    }
    for (size_t i = 0; i < n; i++) {
        const Alys__Peer__InFlightRange *x = inf->ranges[i];
        r[i] = (sync_adopt_range_t){.req_id = x->request_id,
                                    .start = x->start,
                                    .count = x->count,
                                    .delivered = x->delivered};
        snprintf(r[i].peer, sizeof r[i].peer, "%s", x->peer_id ? x->peer_id : "");
    }
    if (n)
        sim_note(sim, "sync adopts what PeerManager holds: %zu ranges", n);
    sync_machine_adopt(s->m, sim_now(sim), r, n);
    free(r);
    drain(s);
}

void sim_sync_on_fetch_result(sim_t *sim, uint64_t req_id, int outcome)
{
    sim_sync_t *s = sim_get_sync(sim);
    sync_machine_on_range_outcome(s->m, sim_now(sim), req_id, (sync_outcome_t) outcome);
    drain(s);
}

static bool name_in(const char *name, const char *const *list)
{
    for (size_t i = 0; list[i]; i++)
        if (strcmp(name, list[i]) == 0)
            return true;
    return false;
}

/* sync_bus_reason_is_peer_fault. */
static bool peer_fault(const char *reason, uint64_t failed_height, uint64_t range_start)
{
    static const char *const content[] = {"bad_proposer_signature",
                                          "wrong_proposer",
                                          "bad_tx_signature",
                                          "tx_root_mismatch",
                                          "bad_timestamp",
                                          "bad_nonce",
                                          "insufficient_balance",
                                          "state_root_mismatch",
                                          "malformed",
                                          "oversize",
                                          "header_mismatch",
                                          NULL};
    static const char *const linkage[] = {"parent_mismatch", "height_gap", "non_increasing_slot",
                                          NULL};
    if (!reason || !*reason)
        return false;
    return name_in(reason, content) || (name_in(reason, linkage) && failed_height > range_start);
}

void sim_sync_on_batch_outcome(sim_t *sim, uint64_t head, const alys_hash_t head_hash,
                               bool failed, uint64_t failed_height, uint64_t start,
                               const char *reason, const char *detail)
{
    sim_sync_t *s = sim_get_sync(sim);
    uint64_t now = sim_now(sim);
    sync_machine_on_committed(s->m, now, head, head_hash);
    if (failed && !(strcmp(reason, "dropped") == 0 && strcmp(detail, "after_failure") == 0))
        sync_machine_on_block_failed(s->m, now, failed_height,
                                     peer_fault(reason, failed_height, start), reason);
    drain(s);
}

void sim_sync_on_head(sim_t *sim, uint64_t head, const alys_hash_t hash)
{
    sim_sync_t *s = sim_get_sync(sim);
    sync_machine_on_committed(s->m, sim_now(sim), head, hash);
    drain(s);
}

void sim_sync_head_event(sim_t *sim, void *arg)
{
    uint64_t *h = arg;
    sim_sync_on_head(sim, h[0], (const uint8_t *) (h + 1));
    free(h);
}

void sim_sync_on_checkpoint(sim_t *sim, uint64_t height)
{
    sim_sync_t *s = sim_get_sync(sim);
    sync_machine_on_checkpoint_written(s->m, sim_now(sim), height);
    drain(s);
}

static void tick(sim_t *sim, void *arg)
{
    if ((uintptr_t) arg != sim_incarnation(sim, ACT_SYNC))
        return; /* a dead incarnation's timer */
    sim_sync_t *s = sim_get_sync(sim);
    sync_machine_tick(s->m, sim_now(sim));
    drain(s);
    sim_post_d(sim, -1, 100, "sync_tick", 0, 0, tick, arg, NULL);
}

void sim_sync_on_restarted(sim_t *sim, sim_actor_t actor)
{
    sim_sync_t *s = sim_get_sync(sim);
    if (actor == ACT_PROCESSOR)
        sync_machine_on_processor_restarted(s->m, sim_now(sim));
    else if (actor == ACT_PEER_MANAGER)
        sync_machine_on_peer_manager_restarted(s->m, sim_now(sim));
    drain(s);
}

void sim_sync_start(sim_t *sim)
{
    sim_sync_t *s = sim_get_sync(sim);
    uint64_t now = sim_now(sim);
    /* From the committed head and latest checkpoint, never from genesis. */
    alys_hash_t hash;
    uint64_t head = sim_storage_head(sim, hash, NULL);
    /* As sync_inbox.c: ask PeerManager what it holds of ours; no body goes
     * before its answer or request_timeout_ms. */
    to_pm_t *t = calloc(1, sizeof *t);
    if (t) {
        t->what = 4;
        sync_machine_await_in_flight(s->m, now, s->cfg.request_timeout_ms);
        sim_post_d(sim, CH_SYNC_PM, 1, "get_in_flight", 0, 0, to_pm_run, t, to_pm_drop);
    }
    sync_machine_init(s->m, now, head, hash, sim_storage_last_checkpoint(sim));
    sync_machine_start(s->m, now, false, 0, false, 0);
    drain(s);
    sim_post_d(sim, -1, 100, "sync_tick", 0, 0, tick, SIM_INC_ARG(sim_incarnation(sim, ACT_SYNC)),
               NULL);
}

int sim_sync_state(const sim_t *sim)
{
    return sim_get_sync_c(sim)->state;
}

uint64_t sim_sync_head(const sim_t *sim)
{
    sync_progress_t p;
    sync_machine_get_progress(sim_get_sync_c(sim)->m, sim_now(sim), &p);
    return p.current_height;
}
