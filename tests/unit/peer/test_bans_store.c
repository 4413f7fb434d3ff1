/*  When PeerManager loads and saves its bans (pm_bans.h). */
#include <criterion/criterion.h>

#include "pm_bans.h"

Test(bans_store, load_once_first_and_retry_a_failed_load)
{
    pm_bans_t b = {0};
    cr_expect_eq(pm_bans_next(&b, 0), PM_BANS_LOAD);
    pm_bans_sent(&b, PM_BANS_LOAD);
    cr_expect_eq(pm_bans_next(&b, 0), PM_BANS_NOTHING, "one load in flight");
    pm_bans_loaded(&b, false, 0, 0);
    cr_expect_not(b.loaded);
    cr_expect_eq(pm_bans_next(&b, 0), PM_BANS_LOAD, "retried");
    pm_bans_sent(&b, PM_BANS_LOAD);
    pm_bans_loaded(&b, true, 3, 3);
    cr_expect(b.loaded);
    cr_expect_eq(pm_bans_next(&b, 3), PM_BANS_NOTHING, "nothing new to save");
}

Test(bans_store, a_load_that_fails_to_send_is_asked_again)
{
    pm_bans_t b = {0};
    cr_expect_eq(pm_bans_next(&b, 0), PM_BANS_LOAD);
    /* not sent: no pm_bans_sent */
    cr_expect_eq(pm_bans_next(&b, 0), PM_BANS_LOAD);
}

Test(bans_store, bans_made_before_the_load_are_saved_with_it)
{
    pm_bans_t b = {0};
    pm_bans_sent(&b, PM_BANS_LOAD);
    pm_bans_loaded(&b, true, 2, 3);
    cr_expect_eq(pm_bans_next(&b, 3), PM_BANS_SAVE);
}

Test(bans_store, save_on_change_one_at_a_time_and_retry_a_failure)
{
    pm_bans_t b = {0};
    pm_bans_sent(&b, PM_BANS_LOAD);
    pm_bans_loaded(&b, true, 0, 0);
    pm_bans_changed(&b);
    cr_expect_eq(pm_bans_next(&b, 1), PM_BANS_SAVE);
    pm_bans_sent(&b, PM_BANS_SAVE);
    pm_bans_changed(&b);
    cr_expect_eq(pm_bans_next(&b, 2), PM_BANS_NOTHING, "one save in flight");
    pm_bans_saved(&b, false, 1);
    cr_expect_eq(pm_bans_next(&b, 2), PM_BANS_SAVE, "failed: again");
    pm_bans_sent(&b, PM_BANS_SAVE);
    pm_bans_saved(&b, true, 2);
    cr_expect_eq(pm_bans_next(&b, 2), PM_BANS_NOTHING);
}

Test(bans_store, expired_bans_change_the_stored_list)
{
    pm_bans_t b = {0};
    pm_bans_sent(&b, PM_BANS_LOAD);
    pm_bans_loaded(&b, true, 2, 2);
    cr_expect_eq(pm_bans_next(&b, 1), PM_BANS_SAVE, "one ran out");
}
