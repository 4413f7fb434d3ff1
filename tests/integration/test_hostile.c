/*  Hostile peers against real node processes (issue 8, "every bad thing
 *  costs"). Each test starts two nodes on loopback: H, an honest server
 *  holding a generated chain (alys-chaingen, imported with alysctl import),
 *  and V, the victim, a fresh node serving at its own [network] listen with
 *  H and a hostile server X (hostile.h: a ROUTER V dials) as bootstrap
 *  peers. One attacker is let loose per test: a hostile client
 *  (hostile.h: a raw DEALER at V's listen endpoint) or X in one of its
 *  modes. Then, whatever the attack:
 *    - V keeps its pids: every actor the same process, no restart;
 *    - V syncs H's whole chain (its head reaches chaingen's);
 *    - V serves an honest client exactly the bytes chaingen wrote;
 *    - V's peer manager stays under PM_RSS_BOUND_KB of resident memory
 *      (VmRSS in /proc/<pid>/status), however many bytes were thrown at it;
 *    - the attacker is penalised: banned, as `alysctl peers --json` lists
 *      it (inbound clients and X under their keys: every link is CURVE), or
 *      for attacks that are not misbehaviour its score falls.
 *  Attacks: undecodable, empty, over-size (padded) and multi-part frames,
 *  responses sent to the server, a byte flood of few messages, request
 *  fields at and past every bound (answered, not punished); from X:
 *  undecodable, empty, over-size and multi-part frames, unsolicited answers
 *  (small, and 7 MiB ones), requests sent back to the node that dialled it,
 *  and a Status claiming an absurd head.
 *  Every wait is "eventually within T", T from the node's config
 *  (it_budget_ms); no sleeps, no upper bounds on time.
 */
#include <criterion/criterion.h>
#include <czmq.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "hostile.h"
#include "itkey.h"
#include "nodeaddr.h"

#define CHAIN_N          600
#define CHAIN_TXS        2
/* The peer manager's resident memory bound under attack. Its own budget is
 * the reorder buffer (membudget: a share of sync.max_memory_gb, 64 MiB or
 * so on a test node) plus a few frames in flight (8 MiB each, decoded
 * copies included); an attacker must not be able to make it grow past
 * that, whatever it sends. */
#define PM_RSS_BOUND_KB  (256 * 1024)
/* ...and its growth during the attack: a few frames in flight and their
 * decoded copies, never the attacker's volume. */
#define PM_RSS_GROWTH_KB (64 * 1024)
/* Under AddressSanitizer (this test is built like the node's binaries, in
 * the same build directory) freed memory waits in a quarantine of up to
 * 256 MiB before reuse, and shadow memory comes on top: allowance for it. */
#if defined(__SANITIZE_ADDRESS__)
#define RSS_ASAN_KB (512 * 1024)
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define RSS_ASAN_KB (512 * 1024)
#endif
#endif
#ifndef RSS_ASAN_KB
#define RSS_ASAN_KB 0
#endif

static hc_chain_t s_chain;
static it_node_t s_h, s_v;
static char s_h_ep[ALYS_ENDPOINT_MAX], s_v_ep[ALYS_ENDPOINT_MAX], s_x_ep[ALYS_ENDPOINT_MAX];
static hs_server_t *s_x;

#define MAX_ACTORS 16
static struct {
    char name[32];
    pid_t pid;
} s_pids[MAX_ACTORS];
static size_t s_npids;
static long s_rss0_kb; /* V's peer manager before the attack */
static long rss_kb(pid_t pid);
static pid_t pid_of(const char *name);

/* ---- the nodes ------------------------------------------------------------------- */

/* Extra "key = value" for V's config (NULL: none), set before up(). */
static const char *s_v_extra;
/* V's sync starts paused (ALYS_SYNC_START_PAUSED) and is resumed once H and
 * X are both connected, set before up(): for attacks X makes only when it
 * is asked for blocks, which V must not have finished fetching from H
 * before X was ready (a loaded machine did, once: X was never asked). */
static bool s_hold_sync;

/* Start node n serving at a free port (its endpoint into ep): true once
 * every actor is ready. A port taken between our check and the node's
 * bind (other tests run on this machine) is not the node's fault: the
 * caller tries another. */
