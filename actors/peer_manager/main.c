/*  alys-peer-manager: the PeerManagerActor process, the shell around
 *  pm_core.h: sockets, the loop, the clocks.
 *
 *  Sockets: the mailbox ROUTER (ep_peer_manager: SyncActor's FetchHeaders,
 *  FetchBlocks, RangeVerdict, Penalise, GetPeers from anyone), DEALERs to
 *  StorageActor, BlockProcessorActor (with a monitor: a restart means
 *  resending) and SyncActor, one DEALER per remote peer slot with its
 *  monitor (peer_net.h says why sockets are kept per slot), and the ROUTER
 *  at [network] listen. This file reads the clocks, passes every frame,
 *  reply and socket event to the core, and is the core's port; every
 *  decision is the core's.
 *
 *  Identity and CURVE. The node key (common/nodekey.h, <data_dir>/node.key,
 *  made on first start) is loaded before anything else; an unsafe or
 *  malformed key file is a config error. Every node-to-node socket uses
 *  CURVE unless [network] plaintext (tests only): the listen ROUTER is a
 *  CURVE server whose ZAP handler is the ROUTER `zap` below (bound at
 *  inproc://zeromq.zap.01 before the listen socket, so no handshake is
 *  ever let through unauthenticated; each request is decided by pm_zap.h),
 *  and every frame a client sends carries its proved key as the "User-Id"
 *  property, which is passed to the core as the client's id. Each peer
 *  DEALER is a CURVE client whose server key is the key in the slot's
 *  alys:// endpoint: a server without that key cannot complete the
 *  handshake, so an outbound peer is its endpoint's key.
 *
 *  Exit codes: 0 clean stop, 1 cannot set up sockets, 2 bad arguments/config,
 *  ALYS_EXIT_CONFIG (78) an unusable node key file.
 */
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <unistd.h>

#include "actor.h"
#include "log.h"
#include "nodeaddr.h"
#include "nodekey.h"
#include "pm_conn.h"
#include "pm_core.h"
#include "serve_sock.h"
#include "sockmon.h"
#include "util.h"

#define FAST_TICK_MS 100  /* request deadlines, probes, hand-off retries */
#define HEAD_TICK_MS 500  /* our Status: storage's head */
#define SLOW_TICK_MS 1000 /* score decay, bans, metrics */

typedef struct {
    alys_actor_t *actor;
    const alys_config_t *cfg;
    pm_t *core;
    zsock_t *storage;                  /* DEALER -> StorageActor */
    zsock_t *sync;                     /* DEALER -> SyncActor */
    zsock_t *bp;                       /* DEALER -> BlockProcessorActor */
    zsock_t *bp_mon;                   /* connection events of bp (may be NULL) */
    serve_sock_t *listen;              /* [network] listen (NULL = not serving) */
    zsock_t *zap;                      /* ZAP handler for listen (NULL = plaintext) */
    alys_nodekey_t *key;               /* who we are */
    zsock_t *socks[PM_CONN_MAX];       /* peer slots: made once, kept */
    zsock_t *mons[PM_CONN_MAX];        /* their monitors; NULL = unmonitored */
    char identity[ALYS_NAME_MAX + 16]; /* routing id towards peers */
} shell_t;

static void on_taken(void *arg, const uint8_t *id, size_t id_len, uint64_t bytes, bool range)
{
    pm_core_on_client_taken(arg, id, id_len, bytes, range);
}

/* The clocks, read once per input; answers the listen socket has taken
 * since the last input go to the core first (its budgets, pm_inbound.h). */
static pm_t *core_now(shell_t *sh)
{
    pm_core_clock(sh->core, (uint64_t) alys_now_ms(), alys_mono_ms());
    if (sh->listen)
        serve_sock_drain(sh->listen, on_taken, sh->core);
    return sh->core;
}

/* ---- the port ------------------------------------------------------------------ */

static int port_send(void *ctx, pm_dest_t to, alys_env_t *env)
{
    shell_t *sh = ctx;
    zsock_t *sock = to == PM_TO_SYNC ? sh->sync : to == PM_TO_STORAGE ? sh->storage : sh->bp;
    return sock ? alys_send(sock, env) : -1;
}

static int on_peer(alys_actor_t *actor, zsock_t *sock, void *arg);
static int on_peer_monitor(alys_actor_t *actor, zsock_t *sock, void *arg);

