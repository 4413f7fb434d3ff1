/*  alys-peer-manager: the PeerManagerActor process.
 *
 *  Sockets: the mailbox ROUTER (ep_peer_manager: SyncActor's FetchHeaders,
 *  FetchBlocks, RangeVerdict, Penalise, GetPeers from anyone), DEALERs to
 *  StorageActor, BlockProcessorActor and SyncActor, one DEALER per remote
 *  peer (peer_net.c) and the ROUTER at [network] listen (peer_serve.c).
 *  This file wires them to the modules and runs the timers; the decisions
 *  live in the pure cores and the shell's layers are listed in pm.h.
 *
 *  Exit codes: 0 clean stop, 1 cannot set up sockets, 2 bad arguments/config.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "log.h"
#include "pm.h"
#include "util.h"

#define FAST_TICK_MS 100  /* request deadlines, probes, hand-off retries */
#define HEAD_TICK_MS 500  /* our Status: storage's head */
#define SLOW_TICK_MS 1000 /* score decay, bans, metrics */

/* ---- mailbox ------------------------------------------------------------------ */

static void reply_peers(pm_t *pm, zframe_t *from, const alys_env_t *req)
{
    Alys__Peer__PeerSet *set = pm_peerset_new(pm, true);
    if (!set) {
        alys_reply_error(alys_actor_mailbox(pm->actor), from, req, ALYS_ERR_INTERNAL, "out of memory");
        return;
    }
    Alys__Peer__PeerMsg msg = ALYS__PEER__PEER_MSG__INIT;
    msg.msg_case = ALYS__PEER__PEER_MSG__MSG_PEER_SET;
    msg.peer_set = set;
    alys_env_t rep = ALYS__BUS__ENVELOPE__INIT;
    rep.body_case = ALYS__BUS__ENVELOPE__BODY_PEER;
    rep.peer = &msg;
    if (alys_reply(alys_actor_mailbox(pm->actor), from, req, &rep) != 0)
        log_debug("cannot answer GetPeers (requester gone)");
    pm_peerset_free(&set);
}

static int on_mailbox(alys_actor_t *actor, zframe_t *from, alys_env_t *env, void *arg)
{
    pm_t *pm = arg;
    if (env->body_case != ALYS__BUS__ENVELOPE__BODY_PEER) {
        if (env->corr_id && !env->reply)
            alys_reply_error(alys_actor_mailbox(actor), from, env, ALYS_ERR_BAD_REQUEST,
                             "peer_manager does not serve %s", alys_env_body_name(env));
        return 0;
    }
    Alys__Peer__PeerMsg *m = env->peer;
    switch (m->msg_case) {
    case ALYS__PEER__PEER_MSG__MSG_FETCH_HEADERS: pn_fetch_headers(pm, m->fetch_headers); break;
    case ALYS__PEER__PEER_MSG__MSG_FETCH_BLOCKS: pn_fetch_blocks(pm, m->fetch_blocks); break;
    case ALYS__PEER__PEER_MSG__MSG_RANGE_VERDICT: pm_range_verdict(pm, m->range_verdict); break;
    case ALYS__PEER__PEER_MSG__MSG_PENALISE: pm_penalise(pm, m->penalise); break;
    case ALYS__PEER__PEER_MSG__MSG_GET_PEERS: reply_peers(pm, from, env); break;
    default:
        if (env->corr_id && !env->reply)
            alys_reply_error(alys_actor_mailbox(actor), from, env, ALYS_ERR_BAD_REQUEST,
                             "peer_manager does not serve this peer message");
        break;
    }
    pn_flush_closes(pm); /* what verdicts and penalties earned */
    return 0;
}

/* BatchProcessed: blame may close connections. */
static int on_bp(alys_actor_t *actor, zsock_t *sock, void *arg)
{
    int rc = pm_bp_on_reply(actor, sock, arg);
    pn_flush_closes(arg);
    return rc;
}

/* SyncActor sends us nothing on this socket; keep the pipe drained. */
static int on_sync(alys_actor_t *actor, zsock_t *sock, void *arg)
{
    (void) actor;
    (void) arg;
    zmsg_t *msg = zmsg_recv(sock);
    zmsg_destroy(&msg);
    return 0;
}

/* ---- timers ------------------------------------------------------------------- */

static int on_fast(alys_actor_t *actor, void *arg)
{
    (void) actor;
    pm_t *pm = arg;
    pm_storage_tick(pm);
    pn_tick(pm);
    ps_tick(pm);
    pm_deliver_tick(pm);
    pm_push_peerset(pm, false);
    return 0;
}

static int on_head(alys_actor_t *actor, void *arg)
{
    (void) actor;
    pm_deliver_refresh_head(arg);
    return 0;
}

static int on_slow(alys_actor_t *actor, void *arg)
{
    (void) actor;
    pm_t *pm = arg;
    if (peer_table_tick(pm->table, pm_now()) > 0)
        pm->peerset_dirty = true; /* a ban ran out */
    pm_bans_tick(pm);
    return 0;
}