static bool try_node(it_node_t *n, const char *name, char *ep, size_t eplen,
                     const char *bootstrap, const char *extra)
{
    int port = it_free_port();
    cr_assert_gt(port, 0);
    char genesis[400], lis[100], boot[2 * ALYS_ENDPOINT_MAX + 40], nm[64];
    snprintf(genesis, sizeof genesis, "genesis_file = \"%s\"", s_chain.genesis_file);
    snprintf(lis, sizeof lis, "listen = \"tcp://127.0.0.1:%d\"", port);
    snprintf(boot, sizeof boot, "bootstrap_peers = %s", bootstrap);
    snprintf(nm, sizeof nm, "name = \"%s\"", name);
    const char *ov[] = {genesis, lis, boot, nm, "validation_workers = 1", extra, NULL};
    cr_assert_eq(it_node_init(n, ov), 0, "node %s set-up failed", name);
    cr_assert_eq(itk_node_endpoint(n, port, ep, eplen), 0, "node %s: no key", name);
    const char *missing = it_missing_actors(n);
    cr_assert_str_empty(missing, "actor binaries not built: %s", missing);
    cr_assert_eq(it_node_start(n), 0);
    json_t *st = it_wait_all_ready(n, it_budget_ms(n, IT_READY, 0));
    if (st) {
        json_decref(st);
        return true;
    }
    char *log = it_read_file(n->log);
    bool port_taken = log && strstr(log, "Address already in use");
    if (!port_taken)
        cr_assert_fail("node %s not ready; supervisor log:\n%s", name, log ? log : "");
    cr_log_warn("node %s: port %d taken meanwhile, trying another", name, port);
    free(log);
    it_node_cleanup(n);
    memset(n, 0, sizeof *n);
    return false;
}

static void start_node(it_node_t *n, const char *name, char *ep, size_t eplen,
                       const char *bootstrap, const char *extra)
{
    for (int tries = 0; tries < 3; tries++)
        if (try_node(n, name, ep, eplen, bootstrap, extra))
            return;
    cr_assert_fail("node %s: no free port in three tries", name);
}

static void import_chain(it_node_t *n)
{
    static char out[1 << 14];
    const char *argv[] = {it_bin("actors/alysctl/alysctl"),
                          "--config",
                          n->config,
                          "import",
                          s_chain.export_path,
                          NULL};
    int rc = it_run(argv, out, sizeof out, it_budget_ms(n, IT_BLOCKS, CHAIN_N));
    cr_assert_eq(rc, 0, "alysctl import failed (%d):\n%s", rc, out);
}

static void remember_pids(void)
{
    json_t *st = it_status(&s_v);
    cr_assert_not_null(st);
    json_t *actors = json_object_get(st, "actors");
    size_t i;
    json_t *a;
    s_npids = 0;
    json_array_foreach(actors, i, a)
    {
        pid_t pid = (pid_t) json_integer_value(json_object_get(a, "pid"));
        const char *name = json_string_value(json_object_get(a, "name"));
        if (pid > 0 && name && s_npids < MAX_ACTORS) {
            snprintf(s_pids[s_npids].name, sizeof s_pids[0].name, "%s", name);
            s_pids[s_npids++].pid = pid;
        }
    }
    json_decref(st);
    cr_assert_gt(s_npids, 0, "no actor pids in V's status");
}

static json_t *peer_entry(const char *peer_id);

/* V lists peer_id connected. */
static bool v_connected(const char *peer_id)
{
    json_t *e = peer_entry(peer_id);
    const char *state = e ? json_string_value(json_object_get(e, "state")) : NULL;
    bool yes = state && strcmp(state, "connected") == 0;
    json_decref(e);
    return yes;
}

static void resume_when_both_connected(void)
{
    char h_key[ALYS_WIRE_ID_MAX];
    cr_assert_eq(alys_nodeaddr_key_hex(s_h_ep, h_key, sizeof h_key), 0);
    int64_t end = it_now_ms() + it_budget_ms(&s_v, IT_READY, 0);
    while (it_now_ms() < end && !(v_connected(h_key) && v_connected(hs_key(s_x))))
        it_sleep_ms(100);
    cr_assert(v_connected(h_key) && v_connected(hs_key(s_x)), "V never had both peers");
    static char out[1 << 12];
    const char *argv[] = {
        it_bin("actors/alysctl/alysctl"), "--config", s_v.config, "sync", "resume", NULL};
    cr_assert_eq(it_run(argv, out, sizeof out, it_budget_ms(&s_v, IT_REQUEST, 0)), 0,
                 "alysctl sync resume: %s", out);
}

