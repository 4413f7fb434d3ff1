/*  test_pm_tx.c: transactions through the PeerManager core (pm_tx.c), driven
 *  through the fake port: a client's SubmitTx goes to StorageActor's mempool,
 *  the answer comes back per tx, what the pool admitted is relayed to the
 *  ready peer (not to the one it came from), what it saw is not forwarded
 *  again, a client over its tx budget is answered RATE_LIMITED, and a bus
 *  SubmitTx is answered on the mailbox. */
#include <criterion/criterion.h>
#include <string.h>

#include "chain/mempool_tx.h"
#include "pm.h"
#include "pm_fake_port.h"

#define WALL0 1700000000000ull

typedef struct {
    alys_config_t cfg;
    alys_metrics_t *metrics;
    fake_t fake;
    pm_t *pm;
    uint8_t genesis[ALYS_HASH_LEN];
    uint8_t head_hash[ALYS_HASH_LEN];
    size_t bus_replies;
    char bus_result[32];
    int last_body;     /* alys_env_t body_case of the last mailbox reply */
    int last_peer_msg; /* its PeerMsg case, when a PeerMsg */
    uint64_t last_corr;
    uint64_t epoch; /* the fake pool's epoch */
} h_t;

/* The peer we dial: its endpoint carries this key, which is its id. */
#define PEER_KEY "a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1"

static h_t *H;

static void at(int64_t mono)
{
    pm_core_clock(H->pm, WALL0 + (uint64_t) mono, mono);
}

static int fake_mailbox_reply(void *ctx, const uint8_t *route, size_t route_len, uint64_t corr_id,
                              alys_env_t *rep)
{
    (void) ctx, (void) route, (void) route_len;
    H->bus_replies++;
    H->last_body = rep->body_case;
    H->last_peer_msg = rep->body_case == ALYS__BUS__ENVELOPE__BODY_PEER ? (int) rep->peer->msg_case
                                                                        : -1;
    H->last_corr = corr_id;
    if (rep->body_case == ALYS__BUS__ENVELOPE__BODY_MEMPOOL &&
        rep->mempool->submit_tx_reply->n_results > 0)
        snprintf(H->bus_result, sizeof H->bus_result, "%s",
                 rep->mempool->submit_tx_reply->results[0]);
    return 0;
}

static void setup(void)
{
    H = calloc(1, sizeof *H);
    cr_assert_not_null(H);
    alys_config_defaults(&H->cfg);
    snprintf(H->cfg.node_name, sizeof H->cfg.node_name, "us");
    snprintf(H->cfg.listen, sizeof H->cfg.listen, "tcp://127.0.0.1:30300");
    snprintf(H->cfg.bootstrap_peers[0], sizeof H->cfg.bootstrap_peers[0],
             "alys://" PEER_KEY "@10.0.0.2:30300");
    H->cfg.bootstrap_peer_count = 1;
    H->cfg.tx_gossip_rate = 2; /* bursts of 4 messages */
    H->epoch = 1;
    memset(H->genesis, 0x11, ALYS_HASH_LEN);
    memset(H->head_hash, 0x22, ALYS_HASH_LEN);
    H->metrics = alys_metrics_new();
    pm_port_t port = fake_port(&H->fake);
    port.mailbox_reply = fake_mailbox_reply;
    char err[128];
    H->pm = pm_core_new(&H->cfg, H->metrics, &port, err, sizeof err);
    cr_assert_not_null(H->pm, "%s", err);
    at(1000);
}

static void teardown(void)
{
    pm_core_destroy(&H->pm);
    fake_clear(&H->fake);
    alys_metrics_destroy(&H->metrics);
    free(H);
}

TestSuite(pm_tx, .init = setup, .fini = teardown);

/* ---- storage ---- */

static void reply(uint64_t corr_id, alys_env_t *env)
{
    env->reply = true;
    env->corr_id = corr_id;
    pm_core_on_storage(H->pm, env);
}

static alys_env_t *next_storage(void)
{
    return fake_next_bus(&H->fake, PM_TO_STORAGE);
}

