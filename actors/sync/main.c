/*  alys-sync: SyncActor. Sockets, the loop and the timers; every decision is
 *  the machine's (sync_machine.h). The readers here only receive and hand
 *  over: messages and events in -> sync_inbox.c, the machine's actions out
 *  -> sync_act.c; message builders and header verification: sync_bus.c.
 *  Their shared state: sync_actor.h.
 *
 *    mailbox ROUTER (ep_sync)          SyncMsg from alysctl and PeerManager,
 *                                      PeerMsg pushes from PeerManager
 *    DEALER -> ep_peer_manager         FetchHeaders, FetchBlocks, Penalise,
 *                                      RangeVerdict, GetPeers; results back
 *    DEALER -> ep_storage              GetHead, CreateCheckpoint,
 *                                      ListCheckpoints, Rollback
 *    DEALER -> ep_block_processor      ProcessBatch (ProcessBlockBatch)
 *    SUB    -> ep_events               "lifecycle" (actor restarts) and
 *                                      "storage" (head_advanced, rolled_back)
 *
 *  Events (topic "sync"): state_changed ("From -> To: reason"),
 *  can_produce_blocks ("true"/"false"), and every second progress
 *  ("state=... height=... target=... bps=... eta=... peers=a/t ...").
 *  Metrics: alys_sync_* and alys_checkpoint* (sa_publish_metrics()).
 *
 *  ALYS_SYNC_START_PAUSED=1 in the environment starts the first sync paused
 *  (`alysctl sync resume` lets it go): tests and benchmarks use it to hold
 *  a sync until every peer is connected (the process pauses at each start:
 *  do not combine it with killing the SyncActor).
 */
#include <czmq.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "actor.h"
#include "chain/chain.h"
#include "log.h"
#include "sockmon.h"
#include "sync_actor.h"
#include "util.h"

#define TICK_MS             100
#define PROGRESS_MS         1000
#define HEAD_POLL_MS        5000
#define GENESIS_RETRY_MS    2000
#define HDR_RING            16384
#define READ_BURST          64

/* ---------------------------------------------------------------- clock */

/* The one place the SyncActor reads a clock: at the start of every
 * callback; the inputs it makes all see this moment. */
static void sa_clock(sa_t *sa)
{
    sa->now = (uint64_t) alys_mono_ms();
    sa->now_unix = (uint64_t) alys_now_ms();
}

/* ---------------------------------------------------------------- readers */

static int on_mailbox(alys_actor_t *actor, zframe_t *from, alys_env_t *env, void *arg)
{
    (void) actor;
    sa_clock(arg);
    sa_dispatch(arg, from, env);
    return 0;
}

static int on_dealer(alys_actor_t *actor, zsock_t *sock, void *arg)
{
    (void) actor;
    for (int i = 0; i < READ_BURST && (zsock_events(sock) & ZMQ_POLLIN); i++) {
        alys_env_t *env = NULL;
        int rc = alys_recv(sock, &env);
        if (rc < 0)
            return 0;
        if (rc == 0) {
            sa_clock(arg);
            sa_dispatch(arg, NULL, env);
            alys_env_free(&env);
        }
    }
    return 0;
}

static int on_sockmon(alys_actor_t *actor, zsock_t *sock, void *arg)
{
    (void) actor;
    sa_t *sa = arg;
    sync_watch_t w = 0;
    while (w < SYNC_WATCH_COUNT && sa->mon[w] != sock)
        w++;
    int ev = sockmon_read(sock, NULL, 0);
    if (w == SYNC_WATCH_COUNT)
        return 0;
    sa_clock(sa);
    if (ev == ZMQ_EVENT_DISCONNECTED)
        sync_restart_on_socket_lost(sa->restarts, w);
    else if (ev == ZMQ_EVENT_CONNECTED && sync_restart_on_socket_back(sa->restarts, w))
        sa_restarted(sa, w, "its socket reconnected");
    return 0;
}

