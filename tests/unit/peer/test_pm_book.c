/*  test_pm_book.c: the PeerManager core (pm_core.h) with its address book,
 *  through the fake port, in simulated time: what peers announce is not
 *  dialled in bulk, an honest endpoint heard once after a flood of junk is
 *  dialled within 30 s while the bootstrap peer stays connected, a peer
 *  changing its id leaves no ghost, and the book is loaded before the first
 *  dial and saved when it changed. */
#include <criterion/criterion.h>
#include <string.h>

#include "pm.h"
#include "pm_addrbook.h"
#include "pm_fake_port.h"

#define WALL0    1700000000000ull
#define BOOT_KEY "b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0"
#define BOOT     "alys://" BOOT_KEY "@10.0.0.2:30300"
#define HONEST \
    "alys://d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4@172.16.9.9:30300"
/* Junk endpoints share one key: the book keys endpoints by their string. */
#define JUNK "alys://e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5@"

typedef struct {
    alys_config_t cfg;
    alys_metrics_t *metrics;
    fake_t fake;
    pm_t *pm;
    int64_t mono;
    uint8_t genesis[ALYS_HASH_LEN];
    uint8_t head_hash[ALYS_HASH_LEN];
    int boot_slot;
    unsigned junk_serial;
} b_t;

static b_t *B;

static void at(int64_t mono)
{
    B->mono = mono;
    pm_core_clock(B->pm, WALL0 + (uint64_t) mono, mono);
}

static void setup(void)
{
    B = calloc(1, sizeof *B);
    cr_assert_not_null(B);
    alys_config_defaults(&B->cfg);
    snprintf(B->cfg.node_name, sizeof B->cfg.node_name, "us");
    snprintf(B->cfg.listen, sizeof B->cfg.listen, "tcp://127.0.0.1:30300");
    snprintf(B->cfg.bootstrap_peers[0], sizeof B->cfg.bootstrap_peers[0], "%s", BOOT);
    B->cfg.bootstrap_peer_count = 1;
    memset(B->genesis, 0x11, ALYS_HASH_LEN);
    memset(B->head_hash, 0x22, ALYS_HASH_LEN);
    B->metrics = alys_metrics_new();
    pm_port_t port = fake_port(&B->fake);
    char err[128];
    B->pm = pm_core_new(&B->cfg, B->metrics, &port, err, sizeof err);
    cr_assert_not_null(B->pm, "%s", err);
    B->boot_slot = -1;
    at(1000);
}

static void teardown(void)
{
    pm_core_destroy(&B->pm);
    fake_clear(&B->fake);
    alys_metrics_destroy(&B->metrics);
    free(B);
}

TestSuite(pm_book, .init = setup, .fini = teardown);

/* ---- storage ---------------------------------------------------------------------- */

static void storage_reply(uint64_t corr_id, Alys__Storage__StorageMsg *msg)
{
    alys_env_t env = ALYS__BUS__ENVELOPE__INIT;
    env.reply = true;
    env.corr_id = corr_id;
    env.body_case = ALYS__BUS__ENVELOPE__BODY_STORAGE;
    env.storage = msg;
    pm_core_on_storage(B->pm, &env);
}

static uint64_t expect_storage(Alys__Storage__StorageMsg__MsgCase want, alys_env_t **env_out)
{
    alys_env_t *env = fake_next_bus(&B->fake, PM_TO_STORAGE);
    cr_assert_not_null(env, "no storage request");
    cr_assert_eq(env->storage->msg_case, want, "storage request %d, not %d",
                 (int) env->storage->msg_case, (int) want);
    uint64_t id = env->corr_id;
    if (env_out)
        *env_out = env;
    else
        alys_env_free(&env);
    return id;
}

