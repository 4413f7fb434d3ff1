/* Unit tests of common/config.c: the defaults, deploy/alys-sync.toml, every
 * key read back, path resolution, endpoint derivation, and one test per class
 * of bad input, asserting the exact message with its line:col. */
#include "config.h"
#include "config_schema.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef DEPLOY_TOML
#error "DEPLOY_TOML must name deploy/alys-sync.toml (set by meson)"
#endif

/* ------------------------------------------------------------------ helpers */

static void expect_endpoints(const alys_config_t *c, const char *run_dir)
{
    const struct {
        const char *got, *name;
    } eps[] = {
        {c->ep_supervisor, "supervisor"},
        {c->ep_events_in, "events_in"},
        {c->ep_events, "events"},
        {c->ep_storage, "storage"},
        {c->ep_peer_manager, "peer_manager"},
        {c->ep_block_processor, "block_processor"},
        {c->ep_validators, "validators"},
        {c->ep_sync, "sync"},
    };
    for (size_t i = 0; i < sizeof eps / sizeof eps[0]; i++) {
        char want[ALYS_ENDPOINT_MAX];
        int w = snprintf(want, sizeof want, "ipc://%s/%s.sock", run_dir, eps[i].name);
        cr_assert(w > 0 && (size_t) w < sizeof want);
        cr_assert_str_eq(eps[i].got, want);
    }
}

/* Every key's default, written out literally (not taken from config.c). */
static void expect_defaults(const alys_config_t *c, const char *data_dir, const char *run_dir)
{
    cr_assert_str_eq(c->node_name, "node");
    cr_assert_str_eq(c->data_dir, data_dir);
    cr_assert_str_eq(c->run_dir, run_dir);
    cr_assert_str_eq(c->genesis_file, "");
    cr_assert_str_eq(c->log_level, "info");

    cr_assert_str_eq(c->strategy, "parallel");
    cr_assert_eq(c->max_parallel_downloads, 3);
    cr_assert_str_eq(c->batch_size, "adaptive");
    cr_assert_eq(c->fixed_batch_size, 256);
    cr_assert_eq(c->min_batch_size, 16);
    cr_assert_eq(c->max_batch_size, 1024);
    cr_assert_eq(c->checkpoint_interval, 100);
    cr_assert_eq(c->max_checkpoints, 10);
    cr_assert_str_eq(c->checkpoint_storage, "checkpoints");
    cr_assert_eq(c->max_recovery_attempts, 5);
    cr_assert_eq(c->recovery_backoff_secs, 60);
    cr_assert_eq(c->auto_recovery, true);
    cr_assert_str_eq(c->peer_selection, "weighted");
    cr_assert_float_eq(c->latency_weight, 0.4, 1e-12);
    cr_assert_float_eq(c->reliability_weight, 0.4, 1e-12);
    cr_assert_float_eq(c->bandwidth_weight, 0.2, 1e-12);
    cr_assert_eq(c->min_sync_peers, 1);
    cr_assert_eq(c->max_sync_peers, 10);
    cr_assert_float_eq(c->peer_score_threshold, 0.5, 1e-12);
    cr_assert_eq(c->validation_workers, 4);
    cr_assert_eq(c->max_memory_gb, 8);
    cr_assert_eq(c->cache_size_mb, 0); /* 1/16 of max_memory_gb */
    cr_assert_float_eq(c->production_threshold, 99.5, 1e-12);
    cr_assert_eq(c->production_max_blocks_behind, 10);
    cr_assert_eq(c->download_window, 1024);
    cr_assert_eq(c->request_timeout_ms, 5000);

    cr_assert_eq(c->max_reorg_depth, 64);
    cr_assert_eq(c->wal_sync, true);

    cr_assert_str_eq(c->listen, "");
    cr_assert_eq(c->bootstrap_peer_count, 0);
    cr_assert_eq(c->serve_rate_limit, 200);

    cr_assert_str_eq(c->worker_listen, "");
    cr_assert_eq(c->curve_enabled, false);
    cr_assert_str_eq(c->curve_server_cert, "");
    cr_assert_str_eq(c->curve_allowed_dir, "");
    cr_assert_eq(c->task_timeout_ms, 2000);

    expect_endpoints(c, run_dir);

    cr_assert_eq(c->start_timeout_ms, 5000);
    cr_assert_eq(c->heartbeat_interval_ms, 500);
    cr_assert_eq(c->heartbeat_timeout_ms, 3000);
    cr_assert_eq(c->restart_backoff_min_ms, 100);
    cr_assert_eq(c->restart_backoff_max_ms, 5000);
    cr_assert_eq(c->max_restarts, 5);
    cr_assert_eq(c->restart_window_secs, 60);
    cr_assert_eq(c->shutdown_timeout_ms, 3000);

    cr_assert_eq(c->metrics_enabled, true);
    cr_assert_eq(c->metrics_port, 9091);
    cr_assert_str_eq(c->metrics_bind, "127.0.0.1");
}

/* Parses text as "t.toml"; must fail with exactly `want`, leaving cfg as it was. */
static void expect_error(const char *text, const char *want)
{
    alys_config_t cfg, before;
    char err[ALYS_ERR_MAX] = "";
    alys_config_defaults(&cfg);
    before = cfg;
    cr_assert_eq(alys_config_parse(&cfg, text, "t.toml", err, sizeof err), -1, "accepted:\n%s", text);
    cr_assert_str_eq(err, want);
    cr_assert(memcmp(&cfg, &before, sizeof cfg) == 0, "config changed by a failed parse");
}

static void parse_ok(alys_config_t *cfg, const char *text, const char *name)
{
    char err[ALYS_ERR_MAX] = "";
    cr_assert_eq(alys_config_parse(cfg, text, name, err, sizeof err), 0, "%s", err);
}