/* H serving the chain, X in mode (its Status claims x_height), V dialling
 * both: every actor of V ready. */
static void up(hs_mode_t mode, uint64_t x_height)
{
    char err[256];
    cr_assert_eq(hc_chain_get(&s_chain, it_bin("actors/chaingen/alys-chaingen"), CHAIN_N,
                              CHAIN_TXS, err, sizeof err),
                 0, "%s", err);
    start_node(&s_h, "honest", s_h_ep, sizeof s_h_ep, "[]", NULL);
    import_chain(&s_h);
    /* X binds a port of the kernel's choosing: nobody can take it first. */
    s_x = hs_new("tcp://127.0.0.1:*", mode, s_chain.genesis_hash, x_height ? x_height : CHAIN_N, NULL);
    cr_assert_not_null(s_x, "hostile server not bound");
    snprintf(s_x_ep, sizeof s_x_ep, "%s", hs_endpoint(s_x));
    char boot[2 * ALYS_ENDPOINT_MAX + 16];
    snprintf(boot, sizeof boot, "[\"%s\", \"%s\"]", s_h_ep, s_x_ep);
    if (s_hold_sync)
        setenv("ALYS_SYNC_START_PAUSED", "1", 1);
    start_node(&s_v, "victim", s_v_ep, sizeof s_v_ep, boot, s_v_extra);
    unsetenv("ALYS_SYNC_START_PAUSED");
    remember_pids();
    s_rss0_kb = rss_kb(pid_of("peer_manager"));
    if (s_hold_sync)
        resume_when_both_connected();
}

static void teardown(void)
{
    hs_destroy(&s_x);
    it_node_cleanup(&s_v);
    it_node_cleanup(&s_h);
    hc_chain_free(&s_chain);
}

TestSuite(hostile, .fini = teardown, .timeout = 240);

/* ---- what must hold whatever the attack -------------------------------------------- */

static void assert_same_pids(void)
{
    json_t *st = it_status(&s_v);
    cr_assert_not_null(st, "alysctl status failed");
    for (size_t k = 0; k < s_npids; k++) {
        json_t *a = it_actor(st, s_pids[k].name);
        cr_assert_not_null(a, "actor %s gone from the status", s_pids[k].name);
        pid_t pid = (pid_t) json_integer_value(json_object_get(a, "pid"));
        json_int_t restarts = json_integer_value(json_object_get(a, "restarts"));
        cr_assert_eq(pid, s_pids[k].pid, "%s: pid %d, was %d", s_pids[k].name, (int) pid,
                     (int) s_pids[k].pid);
        cr_assert_eq(restarts, 0, "%s restarted %lld times", s_pids[k].name, (long long) restarts);
    }
    json_decref(st);
}

static pid_t pid_of(const char *name)
{
    for (size_t k = 0; k < s_npids; k++)
        if (strcmp(s_pids[k].name, name) == 0)
            return s_pids[k].pid;
    return 0;
}

static long rss_kb(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/status", (int) pid);
    char *text = it_read_file(path);
    const char *line = text ? strstr(text, "VmRSS:") : NULL;
    long kb = line ? strtol(line + 6, NULL, 10) : -1;
    free(text);
    return kb;
}

static void assert_rss_bounded(void)
{
    pid_t pm = pid_of("peer_manager");
    cr_assert_gt(pm, 0, "no peer_manager pid");
    long kb = rss_kb(pm);
    cr_log_info("peer manager VmRSS %ld kB, %ld kB at start (bounds %d kB, growth %d kB)", kb,
                s_rss0_kb, PM_RSS_BOUND_KB, PM_RSS_GROWTH_KB);
    cr_assert_gt(kb, 0, "no VmRSS for pid %d", (int) pm);
    cr_assert_leq(kb, PM_RSS_BOUND_KB + RSS_ASAN_KB, "peer manager resident %ld kB", kb);
    cr_assert_leq(kb - s_rss0_kb, PM_RSS_GROWTH_KB + RSS_ASAN_KB,
                  "peer manager grew from %ld to %ld kB", s_rss0_kb, kb);
}

static uint64_t head_of(it_node_t *n)
{
    static char out[4096];
    const char *argv[] = {
        it_bin("actors/alysctl/alysctl"), "--config", n->config, "sync", "head", NULL};
    if (it_run(argv, out, sizeof out, it_budget_ms(n, IT_REQUEST, 0)) != 0)
        return 0;
    char v[32];
    return strtoull(it_kv(out, "head_height", v, sizeof v), NULL, 10);
}

