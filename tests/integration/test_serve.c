/*  Serving the wire protocol, with real processes: node A (alys-supervisor,
 *  every actor) holds a 1100-block chain made by alys-chaingen and imported
 *  with `alysctl import`, listens at [network] listen on a loopback tcp port
 *  with serve_rate_limit = 5, and this test is its remote peer: a ZeroMQ
 *  DEALER speaking proto/wire.proto exactly as PeerManager's client side does
 *  (one WireMsg per frame, encoded and decoded with common/wire/wire.h, Status
 *  first). What is checked is what peer_serve.h and rate_limit.h document:
 *    - GetBlocks inside the chain: exactly the asked blocks, byte for byte the
 *      ones chaingen wrote, decoding and hash-linked up to chaingen's head;
 *    - a burst far above serve_rate_limit: the excess gets WireError
 *      RATE_LIMITED (the bucket holds 2 x rate), other peers are not
 *      affected, and after the bucket refills a full burst is served again;
 *    - a range starting above the head: NOT_FOUND; one running past it: the
 *      blocks up to the head, truncated = false;
 *    - a count of 0 or above the bound (1024 blocks, 2048 headers), start 0:
 *      BAD_REQUEST, nothing clamped; counts at the bound are served in full;
 *    - malformed frames, wrong framing, bounds-breaking messages and a frame
 *      over the 8 MiB bus/wire limit are dropped (the last by libzmq, which
 *      closes that connection): the node answers the next valid request and
 *      the peer manager keeps its pid with 0 restarts (each bad frame also
 *      costs its sender, pm_cost.h: they are spread over three peers; a
 *      flood of them bans, tests/integration/test_hostile.c);
 *    - a Status with another genesis: WRONG_GENESIS, the peer is ignored
 *      afterwards and listed as refused by `alysctl peers`;
 *    - anything before the handshake: BAD_REQUEST;
 *    - a storage read that gets no answer (StorageActor SIGSTOPped):
 *      UNAVAILABLE, never silence, and serving again once storage is back;
 *    - (suite serve_frame, a chain of 16 blocks of ~590 KB) an answer that
 *      would overflow the 8 MiB frame is cut at a block with truncated set.
 *  No assertion is about speed: deadlines are hang guards only, "eventually
 *  within T" with T from the node's config (it_budget_ms); the one wait that
 *  is a duration is the token bucket's refill, whose time the configured
 *  rate defines (wait_refill). The node's own upper bounds are checked
 *  against the time actually watched (at most so many tokens in that time).
 *  Each test
 *  starts its own node (about a second); the chains are generated once and
 *  cached under /tmp/alys-serve-chains (chaingen is deterministic).
 */
#include <criterion/criterion.h>
#include <czmq.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bus.h"
#include "chain/chain.h"
#include "chain/export.h"
#include "harness.h"
#include "nodekey.h"
#include "wire/wire.h"

#define CHAIN_BLOCKS 1100       /* the chain of most tests: 1100 blocks of 2 txs (above */
                                /* the 1024-block bound and storage's 1024-item read) */
#define BIG_BLOCKS   16         /* ... of the frame-limit test: 16 blocks of 4096 txs, */
#define BIG_TXS      4096       /* about 590 KB each: 14 fill an 8 MiB frame */
#define RATE         5          /* serve_rate_limit of the node */
#define BURST        (2 * RATE) /* rate_limit.h: bursts of twice the rate */
#define QUIET_MS     1500       /* how long an ignored peer is watched */
#define MAX_PEERS    8

typedef Alys__Wire__WireError__Code wire_code_t;
#define E_BAD_REQUEST   ALYS__WIRE__WIRE_ERROR__CODE__BAD_REQUEST
#define E_RATE_LIMITED  ALYS__WIRE__WIRE_ERROR__CODE__RATE_LIMITED
#define E_WRONG_GENESIS ALYS__WIRE__WIRE_ERROR__CODE__WRONG_GENESIS
#define E_NOT_FOUND     ALYS__WIRE__WIRE_ERROR__CODE__NOT_FOUND
#define E_UNAVAILABLE   ALYS__WIRE__WIRE_ERROR__CODE__UNAVAILABLE

/* ---------------------------------------------------------------- the chain */

static struct {
    char dir[256];
    char genesis_file[300];
    char export_path[300];
    uint8_t genesis_hash[ALYS_HASH_LEN];
    uint8_t head_hash[ALYS_HASH_LEN];
    uint64_t n;                               /* head height */
    ProtobufCBinaryData blocks[CHAIN_BLOCKS]; /* height h at index h - 1 */
    uint8_t hash[CHAIN_BLOCKS][ALYS_HASH_LEN];
} s_chain;

static void chain_load_export(void)
{
    char err[256];
    alys_export_reader_t *r = alys_export_reader_new(s_chain.export_path, err, sizeof err);
    cr_assert_not_null(r, "%s", err);
    cr_assert_eq(alys_export_reader_header(r)->first_height, 1);
    for (size_t i = 0; i < s_chain.n; i++) {
        uint8_t *bytes;
        size_t len;
        cr_assert_eq(alys_export_reader_next(r, &bytes, &len, err, sizeof err), 1,
                     "export record %zu: %s", i + 1, err);
        s_chain.blocks[i] = (ProtobufCBinaryData){len, bytes};
        alys_block_t b;
        alys_verdict_t v;
        cr_assert_eq(alys_block_decode(bytes, len, &b, &v), 0, "export block %zu: %s", i + 1,
                     v.detail);
        alys_header_hash(&b.header, s_chain.hash[i]);
        alys_block_clear(&b);
    }
    alys_export_reader_destroy(&r);
}

/* Generate (or reuse) the chain of `blocks` blocks of `txs` txs each. */
static void chain_get(int blocks_n, int txs_n)
{
    cr_assert_leq(blocks_n, CHAIN_BLOCKS);
    s_chain.n = (uint64_t) blocks_n;
    const char *gen = it_bin("actors/chaingen/alys-chaingen");
    struct stat st;
    cr_assert_eq(stat(gen, &st), 0, "%s not built", gen);
    mkdir("/tmp/alys-serve-chains", 0755);
    snprintf(s_chain.dir, sizeof s_chain.dir, "/tmp/alys-serve-chains/%lld-%d-%d",
             (long long) st.st_mtime, blocks_n, txs_n);
    snprintf(s_chain.genesis_file, sizeof s_chain.genesis_file, "%s/genesis", s_chain.dir);
    snprintf(s_chain.export_path, sizeof s_chain.export_path, "%s/chain.export", s_chain.dir);
    char result[320], tmp[330], blocks[16], txs[16];
    snprintf(result, sizeof result, "%s/result.txt", s_chain.dir);
    snprintf(tmp, sizeof tmp, "%s.tmp", result);
    snprintf(blocks, sizeof blocks, "%d", blocks_n);
    snprintf(txs, sizeof txs, "%d", txs_n);
    /* test_serve and test_serve_attack share this chain and may run at once. */
    int lock = it_cache_lock(s_chain.dir);
    cr_assert_geq(lock, 0, "cannot lock %s", s_chain.dir);
    char *cached = it_read_file(result);
    if (!cached || !strstr(cached, "genesis_hash")) {
        static char out[4096];
        const char *argv[] = {gen,         "--blocks",   blocks,     "--txs-per-block",
                              txs,         "--accounts", "1000",     "--authorities",
                              "3",         "--seed",     "serve-it", "--out",
                              s_chain.dir, NULL};
        cr_assert_eq(it_run(argv, out, sizeof out, 60000), 0, "alys-chaingen failed: %s", out);
        FILE *f = fopen(tmp, "w");
        cr_assert(f && fputs(out, f) >= 0 && fclose(f) == 0);
        cr_assert_eq(rename(tmp, result), 0);
        free(cached);
        cached = strdup(out);
    }
    it_cache_unlock(lock);
    char v[100];
    cr_assert_eq(strtoull(it_kv(cached, "head_height", v, sizeof v), NULL, 10), s_chain.n, "%s",
                 cached);
    cr_assert_eq(alys_unhex(it_kv(cached, "genesis_hash", v, sizeof v), s_chain.genesis_hash,
                            ALYS_HASH_LEN),
                 0, "%s", cached);
    cr_assert_eq(alys_unhex(it_kv(cached, "head_hash", v, sizeof v), s_chain.head_hash, ALYS_HASH_LEN),
                 0, "%s", cached);
    free(cached);
    chain_load_export();
}

