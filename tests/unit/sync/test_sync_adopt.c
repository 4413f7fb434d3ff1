/*  test_sync_adopt.c: a restarted SyncActor adopts what PeerManager still
 *  holds for it (sync_machine_await_in_flight, sync_machine_adopt) instead
 *  of fetching it again.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "sync_test_util.h"

static t_harness_t H;
static t_harness_t *t = &H;

static void teardown(void)
{
    if (t->m)
        t_teardown(t);
}
TestSuite(sync_adopt, .fini = teardown);

#define OLD_ID ((uint64_t) 1 << 40) /* an earlier incarnation's request ids */
#define HEAD   100

static sync_adopt_range_t range(uint64_t req, const char *peer, uint64_t start, uint32_t count,
                                bool delivered)
{
    sync_adopt_range_t r = {.req_id = req, .start = start, .count = count, .delivered = delivered};
    snprintf(r.peer, sizeof r.peer, "%s", peer);
    return r;
}

static void start_awaiting(void)
{
    sync_machine_config_t c = t_config();
    t_setup(t, &c, HEAD);
    cr_assert_eq(sync_machine_await_in_flight(t->m, t->now, c.request_timeout_ms), 0);
    t_peer(t, "A", 5000);
    t_peer(t, "B", 5000);
    t_peer(t, "C", 5000);
}

static void adopt(const sync_adopt_range_t *r, size_t n)
{
    cr_assert_eq(sync_machine_adopt(t->m, t->now, r, n), 0);
    t_drain(t);
}

/* Body fetches recorded whose range starts at or below height. */
static size_t fetches_at_or_below(uint64_t height)
{
    size_t n = 0;
    for (size_t i = 0; i < t->n; i++)
        n += t->acts[i].kind == SYNC_ACTION_FETCH_BLOCKS && t->acts[i].fetch_blocks.start <= height;
    return n;
}

static const sync_action_t *last_fetch_at(uint64_t start)
{
    for (size_t k = t->n; k > 0; k--)
        if (t->acts[k - 1].kind == SYNC_ACTION_FETCH_BLOCKS &&
            t->acts[k - 1].fetch_blocks.start == start)
            return &t->acts[k - 1];
    return NULL;
}

static size_t batches(sync_batch_info_t *out, size_t cap)
{
    return sync_machine_get_batches(t->m, out, cap);
}

Test(sync_adopt, no_body_dispatch_before_the_reply_or_the_timeout)
{
    start_awaiting();
    cr_assert_gt(t_answer_headers(t, 8), 0, "headers go while bodies wait");
    cr_assert_eq(t_count(t, SYNC_ACTION_FETCH_BLOCKS), 0);
    cr_assert(sync_machine_awaiting_in_flight(t->m, t->now));
    t_tick(t, 4900);
    cr_assert_eq(t_count(t, SYNC_ACTION_FETCH_BLOCKS), 0, "a body went before the timeout");
    t_tick(t, 200);
    cr_assert_gt(t_count(t, SYNC_ACTION_FETCH_BLOCKS), 0, "nothing fetched after the timeout");
    cr_assert_eq(last_fetch_at(HEAD + 1)->fetch_blocks.expected_count, 256);
}

Test(sync_adopt, an_empty_reply_ends_the_wait_at_once)
{
    start_awaiting();
    t_answer_headers(t, 8);
    adopt(NULL, 0);
    cr_assert_not(sync_machine_awaiting_in_flight(t->m, t->now));
    cr_assert_not_null(last_fetch_at(HEAD + 1), "the window head was not fetched");
}

