/*  alys-faultproxy: a fault-injecting proxy for the node-to-node protocol.
 *
 *    alys-faultproxy --listen tcp://127.0.0.1:P --upstream alys://KEY@127.0.0.1:Q
 *                    --key FILE [--fault KIND] [--fault-arg N] [--keys FILE]
 *                    [--genesis FILE] [--seed S] [--down-ms MS] [--tag NAME]
 *                    [--upload-kbps N] [--plaintext]
 *
 *  The proxy is a peer with its own key (--key: a node key file, made if
 *  missing; `alysctl key new FILE` makes one ahead and prints its key, which
 *  goes into the syncing node's bootstrap_peers as alys://KEY@listen). It
 *  terminates CURVE on both sides: a CURVE server at --listen with its key
 *  (no ZAP handler: any client key may connect to a test proxy), and for
 *  each client a CURVE client to --upstream with the key in that endpoint.
 *  So every fault kind sees and rewrites plaintext WireMsg frames, and the
 *  Status it forwards names its own key (faultproxy.h). --plaintext: no
 *  CURVE on either side (nodes with [network] plaintext = true).
 *
 *  A ROUTER at --listen takes the syncing node's connection; for every
 *  downstream client a DEALER connects to --upstream (an honest serving
 *  node) with routing id "<client id>~<tag>". Requests go up unchanged, responses come back through
 *  fp_response (faultproxy.c) which decides what misbehaviour to apply.
 *  There is no tc/netem on the test machines: this is how tests get slow,
 *  lossy, stalling, lying and corrupting peers.
 *
 *  --fault defaults to none. --upload-kbps N caps what goes down to each
 *  client at N KiB/s (fp_shape, faultproxy.h), with any kind: every response
 *  of a capped proxy waits in the delayed queue until its client's link is
 *  free, so a client's frames go in order, each no earlier than the cap
 *  allows (plus --fault delay's latency, which does not occupy the link).
 *
 *  A plain zmq_poll loop over a pollset rebuilt every pass (sockets come and
 *  go in disconnect mode; zloop would need care removing them). Delayed
 *  responses wait in a bounded queue (MAX_DELAYED). It is never overrun:
 *  while fewer than MAX_CLIENTS slots are free the upstream sockets are not
 *  polled (a pass reads at most one frame per upstream socket), so responses
 *  wait in ZMQ's queues and then in TCP: backpressure, as on a congested
 *  link, instead of sending early (breaking the cap) or dropping. With a
 *  syncing node's few requests in flight per peer it does not engage in
 *  practice. SIGINT/SIGTERM end it.
 *  Exit codes: 0 on a signal, 1 socket trouble, 2 bad arguments.
 */
#include <czmq.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bus.h"
#include "faultproxy.h"
#include "log.h"
#include "nodeaddr.h"
#include "nodekey.h"
#include "util.h"
#include "version.h"

#define MAX_CLIENTS 64
#define MAX_DELAYED 4096
#define POLL_MAX_MS 50

typedef struct {
    bool used;
    uint8_t id[255];
    size_t len;
    zsock_t *up; /* DEALER -> upstream, same routing id */
    int64_t seen;
} client_t;

typedef struct {
    int64_t due;
    size_t client; /* index; checked against id on delivery */
    uint8_t id[255];
    size_t len;
    zframe_t *frame;
} delayed_t;

typedef struct {
    char tag[FP_TAG_MAX];
    char listen[ALYS_ENDPOINT_MAX];
    char upstream[ALYS_ENDPOINT_MAX]; /* tcp:// */
    uint8_t upstream_key[ALYS_KEY_LEN];
    alys_nodekey_t *key; /* NULL: no key given (plaintext only) */
    bool curve;          /* CURVE on both sides (not --plaintext) */
    uint32_t down_ms;
    fp_t *fp;
    zsock_t *router;
    int64_t down_until; /* 0 = up */
    client_t clients[MAX_CLIENTS];
    delayed_t delayed[MAX_DELAYED];
    size_t n_delayed;
    bool capped;         /* --upload-kbps: every response goes through the queue */
    bool backpressure;   /* upstream not read (queue nearly full), for the log */
    uint64_t bytes_down; /* response bytes sent to clients (a cap's check) */
} proxy_t;