/* ---------------------------------------------------------------- the node */

static it_node_t s_node;
static char s_endpoint[64];
static int s_answer_ms; /* hang guard for an answer that must come: */
                        /* it_budget_ms(IT_REQUEST), set by node_up */
#define ANSWER_MS s_answer_ms

/* ---------------------------------------------------------------- the raw peer */

typedef struct {
    zsock_t *sock;
    char id[48];
    uint64_t next_id;
    alys_nodekey_t *key; /* its own CURVE key pair: a peer is its key */
} peer_t;

static peer_t s_peers[MAX_PEERS];
static size_t s_npeers;
static unsigned s_serial; /* never reused: the node keeps state per routing id */

/* The node's public key, read from its key file (the node made it at its
 * first start). */
static uint8_t s_node_key[ALYS_KEY_LEN];

static void read_node_key(void)
{
    char path[256], err[ALYS_ERR_MAX];
    snprintf(path, sizeof path, "%s/data/node.key", s_node.dir);
    alys_nodekey_t *k = alys_nodekey_load(path, err, sizeof err);
    cr_assert_not_null(k, "%s", err);
    memcpy(s_node_key, alys_nodekey_public(k), ALYS_KEY_LEN);
    alys_nodekey_destroy(&k);
}

typedef enum { LINK_CURVE = 0, LINK_WRONG_SERVER_KEY, LINK_PLAINTEXT } link_t;

/* A DEALER to the node's listen endpoint with PeerManager's socket options
 * (alys_sock_limits), a routing id of its form "<name>/<8 hex>" and, as
 * PeerManager's, a CURVE client with a key of its own and the node's key
 * as server key (or, to be refused, another server key or no CURVE). */
static peer_t *peer_open_link(link_t link)
{
    cr_assert_lt(s_npeers, MAX_PEERS);
    peer_t *p = &s_peers[s_npeers++];
    p->sock = zsock_new(ZMQ_DEALER);
    cr_assert_not_null(p->sock);
    alys_sock_limits(p->sock);
    snprintf(p->id, sizeof p->id, "serve-it/%08x", (unsigned) getpid() * 64u + ++s_serial);
    zsock_set_identity(p->sock, p->id);
    zsock_set_reconnect_ivl(p->sock, 100);
    p->key = alys_nodekey_new();
    cr_assert_not_null(p->key);
    if (link != LINK_PLAINTEXT) {
        uint8_t server[ALYS_KEY_LEN];
        memcpy(server, s_node_key, sizeof server);
        if (link == LINK_WRONG_SERVER_KEY)
            server[0] ^= 1;
        zsock_set_curve_publickey_bin(p->sock, alys_nodekey_public(p->key));
        zsock_set_curve_secretkey_bin(p->sock, alys_nodekey_secret(p->key));
        zsock_set_curve_serverkey_bin(p->sock, server);
    }
    cr_assert_eq(zsock_connect(p->sock, "%s", s_endpoint), 0);
    p->next_id = 1000;
    return p;
}

static peer_t *peer_open(void)
{
    return peer_open_link(LINK_CURVE);
}

static void peers_close(void)
{
    for (size_t i = 0; i < s_npeers; i++) {
        zsock_destroy(&s_peers[i].sock);
        alys_nodekey_destroy(&s_peers[i].key);
    }
    s_npeers = 0;
}

static void send_raw(peer_t *p, const void *data, size_t len)
{
    int rc = zmq_send(zsock_resolve(p->sock), data, len, 0);
    cr_assert_eq(rc, (int) len, "send of %zu bytes failed: %s", len, zmq_strerror(zmq_errno()));
}

static uint64_t send_msg(peer_t *p, alys_wire_msg_t *m)
{
    m->request_id = ++p->next_id;
    zframe_t *f = alys_wire_encode(m);
    cr_assert_not_null(f);
    send_raw(p, zframe_data(f), zframe_size(f));
    zframe_destroy(&f);
    return m->request_id;
}

/* A Status naming node_id: NULL = the peer's own key (the only honest id
 * on a CURVE link). */
static uint64_t send_status(peer_t *p, const uint8_t genesis[ALYS_HASH_LEN], const char *node_id)
{
    Alys__Wire__Status st = ALYS__WIRE__STATUS__INIT;
    st.protocol_version = ALYS_WIRE_PROTOCOL_VERSION;
    st.genesis_hash = (ProtobufCBinaryData){ALYS_HASH_LEN, (uint8_t *) genesis};
    st.node_id = (char *) (node_id ? node_id : alys_nodekey_public_hex(p->key));
    st.listen = (char *) ""; /* we do not serve: not to be dialled */
    alys_wire_msg_t m = ALYS__WIRE__WIRE_MSG__INIT;
    m.body_case = ALYS__WIRE__WIRE_MSG__BODY_STATUS;
    m.status = &st;
    return send_msg(p, &m);
}

static uint64_t send_range(peer_t *p, bool headers, uint64_t start, uint32_t count)
{
    alys_wire_msg_t m = ALYS__WIRE__WIRE_MSG__INIT;
    Alys__Wire__GetHeaders gh = ALYS__WIRE__GET_HEADERS__INIT;
    Alys__Wire__GetBlocks gb = ALYS__WIRE__GET_BLOCKS__INIT;
    if (headers) {
        gh.start = start;
        gh.count = count;
        m.body_case = ALYS__WIRE__WIRE_MSG__BODY_GET_HEADERS;
        m.get_headers = &gh;
    } else {
        gb.start = start;
        gb.count = count;
        m.body_case = ALYS__WIRE__WIRE_MSG__BODY_GET_BLOCKS;
        m.get_blocks = &gb;
    }
    return send_msg(p, &m);
}

static uint64_t send_get_peers(peer_t *p)
{
    Alys__Wire__GetPeers gp = ALYS__WIRE__GET_PEERS__INIT;
    alys_wire_msg_t m = ALYS__WIRE__WIRE_MSG__INIT;
    m.body_case = ALYS__WIRE__WIRE_MSG__BODY_GET_PEERS;
    m.get_peers = &gp;
    return send_msg(p, &m);
}