static void started(void)
{
    pm_core_start(H->pm);
    alys_env_t *head = next_storage(), *bans = next_storage(), *book = next_storage();
    cr_assert(head && bans && book);
    Alys__Storage__Head h = ALYS__STORAGE__HEAD__INIT;
    h.height = 10;
    h.hash = (ProtobufCBinaryData){ALYS_HASH_LEN, H->head_hash};
    h.genesis_hash = (ProtobufCBinaryData){ALYS_HASH_LEN, H->genesis};
    Alys__Storage__StorageMsg m = ALYS__STORAGE__STORAGE_MSG__INIT;
    m.msg_case = ALYS__STORAGE__STORAGE_MSG__MSG_HEAD;
    m.head = &h;
    alys_env_t e = ALYS__BUS__ENVELOPE__INIT;
    e.body_case = ALYS__BUS__ENVELOPE__BODY_STORAGE;
    e.storage = &m;
    reply(head->corr_id, &e);
    Alys__Storage__PeerBans b = ALYS__STORAGE__PEER_BANS__INIT;
    Alys__Storage__StorageMsg mb = ALYS__STORAGE__STORAGE_MSG__INIT;
    mb.msg_case = ALYS__STORAGE__STORAGE_MSG__MSG_PEER_BANS;
    mb.peer_bans = &b;
    e.storage = &mb;
    reply(bans->corr_id, &e);
    /* An empty address book (pm_book_store): dialling starts after it. */
    Alys__Storage__AddrBook ab = ALYS__STORAGE__ADDR_BOOK__INIT;
    Alys__Storage__StorageMsg mk = ALYS__STORAGE__STORAGE_MSG__INIT;
    mk.msg_case = ALYS__STORAGE__STORAGE_MSG__MSG_ADDR_BOOK;
    mk.addr_book = &ab;
    e.storage = &mk;
    reply(book->corr_id, &e);
    alys_env_free(&head);
    alys_env_free(&bans);
    alys_env_free(&book);
}

/* The mempool's answer to a forwarded SubmitTx: results[i] per tx. */
static void pool_answers(const alys_env_t *req, const char *const *results)
{
    cr_assert_eq(req->body_case, ALYS__BUS__ENVELOPE__BODY_MEMPOOL);
    cr_assert_eq(req->mempool->msg_case, ALYS__MEMPOOL__MEMPOOL_MSG__MSG_SUBMIT_TX);
    Alys__Mempool__SubmitTxReply r = ALYS__MEMPOOL__SUBMIT_TX_REPLY__INIT;
    r.n_results = req->mempool->submit_tx->n_txs;
    r.results = (char **) results;
    r.pool_epoch = H->epoch;
    Alys__Mempool__MempoolMsg m = ALYS__MEMPOOL__MEMPOOL_MSG__INIT;
    m.msg_case = ALYS__MEMPOOL__MEMPOOL_MSG__MSG_SUBMIT_TX_REPLY;
    m.submit_tx_reply = &r;
    alys_env_t e = ALYS__BUS__ENVELOPE__INIT;
    e.body_case = ALYS__BUS__ENVELOPE__BODY_MEMPOOL;
    e.mempool = &m;
    reply(req->corr_id, &e);
}

/* ---- a ready peer, a handshaked client ---- */

static int ready_peer(void)
{
    pm_core_tick_fast(H->pm);
    int slot = -1;
    alys_wire_msg_t *m;
    uint64_t probe = 0;
    while ((m = fake_next_wire(&H->fake, OUT_PEER, &slot))) {
        bool status = m->body_case == ALYS__WIRE__WIRE_MSG__BODY_STATUS;
        probe = m->request_id;
        alys_wire_free(&m);
        if (status)
            break;
    }
    cr_assert_geq(slot, 0);
    Alys__Wire__Status st = ALYS__WIRE__STATUS__INIT;
    st.protocol_version = ALYS_WIRE_PROTOCOL_VERSION;
    st.genesis_hash = (ProtobufCBinaryData){ALYS_HASH_LEN, H->genesis};
    st.head_height = 10;
    st.head_hash = (ProtobufCBinaryData){ALYS_HASH_LEN, H->head_hash};
    st.node_id = PEER_KEY;
    alys_wire_msg_t r = ALYS__WIRE__WIRE_MSG__INIT;
    r.request_id = probe;
    r.body_case = ALYS__WIRE__WIRE_MSG__BODY_STATUS;
    r.status = &st;
    zframe_t *f = alys_wire_encode(&r);
    pm_core_on_peer_frame(H->pm, slot, zframe_data(f), zframe_size(f), 1);
    zframe_destroy(&f);
    return slot;
}

