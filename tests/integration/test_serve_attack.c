/*  Serving under attack, with real processes: node A (alys-supervisor, every
 *  actor) holds a chain of 16 blocks of ~590 KB (alys-chaingen, imported
 *  with `alysctl import`), so that one GetBlocks(1, 1024) is answered with
 *  about 8 MiB (cut at the frame limit). Raw ZeroMQ DEALERs speaking
 *  proto/wire.proto are the attackers and the honest client. What is
 *  checked is what pm_inbound.h and serve_sock.h document:
 *    - one client that sends 500 GetBlocks(1, 1024) and never reads: the
 *      peer manager's VmRSS (/proc/<pid>/status) grows by at most 32 MiB,
 *      it keeps its pid with no restart, the excess is answered BUSY (seen
 *      in alys_peer_serve_busy_total), and an honest client still gets the
 *      exact blocks;
 *    - many clients (ALYS_ATTACK_CLIENTS, default 100, at most 1,000) that
 *      each ask for ~80 MiB and never read: growth within serve_memory_mb +
 *      64 MiB; the honest client gets BUSY while they hold the whole budget,
 *      then stalled ones are dropped and it is served again;
 *    - more inbound connections from one address than max_inbound_per_address:
 *      the extra ones get no answer at all, and node A's outbound peer (node
 *      B, which A dials) stays connected;
 *    - a client that asks, then disconnects without reading: its bytes owed
 *      are given back (alys_peer_serve_bytes_owed returns to 0), and while
 *      it owes, `alysctl peers` lists it with its bytes owed;
 *    - a client that pipelines 20 requests gets an answer to each: exact
 *      blocks, or BUSY past its credit (never silence, never a queue);
 *    - 2,000 identities (a CURVE key each) send a Status at once: at most
 *      max_inbound_peers are admitted, the rest turned away and their
 *      connections closed, node A's outbound peer stays connected, the
 *      peer manager keeps its pid (its RSS growth is printed).
 *  Every client is a CURVE client with a fresh key (a peer is its key).
 *  "Never reads": the attacker's DEALER has a receive high-water mark of 1
 *  and a 4 KiB kernel buffer, so its TCP window closes after the first
 *  answer, exactly as a client that stops calling recv.
 *  No assertion is about speed: waits are "eventually within T", T from
 *  the node's config (it_budget_ms); memory is sampled while waiting.
 */
#include <criterion/criterion.h>
#include <czmq.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bus.h"
#include "chain/chain.h"
#include "chain/export.h"
#include "harness.h"
#include "itkey.h"
#include "peerlink.h"
#include "wire/wire.h"

#define BIG_BLOCKS 16   /* 16 blocks of 4096 txs, about 590 KB each: */
#define BIG_TXS    4096 /* GetBlocks(1, 1024) is answered with ~8 MiB */
#define MIB        (1024ll * 1024ll)
#define QUIET_MS   1500  /* how long an ignored client is watched */
#define PER_ADDR   4     /* max_inbound_per_address of the per-address test */
#define STALL_MS   10000 /* PM_INBOUND_STALL_MS (pm_inbound.h): owing, nothing taken */

/* ---------------------------------------------------------------- the chain */

static struct {
    char dir[256];
    char genesis_file[300];
    char export_path[300];
    uint8_t genesis_hash[ALYS_HASH_LEN];
    uint64_t n;
    ProtobufCBinaryData blocks[BIG_BLOCKS];
} s_chain;

static void chain_get(void)
{
    s_chain.n = BIG_BLOCKS;
    const char *gen = it_bin("actors/chaingen/alys-chaingen");
    struct stat st;
    cr_assert_eq(stat(gen, &st), 0, "%s not built", gen);
    mkdir("/tmp/alys-serve-chains", 0755);
    snprintf(s_chain.dir, sizeof s_chain.dir, "/tmp/alys-serve-chains/%lld-%d-%d",
             (long long) st.st_mtime, BIG_BLOCKS, BIG_TXS);
    snprintf(s_chain.genesis_file, sizeof s_chain.genesis_file, "%s/genesis", s_chain.dir);
    snprintf(s_chain.export_path, sizeof s_chain.export_path, "%s/chain.export", s_chain.dir);
    char result[320], tmp[330], blocks[16], txs[16];
    snprintf(result, sizeof result, "%s/result.txt", s_chain.dir);
    snprintf(tmp, sizeof tmp, "%s.tmp.%d", result, (int) getpid());
    snprintf(blocks, sizeof blocks, "%d", BIG_BLOCKS);
    snprintf(txs, sizeof txs, "%d", BIG_TXS);
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
    cr_assert_eq(alys_unhex(it_kv(cached, "genesis_hash", v, sizeof v), s_chain.genesis_hash,
                            ALYS_HASH_LEN),
                 0, "%s", cached);
    free(cached);
    char err[256];
    alys_export_reader_t *r = alys_export_reader_new(s_chain.export_path, err, sizeof err);
    cr_assert_not_null(r, "%s", err);
    for (size_t i = 0; i < s_chain.n; i++) {
        uint8_t *bytes;
        size_t len;
        cr_assert_eq(alys_export_reader_next(r, &bytes, &len, err, sizeof err), 1, "%s", err);
        s_chain.blocks[i] = (ProtobufCBinaryData){len, bytes};
    }
    alys_export_reader_destroy(&r);
}

