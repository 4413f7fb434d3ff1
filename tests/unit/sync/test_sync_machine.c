/*  test_sync_machine.c: SyncState transitions and their reasons, resume,
 *  targets, pause, CanProduceBlocks boundaries, checkpoints, failure and
 *  recovery, and the sequential baseline.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "sync_test_util.h"

/* Tests run in their own process: one static harness each is enough and keeps
 * the big action log off the stack. */
static t_harness_t H;
static t_harness_t *t = &H;

static void teardown(void)
{
    if (t->m)
        t_teardown(t);
}
TestSuite(sync_state, .fini = teardown);

static const sync_action_t *last_transition(void)
{
    return t_last(t, SYNC_ACTION_STATE_CHANGED);
}

static bool reason_has(const sync_action_t *a, const char *text)
{
    return a && strstr(a->state_changed.reason, text) != NULL;
}

/* Bring a fresh machine at head 0 to DownloadingBlocks with peers at height. */
static void start_downloading(uint64_t height, int peers)
{
    const char *ids[] = {"A", "B", "C", "D"};
    for (int i = 0; i < peers; i++)
        t_peer(t, ids[i], height);
    t_answer_headers(t, 1);
}

/* ---- transitions ---------------------------------------------------------------- */

Test(sync_state, init_resumes_from_head_in_discovering)
{
    sync_machine_config_t c = t_config();
    t_setup(t, &c, 0);
    cr_assert(t_has_transition(t, SYNC_DISCOVERING, SYNC_DISCOVERING));
    cr_assert(reason_has(last_transition(), "resuming from committed head 0"));
    cr_assert_eq(t_state(t), SYNC_DISCOVERING);
    cr_assert_eq(t_count(t, SYNC_ACTION_FETCH_HEADERS) + t_count(t, SYNC_ACTION_FETCH_BLOCKS), 0);
    cr_assert_not(sync_machine_can_produce_blocks(t->m));
    cr_assert_str_eq(sync_state_name(SYNC_DOWNLOADING_HEADERS), "DownloadingHeaders");
}

Test(sync_state, discovering_to_downloading_headers)
{
    sync_machine_config_t c = t_config();
    t_setup(t, &c, 0);
    t_peer(t, "A", 5000);
    cr_assert(t_has_transition(t, SYNC_DISCOVERING, SYNC_DOWNLOADING_HEADERS));
    cr_assert(reason_has(last_transition(), "5000 blocks behind target 5000"));
    const sync_action_t *f = t_find(t, SYNC_ACTION_FETCH_HEADERS, 0);
    cr_assert_not_null(f);
    cr_assert_eq(f->fetch_headers.start, 1);
    cr_assert_eq(f->fetch_headers.count, 512);
    cr_assert_str_eq(f->fetch_headers.peer, "A");
    sync_state_t s;
    sync_machine_get_state(t->m, t->now, &s);
    cr_assert_eq(s.downloading_headers.target_height, 5000);
    cr_assert_eq(s.downloading_headers.start_height, 0);
    cr_assert_str_eq(s.downloading_headers.peer, "A");
    cr_assert_eq(t_count(t, SYNC_ACTION_FETCH_BLOCKS), 0, "no bodies before verified headers");
}

Test(sync_state, headers_to_downloading_blocks)
{
    sync_machine_config_t c = t_config();
    t_setup(t, &c, 0);
    start_downloading(5000, 1);
    cr_assert(t_has_transition(t, SYNC_DOWNLOADING_HEADERS, SYNC_DOWNLOADING_BLOCKS));
    cr_assert(reason_has(last_transition(), "headers verified up to 512"));
    sync_state_t s;
    sync_machine_get_state(t->m, t->now, &s);
    cr_assert_eq(s.kind, SYNC_DOWNLOADING_BLOCKS);
    cr_assert_eq(s.downloading_blocks.batch_size, 256);
    cr_assert_eq(s.downloading_blocks.peer_count, 1);
    cr_assert_str_eq(s.downloading_blocks.peers[0], "A");
    cr_assert_eq(t_count(t, SYNC_ACTION_FETCH_BLOCKS), 2, "[1,256] and [257,512] only");
}

