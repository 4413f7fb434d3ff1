/*  spawn.h: finding the actor binaries and starting one as a child process.
 *
 *  spawn_child forks and execs with the discipline a supervisor needs: the
 *  child asks for SIGKILL when the supervisor dies (PR_SET_PDEATHSIG, so no
 *  actor outlives it, even a SIGKILLed one), gets a clean signal mask and
 *  default handlers (the supervisor blocks signals for its signalfd), its own
 *  process group (a terminal's Ctrl-C reaches only the supervisor, which then
 *  stops the actors in order), and no inherited descriptors. Between fork and
 *  exec it only makes async-signal-safe calls: the supervisor is
 *  multi-threaded (ZeroMQ I/O threads, the metrics HTTP thread), so nothing
 *  that allocates or locks may run there, ZeroMQ least of all.
 *
 *  PR_SET_PDEATHSIG fires when the *thread* that forked exits, not the
 *  process: call spawn_child from the supervisor's main thread only (the one
 *  that lives as long as the process).
 */
#ifndef ALYS_SPAWN_H
#define ALYS_SPAWN_H

#include <signal.h>
#include <stddef.h>
#include <sys/types.h>

/* Find `binary` (e.g. "alys-storage"). Search order: every directory of
 * ALYS_BIN_DIR (colon-separated) if set; else the supervisor's own directory
 * (dirname of /proc/self/exe), then the build tree's sibling folder
 * <dir>/../<subdir>/ (meson puts each actor in its own folder). Writes the
 * path into out; returns 0, or -1 with the places searched in err. */
int spawn_find_binary(const char *binary, const char *subdir, char *out, size_t len, char *err,
                      size_t errlen);

/* fork + exec path with argv (argv[0] first, NULL-terminated). Returns the
 * child's pid once it has exec'ed, or -1 with errno set (fork failed, or the
 * exec failed in the child: errno is the child's). */
pid_t spawn_child(const char *path, char *const argv[]);

/* The same, with mask as the child's signal mask instead of an empty one
 * (NULL: empty). Blocked signals stay blocked across exec, and one sent
 * before the program is ready stays pending instead of acting. */
pid_t spawn_child_masked(const char *path, char *const argv[], const sigset_t *mask);

#endif
