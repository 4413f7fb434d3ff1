/*  test_sync_pending.c: requests to other actors complete exactly once, by
 *  their reply or their deadline (sync_pending.h). */
#include <criterion/criterion.h>

#include "sync_pending.h"

static sync_pending_t *t;

static void setup(void)
{
    t = sync_pending_new(2);
    cr_assert_not_null(t);
}

static void teardown(void)
{
    sync_pending_destroy(&t);
    cr_assert_null(t);
}

TestSuite(sync_pending, .init = setup, .fini = teardown);

static int n_done;

static void count_done(sync_pend_t *p)
{
    (void) p;
    n_done++;
}

Test(sync_pending, a_reply_completes_its_request_once)
{
    int client;
    sync_pend_t *p = sync_pending_add(t, SYNC_PEND_LIST_CP, 11, 1000, 2000);
    cr_assert_not_null(p);
    p->client = &client;
    p->height = 5;
    cr_expect(sync_pending_known(t, 11));
    sync_pend_t out;
    cr_assert(sync_pending_take(t, 11, &out));
    cr_expect_eq(out.client, &client);
    cr_expect_eq(out.height, 5);
    cr_expect_not(sync_pending_take(t, 11, &out), "a second reply is late");
    cr_expect_not(sync_pending_next_expired(t, 100000, &out), "and it cannot time out");
}

Test(sync_pending, a_deadline_completes_its_request_once)
{
    cr_assert_not_null(sync_pending_add(t, SYNC_PEND_GET_HEAD, 12, 1000, 2000));
    sync_pend_t out;
    cr_expect_not(sync_pending_next_expired(t, 2999, &out));
    cr_assert(sync_pending_next_expired(t, 3000, &out));
    cr_expect_eq(out.corr_id, 12);
    cr_expect_not(sync_pending_take(t, 12, &out), "its reply is late");
    cr_expect_not(sync_pending_has_kind(t, SYNC_PEND_GET_HEAD));
}

Test(sync_pending, the_table_is_bounded)
{
    cr_assert_not_null(sync_pending_add(t, SYNC_PEND_GET_HEAD, 1, 0, 10));
    cr_assert_not_null(sync_pending_add(t, SYNC_PEND_GET_PEERS, 2, 0, 10));
    cr_expect_null(sync_pending_add(t, SYNC_PEND_ROLLBACK, 3, 0, 10));
    cr_expect(sync_pending_has_kind(t, SYNC_PEND_GET_PEERS));
    cr_expect_eq(sync_pending_drop_kind(t, SYNC_PEND_GET_HEAD, count_done), 1);
    cr_expect_eq(n_done, 1);
    cr_expect_not(sync_pending_known(t, 1));
    cr_expect(sync_pending_known(t, 2));
    cr_expect_not_null(sync_pending_add(t, SYNC_PEND_ROLLBACK, 3, 0, 10));
}

Test(sync_pending, corr_id_zero_and_duplicates_are_refused)
{
    cr_expect_null(sync_pending_add(t, SYNC_PEND_GET_HEAD, 0, 0, 10));
    cr_expect_not(sync_pending_known(t, 0));
    cr_expect_not(sync_pending_take(t, 0, NULL));
    cr_assert_not_null(sync_pending_add(t, SYNC_PEND_GET_HEAD, 5, 0, 10));
    cr_expect_null(sync_pending_add(t, SYNC_PEND_GET_PEERS, 5, 0, 10));
}

Test(sync_pending, a_refused_fetch_reaches_its_request_once)
{
    sync_pending_fetch_sent(t, 100, 7, true);
    sync_pending_fetch_sent(t, 101, 8, false);
    uint64_t req = 0;
    bool headers = false;
    cr_assert(sync_pending_fetch_refused(t, 100, &req, &headers));
    cr_expect_eq(req, 7);
    cr_expect(headers);
    cr_expect_not(sync_pending_fetch_refused(t, 100, &req, &headers));
    cr_expect_not(sync_pending_fetch_refused(t, 999, &req, &headers));
}

Test(sync_pending, only_the_most_recent_fetches_are_remembered)
{
    for (uint64_t i = 1; i <= SYNC_PENDING_FETCHES + 1; i++)
        sync_pending_fetch_sent(t, i, i, false);
    uint64_t req;
    bool headers;
    cr_expect_not(sync_pending_fetch_refused(t, 1, &req, &headers), "overwritten");
    cr_expect(sync_pending_fetch_refused(t, 2, &req, &headers));
    cr_expect(sync_pending_fetch_refused(t, SYNC_PENDING_FETCHES + 1, &req, &headers));
}