/* ---------------------------------------------------------------- nodes */

static it_node_t s_node;  /* A: the attacked node */
static it_node_t s_other; /* B: A's outbound peer (one test) */
static bool s_other_up;
static char s_endpoint[ALYS_ENDPOINT_MAX]; /* A's alys:// endpoint */
static int s_answer_ms;

/* Start node n listening on port; its alys:// endpoint into ep. */
static void node_start(it_node_t *n, const char *const *ov, int port, char *ep, size_t eplen)
{
    cr_assert_eq(it_node_init(n, ov), 0, "node set-up failed");
    cr_assert_eq(itk_node_endpoint(n, port, ep, eplen), 0, "no node key");
    const char *missing = it_missing_actors(n);
    cr_assert_str_empty(missing, "actor binaries not built: %s", missing);
    cr_assert_eq(it_node_start(n), 0);
    json_t *st = it_wait_all_ready(n, it_budget_ms(n, IT_READY, 0));
    char *log = st ? NULL : it_read_file(n->log);
    cr_assert_not_null(st, "node not ready; supervisor log:\n%s", log ? log : "");
    json_decref(st);
}

/* ---------------------------------------------------------------- raw clients */

typedef struct {
    zsock_t *sock;
    alys_nodekey_t *key; /* a fresh key: the client's id at the node */
    uint64_t next_id;
} client_t;

static void client_close(client_t *c)
{
    zsock_destroy(&c->sock);
    alys_nodekey_destroy(&c->key);
}

static unsigned s_serial;

/* A DEALER to node A. reads: false = a client that stops reading (receive
 * high-water mark 1, a 4 KiB kernel buffer). */
static client_t client_open(bool reads)
{
    client_t c = {.sock = zsock_new(ZMQ_DEALER), .next_id = 1000};
    cr_assert_not_null(c.sock);
    alys_sock_limits(c.sock);
    if (!reads) {
        zsock_set_rcvhwm(c.sock, 1);
        zsock_set_rcvbuf(c.sock, 4096);
    }
    char id[48];
    snprintf(id, sizeof id, "attack-it/%08x", (unsigned) getpid() * 4096u + ++s_serial);
    zsock_set_identity(c.sock, id);
    c.key = alys_nodekey_new();
    cr_assert_not_null(c.key);
    cr_assert_eq(alys_peerlink_connect(c.sock, s_endpoint, c.key), 0);
    return c;
}

static uint64_t send_msg(client_t *c, alys_wire_msg_t *m)
{
    m->request_id = ++c->next_id;
    zframe_t *f = alys_wire_encode(m);
    cr_assert_not_null(f);
    int rc = zmq_send(zsock_resolve(c->sock), zframe_data(f), zframe_size(f), 0);
    cr_assert_eq(rc, (int) zframe_size(f), "send failed: %s", zmq_strerror(zmq_errno()));
    zframe_destroy(&f);
    return m->request_id;
}

static uint64_t send_status(client_t *c)
{
    Alys__Wire__Status st = ALYS__WIRE__STATUS__INIT;
    st.protocol_version = ALYS_WIRE_PROTOCOL_VERSION;
    st.genesis_hash = (ProtobufCBinaryData){ALYS_HASH_LEN, s_chain.genesis_hash};
    st.node_id = (char *) alys_nodekey_public_hex(c->key);
    st.listen = (char *) "";
    alys_wire_msg_t m = ALYS__WIRE__WIRE_MSG__INIT;
    m.body_case = ALYS__WIRE__WIRE_MSG__BODY_STATUS;
    m.status = &st;
    return send_msg(c, &m);
}