/* The next message from the node within timeout_ms, decoded with the wire
 * bounds (the node's answers must pass them); NULL if none came. */
static alys_wire_msg_t *recv_msg(peer_t *p, int timeout_ms)
{
    zmq_pollitem_t item = {.socket = zsock_resolve(p->sock), .events = ZMQ_POLLIN};
    int64_t end = it_now_ms() + timeout_ms;
    for (;;) {
        int left = (int) (end - it_now_ms());
        if (left < 0)
            left = 0;
        int rc = zmq_poll(&item, 1, left);
        if (rc > 0)
            break;
        if (rc == 0 || it_now_ms() >= end)
            return NULL; /* rc < 0: EINTR, poll again */
    }
    zframe_t *f = zframe_recv(p->sock);
    cr_assert_not_null(f);
    char err[160];
    alys_wire_msg_t *m = alys_wire_decode(zframe_data(f), zframe_size(f), err, sizeof err);
    cr_assert_not_null(m, "the node's answer (%zu bytes) does not decode: %s", zframe_size(f), err);
    zframe_destroy(&f);
    return m;
}

static const char *describe(const alys_wire_msg_t *m)
{
    static char buf[256];
    if (m->body_case == ALYS__WIRE__WIRE_MSG__BODY_ERROR)
        snprintf(buf, sizeof buf, "request %llu: error %d (%s)", (unsigned long long) m->request_id,
                 (int) m->error->code, m->error->message ? m->error->message : "");
    else
        snprintf(buf, sizeof buf, "request %llu: %s", (unsigned long long) m->request_id,
                 alys_wire_body_name(m));
    return buf;
}

/* The answer to request id: nothing else may arrive before it. */
static alys_wire_msg_t *answer(peer_t *p, uint64_t id)
{
    alys_wire_msg_t *m = recv_msg(p, ANSWER_MS);
    cr_assert_not_null(m, "no answer to request %llu within %d ms", (unsigned long long) id,
                       ANSWER_MS);
    cr_assert_eq(m->request_id, id, "waiting for request %llu, got %s", (unsigned long long) id,
                 describe(m));
    return m;
}

static void assert_error(alys_wire_msg_t **m_p, wire_code_t code, const char *what)
{
    alys_wire_msg_t *m = *m_p;
    cr_assert_eq(m->body_case, ALYS__WIRE__WIRE_MSG__BODY_ERROR, "%s: want error %d, got %s",
                 what, (int) code, describe(m));
    cr_assert_eq(m->error->code, code, "%s: want error %d, got %s", what, (int) code, describe(m));
    alys_wire_free(m_p);
}

static void expect_error(peer_t *p, uint64_t id, wire_code_t code, const char *what)
{
    alys_wire_msg_t *m = answer(p, id);
    assert_error(&m, code, what);
}

/* Status with our genesis; the node answers with its own Status. */
static void handshake(peer_t *p)
{
    alys_wire_msg_t *m = answer(p, send_status(p, s_chain.genesis_hash, NULL));
    cr_assert_eq(m->body_case, ALYS__WIRE__WIRE_MSG__BODY_STATUS, "handshake: %s", describe(m));
    const Alys__Wire__Status *st = m->status;
    cr_assert_eq(memcmp(st->genesis_hash.data, s_chain.genesis_hash, ALYS_HASH_LEN), 0);
    cr_assert_eq(st->head_height, s_chain.n);
    cr_assert_eq(st->head_hash.len, ALYS_HASH_LEN);
    cr_assert_eq(memcmp(st->head_hash.data, s_chain.head_hash, ALYS_HASH_LEN), 0);
    cr_assert_eq(st->protocol_version, ALYS_WIRE_PROTOCOL_VERSION);
    alys_wire_free(&m);
}

/* Blocks [start, start + n) as chaingen wrote them, with that truncated flag. */
static void assert_blocks_flag(alys_wire_msg_t **m_p, uint64_t start, size_t n, bool truncated,
                               const char *what)
{
    alys_wire_msg_t *m = *m_p;
    cr_assert_eq(m->body_case, ALYS__WIRE__WIRE_MSG__BODY_BLOCKS, "%s: got %s", what, describe(m));
    const Alys__Wire__Blocks *b = m->blocks;
    cr_assert_eq(b->start, start, "%s: answer starts at %llu", what, (unsigned long long) b->start);
    cr_assert_eq(b->n_blocks, n, "%s: %zu blocks, want %zu", what, b->n_blocks, n);
    cr_assert(start >= 1 && start - 1 + n <= s_chain.n, "%s: not in the chain", what);
    cr_assert_eq(b->truncated, truncated, "%s: truncated = %d", what, (int) b->truncated);
    for (size_t i = 0; i < n; i++) {
        const ProtobufCBinaryData *want = &s_chain.blocks[start - 1 + i];
        cr_assert(b->blocks[i].len == want->len &&
                      memcmp(b->blocks[i].data, want->data, want->len) == 0,
                  "%s: block %llu differs from chaingen's", what, (unsigned long long) (start + i));
    }
    char detail[ALYS_WIRE_DETAIL_MAX];
    cr_assert_eq(alys_wire_check_blocks(b->blocks, n, start,
                                        (const uint8_t(*)[ALYS_HASH_LEN]) & s_chain.hash[start - 1],
                                        n, NULL, detail, sizeof detail),
                 ALYS_WIRE_OK, "%s: %s", what, detail);
    alys_wire_free(m_p);
}

static void assert_blocks(alys_wire_msg_t **m_p, uint64_t start, size_t n, const char *what)
{
    assert_blocks_flag(m_p, start, n, false, what);
}

static void assert_headers(alys_wire_msg_t **m_p, uint64_t start, size_t n, const char *what)
{
    alys_wire_msg_t *m = *m_p;
    cr_assert_eq(m->body_case, ALYS__WIRE__WIRE_MSG__BODY_HEADERS, "%s: got %s", what, describe(m));
    const Alys__Wire__Headers *h = m->headers;
    cr_assert_eq(h->start, start, "%s: answer starts at %llu", what, (unsigned long long) h->start);
    cr_assert_eq(h->n_headers, n, "%s: %zu headers, want %zu", what, h->n_headers, n);
    cr_assert(start >= 1 && start - 1 + n <= s_chain.n, "%s: not in the chain", what);
    cr_assert_not(h->truncated, "%s: flagged truncated", what);
    for (size_t i = 0; i < n; i++) {
        alys_header_t hd;
        alys_verdict_t v;
        cr_assert_eq(alys_header_decode(h->headers[i].data, h->headers[i].len, &hd, &v), 0,
                     "%s: header %zu: %s", what, i, v.detail);
        alys_hash_t got;
        alys_header_hash(&hd, got);
        cr_assert_eq(hd.height, start + i, "%s", what);
        cr_assert_eq(memcmp(got, s_chain.hash[start - 1 + i], ALYS_HASH_LEN), 0,
                     "%s: header %llu differs from chaingen's", what,
                     (unsigned long long) (start + i));
    }
    alys_wire_free(m_p);
}

/* An actor's pid from `alysctl status --json` (0 if none). */
static pid_t actor_pid(const char *name)
{
    json_t *st = it_status(&s_node);
    json_t *a = st ? it_actor(st, name) : NULL;
    pid_t pid = a ? (pid_t) json_integer_value(json_object_get(a, "pid")) : 0;
    json_decref(st);
    return pid;
}

