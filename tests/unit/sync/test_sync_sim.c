/*  test_sync_sim.c: whole syncs against fake peers, a fake PeerManager and a
 *  fake BlockProcessor, all in one loop with simulated time.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "sync_test_util.h"

enum { HONEST, STALLER, LIAR_DATA, LIAR_HEIGHT, BAD_BLOCKS };

typedef struct {
    const char *id;
    int kind;
    uint64_t latency_ms; /* per request */
    double ms_per_block;
    uint64_t served; /* body ranges answered OK */
    bool penalised;
    uint64_t claim_extra; /* LIAR_HEIGHT: claims this many blocks it lacks */
    uint64_t convicted;   /* RANGE_VERDICT valid=false against it */
} sim_peer_t;

typedef struct {
    bool used;
    bool headers;
    uint64_t req;
    int peer;
    uint64_t start;
    uint32_t count;
    uint64_t due;
    sync_outcome_t outcome;
} sim_req_t;

typedef struct {
    bool used;
    uint64_t start, end;
    int peer;
} sim_range_t; /* end exclusive */

#define SIM_REQS   256
#define SIM_RANGES 256

typedef struct {
    sync_machine_t *m;
    sync_machine_config_t cfg;
    sim_peer_t *peers;
    int npeers;
    uint64_t now;
    uint64_t head;
    sim_req_t reqs[SIM_REQS];
    sim_range_t delivered[SIM_RANGES];
    uint32_t max_in_flight;
    uint64_t fetches;
    bool can_produce_seen;
    uint64_t state_changes;
    uint64_t height; /* the real chain's tip */
} sim_t;

static sim_t S;

static int peer_index(const sim_t *s, const char *id)
{
    for (int i = 0; i < s->npeers; i++)
        if (strcmp(s->peers[i].id, id) == 0)
            return i;
    cr_assert_fail("unknown peer %s", id);
    return -1;
}

static void add_req(sim_t *s, bool headers, uint64_t req, const char *peer, uint64_t start,
                    uint32_t count)
{
    int p = peer_index(s, peer);
    sim_peer_t *sp = &s->peers[p];
    sim_req_t r = {.used = true,
                   .headers = headers,
                   .req = req,
                   .peer = p,
                   .start = start,
                   .count = count,
                   .outcome = SYNC_OUTCOME_OK};
    r.due = s->now + sp->latency_ms +
            (uint64_t) (sp->ms_per_block * (headers ? count / 20.0 : count));
    if (sp->kind == STALLER) { /* PeerManager's own timeout fires */
        r.due = s->now + s->cfg.request_timeout_ms;
        r.outcome = SYNC_OUTCOME_TIMEOUT;
    } else if (sp->kind == LIAR_DATA) {
        r.outcome = SYNC_OUTCOME_INVALID;
    }
    for (int i = 0; i < SIM_REQS; i++)
        if (!s->reqs[i].used) {
            s->reqs[i] = r;
            return;
        }
    cr_assert_fail("too many open requests");
}

static void check_fetch_blocks(sim_t *s, const sync_action_t *a)
{
    uint64_t end = a->fetch_blocks.start + a->fetch_blocks.count - 1;
    cr_assert_gt(a->fetch_blocks.start, s->head, "never below the committed head");
    if (s->cfg.strategy == SYNC_STRATEGY_PARALLEL) {
        cr_assert_leq(end, s->head + s->cfg.download_window, "inside the window");
        cr_assert_eq(a->fetch_blocks.expected_count, a->fetch_blocks.count);
        for (uint32_t i = 0; i < a->fetch_blocks.count; i++) {
            alys_hash_t h;
            t_hash(a->fetch_blocks.start + i, h);
            cr_assert_arr_eq(a->fetch_blocks.expected[i], h, sizeof h);
        }
    } else {
        cr_assert_eq(a->fetch_blocks.count, end - a->fetch_blocks.start + 1);
    }
    s->fetches++;
}

