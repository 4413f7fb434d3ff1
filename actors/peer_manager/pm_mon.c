/*  pm_mon.c: see pm_mon.h. */
#include "pm_mon.h"

#include <stdio.h>
#include <string.h>

zsock_t *pm_mon_new(zsock_t *sock)
{
    char ep[64];
    snprintf(ep, sizeof ep, "inproc://pm-monitor-%p", (void *) sock);
    int events = ZMQ_EVENT_CONNECTED | ZMQ_EVENT_DISCONNECTED;
    if (zmq_socket_monitor(zsock_resolve(sock), ep, events) != 0)
        return NULL;
    zsock_t *pair = zsock_new(ZMQ_PAIR);
    if (!pair)
        return NULL;
    zsock_set_linger(pair, 0);
    if (zsock_connect(pair, "%s", ep) != 0)
        zsock_destroy(&pair);
    return pair;
}

/* libzmq 4.x: frame 1 = u16 event + u32 value, frame 2 = address. */
int pm_mon_event(zsock_t *mon)
{
    zmsg_t *msg = zmsg_recv(mon);
    if (!msg)
        return 0;
    int ev = 0;
    zframe_t *head = zmsg_first(msg);
    if (head && zframe_size(head) >= 6) {
        uint16_t e;
        memcpy(&e, zframe_data(head), sizeof e);
        ev = e;
    }
    zmsg_destroy(&msg);
    return ev;
}