/* The peer manager of the node: its pid, after checking it is ready with
 * no restart. */
static pid_t peer_manager_pid(void)
{
    json_t *st = it_status(&s_node);
    cr_assert_not_null(st, "alysctl status --json failed");
    json_t *a = it_actor(st, "peer_manager");
    cr_assert_not_null(a, "no peer_manager in the status");
    const char *state = json_string_value(json_object_get(a, "state"));
    pid_t pid = (pid_t) json_integer_value(json_object_get(a, "pid"));
    json_int_t restarts = json_integer_value(json_object_get(a, "restarts"));
    cr_assert(state && strcmp(state, "ready") == 0, "peer_manager is %s", state ? state : "?");
    cr_assert_eq(restarts, 0, "peer_manager restarted %lld times", (long long) restarts);
    cr_assert_gt(pid, 0);
    json_decref(st);
    return pid;
}

/* ---------------------------------------------------------------- set-up */

/* The peer manager caches storage's head (refreshed every 500 ms): wait
 * until its Status shows the imported head before any test looks. */
static void wait_head_served(void)
{
    peer_t *p = peer_open();
    int64_t end = it_now_ms() + it_budget_ms(&s_node, IT_READY, 0);
    uint64_t height = 0;
    while (it_now_ms() < end) {
        uint64_t id = send_status(p, s_chain.genesis_hash, NULL);
        alys_wire_msg_t *m;
        while ((m = recv_msg(p, 1000)) && m->request_id != id)
            alys_wire_free(&m);
        bool done = m && m->body_case == ALYS__WIRE__WIRE_MSG__BODY_STATUS &&
                    (height = m->status->head_height) == s_chain.n;
        alys_wire_free(&m);
        if (done)
            break;
        it_sleep_ms(300); /* below the rate limit */
    }
    cr_assert_eq(height, s_chain.n, "the node's Status never showed the imported head");
    zsock_destroy(&p->sock);
    s_npeers--;
}

/* Node A on the chain of blocks_n x txs_n, imported, serving at s_endpoint. */
static void node_up(int blocks_n, int txs_n)
{
    chain_get(blocks_n, txs_n);
    int port = it_free_port();
    cr_assert_gt(port, 0);
    snprintf(s_endpoint, sizeof s_endpoint, "tcp://127.0.0.1:%d", port);
    char genesis[400], listen[100], rate[64];
    snprintf(genesis, sizeof genesis, "genesis_file = \"%s\"", s_chain.genesis_file);
    snprintf(listen, sizeof listen, "listen = \"%s\"", s_endpoint);
    snprintf(rate, sizeof rate, "serve_rate_limit = %d", RATE);
    /* The serving budgets (credit, bytes owed) are test_serve_attack.c's;
     * here they are wide, so that the rate limit alone decides a burst. */
    const char *ov[] = {genesis,
                        listen,
                        rate,
                        "validation_workers = 1",
                        "bootstrap_peers = []",
                        "serve_max_requests = 64",
                        "serve_client_mb = 1024",
                        "serve_memory_mb = 1024",
                        NULL};
    cr_assert_eq(it_node_init(&s_node, ov), 0, "node set-up failed");
    s_answer_ms = it_budget_ms(&s_node, IT_REQUEST, 0);
    const char *missing = it_missing_actors(&s_node);
    cr_assert_str_empty(missing, "actor binaries not built: %s", missing);
    cr_assert_eq(it_node_start(&s_node), 0);
    json_t *st = it_wait_all_ready(&s_node, it_budget_ms(&s_node, IT_READY, 0));
    char *log = st ? NULL : it_read_file(s_node.log);
    cr_assert_not_null(st, "node not ready; supervisor log:\n%s", log ? log : "");
    json_decref(st);

    static char out[1 << 14];
    const char *argv[] = {it_bin("actors/alysctl/alysctl"),
                          "--config",
                          s_node.config,
                          "import",
                          s_chain.export_path,
                          NULL};
    int rc = it_run(argv, out, sizeof out, it_budget_ms(&s_node, IT_BLOCKS, blocks_n));
    cr_assert_eq(rc, 0, "alysctl import failed (%d):\n%s", rc, out);
    char v[32];
    cr_assert_eq(strtoull(it_kv(out, "head_height", v, sizeof v), NULL, 10), s_chain.n, "%s", out);
    read_node_key();
    wait_head_served();
}

static void setup(void)
{
    node_up(CHAIN_BLOCKS, 2);
}
static void setup_big(void)
{
    node_up(BIG_BLOCKS, BIG_TXS);
}

static void teardown(void)
{
    peers_close();
    it_node_cleanup(&s_node);
    for (size_t i = 0; i < s_chain.n; i++)
        free(s_chain.blocks[i].data);
    memset(&s_chain, 0, sizeof s_chain);
}

TestSuite(serve, .init = setup, .fini = teardown, .timeout = 60);

/* The token bucket (rate_limit.h: 2 x serve_rate_limit tokens, refilled at
 * serve_rate_limit a second) is full again: its refill time, from the
 * node's config, and one token's time more. Not an event to wait for but a
 * duration the configured rate defines; nothing can be polled instead
 * without spending the tokens it waits for. */
static void wait_refill(void)
{
    long long rate = it_cfg_int(&s_node, "serve_rate_limit");
    cr_assert_gt(rate, 0);
    it_sleep_ms((int) (2000 + 2000 / rate));
}

/* ---------------------------------------------------------------- tests */

Test(serve, get_blocks_inside_the_chain_returns_exactly_the_asked_blocks_decoded_and_hash_linked)
{
    peer_t *p = peer_open();
    handshake(p);

    alys_wire_msg_t *m = answer(p, send_range(p, false, 101, 50));
    assert_blocks(&m, 101, 50, "GetBlocks 101+50");

    /* The whole chain in two answers (1024 blocks at most in one): it
     * links from the genesis to the head chaingen reported. */
    alys_hash_t prev;
    memcpy(prev, s_chain.genesis_hash, ALYS_HASH_LEN);
    for (uint64_t start = 1; start <= CHAIN_BLOCKS; start += ALYS_WIRE_MAX_BLOCKS) {
        uint64_t count = CHAIN_BLOCKS - start + 1 < ALYS_WIRE_MAX_BLOCKS ? CHAIN_BLOCKS - start + 1
                                                                         : ALYS_WIRE_MAX_BLOCKS;
        m = answer(p, send_range(p, false, start, (uint32_t) count));
        cr_assert_eq(m->body_case, ALYS__WIRE__WIRE_MSG__BODY_BLOCKS, "%s", describe(m));
        cr_assert_eq(m->blocks->n_blocks, count);
        for (size_t i = 0; i < count; i++) {
            alys_block_t b;
            alys_verdict_t v;
            const ProtobufCBinaryData *it = &m->blocks->blocks[i];
            uint64_t h = start + i;
            cr_assert_eq(alys_block_decode(it->data, it->len, &b, &v), 0, "block %llu: %s",
                         (unsigned long long) h, v.detail);
            cr_assert_eq(b.header.height, h);
            cr_assert_eq(memcmp(b.header.parent_hash, prev, ALYS_HASH_LEN), 0,
                         "block %llu does not link to its parent", (unsigned long long) h);
            alys_header_hash(&b.header, prev);
            alys_block_clear(&b);
        }
        assert_blocks(&m, start, count, "GetBlocks of a part of the whole chain");
    }
    cr_assert_eq(memcmp(prev, s_chain.head_hash, ALYS_HASH_LEN), 0,
                 "the last block is not chaingen's head");

    /* The headers of the same range are those blocks' headers. */
    m = answer(p, send_range(p, true, 101, 50));
    assert_headers(&m, 101, 50, "GetHeaders 101+50");

    m = answer(p, send_range(p, false, CHAIN_BLOCKS, 1));
    assert_blocks(&m, CHAIN_BLOCKS, 1, "GetBlocks of the head alone");
}

