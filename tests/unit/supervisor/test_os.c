/*  The supervisor's OS-facing helpers against the real system: the checks
 *  before start (preflight), /proc readings (procstat) and the systemd
 *  notify datagram (sdnotify).
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <signal.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>

#include "chain/chain.h"
#include "config.h"
#include "preflight.h"
#include "procstat.h"
#include "sdnotify.h"
#include "standby.h"

/* ---- procstat */

Test(procstat, reads_this_process)
{
    procstat_t ps;
    cr_assert_eq(procstat_read(getpid(), &ps), 0, "%s", strerror(errno));
    cr_assert_gt(ps.open_fds, 2, "stdin, stdout, stderr at least");
    cr_assert_gt(ps.max_fds, 0);
    cr_assert_gt(ps.resident_bytes, 0);
    cr_assert_geq(ps.cpu_seconds, 0);
    double now = (double) time(NULL);
    cr_assert(ps.start_time_seconds > now - 3600 && ps.start_time_seconds <= now + 1,
              "started recently: %f vs %f", ps.start_time_seconds, now);
}

Test(procstat, a_gone_process_is_an_error)
{
    procstat_t ps;
    cr_assert_eq(procstat_read(999999999, &ps), -1);
}

/* ---- sdnotify */

Test(sdnotify, nothing_without_notify_socket)
{
    cr_assert_eq(unsetenv("NOTIFY_SOCKET"), 0);
    cr_assert_eq(sdnotify_send("READY=1"), 0);
}

static void expect_datagram(const char *env_path, const struct sockaddr_un *sa, socklen_t len)
{
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    cr_assert_geq(fd, 0);
    cr_assert_eq(bind(fd, (const struct sockaddr *) sa, len), 0, "%s", strerror(errno));
    cr_assert_eq(setenv("NOTIFY_SOCKET", env_path, 1), 0);
    cr_assert_eq(sdnotify_send("READY=1\nSTATUS=ok"), 1);
    char buf[64];
    ssize_t n = recv(fd, buf, sizeof buf - 1, MSG_DONTWAIT);
    cr_assert_eq(n, (ssize_t) strlen("READY=1\nSTATUS=ok"));
    buf[n] = '\0';
    cr_assert_str_eq(buf, "READY=1\nSTATUS=ok");
    close(fd);
    unsetenv("NOTIFY_SOCKET");
}

Test(sdnotify, sends_one_datagram_to_a_path_socket)
{
    char path[64];
    snprintf(path, sizeof path, "/tmp/alys-sdnotify-%d.sock", (int) getpid());
    unlink(path);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
    expect_datagram(path, &sa, sizeof sa);
    unlink(path);
}

Test(sdnotify, sends_to_an_abstract_socket)
{
    char name[64];
    snprintf(name, sizeof name, "@alys-sdnotify-%d", (int) getpid());
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    memcpy(sa.sun_path, name, strlen(name));
    sa.sun_path[0] = '\0';
    expect_datagram(name, &sa, (socklen_t) (offsetof(struct sockaddr_un, sun_path) + strlen(name)));
}

Test(sdnotify, a_relative_path_is_refused)
{
    cr_assert_eq(setenv("NOTIFY_SOCKET", "relative.sock", 1), 0);
    cr_assert_eq(sdnotify_send("READY=1"), -1);
    cr_assert_eq(errno, EINVAL);
    unsetenv("NOTIFY_SOCKET");
}

/* ---- preflight */

static char s_dir[64];

static void make_dir(void)
{
    snprintf(s_dir, sizeof s_dir, "/tmp/alys-preflight-XXXXXX");
    cr_assert_not_null(mkdtemp(s_dir));
}

static void base_config(alys_config_t *c)
{
    alys_config_defaults(c);
    snprintf(c->data_dir, sizeof c->data_dir, "%s/data", s_dir);
    snprintf(c->run_dir, sizeof c->run_dir, "%s/run", s_dir);
    c->metrics_enabled = false;
}

Test(preflight, a_usable_environment_passes_and_dirs_are_made)
{
    make_dir();
    alys_config_t c;
    base_config(&c);
    char err[ALYS_ERR_MAX] = "";
    cr_assert_eq(preflight_check(&c, err, sizeof err), 0, "%s", err);
    cr_assert_eq(access(c.data_dir, W_OK), 0);
    cr_assert_eq(access(c.run_dir, W_OK), 0);
}

Test(preflight, the_node_key_is_made_at_first_start_and_an_unsafe_one_stops_it)
{
    make_dir();
    alys_config_t c;
    base_config(&c);
    char err[ALYS_ERR_MAX] = "", key[ALYS_PATH_MAX + 16];
    cr_assert_eq(preflight_check(&c, err, sizeof err), 0, "%s", err);
    snprintf(key, sizeof key, "%s/node.key", c.data_dir);
    struct stat st;
    cr_assert_eq(stat(key, &st), 0, "the key exists before any actor starts");
    cr_expect_eq(st.st_mode & 0777, 0600);
    cr_assert_eq(chmod(key, 0644), 0);
    cr_assert_eq(preflight_check(&c, err, sizeof err), -1);
    cr_expect(strstr(err, "node key") && strstr(err, "group or others"), "%s", err);
}

