/*  test_pm_core.c: the PeerManager core (pm_core.h) driven through a fake
 *  port: what the shell used to decide around its sockets. */
#include <criterion/criterion.h>
#include <string.h>

#include "peer_serve.h"
#include "pm.h"
#include "pm_cost.h"
#include "pm_reqs.h"
#include "pm_fake_port.h"
#include "pm_gossip.h"

#define WALL0 1700000000000ull

typedef struct {
    alys_config_t cfg;
    alys_metrics_t *metrics;
    fake_t fake;
    pm_t *pm;
    int64_t mono;
    uint8_t genesis[ALYS_HASH_LEN];
    uint8_t head_hash[ALYS_HASH_LEN];
} h_t;

static h_t *H;

static void at(int64_t mono)
{
    H->mono = mono;
    pm_core_clock(H->pm, WALL0 + (uint64_t) mono, mono);
}

/* Keys (hex): a peer is its key (pm_conn.h, pm_judge.h). */
#define OUR_KEY    "0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b"
#define PEER_KEY   "a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1"
#define CLIENT_KEY "c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3"
#define PEER_EP    "alys://" PEER_KEY "@10.0.0.2:30300"

static void setup(void)
{
    H = calloc(1, sizeof *H);
    cr_assert_not_null(H);
    alys_config_defaults(&H->cfg);
    snprintf(H->cfg.node_name, sizeof H->cfg.node_name, "us");
    snprintf(H->cfg.listen, sizeof H->cfg.listen, "tcp://127.0.0.1:30300");
    snprintf(H->cfg.bootstrap_peers[0], sizeof H->cfg.bootstrap_peers[0], PEER_EP);
    H->cfg.bootstrap_peer_count = 1;
    memset(H->genesis, 0x11, ALYS_HASH_LEN);
    memset(H->head_hash, 0x22, ALYS_HASH_LEN);
    H->metrics = alys_metrics_new();
    pm_port_t port = fake_port(&H->fake);
    char err[128];
    H->pm = pm_core_new(&H->cfg, H->metrics, &port, err, sizeof err);
    cr_assert_not_null(H->pm, "%s", err);
    cr_assert_eq(pm_core_set_key(H->pm, OUR_KEY), 0);
    at(1000);
}

static void teardown(void)
{
    pm_core_destroy(&H->pm);
    fake_clear(&H->fake);
    alys_metrics_destroy(&H->metrics);
    free(H);
}

TestSuite(pm_core, .init = setup, .fini = teardown);

/* ---- storage --------------------------------------------------------------------- */

static void storage_reply(uint64_t corr_id, Alys__Storage__StorageMsg *msg)
{
    alys_env_t env = ALYS__BUS__ENVELOPE__INIT;
    env.reply = true;
    env.corr_id = corr_id;
    env.body_case = ALYS__BUS__ENVELOPE__BODY_STORAGE;
    env.storage = msg;
    pm_core_on_storage(H->pm, &env);
}

/* The next storage request, which must be of case want; its corr id. */
static uint64_t expect_storage(Alys__Storage__StorageMsg__MsgCase want, alys_env_t **env_out)
{
    alys_env_t *env = fake_next_bus(&H->fake, PM_TO_STORAGE);
    cr_assert_not_null(env, "no storage request");
    cr_assert_eq(env->body_case, ALYS__BUS__ENVELOPE__BODY_STORAGE);
    cr_assert_eq(env->storage->msg_case, want);
    uint64_t id = env->corr_id;
    if (env_out)
        *env_out = env;
    else
        alys_env_free(&env);
    return id;
}

static void answer_head(uint64_t corr_id, uint64_t height, bool genesis)
{
    Alys__Storage__Head h = ALYS__STORAGE__HEAD__INIT;
    h.height = height;
    h.hash = (ProtobufCBinaryData){ALYS_HASH_LEN, H->head_hash};
    if (genesis)
        h.genesis_hash = (ProtobufCBinaryData){ALYS_HASH_LEN, H->genesis};
    Alys__Storage__StorageMsg m = ALYS__STORAGE__STORAGE_MSG__INIT;
    m.msg_case = ALYS__STORAGE__STORAGE_MSG__MSG_HEAD;
    m.head = &h;
    storage_reply(corr_id, &m);
}

static void answer_no_bans(uint64_t corr_id)
{
    Alys__Storage__PeerBans b = ALYS__STORAGE__PEER_BANS__INIT;
    Alys__Storage__StorageMsg m = ALYS__STORAGE__STORAGE_MSG__INIT;
    m.msg_case = ALYS__STORAGE__STORAGE_MSG__MSG_PEER_BANS;
    m.peer_bans = &b;
    storage_reply(corr_id, &m);
}

static void answer_book(uint64_t corr_id, Alys__Storage__BookEntry **entries, size_t n)
{
    Alys__Storage__AddrBook b = ALYS__STORAGE__ADDR_BOOK__INIT;
    b.n_entries = n;
    b.entries = entries;
    Alys__Storage__StorageMsg m = ALYS__STORAGE__STORAGE_MSG__INIT;
    m.msg_case = ALYS__STORAGE__STORAGE_MSG__MSG_ADDR_BOOK;
    m.addr_book = &b;
    storage_reply(corr_id, &m);
}

/* ---- the parked copy at BlockProcessor (pm_park.c) ------------------------------- */

/* The next message to the park of case want (others skipped); NULL: none. */
static alys_env_t *to_park(Alys__Processor__ProcessorMsg__MsgCase want)
{
    alys_env_t *env;
    while ((env = fake_next_bus(&H->fake, PM_TO_PARK))) {
        if (env->body_case == ALYS__BUS__ENVELOPE__BODY_PROCESSOR && env->processor->msg_case == want)
            return env;
        alys_env_free(&env);
    }
    return NULL;
}

/* GetParked's corr id (it must have been asked). */
static uint64_t get_parked_asked(void)
{
    alys_env_t *env = to_park(ALYS__PROCESSOR__PROCESSOR_MSG__MSG_GET_PARKED);
    cr_assert_not_null(env, "GetParked not asked");
    uint64_t corr = env->corr_id;
    alys_env_free(&env);
    return corr;
}

/* BlockProcessor's Parked answer to corr: n ranges. */
static void answer_parked(uint64_t corr, Alys__Processor__Park **ranges, size_t n)
{
    Alys__Processor__Parked p = ALYS__PROCESSOR__PARKED__INIT;
    p.n_ranges = n;
    p.ranges = ranges;
    p.total = (uint32_t) n;
    Alys__Processor__ProcessorMsg m = ALYS__PROCESSOR__PROCESSOR_MSG__INIT;
    m.msg_case = ALYS__PROCESSOR__PROCESSOR_MSG__MSG_PARKED;
    m.parked = &p;
    alys_env_t env = ALYS__BUS__ENVELOPE__INIT;
    env.reply = true;
    env.corr_id = corr;
    env.body_case = ALYS__BUS__ENVELOPE__BODY_PROCESSOR;
    env.processor = &m;
    pm_core_on_processor(H->pm, &env);
}

/* started() leaves GetParked unanswered (its corr id here) when set. */
static bool s_parked_open;
static uint64_t s_parked_corr;

/* Start, head at height (with genesis), no bans, an empty address book,
 * nothing parked (unless s_parked_open). */
static void started(uint64_t height)
{
    pm_core_start(H->pm);
    uint64_t head = expect_storage(ALYS__STORAGE__STORAGE_MSG__MSG_GET_HEAD, NULL);
    uint64_t bans = expect_storage(ALYS__STORAGE__STORAGE_MSG__MSG_GET_PEER_BANS, NULL);
    uint64_t book = expect_storage(ALYS__STORAGE__STORAGE_MSG__MSG_GET_ADDR_BOOK, NULL);
    answer_head(head, height, true);
    answer_no_bans(bans);
    answer_book(book, NULL, 0);
    s_parked_corr = get_parked_asked();
    if (!s_parked_open)
        answer_parked(s_parked_corr, NULL, 0);
}

/* ---- peers ------------------------------------------------------------------------ */

/* Tick until the bootstrap peer is dialled and probed: its slot; *probe the
 * probe's request id. */
static int dialled(uint64_t *probe)
{
    pm_core_tick_fast(H->pm);
    int slot = -1;
    alys_wire_msg_t *m;
    while ((m = fake_next_wire(&H->fake, OUT_PEER, &slot))) {
        bool status = m->body_case == ALYS__WIRE__WIRE_MSG__BODY_STATUS;
        *probe = m->request_id;
        alys_wire_free(&m);
        if (status)
            return slot;
    }
    cr_assert_fail("no probe sent");
    return -1;
}

static void peer_status(int slot, uint64_t request_id, const char *node_id, uint64_t height,
                        const uint8_t *genesis)
{
    Alys__Wire__Status st = ALYS__WIRE__STATUS__INIT;
    st.protocol_version = ALYS_WIRE_PROTOCOL_VERSION;
    st.genesis_hash = (ProtobufCBinaryData){ALYS_HASH_LEN, (uint8_t *) genesis};
    st.head_height = height;
    st.head_hash = (ProtobufCBinaryData){ALYS_HASH_LEN, H->head_hash};
    st.node_id = (char *) node_id;
    alys_wire_msg_t m = ALYS__WIRE__WIRE_MSG__INIT;
    m.request_id = request_id;
    m.body_case = ALYS__WIRE__WIRE_MSG__BODY_STATUS;
    m.status = &st;
    zframe_t *f = alys_wire_encode(&m);
    cr_assert_not_null(f);
    pm_core_on_peer_frame(H->pm, slot, zframe_data(f), zframe_size(f), 1);
    zframe_destroy(&f);
}

/* How many PeerDiscovered went to SyncActor since the last look. */
static size_t discovered(uint64_t *height)
{
    size_t n = 0;
    alys_env_t *env;
    while ((env = fake_next_bus(&H->fake, PM_TO_SYNC))) {
        if (env->body_case == ALYS__BUS__ENVELOPE__BODY_SYNC &&
            env->sync->msg_case == ALYS__SYNC__SYNC_MSG__MSG_PEER_DISCOVERED) {
            n++;
            if (height)
                *height = env->sync->peer_discovered->reported_height;
        }
        alys_env_free(&env);
    }
    return n;
}

Test(pm_core, no_dial_before_head_and_bans)
{
    pm_core_start(H->pm);
    pm_core_tick_fast(H->pm);
    cr_assert_str_empty(H->fake.dialled[0]);
}

Test(pm_core, bootstrap_dialled_and_probed_once_started)
{
    started(10);
    uint64_t probe = 0;
    int slot = dialled(&probe);
    cr_assert_str_eq(H->fake.dialled[slot], PEER_EP);
}

Test(pm_core, peer_discovered_once_per_height)
{
    started(10);
    uint64_t probe = 0, height = 0;
    int slot = dialled(&probe);
    peer_status(slot, probe, PEER_KEY, 50, H->genesis);
    cr_assert_eq(discovered(&height), 1);
    cr_assert_eq(height, 50);
    /* The next probe at the same height: nothing new for SyncActor. */
    at(1000 + PM_CONN_PROBE_EVERY_MS + 1);
    probe = 0;
    slot = dialled(&probe);
    peer_status(slot, probe, PEER_KEY, 50, H->genesis);
    cr_assert_eq(discovered(NULL), 0);
    /* A new height is news. */
    at(1000 + 2 * PM_CONN_PROBE_EVERY_MS + 2);
    slot = dialled(&probe);
    peer_status(slot, probe, PEER_KEY, 60, H->genesis);
    cr_assert_eq(discovered(&height), 1);
    cr_assert_eq(height, 60);
}

Test(pm_core, wrong_genesis_bans_the_endpoint_and_hangs_up)
{
    started(10);
    uint64_t probe = 0;
    int slot = dialled(&probe);
    uint8_t other[ALYS_HASH_LEN];
    memset(other, 0x99, sizeof other);
    peer_status(slot, probe, "evil", 50, other);
    cr_assert(H->fake.hung_up[slot]);
    cr_assert_eq(discovered(NULL), 0);
    cr_assert(peer_table_is_banned(H->pm->table, PEER_KEY, PEER_EP, WALL0 + 1001),
              "banned under its key");
    cr_assert_eq(alys_metric_value(H->metrics, "alys_peer_bans_total", NULL), 1);
    /* alysctl peers shows it as banned under that id. */
    Alys__Peer__PeerSet *set = pm_peerset_new(H->pm, true);
    bool found = false;
    for (size_t i = 0; i < set->n_peers; i++)
        if (strcmp(set->peers[i]->peer_id, PEER_KEY) == 0)
            found = strcmp(set->peers[i]->state, "banned") == 0;
    cr_assert(found);
    pm_peerset_free(&set);
}

/* ---- the PeerSet push ----------------------------------------------------------------- */

static size_t peersets(void)
{
    size_t n = 0;
    alys_env_t *env;
    while ((env = fake_next_bus(&H->fake, PM_TO_SYNC))) {
        n += env->body_case == ALYS__BUS__ENVELOPE__BODY_PEER &&
             env->peer->msg_case == ALYS__PEER__PEER_MSG__MSG_PEER_SET;
        alys_env_free(&env);
    }
    return n;
}

