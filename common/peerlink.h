/*  peerlink.h: a client socket's link to a peer, made the one way every
 *  node-to-node client makes it (PeerManager's dialler, alys-loadgen, the
 *  integration tests' clients), so none of them gets CURVE subtly wrong.
 *
 *  alys://KEY@host:port (common/nodeaddr.h) with our key pair: a CURVE
 *  client with KEY as the server key, connected to tcp://host:port; a
 *  server without KEY's secret cannot finish the handshake, so whoever
 *  answers is the peer the endpoint names. Without a key pair (ours NULL),
 *  or any other endpoint (tcp://...): a plaintext link, for nodes running
 *  with [network] plaintext (tests only).
 *
 *  The options apply to the connects that follow, so each connect sets
 *  them anew: one socket, one peer at a time.
 */
#ifndef ALYS_PEERLINK_H
#define ALYS_PEERLINK_H

#include <czmq.h>

#include "nodekey.h"

/* 0 connected (the handshake runs in the background), -1 when the
 * endpoint does not parse or libzmq refuses it. */
int alys_peerlink_connect(zsock_t *sock, const char *endpoint, const alys_nodekey_t *ours);

#endif
