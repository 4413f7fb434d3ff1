/*  The reorder buffer (actors/peer_manager/peer_reorder.c): ranges arrive in
 *  any order and reach BlockProcessor in height order, bounded; duplicates
 *  and already committed ranges are dropped; failures, busy refusals and a
 *  restarted processor never lose a downloaded range silently.
 *
 *  Block bytes do not matter here: each "block" is a few bytes. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "peer_reorder.h"

static uint8_t s_bytes[4096 + 300];
static ProtobufCBinaryData s_blocks[4096];

/* Block i is len bytes starting with byte (i & 0xff), so a copy can be
 * traced back to its position. */
static void fill_blocks(size_t len)
{
    for (size_t i = 0; i < sizeof s_bytes; i++)
        s_bytes[i] = (uint8_t) (i & 0xff);
    for (size_t i = 0; i < 4096; i++)
        s_blocks[i] = (ProtobufCBinaryData){len, &s_bytes[i]};
}

static reorder_t *make(uint32_t entries, size_t bytes, uint32_t inflight)
{
    reorder_config_t c;
    reorder_config_defaults(&c);
    c.max_entries = entries;
    c.max_bytes = bytes;
    c.max_inflight = inflight;
    fill_blocks(1);
    reorder_t *r = reorder_new(&c);
    cr_assert_not_null(r);
    return r;
}

static reorder_insert_t put(reorder_t *r, uint64_t req, uint64_t start, size_t n,
                            reorder_ref_t *drops, size_t *nd)
{
    reorder_ref_t scratch[8];
    size_t sn;
    reorder_batch_t b = {.request_id = req,
                         .peer_id = "p",
                         .start = start,
                         .blocks = s_blocks,
                         .n = n,
                         .expected = NULL};
    return reorder_insert(r, &b, drops ? drops : scratch, 8, nd ? nd : &sn);
}

/* The next chunk as (start, count), or (0, 0) if none may go. */
static reorder_send_t next(reorder_t *r, uint64_t now, uint64_t batch_id)
{
    reorder_send_t s;
    memset(&s, 0, sizeof s);
    if (!reorder_next(r, now, batch_id, &s))
        memset(&s, 0, sizeof s);
    return s;
}

static reorder_done_t ok(reorder_t *r, uint64_t batch_id, uint32_t committed, uint64_t head,
                         reorder_ref_t *ref)
{
    reorder_result_t res = {.batch_id = batch_id, .committed = committed, .head_height = head};
    reorder_ref_t drops[8], scratch;
    size_t nd;
    return reorder_on_processed(r, &res, 0, ref ? ref : &scratch, drops, 8, &nd);
}

Test(net_reorder, out_of_order_arrivals_are_handed_over_in_height_order)
{
    reorder_t *r = make(8, 1 << 20, 2);
    reorder_set_head(r, 100, reorder_seq(r), NULL, 0, &(size_t){0});
    cr_assert_eq(put(r, 2, 111, 10, NULL, NULL), REORDER_ACCEPTED);
    cr_assert_eq(put(r, 3, 121, 10, NULL, NULL), REORDER_ACCEPTED);
    /* 101..110 has not come: nothing may go, whatever is buffered above it */
    cr_expect_eq(next(r, 0, 1).count, 0);
    cr_assert_eq(put(r, 1, 101, 10, NULL, NULL), REORDER_ACCEPTED);
    reorder_send_t a = next(r, 0, 1001);
    reorder_send_t b = next(r, 0, 1002);
    cr_expect_eq(a.start, 101);
    cr_expect_eq(a.count, 10);
    cr_expect_eq(a.request_id, 1);
    cr_expect_eq(b.start, 111);
    cr_expect_eq(b.request_id, 2);
    cr_expect_eq(next(r, 0, 1003).count, 0, "two at the processor at most");
    reorder_ref_t ref;
    cr_expect_eq(ok(r, 1001, 10, 110, &ref), REORDER_PROGRESS);
    cr_expect(ref.complete);
    cr_expect_eq(ref.request_id, 1);
    reorder_send_t c = next(r, 0, 1003);
    cr_expect_eq(c.start, 121);
    cr_expect_eq(ok(r, 1002, 10, 120, NULL), REORDER_PROGRESS);
    cr_expect_eq(ok(r, 1003, 10, 130, NULL), REORDER_PROGRESS);
    cr_expect_eq(reorder_entries(r), 0);
    cr_expect_eq(reorder_head(r), 130);
    reorder_destroy(&r);
    cr_expect_null(r);
}