static zsock_t *make_peer_socket(shell_t *sh, int slot)
{
    zsock_t *sock = zsock_new(ZMQ_DEALER);
    if (!sock)
        return NULL;
    alys_sock_limits(sock);
    zsock_set_identity(sock, sh->identity);
    if (!sh->cfg->plaintext) {
        zsock_set_curve_publickey_bin(sock, alys_nodekey_public(sh->key));
        zsock_set_curve_secretkey_bin(sock, alys_nodekey_secret(sh->key));
    }
    /* Nothing queues for a peer that is not there: a send fails at once
     * (pm_conn_send_failed), instead of a burst of stale requests reaching
     * the peer when it comes back. */
    zsock_set_immediate(sock, 1);
    zsock_set_reconnect_ivl(sock, 100);
    zsock_set_reconnect_ivl_max(sock, 5000);
    if (alys_actor_add_reader(sh->actor, sock, on_peer, sh) != 0) {
        zsock_destroy(&sock);
        return NULL;
    }
    zsock_t *mon = sockmon_new(sock, "pm-peer", ZMQ_EVENT_CONNECTED | ZMQ_EVENT_DISCONNECTED);
    /* libzmq keeps one monitor per socket: never also alys_actor_monitor. */
    if (mon && alys_actor_add_reader(sh->actor, mon, on_peer_monitor, sh) != 0)
        zsock_destroy(&mon);
    if (!mon)
        log_warn("peer socket %d unmonitored: a dropped link shows only as silence", slot);
    sh->mons[slot] = mon;
    return sock;
}

/* The tcp:// address of an alys:// endpoint, and its key. */
static int dial_address(const char *endpoint, alys_nodeaddr_t *a, char *tcp, size_t tcplen)
{
    return alys_nodeaddr_parse(endpoint, a) == 0 ? alys_nodeaddr_tcp(a, tcp, tcplen) : -1;
}

static int port_peer_dial(void *ctx, int slot, const char *endpoint)
{
    shell_t *sh = ctx;
    alys_nodeaddr_t a;
    char tcp[ALYS_ENDPOINT_MAX];
    if (dial_address(endpoint, &a, tcp, sizeof tcp) != 0)
        return PM_DIAL_REFUSED;
    if (!sh->socks[slot] && !(sh->socks[slot] = make_peer_socket(sh, slot)))
        return PM_DIAL_NO_SOCKET;
    /* The server key applies to the connects that follow: this one. */
    if (!sh->cfg->plaintext)
        zsock_set_curve_serverkey_bin(sh->socks[slot], a.key);
    return zsock_connect(sh->socks[slot], "%s", tcp) == 0 ? PM_DIAL_OK : PM_DIAL_REFUSED;
}

static void port_peer_hangup(void *ctx, int slot, const char *endpoint)
{
    shell_t *sh = ctx;
    alys_nodeaddr_t a;
    char tcp[ALYS_ENDPOINT_MAX];
    if (sh->socks[slot] && dial_address(endpoint, &a, tcp, sizeof tcp) == 0)
        zsock_disconnect(sh->socks[slot], "%s", tcp);
}

static int port_peer_send(void *ctx, int slot, const alys_wire_msg_t *m)
{
    shell_t *sh = ctx;
    zframe_t *f = alys_wire_encode(m);
    if (!f || !sh->socks[slot]) {
        zframe_destroy(&f);
        return -1;
    }
    int rc = zframe_send(&f, sh->socks[slot], ZFRAME_DONTWAIT);
    zframe_destroy(&f);
    return rc;
}

static void port_client_drop(void *ctx, const uint8_t *id, size_t id_len)
{
    shell_t *sh = ctx;
    if (sh->listen && serve_sock_drop(sh->listen, id, id_len) != 0)
        log_debug("a stalled client's connection is already gone");
}

static int port_client_send(void *ctx, const uint8_t *id, size_t id_len, const alys_wire_msg_t *m,
                            bool range)
{
    shell_t *sh = ctx;
    int sent = sh->listen ? serve_sock_send(sh->listen, id, id_len, m, range) : -1;
    return sent == 0 ? 0 : sent == -2 ? PM_SEND_FULL : PM_SEND_GONE;
}

static int port_mailbox_reply(void *ctx, const uint8_t *route, size_t route_len, uint64_t corr_id,
                              alys_env_t *rep)
{
    shell_t *sh = ctx;
    zframe_t *who = zframe_new(route, route_len);
    if (!who)
        return -1;
    alys_env_t req = ALYS__BUS__ENVELOPE__INIT;
    req.corr_id = corr_id;
    int rc = alys_reply(alys_actor_mailbox(sh->actor), who, &req, rep);
    zframe_destroy(&who);
    return rc;
}