Test(pm_core, peerset_pushed_on_change_then_every_interval)
{
    started(10);
    pm_core_tick_fast(H->pm); /* the bans loaded: a change */
    cr_assert_eq(peersets(), 1);
    at(1000 + PM_LIST_PUSH_MS - 1);
    pm_core_tick_fast(H->pm);
    cr_assert_eq(peersets(), 0);
    at(1000 + PM_LIST_PUSH_MS);
    pm_core_tick_fast(H->pm);
    cr_assert_eq(peersets(), 1);
}

/* ---- serving ------------------------------------------------------------------------- */

/* A frame from inbound client "client-1", whose link proved CLIENT_KEY. */
static void client_frame(const alys_wire_msg_t *m)
{
    static const uint8_t id[] = "client-1";
    zframe_t *f = alys_wire_encode(m);
    cr_assert_not_null(f);
    pm_core_on_client_frame(H->pm, id, sizeof id - 1, "127.0.0.1", CLIENT_KEY, zframe_data(f),
                            zframe_size(f));
    zframe_destroy(&f);
}

static void client_status(const char *node_id)
{
    Alys__Wire__Status st = ALYS__WIRE__STATUS__INIT;
    st.protocol_version = ALYS_WIRE_PROTOCOL_VERSION;
    st.genesis_hash = (ProtobufCBinaryData){ALYS_HASH_LEN, H->genesis};
    st.head_hash = (ProtobufCBinaryData){ALYS_HASH_LEN, H->head_hash};
    st.node_id = (char *) node_id;
    alys_wire_msg_t m = ALYS__WIRE__WIRE_MSG__INIT;
    m.request_id = 1;
    m.body_case = ALYS__WIRE__WIRE_MSG__BODY_STATUS;
    m.status = &st;
    client_frame(&m);
}

static void client_handshake(void)
{
    Alys__Wire__Status st = ALYS__WIRE__STATUS__INIT;
    st.protocol_version = ALYS_WIRE_PROTOCOL_VERSION;
    st.genesis_hash = (ProtobufCBinaryData){ALYS_HASH_LEN, H->genesis};
    st.head_hash = (ProtobufCBinaryData){ALYS_HASH_LEN, H->head_hash};
    st.node_id = CLIENT_KEY;
    alys_wire_msg_t m = ALYS__WIRE__WIRE_MSG__INIT;
    m.request_id = 1;
    m.body_case = ALYS__WIRE__WIRE_MSG__BODY_STATUS;
    m.status = &st;
    client_frame(&m);
    alys_wire_msg_t *r = fake_next_wire(&H->fake, OUT_CLIENT, NULL);
    cr_assert_not_null(r);
    cr_assert_eq(r->body_case, ALYS__WIRE__WIRE_MSG__BODY_STATUS, "%s", alys_wire_body_name(r));
    alys_wire_free(&r);
}

static void answer_blocks(uint64_t corr, uint64_t start, uint32_t n)
{
    ProtobufCBinaryData *items = calloc(n ? n : 1, sizeof *items);
    static uint8_t byte = 7;
    for (uint32_t i = 0; i < n; i++)
        items[i] = (ProtobufCBinaryData){1, &byte};
    Alys__Storage__Blocks b = ALYS__STORAGE__BLOCKS__INIT;
    b.start = start;
    b.n_blocks = n;
    b.blocks = items;
    Alys__Storage__StorageMsg m = ALYS__STORAGE__STORAGE_MSG__INIT;
    m.msg_case = ALYS__STORAGE__STORAGE_MSG__MSG_BLOCKS;
    m.blocks = &b;
    storage_reply(corr, &m);
    free(items);
}

static uint64_t expect_read(uint64_t start, uint32_t count, bool headers)
{
    alys_env_t *env = NULL;
    uint64_t corr = expect_storage(ALYS__STORAGE__STORAGE_MSG__MSG_GET_BLOCKS, &env);
    cr_assert_eq(env->storage->get_blocks->start, start);
    cr_assert_eq(env->storage->get_blocks->count, count);
    cr_assert_eq(env->storage->get_blocks->headers_only, headers);
    alys_env_free(&env);
    return corr;
}

static void get_headers(uint64_t start, uint32_t count)
{
    Alys__Wire__GetHeaders gh = ALYS__WIRE__GET_HEADERS__INIT;
    gh.start = start;
    gh.count = count;
    alys_wire_msg_t m = ALYS__WIRE__WIRE_MSG__INIT;
    m.request_id = 2;
    m.body_case = ALYS__WIRE__WIRE_MSG__BODY_GET_HEADERS;
    m.get_headers = &gh;
    client_frame(&m);
}

Test(pm_core, headers_served_in_storage_chunks)
{
    started(5000);
    client_handshake();
    get_headers(1, 1500);
    uint64_t corr = expect_read(1, PS_STORAGE_CHUNK, true);
    answer_blocks(corr, 1, PS_STORAGE_CHUNK);
    corr = expect_read(1 + PS_STORAGE_CHUNK, 1500 - PS_STORAGE_CHUNK, true);
    answer_blocks(corr, 1 + PS_STORAGE_CHUNK, 1500 - PS_STORAGE_CHUNK);
    alys_wire_msg_t *r = fake_next_wire(&H->fake, OUT_CLIENT, NULL);
    cr_assert_not_null(r);
    cr_assert_eq(r->body_case, ALYS__WIRE__WIRE_MSG__BODY_HEADERS);
    cr_assert_eq(r->headers->start, 1);
    cr_assert_eq(r->headers->n_headers, 1500);
    cr_assert_not(r->headers->truncated);
    alys_wire_free(&r);
}

Test(pm_core, short_chunk_ends_the_read_and_is_truncated_below_our_head)
{
    started(5000);
    client_handshake();
    get_headers(1, 1500);
    uint64_t corr = expect_read(1, PS_STORAGE_CHUNK, true);
    answer_blocks(corr, 1, 100);                            /* storage's own frame limit */
    cr_assert_null(fake_next_bus(&H->fake, PM_TO_STORAGE)); /* no second read */
    alys_wire_msg_t *r = fake_next_wire(&H->fake, OUT_CLIENT, NULL);
    cr_assert_not_null(r);
    cr_assert_eq(r->headers->n_headers, 100);
    cr_assert(r->headers->truncated); /* more exist below our head */
    alys_wire_free(&r);
}

Test(pm_core, headers_read_stops_at_our_head)
{
    started(PS_STORAGE_CHUNK); /* head at the end of the first chunk */
    client_handshake();
    get_headers(1, 1500);
    uint64_t corr = expect_read(1, PS_STORAGE_CHUNK, true);
    answer_blocks(corr, 1, PS_STORAGE_CHUNK);
    cr_assert_null(fake_next_bus(&H->fake, PM_TO_STORAGE));
    alys_wire_msg_t *r = fake_next_wire(&H->fake, OUT_CLIENT, NULL);
    cr_assert_not_null(r);
    cr_assert_eq(r->headers->n_headers, PS_STORAGE_CHUNK);
    cr_assert_not(r->headers->truncated);
    alys_wire_free(&r);
}

Test(pm_core, storage_silence_answers_unavailable)
{
    started(5000);
    client_handshake();
    get_headers(1, 10);
    expect_read(1, 10, true);
    at(1000 + PM_STORE_TIMEOUT_MS + 1);
    pm_core_tick_fast(H->pm);
    alys_wire_msg_t *r = fake_next_wire(&H->fake, OUT_CLIENT, NULL);
    cr_assert_not_null(r);
    cr_assert_eq(r->body_case, ALYS__WIRE__WIRE_MSG__BODY_ERROR);
    cr_assert_eq(r->error->code, ALYS__WIRE__WIRE_ERROR__CODE__UNAVAILABLE);
    alys_wire_free(&r);
}

/* ---- serving budgets (pm_inbound.h) --------------------------------------------------- */

static void client_frame_from(const char *who, const char *addr, const alys_wire_msg_t *m)
{
    zframe_t *f = alys_wire_encode(m);
    cr_assert_not_null(f);
    pm_core_on_client_frame(H->pm, (const uint8_t *) who, strlen(who), addr, NULL, zframe_data(f),
                            zframe_size(f));
    zframe_destroy(&f);
}

static void status_from(const char *who, const char *addr)
{
    Alys__Wire__Status st = ALYS__WIRE__STATUS__INIT;
    st.protocol_version = ALYS_WIRE_PROTOCOL_VERSION;
    st.genesis_hash = (ProtobufCBinaryData){ALYS_HASH_LEN, H->genesis};
    st.head_hash = (ProtobufCBinaryData){ALYS_HASH_LEN, H->head_hash};
    st.node_id = (char *) who;
    alys_wire_msg_t m = ALYS__WIRE__WIRE_MSG__INIT;
    m.request_id = 1;
    m.body_case = ALYS__WIRE__WIRE_MSG__BODY_STATUS;
    m.status = &st;
    client_frame_from(who, addr, &m);
}

static void get_blocks_from(const char *who, uint64_t request_id)
{
    Alys__Wire__GetBlocks gb = ALYS__WIRE__GET_BLOCKS__INIT;
    gb.start = 1;
    gb.count = 10;
    alys_wire_msg_t m = ALYS__WIRE__WIRE_MSG__INIT;
    m.request_id = request_id;
    m.body_case = ALYS__WIRE__WIRE_MSG__BODY_GET_BLOCKS;
    m.get_blocks = &gb;
    client_frame_from(who, "127.0.0.1", &m);
}

/* The next answer to a client: its body case (and error code, or -1). */
static int next_answer(int *code)
{
    alys_wire_msg_t *r = fake_next_wire(&H->fake, OUT_CLIENT, NULL);
    cr_assert_not_null(r, "no answer");
    int body = (int) r->body_case;
    *code = body == ALYS__WIRE__WIRE_MSG__BODY_ERROR ? (int) r->error->code : -1;
    alys_wire_free(&r);
    return body;
}

Test(pm_core, a_client_that_never_reads_gets_busy_past_its_credit_and_credit_returns_when_taken)
{
    started(5000);
    status_from("c1", "127.0.0.1");
    int code;
    next_answer(&code);
    /* A first answer shows how big blocks are (1 byte here): from then on
     * a read reserves that much per block, not a whole frame. */
    get_blocks_from("c1", 5);
    answer_blocks(expect_read(1, 10, false), 1, 10);
    cr_assert_eq(next_answer(&code), ALYS__WIRE__WIRE_MSG__BODY_BLOCKS);
    pm_core_on_client_taken(H->pm, (const uint8_t *) "c1", 2, ps_bytes_owed(H->pm), true);
    cr_assert_eq(ps_bytes_owed(H->pm), 0);
    uint32_t max = H->cfg.serve_max_requests;
    uint64_t corrs[64];
    for (uint32_t i = 0; i < max; i++) {
        get_blocks_from("c1", 10 + i);
        corrs[i] = expect_read(1, 10, false);
    }
    get_blocks_from("c1", 99);
    cr_assert_null(fake_next_bus(&H->fake, PM_TO_STORAGE), "no disk read past the credit");
    cr_assert_eq(next_answer(&code), ALYS__WIRE__WIRE_MSG__BODY_ERROR);
    cr_assert_eq(code, ALYS__WIRE__WIRE_ERROR__CODE__BUSY);
    /* The reads finish: the answers are owed (handed, not taken). */
    for (uint32_t i = 0; i < max; i++) {
        answer_blocks(corrs[i], 1, 10);
        cr_assert_eq(next_answer(&code), ALYS__WIRE__WIRE_MSG__BODY_BLOCKS);
    }
    cr_assert_gt(ps_bytes_owed(H->pm), 0);
    get_blocks_from("c1", 100);
    cr_assert_null(fake_next_bus(&H->fake, PM_TO_STORAGE), "answers owed spend the credit too");
    cr_assert_eq(next_answer(&code), ALYS__WIRE__WIRE_MSG__BODY_ERROR);
    cr_assert_eq(code, ALYS__WIRE__WIRE_ERROR__CODE__BUSY);
    /* The socket takes one answer: one more request is read. */
    uint64_t before = ps_bytes_owed(H->pm);
    pm_core_on_client_taken(H->pm, (const uint8_t *) "c1", 2, 100, true);
    cr_assert_eq(ps_bytes_owed(H->pm), before - 100);
    get_blocks_from("c1", 101);
    expect_read(1, 10, false);
}

Test(pm_core, before_any_answer_a_read_reserves_a_whole_frame_so_two_fill_a_client_budget)
{
    started(5000);
    status_from("c1", "127.0.0.1");
    int code;
    next_answer(&code);
    pm_core_on_client_taken(H->pm, (const uint8_t *) "c1", 2, ps_bytes_owed(H->pm), false);
    get_blocks_from("c1", 10);
    expect_read(1, 10, false);
    get_blocks_from("c1", 11);
    expect_read(1, 10, false);
    get_blocks_from("c1", 12);
    cr_assert_null(fake_next_bus(&H->fake, PM_TO_STORAGE), "16 MiB reserved: no third read");
    cr_assert_eq(next_answer(&code), ALYS__WIRE__WIRE_MSG__BODY_ERROR);
    cr_assert_eq(code, ALYS__WIRE__WIRE_ERROR__CODE__BUSY);
}