Test(serve, a_burst_far_above_serve_rate_limit_is_rate_limited_and_serving_resumes_after_the_window)
{
    enum { N = 100 };
    peer_t *p = peer_open();
    int64_t t0 = it_now_ms();
    handshake(p); /* a request too: one token */

    /* Pipelined, as a syncing peer does, all request kinds mixed. */
    uint64_t first = 0;
    for (int i = 0; i < N; i++) {
        uint64_t id;
        if (i % 3 == 0)
            id = send_range(p, false, (uint64_t) (1 + i), 1);
        else if (i % 3 == 1)
            id = send_range(p, true, (uint64_t) (1 + i), 1);
        else
            id = send_get_peers(p);
        if (i == 0)
            first = id;
        cr_assert_eq(id, first + (uint64_t) i);
    }
    bool seen[N] = {false};
    int served = 0, limited = 0;
    for (int k = 0; k < N; k++) {
        alys_wire_msg_t *m = recv_msg(p, ANSWER_MS);
        cr_assert_not_null(m, "only %d of %d requests answered", k, N);
        cr_assert(m->request_id >= first && m->request_id < first + N, "stray answer %s",
                  describe(m));
        int i = (int) (m->request_id - first);
        cr_assert_not(seen[i], "request %d answered twice", i);
        seen[i] = true;
        if (m->body_case == ALYS__WIRE__WIRE_MSG__BODY_ERROR) {
            assert_error(&m, E_RATE_LIMITED, "a request of the burst");
            limited++;
            continue;
        }
        served++;
        if (i % 3 == 0)
            assert_blocks(&m, (uint64_t) (1 + i), 1, "a GetBlocks of the burst");
        else if (i % 3 == 1)
            assert_headers(&m, (uint64_t) (1 + i), 1, "a GetHeaders of the burst");
        else {
            cr_assert_eq(m->body_case, ALYS__WIRE__WIRE_MSG__BODY_PEERS, "%s", describe(m));
            alys_wire_free(&m);
        }
    }
    int64_t elapsed = it_now_ms() - t0;
    /* A fresh bucket holds 2 x rate tokens (one went to the Status) and
     * refills at `rate` per second: what the server may have granted within
     * the time we watched, whatever the machine's speed. */
    int most = BURST - 1 + (int) (elapsed * RATE / 1000) + 1;
    cr_log_info("burst of %d: %d served, %d rate limited in %lld ms (at most %d may be served)",
                N, served, limited, (long long) elapsed, most);
    cr_assert_geq(served, BURST - 1, "a full bucket must serve its burst");
    cr_assert_leq(served, most, "more served than the token bucket allows");
    cr_assert_gt(limited, 0, "nothing rate limited");
    cr_assert_eq(served + limited, N);

    /* The limit is per peer: another one is served at once. */
    peer_t *q = peer_open();
    handshake(q);
    alys_wire_msg_t *m = answer(q, send_range(q, false, 7, 3));
    assert_blocks(&m, 7, 3, "another peer during the flood");

    /* After the bucket's refill time (2 x rate tokens at rate per second),
     * the flooding peer gets a full burst served again. */
    wait_refill();
    uint64_t ids[BURST - 1];
    for (int i = 0; i < BURST - 1; i++)
        ids[i] = send_range(p, false, (uint64_t) (200 + i), 1);
    for (int i = 0; i < BURST - 1; i++) {
        m = answer(p, ids[i]);
        assert_blocks(&m, (uint64_t) (200 + i), 1, "a GetBlocks after the window");
    }
}

Test(serve, a_flood_of_undecodable_frames_is_rate_limited_like_requests)
{
    enum { N = 100 };
    peer_t *p = peer_open();
    int64_t t0 = it_now_ms();
    handshake(p); /* one token */
    static const uint8_t junk[] = {0xff, 0xff, 0xff, 0xff, 0x0f};
    for (int i = 0; i < N; i++)
        send_raw(p, junk, sizeof junk);
    /* Every answer is BAD_REQUEST; past the bucket there is no answer at
     * all (the node does not reply to a flood for free). */
    int answered = 0;
    alys_wire_msg_t *m;
    while ((m = recv_msg(p, QUIET_MS)) != NULL) {
        assert_error(&m, E_BAD_REQUEST, "an undecodable frame");
        answered++;
    }
    int64_t elapsed = it_now_ms() - t0;
    int most = BURST - 1 + (int) (elapsed * RATE / 1000) + 1;
    cr_log_info("garbage flood of %d: %d answered in %lld ms (at most %d may be)", N, answered,
                (long long) elapsed, most);
    cr_assert_geq(answered, 1, "the first undecodable frame gets its BAD_REQUEST");
    cr_assert_leq(answered, most, "more garbage answered than the token bucket allows");

    /* Every undecodable frame also costs its sender (pm_cost.h): the
     * flooder is banned and gets nothing more, even after the bucket
     * refilled; another peer is served. */
    wait_refill();
    send_range(p, false, 5, 2);
    m = recv_msg(p, QUIET_MS);
    cr_assert_null(m, "a banned flooder was answered: %s", m ? describe(m) : "");
    peer_t *q = peer_open();
    handshake(q);
    m = answer(q, send_range(q, false, 5, 2));
    assert_blocks(&m, 5, 2, "another peer's GetBlocks after the garbage flood");
}

Test(serve, a_range_beyond_the_head_gets_not_found_or_the_part_up_to_the_head)
{
    peer_t *p = peer_open();
    handshake(p);
    expect_error(p, send_range(p, false, CHAIN_BLOCKS + 1, 10), E_NOT_FOUND,
                 "GetBlocks from head + 1");
    expect_error(p, send_range(p, false, 1000000, 1), E_NOT_FOUND, "GetBlocks from 1000000");
    expect_error(p, send_range(p, false, UINT64_MAX - 5, 1024), E_NOT_FOUND, "GetBlocks near 2^64");
    expect_error(p, send_range(p, true, CHAIN_BLOCKS + 1, 5), E_NOT_FOUND, "GetHeaders from head + 1");

    /* Running past the head: what there is, not flagged truncated (the
     * requester sees SHORT), never a block above the head. */
    alys_wire_msg_t *m = answer(p, send_range(p, false, CHAIN_BLOCKS - 4, 10));
    char detail[ALYS_WIRE_DETAIL_MAX];
    cr_assert_eq(m->body_case, ALYS__WIRE__WIRE_MSG__BODY_BLOCKS, "%s", describe(m));
    cr_assert_eq(alys_wire_check_range(CHAIN_BLOCKS - 4, 10, m->blocks->start, m->blocks->n_blocks,
                                       m->blocks->truncated, NULL, detail, sizeof detail),
                 ALYS_WIRE_SHORT, "%s", detail);
    assert_blocks(&m, CHAIN_BLOCKS - 4, 5, "GetBlocks head-4 + 10");
    m = answer(p, send_range(p, true, CHAIN_BLOCKS - 9, 2048));
    assert_headers(&m, CHAIN_BLOCKS - 9, 10, "GetHeaders head-9 + 2048");
}

