#include "bus.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

static char s_name[64] = "anon";
static alys_bus_stats_t s_stats;
static uint64_t s_corr_id;

void alys_bus_set_name(const char *name)
{
    snprintf(s_name, sizeof s_name, "%s", name ? name : "anon");
}

const char *alys_bus_name(void)
{
    return s_name;
}
const alys_bus_stats_t *alys_bus_stats(void)
{
    return &s_stats;
}

uint64_t alys_next_corr_id(void)
{
    /* Start from the pid shifted up so a restarted process does not reuse the
     * ids its predecessor had in flight (late replies to those are ignored). */
    if (s_corr_id == 0)
        s_corr_id = ((uint64_t) getpid() << 32) | ((uint64_t) alys_mono_ms() & 0xffff0000u);
    return ++s_corr_id;
}

void alys_corr_id_set_base(uint64_t base)
{
    s_corr_id = base;
}

/* ---- budgeted allocator: a frame may not unpack into more than its budget */

typedef struct {
    size_t budget;
    size_t used;
    bool exhausted;
} budget_t;

static void *budget_alloc(void *data, size_t size)
{
    budget_t *b = data;
    if (size > b->budget - b->used) {
        b->exhausted = true;
        return NULL;
    }
    b->used += size;
    return malloc(size);
}

static void plain_free(void *data, void *ptr)
{
    (void) data;
    free(ptr);
}

static ProtobufCAllocator s_free_allocator = {.alloc = NULL, .free = plain_free, .allocator_data = NULL};

ProtobufCMessage *alys_pb_unpack_bounded(const ProtobufCMessageDescriptor *desc,
                                         const uint8_t *data, size_t len, const char *what,
                                         bool *oversize, char *err, size_t errlen)
{
    *oversize = false;
    if (len > ALYS_MAX_MSG_BYTES) {
        *oversize = true;
        snprintf(err, errlen, "frame of %zu bytes exceeds the limit of %d", len, ALYS_MAX_MSG_BYTES);
        return NULL;
    }
    /* Unpacked structures are larger than their wire form (pointers, padding,
     * empty sub-messages); 16x plus a floor covers every legitimate message. */
    budget_t budget = {.budget = len * 16 + 64 * 1024, .used = 0, .exhausted = false};
    ProtobufCAllocator alloc = {.alloc = budget_alloc, .free = plain_free, .allocator_data = &budget};
    ProtobufCMessage *msg = protobuf_c_message_unpack(desc, &alloc, len, data);
    if (!msg) {
        *oversize = budget.exhausted;
        if (budget.exhausted)
            snprintf(err, errlen, "frame of %zu bytes unpacks beyond its memory budget", len);
        else
            snprintf(err, errlen, "frame of %zu bytes is not a valid %s", len, what);
    }
    return msg;
}

void alys_pb_free(ProtobufCMessage *msg)
{
    if (msg)
        protobuf_c_message_free_unpacked(msg, &s_free_allocator);
}

alys_env_t *alys_env_decode(const uint8_t *data, size_t len, char *err, size_t errlen)
{
    s_stats.received++;
    bool oversize = false;
    alys_env_t *env = (alys_env_t *) alys_pb_unpack_bounded(&alys__bus__envelope__descriptor, data,
                                                            len, "envelope", &oversize, err, errlen);
    if (!env) {
        if (oversize)
            s_stats.oversize++;
        else
            s_stats.malformed++;
        return NULL;
    }
    if (env->body_case == ALYS__BUS__ENVELOPE__BODY__NOT_SET) {
        s_stats.malformed++;
        snprintf(err, errlen, "envelope from '%s' has no body", env->sender ? env->sender : "?");
        alys_pb_free(&env->base);
        return NULL;
    }
    return env;
}

void alys_env_free(alys_env_t **env_p)
{
    if (env_p && *env_p) {
        alys_pb_free(&(*env_p)->base);
        *env_p = NULL;
    }
}

/* The caller's envelope is left as it was: a decoded one is freed by
 * protobuf-c later, which must not find our static name in it. */
zframe_t *alys_env_encode(alys_env_t *env)
{
    char *sender = env->sender;
    if (!sender || !*sender)
        env->sender = s_name;
    size_t len = alys__bus__envelope__get_packed_size(env);
    zframe_t *frame = NULL;
    if (len > ALYS_MAX_MSG_BYTES)
        log_error("refusing to send a %zu-byte %s envelope (limit %d)", len,
                  alys_env_body_name(env), ALYS_MAX_MSG_BYTES);
    else if ((frame = zframe_new(NULL, len)) != NULL)
        alys__bus__envelope__pack(env, zframe_data(frame));
    env->sender = sender;
    return frame;
}

