/*  test_sync_window.c: headers first, the parallel window, stallers and the
 *  adaptive timeout, retries, blame, duplicates, restarts of other actors.
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
TestSuite(sync_window, .fini = teardown);

static void peers(uint64_t height, int n)
{
    const char *ids[] = {"A", "B", "C", "D"};
    for (int i = 0; i < n; i++)
        t_peer(t, ids[i], height);
}

/* Requests of the last FETCH_BLOCKS actions still open, per our bookkeeping. */
static const sync_action_t *fetch_for(uint64_t start)
{
    for (size_t k = t->n; k > 0; k--)
        if (t->acts[k - 1].kind == SYNC_ACTION_FETCH_BLOCKS &&
            t->acts[k - 1].fetch_blocks.start == start)
            return &t->acts[k - 1];
    return NULL;
}

static void copy_peer(char *dst, uint64_t start)
{
    const sync_action_t *f = fetch_for(start);
    cr_assert_not_null(f);
    snprintf(dst, SYNC_PEER_ID_MAX + 1, "%s", f->fetch_blocks.peer);
}

static void outcome(uint64_t start, sync_outcome_t o)
{
    const sync_action_t *f = fetch_for(start);
    cr_assert_not_null(f, "no fetch for %llu", (unsigned long long) start);
    cr_assert_eq(sync_machine_on_range_outcome(t->m, t->now, f->fetch_blocks.req_id, o), 0);
    t_drain(t);
}

static uint32_t in_flight(void)
{
    return t_progress(t)->ranges_in_flight;
}

/* Headers from three peers, the first three ranges (1, 257, 513) delivered
 * and the actions cleared. served (may be NULL): who got each range. */
static void three_ranges_delivered(char (*served)[SYNC_PEER_ID_MAX + 1])
{
    sync_machine_config_t c = t_config();
    t_setup(t, &c, 0);
    peers(20000, 3);
    t_answer_headers(t, 100);
    for (int i = 0; served && i < 3; i++)
        copy_peer(served[i], 1 + 256 * (uint64_t) i);
    outcome(1, SYNC_OUTCOME_OK);
    outcome(257, SYNC_OUTCOME_OK);
    outcome(513, SYNC_OUTCOME_OK);
    t_clear(t);
}

/* The two RangeVerdicts of a proven range: liar's copy bad, good's valid. */
static void expect_verdicts(const char *liar, const char *good)
{
    cr_assert_eq(t_count(t, SYNC_ACTION_RANGE_VERDICT), 2);
    const sync_action_t *v = t_find(t, SYNC_ACTION_RANGE_VERDICT, 0);
    cr_assert_str_eq(v->range_verdict.peer, liar);
    cr_assert_not(v->range_verdict.valid);
    v = t_find(t, SYNC_ACTION_RANGE_VERDICT, 1);
    cr_assert_str_eq(v->range_verdict.peer, good);
    cr_assert(v->range_verdict.valid);
}

/* ---- headers first ------------------------------------------------------------------------------ */

Test(sync_window, bodies_only_for_verified_headers_with_hashes)
{
    sync_machine_config_t c = t_config();
    t_setup(t, &c, 0);
    peers(20000, 2);
    const sync_action_t *h = t_find(t, SYNC_ACTION_FETCH_HEADERS, 0);
    cr_assert_eq(h->fetch_headers.count, 512);
    /* A partial reply (100 of 512): too little for a range, nothing fetched. */
    alys_hash_t hs[300];
    for (int i = 0; i < 300; i++)
        t_hash(1 + i, hs[i]);
    cr_assert_eq(sync_machine_on_headers(t->m, t->now, h->fetch_headers.req_id, SYNC_OUTCOME_OK,
                                         1, 100, (const alys_hash_t *) hs),
                 0);
    t_drain(t);
    cr_assert_eq(t_count(t, SYNC_ACTION_FETCH_BLOCKS), 0);
    cr_assert_eq(t_progress(t)->header_height, 100);
    h = t_last(t, SYNC_ACTION_FETCH_HEADERS);
    cr_assert_eq(h->fetch_headers.start, 101, "headers continue from the new tip");
    cr_assert_eq(sync_machine_on_headers(t->m, t->now, h->fetch_headers.req_id, SYNC_OUTCOME_OK,
                                         101, 200, (const alys_hash_t *) &hs[100]),
                 0);
    t_drain(t);
    cr_assert_eq(t_count(t, SYNC_ACTION_FETCH_BLOCKS), 1, "[1,256]; [257,300] is too small");
    const sync_action_t *f = t_find(t, SYNC_ACTION_FETCH_BLOCKS, 0);
    cr_assert_eq(f->fetch_blocks.start, 1);
    cr_assert_eq(f->fetch_blocks.count, 256);
    cr_assert(f->fetch_blocks.deliver_to_processor);
    cr_assert_eq(f->fetch_blocks.expected_count, 256);
    for (uint32_t i = 0; i < 256; i++)
        cr_assert_arr_eq(f->fetch_blocks.expected[i], hs[i], sizeof(alys_hash_t));
}

