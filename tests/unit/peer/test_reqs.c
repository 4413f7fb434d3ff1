/*  PeerManager's requests in flight (pm_reqs.h): matching by id and
 *  connection, exactly once, deadlines, a connection going away,
 *  admission and timeouts. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "pm_reqs.h"

static pm_req_t blocks_req(int conn, uint64_t request_id, bool with_hashes)
{
    pm_req_t r = {.kind = PM_REQ_BLOCKS, .conn = conn, .request_id = request_id, .start = 1, .count = 4};
    strcpy(r.peer_id, "p");
    if (with_hashes) {
        r.expected = calloc(4, ALYS_HASH_LEN);
        cr_assert_not_null(r.expected);
    }
    return r;
}

Test(reqs, response_matches_by_id_and_connection_exactly_once)
{
    pm_reqs_t *t = pm_reqs_new(8);
    cr_assert_not_null(t);
    pm_req_t r = blocks_req(3, 77, true);
    cr_assert_eq(pm_reqs_add(t, 1001, 500, &r), 0);
    pm_req_t out;
    cr_expect_not(pm_reqs_take(t, 4, 1001, &out), "another connection's answer");
    cr_expect_not(pm_reqs_take(t, 3, 1002, &out), "unknown id");
    cr_assert(pm_reqs_take(t, 3, 1001, &out));
    cr_expect_eq(out.request_id, 77);
    cr_expect_not_null(out.expected, "the hashes come back with the request");
    cr_expect_not(pm_reqs_take(t, 3, 1001, &out), "a duplicate finds nothing");
    pm_req_clear(&out);
    pm_reqs_destroy(&t);
    cr_expect_null(t);
}

Test(reqs, deadlines_expire_earliest_first)
{
    pm_reqs_t *t = pm_reqs_new(8);
    pm_req_t a = blocks_req(1, 1, false), b = blocks_req(1, 2, false);
    cr_assert_eq(pm_reqs_add(t, 11, 300, &a), 0);
    cr_assert_eq(pm_reqs_add(t, 12, 200, &b), 0);
    pm_req_t out;
    cr_expect_not(pm_reqs_expire(t, 199, &out));
    cr_assert(pm_reqs_expire(t, 300, &out));
    cr_expect_eq(out.request_id, 2);
    cr_assert(pm_reqs_expire(t, 300, &out));
    cr_expect_eq(out.request_id, 1);
    cr_expect_not(pm_reqs_expire(t, 1000, &out));
    pm_reqs_destroy(&t);
}

Test(reqs, a_connection_going_away_drains_only_its_requests)
{
    pm_reqs_t *t = pm_reqs_new(8);
    pm_req_t a = blocks_req(1, 1, true), b = blocks_req(2, 2, false), c = blocks_req(1, 3, false);
    cr_assert_eq(pm_reqs_add(t, 11, 300, &a), 0);
    cr_assert_eq(pm_reqs_add(t, 12, 300, &b), 0);
    cr_assert_eq(pm_reqs_add(t, 13, 300, &c), 0);
    pm_req_t out;
    int n = 0;
    while (pm_reqs_take_conn(t, 1, &out)) {
        cr_expect_eq(out.conn, 1);
        pm_req_clear(&out);
        n++;
    }
    cr_expect_eq(n, 2);
    cr_expect_eq(pm_reqs_count(t), 1);
    pm_reqs_destroy(&t); /* frees what is left, hashes included (ASan checks) */
}

Test(reqs, busy_connections_are_those_with_a_request_in_flight)
{
    pm_reqs_t *t = pm_reqs_new(8);
    pm_req_t a = blocks_req(1, 1, false), b = blocks_req(3, 2, false), c = blocks_req(9, 3, false);
    cr_assert_eq(pm_reqs_add(t, 11, 300, &a), 0);
    cr_assert_eq(pm_reqs_add(t, 12, 300, &b), 0);
    cr_assert_eq(pm_reqs_add(t, 13, 300, &c), 0);
    bool busy[4] = {true, true, true, true};
    pm_reqs_busy_conns(t, busy, 4); /* connection 9 is beyond n: ignored */
    cr_expect(!busy[0] && busy[1] && !busy[2] && busy[3]);
    pm_req_t out;
    cr_assert(pm_reqs_take(t, 1, 11, &out));
    pm_req_clear(&out);
    pm_reqs_busy_conns(t, busy, 4);
    cr_expect_not(busy[1], "its only request answered");
    pm_reqs_destroy(&t);
}

