/*  sync_fork.h: fork choice's steps, driven with time as an input. */
#include <criterion/criterion.h>
#include <string.h>

#include "sync_fork.h"

#define DEPTH 64
#define TMO   5000

typedef struct {
    uint64_t heights[ALYS_LOCATOR_MAX];
    alys_hash_t hashes[ALYS_LOCATOR_MAX];
    size_t n;
} loc_t;

/* Our locator at head (dense heights one by one): hash byte = height mod
 * 251 + 1. */
static uint32_t s_dense = 10;
static void our_locator(uint64_t head, loc_t *l)
{
    l->n = alys_locator_heights(head, s_dense, l->heights, ALYS_LOCATOR_MAX);
    for (size_t i = 0; i < l->n; i++)
        memset(l->hashes[i], (int) (l->heights[i] % 251 + 1), ALYS_HASH_LEN);
}

/* A resolution with peer "P" up to the HEADERS step, our head at head. */
static sync_fork_t *to_headers(uint64_t head, uint64_t now, sync_fork_step_t *s)
{
    sync_fork_t *f = sync_fork_new(DEPTH, TMO);
    cr_assert_not_null(f);
    sync_fork_found(f, now, "P", head + 10, s);
    cr_assert_eq(s->kind, SYNC_FORK_GET_LOCATOR);
    loc_t l;
    our_locator(head, &l);
    sync_fork_on_locator(f, now, l.heights, (const alys_hash_t *) l.hashes, l.n, s);
    cr_assert_eq(s->kind, SYNC_FORK_FETCH_HEADERS);
    cr_assert(s->req_id & SYNC_FORK_REQ_BIT, "fork requests are told apart by their id");
    cr_assert_eq(s->count, SYNC_FORK_HEADERS);
    cr_assert_str_eq(s->peer, "P");
    size_t n;
    const alys_hash_t *sent = sync_fork_locator(f, &n);
    cr_assert_eq(n, l.n);
    cr_assert_eq(memcmp(sent, l.hashes, n * sizeof *sent), 0);
    return f;
}

static void their_hashes(alys_hash_t *h, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++)
        memset(h[i], 0xc0 + (int) (i % 60), ALYS_HASH_LEN);
}

static alys_hash_t theirs[SYNC_FORK_MAX_BLOCKS];

Test(sync_fork, longer_branch_is_fetched_and_applied_as_one_reorg)
{
    sync_fork_step_t s;
    sync_fork_t *f = to_headers(100, 0, &s);
    uint64_t req = s.req_id;
    alys_hash_t parent;
    cr_assert_not(sync_fork_parent(f, req, 89, parent), "88 is not a locator height");
    cr_assert(sync_fork_parent(f, req, 96, parent), "95 is");
    uint8_t want[ALYS_HASH_LEN];
    memset(want, 95 % 251 + 1, sizeof want);
    cr_assert_eq(memcmp(parent, want, ALYS_HASH_LEN), 0, "our hash at the locator height");
    their_hashes(theirs, 20);
    sync_fork_on_headers(f, 1, req, SYNC_OUTCOME_OK, true, 96, (const alys_hash_t *) theirs, 20,
                         "", &s);
    cr_assert_eq(s.kind, SYNC_FORK_FETCH_BLOCKS, "%s", s.detail);
    cr_assert_eq(s.start, 96);
    cr_assert_eq(s.count, 20, "all they showed (less than depth + 1 + extra)");
    cr_assert_eq(s.ancestor, 95);
    cr_assert_eq(s.depth, 5);
    uint32_t ne;
    const alys_hash_t *exp = sync_fork_expected(f, &ne);
    cr_assert_eq(ne, 20);
    cr_assert_eq(memcmp(exp, theirs, 20 * sizeof *exp), 0, "bodies are checked against headers");
    uint64_t breq = s.req_id;
    cr_assert_neq(breq, req);
    sync_fork_on_blocks(f, 2, breq, SYNC_OUTCOME_SHORT, 12, &s);
    cr_assert_eq(s.kind, SYNC_FORK_PROCESS, "12 blocks from 96 end at 107 > 100: %s", s.detail);
    cr_assert_eq(s.count, 12);
    cr_assert_eq(s.ancestor, 95);
    cr_assert_eq(memcmp(s.ancestor_hash, want, ALYS_HASH_LEN), 0);
    sync_fork_on_processed(f, 3, true, 5, 107, false, false, "", &s);
    cr_assert_eq(s.kind, SYNC_FORK_REORGED, "%s", s.detail);
    sync_fork_status_t st;
    sync_fork_get_status(f, &st);
    cr_assert_eq(st.reorgs, 1);
    cr_assert_not(st.busy);
    cr_assert(strstr(st.last_reorg, "5 blocks undone"), "%s", st.last_reorg);
    sync_fork_found(f, 4, "P", 200, &s);
    cr_assert_eq(s.kind, SYNC_FORK_GET_LOCATOR, "a reorg leaves no cooldown");
    sync_fork_destroy(&f);
    cr_assert_null(f);
}

