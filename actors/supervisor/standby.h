/*  standby.h: warm standby processes, one per supervised child.
 *
 *  A restart's cost is mostly exec and dynamic linking of the actor binary
 *  (about 35 shared libraries, C++ static initialisers for RocksDB), not the
 *  actor's own start. So the supervisor keeps, for each child that is ready,
 *  one more process of the same binary and arguments plus --standby, already
 *  exec'ed and linked, idle before it reads its config (common/actor.c,
 *  wait_activation). When the policy asks to spawn that child again (always
 *  after the dead process was reaped: one storage process per database still
 *  holds), the standby is activated with SIGUSR1 and takes the child's place;
 *  a new standby is spawned once the child is ready again. The policy never
 *  sees standbys: to it an activation is a spawn.
 *
 *  A standby that dies before activation is forgotten and replaced after
 *  retry_ms, so a binary that cannot start does not make the supervisor spin.
 *
 *  Ownership: standby_new/standby_destroy; destroy SIGKILLs and reaps every
 *  standby left.
 */
#ifndef ALYS_STANDBY_H
#define ALYS_STANDBY_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct standby standby_t;

/* A table of at most max_children standbys; a dead standby is replaced no
 * sooner than retry_ms later. NULL when out of memory. */
standby_t *standby_new(size_t max_children, uint32_t retry_ms);
void standby_destroy(standby_t **self_p);

/* Whether name should get a standby now (none, and no recent failure). */
bool standby_wanted(const standby_t *self, const char *name, int64_t now);

/* Spawns path with argv (which ends with "--standby" and NULL) as name's
 * standby. 0, or -1 with errno (the retry delay then applies). */
int standby_spawn(standby_t *self, const char *name, const char *path, char *const argv[],
                  int64_t now);

/* Activates name's standby: its pid, no longer a standby; 0 if name has
 * none or the signal could not be sent (the caller spawns as usual). */
pid_t standby_activate(standby_t *self, const char *name);

/* A reaped pid: true (and forgotten) if it was a standby. */
bool standby_reaped(standby_t *self, pid_t pid, int64_t now);

/* SIGKILL every standby (shutdown, or new binaries after SIGHUP); they are
 * reaped through SIGCHLD as usual. */
void standby_kill_all(standby_t *self);

/* Standbys alive now, and activations so far (metrics). */
size_t standby_count(const standby_t *self);
uint64_t standby_activations(const standby_t *self);

#endif
