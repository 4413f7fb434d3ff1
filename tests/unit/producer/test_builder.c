/*  test_builder.c: blocks built from a mempool on a generated chain pass
 *  the chain's own full validation and execution on an independent
 *  replica; every bound and skip rule of the builder. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "aura.h"
#include "builder.h"
#include "chain/fence.h"
#include "chain/mempool.h"
#include "mp_fixture.h"

#define ACCOUNTS 24
#define BAL      1000000

static mpf_t f; /* the producer's node: its state is f.view */
static alys_mempool_t *pool;
static alys_header_t head;
static alys_hash_t head_hash;
/* The producer's durable fence record, as StorageActor acknowledged it. */
static alys_fence_record_t fence;

static void setup(void)
{
    mpf_init(&f, ACCOUNTS, BAL);
    alys_mempool_limits_t lim = {.max_txs = 4096, .max_per_sender = 64};
    pool = alys_mempool_new(&lim);
    cr_assert_not_null(pool);
    memset(&fence, 0, sizeof fence);
    alys_genesis_parent(&f.g, &head);
    memcpy(head_hash, f.g.hash, ALYS_HASH_LEN);
}

static void teardown(void)
{
    alys_mempool_destroy(&pool);
    mpf_fini(&f);
}

TestSuite(builder, .init = setup, .fini = teardown);

static builder_input_t input(uint64_t slot)
{
    builder_input_t in = {.genesis = &f.g,
                          .head_state = &f.view,
                          .head = head,
                          .slot = slot,
                          .max_txs = ALYS_MAX_TXS_PER_BLOCK,
                          .max_bytes = ALYS_MAX_BLOCK_BYTES,
                          .hash_seed = 42};
    memcpy(in.head_hash, head_hash, ALYS_HASH_LEN);
    return in;
}

static void add_ok(uint32_t from, uint32_t to, uint64_t amount, uint64_t fee)
{
    uint64_t next;
    alys_account_t a;
    cr_assert_geq(alys_state_view_get(&f.view, f.keys.account_pub[from], &a), 0);
    next = a.nonce + alys_mempool_sender_count(pool, f.keys.account_pub[from]);
    alys_tx_t tx = mpf_tx(&f, from, to, amount, fee, next);
    alys_mempool_result_t r = alys_mempool_add(pool, &tx, &f.view, NULL);
    cr_assert(alys_mempool_admitted(r), "admission: %s", alys_mempool_result_name(r));
}

/* The pool's selection as the producer receives it (GetMempoolTxs: every
 * tx in selection order), built. p may be NULL (no candidates). */
static builder_result_t assemble(const builder_input_t *in0, const alys_mempool_t *p,
                                 alys_block_t *b, builder_stats_t *st, char *err, size_t errlen)
{
    builder_input_t in = *in0;
    size_t n = p ? alys_mempool_size(p) : 0;
    alys_tx_t *txs = calloc(n + 1, sizeof *txs);
    cr_assert_not_null(txs);
    in.tx_count = p ? alys_mempool_select(p, txs, n) : 0;
    in.txs = p ? txs : NULL;
    builder_result_t r = builder_assemble(&in, b, st, err, errlen);
    free(txs);
    return r;
}

/* Record b in the fence as the producer does before signing (the check,
 * then the durable write, then advance). */
static void record(const alys_block_t *b)
{
    alys_hash_t h;
    alys_header_hash(&b->header, h);
    cr_assert(alys_fence_allows(alys_fence_check(&fence, b->header.slot, h)));
    alys_fence_advance(&fence, b->header.slot, h);
}

static void build_signed(uint64_t slot, const builder_input_t *in, alys_block_t *b,
                         builder_stats_t *st)
{
    char err[256] = "";
    builder_result_t r = assemble(in, pool, b, st, err, sizeof err);
    cr_assert_eq(r, BUILD_OK, "assemble: %s: %s", builder_result_name(r), err);
    uint32_t author = aura_author(&f.g, slot);
    cr_assert_eq(builder_sign(&f.g, &fence, b, f.keys.authority_sec[author]), -1,
                 "signed before the fence recorded the block");
    record(b);
    cr_assert_eq(builder_sign(&f.g, &fence, b, f.keys.authority_sec[author]), 0);
}

/* Commit b on the producer's side: execute, store, follow in the pool. */
static void commit_local(const alys_block_t *b)
{
    alys_verdict_t v;
    cr_assert(alys_execute_block(&f.view, b, &v), "local execution: %s", v.detail);
    cr_assert_eq(alys_memstate_commit_overlay(f.ms, f.ov), 0);
    alys_mempool_on_block(pool, b, &f.view);
    head = b->header;
    alys_header_hash(&b->header, head_hash);
}