Test(sync_adopt, in_flight_and_delivered_ranges_become_batches_with_their_ids)
{
    start_awaiting();
    sync_adopt_range_t r[] = {range(OLD_ID + 2, "B", 357, 256, false),
                              range(OLD_ID + 1, "A", 101, 256, true)};
    adopt(r, 2);
    sync_batch_info_t b[8];
    cr_assert_geq(batches(b, 8), 2);
    cr_assert_eq(b[0].start, 101);
    cr_assert_eq(b[0].req_id, OLD_ID + 1);
    cr_assert_eq(b[0].state, SYNC_BATCH_PROCESSING, "delivered at the head: processing");
    cr_assert_str_eq(b[0].peer, "A");
    cr_assert_eq(b[1].start, 357);
    cr_assert_eq(b[1].req_id, OLD_ID + 2);
    cr_assert_eq(b[1].state, SYNC_BATCH_DOWNLOADING);
    cr_assert_str_eq(b[1].peer, "B");
    cr_assert_eq(fetches_at_or_below(612), 0, "an adopted range was fetched again");
    /* Results for the adopted ids are handled like any other. */
    cr_assert_eq(sync_machine_on_range_outcome(t->m, t->now, OLD_ID + 2, SYNC_OUTCOME_OK), 0);
    t_drain(t);
    batches(b, 8);
    cr_assert_eq(b[1].state, SYNC_BATCH_AWAITING_PROCESSING);
    t_commit(t, 612);
    t_answer_headers(t, 8);
    t_tick(t, 100);
    cr_assert_eq(fetches_at_or_below(612), 0, "an adopted range was fetched again");
    cr_assert_not_null(last_fetch_at(613), "the window did not move on");
    /* New request ids never collide with the adopted ones. */
    cr_assert_gt(last_fetch_at(613)->fetch_blocks.req_id, OLD_ID + 2);
}

Test(sync_adopt, gaps_become_waiting_batches_and_ranges_below_the_head_are_ignored)
{
    start_awaiting();
    sync_adopt_range_t r[] = {range(OLD_ID + 1, "A", 1, 50, true),      /* committed */
                              range(OLD_ID + 2, "A", 90, 20, true),     /* -> 101..109 */
                              range(OLD_ID + 3, "B", 200, 100, false),  /* gap 110..199 */
                              range(OLD_ID + 4, "C", 200, 100, false)}; /* overlaps: skipped */
    adopt(r, 4);
    sync_batch_info_t b[8];
    size_t n = batches(b, 8);
    cr_assert_eq(n, 3);
    cr_assert_eq(b[0].start, 101);
    cr_assert_eq(b[0].count, 9);
    cr_assert_eq(b[0].req_id, OLD_ID + 2);
    cr_assert_eq(b[1].start, 110);
    cr_assert_eq(b[1].count, 90);
    cr_assert_eq(b[2].start, 200);
    cr_assert_eq(b[2].state, SYNC_BATCH_DOWNLOADING);
    cr_assert(b[2].req_id == OLD_ID + 3 || b[2].req_id == OLD_ID + 4);
    /* The gap went out at once, without hashes (no header verified yet). */
    const sync_action_t *gap = last_fetch_at(110);
    cr_assert_not_null(gap, "the gap was not fetched");
    cr_assert_eq(gap->fetch_blocks.count, 90);
    cr_assert_eq(gap->fetch_blocks.expected_count, 0);
    cr_assert_eq(fetches_at_or_below(109), 0);
    cr_assert_eq(t_progress(t)->ranges_in_flight, 2);
}