static void cancel_req(sim_t *s, uint64_t req)
{
    for (int i = 0; i < SIM_REQS; i++)
        if (s->reqs[i].used && s->reqs[i].req == req)
            s->reqs[i].used = false;
}

static void drain(sim_t *s)
{
    sync_action_t a;
    while (sync_machine_next_action(s->m, &a)) {
        switch (a.kind) {
        case SYNC_ACTION_FETCH_HEADERS:
            add_req(s, true, a.fetch_headers.req_id, a.fetch_headers.peer, a.fetch_headers.start,
                    a.fetch_headers.count);
            break;
        case SYNC_ACTION_FETCH_BLOCKS:
            check_fetch_blocks(s, &a);
            add_req(s, false, a.fetch_blocks.req_id, a.fetch_blocks.peer, a.fetch_blocks.start,
                    a.fetch_blocks.count);
            break;
        case SYNC_ACTION_CANCEL: cancel_req(s, a.cancel.req_id); break;
        case SYNC_ACTION_PENALISE_PEER:
            s->peers[peer_index(s, a.penalise.peer)].penalised = true;
            break;
        case SYNC_ACTION_CAN_PRODUCE_CHANGED: s->can_produce_seen |= a.can_produce.value; break;
        case SYNC_ACTION_STATE_CHANGED: s->state_changes++; break;
        case SYNC_ACTION_RANGE_VERDICT:
            if (!a.range_verdict.valid)
                s->peers[peer_index(s, a.range_verdict.peer)].convicted++;
            break;
        default: break;
        }
    }
    sync_progress_t pr;
    sync_machine_get_progress(s->m, s->now, &pr);
    if (pr.ranges_in_flight > s->max_in_flight)
        s->max_in_flight = pr.ranges_in_flight;
}

static void add_delivered(sim_t *s, uint64_t start, uint32_t count, int peer)
{
    for (int i = 0; i < SIM_RANGES; i++)
        if (!s->delivered[i].used) {
            s->delivered[i] = (sim_range_t){true, start, start + count, peer};
            return;
        }
    cr_assert_fail("processor queue overflow");
}

static void answer(sim_t *s, sim_req_t *r)
{
    sim_peer_t *p = &s->peers[r->peer];
    if (p->kind == LIAR_HEIGHT && r->start + r->count - 1 > s->height) {
        /* It cannot show what it claims: zero headers, or a short range. */
        if (r->headers)
            sync_machine_on_headers(s->m, s->now, r->req, SYNC_OUTCOME_SHORT, r->start, 0, NULL);
        else
            sync_machine_on_range_outcome(s->m, s->now, r->req, SYNC_OUTCOME_SHORT);
        return;
    }
    if (r->headers) {
        if (r->outcome != SYNC_OUTCOME_OK) {
            sync_machine_on_headers(s->m, s->now, r->req, r->outcome, 0, 0, NULL);
            return;
        }
        static alys_hash_t hs[1 << 16];
        for (uint32_t i = 0; i < r->count; i++)
            t_hash(r->start + i, hs[i]);
        cr_assert_eq(sync_machine_on_headers(s->m, s->now, r->req, SYNC_OUTCOME_OK, r->start,
                                             r->count, (const alys_hash_t *) hs),
                     0);
        return;
    }
    cr_assert_eq(sync_machine_on_range_outcome(s->m, s->now, r->req, r->outcome), 0);
    if (r->outcome == SYNC_OUTCOME_OK) {
        p->served++;
        add_delivered(s, r->start, r->count, r->peer);
    }
}

/* The fake BlockProcessor commits, in order, one delivered range per step. */
static void process(sim_t *s)
{
    for (int i = 0; i < SIM_RANGES; i++) {
        sim_range_t *d = &s->delivered[i];
        if (d->used && d->end - 1 <= s->head)
            d->used = false;
        else if (d->used && d->start <= s->head + 1 && s->peers[d->peer].kind == BAD_BLOCKS) {
            /* Matches its headers but fails validation: the processor drops
             * it and everything it held above. */
            cr_assert_eq(sync_machine_on_block_failed(s->m, s->now, s->head + 1, true,
                                                      "bad_tx_signature"),
                         0);
            for (int k = 0; k < SIM_RANGES; k++)
                s->delivered[k].used = false;
            return;
        } else if (d->used && d->start <= s->head + 1) {
            s->head = d->end - 1;
            d->used = false;
            alys_hash_t h;
            t_hash(s->head, h);
            cr_assert_eq(sync_machine_on_committed(s->m, s->now, s->head, h), 0);
            return;
        }
    }
}

