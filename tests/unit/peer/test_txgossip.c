/*  test_txgossip.c: PeerManager's tx gossip decisions (pm_txgossip.h): the
 *  bounded seen set, the per-key message and byte budgets with their
 *  refill and charges, the relay queue and its per-peer batches. Time is a
 *  parameter: no sleeps. */
#include <criterion/criterion.h>
#include <string.h>

#include "pm_txgossip.h"

static txg_t *g;

static void make(uint32_t msg_rate, uint64_t byte_rate, size_t seen, size_t budgets, size_t queue)
{
    txg_destroy(&g);
    txg_config_t c = {.msg_rate = msg_rate,
                      .byte_rate = byte_rate,
                      .seen_cap = seen,
                      .budget_cap = budgets,
                      .queue_cap = queue};
    g = txg_new(&c);
    cr_assert_not_null(g);
}

static void setup(void)
{
    make(10, 10000, 4, 4, 8);
}

static void teardown(void)
{
    txg_destroy(&g);
}

TestSuite(txgossip, .init = setup, .fini = teardown);

static void id_of(int i, alys_hash_t out)
{
    memset(out, 0, ALYS_HASH_LEN);
    out[0] = (uint8_t) i;
    out[31] = 0x5a;
}

Test(txgossip, zero_bounds_are_refused)
{
    txg_config_t c = {.msg_rate = 0, .byte_rate = 1, .seen_cap = 1, .budget_cap = 1, .queue_cap = 1};
    cr_assert_null(txg_new(&c));
    c.msg_rate = 1;
    c.seen_cap = 0;
    cr_assert_null(txg_new(&c));
}

Test(txgossip, a_marked_id_is_seen)
{
    alys_hash_t a, b;
    id_of(1, a);
    id_of(2, b);
    cr_assert_not(txg_seen(g, a));
    txg_mark(g, a);
    cr_assert(txg_seen(g, a));
    cr_assert_not(txg_seen(g, b));
    txg_mark(g, a); /* again: no second entry */
    cr_assert_eq(txg_seen_count(g), 1);
}

Test(txgossip, the_seen_set_is_bounded_and_forgets_the_oldest)
{
    alys_hash_t id;
    for (int i = 0; i < 6; i++) {
        id_of(i, id);
        txg_mark(g, id);
    }
    cr_assert_eq(txg_seen_count(g), 4);
    id_of(0, id);
    cr_assert_not(txg_seen(g, id));
    id_of(1, id);
    cr_assert_not(txg_seen(g, id));
    for (int i = 2; i < 6; i++) {
        id_of(i, id);
        cr_assert(txg_seen(g, id), "id %d", i);
    }
}

Test(txgossip, a_key_gets_twice_its_message_rate_as_a_burst_then_is_refused)
{
    int allowed = 0;
    for (int i = 0; i < 50; i++)
        allowed += txg_take(g, "c1", 2, 10, 1000);
    cr_assert_eq(allowed, 20);
    cr_assert(txg_take(g, "c2", 2, 10, 1000), "another key has its own budget");
}

Test(txgossip, the_byte_budget_refuses_big_messages)
{
    /* 10000 B/s: bursts of 20000 bytes. */
    cr_assert(txg_take(g, "c1", 2, 15000, 0));
    cr_assert_not(txg_take(g, "c1", 2, 6000, 0));
    cr_assert(txg_take(g, "c1", 2, 5000, 0));
}

Test(txgossip, budgets_refill_with_time)
{
    for (int i = 0; i < 20; i++)
        cr_assert(txg_take(g, "c1", 2, 1, 0));
    cr_assert_not(txg_take(g, "c1", 2, 1, 0));
    cr_assert_not(txg_take(g, "c1", 2, 1, 50)); /* half a token */
    cr_assert(txg_take(g, "c1", 2, 1, 100));    /* one token per 100 ms at 10/s */
    cr_assert_not(txg_take(g, "c1", 2, 1, 100));
}

Test(txgossip, a_clock_going_back_refills_nothing)
{
    for (int i = 0; i < 20; i++)
        cr_assert(txg_take(g, "c1", 2, 1, 5000));
    cr_assert_not(txg_take(g, "c1", 2, 1, 1000));
}