Test(builder, blocks_built_on_a_generated_chain_pass_full_validation_on_a_replica)
{
    /* The replica: another node's state, from the genesis alone. */
    alys_memstate_t *rms = alys_memstate_new();
    alys_overlay_t *rov = alys_overlay_new();
    cr_assert_eq(alys_memstate_load_genesis(rms, &f.g), 0);
    alys_state_view_t rview;
    alys_memstate_view_init(rms, &f.g, rov, &rview);

    uint64_t rng = 7, slot = 0, included = 0, fees = 0;
    for (int round = 0; round < 30; round++) {
        for (int k = 0; k < 40; k++) {
            rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
            uint32_t from = (uint32_t) (rng >> 33) % ACCOUNTS, to = (uint32_t) (rng >> 13) % ACCOUNTS;
            if (alys_mempool_sender_count(pool, f.keys.account_pub[from]) < 64)
                add_ok(from, to, 1 + (rng >> 40) % 500, 1 + (rng >> 20) % 50);
        }
        slot += 1 + (uint64_t) (round % 3); /* some slots without a block */
        builder_input_t in = input(slot);
        alys_block_t b;
        builder_stats_t st;
        build_signed(slot, &in, &b, &st);
        included += b.tx_count;
        for (uint32_t i = 0; i < b.tx_count; i++)
            fees += b.txs[i].fee;

        alys_verdict_t v;
        uint8_t *buf = NULL;
        size_t len = 0;
        cr_assert_eq(alys_block_encode(&b, &buf, &len), 0);
        cr_assert_eq(len, st.encoded_bytes);
        cr_assert(alys_block_decode_check(&f.g, buf, len, &v), "stateless: %s", v.detail);
        free(buf);
        alys_header_t rparent = head;
        cr_assert(alys_header_check_link(&rparent, head_hash, &b.header, slot, &v), "link: %s",
                  v.detail);
        cr_assert(alys_execute_block(&rview, &b, &v), "replica execution: %s", v.detail);
        cr_assert_eq(alys_memstate_commit_overlay(rms, rov), 0);

        commit_local(&b);
        alys_block_clear(&b);
    }
    cr_assert_geq(included, 30 * 40 / 2, "only %llu txs included", (unsigned long long) included);
    /* Both nodes agree on the state, and the fees went to the proposers. */
    alys_lattice_t l;
    alys_memstate_lattice(rms, &l);
    alys_hash_t root;
    alys_lattice_root(&l, root);
    cr_assert_eq(memcmp(root, head.state_root, ALYS_HASH_LEN), 0);
    uint64_t earned = 0;
    for (uint32_t a = 0; a < MPF_AUTHS; a++) {
        alys_account_t acct;
        alys_memstate_get(rms, f.keys.authority_pub[a], &acct);
        earned += acct.balance;
    }
    cr_assert_eq(earned, fees);
    alys_overlay_destroy(&rov);
    alys_memstate_destroy(&rms);
}

Test(builder, empty_pool_gives_a_valid_empty_block)
{
    builder_input_t in = input(2);
    alys_block_t b;
    build_signed(2, &in, &b, NULL);
    cr_assert_eq(b.tx_count, 0);
    cr_assert_eq(b.header.height, 1);
    cr_assert_eq(b.header.proposer, 2);
    cr_assert_eq(b.header.timestamp, MPF_GENESIS_TIME + 4);
    alys_verdict_t v;
    cr_assert(alys_block_check_stateless(&f.g, &b, &v), "%s", v.detail);
    alys_block_clear(&b);

    char err[128];
    cr_assert_eq(assemble(&in, NULL, &b, NULL, err, sizeof err), BUILD_OK);
    alys_block_clear(&b);
}

Test(builder, at_most_max_txs)
{
    for (uint32_t a = 0; a < 10; a++)
        add_ok(a, 20, 1, 1);
    builder_input_t in = input(1);
    in.max_txs = 3;
    alys_block_t b;
    builder_stats_t st;
    build_signed(1, &in, &b, &st);
    cr_assert_eq(b.tx_count, 3);
    cr_assert_eq(st.included, 3);
    alys_block_clear(&b);
}

Test(builder, at_most_max_bytes)
{
    for (uint32_t a = 0; a < 10; a++)
        add_ok(a, 20, 1000, 100);
    alys_tx_t one;
    cr_assert(alys_mempool_get(pool, f.keys.account_pub[0], 0, &one));
    builder_input_t in = input(1);
    in.max_bytes = BUILDER_HEADER_BOUND + 2 * builder_tx_encoded_bound(&one) + 1;
    alys_block_t b;
    builder_stats_t st;
    build_signed(1, &in, &b, &st);
    cr_assert_eq(b.tx_count, 2);
    cr_assert_geq(st.skipped_size, 1);
    cr_assert_leq(st.encoded_bytes, in.max_bytes);
    alys_block_clear(&b);
}

