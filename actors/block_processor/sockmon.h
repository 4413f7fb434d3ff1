/*  sockmon.h: connection events of one ZeroMQ socket, for code that must
 *  act on them (not only publish them, as alys_actor_monitor does): resend
 *  when a restarted peer reconnects, log refused CURVE handshakes.
 *
 *  libzmq keeps one monitor per socket: do not also pass the socket to
 *  alys_actor_monitor.
 *
 *  Ownership: sockmon_new returns a PAIR socket the caller polls and frees
 *  with zsock_destroy (before the monitored socket).
 */
#ifndef ALYS_SOCKMON_H
#define ALYS_SOCKMON_H

#include <czmq.h>
#include <stddef.h>

/* Watch `events` (ZMQ_EVENT_* mask) of sock. label makes the inproc
 * endpoint unique within the process. NULL on failure. */
zsock_t *sockmon_new(zsock_t *sock, const char *label, int events);

/* Read one event: returns its ZMQ_EVENT_* number and copies the peer
 * address into addr (may be NULL); 0 if the message is not an event. */
int sockmon_read(zsock_t *mon, char *addr, size_t addrlen);

#endif
