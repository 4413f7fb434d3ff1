/*  test_gossip.c: block gossip's decisions (actors/peer_manager/pm_gossip.h). */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "pm_gossip.h"

static pmg_t *G;

static void setup(void)
{
    G = pmg_new();
    cr_assert_not_null(G);
}

static void teardown(void)
{
    pmg_destroy(&G);
    cr_assert_null(G, "destroy nulls the pointer");
}

TestSuite(gossip, .init = setup, .fini = teardown);

static void hash_of(uint32_t n, alys_hash_t out)
{
    memset(out, 0, ALYS_HASH_LEN);
    memcpy(out, &n, sizeof n);
    out[ALYS_HASH_LEN - 1] = 0xab; /* never all zero */
}

Test(gossip, a_block_on_our_head_is_processed_once)
{
    alys_hash_t h;
    hash_of(1, h);
    cr_assert_eq(pmg_on_block(G, h, 11, 10), PMG_PROCESS);
    cr_assert_eq(pmg_on_block(G, h, 11, 10), PMG_DROP_SEEN, "the second copy is a duplicate");
}

Test(gossip, a_block_at_or_below_our_head_is_old)
{
    alys_hash_t h;
    hash_of(2, h);
    cr_assert_eq(pmg_on_block(G, h, 10, 10), PMG_DROP_OLD);
    cr_assert_eq(pmg_on_block(G, h, 3, 10), PMG_DROP_OLD);
    cr_assert_not(pmg_seen(G, h), "an old block is not remembered");
}

Test(gossip, a_small_gap_is_an_orphan_a_large_one_is_range_sync)
{
    alys_hash_t a, b;
    hash_of(3, a);
    hash_of(4, b);
    cr_assert_eq(pmg_on_block(G, a, 10 + 1 + PMG_MAX_GAP, 10), PMG_ORPHAN);
    cr_assert_eq(pmg_on_block(G, b, 10 + 2 + PMG_MAX_GAP, 10), PMG_BEHIND);
    cr_assert_not(pmg_seen(G, b), "a block left to range sync may come again");
}

Test(gossip, the_seen_set_is_bounded_and_forgets_the_oldest)
{
    alys_hash_t h;
    for (uint32_t i = 0; i < PMG_SEEN_MAX + 1; i++) {
        hash_of(100 + i, h);
        pmg_mark_seen(G, h);
    }
    hash_of(100, h);
    cr_assert_not(pmg_seen(G, h), "the oldest fell out");
    hash_of(101, h);
    cr_assert(pmg_seen(G, h));
    hash_of(100 + PMG_SEEN_MAX, h);
    cr_assert(pmg_seen(G, h));
}

static int add_orphan(const char *peer, uint32_t n, uint64_t height, const alys_hash_t parent)
{
    alys_hash_t h;
    hash_of(n, h);
    uint8_t bytes[4] = {1, 2, 3, (uint8_t) n};
    return pmg_orphan_add(G, peer, h, parent, height, bytes, sizeof bytes);
}

Test(gossip, the_orphan_pool_is_bounded_per_peer)
{
    alys_hash_t p;
    hash_of(9, p);
    for (uint32_t i = 0; i < PMG_ORPHANS_PER_PEER; i++)
        cr_assert_eq(add_orphan("a", 10 + i, 20 + i, p), 0);
    cr_assert_eq(add_orphan("a", 99, 40, p), -1, "a's share is used");
    cr_assert_eq(add_orphan("b", 98, 40, p), 0, "b has its own share");
    cr_assert_eq(pmg_orphan_count(G, "a"), PMG_ORPHANS_PER_PEER);
    cr_assert_eq(pmg_orphan_count(G, NULL), PMG_ORPHANS_PER_PEER + 1);
}

Test(gossip, the_orphan_pool_is_bounded_in_all)
{
    alys_hash_t p;
    hash_of(9, p);
    char peer[16];
    size_t kept = 0;
    for (uint32_t i = 0; i < PMG_ORPHANS_MAX + 8; i++) {
        snprintf(peer, sizeof peer, "p%u", i);
        kept += add_orphan(peer, 200 + i, 30, p) == 0;
    }
    cr_assert_eq(kept, PMG_ORPHANS_MAX);
    cr_assert_eq(pmg_orphan_count(G, NULL), PMG_ORPHANS_MAX);
}

Test(gossip, a_refused_orphan_is_forgotten_so_it_may_come_again)
{
    alys_hash_t p, h;
    hash_of(9, p);
    for (uint32_t i = 0; i < PMG_ORPHANS_PER_PEER; i++) {
        hash_of(10 + i, h);
        cr_assert_eq(pmg_on_block(G, h, 15, 10), PMG_ORPHAN);
        cr_assert_eq(add_orphan("a", 10 + i, 15, p), 0);
    }
    hash_of(50, h);
    cr_assert_eq(pmg_on_block(G, h, 15, 10), PMG_ORPHAN);
    cr_assert_eq(add_orphan("a", 50, 15, p), -1);
    cr_assert_not(pmg_seen(G, h));
}