/* Blocks of `size` bytes each (storage's answer to corr). */
static void answer_big_blocks(uint64_t corr, uint32_t n, size_t size)
{
    uint8_t *bytes = calloc(1, size);
    ProtobufCBinaryData items[16];
    cr_assert(n <= 16 && bytes);
    for (uint32_t i = 0; i < n; i++)
        items[i] = (ProtobufCBinaryData){size, bytes};
    Alys__Storage__Blocks b = ALYS__STORAGE__BLOCKS__INIT;
    b.start = 1;
    b.n_blocks = n;
    b.blocks = items;
    Alys__Storage__StorageMsg m = ALYS__STORAGE__STORAGE_MSG__INIT;
    m.msg_case = ALYS__STORAGE__STORAGE_MSG__MSG_BLOCKS;
    m.blocks = &b;
    storage_reply(corr, &m);
    free(bytes);
}

static void restart_core(void)
{
    pm_core_destroy(&H->pm);
    pm_port_t port = fake_port(&H->fake);
    char err[128];
    H->pm = pm_core_new(&H->cfg, H->metrics, &port, err, sizeof err);
    cr_assert_not_null(H->pm, "%s", err);
    at(1000);
}

Test(pm_core, when_the_total_budget_is_spent_the_stalled_client_owing_most_is_dropped)
{
    H->cfg.serve_memory_mb = 8;
    H->cfg.serve_client_mb = 8;
    restart_core();
    started(5000);
    int code;
    status_from("A", "10.1.0.1");
    next_answer(&code);
    pm_core_on_client_taken(H->pm, (const uint8_t *) "A", 1, ps_bytes_owed(H->pm), false);
    /* A is answered ~8 MB and never reads. */
    get_blocks_from("A", 10);
    answer_big_blocks(expect_read(1, 10, false), 10, 800000);
    cr_assert_eq(next_answer(&code), ALYS__WIRE__WIRE_MSG__BODY_BLOCKS);
    uint64_t a_owed = ps_bytes_owed(H->pm);
    cr_assert_gt(a_owed, 7000000);
    /* B asks: the total is spent; A is not stalled yet: BUSY, nobody dropped. */
    status_from("B", "10.2.0.1");
    next_answer(&code);
    pm_core_on_client_taken(H->pm, (const uint8_t *) "B", 1, ps_bytes_owed(H->pm) - a_owed, false);
    get_blocks_from("B", 20);
    cr_assert_null(fake_next_bus(&H->fake, PM_TO_STORAGE));
    cr_assert_eq(next_answer(&code), ALYS__WIRE__WIRE_MSG__BODY_ERROR);
    cr_assert_eq(code, ALYS__WIRE__WIRE_ERROR__CODE__BUSY);
    cr_assert_eq(H->fake.n_dropped, 0);
    /* A has taken nothing for PM_INBOUND_STALL_MS: B's next ask drops it. */
    at(1000 + PM_INBOUND_STALL_MS);
    get_blocks_from("B", 21);
    cr_assert_eq(next_answer(&code), ALYS__WIRE__WIRE_MSG__BODY_ERROR);
    cr_assert_eq(H->fake.n_dropped, 1);
    cr_assert_str_eq(H->fake.dropped, "A");
    /* Its connection closed, its bytes come back, and B is served. */
    pm_core_on_client_taken(H->pm, (const uint8_t *) "A", 1, a_owed, true);
    get_blocks_from("B", 22);
    expect_read(1, 10, false);
}

Test(pm_core, clients_past_the_per_address_limit_are_ignored_others_are_served)
{
    started(5000);
    uint32_t per = H->cfg.max_inbound_per_address;
    char who[16];
    int code;
    for (uint32_t i = 0; i < per; i++) {
        snprintf(who, sizeof who, "a%u", i);
        status_from(who, "10.9.9.9");
        cr_assert_eq(next_answer(&code), ALYS__WIRE__WIRE_MSG__BODY_STATUS);
    }
    status_from("a-extra", "10.9.9.9");
    cr_assert_null(fake_next_wire(&H->fake, OUT_CLIENT, NULL),
                   "over the per-address limit: no answer");
    cr_assert_str_eq(H->fake.dropped, "a-extra", "and its connection closed (no descriptor held)");
    status_from("b0", "10.8.8.8");
    cr_assert_eq(next_answer(&code), ALYS__WIRE__WIRE_MSG__BODY_STATUS, "another address is served");
}

Test(pm_core, a_newcomer_evicts_the_worst_when_inbound_slots_are_full)
{
    H->cfg.max_inbound_peers = 8;
    H->cfg.max_inbound_per_address = 1000;
    pm_core_destroy(&H->pm);
    pm_port_t port = fake_port(&H->fake);
    char err[128];
    H->pm = pm_core_new(&H->cfg, H->metrics, &port, err, sizeof err);
    cr_assert_not_null(H->pm);
    at(1000);
    started(5000);
    char who[16];
    int code;
    /* 4 honest clients in varied /16s, then an attacker fills the rest from one. */
    for (int i = 0; i < 4; i++) {
        char addr[32];
        snprintf(who, sizeof who, "h%d", i);
        snprintf(addr, sizeof addr, "20.%d.0.1", i);
        at(1000 + i);
        status_from(who, addr);
        cr_assert_eq(next_answer(&code), ALYS__WIRE__WIRE_MSG__BODY_STATUS);
    }
    for (int i = 0; i < 10; i++) {
        snprintf(who, sizeof who, "x%d", i);
        at(2000 + i);
        status_from(who, "66.6.0.1");
        cr_assert_eq(next_answer(&code), ALYS__WIRE__WIRE_MSG__BODY_STATUS, "%s admitted", who);
    }
    /* Every honest client is still served. */
    for (int i = 0; i < 4; i++) {
        snprintf(who, sizeof who, "h%d", i);
        at(3000 + i);
        status_from(who, "20.0.0.1");
        cr_assert_eq(next_answer(&code), ALYS__WIRE__WIRE_MSG__BODY_STATUS, "%s still served", who);
    }
    /* And some attacker connection was evicted: ignored now. */
    size_t ignored = 0;
    for (int i = 0; i < 10; i++) {
        snprintf(who, sizeof who, "x%d", i);
        status_from(who, "66.6.0.1");
        alys_wire_msg_t *r = fake_next_wire(&H->fake, OUT_CLIENT, NULL);
        ignored += r == NULL;
        alys_wire_free(&r);
    }
    cr_assert_eq(ignored, 6, "10 attackers in 4 remaining slots");
    cr_assert_geq(H->fake.n_dropped, 6, "the evicted connections were closed");
}

/* ---- requests to peers ------------------------------------------------------------------ */

/* A FetchHeaders from SyncActor; with n_locator hashes a locator request. */
static void fetch_headers_with(uint64_t request_id, const char *peer, uint64_t start,
                               uint32_t count, ProtobufCBinaryData *locator, size_t n_locator)
{
    Alys__Peer__FetchHeaders fh = ALYS__PEER__FETCH_HEADERS__INIT;
    fh.request_id = request_id;
    fh.peer_id = (char *) peer;
    fh.start = start;
    fh.count = count;
    fh.n_locator = n_locator;
    fh.locator = locator;
    Alys__Peer__PeerMsg m = ALYS__PEER__PEER_MSG__INIT;
    m.msg_case = ALYS__PEER__PEER_MSG__MSG_FETCH_HEADERS;
    m.fetch_headers = &fh;
    pm_core_on_peer_msg(H->pm, &m);
}

static void fetch_headers(uint64_t request_id, const char *peer, uint64_t start, uint32_t count)
{
    fetch_headers_with(request_id, peer, start, count, NULL, 0);
}

/* The next PeerMsg of case want to SyncActor (others skipped and freed). */
static alys_env_t *to_sync_peer(Alys__Peer__PeerMsg__MsgCase want)
{
    alys_env_t *env;
    while ((env = fake_next_bus(&H->fake, PM_TO_SYNC))) {
        if (env->body_case == ALYS__BUS__ENVELOPE__BODY_PEER && env->peer->msg_case == want)
            return env;
        alys_env_free(&env);
    }
    return NULL;
}

/* A ready peer PEER_KEY at height on its slot. */
static int ready_peer(uint64_t height)
{
    started(10);
    uint64_t probe = 0;
    int slot = dialled(&probe);
    peer_status(slot, probe, PEER_KEY, height, H->genesis);
    cr_assert_eq(discovered(NULL), 1);
    return slot;
}

static void peer_frame(int slot, const alys_wire_msg_t *m)
{
    zframe_t *f = alys_wire_encode(m);
    cr_assert_not_null(f);
    pm_core_on_peer_frame(H->pm, slot, zframe_data(f), zframe_size(f), 1);
    zframe_destroy(&f);
}

Test(pm_core, fetch_from_unknown_peer_is_no_peer)
{
    started(10);
    fetch_headers(77, "nobody", 1, 10);
    alys_env_t *env = to_sync_peer(ALYS__PEER__PEER_MSG__MSG_HEADERS_RESULT);
    cr_assert_not_null(env);
    cr_assert_eq(env->peer->headers_result->request_id, 77);
    cr_assert_eq(env->peer->headers_result->outcome, ALYS__PEER__OUTCOME__NO_PEER);
    alys_env_free(&env);
    cr_assert_eq(alys_metric_value(H->metrics, "alys_peer_requests_total",
                                   "kind=\"headers\",outcome=\"no_peer\""),
                 1);
}

Test(pm_core, answer_of_the_wrong_kind_is_a_violation)
{
    int slot = ready_peer(50);
    fetch_headers(78, PEER_KEY, 1, 10);
    int s = -1;
    alys_wire_msg_t *req = NULL;
    while ((req = fake_next_wire(&H->fake, OUT_PEER, &s)) &&
           req->body_case != ALYS__WIRE__WIRE_MSG__BODY_GET_HEADERS)
        alys_wire_free(&req);
    cr_assert_not_null(req, "no GetHeaders sent");
    cr_assert_eq(s, slot);
    Alys__Wire__Blocks b = ALYS__WIRE__BLOCKS__INIT;
    alys_wire_msg_t m = ALYS__WIRE__WIRE_MSG__INIT;
    m.request_id = req->request_id;
    m.body_case = ALYS__WIRE__WIRE_MSG__BODY_BLOCKS;
    m.blocks = &b;
    alys_wire_free(&req);
    peer_frame(slot, &m);
    alys_env_t *env = to_sync_peer(ALYS__PEER__PEER_MSG__MSG_HEADERS_RESULT);
    cr_assert_not_null(env);
    cr_assert_eq(env->peer->headers_result->outcome, ALYS__PEER__OUTCOME__VIOLATION);
    alys_env_free(&env);
}

static double score_of(const char *peer)
{
    double v = 0;
    cr_assert_eq(peer_table_score(H->pm->table, peer, pm_now(H->pm), &v), PEER_OK);
    return v;
}

Test(pm_core, answer_to_no_pending_request_is_unsolicited_and_costs_a_little)
{
    int slot = ready_peer(50);
    Alys__Wire__Headers h = ALYS__WIRE__HEADERS__INIT;
    alys_wire_msg_t m = ALYS__WIRE__WIRE_MSG__INIT;
    m.request_id = 424242; /* never asked */
    m.body_case = ALYS__WIRE__WIRE_MSG__BODY_HEADERS;
    m.headers = &h;
    peer_frame(slot, &m);
    cr_assert_eq(alys_metric_value(H->metrics, "alys_peer_late_responses_total", NULL), 0);
    cr_assert_eq(alys_metric_value(H->metrics, "alys_peer_misbehaviour_total",
                                   "side=\"outbound\",offence=\"unsolicited\""),
                 1);
    double v = score_of(PEER_KEY);
    cr_assert(v < 0 && v > peer_table_config(H->pm->table)->ban_score, "score %f", v);
    cr_assert_null(to_sync_peer(ALYS__PEER__PEER_MSG__MSG_HEADERS_RESULT));
}

static void new_block_from(int slot)
{
    uint8_t byte = 1;
    Alys__Wire__NewBlock nb = ALYS__WIRE__NEW_BLOCK__INIT;
    nb.block = (ProtobufCBinaryData){1, &byte};
    alys_wire_msg_t m = ALYS__WIRE__WIRE_MSG__INIT;
    m.request_id = 5;
    m.body_case = ALYS__WIRE__WIRE_MSG__BODY_NEW_BLOCK;
    m.new_block = &nb;
    peer_frame(slot, &m);
}

/* NewBlock goes to gossip (peer_gossip.c), which counts what it receives. */
static double received_blocks(void)
{
    return alys_metric_value(H->metrics, "alys_gossip_blocks_received_total", NULL);
}

Test(pm_core, new_block_taken_only_from_a_ready_peer)
{
    started(10);
    uint64_t probe = 0;
    int slot = dialled(&probe);
    new_block_from(slot); /* handshake not done */
    cr_assert_eq(received_blocks(), 0);
    peer_status(slot, probe, PEER_KEY, 50, H->genesis);
    new_block_from(slot);
    cr_assert_eq(received_blocks(), 1);
}