const char *alys_env_body_name(const alys_env_t *env)
{
    switch (env->body_case) {
    case ALYS__BUS__ENVELOPE__BODY_ERROR: return "error";
    case ALYS__BUS__ENVELOPE__BODY_CONTROL: return "control";
    case ALYS__BUS__ENVELOPE__BODY_EVENT: return "event";
    case ALYS__BUS__ENVELOPE__BODY_METRIC: return "metric";
    case ALYS__BUS__ENVELOPE__BODY_STORAGE: return "storage";
    case ALYS__BUS__ENVELOPE__BODY_PROCESSOR: return "processor";
    case ALYS__BUS__ENVELOPE__BODY_PEER: return "peer";
    case ALYS__BUS__ENVELOPE__BODY_SYNC: return "sync";
    case ALYS__BUS__ENVELOPE__BODY_PRODUCER: return "producer";
    case ALYS__BUS__ENVELOPE__BODY_MEMPOOL: return "mempool";
    default: return "unknown";
    }
}

/* ---- sockets */

void alys_sock_limits(zsock_t *sock)
{
    zsock_set_maxmsgsize(sock, ALYS_MAX_MSG_BYTES);
    /* Never block process exit on undelivered messages: every request has a
     * deadline and is retried, so dropping at close loses nothing. */
    zsock_set_linger(sock, 0);
    zsock_set_sndhwm(sock, 10000);
    zsock_set_rcvhwm(sock, 10000);
}

void alys_unlink_ipc(const char *endpoint)
{
    const char *path = alys_ipc_path(endpoint);
    if (path)
        unlink(path);
}

zsock_t *alys_router_bind(const char *endpoint)
{
    zsock_t *sock = zsock_new(ZMQ_ROUTER);
    if (!sock)
        return NULL;
    alys_sock_limits(sock);
    /* A restarted peer reconnects with the same routing id: let the new
     * connection take it over instead of being refused as a duplicate. */
    zsock_set_router_handover(sock, 1);
    /* Unroutable replies (peer gone) must fail visibly, not vanish. */
    zsock_set_router_mandatory(sock, 1);
    alys_unlink_ipc(endpoint);
    if (zsock_bind(sock, "%s", endpoint) < 0) {
        log_error("cannot bind %s: %s", endpoint, zmq_strerror(zmq_errno()));
        zsock_destroy(&sock);
        return NULL;
    }
    return sock;
}

/* Connect a configured socket; on failure log, destroy it and return NULL.
 * Reconnect fast after a peer restarts; back off to 1 s when it stays away. */
static zsock_t *connect_or_drop(zsock_t *sock, const char *endpoint)
{
    zsock_set_reconnect_ivl(sock, 10);
    zsock_set_reconnect_ivl_max(sock, 1000);
    if (zsock_connect(sock, "%s", endpoint) < 0) {
        log_error("cannot connect %s: %s", endpoint, zmq_strerror(zmq_errno()));
        zsock_destroy(&sock);
        return NULL;
    }
    return sock;
}

zsock_t *alys_dealer_connect(const char *endpoint, const char *identity)
{
    zsock_t *sock = zsock_new(ZMQ_DEALER);
    if (!sock)
        return NULL;
    alys_sock_limits(sock);
    if (identity)
        zsock_set_identity(sock, identity);
    return connect_or_drop(sock, endpoint);
}

zsock_t *alys_pub_connect(const char *endpoint)
{
    zsock_t *sock = zsock_new(ZMQ_PUB);
    if (!sock)
        return NULL;
    alys_sock_limits(sock);
    return connect_or_drop(sock, endpoint);
}

zsock_t *alys_sub_connect(const char *endpoint, const char *topic)
{
    zsock_t *sock = zsock_new(ZMQ_SUB);
    if (!sock)
        return NULL;
    alys_sock_limits(sock);
    zsock_set_subscribe(sock, topic ? topic : "");
    return connect_or_drop(sock, endpoint);
}

/* ---- send */

int alys_send(zsock_t *dealer, alys_env_t *env)
{
    zframe_t *frame = alys_env_encode(env);
    if (!frame)
        return -1;
    return zframe_send(&frame, dealer, ZFRAME_DONTWAIT);
}