/* Start: head, no bans, the book with entries (may be none). */
static void started(Alys__Storage__BookEntry **entries, size_t n)
{
    pm_core_start(B->pm);
    uint64_t head = expect_storage(ALYS__STORAGE__STORAGE_MSG__MSG_GET_HEAD, NULL);
    uint64_t bans = expect_storage(ALYS__STORAGE__STORAGE_MSG__MSG_GET_PEER_BANS, NULL);
    uint64_t book = expect_storage(ALYS__STORAGE__STORAGE_MSG__MSG_GET_ADDR_BOOK, NULL);
    Alys__Storage__Head h = ALYS__STORAGE__HEAD__INIT;
    h.height = 10;
    h.hash = (ProtobufCBinaryData){ALYS_HASH_LEN, B->head_hash};
    h.genesis_hash = (ProtobufCBinaryData){ALYS_HASH_LEN, B->genesis};
    Alys__Storage__StorageMsg m = ALYS__STORAGE__STORAGE_MSG__INIT;
    m.msg_case = ALYS__STORAGE__STORAGE_MSG__MSG_HEAD;
    m.head = &h;
    storage_reply(head, &m);
    Alys__Storage__PeerBans pb = ALYS__STORAGE__PEER_BANS__INIT;
    m.msg_case = ALYS__STORAGE__STORAGE_MSG__MSG_PEER_BANS;
    m.peer_bans = &pb;
    storage_reply(bans, &m);
    Alys__Storage__AddrBook ab = ALYS__STORAGE__ADDR_BOOK__INIT;
    ab.n_entries = n;
    ab.entries = entries;
    m.msg_case = ALYS__STORAGE__STORAGE_MSG__MSG_ADDR_BOOK;
    m.addr_book = &ab;
    storage_reply(book, &m);
}

/* ---- the peer side ------------------------------------------------------------------ */

static void peer_frame(int slot, const alys_wire_msg_t *m)
{
    zframe_t *f = alys_wire_encode(m);
    cr_assert_not_null(f);
    pm_core_on_peer_frame(B->pm, slot, zframe_data(f), zframe_size(f), 1);
    zframe_destroy(&f);
}

static void peer_status(int slot, uint64_t request_id, const char *node_id)
{
    Alys__Wire__Status st = ALYS__WIRE__STATUS__INIT;
    st.protocol_version = ALYS_WIRE_PROTOCOL_VERSION;
    st.genesis_hash = (ProtobufCBinaryData){ALYS_HASH_LEN, B->genesis};
    st.head_height = 50;
    st.head_hash = (ProtobufCBinaryData){ALYS_HASH_LEN, B->head_hash};
    st.node_id = (char *) node_id;
    alys_wire_msg_t m = ALYS__WIRE__WIRE_MSG__INIT;
    m.request_id = request_id;
    m.body_case = ALYS__WIRE__WIRE_MSG__BODY_STATUS;
    m.status = &st;
    peer_frame(slot, &m);
}

/* A Peers answer of ALYS_WIRE_MAX_ENDPOINTS junk endpoints, all new. */
static void answer_junk_peers(int slot, uint64_t request_id)
{
    char bufs[ALYS_WIRE_MAX_ENDPOINTS][ALYS_ENDPOINT_MAX];
    char *eps[ALYS_WIRE_MAX_ENDPOINTS];
    for (int i = 0; i < ALYS_WIRE_MAX_ENDPOINTS; i++, B->junk_serial++) {
        snprintf(bufs[i], sizeof bufs[i], JUNK "11.%u.%u.1:7000", B->junk_serial % 256,
                 B->junk_serial / 256 % 256);
        eps[i] = bufs[i];
    }
    Alys__Wire__Peers p = ALYS__WIRE__PEERS__INIT;
    p.n_endpoints = ALYS_WIRE_MAX_ENDPOINTS;
    p.endpoints = eps;
    alys_wire_msg_t m = ALYS__WIRE__WIRE_MSG__INIT;
    m.request_id = request_id;
    m.body_case = ALYS__WIRE__WIRE_MSG__BODY_PEERS;
    m.peers = &p;
    peer_frame(slot, &m);
}

/* One 100 ms tick: the bootstrap peer answers its probes (as its key, or
 * as a fresh id when renaming: a lie its key contradicts) and its GetPeers
 * with junk; nobody else answers anything. Counts the slots newly
 * dialled. */