Test(sync_state, small_gap_catches_up_then_synced)
{
    sync_machine_config_t c = t_config();
    t_setup(t, &c, 0);
    t_peer(t, "A", 100);
    cr_assert(t_has_transition(t, SYNC_DISCOVERING, SYNC_CATCHING_UP));
    cr_assert(reason_has(last_transition(), "100 blocks behind target 100"));
    t_answer_headers(t, 1);
    const sync_action_t *f = t_find(t, SYNC_ACTION_FETCH_BLOCKS, 0);
    cr_assert_not_null(f);
    cr_assert_eq(f->fetch_blocks.start, 1);
    cr_assert_eq(f->fetch_blocks.count, 100, "a partial range is fine at the target");
    cr_assert_eq(sync_machine_on_range_outcome(t->m, t->now, f->fetch_blocks.req_id, SYNC_OUTCOME_OK),
                 0);
    cr_assert_not(sync_machine_can_produce_blocks(t->m));
    t_commit(t, 100);
    cr_assert(t_has_transition(t, SYNC_CATCHING_UP, SYNC_SYNCED));
    cr_assert(reason_has(last_transition(), "reached target height 100"));
    const sync_action_t *cp = t_last(t, SYNC_ACTION_CAN_PRODUCE_CHANGED);
    cr_assert_not_null(cp);
    cr_assert(cp->can_produce.value);
    sync_state_t s;
    sync_machine_get_state(t->m, t->now, &s);
    cr_assert_eq(s.synced.peer_height, 100);
    cr_assert_eq(s.synced.last_check, t->now);
}

Test(sync_state, synced_back_to_catching_up_and_downloading)
{
    sync_machine_config_t c = t_config();
    t_setup(t, &c, 100);
    t_peer(t, "A", 100);
    cr_assert(t_has_transition(t, SYNC_DISCOVERING, SYNC_SYNCED));
    t_peer(t, "A", 105); /* a NewBlock announcement */
    cr_assert(t_has_transition(t, SYNC_SYNCED, SYNC_CATCHING_UP));
    cr_assert(reason_has(last_transition(), "5 blocks behind target 105"));
    t_peer(t, "B", 5000);
    cr_assert(t_has_transition(t, SYNC_CATCHING_UP, SYNC_DOWNLOADING_BLOCKS));
    cr_assert(reason_has(last_transition(), "target moved"));

    t_teardown(t);
    t_setup(t, &c, 100);
    t_peer(t, "A", 100);
    t_peer(t, "A", 9000);
    cr_assert(t_has_transition(t, SYNC_SYNCED, SYNC_DOWNLOADING_BLOCKS),
              "from Synced straight to DownloadingBlocks when far behind");
}

Test(sync_state, peers_not_ahead_means_synced)
{
    sync_machine_config_t c = t_config();
    t_setup(t, &c, 50);
    t_peer(t, "A", 40);
    t_peer(t, "B", 50);
    cr_assert(t_has_transition(t, SYNC_DISCOVERING, SYNC_SYNCED));
    cr_assert(sync_machine_can_produce_blocks(t->m));
    cr_assert_eq(t_count(t, SYNC_ACTION_FETCH_HEADERS), 0);
}

Test(sync_state, solo_node_is_synced)
{
    sync_machine_config_t c = t_config();
    c.solo = true;
    t_setup(t, &c, 7);
    cr_assert(t_has_transition(t, SYNC_DISCOVERING, SYNC_SYNCED));
    cr_assert(sync_machine_can_produce_blocks(t->m));
}

Test(sync_state, no_peers_fails_after_discovery_attempts)
{
    sync_machine_config_t c = t_config();
    t_setup(t, &c, 0);
    for (int i = 0; i < 29; i++)
        t_tick(t, 1000);
    sync_state_t s;
    sync_machine_get_state(t->m, t->now, &s);
    cr_assert_eq(s.kind, SYNC_DISCOVERING);
    cr_assert_eq(s.discovering.attempts, 29);
    t_tick(t, 1000);
    cr_assert(t_has_transition(t, SYNC_DISCOVERING, SYNC_FAILED));
    cr_assert(reason_has(last_transition(), "no usable peers after 30 attempts"));
    sync_machine_get_state(t->m, t->now, &s);
    cr_assert_eq(s.failed.next_retry, t->now + 10000);
}

