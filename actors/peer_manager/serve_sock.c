/*  serve_sock.c: see serve_sock.h. */
#include "serve_sock.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <sys/socket.h>
#include <stdlib.h>
#include <string.h>

#include "bus.h"
#include "log.h"

typedef struct ledger ledger_t;

typedef struct receipt {
    struct receipt *next;
    ledger_t *ledger;
    bool tag;
    size_t bytes;
    size_t id_len;
    uint8_t id[256];
    uint8_t data[]; /* the answer, bytes long */
} receipt_t;

/* Shared with libzmq's I/O thread: every field under lock. */
struct ledger {
    pthread_mutex_t lock;
    receipt_t *taken; /* receipts returned, newest first */
    size_t refs;      /* the owner's one + one per receipt not yet freed */
    bool closed;      /* the owner is gone: free receipts as they come back */
};

/* A connection a message came on (serve_sock_drop), and under CURVE the
 * receipt it holds back (see serve_sock_drain). */
typedef struct {
    uint8_t id[256];
    size_t id_len; /* 0 = free */
    int fd;
    struct sockaddr_storage peer;
    socklen_t peer_len;
    uint64_t used;       /* serve_sock's clock of messages: least recently used goes */
    uint64_t held_bytes; /* a receipt held back, 0 = none */
    bool held_tag;
    unsigned held_sweeps; /* sweeps that found the connection writable since */
    uint64_t drain;       /* the drain that last held a receipt here */
} conn_t;

/* A held receipt let go (its connection gone or forgotten), for the next
 * drain. */
typedef struct released {
    struct released *next;
    size_t id_len;
    uint8_t id[256];
    uint64_t bytes;
    bool tag;
} released_t;

struct serve_sock {
    zsock_t *sock;
    ledger_t *ledger;
    conn_t *conns; /* SERVE_SOCK_CONNS */
    uint64_t tick;
    uint64_t drains;
    released_t *released;
    bool curve; /* a CURVE server: every message carries its link's key */
};

/* Drop one reference; true when it was the last (the caller frees). */
static bool ledger_unref_locked(ledger_t *l)
{
    return --l->refs == 0;
}

static void ledger_free(ledger_t *l)
{
    pthread_mutex_destroy(&l->lock);
    free(l);
}

/* libzmq's free function: it is done with the answer's bytes. Runs on its
 * I/O thread (or ours, when a send failed). */
static void on_free(void *data, void *hint)
{
    (void) data;
    receipt_t *r = hint;
    ledger_t *l = r->ledger;
    bool last = false;
    pthread_mutex_lock(&l->lock);
    if (l->closed) {
        last = ledger_unref_locked(l);
        free(r);
    } else {
        r->next = l->taken;
        l->taken = r;
    }
    pthread_mutex_unlock(&l->lock);
    if (last)
        ledger_free(l);
}

serve_sock_t *serve_sock_new(const char *endpoint, const uint8_t *curve_secret, const char *zap_domain)
{
    serve_sock_t *self = calloc(1, sizeof *self);
    ledger_t *l = calloc(1, sizeof *l);
    if (!self || !l || pthread_mutex_init(&l->lock, NULL) != 0) {
        free(self);
        free(l);
        return NULL;
    }
    l->refs = 1;
    self->ledger = l;
    self->conns = calloc(SERVE_SOCK_CONNS, sizeof *self->conns);
    if (!self->conns) {
        serve_sock_destroy(&self);
        return NULL;
    }
    /* The high-water marks are set before bind: libzmq applies them to the
     * pipes of connections made afterwards. */
    zsock_t *sock = zsock_new(ZMQ_ROUTER);
    if (!sock) {
        serve_sock_destroy(&self);
        return NULL;
    }
    alys_sock_limits(sock);
    zsock_set_sndhwm(sock, SERVE_SOCK_SNDHWM);
    zsock_set_rcvhwm(sock, SERVE_SOCK_RCVHWM);
    zsock_set_router_mandatory(sock, 1);
    if (curve_secret) {
        zsock_set_router_handover(sock, 0);
        zsock_set_zap_domain(sock, zap_domain);
        zsock_set_curve_server(sock, 1);
        zsock_set_curve_secretkey_bin(sock, curve_secret);
        self->curve = true;
    } else {
        zsock_set_router_handover(sock, 1);
    }
    alys_unlink_ipc(endpoint);
    if (zsock_bind(sock, "%s", endpoint) < 0) {
        log_error("cannot bind %s: %s", endpoint, zmq_strerror(zmq_errno()));
        zsock_destroy(&sock);
        serve_sock_destroy(&self);
        return NULL;
    }
    self->sock = sock;
    return self;
}

zsock_t *serve_sock_zsock(serve_sock_t *self)
{
    return self->sock;
}

static void free_list(receipt_t *r)
{
    while (r) {
        receipt_t *next = r->next;
        free(r);
        r = next;
    }
}