Test(gossip, an_orphan_goes_once_its_parent_is_our_head)
{
    alys_hash_t parent, other;
    hash_of(7, parent);
    hash_of(8, other);
    cr_assert_eq(add_orphan("a", 30, 12, parent), 0);
    pmg_block_t b;
    cr_assert_not(pmg_orphan_next(G, 10, parent, &b), "height 12 does not link to 10");
    cr_assert_not(pmg_orphan_next(G, 11, other, &b), "another parent");
    cr_assert(pmg_orphan_next(G, 11, parent, &b));
    cr_assert_eq(b.height, 12);
    cr_assert_str_eq(b.peer, "a");
    cr_assert_eq(b.len, 4);
    cr_assert_eq(b.bytes[3], 30);
    free(b.bytes);
    cr_assert_eq(pmg_orphan_count(G, NULL), 0, "taken out of the pool");
}

Test(gossip, orphans_at_or_below_the_head_are_pruned)
{
    alys_hash_t p;
    hash_of(9, p);
    add_orphan("a", 1, 12, p);
    add_orphan("a", 2, 15, p);
    cr_assert_eq(pmg_orphans_prune(G, 12), 1);
    cr_assert_eq(pmg_orphan_count(G, NULL), 1);
}

Test(gossip, a_peer_gone_takes_its_orphans)
{
    alys_hash_t p;
    hash_of(9, p);
    add_orphan("a", 1, 12, p);
    add_orphan("b", 2, 12, p);
    pmg_peer_gone(G, "a");
    cr_assert_eq(pmg_orphan_count(G, "a"), 0);
    cr_assert_eq(pmg_orphan_count(G, "b"), 1);
}

Test(gossip, blocks_in_flight_are_kept_until_answered_and_bounded)
{
    uint8_t bytes[3] = {7, 8, 9};
    pmg_block_t b = {.height = 5, .bytes = bytes, .len = 3};
    snprintf(b.peer, sizeof b.peer, "x");
    for (uint64_t i = 0; i < PMG_INFLIGHT_MAX; i++)
        cr_assert_eq(pmg_inflight_add(G, 1000 + i, &b), 0);
    cr_assert_eq(pmg_inflight_add(G, 5000, &b), -1, "full");
    cr_assert(pmg_inflight_has(G, 1003));
    pmg_block_t out;
    cr_assert(pmg_inflight_take(G, 1003, &out));
    cr_assert_neq(out.bytes, bytes, "a copy");
    cr_assert_eq(out.bytes[2], 9);
    cr_assert_str_eq(out.peer, "x");
    free(out.bytes);
    cr_assert_not(pmg_inflight_take(G, 1003, &out), "taken once");
    cr_assert_not(pmg_inflight_take(G, 42, &out), "never sent");
}

Test(gossip, push_goes_to_at_most_cap_peers_never_the_excluded)
{
    size_t out[PMG_PUSH_MAX];
    size_t k = pmg_push_pick(3, 1, PMG_PUSH_MAX, 0, out);
    cr_assert_eq(k, 2);
    for (size_t i = 0; i < k; i++)
        cr_assert_neq(out[i], 1);
    k = pmg_push_pick(20, SIZE_MAX, PMG_PUSH_MAX, 7, out);
    cr_assert_eq(k, PMG_PUSH_MAX);
    for (size_t i = 0; i < k; i++)
        for (size_t j = i + 1; j < k; j++)
            cr_assert_neq(out[i], out[j], "each peer once");
    cr_assert_eq(pmg_push_pick(0, SIZE_MAX, PMG_PUSH_MAX, 7, out), 0);
}

Test(gossip, peers_past_the_bound_differ_between_blocks)
{
    size_t a[PMG_PUSH_MAX], b[PMG_PUSH_MAX];
    pmg_push_pick(20, SIZE_MAX, PMG_PUSH_MAX, 0, a);
    pmg_push_pick(20, SIZE_MAX, PMG_PUSH_MAX, 10, b);
    cr_assert_neq(a[0], b[0]);
}

Test(gossip, a_block_above_our_head_refused_for_linkage_is_another_branch)
{
    cr_assert(pmg_other_branch(true, 11, 10), "a longer branch's tip");
    cr_assert(pmg_other_branch(true, 14, 10), "longer by more");
    cr_assert_not(pmg_other_branch(true, 10, 10), "as long as ours: ours stays");
    cr_assert_not(pmg_other_branch(false, 11, 10), "refused for something else");
}