Test(sync_window, invalid_headers_penalised_and_retried_elsewhere)
{
    sync_machine_config_t c = t_config();
    t_setup(t, &c, 0);
    peers(20000, 2);
    const sync_action_t *h = t_find(t, SYNC_ACTION_FETCH_HEADERS, 0);
    char bad[SYNC_PEER_ID_MAX + 1];
    strcpy(bad, h->fetch_headers.peer);
    cr_assert_eq(sync_machine_on_headers(t->m, t->now, h->fetch_headers.req_id,
                                         SYNC_OUTCOME_INVALID, 0, 0, NULL),
                 0);
    t_drain(t);
    cr_assert(t_penalised(t, bad, SYNC_PENALTY_INVALID_HEADER));
    h = t_last(t, SYNC_ACTION_FETCH_HEADERS);
    cr_assert_str_neq(h->fetch_headers.peer, bad);
    cr_assert_eq(h->fetch_headers.start, 1);
    /* A late reply for the first request changes nothing. */
    alys_hash_t x;
    t_hash(1, x);
    cr_assert_eq(sync_machine_on_headers(t->m, t->now,
                                         t_find(t, SYNC_ACTION_FETCH_HEADERS, 0)->fetch_headers.req_id,
                                         SYNC_OUTCOME_OK, 1, 1, (const alys_hash_t *) &x),
                 0);
    t_drain(t);
    cr_assert_eq(t_progress(t)->header_height, 0);
    cr_assert_eq(t_count(t, SYNC_ACTION_FETCH_BLOCKS), 0);
}

/* ---- the parallel window ---------------------------------------------------------------------- */

static void check_window(uint64_t head)
{
    sync_batch_info_t b[64];
    size_t n = sync_machine_get_batches(t->m, b, 64);
    cr_assert_leq(in_flight(), 3, "never more than max_parallel_downloads in flight");
    for (size_t i = 0; i < n && i < 64; i++)
        cr_assert_leq(b[i].start + b[i].count - 1, head + 1024, "never beyond head + window");
}

Test(sync_window, parallel_window_bounds_and_distinct_peers)
{
    sync_machine_config_t c = t_config();
    t_setup(t, &c, 0);
    peers(20000, 3);
    t_answer_headers(t, 100);
    cr_assert_eq(t_progress(t)->header_height, 4096, "header lookahead is 4 windows");
    cr_assert_eq(in_flight(), 3);
    cr_assert_eq(t_count(t, SYNC_ACTION_FETCH_BLOCKS), 3);
    const char *p0 = t_find(t, SYNC_ACTION_FETCH_BLOCKS, 0)->fetch_blocks.peer;
    const char *p1 = t_find(t, SYNC_ACTION_FETCH_BLOCKS, 1)->fetch_blocks.peer;
    const char *p2 = t_find(t, SYNC_ACTION_FETCH_BLOCKS, 2)->fetch_blocks.peer;
    cr_assert(strcmp(p0, p1) && strcmp(p1, p2) && strcmp(p0, p2), "three different peers");
    check_window(0);

    /* Delivered but not processed: the window fills, then stops. */
    outcome(1, SYNC_OUTCOME_OK);
    outcome(257, SYNC_OUTCOME_OK);
    outcome(513, SYNC_OUTCOME_OK);
    check_window(0);
    cr_assert_eq(t_count(t, SYNC_ACTION_FETCH_BLOCKS), 4, "only [769,1024] fits");
    outcome(769, SYNC_OUTCOME_OK);
    cr_assert_eq(in_flight(), 0, "window full: head + 1024 reached");
    cr_assert_eq(t_count(t, SYNC_ACTION_FETCH_BLOCKS), 4);

    /* The head moves: the window moves with it. */
    t_commit(t, 256);
    check_window(256);
    cr_assert_eq(t_count(t, SYNC_ACTION_FETCH_BLOCKS), 5);
    cr_assert_eq(t_last(t, SYNC_ACTION_FETCH_BLOCKS)->fetch_blocks.start, 1025);
    sync_batch_info_t b[8];
    cr_assert_eq(sync_machine_get_batches(t->m, b, 8), 4);
    cr_assert_eq(b[0].start, 257);
    cr_assert_eq(b[0].state, SYNC_BATCH_PROCESSING, "next in line for BlockProcessor");
    cr_assert_eq(b[1].state, SYNC_BATCH_AWAITING_PROCESSING);
    cr_assert_eq(b[3].state, SYNC_BATCH_DOWNLOADING);
}

Test(sync_window, adaptive_batch_size_clamped)
{
    sync_machine_config_t c = t_config();
    c.adaptive_batch = true;
    t_setup(t, &c, 0);
    cr_assert_eq(sync_machine_on_batch_size(t->m, 5), 0);
    cr_assert_eq(t_progress(t)->batch_size, 16, "min_batch_size");
    sync_machine_on_batch_size(t->m, 100);
    cr_assert_eq(t_progress(t)->batch_size, 100);
    sync_machine_on_batch_size(t->m, 5000);
    cr_assert_eq(t_progress(t)->batch_size, 341, "a window's share per parallel range");
}

/* ---- stallers ---------------------------------------------------------------------------------- */

