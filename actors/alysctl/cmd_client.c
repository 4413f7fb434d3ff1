/*  cmd_client.c: see cmd_client.h. */
#include "cmd_client.h"

#include <czmq.h>

#include "pending.h"
#include "util.h"

/* One request in flight at a time: the pending table (capacity 1) holds its
 * correlation id and deadline, so a reply completes it once and anything
 * else (a late reply to an earlier request, a duplicate) is skipped. */
struct alysctl_client {
    zsock_t *dealer;
    zpoller_t *poller;
    alys_pending_t *pending;
};

alysctl_client_t *alysctl_client_new(const char *endpoint)
{
    alysctl_client_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->dealer = alys_dealer_connect(endpoint, NULL);
    self->poller = self->dealer ? zpoller_new(self->dealer, NULL) : NULL;
    self->pending = alys_pending_new(1, 0);
    if (!self->poller || !self->pending)
        alysctl_client_destroy(&self);
    return self;
}

void alysctl_client_destroy(alysctl_client_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    alysctl_client_t *self = *self_p;
    alys_pending_destroy(&self->pending);
    zpoller_destroy(&self->poller);
    zsock_destroy(&self->dealer);
    free(self);
    *self_p = NULL;
}

/* Receive until the pending request is answered (0, *reply set) or its
 * deadline passes or the wait is interrupted (-1). */
static int await_reply(alysctl_client_t *self, int64_t deadline, alys_env_t **reply)
{
    for (int64_t now = alys_mono_ms(); !alys_pending_expire(self->pending, now, NULL, NULL);
         now = alys_mono_ms()) {
        if (!zpoller_wait(self->poller, (int) (deadline - now)))
            return -1; /* timeout or Ctrl-C */
        alys_env_t *env = NULL;
        int rc = alys_recv(self->dealer, &env);
        if (rc < 0)
            return -1;
        if (rc == 0 && env->reply && alys_pending_take(self->pending, env->corr_id, NULL)) {
            *reply = env;
            return 0;
        }
        alys_env_free(&env); /* late reply to something else */
    }
    return -1;
}

int alysctl_client_request(alysctl_client_t *self, alys_env_t *req, int timeout_ms, alys_env_t **reply)
{
    *reply = NULL;
    req->corr_id = alys_next_corr_id();
    int64_t deadline = alys_mono_ms() + timeout_ms;
    if (!alys_pending_add(self->pending, req->corr_id, deadline))
        return -1; /* a request already in flight (not reentrant) */
    int rc = alys_send(self->dealer, req) == 0 ? await_reply(self, deadline, reply) : -1;
    /* Whatever ended the wait, nothing stays pending: a reply arriving
     * after this returns is late and skipped by the next request. */
    (void) alys_pending_take(self->pending, req->corr_id, NULL);
    return rc;
}

int alysctl_request(const char *endpoint, alys_env_t *req, int timeout_ms, alys_env_t **reply)
{
    *reply = NULL;
    alysctl_client_t *client = alysctl_client_new(endpoint);
    if (!client)
        return -1;
    int rc = alysctl_client_request(client, req, timeout_ms, reply);
    alysctl_client_destroy(&client);
    return rc;
}

int alysctl_storage_request(alysctl_client_t *client, const char *endpoint,
                            Alys__Storage__StorageMsg *msg, int timeout_ms, alys_env_t **reply)
{
    alys_env_t req = ALYS__BUS__ENVELOPE__INIT;
    req.body_case = ALYS__BUS__ENVELOPE__BODY_STORAGE;
    req.storage = msg;
    if (client)
        return alysctl_client_request(client, &req, timeout_ms, reply);
    return alysctl_request(endpoint, &req, timeout_ms, reply);
}

const char *alysctl_reply_error(const alys_env_t *reply)
{
    if (reply->body_case != ALYS__BUS__ENVELOPE__BODY_ERROR)
        return NULL;
    return reply->error && reply->error->message ? reply->error->message : "error";
}
