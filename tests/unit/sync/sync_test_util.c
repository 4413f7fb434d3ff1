/*  sync_test_util.c: see sync_test_util.h. */
#include <criterion/criterion.h>
#include <string.h>

#include "sync_test_util.h"

sync_machine_config_t t_config(void)
{
    sync_machine_config_t c;
    sync_machine_config_defaults(&c);
    c.adaptive_batch = false;
    c.fixed_batch_size = 256;
    c.download_window = 1024;
    c.max_parallel_downloads = 3;
    c.recovery_backoff_secs = 10;
    c.request_timeout_ms = 5000;
    return c;
}

void t_hash(uint64_t height, alys_hash_t out)
{
    memset(out, 0xA5, sizeof(alys_hash_t));
    memcpy(out, &height, sizeof height);
}

void t_drain(t_harness_t *t)
{
    sync_action_t a;
    while (sync_machine_next_action(t->m, &a)) {
        cr_assert_lt(t->n, T_MAX_ACTS, "test action log overflow");
        t->acts[t->n++] = a;
    }
}

void t_clear(t_harness_t *t)
{
    t_drain(t);
    t->n = 0;
    t->hdr_scan = 0;
}

void t_setup(t_harness_t *t, const sync_machine_config_t *cfg, uint64_t head)
{
    memset(t, 0, sizeof *t);
    t->m = sync_machine_new(cfg);
    cr_assert_not_null(t->m);
    t->now = 1000;
    alys_hash_t h;
    t_hash(head, h);
    cr_assert_eq(sync_machine_init(t->m, t->now, head, h, 0), 0);
    t_drain(t);
}

void t_teardown(t_harness_t *t)
{
    cr_assert_eq(sync_machine_dropped_actions(t->m), 0);
    sync_machine_destroy(&t->m);
    cr_assert_null(t->m);
}

void t_peer(t_harness_t *t, const char *id, uint64_t height)
{
    cr_assert_eq(sync_machine_on_peer_status(t->m, t->now, id, height, 0), 0);
    t_drain(t);
}

void t_commit(t_harness_t *t, uint64_t height)
{
    alys_hash_t h;
    t_hash(height, h);
    cr_assert_eq(sync_machine_on_committed(t->m, t->now, height, h), 0);
    t_drain(t);
}

void t_tick(t_harness_t *t, uint64_t advance_ms)
{
    t->now += advance_ms;
    cr_assert_eq(sync_machine_tick(t->m, t->now), 0);
    t_drain(t);
}

size_t t_count(const t_harness_t *t, sync_action_kind_t kind)
{
    size_t n = 0;
    for (size_t i = 0; i < t->n; i++)
        n += t->acts[i].kind == kind;
    return n;
}

const sync_action_t *t_find(const t_harness_t *t, sync_action_kind_t kind, size_t idx)
{
    for (size_t i = 0; i < t->n; i++)
        if (t->acts[i].kind == kind && idx-- == 0)
            return &t->acts[i];
    return NULL;
}

const sync_action_t *t_last(const t_harness_t *t, sync_action_kind_t kind)
{
    for (size_t i = t->n; i > 0; i--)
        if (t->acts[i - 1].kind == kind)
            return &t->acts[i - 1];
    return NULL;
}

bool t_has_transition(const t_harness_t *t, sync_state_kind_t from, sync_state_kind_t to)
{
    for (size_t i = 0; i < t->n; i++) {
        const sync_action_t *a = &t->acts[i];
        if (a->kind == SYNC_ACTION_STATE_CHANGED && a->state_changed.from == from &&
            a->state_changed.to == to)
            return true;
    }
    return false;
}

bool t_penalised(const t_harness_t *t, const char *peer, sync_penalty_t kind)
{
    for (size_t i = 0; i < t->n; i++) {
        const sync_action_t *a = &t->acts[i];
        if (a->kind == SYNC_ACTION_PENALISE_PEER && a->penalise.kind == kind &&
            strcmp(a->penalise.peer, peer) == 0)
            return true;
    }
    return false;
}

int t_answer_headers(t_harness_t *t, int max_rounds)
{
    int sent = 0;
    while (sent < max_rounds) {
        const sync_action_t *a = NULL;
        for (; t->hdr_scan < t->n; t->hdr_scan++)
            if (t->acts[t->hdr_scan].kind == SYNC_ACTION_FETCH_HEADERS) {
                a = &t->acts[t->hdr_scan++];
                break;
            }
        if (!a)
            break;
        uint64_t req = a->fetch_headers.req_id, start = a->fetch_headers.start;
        uint32_t count = a->fetch_headers.count;
        alys_hash_t parent;
        t_hash(start - 1, parent);
        cr_assert_arr_eq(a->fetch_headers.parent_hash, parent, sizeof parent,
                         "header request %llu carries the wrong parent hash",
                         (unsigned long long) start);
        alys_hash_t *hs = calloc(count, sizeof(alys_hash_t));
        cr_assert_not_null(hs);
        for (uint32_t i = 0; i < count; i++)
            t_hash(start + i, hs[i]);
        cr_assert_eq(sync_machine_on_headers(t->m, t->now, req, SYNC_OUTCOME_OK, start, count,
                                             (const alys_hash_t *) hs),
                     0);
        free(hs);
        t_drain(t);
        sent++;
    }
    return sent;
}

sync_state_kind_t t_state(const t_harness_t *t)
{
    sync_state_t s;
    sync_machine_get_state(t->m, t->now, &s);
    return s.kind;
}

sync_progress_t *t_progress(const t_harness_t *t)
{
    static sync_progress_t p;
    sync_machine_get_progress(t->m, t->now, &p);
    return &p;
}

size_t t_open_fetches(const t_harness_t *t)
{
    return t_progress(t)->ranges_in_flight;
}