Test(pm_core, link_down_under_a_ready_peer_tells_sync)
{
    int slot = ready_peer(50);
    pm_core_on_peer_link(H->pm, slot, false);
    alys_env_t *env;
    bool told = false;
    while ((env = fake_next_bus(&H->fake, PM_TO_SYNC))) {
        told |= env->body_case == ALYS__BUS__ENVELOPE__BODY_SYNC &&
                env->sync->msg_case == ALYS__SYNC__SYNC_MSG__MSG_PEER_DISCONNECTED;
        alys_env_free(&env);
    }
    cr_assert(told);
}

/* ---- to BlockProcessor ------------------------------------------------------------------ */

/* Deliver n one-byte blocks from start: returns the ProcessBatch's batch id. */
static uint64_t delivered_batch(uint64_t start, size_t n)
{
    static uint8_t byte = 3;
    ProtobufCBinaryData blocks[8];
    cr_assert_leq(n, 8);
    for (size_t i = 0; i < n; i++)
        blocks[i] = (ProtobufCBinaryData){1, &byte};
    uint32_t delivered = 0;
    cr_assert_eq(pm_deliver(H->pm, 90, PEER_KEY, start, blocks, n, NULL, &delivered),
                 ALYS__PEER__OUTCOME__OK);
    cr_assert_eq(delivered, n);
    alys_env_t *env = fake_next_bus(&H->fake, PM_TO_PROCESSOR);
    cr_assert_not_null(env, "nothing handed to the block processor");
    cr_assert_eq(env->processor->msg_case, ALYS__PROCESSOR__PROCESSOR_MSG__MSG_PROCESS_BATCH);
    uint64_t id = env->corr_id;
    alys_env_free(&env);
    return id;
}

static void bp_error(uint64_t corr, uint32_t code)
{
    Alys__Bus__Error e = ALYS__BUS__ERROR__INIT;
    e.code = code;
    e.message = "test";
    alys_env_t env = ALYS__BUS__ENVELOPE__INIT;
    env.reply = true;
    env.corr_id = corr;
    env.body_case = ALYS__BUS__ENVELOPE__BODY_ERROR;
    env.error = &e;
    pm_core_on_processor(H->pm, &env);
}

Test(pm_core, busy_processor_keeps_the_batch)
{
    started(10);
    uint64_t id = delivered_batch(11, 2);
    bp_error(id, ALYS_ERR_BUSY);
    cr_assert_null(to_sync_peer(ALYS__PEER__PEER_MSG__MSG_BATCH_OUTCOME));
    cr_assert_eq(reorder_blocks(H->pm->reorder), 2);
}

Test(pm_core, bad_request_drops_the_batch_and_tells_sync)
{
    started(10);
    uint64_t id = delivered_batch(11, 2);
    bp_error(id, ALYS_ERR_BAD_REQUEST);
    alys_env_t *env = to_sync_peer(ALYS__PEER__PEER_MSG__MSG_BATCH_OUTCOME);
    cr_assert_not_null(env);
    cr_assert(env->peer->batch_outcome->failed);
    cr_assert_eq(env->peer->batch_outcome->failed_height, 11);
    cr_assert_str_eq(env->peer->batch_outcome->reason, "dropped");
    alys_env_free(&env);
}

/* ---- our head --------------------------------------------------------------------------- */

static void processed(uint64_t batch_id, uint32_t committed, uint64_t head)
{
    Alys__Processor__BatchProcessed bp = ALYS__PROCESSOR__BATCH_PROCESSED__INIT;
    bp.batch_id = batch_id;
    bp.committed = committed;
    bp.head_height = head;
    Alys__Processor__ProcessorMsg m = ALYS__PROCESSOR__PROCESSOR_MSG__INIT;
    m.msg_case = ALYS__PROCESSOR__PROCESSOR_MSG__MSG_BATCH_PROCESSED;
    m.batch_processed = &bp;
    alys_env_t env = ALYS__BUS__ENVELOPE__INIT;
    env.reply = true;
    env.corr_id = batch_id;
    env.body_case = ALYS__BUS__ENVELOPE__BODY_PROCESSOR;
    env.processor = &m;
    pm_core_on_processor(H->pm, &env);
}

Test(pm_core, head_asked_before_a_batch_processed_is_stale)
{
    started(10);
    uint64_t id = delivered_batch(11, 2);
    at(1500);
    pm_core_tick_head(H->pm); /* GetHead asked at 1500 */
    uint64_t ask = expect_storage(ALYS__STORAGE__STORAGE_MSG__MSG_GET_HEAD, NULL);
    at(1600);
    processed(id, 2, 12); /* the processor knows head 12 */
    at(1700);
    answer_head(ask, 10, true); /* storage's answer, from before */
    cr_assert_eq(H->pm->head_height, 12);
}

Test(pm_core, head_asked_after_the_last_batch_processed_moves)
{
    started(10);
    uint64_t id = delivered_batch(11, 2);
    at(1500);
    processed(id, 2, 12);
    at(1600);
    pm_core_tick_head(H->pm);
    uint64_t ask = expect_storage(ALYS__STORAGE__STORAGE_MSG__MSG_GET_HEAD, NULL);
    at(1700);
    answer_head(ask, 8, true); /* a rollback: storage knows best */
    cr_assert_eq(H->pm->head_height, 8);
}

Test(pm_core, a_new_ban_is_saved_to_storage)
{
    started(10);
    uint64_t probe = 0;
    int slot = dialled(&probe);
    uint8_t other[ALYS_HASH_LEN];
    memset(other, 0x99, sizeof other);
    peer_status(slot, probe, "evil", 50, other);
    pm_core_tick_slow(H->pm);
    alys_env_t *env = NULL;
    expect_storage(ALYS__STORAGE__STORAGE_MSG__MSG_PUT_PEER_BANS, &env);
    cr_assert_eq(env->storage->put_peer_bans->n_bans, 1);
    cr_assert_str_eq(env->storage->put_peer_bans->bans[0]->peer_id, PEER_KEY);
    alys_env_free(&env);
}

Test(pm_core, get_peers_answered_with_ready_endpoints)
{
    ready_peer(50);
    client_handshake();
    Alys__Wire__GetPeers gp = ALYS__WIRE__GET_PEERS__INIT;
    alys_wire_msg_t m = ALYS__WIRE__WIRE_MSG__INIT;
    m.request_id = 3;
    m.body_case = ALYS__WIRE__WIRE_MSG__BODY_GET_PEERS;
    m.get_peers = &gp;
    client_frame(&m);
    alys_wire_msg_t *r = fake_next_wire(&H->fake, OUT_CLIENT, NULL);
    cr_assert_not_null(r);
    cr_assert_eq(r->body_case, ALYS__WIRE__WIRE_MSG__BODY_PEERS);
    cr_assert_eq(r->peers->n_endpoints, 1);
    cr_assert_str_eq(r->peers->endpoints[0], PEER_EP, "endpoints carry their keys");
    alys_wire_free(&r);
}

/* ---- more of BlockProcessor --------------------------------------------------------------- */

Test(pm_core, processor_restart_resends_what_it_held)
{
    started(10);
    delivered_batch(11, 2);
    pm_core_on_processor_link(H->pm, false);
    pm_core_on_processor_link(H->pm, true);
    alys_env_t *env = fake_next_bus(&H->fake, PM_TO_PROCESSOR);
    cr_assert_not_null(env, "nothing resent");
    cr_assert_eq(env->processor->process_batch->n_blocks, 2);
    alys_env_free(&env);
}

Test(pm_core, processor_connect_without_a_drop_resends_nothing)
{
    started(10);
    delivered_batch(11, 2);
    pm_core_on_processor_link(H->pm, true);
    cr_assert_null(fake_next_bus(&H->fake, PM_TO_PROCESSOR));
}

static void processed_failed(uint64_t batch_id, uint64_t failed_height, const char *reason)
{
    Alys__Processor__BatchProcessed bp = ALYS__PROCESSOR__BATCH_PROCESSED__INIT;
    bp.batch_id = batch_id;
    bp.head_height = failed_height - 1;
    bp.committed = 0;
    bp.failed = true;
    bp.failed_height = failed_height;
    bp.reason = (char *) reason;
    bp.detail = "test";
    Alys__Processor__ProcessorMsg m = ALYS__PROCESSOR__PROCESSOR_MSG__INIT;
    m.msg_case = ALYS__PROCESSOR__PROCESSOR_MSG__MSG_BATCH_PROCESSED;
    m.batch_processed = &bp;
    alys_env_t env = ALYS__BUS__ENVELOPE__INIT;
    env.reply = true;
    env.corr_id = batch_id;
    env.body_case = ALYS__BUS__ENVELOPE__BODY_PROCESSOR;
    env.processor = &m;
    pm_core_on_processor(H->pm, &env);
}

Test(pm_core, refused_block_content_suspects_its_server_and_tells_sync)
{
    ready_peer(50);
    uint64_t id = delivered_batch(11, 2);
    processed_failed(id, 12, "bad_proposer_signature");
    cr_assert_eq(peer_table_suspect_count(H->pm->table), 1);
    alys_env_t *env = to_sync_peer(ALYS__PEER__PEER_MSG__MSG_BATCH_OUTCOME);
    cr_assert_not_null(env);
    cr_assert(env->peer->batch_outcome->failed);
    cr_assert_eq(env->peer->batch_outcome->failed_height, 12);
    cr_assert_str_eq(env->peer->batch_outcome->reason, "bad_proposer_signature");
    alys_env_free(&env);
}

Test(pm_core, failure_from_our_clock_suspects_no_one)
{
    ready_peer(50);
    uint64_t id = delivered_batch(11, 2);
    processed_failed(id, 12, "future_slot");
    cr_assert_eq(peer_table_suspect_count(H->pm->table), 0);
}

/* ---- more of serving ------------------------------------------------------------------- */

Test(pm_core, storage_answering_another_range_is_unavailable)
{
    started(5000);
    client_handshake();
    get_headers(1, 10);
    uint64_t corr = expect_read(1, 10, true);
    answer_blocks(corr, 2, 10);
    alys_wire_msg_t *r = fake_next_wire(&H->fake, OUT_CLIENT, NULL);
    cr_assert_not_null(r);
    cr_assert_eq(r->body_case, ALYS__WIRE__WIRE_MSG__BODY_ERROR);
    cr_assert_eq(r->error->code, ALYS__WIRE__WIRE_ERROR__CODE__UNAVAILABLE);
    cr_assert_str_eq(r->error->message, "storage answered another range");
    alys_wire_free(&r);
}

Test(pm_core, nothing_in_storage_below_our_cached_head_is_not_found)
{
    started(5000);
    client_handshake();
    get_headers(4000, 10);
    uint64_t corr = expect_read(4000, 10, true);
    answer_blocks(corr, 4000, 0); /* a rollback under our cached head */
    alys_wire_msg_t *r = fake_next_wire(&H->fake, OUT_CLIENT, NULL);
    cr_assert_not_null(r);
    cr_assert_eq(r->body_case, ALYS__WIRE__WIRE_MSG__BODY_ERROR);
    cr_assert_eq(r->error->code, ALYS__WIRE__WIRE_ERROR__CODE__NOT_FOUND);
    alys_wire_free(&r);
}

/* ---- every bad thing costs (pm_cost.h's misbehaviour table) ---------------------- */

static uint64_t sent_get_headers(int slot)
{
    int s = -1;
    alys_wire_msg_t *req = NULL;
    while ((req = fake_next_wire(&H->fake, OUT_PEER, &s)) &&
           req->body_case != ALYS__WIRE__WIRE_MSG__BODY_GET_HEADERS)
        alys_wire_free(&req);
    cr_assert_not_null(req, "no GetHeaders sent");
    cr_assert_eq(s, slot);
    uint64_t id = req->request_id;
    alys_wire_free(&req);
    return id;
}

static void answer_headers(int slot, uint64_t id, uint64_t start, ProtobufCBinaryData *items, size_t n)
{
    Alys__Wire__Headers h = ALYS__WIRE__HEADERS__INIT;
    h.start = start;
    h.n_headers = n;
    h.headers = items;
    alys_wire_msg_t m = ALYS__WIRE__WIRE_MSG__INIT;
    m.request_id = id;
    m.body_case = ALYS__WIRE__WIRE_MSG__BODY_HEADERS;
    m.headers = &h;
    peer_frame(slot, &m);
}

static void empty_headers(int slot, uint64_t id)
{
    answer_headers(slot, id, 0, NULL, 0);
}

Test(pm_core, an_answer_after_the_deadline_is_late_and_free_but_a_second_copy_costs)
{
    int slot = ready_peer(50);
    fetch_headers(90, PEER_KEY, 1, 10);
    uint64_t id = sent_get_headers(slot);
    at(1000 + PM_REQ_MAX_TIMEOUT_MS + 1);
    pm_core_tick_fast(H->pm); /* the deadline: a timeout, charged as such */
    double after_timeout = score_of(PEER_KEY);
    empty_headers(slot, id);
    cr_assert_eq(alys_metric_value(H->metrics, "alys_peer_late_responses_total", NULL), 1);
    cr_assert_float_eq(score_of(PEER_KEY), after_timeout, 1e-9, "a late answer cost something");
    empty_headers(slot, id); /* the same answer again: nobody asked twice */
    cr_assert_lt(score_of(PEER_KEY), after_timeout);
}

