/*  PeerManager's serving admission (pm_admit.h): the client table, the
 *  handshake, the rate limit, and what each request gets. */
#include <criterion/criterion.h>
#include <string.h>

#include "peer_test_util.h"
#include "pm_admit.h"

static const uint8_t GENESIS[ALYS_HASH_LEN] = {1, 2, 3};
static uint8_t s_other[ALYS_HASH_LEN] = {9};

typedef struct {
    alys_wire_msg_t m;
    Alys__Wire__Status st;
    Alys__Wire__GetBlocks gb;
    Alys__Wire__GetHeaders gh;
} msg_t;

static alys_wire_msg_t *status_msg(msg_t *x, const uint8_t *genesis, const char *node,
                                   const char *listen)
{
    x->m = (alys_wire_msg_t) ALYS__WIRE__WIRE_MSG__INIT;
    x->st = (Alys__Wire__Status) ALYS__WIRE__STATUS__INIT;
    x->st.genesis_hash.data = (uint8_t *) genesis;
    x->st.genesis_hash.len = ALYS_HASH_LEN;
    x->st.node_id = (char *) node;
    x->st.listen = (char *) listen;
    x->m.body_case = ALYS__WIRE__WIRE_MSG__BODY_STATUS;
    x->m.status = &x->st;
    return &x->m;
}

static alys_wire_msg_t *blocks_msg(msg_t *x, uint64_t start, uint32_t count)
{
    x->m = (alys_wire_msg_t) ALYS__WIRE__WIRE_MSG__INIT;
    x->gb = (Alys__Wire__GetBlocks) ALYS__WIRE__GET_BLOCKS__INIT;
    x->gb.start = start;
    x->gb.count = count;
    x->m.body_case = ALYS__WIRE__WIRE_MSG__BODY_GET_BLOCKS;
    x->m.get_blocks = &x->gb;
    return &x->m;
}

static alys_wire_msg_t *headers_msg(msg_t *x, uint64_t start, uint32_t count)
{
    x->m = (alys_wire_msg_t) ALYS__WIRE__WIRE_MSG__INIT;
    x->gh = (Alys__Wire__GetHeaders) ALYS__WIRE__GET_HEADERS__INIT;
    x->gh.start = start;
    x->gh.count = count;
    x->m.body_case = ALYS__WIRE__WIRE_MSG__BODY_GET_HEADERS;
    x->m.get_headers = &x->gh;
    return &x->m;
}

static pm_clients_t *s_clients;
static serve_limiter_t *s_limiter;
static peer_table_t *s_table;

static void setup(void)
{
    s_clients = pm_clients_new(4);
    s_limiter = serve_limiter_new(1000, 0);
    peer_table_config_t cfg;
    peer_table_config_defaults(&cfg);
    s_table = table_with(&cfg);
    cr_assert(s_clients && s_limiter);
}

static void teardown(void)
{
    pm_clients_destroy(&s_clients);
    serve_limiter_destroy(&s_limiter);
    peer_table_destroy(&s_table);
}

TestSuite(admit, .init = setup, .fini = teardown);

static pm_client_t *client(const char *id, int64_t now)
{
    pm_client_t *c = pm_clients_get(s_clients, (const uint8_t *) id, strlen(id), now);
    cr_assert_not_null(c);
    return c;
}

#define KA "a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0"
#define KB "b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0"

/* A client through the handshake (plaintext: no key on the link). */
static pm_client_t *shaken(const char *id, int64_t now)
{
    pm_client_t *c = client(id, now);
    msg_t x;
    alys_wire_msg_t *m = status_msg(&x, GENESIS, "nodeA", "alys://" KA "@10.0.0.1:1");
    cr_assert_eq(pm_admit(c, s_limiter, m, NULL, 100, true, now).what, PM_SERVE_STATUS);
    pm_serve_t s = pm_admit_status(c, m->status, true, GENESIS, s_table, T0, now);
    cr_assert_eq(s.what, PM_SERVE_STATUS);
    cr_expect(s.learn, "its listen endpoint may be dialled");
    cr_expect_eq(c->state, PM_CLIENT_OK);
    return c;
}