Test(sync_window, staller_reassigned_penalised_timeout_doubles_then_decays)
{
    sync_machine_config_t c = t_config();
    c.request_timeout_ms = 60000;
    c.stall_floor_ms = 100;
    c.stall_k = 4;
    t_setup(t, &c, 0);
    peers(20000, 3);
    t_answer_headers(t, 100);
    cr_assert_eq(sync_machine_request_timeout_ms(t->m, 256), 60000, "no sample yet: the bound");

    /* Three ranges of 256 in 256 ms: 1 ms per block. */
    t->now += 256;
    outcome(1, SYNC_OUTCOME_OK);
    outcome(257, SYNC_OUTCOME_OK);
    outcome(513, SYNC_OUTCOME_OK);
    cr_assert_eq(sync_machine_request_timeout_ms(t->m, 256), 4 * 256);
    t_commit(t, 768);
    cr_assert_eq(in_flight(), 3);
    const sync_action_t *head = fetch_for(769);
    uint64_t old_req = head->fetch_blocks.req_id;
    char slow[SYNC_PEER_ID_MAX + 1];
    strcpy(slow, head->fetch_blocks.peer);
    uint64_t since = t->now;

    t_clear(t);
    t_tick(t, 1023);
    cr_assert_eq(t_count(t, SYNC_ACTION_CANCEL), 0, "not yet");
    t_tick(t, 1);
    cr_assert_eq(t->now - since, 1024);
    const sync_action_t *cancel = t_find(t, SYNC_ACTION_CANCEL, 0);
    cr_assert_not_null(cancel);
    cr_assert_eq(cancel->cancel.req_id, old_req);
    cr_assert(t_penalised(t, slow, SYNC_PENALTY_STALL));
    const sync_action_t *moved = fetch_for(769);
    cr_assert_not_null(moved);
    cr_assert_str_neq(moved->fetch_blocks.peer, slow, "another peer takes the window head");
    cr_assert_eq(moved->fetch_blocks.count, 256);
    cr_assert_eq(t_progress(t)->reassignments, 1);
    cr_assert_eq(sync_machine_request_timeout_ms(t->m, 256), 2 * 1024, "doubled");
    cr_assert_eq(in_flight(), 3);

    /* The slow peer's late answer is ignored safely. */
    size_t fetches = t_count(t, SYNC_ACTION_FETCH_BLOCKS);
    cr_assert_eq(sync_machine_on_range_outcome(t->m, t->now, old_req, SYNC_OUTCOME_OK), 0);
    t_drain(t);
    cr_assert_eq(t_count(t, SYNC_ACTION_FETCH_BLOCKS), fetches);
    sync_batch_info_t b[8];
    sync_machine_get_batches(t->m, b, 8);
    cr_assert_eq(b[0].start, 769);
    cr_assert_eq(b[0].state, SYNC_BATCH_DOWNLOADING);
    cr_assert_eq(b[0].req_id, moved->fetch_blocks.req_id);

    /* Success at the same pace decays the multiplier by 0.85. */
    t->now += 256;
    outcome(769, SYNC_OUTCOME_OK);
    cr_assert_eq(sync_machine_request_timeout_ms(t->m, 256), (uint32_t) (1024 * 2 * 0.85));
}

/* Issue 11: peers whose upload is the limit deliver 256-block ranges in
 * 2.56 s (10 ms per block), so a range's measured expected time (k = 4:
 * 10.24 s) is past request_timeout_ms (5 s). The window head is not called
 * a stall at 5 s; it is at the measured time; and no throughput, however
 * low, takes the stall timeout past the hard bound. */
Test(sync_window, stall_timeout_follows_measured_throughput_to_the_hard_bound)
{
    sync_machine_config_t c = t_config();
    c.request_timeout_ms = 5000;
    c.stall_floor_ms = 100;
    c.stall_k = 4;
    t_setup(t, &c, 0);
    peers(20000, 3);
    t_answer_headers(t, 100);
    cr_assert_eq(sync_machine_request_timeout_ms(t->m, 256), 5000, "no sample yet: the bound");
    /* No sample and a range bigger than ALYS_REQUEST_TIMEOUT_REF_BLOCKS (the
     * sequential strategy's first 1024): proportionally more, not the 5 s a
     * bandwidth-bound peer cannot meet; never past the hard bound. */
    cr_assert_eq(sync_machine_request_timeout_ms(t->m, 1024),
                 5000 * 1024 / ALYS_REQUEST_TIMEOUT_REF_BLOCKS);
    cr_assert_eq(sync_machine_request_timeout_ms(t->m, 1u << 20),
                 5000 * ALYS_REQUEST_TIMEOUT_HARD_FACTOR);
    t->now += 2560;
    outcome(1, SYNC_OUTCOME_OK);
    outcome(257, SYNC_OUTCOME_OK);
    outcome(513, SYNC_OUTCOME_OK);
    cr_assert_eq(sync_machine_request_timeout_ms(t->m, 256), 4 * 10 * 256, "past request_timeout_ms");
    t_commit(t, 768);
    const sync_action_t *head = fetch_for(769);
    cr_assert_not_null(head);
    uint64_t req = head->fetch_blocks.req_id;
    cr_assert_eq(head->fetch_blocks.timeout_ms, 5000 * ALYS_REQUEST_TIMEOUT_HARD_FACTOR,
                 "PeerManager is not held to request_timeout_ms either");

    t_clear(t);
    t_tick(t, 5001);
    cr_assert_eq(t_count(t, SYNC_ACTION_CANCEL), 0, "not a stall at request_timeout_ms");
    t_tick(t, 4 * 10 * 256 - 5001);
    const sync_action_t *cancel = t_find(t, SYNC_ACTION_CANCEL, 0);
    cr_assert_not_null(cancel, "a stall at the measured time");
    cr_assert_eq(cancel->cancel.req_id, req);
    /* The multiplier (one stall: x2) stays under request_timeout_ms: the
     * timeout is still the measured time, not twice it. */
    cr_assert_eq(sync_machine_request_timeout_ms(t->m, 256), 4 * 10 * 256);

    /* A trickle (1 s per block) is held at the hard bound. */
    const sync_action_t *moved = fetch_for(769);
    cr_assert_not_null(moved);
    t->now += 256 * 1000;
    outcome(769, SYNC_OUTCOME_OK);
    for (int i = 0; i < 20 && sync_machine_request_timeout_ms(t->m, 256) < 5000 * 8; i++) {
        const sync_action_t *next = NULL;
        for (size_t k = t->n; k > 0 && !next; k--)
            if (t->acts[k - 1].kind == SYNC_ACTION_FETCH_BLOCKS)
                next = &t->acts[k - 1];
        cr_assert_not_null(next);
        t->now += 256 * 1000;
        outcome(next->fetch_blocks.start, SYNC_OUTCOME_OK);
    }
    cr_assert_eq(sync_machine_request_timeout_ms(t->m, 256), 5000 * ALYS_REQUEST_TIMEOUT_HARD_FACTOR);
    cr_assert_eq(sync_machine_request_timeout_ms(t->m, 1024), 5000 * ALYS_REQUEST_TIMEOUT_HARD_FACTOR);
}