Test(reqs, bounded_and_ids_unique)
{
    pm_reqs_t *t = pm_reqs_new(2);
    pm_req_t r = blocks_req(1, 1, false);
    cr_expect_eq(pm_reqs_add(t, 1, 10, &r), 0);
    cr_expect_eq(pm_reqs_add(t, 1, 10, &r), -1, "id taken");
    cr_expect_eq(pm_reqs_add(t, 0, 10, &r), -1, "id 0");
    cr_expect_not(pm_reqs_full(t));
    cr_expect_eq(pm_reqs_add(t, 2, 10, &r), 0);
    cr_expect(pm_reqs_full(t));
    cr_expect_eq(pm_reqs_add(t, 3, 10, &r), -1);
    pm_reqs_destroy(&t);
}

Test(reqs, admission_checks_count_start_and_hashes)
{
    char why[96];
    ProtobufCBinaryData h[2] = {{ALYS_HASH_LEN, NULL}, {ALYS_HASH_LEN, NULL}};
    cr_expect_eq(pm_req_check(PM_REQ_BLOCKS, 1, 2, h, 2, why, sizeof why), 0);
    cr_expect_eq(pm_req_check(PM_REQ_BLOCKS, 1, 2, NULL, 0, why, sizeof why), 0);
    cr_expect_eq(pm_req_check(PM_REQ_BLOCKS, 0, 2, NULL, 0, why, sizeof why), -1, "start 0");
    cr_expect_eq(pm_req_check(PM_REQ_BLOCKS, 1, 0, NULL, 0, why, sizeof why), -1, "count 0");
    cr_expect_eq(pm_req_check(PM_REQ_BLOCKS, 1, ALYS_WIRE_MAX_BLOCKS + 1, NULL, 0, why, sizeof why),
                 -1);
    cr_expect_eq(pm_req_check(PM_REQ_HEADERS, 1, ALYS_WIRE_MAX_BLOCKS + 1, NULL, 0, why, sizeof why),
                 0, "headers have their own bound");
    cr_expect_eq(pm_req_check(PM_REQ_BLOCKS, 1, 3, h, 2, why, sizeof why), -1, "hash count");
    h[1].len = 31;
    cr_expect_eq(pm_req_check(PM_REQ_BLOCKS, 1, 2, h, 2, why, sizeof why), -1, "hash size");
    cr_expect(strstr(why, "expected_hashes") != NULL);
}

Test(reqs, timeout_is_the_shorter_of_asked_and_adaptive_and_capped)
{
    cr_expect_eq(pm_req_timeout_ms(3000, 700), 700, "the peer's RTO, under sync's bound");
    cr_expect_eq(pm_req_timeout_ms(700, 3000), 700, "sync's bound");
    cr_expect_eq(pm_req_timeout_ms(3000, 0), 3000);
    cr_expect_eq(pm_req_timeout_ms(0, 700), 700);
    cr_expect_eq(pm_req_timeout_ms(PM_REQ_MAX_TIMEOUT_MS + 1, 0), PM_REQ_MAX_TIMEOUT_MS);
}

Test(reqs, a_locator_request_checks_count_and_hashes_not_start)
{
    char why[96];
    ProtobufCBinaryData h[ALYS_LOCATOR_MAX + 1];
    for (size_t i = 0; i <= ALYS_LOCATOR_MAX; i++)
        h[i] = (ProtobufCBinaryData){ALYS_HASH_LEN, NULL};
    cr_expect_eq(pm_req_check_locator(10, h, 1, why, sizeof why), 0);
    cr_expect_eq(pm_req_check_locator(ALYS_WIRE_MAX_HEADERS, h, ALYS_LOCATOR_MAX, why, sizeof why), 0);
    cr_expect_eq(pm_req_check_locator(0, h, 1, why, sizeof why), -1, "count 0");
    cr_expect_eq(pm_req_check_locator(ALYS_WIRE_MAX_HEADERS + 1, h, 1, why, sizeof why), -1);
    cr_expect_eq(pm_req_check_locator(10, h, ALYS_LOCATOR_MAX + 1, why, sizeof why), -1,
                 "more hashes than a peer's decoder takes");
    cr_expect(strstr(why, "locator") != NULL);
    h[3].len = 31;
    cr_expect_eq(pm_req_check_locator(10, h, 4, why, sizeof why), -1, "hash size");
}

Test(reqs, clearing_a_request_frees_its_locator)
{
    /* Run under ASan: a leak here is a failure. */
    pm_req_t r = blocks_req(1, 5, true);
    r.kind = PM_REQ_HEADERS;
    r.locator = calloc(3, ALYS_HASH_LEN);
    cr_assert_not_null(r.locator);
    r.n_locator = 3;
    pm_req_clear(&r);
    cr_expect_null(r.locator);
    cr_expect_eq(r.n_locator, 0);
}