static void make_tmpdir(char *dir, size_t cap)
{
    int w = snprintf(dir, cap, "%s", "/tmp/alys-config-test-XXXXXX");
    cr_assert(w > 0 && (size_t) w < cap);
    cr_assert_not_null(mkdtemp(dir), "mkdtemp: %s", strerror(errno));
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f, "%s: %s", path, strerror(errno));
    cr_assert_eq(fputs(text, f) >= 0, true);
    cr_assert_eq(fclose(f), 0);
}

static void join(char *out, size_t cap, const char *a, const char *b)
{
    int w = snprintf(out, cap, "%s/%s", a, b);
    cr_assert(w > 0 && (size_t) w < cap);
}

/* ------------------------------------------------------- defaults and deploy */

Test(config, defaults_are_the_documented_values)
{
    alys_config_t c;
    alys_config_defaults(&c);
    expect_defaults(&c, "./data", "./run");
    cr_assert_str_eq(c.path, "");
}

Test(config, deploy_file_loads_with_every_default)
{
    alys_config_t c;
    char err[ALYS_ERR_MAX] = "";
    cr_assert_eq(alys_config_load(&c, DEPLOY_TOML, err, sizeof err), 0, "%s", err);
    expect_defaults(&c, "/var/lib/alys-sync", "/run/alys-sync");
    cr_assert_str_eq(c.path, DEPLOY_TOML);
}

/* Loading equal to the defaults proves nothing for a key left out of the file:
 * check that the file spells out every key of the schema, in its table, and
 * leaves out the keys that do nothing (they are refused from it by a note). */
Test(config, deploy_file_lists_every_key)
{
    static char text[1 << 16];
    FILE *f = fopen(DEPLOY_TOML, "r");
    cr_assert_not_null(f);
    size_t n = fread(text, 1, sizeof text - 1, f);
    cr_assert_eq(fclose(f), 0);
    text[n] = '\0';
    cr_assert_gt(cfg_key_count(), 50);
    for (size_t i = 0; i < cfg_key_count(); i++) {
        const cfg_key_t *k = cfg_key_at(i);
        char header[64], line[96];
        (void) snprintf(header, sizeof header, "\n[%s]\n", k->table);
        (void) snprintf(line, sizeof line, "\n%s = ", k->key);
        const char *table = strstr(text, header);
        cr_assert_not_null(table, "no [%s] in the deploy file", k->table);
        const char *next = strstr(table + 1, "\n[");
        const char *at = strstr(table, line);
        bool listed = at && (!next || at < next);
        if (k->inert)
            cr_assert(!listed, "%s does nothing but is in the deploy file", k->name);
        else
            cr_assert(listed, "no %s in the deploy file", k->name);
    }
}

/* ------------------------------------------------------------ every key set */

static const char every_key[] =
    "# every key, none at its default\n"
    "[node]\n"
    "name = \"a\\\"b\\\\c\\td\\ne\"\n"
    "data_dir = \"../data\"\n"
    "run_dir = \"/tmp/r\"\n"
    "genesis_file = \"genesis.json\"\n"
    "log_level = \"debug\"\n"
    "\n"
    "[sync]\n"
    "strategy = \"sequential\"\n"
    "max_parallel_downloads = 7\n"
    "batch_size = \"fixed\"\n"
    "fixed_batch_size = 300\n"
    "min_batch_size = 32\n"
    "max_batch_size = 2_048\n"
    "checkpoint_interval = 250\n"
    "max_checkpoints = 20\n"
    "checkpoint_storage = \"/srv/cp\"\n"
    "max_recovery_attempts = 9\n"
    "recovery_backoff_secs = 30\n"
    "auto_recovery = false\n"
    "peer_selection = \"most_reliable\"\n"
    "latency_weight = 0.25\n"
    "reliability_weight = 1\n"
    "bandwidth_weight = 2.5e-1\n"
    "min_sync_peers = 2\n"
    "max_sync_peers = 12\n"
    "peer_score_threshold = 0.75\n"
    "validation_workers = 0\n"
    "max_memory_gb = 16\n"
    "cache_size_mb = 1_024\n"
    "production_threshold = 98.0\n"
    "production_max_blocks_behind = 5\n"
    "download_window = 4096\n"
    "request_timeout_ms = +7000\n"
    "\n"
    "[storage]\n"
    "max_reorg_depth = 128\n"
    "wal_sync = false\n"
    "\n"
    "[network]\n"
    "listen = \"tcp://0.0.0.0:30303\"\n"
    "bootstrap_peers = [\n"
    "    \"alys://1111111111111111111111111111111111111111111111111111111111111111@10.0.0.1:30303\", # first\n"
    "\n"
    "    \"alys://1111111111111111111111111111111111111111111111111111111111111111@[::1]:30304\"  ,\n"
    "    \"alys://Yne@$w-vo<fVvi]a<NY6T1ed:M$fCG*[IaLV{hID@peer.example:1\",\n"
    "]\n"
    "serve_rate_limit = 50\n"
    "\n"
    "[validation]\n"
    "worker_listen = \"tcp://*:7701\"\n"
    "curve_enabled = true\n"
    "curve_server_cert = \"keys/server.secret\"\n"
    "curve_allowed_dir = \"/etc/alys/workers\"\n"
    "task_timeout_ms = 1500\n"
    "\n"
    "[endpoints]\n"
    "supervisor = \"ipc:///tmp/e/sup.sock\"\n"
    "events_in = \"tcp://127.0.0.1:7001\"\n"
    "events = \"tcp://127.0.0.1:7002\"\n"
    "storage = \"tcp://127.0.0.1:7003\"\n"
    "peer_manager = \"tcp://127.0.0.1:7004\"\n"
    "block_processor = \"tcp://127.0.0.1:7005\"\n"
    "validators = \"tcp://127.0.0.1:7006\"\n"
    "sync = \"tcp://127.0.0.1:7007\"\n"
    "\n"
    "[supervisor]\n"
    "start_timeout_ms = 6000\n"
    "heartbeat_interval_ms = 250\n"
    "heartbeat_timeout_ms = 1000\n"
    "restart_backoff_min_ms = 0\n"
    "restart_backoff_max_ms = 800\n"
    "max_restarts = 0\n"
    "restart_window_secs = 10\n"
    "shutdown_timeout_ms = 1200\n"
    "\n"
    "[metrics]\n"
    "metrics_enabled = false\n"
    "metrics_port = 19091\n"
    "metrics_bind = \"0.0.0.0\"\n";