static void peer_raw(int slot, const void *data, size_t len, size_t n_frames)
{
    pm_core_on_peer_frame(H->pm, slot, data, len, n_frames);
}

static bool banned(const char *id)
{
    return peer_table_is_banned(H->pm->table, id, NULL, pm_now(H->pm));
}


Test(pm_core, one_undecodable_frame_costs_a_little_and_a_flood_bans_the_server)
{
    int slot = ready_peer(50);
    static const uint8_t junk[] = {0xff, 0xff, 0xff, 0xff, 0x0f};
    peer_raw(slot, junk, sizeof junk, 1);
    cr_assert_not(banned(PEER_KEY), "one bad frame is not a ban");
    cr_assert_lt(score_of(PEER_KEY), 0.0);
    int n = 1;
    while (!banned(PEER_KEY) && n < 100) {
        peer_raw(slot, junk, sizeof junk, 1);
        n++;
    }
    cr_assert(banned(PEER_KEY), "100 undecodable frames and not banned");
    cr_assert_leq(n, 10, "banned only after %d frames", n);
    cr_assert(H->fake.hung_up[slot], "a banned server's link is kept");
    pm_core_tick_slow(H->pm); /* the ban path: persisted */
    alys_env_t *env = NULL;
    expect_storage(ALYS__STORAGE__STORAGE_MSG__MSG_PUT_PEER_BANS, &env);
    cr_assert_eq(env->storage->put_peer_bans->n_bans, 1);
    cr_assert_str_eq(env->storage->put_peer_bans->bans[0]->peer_id, PEER_KEY);
    alys_env_free(&env);
}

Test(pm_core, a_request_from_a_server_we_dialled_is_the_wrong_way)
{
    int slot = ready_peer(50);
    Alys__Wire__GetBlocks gb = ALYS__WIRE__GET_BLOCKS__INIT;
    gb.start = 1;
    gb.count = 10;
    alys_wire_msg_t m = ALYS__WIRE__WIRE_MSG__INIT;
    m.request_id = 7;
    m.body_case = ALYS__WIRE__WIRE_MSG__BODY_GET_BLOCKS;
    m.get_blocks = &gb;
    peer_frame(slot, &m);
    cr_assert_eq(alys_metric_value(H->metrics, "alys_peer_misbehaviour_total",
                                   "side=\"outbound\",offence=\"wrong_way\""),
                 1);
    cr_assert_lt(score_of(PEER_KEY), 0.0);
}

Test(pm_core, a_multi_part_message_from_a_server_is_priced_by_all_its_bytes)
{
    int slot = ready_peer(50);
    static const uint8_t junk[16] = {0};
    peer_raw(slot, junk, 4u << 20, 3); /* data not read for n_frames != 1 */
    double v = score_of(PEER_KEY);
    cr_assert_float_eq(v, -pm_bad_cost(PM_BAD_SHAPE, 4u << 20), 1e-6, "score %f", v);
}

/* ---- the same on the serving side ------------------------------------------------ */

/* "client-1" is on a CURVE link (CLIENT_KEY, as client_frame); other ids
 * on plaintext links, known by their routing ids. */
static void client_raw(const char *id, const void *data, size_t len)
{
    const char *key = strcmp(id, "client-1") == 0 ? CLIENT_KEY : NULL;
    pm_core_on_client_frame(H->pm, (const uint8_t *) id, strlen(id), "127.0.0.1", key, data, len);
}

static size_t client_answers(void)
{
    size_t n = 0;
    alys_wire_msg_t *r;
    while ((r = fake_next_wire(&H->fake, OUT_CLIENT, NULL))) {
        n++;
        alys_wire_free(&r);
    }
    return n;
}

Test(pm_core, a_flood_of_undecodable_frames_bans_an_inbound_client_by_who_it_is)
{
    started(10);
    client_handshake(); /* "client-1", whose link proved CLIENT_KEY: the ban is on the key */
    static const uint8_t junk[] = {0xff, 0xff, 0xff, 0xff, 0x0f};
    client_raw("client-1", junk, sizeof junk);
    cr_assert_eq(client_answers(), 1, "the first gets its BAD_REQUEST");
    cr_assert_not(banned(CLIENT_KEY));
    int n = 1;
    while (!banned(CLIENT_KEY) && n < 100) {
        client_raw("client-1", junk, sizeof junk);
        n++;
    }
    cr_assert(banned(CLIENT_KEY), "100 undecodable frames and not banned");
    cr_assert_leq(n, 10, "banned only after %d frames", n);
    client_answers();
    get_headers(1, 5); /* a valid request from the banned client: nothing */
    cr_assert_eq(client_answers(), 0, "a banned client is still answered");
    cr_assert_gt(alys_metric_value(H->metrics, "alys_peer_banned_frames_total", NULL), 0);
    /* Another client is served as ever. */
    client_raw("client-2", junk, sizeof junk);
    cr_assert_eq(client_answers(), 1);
    pm_core_tick_slow(H->pm);
    alys_env_t *env = NULL;
    expect_storage(ALYS__STORAGE__STORAGE_MSG__MSG_PUT_PEER_BANS, &env);
    cr_assert_eq(env->storage->put_peer_bans->n_bans, 1);
    cr_assert_str_eq(env->storage->put_peer_bans->bans[0]->peer_id, CLIENT_KEY);
    alys_env_free(&env);
}

Test(pm_core, a_response_sent_to_the_server_is_the_wrong_way_and_unanswered)
{
    started(10);
    client_handshake();
    Alys__Wire__Peers p = ALYS__WIRE__PEERS__INIT;
    alys_wire_msg_t m = ALYS__WIRE__WIRE_MSG__INIT;
    m.request_id = 3;
    m.body_case = ALYS__WIRE__WIRE_MSG__BODY_PEERS;
    m.peers = &p;
    client_frame(&m);
    cr_assert_eq(client_answers(), 0);
    cr_assert_eq(alys_metric_value(H->metrics, "alys_peer_misbehaviour_total",
                                   "side=\"inbound\",offence=\"wrong_way\""),
                 1);
}

Test(pm_core, big_frames_past_the_byte_bucket_are_refused_unread_and_end_in_a_ban)
{
    started(10);
    size_t len = 5u << 20; /* a 5 MiB frame: well under the frame limit */
    uint8_t *junk = calloc(1, len);
    cr_assert_not_null(junk);
    client_raw("flooder", junk, len); /* within the 8 MiB burst: read (undecodable) */
    cr_assert_eq(alys_metric_value(H->metrics, "alys_peer_misbehaviour_total",
                                   "side=\"inbound\",offence=\"over_bytes\""),
                 0);
    int n = 1;
    while (!banned("in:flooder") && n < 20) {
        client_raw("flooder", junk, len); /* same millisecond: no refill */
        n++;
    }
    free(junk);
    cr_assert(banned("in:flooder"), "20 frames of 5 MiB at once and not banned");
    cr_assert_leq(n, 5, "banned only after %d frames", n);
    cr_assert_geq(alys_metric_value(H->metrics, "alys_peer_misbehaviour_total",
                                    "side=\"inbound\",offence=\"over_bytes\""),
                  1);
}

Test(pm_core, a_multi_part_message_to_the_server_costs_its_sender)
{
    started(10);
    pm_core_on_client_parts(H->pm, (const uint8_t *) "parts", 5, NULL, 100);
    cr_assert_eq(alys_metric_value(H->metrics, "alys_peer_misbehaviour_total",
                                   "side=\"inbound\",offence=\"shape\""),
                 1);
    cr_assert_eq(client_answers(), 0);
}

Test(pm_core, an_inbound_ban_is_short_and_runs_out)
{
    started(10);
    static const uint8_t junk[] = {0xff, 0xff, 0xff, 0xff, 0x0f};
    for (int i = 0; i < 10 && !banned("in:short"); i++)
        client_raw("short", junk, sizeof junk);
    cr_assert(banned("in:short"));
    at(H->mono + PM_INBOUND_BAN_MS - 1);
    cr_assert(banned("in:short"), "the ban ended early");
    at(H->mono + 2);
    cr_assert_not(banned("in:short"), "an inbound ban outlasted PM_INBOUND_BAN_MS");
}

/* ---- block gossip (peer_gossip.c, pm_gossip.h) ----------------------------------------- */

/* An encoded block at height on parent (no txs, not signed: gossip's own
 * decisions only read the header). Freed by the caller. */
static ProtobufCBinaryData gossip_block(uint64_t height, const uint8_t *parent, uint8_t tag)
{
    alys_block_t b;
    memset(&b, 0, sizeof b);
    b.header.height = height;
    memcpy(b.header.parent_hash, parent, ALYS_HASH_LEN);
    b.header.slot = height;
    b.header.signature[0] = tag; /* a different block for another tag */
    uint8_t *bytes = NULL;
    size_t len = 0;
    cr_assert_eq(alys_block_encode(&b, &bytes, &len), 0);
    return (ProtobufCBinaryData){len, bytes};
}

static void push_from(int slot, ProtobufCBinaryData blk)
{
    Alys__Wire__NewBlock nb = ALYS__WIRE__NEW_BLOCK__INIT;
    nb.block = blk;
    alys_wire_msg_t m = ALYS__WIRE__WIRE_MSG__INIT;
    m.body_case = ALYS__WIRE__WIRE_MSG__BODY_NEW_BLOCK;
    m.new_block = &nb;
    peer_frame(slot, &m);
}

/* The ProcessBatch ids sent to BlockProcessor since the last look. */
static size_t process_batches(uint64_t *last_corr)
{
    size_t n = 0;
    alys_env_t *env;
    while ((env = fake_next_bus(&H->fake, PM_TO_PROCESSOR))) {
        if (env->body_case == ALYS__BUS__ENVELOPE__BODY_PROCESSOR &&
            env->processor->msg_case == ALYS__PROCESSOR__PROCESSOR_MSG__MSG_PROCESS_BATCH) {
            n++;
            cr_assert_eq(env->processor->process_batch->n_blocks, 1);
            if (last_corr)
                *last_corr = env->corr_id;
        }
        alys_env_free(&env);
    }
    return n;
}

/* NewBlock frames sent to peers of kind since the last look. */
static size_t pushes(out_kind_t kind)
{
    size_t n = 0;
    alys_wire_msg_t *m;
    while ((m = fake_next_wire(&H->fake, kind, NULL))) {
        n += m->body_case == ALYS__WIRE__WIRE_MSG__BODY_NEW_BLOCK;
        alys_wire_free(&m);
    }
    return n;
}

static void gossip_processed(uint64_t corr, bool ok, const char *reason, uint64_t head)
{
    static uint8_t new_head[ALYS_HASH_LEN] = {0x33};
    Alys__Processor__BatchProcessed bp = ALYS__PROCESSOR__BATCH_PROCESSED__INIT;
    bp.batch_id = corr;
    bp.committed = ok ? 1 : 0;
    bp.failed = !ok;
    bp.failed_height = ok ? 0 : head + 1;
    bp.reason = (char *) (ok ? "" : reason);
    bp.head_height = head;
    bp.head_hash = (ProtobufCBinaryData){ALYS_HASH_LEN, ok ? new_head : H->head_hash};
    Alys__Processor__ProcessorMsg pm = ALYS__PROCESSOR__PROCESSOR_MSG__INIT;
    pm.msg_case = ALYS__PROCESSOR__PROCESSOR_MSG__MSG_BATCH_PROCESSED;
    pm.batch_processed = &bp;
    alys_env_t env = ALYS__BUS__ENVELOPE__INIT;
    env.reply = true;
    env.corr_id = corr;
    env.body_case = ALYS__BUS__ENVELOPE__BODY_PROCESSOR;
    env.processor = &pm;
    pm_core_on_processor(H->pm, &env);
}

static double gossip_dropped(const char *reason)
{
    char labels[64];
    snprintf(labels, sizeof labels, "reason=\"%s\"", reason);
    return alys_metric_value(H->metrics, "alys_gossip_blocks_dropped_total", labels);
}

Test(pm_core, a_pushed_block_is_checked_then_relayed_to_others_not_back)
{
    int slot = ready_peer(50);
    client_handshake(); /* a second peer, inbound */
    pushes(OUT_PEER);
    ProtobufCBinaryData blk = gossip_block(11, H->head_hash, 1);
    push_from(slot, blk);
    uint64_t corr = 0;
    cr_assert_eq(process_batches(&corr), 1, "to BlockProcessor");
    cr_assert_eq(pushes(OUT_CLIENT) + pushes(OUT_PEER), 0, "nothing relayed before the commit");
    gossip_processed(corr, true, NULL, 11);
    cr_assert_eq(pushes(OUT_CLIENT), 1, "relayed once committed");
    cr_assert_eq(pushes(OUT_PEER), 0, "not back to its pusher");
    free(blk.data);
}