/* ---- peers --------------------------------------------------------------------- */

static int slot_of(zsock_t *const *socks, zsock_t *sock)
{
    for (int i = 0; i < PM_CONN_MAX; i++)
        if (socks[i] == sock)
            return i;
    return -1;
}

static int on_peer(alys_actor_t *actor, zsock_t *sock, void *arg)
{
    (void) actor;
    shell_t *sh = arg;
    zmsg_t *msg = zmsg_recv(sock);
    if (!msg)
        return 0;
    zframe_t *f = zmsg_first(msg);
    /* A multi-part message is not read, only priced: by all its bytes. */
    size_t len = zmsg_size(msg) == 1 ? zframe_size(f) : zmsg_content_size(msg);
    pm_core_on_peer_frame(core_now(sh), slot_of(sh->socks, sock), zframe_data(f), len, zmsg_size(msg));
    zmsg_destroy(&msg);
    return 0;
}

static int on_peer_monitor(alys_actor_t *actor, zsock_t *sock, void *arg)
{
    (void) actor;
    shell_t *sh = arg;
    int ev = sockmon_read(sock, NULL, 0);
    if (ev == ZMQ_EVENT_DISCONNECTED || ev == ZMQ_EVENT_CONNECTED)
        pm_core_on_peer_link(core_now(sh), slot_of(sh->mons, sock), ev == ZMQ_EVENT_CONNECTED);
    return 0;
}

static void on_client_msg(void *arg, const uint8_t *id, size_t id_len, const char *addr,
                          const char *key, const uint8_t *data, size_t len, size_t n_frames,
                          size_t total)
{
    shell_t *sh = arg;
    /* ZAP gives every CURVE link its key; a message without a valid one is
     * taken as nobody's, not as a plaintext client's. */
    if (sh->zap && !alys_key_is_hex(key))
        return;
    if (n_frames == 1)
        pm_core_on_client_frame(core_now(sh), id, id_len, addr, key, data, len);
    else /* one WireMsg per frame: not read, only priced */
        pm_core_on_client_parts(core_now(sh), id, id_len, key, total);
}

static int on_client(alys_actor_t *actor, zsock_t *sock, void *arg)
{
    (void) actor;
    (void) sock;
    shell_t *sh = arg;
    serve_sock_recv(sh->listen, on_client_msg, sh);
    return 0;
}

/* One ZAP request (RFC 27): [id][empty] "1.0" request_id domain address
 * identity mechanism credentials...; the answer [id][empty] "1.0"
 * request_id status text user_id metadata. */
static int on_zap(alys_actor_t *actor, zsock_t *sock, void *arg)
{
    (void) actor;
    shell_t *sh = arg;
    zmsg_t *msg = zmsg_recv(sock);
    if (!msg)
        return 0;
    zframe_t *f[9] = {0};
    size_t n = 0;
    for (zframe_t *x = zmsg_first(msg); x && n < 9; x = zmsg_next(msg))
        f[n++] = x;
    if (n < 8 || zframe_size(f[1]) != 0 || !zframe_streq(f[2], "1.0")) {
        zmsg_destroy(&msg); /* not a ZAP request: nothing to answer */
        return 0;
    }
    char *domain = zframe_strdup(f[4]), *mechanism = zframe_strdup(f[7]),
         *address = zframe_strdup(f[5]);
    zframe_t *cred = n > 8 ? f[8] : NULL;
    pm_zap_t z = pm_core_zap(core_now(sh), domain, mechanism, cred ? zframe_data(cred) : NULL,
                             cred ? zframe_size(cred) : 0);
    if (!z.allow)
        log_info("peer link from %s refused: %s%s%s", address ? address : "?", z.text,
                 z.user_id[0] ? " " : "", z.user_id);
    zmsg_t *rep = zmsg_new();
    if (rep && zmsg_addmem(rep, zframe_data(f[0]), zframe_size(f[0])) == 0 &&
        zmsg_addmem(rep, "", 0) == 0 && zmsg_addstr(rep, "1.0") == 0 &&
        zmsg_addmem(rep, zframe_data(f[3]), zframe_size(f[3])) == 0 &&
        zmsg_addstr(rep, z.status) == 0 && zmsg_addstr(rep, z.text) == 0 &&
        zmsg_addstr(rep, z.allow ? z.user_id : "") == 0 && zmsg_addmem(rep, "", 0) == 0 &&
        zmsg_send(&rep, sock) != 0)
        log_warn("cannot answer a ZAP request: a peer's handshake will stall");
    zmsg_destroy(&rep);
    zstr_free(&domain);
    zstr_free(&mechanism);
    zstr_free(&address);
    zmsg_destroy(&msg);
    return 0;
}