typedef struct {
    bool rename;
    unsigned renames;
    size_t dials;
    bool honest_dialled;
    size_t get_peers;
} pump_t;

static void pump(pump_t *p)
{
    char before[PM_CONN_MAX][256];
    memcpy(before, B->fake.dialled, sizeof before);
    pm_core_tick_fast(B->pm);
    if (B->mono % 1000 == 0)
        pm_core_tick_slow(B->pm);
    for (int i = 0; i < PM_CONN_MAX; i++) {
        if (strcmp(before[i], B->fake.dialled[i]) != 0 && B->fake.dialled[i][0]) {
            p->dials++;
            p->honest_dialled |= strcmp(B->fake.dialled[i], HONEST) == 0;
        }
        if (strcmp(B->fake.dialled[i], BOOT) == 0)
            B->boot_slot = i;
    }
    alys_wire_msg_t *m;
    int slot = -1;
    while ((m = fake_next_wire(&B->fake, OUT_PEER, &slot))) {
        if (slot == B->boot_slot && m->body_case == ALYS__WIRE__WIRE_MSG__BODY_STATUS) {
            char id[ALYS_WIRE_ID_MAX] = BOOT_KEY;
            if (p->rename)
                snprintf(id, sizeof id, "boot-%u", p->renames++);
            peer_status(slot, m->request_id, id);
        } else if (slot == B->boot_slot && m->body_case == ALYS__WIRE__WIRE_MSG__BODY_GET_PEERS) {
            answer_junk_peers(slot, m->request_id);
            p->get_peers++;
        }
        alys_wire_free(&m);
    }
    fake_clear(&B->fake);
}

static void run(pump_t *p, int64_t ms)
{
    for (int64_t end = B->mono + ms; B->mono < end;) {
        at(B->mono + 100);
        pump(p);
    }
}

static bool boot_ready(void)
{
    peer_view_t v;
    return peer_table_get(B->pm->table, BOOT_KEY, WALL0 + (uint64_t) B->mono, &v) == PEER_OK &&
           v.info.state == PEER_STATE_CONNECTED;
}

/* ---- tests ------------------------------------------------------------------------- */

Test(pm_book, no_dial_before_the_book_is_loaded)
{
    pm_core_start(B->pm);
    uint64_t head = expect_storage(ALYS__STORAGE__STORAGE_MSG__MSG_GET_HEAD, NULL);
    uint64_t bans = expect_storage(ALYS__STORAGE__STORAGE_MSG__MSG_GET_PEER_BANS, NULL);
    expect_storage(ALYS__STORAGE__STORAGE_MSG__MSG_GET_ADDR_BOOK, NULL);
    Alys__Storage__Head h = ALYS__STORAGE__HEAD__INIT;
    h.height = 10;
    h.hash = (ProtobufCBinaryData){ALYS_HASH_LEN, B->head_hash};
    h.genesis_hash = (ProtobufCBinaryData){ALYS_HASH_LEN, B->genesis};
    Alys__Storage__StorageMsg m = ALYS__STORAGE__STORAGE_MSG__INIT;
    m.msg_case = ALYS__STORAGE__STORAGE_MSG__MSG_HEAD;
    m.head = &h;
    storage_reply(head, &m);
    Alys__Storage__PeerBans pb = ALYS__STORAGE__PEER_BANS__INIT;
    m.msg_case = ALYS__STORAGE__STORAGE_MSG__MSG_PEER_BANS;
    m.peer_bans = &pb;
    storage_reply(bans, &m);
    pm_core_tick_fast(B->pm);
    for (int i = 0; i < PM_CONN_MAX; i++)
        cr_assert_str_empty(B->fake.dialled[i], "dialled before the book was loaded");
}