Test(config, every_key_is_read)
{
    alys_config_t c;
    alys_config_defaults(&c);
    parse_ok(&c, every_key, "/etc/alys/conf/node.toml");
    cr_assert_str_eq(c.node_name, "a\"b\\c\td\ne");
    cr_assert_str_eq(c.data_dir, "/etc/alys/data");
    cr_assert_str_eq(c.run_dir, "/tmp/r");
    cr_assert_str_eq(c.genesis_file, "/etc/alys/conf/genesis.json");
    cr_assert_str_eq(c.log_level, "debug");

    cr_assert_str_eq(c.strategy, "sequential");
    cr_assert_eq(c.max_parallel_downloads, 7);
    cr_assert_str_eq(c.batch_size, "fixed");
    cr_assert_eq(c.fixed_batch_size, 300);
    cr_assert_eq(c.min_batch_size, 32);
    cr_assert_eq(c.max_batch_size, 2048);
    cr_assert_eq(c.checkpoint_interval, 250);
    cr_assert_eq(c.max_checkpoints, 20);
    cr_assert_str_eq(c.checkpoint_storage, "/srv/cp");
    cr_assert_eq(c.max_recovery_attempts, 9);
    cr_assert_eq(c.recovery_backoff_secs, 30);
    cr_assert_eq(c.auto_recovery, false);
    cr_assert_str_eq(c.peer_selection, "most_reliable");
    cr_assert_float_eq(c.latency_weight, 0.25, 1e-12);
    cr_assert_float_eq(c.reliability_weight, 1.0, 1e-12);
    cr_assert_float_eq(c.bandwidth_weight, 0.25, 1e-12);
    cr_assert_eq(c.min_sync_peers, 2);
    cr_assert_eq(c.max_sync_peers, 12);
    cr_assert_float_eq(c.peer_score_threshold, 0.75, 1e-12);
    cr_assert_eq(c.validation_workers, 0);
    cr_assert_eq(c.max_memory_gb, 16);
    cr_assert_eq(c.cache_size_mb, 1024);
    cr_assert_float_eq(c.production_threshold, 98.0, 1e-12);
    cr_assert_eq(c.production_max_blocks_behind, 5);
    cr_assert_eq(c.download_window, 4096);
    cr_assert_eq(c.request_timeout_ms, 7000);

    cr_assert_eq(c.max_reorg_depth, 128);
    cr_assert_eq(c.wal_sync, false);

    cr_assert_str_eq(c.listen, "tcp://0.0.0.0:30303");
    cr_assert_eq(c.bootstrap_peer_count, 3);
    cr_assert_str_eq(c.bootstrap_peers[0],
                     "alys://1111111111111111111111111111111111111111111111111111111111111111@10.0.0.1:30303");
    cr_assert_str_eq(c.bootstrap_peers[1],
                     "alys://1111111111111111111111111111111111111111111111111111111111111111@[::1]:30304");
    cr_assert_str_eq(c.bootstrap_peers[2],
                     "alys://Yne@$w-vo<fVvi]a<NY6T1ed:M$fCG*[IaLV{hID@peer.example:1");
    cr_assert_eq(c.serve_rate_limit, 50);

    cr_assert_str_eq(c.worker_listen, "tcp://*:7701");
    cr_assert_eq(c.curve_enabled, true);
    cr_assert_str_eq(c.curve_server_cert, "/etc/alys/conf/keys/server.secret");
    cr_assert_str_eq(c.curve_allowed_dir, "/etc/alys/workers");
    cr_assert_eq(c.task_timeout_ms, 1500);

    cr_assert_str_eq(c.ep_supervisor, "ipc:///tmp/e/sup.sock");
    cr_assert_str_eq(c.ep_events_in, "tcp://127.0.0.1:7001");
    cr_assert_str_eq(c.ep_events, "tcp://127.0.0.1:7002");
    cr_assert_str_eq(c.ep_storage, "tcp://127.0.0.1:7003");
    cr_assert_str_eq(c.ep_peer_manager, "tcp://127.0.0.1:7004");
    cr_assert_str_eq(c.ep_block_processor, "tcp://127.0.0.1:7005");
    cr_assert_str_eq(c.ep_validators, "tcp://127.0.0.1:7006");
    cr_assert_str_eq(c.ep_sync, "tcp://127.0.0.1:7007");

    cr_assert_eq(c.start_timeout_ms, 6000);
    cr_assert_eq(c.heartbeat_interval_ms, 250);
    cr_assert_eq(c.heartbeat_timeout_ms, 1000);
    cr_assert_eq(c.restart_backoff_min_ms, 0);
    cr_assert_eq(c.restart_backoff_max_ms, 800);
    cr_assert_eq(c.max_restarts, 0);
    cr_assert_eq(c.restart_window_secs, 10);
    cr_assert_eq(c.shutdown_timeout_ms, 1200);

    cr_assert_eq(c.metrics_enabled, false);
    cr_assert_eq(c.metrics_port, 19091);
    cr_assert_str_eq(c.metrics_bind, "0.0.0.0");

    cr_assert_str_eq(c.path, "/etc/alys/conf/node.toml");
}

