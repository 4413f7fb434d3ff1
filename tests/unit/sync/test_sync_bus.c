/*  test_sync_bus.c: the translations between messages and the machine
 *  (sync_bus.h). */
#include <criterion/criterion.h>
#include <string.h>

#include "sync_bus.h"

Test(sync_bus, monotonic_times_become_unix_times)
{
    cr_expect_eq(sync_bus_unix(0, 5000, 1700000000000ULL), 0, "0 stays none");
    cr_expect_eq(sync_bus_unix(4000, 5000, 1700000000000ULL), 1699999999000ULL);
    cr_expect_eq(sync_bus_unix(6000, 5000, 1700000000000ULL), 1700000001000ULL);
    cr_expect_eq(sync_bus_unix(1, 5000, 10), 0, "never negative");
}

Test(sync_bus, unknown_outcomes_blame_nobody)
{
    cr_expect_eq(sync_bus_outcome(0), SYNC_OUTCOME_OK);
    cr_expect_eq(sync_bus_outcome(2), SYNC_OUTCOME_INVALID);
    cr_expect_eq(sync_bus_outcome(6), SYNC_OUTCOME_BUSY);
    cr_expect_eq(sync_bus_outcome(99), SYNC_OUTCOME_NO_PEER);
}

Test(sync_bus, block_refusals_are_the_peers_fault_only_for_its_content)
{
    cr_expect(sync_bus_reason_is_peer_fault("bad_tx_signature", 10, 10));
    cr_expect(sync_bus_reason_is_peer_fault("parent_mismatch", 11, 10), "inside its range");
    cr_expect_not(sync_bus_reason_is_peer_fault("parent_mismatch", 10, 10), "at its first block");
    cr_expect_not(sync_bus_reason_is_peer_fault("storage_error", 12, 10));
    cr_expect_not(sync_bus_reason_is_peer_fault("", 12, 10));
    cr_expect_not(sync_bus_reason_is_peer_fault(NULL, 12, 10));
}

Test(sync_bus, the_progress_line_keeps_its_fields)
{
    sync_progress_t p;
    memset(&p, 0, sizeof p);
    p.state = SYNC_SYNCED;
    p.current_height = 12;
    p.target_height = 12;
    char line[400];
    sync_bus_progress_line(&p, line, sizeof line);
    cr_expect(strstr(line, "state=Synced height=12 target=12 ") == line, "%s", line);
    cr_expect_not_null(strstr(line, "can_produce=false paused=false"));
}