Test(builder, tx_encoded_bound_is_never_below_the_real_encoding)
{
    alys_tx_t txs[3] = {mpf_tx(&f, 0, 1, 0, 0, 0),
                        mpf_tx(&f, 0, 1, UINT64_MAX, UINT64_MAX, UINT64_MAX),
                        mpf_tx(&f, 0, 1, 300, 2, 130)};
    for (int i = 0; i < 3; i++) {
        alys_block_t one = {.txs = &txs[i], .tx_count = 1}, none = {0};
        uint8_t *b1 = NULL, *b0 = NULL;
        size_t l1 = 0, l0 = 0;
        cr_assert_eq(alys_block_encode(&one, &b1, &l1), 0);
        cr_assert_eq(alys_block_encode(&none, &b0, &l0), 0);
        cr_assert_geq(builder_tx_encoded_bound(&txs[i]), l1 - l0, "tx %d", i);
        free(b1);
        free(b0);
    }
}

Test(builder, a_tx_whose_nonce_the_head_used_is_skipped_alone)
{
    add_ok(0, 5, 10, 1);         /* nonce 0 */
    add_ok(0, 5, 10, 1);         /* nonce 1 */
    mpf_set(&f, 0, BAL - 11, 1); /* nonce 0 went into a block the pool did not see */
    alys_lattice_root(&f.view.lattice, head.state_root); /* the head follows the state */
    builder_input_t in = input(1);
    char err[256] = "";
    alys_block_t b;
    builder_stats_t st;
    cr_assert_eq(assemble(&in, pool, &b, &st, err, sizeof err), BUILD_OK, "%s", err);
    cr_assert_eq(st.skipped_nonce, 1);
    cr_assert_eq(b.tx_count, 1);
    cr_assert_eq(b.txs[0].nonce, 1);
    alys_block_clear(&b);
}

Test(builder, a_tx_its_sender_cannot_pay_is_skipped_with_the_senders_later_txs)
{
    add_ok(0, 5, 400000, 1);
    add_ok(0, 5, 400000, 1);
    add_ok(1, 5, 10, 1);
    mpf_set(&f, 0, 1000, 0); /* account 0 spent its balance elsewhere */
    alys_lattice_root(&f.view.lattice, head.state_root);
    builder_input_t in = input(1);
    char err[256] = "";
    alys_block_t b;
    builder_stats_t st;
    cr_assert_eq(assemble(&in, pool, &b, &st, err, sizeof err), BUILD_OK, "%s", err);
    cr_assert_eq(st.skipped_balance, 1);
    cr_assert_eq(st.skipped_sender, 1, "the sender's nonce-1 tx is skipped unexamined");
    cr_assert_eq(b.tx_count, 1);
    cr_assert_eq(memcmp(b.txs[0].from, f.keys.account_pub[1], ALYS_PUBKEY_LEN), 0);
    alys_block_clear(&b);
}

Test(builder, a_sender_can_spend_what_an_earlier_tx_of_the_block_paid_it)
{
    add_ok(2, 3, 400, 1);  /* admitted while account 2 was funded */
    add_ok(0, 2, 500, 50); /* higher fee: selected first, pays account 2 */
    mpf_set(&f, 2, 0, 0);  /* account 2 spent everything elsewhere */
    alys_lattice_root(&f.view.lattice, head.state_root);
    builder_input_t in = input(1);
    alys_block_t b;
    builder_stats_t st;
    build_signed(1, &in, &b, &st);
    cr_assert_eq(b.tx_count, 2, "skipped: balance %u nonce %u", st.skipped_balance, st.skipped_nonce);
    cr_assert_eq(memcmp(b.txs[0].from, f.keys.account_pub[0], ALYS_PUBKEY_LEN), 0);
    cr_assert_eq(memcmp(b.txs[1].from, f.keys.account_pub[2], ALYS_PUBKEY_LEN), 0);
    alys_verdict_t v;
    cr_assert(alys_execute_block(&f.view, &b, &v), "%s", v.detail);
    alys_block_clear(&b);
}

Test(builder, without_the_credit_the_same_tx_is_skipped)
{
    add_ok(2, 3, 400, 1);
    mpf_set(&f, 2, 0, 0);
    alys_lattice_root(&f.view.lattice, head.state_root);
    builder_input_t in = input(1);
    alys_block_t b;
    builder_stats_t st;
    build_signed(1, &in, &b, &st);
    cr_assert_eq(b.tx_count, 0);
    cr_assert_eq(st.skipped_balance, 1);
    alys_block_clear(&b);
}

