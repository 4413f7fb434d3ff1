/*  Import, with real processes: a 20,000-block generated chain imported
 *  through BlockProcessor, validators and StorageActor ends at chaingen's head
 *  hash and state root and exports back to the same bytes; every invalid
 *  block kind is refused at exactly its height with its reason and nothing
 *  after it committed; kill -9 of StorageActor (at random moments), of
 *  BlockProcessor and of a validator during an import changes nothing in the
 *  final state; a validator in another network namespace joins over tcp
 *  with CURVE while one with an unknown certificate cannot.
 *
 *  The node runs under alys-supervisor. The kills land at random heights of
 *  the import (drawn from a seed the log shows; ALYS_IT_SEED=N replays
 *  one), each as soon as StorageActor's committed head has passed it. Every
 *  wait is "eventually within T", T from the node's config (it_budget_ms).
 *  Generated chains are cached under /tmp/alys-import-chains, keyed by the
 *  chaingen binary and the arguments (chaingen is deterministic).
 */
#include <criterion/criterion.h>
#include <czmq.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

#define BIG_BLOCKS "20000"
#define BIG_N      20000

/* ---------------------------------------------------------------- chains */

typedef struct {
    char dir[256];
    char export_path[300];
    char genesis[300];
    char head_hash[80];
    char state_root[80];
} chain_t;

static unsigned long long kv_u64(const char *text, const char *key)
{
    char v[64];
    return strtoull(it_kv(text, key, v, sizeof v), NULL, 10);
}

/* Generate (or reuse) a chain: blocks x txs, fault kind (NULL = none) at fh. */
static void chain_get(chain_t *c, const char *seed, const char *blocks, const char *txs,
                      const char *fault, unsigned long long fh)
{
    const char *gen = it_bin("actors/chaingen/alys-chaingen");
    struct stat st;
    cr_assert_eq(stat(gen, &st), 0, "%s not built", gen);
    char fhs[32];
    snprintf(fhs, sizeof fhs, "%llu", fh);
    snprintf(c->dir, sizeof c->dir, "/tmp/alys-import-chains/%lld-%s-%s-%s-%s-%s",
             (long long) st.st_mtime, seed, blocks, txs, fault ? fault : "none", fhs);
    snprintf(c->export_path, sizeof c->export_path, "%s/chain.export", c->dir);
    snprintf(c->genesis, sizeof c->genesis, "%s/genesis", c->dir);
    char result[320], out[4096];
    snprintf(result, sizeof result, "%s/result.txt", c->dir);
    char *cached = it_read_file(result);
    if (!cached || !strstr(cached, "state_root")) {
        const char *argv[] = {gen,
                              "--blocks",
                              blocks,
                              "--txs-per-block",
                              txs,
                              "--accounts",
                              "500",
                              "--authorities",
                              "3",
                              "--seed",
                              seed,
                              "--out",
                              c->dir,
                              "--no-verify",
                              fault ? "--fault" : NULL,
                              fault,
                              "--fault-height",
                              fhs,
                              NULL};
        cr_assert_eq(it_run(argv, out, sizeof out, 120000), 0, "alys-chaingen failed: %s", out);
        FILE *f = fopen(result, "w");
        cr_assert(f && fputs(out, f) >= 0 && fclose(f) == 0);
        free(cached);
        cached = strdup(out);
    }
    it_kv(cached, "head_hash", c->head_hash, sizeof c->head_hash);
    it_kv(cached, "state_root", c->state_root, sizeof c->state_root);
    free(cached);
}

/* ---------------------------------------------------------------- node */

typedef struct {
    it_node_t n;
    int workers;
} node_t;

static node_t node;

static void fini(void)
{
    it_node_cleanup(&node.n);
}


/* A node on the chain's genesis with `workers` validators. extra: more
 * config overrides (NULL-terminated, may be NULL). */