int alys_send_to(zsock_t *router, zframe_t *identity, alys_env_t *env)
{
    zframe_t *frame = alys_env_encode(env);
    if (!frame)
        return -1;
    zframe_t *id = zframe_dup(identity);
    if (!id || zframe_send(&id, router, ZFRAME_MORE | ZFRAME_DONTWAIT) != 0) {
        zframe_destroy(&id);
        zframe_destroy(&frame);
        return -1;
    }
    return zframe_send(&frame, router, ZFRAME_DONTWAIT);
}

int alys_send_to_name(zsock_t *router, const char *identity, alys_env_t *env)
{
    zframe_t *id = zframe_new(identity, strlen(identity));
    if (!id)
        return -1;
    int rc = alys_send_to(router, id, env);
    zframe_destroy(&id);
    return rc;
}

int alys_publish(zsock_t *pub, const char *topic, alys_env_t *env)
{
    zframe_t *frame = alys_env_encode(env);
    if (!frame)
        return -1;
    if (zstr_sendm(pub, topic) != 0) {
        zframe_destroy(&frame);
        return -1;
    }
    return zframe_send(&frame, pub, ZFRAME_DONTWAIT);
}

int alys_reply(zsock_t *router, zframe_t *identity, const alys_env_t *req, alys_env_t *rep)
{
    rep->corr_id = req->corr_id;
    rep->reply = true;
    return alys_send_to(router, identity, rep);
}

int alys_reply_error(zsock_t *router, zframe_t *identity, const alys_env_t *req, uint32_t code,
                     const char *fmt, ...)
{
    char text[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    Alys__Bus__Error error = ALYS__BUS__ERROR__INIT;
    error.code = code;
    error.message = text;
    alys_env_t rep = ALYS__BUS__ENVELOPE__INIT;
    rep.body_case = ALYS__BUS__ENVELOPE__BODY_ERROR;
    rep.error = &error;
    return alys_reply(router, identity, req, &rep);
}

/* ---- receive */

static int decode_frame(zframe_t *frame, alys_env_t **env, const char *from)
{
    char err[256];
    *env = alys_env_decode(zframe_data(frame), zframe_size(frame), err, sizeof err);
    if (!*env) {
        log_warn("dropped message from %s: %s", from, err);
        return 1;
    }
    return 0;
}

int alys_recv(zsock_t *dealer, alys_env_t **env)
{
    *env = NULL;
    zmsg_t *msg = zmsg_recv(dealer);
    if (!msg)
        return -1;
    int rc = 1;
    if (zmsg_size(msg) != 1) {
        s_stats.bad_framing++;
        log_warn("dropped message with %zu frames (want 1)", zmsg_size(msg));
    } else {
        zframe_t *frame = zmsg_first(msg);
        rc = decode_frame(frame, env, "peer");
    }
    zmsg_destroy(&msg);
    return rc;
}

int alys_recv_from(zsock_t *router, zframe_t **identity, alys_env_t **env)
{
    *env = NULL;
    *identity = NULL;
    zmsg_t *msg = zmsg_recv(router);
    if (!msg)
        return -1;
    int rc = 1;
    if (zmsg_size(msg) != 2) {
        s_stats.bad_framing++;
        log_warn("dropped message with %zu frames (want identity + envelope)", zmsg_size(msg));
    } else {
        zframe_t *id = zmsg_pop(msg);
        zframe_t *frame = zmsg_first(msg);
        char from[80];
        snprintf(from, sizeof from, "'%.*s'", (int) (zframe_size(id) > 64 ? 64 : zframe_size(id)),
                 (const char *) zframe_data(id));
        rc = decode_frame(frame, env, from);
        if (rc == 0)
            *identity = id;
        else
            zframe_destroy(&id);
    }
    zmsg_destroy(&msg);
    return rc;
}

int alys_recv_topic(zsock_t *sub, char *topic, size_t topiclen, alys_env_t **env)
{
    *env = NULL;
    zmsg_t *msg = zmsg_recv(sub);
    if (!msg)
        return -1;
    int rc = 1;
    if (zmsg_size(msg) != 2) {
        s_stats.bad_framing++;
        log_warn("dropped event with %zu frames (want topic + envelope)", zmsg_size(msg));
    } else {
        zframe_t *t = zmsg_first(msg);
        size_t n = zframe_size(t) < topiclen - 1 ? zframe_size(t) : topiclen - 1;
        memcpy(topic, zframe_data(t), n);
        topic[n] = '\0';
        rc = decode_frame(zmsg_next(msg), env, "event bus");
    }
    zmsg_destroy(&msg);
    return rc;
}