static void assert_synced(void)
{
    int64_t end = it_now_ms() + it_budget_ms(&s_v, IT_BLOCKS, CHAIN_N);
    uint64_t h = 0;
    while ((h = head_of(&s_v)) < CHAIN_N && it_now_ms() < end)
        it_sleep_ms(200);
    cr_assert_eq(h, CHAIN_N, "V's head is %llu, not H's %d", (unsigned long long) h, CHAIN_N);
}

static void assert_blocks_exact(hc_client_t *c, uint64_t start, uint32_t n)
{
    uint64_t id = hc_send_range(c, false, start, n);
    cr_assert_neq(id, 0);
    alys_wire_msg_t *m = hc_answer(c, id, it_budget_ms(&s_v, IT_REQUEST, 0));
    cr_assert_not_null(m, "no answer to GetBlocks %llu+%u", (unsigned long long) start, n);
    cr_assert_eq(m->body_case, ALYS__WIRE__WIRE_MSG__BODY_BLOCKS, "GetBlocks answered %s",
                 alys_wire_body_name(m));
    cr_assert_eq(m->blocks->start, start);
    cr_assert_eq(m->blocks->n_blocks, n);
    for (size_t i = 0; i < n; i++) {
        const ProtobufCBinaryData *want = &s_chain.block[start - 1 + i];
        cr_assert(m->blocks->blocks[i].len == want->len &&
                      memcmp(m->blocks->blocks[i].data, want->data, want->len) == 0,
                  "block %llu differs from chaingen's", (unsigned long long) (start + i));
    }
    alys_wire_free(&m);
}

static void assert_serves_honest_client(void)
{
    char id[64];
    snprintf(id, sizeof id, "honest-client/%08x", (unsigned) it_now_ms());
    hc_client_t *c = hc_client_new(s_v_ep, id);
    cr_assert_not_null(c);
    alys_wire_msg_t *st = hc_handshake(c, s_chain.genesis_hash, it_budget_ms(&s_v, IT_REQUEST, 0));
    cr_assert_not_null(st, "V did not answer an honest handshake");
    alys_wire_free(&st);
    assert_blocks_exact(c, 1, 64);
    assert_blocks_exact(c, CHAIN_N - 63, 64);
    hc_client_destroy(&c);
}

/* All of it, after an attack. */
static void assert_node_well(void)
{
    assert_synced();
    assert_serves_honest_client();
    assert_same_pids();
    assert_rss_bounded();
}

/* ---- what V says of its peers ------------------------------------------------------- */

/* V's `alysctl peers --json` entry of peer_id (a json_t to decref), or NULL. */
static json_t *peer_entry(const char *peer_id)
{
    static char out[1 << 18];
    const char *argv[] = {
        it_bin("actors/alysctl/alysctl"), "--config", s_v.config, "peers", "--json", NULL};
    if (it_run(argv, out, sizeof out, it_budget_ms(&s_v, IT_REQUEST, 0)) != 0)
        return NULL;
    json_t *root = json_loads(out, 0, NULL);
    json_t *peers = root ? json_object_get(root, "peers") : NULL;
    json_t *found = NULL, *p;
    size_t i;
    json_array_foreach(peers, i, p)
    {
        const char *pid = json_string_value(json_object_get(p, "peer_id"));
        if (pid && strcmp(pid, peer_id) == 0) {
            found = json_incref(p);
            break;
        }
    }
    json_decref(root);
    return found;
}

/* Listed banned within wait_ms, the ban reason containing why. */
static void assert_banned_for(const char *peer_id, const char *why, int wait_ms)
{
    int64_t end = it_now_ms() + wait_ms;
    bool banned = false;
    char reason[256] = "";
    while (!banned && it_now_ms() < end) {
        json_t *e = peer_entry(peer_id);
        const char *state = e ? json_string_value(json_object_get(e, "state")) : NULL;
        banned = state && strcmp(state, "banned") == 0;
        const char *why = e ? json_string_value(json_object_get(e, "ban_reason")) : NULL;
        if (banned)
            snprintf(reason, sizeof reason, "%s", why ? why : "");
        json_decref(e);
        if (!banned)
            it_sleep_ms(100);
    }
    cr_assert(banned, "%s not listed banned by V", peer_id);
    cr_log_info("%s banned: %s", peer_id, reason);
    cr_assert(strstr(reason, why) != NULL, "%s banned for '%s'", peer_id, reason);
}

