/*  pm_mon.h: ZeroMQ socket monitors for PeerManager's sockets (the peer
 *  DEALERs and the BlockProcessor's): connect/disconnect events read on a
 *  PAIR socket. zmq_socket_monitor behind two small functions until the
 *  shared common/sockmon lands; then these go.
 *
 *  Ownership: pm_mon_new returns a PAIR the caller destroys before the
 *  monitored socket (NULL on failure: the socket is then unmonitored).
 */
#ifndef PM_MON_H
#define PM_MON_H

#include <czmq.h>

/* Monitor sock's ZMQ_EVENT_CONNECTED and ZMQ_EVENT_DISCONNECTED. */
zsock_t *pm_mon_new(zsock_t *sock);
/* Read one event from a monitor: its ZMQ_EVENT_* number, 0 if none. */
int pm_mon_event(zsock_t *mon);

#endif
