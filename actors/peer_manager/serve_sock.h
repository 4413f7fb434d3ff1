/*  serve_sock.h: the shell's side of the listen ROUTER (main.c): its
 *  options, and sending answers so that the core learns when the socket
 *  has taken them (the "bytes owed" of pm_inbound.h).
 *
 *  Options: ZMQ_SNDHWM SERVE_SOCK_SNDHWM and ZMQ_RCVHWM SERVE_SOCK_RCVHWM
 *  messages per client (not the bus's 10,000), ROUTER_MANDATORY: a client
 *  whose pipe is full makes a send fail at once with EAGAIN, and the answer
 *  is dropped (never parked). The bytes are bounded by the core's budgets
 *  (pm_inbound.h); the send mark bounds the count of small answers, and is
 *  large enough for a burst a client may pipeline within the rate limit
 *  (its answers leave our loop faster than libzmq's I/O thread writes
 *  them: 16 lost some of a 100-request burst). Requests beyond the receive
 *  mark wait in the client's TCP window, not here.
 *
 *  Bytes owed. An answer is handed to ZeroMQ zero-copy (zmq_msg_init_data)
 *  with a receipt: libzmq calls the free function when it is done with the
 *  bytes (written to the kernel, or dropped with the client's connection),
 *  from its I/O thread. The free function only pushes the receipt onto a
 *  lock-free stack; serve_sock_drain, on the actor's thread, pops them and
 *  hands each to a callback (pm_core_on_client_taken).
 *
 *  Ownership: serve_sock_new binds; serve_sock_destroy(&self) closes the
 *  socket and frees what it can. libzmq may still hold answers then (it
 *  closes sockets in the background): the receipts' shared ledger is
 *  reference-counted and freed by whichever of destroy and the last free
 *  function comes last.
 */
#ifndef SERVE_SOCK_H
#define SERVE_SOCK_H

#include <czmq.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "wire/wire.h"

#define SERVE_SOCK_SNDHWM 512  /* answers queued per client in ZeroMQ */
#define SERVE_SOCK_RCVHWM 16   /* requests queued per client in ZeroMQ */
#define SERVE_SOCK_CONNS  2048 /* connections remembered for serve_sock_drop */

typedef struct serve_sock serve_sock_t;

/* curve_secret: our secret key (ALYS_KEY_LEN bytes; common/nodekey.h) to
 * serve as a CURVE server whose handshakes the ZAP handler at zap_domain
 * decides; NULL = plaintext (tests). Under CURVE a client cannot take over
 * another's routing id (no ROUTER_HANDOVER): the link is the identity.
 * NULL when the endpoint cannot be bound. */
serve_sock_t *serve_sock_new(const char *endpoint, const uint8_t *curve_secret,
                             const char *zap_domain);
void serve_sock_destroy(serve_sock_t **self_p);
zsock_t *serve_sock_zsock(serve_sock_t *self);

/* Send m, packed straight into the buffer handed to ZeroMQ (one copy of
 * an answer of up to 8 MiB, not two), to the client with routing id; tag
 * comes back with the receipt. 0 handed; -1 no such client (or m over the
 * frame limit); -2 its pipe is full. */
int serve_sock_send(serve_sock_t *self, const uint8_t *id, size_t id_len,
                    const alys_wire_msg_t *m, bool tag);

/* One client message: its routing id, remote address (NULL = unknown),
 * the key CURVE proved for its link (ZAP's User-Id; NULL on a plaintext
 * socket), its first data frame (data/len) and how many data frames it
 * had (n_frames, of total bytes together). */
typedef void(serve_sock_msg_fn)(void *arg, const uint8_t *id, size_t id_len, const char *addr,
                                const char *key, const uint8_t *data, size_t len, size_t n_frames,
                                size_t total);
/* Read one message (when the socket is readable) and hand it to fn. The
 * connection it came on (its descriptor, from ZMQ_SRCFD, and its remote
 * address and port) is remembered under the routing id, so that
 * serve_sock_drop can close it. */
void serve_sock_recv(serve_sock_t *self, serve_sock_msg_fn *fn, void *arg);
/* Close the connection of the client with routing id: shutdown(2) of its
 * descriptor, after checking the descriptor still belongs to the same
 * remote address and port (libzmq may have closed and reused it). libzmq
 * then ends the connection and frees what it held for it (receipts come
 * back). 0 closed, -1 not known or no longer the same connection. */
int serve_sock_drop(serve_sock_t *self, const uint8_t *id, size_t id_len);

typedef void(serve_sock_taken_fn)(void *arg, const uint8_t *id, size_t id_len, uint64_t bytes,
                                  bool tag);
/* Every receipt returned since the last call, to fn. Under CURVE each
 * connection's newest receipt is held back until its next one or until the
 * connection is gone (libzmq still holds that answer encrypted: see
 * serve_sock.c). */
void serve_sock_drain(serve_sock_t *self, serve_sock_taken_fn *fn, void *arg);
/* Let go of the receipts held for connections that are gone, or whose
 * socket two sweeps in a row found writable (their next drain gives them).
 * Every 100 ms or so: a getpeername(2) and a poll(2) per holding
 * connection. */
void serve_sock_sweep(serve_sock_t *self);

#endif