Test(pm_book, endpoints_heard_from_peers_are_not_dialled_in_bulk)
{
    started(NULL, 0);
    pump_t p = {0};
    run(&p, 5000);
    cr_assert(boot_ready(), "the bootstrap peer is connected");
    cr_assert_gt(p.get_peers, 0);
    size_t before = p.dials;
    /* 10 s with a few hundred junk endpoints known: at most the new-dial
     * budget per second (plus one full bucket). */
    run(&p, 10000);
    size_t limit = PM_BOOK_NEW_DIALS * (10000 / PM_BOOK_NEW_DIAL_INTERVAL_MS + 1);
    cr_assert_leq(p.dials - before, limit, "%zu dials in 10 s", p.dials - before);
    pm_book_stats_t st;
    pm_addrbook_stats(pn_addrbook(B->pm), &st);
    /* One source: its share of the new table, no more. */
    cr_assert_gt(st.n_new, 50, "the junk is in the book (%zu)", st.n_new);
    cr_assert_leq(st.n_new, PM_BOOK_NEW_BUCKETS_PER_SOURCE * PM_BOOK_BUCKET_SIZE);
}

Test(pm_book, honest_endpoint_heard_once_after_junk_is_dialled_within_30s)
{
    started(NULL, 0);
    pump_t p = {0};
    /* Junk from the bootstrap peer's GetPeers answers and from inbound
     * clients, thousands of endpoints. */
    run(&p, 3000);
    char ep[ALYS_ENDPOINT_MAX];
    for (int i = 0; i < 3000; i++) {
        snprintf(ep, sizeof ep, JUNK "12.%d.%d.1:%d", i / 200, i % 200, 6000 + i % 100);
        pn_learn_endpoint(B->pm, ep);
    }
    run(&p, 5000);
    pn_learn_endpoint(B->pm, HONEST); /* once */
    int64_t heard = B->mono;
    while (!p.honest_dialled && B->mono - heard < 30000)
        run(&p, 100);
    cr_assert(p.honest_dialled, "the honest endpoint was not dialled within 30 s");
    cr_assert(boot_ready(), "the bootstrap peer stayed connected");
    cr_assert_eq(pm_addrbook_table_of(pn_addrbook(B->pm), BOOT), PM_BOOK_BOOT);
}

/* A peer is its key: a Status under any other id contradicts the key we
 * dialled (the link proves it), so the peer is refused and charged; it is
 * never listed or announced under the ids it makes up (no ghosts). */
Test(pm_book, a_peer_changing_its_id_is_refused_and_leaves_no_ghost)
{
    started(NULL, 0);
    pump_t p = {.rename = true};
    size_t discovered = 0;
    for (int k = 0; k < 600; k++) { /* 60 s, a probe a second at most */
        at(B->mono + 100);
        char before[PM_CONN_MAX][256];
        memcpy(before, B->fake.dialled, sizeof before);
        pm_core_tick_fast(B->pm);
        if (B->mono % 1000 == 0)
            pm_core_tick_slow(B->pm);
        for (int i = 0; i < PM_CONN_MAX; i++)
            if (strcmp(B->fake.dialled[i], BOOT) == 0)
                B->boot_slot = i;
        alys_wire_msg_t *m;
        int slot = -1;
        while ((m = fake_next_wire(&B->fake, OUT_PEER, &slot))) {
            if (slot == B->boot_slot && m->body_case == ALYS__WIRE__WIRE_MSG__BODY_STATUS) {
                char id[32];
                snprintf(id, sizeof id, "boot-%u", p.renames++);
                peer_status(slot, m->request_id, id);
            }
            alys_wire_free(&m);
        }
        alys_env_t *env;
        while ((env = fake_next_bus(&B->fake, PM_TO_SYNC))) {
            if (env->body_case == ALYS__BUS__ENVELOPE__BODY_SYNC)
                discovered += env->sync->msg_case == ALYS__SYNC__SYNC_MSG__MSG_PEER_DISCOVERED;
            alys_env_free(&env);
        }
        fake_clear(&B->fake);
    }
    cr_assert_gt(p.renames, 0, "the bootstrap peer was probed");
    cr_assert_eq(discovered, 0, "SyncActor was told of a peer under a made-up id");
    cr_assert_eq(pn_connected_count(B->pm), 0);
    Alys__Peer__PeerSet *set = pm_peerset_new(B->pm, false);
    cr_assert_not_null(set);
    for (size_t i = 0; i < set->n_peers; i++)
        cr_assert_str_neq(set->peers[i]->state, "connected", "%s", set->peers[i]->peer_id);
    pm_peerset_free(&set);
    cr_assert_geq(alys_metric_value(B->metrics, "alys_peer_key_mismatch_total", NULL), 1);
}