Test(preflight, a_missing_or_bad_genesis_names_the_key)
{
    make_dir();
    alys_config_t c;
    base_config(&c);
    snprintf(c.genesis_file, sizeof c.genesis_file, "%s/nope", s_dir);
    char err[ALYS_ERR_MAX] = "";
    cr_assert_eq(preflight_check(&c, err, sizeof err), -1);
    cr_assert(strstr(err, "node.genesis_file") && strstr(err, "No such file"), "%s", err);
    FILE *f = fopen(c.genesis_file, "w");
    cr_assert_not_null(f);
    fputs("junk", f);
    fclose(f);
    cr_assert_eq(preflight_check(&c, err, sizeof err), -1);
    cr_assert(strstr(err, "is not usable: genesis"), "%s", err);
}

Test(preflight, a_data_dir_that_cannot_be_a_directory)
{
    make_dir();
    alys_config_t c;
    base_config(&c);
    snprintf(c.data_dir, sizeof c.data_dir, "%s/file", s_dir);
    FILE *f = fopen(c.data_dir, "w");
    cr_assert_not_null(f);
    fclose(f);
    char err[ALYS_ERR_MAX] = "";
    cr_assert_eq(preflight_check(&c, err, sizeof err), -1);
    cr_assert(strncmp(err, "node.data_dir '", 15) == 0 && strstr(err, "is not a directory"), "%s",
              err);
}

Test(preflight, a_port_in_use_names_the_key_and_the_cause)
{
    make_dir();
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    cr_assert_eq(bind(fd, (struct sockaddr *) &a, sizeof a), 0);
    cr_assert_eq(listen(fd, 1), 0);
    cr_assert_eq(getsockname(fd, (struct sockaddr *) &a, &len), 0);
    alys_config_t c;
    base_config(&c);
    snprintf(c.listen, sizeof c.listen, "tcp://127.0.0.1:%d", ntohs(a.sin_port));
    char err[ALYS_ERR_MAX] = "";
    cr_assert_eq(preflight_check(&c, err, sizeof err), -1);
    cr_assert(strstr(err, "network.listen") && strstr(err, "Address already in use"), "%s", err);
    c.listen[0] = '\0';
    c.metrics_enabled = true;
    snprintf(c.metrics_bind, sizeof c.metrics_bind, "127.0.0.1");
    c.metrics_port = ntohs(a.sin_port);
    cr_assert_eq(preflight_check(&c, err, sizeof err), -1);
    cr_assert(strstr(err, "metrics.metrics_port"), "%s", err);
    close(fd);
    cr_assert_eq(preflight_check(&c, err, sizeof err), 0, "free again: %s", err);
}

/* ---- warm standbys (standby.c), with real child processes */

static char *const s_sleep[] = {"sleep", "30", NULL};
static char *const s_true[] = {"true", NULL};

/* Whether SIGUSR1 is pending (blocked, not acted on) in pid. */
static bool usr1_pending(pid_t pid)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int) pid);
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f);
    unsigned long long mask = 0;
    bool found = false;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "ShdPnd: %llx", &mask) == 1 && (mask & (1ULL << (SIGUSR1 - 1)))) {
            found = true;
            break;
        }
    fclose(f);
    return found;
}

Test(standby, activation_is_a_signal_the_standby_holds_until_it_is_ready)
{
    standby_t *sb = standby_new(4, 1000);
    cr_assert_not_null(sb);
    cr_assert(standby_wanted(sb, "sync", 0));
    cr_assert_eq(standby_spawn(sb, "sync", "/bin/sleep", s_sleep, 0), 0);
    cr_assert_not(standby_wanted(sb, "sync", 0), "one standby per name");
    cr_assert_eq(standby_count(sb), 1);
    pid_t pid = standby_activate(sb, "sync");
    cr_assert_gt(pid, 1);
    cr_assert_eq(standby_count(sb), 0, "an activated standby is a standby no more");
    cr_assert_eq(standby_activations(sb), 1);
    /* sleep knows nothing of SIGUSR1: blocked from exec on, it stays pending
     * instead of killing the process. */
    cr_assert(usr1_pending(pid), "SIGUSR1 pending, process alive");
    cr_assert_eq(standby_activate(sb, "sync"), 0, "nothing left to activate");
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    standby_destroy(&sb);
    cr_assert_null(sb);
}