Test(config, crlf_comments_and_blank_lines_are_accepted)
{
    alys_config_t c;
    parse_ok(&c,
             "\xEF\xBB\xBF# BOM, CRLF, tabs and comments\r\n"
             "\r\n"
             "  [sync]   # the table\r\n"
             "\tstrategy\t=\t\"sequential\"# no space before the comment\r\n"
             "max_parallel_downloads=+5", /* no final newline */
             "/x/t.toml");
    cr_assert_str_eq(c.strategy, "sequential");
    cr_assert_eq(c.max_parallel_downloads, 5);
}

Test(config, empty_array_and_empty_text)
{
    alys_config_t c;
    parse_ok(&c, "[network]\nbootstrap_peers = [ # none\n]\n", "/x/t.toml");
    cr_assert_eq(c.bootstrap_peer_count, 0);
    parse_ok(&c, "", "/x/t.toml");
    expect_defaults(&c, "/x/data", "/x/run");
}

/* ----------------------------------------------------------------- paths */

Test(config, relative_paths_follow_the_file_not_the_cwd)
{
    char dir[64], sub[128], file[192], want[256];
    make_tmpdir(dir, sizeof dir);
    join(sub, sizeof sub, dir, "conf");
    cr_assert_eq(mkdir(sub, 0700), 0);
    join(file, sizeof file, sub, "node.toml");
    write_file(file, "[node]\ndata_dir = \"../state/./db\"\nrun_dir = \"run\"\n");

    cr_assert_eq(chdir("/"), 0);
    alys_config_t c;
    char err[ALYS_ERR_MAX] = "";
    cr_assert_eq(alys_config_load(&c, file, err, sizeof err), 0, "%s", err);
    join(want, sizeof want, dir, "state/db");
    cr_assert_str_eq(c.data_dir, want);
    join(want, sizeof want, sub, "run");
    cr_assert_str_eq(c.run_dir, want);
    expect_endpoints(&c, want);

    /* The same file named relative to another cwd gives the same result. */
    cr_assert_eq(chdir(dir), 0);
    alys_config_t c2;
    cr_assert_eq(alys_config_load(&c2, "conf/../conf/node.toml", err, sizeof err), 0, "%s", err);
    cr_assert_str_eq(c2.run_dir, c.run_dir);
    cr_assert_str_eq(c2.data_dir, c.data_dir);
    cr_assert_str_eq(c2.path, file);
    cr_assert_eq(unlink(file), 0);
    cr_assert_eq(rmdir(sub), 0);
    cr_assert_eq(rmdir(dir), 0);
}

Test(config, default_dirs_are_next_to_the_file)
{
    alys_config_t c;
    parse_ok(&c, "# nothing set\n", "/srv/node/alys.toml");
    expect_defaults(&c, "/srv/node/data", "/srv/node/run");
    cr_assert_str_eq(c.path, "/srv/node/alys.toml");
}

Test(config, derive_endpoints_fills_only_empty_ones)
{
    alys_config_t c;
    alys_config_defaults(&c);
    memset(c.ep_storage, 0, sizeof c.ep_storage);
    memset(c.ep_sync, 0, sizeof c.ep_sync);
    (void) snprintf(c.run_dir, sizeof c.run_dir, "%s", "/tmp/other");
    (void) snprintf(c.ep_sync, sizeof c.ep_sync, "%s", "tcp://10.1.1.1:9");
    cr_assert_eq(alys_config_derive_endpoints(&c), 0);
    cr_assert_str_eq(c.ep_storage, "ipc:///tmp/other/storage.sock");
    cr_assert_str_eq(c.ep_sync, "tcp://10.1.1.1:9");
    cr_assert_str_eq(c.ep_events, "ipc://./run/events.sock");
}

Test(config, derive_endpoints_refuses_a_long_run_dir)
{
    alys_config_t c;
    alys_config_defaults(&c);
    memset(c.ep_block_processor, 0, sizeof c.ep_block_processor);
    memset(c.run_dir, 'r', 90);
    c.run_dir[0] = '/';
    c.run_dir[90] = '\0';
    cr_assert_eq(alys_config_derive_endpoints(&c), -1);
    cr_assert_str_eq(c.ep_block_processor, "");
}

Test(config, run_dir_too_long_for_ipc_is_an_error)
{
    /* "/aaa...a" (87 bytes) + "/block_processor.sock" = 108 bytes > 107. */
    char text[256], want[ALYS_ERR_MAX], dir[128];
    memset(dir, 'a', 87);
    dir[0] = '/';
    dir[87] = '\0';
    (void) snprintf(text, sizeof text, "[node]\nrun_dir = \"%s\"\n", dir);
    (void) snprintf(want, sizeof want,
                    "t.toml:2:1: run_dir '%s' is too long for ipc endpoints: "
                    "block_processor.sock would need a 108-byte path, over the 107-byte "
                    "unix socket limit (shorten run_dir or set [endpoints] block_processor)",
                    dir);
    expect_error(text, want);

    /* One byte shorter fits; so does the long one with that endpoint set. */
    alys_config_t c;
    dir[86] = '\0';
    (void) snprintf(text, sizeof text, "[node]\nrun_dir = \"%s\"\n", dir);
    parse_ok(&c, text, "t.toml");
    cr_assert_eq(strlen(c.ep_block_processor), strlen("ipc://") + 107);
    dir[86] = 'a';
    (void) snprintf(text, sizeof text,
                    "[node]\nrun_dir = \"%s\"\n[endpoints]\nblock_processor = \"tcp://h:1\"\n", dir);
    parse_ok(&c, text, "t.toml");
}

