/*  test_aura.c: Aura slot arithmetic and the decision at a slot start. */
#include <criterion/criterion.h>

#include "aura.h"
#include "mp_fixture.h"

static mpf_t f;
#define G0 (MPF_GENESIS_TIME * 1000)

static void setup(void)
{
    mpf_init(&f, 2, 100);
}
static void teardown(void)
{
    mpf_fini(&f);
}
TestSuite(aura, .init = setup, .fini = teardown);

Test(aura, slot_is_elapsed_time_over_slot_duration)
{
    cr_assert_eq(aura_slot_at(&f.g, G0 - 1), 0);
    cr_assert_eq(aura_slot_at(&f.g, G0), 0);
    cr_assert_eq(aura_slot_at(&f.g, G0 + MPF_SLOT_MS - 1), 0);
    cr_assert_eq(aura_slot_at(&f.g, G0 + MPF_SLOT_MS), 1);
    cr_assert_eq(aura_slot_at(&f.g, G0 + 7 * MPF_SLOT_MS + 5), 7);
}

Test(aura, slot_start_is_genesis_plus_slot_times_duration)
{
    uint64_t s;
    cr_assert(aura_slot_start_ms(&f.g, 5, &s));
    cr_assert_eq(s, G0 + 5 * MPF_SLOT_MS);
    cr_assert_not(aura_slot_start_ms(&f.g, UINT64_MAX / 2, &s));
}

Test(aura, author_rotates_over_the_authorities)
{
    for (uint64_t slot = 0; slot < 9; slot++)
        cr_assert_eq(aura_author(&f.g, slot), slot % MPF_AUTHS);
}

Test(aura, authority_index_of_a_key)
{
    cr_assert_eq(aura_authority_index(&f.g, f.keys.authority_pub[2]), 2);
    cr_assert_eq(aura_authority_index(&f.g, f.keys.account_pub[0]), -1);
}

Test(aura, next_own_slot_skips_the_genesis_slot)
{
    uint64_t slot, start;
    cr_assert(aura_next_own_slot(&f.g, 0, G0, &slot, &start));
    cr_assert_eq(slot, 3);
    cr_assert_eq(start, G0 + 3 * MPF_SLOT_MS);
    cr_assert(aura_next_own_slot(&f.g, 1, G0 - 5000, &slot, &start));
    cr_assert_eq(slot, 1);
}

Test(aura, next_own_slot_starting_now_is_this_one_else_the_next_round)
{
    uint64_t slot, start;
    cr_assert(aura_next_own_slot(&f.g, 1, G0 + MPF_SLOT_MS, &slot, &start));
    cr_assert_eq(slot, 1);
    cr_assert_eq(start, G0 + MPF_SLOT_MS);
    cr_assert(aura_next_own_slot(&f.g, 1, G0 + MPF_SLOT_MS + 1, &slot, &start));
    cr_assert_eq(slot, 4);
    cr_assert(aura_next_own_slot(&f.g, 2, G0 + MPF_SLOT_MS + 1, &slot, &start));
    cr_assert_eq(slot, 2);
    cr_assert(start > G0 + MPF_SLOT_MS + 1);
}

Test(aura, next_own_slot_of_an_unknown_index_is_refused)
{
    uint64_t slot, start;
    cr_assert_not(aura_next_own_slot(&f.g, MPF_AUTHS, G0, &slot, &start));
}

/* ---------------------------------------------------------------- decision */

static aura_input_t base(void)
{
    /* slot 4 is authority 1's; 10 ms into it, allowed, idle, head at slot 3. */
    return (aura_input_t){.genesis = &f.g,
                          .authority = 1,
                          .slot = 4,
                          .now_ms = G0 + 4 * MPF_SLOT_MS + 10,
                          .late_ms = 1000,
                          .can_produce = AURA_SYNC_YES,
                          .busy = false,
                          .head_slot = 3};
}

