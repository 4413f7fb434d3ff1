/*  standby.c: warm standby processes (see standby.h). */
#include "standby.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "log.h"
#include "spawn.h"
#include "supervisor.h"

typedef struct {
    char name[SUP_NAME_MAX];
    pid_t pid;        /* 0: no standby */
    int64_t retry_at; /* no new standby before this (after a failure) */
} entry_t;

struct standby {
    entry_t *entries;
    size_t max;
    uint32_t retry_ms;
    uint64_t activations;
};

standby_t *standby_new(size_t max_children, uint32_t retry_ms)
{
    standby_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->entries = calloc(max_children ? max_children : 1, sizeof *self->entries);
    if (!self->entries) {
        free(self);
        return NULL;
    }
    self->max = max_children;
    self->retry_ms = retry_ms;
    return self;
}

void standby_destroy(standby_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    standby_t *self = *self_p;
    for (size_t i = 0; i < self->max; i++) {
        pid_t pid = self->entries[i].pid;
        if (pid > 1 && kill(pid, SIGKILL) == 0)
            while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
                ;
    }
    free(self->entries);
    free(self);
    *self_p = NULL;
}

static entry_t *find(const standby_t *self, const char *name)
{
    for (size_t i = 0; i < self->max; i++)
        if (self->entries[i].name[0] && strcmp(self->entries[i].name, name) == 0)
            return &self->entries[i];
    return NULL;
}

/* name's entry, made if needed; NULL when the table is full. */
static entry_t *slot(standby_t *self, const char *name)
{
    entry_t *e = find(self, name);
    for (size_t i = 0; !e && i < self->max; i++)
        if (!self->entries[i].name[0]) {
            e = &self->entries[i];
            snprintf(e->name, sizeof e->name, "%s", name);
        }
    return e;
}

bool standby_wanted(const standby_t *self, const char *name, int64_t now)
{
    const entry_t *e = find(self, name);
    return !e || (e->pid == 0 && now >= e->retry_at);
}

int standby_spawn(standby_t *self, const char *name, const char *path, char *const argv[], int64_t now)
{
    entry_t *e = slot(self, name);
    if (!e) {
        errno = ENOSPC;
        return -1;
    }
    /* SIGUSR1 blocked from the first instruction: an activation that comes
     * while the standby is still linking waits for it (see standby.h). */
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGUSR1);
    pid_t pid = spawn_child_masked(path, argv, &mask);
    if (pid < 0) {
        e->retry_at = now + self->retry_ms;
        return -1;
    }
    e->pid = pid;
    return 0;
}

pid_t standby_activate(standby_t *self, const char *name)
{
    entry_t *e = find(self, name);
    if (!e || e->pid <= 1)
        return 0;
    pid_t pid = e->pid;
    e->pid = 0;
    if (kill(pid, SIGUSR1) != 0) {
        /* Gone already: SIGCHLD will bring it to standby_reaped, which no
         * longer knows it; the policy never knew it. */
        return 0;
    }
    self->activations++;
    return pid;
}

bool standby_reaped(standby_t *self, pid_t pid, int64_t now)
{
    for (size_t i = 0; i < self->max; i++)
        if (self->entries[i].pid == pid) {
            self->entries[i].pid = 0;
            self->entries[i].retry_at = now + self->retry_ms;
            return true;
        }
    return false;
}

void standby_kill_all(standby_t *self)
{
    for (size_t i = 0; i < self->max; i++)
        if (self->entries[i].pid > 1 && kill(self->entries[i].pid, SIGKILL) != 0 && errno != ESRCH)
            log_warn("cannot stop standby %d: %s", (int) self->entries[i].pid, strerror(errno));
}

size_t standby_count(const standby_t *self)
{
    size_t n = 0;
    for (size_t i = 0; i < self->max; i++)
        n += self->entries[i].pid > 0;
    return n;
}

uint64_t standby_activations(const standby_t *self)
{
    return self->activations;
}
