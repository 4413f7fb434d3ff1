/*  metrics_http.h: serves the collector at http://BIND:PORT/metrics.
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

#include <stddef.h>
#include <stdint.h>

#include "collector.h"

typedef struct metrics_http metrics_http_t;

/* NULL with the reason in err ("127.0.0.1:9091: Address already in use"). */
metrics_http_t *metrics_http_new(collector_t *collector, const char *bind_addr, uint16_t port,
                                 char *err, size_t errlen);
void metrics_http_destroy(metrics_http_t **self_p);

#endif
