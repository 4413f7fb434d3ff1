/*  test_validate.c: each stateless and linkage rule on its own. Every test
 *  starts from a valid block and breaks exactly one thing (re-signing what
 *  the broken thing would otherwise also invalidate). */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "fixture.h"

static fx_t s_fx;
static alys_header_t s_parent;
static alys_hash_t s_parent_hash;
static alys_block_t s_b;
#define SLOT     7
#define NOW_SLOT 100

/* Block 1 on genesis at slot 7 with 4 txs. */
static void setup(void)
{
    fx_init(&s_fx);
    alys_genesis_parent(&s_fx.g, &s_parent);
    memcpy(s_parent_hash, s_fx.g.hash, 32);
    alys_tx_t txs[4];
    for (int i = 0; i < 4; i++)
        txs[i] = fx_tx(&s_fx, i, s_fx.user_pk[(i + 1) % FX_USERS], 100 + (uint64_t) i, 3, 0);
    fx_block(&s_fx, &s_parent, s_parent_hash, SLOT, txs, 4, &s_b);
}

static void teardown(void)
{
    alys_block_clear(&s_b);
    fx_fini(&s_fx);
}

TestSuite(validate, .init = setup, .fini = teardown);

static void expect_stateless(alys_block_error_t code, int32_t tx_index)
{
    alys_verdict_t v;
    cr_assert_not(alys_block_check_stateless(&s_fx.g, &s_b, &v));
    cr_assert_eq(v.code, code, "got %s (%s), want %s", alys_block_error_name(v.code), v.detail,
                 alys_block_error_name(code));
    cr_assert_eq(v.tx_index, tx_index, "tx_index %d, want %d", v.tx_index, tx_index);
    cr_assert_neq(v.detail[0], '\0');
}

static void expect_link(alys_block_error_t code, const char *detail)
{
    alys_verdict_t v;
    cr_assert_not(alys_header_check_link(&s_parent, s_parent_hash, &s_b.header, NOW_SLOT, &v));
    cr_assert_eq(v.code, code, "got %s (%s)", alys_block_error_name(v.code), v.detail);
    cr_assert_eq(v.tx_index, -1);
    if (detail)
        cr_assert_str_eq(v.detail, detail);
}

Test(validate, valid_block_passes_everything)
{
    alys_verdict_t v;
    cr_assert(alys_block_check_stateless(&s_fx.g, &s_b, &v), "%s", v.detail);
    cr_assert_eq(v.code, ALYS_BLOCK_OK);
    cr_assert(alys_header_check(&s_fx.g, &s_b.header, &v), "%s", v.detail);
    cr_assert(alys_header_check_link(&s_parent, s_parent_hash, &s_b.header, NOW_SLOT, &v), "%s",
              v.detail);
    alys_overlay_t *ov = alys_overlay_new();
    alys_state_view_t view;
    fx_view(&s_fx, ov, &view);
    cr_assert(alys_execute_block(&view, &s_b, &v), "%s", v.detail);
    alys_overlay_destroy(&ov);
}

Test(validate, wrong_proposer_for_slot)
{
    s_b.header.proposer = (SLOT + 1) % FX_AUTHS;
    fx_resign(&s_fx, &s_b.header); /* a real signature by the wrong authority */
    expect_stateless(ALYS_BLOCK_WRONG_PROPOSER, -1);
    alys_verdict_t v;
    cr_assert_not(alys_header_check(&s_fx.g, &s_b.header, &v));
    cr_assert_eq(v.code, ALYS_BLOCK_WRONG_PROPOSER);
    cr_assert_str_eq(v.detail, "proposer 2 != slot 7 mod 3 = 1");
}

Test(validate, proposer_index_out_of_range)
{
    s_b.header.proposer = FX_AUTHS + 1;
    expect_stateless(ALYS_BLOCK_WRONG_PROPOSER, -1);
    alys_verdict_t v;
    cr_assert_not(alys_header_check(&s_fx.g, &s_b.header, &v));
    cr_assert_str_eq(v.detail, "proposer index 4 >= authority count 3");
}

Test(validate, bad_proposer_signature_bit_flip)
{
    s_b.header.signature[10] ^= 0x04;
    expect_stateless(ALYS_BLOCK_BAD_PROPOSER_SIG, -1);
}

Test(validate, proposer_signature_by_another_authority)
{
    alys_hash_t hh;
    alys_header_hash(&s_b.header, hh);
    cr_assert_eq(alys_sign(s_fx.auth_sk[0], hh, s_b.header.signature), 0);
    expect_stateless(ALYS_BLOCK_BAD_PROPOSER_SIG, -1);
}

Test(validate, header_field_changed_after_signing)
{
    s_b.header.state_root[0] ^= 1;
    expect_stateless(ALYS_BLOCK_BAD_PROPOSER_SIG, -1);
}

Test(validate, bad_timestamp)
{
    s_b.header.timestamp += 1;
    fx_resign(&s_fx, &s_b.header);
    expect_stateless(ALYS_BLOCK_BAD_TIMESTAMP, -1);
    alys_verdict_t v;
    cr_assert_not(alys_header_check(&s_fx.g, &s_b.header, &v));
    cr_assert_str_eq(v.detail, "timestamp 1700000015 != genesis_time + slot 7 * 2000 ms = 1700000014");
}

Test(validate, timestamp_rule_rounds_down_to_the_second)
{
    s_fx.g.slot_duration_ms = 1500; /* slot 7 starts 10.5 s after genesis */
    s_b.header.timestamp = FX_GENESIS_TIME + 10;
    fx_resign(&s_fx, &s_b.header);
    alys_verdict_t v;
    cr_assert(alys_header_check(&s_fx.g, &s_b.header, &v), "%s", v.detail);
}