Test(sync_window, no_reassignment_without_another_peer)
{
    sync_machine_config_t c = t_config();
    c.request_timeout_ms = 5000;
    t_setup(t, &c, 0);
    peers(20000, 1);
    t_answer_headers(t, 1);
    uint64_t req = fetch_for(1)->fetch_blocks.req_id;
    t_clear(t);
    t_tick(t, 6000);
    cr_assert_eq(t_count(t, SYNC_ACTION_PENALISE_PEER), 0);
    cr_assert_eq(t_count(t, SYNC_ACTION_CANCEL), 0);
    /* Not lost while PeerManager may still be waiting for a bandwidth-bound
     * peer: up to the hard bound (issue 11). */
    t_tick(t, 5000 * ALYS_REQUEST_TIMEOUT_HARD_FACTOR - 6000);
    cr_assert_eq(t_count(t, SYNC_ACTION_CANCEL), 0, "not lost before the hard bound");
    /* ...but a request with no outcome at all is lost and re-issued. */
    t_tick(t, 5000 + 1000);
    cr_assert_eq(t_find(t, SYNC_ACTION_CANCEL, 0)->cancel.req_id, req);
    cr_assert_neq(fetch_for(1)->fetch_blocks.req_id, req);
    cr_assert_eq(t_count(t, SYNC_ACTION_PENALISE_PEER), 0, "nobody is blamed for a lost request");
}

/* ---- retries and blame ------------------------------------------------------------------------ */

Test(sync_window, failed_range_retried_on_another_peer)
{
    sync_machine_config_t c = t_config();
    t_setup(t, &c, 0);
    peers(20000, 3);
    t_answer_headers(t, 100);
    char first[SYNC_PEER_ID_MAX + 1];
    copy_peer(first, 1);
    outcome(1, SYNC_OUTCOME_INVALID);
    const sync_action_t *retry = fetch_for(1);
    cr_assert_str_neq(retry->fetch_blocks.peer, first);
    cr_assert_eq(t_count(t, SYNC_ACTION_PENALISE_PEER), 0, "PeerManager scored its own report");
    sync_batch_info_t b[8];
    sync_machine_get_batches(t->m, b, 8);
    cr_assert_eq(b[0].attempts, 1);
    cr_assert_eq(t_progress(t)->retries, 1);
    outcome(1, SYNC_OUTCOME_SHORT);
    outcome(1, SYNC_OUTCOME_VIOLATION);
    cr_assert_eq(t_progress(t)->retries, 3);
    cr_assert_neq(t_state(t), SYNC_FAILED, "never stops on one error");
}

/* A sole peer's lost response: retried on it at once, no cool-down wait
 * (there is nobody else to try first). */
Test(sync_window, sole_peer_retried_without_cool_down)
{
    sync_machine_config_t c = t_config();
    t_setup(t, &c, 0);
    peers(20000, 1);
    t_answer_headers(t, 100);
    uint64_t req = fetch_for(1)->fetch_blocks.req_id;
    outcome(1, SYNC_OUTCOME_TIMEOUT);
    cr_assert_neq(fetch_for(1)->fetch_blocks.req_id, req, "re-issued at once");
    cr_assert_str_eq(fetch_for(1)->fetch_blocks.peer, "A");
}

/* Two peers, both just failed: the cool-down holds the retry. */
Test(sync_window, cooling_peers_wait_when_there_are_several)
{
    sync_machine_config_t c = t_config();
    t_setup(t, &c, 0);
    peers(20000, 2);
    t_answer_headers(t, 100);
    outcome(1, SYNC_OUTCOME_TIMEOUT);
    const sync_action_t *retry = fetch_for(1);
    cr_assert_not_null(retry);
    uint64_t req = retry->fetch_blocks.req_id;
    outcome(1, SYNC_OUTCOME_TIMEOUT);
    cr_assert_eq(fetch_for(1)->fetch_blocks.req_id, req, "no third attempt while both cool down");
}

