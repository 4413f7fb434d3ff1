/*  test_slot_session.c: one own slot's work, event by event. */
#include <criterion/criterion.h>
#include <string.h>

#include "mp_fixture.h"
#include "slot_session.h"

static mpf_t f;
static slot_session_t ss;
static const alys_hash_t H1 = {1}, H2 = {2};
#define WAIT  500
#define LATE  1000
#define FENCE 300

static uint64_t start_of(uint64_t slot)
{
    uint64_t s;
    cr_assert(aura_slot_start_ms(&f.g, slot, &s));
    return s;
}

static void setup(void)
{
    mpf_init(&f, 2, 100);
    ss_init(&ss, &f.g, 1, WAIT, LATE, FENCE); /* authority 1: slots 1, 4, 7, ... */
    alys_fence_record_t none = {.any = false};
    ss_set_fence(&ss, &none); /* storage holds no record */
}

static void teardown(void)
{
    mpf_fini(&f);
}
TestSuite(slot_session, .init = setup, .fini = teardown);

/* Start slot, answer all three (sync says yes/no; the mempool answers
 * first), return the action. */
static ss_action_t start_and_answer(uint64_t slot, bool yes, uint64_t head_slot)
{
    uint64_t t = start_of(slot);
    ss_action_t a = ss_slot_start(&ss, slot, t);
    cr_assert_eq(a.kind, SS_ASK);
    cr_assert_eq(a.slot, slot);
    cr_assert_neq(a.corr_sync, a.corr_head);
    cr_assert_neq(a.corr_pool, a.corr_head);
    cr_assert_neq(a.corr_pool, a.corr_sync);
    cr_assert_eq(ss_on_pool(&ss, a.corr_pool, t + 2).kind, SS_NONE);
    cr_assert_eq(ss_on_can_produce(&ss, a.corr_sync, yes, t + 5).kind, SS_NONE,
                 "no decision before the head is known");
    return ss_on_head(&ss, a.corr_head, head_slot, t + 10);
}

Test(slot_session, allowed_slot_goes_ask_build_fence_sign)
{
    ss_action_t a = start_and_answer(4, true, 3);
    cr_assert_eq(a.kind, SS_BUILD);
    a = ss_built(&ss, 4, H1, start_of(4) + 20);
    cr_assert_eq(a.kind, SS_RECORD_FENCE);
    cr_assert_eq(ss.fence.any, false, "not advanced before storage acknowledges");
    a = ss_on_fence_recorded(&ss, a.corr_fence, true);
    cr_assert_eq(a.kind, SS_SIGN_SUBMIT);
    cr_assert_eq(a.slot, 4);
    cr_assert(ss.fence.any);
    cr_assert_eq(ss.fence.slot, 4);
    cr_assert_eq(memcmp(ss.fence.hash, H1, ALYS_HASH_LEN), 0);
    ss_on_committed(&ss, 4);
    cr_assert_eq(ss.produced, 1);
    cr_assert_eq(ss.missed, 0);
}

Test(slot_session, the_decision_waits_for_the_mempool_until_the_deadline)
{
    uint64_t t = start_of(4);
    ss_action_t a = ss_slot_start(&ss, 4, t);
    cr_assert_eq(ss_on_can_produce(&ss, a.corr_sync, true, t + 1).kind, SS_NONE);
    cr_assert_eq(ss_on_head(&ss, a.corr_head, 3, t + 2).kind, SS_NONE, "the mempool is awaited");
    cr_assert_eq(ss_on_pool(&ss, a.corr_sync, t + 3).kind, SS_NONE, "another request's corr");
    cr_assert_eq(ss_on_pool(&ss, a.corr_pool, t + 4).kind, SS_BUILD);
    /* A silent mempool: the deadline builds anyway (a block without txs). */
    cr_assert_eq(ss_built(&ss, 4, H1, t + 5).kind, SS_RECORD_FENCE);
    cr_assert_eq(ss_on_fence_recorded(&ss, ss.corr_fence, true).kind, SS_SIGN_SUBMIT);
    t = start_of(7);
    a = ss_slot_start(&ss, 7, t);
    cr_assert_eq(ss_on_can_produce(&ss, a.corr_sync, true, t + 1).kind, SS_NONE);
    cr_assert_eq(ss_on_head(&ss, a.corr_head, 4, t + 2).kind, SS_NONE);
    cr_assert_eq(ss_tick(&ss, t + WAIT - 1).kind, SS_NONE);
    cr_assert_eq(ss_tick(&ss, t + WAIT).kind, SS_BUILD);
}

Test(slot_session, silent_sync_is_decided_no_answer_at_the_wait_deadline)
{
    uint64_t t = start_of(4);
    ss_action_t a = ss_slot_start(&ss, 4, t);
    cr_assert_eq(ss_on_head(&ss, a.corr_head, 3, t + 1).kind, SS_NONE);
    cr_assert_eq(ss_tick(&ss, t + WAIT - 1).kind, SS_NONE);
    a = ss_tick(&ss, t + WAIT);
    cr_assert_eq(a.kind, SS_MISSED);
    cr_assert_str_eq(a.reason, "no_answer");
    cr_assert_eq(ss_missed_count(&ss, "no_answer"), 1);
    cr_assert_eq(ss.last_missed_slot, 4);
    cr_assert_str_eq(ss.last_missed_reason, "no_answer");
}