Test(net_reorder, late_or_unknown_replies_are_ignored)
{
    reorder_t *r = make(8, 1 << 20, 2);
    cr_assert_eq(put(r, 1, 1, 5, NULL, NULL), REORDER_ACCEPTED);
    reorder_send_t s = next(r, 0, 7);
    cr_assert_eq(s.count, 5);
    cr_expect_eq(ok(r, 12345, 5, 5, NULL), REORDER_UNKNOWN);
    cr_expect_eq(reorder_head(r), 0, "an unknown reply moves nothing");
    cr_expect_eq(ok(r, 7, 5, 5, NULL), REORDER_PROGRESS);
    cr_expect_eq(ok(r, 7, 5, 5, NULL), REORDER_UNKNOWN, "a duplicate reply");
    reorder_destroy(&r);
}

Test(net_reorder, committed_ranges_and_duplicates_are_dropped)
{
    reorder_t *r = make(8, 1 << 20, 2);
    reorder_set_head(r, 50, reorder_seq(r), NULL, 0, &(size_t){0});
    /* wholly at or below the head: kept until a head read after its arrival
     * confirms it (the head may have gone down meanwhile), never sent */
    cr_expect_eq(put(r, 1, 41, 10, NULL, NULL), REORDER_ACCEPTED);
    cr_expect_eq(next(r, 0, 7).count, 0);
    reorder_ref_t drops[8];
    size_t nd = 0;
    reorder_set_head(r, 50, reorder_seq(r), drops, 8, &nd);
    cr_expect_eq(nd, 1);
    cr_expect_eq(drops[0].why, REORDER_DROP_COMMITTED);
    cr_expect_eq(drops[0].request_id, 1);
    cr_expect_eq(reorder_entries(r), 0);
    /* the same range again (re-fetched after a reassignment): the newer wins */
    cr_assert_eq(put(r, 2, 61, 10, NULL, NULL), REORDER_ACCEPTED);
    cr_assert_eq(put(r, 3, 61, 10, drops, &nd), REORDER_ACCEPTED);
    cr_expect_eq(nd, 1);
    cr_expect_eq(drops[0].request_id, 2);
    cr_expect_eq(drops[0].why, REORDER_DROP_SUPERSEDED);
    cr_expect_eq(reorder_entries(r), 1);
    /* the head passes a buffered range (committed by someone else) */
    cr_assert_eq(put(r, 4, 71, 10, NULL, NULL), REORDER_ACCEPTED);
    reorder_set_head(r, 80, reorder_seq(r), drops, 8, &nd);
    cr_expect_eq(nd, 2);
    cr_expect_eq(drops[0].why, REORDER_DROP_COMMITTED);
    cr_expect_eq(drops[1].why, REORDER_DROP_COMMITTED);
    cr_expect_eq(reorder_entries(r), 0);
    reorder_destroy(&r);
}

Test(net_reorder, a_rollback_is_not_mistaken_for_committed_blocks)
{
    reorder_t *r = make(8, 1 << 20, 2);
    reorder_set_head(r, 200, reorder_seq(r), NULL, 0, &(size_t){0});
    /* storage was rolled back to 150 behind our back; 151..200 is re-fetched
     * before we have read the head again */
    uint64_t asked = reorder_seq(r); /* a head read asked now ... */
    cr_assert_eq(put(r, 1, 151, 50, NULL, NULL), REORDER_ACCEPTED);
    reorder_ref_t drops[8];
    size_t nd = 9;
    /* ... answers the old head: it says nothing about the new range */
    reorder_set_head(r, 200, asked, drops, 8, &nd);
    cr_expect_eq(nd, 0, "not dropped on a head read older than it");
    /* the next read shows the rollback: the range goes to the processor */
    reorder_set_head(r, 150, reorder_seq(r), drops, 8, &nd);
    cr_expect_eq(nd, 0);
    reorder_send_t s = next(r, 0, 5);
    cr_expect_eq(s.start, 151);
    cr_expect_eq(s.count, 50);
    reorder_destroy(&r);
}