/* ---- arguments --------------------------------------------------------------- */

typedef struct {
    const char *listen, *upstream, *fault, *keys, *genesis, *seed, *tag, *key;
    bool plaintext;
    uint64_t arg;
    uint32_t down_ms;
    uint32_t upload_kbps; /* 0 = uncapped */
} args_t;

static void usage(FILE *out)
{
    fprintf(out,
            "usage: alys-faultproxy --listen tcp://HOST:P --upstream alys://KEY@HOST:Q\n"
            "                       --key FILE [--fault KIND]\n"
            "                       [--fault-arg N] [--keys FILE] [--genesis FILE] [--seed S]\n"
            "                       [--down-ms 2000] [--tag NAME] [--upload-kbps N] [--plaintext]\n"
            "  --key FILE     the proxy's node key (made if missing); --plaintext: no CURVE\n"
            "  --upload-kbps N  send each client at most N KiB/s (1..1000000; default\n"
            "                 uncapped), with any --fault kind: a peer whose upload is the limit\n"
            "kinds: none (default) | delay N(ms) | drop N(1 in N) | stall K(blocks) |\n"
            "       corrupt:<block error> | truncate | lie_height | lie_height_near N |\n"
            "       disconnect N(requests) | wrong_genesis   (see actors/faultproxy/faultproxy.h)\n");
}

static int parse_num(const char *opt, const char *s, uint64_t *out)
{
    char *end = NULL;
    errno = 0;
    unsigned long long v = (s[0] >= '0' && s[0] <= '9') ? strtoull(s, &end, 10) : 0;
    if (!end || *end || errno) {
        fprintf(stderr, "alys-faultproxy: --%s %s: not a non-negative integer\n", opt, s);
        return -1;
    }
    *out = v;
    return 0;
}

static int parse_args(int argc, char **argv, args_t *a)
{
    static const struct option opts[] = {{"listen", required_argument, 0, 'l'},
                                         {"upstream", required_argument, 0, 'u'},
                                         {"fault", required_argument, 0, 'f'},
                                         {"fault-arg", required_argument, 0, 'a'},
                                         {"keys", required_argument, 0, 'k'},
                                         {"genesis", required_argument, 0, 'g'},
                                         {"seed", required_argument, 0, 's'},
                                         {"down-ms", required_argument, 0, 'd'},
                                         {"tag", required_argument, 0, 't'},
                                         {"key", required_argument, 0, 'K'},
                                         {"upload-kbps", required_argument, 0, 'U'},
                                         {"plaintext", no_argument, 0, 'P'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    *a = (args_t){.down_ms = 2000, .fault = "none"};
    uint64_t v;
    int c;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'l': a->listen = optarg; break;
        case 'u': a->upstream = optarg; break;
        case 'f': a->fault = optarg; break;
        case 'k': a->keys = optarg; break;
        case 'g': a->genesis = optarg; break;
        case 's': a->seed = optarg; break;
        case 't': a->tag = optarg; break;
        case 'K': a->key = optarg; break;
        case 'P': a->plaintext = true; break;
        case 'a':
            if (parse_num("fault-arg", optarg, &a->arg) != 0)
                return -1;
            break;
        case 'd':
            if (parse_num("down-ms", optarg, &v) != 0 || v > 600000)
                return -1;
            a->down_ms = (uint32_t) v;
            break;
        case 'U':
            if (parse_num("upload-kbps", optarg, &v) != 0 || v < 1 || v > FP_UPLOAD_KBPS_MAX) {
                fprintf(stderr, "alys-faultproxy: --upload-kbps: 1..%u KiB/s\n",
                        (unsigned) FP_UPLOAD_KBPS_MAX);
                return -1;
            }
            a->upload_kbps = (uint32_t) v;
            break;
        default: usage(stderr); return -1;
        }
    }
    if (optind < argc || !a->listen || !a->upstream || (!a->key && !a->plaintext)) {
        usage(stderr);
        return -1;
    }
    return 0;
}