/* ---------------------------------------------------- each class of error */

Test(config, syntax_error)
{
    expect_error("[sync]\nstrategy \"parallel\"\n",
                 "t.toml:2:10: expected '=' after key 'strategy', found '\"'");
    expect_error("[sync]\nmax_parallel_downloads = 3 4\n",
                 "t.toml:2:28: expected end of line after the value of "
                 "'sync.max_parallel_downloads', found '4'");
    expect_error("[sync\n", "t.toml:1:6: expected ']' after the table name, found end of line");
    expect_error("[sync]\n= 3\n",
                 "t.toml:2:1: expected a key, a [table] header or a comment, found '='");
    expect_error("[sync]\nsync.strategy = \"x\"\n",
                 "t.toml:2:5: dotted keys are not supported; use a [table] header");
    expect_error("strategy = \"parallel\"\n", "t.toml:1:1: key 'strategy' is outside any [table]");
    expect_error("[[sync]]\n", "t.toml:1:1: arrays of tables ([[...]]) are not supported");
    expect_error("[sync]\nmax_parallel_downloads = 03\n",
                 "t.toml:2:26: invalid number '03' for 'sync.max_parallel_downloads'");
    expect_error("[sync]\nmax_parallel_downloads = 1__0\n",
                 "t.toml:2:26: invalid number '1__0' for 'sync.max_parallel_downloads'");
    expect_error("[sync]\nlatency_weight = .5\n",
                 "t.toml:2:18: invalid number '.5' for 'sync.latency_weight'");
    expect_error("[sync]\nstrategy = \"a\\qb\"\n",
                 "t.toml:2:14: unsupported escape '\\q' (use \\\" \\\\ \\n or \\t)");
    expect_error("[sync]\nstrategy = 'parallel'\n",
                 "t.toml:2:12: expected a string for key 'sync.strategy', found a literal string");
    expect_error("[sync]\nstrategy = \"\"\"x\"\"\"\n",
                 "t.toml:2:12: multi-line strings (\"\"\") are not supported");
    expect_error("[sync]\rstrategy = \"x\"\n", "t.toml:1:7: carriage return without line feed");
    expect_error("[network]\nbootstrap_peers = [\"alys://Yne@$w-vo<fVvi]a<NY6T1ed:M$fCG*[IaLV{hID@a:1\" \"tcp://b:2\"]\n",
                 "t.toml:2:74: expected ',' or ']' in the array, found '\"'");
}

Test(config, bootstrap_peers_carry_keys)
{
    expect_error("[network]\nbootstrap_peers = [\"tcp://10.0.0.1:30303\"]\n",
                 "t.toml:2:20: 'network.bootstrap_peers' entries must be alys://KEY@HOST:PORT (the "
                 "peer's `alysctl key show`; KEY 64 hex or 40 z85 characters) (got "
                 "'tcp://10.0.0.1:30303')");
    expect_error("[network]\nbootstrap_peers = [\"alys://abc@10.0.0.1:30303\"]\n",
                 "t.toml:2:20: 'network.bootstrap_peers' entries must be alys://KEY@HOST:PORT (the "
                 "peer's `alysctl key show`; KEY 64 hex or 40 z85 characters) (got "
                 "'alys://abc@10.0.0.1:30303')");
}

Test(config, unterminated_string)
{
    expect_error("[node]\nname = \"abc\n", "t.toml:2:8: unterminated string");
    expect_error("[node]\nname = \"abc\\\"", "t.toml:2:8: unterminated string");
    expect_error("[network]\nbootstrap_peers = [\n  \"alys://Yne@$w-vo<fVvi]a<NY6T1ed:M$fCG*[IaLV{hID@a:1\",\n",
                 "t.toml:2:19: unterminated array for 'network.bootstrap_peers'");
}

Test(config, unknown_table)
{
    expect_error("[node]\n[bar]\n", "t.toml:2:1: unknown table [bar]");
    expect_error("[sync.extra]\n", "t.toml:1:1: unknown table [sync.extra]");
}

Test(config, unknown_key)
{
    expect_error("[sync]\nstrategy = \"parallel\"\nfoo = 1\n", "t.toml:3:1: unknown key 'sync.foo'");
    /* A key in the wrong table gets a hint where it belongs. */
    expect_error("[node]\nstrategy = \"parallel\"\n",
                 "t.toml:2:1: unknown key 'node.strategy' (it belongs in [sync])");
    expect_error("[sync]\nmetrics_bind = \"0.0.0.0\"\n",
                 "t.toml:2:1: unknown key 'sync.metrics_bind' (it belongs in [metrics])");
    /* A near miss gets a "did you mean". */
    expect_error("[sync]\nmax_paralel_downloads = 4\n",
                 "t.toml:2:1: unknown key 'sync.max_paralel_downloads' (did you mean "
                 "'max_parallel_downloads'?)");
    expect_error("[syncc]\n", "t.toml:1:1: unknown table [syncc] (did you mean [sync]?)");
}

