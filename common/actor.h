/*  actor.h: the runtime every actor process uses, so its main.c stays short.
 *
 *  alys_actor_new parses the common command line (--config FILE, --set
 *  KEY=VALUE, --name NAME, --connect ENDPOINT, --cert FILE, --supervised,
 *  --help, --version), loads the config, starts
 *  logging, connects the control DEALER to the supervisor and the event PUB to
 *  the supervisor's event proxy. The actor then binds its mailbox, adds its
 *  readers and timers, calls alys_actor_ready (READY to the supervisor) and
 *  alys_actor_run, which returns on SIGTERM/SIGINT or a Stop from the
 *  supervisor. Heartbeat pings are answered inside the loop, so an actor whose
 *  loop hangs stops answering and is restarted.
 *
 *  ZeroMQ socket-monitor events of the mailbox and control sockets are
 *  republished on the event bus (topic "zmq") for `alysctl monitor`.
 *
 *  Ownership: alys_actor_destroy(&self) frees everything the actor made,
 *  including sockets it created; sockets passed to alys_actor_add_reader stay
 *  the caller's.
 */
#ifndef ALYS_ACTOR_H
#define ALYS_ACTOR_H

#include <czmq.h>

#include "bus.h"
#include "config.h"
#include "metrics_client.h"

typedef struct alys_actor alys_actor_t;

/* A message arrived in the mailbox. Return 0 to go on, -1 to stop the actor.
 * env is freed by the runtime after the call; keep nothing of it. */
typedef int(alys_mailbox_fn)(alys_actor_t *self, zframe_t *from, alys_env_t *env, void *arg);
typedef int(alys_timer_fn)(alys_actor_t *self, void *arg);
typedef int(alys_reader_fn)(alys_actor_t *self, zsock_t *sock, void *arg);

/* Parses the command line and loads the config. --help/-h prints the usage
 * on stdout and --version the version, then exit(0); a config error is
 * printed and exit(ALYS_EXIT_CONFIG), which the supervisor does not restart.
 * Returns NULL after printing why (a usage error, the problem on the first
 * line): the caller exits 2. The config path is --config, else $ALYS_CONFIG,
 * else ALYS_DEFAULT_CONFIG (none for a validator given --connect only). */
alys_actor_t *alys_actor_new(const char *kind, int argc, char **argv);
void alys_actor_destroy(alys_actor_t **self_p);

const alys_config_t *alys_actor_config(alys_actor_t *self);
const char *alys_actor_name(alys_actor_t *self);
const char *alys_actor_kind(alys_actor_t *self);
const char *alys_actor_arg(alys_actor_t *self, const char *option); /* "connect", "cert"; NULL if absent */
bool alys_actor_supervised(alys_actor_t *self);
alys_metrics_t *alys_actor_metrics(alys_actor_t *self);
zsock_t *alys_actor_mailbox(alys_actor_t *self);
zsock_t *alys_actor_events(alys_actor_t *self); /* PUB */

/* Bind the mailbox ROUTER at endpoint; messages go to fn. */
int alys_actor_bind(alys_actor_t *self, const char *endpoint, alys_mailbox_fn *fn, void *arg);
int alys_actor_add_reader(alys_actor_t *self, zsock_t *sock, alys_reader_fn *fn, void *arg);
void alys_actor_remove_reader(alys_actor_t *self, zsock_t *sock);
/* times = 0 repeats forever. Returns a timer id for alys_actor_cancel_timer. */
int alys_actor_add_timer(alys_actor_t *self, size_t delay_ms, size_t times, alys_timer_fn *fn,
                         void *arg);
void alys_actor_cancel_timer(alys_actor_t *self, int timer_id);
/* Watch a socket (common/sockmon.h); its events are published as topic "zmq". */
int alys_actor_monitor(alys_actor_t *self, zsock_t *sock, const char *label);

/* Tell the supervisor we are ready (after binding). */
int alys_actor_ready(alys_actor_t *self);
/* Publish an Event {topic, actor = self, kind, detail}. */
int alys_actor_event(alys_actor_t *self, const char *topic, const char *kind, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Run the loop until SIGTERM/SIGINT/Stop. Returns 0 on a clean stop. */
int alys_actor_run(alys_actor_t *self);
/* Ask the loop to end after the current handler. */
void alys_actor_stop(alys_actor_t *self);
/* A config or environment error found after start (a genesis that does not
 * load, a data_dir the database refuses): logs and prints the message,
 * leaves it for the supervisor and exits ALYS_EXIT_CONFIG, which the
 * supervisor does not restart; it repeats the message as its last line. */
void alys_actor_fail_config(alys_actor_t *self, const char *fmt, ...)
    __attribute__((format(printf, 2, 3), noreturn));

#endif