Test(net_reorder, overlap_with_the_head_is_trimmed)
{
    reorder_t *r = make(8, 1 << 20, 2);
    reorder_set_head(r, 105, reorder_seq(r), NULL, 0, &(size_t){0});
    cr_assert_eq(put(r, 1, 101, 10, NULL, NULL), REORDER_ACCEPTED);
    reorder_send_t s = next(r, 0, 9);
    cr_expect_eq(s.start, 106);
    cr_expect_eq(s.count, 5);
    cr_expect_eq(s.blocks[0].data[0], 5, "blocks from the trimmed position");
    cr_expect_eq(s.blocks[4].data[0], 9);
    reorder_destroy(&r);
}

Test(net_reorder, bounded_with_farthest_first_eviction)
{
    reorder_t *r = make(3, 1 << 20, 1);
    cr_assert_eq(put(r, 1, 11, 10, NULL, NULL), REORDER_ACCEPTED);
    cr_assert_eq(put(r, 2, 31, 10, NULL, NULL), REORDER_ACCEPTED);
    cr_assert_eq(put(r, 3, 41, 10, NULL, NULL), REORDER_ACCEPTED);
    /* full: a range farther than everything is refused, nothing evicted */
    size_t nd = 9;
    cr_expect_eq(put(r, 4, 51, 10, NULL, &nd), REORDER_FULL);
    cr_expect_eq(nd, 0);
    cr_expect_eq(reorder_entries(r), 3);
    /* a nearer one (the head's next) evicts the farthest waiting range */
    reorder_ref_t drops[8];
    cr_expect_eq(put(r, 5, 1, 10, drops, &nd), REORDER_ACCEPTED);
    cr_assert_eq(nd, 1);
    cr_expect_eq(drops[0].request_id, 3);
    cr_expect_eq(drops[0].why, REORDER_DROP_EVICTED);
    cr_expect_eq(reorder_entries(r), 3);
    reorder_destroy(&r);

    /* bytes bound: 3 ranges of 10 one-byte blocks fit in 30 bytes */
    r = make(16, 30, 1);
    cr_assert_eq(put(r, 1, 21, 10, NULL, NULL), REORDER_ACCEPTED);
    cr_assert_eq(put(r, 2, 31, 10, NULL, NULL), REORDER_ACCEPTED);
    cr_assert_eq(put(r, 3, 41, 10, NULL, NULL), REORDER_ACCEPTED);
    cr_expect_eq(reorder_bytes(r), 30);
    cr_expect_eq(put(r, 4, 51, 10, NULL, NULL), REORDER_FULL);
    cr_expect_eq(put(r, 5, 11, 10, drops, &nd), REORDER_ACCEPTED);
    cr_expect_eq(drops[0].request_id, 3);
    cr_expect_eq(reorder_bytes(r), 30);
    reorder_destroy(&r);
}

Test(net_reorder, sent_ranges_are_never_evicted)
{
    reorder_t *r = make(2, 1 << 20, 1);
    cr_assert_eq(put(r, 1, 1, 10, NULL, NULL), REORDER_ACCEPTED);
    cr_assert_eq(next(r, 0, 5).count, 10);
    cr_assert_eq(put(r, 2, 21, 10, NULL, NULL), REORDER_ACCEPTED);
    /* full; the only waiting one starts above the newcomer: evicted */
    reorder_ref_t drops[8];
    size_t nd;
    cr_expect_eq(put(r, 3, 11, 10, drops, &nd), REORDER_ACCEPTED);
    cr_expect_eq(drops[0].request_id, 2);
    /* full again, nothing farther waiting: refused */
    cr_expect_eq(put(r, 4, 31, 10, NULL, NULL), REORDER_FULL);
    reorder_destroy(&r);
}