/* ---- the other actors ------------------------------------------------------------ */

static int on_mailbox(alys_actor_t *actor, zframe_t *from, alys_env_t *env, void *arg)
{
    shell_t *sh = arg;
    core_now(sh);
    if (env->body_case == ALYS__BUS__ENVELOPE__BODY_MEMPOOL) {
        pm_core_on_mempool(sh->core, zframe_data(from), zframe_size(from), env);
        return 0;
    }
    if (env->body_case != ALYS__BUS__ENVELOPE__BODY_PEER) {
        if (env->corr_id && !env->reply)
            alys_reply_error(alys_actor_mailbox(actor), from, env, ALYS_ERR_BAD_REQUEST,
                             "peer_manager does not serve %s", alys_env_body_name(env));
        return 0;
    }
    Alys__Peer__PeerMsg *m = env->peer;
    switch (m->msg_case) {
    case ALYS__PEER__PEER_MSG__MSG_FETCH_HEADERS:
    case ALYS__PEER__PEER_MSG__MSG_FETCH_BLOCKS:
    case ALYS__PEER__PEER_MSG__MSG_RANGE_VERDICT:
    case ALYS__PEER__PEER_MSG__MSG_PENALISE:
    case ALYS__PEER__PEER_MSG__MSG_ANNOUNCE_BLOCK: pm_core_on_peer_msg(sh->core, m); break;
    case ALYS__PEER__PEER_MSG__MSG_GET_PEERS:
    case ALYS__PEER__PEER_MSG__MSG_GET_IN_FLIGHT:
        pm_core_on_mailbox_request(sh->core, zframe_data(from), zframe_size(from), env);
        break;
    default:
        if (env->corr_id && !env->reply)
            alys_reply_error(alys_actor_mailbox(actor), from, env, ALYS_ERR_BAD_REQUEST,
                             "peer_manager does not serve this peer message");
        break;
    }
    return 0;
}

/* StorageActor's and BlockProcessor's replies. */
static int on_reply(alys_actor_t *actor, zsock_t *sock, void *arg)
{
    (void) actor;
    shell_t *sh = arg;
    alys_env_t *env = NULL;
    int rc = alys_recv(sock, &env);
    if (rc != 0)
        return rc < 0 ? -1 : 0;
    if (sock == sh->storage)
        pm_core_on_storage(core_now(sh), env);
    else
        pm_core_on_processor(core_now(sh), env);
    alys_env_free(&env);
    return 0;
}

/* The processor restarted: what it held is gone (the core resends). */
static int on_bp_monitor(alys_actor_t *actor, zsock_t *sock, void *arg)
{
    (void) actor;
    shell_t *sh = arg;
    int ev = sockmon_read(sock, NULL, 0);
    if (ev == ZMQ_EVENT_DISCONNECTED || ev == ZMQ_EVENT_CONNECTED)
        pm_core_on_processor_link(core_now(sh), ev == ZMQ_EVENT_CONNECTED);
    return 0;
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
    shell_t *sh = arg;
    if (sh->listen)
        serve_sock_sweep(sh->listen);
    pm_core_tick_fast(core_now(sh));
    return 0;
}

static int on_head(alys_actor_t *actor, void *arg)
{
    (void) actor;
    pm_core_tick_head(core_now(arg));
    return 0;
}

static int on_slow(alys_actor_t *actor, void *arg)
{
    (void) actor;
    pm_core_tick_slow(core_now(arg));
    return 0;
}

/* ---- set-up ------------------------------------------------------------------- */

/* "<node_name>/<8 hex>": unique per process, see peer_net.h. */
static void make_identity(shell_t *sh)
{
    uint32_t r = 0;
    if (getrandom(&r, sizeof r, 0) != (ssize_t) sizeof r)
        r = (uint32_t) getpid() ^ (uint32_t) alys_mono_us();
    snprintf(sh->identity, sizeof sh->identity, "%s/%08x", sh->cfg->node_name, r);
}

