/*  spawn.c: binary lookup and fork+exec of one actor. */
#include "spawn.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

static int try_path(const char *dir, const char *sub, const char *binary, char *out, size_t len)
{
    int n = sub ? snprintf(out, len, "%s/../%s/%s", dir, sub, binary)
                : snprintf(out, len, "%s/%s", dir, binary);
    if (n < 0 || (size_t) n >= len)
        return -1;
    return access(out, X_OK);
}

static int search_env(const char *dirs, const char *binary, char *out, size_t len)
{
    char copy[4096];
    snprintf(copy, sizeof copy, "%s", dirs);
    char *save = NULL;
    for (char *d = strtok_r(copy, ":", &save); d; d = strtok_r(NULL, ":", &save))
        if (try_path(d, NULL, binary, out, len) == 0)
            return 0;
    return -1;
}

int spawn_find_binary(const char *binary, const char *subdir, char *out, size_t len, char *err,
                      size_t errlen)
{
    const char *env = getenv("ALYS_BIN_DIR");
    if (env && *env) {
        if (search_env(env, binary, out, len) == 0)
            return 0;
        snprintf(err, errlen, "%s not found in ALYS_BIN_DIR=%s", binary, env);
        return -1;
    }
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) {
        snprintf(err, errlen, "cannot read /proc/self/exe: %s", strerror(errno));
        return -1;
    }
    exe[n] = '\0';
    char *slash = strrchr(exe, '/');
    if (slash)
        *slash = '\0';
    if (try_path(exe, NULL, binary, out, len) == 0 || try_path(exe, subdir, binary, out, len) == 0)
        return 0;
    snprintf(err, errlen, "%s not found in %s nor %s/../%s (set ALYS_BIN_DIR)", binary, exe, exe,
             subdir);
    return -1;
}

/* In the child, before exec: async-signal-safe calls only. Reports errno
 * through errfd (close-on-exec, so a successful exec just closes it). */
static void child_exec(const char *path, char *const argv[], const sigset_t *mask, pid_t parent,
                       int errfd)
{
    /* Die with the supervisor; and if it already died since fork, go now. */
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent)
        _exit(127);
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    sigemptyset(&dfl.sa_mask);
    for (int sig = 1; sig < NSIG; sig++)
        sigaction(sig, &dfl, NULL); /* EINVAL for KILL/STOP and RT internals: fine */
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, mask ? mask : &none, NULL);
    setpgid(0, 0);
    /* Every inherited descriptor (sockets, the metrics listener, the pid-file
     * lock) closes at exec; errfd must stay open until then. */
    if (close_range(3, ~0U, CLOSE_RANGE_CLOEXEC) != 0)
        for (int fd = 3; fd < 4096; fd++)
            if (fd != errfd)
                fcntl(fd, F_SETFD, FD_CLOEXEC);
    execv(path, argv);
    int e = errno;
    ssize_t w = write(errfd, &e, sizeof e);
    (void) w;
    _exit(127);
}

pid_t spawn_child(const char *path, char *const argv[])
{
    return spawn_child_masked(path, argv, NULL);
}

pid_t spawn_child_masked(const char *path, char *const argv[], const sigset_t *mask)
{
    int pipefd[2];
    if (pipe2(pipefd, O_CLOEXEC) != 0)
        return -1;
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid == 0)
        child_exec(path, argv, mask, parent, pipefd[1]);
    int saved = errno;
    close(pipefd[1]);
    if (pid < 0) {
        close(pipefd[0]);
        errno = saved;
        return -1;
    }
    /* Wait for the exec: EOF means it happened, an int is its errno. */
    int child_errno = 0;
    ssize_t n;
    do
        n = read(pipefd[0], &child_errno, sizeof child_errno);
    while (n < 0 && errno == EINTR);
    close(pipefd[0]);
    if (n == (ssize_t) sizeof child_errno) {
        int status;
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
            ;
        errno = child_errno;
        return -1;
    }
    return pid;
}
