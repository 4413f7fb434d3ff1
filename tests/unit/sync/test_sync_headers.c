/*  test_sync_headers.c: header verification and the header requests in
 *  flight (sync_headers.h), against a real signed chain (the chain tests'
 *  fixture). */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fixture.h"
#include "sync_headers.h"

#define N 6

static fx_t fx;
static alys_header_t hdr[N + 1]; /* hdr[0]: the genesis' virtual parent */
static alys_hash_t hash[N + 1];
static ProtobufCBinaryData enc[N + 1];
static sync_hdr_ring_t *ring;
static uint64_t now_unix;

static void setup(void)
{
    fx_init(&fx);
    alys_genesis_parent(&fx.g, &hdr[0]);
    memcpy(hash[0], fx.g.hash, ALYS_HASH_LEN);
    for (int i = 1; i <= N; i++) {
        alys_block_t b;
        fx_block(&fx, &hdr[i - 1], hash[i - 1], (uint64_t) i * 2, NULL, 0, &b);
        hdr[i] = b.header;
        alys_header_hash(&hdr[i], hash[i]);
        size_t len = 0;
        cr_assert_eq(alys_header_encode(&hdr[i], &enc[i].data, &len), 0);
        enc[i].len = len;
        alys_block_clear(&b);
    }
    now_unix = FX_GENESIS_TIME * 1000 + (uint64_t) (2 * N + 10) * FX_SLOT_MS;
    ring = sync_hdr_ring_new(64);
    cr_assert_not_null(ring);
}

static void teardown(void)
{
    for (int i = 1; i <= N; i++)
        free(enc[i].data);
    sync_hdr_ring_destroy(&ring);
    fx_fini(&fx);
}

TestSuite(sync_headers, .init = setup, .fini = teardown);

static sync_hdr_req_t req(uint64_t start, uint32_t count)
{
    sync_hdr_req_t r = {.req_id = 7, .start = start, .count = count};
    memcpy(r.parent, hash[start - 1], ALYS_HASH_LEN);
    return r;
}

Test(sync_headers, a_valid_chain_verifies_and_is_recorded)
{
    alys_hash_t out[N];
    char why[200];
    cr_assert_eq(sync_verify_headers(&fx.g, ring, now_unix, 1, N, hash[0], &enc[1], N, out, why,
                                     sizeof why),
                 0, "%s", why);
    for (int i = 0; i < N; i++)
        cr_expect_eq(memcmp(out[i], hash[i + 1], ALYS_HASH_LEN), 0);
    uint64_t slot = 0;
    cr_expect(sync_hdr_ring_slot(ring, 3, hash[3], &slot));
    cr_expect_eq(slot, hdr[3].slot);
}

Test(sync_headers, a_continuation_links_to_the_recorded_parent)
{
    alys_hash_t out[N];
    char why[200];
    cr_assert_eq(sync_verify_headers(&fx.g, ring, now_unix, 1, 3, hash[0], &enc[1], 3, out, why,
                                     sizeof why),
                 0, "%s", why);
    cr_expect_eq(sync_verify_headers(&fx.g, ring, now_unix, 4, 3, hash[3], &enc[4], 3, out, why,
                                     sizeof why),
                 0, "%s", why);
}

/* Valid headers whose first parent is not the one named: another branch
 * (-2), not a lie that headers alone could prove. */
Test(sync_headers, a_wrong_parent_is_another_branch_and_records_nothing)
{
    alys_hash_t out[N];
    char why[200];
    cr_expect_eq(sync_verify_headers(&fx.g, ring, now_unix, 2, 3, hash[0], &enc[2], 3, out, why,
                                     sizeof why),
                 -2);
    uint64_t slot;
    cr_expect_not(sync_hdr_ring_slot(ring, 2, hash[2], &slot));
}

static int checks;

static bool refuse_all(void *ctx, const alys_genesis_t *g, const uint8_t *bytes, size_t len,
                       const alys_header_t *h, alys_verdict_t *v)
{
    (void) g, (void) bytes, (void) len, (void) h;
    (*(int *) ctx)++;
    v->code = ALYS_BLOCK_BAD_PROPOSER_SIG;
    snprintf(v->detail, sizeof v->detail, "refused by the caller's check");
    return false;
}