Test(net_reorder, failure_drops_what_lies_above_and_reports_it)
{
    reorder_t *r = make(8, 1 << 20, 2);
    cr_assert_eq(put(r, 1, 1, 10, NULL, NULL), REORDER_ACCEPTED);
    cr_assert_eq(put(r, 2, 11, 10, NULL, NULL), REORDER_ACCEPTED);
    cr_assert_eq(put(r, 3, 21, 10, NULL, NULL), REORDER_ACCEPTED);
    cr_assert_eq(next(r, 0, 101).start, 1);
    cr_assert_eq(next(r, 0, 102).start, 11);
    /* block 5 of the first range is bad: 1..4 committed */
    reorder_result_t res = {.batch_id = 101,
                            .committed = 4,
                            .head_height = 4,
                            .failed = true,
                            .failed_height = 5,
                            .content_fault = true};
    reorder_ref_t ref, drops[8];
    size_t nd;
    cr_expect_eq(reorder_on_processed(r, &res, 0, &ref, drops, 8, &nd), REORDER_FAILED);
    cr_expect_eq(ref.request_id, 1);
    cr_expect_eq(ref.count, 4);
    cr_expect_eq(nd, 2);
    cr_expect_eq(drops[0].why, REORDER_DROP_AFTER_FAILURE);
    cr_expect_eq(drops[1].why, REORDER_DROP_AFTER_FAILURE);
    cr_expect_eq(reorder_entries(r), 0);
    cr_expect_eq(reorder_next_height(r), 5);
    /* the reply for the range that was already at the processor is unknown now */
    cr_expect_eq(ok(r, 102, 0, 4, NULL), REORDER_UNKNOWN);
    reorder_destroy(&r);
}

Test(net_reorder, refetch_of_the_failed_range_from_another_peer_goes_next)
{
    reorder_t *r = make(8, 1 << 20, 2);
    cr_assert_eq(put(r, 1, 1, 10, NULL, NULL), REORDER_ACCEPTED);
    cr_assert_eq(next(r, 0, 101).start, 1);
    /* meanwhile the same range arrived again (reassigned): it waits */
    cr_assert_eq(put(r, 2, 1, 10, NULL, NULL), REORDER_ACCEPTED);
    reorder_result_t res = {.batch_id = 101,
                            .committed = 2,
                            .head_height = 2,
                            .failed = true,
                            .failed_height = 3,
                            .content_fault = true};
    reorder_ref_t ref, drops[8];
    size_t nd;
    cr_expect_eq(reorder_on_processed(r, &res, 0, &ref, drops, 8, &nd), REORDER_FAILED);
    cr_expect_eq(nd, 0, "the copy covering the failed height stays");
    reorder_send_t s = next(r, 0, 102);
    cr_expect_eq(s.request_id, 2);
    cr_expect_eq(s.start, 3);
    cr_expect_eq(s.count, 8);
    reorder_destroy(&r);
}

Test(net_reorder, missing_parent_requeues_without_report)
{
    reorder_t *r = make(8, 1 << 20, 2);
    cr_assert_eq(put(r, 1, 1, 10, NULL, NULL), REORDER_ACCEPTED);
    cr_assert_eq(put(r, 2, 11, 10, NULL, NULL), REORDER_ACCEPTED);
    cr_assert_eq(next(r, 0, 101).start, 1);
    cr_assert_eq(next(r, 0, 102).start, 11);
    /* the processor answers the second first as "parent missing" (e.g. it
     * lost the first on a restart) */
    reorder_result_t res = {.batch_id = 102,
                            .committed = 0,
                            .head_height = 0,
                            .failed = true,
                            .failed_height = 11,
                            .content_fault = false};
    reorder_ref_t ref, drops[8];
    size_t nd;
    cr_expect_eq(reorder_on_processed(r, &res, 0, &ref, drops, 8, &nd), REORDER_REQUEUED);
    cr_expect_eq(reorder_entries(r), 2);
    cr_expect_eq(ok(r, 101, 10, 10, NULL), REORDER_PROGRESS);
    reorder_send_t s = next(r, 0, 103);
    cr_expect_eq(s.start, 11, "sent again once its parent is in");
    /* a content failure at the first block is the block's, parent or not */
    cr_assert_eq(put(r, 3, 31, 10, NULL, NULL), REORDER_ACCEPTED);
    reorder_destroy(&r);
}