Test(txgossip, a_charge_empties_the_byte_budget_for_longer)
{
    txg_charge(g, "bad", 3, 50000, 0); /* below zero: -30000 */
    cr_assert_not(txg_take(g, "bad", 3, 1, 0));
    cr_assert_not(txg_take(g, "bad", 3, 1, 2000)); /* +20000 -> -10000 */
    cr_assert(txg_take(g, "bad", 3, 1, 4000));     /* +20000 -> 10000 */
    cr_assert(txg_take(g, "honest", 6, 15000, 0)); /* nobody else pays */
}

Test(txgossip, a_charge_is_floored)
{
    txg_charge(g, "bad", 3, UINT32_MAX, 0); /* floor: -4 s of bytes = -40000 */
    cr_assert_not(txg_take(g, "bad", 3, 1, 4000));
    cr_assert(txg_take(g, "bad", 3, 1, 4100));
}

Test(txgossip, keys_out_of_bounds_are_refused)
{
    uint8_t big[TXG_KEY_MAX + 1] = {0};
    cr_assert_not(txg_take(g, big, sizeof big, 1, 0));
    cr_assert_not(txg_take(g, big, 0, 1, 0));
}

Test(txgossip, the_budget_table_recycles_the_key_seen_longest_ago)
{
    /* Exhaust k0, then use four other keys: k0 (oldest) is recycled and
     * comes back with a full budget; a recent flooder keeps its state. */
    for (int i = 0; i < 20; i++)
        cr_assert(txg_take(g, "k0", 2, 1, 0));
    for (int i = 0; i < 20; i++)
        cr_assert(txg_take(g, "fl", 2, 1, 1));
    cr_assert(txg_take(g, "k1", 2, 1, 2));
    cr_assert(txg_take(g, "k2", 2, 1, 3));
    cr_assert_not(txg_take(g, "fl", 2, 1, 4)); /* seen now: the most recent */
    cr_assert(txg_take(g, "k3", 2, 1, 5));     /* recycles k0 */
    cr_assert(txg_take(g, "k0", 2, 1, 6));     /* fresh again (recycles k1) */
    cr_assert_not(txg_take(g, "fl", 2, 1, 7));
}

static void queue(int i, const char *origin)
{
    uint8_t tx[ALYS_TX_MAX_BYTES];
    memset(tx, i, sizeof tx);
    cr_assert_eq(txg_queue(g, tx, 140, origin), 0);
}

Test(txgossip, a_batch_skips_the_txs_that_came_from_that_peer)
{
    queue(1, "A");
    queue(2, "B");
    queue(3, "");
    ProtobufCBinaryData out[8];
    size_t pos = 0;
    size_t n = txg_batch(g, "A", &pos, out, 8);
    cr_assert_eq(n, 2);
    cr_assert_eq(out[0].data[0], 2);
    cr_assert_eq(out[1].data[0], 3);
    pos = 0;
    cr_assert_eq(txg_batch(g, "C", &pos, out, 8), 3);
    cr_assert_eq(txg_batch(g, "C", &pos, out, 8), 0);
}

Test(txgossip, batches_are_cut_at_the_asked_size)
{
    for (int i = 0; i < 5; i++)
        queue(i, "");
    ProtobufCBinaryData out[2];
    size_t pos = 0, total = 0, n;
    while ((n = txg_batch(g, "P", &pos, out, 2)) > 0) {
        cr_assert_leq(n, 2);
        total += n;
    }
    cr_assert_eq(total, 5);
}

Test(txgossip, the_relay_queue_is_bounded_and_cleared)
{
    for (int i = 0; i < 8; i++)
        queue(i, "");
    uint8_t tx[ALYS_TX_MAX_BYTES] = {0};
    cr_assert_eq(txg_queue(g, tx, 140, ""), -1);
    cr_assert_eq(txg_queued(g), 8);
    txg_queue_clear(g);
    cr_assert_eq(txg_queued(g), 0);
    cr_assert_eq(txg_queue(g, tx, ALYS_TX_MAX_BYTES + 1, ""), -1);
    cr_assert_eq(txg_queue(g, tx, 0, ""), -1);
}

Test(txgossip, clearing_the_seen_set_forgets_every_id)
{
    alys_hash_t id;
    for (int i = 0; i < 6; i++) {
        id_of(i, id);
        txg_mark(g, id);
    }
    txg_seen_clear(g);
    cr_assert_eq(txg_seen_count(g), 0);
    id_of(5, id);
    cr_assert_not(txg_seen(g, id));
    txg_mark(g, id);
    cr_assert(txg_seen(g, id));
    cr_assert_eq(txg_seen_count(g), 1);
}
