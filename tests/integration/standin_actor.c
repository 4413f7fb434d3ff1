/*  alys-it-standin: a stand-in actor for integration tests of areas whose
 *  real actor binary is not built yet. Used only when a test run sets
 *  ALYS_IT_STANDIN=1 (see harness.c); never by default, so the tests run the
 *  real binaries. It is what every actor is to the supervisor and nothing
 *  more: the common runtime, a mailbox bound at the config's endpoint for its
 *  kind, Ready, heartbeats, clean stop. The kind comes from the name it is
 *  run by (a symlink alys-<kind>).
 */
#include <libgen.h>
#include <stdio.h>
#include <string.h>

#include "actor.h"

static int on_message(alys_actor_t *self, zframe_t *from, alys_env_t *env, void *arg)
{
    (void) arg;
    if (env->corr_id && !env->reply)
        alys_reply_error(alys_actor_mailbox(self), from, env, ALYS_ERR_UNAVAILABLE,
                         "stand-in actor: not implemented");
    return 0;
}

static void mailbox_endpoint(const alys_config_t *c, const char *kind, const char *name,
                             char *out, size_t len)
{
    const char *ep = strcmp(kind, "storage") == 0           ? c->ep_storage
                     : strcmp(kind, "peer_manager") == 0    ? c->ep_peer_manager
                     : strcmp(kind, "block_processor") == 0 ? c->ep_block_processor
                     : strcmp(kind, "sync") == 0            ? c->ep_sync
                                                            : NULL;
    if (ep)
        snprintf(out, len, "%s", ep);
    else
        snprintf(out, len, "ipc://%s/%s.sock", c->run_dir, name);
}

int main(int argc, char **argv)
{
    char kind[64];
    const char *base = basename(argv[0]);
    snprintf(kind, sizeof kind, "%s", strncmp(base, "alys-", 5) == 0 ? base + 5 : base);
    for (char *p = kind; *p; p++)
        if (*p == '-')
            *p = '_';
    alys_actor_t *actor = alys_actor_new(kind, argc, argv);
    if (!actor)
        return 2;
    char ep[ALYS_PATH_MAX + ALYS_NAME_MAX + 16];
    mailbox_endpoint(alys_actor_config(actor), kind, alys_actor_name(actor), ep, sizeof ep);
    int rc = 1;
    if (alys_actor_bind(actor, ep, on_message, NULL) == 0 && alys_actor_ready(actor) == 0)
        rc = alys_actor_run(actor);
    alys_actor_destroy(&actor);
    return rc;
}