Test(admit, clients_are_found_again_and_the_oldest_is_recycled)
{
    pm_client_t *a = client("a", 1);
    cr_expect_eq(client("a", 2), a);
    client("b", 3);
    client("c", 4);
    client("d", 5);
    pm_client_t *e = client("e", 6); /* table of 4: "a" (seen at 2) goes */
    cr_expect_eq(e, a);
    cr_expect_eq(e->id_len, 1);
    cr_expect_eq(e->id[0], 'e');
    cr_expect_null(pm_clients_get(s_clients, (const uint8_t *) "", 0, 7), "empty id");
}

Test(admit, handshake_first)
{
    pm_client_t *c = client("a", 1);
    msg_t x;
    pm_serve_t s = pm_admit(c, s_limiter, blocks_msg(&x, 1, 10), NULL, 100, true, 1);
    cr_expect_eq(s.what, PM_SERVE_ERROR);
    cr_expect_eq(s.code, ALYS__WIRE__WIRE_ERROR__CODE__BAD_REQUEST);
    shaken("a", 2);
    cr_expect_eq(pm_admit(c, s_limiter, blocks_msg(&x, 1, 10), NULL, 100, true, 3).what,
                 PM_SERVE_RANGE);
}

Test(admit, wrong_genesis_is_refused_then_ignored_until_the_ttl)
{
    pm_client_t *c = client("a", 1);
    msg_t x;
    alys_wire_msg_t *m = status_msg(&x, s_other, "alien", "");
    pm_serve_t s = pm_admit_status(c, m->status, true, GENESIS, s_table, T0, 1);
    cr_expect_eq(s.what, PM_SERVE_ERROR);
    cr_expect_eq(s.code, ALYS__WIRE__WIRE_ERROR__CODE__WRONG_GENESIS);
    cr_expect(s.refused);
    cr_expect(pm_client_refused(c, 2));
    cr_expect_eq(pm_admit(c, s_limiter, m, NULL, 100, true, 2).what, PM_SERVE_NOTHING);
    cr_expect_eq(pm_admit(c, s_limiter, NULL, "junk", 100, true, 2).what, PM_SERVE_NOTHING);
    /* After the TTL it may try again. */
    int64_t later = 1 + PM_ADMIT_REFUSED_TTL_MS;
    cr_expect_not(pm_client_refused(c, later));
    cr_expect_eq(pm_admit(c, s_limiter, m, NULL, 100, true, later).what, PM_SERVE_STATUS);
}

Test(admit, no_status_of_ours_yet_is_unavailable)
{
    pm_client_t *c = client("a", 1);
    msg_t x;
    pm_serve_t s = pm_admit_status(c, status_msg(&x, GENESIS, "n", "")->status, false, GENESIS,
                                   s_table, T0, 1);
    cr_expect_eq(s.code, ALYS__WIRE__WIRE_ERROR__CODE__UNAVAILABLE);
    cr_expect_not(s.refused);
}

Test(admit, banned_node_is_refused_without_answer)
{
    cr_assert_eq(peer_table_add(s_table, "evil", "tcp://10.0.0.9:1", T0), PEER_OK);
    peer_action_t a = PEER_ACTION_NONE;
    peer_table_blame_now(s_table, "evil", PEER_OUTCOME_VIOLATION, "x", T0, &a);
    pm_client_t *c = client("a", 1);
    msg_t x;
    pm_serve_t s = pm_admit_status(c, status_msg(&x, GENESIS, "evil", "")->status, true, GENESIS,
                                   s_table, T0 + 1, 1);
    cr_expect_eq(s.what, PM_SERVE_NOTHING);
    cr_expect(s.refused);
    cr_expect_str_eq(c->reason, "banned");
}