static void node_start(const chain_t *c, int workers, const char *strategy, const char *const *extra)
{
    char genesis[400], nworkers[64], strat[64];
    snprintf(genesis, sizeof genesis, "genesis_file = \"%s\"", c->genesis);
    snprintf(nworkers, sizeof nworkers, "validation_workers = %d", workers);
    snprintf(strat, sizeof strat, "strategy = \"%s\"", strategy);
    const char *ov[16] = {genesis,
                          nworkers,
                          strat,
                          "task_timeout_ms = 1000",
                          "heartbeat_interval_ms = 200",
                          "heartbeat_timeout_ms = 2000",
                          "restart_backoff_min_ms = 50",
                          "max_restarts = 10"};
    int k = 8;
    for (int i = 0; extra && extra[i] && k < 15; i++)
        ov[k++] = extra[i];
    ov[k] = NULL;
    memset(&node, 0, sizeof node);
    cr_assert_eq(it_node_init(&node.n, ov), 0, "node set-up failed");
    node.workers = workers;
    const char *missing = it_missing_actors(&node.n);
    cr_assert_str_empty(missing, "actor binaries not built: %s", missing);
    cr_assert_eq(it_node_start(&node.n), 0);
    json_t *st = it_wait_all_ready(&node.n, it_budget_ms(&node.n, IT_READY, 0));
    char *log = st ? NULL : it_read_file(node.n.log);
    cr_assert_not_null(st, "node not ready; supervisor log:\n%s", log ? log : "");
    json_decref(st);
}

static pid_t node_pid(const char *name)
{
    json_t *st = it_status(&node.n);
    json_t *a = st ? it_actor(st, name) : NULL;
    pid_t pid = a ? (pid_t) json_integer_value(json_object_get(a, "pid")) : 0;
    json_decref(st);
    return pid;
}

/* kill -9 and wait until the supervisor has it running again. */
static void node_kill9(const char *name)
{
    pid_t pid = node_pid(name);
    cr_assert_gt(pid, 0, "no pid for %s", name);
    cr_assert_eq(kill(pid, SIGKILL), 0);
    json_t *st = it_wait_restarted(&node.n, name, pid, 1, it_budget_ms(&node.n, IT_RESTART, 0));
    cr_assert_not_null(st, "%s was not restarted", name);
    json_decref(st);
}

/* StorageActor's committed head (`alysctl sync head`), -1 if no answer. */
static long long node_head(void)
{
    const char *argv[] = {
        it_bin("actors/alysctl/alysctl"), "--config", node.n.config, "sync", "head", NULL};
    char out[1024], v[32];
    if (it_run(argv, out, sizeof out, it_budget_ms(&node.n, IT_REQUEST, 0)) != 0)
        return -1;
    return it_kv(out, "head_height", v, sizeof v)[0] ? strtoll(v, NULL, 10) : -1;
}

/* ---------------------------------------------------------------- alysctl */

/* An alysctl command of the node; T: the import of the big chain. */
static int alysctl(char *out, size_t outlen, const char *cmd, const char *a1, const char *a2,
                   const char *a3)
{
    const char *argv[] = {
        it_bin("actors/alysctl/alysctl"), "--config", node.n.config, cmd, a1, a2, a3, NULL};
    return it_run(argv, out, outlen, it_budget_ms(&node.n, IT_BLOCKS, BIG_N));
}

static void assert_final_state(const char *out, const chain_t *c, const char *blocks)
{
    char v[100];
    cr_assert_str_eq(it_kv(out, "head_height", v, sizeof v), blocks, "output:\n%s", out);
    cr_assert_str_eq(it_kv(out, "head_hash", v, sizeof v), c->head_hash, "output:\n%s", out);
    cr_assert_str_eq(it_kv(out, "state_root", v, sizeof v), c->state_root, "output:\n%s", out);
}

static void assert_export_identical(const chain_t *c)
{
    char path[200], out[4096];
    snprintf(path, sizeof path, "%s/exported", node.n.dir);
    cr_assert_eq(alysctl(out, sizeof out, "export", path, NULL, NULL), 0, "export failed:\n%s", out);
    char *a = NULL, *b = NULL;
    size_t la = 0, lb = 0;
    FILE *fa = fopen(path, "rb"), *fb = fopen(c->export_path, "rb");
    cr_assert(fa && fb);
    fseek(fa, 0, SEEK_END), la = (size_t) ftell(fa), rewind(fa);
    fseek(fb, 0, SEEK_END), lb = (size_t) ftell(fb), rewind(fb);
    cr_assert_eq(la, lb, "exported %zu bytes, the chain file has %zu", la, lb);
    a = malloc(la + 1), b = malloc(lb + 1);
    cr_assert(fread(a, 1, la, fa) == la && fread(b, 1, lb, fb) == lb);
    cr_assert(memcmp(a, b, la) == 0, "exported bytes differ from the imported file");
    free(a), free(b);
    fclose(fa), fclose(fb);
}

/* ---------------------------------------------------------------- tests */

TestSuite(import, .fini = fini, .timeout = 600);