Test(standby, a_standby_that_dies_is_replaced_only_after_the_retry_delay)
{
    standby_t *sb = standby_new(4, 1000);
    cr_assert_eq(standby_spawn(sb, "storage", "/bin/true", s_true, 100), 0);
    int status;
    pid_t pid = waitpid(-1, &status, 0);
    cr_assert_gt(pid, 1);
    cr_assert_not(standby_reaped(sb, pid + 100000, 200), "not a standby");
    cr_assert(standby_reaped(sb, pid, 200));
    cr_assert_eq(standby_count(sb), 0);
    cr_assert_not(standby_wanted(sb, "storage", 1199), "no respawn loop");
    cr_assert(standby_wanted(sb, "storage", 1200));
    standby_destroy(&sb);
}

Test(standby, kill_all_ends_every_standby_and_destroy_reaps_the_rest)
{
    standby_t *sb = standby_new(2, 1000);
    cr_assert_eq(standby_spawn(sb, "a", "/bin/sleep", s_sleep, 0), 0);
    cr_assert_eq(standby_spawn(sb, "b", "/bin/sleep", s_sleep, 0), 0);
    cr_assert_eq(standby_spawn(sb, "c", "/bin/sleep", s_sleep, 0), -1, "the table is bounded");
    cr_assert_eq(errno, ENOSPC);
    cr_assert_eq(standby_count(sb), 2);
    standby_kill_all(sb);
    for (int i = 0; i < 2; i++) {
        int status;
        pid_t pid = waitpid(-1, &status, 0);
        cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
        cr_assert(standby_reaped(sb, pid, 0));
    }
    cr_assert_eq(standby_count(sb), 0);
    standby_destroy(&sb);
}

/* ---- preflight: [producer] */

/* A genesis with one authority whose secret key is all 0x11, saved under
 * s_dir; the key file written with mode. */
static void producer_setup(alys_config_t *c, const char *key_hex, mode_t mode)
{
    make_dir();
    base_config(c);
    uint8_t sk[ALYS_SECKEY_LEN], pub[ALYS_PUBKEY_LEN];
    memset(sk, 0x11, sizeof sk);
    cr_assert_eq(alys_keypair_pubkey(sk, pub), 0);
    uint8_t auths[1][ALYS_PUBKEY_LEN];
    memcpy(auths[0], pub, ALYS_PUBKEY_LEN);
    alys_genesis_t g;
    memset(&g, 0, sizeof g);
    snprintf(g.chain_id, sizeof g.chain_id, "preflight");
    g.authorities = auths;
    g.authority_count = 1;
    g.slot_duration_ms = 1000;
    g.genesis_time = 1600000000;
    alys_genesis_finalize(&g);
    snprintf(c->genesis_file, sizeof c->genesis_file, "%s/genesis", s_dir);
    cr_assert_eq(alys_genesis_save(c->genesis_file, &g), 0);
    snprintf(c->producer_key_file, sizeof c->producer_key_file, "%s/key", s_dir);
    FILE *f = fopen(c->producer_key_file, "w");
    cr_assert_not_null(f);
    fprintf(f, "%s\n", key_hex);
    fclose(f);
    cr_assert_eq(chmod(c->producer_key_file, mode), 0);
    c->producer_enabled = true;
}

#define KEY_11 "1111111111111111111111111111111111111111111111111111111111111111"
#define KEY_22 "2222222222222222222222222222222222222222222222222222222222222222"

Test(preflight, the_producer_key_of_a_genesis_authority_passes)
{
    alys_config_t c;
    producer_setup(&c, KEY_11, 0600);
    char err[ALYS_ERR_MAX] = "";
    cr_assert_eq(preflight_check(&c, err, sizeof err), 0, "%s", err);
}

Test(preflight, a_producer_key_others_can_read_is_refused)
{
    alys_config_t c;
    producer_setup(&c, KEY_11, 0644);
    char err[ALYS_ERR_MAX] = "";
    cr_assert_eq(preflight_check(&c, err, sizeof err), -1);
    cr_assert(strstr(err, "producer.key_file") && strstr(err, "chmod 600"), "%s", err);
}

Test(preflight, a_producer_key_that_is_not_an_authority_is_refused)
{
    alys_config_t c;
    producer_setup(&c, KEY_22, 0600);
    char err[ALYS_ERR_MAX] = "";
    cr_assert_eq(preflight_check(&c, err, sizeof err), -1);
    cr_assert(strstr(err, "producer.key_file") && strstr(err, "not one of the genesis"), "%s", err);
}

Test(preflight, the_producer_needs_its_key_file_when_enabled)
{
    alys_config_t c;
    producer_setup(&c, KEY_11, 0600);
    c.producer_key_file[0] = '\0';
    char err[ALYS_ERR_MAX] = "";
    cr_assert_eq(preflight_check(&c, err, sizeof err), -1);
    cr_assert(strstr(err, "producer.key_file"), "%s", err);
    c.producer_enabled = false;
    cr_assert_eq(preflight_check(&c, err, sizeof err), 0, "disabled: no key needed (%s)", err);
}