Test(sync_state, losing_all_peers_goes_back_to_discovering)
{
    sync_machine_config_t c = t_config();
    t_setup(t, &c, 0);
    start_downloading(5000, 1);
    cr_assert_eq(sync_machine_on_peer_disconnected(t->m, t->now, "A", "eof"), 0);
    t_drain(t);
    cr_assert(t_has_transition(t, SYNC_DOWNLOADING_BLOCKS, SYNC_DISCOVERING));
    cr_assert(reason_has(last_transition(), "no usable peers left"));
    t_clear(t);
    t_peer(t, "B", 5000);
    cr_assert(t_has_transition(t, SYNC_DISCOVERING, SYNC_DOWNLOADING_BLOCKS),
              "verified headers are kept: straight back to bodies");
    cr_assert_eq(t_find(t, SYNC_ACTION_FETCH_BLOCKS, 0)->fetch_blocks.start, 1);
}

/* ---- resume, targets ----------------------------------------------------------------- */

Test(sync_state, resume_from_nonzero_head_never_refetches_below)
{
    sync_machine_config_t c = t_config();
    t_setup(t, &c, 5000);
    t_peer(t, "A", 8000);
    t_peer(t, "B", 8000);
    const sync_action_t *h = t_find(t, SYNC_ACTION_FETCH_HEADERS, 0);
    cr_assert_eq(h->fetch_headers.start, 5001); /* parent hash checked by the helper */
    t_answer_headers(t, 20);
    cr_assert_gt(t_count(t, SYNC_ACTION_FETCH_BLOCKS), 0);
    for (size_t i = 0; i < t_count(t, SYNC_ACTION_FETCH_BLOCKS); i++)
        cr_assert_gt(t_find(t, SYNC_ACTION_FETCH_BLOCKS, i)->fetch_blocks.start, 5000);
    sync_state_t s;
    sync_machine_get_state(t->m, t->now, &s);
    cr_assert_eq(s.downloading_blocks.start_height, 5000);
    cr_assert_eq(s.downloading_blocks.current_height, 5000);
}

Test(sync_state, target_capped_by_wall_clock_and_liar_penalised)
{
    sync_machine_config_t c = t_config();
    t_setup(t, &c, 0);
    cr_assert_eq(sync_machine_on_peer_status(t->m, t->now, "A", 1000, 2000), 0);
    cr_assert_eq(sync_machine_on_peer_status(t->m, t->now, "B", 9999, 2000), 0);
    t_drain(t);
    cr_assert(t_penalised(t, "B", SYNC_PENALTY_LIED_HEIGHT));
    cr_assert_not(t_penalised(t, "A", SYNC_PENALTY_LIED_HEIGHT));
    cr_assert_eq(t_progress(t)->target_height, 1000);
    cr_assert_eq(t_progress(t)->highest_peer_height, 1000);
    cr_assert_eq(t_progress(t)->active_peers, 1);
    cr_assert_eq(t_progress(t)->total_peers, 2);
    t_answer_headers(t, 5);
    for (size_t i = 0; i < t->n; i++) {
        const sync_action_t *a = &t->acts[i];
        if (a->kind == SYNC_ACTION_FETCH_BLOCKS)
            cr_assert_str_neq(a->fetch_blocks.peer, "B");
        if (a->kind == SYNC_ACTION_FETCH_HEADERS)
            cr_assert_str_neq(a->fetch_headers.peer, "B");
    }
}

Test(sync_state, start_with_target_stops_at_target)
{
    sync_machine_config_t c = t_config();
    t_setup(t, &c, 0);
    cr_assert_eq(sync_machine_start(t->m, t->now, true, 1, true, 300), 0);
    t_peer(t, "A", 5000);
    t_peer(t, "B", 5000);
    cr_assert_eq(t_progress(t)->target_height, 300);
    t_answer_headers(t, 5);
    for (int round = 0; round < 10 && t_state(t) != SYNC_SYNCED; round++) {
        for (size_t i = 0; i < t_count(t, SYNC_ACTION_FETCH_BLOCKS); i++) {
            const sync_action_t *f = t_find(t, SYNC_ACTION_FETCH_BLOCKS, i);
            cr_assert_leq(f->fetch_blocks.start + f->fetch_blocks.count - 1, 300);
            sync_machine_on_range_outcome(t->m, t->now, f->fetch_blocks.req_id, SYNC_OUTCOME_OK);
        }
        t_drain(t);
        t_commit(t, 300);
    }
    cr_assert(t_has_transition(t, SYNC_CATCHING_UP, SYNC_SYNCED));
    cr_assert(reason_has(last_transition(), "reached target height 300"));
    cr_assert_eq(t_progress(t)->current_height, 300);
    cr_assert_eq(t_progress(t)->highest_peer_height, 5000);
    for (size_t i = 0; i < t_count(t, SYNC_ACTION_FETCH_HEADERS); i++) {
        const sync_action_t *h = t_find(t, SYNC_ACTION_FETCH_HEADERS, i);
        cr_assert_leq(h->fetch_headers.start + h->fetch_headers.count - 1, 300);
    }
}

