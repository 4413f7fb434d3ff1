/*  fuzz_config.c: the config loader (common/config.c) on arbitrary text:
 *  alys_config_load on the exact bytes (written to a memfd and opened by its
 *  /proc/self/fd path, so embedded NULs and the file reading are covered),
 *  and alys_config_parse on the same text when it has no NUL.
 *
 *  Invariants: a refused config leaves cfg untouched and says why as
 *  "NAME: ..." or "NAME:LINE:COL: ..." with LINE inside the text and COL >= 1;
 *  an accepted one has every string terminated inside its field, absolute
 *  node paths, every endpoint derived, the documented order rules
 *  (min <= fixed <= max batch, min <= max peers, backoff min <= max,
 *  heartbeat interval < timeout) and CURVE keys when CURVE is on; no memory
 *  error or leak.
 */
#include <sys/mman.h> /* memfd_create: _GNU_SOURCE comes from meson.build */
#include <unistd.h>

#include "config.h"
#include "fuzz_util.h"

static int s_fd = -1;
static char s_path[64];

int LLVMFuzzerInitialize(int *argc, char ***argv);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void) argc;
    (void) argv;
    s_fd = memfd_create("fuzz-config.toml", MFD_CLOEXEC);
    FUZZ_CHECK(s_fd >= 0, "memfd_create failed");
    snprintf(s_path, sizeof s_path, "/proc/self/fd/%d", s_fd);
    return 0;
}

static void check_refusal(const alys_config_t *cfg, const alys_config_t *sentinel, const char *err,
                          size_t errlen, const char *name, const uint8_t *data, size_t size)
{
    FUZZ_CHECK(memcmp(cfg, sentinel, sizeof *cfg) == 0, "a refused config changed cfg");
    FUZZ_CHECK(fuzz_has_text(err, errlen), "refused without a message");
    size_t nl = strlen(name);
    FUZZ_CHECK(strncmp(err, name, nl) == 0 && err[nl] == ':',
               "error '%s' does not start with '%s:'", err, name);
    int line, col;
    if (sscanf(err + nl, ":%d:%d: ", &line, &col) == 2) {
        size_t lines = 1;
        for (size_t i = 0; i < size; i++)
            lines += data[i] == '\n';
        FUZZ_CHECK(line >= 1 && (size_t) line <= lines && col >= 1,
                   "error position %d:%d in a text of %zu lines: %s", line, col, lines, err);
    }
}

#define TERMINATED(field) \
    FUZZ_CHECK(memchr(c->field, '\0', sizeof c->field), #field " unterminated")

static void check_accepted(const alys_config_t *c)
{
    TERMINATED(node_name);
    TERMINATED(data_dir);
    TERMINATED(run_dir);
    TERMINATED(genesis_file);
    TERMINATED(log_level);
    TERMINATED(strategy);
    TERMINATED(batch_size);
    TERMINATED(checkpoint_storage);
    TERMINATED(peer_selection);
    TERMINATED(listen);
    TERMINATED(worker_listen);
    TERMINATED(curve_server_cert);
    TERMINATED(curve_allowed_dir);
    TERMINATED(metrics_bind);
    TERMINATED(path);
    FUZZ_CHECK(c->bootstrap_peer_count <= ALYS_MAX_BOOTSTRAP, "%u bootstrap peers",
               c->bootstrap_peer_count);
    for (uint32_t i = 0; i < c->bootstrap_peer_count; i++)
        TERMINATED(bootstrap_peers[i]);
    const char *eps[] = {c->ep_supervisor, c->ep_events_in,    c->ep_events,
                         c->ep_storage,    c->ep_peer_manager, c->ep_block_processor,
                         c->ep_validators, c->ep_sync};
    for (size_t i = 0; i < sizeof eps / sizeof eps[0]; i++)
        FUZZ_CHECK(eps[i][0] != '\0' && memchr(eps[i], '\0', ALYS_ENDPOINT_MAX), "endpoint %zu", i);
    FUZZ_CHECK(c->data_dir[0] == '/' && c->run_dir[0] == '/', "relative node paths");
    FUZZ_CHECK(c->min_batch_size <= c->fixed_batch_size && c->fixed_batch_size <= c->max_batch_size,
               "batch sizes %u/%u/%u", c->min_batch_size, c->fixed_batch_size, c->max_batch_size);
    FUZZ_CHECK(c->min_sync_peers <= c->max_sync_peers, "sync peers");
    FUZZ_CHECK(c->restart_backoff_min_ms <= c->restart_backoff_max_ms, "backoff");
    FUZZ_CHECK(c->heartbeat_interval_ms < c->heartbeat_timeout_ms, "heartbeat");
    FUZZ_CHECK(!c->curve_enabled || (c->curve_server_cert[0] && c->curve_allowed_dir[0]),
               "CURVE without keys");
}

static void run_one(bool from_file, const char *text, const uint8_t *data, size_t size)
{
    alys_config_t cfg, sentinel;
    memset(&sentinel, 0xA5, sizeof sentinel);
    cfg = sentinel;
    char err[ALYS_ERR_MAX] = "";
    const char *name = from_file ? s_path : "fuzz/alys-sync.toml";
    int rc = from_file ? alys_config_load(&cfg, s_path, err, sizeof err)
                       : alys_config_parse(&cfg, text, name, err, sizeof err);
    if (rc != 0) {
        FUZZ_CHECK(rc == -1, "rc %d", rc);
        check_refusal(&cfg, &sentinel, err, sizeof err, name, data, size);
        return;
    }
    check_accepted(&cfg);
    if (from_file)
        FUZZ_CHECK(strcmp(cfg.path, s_path) == 0, "path '%s'", cfg.path);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    FUZZ_CHECK(ftruncate(s_fd, 0) == 0, "ftruncate");
    FUZZ_CHECK(size == 0 || pwrite(s_fd, data, size, 0) == (ssize_t) size, "pwrite");
    run_one(true, NULL, data, size);

    if (memchr(data, '\0', size) == NULL) {
        char *text = malloc(size + 1);
        FUZZ_CHECK(text != NULL, "out of memory");
        memcpy(text, data, size);
        text[size] = '\0';
        run_one(false, text, data, size);
        free(text);
    }
    return 0;
}