Test(slot_session, sync_saying_no_misses_not_allowed)
{
    ss_action_t a = start_and_answer(4, false, 3);
    cr_assert_eq(a.kind, SS_MISSED);
    cr_assert_str_eq(a.reason, "not_allowed");
    cr_assert_eq(ss.phase, SS_IDLE);
}

Test(slot_session, an_answer_for_an_older_slot_changes_nothing)
{
    uint64_t t = start_of(4);
    ss_action_t old = ss_slot_start(&ss, 4, t);
    cr_assert_eq(ss_tick(&ss, t + WAIT).kind, SS_MISSED);
    ss_action_t a = ss_slot_start(&ss, 7, start_of(7));
    cr_assert_eq(a.kind, SS_ASK);
    cr_assert_eq(ss_on_can_produce(&ss, old.corr_sync, true, start_of(7) + 1).kind, SS_NONE);
    cr_assert_eq(ss_on_head(&ss, old.corr_head, 6, start_of(7) + 1).kind, SS_NONE);
    cr_assert_eq(ss.answer, AURA_SYNC_NO_ANSWER);
    cr_assert_not(ss.head_known);
}

Test(slot_session, a_slot_starting_while_the_last_is_unfinished_is_busy)
{
    ss_action_t a = start_and_answer(4, true, 3);
    a = ss_built(&ss, 4, H1, start_of(4) + 20);
    uint64_t corr = a.corr_fence;
    a = ss_slot_start(&ss, 7, start_of(7));
    cr_assert_eq(a.kind, SS_MISSED);
    cr_assert_eq(a.slot, 7);
    cr_assert_str_eq(a.reason, "busy");
    cr_assert_eq(ss_on_fence_recorded(&ss, corr, true).kind, SS_SIGN_SUBMIT, "slot 4 goes on");
}

Test(slot_session, no_fence_answer_in_time_misses_and_a_late_ok_never_signs)
{
    ss_action_t a = start_and_answer(4, true, 3);
    uint64_t t = start_of(4) + 20;
    a = ss_built(&ss, 4, H1, t);
    uint64_t corr = a.corr_fence;
    cr_assert_eq(ss_tick(&ss, t + FENCE - 1).kind, SS_NONE);
    a = ss_tick(&ss, t + FENCE);
    cr_assert_eq(a.kind, SS_MISSED);
    cr_assert_str_eq(a.reason, "fence_unavailable");
    cr_assert_eq(ss_on_fence_recorded(&ss, corr, true).kind, SS_NONE);
    cr_assert_not(ss.fence.any);
}

Test(slot_session, fence_write_refused_misses)
{
    ss_action_t a = start_and_answer(4, true, 3);
    a = ss_built(&ss, 4, H1, start_of(4) + 20);
    a = ss_on_fence_recorded(&ss, a.corr_fence, false);
    cr_assert_eq(a.kind, SS_MISSED);
    cr_assert_str_eq(a.reason, "fence_unavailable");
    cr_assert_not(ss.fence.any);
}

Test(slot_session, a_block_the_fence_refuses_is_never_recorded)
{
    ss_action_t a = start_and_answer(4, true, 3);
    cr_assert_eq(a.kind, SS_BUILD);
    /* The durable record, read meanwhile, names another block of slot 4. */
    alys_fence_record_t r = {.any = true, .slot = 4};
    memcpy(r.hash, H2, ALYS_HASH_LEN);
    ss_set_fence(&ss, &r);
    a = ss_built(&ss, 4, H1, start_of(4) + 20);
    cr_assert_eq(a.kind, SS_MISSED);
    cr_assert_str_eq(a.reason, "fence_refused");
}

Test(slot_session, after_a_restart_a_signed_slot_is_already_signed)
{
    alys_fence_record_t r = {.any = true, .slot = 4};
    memcpy(r.hash, H1, ALYS_HASH_LEN);
    ss_set_fence(&ss, &r);
    ss_action_t a = start_and_answer(4, true, 3);
    cr_assert_eq(a.kind, SS_MISSED);
    cr_assert_str_eq(a.reason, "already_signed");
}

Test(slot_session, build_failure_and_abandon_are_misses_with_their_reason)
{
    ss_action_t a = start_and_answer(4, true, 3);
    a = ss_build_failed(&ss, 4);
    cr_assert_eq(a.kind, SS_MISSED);
    cr_assert_str_eq(a.reason, "build_failed");
    a = start_and_answer(7, true, 4);
    cr_assert_eq(a.kind, SS_BUILD);
    a = ss_abandon(&ss, "not_wired");
    cr_assert_str_eq(a.reason, "not_wired");
    cr_assert_eq(ss_abandon(&ss, "not_wired").kind, SS_NONE, "nothing in progress");
    cr_assert_eq(ss.missed, 2);
    cr_assert_eq(ss_missed_count(&ss, "build_failed"), 1);
    cr_assert_eq(ss_missed_count(&ss, "not_wired"), 1);
}

