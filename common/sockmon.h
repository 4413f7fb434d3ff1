/*  sockmon.h: connection events of one ZeroMQ socket (zmq_socket_monitor),
 *  the one socket monitor of the tree. Used by code that must act on the
 *  events (resend when a restarted peer reconnects, log refused CURVE
 *  handshakes: block_processor, sync, alysctl import) and by the actor
 *  runtime, which republishes them on the event bus (alys_actor_monitor).
 *
 *  libzmq keeps one monitor per socket: a socket watched here must not also
 *  be passed to alys_actor_monitor (which uses sockmon_new itself).
 *
 *  Ownership: sockmon_new returns a PAIR socket the caller polls and frees
 *  with zsock_destroy (before the monitored socket). sockmon_decode does
 *  not take msg.
 */
#ifndef ALYS_SOCKMON_H
#define ALYS_SOCKMON_H

#include <czmq.h>
#include <stddef.h>

/* Watch `events` (a ZMQ_EVENT_* mask) of sock. label names the inproc
 * endpoint for debugging (a process-wide counter makes it unique, so the
 * same label may be used for many sockets). NULL on failure. */
zsock_t *sockmon_new(zsock_t *sock, const char *label, int events);

/* Read one event from mon: returns its ZMQ_EVENT_* number and copies the
 * endpoint or peer address into addr (NUL-terminated, truncated to
 * addrlen - 1; may be NULL); 0 if nothing was read or the message is not
 * an event. */
int sockmon_read(zsock_t *mon, char *addr, size_t addrlen);

/* The same for a message already received (libzmq 4.x event layout:
 * frame 1 = u16 event + u32 value in native byte order, frame 2 = the
 * address). Pure: what sockmon_read does after the receive. */
int sockmon_decode(zmsg_t *msg, char *addr, size_t addrlen);

/* Stable lowercase name of one event ("connected", "handshake_failed_auth",
 * ...), "other" for an event without a name. Used as the kind of the "zmq"
 * events on the bus. */
const char *sockmon_event_name(int event);

#endif