Test(import, a_20k_chain_ends_at_chaingens_head_and_exports_back_the_same_bytes)
{
    chain_t c;
    chain_get(&c, "it-import", BIG_BLOCKS, "10", NULL, 0);
    node_start(&c, 2, "parallel", NULL);
    static char out[1 << 16];
    int rc = alysctl(out, sizeof out, "import", c.export_path, NULL, NULL);
    cr_assert_eq(rc, 0, "import failed (%d):\n%s", rc, out);
    assert_final_state(out, &c, BIG_BLOCKS);
    assert_export_identical(&c);
    /* Again: everything is there already, nothing changes. */
    rc = alysctl(out, sizeof out, "import", c.export_path, NULL, NULL);
    cr_assert_eq(rc, 0, "re-import failed:\n%s", out);
    cr_assert(strstr(out, "imported 0 blocks"), "%s", out);
    assert_final_state(out, &c, BIG_BLOCKS);
}

Test(import, sequential_strategy_gives_the_same_state)
{
    chain_t c;
    chain_get(&c, "it-seq", "3000", "10", NULL, 0);
    node_start(&c, 0, "sequential", NULL);
    static char out[1 << 16];
    int rc = alysctl(out, sizeof out, "import", c.export_path, NULL, NULL);
    cr_assert_eq(rc, 0, "import failed:\n%s", out);
    assert_final_state(out, &c, "3000");
}

/* Heights chosen so faults land mid-batch, on a batch's first block (its
 * link to the head is storage's check) and on its last, given that each
 * import resumes at the previous fault's height with batches of 256. */
static const struct {
    const char *kind;
    unsigned long long height;
} s_faults[] = {
    {"malformed", 1}, /* the very first block */
    {"bad_proposer_signature", 40},
    {"wrong_proposer", 296}, /* first block of the 2nd batch */
    {"bad_tx_signature", 350},
    {"tx_root_mismatch", 605}, /* last block of the 1st batch */
    {"height_gap", 861},       /* first of a batch: storage's link check */
    {"parent_mismatch", 900},
    {"non_increasing_slot", 1156}, /* first of a batch */
    {"future_slot", 1200},
    {"bad_timestamp", 1250},
    {"bad_nonce", 1300},            /* execution (storage) */
    {"insufficient_balance", 1556}, /* execution, first of a batch */
    {"state_root_mismatch", 1600},
    {"oversize", 1650},
};

Test(import, every_invalid_kind_is_refused_at_its_height_and_nothing_after_commits)
{
    chain_t c;
    chain_get(&c, "it-faults", "1700", "4", s_faults[0].kind, s_faults[0].height);
    node_start(&c, 2, "parallel", NULL);
    static char out[1 << 16];
    for (size_t i = 0; i < sizeof s_faults / sizeof s_faults[0]; i++) {
        const char *kind = s_faults[i].kind;
        unsigned long long h = s_faults[i].height;
        chain_get(&c, "it-faults", "1700", "4", kind, h);
        for (int round = 0; round < 2; round++) { /* again: still refused, still nothing after */
            int rc = alysctl(out, sizeof out, "import", c.export_path, NULL, NULL);
            char reason[64];
            cr_assert_eq(rc, 1, "%s at %llu: exit %d, want 1:\n%s", kind, h, rc, out);
            cr_assert_str_eq(it_kv(out, "reason", reason, sizeof reason), kind, "%s:\n%s", kind, out);
            cr_assert_eq(kv_u64(out, "failed_height"), h, "%s:\n%s", kind, out);
            cr_assert_eq(kv_u64(out, "head_height"), h - 1, "%s: blocks after it committed:\n%s",
                         kind, out);
        }
    }
}

/* Import the big chain while `victim` is killed `times` times at random
 * heights (the k-th somewhere in the k-th of `times` equal parts of the
 * chain's first three quarters); the import must finish with chaingen's
 * final state. */
