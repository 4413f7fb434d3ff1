/*  test_state.c: the lattice commitment against full recomputation, and
 *  each execution rule on its own, including that a failed block leaves the
 *  state view exactly as it was. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "fixture.h"

/* ---- lattice ---- */

static void random_key(uint64_t *seed, uint8_t pk[32])
{
    for (int i = 0; i < 32; i += 8) {
        uint64_t r = fx_rand(seed);
        memcpy(pk + i, &r, 8);
    }
}

static alys_account_t random_account(uint64_t *seed)
{
    uint64_t r = fx_rand(seed);
    if (r % 10 == 0)
        return (alys_account_t){0, 0}; /* emptied: must become absent */
    return (alys_account_t){.balance = fx_rand(seed) >> (r % 64), .nonce = r % 1000};
}

/* Recompute from scratch, visiting accounts in a random order each time. */
static void full_root_shuffled(ledger_t *l, uint64_t *seed, alys_hash_t out)
{
    for (int i = l->n - 1; i > 0; i--) {
        int j = (int) (fx_rand(seed) % (uint64_t) (i + 1));
        ledger_entry_t t = l->e[i];
        l->e[i] = l->e[j];
        l->e[j] = t;
    }
    ledger_root(l, out);
}

Test(lattice, incremental_equals_full_recomputation)
{
    static ledger_t ref;
    memset(&ref, 0, sizeof ref);
    uint64_t seed = 42;
    uint8_t keys[200][32];
    for (int i = 0; i < 200; i++) {
        random_key(&seed, keys[i]);
        alys_account_t a = {0, 0};
        ledger_put(&ref, keys[i], &a);
    }
    alys_lattice_t l;
    alys_lattice_zero(&l);
    for (int u = 1; u <= 2000; u++) {
        int k = (int) (fx_rand(&seed) % 200);
        alys_account_t old = ledger_get(&ref, keys[k]);
        alys_account_t now = random_account(&seed);
        alys_lattice_sub_account(&l, keys[k], &old);
        alys_lattice_add_account(&l, keys[k], &now);
        ledger_put(&ref, keys[k], &now);
        if (u % 100 == 0) {
            alys_hash_t inc, full;
            alys_lattice_root(&l, inc);
            full_root_shuffled(&ref, &seed, full);
            cr_assert_arr_eq(inc, full, 32, "after %d updates", u);
        }
    }
}

Test(lattice, zero_account_is_absent_and_add_sub_cancel)
{
    alys_lattice_t l, empty;
    alys_lattice_zero(&l);
    alys_lattice_zero(&empty);
    uint8_t pk[32];
    memset(pk, 7, 32);
    alys_account_t zero = {0, 0}, a = {5, 1}, b = {0, 1};
    alys_lattice_add_account(&l, pk, &zero);
    cr_assert_arr_eq(l.lane, empty.lane, sizeof l.lane);
    alys_lattice_add_account(&l, pk, &a);
    alys_lattice_add_account(&l, pk, &b); /* nonce only: present */
    cr_assert(memcmp(l.lane, empty.lane, sizeof l.lane) != 0);
    alys_lattice_sub_account(&l, pk, &a);
    alys_lattice_sub_account(&l, pk, &b);
    cr_assert_arr_eq(l.lane, empty.lane, sizeof l.lane);
}

Test(lattice, bytes_roundtrip_and_genesis_root)
{
    fx_t *fx = malloc(sizeof *fx);
    cr_assert(fx);
    fx_init(fx);
    alys_lattice_t l, back;
    alys_lattice_from_genesis(&l, &fx->g);
    uint8_t bytes[ALYS_LATTICE_BYTES];
    alys_lattice_to_bytes(&l, bytes);
    alys_lattice_from_bytes(&back, bytes);
    cr_assert_arr_eq(l.lane, back.lane, sizeof l.lane);
    alys_hash_t root, ref;
    alys_lattice_root(&l, root);
    ledger_root(&fx->committed, ref);
    cr_assert_arr_eq(root, ref, 32);
    cr_assert_arr_eq(fx->g.state_root, ref, 32);
    fx_fini(fx);
    free(fx);
}