/* ---- pause ------------------------------------------------------------------------------ */

Test(sync_state, pause_stops_new_fetches_and_resume_continues)
{
    sync_machine_config_t c = t_config();
    t_setup(t, &c, 0);
    start_downloading(5000, 2);
    cr_assert_eq(sync_machine_pause(t->m, t->now), 0);
    t_drain(t);
    const sync_action_t *p = last_transition();
    cr_assert(p->state_changed.paused);
    cr_assert_eq(p->state_changed.from, p->state_changed.to);
    size_t fetches = t_count(t, SYNC_ACTION_FETCH_BLOCKS) + t_count(t, SYNC_ACTION_FETCH_HEADERS);
    /* In-flight work still completes while paused... */
    for (size_t i = 0; i < t_count(t, SYNC_ACTION_FETCH_BLOCKS); i++)
        sync_machine_on_range_outcome(t->m, t->now,
                                      t_find(t, SYNC_ACTION_FETCH_BLOCKS, i)->fetch_blocks.req_id,
                                      SYNC_OUTCOME_OK);
    t_answer_headers(t, 3);
    t_commit(t, 256);
    t_tick(t, 1000);
    /* ...but nothing new is asked for. */
    cr_assert_eq(t_count(t, SYNC_ACTION_FETCH_BLOCKS) + t_count(t, SYNC_ACTION_FETCH_HEADERS),
                 fetches);
    cr_assert(t_progress(t)->paused);
    cr_assert_eq(sync_machine_resume(t->m, t->now), 0);
    t_drain(t);
    cr_assert_not(last_transition()->state_changed.paused);
    cr_assert_gt(t_count(t, SYNC_ACTION_FETCH_BLOCKS) + t_count(t, SYNC_ACTION_FETCH_HEADERS),
                 fetches);
}

/* ---- CanProduceBlocks ---------------------------------------------------------------------- */

Test(sync_state, can_produce_at_9_10_11_blocks_behind)
{
    sync_machine_config_t c = t_config();
    t_setup(t, &c, 19989);
    t_peer(t, "A", 20000);
    cr_assert_eq(t_state(t), SYNC_CATCHING_UP);
    cr_assert_eq(t_progress(t)->blocks_behind, 11);
    cr_assert_not(sync_machine_can_produce_blocks(t->m), "11 behind: no");
    cr_assert_eq(t_count(t, SYNC_ACTION_CAN_PRODUCE_CHANGED), 0);
    t_commit(t, 19990);
    cr_assert(sync_machine_can_produce_blocks(t->m), "10 behind: yes");
    cr_assert(t_last(t, SYNC_ACTION_CAN_PRODUCE_CHANGED)->can_produce.value);
    t_commit(t, 19991);
    cr_assert(sync_machine_can_produce_blocks(t->m), "9 behind: yes");
    cr_assert_eq(t_count(t, SYNC_ACTION_CAN_PRODUCE_CHANGED), 1, "reported on flips only");
    t_peer(t, "A", 20002); /* 11 behind again */
    cr_assert_not(sync_machine_can_produce_blocks(t->m));
    cr_assert_not(t_last(t, SYNC_ACTION_CAN_PRODUCE_CHANGED)->can_produce.value);
    cr_assert_not(t_progress(t)->can_produce_blocks);
}