/* The simulator memoises the check of a header alone: the hook is what runs. */
Test(sync_headers, the_callers_header_check_is_used_when_set)
{
    alys_hash_t out[N];
    char why[200];
    checks = 0;
    sync_hdr_ring_set_check(ring, refuse_all, &checks);
    cr_expect_eq(sync_verify_headers(&fx.g, ring, now_unix, 1, 2, hash[0], &enc[1], 2, out, why,
                                     sizeof why),
                 -1);
    cr_expect_eq(checks, 1);
    sync_hdr_ring_set_check(ring, NULL, NULL);
    cr_expect_eq(sync_verify_headers(&fx.g, ring, now_unix, 1, 2, hash[0], &enc[1], 2, out, why,
                                     sizeof why),
                 0, "%s", why);
}

Test(sync_headers, a_tampered_header_fails)
{
    alys_header_t h = hdr[2];
    h.timestamp += 1; /* the signature no longer matches */
    ProtobufCBinaryData bad[2] = {enc[1], {0}};
    size_t len = 0;
    cr_assert_eq(alys_header_encode(&h, &bad[1].data, &len), 0);
    bad[1].len = len;
    alys_hash_t out[2];
    char why[200] = "";
    cr_expect_eq(sync_verify_headers(&fx.g, ring, now_unix, 1, 2, hash[0], bad, 2, out, why, sizeof why),
                 -1);
    cr_expect_neq(why[0], '\0');
    free(bad[1].data);
}

Test(sync_headers, headers_from_the_future_fail)
{
    alys_hash_t out[N];
    char why[200];
    uint64_t early = FX_GENESIS_TIME * 1000 + 3 * FX_SLOT_MS; /* slot 3: header 2 has slot 4 */
    cr_expect_eq(sync_verify_headers(&fx.g, ring, early, 1, N, hash[0], &enc[1], N, out, why,
                                     sizeof why),
                 -1);
}

Test(sync_headers, empty_oversized_and_too_many_fail)
{
    alys_hash_t out[N];
    char why[200];
    cr_expect_eq(sync_verify_headers(&fx.g, ring, now_unix, 1, N, hash[0], &enc[1], 0, out, why,
                                     sizeof why),
                 -1);
    cr_expect_eq(sync_verify_headers(&fx.g, ring, now_unix, 1, 2, hash[0], &enc[1], 3, out, why,
                                     sizeof why),
                 -1, "more than asked");
    ProtobufCBinaryData big = {SYNC_HEADER_MAX_BYTES + 1, enc[1].data};
    cr_expect_eq(sync_verify_headers(&fx.g, ring, now_unix, 1, 1, hash[0], &big, 1, out, why,
                                     sizeof why),
                 -1);
}

Test(sync_headers, judge_passes_peer_manager_outcomes_through)
{
    sync_hdr_req_t r = req(1, N);
    alys_hash_t out[N];
    uint32_t n = 99;
    bool fork = true;
    char why[200];
    cr_expect_eq(sync_headers_judge(&fx.g, ring, now_unix, &r, SYNC_OUTCOME_TIMEOUT, NULL, 0, out,
                                    &n, &fork, why, sizeof why),
                 SYNC_OUTCOME_TIMEOUT);
    cr_expect_eq(n, 0);
    cr_expect_str_eq(why, "");
    cr_expect_eq(sync_headers_judge(&fx.g, ring, now_unix, &r, SYNC_OUTCOME_SHORT, NULL, 0, out,
                                    &n, &fork, why, sizeof why),
                 SYNC_OUTCOME_SHORT, "short and empty");
}

Test(sync_headers, judge_keeps_what_verifies_of_a_short_answer)
{
    sync_hdr_req_t r = req(1, N);
    alys_hash_t out[N];
    uint32_t n = 0;
    bool fork = true;
    char why[200];
    cr_expect_eq(sync_headers_judge(&fx.g, ring, now_unix, &r, SYNC_OUTCOME_SHORT, &enc[1], 2,
                                    out, &n, &fork, why, sizeof why),
                 SYNC_OUTCOME_OK, "%s", why);
    cr_expect_eq(n, 2);
}