Test(sync_window, invalid_block_blames_the_peer_that_served_it)
{
    char served[3][SYNC_PEER_ID_MAX + 1];
    three_ranges_delivered(served);
    cr_assert_eq(sync_machine_on_block_failed(t->m, t->now, 300, true, "bad_tx_signature"), 0);
    t_drain(t);
    cr_assert_eq(t_count(t, SYNC_ACTION_PENALISE_PEER), 0, "a suspect, not yet convicted");
    cr_assert_eq(t_count(t, SYNC_ACTION_RANGE_VERDICT), 0);
    const sync_action_t *again = fetch_for(257);
    cr_assert_not_null(again);
    cr_assert_str_neq(again->fetch_blocks.peer, served[1]);
    char good[SYNC_PEER_ID_MAX + 1];
    copy_peer(good, 257);
    cr_assert_not_null(fetch_for(513), "dropped by the processor above the failure: re-fetched");
    cr_assert_null(fetch_for(1), "below the failure stays delivered");
    cr_assert_eq(t_progress(t)->blocks_failed, 1);

    /* Another peer's copy validates: the first peer lied. */
    outcome(257, SYNC_OUTCOME_OK);
    t_commit(t, 256);
    cr_assert_eq(t_count(t, SYNC_ACTION_RANGE_VERDICT), 0);
    t_commit(t, 512);
    expect_verdicts(served[1], good);
    const sync_action_t *v = t_find(t, SYNC_ACTION_RANGE_VERDICT, 0);
    cr_assert_eq(v->range_verdict.start, 257);
    cr_assert_eq(v->range_verdict.count, 256);
    cr_assert_str_eq(v->range_verdict.reason, "bad_tx_signature");
}

/* The commit notice and the retry's FetchResult travel on different sockets:
 * the head may pass the retried range before its outcome arrives. The
 * outcome still settles it: the liar is convicted, not let off. */
Test(sync_window, commit_before_the_retry_outcome_still_convicts)
{
    char served[3][SYNC_PEER_ID_MAX + 1], good[SYNC_PEER_ID_MAX + 1];
    three_ranges_delivered(served);
    const char *liar = served[1];
    cr_assert_eq(sync_machine_on_block_failed(t->m, t->now, 300, true, "bad_tx_signature"), 0);
    t_drain(t);
    copy_peer(good, 257);
    cr_assert_str_neq(good, liar);
    outcome(513, SYNC_OUTCOME_OK);
    t_commit(t, 512);
    cr_assert_eq(t_count(t, SYNC_ACTION_RANGE_VERDICT), 0, "whose copy committed is not known yet");
    cr_assert_eq(t_count(t, SYNC_ACTION_CANCEL), 0, "the retry is not cancelled");
    outcome(257, SYNC_OUTCOME_OK);
    expect_verdicts(liar, good);
}

/* The same, but the retry then fails: its copy proves nothing, nobody is
 * convicted, and the committed range is not fetched again. */
Test(sync_window, commit_before_a_failed_retry_convicts_nobody)
{
    three_ranges_delivered(NULL);
    cr_assert_eq(sync_machine_on_block_failed(t->m, t->now, 300, true, "bad_tx_signature"), 0);
    t_drain(t);
    outcome(513, SYNC_OUTCOME_OK);
    t_commit(t, 512);
    outcome(257, SYNC_OUTCOME_TIMEOUT);
    cr_assert_eq(t_count(t, SYNC_ACTION_RANGE_VERDICT), 0);
    t_clear(t);
    t->now += 60000;
    cr_assert_eq(sync_machine_tick(t->m, t->now), 0);
    t_drain(t);
    cr_assert_null(fetch_for(257), "a committed range is not fetched again");
}

Test(sync_window, our_own_failure_convicts_nobody)
{
    three_ranges_delivered(NULL);
    cr_assert_eq(sync_machine_on_block_failed(t->m, t->now, 5, false, "storage write failed"), 0);
    t_drain(t);
    cr_assert_not_null(fetch_for(1), "retried");
    outcome(1, SYNC_OUTCOME_OK);
    t_commit(t, 256);
    cr_assert_eq(t_count(t, SYNC_ACTION_RANGE_VERDICT), 0);
    cr_assert_eq(t_count(t, SYNC_ACTION_PENALISE_PEER), 0);
}

Test(sync_window, no_peer_and_busy_reissue_without_blame)
{
    sync_machine_config_t c = t_config();
    t_setup(t, &c, 0);
    peers(20000, 3);
    t_answer_headers(t, 100);
    uint64_t req = fetch_for(1)->fetch_blocks.req_id;
    outcome(1, SYNC_OUTCOME_BUSY);
    cr_assert_eq(fetch_for(1)->fetch_blocks.req_id, req, "held back while BlockProcessor is full");
    t_tick(t, 300);
    cr_assert_neq(fetch_for(1)->fetch_blocks.req_id, req, "re-issued after the backoff");
    outcome(1, SYNC_OUTCOME_NO_PEER);
    cr_assert_neq(t_state(t), SYNC_FAILED);
    sync_batch_info_t b[8];
    sync_machine_get_batches(t->m, b, 8);
    cr_assert_eq(b[0].attempts, 0, "neither counts as a failed attempt");
    cr_assert_eq(t_progress(t)->retries, 0);
    cr_assert_eq(t_count(t, SYNC_ACTION_PENALISE_PEER), 0);
    /* An upper bound for PeerManager, whose per-peer timeout follows the
     * peer's bandwidth past request_timeout_ms (issue 11): the hard bound. */
    cr_assert_eq(fetch_for(1)->fetch_blocks.timeout_ms, 5000 * ALYS_REQUEST_TIMEOUT_HARD_FACTOR);
}