static void import_while_killing(const char *victim, int times, int workers)
{
    chain_t c;
    chain_get(&c, "it-import", BIG_BLOCKS, "10", NULL, 0);
    node_start(&c, workers, "parallel", NULL);
    const char *env_seed = getenv("ALYS_IT_SEED");
    unsigned seed = env_seed ? (unsigned) strtoul(env_seed, NULL, 10)
                             : (unsigned) time(NULL) ^ (unsigned) getpid();
    cr_log_info("kill heights seed %u (ALYS_IT_SEED=%u replays them)", seed, seed);
    srand(seed);
    char outpath[200];
    snprintf(outpath, sizeof outpath, "%s/import.out", node.n.dir);
    const char *argv[] = {it_bin("actors/alysctl/alysctl"),
                          "--config",
                          node.n.config,
                          "import",
                          c.export_path,
                          NULL};
    pid_t imp = it_spawn(argv, outpath);
    int budget = it_budget_ms(&node.n, IT_BLOCKS, BIG_N);
    long long part = BIG_N * 3 / 4 / times;
    for (int k = 0; k < times; k++) {
        long long at = part * k + 1 + rand() % part, head = -1;
        for (int64_t end = it_now_ms() + budget; it_now_ms() < end && it_wait_exit(imp, 0) < 0;
             it_sleep_ms(20))
            if ((head = node_head()) >= at)
                break;
        cr_assert_geq(head, at, "the import %s before height %lld (kill %d of %s)",
                      it_wait_exit(imp, 0) >= 0 ? "ended" : "did not get", at, k + 1, victim);
        cr_log_info("kill %d of %s at head %lld", k + 1, victim, head);
        node_kill9(victim);
    }
    int status = it_wait_exit(imp, budget);
    char *out = it_read_file(outpath);
    cr_assert(status >= 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0,
              "import did not succeed after killing %s:\n%s", victim, out ? out : "");
    assert_final_state(out, &c, BIG_BLOCKS);
    free(out);
    assert_export_identical(&c);
}

Test(import, kill9_of_storage_at_random_moments)
{
    import_while_killing("storage", 3, 2);
}

Test(import, kill9_of_the_block_processor)
{
    import_while_killing("block_processor", 2, 2);
}

Test(import, kill9_of_a_validator_loses_no_block)
{
    import_while_killing("validator-1", 2, 2);
}

/* ---------------------------------------------------------------- CURVE */

typedef struct {
    char ns[32];
    char veth_host[16];
    char veth_ns[16];
} netns_t;