Test(config, wrong_type)
{
    expect_error("[sync]\nstrategy = 3\n",
                 "t.toml:2:12: expected a string for key 'sync.strategy', found an integer");
    expect_error("[sync]\nmax_parallel_downloads = \"3\"\n",
                 "t.toml:2:26: expected an integer for key 'sync.max_parallel_downloads', "
                 "found a string");
    expect_error("[sync]\nmax_parallel_downloads = 3.0\n",
                 "t.toml:2:26: expected an integer for key 'sync.max_parallel_downloads', "
                 "found a float");
    expect_error("[sync]\nauto_recovery = yes\n",
                 "t.toml:2:17: expected true or false for key 'sync.auto_recovery', "
                 "found an unquoted word");
    expect_error("[sync]\nlatency_weight = true\n",
                 "t.toml:2:18: expected a number for key 'sync.latency_weight', found a boolean");
    expect_error("[network]\nbootstrap_peers = \"tcp://a:1\"\n",
                 "t.toml:2:19: expected an array of strings for key 'network.bootstrap_peers', "
                 "found a string");
    expect_error("[network]\nbootstrap_peers = [\"alys://1111111111111111111111111111111111111111111111111111111111111111@a:1\", 5]\n",
                 "t.toml:2:99: expected a string in array 'network.bootstrap_peers', "
                 "found an integer");
    expect_error("[node]\nname =\n",
                 "t.toml:2:7: expected a string for key 'node.name', found end of line");
}

Test(config, out_of_range)
{
    expect_error("[sync]\nmax_parallel_downloads = 0\n",
                 "t.toml:2:26: value 0 out of range for 'sync.max_parallel_downloads' (1..32)");
    expect_error("[sync]\nvalidation_workers = 65\n",
                 "t.toml:2:22: value 65 out of range for 'sync.validation_workers' (0..64)");
    expect_error("[sync]\nmax_sync_peers = -1\n",
                 "t.toml:2:18: value -1 out of range for 'sync.max_sync_peers' (1..1000)");
    expect_error("[sync]\ncheckpoint_interval = 99_999_999_999_999_999_999\n",
                 "t.toml:2:23: value 99_999_999_999_999_999_999 out of range for "
                 "'sync.checkpoint_interval' (1..1000000)");
    expect_error("[sync]\npeer_score_threshold = 1.5\n",
                 "t.toml:2:24: value 1.5 out of range for 'sync.peer_score_threshold' (0..1)");
    expect_error("[sync]\nproduction_threshold = 100.1\n",
                 "t.toml:2:24: value 100.1 out of range for 'sync.production_threshold' "
                 "(0..100)");
    expect_error("[sync]\nlatency_weight = -0.1\n",
                 "t.toml:2:18: value -0.1 out of range for 'sync.latency_weight' (0..1000)");
    expect_error("[metrics]\nmetrics_port = 65536\n",
                 "t.toml:2:16: value 65536 out of range for 'metrics.metrics_port' (1..65535)");
    expect_error("[sync]\nlatency_weight = 1e999\n",
                 "t.toml:2:18: value 1e999 out of range for 'sync.latency_weight' (0..1000)");
}

Test(config, bad_enum)
{
    expect_error("[sync]\nstrategy = \"fast\"\n",
                 "t.toml:2:12: sync.strategy must be one of parallel, sequential (got 'fast')");
    expect_error("[node]\nlog_level = \"trace\"\n",
                 "t.toml:2:13: node.log_level must be one of debug, info, warn, error "
                 "(got 'trace')");
    expect_error("[sync]\npeer_selection = \"random\"\n",
                 "t.toml:2:18: sync.peer_selection must be one of weighted, round_robin, "
                 "lowest_latency, most_reliable, proximity (got 'random')");
}

Test(config, bad_endpoint)
{
    expect_error("[network]\nlisten = \"0.0.0.0:30303\"\n",
                 "t.toml:2:10: 'network.listen' must be an endpoint like tcp://HOST:PORT or "
                 "ipc://PATH (got '0.0.0.0:30303')");
    expect_error("[endpoints]\nsync = \"tcp://host:0\"\n",
                 "t.toml:2:8: 'endpoints.sync' must be an endpoint like tcp://HOST:PORT or "
                 "ipc://PATH (got 'tcp://host:0')");
    expect_error("[network]\nbootstrap_peers = [\"\"]\n",
                 "t.toml:2:20: empty string in 'network.bootstrap_peers'");
}

Test(config, duplicate_key)
{
    expect_error("[sync]\nstrategy = \"parallel\"\nstrategy = \"sequential\"\n",
                 "t.toml:3:1: duplicate key 'sync.strategy' (first set at line 2)");
    expect_error("[sync]\n[node]\n[sync]\n", "t.toml:3:1: duplicate table [sync] (first at line 1)");
    /* Accepted in [sync] (where the design seed put it) or [node]: one place only. */
    expect_error("[node]\nlog_level = \"info\"\n[sync]\nlog_level = \"debug\"\n",
                 "t.toml:4:1: duplicate key 'node.log_level' (first set at line 2)");
    expect_error("[sync]\nmetrics_port = 1\n[metrics]\nmetrics_port = 2\n",
                 "t.toml:4:1: duplicate key 'metrics.metrics_port' (first set at line 2)");
}

/* Issue 10: the design seed's own [sync] section, pasted as is, loads; its
 * keys are accepted where the seed put them. */
static const char seed_sync[] = "[sync]\n"
                                "# Sync strategy\n"
                                "strategy = \"parallel\"  # parallel, sequential\n"
                                "max_parallel_downloads = 3\n"
                                "batch_size = \"adaptive\"  # adaptive, fixed\n"
                                "fixed_batch_size = 256\n"
                                "\n"
                                "# Checkpointing\n"
                                "checkpoint_interval = 100  # blocks\n"
                                "max_checkpoints = 10\n"
                                "checkpoint_storage = \"/data/checkpoints\"\n"
                                "\n"
                                "# Recovery\n"
                                "max_recovery_attempts = 5\n"
                                "recovery_backoff_secs = 60\n"
                                "auto_recovery = true\n"
                                "\n"
                                "# Peer management\n"
                                "peer_selection = \"weighted\"  # weighted, round_robin, lowest_latency\n"
                                "min_sync_peers = 3\n"
                                "max_sync_peers = 10\n"
                                "peer_score_threshold = 0.5\n"
                                "\n"
                                "# Performance\n"
                                "validation_workers = 4\n"
                                "max_memory_gb = 8\n"
                                "cache_size_mb = 512\n"
                                "\n"
                                "# Monitoring\n"
                                "metrics_enabled = true\n"
                                "metrics_port = 9191\n"
                                "log_level = \"warn\"\n";