static void assert_banned(const char *peer_id)
{
    assert_banned_for(peer_id, "misbehaviour", it_budget_ms(&s_v, IT_REQUEST, 0));
}

/* ---- the hostile client -------------------------------------------------------------- */

static hc_client_t *attacker(const char *id)
{
    hc_client_t *c = hc_client_new(s_v_ep, id);
    cr_assert_not_null(c);
    return c;
}

/* Send frames until V bans the client's key (listed) or `most` were sent. */
typedef int(send_fn)(hc_client_t *c, int i);

static void flood_until_banned(const char *id, send_fn *send, int most)
{
    hc_client_t *c = attacker(id);
    char who[ALYS_WIRE_ID_MAX];
    snprintf(who, sizeof who, "%s", hc_who(c));
    int sent = 0;
    for (; sent < most; sent++) {
        cr_assert_eq(send(c, sent), 0, "send %d failed", sent);
        if (sent % 16 == 15) {
            json_t *e = peer_entry(who);
            const char *state = e ? json_string_value(json_object_get(e, "state")) : NULL;
            bool done = state && strcmp(state, "banned") == 0;
            json_decref(e);
            if (done)
                break;
        }
    }
    cr_log_info("%s: %d frames sent", id, sent);
    assert_banned(who);
    /* Banned: a valid request of its gets nothing. */
    hc_send_range(c, false, 1, 1);
    alys_wire_msg_t *m;
    while ((m = hc_recv(c, 1000, NULL)) != NULL) {
        cr_assert_neq(m->body_case, ALYS__WIRE__WIRE_MSG__BODY_BLOCKS, "a banned client was served");
        alys_wire_free(&m);
    }
    hc_client_destroy(&c);
}

static int send_junk(hc_client_t *c, int i)
{
    (void) i;
    static const uint8_t junk[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f};
    return hc_send_raw(c, junk, sizeof junk);
}

static int send_empty(hc_client_t *c, int i)
{
    (void) i;
    return hc_send_raw(c, "", 0);
}

static int send_padded_status(hc_client_t *c, int i)
{
    (void) i;
    Alys__Wire__Status st = ALYS__WIRE__STATUS__INIT;
    st.protocol_version = ALYS_WIRE_PROTOCOL_VERSION;
    st.genesis_hash = (ProtobufCBinaryData){ALYS_HASH_LEN, s_chain.genesis_hash};
    st.node_id = (char *) hc_who(c); /* its key: the size is the offence */
    alys_wire_msg_t m = ALYS__WIRE__WIRE_MSG__INIT;
    m.body_case = ALYS__WIRE__WIRE_MSG__BODY_STATUS;
    m.status = &st;
    return hc_send(c, &m, 1u << 20) ? 0 : -1; /* a Status of 1 MiB */
}

static int send_responses(hc_client_t *c, int i)
{
    if (i % 2 == 0) { /* a 7 MiB Blocks nobody asked for */
        size_t len;
        uint8_t *buf = hc_pack_blocks(4242 + (uint64_t) i, 1, 7, (1u << 20) - 64, &len);
        int rc = buf ? hc_send_raw(c, buf, len) : -1;
        free(buf);
        return rc;
    }
    Alys__Wire__Headers h = ALYS__WIRE__HEADERS__INIT;
    alys_wire_msg_t m = ALYS__WIRE__WIRE_MSG__INIT;
    m.body_case = ALYS__WIRE__WIRE_MSG__BODY_HEADERS;
    m.headers = &h;
    return hc_send(c, &m, 0) ? 0 : -1;
}

static int send_parts(hc_client_t *c, int i)
{
    (void) i;
    static const uint8_t a[] = {1, 2, 3}, b[] = {4, 5, 6};
    const void *parts[] = {a, b, a};
    size_t lens[] = {sizeof a, sizeof b, sizeof a};
    return hc_send_parts(c, parts, lens, 3);
}

/* 3 MiB frames: a few a second is far under the message rate limit (200/s)
 * and far over the byte rate (4 MiB/s). */
static int send_big_junk(hc_client_t *c, int i)
{
    (void) i;
    static uint8_t *big;
    size_t len = 3u << 20;
    if (!big && !(big = malloc(len)))
        return -1;
    memset(big, 0xff, len);
    return hc_send_raw(c, big, len);
}