static int on_event(alys_actor_t *actor, zsock_t *sock, void *arg)
{
    (void) actor;
    sa_t *sa = arg;
    for (int i = 0; i < READ_BURST && (zsock_events(sock) & ZMQ_POLLIN); i++) {
        char topic[32];
        alys_env_t *env = NULL;
        int rc = alys_recv_topic(sock, topic, sizeof topic, &env);
        if (rc < 0)
            return 0;
        if (rc != 0)
            continue;
        sa_clock(sa);
        if (env->body_case == ALYS__BUS__ENVELOPE__BODY_EVENT && env->event) {
            if (strcmp(topic, "lifecycle") == 0)
                sa_on_lifecycle(sa, env->event);
            else if (strcmp(topic, "storage") == 0)
                sa_on_storage_event(sa, env->event);
        }
        alys_env_free(&env);
    }
    return 0;
}

/* ---------------------------------------------------------------- timers */

static bool load_genesis(sa_t *sa)
{
    if (sa->have_genesis)
        return true;
    if (sa->last_genesis_try && sa->now - sa->last_genesis_try < GENESIS_RETRY_MS)
        return false;
    sa->last_genesis_try = sa->now;
    char err[256];
    if (!*sa->cfg->genesis_file) {
        log_error("no genesis_file in [node]: cannot verify headers; waiting");
        return false;
    }
    if (alys_genesis_load(sa->cfg->genesis_file, &sa->genesis, err, sizeof err) != 0) {
        log_error("cannot load the genesis: %s", err);
        return false;
    }
    sa->have_genesis = true;
    char hex[2 * ALYS_HASH_LEN + 1];
    alys_hex(sa->genesis.hash, ALYS_HASH_LEN, hex);
    log_info("genesis %s (%s, %u authorities, slot %" PRIu64 " ms)", hex, sa->genesis.chain_id,
             sa->genesis.authority_count, sa->genesis.slot_duration_ms);
    return true;
}

static int on_tick(alys_actor_t *actor, void *arg)
{
    (void) actor;
    sa_t *sa = arg;
    sa_clock(sa);
    if (!load_genesis(sa))
        return 0;
    sa_expire_pending(sa);
    uint64_t now = sa->now;
    if (!sa->initialised) {
        sa_request_head(sa);           /* retried until StorageActor answers */
        return 0;
    }
    if (sync_rollback_window_closed(sa->rollback, now))
        sa_request_head(sa);           /* commits reported meanwhile were ignored: catch up */
    else if (now - sa->last_head_poll >= HEAD_POLL_MS)
        sa_request_head(sa);
    if (now - sa->last_peer_set >= PEERS_POLL_MS)
        sa_request_peers(sa);
    sync_machine_tick(sa->m, now);
    sa_drain(sa);
    return 0;
}

static int on_progress(alys_actor_t *actor, void *arg)
{
    sa_t *sa = arg;
    if (!sa->initialised)
        return 0;
    sa_clock(sa);
    sync_progress_t p;
    sync_machine_get_progress(sa->m, sa->now, &p);
    sa_publish_metrics(sa, &p);
    char line[400];
    sync_bus_progress_line(&p, line, sizeof line);
    alys_actor_event(actor, "sync", "progress", "%s", line);
    return 0;
}

/* ---------------------------------------------------------------- setup */

static int connect_peer_actor(sa_t *sa, sync_watch_t w, zsock_t **sock, const char *endpoint)
{
    *sock = alys_dealer_connect(endpoint, alys_actor_name(sa->actor));
    if (!*sock)
        return -1;
    sa->mon[w] = sockmon_new(*sock, sync_restart_name(w), ZMQ_EVENT_CONNECTED | ZMQ_EVENT_DISCONNECTED);
    if (alys_actor_add_reader(sa->actor, *sock, on_dealer, sa) != 0)
        return -1;
    if (sa->mon[w] && alys_actor_add_reader(sa->actor, sa->mon[w], on_sockmon, sa) != 0)
        return -1;
    return 0;
}

