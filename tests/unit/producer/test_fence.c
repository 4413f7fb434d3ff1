/*  test_fence.c: the signing fence rule. */
#include <criterion/criterion.h>
#include <string.h>

#include "chain/fence.h"

static const alys_hash_t H1 = {1}, H2 = {2};

static alys_fence_record_t at(uint64_t slot, const alys_hash_t h)
{
    alys_fence_record_t r = {.any = true, .slot = slot};
    memcpy(r.hash, h, ALYS_HASH_LEN);
    return r;
}

Test(fence, nothing_signed_allows_any_slot)
{
    alys_fence_record_t r = {.any = false};
    cr_assert_eq(alys_fence_check(&r, 0, H1), ALYS_FENCE_ALLOW_NEW);
    cr_assert_eq(alys_fence_check(&r, 7, H1), ALYS_FENCE_ALLOW_NEW);
}

Test(fence, a_later_slot_is_new)
{
    alys_fence_record_t r = at(5, H1);
    cr_assert_eq(alys_fence_check(&r, 6, H2), ALYS_FENCE_ALLOW_NEW);
    cr_assert(alys_fence_allows(ALYS_FENCE_ALLOW_NEW));
}

Test(fence, the_same_block_again_is_a_resign)
{
    alys_fence_record_t r = at(5, H1);
    cr_assert_eq(alys_fence_check(&r, 5, H1), ALYS_FENCE_ALLOW_RESIGN);
    cr_assert(alys_fence_allows(ALYS_FENCE_ALLOW_RESIGN));
}

Test(fence, another_block_for_a_signed_slot_is_refused)
{
    alys_fence_record_t r = at(5, H1);
    cr_assert_eq(alys_fence_check(&r, 5, H2), ALYS_FENCE_REFUSE_DOUBLE);
    cr_assert_not(alys_fence_allows(ALYS_FENCE_REFUSE_DOUBLE));
}

Test(fence, a_slot_below_the_signed_one_is_refused_even_for_the_same_hash)
{
    alys_fence_record_t r = at(5, H1);
    cr_assert_eq(alys_fence_check(&r, 4, H2), ALYS_FENCE_REFUSE_STALE);
    cr_assert_eq(alys_fence_check(&r, 4, H1), ALYS_FENCE_REFUSE_STALE);
    cr_assert_not(alys_fence_allows(ALYS_FENCE_REFUSE_STALE));
}

Test(fence, advance_never_moves_back)
{
    alys_fence_record_t r = {.any = false};
    alys_fence_advance(&r, 5, H1);
    cr_assert(r.any);
    cr_assert_eq(r.slot, 5);
    alys_fence_advance(&r, 3, H2); /* a late acknowledgement */
    cr_assert_eq(r.slot, 5);
    cr_assert_eq(memcmp(r.hash, H1, ALYS_HASH_LEN), 0);
    alys_fence_advance(&r, 5, H2);
    cr_assert_eq(memcmp(r.hash, H1, ALYS_HASH_LEN), 0);
    alys_fence_advance(&r, 9, H2);
    cr_assert_eq(r.slot, 9);
    cr_assert_eq(memcmp(r.hash, H2, ALYS_HASH_LEN), 0);
}

Test(fence, verdict_names_are_stable)
{
    cr_assert_str_eq(alys_fence_verdict_name(ALYS_FENCE_ALLOW_NEW), "allow_new");
    cr_assert_str_eq(alys_fence_verdict_name(ALYS_FENCE_ALLOW_RESIGN), "allow_resign");
    cr_assert_str_eq(alys_fence_verdict_name(ALYS_FENCE_REFUSE_DOUBLE), "refuse_double");
    cr_assert_str_eq(alys_fence_verdict_name(ALYS_FENCE_REFUSE_STALE), "refuse_stale");
}
