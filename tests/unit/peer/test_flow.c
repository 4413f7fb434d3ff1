/*  test_flow.c: the shell's small decisions (pm_flow.h). */
#include "peer_test_util.h"
#include "pm_flow.h"

/* ---- PeerDiscovered ---------------------------------------------------------- */

Test(flow, discovered_on_first_ready)
{
    cr_assert(pm_flow_discover(true, true, 10, 10));
}

Test(flow, discovered_when_new_to_the_table)
{
    cr_assert(pm_flow_discover(false, false, 0, 10));
}

Test(flow, discovered_when_height_changes)
{
    cr_assert(pm_flow_discover(false, true, 10, 11));
}

Test(flow, not_discovered_again_at_same_height)
{
    cr_assert_not(pm_flow_discover(false, true, 10, 10));
}

/* ---- another genesis ----------------------------------------------------------- */

Test(flow, wrong_genesis_bans_the_endpoint_as_at_host_port)
{
    peer_table_t *t = table_with(NULL);
    char id[ALYS_WIRE_ID_MAX], why[PEER_REASON_MAX];
    cr_assert(pm_flow_wrong_genesis(t, "tcp://10.0.0.5:7000", "nodeB", T0, id, sizeof id, why,
                                    sizeof why));
    cr_assert_str_eq(id, "@10.0.0.5:7000");
    cr_assert_str_eq(why, "wrong genesis (node nodeB)");
    cr_assert(peer_table_is_banned(t, id, "tcp://10.0.0.5:7000", T0 + 1));
    cr_assert_not(peer_table_may_connect(t, id, T0 + 1));
    peer_table_destroy(&t);
}

Test(flow, wrong_genesis_without_node_id_says_so)
{
    peer_table_t *t = table_with(NULL);
    char id[ALYS_WIRE_ID_MAX], why[PEER_REASON_MAX];
    pm_flow_wrong_genesis(t, "tcp://h:1", NULL, T0, id, sizeof id, why, sizeof why);
    cr_assert_str_eq(why, "wrong genesis (node ?)");
    peer_table_destroy(&t);
}

Test(flow, wrong_genesis_of_a_known_entry_bans_it_once)
{
    peer_table_t *t = table_with(NULL);
    char id[ALYS_WIRE_ID_MAX], why[PEER_REASON_MAX];
    cr_assert_eq(peer_table_add(t, "@h:1", "tcp://h:1", T0), PEER_OK);
    cr_assert(pm_flow_wrong_genesis(t, "tcp://h:1", "x", T0, id, sizeof id, why, sizeof why));
    /* Already banned: no new ban to save or count. */
    cr_assert_not(pm_flow_wrong_genesis(t, "tcp://h:1", "x", T0 + 1, id, sizeof id, why, sizeof why));
    peer_table_destroy(&t);
}

/* ---- dropped ranges ---------------------------------------------------------------- */

static reorder_ref_t drop(reorder_drop_t why)
{
    reorder_ref_t d = {.request_id = 7, .start = 100, .count = 20, .why = why};
    snprintf(d.peer_id, sizeof d.peer_id, "p1");
    return d;
}

Test(flow, superseded_drop_is_not_reported)
{
    reorder_ref_t d = drop(REORDER_DROP_SUPERSEDED);
    Alys__Peer__BatchOutcome bo;
    cr_assert_not(pm_flow_drop_outcome(&d, &bo));
}

Test(flow, committed_drop_is_reported_committed)
{
    reorder_ref_t d = drop(REORDER_DROP_COMMITTED);
    Alys__Peer__BatchOutcome bo;
    cr_assert(pm_flow_drop_outcome(&d, &bo));
    cr_assert_eq(bo.request_id, 7);
    cr_assert_str_eq(bo.peer_id, "p1");
    cr_assert_eq(bo.start, 100);
    cr_assert_eq(bo.committed, 20);
    cr_assert_not(bo.failed);
    cr_assert_str_eq(bo.detail, "already committed");
}

Test(flow, other_drops_are_reported_failed_at_their_start)
{
    reorder_drop_t whys[] = {REORDER_DROP_AFTER_FAILURE, REORDER_DROP_EVICTED};
    for (size_t i = 0; i < 2; i++) {
        reorder_ref_t d = drop(whys[i]);
        Alys__Peer__BatchOutcome bo;
        cr_assert(pm_flow_drop_outcome(&d, &bo));
        cr_assert(bo.failed);
        cr_assert_eq(bo.failed_height, 100);
        cr_assert_eq(bo.committed, 0);
        cr_assert_str_eq(bo.reason, "dropped");
        cr_assert_str_eq(bo.detail, reorder_drop_name(whys[i]));
    }
}

/* ---- BlockProcessor refusals -------------------------------------------------------- */

Test(flow, bad_request_refuses_the_batch)
{
    cr_assert_not(pm_flow_bp_busy(ALYS_ERR_BAD_REQUEST));
}

Test(flow, every_other_error_is_busy)
{
    uint32_t codes[] = {0, ALYS_ERR_INTERNAL, ALYS_ERR_BAD_REQUEST + 1, 99};
    for (size_t i = 0; i < sizeof codes / sizeof *codes; i++)
        if (codes[i] != ALYS_ERR_BAD_REQUEST)
            cr_assert(pm_flow_bp_busy(codes[i]), "code %u", codes[i]);
}

/* ---- our head ----------------------------------------------------------------------- */

static Alys__Storage__Head head(bool genesis)
{
    static uint8_t g[ALYS_HASH_LEN];
    Alys__Storage__Head h = ALYS__STORAGE__HEAD__INIT;
    h.height = 5;
    if (genesis)
        h.genesis_hash = (ProtobufCBinaryData){ALYS_HASH_LEN, g};
    return h;
}

Test(flow, head_without_genesis_is_not_usable)
{
    Alys__Storage__Head h = head(false);
    cr_assert_eq(pm_flow_head(&h, 100, 0), PM_HEAD_NO_GENESIS);
}

Test(flow, head_asked_before_last_batch_processed_is_stale)
{
    Alys__Storage__Head h = head(true);
    cr_assert_eq(pm_flow_head(&h, 100, 101), PM_HEAD_STALE);
}

Test(flow, head_asked_at_or_after_last_batch_processed_moves)
{
    Alys__Storage__Head h = head(true);
    cr_assert_eq(pm_flow_head(&h, 100, 100), PM_HEAD_MOVED);
    cr_assert_eq(pm_flow_head(&h, 100, 50), PM_HEAD_MOVED);
}