Test(slot_session, another_authoritys_slot_is_neither_built_nor_missed)
{
    ss_action_t a = start_and_answer(5, true, 4);
    cr_assert_eq(a.kind, SS_NONE);
    cr_assert_eq(ss.missed, 0);
    cr_assert_eq(ss.phase, SS_IDLE);
}

Test(slot_session, no_production_before_the_durable_record_is_known)
{
    ss_init(&ss, &f.g, 1, WAIT, LATE, FENCE); /* a restart: the record not read yet */
    ss_action_t a = start_and_answer(4, true, 3);
    cr_assert_eq(a.kind, SS_MISSED);
    cr_assert_str_eq(a.reason, "fence_unknown");
    a = start_and_answer(7, false, 3);
    cr_assert_str_eq(a.reason, "not_allowed", "other reasons still come first");
    alys_fence_record_t none = {.any = false};
    ss_set_fence(&ss, &none);
    a = start_and_answer(10, true, 3);
    cr_assert_eq(a.kind, SS_BUILD);
}

Test(slot_session, a_signed_block_not_handed_over_is_a_miss_of_its_slot)
{
    ss_action_t a = start_and_answer(4, true, 3);
    a = ss_built(&ss, 4, H1, start_of(4) + 20);
    a = ss_on_fence_recorded(&ss, a.corr_fence, true);
    cr_assert_eq(a.kind, SS_SIGN_SUBMIT);
    a = ss_not_submitted(&ss, 4, "encode_failed");
    cr_assert_eq(a.kind, SS_MISSED);
    cr_assert_eq(a.slot, 4);
    cr_assert_str_eq(a.reason, "encode_failed");
    cr_assert_eq(ss_missed_count(&ss, "encode_failed"), 1);
    cr_assert_eq(ss.produced, 0);
    cr_assert(ss.fence.any && ss.fence.slot == 4, "the fence record stays");
    /* Only once, and only for the slot just signed. */
    cr_assert_eq(ss_not_submitted(&ss, 3, "encode_failed").kind, SS_NONE);
    cr_assert_eq(ss.missed, 1);
}

/* Signed and handed to BlockProcessor: the corr of its ProcessBatch. */
static uint64_t signed_and_submitted(uint64_t slot, uint64_t timeout)
{
    ss_action_t a = start_and_answer(slot, true, slot - 1);
    a = ss_built(&ss, slot, H1, start_of(slot) + 20);
    a = ss_on_fence_recorded(&ss, a.corr_fence, true);
    cr_assert_eq(a.kind, SS_SIGN_SUBMIT);
    return ss_submitted(&ss, slot, start_of(slot) + 40, timeout);
}

Test(slot_session, a_committed_block_counts_as_produced)
{
    uint64_t corr = signed_and_submitted(4, 1000);
    uint64_t slot = 0;
    cr_assert_eq(ss_on_processed(&ss, corr + 1, true, &slot).kind, SS_NONE);
    cr_assert_eq(ss.produced, 0, "another batch's answer is not ours");
    cr_assert_eq(ss_on_processed(&ss, corr, true, &slot).kind, SS_NONE);
    cr_assert_eq(slot, 4);
    cr_assert_eq(ss.produced, 1);
    cr_assert_eq(ss.missed, 0);
    cr_assert_eq(ss_on_processed(&ss, corr, true, &slot).kind, SS_NONE);
    cr_assert_eq(ss.produced, 1, "one answer counts once");
}

Test(slot_session, a_refused_block_is_a_miss_of_its_slot)
{
    uint64_t corr = signed_and_submitted(4, 1000);
    uint64_t slot = 0;
    ss_action_t a = ss_on_processed(&ss, corr, false, &slot);
    cr_assert_eq(a.kind, SS_MISSED);
    cr_assert_eq(a.slot, 4);
    cr_assert_str_eq(a.reason, "refused");
    cr_assert_eq(ss.produced, 0);
    cr_assert(ss.fence.any && ss.fence.slot == 4, "its slot stays fenced: never signed again");
}

Test(slot_session, no_answer_within_the_deadline_is_not_committed)
{
    signed_and_submitted(4, 1000);
    uint64_t sent = start_of(4) + 40;
    cr_assert_eq(ss_tick(&ss, sent + 999).kind, SS_NONE);
    ss_action_t a = ss_tick(&ss, sent + 1000);
    cr_assert_eq(a.kind, SS_MISSED);
    cr_assert_str_eq(a.reason, "not_committed");
    cr_assert_eq(a.slot, 4);
    cr_assert_eq(ss_tick(&ss, sent + 5000).kind, SS_NONE, "missed once");
}

Test(slot_session, the_next_own_slot_is_busy_while_our_block_is_not_committed)
{
    signed_and_submitted(4, 100000);
    ss_action_t a = start_and_answer(7, true, 3);
    cr_assert_eq(a.kind, SS_MISSED);
    cr_assert_str_eq(a.reason, "busy", "building on a head without our block would fork");
}
