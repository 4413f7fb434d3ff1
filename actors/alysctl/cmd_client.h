/*  cmd_client.h: request/reply from alysctl to one endpoint (the
 *  supervisor's control socket or an actor's mailbox), with a deadline.
 *
 *  A DEALER with a random routing id sends one envelope with a fresh
 *  correlation id and waits for the reply carrying the same id (the id and
 *  its deadline are a common/pending entry, so it completes once); anything
 *  else arriving meanwhile (a late reply to an earlier request) is skipped.
 *  One request at a time per client.
 *  ZeroMQ connects asynchronously, so "nobody there" shows as a timeout.
 *
 *  Ownership: alysctl_client_new returns a client freed by
 *  alysctl_client_destroy(&self). A reply is the caller's: alys_env_free.
 */
#ifndef ALYSCTL_CMD_CLIENT_H
#define ALYSCTL_CMD_CLIENT_H

#include "bus.h"

#define ALYSCTL_TIMEOUT_MS 2000

typedef struct alysctl_client alysctl_client_t;

alysctl_client_t *alysctl_client_new(const char *endpoint);
void alysctl_client_destroy(alysctl_client_t **self_p);

/* Send req (its corr_id is set here) and wait up to timeout_ms for its reply.
 * 0 with *reply set (possibly an Error body: see alysctl_reply_error), or -1
 * on timeout, interruption or send failure. */
int alysctl_client_request(alysctl_client_t *self, alys_env_t *req, int timeout_ms,
                           alys_env_t **reply);

/* One request on a short-lived client. */
int alysctl_request(const char *endpoint, alys_env_t *req, int timeout_ms, alys_env_t **reply);

/* A StorageActor request: wraps msg in an envelope and sends it on client,
 * or on a short-lived client to endpoint when client is NULL. As above. */
int alysctl_storage_request(alysctl_client_t *client, const char *endpoint,
                            Alys__Storage__StorageMsg *msg, int timeout_ms, alys_env_t **reply);

/* The message of an Error reply, or NULL if reply is not an error. */
const char *alysctl_reply_error(const alys_env_t *reply);

#endif