static void sim_step(sim_t *s, uint64_t dt)
{
    drain(s);
    for (int i = 0; i < SIM_REQS; i++)
        if (s->reqs[i].used && s->reqs[i].due <= s->now) {
            sim_req_t r = s->reqs[i];
            s->reqs[i].used = false;
            answer(s, &r);
            drain(s);
        }
    process(s);
    drain(s);
    s->now += dt;
    cr_assert_eq(sync_machine_tick(s->m, s->now), 0);
    drain(s);
}

static void sim_run(sim_t *s, const sync_machine_config_t *cfg, sim_peer_t *peers, int n,
                    uint64_t height, uint64_t max_steps)
{
    memset(s, 0, sizeof *s);
    s->cfg = *cfg;
    s->peers = peers;
    s->npeers = n;
    s->now = 1000;
    s->height = height;
    s->m = sync_machine_new(cfg);
    cr_assert_not_null(s->m);
    alys_hash_t h;
    t_hash(0, h);
    cr_assert_eq(sync_machine_init(s->m, s->now, 0, h, 0), 0);
    for (int i = 0; i < n; i++)
        cr_assert_eq(sync_machine_on_peer_status(s->m, s->now, peers[i].id,
                                                 height + peers[i].claim_extra, height + 100),
                     0);
    for (uint64_t step = 0; step < max_steps; step++) {
        sim_step(s, 5);
        sync_state_t st;
        sync_machine_get_state(s->m, s->now, &st);
        if (st.kind == SYNC_SYNCED && s->head == height)
            break;
    }
}

static void sim_finish(sim_t *s, uint64_t height)
{
    sync_progress_t p;
    sync_machine_get_progress(s->m, s->now, &p);
    cr_assert_eq(p.state, SYNC_SYNCED, "ended %s at %llu", sync_state_name(p.state),
                 (unsigned long long) p.current_height);
    cr_assert_eq(p.current_height, height);
    cr_assert_eq(p.blocks_processed, height);
    cr_assert(sync_machine_can_produce_blocks(s->m));
    cr_assert(p.can_produce_blocks);
    cr_assert(s->can_produce_seen, "CAN_PRODUCE_CHANGED(true) was reported");
    cr_assert_gt(p.blocks_per_second, 0);
    cr_assert_eq(p.eta_seconds, 0);
    cr_assert_eq(sync_machine_dropped_actions(s->m), 0);
    cr_log_info("synced %llu blocks in %.1f simulated s: %llu fetches, %llu retries, "
                "%llu reassignments, %llu state changes",
                (unsigned long long) height, (double) (s->now - 1000) / 1000.0,
                (unsigned long long) s->fetches, (unsigned long long) p.retries,
                (unsigned long long) p.reassignments, (unsigned long long) s->state_changes);
    for (int i = 0; i < s->npeers; i++)
        cr_log_info("  %s: %llu ranges served%s", s->peers[i].id,
                    (unsigned long long) s->peers[i].served,
                    s->peers[i].penalised ? ", penalised" : "");
    sync_machine_destroy(&s->m);
}

Test(sync_sim, full_sync_20000_blocks_from_3_peers)
{
    sim_peer_t peers[] = {
        {.id = "peer-a", .latency_ms = 20, .ms_per_block = 0.05},
        {.id = "peer-b", .latency_ms = 35, .ms_per_block = 0.08},
        {.id = "peer-c", .latency_ms = 50, .ms_per_block = 0.10},
    };
    sync_machine_config_t c = t_config();
    sim_run(&S, &c, peers, 3, 20000, 200000);
    cr_assert_leq(S.max_in_flight, 3);
    for (int i = 0; i < 3; i++) {
        cr_assert_gt(peers[i].served, 0, "%s was used", peers[i].id);
        cr_assert_not(peers[i].penalised, "honest %s penalised", peers[i].id);
    }
    sim_finish(&S, 20000);
}