static int setup(sa_t *sa)
{
    const alys_config_t *cfg = sa->cfg;
    sa_clock(sa);
    sync_machine_config_t mcfg;
    sync_machine_config_from(&mcfg, cfg);
    /* Unique per incarnation: a restarted actor never matches a stale id. */
    mcfg.req_id_base = (sa->now_unix << 16) | ((uint64_t) getpid() & 0xffff);
    mcfg.random_seed = sa->now_unix ^ ((uint64_t) getpid() << 32);
    sa->m = sync_machine_new(&mcfg);
    sa->ring = sync_hdr_ring_new(HDR_RING);
    sa->hreqs = sync_hdr_reqs_new(MAX_HDR_REQS);
    sa->known = sync_known_new(SYNC_MAX_PEERS, SYNC_KNOWN_ABSENT_MS);
    sa->restarts = sync_restart_new();
    sa->rollback = sync_rollback_new(SYNC_ROLLBACK_QUIET_MS);
    sa->pend = sync_pending_new(MAX_PENDING);
    if (!sa->m || !sa->ring || !sa->hreqs || !sa->known || !sa->restarts || !sa->rollback
        || !sa->pend) {
        log_error("out of memory");
        return -1;
    }
    if (alys_actor_bind(sa->actor, cfg->ep_sync, on_mailbox, sa) != 0) {
        log_error("cannot bind the mailbox %s", cfg->ep_sync);
        return -1;
    }
    if (connect_peer_actor(sa, SYNC_WATCH_PEER_MANAGER, &sa->pm, cfg->ep_peer_manager) != 0
        || connect_peer_actor(sa, SYNC_WATCH_STORAGE, &sa->storage, cfg->ep_storage) != 0
        || connect_peer_actor(sa, SYNC_WATCH_PROCESSOR, &sa->bp, cfg->ep_block_processor) != 0) {
        log_error("cannot connect to the other actors");
        return -1;
    }
    sa->sub = alys_sub_connect(cfg->ep_events, "lifecycle");
    if (!sa->sub)
        return -1;
    zsock_set_subscribe(sa->sub, "storage");
    if (alys_actor_add_reader(sa->actor, sa->sub, on_event, sa) != 0
        || alys_actor_add_timer(sa->actor, TICK_MS, 0, on_tick, sa) < 0
        || alys_actor_add_timer(sa->actor, PROGRESS_MS, 0, on_progress, sa) < 0)
        return -1;
    load_genesis(sa);
    if (sa->have_genesis)
        sa_request_head(sa);
    return 0;
}

static void teardown(sa_t *sa)
{
    sync_pend_t p;
    while (sa->pend && sync_pending_next_expired(sa->pend, UINT64_MAX, &p))
        sa_pend_done(&p);                  /* every client frame */
    for (int w = 0; w < SYNC_WATCH_COUNT; w++)
        zsock_destroy(&sa->mon[w]);
    zsock_destroy(&sa->pm);
    zsock_destroy(&sa->storage);
    zsock_destroy(&sa->bp);
    zsock_destroy(&sa->sub);
    sync_machine_destroy(&sa->m);
    sync_hdr_ring_destroy(&sa->ring);
    sync_hdr_reqs_destroy(&sa->hreqs);
    sync_known_destroy(&sa->known);
    sync_restart_destroy(&sa->restarts);
    sync_rollback_destroy(&sa->rollback);
    sync_pending_destroy(&sa->pend);
    free(sa->expected);
    if (sa->have_genesis)
        alys_genesis_clear(&sa->genesis);
}

int main(int argc, char **argv)
{
    static sa_t sa;                        /* large (hash scratch); zeroed */
    sa.actor = alys_actor_new("sync", argc, argv);
    if (!sa.actor)
        return 2;
    sa.cfg = alys_actor_config(sa.actor);
    sa.metrics = alys_actor_metrics(sa.actor);
    int rc = 1;
    if (setup(&sa) == 0 && alys_actor_ready(sa.actor) == 0)
        rc = alys_actor_run(sa.actor) == 0 ? 0 : 1;
    /* The actor's loop and readers go first: they reference our sockets. */
    alys_actor_destroy(&sa.actor);
    teardown(&sa);
    return rc;
}