Test(sync_state, can_produce_at_99_4_and_99_5_percent)
{
    sync_machine_config_t c = t_config();
    c.production_max_blocks_behind = 1000; /* only the percentage decides here */
    t_setup(t, &c, 9940);
    t_peer(t, "A", 10000);
    cr_assert_eq(t_state(t), SYNC_CATCHING_UP);
    cr_assert_float_eq(t_progress(t)->percent, 99.4, 1e-9);
    cr_assert_not(sync_machine_can_produce_blocks(t->m), "99.4%%: no");
    t_commit(t, 9950);
    cr_assert_float_eq(t_progress(t)->percent, 99.5, 1e-9);
    cr_assert(sync_machine_can_produce_blocks(t->m), "99.5%%: yes");

    t_teardown(t);
    c = t_config(); /* defaults: 10 behind and 99.5% */
    t_setup(t, &c, 994);
    t_peer(t, "A", 1000);
    cr_assert_not(sync_machine_can_produce_blocks(t->m), "6 behind but 99.4%%: no");
    t_commit(t, 995);
    cr_assert(sync_machine_can_produce_blocks(t->m), "5 behind and 99.5%%: yes");
}

/* ---- checkpoints ----------------------------------------------------------------------------- */

Test(sync_state, create_checkpoint_and_track_written)
{
    sync_machine_config_t c = t_config();
    t_setup(t, &c, 0);
    t_peer(t, "A", 100);
    t_commit(t, 42);
    cr_assert_eq(sync_machine_create_checkpoint(t->m, t->now), 0);
    t_drain(t);
    cr_assert_eq(t_last(t, SYNC_ACTION_CREATE_CHECKPOINT)->create_checkpoint.height, 42);
    cr_assert_eq(sync_machine_on_checkpoint_written(t->m, t->now, 100), 0);
    cr_assert_eq(sync_machine_on_checkpoint_written(t->m, t->now, 50), 0);
    cr_assert_eq(t_progress(t)->last_checkpoint, 100);
    cr_assert_eq(t_progress(t)->checkpoint_frequency, 100);
}

Test(sync_state, recover_from_checkpoint_rolls_back_and_resumes)
{
    sync_machine_config_t c = t_config();
    t_setup(t, &c, 500);
    t_peer(t, "A", 400);
    cr_assert_eq(t_state(t), SYNC_SYNCED);
    alys_hash_t h;
    t_hash(200, h);
    cr_assert_eq(sync_machine_recover_from_checkpoint(t->m, t->now, 600, h), -1, "above the head");
    t_clear(t);
    cr_assert_eq(sync_machine_recover_from_checkpoint(t->m, t->now, 200, h), 0);
    t_drain(t);
    cr_assert_eq(t_find(t, SYNC_ACTION_ROLLBACK, 0)->rollback.height, 200);
    cr_assert(t_has_transition(t, SYNC_SYNCED, SYNC_DISCOVERING));
    cr_assert(reason_has(t_find(t, SYNC_ACTION_STATE_CHANGED, 0), "checkpoint at height 200"));
    cr_assert(t_has_transition(t, SYNC_DISCOVERING, SYNC_CATCHING_UP));
    cr_assert_eq(t_find(t, SYNC_ACTION_FETCH_HEADERS, 0)->fetch_headers.start, 201);
    cr_assert_eq(t_progress(t)->current_height, 200);
    cr_assert_eq(t_answer_headers(t, 1), 1); /* parent = hash of 200 */
}

/* ---- failure and recovery ----------------------------------------------------------------------- */

/* Time out whatever holds height 1 until the machine gives up. */
static void fail_window_head(void)
{
    uint64_t last_req = 0;
    for (int i = 0; i < 60 && t_state(t) != SYNC_FAILED; i++) {
        t_answer_headers(t, 10);
        const sync_action_t *f = NULL;
        for (size_t k = t->n; k > 0 && !f; k--)
            if (t->acts[k - 1].kind == SYNC_ACTION_FETCH_BLOCKS &&
                t->acts[k - 1].fetch_blocks.start == 1)
                f = &t->acts[k - 1];
        if (f && f->fetch_blocks.req_id != last_req) {
            last_req = f->fetch_blocks.req_id;
            sync_machine_on_range_outcome(t->m, t->now, last_req, SYNC_OUTCOME_TIMEOUT);
            t_drain(t);
        } else {
            t_tick(t, 2000);
        }
    }
    cr_assert_eq(t_state(t), SYNC_FAILED);
}