/* ---- execution ---- */

static fx_t *s_fx;
static alys_overlay_t *s_ov;
static alys_state_view_t s_view;
static alys_header_t s_parent;
static alys_hash_t s_parent_hash;

static void setup(void)
{
    s_fx = malloc(sizeof *s_fx);
    cr_assert(s_fx);
    fx_init(s_fx);
    s_ov = alys_overlay_new();
    cr_assert(s_ov);
    fx_view(s_fx, s_ov, &s_view);
    alys_genesis_parent(&s_fx->g, &s_parent);
    memcpy(s_parent_hash, s_fx->g.hash, 32);
}

static void teardown(void)
{
    alys_overlay_destroy(&s_ov);
    fx_fini(s_fx);
    free(s_fx);
}

TestSuite(execute, .init = setup, .fini = teardown);

/* Everything observable about the view, to compare before/after a block. */
typedef struct {
    size_t size;
    alys_lattice_t lattice;
    uint8_t keys[2048][32];
    alys_account_t now[2048], before[2048];
} snapshot_t;

static int snap_one(void *ctx, const uint8_t pk[32], const alys_account_t *now,
                    const alys_account_t *before)
{
    snapshot_t *s = ctx;
    cr_assert_lt(s->size, 2048);
    memcpy(s->keys[s->size], pk, 32);
    s->now[s->size] = *now;
    s->before[s->size] = *before;
    s->size++;
    return 0;
}

static void snapshot(snapshot_t *s)
{
    memset(s, 0, sizeof *s);
    cr_assert_eq(alys_overlay_foreach(s_ov, snap_one, s), 0);
    cr_assert_eq(s->size, alys_overlay_size(s_ov));
    s->lattice = s_view.lattice;
}

static void assert_unchanged(const snapshot_t *before)
{
    snapshot_t after;
    snapshot(&after);
    cr_assert_eq(memcmp(before, &after, sizeof after), 0, "state view changed by a failed block");
}

static void block_of(uint64_t slot, const alys_tx_t *txs, uint32_t n, alys_block_t *b)
{
    fx_block(s_fx, &s_parent, s_parent_hash, slot, txs, n, b);
}

static void expect_exec_fail(alys_block_t *b, alys_block_error_t code, int32_t tx_index)
{
    snapshot_t snap;
    snapshot(&snap);
    alys_verdict_t v;
    cr_assert_not(alys_execute_block(&s_view, b, &v));
    cr_assert_eq(v.code, code, "got %s (%s)", alys_block_error_name(v.code), v.detail);
    cr_assert_eq(v.tx_index, tx_index, "tx_index %d (%s)", v.tx_index, v.detail);
    cr_assert_neq(v.detail[0], '\0');
    assert_unchanged(&snap);
}

/* Commit a block's effects and make it the parent of the next one. */
static void advance(alys_block_t *b)
{
    alys_verdict_t v;
    cr_assert(alys_execute_block(&s_view, b, &v), "%s", v.detail);
    fx_commit(s_fx, s_ov);
    s_parent = b->header;
    alys_header_hash(&b->header, s_parent_hash);
    alys_block_clear(b);
}