Test(admit, ranges_are_checked_against_bounds_head_and_read_slots)
{
    pm_client_t *c = shaken("a", 1);
    msg_t x;
    cr_expect_eq(pm_admit(c, s_limiter, blocks_msg(&x, 0, 1), NULL, 100, true, 2).code,
                 ALYS__WIRE__WIRE_ERROR__CODE__BAD_REQUEST, "start 0");
    cr_expect_eq(
        pm_admit(c, s_limiter, blocks_msg(&x, 1, ALYS_WIRE_MAX_BLOCKS + 1), NULL, 100, true, 2).code,
        ALYS__WIRE__WIRE_ERROR__CODE__BAD_REQUEST);
    cr_expect_eq(
        pm_admit(c, s_limiter, headers_msg(&x, 1, ALYS_WIRE_MAX_BLOCKS + 1), NULL, 5000, true, 2).what,
        PM_SERVE_RANGE, "headers have their own bound");
    cr_expect_eq(pm_admit(c, s_limiter, blocks_msg(&x, 101, 1), NULL, 100, true, 2).code,
                 ALYS__WIRE__WIRE_ERROR__CODE__NOT_FOUND, "above our head");
    cr_expect_eq(pm_admit(c, s_limiter, blocks_msg(&x, 90, 50), NULL, 100, true, 2).what,
                 PM_SERVE_RANGE, "running past the head: a short answer, served");
    cr_expect_eq(pm_admit(c, s_limiter, blocks_msg(&x, 1, 1), NULL, 100, false, 2).code,
                 ALYS__WIRE__WIRE_ERROR__CODE__UNAVAILABLE, "no read slot");
}

Test(admit, a_located_get_headers_is_checked_for_its_count_only)
{
    pm_client_t *c = shaken("a", 1);
    msg_t x;
    uint8_t hash[ALYS_HASH_LEN] = {4};
    ProtobufCBinaryData loc[1] = {{ALYS_HASH_LEN, hash}};
    alys_wire_msg_t *m = headers_msg(&x, 0, 10);
    x.gh.n_locator = 1;
    x.gh.locator = loc;
    cr_expect_eq(pm_admit(c, s_limiter, m, NULL, 100, true, 2).what, PM_SERVE_RANGE,
                 "start is storage's to find");
    x.gh.start = 500;
    cr_expect_eq(pm_admit(c, s_limiter, m, NULL, 100, true, 2).what, PM_SERVE_RANGE,
                 "a start above our head is ignored");
    x.gh.count = 0;
    cr_expect_eq(pm_admit(c, s_limiter, m, NULL, 100, true, 2).code,
                 ALYS__WIRE__WIRE_ERROR__CODE__BAD_REQUEST, "count 0");
    x.gh.count = ALYS_WIRE_MAX_HEADERS + 1;
    cr_expect_eq(pm_admit(c, s_limiter, m, NULL, 100, true, 2).code,
                 ALYS__WIRE__WIRE_ERROR__CODE__BAD_REQUEST, "over the bound");
    x.gh.count = 10;
    cr_expect_eq(pm_admit(c, s_limiter, m, NULL, 100, false, 2).code,
                 ALYS__WIRE__WIRE_ERROR__CODE__UNAVAILABLE, "no read slot");
}

Test(admit, over_the_rate_limit_is_rate_limited_and_garbage_gets_no_answer)
{
    serve_limiter_destroy(&s_limiter);
    s_limiter = serve_limiter_new(1, 0); /* 1/s, burst 2 */
    pm_client_t *c = client("a", 1);
    msg_t x;
    alys_wire_msg_t *m = status_msg(&x, GENESIS, "n", "");
    cr_expect_eq(pm_admit(c, s_limiter, m, NULL, 100, true, 1).what, PM_SERVE_STATUS);
    cr_expect_eq(pm_admit(c, s_limiter, NULL, "junk", 100, true, 1).code,
                 ALYS__WIRE__WIRE_ERROR__CODE__BAD_REQUEST, "garbage within the limit");
    pm_serve_t s = pm_admit(c, s_limiter, m, NULL, 100, true, 1);
    cr_expect_eq(s.code, ALYS__WIRE__WIRE_ERROR__CODE__RATE_LIMITED);
    cr_expect_eq(pm_admit(c, s_limiter, NULL, "junk", 100, true, 1).what, PM_SERVE_NOTHING,
                 "a flood gets no answers");
}

