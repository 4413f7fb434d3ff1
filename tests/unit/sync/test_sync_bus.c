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

Test(sync_bus, a_block_refused_again_after_a_lower_failure_is_nothing)
{
    cr_expect_eq(sync_bus_refusal("dropped", "after_failure", 20, 10), SYNC_REFUSAL_REPEAT);
    cr_expect_eq(sync_bus_refusal("dropped", "", 20, 10), SYNC_REFUSAL_OURS);
    cr_expect_eq(sync_bus_refusal("state_root_mismatch", "", 20, 10), SYNC_REFUSAL_PEER_FAULT);
    cr_expect_eq(sync_bus_refusal(NULL, NULL, 20, 10), SYNC_REFUSAL_OURS);
}

Test(sync_bus, a_refused_fetch_is_nobodys_fault)
{
    cr_expect_eq(sync_bus_error_outcome(ALYS_ERR_BUSY), SYNC_OUTCOME_BUSY);
    cr_expect_eq(sync_bus_error_outcome(ALYS_ERR_BAD_REQUEST), SYNC_OUTCOME_NO_PEER);
    cr_expect_eq(sync_bus_error_outcome(0), SYNC_OUTCOME_NO_PEER);
}

Test(sync_bus, storage_heads_reset_the_machine_only_when_first_or_gone_back)
{
    cr_expect(sync_bus_head_resets(false, 100, 0), "the first head");
    cr_expect(sync_bus_head_resets(true, 90, 100), "storage went back");
    cr_expect_not(sync_bus_head_resets(true, 100, 100));
    cr_expect(sync_bus_head_resets(true, 100, UINT64_MAX), "the answer to our Rollback: the truth");
    cr_expect_not(sync_bus_head_resets(true, 150, 100), "a commit report");
}

Test(sync_bus, head_advanced_details_parse)
{
    char detail[128] = "height=42 hash=";
    for (int i = 0; i < ALYS_HASH_LEN; i++)
        strcat(detail, "ab");
    uint64_t h = 0;
    alys_hash_t hash;
    cr_assert(sync_bus_parse_head_advanced(detail, &h, hash));
    cr_expect_eq(h, 42);
    cr_expect_eq(hash[0], 0xab);
    cr_expect_not(sync_bus_parse_head_advanced("height=42 hash=zz", &h, hash));
    cr_expect_not(sync_bus_parse_head_advanced("", &h, hash));
    cr_expect_not(sync_bus_parse_head_advanced(NULL, &h, hash));
}

Test(sync_bus, checkpoints_passed_count_the_interval_multiples)
{
    cr_expect_eq(sync_bus_checkpoints_passed(100, 100, 100), 0);
    cr_expect_eq(sync_bus_checkpoints_passed(100, 50, 100), 0);
    cr_expect_eq(sync_bus_checkpoints_passed(100, 400, 100), 3);
    cr_expect_eq(sync_bus_checkpoints_passed(100, 150, 100), 1, "at least one");
    cr_expect_eq(sync_bus_checkpoints_passed(0, 7, 0), 7, "interval 0 counts as 1");
}

Test(sync_bus, the_checkpoint_at_a_height_needs_a_full_hash)
{
    uint8_t hash[ALYS_HASH_LEN] = {1};
    Alys__Chain__BlockCheckpoint a = ALYS__CHAIN__BLOCK_CHECKPOINT__INIT;
    Alys__Chain__BlockCheckpoint b = ALYS__CHAIN__BLOCK_CHECKPOINT__INIT;
    a.height = 100;
    a.hash.data = hash;
    a.hash.len = ALYS_HASH_LEN;
    b.height = 200;
    b.hash.data = hash;
    b.hash.len = 3;
    Alys__Chain__BlockCheckpoint *list[] = {&a, &b};
    Alys__Storage__Checkpoints cps = ALYS__STORAGE__CHECKPOINTS__INIT;
    cps.n_checkpoints = 2;
    cps.checkpoints = list;
    cr_expect_eq(sync_bus_find_checkpoint(&cps, 100), &a);
    cr_expect_null(sync_bus_find_checkpoint(&cps, 200), "short hash");
    cr_expect_null(sync_bus_find_checkpoint(&cps, 300));
}