static uint64_t send_blocks(client_t *c, uint64_t start, uint32_t count)
{
    Alys__Wire__GetBlocks gb = ALYS__WIRE__GET_BLOCKS__INIT;
    gb.start = start;
    gb.count = count;
    alys_wire_msg_t m = ALYS__WIRE__WIRE_MSG__INIT;
    m.body_case = ALYS__WIRE__WIRE_MSG__BODY_GET_BLOCKS;
    m.get_blocks = &gb;
    return send_msg(c, &m);
}

static alys_wire_msg_t *recv_msg(client_t *c, int timeout_ms)
{
    zmq_pollitem_t item = {.socket = zsock_resolve(c->sock), .events = ZMQ_POLLIN};
    int64_t end = it_now_ms() + timeout_ms;
    for (;;) {
        int left = (int) (end - it_now_ms());
        int rc = zmq_poll(&item, 1, left < 0 ? 0 : left);
        if (rc > 0)
            break;
        if (rc == 0 || it_now_ms() >= end)
            return NULL;
    }
    zframe_t *f = zframe_recv(c->sock);
    cr_assert_not_null(f);
    char err[160];
    alys_wire_msg_t *m = alys_wire_decode(zframe_data(f), zframe_size(f), err, sizeof err);
    cr_assert_not_null(m, "the node's answer does not decode: %s", err);
    zframe_destroy(&f);
    return m;
}

/* The answer to id (others before it are skipped), or NULL within timeout_ms. */
static alys_wire_msg_t *answer_to(client_t *c, uint64_t id, int timeout_ms)
{
    int64_t end = it_now_ms() + timeout_ms;
    alys_wire_msg_t *m;
    while ((m = recv_msg(c, (int) (end - it_now_ms() > 0 ? end - it_now_ms() : 0)))) {
        if (m->request_id == id)
            return m;
        alys_wire_free(&m);
    }
    return NULL;
}

static void handshake(client_t *c)
{
    alys_wire_msg_t *m = answer_to(c, send_status(c), s_answer_ms);
    cr_assert_not_null(m, "no answer to the handshake");
    cr_assert_eq(m->body_case, ALYS__WIRE__WIRE_MSG__BODY_STATUS, "handshake: %s",
                 alys_wire_body_name(m));
    alys_wire_free(&m);
}

/* ---------------------------------------------------------------- the peer manager */

static pid_t pm_pid(void)
{
    json_t *st = it_status(&s_node);
    cr_assert_not_null(st, "alysctl status --json failed");
    json_t *a = it_actor(st, "peer_manager");
    cr_assert_not_null(a);
    const char *state = json_string_value(json_object_get(a, "state"));
    pid_t pid = (pid_t) json_integer_value(json_object_get(a, "pid"));
    json_int_t restarts = json_integer_value(json_object_get(a, "restarts"));
    cr_assert(state && strcmp(state, "ready") == 0, "peer_manager is %s", state ? state : "?");
    cr_assert_eq(restarts, 0, "peer_manager restarted %lld times", (long long) restarts);
    json_decref(st);
    return pid;
}

/* VmRSS of pid in bytes (/proc/<pid>/status). */
static long long rss_of(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/status", (int) pid);
    char *text = it_read_file(path);
    cr_assert_not_null(text, "no %s", path);
    const char *line = strstr(text, "VmRSS:");
    cr_assert_not_null(line);
    long long kb = strtoll(line + 6, NULL, 10);
    free(text);
    return kb * 1024;
}

/* A metric's value (summed over its labels) from node A's /metrics; -1 when
 * the endpoint does not answer. */
static double metric(const char *name)
{
    char *text = it_http_get(s_node.metrics_port, "/metrics");
    if (!text)
        return -1;
    double sum = 0;
    size_t len = strlen(name);
    for (char *line = text; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
        if (strncmp(line, name, len) == 0 && (line[len] == ' ' || line[len] == '{')) {
            const char *v = strchr(line + len, ' ');
            if (v)
                sum += strtod(v, NULL);
        }
    }
    free(text);
    return sum;
}

typedef struct {
    pid_t pid;
    long long base;
    long long peak;
} rss_watch_t;

static void rss_sample(rss_watch_t *w)
{
    long long r = rss_of(w->pid);
    if (r > w->peak)
        w->peak = r;
}

/* Wait (sampling RSS) until metric name reaches at least want. */
static void wait_metric(rss_watch_t *w, const char *name, double want, int timeout_ms)
{
    int64_t end = it_now_ms() + timeout_ms;
    double v = -1;
    while (it_now_ms() < end) {
        rss_sample(w);
        if ((v = metric(name)) >= want)
            return;
        it_sleep_ms(50);
    }
    cr_assert_fail("%s is %.0f, never reached %.0f within %d ms", name, v, want, timeout_ms);
}