Test(pm_core, a_duplicate_push_is_dropped_by_hash)
{
    int slot = ready_peer(50);
    ProtobufCBinaryData blk = gossip_block(11, H->head_hash, 1);
    push_from(slot, blk);
    push_from(slot, blk);
    cr_assert_eq(process_batches(NULL), 1);
    cr_assert_eq(gossip_dropped("duplicate"), 1);
    free(blk.data);
}

Test(pm_core, a_pushed_block_refused_for_its_content_costs_the_pusher)
{
    int slot = ready_peer(50);
    ProtobufCBinaryData blk = gossip_block(11, H->head_hash, 1);
    push_from(slot, blk);
    uint64_t corr = 0;
    process_batches(&corr);
    gossip_processed(corr, false, "bad_proposer_signature", 10);
    cr_assert_eq(gossip_dropped("invalid"), 1);
    cr_assert_eq(pushes(OUT_CLIENT) + pushes(OUT_PEER), 0, "never relayed");
    free(blk.data);
}

Test(pm_core, a_pushed_block_on_another_parent_costs_nothing)
{
    int slot = ready_peer(50);
    ProtobufCBinaryData blk = gossip_block(11, H->head_hash, 1);
    push_from(slot, blk);
    uint64_t corr = 0;
    process_batches(&corr);
    gossip_processed(corr, false, "parent_mismatch", 10);
    cr_assert_eq(gossip_dropped("invalid"), 0, "another branch is not a lie");
    cr_assert_eq(gossip_dropped("other_branch"), 1);
    free(blk.data);
}

Test(pm_core, an_undecodable_push_costs_the_pusher)
{
    int slot = ready_peer(50);
    new_block_from(slot); /* one byte */
    cr_assert_eq(gossip_dropped("invalid"), 1);
    cr_assert_eq(process_batches(NULL), 0);
}

Test(pm_core, an_orphan_fetches_its_ancestors_from_its_pusher_then_goes)
{
    int slot = ready_peer(50);
    pushes(OUT_PEER);
    static const uint8_t p12[ALYS_HASH_LEN] = {0x44};
    ProtobufCBinaryData blk = gossip_block(13, p12, 1);
    push_from(slot, blk);
    cr_assert_eq(process_batches(NULL), 0, "its parent is unknown");
    alys_wire_msg_t *m;
    int to = -1;
    bool asked = false;
    while ((m = fake_next_wire(&H->fake, OUT_PEER, &to))) {
        if (m->body_case == ALYS__WIRE__WIRE_MSG__BODY_GET_BLOCKS) {
            asked = true;
            cr_assert_eq(to, slot, "from the pusher");
            cr_assert_eq(m->get_blocks->start, 11);
            cr_assert_eq(m->get_blocks->count, 2);
        }
        alys_wire_free(&m);
    }
    cr_assert(asked, "the missing range is fetched");
    cr_assert_null(to_sync_peer(ALYS__PEER__PEER_MSG__MSG_FETCH_RESULT),
                   "gossip's own fetch is not SyncActor's");
    /* A block at 11 (from anywhere) commits; then 12 with hash p12 commits:
     * the orphan links and goes. Simulated by the processor's answers. */
    ProtobufCBinaryData b11 = gossip_block(11, H->head_hash, 2);
    push_from(slot, b11);
    uint64_t corr = 0;
    process_batches(&corr);
    gossip_processed(corr, true, NULL, 11);
    cr_assert_eq(process_batches(NULL), 0, "not before its parent is the head");
    ProtobufCBinaryData b12 = gossip_block(12, (const uint8_t[ALYS_HASH_LEN]){0x33}, 3);
    push_from(slot, b12);
    process_batches(&corr);
    /* Storage's head is now 12 with hash p12. */
    static uint8_t h12[ALYS_HASH_LEN] = {0x44};
    Alys__Processor__BatchProcessed bp = ALYS__PROCESSOR__BATCH_PROCESSED__INIT;
    bp.batch_id = corr;
    bp.committed = 1;
    bp.head_height = 12;
    bp.head_hash = (ProtobufCBinaryData){ALYS_HASH_LEN, h12};
    Alys__Processor__ProcessorMsg pm = ALYS__PROCESSOR__PROCESSOR_MSG__INIT;
    pm.msg_case = ALYS__PROCESSOR__PROCESSOR_MSG__MSG_BATCH_PROCESSED;
    pm.batch_processed = &bp;
    alys_env_t env = ALYS__BUS__ENVELOPE__INIT;
    env.reply = true;
    env.corr_id = corr;
    env.body_case = ALYS__BUS__ENVELOPE__BODY_PROCESSOR;
    env.processor = &pm;
    pm_core_on_processor(H->pm, &env);
    cr_assert_eq(process_batches(NULL), 1, "the orphan goes once its parent is the head");
    free(blk.data);
    free(b11.data);
    free(b12.data);
}

Test(pm_core, a_push_far_ahead_is_left_to_range_sync)
{
    int slot = ready_peer(50);
    discovered(NULL);
    ProtobufCBinaryData blk = gossip_block(11 + PMG_MAX_GAP + 1, H->head_hash, 1);
    push_from(slot, blk);
    cr_assert_eq(process_batches(NULL), 0);
    uint64_t h = 0;
    cr_assert_eq(discovered(&h), 1, "SyncActor hears the peer's height");
    cr_assert_eq(h, 11 + PMG_MAX_GAP + 1);
    free(blk.data);
}

Test(pm_core, our_produced_block_is_pushed_to_every_ready_peer)
{
    ready_peer(50);
    client_handshake();
    pushes(OUT_PEER);
    ProtobufCBinaryData blk = gossip_block(11, H->head_hash, 1);
    Alys__Peer__AnnounceBlock ab = ALYS__PEER__ANNOUNCE_BLOCK__INIT;
    ab.block = blk;
    Alys__Peer__PeerMsg m = ALYS__PEER__PEER_MSG__INIT;
    m.msg_case = ALYS__PEER__PEER_MSG__MSG_ANNOUNCE_BLOCK;
    m.announce_block = &ab;
    pm_core_on_peer_msg(H->pm, &m);
    cr_assert_eq(pushes(OUT_PEER), 1);
    cr_assert_eq(pushes(OUT_CLIENT), 1);
    cr_assert_eq(H->pm->head_height, 11, "committed before announced: our head now");
    free(blk.data);
}

Test(pm_core, a_block_pushed_by_an_inbound_client_is_taken_too)
{
    started(10);
    client_handshake();
    ProtobufCBinaryData blk = gossip_block(11, H->head_hash, 1);
    Alys__Wire__NewBlock nb = ALYS__WIRE__NEW_BLOCK__INIT;
    nb.block = blk;
    alys_wire_msg_t m = ALYS__WIRE__WIRE_MSG__INIT;
    m.body_case = ALYS__WIRE__WIRE_MSG__BODY_NEW_BLOCK;
    m.new_block = &nb;
    client_frame(&m);
    cr_assert_eq(process_batches(NULL), 1, "to BlockProcessor, as from a peer we dialled");
    cr_assert_null(H->pm->stash.bytes, "the stash is emptied after the frame");
    free(blk.data);
}

/* ---- identity: a peer is its key ------------------------------------------------------ */

Test(pm_core, our_status_names_our_key_and_our_keyed_endpoint)
{
    started(10);
    alys_wire_msg_t *m = NULL;
    pm_core_tick_fast(H->pm); /* dials the bootstrap peer: our Status first */
    while ((m = fake_next_wire(&H->fake, OUT_PEER, NULL)) &&
           m->body_case != ALYS__WIRE__WIRE_MSG__BODY_STATUS)
        alys_wire_free(&m);
    cr_assert_not_null(m);
    cr_expect_str_eq(m->status->node_id, OUR_KEY);
    cr_expect_str_eq(m->status->listen, "alys://" OUR_KEY "@127.0.0.1:30300");
    alys_wire_free(&m);
}

Test(pm_core, a_status_contradicting_the_dialled_key_is_a_violation)
{
    started(10);
    uint64_t probe = 0;
    int slot = dialled(&probe);
    peer_status(slot, probe, CLIENT_KEY, 50, H->genesis);
    cr_assert(H->fake.hung_up[slot], "refused");
    cr_assert_eq(discovered(NULL), 0);
    peer_view_t v;
    cr_assert_eq(peer_table_get(H->pm->table, PEER_KEY, WALL0 + 1001, &v), PEER_OK,
                 "charged on the key it dialled");
    cr_expect(peer_table_is_banned(H->pm->table, PEER_KEY, NULL, WALL0 + 1001),
              "a violation bans: %s", v.ban_reason);
    cr_expect_eq(alys_metric_value(H->metrics, "alys_peer_key_mismatch_total", NULL), 1);
}

Test(pm_core, our_own_key_is_this_node)
{
    started(10);
    uint64_t probe = 0;
    int slot = dialled(&probe);
    peer_status(slot, probe, OUR_KEY, 50, H->genesis);
    cr_assert(H->fake.hung_up[slot]);
    cr_assert_eq(discovered(NULL), 0);
}

Test(pm_core, an_inbound_status_contradicting_its_link_key_is_refused_and_charged)
{
    started(10);
    client_status("someone-else");
    alys_wire_msg_t *r = fake_next_wire(&H->fake, OUT_CLIENT, NULL);
    cr_assert_not_null(r);
    cr_expect_eq(r->body_case, ALYS__WIRE__WIRE_MSG__BODY_ERROR);
    alys_wire_free(&r);
    peer_view_t v;
    cr_assert_eq(peer_table_get(H->pm->table, CLIENT_KEY, WALL0 + 1001, &v), PEER_OK);
    cr_expect(peer_table_is_banned(H->pm->table, CLIENT_KEY, NULL, WALL0 + 1001), "%s", v.ban_reason);
    /* refused: its next requests get nothing */
    client_status(CLIENT_KEY);
    cr_expect_null(fake_next_wire(&H->fake, OUT_CLIENT, NULL));
}

/* ---- GetInFlight (a restarted SyncActor adopts what we hold) ------------------------------ */

static void fetch_blocks_for(uint64_t request_id, const char *peer, uint64_t start,
                             uint32_t count, bool to_requester)
{
    Alys__Peer__FetchBlocks fb = ALYS__PEER__FETCH_BLOCKS__INIT;
    fb.request_id = request_id;
    fb.peer_id = (char *) peer;
    fb.start = start;
    fb.count = count;
    fb.to_requester = to_requester;
    Alys__Peer__PeerMsg m = ALYS__PEER__PEER_MSG__INIT;
    m.msg_case = ALYS__PEER__PEER_MSG__MSG_FETCH_BLOCKS;
    m.fetch_blocks = &fb;
    pm_core_on_peer_msg(H->pm, &m);
}

static void fetch_blocks(uint64_t request_id, const char *peer, uint64_t start, uint32_t count)
{
    fetch_blocks_for(request_id, peer, start, count, false);
}

static const Alys__Peer__InFlightRange *in_flight_of(const Alys__Peer__InFlight *inf, uint64_t id)
{
    for (size_t i = 0; i < inf->n_ranges; i++)
        if (inf->ranges[i]->request_id == id)
            return inf->ranges[i];
    return NULL;
}

Test(pm_core, get_in_flight_lists_syncs_block_fetches_outstanding_and_buffered_only)
{
    ready_peer(100);
    fetch_blocks(5, PEER_KEY, 20, 4);        /* outstanding at the peer */
    fetch_headers(6, PEER_KEY, 30, 4);       /* headers: not listed */
    uint64_t batch = delivered_batch(11, 2); /* request 90, at BlockProcessor */
    static uint8_t byte = 4;
    ProtobufCBinaryData blocks[2] = {{1, &byte}, {1, &byte}};
    uint32_t delivered = 0;
    uint64_t gossip = PM_GOSSIP_REQ_BIT | 7;
    cr_assert_eq(pm_deliver(H->pm, gossip, PEER_KEY, 13, blocks, 2, NULL, &delivered),
                 ALYS__PEER__OUTCOME__OK);

    Alys__Peer__InFlight *inf = pm_in_flight_new(H->pm);
    cr_assert_not_null(inf);
    cr_assert_eq(inf->n_ranges, 2);
    const Alys__Peer__InFlightRange *out = in_flight_of(inf, 5), *buf = in_flight_of(inf, 90);
    cr_assert_not_null(out, "the outstanding fetch is missing");
    cr_assert_not(out->delivered);
    cr_assert_eq(out->start, 20);
    cr_assert_eq(out->count, 4);
    cr_assert_str_eq(out->peer_id, PEER_KEY);
    cr_assert_not_null(buf, "the buffered range is missing");
    cr_assert(buf->delivered);
    cr_assert_eq(buf->start, 11);
    cr_assert_eq(buf->count, 2);
    cr_assert_null(in_flight_of(inf, 6), "a header fetch was listed");
    cr_assert_null(in_flight_of(inf, gossip), "gossip's own fetch was listed");
    /* It packs: the shell sends it as it is. */
    cr_assert_gt(alys__peer__in_flight__get_packed_size(inf), 0);
    pm_in_flight_free(&inf);
    cr_assert_null(inf);

    processed(batch, 2, 12); /* committed: no longer held */
    inf = pm_in_flight_new(H->pm);
    cr_assert_not_null(inf);
    cr_assert_null(in_flight_of(inf, 90), "a committed range is still listed");
    cr_assert_not_null(in_flight_of(inf, 5));
    pm_in_flight_free(&inf);
}