static netns_t s_net;

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...)
{
    char cmd[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    int rc = system(cmd);
    return rc == 0 ? 0 : -1;
}

static void netns_down(void)
{
    if (!s_net.ns[0])
        return;
    sh("ip link del %s 2>/dev/null", s_net.veth_host);
    sh("ip netns del %s 2>/dev/null", s_net.ns);
    s_net.ns[0] = '\0';
}

/* A namespace reached from here over a veth pair: 10.77.0.1 on our side,
 * 10.77.0.2 in the namespace. Addresses of the test's own two hosts. */
static void netns_up(void)
{
    int id = (int) getpid() % 100000;
    snprintf(s_net.ns, sizeof s_net.ns, "alys-it-%d", id);
    snprintf(s_net.veth_host, sizeof s_net.veth_host, "alyh%d", id);
    snprintf(s_net.veth_ns, sizeof s_net.veth_ns, "alyn%d", id);
    cr_assert_eq(sh("ip netns add %s", s_net.ns), 0, "ip netns add failed");
    cr_assert_eq(sh("ip link add %s type veth peer name %s && ip link set %s netns %s && "
                    "ip addr add 10.77.0.1/24 dev %s && ip link set %s up && "
                    "ip netns exec %s ip addr add 10.77.0.2/24 dev %s && "
                    "ip netns exec %s ip link set %s up && ip netns exec %s ip link set lo up",
                    s_net.veth_host, s_net.veth_ns, s_net.veth_ns, s_net.ns, s_net.veth_host,
                    s_net.veth_host, s_net.ns, s_net.veth_ns, s_net.ns, s_net.veth_ns, s_net.ns),
                 0, "veth set-up failed");
}

static void curve_fini(void)
{
    netns_down();
    fini();
}

/* dir/server.cert(+_secret), dir/allowed/good.cert, dir/worker/{good,bad}.cert(+_secret)
 * and dir/worker/server.cert (the public half, as a remote worker has it). */
static void make_certs(const char *dir)
{
    char path[300];
    snprintf(path, sizeof path, "%s/allowed", dir);
    cr_assert_eq(mkdir(path, 0700), 0);
    snprintf(path, sizeof path, "%s/worker", dir);
    cr_assert_eq(mkdir(path, 0700), 0);
    zcert_t *server = zcert_new();
    zcert_t *good = zcert_new();
    zcert_t *bad = zcert_new();
    cr_assert(server && good && bad);
    snprintf(path, sizeof path, "%s/server.cert", dir);
    cr_assert_eq(zcert_save(server, path), 0);
    snprintf(path, sizeof path, "%s/worker/server.cert", dir);
    cr_assert_eq(zcert_save_public(server, path), 0);
    snprintf(path, sizeof path, "%s/allowed/good.cert", dir);
    cr_assert_eq(zcert_save_public(good, path), 0);
    snprintf(path, sizeof path, "%s/worker/good.cert", dir);
    cr_assert_eq(zcert_save(good, path), 0);
    snprintf(path, sizeof path, "%s/worker/bad.cert", dir);
    cr_assert_eq(zcert_save(bad, path), 0);
    zcert_destroy(&server);
    zcert_destroy(&good);
    zcert_destroy(&bad);
}

/* alys-validator in the namespace, with only --connect and --cert: no
 * config, no genesis; it gets the genesis from the processor. */
static pid_t remote_validator(const char *name, const char *cert, int port)
{
    char endpoint[64], log[200];
    snprintf(endpoint, sizeof endpoint, "tcp://10.77.0.1:%d", port);
    snprintf(log, sizeof log, "%s/%s.log", node.n.dir, name);
    const char *argv[] = {
        "/usr/sbin/ip", "netns",  "exec",   s_net.ns, it_bin("actors/validator/alys-validator"),
        "--connect",    endpoint, "--cert", cert,     "--name",
        name,           NULL};
    return it_spawn(argv, log);
}

Test(curve, a_validator_in_another_netns_joins_over_curve_and_an_unknown_one_cannot,
     .fini = curve_fini, .timeout = 300)
{
    if (geteuid() != 0)
        cr_skip_test("needs root to create a network namespace (ip netns); skipped");
    netns_up();
    chain_t c;
    chain_get(&c, "it-curve", "2000", "10", NULL, 0);
    int port = it_free_port();
    cr_assert_gt(port, 0);
    char listen[64], server_cert[300], allowed[300], certdir[200];
    /* The node directory exists only after node_start: certs go beside it. */
    snprintf(certdir, sizeof certdir, "/tmp/alys-it-curve-%d", (int) getpid());
    sh("rm -rf %s", certdir);
    cr_assert_eq(mkdir(certdir, 0700), 0);
    make_certs(certdir);
    snprintf(listen, sizeof listen, "worker_listen = \"tcp://10.77.0.1:%d\"", port);
    snprintf(server_cert, sizeof server_cert, "curve_server_cert = \"%s/server.cert\"", certdir);
    snprintf(allowed, sizeof allowed, "curve_allowed_dir = \"%s/allowed\"", certdir);
    const char *extra[] = {listen, "curve_enabled = true", server_cert, allowed, NULL};
    node_start(&c, 0, "parallel", extra); /* no local validator: only the remote one */

    char good[300], bad[300], bp_log[200];
    snprintf(good, sizeof good, "%s/worker/good.cert", certdir);
    snprintf(bad, sizeof bad, "%s/worker/bad.cert", certdir);
    pid_t vg = remote_validator("remote-good", good, port);
    pid_t vb = remote_validator("remote-bad", bad, port);
    cr_assert(vg > 0 && vb > 0);
    snprintf(bp_log, sizeof bp_log, "%s", node.n.log);
    cr_assert(it_wait_file_contains(bp_log, "validator remote-good joined the pool",
                                    it_budget_ms(&node.n, IT_READY, 0)),
              "the allowed remote validator did not join");
    cr_assert(it_wait_file_contains(bp_log, "remote validator refused",
                                    it_budget_ms(&node.n, IT_READY, 0)),
              "no refused handshake logged for the unknown certificate");

    static char out[1 << 16];
    int rc = alysctl(out, sizeof out, "import", c.export_path, NULL, NULL);
    cr_assert_eq(rc, 0, "import failed:\n%s", out);
    assert_final_state(out, &c, "2000");

    char *log = it_read_file(bp_log);
    cr_assert(log && !strstr(log, "remote-bad joined"), "the unknown validator joined");
    cr_assert(!strstr(log, "validating in-process"), "work did not go to the remote validator");
    free(log);
    kill(vg, SIGTERM);
    kill(vb, SIGTERM);
    it_wait_exit(vg, it_budget_ms(&node.n, IT_SHUTDOWN, 0));
    it_wait_exit(vb, it_budget_ms(&node.n, IT_SHUTDOWN, 0));
    char glog[200];
    snprintf(glog, sizeof glog, "%s/remote-good.log", node.n.dir);
    char *gl = it_read_file(glog);
    cr_assert(gl && strstr(gl, "stopping:") && !strstr(gl, "stopping: 0 tasks"),
              "the remote validator validated nothing:\n%s", gl ? gl : "");
    free(gl);
    sh("rm -rf %s", certdir);
}