/* ---- identity ------------------------------------------------------------------ */

/* The proxy's key (--key; NULL with --plaintext), its node id and alys://
 * listen endpoint for the Status it forwards, and the upstream's tcp://
 * address and key. 0, or -1 after saying why. */
static int identity(const args_t *a, alys_nodekey_t **key, fp_config_t *cfg, char *upstream,
                    size_t uplen, uint8_t up_key[ALYS_KEY_LEN])
{
    char err[ALYS_ERR_MAX];
    alys_nodeaddr_t up;
    if (alys_nodeaddr_parse(a->upstream, &up) == 0) {
        memcpy(up_key, up.key, ALYS_KEY_LEN);
        if (alys_nodeaddr_tcp(&up, upstream, uplen) != 0)
            return -1;
    } else if (a->plaintext && strncmp(a->upstream, "tcp://", 6) == 0) {
        snprintf(upstream, uplen, "%s", a->upstream);
    } else {
        fprintf(stderr, "alys-faultproxy: --upstream %s: not alys://KEY@HOST:PORT\n", a->upstream);
        return -1;
    }
    if (!a->key)
        return 0; /* plaintext without a key: Status node ids keep their tag form */
    *key = alys_nodekey_open(a->key, NULL, err, sizeof err);
    if (!*key) {
        fprintf(stderr, "alys-faultproxy: --key: %s\n", err);
        return -1;
    }
    snprintf(cfg->node_id, sizeof cfg->node_id, "%s", alys_nodekey_public_hex(*key));
    if (alys_nodeaddr_from_listen(alys_nodekey_public(*key), a->listen, cfg->listen,
                                  sizeof cfg->listen) != 0) {
        fprintf(stderr, "alys-faultproxy: --listen %s: not tcp://HOST:PORT\n", a->listen);
        alys_nodekey_destroy(key);
        return -1;
    }
    log_info("proxy key %s, endpoint %s", cfg->node_id, cfg->listen);
    return 0;
}

/* ---- keys and genesis --------------------------------------------------------- */

typedef struct {
    alys_genesis_t genesis;
    bool has_genesis;
    alys_forge_keys_t keys;
    bool has_keys;
} material_t;

static int load_material(const args_t *a, material_t *m, fp_config_t *cfg)
{
    char err[256];
    if (a->genesis) {
        if (alys_genesis_load(a->genesis, &m->genesis, err, sizeof err) != 0) {
            fprintf(stderr, "alys-faultproxy: --genesis: %s\n", err);
            return -1;
        }
        m->has_genesis = true;
        cfg->genesis = &m->genesis;
    }
    if (a->seed) {
        /* every key of the chain: the genesis says how many of each */
        if (!m->has_genesis || alys_forge_keys_derive(a->seed, m->genesis.authority_count,
                                                      m->genesis.balance_count, &m->keys) != 0) {
            fprintf(stderr, "alys-faultproxy: --seed needs --genesis (and memory)\n");
            return -1;
        }
        m->has_keys = true;
    } else if (a->keys) {
        if (alys_forge_keys_load(a->keys, &m->keys, err, sizeof err) != 0) {
            fprintf(stderr, "alys-faultproxy: --keys: %s\n", err);
            return -1;
        }
        m->has_keys = true;
    }
    cfg->keys = m->has_keys ? &m->keys : NULL;
    if (fp_check(cfg, err, sizeof err) != 0) {
        fprintf(stderr, "alys-faultproxy: %s\n", err);
        return -1;
    }
    return 0;
}

static void material_clear(material_t *m)
{
    if (m->has_genesis)
        alys_genesis_clear(&m->genesis);
    if (m->has_keys)
        alys_forge_keys_clear(&m->keys);
}

/* ---- sockets ------------------------------------------------------------------- */