Test(execute, valid_blocks_match_reference_roots)
{
    uint64_t nonce[FX_USERS] = {0};
    uint64_t seed = 9;
    for (uint64_t slot = 1; slot <= 12; slot++) {
        alys_tx_t txs[6];
        for (int i = 0; i < 6; i++) {
            int from = (int) (fx_rand(&seed) % FX_USERS);
            int to = (int) (fx_rand(&seed) % FX_USERS);
            txs[i] = fx_tx(s_fx, from, s_fx->user_pk[to], fx_rand(&seed) % 1000,
                           fx_rand(&seed) % 5, nonce[from]++);
        }
        alys_block_t b;
        block_of(slot, txs, 6, &b);
        alys_verdict_t v;
        cr_assert(alys_execute_block(&s_view, &b, &v), "slot %llu: %s", (unsigned long long) slot,
                  v.detail);
        /* Commit only every third block: the overlay spans several blocks. */
        if (slot % 3 == 0)
            fx_commit(s_fx, s_ov);
        else {
            /* fx_block computes roots from fx->committed: keep it in step. */
            ledger_t *l = malloc(sizeof *l);
            *l = s_fx->committed;
            for (int i = 0; i < 6; i++)
                cr_assert(ledger_apply(l, s_fx->g.authorities[b.header.proposer], &txs[i]));
            s_fx->committed = *l;
            free(l);
            /* ...and the view reads the committed state under the overlay: the
             * overlay's values win, so a stale-looking read is never used. */
        }
        s_parent = b.header;
        alys_header_hash(&b.header, s_parent_hash);
        alys_block_clear(&b);
    }
}

Test(execute, bad_nonce_names_the_tx)
{
    alys_tx_t txs[3] = {
        fx_tx(s_fx, 0, s_fx->user_pk[1], 10, 1, 0), fx_tx(s_fx, 0, s_fx->user_pk[2], 10, 1, 1),
        fx_tx(s_fx, 0, s_fx->user_pk[2], 10, 1, 1), /* replay of nonce 1 */
    };
    alys_block_t b;
    block_of(1, txs, 3, &b);
    expect_exec_fail(&b, ALYS_BLOCK_BAD_NONCE, 2);
    alys_verdict_t v;
    cr_assert_not(alys_execute_block(&s_view, &b, &v));
    cr_assert_str_eq(v.detail, "tx 2: nonce 1 != account next nonce 2");
    alys_block_clear(&b);
}

Test(execute, nonce_from_the_future)
{
    alys_tx_t tx = fx_tx(s_fx, 3, s_fx->user_pk[1], 10, 1, 5);
    alys_block_t b;
    block_of(1, &tx, 1, &b);
    expect_exec_fail(&b, ALYS_BLOCK_BAD_NONCE, 0);
    alys_block_clear(&b);
}

Test(execute, insufficient_balance_names_the_tx)
{
    alys_tx_t txs[2] = {
        fx_tx(s_fx, 1, s_fx->user_pk[2], FX_BALANCE - 10, 5, 0),
        fx_tx(s_fx, 1, s_fx->user_pk[2], 5, 1, 1), /* 5 left, needs 6 */
    };
    alys_block_t b;
    block_of(1, txs, 2, &b);
    expect_exec_fail(&b, ALYS_BLOCK_INSUFFICIENT_BALANCE, 1);
    alys_verdict_t v;
    cr_assert_not(alys_execute_block(&s_view, &b, &v));
    cr_assert_str_eq(v.detail, "tx 1: balance 5 < amount 5 + fee 1");
    alys_block_clear(&b);
}

Test(execute, exact_balance_is_enough)
{
    alys_tx_t tx = fx_tx(s_fx, 1, s_fx->user_pk[2], FX_BALANCE - 10, 10, 0);
    alys_block_t b;
    block_of(1, &tx, 1, &b);
    advance(&b);
    alys_account_t a = ledger_get(&s_fx->committed, s_fx->user_pk[1]);
    cr_assert_eq(a.balance, 0);
    cr_assert_eq(a.nonce, 1);
}

Test(execute, amount_plus_fee_overflow_is_insufficient)
{
    alys_tx_t tx = fx_tx(s_fx, 1, s_fx->user_pk[2], UINT64_MAX, 1, 0);
    alys_block_t b;
    block_of(1, &tx, 1, &b);
    expect_exec_fail(&b, ALYS_BLOCK_INSUFFICIENT_BALANCE, 0);
    alys_block_clear(&b);
}

Test(execute, state_root_mismatch)
{
    alys_tx_t tx = fx_tx(s_fx, 0, s_fx->user_pk[1], 10, 1, 0);
    alys_block_t b;
    block_of(1, &tx, 1, &b);
    b.header.state_root[3] ^= 1;
    fx_resign(s_fx, &b.header);
    expect_exec_fail(&b, ALYS_BLOCK_STATE_ROOT_MISMATCH, -1);
    alys_block_clear(&b);
}

