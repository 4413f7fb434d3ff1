/*  test_sync_rollback.c: the quiet window around our Rollback
 *  (sync_rollback.h). */
#include <criterion/criterion.h>

#include "sync_rollback.h"

static sync_rollback_t *r;

static void setup(void)
{
    r = sync_rollback_new(300);
    cr_assert_not_null(r);
}

static void teardown(void)
{
    sync_rollback_destroy(&r);
    cr_assert_null(r);
}

TestSuite(sync_rollback, .init = setup, .fini = teardown);

Test(sync_rollback, commits_pass_when_no_rollback_was_sent)
{
    cr_expect(sync_rollback_accepts_commit(r, 0));
    cr_expect(sync_rollback_accepts_commit(r, 5000));
    cr_expect_not(sync_rollback_window_closed(r, 5000), "no window, no catch-up");
}

Test(sync_rollback, commits_are_dropped_in_flight_and_for_the_quiet_time)
{
    sync_rollback_sent(r);
    cr_expect_not(sync_rollback_accepts_commit(r, 1000), "in flight");
    cr_expect_not(sync_rollback_window_closed(r, 100000), "still in flight");
    sync_rollback_done(r, 2000);
    cr_expect_not(sync_rollback_accepts_commit(r, 2000));
    cr_expect_not(sync_rollback_accepts_commit(r, 2299));
    cr_expect_not(sync_rollback_window_closed(r, 2299));
    cr_expect(sync_rollback_accepts_commit(r, 2300));
}

Test(sync_rollback, the_window_closes_once_and_asks_for_the_head)
{
    sync_rollback_sent(r);
    sync_rollback_done(r, 2000);
    cr_expect(sync_rollback_window_closed(r, 2300));
    cr_expect_not(sync_rollback_window_closed(r, 2400), "once");
    cr_expect(sync_rollback_accepts_commit(r, 2400));
}

Test(sync_rollback, a_refused_rollback_opens_no_window)
{
    sync_rollback_sent(r);
    sync_rollback_failed(r);
    cr_expect(sync_rollback_accepts_commit(r, 10));
    cr_expect_not(sync_rollback_window_closed(r, 10));
}