/* ---- set-up ------------------------------------------------------------------- */

/* "<node_name>/<8 hex>": unique per process, see peer_net.h. */
static void make_identity(pm_t *pm)
{
    uint32_t r = 0;
    if (getrandom(&r, sizeof r, 0) != (ssize_t) sizeof r)
        r = (uint32_t) getpid() ^ (uint32_t) alys_mono_us();
    snprintf(pm->identity, sizeof pm->identity, "%s/%08x", pm->cfg->node_name, r);
}

static zsock_t *connect_to(pm_t *pm, const char *endpoint, alys_reader_fn *fn)
{
    zsock_t *sock = alys_dealer_connect(endpoint, alys_actor_name(pm->actor));
    if (sock && alys_actor_add_reader(pm->actor, sock, fn, pm) != 0)
        zsock_destroy(&sock);
    return sock;
}

static int make_table(pm_t *pm)
{
    peer_table_config_t tc;
    char err[ALYS_ERR_MAX];
    if (peer_table_config_from_alys(&tc, pm->cfg, err, sizeof err) != 0) {
        log_error("config: %s", err);
        return -1;
    }
    pm->table = peer_table_new(&tc);
    pm->reorder = reorder_new(NULL);
    pm->store = pm_storage_new();
    return pm->table && pm->reorder && pm->store ? 0 : -1;
}

static int setup(pm_t *pm)
{
    pm->storage = connect_to(pm, pm->cfg->ep_storage, pm_storage_on_reply);
    pm->sync = connect_to(pm, pm->cfg->ep_sync, on_sync);
    pm->bp = connect_to(pm, pm->cfg->ep_block_processor, on_bp);
    if (!pm->storage || !pm->sync || !pm->bp)
        return -1;
    pm->bp_mon = pm_bp_monitor_new(pm->bp);
    if (pm->bp_mon && alys_actor_add_reader(pm->actor, pm->bp_mon, pm_bp_on_monitor, pm) != 0)
        zsock_destroy(&pm->bp_mon);
    if (!pm->bp_mon)
        log_warn("no connection events from the block processor socket: resends rely on timeouts");
    pm->net = pn_new(pm);
    pm->serve = ps_new(pm);
    if (!pm->net || !pm->serve)
        return -1;
    if (alys_actor_bind(pm->actor, pm->cfg->ep_peer_manager, on_mailbox, pm) != 0)
        return -1;
    if (alys_actor_add_timer(pm->actor, FAST_TICK_MS, 0, on_fast, pm) < 0 ||
        alys_actor_add_timer(pm->actor, HEAD_TICK_MS, 0, on_head, pm) < 0 ||
        alys_actor_add_timer(pm->actor, SLOW_TICK_MS, 0, on_slow, pm) < 0)
        return -1;
    /* Counters exist from the start, so a dashboard shows 0, not "no data". */
    alys_metric_add(alys_actor_metrics(pm->actor), "alys_peer_bans_total", NULL, "Peers banned", 0);
    /* Ask at once: peers are dialled only after both answers. */
    pm_deliver_refresh_head(pm);
    pm_bans_tick(pm);
    return 0;
}

static void teardown(pm_t *pm)
{
    ps_destroy(&pm->serve);
    pn_destroy(&pm->net);
    if (pm->bp_mon) {
        alys_actor_remove_reader(pm->actor, pm->bp_mon);
        zsock_destroy(&pm->bp_mon);
    }
    zsock_t **socks[] = {&pm->storage, &pm->sync, &pm->bp};
    for (size_t i = 0; i < 3; i++) {
        if (*socks[i]) {
            alys_actor_remove_reader(pm->actor, *socks[i]);
            zsock_destroy(socks[i]);
        }
    }
    pm_storage_destroy(&pm->store);
    reorder_destroy(&pm->reorder);
    peer_table_destroy(&pm->table);
}

int main(int argc, char **argv)
{
    pm_t pm;
    memset(&pm, 0, sizeof pm);
    pm.actor = alys_actor_new("peer_manager", argc, argv);
    if (!pm.actor)
        return 2;
    pm.cfg = alys_actor_config(pm.actor);
    make_identity(&pm);
    int rc = 0;
    if (make_table(&pm) != 0)
        rc = 2;
    else if (setup(&pm) != 0) {
        log_error("cannot set up the peer manager's sockets");
        rc = 1;
    }
    if (rc == 0) {
        alys_actor_ready(pm.actor);
        log_info("peer manager up: %u bootstrap peers, strategy %s, routing id %s",
                 pm.cfg->bootstrap_peer_count, pm.cfg->peer_selection, pm.identity);
        alys_actor_run(pm.actor);
    }
    teardown(&pm);
    alys_actor_destroy(&pm.actor);
    return rc;
}