static void client_frame(const char *id, const alys_wire_msg_t *m)
{
    zframe_t *f = alys_wire_encode(m);
    cr_assert_not_null(f);
    pm_core_on_client_frame(H->pm, (const uint8_t *) id, strlen(id), "127.0.0.1", NULL,
                            zframe_data(f), zframe_size(f));
    zframe_destroy(&f);
}

static void handshake(const char *id, const char *node_id)
{
    Alys__Wire__Status st = ALYS__WIRE__STATUS__INIT;
    st.protocol_version = ALYS_WIRE_PROTOCOL_VERSION;
    st.genesis_hash = (ProtobufCBinaryData){ALYS_HASH_LEN, H->genesis};
    st.node_id = (char *) node_id;
    alys_wire_msg_t m = ALYS__WIRE__WIRE_MSG__INIT;
    m.request_id = 1;
    m.body_case = ALYS__WIRE__WIRE_MSG__BODY_STATUS;
    m.status = &st;
    client_frame(id, &m);
    alys_wire_msg_t *r = fake_next_wire(&H->fake, OUT_CLIENT, NULL);
    cr_assert(r && r->body_case == ALYS__WIRE__WIRE_MSG__BODY_STATUS);
    alys_wire_free(&r);
}

/* n distinct (well-formed, unsigned: the fake pool does not check) txs. */
static void submit_wire(const char *id, uint64_t request_id, int first, int n)
{
    static uint8_t bufs[8][ALYS_TX_MAX_BYTES];
    ProtobufCBinaryData items[8];
    for (int i = 0; i < n; i++) {
        alys_tx_t tx;
        memset(&tx, 0, sizeof tx);
        tx.from[0] = 1;
        tx.nonce = (uint64_t) (first + i);
        tx.amount = 1;
        items[i] = (ProtobufCBinaryData){alys_tx_encode(&tx, bufs[i]), bufs[i]};
    }
    Alys__Wire__SubmitTx st = ALYS__WIRE__SUBMIT_TX__INIT;
    st.n_txs = (size_t) n;
    st.txs = items;
    alys_wire_msg_t m = ALYS__WIRE__WIRE_MSG__INIT;
    m.request_id = request_id;
    m.body_case = ALYS__WIRE__WIRE_MSG__BODY_SUBMIT_TX;
    m.submit_tx = &st;
    client_frame(id, &m);
}

static size_t relayed_to(int slot)
{
    size_t n = 0;
    int s = -1;
    alys_wire_msg_t *m;
    while ((m = fake_next_wire(&H->fake, OUT_PEER, &s))) {
        if (s == slot && m->body_case == ALYS__WIRE__WIRE_MSG__BODY_SUBMIT_TX) {
            cr_assert_eq(m->request_id, 0, "gossip asks no answer");
            n += m->submit_tx->n_txs;
        }
        alys_wire_free(&m);
    }
    return n;
}

/* Client "c1" submits one tx (request 7) and the pool admits it. */
static void admitted_from_client(void)
{
    handshake("c1", "client");
    submit_wire("c1", 7, 0, 1);
    alys_env_t *req = next_storage();
    const char *added[1] = {"added"};
    pool_answers(req, added);
    alys_env_free(&req);
}

/* ---- tests ---- */

Test(pm_tx, a_client_submission_is_answered_per_tx_and_admitted_txs_are_relayed)
{
    started();
    int slot = ready_peer();
    handshake("c1", "client");
    submit_wire("c1", 7, 0, 2);
    alys_env_t *req = next_storage();
    cr_assert_not_null(req, "forwarded to the mempool");
    cr_assert_eq(req->mempool->submit_tx->n_txs, 2);
    const char *results[2] = {"added", "nonce_gap"};
    pool_answers(req, results);
    alys_env_free(&req);
    alys_wire_msg_t *r = fake_next_wire(&H->fake, OUT_CLIENT, NULL);
    cr_assert(r && r->body_case == ALYS__WIRE__WIRE_MSG__BODY_TX_RESULTS);
    cr_assert_eq(r->request_id, 7);
    cr_assert_eq(r->tx_results->n_results, 2);
    cr_assert_str_eq(r->tx_results->results[0], "added");
    cr_assert_str_eq(r->tx_results->results[1], "nonce_gap");
    alys_wire_free(&r);
    pm_core_tick_fast(H->pm);
    cr_assert_eq(relayed_to(slot), 1, "only the admitted tx is relayed");
    pm_core_tick_fast(H->pm);
    cr_assert_eq(relayed_to(slot), 0, "once");
}

