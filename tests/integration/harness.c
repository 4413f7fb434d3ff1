/*  harness.c: see harness.h. */
#include "harness.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int64_t it_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void it_sleep_ms(int ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long) (ms % 1000) * 1000000};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

const char *it_bin(const char *relative)
{
    static char paths[8][512];
    static int next;
    const char *root = getenv("ALYS_BUILD_DIR");
    char *p = paths[next++ % 8];
    snprintf(p, sizeof paths[0], "%s/%s", root ? root : ".", relative);
    return p;
}

char *it_read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    size_t n;
    while (buf && (n = fread(buf + len, 1, cap - len - 1, f)) > 0) {
        len += n;
        if (cap - len - 1 == 0) {
            char *bigger = realloc(buf, cap * 2);
            if (!bigger) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = bigger;
            cap *= 2;
        }
    }
    fclose(f);
    if (buf)
        buf[len] = '\0';
    return buf;
}

bool it_wait_file_contains(const char *path, const char *needle, int timeout_ms)
{
    int64_t end = it_now_ms() + timeout_ms;
    do {
        char *text = it_read_file(path);
        bool found = text && strstr(text, needle);
        free(text);
        if (found)
            return true;
        it_sleep_ms(20);
    } while (it_now_ms() < end);
    return false;
}

/* ---- processes */

static void become_subreaper(void)
{
    static bool done;
    if (!done) {
        prctl(PR_SET_CHILD_SUBREAPER, 1);
        done = true;
    }
}

pid_t it_spawn(const char *const argv[], const char *out_path)
{
    become_subreaper();
    int fd = open(out_path ? out_path : "/dev/null", O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0)
        return -1;
    pid_t pid = fork();
    if (pid == 0) {
        dup2(fd, STDOUT_FILENO);
        dup2(fd, STDERR_FILENO);
        execv(argv[0], (char *const *) argv);
        _exit(127);
    }
    close(fd);
    return pid;
}

int it_wait_exit(pid_t pid, int timeout_ms)
{
    int64_t end = it_now_ms() + timeout_ms;
    for (;;) {
        int status;
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid)
            return status;
        if (r < 0 || it_now_ms() >= end)
            return -1;
        it_sleep_ms(5);
    }
}