Test(net_reorder, busy_backs_off_and_later_chunks_wait_for_it)
{
    reorder_t *r = make(8, 1 << 20, 2);
    cr_assert_eq(put(r, 1, 1, 10, NULL, NULL), REORDER_ACCEPTED);
    cr_assert_eq(put(r, 2, 11, 10, NULL, NULL), REORDER_ACCEPTED);
    cr_assert_eq(next(r, 1000, 101).start, 1);
    cr_assert_eq(next(r, 1000, 102).start, 11);
    cr_expect(reorder_on_busy(r, 101, 1000));
    cr_expect(!reorder_on_busy(r, 999, 1000), "unknown batch");
    cr_expect_eq(reorder_inflight(r), 0, "what followed it goes back too");
    cr_expect_eq(next(r, 1050, 103).count, 0, "backing off");
    reorder_send_t s = next(r, 1100, 103);
    cr_expect_eq(s.start, 1);
    cr_expect_eq(next(r, 1100, 104).start, 11);
    cr_expect_eq(ok(r, 102, 0, 0, NULL), REORDER_UNKNOWN, "the abandoned send's reply");
    reorder_destroy(&r);
}

Test(net_reorder, lost_processor_and_timeouts_resend_in_order)
{
    reorder_config_t c;
    reorder_config_defaults(&c);
    c.processing_timeout_ms = 500;
    fill_blocks(1);
    reorder_t *r = reorder_new(&c);
    cr_assert_eq(put(r, 1, 1, 10, NULL, NULL), REORDER_ACCEPTED);
    cr_assert_eq(put(r, 2, 11, 10, NULL, NULL), REORDER_ACCEPTED);
    cr_assert_eq(next(r, 0, 101).start, 1);
    cr_assert_eq(next(r, 0, 102).start, 11);
    cr_expect_eq(reorder_on_lost(r), 2);
    cr_expect_eq(next(r, 10, 103).start, 1);
    cr_expect_eq(next(r, 10, 104).start, 11);
    cr_expect_eq(reorder_expire(r, 400), 0);
    cr_expect_eq(reorder_expire(r, 510), 2);
    cr_expect_eq(next(r, 520, 105).start, 1);
    reorder_destroy(&r);
}

Test(net_reorder, big_ranges_go_in_chunks)
{
    reorder_config_t c;
    reorder_config_defaults(&c);
    c.chunk_bytes = 1000;
    c.max_inflight = 1;
    reorder_t *r = reorder_new(&c);
    fill_blocks(300); /* 3 blocks per chunk */
    cr_assert_eq(put(r, 1, 1, 8, NULL, NULL), REORDER_ACCEPTED);
    reorder_send_t s = next(r, 0, 101);
    cr_expect_eq(s.start, 1);
    cr_expect_eq(s.count, 3);
    reorder_ref_t ref;
    cr_expect_eq(ok(r, 101, 3, 3, &ref), REORDER_PROGRESS);
    cr_expect(!ref.complete);
    s = next(r, 0, 102);
    cr_expect_eq(s.start, 4);
    cr_expect_eq(s.count, 3);
    cr_expect_eq(ok(r, 102, 3, 6, NULL), REORDER_PROGRESS);
    s = next(r, 0, 103);
    cr_expect_eq(s.start, 7);
    cr_expect_eq(s.count, 2);
    cr_expect_eq(ok(r, 103, 2, 8, &ref), REORDER_PROGRESS);
    cr_expect(ref.complete);
    cr_expect_eq(reorder_entries(r), 0);
    reorder_destroy(&r);
}

