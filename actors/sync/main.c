/*  alys-sync: SyncActor. The shell: sockets, the loop, the timers and the
 *  clocks. It only receives, hands over and sends: every decision is the
 *  core's (sync_core.h: the machine and the pure modules around it).
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
 *    socket monitors of the 3 DEALERs  connected / disconnected: restarts
 *
 *  Events (topic "sync"): state_changed ("From -> To: reason"),
 *  can_produce_blocks ("true"/"false"), and every second progress
 *  ("state=... height=... target=... bps=... eta=... peers=a/t ...").
 *  Metrics: alys_sync_* and alys_checkpoint* (sync_act.c).
 *
 *  Clock: read here only, at the start of every callback (shell_clock),
 *  and handed to the core; nothing else reads a clock.
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
#include "sync_core.h"
#include "util.h"

#define TICK_MS          100
#define PROGRESS_MS      1000
#define GENESIS_RETRY_MS 2000
#define READ_BURST       64

typedef struct {
    alys_actor_t *actor;
    const alys_config_t *cfg;
    sync_core_t *core;
    zsock_t *to[3];                 /* DEALERs, by sync_dest_t */
    zsock_t *mon[SYNC_WATCH_COUNT]; /* their monitors, by sync_watch_t */
    zsock_t *sub;
    int64_t last_genesis_try;
} shell_t;

static const char *const dest_name[] = {"peer_manager", "storage", "block_processor"};

/* ---------------------------------------------------------------- clock */

/* The one place the SyncActor reads a clock: at the start of every
 * callback; the inputs it makes all see this moment. */
static void shell_clock(shell_t *sh)
{
    sync_core_clock(sh->core, (uint64_t) alys_mono_ms(), (uint64_t) alys_now_ms());
}

/* ---------------------------------------------------------------- the core's port */

static int port_send(void *ctx, sync_dest_t to, alys_env_t *env)
{
    shell_t *sh = ctx;
    if (alys_send(sh->to[to], env) == 0)
        return 0;
    log_debug("cannot send %s to %s: %s", alys_env_body_name(env), dest_name[to],
              zmq_strerror(zmq_errno()));
    return -1;
}

static int port_reply(void *ctx, zframe_t *client, alys_env_t *env)
{
    shell_t *sh = ctx;
    if (alys_send_to(alys_actor_mailbox(sh->actor), client, env) == 0)
        return 0;
    log_debug("reply to a client failed: %s", zmq_strerror(zmq_errno()));
    return -1;
}

static void port_reply_error(void *ctx, zframe_t *client, const alys_env_t *req, uint32_t code,
                             const char *text)
{
    shell_t *sh = ctx;
    alys_reply_error(alys_actor_mailbox(sh->actor), client, req, code, "%s", text);
}

static void port_event(void *ctx, const char *kind, const char *text)
{
    shell_t *sh = ctx;
    alys_actor_event(sh->actor, "sync", kind, "%s", text);
}

static uint64_t port_next_corr(void *ctx)
{
    (void) ctx;
    return alys_next_corr_id();
}

/* ---------------------------------------------------------------- readers */

static int on_mailbox(alys_actor_t *actor, zframe_t *from, alys_env_t *env, void *arg)
{
    (void) actor;
    shell_t *sh = arg;
    shell_clock(sh);
    sync_core_on_message(sh->core, from, env);
    return 0;
}

static int on_dealer(alys_actor_t *actor, zsock_t *sock, void *arg)
{
    (void) actor;
    shell_t *sh = arg;
    for (int i = 0; i < READ_BURST && (zsock_events(sock) & ZMQ_POLLIN); i++) {
        alys_env_t *env = NULL;
        int rc = alys_recv(sock, &env);
        if (rc < 0)
            return 0;
        if (rc == 0) {
            shell_clock(sh);
            sync_core_on_message(sh->core, NULL, env);
            alys_env_free(&env);
        }
    }
    return 0;
}

static int on_sockmon(alys_actor_t *actor, zsock_t *sock, void *arg)
{
    (void) actor;
    shell_t *sh = arg;
    sync_watch_t w = 0;
    while (w < SYNC_WATCH_COUNT && sh->mon[w] != sock)
        w++;
    int ev = sockmon_read(sock, NULL, 0);
    if (w == SYNC_WATCH_COUNT || (ev != ZMQ_EVENT_CONNECTED && ev != ZMQ_EVENT_DISCONNECTED))
        return 0;
    shell_clock(sh);
    sync_core_on_socket(sh->core, w, ev == ZMQ_EVENT_CONNECTED);
    return 0;
}

static int on_event(alys_actor_t *actor, zsock_t *sock, void *arg)
{
    (void) actor;
    shell_t *sh = arg;
    for (int i = 0; i < READ_BURST && (zsock_events(sock) & ZMQ_POLLIN); i++) {
        char topic[32];
        alys_env_t *env = NULL;
        int rc = alys_recv_topic(sock, topic, sizeof topic, &env);
        if (rc < 0)
            return 0;
        if (rc != 0)
            continue;
        shell_clock(sh);
        if (env->body_case == ALYS__BUS__ENVELOPE__BODY_EVENT && env->event)
            sync_core_on_event(sh->core, topic, env->event);
        alys_env_free(&env);
    }
    return 0;
}

/* ---------------------------------------------------------------- timers */