Test(pm_tx, txs_admitted_while_no_peer_is_ready_wait_for_the_first_peer)
{
    started();
    admitted_from_client();
    pm_core_tick_fast(H->pm); /* a flush with no peer ready */
    pm_core_tick_fast(H->pm);
    int slot = ready_peer();
    pm_core_tick_fast(H->pm);
    cr_assert_eq(relayed_to(slot), 1, "the tx waited for the peer");
    pm_core_tick_fast(H->pm);
    cr_assert_eq(relayed_to(slot), 0, "once");
}

Test(pm_tx, a_tx_already_admitted_is_not_forwarded_again)
{
    started();
    admitted_from_client();
    fake_clear(&H->fake);
    submit_wire("c1", 8, 0, 1);
    cr_assert_null(next_storage(), "seen: the mempool is not asked again");
    alys_wire_msg_t *r = fake_next_wire(&H->fake, OUT_CLIENT, NULL);
    cr_assert_not_null(r);
    cr_assert_str_eq(r->tx_results->results[0], "seen");
    alys_wire_free(&r);
}

Test(pm_tx, txs_are_not_relayed_back_to_the_peer_they_came_from)
{
    started();
    int slot = ready_peer();
    handshake("peerA-route", PEER_KEY);  /* the peer also dials us */
    submit_wire("peerA-route", 0, 0, 1); /* gossip: no answer wanted */
    alys_env_t *req = next_storage();
    const char *added[1] = {"added"};
    pool_answers(req, added);
    alys_env_free(&req);
    cr_assert_null(fake_next_wire(&H->fake, OUT_CLIENT, NULL), "gossip gets no answer");
    pm_core_tick_fast(H->pm);
    cr_assert_eq(relayed_to(slot), 0);
}

Test(pm_tx, a_client_over_its_tx_budget_is_rate_limited)
{
    started();
    handshake("c1", "client");
    size_t limited = 0;
    for (int i = 0; i < 10; i++) {
        submit_wire("c1", 10 + (uint64_t) i, 10 * i, 1);
        alys_wire_msg_t *r = fake_next_wire(&H->fake, OUT_CLIENT, NULL);
        if (r && r->body_case == ALYS__WIRE__WIRE_MSG__BODY_ERROR &&
            r->error->code == ALYS__WIRE__WIRE_ERROR__CODE__RATE_LIMITED)
            limited++;
        alys_wire_free(&r);
    }
    cr_assert_eq(limited, 6, "a burst of 2 x gossip_rate = 4 messages, then refused");
    cr_assert_eq(alys_metric_value(H->metrics, "alys_tx_gossip_dropped_total",
                                   "reason=\"rate_limited\""),
                 6);
}

Test(pm_tx, storage_silence_answers_unavailable)
{
    started();
    handshake("c1", "client");
    submit_wire("c1", 7, 0, 1);
    alys_env_t *req = next_storage();
    alys_env_free(&req);
    at(1000 + PM_STORE_TIMEOUT_MS + 1);
    pm_core_tick_fast(H->pm);
    alys_wire_msg_t *r = fake_next_wire(&H->fake, OUT_CLIENT, NULL);
    cr_assert(r && r->body_case == ALYS__WIRE__WIRE_MSG__BODY_TX_RESULTS);
    cr_assert_str_eq(r->tx_results->results[0], "unavailable");
    alys_wire_free(&r);
}