/* ---------------------------------------------------------------- set-up */

static void node_up(const char *const *extra)
{
    chain_get();
    int port = it_free_port();
    cr_assert_gt(port, 0);
    static char genesis[400], listen[100];
    snprintf(genesis, sizeof genesis, "genesis_file = \"%s\"", s_chain.genesis_file);
    snprintf(listen, sizeof listen, "listen = \"tcp://127.0.0.1:%d\"", port);
    const char *ov[16] = {genesis, listen, "validation_workers = 1", "serve_rate_limit = 1000"};
    size_t n = 4;
    bool bootstrap = false;
    for (size_t i = 0; extra && extra[i] && n < 15; i++) {
        bootstrap |= strncmp(extra[i], "bootstrap_peers", 15) == 0;
        ov[n++] = extra[i];
    }
    if (!bootstrap)
        ov[n++] = "bootstrap_peers = []";
    ov[n] = NULL;
    node_start(&s_node, ov, port, s_endpoint, sizeof s_endpoint);
    s_answer_ms = it_budget_ms(&s_node, IT_REQUEST, 0);
    static char out[1 << 14];
    const char *argv[] = {it_bin("actors/alysctl/alysctl"),
                          "--config",
                          s_node.config,
                          "import",
                          s_chain.export_path,
                          NULL};
    int rc = it_run(argv, out, sizeof out, it_budget_ms(&s_node, IT_BLOCKS, BIG_BLOCKS));
    cr_assert_eq(rc, 0, "alysctl import failed (%d):\n%s", rc, out);
    /* The peer manager's cached head shows the chain (refreshed every 500 ms). */
    client_t c = client_open(true);
    int64_t end = it_now_ms() + it_budget_ms(&s_node, IT_READY, 0);
    uint64_t height = 0;
    while (it_now_ms() < end && height != s_chain.n) {
        alys_wire_msg_t *m = answer_to(&c, send_status(&c), 1000);
        if (m && m->body_case == ALYS__WIRE__WIRE_MSG__BODY_STATUS)
            height = m->status->head_height;
        alys_wire_free(&m);
        if (height != s_chain.n)
            it_sleep_ms(200);
    }
    client_close(&c);
    cr_assert_eq(height, s_chain.n, "the node's Status never showed the imported head");
}

static void teardown(void)
{
    it_node_cleanup(&s_node);
    if (s_other_up)
        it_node_cleanup(&s_other);
    s_other_up = false;
    for (size_t i = 0; i < s_chain.n; i++)
        free(s_chain.blocks[i].data);
    memset(&s_chain, 0, sizeof s_chain);
}

/* Under AddressSanitizer freed memory waits in a quarantine (256 MiB by
 * default) before it goes back: the node's RSS would measure the
 * quarantine, not what serving holds. The node inherits our environment;
 * without ASan the option is ignored. */
static void setup(void)
{
    const char *was = getenv("ASAN_OPTIONS");
    static char opts[1024];
    snprintf(opts, sizeof opts, "%s%squarantine_size_mb=0", was ? was : "", was && *was ? ":" : "");
    cr_assert_eq(setenv("ASAN_OPTIONS", opts, 1), 0);
}

TestSuite(serve_attack, .init = setup, .fini = teardown, .timeout = 240);

/* The honest client gets blocks [1, n] exactly as chaingen wrote them. */
static void honest_exact(client_t *c, uint32_t n)
{
    alys_wire_msg_t *m = answer_to(c, send_blocks(c, 1, n), s_answer_ms);
    cr_assert_not_null(m, "the honest client got no answer");
    cr_assert_eq(m->body_case, ALYS__WIRE__WIRE_MSG__BODY_BLOCKS, "honest client: %s%s%s",
                 alys_wire_body_name(m), m->body_case == ALYS__WIRE__WIRE_MSG__BODY_ERROR ? ": " : "",
                 m->body_case == ALYS__WIRE__WIRE_MSG__BODY_ERROR ? m->error->message : "");
    cr_assert_eq(m->blocks->start, 1);
    cr_assert_eq(m->blocks->n_blocks, n);
    for (size_t i = 0; i < n; i++)
        cr_assert(m->blocks->blocks[i].len == s_chain.blocks[i].len &&
                      memcmp(m->blocks->blocks[i].data, s_chain.blocks[i].data,
                             s_chain.blocks[i].len) == 0,
                  "block %zu differs from chaingen's", i + 1);
    alys_wire_free(&m);
}