Test(config, the_seeds_sync_section_loads_as_is)
{
    alys_config_t c;
    alys_config_defaults(&c);
    parse_ok(&c, seed_sync, "seed.toml");
    cr_assert_eq(c.metrics_port, 9191, "metrics_port read from [sync]");
    cr_assert_str_eq(c.log_level, "warn", "log_level read from [sync]");
    cr_assert_eq(c.metrics_enabled, true);
    /* Keys that do nothing are said so, with why; loading still succeeds. */
    cr_assert(strstr(c.notes, "sync.checkpoint_storage has no effect: checkpoints are kept"),
              "%s", c.notes);
    cr_assert_null(strstr(c.notes, "min_sync_peers"), "min_sync_peers is honoured: %s", c.notes);
    cr_assert_eq(c.min_sync_peers, 3, "the seed's value is read");
    cr_assert(strstr(c.notes, "sync.max_sync_peers has no effect: not yet used"), "%s", c.notes);
    alys_config_t d;
    alys_config_defaults(&d);
    parse_ok(&d, "[sync]\nstrategy = \"parallel\"\n", "plain.toml");
    cr_assert_str_empty(d.notes, "no note for keys left out");
}

/* ------------------------------------------------------------- --set KEY=VALUE */

static int load_set(alys_config_t *c, const char *text, const char *const *sets, size_t n,
                    char *err, size_t errlen)
{
    char dir[64], path[128];
    make_tmpdir(dir, sizeof dir);
    join(path, sizeof path, dir, "n.toml");
    write_file(path, text);
    alys_config_defaults(c);
    int rc = alys_config_load_set(c, path, sets, n, err, errlen);
    cr_assert_eq(unlink(path), 0);
    cr_assert_eq(rmdir(dir), 0);
    return rc;
}

Test(config, set_overrides_the_file_with_the_same_validation)
{
    alys_config_t c;
    char err[ALYS_ERR_MAX] = "";
    const char *sets[] = {
        "sync.max_parallel_downloads=8", "node.log_level=debug", "metrics.metrics_bind=\"0.0.0.0\"",
        "network.bootstrap_peers=[\"alys://1111111111111111111111111111111111111111111111111111111111111111@10.0.0.1:30303\"]",
        "wal_sync=false"};
    cr_assert_eq(load_set(&c, "[sync]\nmax_parallel_downloads = 4\n", sets, 5, err, sizeof err),
                 0, "%s", err);
    cr_assert_eq(c.max_parallel_downloads, 8, "--set wins over the file");
    cr_assert_str_eq(c.log_level, "debug", "strings need no quotes");
    cr_assert_str_eq(c.metrics_bind, "0.0.0.0", "quoted strings too");
    cr_assert_eq(c.bootstrap_peer_count, 1);
    cr_assert_eq(c.wal_sync, false, "a short name that is unique");

    const char *bad[] = {"sync.max_parallel_downloads=99"};
    cr_assert_eq(load_set(&c, "", bad, 1, err, sizeof err), -1);
    cr_assert_str_eq(err, "--set sync.max_parallel_downloads=99: value 99 out of range for "
                          "'sync.max_parallel_downloads' (1..32)");
    const char *typo[] = {"sync.max_paralel_downloads=4"};
    cr_assert_eq(load_set(&c, "", typo, 1, err, sizeof err), -1);
    cr_assert_str_eq(err, "--set sync.max_paralel_downloads=4: unknown key "
                          "'sync.max_paralel_downloads' (did you mean 'max_parallel_downloads'?)");
    const char *noeq[] = {"sync.strategy"};
    cr_assert_eq(load_set(&c, "", noeq, 1, err, sizeof err), -1);
    cr_assert(strstr(err, "expected KEY=VALUE"), "%s", err);
    const char *order[] = {"sync.min_sync_peers=20"};
    cr_assert_eq(load_set(&c, "", order, 1, err, sizeof err), -1);
    cr_assert_str_eq(err, "--set sync.min_sync_peers=20: sync.min_sync_peers (20) must be <= "
                          "sync.max_sync_peers (10)");
}

Test(config, the_cache_must_fit_the_memory_budget)
{
    expect_error("[sync]\nmax_memory_gb = 1\ncache_size_mb = 600\n",
                 "t.toml:3:1: sync.cache_size_mb (600 MiB) must be at most half of "
                 "sync.max_memory_gb (1 GiB): the rest of the budget is for the download "
                 "window, the validators and the database's write buffers");
}

Test(config, log_format_is_text_or_json)
{
    alys_config_t c;
    alys_config_defaults(&c);
    cr_assert_str_eq(c.log_format, "text");
    parse_ok(&c, "[node]\nlog_format = \"json\"\n", "t.toml");
    cr_assert_str_eq(c.log_format, "json");
    expect_error("[node]\nlog_format = \"xml\"\n",
                 "t.toml:2:14: node.log_format must be one of text, json (got 'xml')");
}