Test(execute, empty_block_keeps_root)
{
    alys_block_t b;
    block_of(1, NULL, 0, &b);
    cr_assert_arr_eq(b.header.state_root, s_fx->g.state_root, 32);
    advance(&b);
    cr_assert_eq(alys_overlay_size(s_ov), 0);
}

Test(execute, fee_goes_to_the_slot_proposer)
{
    alys_tx_t txs[2] = {
        fx_tx(s_fx, 0, s_fx->user_pk[1], 100, 7, 0),
        fx_tx(s_fx, 2, s_fx->user_pk[3], 50, 4, 0),
    };
    alys_block_t b;
    block_of(5, txs, 2, &b); /* slot 5: authority 2 */
    advance(&b);
    alys_account_t p = ledger_get(&s_fx->committed, s_fx->g.authorities[2]);
    cr_assert_eq(p.balance, 11);
    cr_assert_eq(p.nonce, 0);
    cr_assert_eq(ledger_get(&s_fx->committed, s_fx->g.authorities[0]).balance, 0);
    cr_assert_eq(ledger_get(&s_fx->committed, s_fx->user_pk[0]).balance, FX_BALANCE - 107);
    cr_assert_eq(ledger_get(&s_fx->committed, s_fx->user_pk[1]).balance, FX_BALANCE + 100);
}

Test(execute, fee_to_wrong_account_is_state_root_mismatch)
{
    alys_tx_t tx = fx_tx(s_fx, 0, s_fx->user_pk[1], 100, 7, 0);
    alys_block_t b;
    block_of(5, &tx, 1, &b);
    /* Root of a state where authority 0 (not the slot's 2) got the fee. */
    ledger_t *l = malloc(sizeof *l);
    *l = s_fx->committed;
    cr_assert(ledger_apply(l, s_fx->g.authorities[0], &tx));
    ledger_root(l, b.header.state_root);
    free(l);
    fx_resign(s_fx, &b.header);
    expect_exec_fail(&b, ALYS_BLOCK_STATE_ROOT_MISMATCH, -1);
    alys_block_clear(&b);
}

Test(execute, self_transfer_costs_the_fee)
{
    alys_tx_t tx = fx_tx(s_fx, 4, s_fx->user_pk[4], 500, 2, 0);
    alys_block_t b;
    block_of(1, &tx, 1, &b);
    advance(&b);
    alys_account_t a = ledger_get(&s_fx->committed, s_fx->user_pk[4]);
    cr_assert_eq(a.balance, FX_BALANCE - 2);
    cr_assert_eq(a.nonce, 1);
}

Test(execute, proposer_spends_fee_earned_earlier_in_block)
{
    /* Authority 1 (proposer of slot 1) has nothing at genesis. */
    uint8_t auth_pk[32];
    memcpy(auth_pk, s_fx->g.authorities[1], 32);
    alys_tx_t txs[2];
    txs[0] = fx_tx(s_fx, 0, s_fx->user_pk[1], 0, 10, 0);
    txs[1] = (alys_tx_t){.amount = 6, .fee = 4, .nonce = 0};
    memcpy(txs[1].from, auth_pk, 32);
    memcpy(txs[1].to, s_fx->user_pk[2], 32);
    alys_hash_t th;
    alys_tx_hash(&txs[1], th);
    cr_assert_eq(alys_sign(s_fx->auth_sk[1], th, txs[1].signature), 0);
    alys_block_t b;
    block_of(1, txs, 2, &b);
    advance(&b);
    alys_account_t p = ledger_get(&s_fx->committed, auth_pk);
    cr_assert_eq(p.balance, 4); /* +10 -10 +4 */
    cr_assert_eq(p.nonce, 1);
}