Test(serve, a_count_above_the_per_request_bound_is_refused_with_bad_request_not_clamped)
{
    peer_t *p = peer_open();
    handshake(p);
    expect_error(p, send_range(p, false, 1, ALYS_WIRE_MAX_BLOCKS + 1), E_BAD_REQUEST,
                 "GetBlocks count 1025");
    expect_error(p, send_range(p, true, 1, ALYS_WIRE_MAX_HEADERS + 1), E_BAD_REQUEST,
                 "GetHeaders count 2049");
    expect_error(p, send_range(p, false, 1, UINT32_MAX), E_BAD_REQUEST, "GetBlocks count 2^32-1");
    expect_error(p, send_range(p, false, 1, 0), E_BAD_REQUEST, "GetBlocks count 0");
    expect_error(p, send_range(p, false, 0, 1), E_BAD_REQUEST, "GetBlocks start 0");
    /* At the bound: served in full (1024 blocks); 2048 headers from 1 are
     * the whole chain (1100), read from storage in two reads of <= 1024. */
    alys_wire_msg_t *m = answer(p, send_range(p, false, 1, ALYS_WIRE_MAX_BLOCKS));
    assert_blocks(&m, 1, ALYS_WIRE_MAX_BLOCKS, "GetBlocks count 1024");
    m = answer(p, send_range(p, true, 1, ALYS_WIRE_MAX_HEADERS));
    assert_headers(&m, 1, CHAIN_BLOCKS, "GetHeaders count 2048");
}

/* An encoded WireMsg (caller frees *out). */
static size_t pack(const alys_wire_msg_t *m, uint8_t **out)
{
    size_t len = alys__wire__wire_msg__get_packed_size(m);
    *out = malloc(len ? len : 1);
    cr_assert_not_null(*out);
    alys__wire__wire_msg__pack(m, *out);
    return len;
}

/* Send m packed by protobuf-c itself (bypassing alys_wire_encode's bounds), less its
 * last `cut` bytes: how a broken or hostile peer's frames are made. */
static void send_packed(peer_t *p, const alys_wire_msg_t *m, size_t cut)
{
    uint8_t *buf;
    size_t len = pack(m, &buf);
    cr_assert_leq(cut, len);
    send_raw(p, buf, len - cut);
    free(buf);
}

Test(serve, malformed_and_over_size_frames_are_dropped_and_the_peer_manager_survives)
{
    pid_t pm_pid = peer_manager_pid();
    /* Each bad frame costs its sender (pm_cost.h) and a few ban it: they
     * are spread over three peers, none of which earns a ban. */
    peer_t *peers[3];
    for (int i = 0; i < 3; i++) {
        peers[i] = peer_open();
        handshake(peers[i]);
    }
    peer_t *p = peers[0];

    /* Frames that are not a valid WireMsg, or break the protocol's bounds. */
    int sent = 0;
    const uint8_t garbage[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                               0xff, 0xff, 0xff, 0xff, 0x01, 0x02};
    send_raw(p, garbage, sizeof garbage), sent++;
    p = peers[1];
    send_raw(p, "", 0), sent++; /* empty: a WireMsg without a body */
    {
        /* A valid GetBlocks cut in the middle. */
        Alys__Wire__GetBlocks gb = ALYS__WIRE__GET_BLOCKS__INIT;
        gb.start = 1;
        gb.count = 5;
        alys_wire_msg_t m = ALYS__WIRE__WIRE_MSG__INIT;
        m.request_id = 77;
        m.body_case = ALYS__WIRE__WIRE_MSG__BODY_GET_BLOCKS;
        m.get_blocks = &gb;
        p = peers[2];
        send_packed(p, &m, 1), sent++;
    }
    {
        /* A Status whose genesis hash is not 32 bytes. */
        uint8_t g[5] = {1, 2, 3, 4, 5};
        Alys__Wire__Status st = ALYS__WIRE__STATUS__INIT;
        st.protocol_version = 1;
        st.genesis_hash = (ProtobufCBinaryData){sizeof g, g};
        alys_wire_msg_t m = ALYS__WIRE__WIRE_MSG__INIT;
        m.request_id = 78;
        m.body_case = ALYS__WIRE__WIRE_MSG__BODY_STATUS;
        m.status = &st;
        p = peers[0];
        send_packed(p, &m, 0), sent++;
    }
    {
        /* A NewBlock over the block bound (1 MiB) in a frame under 8 MiB. */
        Alys__Wire__NewBlock nb = ALYS__WIRE__NEW_BLOCK__INIT;
        nb.block.len = ALYS_MAX_BLOCK_BYTES + 1;
        nb.block.data = calloc(1, nb.block.len);
        cr_assert_not_null(nb.block.data);
        alys_wire_msg_t m = ALYS__WIRE__WIRE_MSG__INIT;
        m.request_id = 79;
        m.body_case = ALYS__WIRE__WIRE_MSG__BODY_NEW_BLOCK;
        m.new_block = &nb;
        p = peers[1];
        send_packed(p, &m, 0), sent++;
        free(nb.block.data);
    }
    {
        /* A Peers list far over its bound (64): 100,000 empty endpoints. */
        enum { EPS = 100000 };
        char **eps = calloc(EPS, sizeof *eps);
        cr_assert_not_null(eps);
        for (size_t i = 0; i < EPS; i++)
            eps[i] = (char *) "";
        Alys__Wire__Peers pe = ALYS__WIRE__PEERS__INIT;
        pe.n_endpoints = EPS;
        pe.endpoints = eps;
        alys_wire_msg_t m = ALYS__WIRE__WIRE_MSG__INIT;
        m.request_id = 80;
        m.body_case = ALYS__WIRE__WIRE_MSG__BODY_PEERS;
        m.peers = &pe;
        p = peers[2];
        send_packed(p, &m, 0), sent++;
        free(eps);
    }
    /* Wrong framing: two frames in one message (the protocol has one). */
    p = peers[0];
    cr_assert_eq(zmq_send(zsock_resolve(p->sock), "a", 1, ZMQ_SNDMORE), 1);
    cr_assert_eq(zmq_send(zsock_resolve(p->sock), "b", 1, 0), 1);
    {
        /* A response where a request belongs (a Blocks nobody asked for). */
        Alys__Wire__Blocks b = ALYS__WIRE__BLOCKS__INIT;
        b.start = 1;
        alys_wire_msg_t m = ALYS__WIRE__WIRE_MSG__INIT;
        m.request_id = 81;
        m.body_case = ALYS__WIRE__WIRE_MSG__BODY_BLOCKS;
        m.blocks = &b;
        p = peers[1];
        send_packed(p, &m, 0);
    }

    /* None of it is acted on: whatever comes back before the answer to the
     * next valid request is a BAD_REQUEST (never data), at most one per
     * undecodable frame; then that request is served as usual. */
    int bad = 0;
    alys_wire_msg_t *m;
    for (int i = 0; i < 3; i++) {
        p = peers[i];
        uint64_t id = send_range(p, false, 11, 5);
        while ((m = recv_msg(p, ANSWER_MS)) && m->request_id != id) {
            assert_error(&m, E_BAD_REQUEST, "an answer to a malformed frame");
            bad++;
        }
        cr_assert_not_null(m, "no answer to a valid request after malformed frames");
        assert_blocks(&m, 11, 5, "GetBlocks after malformed frames");
    }
    cr_assert_leq(bad, sent, "%d answers to %d malformed frames", bad, sent);
    cr_log_info("%d malformed frames: %d BAD_REQUEST answers", sent, bad);
    p = peers[0];

    /* A frame over the 8 MiB bus/wire limit (ZMQ_MAXMSGSIZE): a real
     * WireMsg, a NewBlock of 8 MiB. libzmq drops the connection that carried
     * it before anything is allocated for it; the DEALER reconnects. */
    {
        Alys__Wire__NewBlock nb = ALYS__WIRE__NEW_BLOCK__INIT;
        nb.block.len = ALYS_MAX_MSG_BYTES;
        nb.block.data = calloc(1, nb.block.len);
        cr_assert_not_null(nb.block.data);
        alys_wire_msg_t big = ALYS__WIRE__WIRE_MSG__INIT;
        big.request_id = 82;
        big.body_case = ALYS__WIRE__WIRE_MSG__BODY_NEW_BLOCK;
        big.new_block = &nb;
        uint8_t *buf;
        size_t len = pack(&big, &buf);
        cr_assert_gt(len, ALYS_MAX_MSG_BYTES);
        cr_assert_null(alys_wire_encode(&big), "alys_wire_encode must refuse an over-size message");
        zactor_t *mon = zactor_new(zmonitor, p->sock);
        cr_assert_not_null(mon);
        zstr_sendx(mon, "LISTEN", "DISCONNECTED", NULL);
        zstr_sendx(mon, "START", NULL);
        zsock_wait(mon);
        send_raw(p, buf, len);
        free(buf);
        free(nb.block.data);
        /* The node's libzmq closes the connection that carried it. */
        zsock_set_rcvtimeo(mon, ANSWER_MS);
        zmsg_t *ev = zmsg_recv(mon);
        char *name = ev ? zmsg_popstr(ev) : NULL;
        bool dropped = name && strcmp(name, "DISCONNECTED") == 0;
        free(name);
        zmsg_destroy(&ev);
        zactor_destroy(&mon);
        cr_assert(dropped, "the connection carrying the over-size frame was not dropped");
    }
    /* The malformed frames took tokens too (garbage is rate limited like
     * requests): let the bucket refill, so what follows is not refused. */
    wait_refill();
    /* Handshake again (the connection may be a new one), retried while the
     * DEALER reconnects: a request written into the dropped connection is
     * lost with it. At most one Status a second: under the rate limit. */
    uint64_t status_ids[32];
    size_t n_status = 0;
    bool back = false;
    int64_t end = it_now_ms() + it_budget_ms(&s_node, IT_RESTART, 0);
    while (!back && it_now_ms() < end && n_status < 32) {
        status_ids[n_status++] = send_status(p, s_chain.genesis_hash, NULL);
        int64_t round_end = it_now_ms() + 1000;
        while (!back && it_now_ms() < round_end) {
            m = recv_msg(p, (int) (round_end - it_now_ms()));
            if (!m)
                break;
            bool ours = false;
            for (size_t i = 0; i < n_status; i++)
                ours = ours || m->request_id == status_ids[i];
            cr_assert(ours, "unexpected %s after the over-size frame", describe(m));
            cr_assert_eq(m->body_case, ALYS__WIRE__WIRE_MSG__BODY_STATUS, "%s", describe(m));
            back = true;
            alys_wire_free(&m);
        }
    }
    cr_assert(back, "the node never answered again after the over-size frame");
    m = answer(p, send_range(p, false, 21, 10));
    assert_blocks(&m, 21, 10, "GetBlocks after the over-size frame");

    /* Another peer is served too, and the peer manager is the same process. */
    peer_t *q = peer_open();
    handshake(q);
    m = answer(q, send_range(q, true, 1, 3));
    assert_headers(&m, 1, 3, "another peer's GetHeaders");
    cr_assert_eq(peer_manager_pid(), pm_pid, "the peer manager was restarted");
}