static void drop_clients(proxy_t *p)
{
    for (size_t i = 0; i < MAX_CLIENTS; i++) {
        zsock_destroy(&p->clients[i].up);
        p->clients[i].used = false;
    }
}

static int go_up(proxy_t *p)
{
    p->router = zsock_new(ZMQ_ROUTER);
    if (!p->router)
        return -1;
    alys_sock_limits(p->router);
    zsock_set_router_handover(p->router, 1);
    if (p->curve) {
        zsock_set_curve_server(p->router, 1);
        zsock_set_curve_secretkey_bin(p->router, alys_nodekey_secret(p->key));
    }
    if (zsock_bind(p->router, "%s", p->listen) < 0) {
        log_error("cannot bind %s: %s", p->listen, zmq_strerror(zmq_errno()));
        zsock_destroy(&p->router);
        return -1;
    }
    p->down_until = 0;
    return 0;
}

/* Disconnect mode: every connection closes, for down_ms. */
static void go_down(proxy_t *p, int64_t now)
{
    zsock_destroy(&p->router);
    drop_clients(p);
    p->down_until = now + p->down_ms;
    log_info("going down for %u ms (disconnect fault)", p->down_ms);
}

static client_t *client_for(proxy_t *p, const uint8_t *id, size_t len, int64_t now)
{
    client_t *victim = &p->clients[0];
    for (size_t i = 0; i < MAX_CLIENTS; i++) {
        client_t *c = &p->clients[i];
        if (c->used && c->len == len && memcmp(c->id, id, len) == 0) {
            c->seen = now;
            return c;
        }
        if (!c->used || (victim->used && c->seen < victim->seen))
            victim = c;
    }
    zsock_destroy(&victim->up);
    *victim = (client_t){.used = true, .len = len, .seen = now};
    memcpy(victim->id, id, len);
    victim->up = zsock_new(ZMQ_DEALER);
    if (victim->up) {
        alys_sock_limits(victim->up);
        /* Not the client's own id: the client may also be connected to the
         * upstream directly, and a ROUTER with handover gives an id to the
         * newest connection: the direct one would go deaf. */
        char up_id[255];
        snprintf(up_id, sizeof up_id, "%.200s~%s", (const char *) victim->id, p->tag);
        zsock_set_identity(victim->up, up_id);
        zsock_set_reconnect_ivl(victim->up, 100);
        if (p->curve) {
            zsock_set_curve_publickey_bin(victim->up, alys_nodekey_public(p->key));
            zsock_set_curve_secretkey_bin(victim->up, alys_nodekey_secret(p->key));
            zsock_set_curve_serverkey_bin(victim->up, p->upstream_key);
        }
        if (zsock_connect(victim->up, "%s", p->upstream) != 0)
            zsock_destroy(&victim->up);
    }
    return victim;
}

static void send_down(proxy_t *p, const uint8_t *id, size_t len, zframe_t **frame)
{
    zframe_t *who = zframe_new(id, len);
    size_t bytes = *frame ? zframe_size(*frame) : 0;
    if (!p->router || !who || zframe_send(&who, p->router, ZFRAME_MORE | ZFRAME_DONTWAIT) != 0 ||
        zframe_send(frame, p->router, ZFRAME_DONTWAIT) != 0)
        log_debug("response to a client dropped (gone)");
    else
        p->bytes_down += bytes;
    zframe_destroy(&who);
    zframe_destroy(frame);
}

/* ---- traffic ------------------------------------------------------------------- */