Test(sync_fork, deeper_than_max_reorg_depth_is_refused_loudly)
{
    sync_fork_step_t s;
    sync_fork_t *f = to_headers(1000, 0, &s);
    /* 1000's locator holds 929 (71 below) */
    alys_hash_t parent;
    cr_assert(sync_fork_parent(f, s.req_id, 930, parent));
    their_hashes(theirs, 200);
    sync_fork_on_headers(f, 1, s.req_id, SYNC_OUTCOME_OK, true, 930, (const alys_hash_t *) theirs,
                         200, "", &s);
    cr_assert_eq(s.kind, SYNC_FORK_TOO_DEEP);
    cr_assert(strstr(s.detail, "71 blocks below our head 1000"), "%s", s.detail);
    cr_assert(strstr(s.detail, "max_reorg_depth is 64"), "%s", s.detail);
    sync_fork_status_t st;
    sync_fork_get_status(f, &st);
    cr_assert_eq(st.refused, 1);
    cr_assert_eq(st.reorgs, 0);
    cr_assert_str_eq(st.last_refused, s.detail);
    sync_fork_destroy(&f);
}

Test(sync_fork, a_branch_not_above_our_head_keeps_ours_and_the_peer_cools_down)
{
    sync_fork_step_t s;
    sync_fork_t *f = to_headers(100, 0, &s);
    their_hashes(theirs, 5);
    sync_fork_on_headers(f, 1, s.req_id, SYNC_OUTCOME_OK, true, 96, (const alys_hash_t *) theirs,
                         5, "", &s);
    cr_assert_eq(s.kind, SYNC_FORK_KEEP_OURS, "95 + 5 = 100: a tie keeps ours (%s)", s.detail);
    sync_fork_found(f, 2, "P", 120, &s);
    cr_assert_eq(s.kind, SYNC_FORK_NONE, "P cools down");
    sync_fork_found(f, 3, "Q", 120, &s);
    cr_assert_eq(s.kind, SYNC_FORK_GET_LOCATOR, "another peer is heard at once");
    sync_fork_found(f, 4, "R", 120, &s);
    cr_assert_eq(s.kind, SYNC_FORK_NONE, "one resolution at a time");
    sync_fork_tick(f, 3 + TMO - 1, &s);
    cr_assert_eq(s.kind, SYNC_FORK_NONE);
    sync_fork_tick(f, 3 + TMO, &s);
    cr_assert_eq(s.kind, SYNC_FORK_ABANDONED, "the locator step timed out");
    sync_fork_next(f, 3 + TMO, &s);
    cr_assert_eq(s.kind, SYNC_FORK_GET_LOCATOR, "R waited its turn");
    cr_assert_str_eq(s.peer, "R");
    sync_fork_tick(f, 3 + 2 * TMO, &s);
    sync_fork_next(f, 3 + 2 * TMO, &s);
    cr_assert_eq(s.kind, SYNC_FORK_NONE, "nobody else waits");
    sync_fork_found(f, 2 + SYNC_FORK_COOLDOWN_MS, "P", 120, &s);
    cr_assert_eq(s.kind, SYNC_FORK_GET_LOCATOR, "P's cooldown is over");
    sync_fork_destroy(&f);
}