/* Every inbound connection is a descriptor (libzmq's) until we close it,
 * and at EMFILE libzmq's listener spins on accept while our own peer
 * sockets cannot be made: the soft limit goes up to what the inbound
 * clients, our peer slots and our own sockets need, within the hard limit
 * (as bitcoind does). */
static void raise_fd_limit(const alys_config_t *cfg)
{
    struct rlimit rl;
    /* Strangers may connect faster than refused ones are closed: room for
     * a few thousand at once, whatever the slots. */
    rlim_t want = (rlim_t) cfg->max_inbound_peers * 4 + PM_CONN_MAX * 2 + 4096;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= want)
        return;
    rlim_t was = rl.rlim_cur;
    rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > want ? want : rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur < want)
        log_warn("open files limited to %llu (want %llu for %u inbound clients): raise the hard "
                 "limit (LimitNOFILE=)",
                 (unsigned long long) (rl.rlim_cur > was ? rl.rlim_cur : was),
                 (unsigned long long) want, cfg->max_inbound_peers);
}

/* <data_dir>/node.key, made on first start (common/nodekey.h says why any
 * of the supervisor, alysctl and this process may be the one to make it). */
static int load_key(shell_t *sh)
{
    char path[ALYS_PATH_MAX + 16], err[ALYS_ERR_MAX];
    bool created = false;
    if (alys_nodekey_path(sh->cfg->data_dir, path, sizeof path) != 0 ||
        !(sh->key = alys_nodekey_open(path, &created, err, sizeof err))) {
        log_error("config error: %s", sh->key ? "" : err);
        return -1;
    }
    log_info("node key %s%s (%s)", alys_nodekey_public_hex(sh->key), created ? " created" : "", path);
    return 0;
}

static zsock_t *connect_to(shell_t *sh, const char *endpoint, alys_reader_fn *fn)
{
    zsock_t *sock = alys_dealer_connect(endpoint, alys_actor_name(sh->actor));
    if (sock && alys_actor_add_reader(sh->actor, sock, fn, sh) != 0)
        zsock_destroy(&sock);
    return sock;
}

/* The ZAP handler, bound before any CURVE server socket exists: libzmq
 * lets a handshake through unauthenticated when no handler is bound. */
static int start_zap(shell_t *sh)
{
    sh->zap = zsock_new(ZMQ_ROUTER);
    if (!sh->zap || zsock_bind(sh->zap, PM_ZAP_ENDPOINT) != 0 ||
        alys_actor_add_reader(sh->actor, sh->zap, on_zap, sh) != 0) {
        log_error("cannot start the ZAP handler at %s", PM_ZAP_ENDPOINT);
        return -1;
    }
    return 0;
}

static int serve(shell_t *sh)
{
    const alys_config_t *cfg = sh->cfg;
    if (!cfg->listen[0])
        return 0; /* not serving */
    if (!cfg->plaintext && start_zap(sh) != 0)
        return -1;
    sh->listen = serve_sock_new(cfg->listen, cfg->plaintext ? NULL : alys_nodekey_secret(sh->key),
                                PM_ZAP_DOMAIN);
    zsock_t *sock = sh->listen ? serve_sock_zsock(sh->listen) : NULL;
    if (!sock || alys_actor_add_reader(sh->actor, sock, on_client, sh) != 0) {
        log_error("cannot serve peers at %s", cfg->listen);
        return -1;
    }
    alys_actor_monitor(sh->actor, sock, "peers");
    log_info("serving peers at %s (%s; rate limit %u/s, %u requests and %u MiB owed per client, "
             "%u MiB owed in all; %u inbound clients, %u per address)",
             cfg->listen,
             cfg->plaintext ? "PLAINTEXT: [network] plaintext is for tests only" : "CURVE",
             cfg->serve_rate_limit, cfg->serve_max_requests, cfg->serve_client_mb,
             cfg->serve_memory_mb, cfg->max_inbound_peers, cfg->max_inbound_per_address);
    return 0;
}

