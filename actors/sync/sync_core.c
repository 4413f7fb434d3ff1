/*  sync_core.c: the core's lifecycle and what main.c's timers, sockets and
 *  subscriptions hand in (see sync_core.h); messages are sync_inbox.c's,
 *  actions sync_act.c's.
 */
#include <stdlib.h>
#include <string.h>

#include "sync_core_internal.h"

#define HDR_RING 16384 /* verified headers whose slot we keep */

static bool make_modules(sa_t *sa, uint64_t instance)
{
    sync_machine_config_t mcfg;
    sync_machine_config_from(&mcfg, sa->cfg);
    /* Unique per incarnation: a restarted actor never matches a stale id. */
    mcfg.req_id_base = instance;
    mcfg.random_seed = instance ^ (instance << 32);
    sa->m = sync_machine_new(&mcfg);
    sa->ring = sync_hdr_ring_new(HDR_RING);
    sa->hreqs = sync_hdr_reqs_new(MAX_HDR_REQS);
    sa->known = sync_known_new(SYNC_MAX_PEERS, SYNC_KNOWN_ABSENT_MS);
    sa->restarts = sync_restart_new();
    sa->rollback = sync_rollback_new(SYNC_ROLLBACK_QUIET_MS);
    sa->pend = sync_pending_new(MAX_PENDING);
    sa->fork = sync_fork_new(sa->cfg->max_reorg_depth, sa->cfg->request_timeout_ms);
    return sa->m && sa->ring && sa->hreqs && sa->known && sa->restarts && sa->rollback &&
           sa->pend && sa->fork;
}

sync_core_t *sync_core_new(const alys_config_t *cfg, alys_metrics_t *metrics,
                           const sync_port_t *port, uint64_t now_ms, uint64_t now_unix_ms,
                           uint64_t instance, bool start_paused)
{
    if (!cfg || !metrics || !port)
        return NULL;
    sa_t *sa = calloc(1, sizeof *sa); /* large (hash scratch): never on a stack */
    if (!sa)
        return NULL;
    sa->port = *port;
    sa->cfg = cfg;
    sa->metrics = metrics;
    sa->start_paused = start_paused;
    sync_core_clock(sa, now_ms, now_unix_ms);
    if (!make_modules(sa, instance ? instance : 1))
        sync_core_destroy(&sa);
    else
        sa_declare_metrics(sa);
    return sa;
}

void sync_core_destroy(sync_core_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    sa_t *sa = *self_p;
    sync_pend_t p;
    while (sa->pend && sync_pending_next_expired(sa->pend, UINT64_MAX, &p))
        sa_pend_done(&p); /* every client frame */
    sync_machine_destroy(&sa->m);
    sync_hdr_ring_destroy(&sa->ring);
    sync_hdr_reqs_destroy(&sa->hreqs);
    sync_known_destroy(&sa->known);
    sync_restart_destroy(&sa->restarts);
    sync_rollback_destroy(&sa->rollback);
    sync_fork_destroy(&sa->fork);
    sync_pending_destroy(&sa->pend);
    free(sa->expected);
    if (sa->have_genesis)
        alys_genesis_clear(&sa->genesis);
    free(sa);
    *self_p = NULL;
}

void sync_core_clock(sync_core_t *self, uint64_t now_ms, uint64_t now_unix_ms)
{
    self->now = now_ms;
    self->now_unix = now_unix_ms;
}

void sync_core_set_genesis(sync_core_t *self, alys_genesis_t *genesis)
{
    if (self->have_genesis)
        alys_genesis_clear(&self->genesis);
    self->genesis = *genesis;
    memset(genesis, 0, sizeof *genesis); /* ours now */
    self->have_genesis = true;
    sa_request_head(self);
}

bool sync_core_has_genesis(const sync_core_t *self)
{
    return self->have_genesis;
}

sync_machine_t *sync_core_machine(sync_core_t *self)
{
    return self->m;
}

void sync_core_on_message(sync_core_t *self, zframe_t *from, const alys_env_t *env)
{
    sa_dispatch(self, from, env);
}

void sync_core_on_event(sync_core_t *self, const char *topic, const Alys__Control__Event *ev)
{
    if (!topic || !ev)
        return;
    if (strcmp(topic, "lifecycle") == 0)
        sa_on_lifecycle(self, ev);
    else if (strcmp(topic, "storage") == 0)
        sa_on_storage_event(self, ev);
}

void sync_core_on_socket(sync_core_t *self, sync_watch_t w, bool connected)
{
    if (!connected)
        sync_restart_on_socket_lost(self->restarts, w);
    else if (sync_restart_on_socket_back(self->restarts, w))
        sa_restarted(self, w, "its socket reconnected");
}

void sync_core_tick(sync_core_t *self)
{
    if (!self->have_genesis)
        return; /* nothing can be verified yet */
    sa_expire_pending(self);
    uint64_t now = self->now;
    if (!self->initialised) {
        sa_request_head(self); /* retried until StorageActor answers */
        return;
    }
    if (sync_rollback_window_closed(self->rollback, now))
        sa_request_head(self); /* commits reported meanwhile were ignored: catch up */
    else if (now - self->last_head_poll >= HEAD_POLL_MS)
        sa_request_head(self);
    if (now - self->last_peer_set >= PEERS_POLL_MS)
        sa_request_peers(self);
    sync_machine_tick(self->m, now);
    sa_drain(self);
    sa_fork_tick(self);
}

void sync_core_progress(sync_core_t *self)
{
    if (!self->initialised)
        return;
    sync_progress_t p;
    sync_machine_get_progress(self->m, self->now, &p);
    sa_publish_metrics(self, &p);
    char line[400];
    sync_bus_progress_line(&p, line, sizeof line);
    self->port.event(self->port.ctx, "progress", line);
}
