/*  sync_restart.c: see sync_restart.h. */
#include "sync_restart.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

/* Pids remembered per actor, to recognise a ready seen again late. A pid
 * comes back only after the kernel wraps its pid space, far beyond this. */
#define RECENT_PIDS 8

typedef struct {
    int pid; /* instance we know is current, 0 = none yet */
    int recent[RECENT_PIDS];
    unsigned recent_next;
    bool lost;        /* socket down since on_socket_lost */
    int lost_pid;     /* pid current when the socket dropped */
    unsigned unnamed; /* instances acted on from the socket whose
                                    ready has not come yet */
    uint64_t handled;
} watch_t;

struct sync_restart {
    watch_t w[SYNC_WATCH_COUNT];
};

static const char *const names[SYNC_WATCH_COUNT] = {"storage", "peer_manager", "block_processor"};

sync_restart_t *sync_restart_new(void)
{
    return calloc(1, sizeof(sync_restart_t));
}

void sync_restart_destroy(sync_restart_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    free(*self_p);
    *self_p = NULL;
}

sync_watch_t sync_restart_watch_of(const char *name)
{
    for (int w = 0; name && w < SYNC_WATCH_COUNT; w++)
        if (strcmp(name, names[w]) == 0)
            return (sync_watch_t) w;
    return SYNC_WATCH_COUNT;
}

const char *sync_restart_name(sync_watch_t w)
{
    return w < SYNC_WATCH_COUNT ? names[w] : "?";
}

static bool seen(const watch_t *wt, int pid)
{
    for (size_t i = 0; i < RECENT_PIDS; i++)
        if (wt->recent[i] == pid)
            return true;
    return false;
}

static bool handle(watch_t *wt)
{
    wt->handled++;
    return true;
}

bool sync_restart_on_ready(sync_restart_t *self, sync_watch_t w, int pid)
{
    if (w >= SYNC_WATCH_COUNT || pid <= 0)
        return false;
    watch_t *wt = &self->w[w];
    if (seen(wt, pid))
        return false;
    wt->recent[wt->recent_next++ % RECENT_PIDS] = pid;
    int old = wt->pid;
    wt->pid = pid;
    /* The socket showed this instance first: the ready only names it. A
     * ready that comes while the socket is down is of an instance after the
     * one the socket showed: that one died unnamed. */
    if (wt->unnamed > 0 && !wt->lost) {
        wt->unnamed--;
        return false;
    }
    wt->unnamed = 0;
    /* The first instance we see, our socket never having dropped: its
     * first start (a restart always drops our connection first). */
    if (old == 0 && !wt->lost)
        return false;
    return handle(wt);
}

void sync_restart_on_socket_lost(sync_restart_t *self, sync_watch_t w)
{
    if (w >= SYNC_WATCH_COUNT)
        return;
    watch_t *wt = &self->w[w];
    wt->lost = true;
    wt->lost_pid = wt->pid;
}

bool sync_restart_on_socket_back(sync_restart_t *self, sync_watch_t w)
{
    if (w >= SYNC_WATCH_COUNT)
        return false;
    watch_t *wt = &self->w[w];
    if (!wt->lost)
        return false; /* the first connect */
    wt->lost = false;
    if (wt->pid != wt->lost_pid)
        return false; /* its ready came first: acted on */
    wt->unnamed++;
    return handle(wt);
}

uint64_t sync_restart_count(const sync_restart_t *self, sync_watch_t w)
{
    return w < SYNC_WATCH_COUNT ? self->w[w].handled : 0;
}

unsigned sync_restart_effects(sync_watch_t w, bool initialised)
{
    if (!initialised)
        return w == SYNC_WATCH_STORAGE ? SYNC_RESTART_GET_HEAD : 0;
    switch (w) {
    case SYNC_WATCH_STORAGE: return SYNC_RESTART_GET_HEAD;
    case SYNC_WATCH_PEER_MANAGER: return SYNC_RESTART_REISSUE | SYNC_RESTART_GET_PEERS;
    default: return 0;
    }
}

static int parse_pid(const char *s)
{
    char *end = NULL;
    long v = strtol(s, &end, 10);
    if (end == s || v <= 0 || v > INT_MAX)
        return 0;
    return (int) v;
}

int sync_restart_event_pid(const char *field_pid, const char *detail)
{
    if (field_pid && *field_pid)
        return parse_pid(field_pid);
    const char *p = detail ? strstr(detail, "pid ") : NULL;
    return p ? parse_pid(p + 4) : 0;
}