/* The honest client asks for [1, n]: the exact blocks, or BUSY when the
 * total budget is spent by others (never silence, never other bytes).
 * true when served. */
static bool honest_exact_or_busy(client_t *c, uint32_t n)
{
    alys_wire_msg_t *m = answer_to(c, send_blocks(c, 1, n), s_answer_ms);
    cr_assert_not_null(m, "the honest client got no answer");
    if (m->body_case == ALYS__WIRE__WIRE_MSG__BODY_ERROR) {
        cr_assert_eq(m->error->code, ALYS__WIRE__WIRE_ERROR__CODE__BUSY, "honest client: %s",
                     m->error->message);
        alys_wire_free(&m);
        return false;
    }
    alys_wire_free(&m);
    honest_exact(c, n);
    return true;
}

/* The honest client's first contact, and a full-size answer, so that the
 * baseline includes serving's working set. */
static client_t honest_warm(rss_watch_t *w)
{
    client_t honest = client_open(true);
    handshake(&honest);
    alys_wire_msg_t *m = answer_to(&honest, send_blocks(&honest, 1, 1024), s_answer_ms);
    cr_assert_not_null(m);
    cr_assert_eq(m->body_case, ALYS__WIRE__WIRE_MSG__BODY_BLOCKS);
    cr_assert(m->blocks->truncated, "a full answer is cut at the frame limit");
    alys_wire_free(&m);
    w->pid = pm_pid();
    w->base = w->peak = rss_of(w->pid);
    return honest;
}

Test(serve_attack, one_client_that_never_reads_500_big_answers_costs_at_most_32_mib)
{
    node_up(NULL);
    rss_watch_t w;
    client_t honest = honest_warm(&w);
    double frames0 = metric("alys_peer_serve_frames_total");
    double busy0 = metric("alys_peer_serve_busy_total");
    cr_assert_geq(frames0, 0, "no metrics from node A");

    client_t evil = client_open(false);
    handshake(&evil);
    for (int i = 0; i < 500; i++) {
        send_blocks(&evil, 1, 1024);
        if (i % 50 == 0)
            rss_sample(&w);
    }
    /* Every request has reached the peer manager. */
    wait_metric(&w, "alys_peer_serve_frames_total", frames0 + 501,
                it_budget_ms(&s_node, IT_REQUEST, 0) * 4);
    honest_exact(&honest, 2);
    rss_sample(&w);
    cr_assert_geq(metric("alys_peer_serve_busy_total") - busy0, 400,
                  "the excess was answered BUSY (at most a few requests read)");
    cr_assert_eq(pm_pid(), w.pid, "the peer manager kept its pid");
    cr_log_info("one client, 500 x GetBlocks(1, 1024), never reading: RSS %lld -> peak %lld KiB "
                "(+%lld KiB)",
                w.base / 1024, w.peak / 1024, (w.peak - w.base) / 1024);
    cr_assert_leq(w.peak - w.base, 32 * MIB, "RSS grew by %lld MiB (base %lld MiB)",
                  (w.peak - w.base) / MIB, w.base / MIB);
    cr_assert_leq(metric("alys_peer_serve_bytes_owed"), 16 * MIB + 0.0,
                  "bytes owed within one client's budget");
    client_close(&evil);
    client_close(&honest);
}

static int attack_clients(void)
{
    const char *v = getenv("ALYS_ATTACK_CLIENTS");
    int n = v ? atoi(v) : 100;
    return n > 0 && n <= 1000 ? n : 100;
}