Test(execute, credit_overflow_is_malformed)
{
    /* A recipient sitting at the top of the range. */
    uint8_t rich[32];
    memset(rich, 0xee, 32);
    alys_account_t r = {.balance = UINT64_MAX - 5};
    ledger_put(&s_fx->committed, rich, &r);
    fx_view(s_fx, s_ov, &s_view);
    alys_tx_t tx = fx_tx(s_fx, 0, rich, 6, 0, 0);
    alys_block_t b;
    block_of(1, &tx, 1, &b);
    expect_exec_fail(&b, ALYS_BLOCK_MALFORMED, 0);
    alys_block_clear(&b);
}

/* A failure after earlier blocks changed the overlay must restore both the
 * entries those blocks made and drop only the ones this block made. */
Test(execute, failed_block_leaves_view_unchanged)
{
    alys_tx_t t1[2] = {
        fx_tx(s_fx, 0, s_fx->user_pk[1], 10, 1, 0),
        fx_tx(s_fx, 2, s_fx->user_pk[3], 10, 1, 0),
    };
    alys_block_t b;
    block_of(1, t1, 2, &b);
    alys_verdict_t v;
    cr_assert(alys_execute_block(&s_view, &b, &v), "%s", v.detail);
    /* fx_block reads fx->committed: give it block 1's result without
     * committing the overlay. */
    cr_assert(ledger_apply(&s_fx->committed, s_fx->g.authorities[1], &t1[0]));
    cr_assert(ledger_apply(&s_fx->committed, s_fx->g.authorities[1], &t1[1]));
    s_parent = b.header;
    alys_header_hash(&b.header, s_parent_hash);
    alys_block_clear(&b);
    /* Block 2 touches old entries and many new ones, then fails at the end. */
    uint8_t fresh[20][32];
    alys_tx_t t2[21];
    uint64_t nonce[FX_USERS] = {1, 0, 1}; /* users 0 and 2 sent in block 1 */
    for (int i = 0; i < 20; i++) {
        int from = i % FX_USERS;
        memset(fresh[i], 0x60 + i, 32);
        t2[i] = fx_tx(s_fx, from, fresh[i], 1, 1, nonce[from]++);
    }
    t2[20] = fx_tx(s_fx, 0, s_fx->user_pk[5], 1, 1, 99); /* bad nonce at the end */
    block_of(2, t2, 21, &b);
    expect_exec_fail(&b, ALYS_BLOCK_BAD_NONCE, 20);
    alys_block_clear(&b);
    /* And with a bad state root after all txs applied. */
    block_of(2, t2, 20, &b);
    b.header.state_root[0] ^= 0xff;
    fx_resign(s_fx, &b.header);
    expect_exec_fail(&b, ALYS_BLOCK_STATE_ROOT_MISMATCH, -1);
    /* The view still executes the honest block afterwards. */
    b.header.state_root[0] ^= 0xff;
    fx_resign(s_fx, &b.header);
    cr_assert(alys_execute_block(&s_view, &b, &v), "%s", v.detail);
    alys_block_clear(&b);
}

typedef struct {
    int calls;
    uint8_t keys[16][32];
    alys_account_t before[16], after[16];
} changes_t;

static void on_change(void *ctx, const uint8_t pk[32], const alys_account_t *before,
                      const alys_account_t *after)
{
    changes_t *c = ctx;
    cr_assert_lt(c->calls, 16);
    memcpy(c->keys[c->calls], pk, 32);
    c->before[c->calls] = *before;
    c->after[c->calls] = *after;
    c->calls++;
}

static int find_change(const changes_t *c, const uint8_t *pk)
{
    for (int i = 0; i < c->calls; i++)
        if (memcmp(c->keys[i], pk, 32) == 0)
            return i;
    return -1;
}