Test(pm_book, stored_book_is_loaded_and_changes_are_saved)
{
    Alys__Storage__BookEntry e = ALYS__STORAGE__BOOK_ENTRY__INIT;
    e.endpoint = HONEST;
    e.source = "10.0";
    e.tried = true;
    e.last_success = WALL0;
    Alys__Storage__BookEntry *list[] = {&e};
    started(list, 1);
    cr_assert_eq(pm_addrbook_table_of(pn_addrbook(B->pm), HONEST), PM_BOOK_TRIED);
    /* alysctl peers shows the book's size (bootstrap peers added at the
     * first tick). */
    pm_core_tick_fast(B->pm);
    fake_clear(&B->fake);
    Alys__Peer__PeerSet *set = pm_peerset_new(B->pm, true);
    cr_assert_not_null(set);
    cr_assert_eq(set->book_tried, 1);
    cr_assert_eq(set->book_bootstrap, 1);
    pm_peerset_free(&set);
    pump_t p = {0};
    bool saved = false;
    for (int64_t start = B->mono; !saved && B->mono - start < 2 * PM_BOOK_SAVE_EVERY_MS;) {
        at(B->mono + 100);
        pm_core_tick_fast(B->pm);
        if (B->mono % 1000 == 0)
            pm_core_tick_slow(B->pm);
        for (int i = 0; i < PM_CONN_MAX; i++)
            p.honest_dialled |= strcmp(B->fake.dialled[i], HONEST) == 0;
        alys_env_t *env;
        while ((env = fake_next_bus(&B->fake, PM_TO_STORAGE))) {
            if (env->storage->msg_case == ALYS__STORAGE__STORAGE_MSG__MSG_PUT_ADDR_BOOK) {
                const Alys__Storage__PutAddrBook *put = env->storage->put_addr_book;
                cr_assert_leq(put->n_entries, PM_BOOK_RECORDS_MAX);
                for (size_t i = 0; i < put->n_entries; i++)
                    saved |= strcmp(put->entries[i]->endpoint, HONEST) == 0;
            }
            alys_env_free(&env);
        }
        fake_clear(&B->fake);
    }
    cr_assert(p.honest_dialled, "a stored tried endpoint is dialled");
    cr_assert(saved, "the changed book was saved with it");
}

Test(pm_book, oversized_stored_book_is_bounded_on_load)
{
    size_t n = PM_BOOK_RECORDS_MAX + 500;
    Alys__Storage__BookEntry *es = calloc(n, sizeof *es);
    Alys__Storage__BookEntry **list = calloc(n, sizeof *list);
    char(*eps)[ALYS_ENDPOINT_MAX] = calloc(n, ALYS_ENDPOINT_MAX);
    cr_assert(es && list && eps);
    for (size_t i = 0; i < n; i++) {
        es[i] = (Alys__Storage__BookEntry) ALYS__STORAGE__BOOK_ENTRY__INIT;
        snprintf(eps[i], ALYS_ENDPOINT_MAX, JUNK "13.%zu.%zu.1:4000", i / 250, i % 250);
        es[i].endpoint = eps[i];
        es[i].source = "13.0";
        list[i] = &es[i];
    }
    started(list, n);
    pm_book_stats_t st;
    pm_addrbook_stats(pn_addrbook(B->pm), &st);
    cr_assert_leq(st.n_new + st.n_tried, PM_BOOK_RECORDS_MAX);
    cr_assert_gt(st.n_new, 0);
    free(es);
    free(list);
    free(eps);
}
