/*  metrics_http.c: GET /metrics, /health and /ready over libmicrohttpd. */
#include "metrics_http.h"

#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

#define READY_BODY_MAX 2048

struct metrics_http {
    collector_t *collector;
    struct MHD_Daemon *daemon;
    int fd;
    pthread_mutex_t lock; /* guards ready and ready_body */
    bool ready;
    char ready_body[READY_BODY_MAX];
};

void metrics_http_set_ready(metrics_http_t *self, bool ready, const char *body)
{
    if (!self)
        return;
    pthread_mutex_lock(&self->lock);
    self->ready = ready;
    snprintf(self->ready_body, sizeof self->ready_body, "%s", body ? body : "");
    pthread_mutex_unlock(&self->lock);
}

static enum MHD_Result reply(struct MHD_Connection *conn, unsigned code, char *body,
                             enum MHD_ResponseMemoryMode mode, const char *type);

static enum MHD_Result reply_ready(metrics_http_t *self, struct MHD_Connection *conn)
{
    pthread_mutex_lock(&self->lock);
    bool ready = self->ready;
    char *body = strdup(self->ready_body);
    pthread_mutex_unlock(&self->lock);
    if (!body)
        return reply(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory\n",
                     MHD_RESPMEM_PERSISTENT, "text/plain");
    return reply(conn, ready ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE, body,
                 MHD_RESPMEM_MUST_FREE, "text/plain; charset=utf-8");
}

static enum MHD_Result reply(struct MHD_Connection *conn, unsigned code, char *body,
                             enum MHD_ResponseMemoryMode mode, const char *type)
{
    struct MHD_Response *rsp = MHD_create_response_from_buffer(strlen(body), body, mode);
    if (!rsp) {
        if (mode == MHD_RESPMEM_MUST_FREE)
            free(body);
        return MHD_NO;
    }
    MHD_add_response_header(rsp, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    enum MHD_Result rc = MHD_queue_response(conn, code, rsp);
    MHD_destroy_response(rsp);
    return rc;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    (void) version;
    (void) upload_data;
    (void) upload_data_size;
    (void) con_cls;
    metrics_http_t *self = cls;
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
        return reply(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "only GET\n", MHD_RESPMEM_PERSISTENT,
                     "text/plain");
    if (strcmp(url, "/health") == 0)
        return reply(conn, MHD_HTTP_OK, "ok\n", MHD_RESPMEM_PERSISTENT, "text/plain");
    if (strcmp(url, "/ready") == 0)
        return reply_ready(self, conn);
    if (strcmp(url, "/metrics") != 0)
        return reply(conn, MHD_HTTP_NOT_FOUND, "not found: try /metrics, /health or /ready\n",
                     MHD_RESPMEM_PERSISTENT, "text/plain");
    char *text = collector_render(self->collector);
    if (!text)
        return reply(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory\n",
                     MHD_RESPMEM_PERSISTENT, "text/plain");
    return reply(conn, MHD_HTTP_OK, text, MHD_RESPMEM_MUST_FREE, CONTENT_TYPE);
}

/* Bind and listen ourselves: errno says exactly why a port is unusable. */
static int listen_on(const char *addr, uint16_t port, int *family, char *err, size_t errlen)
{
    char service[8];
    snprintf(service, sizeof service, "%u", (unsigned) port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE};
    struct addrinfo *ai = NULL;
    int rc = getaddrinfo(addr, service, &hints, &ai);
    if (rc != 0) {
        snprintf(err, errlen, "metrics_bind '%s' is not a numeric address: %s", addr,
                 gai_strerror(rc));
        return -1;
    }
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, 64) != 0) {
        snprintf(err, errlen, "metrics: cannot listen on %s:%u: %s", addr, (unsigned) port,
                 strerror(errno));
        if (fd >= 0)
            close(fd);
        freeaddrinfo(ai);
        return -1;
    }
    *family = ai->ai_family;
    freeaddrinfo(ai);
    return fd;
}

metrics_http_t *metrics_http_new(collector_t *collector, const char *bind_addr, uint16_t port,
                                 char *err, size_t errlen)
{
    metrics_http_t *self = calloc(1, sizeof *self);
    if (!self) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    self->collector = collector;
    if (pthread_mutex_init(&self->lock, NULL) != 0) {
        snprintf(err, errlen, "cannot make a mutex");
        free(self);
        return NULL;
    }
    snprintf(self->ready_body, sizeof self->ready_body, "not ready: starting\n");
    int family = AF_INET;
    self->fd = listen_on(bind_addr, port, &family, err, errlen);
    if (self->fd < 0) {
        pthread_mutex_destroy(&self->lock);
        free(self);
        return NULL;
    }
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | (family == AF_INET6 ? MHD_USE_IPv6 : 0);
    self->daemon = MHD_start_daemon(flags, 0, NULL, NULL, on_request, self, MHD_OPTION_LISTEN_SOCKET,
                                    self->fd, MHD_OPTION_CONNECTION_LIMIT, (unsigned) 64,
                                    MHD_OPTION_CONNECTION_TIMEOUT, (unsigned) 10, MHD_OPTION_END);
    if (!self->daemon) {
        snprintf(err, errlen, "metrics: libmicrohttpd did not start on %s:%u", bind_addr,
                 (unsigned) port);
        close(self->fd);
        pthread_mutex_destroy(&self->lock);
        free(self);
        return NULL;
    }
    return self;
}

void metrics_http_destroy(metrics_http_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    metrics_http_t *self = *self_p;
    /* MHD_stop_daemon closes the listening socket it was given. */
    MHD_stop_daemon(self->daemon);
    pthread_mutex_destroy(&self->lock);
    free(self);
    *self_p = NULL;
}