Test(sync_window, peer_manager_order_breaks_ties)
{
    sync_machine_config_t c = t_config();
    c.max_parallel_downloads = 1;
    t_setup(t, &c, 0);
    peers(20000, 3);
    cr_assert_eq(sync_machine_on_peer_rank(t->m, "C", 0), 0);
    cr_assert_eq(sync_machine_on_peer_rank(t->m, "A", 1), 0);
    cr_assert_eq(sync_machine_on_peer_rank(t->m, "B", 2), 0);
    t_answer_headers(t, 1);
    cr_assert_str_eq(fetch_for(1)->fetch_blocks.peer, "C");
}

Test(sync_window, duplicate_and_unknown_outcomes_ignored)
{
    sync_machine_config_t c = t_config();
    t_setup(t, &c, 0);
    peers(20000, 3);
    t_answer_headers(t, 100);
    uint64_t req = fetch_for(1)->fetch_blocks.req_id;
    outcome(1, SYNC_OUTCOME_OK);
    size_t fetches = t_count(t, SYNC_ACTION_FETCH_BLOCKS);
    uint32_t flying = in_flight();
    cr_assert_eq(sync_machine_on_range_outcome(t->m, t->now, req, SYNC_OUTCOME_OK), 0);
    cr_assert_eq(sync_machine_on_range_outcome(t->m, t->now, req, SYNC_OUTCOME_TIMEOUT), 0);
    cr_assert_eq(sync_machine_on_range_outcome(t->m, t->now, 987654321, SYNC_OUTCOME_OK), 0);
    t_drain(t);
    cr_assert_eq(t_count(t, SYNC_ACTION_FETCH_BLOCKS), fetches);
    cr_assert_eq(in_flight(), flying);
    cr_assert_eq(t_progress(t)->retries, 0);
    /* Stale or duplicate commits do not move the head back. */
    t_commit(t, 100);
    t_commit(t, 50);
    cr_assert_eq(t_progress(t)->current_height, 100);
}

/* ---- peers and actors going away ----------------------------------------------------------------- */

Test(sync_window, disconnected_peer_range_goes_elsewhere)
{
    sync_machine_config_t c = t_config();
    t_setup(t, &c, 0);
    peers(20000, 2);
    t_answer_headers(t, 1);
    char gone[SYNC_PEER_ID_MAX + 1];
    copy_peer(gone, 1);
    uint64_t req = fetch_for(1)->fetch_blocks.req_id;
    cr_assert_eq(sync_machine_on_peer_disconnected(t->m, t->now, gone, "eof"), 0);
    t_drain(t);
    cr_assert_str_neq(fetch_for(1)->fetch_blocks.peer, gone);
    cr_assert_eq(t_progress(t)->total_peers, 1);
    cr_assert_eq(sync_machine_on_range_outcome(t->m, t->now, req, SYNC_OUTCOME_OK), 0);
    t_drain(t);
    sync_batch_info_t b[8];
    sync_machine_get_batches(t->m, b, 8);
    cr_assert_eq(b[0].state, SYNC_BATCH_DOWNLOADING, "the gone peer's late answer is ignored");
}

Test(sync_window, peer_manager_restart_reissues_in_flight)
{
    sync_machine_config_t c = t_config();
    t_setup(t, &c, 0);
    peers(20000, 3);
    t_answer_headers(t, 100);
    uint64_t old = fetch_for(1)->fetch_blocks.req_id;
    t_clear(t);
    cr_assert_eq(sync_machine_on_peer_manager_restarted(t->m, t->now), 0);
    t_drain(t);
    cr_assert_eq(t_count(t, SYNC_ACTION_FETCH_BLOCKS), 3);
    cr_assert_neq(fetch_for(1)->fetch_blocks.req_id, old);
    cr_assert_eq(t_count(t, SYNC_ACTION_PENALISE_PEER), 0);
}

Test(sync_window, processor_restart_refetches_delivered)
{
    sync_machine_config_t c = t_config();
    t_setup(t, &c, 0);
    peers(20000, 3);
    t_answer_headers(t, 100);
    outcome(1, SYNC_OUTCOME_OK);
    outcome(257, SYNC_OUTCOME_OK);
    t_commit(t, 100); /* part of [1,256] made it */
    t_clear(t);
    cr_assert_eq(sync_machine_on_processor_restarted(t->m, t->now), 0);
    t_drain(t);
    const sync_action_t *f = fetch_for(101);
    cr_assert_not_null(f, "the uncommitted rest of the range, not from 1");
    cr_assert_eq(f->fetch_blocks.count, 156);
    alys_hash_t h;
    t_hash(101, h);
    cr_assert_arr_eq(f->fetch_blocks.expected[0], h, sizeof h);
    cr_assert_null(fetch_for(1));
}

Test(sync_window, processing_timeout_refetches_when_processor_silent)
{
    sync_machine_config_t c = t_config();
    c.processing_timeout_ms = 30000;
    t_setup(t, &c, 0);
    peers(20000, 3);
    t_answer_headers(t, 100);
    outcome(1, SYNC_OUTCOME_OK);
    outcome(257, SYNC_OUTCOME_OK);
    outcome(513, SYNC_OUTCOME_OK);
    t_clear(t);
    for (int i = 0; i < 29; i++)
        t_tick(t, 1000);
    cr_assert_null(fetch_for(1));
    t_tick(t, 1000);
    cr_assert_not_null(fetch_for(1));
}

/* ---- a fork whose headers are validly signed (issue 7, finding B) ---------------------------- */