Test(execute, on_change_once_per_touched_account)
{
    changes_t c = {0};
    s_view.on_change = on_change;
    s_view.change_ctx = &c;
    alys_tx_t txs[3] = {
        fx_tx(s_fx, 0, s_fx->user_pk[1], 10, 1, 0),
        fx_tx(s_fx, 0, s_fx->user_pk[1], 20, 2, 1),
        fx_tx(s_fx, 1, s_fx->user_pk[0], 5, 0, 0),
    };
    alys_block_t b;
    block_of(3, txs, 3, &b); /* proposer 0 */
    advance(&b);
    cr_assert_eq(c.calls, 3, "user 0, user 1, authority 0: got %d", c.calls);
    int u0 = find_change(&c, s_fx->user_pk[0]);
    int u1 = find_change(&c, s_fx->user_pk[1]);
    int p = find_change(&c, s_fx->g.authorities[0]);
    cr_assert(u0 >= 0 && u1 >= 0 && p >= 0);
    cr_assert_eq(c.before[u0].balance, FX_BALANCE);
    cr_assert_eq(c.after[u0].balance, FX_BALANCE - 33 + 5);
    cr_assert_eq(c.after[u0].nonce, 2);
    cr_assert_eq(c.before[u1].balance, FX_BALANCE);
    cr_assert_eq(c.after[u1].balance, FX_BALANCE + 30 - 5);
    cr_assert_eq(c.before[p].balance, 0);
    cr_assert_eq(c.after[p].balance, 3);
    /* A failed block reports nothing. */
    c.calls = 0;
    alys_tx_t bad = fx_tx(s_fx, 0, s_fx->user_pk[1], 10, 1, 0);
    block_of(4, &bad, 1, &b);
    alys_verdict_t v;
    cr_assert_not(alys_execute_block(&s_view, &b, &v));
    cr_assert_eq(c.calls, 0);
    alys_block_clear(&b);
}

static int failing_read(void *ctx, const uint8_t pk[32], alys_account_t *out)
{
    int *countdown = ctx;
    (void) pk;
    memset(out, 0, sizeof *out);
    return (*countdown)-- > 0 ? 0 : -1;
}

Test(execute, read_error_is_internal_and_leaves_view_unchanged)
{
    int countdown = 2; /* sender and recipient read, proposer fails */
    s_view.read = failing_read;
    s_view.read_ctx = &countdown;
    alys_tx_t tx = fx_tx(s_fx, 0, s_fx->user_pk[1], 0, 0, 0);
    alys_block_t b;
    block_of(1, &tx, 1, &b);
    expect_exec_fail(&b, ALYS_BLOCK_INTERNAL_ERROR, 0);
    alys_block_clear(&b);
}

Test(execute, overlay_get_and_view_get)
{
    alys_tx_t tx = fx_tx(s_fx, 0, s_fx->user_pk[1], 10, 1, 0);
    alys_block_t b;
    block_of(1, &tx, 1, &b);
    alys_verdict_t v;
    cr_assert(alys_execute_block(&s_view, &b, &v), "%s", v.detail);
    alys_account_t a;
    cr_assert_eq(alys_overlay_get(s_ov, s_fx->user_pk[0], &a), 1);
    cr_assert_eq(a.balance, FX_BALANCE - 11);
    cr_assert_eq(alys_overlay_get(s_ov, s_fx->user_pk[7], &a), 0);
    cr_assert_eq(alys_state_view_get(&s_view, s_fx->user_pk[7], &a), 1);
    cr_assert_eq(a.balance, FX_BALANCE);
    uint8_t nobody[32] = {1};
    cr_assert_eq(alys_state_view_get(&s_view, nobody, &a), 0);
    alys_block_clear(&b);
}

/* Many distinct accounts: the overlay grows (rehash) between blocks and
 * foreach still reports every account once, in first-touch order. */
