/*  harness.h: helpers for the integration tests, which run the real binaries.
 *
 *  A test node lives in its own short temp directory (/tmp/alys-it-XXXXXX:
 *  ipc socket paths are limited to 107 bytes) holding a copy of
 *  deploy/alys-sync.toml with data_dir, run_dir, metrics_port and whatever the
 *  test overrides, a genesis made by alys-chaingen, and the supervisor's log.
 *
 *  Binaries are found under $ALYS_BUILD_DIR (meson passes the build root), the
 *  config template under $ALYS_SOURCE_DIR. The test process makes itself a
 *  child subreaper, so actors orphaned by a killed supervisor are reparented
 *  to it and it_pid_alive can tell "dead" from "zombie nobody reaped".
 *
 *  Time: every wait is "eventually within T": a fact polled until it holds or
 *  T has passed, never a sleep that hopes something happened, and no
 *  assertion that something was fast. T comes from the node's own config
 *  (it_budget_ms reads node.toml) times ALYS_TIME_FACTOR (default 3, see
 *  it_time_factor): a loaded machine may need several times what the config
 *  allows a healthy node, a correct node never more.
 *
 *  Ownership: it_node_t is a plain struct the test owns; it_node_cleanup
 *  kills what is left and removes the directory. it_status returns a json_t
 *  the caller json_decref's.
 */
#ifndef ALYS_IT_HARNESS_H
#define ALYS_IT_HARNESS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

typedef struct {
    char dir[64];     /* /tmp/alys-it-XXXXXX */
    char config[128]; /* dir/node.toml */
    char log[128];    /* dir/supervisor.log: the supervisor's stdout+stderr */
    char run_dir[128];
    int metrics_port;
    pid_t supervisor;
} it_node_t;

/* Path of a built binary: it_bin("actors/supervisor/alys-supervisor"). */
const char *it_bin(const char *relative);

/* Make the directory, a genesis and node.toml from the template with the
 * node's own dirs and a free metrics port, then each override applied:
 * "key = value" replaces that key's line (the key must exist in the
 * template). overrides is NULL-terminated, may be NULL. 0 or -1. */
int it_node_init(it_node_t *n, const char *const *overrides);
/* The actor binaries the supervisor needs that are not built, as
 * "alys-sync alys-peer-manager" ("" if none, or if ALYS_BIN_DIR names
 * where the supervisor is to find them). */
const char *it_missing_actors(it_node_t *n);

/* ---- time budgets: T of "eventually within T", from the node's config */

/* ALYS_TIME_FACTOR from the environment (a positive integer), default 3. */
int it_time_factor(void);
/* An integer key of the node's node.toml ("key = N" on its own line,
 * `_` separators allowed); -1 if absent. */
long long it_cfg_int(const it_node_t *n, const char *key);

typedef enum {
    /* every actor started one after the other, each within
     * start_timeout_ms: (4 + validation_workers) of them */
    IT_READY,
    /* a dead or hung actor noticed (heartbeat_timeout_ms), restarted after
     * restart_backoff_max_ms, ready within start_timeout_ms */
    IT_RESTART,
    /* one request to a peer or an actor: request_timeout_ms */
    IT_REQUEST,
    /* every actor stopped in turn, each within shutdown_timeout_ms */
    IT_SHUTDOWN,
    /* `count` blocks (synced or imported): each window of download_window
     * blocks within two request timeouts, plus IT_READY */
    IT_BLOCKS,
    /* an actor failing at start max_restarts + 1 times, each after at most
     * restart_backoff_max_ms and start_timeout_ms */
    IT_GIVE_UP,
} it_budget_t;
/* T in milliseconds for that kind of step on node n (count: blocks, for
 * IT_BLOCKS), times it_time_factor(). */
int it_budget_ms(const it_node_t *n, it_budget_t kind, long long count);
/* Start alys-supervisor --config n->config, output to n->log. */
int it_node_start(it_node_t *n);
void it_node_cleanup(it_node_t *n);

/* fork+exec argv with stdout and stderr to out_path (NULL = /dev/null). */
pid_t it_spawn(const char *const argv[], const char *out_path);
/* Run argv to completion (at most timeout_ms), capturing stdout+stderr into
 * out (NUL-terminated). Returns the exit code, or -1 if it timed out or died. */
int it_run(const char *const argv[], char *out, size_t outlen, int timeout_ms);
/* Wait for our child pid to exit; returns its wait status or -1 on timeout. */
int it_wait_exit(pid_t pid, int timeout_ms);
/* Alive = exists and is not a zombie (zombie children of ours are reaped). */
bool it_pid_alive(pid_t pid);

/* `alysctl --config ... status --json`, parsed; NULL if it failed. */
json_t *it_status(const it_node_t *n);
/* The actor object named name in a status, or NULL. */
json_t *it_actor(json_t *status, const char *name);
/* Poll status until every actor is "ready" (external ones aside); returns the
 * status or NULL on timeout. */
json_t *it_wait_all_ready(const it_node_t *n, int timeout_ms);
/* Poll until actor name is ready with a pid other than old_pid and at least
 * min_restarts restarts; the status, or NULL on timeout. */
json_t *it_wait_restarted(const it_node_t *n, const char *name, pid_t old_pid, int min_restarts,
                          int timeout_ms);

/* GET http://127.0.0.1:port/path; the body (malloc'ed, caller frees) of a
 * 200 answer, or NULL. */
char *it_http_get(int port, const char *path);
/* Whole file as a malloc'ed string (caller frees), NULL if unreadable. */
char *it_read_file(const char *path);
/* Wait until file contains needle; true if it did within timeout_ms. */
bool it_wait_file_contains(const char *path, const char *needle, int timeout_ms);
/* Value of "key VALUE" on a line of text (tool output), or "" (copied into out). */
const char *it_kv(const char *text, const char *key, char *out, size_t outlen);
int64_t it_now_ms(void);
void it_sleep_ms(int ms);

/* Ports of this test: a loopback TCP port nobody listens on, the next of the
 * test's own block (ALYS_IT_PORT_BASE, one block per integration test, so
 * tests running side by side never pick the same port); -1 if the whole
 * block is taken. */
#define IT_PORT_SPAN 1000
int it_free_port(void);

/* Shared caches (generated chains under /tmp, used by several tests, which
 * may run at the same time): hold dir's lock (the file dir.lock) while
 * reading or making dir. Returns the lock's fd for it_cache_unlock, or -1. */
int it_cache_lock(const char *dir);
void it_cache_unlock(int fd);

#endif