Test(serve_attack, many_clients_that_never_read_stay_within_serve_memory_mb_plus_64_mib)
{
    const long long budget_mb = 64;
    const char *ov[] = {"serve_memory_mb = 64", "max_inbound_peers = 1024",
                        "max_inbound_per_address = 1024", NULL};
    int n = attack_clients();
    /* Up to 1,000 clients: two descriptors each here, one each in the peer
     * manager (which inherits this limit through the supervisor); before
     * any socket or node exists. */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        cr_assert_eq(setrlimit(RLIMIT_NOFILE, &rl), 0);
    }
    zsys_set_max_sockets((size_t) n + 64);
    node_up(ov);
    rss_watch_t w;
    client_t honest = honest_warm(&w);
    client_t *evil = calloc((size_t) n, sizeof *evil);
    cr_assert_not_null(evil);
    double frames0 = metric("alys_peer_serve_frames_total");
    for (int i = 0; i < n; i++) {
        evil[i] = client_open(false);
        alys_wire_msg_t *m = answer_to(&evil[i], send_status(&evil[i]), s_answer_ms);
        if (!m) {
            char *log = it_read_file(s_node.log);
            size_t len = log ? strlen(log) : 0;
            cr_assert_fail("client %d: no answer to its handshake; log tail:\n%s", i,
                           log ? log + (len > 4000 ? len - 4000 : 0) : "");
        }
        alys_wire_free(&m);
        for (int k = 0; k < 10; k++)
            send_blocks(&evil[i], 1, 1024);
        rss_sample(&w);
    }
    wait_metric(&w, "alys_peer_serve_frames_total", frames0 + 11.0 * n,
                it_budget_ms(&s_node, IT_REQUEST, 0) * 8);
    /* The attackers hold the whole of serve_memory_mb: the honest client
     * gets BUSY until stalled attackers are dropped (their connections
     * closed, pm_inbound.h), then it is served. */
    int64_t end = it_now_ms() + STALL_MS + it_budget_ms(&s_node, IT_REQUEST, 0) * 4;
    bool served = false;
    int busy = 0;
    while (!served && it_now_ms() < end) {
        rss_sample(&w);
        served = honest_exact_or_busy(&honest, 2);
        busy += !served;
        if (!served)
            it_sleep_ms(200);
    }
    cr_log_info("honest client served after %d BUSY answers", busy);
    cr_assert(served, "the honest client was never served again");
    wait_metric(&w, "alys_peer_inbound_dropped_total", 1, s_answer_ms);
    rss_sample(&w);
    cr_assert_eq(pm_pid(), w.pid, "the peer manager kept its pid");
    cr_log_info("%d clients never reading, serve_memory_mb %lld: RSS %lld -> peak %lld KiB "
                "(+%lld KiB)",
                n, budget_mb, w.base / 1024, w.peak / 1024, (w.peak - w.base) / 1024);
    cr_assert_leq(metric("alys_peer_serve_bytes_owed"), budget_mb * MIB + 0.0,
                  "bytes owed within serve_memory_mb");
    cr_assert_leq(w.peak - w.base, (budget_mb + 64) * MIB,
                  "%d clients: RSS grew by %lld MiB (base %lld MiB)", n, (w.peak - w.base) / MIB,
                  w.base / MIB);
    for (int i = 0; i < n; i++)
        client_close(&evil[i]);
    free(evil);
    client_close(&honest);
}

/* Does `alysctl peers --json` on node A list endpoint in state? */
static bool peers_lists(const char *endpoint, const char *state)
{
    const char *argv[] = {
        it_bin("actors/alysctl/alysctl"), "--config", s_node.config, "peers", "--json", NULL};
    static char out[1 << 16];
    if (it_run(argv, out, sizeof out, s_answer_ms) != 0)
        return false;
    json_error_t err;
    json_t *root = json_loads(out, 0, &err);
    bool found = false;
    size_t i;
    json_t *e;
    json_array_foreach(json_object_get(root, "peers"), i, e)
    {
        const char *ep = json_string_value(json_object_get(e, "endpoint"));
        const char *st = json_string_value(json_object_get(e, "state"));
        found |= ep && st && strcmp(ep, endpoint) == 0 && strcmp(st, state) == 0;
    }
    json_decref(root);
    return found;
}

/* Does `alysctl peers --json` list an inbound client owed at least bytes? */
static bool peers_list_owing(long long bytes)
{
    const char *argv[] = {
        it_bin("actors/alysctl/alysctl"), "--config", s_node.config, "peers", "--json", NULL};
    static char out[1 << 16];
    if (it_run(argv, out, sizeof out, s_answer_ms) != 0)
        return false;
    json_error_t err;
    json_t *root = json_loads(out, 0, &err);
    bool found = false;
    size_t i;
    json_t *e;
    json_array_foreach(json_object_get(root, "peers"), i, e)
    {
        const char *st = json_string_value(json_object_get(e, "state"));
        json_int_t owed = json_integer_value(json_object_get(e, "bytes_owed"));
        found |= st && strcmp(st, "inbound") == 0 && owed >= bytes;
    }
    json_decref(root);
    return found;
}