/* The genesis file, until it loads (it may appear after we start). */
static void load_genesis(shell_t *sh)
{
    int64_t now = alys_mono_ms();
    if (sync_core_has_genesis(sh->core) ||
        (sh->last_genesis_try && now - sh->last_genesis_try < GENESIS_RETRY_MS))
        return;
    sh->last_genesis_try = now;
    if (!*sh->cfg->genesis_file) {
        log_error("no genesis_file in [node]: cannot verify headers; waiting");
        return;
    }
    alys_genesis_t g;
    char err[256];
    /* Light: SyncActor verifies headers (hash, authorities, slots) and never
     * needs the genesis state root, which costs a lattice vector per
     * genesis account before Ready. */
    if (alys_genesis_load_light(sh->cfg->genesis_file, &g, err, sizeof err) != 0) {
        log_error("cannot load the genesis: %s", err);
        return;
    }
    char hex[2 * ALYS_HASH_LEN + 1];
    alys_hex(g.hash, ALYS_HASH_LEN, hex);
    log_info("genesis %s (%s, %u authorities, slot %" PRIu64 " ms)", hex, g.chain_id,
             g.authority_count, g.slot_duration_ms);
    sync_core_set_genesis(sh->core, &g); /* the core owns it now */
}

static int on_tick(alys_actor_t *actor, void *arg)
{
    (void) actor;
    shell_t *sh = arg;
    shell_clock(sh);
    load_genesis(sh);
    sync_core_tick(sh->core);
    return 0;
}

static int on_progress(alys_actor_t *actor, void *arg)
{
    (void) actor;
    shell_t *sh = arg;
    shell_clock(sh);
    sync_core_progress(sh->core);
    return 0;
}

/* ---------------------------------------------------------------- setup */

static int connect_peer_actor(shell_t *sh, sync_watch_t w, sync_dest_t to, const char *endpoint)
{
    sh->to[to] = alys_dealer_connect(endpoint, alys_actor_name(sh->actor));
    if (!sh->to[to])
        return -1;
    sh->mon[w] = sockmon_new(sh->to[to], sync_restart_name(w),
                             ZMQ_EVENT_CONNECTED | ZMQ_EVENT_DISCONNECTED);
    if (alys_actor_add_reader(sh->actor, sh->to[to], on_dealer, sh) != 0)
        return -1;
    if (sh->mon[w] && alys_actor_add_reader(sh->actor, sh->mon[w], on_sockmon, sh) != 0)
        return -1;
    return 0;
}

static sync_core_t *make_core(shell_t *sh, alys_metrics_t *metrics)
{
    sync_port_t port = {.ctx = sh,
                        .send = port_send,
                        .reply = port_reply,
                        .reply_error = port_reply_error,
                        .event = port_event,
                        .next_corr = port_next_corr};
    uint64_t now_unix = (uint64_t) alys_now_ms();
    /* Unique per incarnation: a restarted actor never matches a stale id. */
    uint64_t instance = (now_unix << 16) | ((uint64_t) getpid() & 0xffff);
    const char *hold = getenv("ALYS_SYNC_START_PAUSED");
    return sync_core_new(sh->cfg, metrics, &port, (uint64_t) alys_mono_ms(), now_unix, instance,
                         hold && strcmp(hold, "1") == 0);
}

static int setup(shell_t *sh)
{
    const alys_config_t *cfg = sh->cfg;
    sh->core = make_core(sh, alys_actor_metrics(sh->actor));
    if (!sh->core) {
        log_error("out of memory");
        return -1;
    }
    if (alys_actor_bind(sh->actor, cfg->ep_sync, on_mailbox, sh) != 0) {
        log_error("cannot bind the mailbox %s", cfg->ep_sync);
        return -1;
    }
    if (connect_peer_actor(sh, SYNC_WATCH_PEER_MANAGER, SYNC_TO_PEER_MANAGER,
                           cfg->ep_peer_manager) != 0 ||
        connect_peer_actor(sh, SYNC_WATCH_STORAGE, SYNC_TO_STORAGE, cfg->ep_storage) != 0 ||
        connect_peer_actor(sh, SYNC_WATCH_PROCESSOR, SYNC_TO_PROCESSOR, cfg->ep_block_processor) != 0) {
        log_error("cannot connect to the other actors");
        return -1;
    }
    sh->sub = alys_sub_connect(cfg->ep_events, "lifecycle");
    if (!sh->sub)
        return -1;
    zsock_set_subscribe(sh->sub, "storage");
    if (alys_actor_add_reader(sh->actor, sh->sub, on_event, sh) != 0 ||
        alys_actor_add_timer(sh->actor, TICK_MS, 0, on_tick, sh) < 0 ||
        alys_actor_add_timer(sh->actor, PROGRESS_MS, 0, on_progress, sh) < 0)
        return -1;
    shell_clock(sh);
    load_genesis(sh);
    return 0;
}

static void teardown(shell_t *sh)
{
    for (int w = 0; w < SYNC_WATCH_COUNT; w++)
        zsock_destroy(&sh->mon[w]);
    for (int d = 0; d < 3; d++)
        zsock_destroy(&sh->to[d]);
    zsock_destroy(&sh->sub);
    sync_core_destroy(&sh->core);
}

int main(int argc, char **argv)
{
    shell_t sh = {0};
    sh.actor = alys_actor_new("sync", argc, argv);
    if (!sh.actor)
        return 2;
    sh.cfg = alys_actor_config(sh.actor);
    int rc = 1;
    if (setup(&sh) == 0 && alys_actor_ready(sh.actor) == 0)
        rc = alys_actor_run(sh.actor) == 0 ? 0 : 1;
    /* The actor's loop and readers go first: they reference our sockets. */
    alys_actor_destroy(&sh.actor);
    teardown(&sh);
    return rc;
}
