#include "sockmon.h"

#include <stdint.h>
#include <string.h>

zsock_t *sockmon_new(zsock_t *sock, const char *label, int events)
{
    char ep[96];
    snprintf(ep, sizeof ep, "inproc://alys-sockmon-%s-%p", label, (void *) sock);
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

/* Event message (libzmq 4.x, v1): frame 1 = u16 event + u32 value (native
 * byte order), frame 2 = the endpoint or peer address. */
int sockmon_read(zsock_t *mon, char *addr, size_t addrlen)
{
    zmsg_t *msg = zmsg_recv(mon);
    if (!msg)
        return 0;
    int ev = 0;
    zframe_t *head = zmsg_first(msg);
    zframe_t *where = zmsg_next(msg);
    if (head && zframe_size(head) >= 6) {
        uint16_t e;
        memcpy(&e, zframe_data(head), sizeof e);
        ev = e;
    }
    if (addr && addrlen) {
        size_t n = where ? zframe_size(where) : 0;
        if (n >= addrlen)
            n = addrlen - 1;
        if (n)
            memcpy(addr, zframe_data(where), n);
        addr[n] = '\0';
    }
    zmsg_destroy(&msg);
    return ev;
}