Test(serve, a_storage_read_without_answer_gets_unavailable_never_silence)
{
    peer_t *p = peer_open();
    handshake(p);
    pid_t storage = actor_pid("storage");
    cr_assert_gt(storage, 0);
    /* Stopped for about PM_STORE_TIMEOUT_MS (2 s), less than the supervisor's
     * heartbeat timeout (3 s); should it be restarted all the same, the
     * loop below waits for it. */
    cr_assert_eq(kill(storage, SIGSTOP), 0);
    alys_wire_msg_t *m = recv_msg(p, 0);
    cr_assert_null(m);
    uint64_t id = send_range(p, false, 500, 10);
    m = recv_msg(p, ANSWER_MS);
    kill(storage, SIGCONT);
    cr_assert_not_null(m, "no answer while storage does not answer");
    cr_assert_eq(m->request_id, id, "%s", describe(m));
    assert_error(&m, E_UNAVAILABLE, "GetBlocks while storage is stopped");

    /* Served again once storage answers (UNAVAILABLE meanwhile, if it is
     * being restarted). Two requests a second: under the rate limit. */
    bool served = false;
    int64_t end = it_now_ms() + it_budget_ms(&s_node, IT_RESTART, 0);
    while (!served && it_now_ms() < end) {
        m = answer(p, send_range(p, false, 500, 10));
        if (m->body_case == ALYS__WIRE__WIRE_MSG__BODY_ERROR) {
            assert_error(&m, E_UNAVAILABLE, "GetBlocks while storage comes back");
            it_sleep_ms(500);
            continue;
        }
        assert_blocks(&m, 500, 10, "GetBlocks after storage is back");
        served = true;
    }
    cr_assert(served, "not served again after storage came back");
}

/* Does `alysctl peers --json` list this peer_id in that state, with a
 * ban_reason containing reason_part? */
static bool peers_lists(const char *peer_id, const char *state, const char *reason_part)
{
    const char *argv[] = {
        it_bin("actors/alysctl/alysctl"), "--config", s_node.config, "peers", "--json", NULL};
    static char out[1 << 16];
    if (it_run(argv, out, sizeof out, ANSWER_MS) != 0)
        return false;
    json_error_t err;
    json_t *root = json_loads(out, 0, &err);
    json_t *peers = json_object_get(root, "peers");
    bool found = false;
    size_t i;
    json_t *e;
    json_array_foreach(peers, i, e)
    {
        const char *id = json_string_value(json_object_get(e, "peer_id"));
        const char *st = json_string_value(json_object_get(e, "state"));
        const char *why = json_string_value(json_object_get(e, "ban_reason"));
        if (id && st && why && strcmp(id, peer_id) == 0 && strcmp(st, state) == 0 &&
            strstr(why, reason_part))
            found = true;
    }
    json_decref(root);
    return found;
}