Test(sync_state, repeated_failures_fail_with_details_then_recover)
{
    sync_machine_config_t c = t_config();
    c.max_recovery_attempts = 2;
    t_setup(t, &c, 0);
    t_peer(t, "A", 5000);
    t_peer(t, "B", 5000);
    fail_window_head();
    cr_assert(reason_has(last_transition(), "range [1,257) failed 5 times (last: timeout"));
    sync_state_t s;
    sync_machine_get_state(t->m, t->now, &s);
    cr_assert_eq(s.failed.last_good_height, 0);
    cr_assert_eq(s.failed.recovery_attempts, 0);
    cr_assert_eq(s.failed.next_retry, t->now + 10000);
    cr_assert_eq(t_progress(t)->ranges_in_flight, 0, "everything was cancelled");
    uint64_t retry_at = s.failed.next_retry;

    /* Recovery waits for the backoff, then restarts from the committed head. */
    t_clear(t);
    t_tick(t, retry_at - t->now - 1);
    cr_assert_eq(t_count(t, SYNC_ACTION_RECOVERED), 0);
    t_tick(t, 1);
    const sync_action_t *r = t_find(t, SYNC_ACTION_RECOVERED, 0);
    cr_assert_not_null(r);
    cr_assert_eq(r->recovered.attempt, 1);
    cr_assert_eq(r->recovered.from_height, 0);
    cr_assert(t_has_transition(t, SYNC_FAILED, SYNC_DISCOVERING));
    cr_assert(reason_has(t_find(t, SYNC_ACTION_STATE_CHANGED, 0), "auto recovery 1/2"));
    cr_assert(t_has_transition(t, SYNC_DISCOVERING, SYNC_DOWNLOADING_HEADERS));
    cr_assert_eq(t_find(t, SYNC_ACTION_FETCH_HEADERS, 0)->fetch_headers.start, 1);

    /* Second failure and recovery. */
    fail_window_head();
    sync_machine_get_state(t->m, t->now, &s);
    cr_assert_eq(s.failed.recovery_attempts, 1);
    cr_assert_neq(s.failed.next_retry, 0);
    t_tick(t, 10000);
    cr_assert_eq(t_count(t, SYNC_ACTION_RECOVERED), 2);

    /* Third failure: out of counted recoveries, but peers may come back
     * (issue 9: never give up for good): Failed stays visible, and it
     * retries every backoff. */
    fail_window_head();
    sync_machine_get_state(t->m, t->now, &s);
    cr_assert_eq(s.failed.recovery_attempts, 2);
    cr_assert_eq(s.failed.next_retry, t->now + 10000, "still retrying");
    t_clear(t);
    t_tick(t, 9999);
    cr_assert_eq(t_state(t), SYNC_FAILED, "Failed stays visible until the retry");
    t_tick(t, 1);
    cr_assert_eq(t_count(t, SYNC_ACTION_RECOVERED), 1);
    cr_assert(reason_has(t_find(t, SYNC_ACTION_STATE_CHANGED, 0), "auto recovery 3 (past 2"));
    /* StartSync still works at any time. */
    fail_window_head();
    cr_assert_eq(t_state(t), SYNC_FAILED);
    t_clear(t);
    cr_assert_eq(sync_machine_start(t->m, t->now, false, 0, false, 0), 0);
    t_drain(t);
    cr_assert(t_has_transition(t, SYNC_FAILED, SYNC_DISCOVERING));
    cr_assert(reason_has(t_find(t, SYNC_ACTION_STATE_CHANGED, 0), "StartSync"));
    cr_assert_neq(t_state(t), SYNC_FAILED);
}

Test(sync_state, no_auto_recovery_when_disabled)
{
    sync_machine_config_t c = t_config();
    c.auto_recovery = false;
    t_setup(t, &c, 0);
    t_peer(t, "A", 5000);
    fail_window_head();
    sync_state_t s;
    sync_machine_get_state(t->m, t->now, &s);
    cr_assert_eq(s.failed.next_retry, 0);
}

/* ---- sequential baseline -------------------------------------------------------------------------- */

static void setup_sequential(uint64_t seed)
{
    sync_machine_config_t c = t_config();
    c.strategy = SYNC_STRATEGY_SEQUENTIAL;
    c.random_seed = seed;
    memset(t, 0, sizeof *t);
    t->m = sync_machine_new(&c);
    t->now = 1000;
    const char *ids[] = {"A", "B", "C"};
    for (int i = 0; i < 3; i++) /* peers known before the head is */
        cr_assert_eq(sync_machine_on_peer_status(t->m, t->now, ids[i], 5000, 0), 0);
    alys_hash_t h;
    t_hash(0, h);
    cr_assert_eq(sync_machine_init(t->m, t->now, 0, h, 0), 0);
    t_drain(t);
}