/* The peer the first header request went to (it served headers 1..512). */
static void answer_first_headers(char *server)
{
    const sync_action_t *h = t_find(t, SYNC_ACTION_FETCH_HEADERS, 0);
    cr_assert_not_null(h);
    snprintf(server, SYNC_PEER_ID_MAX + 1, "%s", h->fetch_headers.peer);
    cr_assert_eq(t_answer_headers(t, 1), 1);
}

static const sync_action_t *headers_from(uint64_t start)
{
    for (size_t k = t->n; k > 0; k--)
        if (t->acts[k - 1].kind == SYNC_ACTION_FETCH_HEADERS &&
            t->acts[k - 1].fetch_headers.start == start)
            return &t->acts[k - 1];
    return NULL;
}

Test(sync_window, a_block_breaking_a_state_rule_convicts_its_header_server)
{
    sync_machine_config_t c = t_config();
    t_setup(t, &c, 0);
    peers(20000, 3);
    char hsrv[SYNC_PEER_ID_MAX + 1];
    answer_first_headers(hsrv);
    char body[SYNC_PEER_ID_MAX + 1];
    copy_peer(body, 257);
    outcome(1, SYNC_OUTCOME_OK);
    outcome(257, SYNC_OUTCOME_OK);
    t_commit(t, 256);
    t_clear(t);
    cr_assert_eq(sync_machine_on_block_failed(t->m, t->now, 300, true, "bad_nonce"), 0);
    t_drain(t);
    /* The block matched the header hsrv served: that signed header commits to
     * an invalid block, so hsrv lied; the body's server served what was asked. */
    cr_assert_eq(t_count(t, SYNC_ACTION_PENALISE_PEER), 1);
    cr_assert(t_penalised(t, hsrv, SYNC_PENALTY_INVALID_CHAIN));
    cr_assert_eq(t_count(t, SYNC_ACTION_RANGE_VERDICT), 0);
    cr_assert_eq(t_progress(t)->header_height, 299, "headers from the bad block up dropped");
    const sync_action_t *h = headers_from(300);
    cr_assert_not_null(h, "headers fetched again from the bad height");
    cr_assert_str_neq(h->fetch_headers.peer, hsrv, "and not from the liar");
    alys_hash_t parent;
    t_hash(299, parent);
    cr_assert_arr_eq(h->fetch_headers.parent_hash, parent, sizeof parent);
    cr_assert_neq(t_state(t), SYNC_FAILED);
}

Test(sync_window, a_state_rule_is_not_charged_to_anyone_when_bodies_are_at_fault)
{
    sync_machine_config_t c = t_config();
    t_setup(t, &c, 0);
    peers(20000, 3);
    char hsrv[SYNC_PEER_ID_MAX + 1];
    answer_first_headers(hsrv);
    outcome(1, SYNC_OUTCOME_OK);
    outcome(257, SYNC_OUTCOME_OK);
    t_commit(t, 256);
    t_clear(t);
    /* tx_root_mismatch: the body is not the one the header names: the body's
     * server is a suspect, the header's server is not charged. */
    cr_assert_eq(sync_machine_on_block_failed(t->m, t->now, 300, true, "tx_root_mismatch"), 0);
    t_drain(t);
    cr_assert_eq(t_count(t, SYNC_ACTION_PENALISE_PEER), 0);
    cr_assert_eq(t_progress(t)->header_height, 512, "the headers stay");
}

Test(sync_window, headers_of_another_branch_charge_nobody_and_wait_for_execution)
{
    sync_machine_config_t c = t_config();
    t_setup(t, &c, 0);
    peers(20000, 3);
    char hsrv[SYNC_PEER_ID_MAX + 1];
    answer_first_headers(hsrv);
    const sync_action_t *next = headers_from(513);
    cr_assert_not_null(next);
    char other[SYNC_PEER_ID_MAX + 1];
    snprintf(other, sizeof other, "%s", next->fetch_headers.peer);
    uint64_t req = next->fetch_headers.req_id;
    size_t asked = t_count(t, SYNC_ACTION_FETCH_HEADERS);
    cr_assert_eq(sync_machine_on_headers_fork(t->m, t->now, req), 0);
    t_drain(t);
    cr_assert_eq(t_count(t, SYNC_ACTION_PENALISE_PEER), 0, "which branch lies is not known yet");
    t_tick(t, 1000);
    cr_assert_eq(t_count(t, SYNC_ACTION_FETCH_HEADERS), asked, "no headers until ours are executed");
    /* Ours executed: the other branch was the lie; headers continue, elsewhere. */
    for (uint64_t st = 1; st < 512; st += 256)
        outcome(st, SYNC_OUTCOME_OK);
    t_commit(t, 512);
    const sync_action_t *h = headers_from(513);
    cr_assert_not_null(h, "headers continue once ours are executed");
    cr_assert_str_neq(h->fetch_headers.peer, other);
    cr_assert_eq(t_count(t, SYNC_ACTION_PENALISE_PEER), 0);
}

/* Headers that do not link to our committed head: the peer's branch left
 * ours at or below it. Fork choice's question (FORK_FOUND), nobody
 * penalised, and the peer is not chased as a target meanwhile; a reorg
 * restarts the machine from the new head and believes the peer again. */
