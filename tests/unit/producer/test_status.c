/*  test_status.c: ProducerStatus filled from a slot session. */
#include <criterion/criterion.h>
#include <string.h>

#include "mp_fixture.h"
#include "status.h"

static mpf_t f;
static void setup(void)
{
    mpf_init(&f, 2, 100);
}
static void teardown(void)
{
    mpf_fini(&f);
}
TestSuite(status, .init = setup, .fini = teardown);

Test(status, a_fresh_session_reports_nothing_signed_nothing_missed)
{
    slot_session_t ss;
    ss_init(&ss, &f.g, 2, 500, 1000, 300);
    producer_status_t st;
    producer_status_fill(&st, &ss, true, 5);
    cr_assert(st.msg.enabled);
    cr_assert_eq(st.msg.authority_index, 2);
    cr_assert_eq(st.msg.produced, 0);
    cr_assert_eq(st.msg.missed_slots, 0);
    cr_assert_str_eq(st.msg.last_missed_reason, "");
    cr_assert_eq(st.msg.signed_up_to_slot, 0);
    cr_assert_eq(st.msg.next_own_slot, 5);
    cr_assert_eq(st.msg.n_missed_by_reason, 0);
}

Test(status, misses_by_reason_signed_slot_and_produced_are_reported)
{
    slot_session_t ss;
    ss_init(&ss, &f.g, 1, 500, 1000, 300);
    alys_fence_record_t none = {.any = false};
    ss_set_fence(&ss, &none);
    uint64_t t;
    cr_assert(aura_slot_start_ms(&f.g, 4, &t));
    ss_action_t a = ss_slot_start(&ss, 4, t);
    ss_tick(&ss, t + 500); /* no_answer */
    cr_assert(aura_slot_start_ms(&f.g, 7, &t));
    a = ss_slot_start(&ss, 7, t);
    ss_on_can_produce(&ss, a.corr_sync, true, t + 1);
    ss_on_pool(&ss, a.corr_pool, t + 1);
    a = ss_on_head(&ss, a.corr_head, 4, t + 2);
    cr_assert_eq(a.kind, SS_BUILD);
    const alys_hash_t h = {7};
    a = ss_built(&ss, 7, h, t + 3);
    a = ss_on_fence_recorded(&ss, a.corr_fence, true);
    cr_assert_eq(a.kind, SS_SIGN_SUBMIT);
    ss_on_committed(&ss, 7);

    producer_status_t st;
    producer_status_fill(&st, &ss, true, 10);
    cr_assert_eq(st.msg.produced, 1);
    cr_assert_eq(st.msg.missed_slots, 1);
    cr_assert_str_eq(st.msg.last_missed_reason, "no_answer");
    cr_assert_eq(st.msg.last_missed_slot, 4);
    cr_assert_eq(st.msg.signed_up_to_slot, 7);
    cr_assert_eq(st.msg.n_missed_by_reason, 1);
    cr_assert_str_eq(st.msg.missed_by_reason[0]->reason, "no_answer");
    cr_assert_eq(st.msg.missed_by_reason[0]->count, 1);
    /* It encodes as a ProducerStatus. */
    size_t len = alys__producer__producer_status__get_packed_size(&st.msg);
    uint8_t buf[512];
    cr_assert_leq(len, sizeof buf);
    alys__producer__producer_status__pack(&st.msg, buf);
    Alys__Producer__ProducerStatus *back = alys__producer__producer_status__unpack(NULL, len, buf);
    cr_assert_not_null(back);
    cr_assert_eq(back->signed_up_to_slot, 7);
    alys__producer__producer_status__free_unpacked(back, NULL);
}