Test(config, string_too_long)
{
    char text[256], want[256], name[80];
    memset(name, 'n', 64);
    name[64] = '\0';
    (void) snprintf(text, sizeof text, "[node]\nname = \"%s\"\n", name);
    expect_error(text, "t.toml:2:8: string too long for 'node.name' (64 bytes, max 63)");

    /* 63 bytes fit exactly; escapes count once unescaped. */
    alys_config_t c;
    name[63] = '\0';
    (void) snprintf(text, sizeof text, "[node]\nname = \"%s\"\n", name);
    parse_ok(&c, text, "t.toml");
    cr_assert_str_eq(c.node_name, name);
    name[62] = '\0';
    (void) snprintf(text, sizeof text, "[node]\nname = \"%s\\n\"\n", name);
    parse_ok(&c, text, "t.toml");
    cr_assert_eq(strlen(c.node_name), 63);

    /* Too many array entries is the same class: no silent truncation. */
    char big[120 * 34] = "[network]\nbootstrap_peers = [";
    size_t col = strlen("bootstrap_peers = [") + 1; /* where entry 33 starts */
    for (int i = 1; i <= 33; i++) {
        size_t used = strlen(big);
        int w = snprintf(big + used, sizeof big - used,
                         "\"alys://1111111111111111111111111111111111111111111111111111111111111111@h:%d\",",
                         i);
        cr_assert(w > 0 && (size_t) w < sizeof big - used);
        if (i < 33)
            col += (size_t) w;
    }
    strcat(big, "]\n");
    (void) snprintf(want, sizeof want,
                    "t.toml:2:%zu: too many entries in 'network.bootstrap_peers' (max 32)", col);
    expect_error(big, want);
}

Test(config, cross_key_violation)
{
    expect_error("[sync]\nmin_batch_size = 512\n",
                 "t.toml:2:1: sync.min_batch_size (512) must be <= sync.fixed_batch_size (256)");
    expect_error("[sync]\nfixed_batch_size = 2000\n",
                 "t.toml:2:1: sync.fixed_batch_size (2000) must be <= sync.max_batch_size (1024)");
    expect_error("[sync]\nmin_sync_peers = 3\nmax_sync_peers = 2\n",
                 "t.toml:3:1: sync.min_sync_peers (3) must be <= sync.max_sync_peers (2)");
    expect_error("[supervisor]\nrestart_backoff_max_ms = 50\n",
                 "t.toml:2:1: supervisor.restart_backoff_min_ms (100) must be <= "
                 "supervisor.restart_backoff_max_ms (50)");
    expect_error("[supervisor]\nheartbeat_timeout_ms = 3000\nheartbeat_interval_ms = 3000\n",
                 "t.toml:3:1: supervisor.heartbeat_interval_ms (3000) must be < "
                 "supervisor.heartbeat_timeout_ms (3000)");
    expect_error("[validation]\ncurve_enabled = true\n",
                 "t.toml:2:1: validation.curve_enabled = true needs curve_server_cert and "
                 "curve_allowed_dir");
}

Test(config, over_size_file)
{
    char dir[64], file[128], err[ALYS_ERR_MAX] = "", want[256];
    make_tmpdir(dir, sizeof dir);
    join(file, sizeof file, dir, "big.toml");
    FILE *f = fopen(file, "w");
    cr_assert_not_null(f);
    for (int i = 0; i < 1024 * 1024 / 16; i++)
        cr_assert_eq(fputs("# padding line \n", f) >= 0, true);
    cr_assert_eq(fputc('\n', f), '\n');
    cr_assert_eq(fclose(f), 0);

    alys_config_t c;
    alys_config_defaults(&c);
    cr_assert_eq(alys_config_load(&c, file, err, sizeof err), -1);
    (void) snprintf(want, sizeof want, "%s: file is 1048577 bytes, over the 1 MiB limit", file);
    cr_assert_str_eq(err, want);

    /* Exactly 1 MiB is accepted. */
    cr_assert_eq(truncate(file, 1024 * 1024), 0);
    cr_assert_eq(alys_config_load(&c, file, err, sizeof err), 0, "%s", err);
    cr_assert_eq(unlink(file), 0);
    cr_assert_eq(rmdir(dir), 0);
}

Test(config, missing_file)
{
    alys_config_t c;
    char err[ALYS_ERR_MAX] = "";
    cr_assert_eq(alys_config_load(&c, "/nonexistent-alys/x.toml", err, sizeof err), -1);
    cr_assert_str_eq(err, "/nonexistent-alys/x.toml: cannot open: No such file or directory");
    cr_assert_eq(alys_config_load(&c, "/tmp", err, sizeof err), -1);
    cr_assert_str_eq(err, "/tmp: not a regular file");
}

Test(config, control_bytes_are_rejected)
{
    char dir[64], file[128], err[ALYS_ERR_MAX] = "", want[256];
    make_tmpdir(dir, sizeof dir);
    join(file, sizeof file, dir, "nul.toml");
    FILE *f = fopen(file, "w");
    cr_assert_not_null(f);
    cr_assert_eq(fwrite("[node]\nname = \"a\0b\"\n", 1, 20, f), 20);
    cr_assert_eq(fclose(f), 0);
    alys_config_t c;
    cr_assert_eq(alys_config_load(&c, file, err, sizeof err), -1);
    (void) snprintf(want, sizeof want, "%s:2:10: control character 0x00 in string", file);
    cr_assert_str_eq(err, want);
    cr_assert_eq(unlink(file), 0);
    cr_assert_eq(rmdir(dir), 0);
    expect_error("[node] # bell \a\n", "t.toml:1:15: control character 0x07 in comment");
}

Test(config, small_error_buffer_is_safe)
{
    alys_config_t c;
    char err[8];
    cr_assert_eq(alys_config_parse(&c, "[bar]\n", "t.toml", err, sizeof err), -1);
    cr_assert_str_eq(err, "t.toml:");
    cr_assert_eq(alys_config_parse(&c, "[bar]\n", "t.toml", NULL, 0), -1);
}