Test(sync_fork, only_invalid_data_costs)
{
    sync_fork_step_t s;
    sync_fork_t *f = to_headers(100, 0, &s);
    sync_fork_on_headers(f, 1, s.req_id, SYNC_OUTCOME_OK, true, 96, NULL, 0, "", &s);
    cr_assert_eq(s.kind, SYNC_FORK_KEEP_OURS, "nothing above where we meet: no cost");
    sync_fork_destroy(&f);

    f = to_headers(100, 0, &s);
    their_hashes(theirs, 20);
    sync_fork_on_headers(f, 1, s.req_id, SYNC_OUTCOME_OK, false, 96, (const alys_hash_t *) theirs,
                         20, "bad signature", &s);
    cr_assert_eq(s.kind, SYNC_FORK_INVALID, "headers that do not verify");
    cr_assert_str_eq(s.peer, "P");
    sync_fork_destroy(&f);

    f = to_headers(100, 0, &s);
    sync_fork_on_headers(f, 1, s.req_id, SYNC_OUTCOME_OK, true, 89, (const alys_hash_t *) theirs,
                         20, "", &s);
    cr_assert_eq(s.kind, SYNC_FORK_INVALID, "a start that names no locator height");
    sync_fork_destroy(&f);

    f = to_headers(100, 0, &s);
    sync_fork_on_headers(f, 1, s.req_id, SYNC_OUTCOME_TIMEOUT, false, 0, NULL, 0, "", &s);
    cr_assert_eq(s.kind, SYNC_FORK_ABANDONED, "PeerManager scored the timeout already");
    sync_fork_destroy(&f);

    f = to_headers(100, 0, &s);
    sync_fork_on_headers(f, 1, s.req_id, SYNC_OUTCOME_OK, true, 96, (const alys_hash_t *) theirs,
                         20, "", &s);
    sync_fork_on_blocks(f, 2, s.req_id, SYNC_OUTCOME_OK, 20, &s);
    cr_assert_eq(s.kind, SYNC_FORK_PROCESS);
    sync_fork_on_processed(f, 3, true, 0, 100, true, true, "bad_nonce", &s);
    cr_assert_eq(s.kind, SYNC_FORK_INVALID, "a block of the branch broke a rule");
    sync_fork_destroy(&f);

    f = to_headers(100, 0, &s);
    sync_fork_on_headers(f, 1, s.req_id, SYNC_OUTCOME_OK, true, 96, (const alys_hash_t *) theirs,
                         20, "", &s);
    sync_fork_on_blocks(f, 2, s.req_id, SYNC_OUTCOME_OK, 20, &s);
    sync_fork_on_processed(f, 3, true, 0, 100, true, false, "not_longer", &s);
    cr_assert_eq(s.kind, SYNC_FORK_KEEP_OURS, "storage kept ours: nobody's fault");
    sync_fork_destroy(&f);
}

Test(sync_fork, blocks_that_do_not_reach_above_our_head_are_not_processed)
{
    sync_fork_step_t s;
    sync_fork_t *f = to_headers(100, 0, &s);
    their_hashes(theirs, 20);
    sync_fork_on_headers(f, 1, s.req_id, SYNC_OUTCOME_OK, true, 96, (const alys_hash_t *) theirs,
                         20, "", &s);
    uint64_t breq = s.req_id;
    sync_fork_on_blocks(f, 2, breq + 1, SYNC_OUTCOME_OK, 20, &s);
    cr_assert_eq(s.kind, SYNC_FORK_NONE, "another request's result is not ours");
    sync_fork_on_blocks(f, 2, breq, SYNC_OUTCOME_SHORT, 5, &s);
    cr_assert_eq(s.kind, SYNC_FORK_ABANDONED, "95 + 5 is not above 100");
    sync_fork_destroy(&f);
}

Test(sync_fork, a_malformed_locator_abandons)
{
    sync_fork_t *f = sync_fork_new(DEPTH, TMO);
    sync_fork_step_t s;
    sync_fork_found(f, 0, "P", 50, &s);
    uint64_t h[3] = {10, 11, 0};
    alys_hash_t hs[3] = {{0}};
    sync_fork_on_locator(f, 1, h, (const alys_hash_t *) hs, 3, &s);
    cr_assert_eq(s.kind, SYNC_FORK_ABANDONED, "heights must descend to the genesis");
    sync_fork_destroy(&f);
}

/* With the reorg window dense (as the actor asks storage: max_reorg_depth
 * + 2), a fork 40 below the head is found where it is and adopted; the
 * sparse Bitcoin shape names a height below the fork point (heights 960
 * and 959 are not in it) and would judge it deeper than it is. */
Test(sync_fork, a_dense_locator_finds_the_fork_point_exactly)
{
    sync_fork_step_t s;
    s_dense = DEPTH + 2;
    sync_fork_t *f = to_headers(1000, 0, &s);
    alys_hash_t parent;
    cr_assert(sync_fork_parent(f, s.req_id, 961, parent), "960 is a dense locator height");
    their_hashes(theirs, 100);
    sync_fork_on_headers(f, 1, s.req_id, SYNC_OUTCOME_OK, true, 961, (const alys_hash_t *) theirs,
                         100, "", &s);
    cr_assert_eq(s.kind, SYNC_FORK_FETCH_BLOCKS, "%s", s.detail);
    cr_assert_eq(s.depth, 40);
    sync_fork_destroy(&f);
    s_dense = 10;
    f = to_headers(1000, 0, &s);
    cr_assert_not(sync_fork_parent(f, s.req_id, 961, parent), "sparse: 960 is not named");
    sync_fork_destroy(&f);
}