Test(net_reorder, refused_chunk_fails_without_losing_the_rest_silently)
{
    reorder_t *r = make(8, 1 << 20, 1);
    cr_assert_eq(put(r, 1, 1, 10, NULL, NULL), REORDER_ACCEPTED);
    cr_assert_eq(put(r, 2, 11, 10, NULL, NULL), REORDER_ACCEPTED);
    cr_assert_eq(next(r, 0, 101).start, 1);
    reorder_ref_t ref, drops[8];
    size_t nd;
    cr_expect_eq(reorder_on_refused(r, 101, 0, &ref, drops, 8, &nd), REORDER_FAILED);
    cr_expect_eq(ref.request_id, 1);
    cr_expect_eq(nd, 1);
    cr_expect_eq(drops[0].request_id, 2);
    cr_expect_eq(reorder_on_refused(r, 101, 0, &ref, drops, 8, &nd), REORDER_UNKNOWN);
    reorder_destroy(&r);
}

Test(net_reorder, expected_hashes_travel_with_their_blocks)
{
    reorder_t *r = make(8, 1 << 20, 1);
    uint8_t hashes[10][ALYS_HASH_LEN];
    for (int i = 0; i < 10; i++)
        memset(hashes[i], i + 1, ALYS_HASH_LEN);
    reorder_set_head(r, 3, reorder_seq(r), NULL, 0, &(size_t){0});
    reorder_ref_t drops[4];
    size_t nd;
    reorder_batch_t b = {.request_id = 9,
                         .peer_id = "peer-x",
                         .start = 1,
                         .blocks = s_blocks,
                         .n = 10,
                         .expected = (const uint8_t(*)[ALYS_HASH_LEN]) hashes};
    cr_assert_eq(reorder_insert(r, &b, drops, 4, &nd), REORDER_ACCEPTED);
    reorder_send_t s = next(r, 0, 1);
    cr_expect_eq(s.start, 4);
    cr_assert_not_null(s.expected);
    cr_expect_eq(s.expected[0].len, ALYS_HASH_LEN);
    cr_expect_eq(s.expected[0].data[0], 4, "hash of height 4");
    cr_expect_str_eq(s.peer_id, "peer-x");
    reorder_destroy(&r);
}

Test(net_reorder, rekey_gives_a_held_range_to_a_new_request)
{
    reorder_t *r = make(8, 1 << 20, 2);
    reorder_set_head(r, 100, reorder_seq(r), NULL, 0, &(size_t){0});
    cr_assert_eq(put(r, 1, 101, 10, NULL, NULL), REORDER_ACCEPTED);
    reorder_ref_t old;
    /* another start, or more blocks than held: not held */
    cr_assert_not(reorder_rekey(r, 102, 5, NULL, 7, &old));
    cr_assert_not(reorder_rekey(r, 101, 11, NULL, 7, &old));
    /* expected hashes asked for, none held: not the copy asked for */
    static const uint8_t want[10][ALYS_HASH_LEN] = {{1}};
    cr_assert_not(reorder_rekey(r, 101, 10, want, 7, &old));
    cr_assert(reorder_rekey(r, 101, 8, NULL, 7, &old));
    cr_assert_eq(old.request_id, 1);
    cr_assert_str_eq(old.peer_id, "p");
    cr_assert_eq(old.count, 10);
    /* what follows carries the new id */
    reorder_send_t s = next(r, 0, 1001);
    cr_assert_eq(s.request_id, 7);
    reorder_ref_t ref;
    cr_assert_eq(ok(r, 1001, 10, 110, &ref), REORDER_PROGRESS);
    cr_assert_eq(ref.request_id, 7);
    cr_assert(ref.complete);
    reorder_destroy(&r);
}