Test(sync_state, sequential_one_peer_1024_one_at_a_time)
{
    setup_sequential(42);
    cr_assert(t_has_transition(t, SYNC_DISCOVERING, SYNC_DOWNLOADING_BLOCKS));
    cr_assert_eq(t_count(t, SYNC_ACTION_FETCH_HEADERS), 0, "the old code had no headers phase");
    cr_assert_eq(t_count(t, SYNC_ACTION_FETCH_BLOCKS), 1);
    const sync_action_t *f = t_find(t, SYNC_ACTION_FETCH_BLOCKS, 0);
    cr_assert_eq(f->fetch_blocks.start, 1);
    cr_assert_eq(f->fetch_blocks.count, 1024);
    cr_assert_null(f->fetch_blocks.expected);
    char peer[SYNC_PEER_ID_MAX + 1];
    snprintf(peer, sizeof peer, "%s", f->fetch_blocks.peer);

    sync_machine_on_range_outcome(t->m, t->now, f->fetch_blocks.req_id, SYNC_OUTCOME_OK);
    t_drain(t);
    cr_assert_eq(t_count(t, SYNC_ACTION_FETCH_BLOCKS), 1, "next only after processing");
    t_commit(t, 1000);
    cr_assert_eq(t_count(t, SYNC_ACTION_FETCH_BLOCKS), 1);
    t_commit(t, 1024);
    cr_assert_eq(t_count(t, SYNC_ACTION_FETCH_BLOCKS), 2);
    f = t_find(t, SYNC_ACTION_FETCH_BLOCKS, 1);
    cr_assert_eq(f->fetch_blocks.start, 1025);
    cr_assert_eq(f->fetch_blocks.count, 1024);
    cr_assert_str_eq(f->fetch_blocks.peer, peer, "the same one peer");

    /* Deterministic from the seed. */
    t_teardown(t);
    setup_sequential(42);
    cr_assert_str_eq(t_find(t, SYNC_ACTION_FETCH_BLOCKS, 0)->fetch_blocks.peer, peer);
}

Test(sync_state, sequential_stops_on_first_error)
{
    setup_sequential(7);
    const sync_action_t *f = t_find(t, SYNC_ACTION_FETCH_BLOCKS, 0);
    sync_machine_on_range_outcome(t->m, t->now, f->fetch_blocks.req_id, SYNC_OUTCOME_TIMEOUT);
    t_drain(t);
    cr_assert(t_has_transition(t, SYNC_DOWNLOADING_BLOCKS, SYNC_FAILED));
    cr_assert(reason_has(last_transition(), "sequential: range [1,1025) timeout"));
    sync_state_t s;
    sync_machine_get_state(t->m, t->now, &s);
    cr_assert_eq(s.failed.next_retry, 0, "no auto recovery in the baseline");
    t_tick(t, 3600 * 1000);
    cr_assert_eq(t_state(t), SYNC_FAILED);
    cr_assert_eq(t_count(t, SYNC_ACTION_RECOVERED), 0);
    cr_assert_eq(t_count(t, SYNC_ACTION_FETCH_BLOCKS), 1);
}

Test(sync_state, sequential_stops_on_invalid_block)
{
    setup_sequential(7);
    const sync_action_t *f = t_find(t, SYNC_ACTION_FETCH_BLOCKS, 0);
    sync_machine_on_range_outcome(t->m, t->now, f->fetch_blocks.req_id, SYNC_OUTCOME_OK);
    cr_assert_eq(sync_machine_on_block_failed(t->m, t->now, 10, true, "bad_tx_signature"), 0);
    t_drain(t);
    cr_assert_eq(t_state(t), SYNC_FAILED);
    cr_assert(reason_has(last_transition(), "bad_tx_signature"));
    cr_assert_eq(t_count(t, SYNC_ACTION_FETCH_BLOCKS), 1);
}