Test(sync_adopt, a_failed_adopted_range_is_retried_elsewhere_with_hashes_once_verified)
{
    start_awaiting();
    sync_adopt_range_t r[] = {range(OLD_ID + 1, "A", 101, 256, false)};
    adopt(r, 1);
    cr_assert_eq(sync_machine_on_range_outcome(t->m, t->now, OLD_ID + 1, SYNC_OUTCOME_TIMEOUT), 0);
    t_drain(t);
    const sync_action_t *f = last_fetch_at(101);
    cr_assert_not_null(f, "the failed range was not retried");
    cr_assert_str_neq(f->fetch_blocks.peer, "A");
    cr_assert_eq(f->fetch_blocks.expected_count, 0, "no verified header: fetched without hashes");
    /* Once the headers are verified, the next retry carries them. */
    t_answer_headers(t, 8);
    cr_assert_eq(sync_machine_on_range_outcome(t->m, t->now, f->fetch_blocks.req_id,
                                               SYNC_OUTCOME_TIMEOUT),
                 0);
    t_tick(t, 100);
    f = last_fetch_at(101);
    cr_assert_not_null(f);
    cr_assert_eq(f->fetch_blocks.expected_count, 256);
    sync_batch_info_t b[8];
    batches(b, 8);
    cr_assert_eq(b[0].attempts, 2);
}

Test(sync_adopt, a_refused_delivered_range_is_fetched_again_from_another_peer)
{
    start_awaiting();
    sync_adopt_range_t r[] = {range(OLD_ID + 1, "A", 101, 256, true)};
    adopt(r, 1);
    cr_assert_eq(sync_machine_on_block_failed(t->m, t->now, 120, true, "bad_signature"), 0);
    t_drain(t);
    t_tick(t, 100);
    const sync_action_t *f = last_fetch_at(101);
    cr_assert_not_null(f, "the refused range was not fetched again");
    cr_assert_str_neq(f->fetch_blocks.peer, "A");
}

Test(sync_adopt, a_reply_after_the_timeout_adopts_nothing)
{
    start_awaiting();
    t_answer_headers(t, 8);
    t_tick(t, 5100);
    size_t before = t_count(t, SYNC_ACTION_FETCH_BLOCKS);
    cr_assert_gt(before, 0);
    sync_adopt_range_t r[] = {range(OLD_ID + 1, "A", 101, 256, true)};
    adopt(r, 1);
    sync_batch_info_t b[8];
    size_t n = batches(b, 8);
    for (size_t i = 0; i < n && i < 8; i++)
        cr_assert_neq(b[i].req_id, OLD_ID + 1);
}

Test(sync_adopt, no_more_in_flight_than_max_parallel_is_adopted)
{
    start_awaiting();
    sync_adopt_range_t r[] = {range(OLD_ID + 1, "A", 101, 64, false),
                              range(OLD_ID + 2, "B", 165, 64, false),
                              range(OLD_ID + 3, "C", 229, 64, false),
                              range(OLD_ID + 4, "A", 293, 64, false)};
    adopt(r, 4);
    cr_assert_eq(t_progress(t)->ranges_in_flight, 3);
    sync_batch_info_t b[8];
    cr_assert_eq(batches(b, 8), 3);
}

Test(sync_adopt, a_peer_manager_restart_ends_the_wait)
{
    start_awaiting();
    cr_assert_eq(sync_machine_on_peer_manager_restarted(t->m, t->now), 0);
    t_drain(t);
    cr_assert_not(sync_machine_awaiting_in_flight(t->m, t->now));
}

Test(sync_adopt, a_result_that_overtakes_the_answer_is_applied_after_adopting)
{
    start_awaiting();
    /* PeerManager's FetchResult for an outstanding range comes before its
     * InFlight answer (another socket) that lists the range. */
    cr_assert_eq(sync_machine_on_range_outcome(t->m, t->now, OLD_ID + 1, SYNC_OUTCOME_OK), 0);
    t_drain(t);
    sync_adopt_range_t r[] = {range(OLD_ID + 1, "A", 101, 256, false)};
    adopt(r, 1);
    sync_batch_info_t b[8];
    cr_assert_geq(batches(b, 8), 1);
    cr_assert_eq(b[0].req_id, OLD_ID + 1);
    cr_assert_eq(b[0].state, SYNC_BATCH_PROCESSING, "the early OK was not applied");
    cr_assert_eq(t_progress(t)->ranges_in_flight, 0);
    cr_assert_eq(fetches_at_or_below(356), 0);
}
