/*  PeerManager's verdicts (pm_judge.h): handshakes, answers to GetHeaders
 *  and GetBlocks (what the peer's record gets and what SyncActor hears),
 *  BlockProcessor's refusals and SyncActor's penalties. */
#include "peer.pb-c.h"
#include "pm_judge.h"
#include "test_net_util.h"

static chain_fx_t s_fx;

static void setup(void)
{
    chain_fx_make(&s_fx, 8, 1);
}
static void teardown(void)
{
    chain_fx_free(&s_fx);
}

TestSuite(judge, .init = setup, .fini = teardown);

static Alys__Wire__Status status(const uint8_t *genesis, const char *node, const char *listen)
{
    Alys__Wire__Status st = ALYS__WIRE__STATUS__INIT;
    st.genesis_hash = (ProtobufCBinaryData){ALYS_HASH_LEN, (uint8_t *) genesis};
    st.node_id = (char *) node;
    st.listen = (char *) listen;
    return st;
}

#define KP "5151515151515151515151515151515151515151515151515151515151515151"
#define KM "7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e"
#define KX "0101010101010101010101010101010101010101010101010101010101010101"

Test(judge, handshake)
{
    uint8_t ours[ALYS_HASH_LEN] = {7}, other[ALYS_HASH_LEN] = {8};
    Alys__Wire__Status st = status(ours, KP, "alys://" KP "@10.0.0.1:1");
    cr_expect_eq(pm_judge_status(&st, ours, KM, KP), PM_HS_OK);
    st = status(other, KP, "");
    cr_expect_eq(pm_judge_status(&st, ours, KM, KP), PM_HS_WRONG_GENESIS);
    st = status(ours, KM, "alys://" KM "@10.0.0.9:9");
    cr_expect_eq(pm_judge_status(&st, ours, KM, KM), PM_HS_SELF, "our own key");
    st = status(ours, "bad id", "");
    cr_expect_eq(pm_judge_status(&st, ours, KM, NULL), PM_HS_BAD_ID);
    st = status(ours, NULL, "");
    cr_expect_eq(pm_judge_status(&st, ours, KM, KP), PM_HS_BAD_ID);
}

Test(judge, a_status_is_judged_against_the_key_of_the_link)
{
    uint8_t ours[ALYS_HASH_LEN] = {7};
    Alys__Wire__Status st = status(ours, KX, "");
    cr_expect_eq(pm_judge_status(&st, ours, KM, KP), PM_HS_WRONG_KEY, "another node id");
    st = status(ours, "peer1", "");
    cr_expect_eq(pm_judge_status(&st, ours, KM, KP), PM_HS_WRONG_KEY, "a name, not its key");
    st = status(ours, KP, "alys://" KX "@10.0.0.1:1");
    cr_expect_eq(pm_judge_status(&st, ours, KM, KP), PM_HS_WRONG_KEY, "a listen with another key");
    st = status(ours, KP, "tcp://10.0.0.1:1");
    cr_expect_eq(pm_judge_status(&st, ours, KM, KP), PM_HS_OK, "a keyless listen is not a claim");
    st = status(ours, "peer1", "");
    cr_expect_eq(pm_judge_status(&st, ours, KM, NULL), PM_HS_OK,
                 "no key known: nothing to contradict");
}

static Alys__Wire__Headers headers(uint64_t start, size_t n, bool truncated)
{
    Alys__Wire__Headers h = ALYS__WIRE__HEADERS__INIT;
    h.start = start;
    h.n_headers = n;
    h.headers = &s_fx.headers[start - 1];
    h.truncated = truncated;
    return h;
}

Test(judge, headers_short_still_carry_their_data)
{
    Alys__Wire__Headers h = headers(1, 4, false);
    pm_verdict_t v = pm_judge_headers(1, 4, &h);
    cr_expect_eq(v.kind, PEER_OUTCOME_OK);
    cr_expect(v.data);
    h = headers(1, 2, false);
    v = pm_judge_headers(1, 4, &h);
    cr_expect_eq(v.kind, PEER_OUTCOME_SHORT);
    cr_expect_eq(v.report, ALYS__PEER__OUTCOME__SHORT);
    cr_expect(v.data, "SyncActor verifies what it got");
    h = headers(2, 2, false);
    v = pm_judge_headers(1, 4, &h);
    cr_expect_eq(v.kind, PEER_OUTCOME_VIOLATION, "wrong start");
    cr_expect_not(v.data);
}

static Alys__Wire__Blocks blocks(uint64_t start, size_t n, bool truncated)
{
    Alys__Wire__Blocks b = ALYS__WIRE__BLOCKS__INIT;
    b.start = start;
    b.n_blocks = n;
    b.blocks = &s_fx.blocks[start - 1];
    b.truncated = truncated;
    return b;
}