Test(serve, a_status_with_another_genesis_is_refused_with_wrong_genesis_and_the_peer_ignored)
{
    uint8_t other[ALYS_HASH_LEN];
    memcpy(other, s_chain.genesis_hash, ALYS_HASH_LEN);
    other[0] ^= 0x80;
    peer_t *p = peer_open();
    expect_error(p, send_status(p, other, NULL), E_WRONG_GENESIS, "Status of another genesis");

    /* Refused: ignored thereafter, even a Status of the right genesis. */
    send_range(p, false, 1, 5);
    send_status(p, s_chain.genesis_hash, NULL);
    send_get_peers(p);
    alys_wire_msg_t *m = recv_msg(p, QUIET_MS);
    cr_assert_null(m, "a refused peer got an answer: %s", m ? describe(m) : "");

    int64_t end = it_now_ms() + it_budget_ms(&s_node, IT_REQUEST, 0);
    bool listed = false;
    while (!listed && it_now_ms() < end) {
        listed = peers_lists(alys_nodekey_public_hex(p->key), "refused", "wrong genesis");
        if (!listed)
            it_sleep_ms(200);
    }
    cr_assert(listed, "alysctl peers does not list the refused inbound peer");

    /* The node keeps serving peers of its own chain. */
    peer_t *q = peer_open();
    handshake(q);
    m = answer(q, send_range(q, false, 150, 2));
    assert_blocks(&m, 150, 2, "a good peer after the refusal");
}

Test(serve, requests_before_the_handshake_get_bad_request)
{
    peer_t *p = peer_open();
    expect_error(p, send_range(p, false, 1, 5), E_BAD_REQUEST, "GetBlocks before Status");
    expect_error(p, send_range(p, true, 1, 5), E_BAD_REQUEST, "GetHeaders before Status");
    expect_error(p, send_get_peers(p), E_BAD_REQUEST, "GetPeers before Status");
    handshake(p);
    alys_wire_msg_t *m = answer(p, send_range(p, false, 1, 5));
    assert_blocks(&m, 1, 5, "GetBlocks after Status");
}

/* ---------------------------------------------------------------- frame limit */

TestSuite(serve_frame, .init = setup_big, .fini = teardown, .timeout = 90);

Test(serve_frame, an_answer_over_the_frame_limit_is_cut_at_a_block_with_truncated_set)
{
    peer_t *p = peer_open();
    handshake(p);
    size_t total = 0;
    for (size_t i = 0; i < BIG_BLOCKS; i++)
        total += s_chain.blocks[i].len;
    cr_assert_gt(total, ALYS_MAX_MSG_BYTES, "the chain is too small to overflow a frame");

    /* The whole chain does not fit in one frame: a prefix, truncated. */
    alys_wire_msg_t *m = answer(p, send_range(p, false, 1, BIG_BLOCKS));
    cr_assert_eq(m->body_case, ALYS__WIRE__WIRE_MSG__BODY_BLOCKS, "%s", describe(m));
    size_t n = m->blocks->n_blocks;
    bool partial = false;
    char detail[ALYS_WIRE_DETAIL_MAX];
    cr_assert_eq(alys_wire_check_range(1, BIG_BLOCKS, m->blocks->start, n, m->blocks->truncated,
                                       &partial, detail, sizeof detail),
                 ALYS_WIRE_OK, "%s", detail);
    cr_assert(partial && n >= 1 && n < BIG_BLOCKS, "%zu of %d blocks, truncated %d", n,
              BIG_BLOCKS, (int) m->blocks->truncated);
    cr_log_info("GetBlocks 1+%d: %zu blocks, truncated", BIG_BLOCKS, n);
    /* Cut at the last block that fits: one more would not have. Storage
     * reads at most the frame limit less 64 KiB (actors/storage/service.h,
     * counting 6 bytes of framing per block), the peer manager then fits the
     * answer into the frame limit: allow for both. */
    size_t used = alys__wire__wire_msg__get_packed_size(m);
    cr_assert_leq(used, ALYS_MAX_MSG_BYTES);
    cr_assert_gt(used + s_chain.blocks[n].len, ALYS_MAX_MSG_BYTES - 65 * 1024,
                 "cut at %zu blocks (%zu bytes) while block %zu would have fitted", n, used, n + 1);
    assert_blocks_flag(&m, 1, n, true, "the truncated prefix");

    /* The requester goes on from there and gets the rest, not truncated. */
    m = answer(p, send_range(p, false, 1 + n, (uint32_t) (BIG_BLOCKS - n)));
    assert_blocks(&m, 1 + n, BIG_BLOCKS - n, "the rest of the chain");
    m = answer(p, send_range(p, true, 1, BIG_BLOCKS));
    assert_headers(&m, 1, BIG_BLOCKS, "GetHeaders of the whole chain (small)");
}

/* ---------------------------------------------------------------- a peer is its key */

Test(serve, a_client_with_the_wrong_server_key_or_without_curve_gets_nothing)
{
    peer_t *wrong = peer_open_link(LINK_WRONG_SERVER_KEY);
    peer_t *plain = peer_open_link(LINK_PLAINTEXT);
    send_status(wrong, s_chain.genesis_hash, NULL);
    send_status(plain, s_chain.genesis_hash, NULL);
    /* An honest keyed peer, opened after them, is answered meanwhile. */
    peer_t *q = peer_open();
    handshake(q);
    alys_wire_msg_t *m = recv_msg(wrong, QUIET_MS);
    cr_assert_null(m, "a client with the wrong server key got an answer: %s", m ? describe(m) : "");
    m = recv_msg(plain, QUIET_MS);
    cr_assert_null(m, "a plaintext client got an answer: %s", m ? describe(m) : "");
}

Test(serve, a_status_naming_another_key_is_a_violation_and_the_key_banned)
{
    peer_t *p = peer_open();
    expect_error(p, send_status(p, s_chain.genesis_hash, "somebody-else"), E_BAD_REQUEST,
                 "Status naming another key");
    /* Banned under the key the link proved, not the name it gave. */
    int64_t end = it_now_ms() + it_budget_ms(&s_node, IT_REQUEST, 0);
    bool listed = false;
    while (!listed && it_now_ms() < end) {
        listed = peers_lists(alys_nodekey_public_hex(p->key), "banned", "contradicts its key");
        if (!listed)
            it_sleep_ms(200);
    }
    cr_assert(listed, "alysctl peers does not list the key as banned");
    /* A new link with the same key is refused at the CURVE handshake (ZAP). */
    peer_t *again = peer_open();
    alys_nodekey_destroy(&again->key);
    again->key = p->key;
    p->key = NULL;
    zsock_destroy(&again->sock);
    again->sock = zsock_new(ZMQ_DEALER);
    cr_assert_not_null(again->sock);
    zsock_set_curve_publickey_bin(again->sock, alys_nodekey_public(again->key));
    zsock_set_curve_secretkey_bin(again->sock, alys_nodekey_secret(again->key));
    zsock_set_curve_serverkey_bin(again->sock, s_node_key);
    cr_assert_eq(zsock_connect(again->sock, "%s", s_endpoint), 0);
    send_status(again, s_chain.genesis_hash, NULL);
    alys_wire_msg_t *m = recv_msg(again, QUIET_MS);
    cr_assert_null(m, "a banned key got an answer: %s", m ? describe(m) : "");
    /* Everyone else is still served. */
    peer_t *q = peer_open();
    handshake(q);
}
