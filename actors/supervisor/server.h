/*  server.h: the supervisor process's I/O around the pure logic.
 *
 *  Sockets (all bound by the supervisor before any actor starts):
 *    - control ROUTER at ep_supervisor: actors' DEALERs (routing id = actor
 *      name) send Ready and Pong and receive Ping and Stop; any DEALER (alysctl)
 *      may send StatusRequest and gets a StatusReply;
 *    - XSUB at ep_events_in and XPUB at ep_events: the event proxy. Every
 *      actor's PUB connects to the XSUB; tools SUB to the XPUB. The XSUB
 *      subscribes to everything so "metric" messages always reach the
 *      collector, whoever listens on the XPUB side;
 *    - the supervisor's own lifecycle events go out on the XPUB.
 *  One zloop drives them plus a signalfd (SIGCHLD, SIGTERM, SIGINT, SIGHUP;
 *  those signals are blocked in every thread) and one timer armed for the
 *  logic's next deadline. Metrics are served by a libmicrohttpd thread.
 *
 *  Ownership: sup_server_new returns a server freed by
 *  sup_server_destroy(&self); the config is copied.
 */
#ifndef ALYS_SUP_SERVER_H
#define ALYS_SUP_SERVER_H

#include <stddef.h>

#include "config.h"

typedef struct sup_server sup_server_t;

/* Checks what can be checked before anything runs (preflight.h), binds
 * everything and finds the actor binaries; spawns nothing yet. NULL with the
 * reason in err: every such failure is the config's or the environment's
 * (exit ALYS_EXIT_CONFIG). sets (KEY=VALUE, nsets of them) are the --set
 * overrides cfg was loaded with; they are passed on to every actor and must
 * outlive the server. Must be called before any other thread or ZeroMQ
 * socket exists in the process (it blocks the signals it handles). */
sup_server_t *sup_server_new(const alys_config_t *cfg, const char *const *sets, size_t nsets,
                             char *err, size_t errlen);
void sup_server_destroy(sup_server_t **self_p);

/* Start the actors and run until everything has stopped. Returns the exit
 * code: 0 after SIGTERM/SIGINT, 1 after giving up on an actor, 78 when an
 * actor exited 78 (its config error; not restarted). */
int sup_server_run(sup_server_t *self);

#endif