Test(serve_attack, a_client_that_disconnects_owing_gives_its_bytes_back)
{
    node_up(NULL);
    rss_watch_t w;
    client_t honest = honest_warm(&w);
    client_t evil = client_open(false);
    handshake(&evil);
    for (int i = 0; i < 8; i++)
        send_blocks(&evil, 1, 1024);
    int t = it_budget_ms(&s_node, IT_REQUEST, 0) * 4;
    /* Some answer is owed (the window closed), then the client goes. */
    int64_t end = it_now_ms() + t;
    double owed = 0;
    while (it_now_ms() < end && (owed = metric("alys_peer_serve_bytes_owed")) < 4 * MIB)
        it_sleep_ms(50);
    cr_assert_geq(owed, 4 * MIB, "answers to a client that does not read are owed");
    cr_assert(peers_list_owing(4 * MIB), "alysctl peers shows the client and its bytes owed");
    client_close(&evil);
    end = it_now_ms() + t;
    while (it_now_ms() < end && (owed = metric("alys_peer_serve_bytes_owed")) > 0)
        it_sleep_ms(50);
    cr_assert_eq(owed, 0, "its bytes owed came back when its connection closed");
    honest_exact(&honest, 2);
    client_close(&honest);
}

/* Node B (same genesis, serving), then node A (node_up) with B as its one
 * bootstrap peer and extra (one "key = value"), until A lists B
 * connected. B's endpoint into ep_b. */
static void up_with_outbound_peer(const char *extra, char *ep_b, size_t len)
{
    chain_get();
    int port_b = it_free_port();
    cr_assert_gt(port_b, 0);
    static char genesis[400], listen_b[100], boot[ALYS_ENDPOINT_MAX + 32];
    snprintf(genesis, sizeof genesis, "genesis_file = \"%s\"", s_chain.genesis_file);
    snprintf(listen_b, sizeof listen_b, "listen = \"tcp://127.0.0.1:%d\"", port_b);
    const char *ov_b[] = {genesis, listen_b, "validation_workers = 1", "bootstrap_peers = []", NULL};
    for (size_t i = 0; i < s_chain.n; i++)
        free(s_chain.blocks[i].data);
    node_start(&s_other, ov_b, port_b, ep_b, len);
    s_other_up = true;
    snprintf(boot, sizeof boot, "bootstrap_peers = [\"%s\"]", ep_b);
    const char *ov[] = {boot, extra, NULL};
    node_up(ov);
    int64_t end = it_now_ms() + it_budget_ms(&s_node, IT_READY, 0);
    while (it_now_ms() < end && !peers_lists(ep_b, "connected"))
        it_sleep_ms(200);
    cr_assert(peers_lists(ep_b, "connected"), "node A never connected to node B");
}

Test(serve_attack, the_per_address_limit_holds_and_our_outbound_peer_is_unaffected)
{
    char ep_b[ALYS_ENDPOINT_MAX], per[64];
    snprintf(per, sizeof per, "max_inbound_per_address = %d", PER_ADDR);
    up_with_outbound_peer(per, ep_b, sizeof ep_b);
    pid_t pid = pm_pid();

    /* At most PER_ADDR clients from 127.0.0.1 are served at once, then
     * nobody else from it. Some slots are taken already: node_up's warm-up
     * client (closed, but a ROUTER does not tell of a disconnect, so it
     * holds its slot until silent for PM_INBOUND_IDLE_MS, pm_inbound.h)
     * and node B, which dials A back once it has heard A's Status. */
    enum { N = PER_ADDR + 6 };
    client_t c[N];
    uint64_t ids[N];
    for (int i = 0; i < N; i++) {
        c[i] = client_open(true);
        ids[i] = send_status(&c[i]);
    }
    int answered = 0, first = -1;
    for (int i = 0; i < N; i++) {
        alys_wire_msg_t *m = answer_to(&c[i], ids[i], QUIET_MS);
        if (m && first < 0)
            first = i;
        answered += m != NULL;
        alys_wire_free(&m);
    }
    cr_log_info("%d of %d clients from one address answered (limit %d)", answered, N, PER_ADDR);
    cr_assert_geq(answered, 1, "the first clients from the address are served");
    cr_assert_leq(answered, PER_ADDR - 1, "the per-address limit holds (the warm-up holds one)");
    rss_watch_t w = {.pid = pid};
    wait_metric(&w, "alys_peer_inbound_refused_total", N - answered, s_answer_ms);
    /* The admitted ones are still served; the outbound peer is still ours. */
    handshake(&c[first]);
    cr_assert(peers_lists(ep_b, "connected"), "node A lost its outbound peer");
    cr_assert_eq(pm_pid(), pid);
    for (int i = 0; i < N; i++)
        client_close(&c[i]);
}