Test(sync_state, sequential_reissues_lost_requests_without_stopping)
{
    setup_sequential(7);
    uint64_t req = t_find(t, SYNC_ACTION_FETCH_BLOCKS, 0)->fetch_blocks.req_id;
    cr_assert_eq(sync_machine_on_peer_manager_restarted(t->m, t->now), 0);
    t_drain(t);
    cr_assert_eq(t_count(t, SYNC_ACTION_FETCH_BLOCKS), 2);
    const sync_action_t *f = t_find(t, SYNC_ACTION_FETCH_BLOCKS, 1);
    cr_assert_neq(f->fetch_blocks.req_id, req);
    cr_assert_eq(f->fetch_blocks.start, 1);
    cr_assert_str_eq(f->fetch_blocks.peer, t_find(t, SYNC_ACTION_FETCH_BLOCKS, 0)->fetch_blocks.peer);
    cr_assert_neq(t_state(t), SYNC_FAILED, "a lost request is not the peer's error");
}

/* ---- partitions and min_sync_peers (issue 9) ------------------------------------------------------- */

Test(sync_state, failed_with_no_peers_recovers_at_once_when_a_peer_appears)
{
    sync_machine_config_t c = t_config();
    c.max_recovery_attempts = 0; /* straight to the retry-for-ever regime */
    t_setup(t, &c, 0);
    for (int i = 0; i < 30; i++)
        t_tick(t, 1000);
    cr_assert_eq(t_state(t), SYNC_FAILED, "no peers for 30 attempts");
    sync_state_t s;
    sync_machine_get_state(t->m, t->now, &s);
    cr_assert_gt(s.failed.next_retry, t->now, "a retry is scheduled, not abandoned");
    t_clear(t);
    t_peer(t, "A", 500);
    t_tick(t, 1);
    cr_assert_eq(t_count(t, SYNC_ACTION_RECOVERED), 1, "recovered without waiting the backoff");
    cr_assert_neq(t_state(t), SYNC_FAILED);
}

Test(sync_state, an_isolated_synced_node_stops_being_allowed_to_produce_and_resumes)
{
    sync_machine_config_t c = t_config();
    c.min_sync_peers = 1;
    c.isolation_grace_ms = 2000;
    t_setup(t, &c, 50);
    t_peer(t, "A", 50);
    cr_assert_eq(t_state(t), SYNC_SYNCED);
    cr_assert(sync_machine_can_produce_blocks(t->m));
    cr_assert_eq(sync_machine_on_peer_disconnected(t->m, t->now, "A", "eof"), 0);
    t_tick(t, 1999);
    cr_assert_eq(t_state(t), SYNC_SYNCED, "a blip shorter than the grace is not isolation");
    cr_assert(sync_machine_can_produce_blocks(t->m));
    t_tick(t, 1);
    cr_assert_eq(t_state(t), SYNC_DISCOVERING);
    cr_assert(reason_has(last_transition(), "min_sync_peers 1"));
    cr_assert_not(sync_machine_can_produce_blocks(t->m), "isolated: may not produce");
    t_peer(t, "B", 50);
    cr_assert_eq(t_state(t), SYNC_SYNCED, "peers back: Synced again");
    cr_assert(sync_machine_can_produce_blocks(t->m));
}

Test(sync_state, below_min_sync_peers_downloads_but_is_not_synced)
{
    sync_machine_config_t c = t_config();
    c.min_sync_peers = 2;
    t_setup(t, &c, 0);
    t_peer(t, "A", 100);
    t_answer_headers(t, 1);
    cr_assert_gt(t_count(t, SYNC_ACTION_FETCH_BLOCKS), 0, "one peer is enough to download from");
    t_commit(t, 100);
    cr_assert_neq(t_state(t), SYNC_SYNCED, "at the target with 1 of 2 peers");
    cr_assert_not(sync_machine_can_produce_blocks(t->m));
    t_peer(t, "B", 100);
    cr_assert_eq(t_state(t), SYNC_SYNCED);
    cr_assert(sync_machine_can_produce_blocks(t->m));
}

Test(sync_state, min_sync_peers_0_lets_a_lone_node_be_synced)
{
    sync_machine_config_t c = t_config();
    c.min_sync_peers = 0;
    t_setup(t, &c, 9);
    t_tick(t, 1);
    cr_assert_eq(t_state(t), SYNC_SYNCED);
    cr_assert(sync_machine_can_produce_blocks(t->m));
}

Test(sync_state, no_bootstrap_peers_ignores_min_sync_peers)
{
    sync_machine_config_t c = t_config();
    c.solo = true;
    c.min_sync_peers = 3;
    t_setup(t, &c, 7);
    t_tick(t, 10000);
    cr_assert_eq(t_state(t), SYNC_SYNCED, "the network is this node");
}