Test(admit, other_requests)
{
    pm_client_t *c = shaken("a", 1);
    msg_t x;
    alys_wire_msg_t *m = blocks_msg(&x, 1, 1);
    m->body_case = ALYS__WIRE__WIRE_MSG__BODY_GET_PEERS;
    cr_expect_eq(pm_admit(c, s_limiter, m, NULL, 100, true, 2).what, PM_SERVE_PEERS);
    m->body_case = ALYS__WIRE__WIRE_MSG__BODY_NEW_BLOCK;
    cr_expect_eq(pm_admit(c, s_limiter, m, NULL, 100, true, 2).what, PM_SERVE_NEW_BLOCK);
    m->body_case = ALYS__WIRE__WIRE_MSG__BODY_BLOCKS;
    cr_expect_eq(pm_admit(c, s_limiter, m, NULL, 100, true, 2).what, PM_SERVE_NOTHING,
                 "a response has no business here");
}

/* ---- a CURVE link: the client is its key --------------------------------------------- */

Test(admit, on_a_keyed_link_the_client_is_its_key)
{
    pm_client_t *c = client("k", 1);
    pm_client_set_key(c, KA);
    msg_t x;
    pm_serve_t s = pm_admit_status(c, status_msg(&x, GENESIS, KA, "alys://" KA "@10.0.0.1:1")->status,
                                   true, GENESIS, s_table, T0, 1);
    cr_expect_eq(s.what, PM_SERVE_STATUS);
    cr_expect_not(s.violation);
    cr_expect_str_eq(c->node_id, KA);
    cr_expect(s.learn);
}

Test(admit, a_status_naming_another_key_is_a_violation)
{
    pm_client_t *c = client("k", 1);
    pm_client_set_key(c, KA);
    msg_t x;
    pm_serve_t s = pm_admit_status(c, status_msg(&x, GENESIS, KB, "")->status, true, GENESIS,
                                   s_table, T0, 1);
    cr_expect(s.violation);
    cr_expect(s.refused);
    cr_expect_eq(s.code, ALYS__WIRE__WIRE_ERROR__CODE__BAD_REQUEST);
    cr_expect_str_eq(c->node_id, KA, "still known by its key, not its claim");
}

Test(admit, a_listen_endpoint_with_another_key_is_a_violation)
{
    pm_client_t *c = client("k", 1);
    pm_client_set_key(c, KA);
    msg_t x;
    pm_serve_t s = pm_admit_status(c, status_msg(&x, GENESIS, KA, "alys://" KB "@10.0.0.1:1")->status,
                                   true, GENESIS, s_table, T0, 1);
    cr_expect(s.violation);
    cr_expect(s.refused);
}

Test(admit, a_banned_key_is_refused_whatever_its_status_says)
{
    cr_assert_eq(peer_table_add(s_table, KA, "", T0), PEER_OK);
    peer_action_t a = PEER_ACTION_NONE;
    peer_table_blame_now(s_table, KA, PEER_OUTCOME_VIOLATION, "x", T0, &a);
    pm_client_t *c = client("k", 1);
    pm_client_set_key(c, KA);
    msg_t x;
    pm_serve_t s = pm_admit_status(c, status_msg(&x, GENESIS, KA, "")->status, true, GENESIS,
                                   s_table, T0 + 1, 1);
    cr_expect(s.refused);
    cr_expect_str_eq(c->reason, "banned");
}

Test(admit, a_routing_id_back_with_another_key_is_a_new_client)
{
    pm_client_t *c = shaken("k", 1);
    pm_client_set_key(c, KA);
    c->state = PM_CLIENT_REFUSED;
    pm_client_set_key(c, KA);
    cr_expect_eq(c->state, PM_CLIENT_REFUSED, "same key: same client");
    pm_client_set_key(c, KB);
    cr_expect_eq(c->state, PM_CLIENT_NEW, "another key: starts over");
    cr_expect_str_eq(c->key, KB);
}