Test(validate, tx_root_mismatch_from_changed_tx)
{
    s_b.txs[1].amount += 1;
    fx_resign_tx(&s_fx, 1, &s_b.txs[1]); /* the tx itself stays valid */
    expect_stateless(ALYS_BLOCK_TX_ROOT_MISMATCH, -1);
}

Test(validate, tx_root_mismatch_from_reordered_txs)
{
    alys_tx_t t = s_b.txs[0];
    s_b.txs[0] = s_b.txs[3];
    s_b.txs[3] = t;
    expect_stateless(ALYS_BLOCK_TX_ROOT_MISMATCH, -1);
}

Test(validate, tx_root_mismatch_from_dropped_tx)
{
    s_b.tx_count = 3;
    expect_stateless(ALYS_BLOCK_TX_ROOT_MISMATCH, -1);
}

Test(validate, bad_tx_signature_names_the_tx)
{
    s_b.txs[2].signature[40] ^= 0x80;
    expect_stateless(ALYS_BLOCK_BAD_TX_SIG, 2);
}

Test(validate, tx_signed_by_someone_else)
{
    alys_hash_t th;
    alys_tx_hash(&s_b.txs[3], th);
    cr_assert_eq(alys_sign(s_fx.user_sk[0], th, s_b.txs[3].signature), 0);
    expect_stateless(ALYS_BLOCK_BAD_TX_SIG, 3);
}

Test(validate, too_many_txs_is_oversize)
{
    alys_tx_t *many = calloc(ALYS_MAX_TXS_PER_BLOCK + 1, sizeof *many);
    cr_assert(many);
    free(s_b.txs);
    s_b.txs = many;
    s_b.tx_count = ALYS_MAX_TXS_PER_BLOCK + 1;
    expect_stateless(ALYS_BLOCK_OVERSIZE, -1);
}

Test(validate, height_gap)
{
    s_b.header.height = 3;
    expect_link(ALYS_BLOCK_HEIGHT_GAP, "height 3 != parent height 0 + 1");
    s_b.header.height = 0;
    expect_link(ALYS_BLOCK_HEIGHT_GAP, NULL);
}

Test(validate, parent_mismatch)
{
    s_b.header.parent_hash[31] ^= 1;
    expect_link(ALYS_BLOCK_PARENT_MISMATCH, NULL);
}

Test(validate, non_increasing_slot)
{
    s_parent.slot = SLOT;
    expect_link(ALYS_BLOCK_NON_INCREASING_SLOT, "slot 7 <= parent slot 7");
    s_parent.slot = SLOT + 5;
    expect_link(ALYS_BLOCK_NON_INCREASING_SLOT, "slot 7 <= parent slot 12");
}

Test(validate, future_slot)
{
    alys_verdict_t v;
    cr_assert(alys_header_check_link(&s_parent, s_parent_hash, &s_b.header, SLOT, &v));
    cr_assert_not(alys_header_check_link(&s_parent, s_parent_hash, &s_b.header, SLOT - 1, &v));
    cr_assert_eq(v.code, ALYS_BLOCK_FUTURE_SLOT);
    cr_assert_str_eq(v.detail, "slot 7 > wall-clock slot 6");
}

Test(validate, link_between_two_real_blocks)
{
    alys_hash_t h1;
    alys_header_hash(&s_b.header, h1);
    alys_block_t b2;
    fx_block(&s_fx, &s_b.header, h1, SLOT + 2, NULL, 0, &b2);
    alys_verdict_t v;
    cr_assert(alys_header_check_link(&s_b.header, h1, &b2.header, NOW_SLOT, &v), "%s", v.detail);
    cr_assert(alys_block_check_stateless(&s_fx.g, &b2, &v), "%s", v.detail);
    alys_block_clear(&b2);
}

Test(validate, slot_at_wall_clock)
{
    uint64_t t0 = FX_GENESIS_TIME * 1000;
    cr_assert_eq(alys_genesis_slot_at(&s_fx.g, 0), 0);
    cr_assert_eq(alys_genesis_slot_at(&s_fx.g, t0 - 1), 0);
    cr_assert_eq(alys_genesis_slot_at(&s_fx.g, t0), 0);
    cr_assert_eq(alys_genesis_slot_at(&s_fx.g, t0 + 1999), 0);
    cr_assert_eq(alys_genesis_slot_at(&s_fx.g, t0 + 2000), 1);
    cr_assert_eq(alys_genesis_slot_at(&s_fx.g, t0 + 2000 * 12345 + 7), 12345);
}

Test(validate, error_names_are_stable)
{
    static const char *want[] = {
        "ok",
        "malformed",
        "oversize",
        "bad_proposer_signature",
        "wrong_proposer",
        "bad_tx_signature",
        "tx_root_mismatch",
        "parent_mismatch",
        "height_gap",
        "non_increasing_slot",
        "future_slot",
        "bad_timestamp",
        "bad_nonce",
        "insufficient_balance",
        "state_root_mismatch",
        "internal_error",
    };
    cr_assert_eq(sizeof want / sizeof want[0], ALYS_BLOCK_ERROR_COUNT);
    for (int i = 0; i < ALYS_BLOCK_ERROR_COUNT; i++)
        cr_assert_str_eq(alys_block_error_name((alys_block_error_t) i), want[i]);
    cr_assert_str_eq(alys_block_error_name(ALYS_BLOCK_ERROR_COUNT), "unknown");
}