Test(aura, own_slot_allowed_idle_in_time_produces)
{
    aura_input_t in = base();
    cr_assert_eq(aura_decide(&in), AURA_PRODUCE);
}

Test(aura, another_authoritys_slot_is_not_ours_and_not_a_miss)
{
    aura_input_t in = base();
    in.slot = 5;
    cr_assert_eq(aura_decide(&in), AURA_NOT_OUR_SLOT);
    cr_assert_not(aura_decision_is_miss(AURA_NOT_OUR_SLOT));
}

Test(aura, slot_zero_is_never_produced)
{
    aura_input_t in = base();
    in.authority = 0;
    in.slot = 0;
    in.head_slot = 0;
    cr_assert_eq(aura_decide(&in), AURA_GENESIS_SLOT);
    cr_assert_not(aura_decision_is_miss(AURA_GENESIS_SLOT));
}

Test(aura, sync_saying_no_is_not_allowed)
{
    aura_input_t in = base();
    in.can_produce = AURA_SYNC_NO;
    cr_assert_eq(aura_decide(&in), AURA_NOT_ALLOWED);
    cr_assert(aura_decision_is_miss(AURA_NOT_ALLOWED));
}

Test(aura, sync_silent_is_no_answer)
{
    aura_input_t in = base();
    in.can_produce = AURA_SYNC_NO_ANSWER;
    cr_assert_eq(aura_decide(&in), AURA_NO_ANSWER);
}

Test(aura, block_in_progress_is_busy)
{
    aura_input_t in = base();
    in.busy = true;
    cr_assert_eq(aura_decide(&in), AURA_BUSY);
}

Test(aura, past_the_lateness_bound_is_too_late)
{
    aura_input_t in = base();
    in.now_ms = G0 + 4 * MPF_SLOT_MS + in.late_ms;
    cr_assert_eq(aura_decide(&in), AURA_PRODUCE); /* the bound itself is in time */
    in.now_ms++;
    cr_assert_eq(aura_decide(&in), AURA_TOO_LATE);
    in.now_ms = G0 + 4 * MPF_SLOT_MS - 3; /* a timer firing early */
    cr_assert_eq(aura_decide(&in), AURA_PRODUCE);
}

Test(aura, head_at_or_after_the_slot_is_head_ahead)
{
    aura_input_t in = base();
    in.head_slot = 4;
    cr_assert_eq(aura_decide(&in), AURA_HEAD_AHEAD);
}

Test(aura, fence_at_or_above_the_slot_is_already_signed)
{
    aura_input_t in = base();
    in.fence_any = true;
    in.fence_slot = 4;
    cr_assert_eq(aura_decide(&in), AURA_ALREADY_SIGNED);
    in.fence_slot = 3;
    cr_assert_eq(aura_decide(&in), AURA_PRODUCE);
}

Test(aura, reasons_in_order_permission_then_capacity_then_time)
{
    aura_input_t in = base();
    in.can_produce = AURA_SYNC_NO;
    in.busy = true;
    in.now_ms += 5000;
    cr_assert_eq(aura_decide(&in), AURA_NOT_ALLOWED);
    in.can_produce = AURA_SYNC_YES;
    cr_assert_eq(aura_decide(&in), AURA_BUSY);
    in.busy = false;
    cr_assert_eq(aura_decide(&in), AURA_TOO_LATE);
}

Test(aura, decision_names_are_stable)
{
    cr_assert_str_eq(aura_decision_name(AURA_PRODUCE), "produce");
    cr_assert_str_eq(aura_decision_name(AURA_NOT_ALLOWED), "not_allowed");
    cr_assert_str_eq(aura_decision_name(AURA_TOO_LATE), "too_late");
    cr_assert_str_eq(aura_decision_name(AURA_BUSY), "busy");
    cr_assert_str_eq(aura_decision_name(AURA_NOT_OUR_SLOT), "not_our_slot");
    cr_assert_str_eq(aura_decision_name(AURA_DECISION_COUNT), "unknown");
}
