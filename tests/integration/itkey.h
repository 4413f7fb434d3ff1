/*  itkey.h: node keys for the C integration tests (a peer is its key,
 *  common/nodekey.h): a node's alys:// endpoint, and raw clients that link
 *  to it as a peer would (CURVE under a fresh key of their own).
 *
 *  Kept apart from harness.c, which stays independent of the product's
 *  code (it reads the node only through its processes and alysctl).
 */
#ifndef ALYS_IT_KEY_H
#define ALYS_IT_KEY_H

#include <czmq.h>
#include <stddef.h>

#include "harness.h"
#include "nodekey.h"

/* The node's alys://KEY@127.0.0.1:port: its key read from <dir>/data/
 * node.key, or made there now (before its first start) as the node would.
 * 0 or -1. */
int itk_node_endpoint(const it_node_t *n, int port, char *out, size_t outlen);

/* A DEALER linked to endpoint (alys://: CURVE under *key, made here, which
 * the caller frees with alys_nodekey_destroy; its hex is the client's id at
 * the node), routing id id (NULL: libzmq's). NULL on failure. */
zsock_t *itk_dealer(const char *endpoint, const char *id, alys_nodekey_t **key);

#endif