Test(pm_tx, a_bus_submission_is_answered_on_the_mailbox)
{
    started();
    uint8_t buf[ALYS_TX_MAX_BYTES];
    alys_tx_t tx;
    memset(&tx, 0, sizeof tx);
    ProtobufCBinaryData item = {alys_tx_encode(&tx, buf), buf};
    Alys__Mempool__SubmitTx st = ALYS__MEMPOOL__SUBMIT_TX__INIT;
    st.n_txs = 1;
    st.txs = &item;
    Alys__Mempool__MempoolMsg m = ALYS__MEMPOOL__MEMPOOL_MSG__INIT;
    m.msg_case = ALYS__MEMPOOL__MEMPOOL_MSG__MSG_SUBMIT_TX;
    m.submit_tx = &st;
    alys_env_t env = ALYS__BUS__ENVELOPE__INIT;
    env.corr_id = 99;
    env.sender = "alysctl";
    env.body_case = ALYS__BUS__ENVELOPE__BODY_MEMPOOL;
    env.mempool = &m;
    pm_core_on_mempool(H->pm, (const uint8_t *) "ctl", 3, &env);
    alys_env_t *req = next_storage();
    cr_assert_not_null(req);
    const char *refused[1] = {"bad_signature"};
    pool_answers(req, refused);
    alys_env_free(&req);
    cr_assert_eq(H->bus_replies, 1);
    cr_assert_str_eq(H->bus_result, "bad_signature");
}

Test(pm_tx, a_restarted_pool_makes_seen_txs_welcome_again)
{
    started();
    handshake("c1", "client");
    const char *added[1] = {"added"};
    submit_wire("c1", 7, 0, 1);
    alys_env_t *req = next_storage();
    pool_answers(req, added);
    alys_env_free(&req);
    submit_wire("c1", 8, 0, 1);
    cr_assert_null(next_storage(), "seen");
    /* Storage restarts: its next answer carries another epoch. */
    H->epoch = 2;
    submit_wire("c1", 9, 5, 1);
    req = next_storage();
    pool_answers(req, added);
    alys_env_free(&req);
    submit_wire("c1", 10, 0, 1);
    req = next_storage();
    cr_assert_not_null(req, "forwarded again: the new pool has not seen it");
    alys_env_free(&req);
}

/* ---- GetPeers and GetInFlight on the mailbox (pm_core_on_mailbox_request) ---- */

static void mailbox_request(Alys__Peer__PeerMsg *m, const char *sender, uint64_t corr)
{
    alys_env_t env = ALYS__BUS__ENVELOPE__INIT;
    env.corr_id = corr;
    env.sender = (char *) sender;
    env.body_case = ALYS__BUS__ENVELOPE__BODY_PEER;
    env.peer = m;
    static const uint8_t route[] = {0, 1, 2, 3};
    pm_core_on_mailbox_request(H->pm, route, sizeof route, &env);
}

Test(pm_tx, get_peers_and_get_in_flight_are_answered_on_the_mailbox)
{
    started();
    Alys__Peer__GetPeers gp = ALYS__PEER__GET_PEERS__INIT;
    Alys__Peer__PeerMsg m = ALYS__PEER__PEER_MSG__INIT;
    m.msg_case = ALYS__PEER__PEER_MSG__MSG_GET_PEERS;
    m.get_peers = &gp;
    size_t before = H->bus_replies;
    mailbox_request(&m, "alysctl", 41);
    cr_assert_eq(H->bus_replies, before + 1);
    cr_assert_eq(H->last_corr, 41);
    cr_assert_eq(H->last_peer_msg, ALYS__PEER__PEER_MSG__MSG_PEER_SET, "a PeerSet");
    Alys__Peer__GetInFlight gi = ALYS__PEER__GET_IN_FLIGHT__INIT;
    m.msg_case = ALYS__PEER__PEER_MSG__MSG_GET_IN_FLIGHT;
    m.get_in_flight = &gi;
    mailbox_request(&m, "alysctl", 42);
    cr_assert_eq(H->bus_replies, before + 2);
    cr_assert_eq(H->last_peer_msg, ALYS__PEER__PEER_MSG__MSG_IN_FLIGHT, "anyone's: on the mailbox");
    alys_env_t *old;
    while ((old = fake_next_bus(&H->fake, PM_TO_SYNC)) != NULL)
        alys_env_free(&old);
    mailbox_request(&m, "sync", 43);
    cr_assert_eq(H->bus_replies, before + 2, "SyncActor's goes on our socket to it");
    alys_env_t *to_sync = fake_next_bus(&H->fake, PM_TO_SYNC);
    cr_assert_not_null(to_sync);
    cr_assert_eq(to_sync->corr_id, 43);
    cr_assert_eq(to_sync->peer->msg_case, ALYS__PEER__PEER_MSG__MSG_IN_FLIGHT);
    alys_env_free(&to_sync);
}
