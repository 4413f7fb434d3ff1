/*  bus.h: the message bus every process shares.
 *
 *  Every actor-to-actor message is one alys.bus.Envelope (proto/bus.proto)
 *  in one ZeroMQ frame. Routing:
 *    - each actor binds a ROUTER mailbox; peers connect a DEALER with a fixed
 *      routing id (their actor name) and send [envelope]; the ROUTER sees
 *      [identity][envelope] and replies to that identity;
 *    - events and metrics go out on a PUB connected to the supervisor's XSUB
 *      (events_in) as [topic][envelope]; tools SUB to the supervisor's XPUB.
 *
 *  Sizes are bounded three times before anything is allocated for them:
 *  ZMQ_MAXMSGSIZE on every socket (libzmq drops the peer on over-size frames),
 *  a frame-length check here, and a budgeted protobuf-c allocator so a small
 *  frame cannot unpack into a huge structure. Bad frames are dropped, logged
 *  with the reason and counted (alys_bus_stats); they never crash the receiver.
 *
 *  Ownership: alys_env_decode returns an envelope the caller frees with
 *  alys_env_free(&env). Envelopes to send are built on the stack by the caller
 *  (protobuf-c INIT macros) and encoded here; nothing is retained.
 */
#ifndef ALYS_BUS_H
#define ALYS_BUS_H

#include <czmq.h>
#include <stdbool.h>
#include <stdint.h>

#include "bus.pb-c.h"

#define ALYS_MAX_MSG_BYTES (8 * 1024 * 1024) /* one frame, any socket */
#define ALYS_MAX_FRAMES    4                 /* frames per message */

enum {
    ALYS_ERR_BAD_REQUEST = 1,
    ALYS_ERR_TIMEOUT = 2,
    ALYS_ERR_UNAVAILABLE = 3,
    ALYS_ERR_INTERNAL = 4,
    ALYS_ERR_BUSY = 5,
    ALYS_ERR_NOT_FOUND = 6,
    ALYS_ERR_INVALID = 7,
};

typedef Alys__Bus__Envelope alys_env_t;

typedef struct {
    uint64_t received;
    uint64_t malformed;   /* does not unpack */
    uint64_t oversize;    /* over ALYS_MAX_MSG_BYTES or the unpack budget */
    uint64_t bad_framing; /* wrong number of frames */
} alys_bus_stats_t;

/* Process-wide sender name written into every envelope sent. */
void alys_bus_set_name(const char *name);
const char *alys_bus_name(void);
const alys_bus_stats_t *alys_bus_stats(void);

/* Unpack any protobuf message from a frame with the bus's bounds: the frame
 * at most ALYS_MAX_MSG_BYTES, and the unpacked structure at most 16x the
 * frame plus 64 KiB (so a small frame cannot inflate into a huge one).
 * NULL on error with the reason in err ("what" names the message kind).
 * Free the result with alys_pb_free. Shared by the bus and the wire protocol. */
ProtobufCMessage *alys_pb_unpack_bounded(const ProtobufCMessageDescriptor *desc,
                                         const uint8_t *data, size_t len, const char *what,
                                         bool *oversize, char *err, size_t errlen);
void alys_pb_free(ProtobufCMessage *msg);

/* Decode with bounds. NULL on error, with the reason in err. */
alys_env_t *alys_env_decode(const uint8_t *data, size_t len, char *err, size_t errlen);
void alys_env_free(alys_env_t **env_p);
/* Encode into a new frame (caller owns it). Fills sender if empty. */
zframe_t *alys_env_encode(alys_env_t *env);
/* Name of the body for logs: "control.ping", "storage", ... */
const char *alys_env_body_name(const alys_env_t *env);

/* Sockets with the project's options (max message size, linger, handover). */
zsock_t *alys_router_bind(const char *endpoint);
zsock_t *alys_dealer_connect(const char *endpoint, const char *identity);
zsock_t *alys_pub_connect(const char *endpoint);
zsock_t *alys_sub_connect(const char *endpoint, const char *topic);
/* Apply the options to a socket made elsewhere. */
void alys_sock_limits(zsock_t *sock);
/* Remove a stale ipc socket file before binding (a crashed actor leaves one). */
void alys_unlink_ipc(const char *endpoint);

/* Send; 0 or -1. The envelope is encoded, not retained. */
int alys_send(zsock_t *dealer, alys_env_t *env);
int alys_send_to(zsock_t *router, zframe_t *identity, alys_env_t *env);
int alys_send_to_name(zsock_t *router, const char *identity, alys_env_t *env);
int alys_publish(zsock_t *pub, const char *topic, alys_env_t *env);
/* Reply helpers: copy corr_id, set reply=true. */
int alys_reply(zsock_t *router, zframe_t *identity, const alys_env_t *req, alys_env_t *rep);
int alys_reply_error(zsock_t *router, zframe_t *identity, const alys_env_t *req, uint32_t code,
                     const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* Receive one message. Bad messages are dropped, logged and counted; then
 * these return 1 ("nothing usable") so loops go on. 0 = *env set, -1 = the
 * socket failed or was interrupted. */
int alys_recv(zsock_t *dealer, alys_env_t **env);
int alys_recv_from(zsock_t *router, zframe_t **identity, alys_env_t **env);
int alys_recv_topic(zsock_t *sub, char *topic, size_t topiclen, alys_env_t **env);

/* Correlation ids: unique per process, never 0. */
uint64_t alys_next_corr_id(void);
/* Ids continue from base (0: from the pid again). For alys-sim, whose runs
 * must not depend on the pid or the clock; a process never calls it. */
void alys_corr_id_set_base(uint64_t base);

#endif