Test(pm_core, get_in_flight_from_sync_goes_back_on_the_pipe_of_its_results)
{
    ready_peer(100);
    fetch_blocks(5, PEER_KEY, 20, 4);
    cr_assert_eq(pm_core_on_get_in_flight(H->pm, 4242), 0);
    alys_env_t *env = to_sync_peer(ALYS__PEER__PEER_MSG__MSG_IN_FLIGHT);
    cr_assert_not_null(env, "no InFlight sent to sync");
    cr_assert(env->reply);
    cr_assert_eq(env->corr_id, 4242);
    cr_assert_eq(env->peer->in_flight->n_ranges, 1);
    cr_assert_eq(env->peer->in_flight->ranges[0]->request_id, 5);
    alys_env_free(&env);
}

/* ---- fork choice: locator headers, blocks for the requester ---------------------------- */

static uint8_t s_loc[3][ALYS_HASH_LEN] = {{0xa0}, {0xa1}, {0xa2}};

static void fetch_headers_located(uint64_t request_id, uint32_t count, size_t n_hashes)
{
    ProtobufCBinaryData loc[ALYS_LOCATOR_MAX + 1];
    cr_assert_leq(n_hashes, ALYS_LOCATOR_MAX + 1);
    for (size_t i = 0; i < n_hashes; i++)
        loc[i] = (ProtobufCBinaryData){ALYS_HASH_LEN, s_loc[i % 3]};
    fetch_headers_with(request_id, PEER_KEY, 0, count, loc, n_hashes);
}

/* The next request of body kind sent to a peer (others skipped). */
static alys_wire_msg_t *sent_request(Alys__Wire__WireMsg__BodyCase body)
{
    alys_wire_msg_t *req = NULL;
    while ((req = fake_next_wire(&H->fake, OUT_PEER, NULL)) && req->body_case != body)
        alys_wire_free(&req);
    return req;
}

/* Encoded headers of heights start.. (n of them) into out; free with free_items. */
static void headers_at(uint64_t start, size_t n, ProtobufCBinaryData *out)
{
    for (size_t i = 0; i < n; i++) {
        alys_header_t h;
        memset(&h, 0, sizeof h);
        h.height = start + i;
        h.slot = start + i;
        out[i] = (ProtobufCBinaryData){0, NULL};
        cr_assert_eq(alys_header_encode(&h, &out[i].data, &out[i].len), 0);
    }
}

static void free_items(ProtobufCBinaryData *items, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(items[i].data);
}

Test(pm_core, a_locator_fetch_goes_out_with_its_hashes_and_reports_where_the_answer_starts)
{
    int slot = ready_peer(50);
    fetch_headers_located(80, 10, 3);
    alys_wire_msg_t *req = sent_request(ALYS__WIRE__WIRE_MSG__BODY_GET_HEADERS);
    cr_assert_not_null(req, "no GetHeaders sent");
    cr_assert_eq(req->get_headers->count, 10);
    cr_assert_eq(req->get_headers->n_locator, 3);
    for (size_t i = 0; i < 3; i++)
        cr_assert_eq(memcmp(req->get_headers->locator[i].data, s_loc[i], ALYS_HASH_LEN), 0);
    uint64_t id = req->request_id;
    alys_wire_free(&req);
    ProtobufCBinaryData items[3];
    headers_at(5, 3, items); /* the server's choice: the chains meet at 4 */
    answer_headers(slot, id, 5, items, 3);
    free_items(items, 3);
    alys_env_t *env = to_sync_peer(ALYS__PEER__PEER_MSG__MSG_HEADERS_RESULT);
    cr_assert_not_null(env);
    const Alys__Peer__HeadersResult *hr = env->peer->headers_result;
    cr_assert_eq(hr->request_id, 80);
    cr_assert_eq(hr->outcome, ALYS__PEER__OUTCOME__OK, "%s", hr->detail);
    cr_assert_eq(hr->start, 5, "where the answer starts");
    cr_assert_eq(hr->n_headers, 3);
    alys_env_free(&env);
}

Test(pm_core, an_empty_locator_answer_is_ok_and_costs_the_peer_nothing)
{
    int slot = ready_peer(50);
    fetch_headers_located(81, 10, 2);
    alys_wire_msg_t *req = sent_request(ALYS__WIRE__WIRE_MSG__BODY_GET_HEADERS);
    cr_assert_not_null(req);
    uint64_t id = req->request_id;
    alys_wire_free(&req);
    double before = score_of(PEER_KEY);
    answer_headers(slot, id, 51, NULL, 0); /* our head is its head */
    alys_env_t *env = to_sync_peer(ALYS__PEER__PEER_MSG__MSG_HEADERS_RESULT);
    cr_assert_not_null(env);
    cr_assert_eq(env->peer->headers_result->outcome, ALYS__PEER__OUTCOME__OK);
    cr_assert_eq(env->peer->headers_result->n_headers, 0);
    cr_assert_eq(env->peer->headers_result->start, 51);
    alys_env_free(&env);
    cr_assert_geq(score_of(PEER_KEY), before, "an empty answer cost the peer");
}

Test(pm_core, a_locator_of_more_than_the_wire_bound_is_a_bad_request_never_sent)
{
    ready_peer(50);
    fetch_headers_located(82, 10, ALYS_LOCATOR_MAX + 1);
    cr_assert_null(sent_request(ALYS__WIRE__WIRE_MSG__BODY_GET_HEADERS));
    alys_env_t *env = to_sync_peer(ALYS__PEER__PEER_MSG__MSG_HEADERS_RESULT);
    cr_assert_not_null(env);
    cr_assert_eq(env->peer->headers_result->outcome, ALYS__PEER__OUTCOME__NO_PEER);
    cr_assert(strstr(env->peer->headers_result->detail, "bad request") != NULL);
    alys_env_free(&env);
}

static void fetch_blocks_to_requester(uint64_t request_id, uint64_t start, uint32_t count)
{
    fetch_blocks_for(request_id, PEER_KEY, start, count, true);
}

/* Answer the next GetBlocks with n blocks from start (of another branch). */
static void answer_branch_blocks(int slot, uint64_t start, size_t n, bool truncated,
                                 ProtobufCBinaryData *blks)
{
    alys_wire_msg_t *req = sent_request(ALYS__WIRE__WIRE_MSG__BODY_GET_BLOCKS);
    cr_assert_not_null(req, "no GetBlocks sent");
    static const uint8_t other[ALYS_HASH_LEN] = {0x77};
    for (size_t i = 0; i < n; i++)
        blks[i] = gossip_block(start + i, other, 9);
    Alys__Wire__Blocks b = ALYS__WIRE__BLOCKS__INIT;
    b.start = start;
    b.n_blocks = n;
    b.blocks = blks;
    b.truncated = truncated;
    alys_wire_msg_t m = ALYS__WIRE__WIRE_MSG__INIT;
    m.request_id = req->request_id;
    m.body_case = ALYS__WIRE__WIRE_MSG__BODY_BLOCKS;
    m.blocks = &b;
    alys_wire_free(&req);
    peer_frame(slot, &m);
}

Test(pm_core, blocks_for_the_requester_come_back_in_the_fetch_result_not_to_the_processor)
{
    int slot = ready_peer(100);
    fetch_blocks_to_requester(83, 11, 3);
    Alys__Peer__InFlight *inf = pm_in_flight_new(H->pm);
    cr_assert_not_null(inf);
    cr_assert_null(in_flight_of(inf, 83), "not the reorder buffer's: not for a restarted sync");
    pm_in_flight_free(&inf);
    ProtobufCBinaryData blks[3];
    answer_branch_blocks(slot, 11, 3, false, blks);
    alys_env_t *env = to_sync_peer(ALYS__PEER__PEER_MSG__MSG_FETCH_RESULT);
    cr_assert_not_null(env);
    const Alys__Peer__FetchResult *fr = env->peer->fetch_result;
    cr_assert_eq(fr->request_id, 83);
    cr_assert_eq(fr->outcome, ALYS__PEER__OUTCOME__OK, "%s", fr->detail);
    cr_assert_eq(fr->delivered, 3);
    cr_assert_eq(fr->n_blocks, 3);
    for (size_t i = 0; i < 3; i++)
        cr_assert(fr->blocks[i].len == blks[i].len &&
                      memcmp(fr->blocks[i].data, blks[i].data, blks[i].len) == 0,
                  "block %zu is not the one served", i);
    alys_env_free(&env);
    free_items(blks, 3);
    cr_assert_null(fake_next_bus(&H->fake, PM_TO_PROCESSOR), "handed to BlockProcessor");
    cr_assert_null(to_sync_peer(ALYS__PEER__PEER_MSG__MSG_BATCH_OUTCOME));
    cr_assert_eq(reorder_blocks(H->pm->reorder), 0);
}

Test(pm_core, a_truncated_answer_for_the_requester_reports_what_came)
{
    int slot = ready_peer(100);
    fetch_blocks_to_requester(84, 11, 3);
    ProtobufCBinaryData blks[2];
    answer_branch_blocks(slot, 11, 2, true, blks);
    free_items(blks, 2);
    alys_env_t *env = to_sync_peer(ALYS__PEER__PEER_MSG__MSG_FETCH_RESULT);
    cr_assert_not_null(env);
    cr_assert_eq(env->peer->fetch_result->outcome, ALYS__PEER__OUTCOME__SHORT);
    cr_assert_eq(env->peer->fetch_result->delivered, 2);
    cr_assert_eq(env->peer->fetch_result->n_blocks, 2);
    alys_env_free(&env);
    cr_assert_null(fake_next_bus(&H->fake, PM_TO_PROCESSOR));
}

static void get_headers_located(uint32_t count)
{
    ProtobufCBinaryData loc[2] = {{ALYS_HASH_LEN, s_loc[0]}, {ALYS_HASH_LEN, s_loc[1]}};
    Alys__Wire__GetHeaders gh = ALYS__WIRE__GET_HEADERS__INIT;
    gh.count = count; /* start 0: unused with a locator */
    gh.n_locator = 2;
    gh.locator = loc;
    alys_wire_msg_t m = ALYS__WIRE__WIRE_MSG__INIT;
    m.request_id = 3;
    m.body_case = ALYS__WIRE__WIRE_MSG__BODY_GET_HEADERS;
    m.get_headers = &gh;
    client_frame(&m);
}

/* The storage read of a located GetHeaders: it carries the locator. */
static uint64_t expect_located_read(uint32_t count)
{
    alys_env_t *env = NULL;
    uint64_t corr = expect_storage(ALYS__STORAGE__STORAGE_MSG__MSG_GET_BLOCKS, &env);
    const Alys__Storage__GetBlocks *gb = env->storage->get_blocks;
    cr_assert(gb->headers_only);
    cr_assert_eq(gb->count, count);
    cr_assert_eq(gb->n_locator, 2);
    cr_assert_eq(memcmp(gb->locator[0].data, s_loc[0], ALYS_HASH_LEN), 0);
    cr_assert_eq(memcmp(gb->locator[1].data, s_loc[1], ALYS_HASH_LEN), 0);
    alys_env_free(&env);
    return corr;
}

/* A client's located GetHeaders for count, storage answering n items from
 * storage_start: our answer to the client, a Headers (free it). */
static alys_wire_msg_t *served_located(uint32_t count, uint64_t storage_start, uint32_t n)
{
    started(5000);
    client_handshake();
    get_headers_located(count);
    answer_blocks(expect_located_read(count), storage_start, n);
    alys_wire_msg_t *r = fake_next_wire(&H->fake, OUT_CLIENT, NULL);
    cr_assert_not_null(r);
    cr_assert_eq(r->body_case, ALYS__WIRE__WIRE_MSG__BODY_HEADERS, "%s", alys_wire_body_name(r));
    return r;
}

Test(pm_core, a_locator_get_headers_is_read_with_its_locator_and_answered_from_storages_start)
{
    alys_wire_msg_t *r = served_located(10, 4990, 10);
    cr_assert_eq(r->headers->start, 4990, "storage's start");
    cr_assert_eq(r->headers->n_headers, 10);
    cr_assert_not(r->headers->truncated);
    alys_wire_free(&r);
}

Test(pm_core, a_long_locator_read_continues_from_storages_start_without_the_locator)
{
    started(5000);
    client_handshake();
    get_headers_located(1500);
    answer_blocks(expect_located_read(PS_STORAGE_CHUNK), 100, PS_STORAGE_CHUNK);
    uint64_t corr = expect_read(100 + PS_STORAGE_CHUNK, 1500 - PS_STORAGE_CHUNK, true);
    answer_blocks(corr, 100 + PS_STORAGE_CHUNK, 1500 - PS_STORAGE_CHUNK);
    alys_wire_msg_t *r = fake_next_wire(&H->fake, OUT_CLIENT, NULL);
    cr_assert_not_null(r);
    cr_assert_eq(r->headers->start, 100);
    cr_assert_eq(r->headers->n_headers, 1500);
    alys_wire_free(&r);
}

