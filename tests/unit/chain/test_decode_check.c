/*  test_decode_check.c: the two checks common/chain took over from the
 *  actors: alys_block_decode_check (a validator's per-block work, run in
 *  process by the BlockProcessor too) and alys_block_check_tx_root (the one
 *  tx-root rule, also for a store checking blocks it receives). */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "fixture.h"

static fx_t s_fx;
static alys_block_t s_b;
#define SLOT 7

/* Block 1 on genesis at slot 7 with 4 txs. */
static void setup(void)
{
    fx_init(&s_fx);
    alys_header_t parent;
    alys_genesis_parent(&s_fx.g, &parent);
    alys_tx_t txs[4];
    for (int i = 0; i < 4; i++)
        txs[i] = fx_tx(&s_fx, i, s_fx.user_pk[(i + 1) % FX_USERS], 10 + (uint64_t) i, 1, 0);
    fx_block(&s_fx, &parent, s_fx.g.hash, SLOT, txs, 4, &s_b);
}

static void teardown(void)
{
    alys_block_clear(&s_b);
    fx_fini(&s_fx);
}

TestSuite(decode_check, .init = setup, .fini = teardown);

/* The verdict of alys_block_decode_check over s_b's encoding. */
static bool decode_check_of(const alys_block_t *b, alys_verdict_t *v)
{
    uint8_t *enc = NULL;
    size_t len = 0;
    cr_assert_eq(alys_block_encode(b, &enc, &len), 0);
    bool ok = alys_block_decode_check(&s_fx.g, enc, len, v);
    free(enc);
    return ok;
}

Test(decode_check, a_valid_encoded_block_passes)
{
    alys_verdict_t v;
    cr_assert(decode_check_of(&s_b, &v), "%s", v.detail);
    cr_expect_eq(v.code, ALYS_BLOCK_OK);
    cr_expect_eq(v.tx_index, -1);
}

/* Whatever breaks, the verdict over the bytes is the verdict over the value:
 * the validator and the in-process path refuse exactly what the stateless
 * check refuses, with the same code, tx and detail. */
Test(decode_check, gives_the_stateless_verdict_of_the_decoded_block)
{
    for (int breakage = 0; breakage < 4; breakage++) {
        alys_block_t b = s_b;
        b.txs = malloc(s_b.tx_count * sizeof *b.txs);
        cr_assert_not_null(b.txs);
        memcpy(b.txs, s_b.txs, s_b.tx_count * sizeof *b.txs);
        switch (breakage) {
        case 0: b.txs[2].signature[5] ^= 1; break; /* bad_tx_signature, tx 2 */
        case 1:
            b.header.tx_root[0] ^= 1;
            fx_resign(&s_fx, &b.header);
            break;
        case 2:
            b.header.proposer = (SLOT + 1) % FX_AUTHS;
            fx_resign(&s_fx, &b.header);
            break;
        case 3: b.header.signature[0] ^= 1; break;
        }
        alys_verdict_t want, got;
        cr_assert_not(alys_block_check_stateless(&s_fx.g, &b, &want));
        cr_assert_not(decode_check_of(&b, &got), "breakage %d passed", breakage);
        cr_expect_eq(got.code, want.code, "breakage %d: %s != %s", breakage,
                     alys_block_error_name(got.code), alys_block_error_name(want.code));
        cr_expect_eq(got.tx_index, want.tx_index);
        cr_expect_str_eq(got.detail, want.detail);
        alys_block_clear(&b);
    }
}

Test(decode_check, bytes_that_do_not_decode_are_malformed)
{
    uint8_t *enc = NULL;
    size_t len = 0;
    cr_assert_eq(alys_block_encode(&s_b, &enc, &len), 0);
    alys_verdict_t v;
    /* a field running past the end (what chaingen's malformed fault does) */
    uint8_t *bad = malloc(len + 2);
    cr_assert_not_null(bad);
    memcpy(bad, enc, len);
    bad[len] = 0x0A;
    bad[len + 1] = 0x7F;
    cr_expect_not(alys_block_decode_check(&s_fx.g, bad, len + 2, &v));
    cr_expect_eq(v.code, ALYS_BLOCK_MALFORMED, "got %s", alys_block_error_name(v.code));
    cr_expect_neq(v.detail[0], '\0');
    cr_expect_not(alys_block_decode_check(&s_fx.g, enc, len / 2, &v), "a truncated block");
    cr_expect_eq(v.code, ALYS_BLOCK_MALFORMED, "got %s", alys_block_error_name(v.code));
    free(bad);
    free(enc);
}

Test(decode_check, bytes_over_the_block_bound_are_oversize)
{
    size_t len = (size_t) ALYS_MAX_BLOCK_BYTES + 1;
    uint8_t *big = calloc(1, len);
    cr_assert_not_null(big);
    alys_verdict_t v;
    cr_expect_not(alys_block_decode_check(&s_fx.g, big, len, &v));
    cr_expect_eq(v.code, ALYS_BLOCK_OVERSIZE, "got %s", alys_block_error_name(v.code));
    free(big);
}

/* ---- the tx root alone */

Test(decode_check, tx_root_of_a_valid_block_matches)
{
    alys_verdict_t v;
    cr_assert(alys_block_check_tx_root(&s_b, &v), "%s", v.detail);
    cr_expect_eq(v.code, ALYS_BLOCK_OK);
}

Test(decode_check, tx_root_fails_when_a_tx_changes_and_ignores_signatures)
{
    alys_verdict_t v;
    s_b.txs[0].signature[0] ^= 1;
    cr_expect(alys_block_check_tx_root(&s_b, &v), "signatures are outside the tx root");
    s_b.txs[3].fee += 1;
    cr_expect_not(alys_block_check_tx_root(&s_b, &v));
    cr_expect_eq(v.code, ALYS_BLOCK_TX_ROOT_MISMATCH);
    cr_expect_eq(v.tx_index, -1);
    cr_expect_neq(v.detail[0], '\0');
}

Test(decode_check, tx_root_of_an_empty_block_is_zero)
{
    s_b.tx_count = 0;
    alys_verdict_t v;
    cr_expect_not(alys_block_check_tx_root(&s_b, &v), "the 4-tx root is not the empty root");
    cr_expect_eq(v.code, ALYS_BLOCK_TX_ROOT_MISMATCH);
    memset(s_b.header.tx_root, 0, ALYS_HASH_LEN);
    cr_expect(alys_block_check_tx_root(&s_b, &v), "%s", v.detail);
}

Test(decode_check, tx_root_refuses_a_count_without_txs)
{
    alys_tx_t *txs = s_b.txs;
    s_b.txs = NULL;
    alys_verdict_t v;
    cr_expect_not(alys_block_check_tx_root(&s_b, &v));
    cr_expect_eq(v.code, ALYS_BLOCK_MALFORMED);
    s_b.txs = txs;
}