/* Valid requests far past the token bucket, never reading the
 * RATE_LIMITED answers. */
static int send_get_peers(hc_client_t *c, int i)
{
    (void) i;
    Alys__Wire__GetPeers gp = ALYS__WIRE__GET_PEERS__INIT;
    alys_wire_msg_t m = ALYS__WIRE__WIRE_MSG__INIT;
    m.body_case = ALYS__WIRE__WIRE_MSG__BODY_GET_PEERS;
    m.get_peers = &gp;
    return hc_send(c, &m, 0) ? 0 : -1;
}

Test(hostile, a_request_flood_that_ignores_rate_limited_ends_in_a_ban)
{
    /* A rate any peer manager outpaces (under sanitizers too): 5/s. */
    s_v_extra = "serve_rate_limit = 5";
    up(HS_HONEST_STATUS, 0);
    hc_client_t *c = attacker("eager-client");
    alys_wire_msg_t *st = hc_handshake(c, s_chain.genesis_hash, it_budget_ms(&s_v, IT_REQUEST, 0));
    cr_assert_not_null(st);
    alys_wire_free(&st);
    hc_client_destroy(&c);
    flood_until_banned("eager-client", send_get_peers, 20000);
    assert_node_well();
}

Test(hostile, a_flood_of_undecodable_frames_bans_the_client_and_the_node_is_well)
{
    up(HS_HONEST_STATUS, 0);
    flood_until_banned("junk-client", send_junk, 2000);
    assert_node_well();
}

Test(hostile, a_flood_of_empty_frames_bans_the_client)
{
    up(HS_HONEST_STATUS, 0);
    flood_until_banned("empty-client", send_empty, 2000);
    assert_node_well();
}

Test(hostile, over_size_frames_padded_past_their_kind_ban_the_client)
{
    up(HS_HONEST_STATUS, 0);
    flood_until_banned("padding-client", send_padded_status, 200);
    assert_node_well();
}

Test(hostile, unsolicited_responses_sent_to_the_server_ban_the_client)
{
    up(HS_HONEST_STATUS, 0);
    flood_until_banned("answering-client", send_responses, 200);
    assert_node_well();
}

Test(hostile, multi_part_messages_ban_the_client)
{
    up(HS_HONEST_STATUS, 0);
    flood_until_banned("parts-client", send_parts, 2000);
    assert_node_well();
}

Test(hostile, a_byte_flood_of_few_messages_is_cut_off_and_banned)
{
    up(HS_HONEST_STATUS, 0);
    flood_until_banned("bytes-client", send_big_junk, 200);
    char *metrics = it_http_get(s_v.metrics_port, "/metrics");
    if (metrics)
        cr_log_info("over_bytes counted: %s",
                    strstr(metrics, "offence=\"over_bytes\"") ? "yes" : "not exported");
    free(metrics);
    assert_node_well();
}

/* Request fields at and past every bound: answered (BAD_REQUEST or
 * NOT_FOUND), never served wrong, never fatal, and not misbehaviour. */