Test(sync_window, headers_that_do_not_link_to_the_committed_head_are_a_fork)
{
    sync_machine_config_t c = t_config();
    t_setup(t, &c, 0);
    peers(20000, 1);
    const sync_action_t *h = t_find(t, SYNC_ACTION_FETCH_HEADERS, 0);
    cr_assert_not_null(h);
    t_clear(t);
    cr_assert_eq(sync_machine_on_headers_fork(t->m, t->now, h->fetch_headers.req_id), 0);
    t_drain(t);
    const sync_action_t *f = t_find(t, SYNC_ACTION_FORK_FOUND, 0);
    cr_assert_not_null(f, "the fork goes to fork choice");
    cr_assert_str_eq(f->fork_found.peer, "A");
    cr_assert_eq(f->fork_found.peer_height, 20000);
    cr_assert_eq(t_count(t, SYNC_ACTION_PENALISE_PEER), 0, "another branch costs nothing");
    t_clear(t);
    t->now += 200;
    sync_machine_tick(t->m, t->now);
    t_drain(t);
    cr_assert_eq(t_count(t, SYNC_ACTION_FETCH_HEADERS), 0,
                 "the peer is believed only up to our head until fork choice is done");
    alys_hash_t nh;
    memset(nh, 0x77, sizeof nh);
    cr_assert_eq(sync_machine_on_reorg(t->m, t->now, 40, nh), 0);
    t_drain(t);
    t->now += 200;
    sync_machine_tick(t->m, t->now);
    t_drain(t);
    h = t_find(t, SYNC_ACTION_FETCH_HEADERS, 0);
    cr_assert_not_null(h, "after the reorg the peer is a target again");
    cr_assert_eq(h->fetch_headers.start, 41);
    cr_assert_eq(memcmp(h->fetch_headers.parent_hash, nh, sizeof nh), 0);
}

/* A body that does not match its header: the body's server is a suspect
 * only, the header's server is asked next; a copy that validates convicts
 * the suspect. */
Test(sync_window, a_body_that_does_not_match_goes_to_the_header_server_next)
{
    sync_machine_config_t c = t_config();
    t_setup(t, &c, 0);
    peers(20000, 3);
    char hsrv[SYNC_PEER_ID_MAX + 1];
    answer_first_headers(hsrv);
    uint64_t s = 0;
    char body[SYNC_PEER_ID_MAX + 1];
    for (uint64_t st = 1; st < 1024 && !s; st += 256) {
        if (fetch_for(st) && strcmp(fetch_for(st)->fetch_blocks.peer, hsrv) != 0) {
            s = st;
            copy_peer(body, st);
        }
    }
    cr_assert_neq(s, 0, "some range went to another peer than the header server");
    outcome(s, SYNC_OUTCOME_INVALID);
    cr_assert_str_eq(fetch_for(s)->fetch_blocks.peer, hsrv, "the header's server backs it");
    cr_assert_eq(t_count(t, SYNC_ACTION_PENALISE_PEER), 0);
    for (uint64_t st = 1; st < 1024; st += 256)
        if (fetch_for(st))
            outcome(st, SYNC_OUTCOME_OK);
    t_commit(t, s + 255);
    expect_verdicts(body, hsrv);
}

Test(sync_window, headers_nobody_backs_with_a_body_are_dropped)
{
    sync_machine_config_t c = t_config();
    t_setup(t, &c, 0);
    peers(20000, 3);
    char hsrv[SYNC_PEER_ID_MAX + 1];
    answer_first_headers(hsrv);
    outcome(1, SYNC_OUTCOME_OK);
    t_commit(t, 256);
    /* Three peers, three bodies for [257,513) that do not match: the header's
     * server's own included. Nobody backs those headers. */
    for (int i = 0; i < 3 && t_progress(t)->header_height >= 512; i++) {
        cr_assert_not_null(fetch_for(257));
        outcome(257, SYNC_OUTCOME_INVALID);
    }
    cr_assert_eq(t_progress(t)->header_height, 256, "headers from the range up dropped");
    const sync_action_t *h = headers_from(257);
    cr_assert_not_null(h);
    cr_assert_str_neq(h->fetch_headers.peer, hsrv);
    cr_assert_neq(t_state(t), SYNC_FAILED);
    cr_assert_eq(t_count(t, SYNC_ACTION_PENALISE_PEER), 0);
}

/* Held headers too few for a batch are still fetched: no more headers come
 * until they are executed, so waiting for a full batch would wait for ever. */
Test(sync_window, held_headers_too_few_for_a_batch_still_get_their_bodies)
{
    sync_machine_config_t c = t_config();
    t_setup(t, &c, 0);
    peers(20000, 2);
    const sync_action_t *h = t_find(t, SYNC_ACTION_FETCH_HEADERS, 0);
    cr_assert_not_null(h);
    alys_hash_t hs[93];
    for (int i = 0; i < 93; i++)
        t_hash(1 + i, hs[i]);
    cr_assert_eq(sync_machine_on_headers(t->m, t->now, h->fetch_headers.req_id, SYNC_OUTCOME_OK,
                                         1, 93, (const alys_hash_t *) hs),
                 0);
    t_drain(t);
    cr_assert_eq(t_count(t, SYNC_ACTION_FETCH_BLOCKS), 0, "93 < half a batch of 256: waits");
    const sync_action_t *next = headers_from(94);
    cr_assert_not_null(next);
    cr_assert_eq(sync_machine_on_headers_fork(t->m, t->now, next->fetch_headers.req_id), 0);
    t_drain(t);
    const sync_action_t *f = fetch_for(1);
    cr_assert_not_null(f, "the held headers' bodies are fetched");
    cr_assert_eq(f->fetch_blocks.count, 93);
}
