/*  metrics_http.h: serves the collector at http://BIND:PORT/metrics, and
 *  the probes of load balancers and orchestrators:
 *    /health  200 "ok" while the supervisor process serves at all;
 *    /ready   200 "ready" when every supervised actor is ready, else 503 with
 *             one line naming each actor that is not and its state.
 *  The readiness text is set by the supervisor's loop (metrics_http_set_ready)
 *  and read by the HTTP thread under a mutex.
 *
 *  libmicrohttpd with its own polling thread; the handler only renders the
 *  collector (which takes its own lock). The listening socket is made here,
 *  before libmicrohttpd sees it, so that a port already in use is reported
 *  with the system's reason instead of a bare failure.
 *
 *  Ownership: metrics_http_new returns a server freed (stopped) by
 *  metrics_http_destroy(&self); the collector stays the caller's and must
 *  outlive the server.
 */
#ifndef ALYS_METRICS_HTTP_H
#define ALYS_METRICS_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "collector.h"

typedef struct metrics_http metrics_http_t;

/* NULL with the reason in err ("127.0.0.1:9091: Address already in use"). */
metrics_http_t *metrics_http_new(collector_t *collector, const char *bind_addr, uint16_t port,
                                 char *err, size_t errlen);
void metrics_http_destroy(metrics_http_t **self_p);

/* What /ready answers from now on: ready or not, and the body (copied,
 * truncated to 2 KiB). */
void metrics_http_set_ready(metrics_http_t *self, bool ready, const char *body);

#endif