/* Issue 8: "2,000 identities connecting at once: bounded tables, honest
 * outbound peers unaffected". Each client is a key of its own (CURVE); all
 * send a Status at once. The per-address limit is lifted, so the inbound
 * slots and eviction are what bound them. */
Test(serve_attack, two_thousand_identities_at_once_leave_bounded_tables_and_our_outbound_peer)
{
    enum { N = 2000 };
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        cr_assert_eq(setrlimit(RLIMIT_NOFILE, &rl), 0);
    }
    zsys_set_max_sockets((size_t) N + 64);
    char ep_b[ALYS_ENDPOINT_MAX];
    up_with_outbound_peer("max_inbound_per_address = 1024", ep_b, sizeof ep_b);
    pid_t pid = pm_pid();
    rss_watch_t w = {.pid = pid, .base = rss_of(pid)};
    w.peak = w.base;
    double frames0 = metric("alys_peer_serve_frames_total");
    client_t *c = calloc(N, sizeof *c);
    cr_assert_not_null(c);
    for (int i = 0; i < N; i++) {
        c[i] = client_open(true);
        send_status(&c[i]);
        if (i % 100 == 0)
            rss_sample(&w);
    }
    /* Every Status reached the peer manager (counted before admission). */
    wait_metric(&w, "alys_peer_serve_frames_total", frames0 + N,
                it_budget_ms(&s_node, IT_REQUEST, 0) * 8);
    long long slots = it_cfg_int(&s_node, "max_inbound_peers");
    double inbound = metric("alys_peer_inbound_clients");
    double evicted = metric("alys_peer_inbound_evicted_total");
    double refused = metric("alys_peer_inbound_refused_total");
    rss_sample(&w);
    cr_log_info("%d identities: %.0f inbound, %.0f evicted, %.0f refused; peer manager RSS "
                "+%lld KiB",
                N, inbound, evicted, refused, (w.peak - w.base) / 1024);
    cr_assert_leq(inbound, (double) slots, "inbound slots bounded");
    cr_assert_geq(evicted + refused, N / 2, "the slots turned the newcomers away");
    /* RSS is printed, not bounded: during the storm it is libzmq's state of
     * every connection accepted before the core closes it (+55 MiB quiet,
     * +192 MiB under two `yes`), bounded only by the open-files limit, not
     * by any budget of ours. Known gap (issue 8 closing note): cap
     * connections per address and in all where they are accepted. */
    cr_assert(peers_lists(ep_b, "connected"), "node A lost its outbound peer");
    cr_assert_eq(pm_pid(), pid, "the peer manager kept its pid");
    for (int i = 0; i < N; i++)
        client_close(&c[i]);
    free(c);
}

Test(serve_attack, a_pipelining_client_gets_an_answer_to_every_request_blocks_or_busy)
{
    node_up(NULL);
    client_t c = client_open(true);
    handshake(&c);
    enum { N = 20 };
    bool seen[N] = {false};
    uint64_t first = 0;
    for (int i = 0; i < N; i++) {
        uint64_t id = send_blocks(&c, 1, 2);
        if (i == 0)
            first = id;
    }
    int blocks = 0, busy = 0;
    for (int k = 0; k < N; k++) {
        alys_wire_msg_t *m = recv_msg(&c, s_answer_ms);
        cr_assert_not_null(m, "only %d of %d requests answered", k, N);
        uint64_t i = m->request_id - first;
        cr_assert(i < N && !seen[i], "an answer to no request or twice: %llu",
                  (unsigned long long) m->request_id);
        seen[i] = true;
        if (m->body_case == ALYS__WIRE__WIRE_MSG__BODY_ERROR) {
            cr_assert_eq(m->error->code, ALYS__WIRE__WIRE_ERROR__CODE__BUSY, "%s", m->error->message);
            busy++;
        } else {
            cr_assert_eq(m->body_case, ALYS__WIRE__WIRE_MSG__BODY_BLOCKS);
            cr_assert_eq(m->blocks->n_blocks, 2);
            for (size_t b = 0; b < 2; b++)
                cr_assert(m->blocks->blocks[b].len == s_chain.blocks[b].len &&
                          memcmp(m->blocks->blocks[b].data, s_chain.blocks[b].data,
                                 s_chain.blocks[b].len) == 0);
            blocks++;
        }
        alys_wire_free(&m);
    }
    cr_log_info("%d requests pipelined: %d served, %d BUSY", N, blocks, busy);
    cr_assert_geq(blocks, 1);
    cr_assert_geq(busy, 1, "past serve_max_requests in flight: BUSY, not a queue");
    client_close(&c);
}