void serve_sock_destroy(serve_sock_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    serve_sock_t *self = *self_p;
    zsock_destroy(&self->sock);
    ledger_t *l = self->ledger;
    if (l) {
        size_t n = 0;
        pthread_mutex_lock(&l->lock);
        l->closed = true;
        receipt_t *list = l->taken;
        l->taken = NULL;
        for (receipt_t *r = list; r; r = r->next)
            n++;
        l->refs -= n;
        bool last = ledger_unref_locked(l);
        pthread_mutex_unlock(&l->lock);
        free_list(list);
        if (last)
            ledger_free(l);
    }
    for (released_t *x = self->released, *next; x; x = next) {
        next = x->next;
        free(x);
    }
    free(self->conns);
    free(self);
    *self_p = NULL;
}

int serve_sock_send(serve_sock_t *self, const uint8_t *id, size_t id_len,
                    const alys_wire_msg_t *m, bool tag)
{
    size_t len = alys__wire__wire_msg__get_packed_size(m);
    if (!self->sock || id_len == 0 || id_len > sizeof((receipt_t *) 0)->id || len > ALYS_MAX_MSG_BYTES)
        return -1;
    receipt_t *r = malloc(sizeof *r + (len ? len : 1));
    if (!r)
        return -1;
    *r = (receipt_t){.ledger = self->ledger, .tag = tag, .bytes = len, .id_len = id_len};
    memcpy(r->id, id, id_len);
    alys__wire__wire_msg__pack(m, r->data);
    void *handle = zsock_resolve(self->sock);
    zmq_msg_t who;
    if (zmq_msg_init_size(&who, id_len) != 0) {
        free(r);
        return -1;
    }
    memcpy(zmq_msg_data(&who), id, id_len);
    if (zmq_msg_send(&who, handle, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0) {
        int err = zmq_errno();
        zmq_msg_close(&who);
        free(r);
        return err == EAGAIN ? -2 : -1;
    }
    pthread_mutex_lock(&self->ledger->lock);
    self->ledger->refs++;
    pthread_mutex_unlock(&self->ledger->lock);
    zmq_msg_t body;
    if (zmq_msg_init_data(&body, r->data, len, on_free, r) != 0) {
        r->bytes = 0; /* not handed: its receipt credits nothing */
        on_free(r->data, r);
        return -1;
    }
    if (zmq_msg_send(&body, handle, ZMQ_DONTWAIT) < 0) {
        /* Not handed after all: its receipt must not credit anything. */
        r->bytes = 0;
        zmq_msg_close(&body); /* runs on_free now */
        return -1;
    }
    return 0;
}

static conn_t *conn_find(serve_sock_t *self, const uint8_t *id, size_t id_len)
{
    for (size_t i = 0; i < SERVE_SOCK_CONNS; i++) {
        conn_t *c = &self->conns[i];
        if (c->id_len == id_len && memcmp(c->id, id, id_len) == 0)
            return c;
    }
    return NULL;
}

/* c's held receipt goes to the next drain. Out of memory it is never
 * given: the client's budget stays that much smaller (the safe side). */
static void conn_release(serve_sock_t *self, conn_t *c)
{
    released_t *x = c->held_bytes ? malloc(sizeof *x) : NULL;
    if (x) {
        *x = (released_t){.next = self->released,
                          .id_len = c->id_len,
                          .bytes = c->held_bytes,
                          .tag = c->held_tag};
        memcpy(x->id, c->id, c->id_len);
        self->released = x;
    }
    c->held_bytes = 0;
}

/* Under CURVE libzmq's engine encrypts an answer into a copy of its own
 * and frees ours (the receipt) at once, then writes the copy to the kernel
 * as the client reads; it takes the client's next answer only once that
 * copy is written. So at a receipt, the client's previous answer is what
 * is really gone: the newest receipt of each connection is held back, and
 * credited at its next receipt, when its connection is gone, or when two
 * sweeps found its socket writable (then libzmq has nothing left to write:
 * it writes whenever it can) (serve_sock_sweep, serve_sock_drop). Without
 * this a client that never reads holds one encrypted answer (up to 8 MiB)
 * outside every budget (serve_attack measured +208 MiB over 64 MiB for
 * 100 such clients). */
static bool hold(serve_sock_t *self, const receipt_t *r, serve_sock_taken_fn *fn, void *arg)
{
    conn_t *c = self->curve ? conn_find(self, r->id, r->id_len) : NULL;
    if (!c || c->drain == self->drains)
        return false; /* not a CURVE link we know, or not its newest */
    c->drain = self->drains;
    if (c->held_bytes)
        fn(arg, c->id, c->id_len, c->held_bytes, c->held_tag);
    c->held_bytes = r->bytes;
    c->held_tag = r->tag;
    c->held_sweeps = 0;
    return true;
}

void serve_sock_drain(serve_sock_t *self, serve_sock_taken_fn *fn, void *arg)
{
    ledger_t *l = self->ledger;
    pthread_mutex_lock(&l->lock);
    receipt_t *list = l->taken;
    l->taken = NULL;
    size_t n = 0;
    for (receipt_t *r = list; r; r = r->next)
        n++;
    l->refs -= n; /* the owner holds one: never the last here */
    pthread_mutex_unlock(&l->lock);
    released_t *x = self->released;
    self->released = NULL;
    while (x) {
        released_t *next = x->next;
        fn(arg, x->id, x->id_len, x->bytes, x->tag);
        free(x);
        x = next;
    }
    self->drains++;
    /* Newest first (on_free pushes): the first of a connection is held. */
    for (receipt_t *r = list; r; r = r->next)
        if (r->bytes && !hold(self, r, fn, arg))
            fn(arg, r->id, r->id_len, r->bytes, r->tag);
    free_list(list);
}

static bool same_connection(const conn_t *c)
{
    struct sockaddr_storage now;
    socklen_t len = sizeof now;
    return getpeername(c->fd, (struct sockaddr *) &now, &len) == 0 && len == c->peer_len &&
           memcmp(&now, &c->peer, len) == 0;
}

/* The kernel would take more bytes on c's connection now: poll(2) of
 * libzmq's descriptor for POLLOUT, which reads nothing and changes
 * nothing. */
static bool writable(const conn_t *c)
{
    struct pollfd p = {.fd = c->fd, .events = POLLOUT};
    return poll(&p, 1, 0) == 1 && (p.revents & POLLOUT);
}

void serve_sock_sweep(serve_sock_t *self)
{
    for (size_t i = 0; i < SERVE_SOCK_CONNS; i++) {
        conn_t *c = &self->conns[i];
        if (!c->id_len || !c->held_bytes)
            continue;
        if (!same_connection(c)) {
            conn_release(self, c);
            c->id_len = 0; /* gone: nothing to drop either */
        } else if (writable(c) && ++c->held_sweeps >= 2) {
            conn_release(self, c);
        }
    }
}

static void conn_note(serve_sock_t *self, const uint8_t *id, size_t id_len, int fd)
{
    if (id_len == 0 || id_len > sizeof self->conns[0].id || fd < 0)
        return;
    conn_t *c = conn_find(self, id, id_len);
    self->tick++;
    if (c && c->fd == fd) {
        c->used = self->tick;
        return;
    }
    if (!c) {
        c = &self->conns[0];
        for (size_t i = 1; i < SERVE_SOCK_CONNS && c->id_len; i++)
            if (!self->conns[i].id_len || self->conns[i].used < c->used)
                c = &self->conns[i];
    }
    conn_release(self, c); /* another connection, or forgotten: let it go */
    *c = (conn_t){.id_len = id_len, .fd = fd, .used = self->tick, .peer_len = sizeof c->peer};
    memcpy(c->id, id, id_len);
    if (getpeername(fd, (struct sockaddr *) &c->peer, &c->peer_len) != 0)
        c->id_len = 0; /* cannot be checked later: never dropped */
}

void serve_sock_recv(serve_sock_t *self, serve_sock_msg_fn *fn, void *arg)
{
    void *handle = zsock_resolve(self->sock);
    zmq_msg_t parts[3];
    size_t n = 0, total = 0;
    int more = 1;
    /* Routing id, then the data frames; only the first two are kept, the
     * bytes of all data frames counted (a multi-part message is priced by
     * them). */
    while (more) {
        zmq_msg_t *m = &parts[n < 2 ? n : 2];
        if (zmq_msg_init(m) != 0 || zmq_msg_recv(m, handle, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(m);
            break;
        }
        more = zmq_msg_more(m);
        if (n > 0)
            total += zmq_msg_size(m);
        n++;
        if (n > 2)
            zmq_msg_close(m);
    }
    if (n >= 2) {
        const uint8_t *id = zmq_msg_data(&parts[0]);
        size_t id_len = zmq_msg_size(&parts[0]);
        conn_note(self, id, id_len, zmq_msg_get(&parts[1], ZMQ_SRCFD));
        const char *addr = zmq_msg_gets(&parts[1], "Peer-Address");
        const char *key = self->curve ? zmq_msg_gets(&parts[1], "User-Id") : NULL;
        fn(arg, id, id_len, addr, key, zmq_msg_data(&parts[1]), zmq_msg_size(&parts[1]), n - 1, total);
    }
    for (size_t i = 0; i < n && i < 2; i++)
        zmq_msg_close(&parts[i]);
}

int serve_sock_drop(serve_sock_t *self, const uint8_t *id, size_t id_len)
{
    conn_t *c = conn_find(self, id, id_len);
    if (!c || id_len == 0)
        return -1;
    int rc = same_connection(c) && shutdown(c->fd, SHUT_RDWR) == 0 ? 0 : -1;
    conn_release(self, c);
    c->id_len = 0;
    return rc;
}