static void on_downstream(proxy_t *p, int64_t now)
{
    zmsg_t *msg = zmsg_recv(p->router);
    if (!msg)
        return;
    zframe_t *id = zmsg_first(msg);
    zframe_t *data = zmsg_next(msg);
    if (zmsg_size(msg) == 2 && zframe_size(id) > 0 && zframe_size(id) < 255) {
        fp_out_t out;
        if (fp_request(p->fp, zframe_data(data), zframe_size(data), &out)) {
            log_info("%s", out.note);
            zmsg_destroy(&msg);
            go_down(p, now);
            return;
        }
        client_t *c = client_for(p, zframe_data(id), zframe_size(id), now);
        zframe_t *up = out.bytes ? zframe_new(out.bytes, out.len) : zframe_dup(data);
        free(out.bytes);
        if (c->up && up && zframe_send(&up, c->up, ZFRAME_DONTWAIT) != 0)
            log_debug("request not forwarded (upstream not there)");
        zframe_destroy(&up);
    }
    zmsg_destroy(&msg);
}

static void delay_push(proxy_t *p, const client_t *c, zframe_t **frame, int64_t due)
{
    if (p->n_delayed >= MAX_DELAYED) {
        /* Not reached: run() stops reading upstream before the queue fills.
         * Were it reached, late (or early) is better than lost. */
        log_warn("delayed queue full: a response sent before its time");
        send_down(p, c->id, c->len, frame);
        return;
    }
    delayed_t *d = &p->delayed[p->n_delayed++];
    d->due = due;
    d->len = c->len;
    memcpy(d->id, c->id, c->len);
    d->frame = *frame;
    *frame = NULL;
}

static void on_upstream(proxy_t *p, client_t *c, int64_t now)
{
    zframe_t *frame = zframe_recv(c->up);
    if (!frame)
        return;
    fp_out_t out;
    fp_response(p->fp, c->id, c->len, zframe_data(frame), zframe_size(frame), &out);
    if (out.note[0])
        log_info("%s", out.note);
    if (out.drop) {
        zframe_destroy(&frame);
        free(out.bytes);
        return;
    }
    if (out.bytes) {
        zframe_destroy(&frame);
        frame = zframe_new(out.bytes, out.len);
        free(out.bytes);
    }
    if (!frame)
        return;
    if (p->capped) {
        /* leaves the link when it is free and sent through, then the
         * latency; always queued, so it cannot pass an earlier frame */
        delay_push(p, c, &frame, fp_due(p->fp, c->id, c->len, zframe_size(frame), out.delay_ms, now));
    } else if (out.delay_ms) {
        delay_push(p, c, &frame, now + out.delay_ms);
    } else {
        send_down(p, c->id, c->len, &frame);
    }
}

static void deliver_due(proxy_t *p, int64_t now)
{
    size_t kept = 0;
    for (size_t i = 0; i < p->n_delayed; i++) {
        delayed_t *d = &p->delayed[i];
        if (d->due <= now)
            send_down(p, d->id, d->len, &d->frame);
        else
            p->delayed[kept++] = *d;
    }
    p->n_delayed = kept;
}

static int poll_timeout(const proxy_t *p, int64_t now)
{
    int64_t t = POLL_MAX_MS;
    for (size_t i = 0; i < p->n_delayed; i++)
        if (p->delayed[i].due - now < t)
            t = p->delayed[i].due - now;
    return t < 0 ? 0 : (int) t;
}

/* Backpressure: read upstream only while the queue has room for a frame
 * from every upstream socket (one each per pass), so it never overflows. */
static bool upstream_readable(proxy_t *p)
{
    bool room = p->n_delayed + MAX_CLIENTS <= MAX_DELAYED;
    if (room == p->backpressure) {
        p->backpressure = !room;
        log_info("delayed queue %s: upstream %s", room ? "has room" : "nearly full",
                 room ? "read again" : "not read until it drains");
    }
    return room;
}