Test(hostile, requests_with_absurd_fields_are_answered_and_the_node_is_well)
{
    up(HS_HONEST_STATUS, 0);
    hc_client_t *c = attacker("absurd-client");
    int T = it_budget_ms(&s_v, IT_REQUEST, 0);
    /* A Status claiming the highest head there is. */
    uint64_t id = hc_send_status(c, s_chain.genesis_hash, UINT64_MAX, NULL);
    alys_wire_msg_t *m = hc_answer(c, id, T);
    cr_assert_not_null(m, "no answer to an absurd Status");
    cr_assert_eq(m->body_case, ALYS__WIRE__WIRE_MSG__BODY_STATUS, "%s", alys_wire_body_name(m));
    alys_wire_free(&m);
    assert_synced(); /* V's head: what a range is judged against */
    const struct {
        bool headers;
        uint64_t start;
        uint32_t count;
        int code;
    } cases[] = {
        {false, 1, 0, ALYS__WIRE__WIRE_ERROR__CODE__BAD_REQUEST},
        {false, 1, 1025, ALYS__WIRE__WIRE_ERROR__CODE__BAD_REQUEST},
        {false, 1, UINT32_MAX, ALYS__WIRE__WIRE_ERROR__CODE__BAD_REQUEST},
        {false, 0, 10, ALYS__WIRE__WIRE_ERROR__CODE__BAD_REQUEST},
        {false, UINT64_MAX, 1, ALYS__WIRE__WIRE_ERROR__CODE__NOT_FOUND},
        {false, UINT64_MAX - 5, 1024, ALYS__WIRE__WIRE_ERROR__CODE__NOT_FOUND},
        {true, 1, 0, ALYS__WIRE__WIRE_ERROR__CODE__BAD_REQUEST},
        {true, 1, 2049, ALYS__WIRE__WIRE_ERROR__CODE__BAD_REQUEST},
        {true, UINT64_MAX - 1, 2048, ALYS__WIRE__WIRE_ERROR__CODE__NOT_FOUND},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        id = hc_send_range(c, cases[i].headers, cases[i].start, cases[i].count);
        m = hc_answer(c, id, T);
        cr_assert_not_null(m, "case %zu: no answer", i);
        cr_assert_eq(m->body_case, ALYS__WIRE__WIRE_MSG__BODY_ERROR, "case %zu: answered %s", i,
                     alys_wire_body_name(m));
        cr_assert_eq((int) m->error->code, cases[i].code, "case %zu: error %d", i,
                     (int) m->error->code);
        alys_wire_free(&m);
    }
    /* A range running past the head: the part up to it, exact. */
    id = hc_send_range(c, false, CHAIN_N - 2, 1024);
    m = hc_answer(c, id, T);
    cr_assert_not_null(m);
    cr_assert_eq(m->body_case, ALYS__WIRE__WIRE_MSG__BODY_BLOCKS);
    cr_assert_eq(m->blocks->n_blocks, 3);
    alys_wire_free(&m);
    /* Asking is not misbehaving: still served. */
    assert_blocks_exact(c, 10, 5);
    json_t *e = peer_entry(hc_who(c));
    const char *state = e ? json_string_value(json_object_get(e, "state")) : NULL;
    bool banned = state && strcmp(state, "banned") == 0;
    json_decref(e);
    cr_assert_not(banned, "a client asking out-of-bound ranges was banned");
    hc_client_destroy(&c);
    assert_node_well();
}

/* ---- the hostile server ------------------------------------------------------------- */

/* X is dialled, answers the handshake, then attacks: banned, and V well. */
static void server_attack(hs_mode_t mode)
{
    up(mode, 0);
    assert_banned(hs_key(s_x));
    cr_log_info("X sent %llu attack frames, answered %llu probes",
                (unsigned long long) hs_sent(s_x), (unsigned long long) hs_probes(s_x));
    cr_assert_gt(hs_sent(s_x), 0, "X never attacked");
    assert_node_well();
}

Test(hostile, a_server_sending_undecodable_frames_is_banned)
{
    server_attack(HS_JUNK);
}

Test(hostile, a_server_sending_empty_frames_is_banned)
{
    server_attack(HS_EMPTY);
}

Test(hostile, a_server_sending_answers_with_unknown_request_ids_is_banned)
{
    server_attack(HS_UNSOLICITED);
}

Test(hostile, a_server_sending_unsolicited_7_mib_answers_is_banned_and_memory_stays_bounded)
{
    server_attack(HS_UNSOLICITED_BIG);
}

Test(hostile, a_server_sending_padded_over_size_frames_is_banned)
{
    server_attack(HS_OVERSIZE);
}

Test(hostile, a_server_sending_requests_to_the_node_that_dialled_it_is_banned)
{
    server_attack(HS_WRONG_WAY);
}

Test(hostile, a_server_sending_multi_part_messages_is_banned)
{
    server_attack(HS_MULTIPART);
}

/* A Status claiming a head near 2^64 that it never serves: not a provable
 * lie (the head may exist), so no ban; V still syncs H's chain, and X's
 * score falls as it fails to serve. */
Test(hostile, a_server_claiming_an_absurd_head_does_not_stop_the_sync)
{
    up(HS_HONEST_STATUS, UINT64_MAX - 1);
    assert_node_well();
    int64_t end = it_now_ms() + it_budget_ms(&s_v, IT_BLOCKS, CHAIN_N);
    double score = 0;
    bool listed = false;
    while (it_now_ms() < end) {
        json_t *e = peer_entry(hs_key(s_x));
        listed = e != NULL;
        score = e ? json_real_value(json_object_get(e, "score")) : 0;
        json_decref(e);
        if (score < 0)
            break;
        it_sleep_ms(200);
    }
    cr_assert(listed, "X not in V's peer table");
    cr_log_info("X's score %.1f", score);
    cr_assert_lt(score, 0, "X claimed a head it never served, unpunished");
}