static int setup(shell_t *sh)
{
    sh->storage = connect_to(sh, sh->cfg->ep_storage, on_reply);
    sh->sync = connect_to(sh, sh->cfg->ep_sync, on_sync);
    sh->bp = connect_to(sh, sh->cfg->ep_block_processor, on_reply);
    if (!sh->storage || !sh->sync || !sh->bp)
        return -1;
    sh->bp_mon = sockmon_new(sh->bp, "pm-bp", ZMQ_EVENT_CONNECTED | ZMQ_EVENT_DISCONNECTED);
    if (sh->bp_mon && alys_actor_add_reader(sh->actor, sh->bp_mon, on_bp_monitor, sh) != 0)
        zsock_destroy(&sh->bp_mon);
    if (!sh->bp_mon)
        log_warn("no connection events from the block processor socket: resends rely on timeouts");
    if (serve(sh) != 0 || alys_actor_bind(sh->actor, sh->cfg->ep_peer_manager, on_mailbox, sh) != 0)
        return -1;
    if (alys_actor_add_timer(sh->actor, FAST_TICK_MS, 0, on_fast, sh) < 0 ||
        alys_actor_add_timer(sh->actor, HEAD_TICK_MS, 0, on_head, sh) < 0 ||
        alys_actor_add_timer(sh->actor, SLOW_TICK_MS, 0, on_slow, sh) < 0)
        return -1;
    pm_core_start(core_now(sh));
    return 0;
}

static void drop_socket(shell_t *sh, zsock_t **sock_p)
{
    if (*sock_p) {
        alys_actor_remove_reader(sh->actor, *sock_p);
        zsock_destroy(sock_p);
    }
}

static void teardown(shell_t *sh)
{
    pm_core_destroy(&sh->core); /* first: it may not send through the port now */
    for (size_t i = 0; i < PM_CONN_MAX; i++) {
        drop_socket(sh, &sh->mons[i]);
        drop_socket(sh, &sh->socks[i]);
    }
    if (sh->listen) {
        alys_actor_remove_reader(sh->actor, serve_sock_zsock(sh->listen));
        serve_sock_destroy(&sh->listen);
    }
    drop_socket(sh, &sh->zap);
    drop_socket(sh, &sh->bp_mon);
    drop_socket(sh, &sh->storage);
    drop_socket(sh, &sh->sync);
    drop_socket(sh, &sh->bp);
}

int main(int argc, char **argv)
{
    shell_t sh;
    memset(&sh, 0, sizeof sh);
    /* Answers and storage replies are up to 8 MiB each: keep such buffers
     * mmapped, so that freeing one gives its memory back to the system.
     * glibc would otherwise raise its mmap threshold after the first free
     * and serve later ones from a heap that does not shrink: the serving
     * budgets (pm_inbound.h) bound what is owed, this keeps RSS near it. */
    sh.actor = alys_actor_new("peer_manager", argc, argv);
    if (!sh.actor)
        return 2;
    /* After the arguments: --help and --version print nothing else. A
     * sanitizer's allocator refuses the option: said, not an error. */
    if (mallopt(M_MMAP_THRESHOLD, 1024 * 1024) != 1)
        log_info("mallopt(M_MMAP_THRESHOLD) refused (a sanitizer's allocator?): large buffers "
                 "may stay in the heap");
    sh.cfg = alys_actor_config(sh.actor);
    raise_fd_limit(sh.cfg);
    make_identity(&sh);
    if (load_key(&sh) != 0) {
        alys_actor_destroy(&sh.actor);
        return ALYS_EXIT_CONFIG;
    }
    pm_port_t port = {.ctx = &sh,
                      .send = port_send,
                      .peer_dial = port_peer_dial,
                      .peer_hangup = port_peer_hangup,
                      .peer_send = port_peer_send,
                      .client_send = port_client_send,
                      .mailbox_reply = port_mailbox_reply,
                      .client_drop = port_client_drop};
    char err[ALYS_ERR_MAX];
    int rc = 0;
    sh.core = pm_core_new(sh.cfg, alys_actor_metrics(sh.actor), &port, err, sizeof err);
    if (sh.core && pm_core_set_key(sh.core, alys_nodekey_public_hex(sh.key)) != 0)
        pm_core_destroy(&sh.core);
    if (!sh.core) {
        log_error("config: %s", err);
        rc = 2;
    } else if (setup(&sh) != 0) {
        log_error("cannot set up the peer manager's sockets");
        rc = 1;
    }
    if (rc == 0) {
        alys_actor_ready(sh.actor);
        log_info("peer manager up: key %s, %u bootstrap peers, strategy %s, routing id %s",
                 alys_nodekey_public_hex(sh.key), sh.cfg->bootstrap_peer_count,
                 sh.cfg->peer_selection, sh.identity);
        alys_actor_run(sh.actor);
    }
    teardown(&sh);
    alys_nodekey_destroy(&sh.key);
    alys_actor_destroy(&sh.actor);
    return rc;
}