static int run(proxy_t *p)
{
    zmq_pollitem_t items[1 + MAX_CLIENTS];
    client_t *owner[1 + MAX_CLIENTS];
    while (!zsys_interrupted) {
        int64_t now = alys_mono_ms();
        if (!p->router && now >= p->down_until && go_up(p) != 0)
            return 1;
        size_t n = 0;
        if (p->router)
            items[n++] = (zmq_pollitem_t){zsock_resolve(p->router), 0, ZMQ_POLLIN, 0};
        bool readable = upstream_readable(p);
        for (size_t i = 0; readable && i < MAX_CLIENTS; i++) {
            if (p->clients[i].used && p->clients[i].up) {
                owner[n] = &p->clients[i];
                items[n++] = (zmq_pollitem_t){zsock_resolve(p->clients[i].up), 0, ZMQ_POLLIN, 0};
            }
        }
        int rc = zmq_poll(items, (int) n, poll_timeout(p, now));
        if (rc < 0 && zmq_errno() != EINTR)
            return 1;
        now = alys_mono_ms();
        for (size_t i = 0; rc > 0 && i < n; i++) {
            if (!(items[i].revents & ZMQ_POLLIN))
                continue;
            if (i == 0 && p->router && items[0].socket == zsock_resolve(p->router)) {
                on_downstream(p, now);
                if (!p->router)
                    break; /* went down: the pollset is stale */
            } else if (owner[i]->used && owner[i]->up) {
                on_upstream(p, owner[i], now);
            }
        }
        deliver_due(p, now);
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (alys_cli_asks_version(argc, argv)) {
        alys_print_version("alys-faultproxy");
        return 0;
    }
    if (alys_cli_asks_help(argc, argv)) {
        usage(stdout);
        return 0;
    }
    args_t a;
    if (parse_args(argc, argv, &a) != 0)
        return 2;
    alys_log_init("faultproxy", "info");
    fp_config_t cfg;
    memset(&cfg, 0, sizeof cfg);
    char err[256];
    if (fp_parse(a.fault, a.arg, &cfg, err, sizeof err) != 0) {
        fprintf(stderr, "alys-faultproxy: %s\n", err);
        return 2;
    }
    const char *port = strrchr(a.listen, ':');
    snprintf(cfg.tag, sizeof cfg.tag, "%s", a.tag ? a.tag : "fp");
    if (!a.tag && port)
        snprintf(cfg.tag, sizeof cfg.tag, "fp%.16s", port + 1);
    snprintf(cfg.listen, sizeof cfg.listen, "%s", a.listen);
    cfg.upload_kbps = a.upload_kbps;
    alys_nodekey_t *key = NULL;
    char upstream[ALYS_ENDPOINT_MAX];
    uint8_t upstream_key[ALYS_KEY_LEN] = {0};
    if (identity(&a, &key, &cfg, upstream, sizeof upstream, upstream_key) != 0)
        return 2;
    material_t m;
    memset(&m, 0, sizeof m);
    if (load_material(&a, &m, &cfg) != 0) {
        material_clear(&m);
        return 2;
    }
    proxy_t *p = calloc(1, sizeof *p);
    int rc = 1;
    if (p && (p->fp = fp_new(&cfg))) {
        snprintf(p->tag, sizeof p->tag, "%s", cfg.tag);
        snprintf(p->listen, sizeof p->listen, "%s", a.listen);
        snprintf(p->upstream, sizeof p->upstream, "%s", upstream);
        memcpy(p->upstream_key, upstream_key, sizeof upstream_key);
        p->key = key;
        p->curve = !a.plaintext;
        p->down_ms = a.down_ms;
        p->capped = cfg.upload_kbps > 0;
        log_info("%s -> %s, fault %s (arg %" PRIu64 "), upload cap %" PRIu32 " KiB/s (0 = none)",
                 a.listen, a.upstream, fp_kind_name(cfg.kind), cfg.arg, cfg.upload_kbps);
        rc = run(p);
        log_info("stopping: %" PRIu64 " responses, %" PRIu64 " altered, %" PRIu64 " bytes down",
                 fp_responses(p->fp), fp_altered(p->fp), p->bytes_down);
    }
    if (p) {
        for (size_t i = 0; i < p->n_delayed; i++)
            zframe_destroy(&p->delayed[i].frame);
        drop_clients(p);
        zsock_destroy(&p->router);
        fp_destroy(&p->fp);
        free(p);
    }
    alys_nodekey_destroy(&key);
    material_clear(&m);
    return rc;
}