Test(execute, overlay_grows_across_blocks)
{
    uint64_t nonce = 0;
    for (uint64_t slot = 1; slot <= 6; slot++) {
        static alys_tx_t txs[400];
        for (int i = 0; i < 400; i++) {
            uint8_t to[32];
            memset(to, 0, 32);
            memcpy(to, &slot, 8);
            memcpy(to + 8, &i, sizeof i);
            txs[i] = fx_tx(s_fx, 6, to, 1, 0, nonce++);
        }
        alys_block_t b;
        block_of(slot, txs, 400, &b);
        alys_verdict_t v;
        cr_assert(alys_execute_block(&s_view, &b, &v), "%s", v.detail);
        /* keep fx->committed equal to the view for the next header's root */
        for (int i = 0; i < 400; i++)
            cr_assert(ledger_apply(&s_fx->committed, s_fx->g.authorities[b.header.proposer], &txs[i]));
        s_parent = b.header;
        alys_header_hash(&b.header, s_parent_hash);
        alys_block_clear(&b);
    }
    /* user 6 + 2400 recipients + proposers touched (fee 0, still touched) */
    cr_assert_eq(alys_overlay_size(s_ov), 1 + 2400 + 3);
}

/* Removing the entries a failed block inserted must leave every other key
 * reachable (open addressing: a naive delete would cut probe chains). */
Test(execute, rollback_keeps_every_key_reachable)
{
    enum { OLD = 600, NEW = 500 };
    static alys_tx_t txs[OLD + NEW + 1];
    static uint8_t keys[OLD + NEW][32];
    for (int i = 0; i < OLD + NEW; i++) {
        uint64_t seed = 1000 + (uint64_t) i;
        for (int k = 0; k < 32; k += 8) {
            uint64_t r = fx_rand(&seed);
            memcpy(keys[i] + k, &r, 8);
        }
    }
    for (int i = 0; i < OLD; i++)
        txs[i] = fx_tx(s_fx, 6, keys[i], 1, 0, (uint64_t) i);
    alys_block_t b;
    block_of(1, txs, OLD, &b);
    alys_verdict_t v;
    cr_assert(alys_execute_block(&s_view, &b, &v), "%s", v.detail);
    alys_block_clear(&b);
    for (int i = 0; i < NEW; i++)
        txs[i] = fx_tx(s_fx, 5, keys[OLD + i], 1, 0, (uint64_t) i);
    txs[NEW] = fx_tx(s_fx, 6, keys[0], 1, 0, 0); /* stale nonce */
    block_of(2, txs, NEW + 1, &b);
    snapshot_t snap;
    snapshot(&snap);
    cr_assert_not(alys_execute_block(&s_view, &b, &v));
    cr_assert_eq(v.code, ALYS_BLOCK_BAD_NONCE);
    cr_assert_eq(v.tx_index, NEW);
    alys_block_clear(&b);
    cr_assert_eq(alys_overlay_size(s_ov), OLD + 2);
    alys_account_t a;
    for (int i = 0; i < OLD; i++) {
        cr_assert_eq(alys_overlay_get(s_ov, keys[i], &a), 1, "old key %d lost", i);
        cr_assert_eq(a.balance, 1);
    }
    for (int i = 0; i < NEW; i++)
        cr_assert_eq(alys_overlay_get(s_ov, keys[OLD + i], &a), 0, "new key %d kept", i);
    cr_assert_eq(alys_overlay_get(s_ov, s_fx->user_pk[5], &a), 0);
    cr_assert_eq(alys_overlay_get(s_ov, s_fx->user_pk[6], &a), 1);
    cr_assert_eq(a.nonce, OLD);
}

/* ---- restore (undo records applied inside an execution overlay) ---- */

/* Undo data of one block, as StorageActor collects it through on_change. */
static void collect_before(void *ctx, const uint8_t pk[32], const alys_account_t *before,
                           const alys_account_t *after)
{
    (void) after;
    on_change(ctx, pk, before, before);
}

static int count_calls(void *ctx, const uint8_t pk[32], const alys_account_t *before,
                       const alys_account_t *after)
{
    (void) pk, (void) before, (void) after;
    ++*(int *) ctx;
    return 0;
}

static void count_change(void *ctx, const uint8_t pk[32], const alys_account_t *before,
                         const alys_account_t *after)
{
    (void) count_calls(ctx, pk, before, after);
}

/* A block executed then undone through restore leaves the genesis lattice,
 * the overlay's `before` values committed ones, and no on_change call; a
 * different block then executes on the restored view as on the genesis. */