Test(pm_core, a_locator_meeting_our_head_gets_an_empty_answer_not_an_error)
{
    alys_wire_msg_t *r = served_located(10, 5001, 0);
    cr_assert_eq(r->headers->start, 5001);
    cr_assert_eq(r->headers->n_headers, 0);
    cr_assert_not(r->headers->truncated, "an asker would take it for a violation");
    alys_wire_free(&r);
}

Test(pm_core, a_pushed_tip_of_a_longer_branch_tells_sync_its_height_and_costs_nothing)
{
    int slot = ready_peer(50); /* our head: 10 */
    double before = score_of(PEER_KEY);
    static const uint8_t other[ALYS_HASH_LEN] = {0x55};
    ProtobufCBinaryData blk = gossip_block(11, other, 1);
    push_from(slot, blk);
    free(blk.data);
    uint64_t corr = 0;
    cr_assert_eq(process_batches(&corr), 1);
    gossip_processed(corr, false, "parent_mismatch", 10);
    uint64_t height = 0;
    cr_assert_eq(discovered(&height), 1);
    cr_assert_eq(height, 11);
    cr_assert_eq(gossip_dropped("other_branch"), 1);
    cr_assert_float_eq(score_of(PEER_KEY), before, 1e-9, "another branch is not a lie");
}

Test(pm_core, a_pushed_block_refused_for_our_clock_tells_sync_nothing)
{
    int slot = ready_peer(50);
    ProtobufCBinaryData blk = gossip_block(11, H->head_hash, 1);
    push_from(slot, blk);
    free(blk.data);
    uint64_t corr = 0;
    cr_assert_eq(process_batches(&corr), 1);
    gossip_processed(corr, false, "future_slot", 10);
    cr_assert_eq(discovered(NULL), 0);
    cr_assert_eq(gossip_dropped("not_linked"), 1);
}

/* ---- the reorder buffer's copy at BlockProcessor (pm_park.c) --------------------------- */

Test(pm_core, every_range_the_buffer_accepts_is_parked_at_the_block_processor)
{
    started(10);
    delivered_batch(11, 2); /* request 90 */
    alys_env_t *env = to_park(ALYS__PROCESSOR__PROCESSOR_MSG__MSG_PARK);
    cr_assert_not_null(env, "not parked");
    const Alys__Processor__Park *p = env->processor->park;
    cr_assert_eq(env->corr_id, 0, "a Park expects no reply");
    cr_assert_eq(p->request_id, 90);
    cr_assert_eq(p->start, 11);
    cr_assert_eq(p->n_blocks, 2);
    cr_assert_str_eq(p->peer_id, PEER_KEY);
    alys_env_free(&env);
}

Test(pm_core, a_range_that_leaves_the_buffer_is_unparked)
{
    started(10);
    uint64_t batch = delivered_batch(11, 2);
    cr_assert_null(to_park(ALYS__PROCESSOR__PROCESSOR_MSG__MSG_UNPARK), "unparked while held");
    processed(batch, 2, 12); /* committed: the entry is complete */
    alys_env_t *env = to_park(ALYS__PROCESSOR__PROCESSOR_MSG__MSG_UNPARK);
    cr_assert_not_null(env, "a committed range stayed parked");
    cr_assert_eq(env->processor->unpark->n_request_ids, 1);
    cr_assert_eq(env->processor->unpark->request_ids[0], 90);
    alys_env_free(&env);
}

/* The next block request sent to a peer, or NULL. */
static alys_wire_msg_t *block_request(void)
{
    return sent_request(ALYS__WIRE__WIRE_MSG__BODY_GET_BLOCKS);
}

Test(pm_core, fetches_wait_for_the_parked_ranges_until_answered)
{
    s_parked_open = true;
    ready_peer(100);
    fetch_blocks(5, PEER_KEY, 20, 4);
    cr_assert_null(block_request(), "downloaded before the parked ranges were known");
    answer_parked(s_parked_corr, NULL, 0);
    alys_wire_msg_t *req = block_request();
    cr_assert_not_null(req, "the held fetch was not sent once the answer came");
    cr_assert_eq(req->get_blocks->start, 20);
    alys_wire_free(&req);
    s_parked_open = false;
}

Test(pm_core, fetches_wait_for_the_parked_ranges_only_until_the_timeout)
{
    s_parked_open = true;
    ready_peer(100);
    fetch_blocks(5, PEER_KEY, 20, 4);
    pm_core_tick_fast(H->pm);
    cr_assert_null(block_request(), "downloaded before the wait ran out");
    at(H->mono + H->cfg.request_timeout_ms); /* past the wait, whatever its share */
    pm_core_tick_fast(H->pm);
    alys_wire_msg_t *req = block_request();
    cr_assert_not_null(req, "the held fetch was never sent");
    alys_wire_free(&req);
    /* the answer, late: nothing taken back, its ranges unparked */
    static uint8_t byte = 5;
    ProtobufCBinaryData blocks[2] = {{1, &byte}, {1, &byte}};
    Alys__Processor__Park p = ALYS__PROCESSOR__PARK__INIT;
    p.request_id = 77;
    p.start = 11;
    p.n_blocks = 2;
    p.blocks = blocks;
    Alys__Processor__Park *ranges[1] = {&p};
    answer_parked(s_parked_corr, ranges, 1);
    cr_assert_eq(reorder_entries(H->pm->reorder), 0, "a late answer was taken back");
    alys_env_t *env = to_park(ALYS__PROCESSOR__PROCESSOR_MSG__MSG_UNPARK);
    cr_assert_not_null(env);
    cr_assert_eq(env->processor->unpark->request_ids[0], 77);
    alys_env_free(&env);
    s_parked_open = false;
}

Test(pm_core, a_reissued_range_is_answered_from_its_parked_copy_without_a_download)
{
    s_parked_open = true;
    ready_peer(100);
    fetch_blocks(5, PEER_KEY, 11, 2); /* SyncActor re-issues what was buffered */
    fetch_blocks(6, PEER_KEY, 20, 4); /* and what was on the wire */
    static uint8_t byte = 5;
    ProtobufCBinaryData blocks[2] = {{1, &byte}, {1, &byte}};
    Alys__Processor__Park p = ALYS__PROCESSOR__PARK__INIT;
    p.request_id = 90; /* the killed PeerManager's id for it */
    p.peer_id = PEER_KEY;
    p.start = 11;
    p.n_blocks = 2;
    p.blocks = blocks;
    Alys__Processor__Park *ranges[1] = {&p};
    answer_parked(s_parked_corr, ranges, 1);

    alys_env_t *env = to_sync_peer(ALYS__PEER__PEER_MSG__MSG_FETCH_RESULT);
    cr_assert_not_null(env, "sync got no result for the re-issued range");
    cr_assert_eq(env->peer->fetch_result->request_id, 5);
    cr_assert_eq(env->peer->fetch_result->outcome, ALYS__PEER__OUTCOME__OK);
    cr_assert_eq(env->peer->fetch_result->delivered, 2);
    alys_env_free(&env);
    alys_wire_msg_t *req = block_request();
    cr_assert_not_null(req, "the range that was on the wire was not downloaded");
    cr_assert_eq(req->get_blocks->start, 20, "the parked range was downloaded again");
    alys_wire_free(&req);
    cr_assert_null(block_request());
    env = to_park(ALYS__PROCESSOR__PROCESSOR_MSG__MSG_PARK_REKEY);
    cr_assert_not_null(env, "the parked copy kept its old id");
    cr_assert_eq(env->processor->park_rekey->old_request_id, 90);
    cr_assert_eq(env->processor->park_rekey->new_request_id, 5);
    alys_env_free(&env);
    /* it goes on to BlockProcessor under the new request */
    env = fake_next_bus(&H->fake, PM_TO_PROCESSOR);
    cr_assert_not_null(env, "the re-adopted range was not handed on");
    cr_assert_eq(env->processor->process_batch->n_blocks, 2);
    alys_env_free(&env);
    /* and GetInFlight lists it as delivered under the new id */
    Alys__Peer__InFlight *inf = pm_in_flight_new(H->pm);
    cr_assert_not_null(inf);
    const Alys__Peer__InFlightRange *r = in_flight_of(inf, 5);
    cr_assert_not_null(r);
    cr_assert(r->delivered);
    cr_assert_null(in_flight_of(inf, 90));
    pm_in_flight_free(&inf);
    s_parked_open = false;
}

Test(pm_core, a_held_range_committed_while_we_were_down_is_not_downloaded)
{
    s_parked_open = true;
    ready_peer(100);                 /* our head: 10 */
    fetch_blocks(5, PEER_KEY, 7, 4); /* [7,10]: BlockProcessor committed it meanwhile */
    answer_parked(s_parked_corr, NULL, 0);
    alys_env_t *env = to_sync_peer(ALYS__PEER__PEER_MSG__MSG_FETCH_RESULT);
    cr_assert_not_null(env, "sync got no result for the committed range");
    cr_assert_eq(env->peer->fetch_result->request_id, 5);
    cr_assert_eq(env->peer->fetch_result->outcome, ALYS__PEER__OUTCOME__OK);
    alys_env_free(&env);
    env = to_sync_peer(ALYS__PEER__PEER_MSG__MSG_BATCH_OUTCOME);
    cr_assert_not_null(env, "sync was not told the range is committed");
    cr_assert_eq(env->peer->batch_outcome->request_id, 5);
    cr_assert_eq(env->peer->batch_outcome->committed, 4);
    cr_assert_eq(env->peer->batch_outcome->head_height, 10);
    alys_env_free(&env);
    cr_assert_null(block_request(), "a committed range was downloaded");
    s_parked_open = false;
}

Test(pm_core, a_range_the_block_processor_committed_after_our_head_read_is_not_downloaded)
{
    s_parked_open = true;
    ready_peer(100);                  /* our head read: 10 */
    fetch_blocks(5, PEER_KEY, 11, 2); /* [11,12]: committed after that read */
    static uint8_t hash[ALYS_HASH_LEN] = {0x44};
    Alys__Processor__Parked p = ALYS__PROCESSOR__PARKED__INIT;
    p.head_height = 12; /* BlockProcessor dropped its parked copy at 12 */
    p.head_hash = (ProtobufCBinaryData){ALYS_HASH_LEN, hash};
    Alys__Processor__ProcessorMsg m = ALYS__PROCESSOR__PROCESSOR_MSG__INIT;
    m.msg_case = ALYS__PROCESSOR__PROCESSOR_MSG__MSG_PARKED;
    m.parked = &p;
    alys_env_t env = ALYS__BUS__ENVELOPE__INIT;
    env.reply = true;
    env.corr_id = s_parked_corr;
    env.body_case = ALYS__BUS__ENVELOPE__BODY_PROCESSOR;
    env.processor = &m;
    pm_core_on_processor(H->pm, &env);
    alys_env_t *out = to_sync_peer(ALYS__PEER__PEER_MSG__MSG_BATCH_OUTCOME);
    cr_assert_not_null(out, "sync was not told the range is committed");
    cr_assert_eq(out->peer->batch_outcome->request_id, 5);
    cr_assert_eq(out->peer->batch_outcome->head_height, 12);
    cr_assert_eq(out->peer->batch_outcome->head_hash.data[0], 0x44, "head and hash do not match");
    alys_env_free(&out);
    cr_assert_null(block_request(), "a committed range was downloaded");
    s_parked_open = false;
}

Test(pm_core, a_committed_range_reissued_just_after_our_start_is_not_downloaded)
{
    ready_peer(100);                 /* GetParked answered, head 10: nothing held any more */
    fetch_blocks(5, PEER_KEY, 7, 4); /* SyncActor's re-issue, after the release */
    alys_env_t *env = to_sync_peer(ALYS__PEER__PEER_MSG__MSG_BATCH_OUTCOME);
    cr_assert_not_null(env, "sync was not told the range is committed");
    cr_assert_eq(env->peer->batch_outcome->request_id, 5);
    alys_env_free(&env);
    cr_assert_null(block_request(), "a committed range was downloaded");
    /* past the wait after our start, a head read is not trusted that way */
    at(H->mono + H->cfg.request_timeout_ms);
    fetch_blocks(6, PEER_KEY, 7, 4);
    cr_assert_null(to_sync_peer(ALYS__PEER__PEER_MSG__MSG_BATCH_OUTCOME));
    alys_wire_msg_t *req = block_request();
    cr_assert_not_null(req, "a fetch long after the start was judged by an old head");
    alys_wire_free(&req);
}

Test(pm_core, in_steady_state_a_refetch_of_a_held_range_is_downloaded)
{
    ready_peer(100);
    delivered_batch(11, 2);                  /* request 90, held */
    at(H->mono + H->cfg.request_timeout_ms); /* long after our start */
    fetch_blocks(5, PEER_KEY, 11, 2);        /* SyncActor wants another copy */
    alys_wire_msg_t *req = block_request();
    cr_assert_not_null(req, "a steady-state re-fetch was answered with the copy held");
    cr_assert_eq(req->get_blocks->start, 11);
    alys_wire_free(&req);
}