Test(builder, slot_not_after_the_head_is_bad_input)
{
    head.slot = 5;
    builder_input_t in = input(5);
    alys_block_t b;
    char err[128] = "";
    cr_assert_eq(assemble(&in, pool, &b, NULL, err, sizeof err), BUILD_BAD_INPUT);
    cr_assert(strstr(err, "slot"), "%s", err);
    cr_assert_null(b.txs);
}

Test(builder, a_head_state_that_is_not_the_heads_is_bad_input)
{
    head.state_root[3] ^= 1;
    builder_input_t in = input(1);
    alys_block_t b;
    char err[128] = "";
    cr_assert_eq(assemble(&in, pool, &b, NULL, err, sizeof err), BUILD_BAD_INPUT);
    cr_assert(strstr(err, "state root"), "%s", err);
}

Test(builder, bounds_above_the_chains_limits_are_bad_input)
{
    builder_input_t in = input(1);
    in.max_txs = ALYS_MAX_TXS_PER_BLOCK + 1;
    alys_block_t b;
    char err[128];
    cr_assert_eq(assemble(&in, pool, &b, NULL, err, sizeof err), BUILD_BAD_INPUT);
    in = input(1);
    in.max_bytes = ALYS_MAX_BLOCK_BYTES + 1;
    cr_assert_eq(assemble(&in, pool, &b, NULL, err, sizeof err), BUILD_BAD_INPUT);
}

Test(builder, signing_with_a_key_not_the_slots_author_is_refused)
{
    builder_input_t in = input(1);
    alys_block_t b;
    char err[128];
    cr_assert_eq(assemble(&in, pool, &b, NULL, err, sizeof err), BUILD_OK);
    record(&b);
    cr_assert_eq(builder_sign(&f.g, &fence, &b, f.keys.authority_sec[0]), -1); /* slot 1 is authority 1's */
    cr_assert_eq(builder_sign(&f.g, &fence, &b, f.keys.authority_sec[1]), 0);
    alys_verdict_t v;
    cr_assert(alys_header_check(&f.g, &b.header, &v), "%s", v.detail);
    alys_block_clear(&b);
}

Test(builder, resigning_the_same_header_gives_the_same_signature)
{
    builder_input_t in = input(1);
    alys_block_t b;
    char err[128];
    cr_assert_eq(assemble(&in, pool, &b, NULL, err, sizeof err), BUILD_OK);
    record(&b);
    cr_assert_eq(builder_sign(&f.g, &fence, &b, f.keys.authority_sec[1]), 0);
    uint8_t first[ALYS_SIG_LEN];
    memcpy(first, b.header.signature, ALYS_SIG_LEN);
    /* After a crash: the same block again, the fence says resign. */
    alys_hash_t h;
    alys_header_hash(&b.header, h);
    cr_assert_eq(alys_fence_check(&fence, 1, h), ALYS_FENCE_ALLOW_RESIGN);
    cr_assert_eq(builder_sign(&f.g, &fence, &b, f.keys.authority_sec[1]), 0);
    cr_assert_eq(memcmp(first, b.header.signature, ALYS_SIG_LEN), 0);
    alys_block_clear(&b);
}

Test(builder, a_block_the_durable_fence_record_does_not_name_is_never_signed)
{
    add_ok(0, 5, 10, 1);
    builder_input_t in = input(1);
    alys_block_t b, other;
    char err[128];
    cr_assert_eq(assemble(&in, pool, &b, NULL, err, sizeof err), BUILD_OK);
    uint8_t zero[ALYS_SIG_LEN] = {0};
    /* No record at all. */
    cr_assert_eq(builder_sign(&f.g, &fence, &b, f.keys.authority_sec[1]), -1);
    cr_assert_eq(memcmp(b.header.signature, zero, ALYS_SIG_LEN), 0);
    /* The record names another block for the same slot (built before the
     * pool changed): this one may not be signed, ever. */
    alys_mempool_t *empty = alys_mempool_new(
        &(alys_mempool_limits_t){.max_txs = 10, .max_per_sender = 10});
    cr_assert_eq(assemble(&in, empty, &other, NULL, err, sizeof err), BUILD_OK);
    record(&other);
    alys_hash_t h;
    alys_header_hash(&b.header, h);
    cr_assert_eq(alys_fence_check(&fence, 1, h), ALYS_FENCE_REFUSE_DOUBLE);
    cr_assert_eq(builder_sign(&f.g, &fence, &b, f.keys.authority_sec[1]), -1);
    cr_assert_eq(memcmp(b.header.signature, zero, ALYS_SIG_LEN), 0);
    cr_assert_eq(builder_sign(&f.g, &fence, &other, f.keys.authority_sec[1]), 0);
    alys_mempool_destroy(&empty);
    alys_block_clear(&other);
    alys_block_clear(&b);
}