Test(sync_headers, judge_calls_bad_headers_and_no_genesis_invalid)
{
    sync_hdr_req_t r = req(2, 3); /* answered with headers from 1: wrong heights */
    alys_hash_t out[N];
    uint32_t n = 9;
    bool fork = true;
    char why[200];
    cr_expect_eq(sync_headers_judge(&fx.g, ring, now_unix, &r, SYNC_OUTCOME_OK, &enc[1], 3, out,
                                    &n, &fork, why, sizeof why),
                 SYNC_OUTCOME_INVALID);
    cr_expect_eq(n, 0);
    cr_expect_neq(why[0], '\0');
    r = req(1, 3);
    cr_expect_eq(sync_headers_judge(NULL, ring, now_unix, &r, SYNC_OUTCOME_OK, &enc[1], 3, out,
                                    &n, &fork, why, sizeof why),
                 SYNC_OUTCOME_INVALID);
}

Test(sync_headers, judge_says_fork_for_headers_of_another_branch)
{
    sync_hdr_req_t r = req(2, 3);
    memcpy(r.parent, hash[0], ALYS_HASH_LEN); /* we hold another header at 1 */
    alys_hash_t out[N];
    uint32_t n = 9;
    bool fork = false;
    char why[200];
    cr_expect_eq(sync_headers_judge(&fx.g, ring, now_unix, &r, SYNC_OUTCOME_OK, &enc[2], 3, out,
                                    &n, &fork, why, sizeof why),
                 SYNC_OUTCOME_INVALID);
    cr_expect(fork, "valid headers of another branch are a fork, not a lie");
    cr_expect_eq(n, 0);
    r = req(2, 3); /* wrong heights: a lie, not a fork */
    cr_expect_eq(sync_headers_judge(&fx.g, ring, now_unix, &r, SYNC_OUTCOME_OK, &enc[1], 3, out,
                                    &n, &fork, why, sizeof why),
                 SYNC_OUTCOME_INVALID);
    cr_expect_not(fork);
}

static sync_action_t fetch(uint64_t req_id, uint64_t start, uint32_t timeout_ms)
{
    sync_action_t a;
    memset(&a, 0, sizeof a);
    a.kind = SYNC_ACTION_FETCH_HEADERS;
    a.fetch_headers.req_id = req_id;
    a.fetch_headers.start = start;
    a.fetch_headers.count = 10;
    a.fetch_headers.timeout_ms = timeout_ms;
    memcpy(a.fetch_headers.peer, "p1", 3);
    return a;
}

Test(sync_headers, requests_are_taken_once)
{
    sync_hdr_reqs_t *q = sync_hdr_reqs_new(4);
    cr_assert_not_null(q);
    sync_action_t a = fetch(5, 100, 1000);
    sync_hdr_reqs_add(q, &a, 0);
    sync_hdr_req_t out;
    cr_assert(sync_hdr_reqs_take(q, 5, &out));
    cr_expect_eq(out.start, 100);
    cr_expect_str_eq(out.peer, "p1");
    cr_expect_not(sync_hdr_reqs_take(q, 5, &out), "answered already");
    sync_hdr_reqs_destroy(&q);
    cr_expect_null(q);
}

Test(sync_headers, requests_expire_and_the_full_table_evicts_the_earliest_deadline)
{
    sync_hdr_reqs_t *q = sync_hdr_reqs_new(2);
    cr_assert_not_null(q);
    sync_action_t a = fetch(1, 1, 1000), b = fetch(2, 2, 5000), c = fetch(3, 3, 1000);
    sync_hdr_reqs_add(q, &a, 0); /* deadline 5000 */
    sync_hdr_reqs_add(q, &b, 0); /* deadline 13000 */
    sync_hdr_reqs_add(q, &c, 0); /* evicts 1 */
    cr_expect_not(sync_hdr_reqs_take(q, 1, NULL));
    cr_expect_eq(sync_hdr_reqs_count(q), 2);
    sync_hdr_reqs_expire(q, 4999);
    cr_expect_eq(sync_hdr_reqs_count(q), 2);
    sync_hdr_reqs_expire(q, 5000);
    cr_expect_not(sync_hdr_reqs_take(q, 3, NULL), "expired");
    cr_expect(sync_hdr_reqs_take(q, 2, NULL));
    sync_hdr_reqs_add(q, &a, 0);
    sync_hdr_reqs_clear(q);
    cr_expect_eq(sync_hdr_reqs_count(q), 0);
    sync_hdr_reqs_destroy(&q);
}