static bool is_zombie(pid_t pid)
{
    char path[64], buf[256];
    snprintf(path, sizeof path, "/proc/%d/stat", (int) pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return false;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *paren = strrchr(buf, ')');
    return paren && paren[1] == ' ' && paren[2] == 'Z';
}

bool it_pid_alive(pid_t pid)
{
    if (pid <= 1)
        return false;
    waitpid(pid, NULL, WNOHANG); /* reap it if it is ours (subreaper) */
    if (kill(pid, 0) != 0 && errno == ESRCH)
        return false;
    return !is_zombie(pid);
}

int it_run(const char *const argv[], char *out, size_t outlen, int timeout_ms)
{
    int pipefd[2];
    if (pipe2(pipefd, O_CLOEXEC) != 0)
        return -1;
    pid_t pid = fork();
    if (pid == 0) {
        dup2(pipefd[1], STDOUT_FILENO);
        dup2(pipefd[1], STDERR_FILENO);
        execv(argv[0], (char *const *) argv);
        _exit(127);
    }
    close(pipefd[1]);
    size_t len = 0;
    int64_t end = it_now_ms() + timeout_ms;
    for (;;) {
        struct pollfd p = {.fd = pipefd[0], .events = POLLIN};
        int left = (int) (end - it_now_ms());
        if (left <= 0 || poll(&p, 1, left) <= 0)
            break;
        char tmp[4096];
        ssize_t n = read(pipefd[0], tmp, sizeof tmp);
        if (n <= 0)
            break;
        size_t take = (size_t) n < outlen - 1 - len ? (size_t) n : outlen - 1 - len;
        memcpy(out + len, tmp, take);
        len += take;
    }
    out[len] = '\0';
    close(pipefd[0]);
    int status = it_wait_exit(pid, (int) (end - it_now_ms() > 0 ? end - it_now_ms() : 0) + 100);
    if (status < 0) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        return -1;
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* ---- node set-up */

/* This process's block of IT_PORT_SPAN ports: ALYS_IT_PORT_BASE, which
 * meson gives every integration test a block of its own (two tests running
 * side by side never pick the same port), or a block drawn from the pid when
 * a test runs by hand. Blocks sit below the kernel's ephemeral range (32768+
 * here), where outgoing connections could take a port between our check and
 * the node's bind. */
static int port_base(void)
{
    static int base;
    if (!base) {
        const char *v = getenv("ALYS_IT_PORT_BASE");
        long b = v ? strtol(v, NULL, 10) : 0;
        if (b < 1024 || b > 65535 - IT_PORT_SPAN)
            b = 12000 + (long) ((unsigned) getpid() % 20) * IT_PORT_SPAN;
        base = (int) b;
    }
    return base;
}

/* Free = bindable on loopback without SO_REUSEADDR: not listened on, and
 * no connection of an earlier node lingers on it. */
static bool port_free(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t) port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    bool ok = fd >= 0 && bind(fd, (struct sockaddr *) &a, sizeof a) == 0;
    if (fd >= 0)
        close(fd);
    return ok;
}

int it_free_port(void)
{
    static int next; /* in turn: two ports asked before either is bound differ */
    for (int tries = 0; tries < IT_PORT_SPAN; tries++) {
        int port = port_base() + next;
        next = (next + 1) % IT_PORT_SPAN;
        if (port_free(port))
            return port;
    }
    return -1;
}

int it_cache_lock(const char *dir)
{
    char path[PATH_MAX];
    if (snprintf(path, sizeof path, "%s.lock", dir) >= (int) sizeof path)
        return -1;
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
        return -1;
    while (flock(fd, LOCK_EX) != 0)
        if (errno != EINTR) {
            close(fd);
            return -1;
        }
    return fd;
}

void it_cache_unlock(int fd)
{
    if (fd >= 0)
        close(fd);
}

/* Replace the line of `key` in text by `key = value` ("key = value" given). */
static int apply_override(char **text, const char *override)
{
    char key[128];
    size_t klen = strcspn(override, " =");
    if (klen == 0 || klen >= sizeof key)
        return -1;
    memcpy(key, override, klen);
    key[klen] = '\0';
    for (char *line = *text; line && *line; line = strchr(line, '\n'), line = line ? line + 1 : NULL) {
        if (strncmp(line, key, klen) != 0 || (line[klen] != ' ' && line[klen] != '='))
            continue;
        char *eol = strchr(line, '\n');
        size_t before = (size_t) (line - *text);
        const char *after = eol ? eol : "";
        size_t total = before + strlen(override) + strlen(after) + 1;
        char *out = malloc(total);
        if (!out)
            return -1;
        snprintf(out, total, "%.*s%s%s", (int) before, *text, override, after);
        free(*text);
        *text = out;
        return 0;
    }
    fprintf(stderr, "harness: key '%s' not in the config template\n", key);
    return -1;
}

static int make_genesis(const it_node_t *n, char *path, size_t len)
{
    char out[96];
    snprintf(out, sizeof out, "%s/chain", n->dir);
    const char *argv[] = {it_bin("actors/chaingen/alys-chaingen"),
                          "--blocks",
                          "1",
                          "--txs-per-block",
                          "1",
                          "--accounts",
                          "4",
                          "--authorities",
                          "1",
                          "--seed",
                          "1",
                          "--out",
                          out,
                          NULL};
    char buf[1024];
    if (it_run(argv, buf, sizeof buf, 20000) != 0) {
        fprintf(stderr, "harness: alys-chaingen failed: %s\n", buf);
        return -1;
    }
    snprintf(path, len, "%s/genesis", out);
    return 0;
}

static int write_config(it_node_t *n, const char *const *overrides, const char *genesis)
{
    char tmpl[512];
    const char *src = getenv("ALYS_SOURCE_DIR");
    snprintf(tmpl, sizeof tmpl, "%s/deploy/alys-sync.toml", src ? src : ".");
    char *text = it_read_file(tmpl);
    if (!text) {
        fprintf(stderr, "harness: cannot read %s\n", tmpl);
        return -1;
    }
    char base[6][300];
    snprintf(base[0], sizeof base[0], "data_dir = \"%s/data\"", n->dir);
    snprintf(base[1], sizeof base[1], "run_dir = \"%s\"", n->run_dir);
    snprintf(base[2], sizeof base[2], "metrics_port = %d", n->metrics_port);
    snprintf(base[3], sizeof base[3], "genesis_file = \"%s\"", genesis);
    snprintf(base[4], sizeof base[4], "validation_workers = 2");
    snprintf(base[5], sizeof base[5], "log_level = \"info\"");
    int rc = 0;
    for (int i = 0; i < 6 && rc == 0; i++)
        rc = apply_override(&text, base[i]);
    for (size_t i = 0; overrides && overrides[i] && rc == 0; i++)
        rc = apply_override(&text, overrides[i]);
    FILE *f = rc == 0 ? fopen(n->config, "w") : NULL;
    if (!f || fputs(text, f) < 0)
        rc = -1;
    if (f && fclose(f) != 0)
        rc = -1;
    free(text);
    return rc;
}

int it_node_init(it_node_t *n, const char *const *overrides)
{
    memset(n, 0, sizeof *n);
    become_subreaper();
    snprintf(n->dir, sizeof n->dir, "/tmp/alys-it-XXXXXX");
    if (!mkdtemp(n->dir))
        return -1;
    snprintf(n->config, sizeof n->config, "%s/node.toml", n->dir);
    snprintf(n->log, sizeof n->log, "%s/supervisor.log", n->dir);
    snprintf(n->run_dir, sizeof n->run_dir, "%s/run", n->dir);
    n->metrics_port = it_free_port();
    char genesis[256];
    if (n->metrics_port <= 0 || make_genesis(n, genesis, sizeof genesis) != 0)
        return -1;
    return write_config(n, overrides, genesis);
}

static const char *s_actor_bins[][2] = {
    {"storage", "alys-storage"},
    {"peer_manager", "alys-peer-manager"},
    {"block_processor", "alys-block-processor"},
    {"sync", "alys-sync"},
    {"validator", "alys-validator"},
};

const char *it_missing_actors(it_node_t *n)
{
    (void) n;
    static char missing[256];
    missing[0] = '\0';
    if (getenv("ALYS_BIN_DIR"))
        return missing; /* the caller chose the binaries */
    for (size_t i = 0; i < sizeof s_actor_bins / sizeof s_actor_bins[0]; i++) {
        char rel[128];
        snprintf(rel, sizeof rel, "actors/%s/%s", s_actor_bins[i][0], s_actor_bins[i][1]);
        if (access(it_bin(rel), X_OK) != 0) {
            size_t used = strlen(missing);
            snprintf(missing + used, sizeof missing - used, "%s%s", used ? " " : "",
                     s_actor_bins[i][1]);
        }
    }
    return missing;
}

int it_node_start(it_node_t *n)
{
    const char *argv[] = {it_bin("actors/supervisor/alys-supervisor"), "--config", n->config, NULL};
    n->supervisor = it_spawn(argv, n->log);
    return n->supervisor > 0 ? 0 : -1;
}

/* SIGKILL every process whose command line names this node's config: a
 * failed test must not leave actors running into the next one. Their pids go
 * to pids[] (at most max); returns how many. */
static size_t kill_node_processes(const it_node_t *n, pid_t *pids, size_t max)
{
    size_t count = 0;
    DIR *proc = opendir("/proc");
    if (!proc)
        return 0;
    for (struct dirent *d; (d = readdir(proc));) {
        pid_t pid = (pid_t) atoi(d->d_name);
        if (pid <= 1 || pid == getpid())
            continue;
        char path[64], cmd[2048];
        snprintf(path, sizeof path, "/proc/%d/cmdline", (int) pid);
        FILE *f = fopen(path, "rb");
        if (!f)
            continue;
        size_t len = fread(cmd, 1, sizeof cmd - 1, f);
        fclose(f);
        for (size_t i = 0; i < len; i++)
            if (cmd[i] == '\0')
                cmd[i] = ' ';
        cmd[len] = '\0';
        if (strstr(cmd, n->config) && kill(pid, SIGKILL) == 0 && count < max)
            pids[count++] = pid;
    }
    closedir(proc);
    return count;
}

/* Gone: reaped by us (we are their subreaper once the supervisor is dead),
 * or no longer in the process table at all. */
static bool process_gone(pid_t pid)
{
    pid_t r = waitpid(pid, NULL, WNOHANG);
    if (r == pid)
        return true;
    return r < 0 && kill(pid, 0) < 0 && errno == ESRCH;
}

void it_node_cleanup(it_node_t *n)
{
    if (n->supervisor > 0 && it_wait_exit(n->supervisor, 0) < 0) {
        /* Actors follow through PR_SET_PDEATHSIG. */
        kill(n->supervisor, SIGKILL);
        it_wait_exit(n->supervisor, 5000);
    }
    n->supervisor = 0;
    /* Wait for exactly this node's processes: another node of the same test
     * may still be running, so "until no child is left" would only wait out
     * the whole deadline. */
    pid_t pids[256];
    size_t npids = *n->config ? kill_node_processes(n, pids, sizeof pids / sizeof pids[0]) : 0;
    int64_t end = it_now_ms() + 2000;
    for (size_t k = 0; k < npids && it_now_ms() < end;)
        if (process_gone(pids[k]))
            k++;
        else
            it_sleep_ms(5);
    /* Reap whatever else of ours has already exited (e.g. alysctl runs). */
    while (waitpid(-1, NULL, WNOHANG) > 0)
        ;
    if (*n->dir && getenv("ALYS_IT_KEEP") == NULL) {
        char cmd[128];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", n->dir);
        if (system(cmd) != 0)
            fprintf(stderr, "harness: could not remove %s\n", n->dir);
    }
}

/* ---- time budgets */

int it_time_factor(void)
{
    const char *v = getenv("ALYS_TIME_FACTOR");
    int f = v ? atoi(v) : 0;
    return f > 0 ? f : 3;
}

long long it_cfg_int(const it_node_t *n, const char *key)
{
    char *text = it_read_file(n->config);
    size_t klen = strlen(key);
    long long v = -1;
    for (const char *line = text; line && *line;
         line = strchr(line, '\n'), line = line ? line + 1 : NULL) {
        if (strncmp(line, key, klen) != 0 || (line[klen] != ' ' && line[klen] != '='))
            continue;
        const char *eq = strchr(line, '=');
        if (!eq)
            break;
        v = 0;
        for (const char *p = eq + 1; *p && *p != '\n' && *p != '#'; p++)
            if (*p >= '0' && *p <= '9')
                v = v * 10 + (*p - '0');
        break;
    }
    free(text);
    return v;
}

/* A key the budgets need; the template has them all (a missing one is a
 * broken test set-up, made loud by a huge budget being unlikely: 60 s). */
static long long cfg_ms(const it_node_t *n, const char *key)
{
    long long v = it_cfg_int(n, key);
    if (v < 0) {
        fprintf(stderr, "harness: %s not in %s, taking 60000\n", key, n->config);
        return 60000;
    }
    return v;
}

int it_budget_ms(const it_node_t *n, it_budget_t kind, long long count)
{
    long long start = cfg_ms(n, "start_timeout_ms");
    long long actors = 4 + cfg_ms(n, "validation_workers");
    long long ms = 0;
    switch (kind) {
    case IT_READY: ms = start * actors; break;
    case IT_RESTART:
        ms = cfg_ms(n, "heartbeat_timeout_ms") + cfg_ms(n, "restart_backoff_max_ms") + start;
        break;
    case IT_REQUEST: ms = cfg_ms(n, "request_timeout_ms"); break;
    case IT_SHUTDOWN: ms = cfg_ms(n, "shutdown_timeout_ms") * actors; break;
    case IT_BLOCKS:
        ms = (count / cfg_ms(n, "download_window") + 1) * 2 * cfg_ms(n, "request_timeout_ms") +
             start * actors;
        break;
    case IT_GIVE_UP:
        ms = (cfg_ms(n, "max_restarts") + 1) * (cfg_ms(n, "restart_backoff_max_ms") + start);
        break;
    }
    ms *= it_time_factor();
    return ms > 3600000 ? 3600000 : (int) ms;
}

/* ---- status */

json_t *it_status(const it_node_t *n)
{
    const char *argv[] = {
        it_bin("actors/alysctl/alysctl"), "--config", n->config, "status", "--json", NULL};
    static char out[1 << 16];
    if (it_run(argv, out, sizeof out, it_budget_ms(n, IT_REQUEST, 0)) != 0)
        return NULL;
    json_error_t err;
    return json_loads(out, 0, &err);
}

json_t *it_actor(json_t *status, const char *name)
{
    json_t *actors = json_object_get(status, "actors");
    size_t i;
    json_t *a;
    json_array_foreach(actors, i, a)
    {
        const char *n = json_string_value(json_object_get(a, "name"));
        if (n && strcmp(n, name) == 0)
            return a;
    }
    return NULL;
}

static bool all_ready(json_t *status)
{
    json_t *actors = json_object_get(status, "actors");
    size_t i;
    json_t *a;
    if (json_array_size(actors) == 0)
        return false;
    json_array_foreach(actors, i, a)
    {
        const char *state = json_string_value(json_object_get(a, "state"));
        if (!state || (strcmp(state, "ready") != 0 && strcmp(state, "external") != 0))
            return false;
    }
    return true;
}

json_t *it_wait_all_ready(const it_node_t *n, int timeout_ms)
{
    int64_t end = it_now_ms() + timeout_ms;
    do {
        json_t *st = it_status(n);
        if (st && all_ready(st))
            return st;
        json_decref(st);
        it_sleep_ms(50);
    } while (it_now_ms() < end);
    return NULL;
}

json_t *it_wait_restarted(const it_node_t *n, const char *name, pid_t old_pid, int min_restarts,
                          int timeout_ms)
{
    int64_t end = it_now_ms() + timeout_ms;
    do {
        json_t *st = it_status(n);
        json_t *a = st ? it_actor(st, name) : NULL;
        if (a) {
            const char *state = json_string_value(json_object_get(a, "state"));
            pid_t pid = (pid_t) json_integer_value(json_object_get(a, "pid"));
            int restarts = (int) json_integer_value(json_object_get(a, "restarts"));
            if (state && strcmp(state, "ready") == 0 && pid > 0 && pid != old_pid &&
                restarts >= min_restarts)
                return st;
        }
        json_decref(st);
        it_sleep_ms(20);
    } while (it_now_ms() < end);
    return NULL;
}

/* ---- http */

char *it_http_get(int port, const char *path)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t) port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (fd < 0 || connect(fd, (struct sockaddr *) &a, sizeof a) != 0) {
        if (fd >= 0)
            close(fd);
        return NULL;
    }
    char req[256];
    int len = snprintf(req, sizeof req, "GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n", path);
    if (write(fd, req, (size_t) len) != len) {
        close(fd);
        return NULL;
    }
    size_t cap = 1 << 20, used = 0;
    char *buf = malloc(cap);
    ssize_t n;
    while (buf && used < cap - 1 && (n = read(fd, buf + used, cap - 1 - used)) > 0)
        used += (size_t) n;
    close(fd);
    if (!buf)
        return NULL;
    buf[used] = '\0';
    char *body = strstr(buf, "\r\n\r\n");
    if (strncmp(buf, "HTTP/1.", 7) != 0 || strncmp(buf + 8, " 200", 4) != 0 || !body) {
        free(buf);
        return NULL;
    }
    memmove(buf, body + 4, strlen(body + 4) + 1);
    return buf;
}

const char *it_kv(const char *text, const char *key, char *out, size_t outlen)
{
    out[0] = '\0';
    size_t klen = strlen(key);
    for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
        if (strncmp(p, key, klen) == 0 && p[klen] == ' ') {
            size_t n = strcspn(p + klen + 1, "\n");
            snprintf(out, outlen, "%.*s", (int) n, p + klen + 1);
            break;
        }
    }
    return out;
}