Test(execute, restore_undoes_a_block_in_the_overlay)
{
    changes_t undo = {0};
    s_view.on_change = collect_before;
    s_view.change_ctx = &undo;
    alys_tx_t txs[2] = {fx_tx(s_fx, 0, s_fx->user_pk[1], 10, 1, 0),
                        fx_tx(s_fx, 2, s_fx->user_pk[3], 7, 2, 0)};
    alys_block_t b;
    block_of(1, txs, 2, &b);
    alys_verdict_t v;
    cr_assert(alys_execute_block(&s_view, &b, &v), "%s", v.detail);
    alys_block_clear(&b);
    alys_lattice_t genesis;
    alys_lattice_from_genesis(&genesis, &s_fx->g);
    cr_assert_neq(memcmp(&genesis, &s_view.lattice, sizeof genesis), 0);

    int calls = 0;
    s_view.on_change = count_change;
    s_view.change_ctx = &calls;
    for (int i = undo.calls; i-- > 0;)
        cr_assert_eq(alys_state_view_restore(&s_view, undo.keys[i], &undo.before[i]), 0);
    cr_assert_eq(calls, 0, "restore does not call on_change");
    cr_assert_arr_eq(&s_view.lattice, &genesis, sizeof genesis);
    snapshot_t snap;
    snapshot(&snap);
    for (size_t i = 0; i < snap.size; i++)
        cr_assert_arr_eq(&snap.now[i], &snap.before[i], sizeof snap.now[i], "account %zu", i);

    /* Another block 1 on the restored view: the reference roots hold. */
    alys_tx_t other = fx_tx(s_fx, 4, s_fx->user_pk[5], 99, 3, 0);
    block_of(1, &other, 1, &b);
    cr_assert(alys_execute_block(&s_view, &b, &v), "%s", v.detail);
    cr_assert_eq(calls, 3, "the next block reports its accounts again: %d", calls);
    alys_block_clear(&b);
}

/* An account the overlay lacks is read first: `before` is the committed
 * value, `now` the restored one; a zero value leaves the lattice without it. */
Test(execute, restore_reads_the_committed_value_first)
{
    alys_account_t a = {.balance = 5, .nonce = 3};
    cr_assert_eq(alys_state_view_restore(&s_view, s_fx->user_pk[6], &a), 0);
    alys_account_t got;
    cr_assert_eq(alys_state_view_get(&s_view, s_fx->user_pk[6], &got), 1);
    cr_assert(got.balance == 5 && got.nonce == 3);
    snapshot_t snap;
    snapshot(&snap);
    cr_assert_eq(snap.size, 1);
    cr_assert_eq(snap.before[0].balance, FX_BALANCE, "before is the committed value");
    ledger_t *l = malloc(sizeof *l);
    cr_assert(l);
    *l = s_fx->committed;
    ledger_put(l, s_fx->user_pk[6], &a);
    alys_hash_t want, root;
    ledger_root(l, want);
    alys_lattice_root(&s_view.lattice, root);
    cr_assert_arr_eq(root, want, 32);
    alys_account_t zero = {0, 0};
    cr_assert_eq(alys_state_view_restore(&s_view, s_fx->user_pk[6], &zero), 0);
    ledger_put(l, s_fx->user_pk[6], &zero);
    ledger_root(l, want);
    alys_lattice_root(&s_view.lattice, root);
    cr_assert_arr_eq(root, want, 32);
    cr_assert_eq(alys_state_view_get(&s_view, s_fx->user_pk[6], &got), 0);
    free(l);
}

Test(execute, restore_read_error_leaves_view_unchanged)
{
    int countdown = 0;
    s_view.read = failing_read;
    s_view.read_ctx = &countdown;
    snapshot_t snap;
    snapshot(&snap);
    alys_account_t a = {.balance = 1, .nonce = 1};
    cr_assert_eq(alys_state_view_restore(&s_view, s_fx->user_pk[2], &a), -1);
    assert_unchanged(&snap);
}