/* Answers with more items than asked: a protocol violation, banned at
 * once (the existing path), once V asks X for anything. */
Test(hostile, a_server_answering_more_items_than_asked_is_banned_for_a_violation)
{
    s_hold_sync = true; /* X lies only in answers: V must ask it */
    up(HS_MISMATCH, 0);
    assert_synced();
    assert_banned_for(hs_key(s_x), "violation", it_budget_ms(&s_v, IT_BLOCKS, CHAIN_N));
    assert_node_well();
}

/* Every answer twice: the first is an ordinary (short) answer, the copy is
 * unsolicited and costs: X's score falls with every request it is asked. */
Test(hostile, a_server_answering_every_request_twice_pays_for_the_copies)
{
    up(HS_DUPLICATE, 0);
    assert_node_well();
    int64_t end = it_now_ms() + it_budget_ms(&s_v, IT_BLOCKS, CHAIN_N);
    double score = 0;
    const char *state = NULL;
    while (it_now_ms() < end) {
        json_t *e = peer_entry(hs_key(s_x));
        score = e ? json_real_value(json_object_get(e, "score")) : 0;
        static char st[32];
        snprintf(st, sizeof st, "%s", e ? json_string_value(json_object_get(e, "state")) : "");
        state = st;
        json_decref(e);
        if (score < 0 || strcmp(state, "banned") == 0)
            break;
        it_sleep_ms(200);
    }
    cr_log_info("X: %s, score %.1f, %llu answers doubled", state ? state : "?", score,
                (unsigned long long) hs_sent(s_x));
    cr_assert(score < 0 || (state && strcmp(state, "banned") == 0), "X paid nothing");
}

/* A swarm: 16 clients throw 8 frames of 3 MiB each at once (384 MiB
 * offered). Each is cut off by bytes and banned; the peer manager's
 * resident memory, sampled all along, stays bounded: frames of banned
 * clients are dropped unread, nothing queues in the peer manager. */
Test(hostile, a_swarm_of_clients_flooding_big_frames_at_once_is_banned_and_memory_stays_bounded)
{
    enum { CLIENTS = 16, FRAMES = 8 };
    /* All from 127.0.0.1: admit them all (the per-address limit would
     * refuse half unread, test_serve_attack's subject), so that each one's
     * flood meets the byte limit and the ban. */
    s_v_extra = "max_inbound_per_address = 32";
    up(HS_HONEST_STATUS, 0);
    hc_client_t *c[CLIENTS];
    char id[CLIENTS][32];
    size_t len = 3u << 20;
    uint8_t *big = malloc(len);
    cr_assert_not_null(big);
    memset(big, 0xff, len);
    for (int i = 0; i < CLIENTS; i++) {
        snprintf(id[i], sizeof id[i], "swarm-%02d", i);
        c[i] = attacker(id[i]);
    }
    pid_t pm = pid_of("peer_manager");
    long max_kb = 0;
    for (int f = 0; f < FRAMES; f++)
        for (int i = 0; i < CLIENTS; i++) {
            cr_assert_eq(hc_send_raw(c[i], big, len), 0);
            long kb = rss_kb(pm);
            max_kb = kb > max_kb ? kb : max_kb;
        }
    free(big);
    int banned = 0;
    int64_t end = it_now_ms() + it_budget_ms(&s_v, IT_READY, 0);
    while (banned < CLIENTS && it_now_ms() < end) {
        banned = 0;
        for (int i = 0; i < CLIENTS; i++) {
            json_t *e = peer_entry(hc_who(c[i]));
            const char *state = e ? json_string_value(json_object_get(e, "state")) : NULL;
            banned += state && strcmp(state, "banned") == 0;
            json_decref(e);
        }
        long kb = rss_kb(pm);
        max_kb = kb > max_kb ? kb : max_kb;
    }
    cr_log_info("swarm: %d of %d banned; peer manager VmRSS at most %ld kB during it", banned,
                CLIENTS, max_kb);
    cr_assert_eq(banned, CLIENTS, "only %d of %d flooding clients banned", banned, CLIENTS);
    cr_assert_leq(max_kb, PM_RSS_BOUND_KB + RSS_ASAN_KB,
                  "peer manager resident %ld kB during the swarm", max_kb);
    for (int i = 0; i < CLIENTS; i++)
        hc_client_destroy(&c[i]);
    assert_node_well();
}