Test(sync_sim, full_sync_with_a_staller_and_a_bad_data_peer)
{
    sim_peer_t peers[] = {
        {.id = "honest-1", .latency_ms = 20, .ms_per_block = 0.05},
        {.id = "staller", .kind = STALLER, .latency_ms = 20},
        {.id = "honest-2", .latency_ms = 30, .ms_per_block = 0.05},
        {.id = "corrupt", .kind = LIAR_DATA, .latency_ms = 5},
        {.id = "honest-3", .latency_ms = 40, .ms_per_block = 0.05},
    };
    sync_machine_config_t c = t_config();
    c.stall_floor_ms = 200;
    sim_run(&S, &c, peers, 5, 20000, 400000);
    for (int i = 0; i < 5; i++)
        if (peers[i].kind == HONEST)
            cr_assert_not(peers[i].penalised, "honest %s penalised", peers[i].id);
    sync_progress_t p;
    sync_machine_get_progress(S.m, S.now, &p);
    cr_assert_gt(p.retries, 0);
    sim_finish(&S, 20000);
}

Test(sync_sim, sequential_baseline_syncs_one_range_at_a_time)
{
    sim_peer_t peers[] = {
        {.id = "peer-a", .latency_ms = 20, .ms_per_block = 0.05},
        {.id = "peer-b", .latency_ms = 20, .ms_per_block = 0.05},
        {.id = "peer-c", .latency_ms = 20, .ms_per_block = 0.05},
    };
    sync_machine_config_t c = t_config();
    c.strategy = SYNC_STRATEGY_SEQUENTIAL;
    sim_run(&S, &c, peers, 3, 5000, 100000);
    cr_assert_eq(S.max_in_flight, 1);
    cr_assert_eq(S.fetches, 5, "4 x 1024 + 904");
    int used = 0;
    for (int i = 0; i < 3; i++)
        used += peers[i].served > 0;
    cr_assert_eq(used, 1, "one peer");
    sim_finish(&S, 5000);
}

Test(sync_sim, plausible_height_liar_does_not_hold_sync_up)
{
    sim_peer_t peers[] = {
        {.id = "honest-1", .latency_ms = 20, .ms_per_block = 0.05},
        {.id = "tall-tale", .kind = LIAR_HEIGHT, .claim_extra = 50, .latency_ms = 10},
        {.id = "honest-2", .latency_ms = 30, .ms_per_block = 0.05},
    };
    sync_machine_config_t c = t_config();
    sim_run(&S, &c, peers, 3, 3000, 100000);
    sync_progress_t p;
    sync_machine_get_progress(S.m, S.now, &p);
    cr_assert_eq(p.target_height, 3000, "the unproven claim no longer sets the target");
    cr_assert_not(peers[0].penalised);
    cr_assert_not(peers[2].penalised);
    sim_finish(&S, 3000);
}

Test(sync_sim, bad_blocks_convict_only_the_peer_that_served_them)
{
    sim_peer_t peers[] = {
        {.id = "honest-1", .latency_ms = 20, .ms_per_block = 0.05},
        {.id = "bad-blocks", .kind = BAD_BLOCKS, .latency_ms = 5, .ms_per_block = 0.01},
        {.id = "honest-2", .latency_ms = 30, .ms_per_block = 0.05},
    };
    sync_machine_config_t c = t_config();
    sim_run(&S, &c, peers, 3, 8000, 200000);
    cr_assert_gt(peers[1].convicted, 0, "the peer that served bad blocks is convicted");
    cr_assert_eq(peers[0].convicted, 0);
    cr_assert_eq(peers[2].convicted, 0);
    cr_assert_not(peers[0].penalised);
    cr_assert_not(peers[2].penalised);
    sim_finish(&S, 8000);
}
