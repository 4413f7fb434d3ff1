/*  sockmon.c: see sockmon.h. */
#include "sockmon.h"

#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

/* inproc endpoints live in the ZeroMQ context, shared by every socket of
 * the process: a counter keeps two monitors (same label, or a socket
 * allocated where a destroyed one was) from colliding. It comes first so
 * that truncating a long label cannot drop it. */
static atomic_uint s_next_monitor;

zsock_t *sockmon_new(zsock_t *sock, const char *label, int events)
{
    char ep[96];
    unsigned id = atomic_fetch_add(&s_next_monitor, 1);
    snprintf(ep, sizeof ep, "inproc://alys-sockmon-%u-%s", id, label ? label : "");
    if (zmq_socket_monitor(zsock_resolve(sock), ep, events) != 0)
        return NULL;
    zsock_t *pair = zsock_new(ZMQ_PAIR);
    if (!pair)
        return NULL;
    zsock_set_linger(pair, 0);
    if (zsock_connect(pair, "%s", ep) != 0) {
        zsock_destroy(&pair);
        return NULL;
    }
    return pair;
}

int sockmon_decode(zmsg_t *msg, char *addr, size_t addrlen)
{
    if (addr && addrlen)
        addr[0] = '\0';
    if (!msg)
        return 0;
    zframe_t *head = zmsg_first(msg);
    zframe_t *where = zmsg_next(msg);
    if (!head || zframe_size(head) < 6)
        return 0;
    uint16_t e;
    memcpy(&e, zframe_data(head), sizeof e);
    if (addr && addrlen && where) {
        size_t n = zframe_size(where);
        if (n >= addrlen)
            n = addrlen - 1;
        memcpy(addr, zframe_data(where), n);
        addr[n] = '\0';
    }
    return e;
}

int sockmon_read(zsock_t *mon, char *addr, size_t addrlen)
{
    zmsg_t *msg = zmsg_recv(mon);
    int ev = sockmon_decode(msg, addr, addrlen);
    zmsg_destroy(&msg);
    return ev;
}

const char *sockmon_event_name(int event)
{
    switch (event) {
    case ZMQ_EVENT_CONNECTED: return "connected";
    case ZMQ_EVENT_CONNECT_DELAYED: return "connect_delayed";
    case ZMQ_EVENT_CONNECT_RETRIED: return "connect_retried";
    case ZMQ_EVENT_LISTENING: return "listening";
    case ZMQ_EVENT_BIND_FAILED: return "bind_failed";
    case ZMQ_EVENT_ACCEPTED: return "accepted";
    case ZMQ_EVENT_ACCEPT_FAILED: return "accept_failed";
    case ZMQ_EVENT_CLOSED: return "closed";
    case ZMQ_EVENT_DISCONNECTED: return "disconnected";
    case ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL: return "handshake_failed";
    case ZMQ_EVENT_HANDSHAKE_SUCCEEDED: return "handshake_succeeded";
    case ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL: return "handshake_failed_protocol";
    case ZMQ_EVENT_HANDSHAKE_FAILED_AUTH: return "handshake_failed_auth";
    default: return "other";
    }
}