Test(judge, blocks_ok_partial_short_and_invalid)
{
    const uint8_t(*exp)[ALYS_HASH_LEN] = (const uint8_t(*)[ALYS_HASH_LEN]) s_fx.hash;
    Alys__Wire__Blocks b = blocks(1, 4, false);
    pm_verdict_t v = pm_judge_blocks(1, 4, exp, &b);
    cr_expect_eq(v.kind, PEER_OUTCOME_OK);
    cr_expect_eq(pm_judge_fetch_report(&v, ALYS__PEER__OUTCOME__OK), ALYS__PEER__OUTCOME__OK);
    /* Truncated at the frame limit: not penalised, but SyncActor fetches the rest. */
    b = blocks(1, 2, true);
    v = pm_judge_blocks(1, 4, exp, &b);
    cr_expect_eq(v.kind, PEER_OUTCOME_OK);
    cr_expect(v.partial);
    cr_expect_eq(pm_judge_fetch_report(&v, ALYS__PEER__OUTCOME__OK), ALYS__PEER__OUTCOME__SHORT);
    /* Short without reason: its record says so, its blocks still go. */
    b = blocks(1, 2, false);
    v = pm_judge_blocks(1, 4, exp, &b);
    cr_expect_eq(v.kind, PEER_OUTCOME_SHORT);
    cr_expect(v.data);
    cr_expect_eq(pm_judge_fetch_report(&v, ALYS__PEER__OUTCOME__OK), ALYS__PEER__OUTCOME__SHORT);
    cr_expect_eq(pm_judge_fetch_report(&v, ALYS__PEER__OUTCOME__BUSY), ALYS__PEER__OUTCOME__BUSY,
                 "the reorder buffer was full");
    /* A body that is not the verified header's: invalid, nothing delivered. */
    uint8_t wrong[8][ALYS_HASH_LEN];
    memcpy(wrong, s_fx.hash, sizeof wrong);
    wrong[1][0] ^= 1;
    b = blocks(1, 4, false);
    v = pm_judge_blocks(1, 4, (const uint8_t(*)[ALYS_HASH_LEN]) wrong, &b);
    cr_expect_eq(v.kind, PEER_OUTCOME_INVALID);
    cr_expect_not(v.data);
    cr_expect_eq(pm_judge_fetch_report(&v, ALYS__PEER__OUTCOME__OK), ALYS__PEER__OUTCOME__INVALID);
}

/* Issue 7: a sound block that does not match the header hash SyncActor got
 * from another peer is a conflict (a suspect), not this peer's lie; a block
 * wrong in itself still is. */
Test(judge, a_body_that_only_mismatches_its_header_is_a_conflict)
{
    uint8_t wrong[8][ALYS_HASH_LEN];
    memcpy(wrong, s_fx.hash, sizeof wrong);
    wrong[1][0] ^= 1;
    Alys__Wire__Blocks b = blocks(1, 4, false);
    pm_verdict_t v = pm_judge_blocks(1, 4, (const uint8_t(*)[ALYS_HASH_LEN]) wrong, &b);
    cr_expect_eq(v.report, ALYS__PEER__OUTCOME__INVALID, "SyncActor fetches it elsewhere");
    cr_expect(v.conflict);
    /* Blocks at the wrong heights: wrong in themselves, charged. */
    b = blocks(2, 4, false);
    b.start = 1;
    v = pm_judge_blocks(1, 4, (const uint8_t(*)[ALYS_HASH_LEN]) wrong, &b);
    cr_expect_eq(v.kind, PEER_OUTCOME_INVALID);
    cr_expect_not(v.conflict);
    /* No expected hashes: nothing to conflict with. */
    v = pm_judge_blocks(1, 4, NULL, &b);
    cr_expect_not(v.conflict);
}

Test(judge, refusals_suspect_the_server_only_for_its_own_faults)
{
    pm_refusal_t r = pm_judge_refusal("bad_tx_signature", 5, 1);
    cr_expect(r.content_fault);
    cr_expect(r.suspect);
    r = pm_judge_refusal("parent_mismatch", 5, 1);
    cr_expect_not(r.content_fault);
    cr_expect(r.suspect, "inside its range: the block's own");
    r = pm_judge_refusal("parent_mismatch", 1, 1);
    cr_expect_not(r.suspect, "at the range's start: the previous batch's");
    r = pm_judge_refusal("future_slot", 5, 1);
    cr_expect_not(r.suspect, "our clock");
    r = pm_judge_refusal(NULL, 5, 1);
    cr_expect_not(r.suspect);
}

Test(judge, penalties_from_sync)
{
    peer_outcome_kind_t k = PEER_OUTCOME_OK;
    cr_expect_not(pm_judge_penalty(ALYS__PEER__OUTCOME__OK, &k));
    cr_expect_not(pm_judge_penalty(ALYS__PEER__OUTCOME__NO_PEER, &k));
    cr_expect_not(pm_judge_penalty(ALYS__PEER__OUTCOME__BUSY, &k));
    cr_expect(pm_judge_penalty(ALYS__PEER__OUTCOME__TIMEOUT, &k));
    cr_expect_eq(k, PEER_OUTCOME_TIMEOUT);
    cr_expect(pm_judge_penalty(ALYS__PEER__OUTCOME__VIOLATION, &k));
    cr_expect_eq(k, PEER_OUTCOME_VIOLATION);
}
