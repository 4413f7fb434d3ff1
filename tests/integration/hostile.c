/*  hostile.c: see hostile.h. */
#include "hostile.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>

#include "chain/export.h"
#include "harness.h"
#include "nodeaddr.h"
#include "nodekey.h"
#include "peerlink.h"

/* ---- a chain ------------------------------------------------------------------ */

static int chain_load(hc_chain_t *c, char *err, size_t errlen)
{
    alys_export_reader_t *r = alys_export_reader_new(c->export_path, err, errlen);
    if (!r)
        return -1;
    c->block = calloc(c->n ? c->n : 1, sizeof *c->block);
    int rc = c->block ? 0 : -1;
    for (size_t i = 0; rc == 0 && i < c->n; i++) {
        uint8_t *bytes;
        size_t len;
        if (alys_export_reader_next(r, &bytes, &len, err, errlen) != 1)
            rc = -1;
        else
            c->block[i] = (ProtobufCBinaryData){len, bytes};
    }
    alys_export_reader_destroy(&r);
    return rc;
}

int hc_chain_get(hc_chain_t *c, const char *chaingen, int blocks, int txs, char *err, size_t errlen)
{
    memset(c, 0, sizeof *c);
    struct stat st;
    if (stat(chaingen, &st) != 0) {
        snprintf(err, errlen, "%s not built", chaingen);
        return -1;
    }
    mkdir("/tmp/alys-hostile-chains", 0755);
    snprintf(c->dir, sizeof c->dir, "/tmp/alys-hostile-chains/%lld-%d-%d",
             (long long) st.st_mtime, blocks, txs);
    snprintf(c->genesis_file, sizeof c->genesis_file, "%s/genesis", c->dir);
    snprintf(c->export_path, sizeof c->export_path, "%s/chain.export", c->dir);
    char result[320], tmp[330], nb[16], nt[16];
    snprintf(result, sizeof result, "%s/result.txt", c->dir);
    snprintf(tmp, sizeof tmp, "%s.tmp", result);
    snprintf(nb, sizeof nb, "%d", blocks);
    snprintf(nt, sizeof nt, "%d", txs);
    char *text = it_read_file(result);
    if (!text || !strstr(text, "genesis_hash")) {
        free(text);
        static char out[4096];
        const char *argv[] = {chaingen, "--blocks",   nb,           "--txs-per-block",
                              nt,       "--accounts", "500",        "--authorities",
                              "3",      "--seed",     "hostile-it", "--out",
                              c->dir,   NULL};
        if (it_run(argv, out, sizeof out, 120000) != 0) {
            snprintf(err, errlen, "alys-chaingen failed: %.200s", out);
            return -1;
        }
        FILE *f = fopen(tmp, "w");
        if (!f || fputs(out, f) < 0 || fclose(f) != 0 || rename(tmp, result) != 0) {
            snprintf(err, errlen, "cannot write %s", result);
            return -1;
        }
        text = strdup(out);
    }
    char v[100];
    c->n = text ? strtoull(it_kv(text, "head_height", v, sizeof v), NULL, 10) : 0;
    bool ok = text && c->n == (uint64_t) blocks &&
              alys_unhex(it_kv(text, "genesis_hash", v, sizeof v), c->genesis_hash, ALYS_HASH_LEN) ==
                  0 &&
              alys_unhex(it_kv(text, "head_hash", v, sizeof v), c->head_hash, ALYS_HASH_LEN) == 0;
    free(text);
    if (!ok) {
        snprintf(err, errlen, "chaingen's result in %s is not readable", result);
        return -1;
    }
    return chain_load(c, err, errlen);
}

void hc_chain_free(hc_chain_t *c)
{
    for (size_t i = 0; c->block && i < c->n; i++)
        free(c->block[i].data);
    free(c->block);
    c->block = NULL;
}

/* ---- packing ----------------------------------------------------------------- */

static size_t put_varint(uint8_t *out, uint64_t v)
{
    size_t n = 0;
    do {
        out[n++] = (uint8_t) ((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
        v >>= 7;
    } while (v);
    return n;
}

/* pad bytes of field 100, wire type 2 (length-delimited): a field no
 * decoder knows, skipped after it was read. */
static size_t put_pad(uint8_t *out, size_t pad)
{
    if (pad < 8)
        return 0;
    size_t n = put_varint(out, (100u << 3) | 2u);
    size_t body = pad - 8; /* tag 2 bytes + length <= 6 bytes */
    n += put_varint(out + n, body);
    memset(out + n, 0x5a, body);
    return n + body;
}

uint8_t *hc_pack(const alys_wire_msg_t *m, size_t pad, size_t *len)
{
    size_t base = alys__wire__wire_msg__get_packed_size(m);
    uint8_t *buf = malloc(base + pad + 1);
    if (!buf)
        return NULL;
    alys__wire__wire_msg__pack(m, buf);
    *len = base + put_pad(buf + base, pad);
    return buf;
}

uint8_t *hc_pack_blocks(uint64_t request_id, uint64_t start, size_t n, size_t item_len, size_t *len)
{
    ProtobufCBinaryData *items = calloc(n ? n : 1, sizeof *items);
    uint8_t *item = malloc(item_len ? item_len : 1);
    uint8_t *out = NULL;
    if (items && item) {
        memset(item, 0xa5, item_len);
        for (size_t i = 0; i < n; i++)
            items[i] = (ProtobufCBinaryData){item_len, item};
        Alys__Wire__Blocks b = ALYS__WIRE__BLOCKS__INIT;
        b.start = start;
        b.n_blocks = n;
        b.blocks = items;
        alys_wire_msg_t m = ALYS__WIRE__WIRE_MSG__INIT;
        m.request_id = request_id;
        m.body_case = ALYS__WIRE__WIRE_MSG__BODY_BLOCKS;
        m.blocks = &b;
        out = hc_pack(&m, 0, len);
    }
    free(item);
    free(items);
    return out;
}

static uint64_t random_id(void)
{
    uint64_t v = 0;
    if (getrandom(&v, sizeof v, 0) != (ssize_t) sizeof v)
        v = (uint64_t) it_now_ms() * 2654435761u;
    return v | 1u; /* never 0 */
}

/* ---- the hostile client -------------------------------------------------------- */

hc_client_t *hc_client_new(const char *endpoint, const char *id)
{
    hc_client_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->sock = zsock_new(ZMQ_DEALER);
    if (!self->sock) {
        free(self);
        return NULL;
    }
    /* Unique per connection: a ROUTER keeps a departed peer's routing id
     * until its I/O thread has seen the disconnect, and a newcomer with
     * that id meanwhile is parked as anonymous (ZMQ_ROUTER_HANDOVER off,
     * as a server must have it: handover lets anyone take a client's id);
     * libzmq 4.3 retries its identification only when its pipe is next
     * activated, so it can stay parked with every frame it sends. A test
     * that closed a client and opened another under the same name raced
     * the server: under load its flood went nowhere (hostile, load run). */
    snprintf(self->id, sizeof self->id, "%s/%08x", id, (unsigned) random_id());
    zsock_set_identity(self->sock, self->id);
    zsock_set_linger(self->sock, 0);
    zsock_set_sndhwm(self->sock, 100000);
    zsock_set_rcvhwm(self->sock, 100000);
    zsock_set_reconnect_ivl(self->sock, 100);
    self->next_id = 1000;
    self->curve = alys_nodeaddr_valid(endpoint);
    self->key = alys_nodekey_new();
    if (!self->key || alys_peerlink_connect(self->sock, endpoint, self->curve ? self->key : NULL) != 0)
        hc_client_destroy(&self);
    return self;
}

void hc_client_destroy(hc_client_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    zsock_destroy(&(*self_p)->sock);
    alys_nodekey_destroy(&(*self_p)->key);
    free(*self_p);
    *self_p = NULL;
}

const char *hc_who(hc_client_t *self)
{
    static _Thread_local char who[160];
    if (self->curve)
        return alys_nodekey_public_hex(self->key);
    snprintf(who, sizeof who, "in:%s", self->id);
    return who;
}

int hc_send_raw(hc_client_t *self, const void *data, size_t len)
{
    return zmq_send(zsock_resolve(self->sock), data, len, 0) == (int) len ? 0 : -1;
}

int hc_send_parts(hc_client_t *self, const void *const *parts, const size_t *lens, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (zmq_send(zsock_resolve(self->sock), parts[i], lens[i], i + 1 < n ? ZMQ_SNDMORE : 0) !=
            (int) lens[i])
            return -1;
    return 0;
}

uint64_t hc_send(hc_client_t *self, alys_wire_msg_t *m, size_t pad)
{
    m->request_id = ++self->next_id;
    size_t len;
    uint8_t *buf = hc_pack(m, pad, &len);
    int rc = buf ? hc_send_raw(self, buf, len) : -1;
    free(buf);
    return rc == 0 ? m->request_id : 0;
}

uint64_t hc_send_status(hc_client_t *self, const uint8_t *genesis, uint64_t head_height,
                        const char *node_id)
{
    uint8_t head[ALYS_HASH_LEN];
    memset(head, 0xab, sizeof head);
    Alys__Wire__Status st = ALYS__WIRE__STATUS__INIT;
    st.protocol_version = ALYS_WIRE_PROTOCOL_VERSION;
    st.genesis_hash = (ProtobufCBinaryData){ALYS_HASH_LEN, (uint8_t *) genesis};
    st.head_height = head_height;
    st.head_hash = (ProtobufCBinaryData){ALYS_HASH_LEN, head};
    st.node_id = (char *) (node_id ? node_id : alys_nodekey_public_hex(self->key));
    st.listen = (char *) ""; /* not to be dialled back */
    alys_wire_msg_t m = ALYS__WIRE__WIRE_MSG__INIT;
    m.body_case = ALYS__WIRE__WIRE_MSG__BODY_STATUS;
    m.status = &st;
    return hc_send(self, &m, 0);
}

uint64_t hc_send_range(hc_client_t *self, bool headers, uint64_t start, uint32_t count)
{
    alys_wire_msg_t m = ALYS__WIRE__WIRE_MSG__INIT;
    Alys__Wire__GetHeaders gh = ALYS__WIRE__GET_HEADERS__INIT;
    Alys__Wire__GetBlocks gb = ALYS__WIRE__GET_BLOCKS__INIT;
    if (headers) {
        gh.start = start;
        gh.count = count;
        m.body_case = ALYS__WIRE__WIRE_MSG__BODY_GET_HEADERS;
        m.get_headers = &gh;
    } else {
        gb.start = start;
        gb.count = count;
        m.body_case = ALYS__WIRE__WIRE_MSG__BODY_GET_BLOCKS;
        m.get_blocks = &gb;
    }
    return hc_send(self, &m, 0);
}

alys_wire_msg_t *hc_recv(hc_client_t *self, int timeout_ms, bool *bad)
{
    if (bad)
        *bad = false;
    zmq_pollitem_t item = {.socket = zsock_resolve(self->sock), .events = ZMQ_POLLIN};
    int64_t end = it_now_ms() + timeout_ms;
    for (;;) {
        int64_t left = end - it_now_ms();
        int rc = zmq_poll(&item, 1, left > 0 ? (long) left : 0);
        if (rc > 0)
            break;
        if (rc == 0 || it_now_ms() >= end)
            return NULL; /* rc < 0: EINTR, poll again */
    }
    zframe_t *f = zframe_recv(self->sock);
    if (!f)
        return NULL;
    char err[160];
    alys_wire_msg_t *m = alys_wire_decode(zframe_data(f), zframe_size(f), err, sizeof err);
    if (!m && bad)
        *bad = true;
    zframe_destroy(&f);
    return m;
}

alys_wire_msg_t *hc_answer(hc_client_t *self, uint64_t id, int timeout_ms)
{
    int64_t end = it_now_ms() + timeout_ms;
    int64_t left;
    while ((left = end - it_now_ms()) > 0) {
        alys_wire_msg_t *m = hc_recv(self, (int) left, NULL);
        if (m && m->request_id == id)
            return m;
        alys_wire_free(&m);
    }
    return NULL;
}

alys_wire_msg_t *hc_handshake(hc_client_t *self, const uint8_t *genesis, int timeout_ms)
{
    uint64_t id = hc_send_status(self, genesis, 0, NULL);
    alys_wire_msg_t *m = id ? hc_answer(self, id, timeout_ms) : NULL;
    if (m && m->body_case != ALYS__WIRE__WIRE_MSG__BODY_STATUS)
        alys_wire_free(&m);
    return m;
}

/* ---- the hostile server ---------------------------------------------------------- */

struct hs_server {
    zactor_t *actor;
    char endpoint[ALYS_ENDPOINT_MAX]; /* tcp:// to bind, then alys:// */
    hs_mode_t mode;
    uint8_t genesis[ALYS_HASH_LEN];
    uint64_t height;
    alys_nodekey_t *key;
    char node_id[ALYS_WIRE_ID_MAX];
    _Atomic uint64_t sent;
    _Atomic uint64_t probes;
    bool up; /* bound and running (set before the thread signals) */
    /* the thread's own */
    zsock_t *router;
    uint8_t *big;
    size_t big_len;
};

/* [identity][frames...] to the node. */
static void to_node(hs_server_t *self, zframe_t *who, const void *const *parts,
                    const size_t *lens, size_t n)
{
    void *sock = zsock_resolve(self->router);
    if (zmq_send(sock, zframe_data(who), zframe_size(who), ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0)
        return;
    for (size_t i = 0; i < n; i++)
        if (zmq_send(sock, parts[i], lens[i], (i + 1 < n ? ZMQ_SNDMORE : 0) | ZMQ_DONTWAIT) < 0)
            return;
}

static void send_msg(hs_server_t *self, zframe_t *who, const alys_wire_msg_t *m, size_t pad)
{
    size_t len;
    uint8_t *buf = hc_pack(m, pad, &len);
    if (buf) {
        const void *parts[] = {buf};
        to_node(self, who, parts, &len, 1);
    }
    free(buf);
}

static void answer_status(hs_server_t *self, zframe_t *who, uint64_t id)
{
    uint8_t head[ALYS_HASH_LEN];
    memset(head, 0xcd, sizeof head);
    Alys__Wire__Status st = ALYS__WIRE__STATUS__INIT;
    st.protocol_version = ALYS_WIRE_PROTOCOL_VERSION;
    st.genesis_hash = (ProtobufCBinaryData){ALYS_HASH_LEN, self->genesis};
    st.head_height = self->height;
    st.head_hash = (ProtobufCBinaryData){ALYS_HASH_LEN, head};
    st.node_id = self->node_id;
    st.listen = (char *) "";
    alys_wire_msg_t m = ALYS__WIRE__WIRE_MSG__INIT;
    m.request_id = id;
    m.body_case = ALYS__WIRE__WIRE_MSG__BODY_STATUS;
    m.status = &st;
    send_msg(self, who, &m, 0);
    atomic_fetch_add(&self->probes, 1);
}

/* The same empty answer twice: the second is a duplicate. */
static void answer_twice(hs_server_t *self, zframe_t *who, const alys_wire_msg_t *req)
{
    alys_wire_msg_t m = ALYS__WIRE__WIRE_MSG__INIT;
    Alys__Wire__Headers h = ALYS__WIRE__HEADERS__INIT;
    Alys__Wire__Blocks b = ALYS__WIRE__BLOCKS__INIT;
    Alys__Wire__Peers p = ALYS__WIRE__PEERS__INIT;
    m.request_id = req->request_id;
    if (req->body_case == ALYS__WIRE__WIRE_MSG__BODY_GET_HEADERS) {
        h.start = req->get_headers->start;
        m.body_case = ALYS__WIRE__WIRE_MSG__BODY_HEADERS;
        m.headers = &h;
    } else if (req->body_case == ALYS__WIRE__WIRE_MSG__BODY_GET_BLOCKS) {
        b.start = req->get_blocks->start;
        m.body_case = ALYS__WIRE__WIRE_MSG__BODY_BLOCKS;
        m.blocks = &b;
    } else {
        m.body_case = ALYS__WIRE__WIRE_MSG__BODY_PEERS;
        m.peers = &p;
    }
    send_msg(self, who, &m, 0);
    send_msg(self, who, &m, 0);
    atomic_fetch_add(&self->sent, 1);
}

/* One item more than asked, of junk: a count that does not match. */
static void answer_more(hs_server_t *self, zframe_t *who, const alys_wire_msg_t *req)
{
    bool headers = req->body_case == ALYS__WIRE__WIRE_MSG__BODY_GET_HEADERS;
    uint64_t start = headers ? req->get_headers->start : req->get_blocks->start;
    uint32_t count = headers ? req->get_headers->count : req->get_blocks->count;
    if (count > ALYS_WIRE_MAX_HEADERS)
        return;
    size_t n = (size_t) count + 1;
    ProtobufCBinaryData *items = calloc(n, sizeof *items);
    static uint8_t item[64];
    if (!items)
        return;
    for (size_t i = 0; i < n; i++)
        items[i] = (ProtobufCBinaryData){sizeof item, item};
    alys_wire_msg_t m = ALYS__WIRE__WIRE_MSG__INIT;
    Alys__Wire__Headers h = ALYS__WIRE__HEADERS__INIT;
    Alys__Wire__Blocks b = ALYS__WIRE__BLOCKS__INIT;
    m.request_id = req->request_id;
    if (headers) {
        h.start = start;
        h.n_headers = n;
        h.headers = items;
        m.body_case = ALYS__WIRE__WIRE_MSG__BODY_HEADERS;
        m.headers = &h;
    } else {
        b.start = start;
        b.n_blocks = n;
        b.blocks = items;
        m.body_case = ALYS__WIRE__WIRE_MSG__BODY_BLOCKS;
        m.blocks = &b;
    }
    send_msg(self, who, &m, 0);
    free(items);
    atomic_fetch_add(&self->sent, 1);
}

/* One burst of the mode's frames. */
static void attack(hs_server_t *self, zframe_t *who)
{
    static const uint8_t junk[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f};
    alys_wire_msg_t m = ALYS__WIRE__WIRE_MSG__INIT;
    m.request_id = random_id();
    int n = 0;
    switch (self->mode) {
    case HS_JUNK:
        for (n = 0; n < 8; n++) {
            const void *parts[] = {junk};
            size_t len = sizeof junk;
            to_node(self, who, parts, &len, 1);
        }
        break;
    case HS_EMPTY:
        for (n = 0; n < 8; n++) {
            const void *parts[] = {""};
            size_t len = 0;
            to_node(self, who, parts, &len, 1);
        }
        break;
    case HS_UNSOLICITED: {
        Alys__Wire__Headers h = ALYS__WIRE__HEADERS__INIT;
        h.start = 1;
        m.body_case = ALYS__WIRE__WIRE_MSG__BODY_HEADERS;
        m.headers = &h;
        for (n = 0; n < 8; n++) {
            m.request_id = random_id();
            send_msg(self, who, &m, 0);
        }
        break;
    }
    case HS_UNSOLICITED_BIG: {
        const void *parts[] = {self->big};
        to_node(self, who, parts, &self->big_len, 1);
        n = 1;
        break;
    }
    case HS_OVERSIZE: {
        Alys__Wire__WireError e = ALYS__WIRE__WIRE_ERROR__INIT;
        e.code = ALYS__WIRE__WIRE_ERROR__CODE__UNAVAILABLE;
        e.message = (char *) "padded";
        m.body_case = ALYS__WIRE__WIRE_MSG__BODY_ERROR;
        m.error = &e;
        for (n = 0; n < 2; n++)
            send_msg(self, who, &m, 1u << 20);
        break;
    }
    case HS_WRONG_WAY: {
        Alys__Wire__GetBlocks gb = ALYS__WIRE__GET_BLOCKS__INIT;
        gb.start = 1;
        gb.count = 1024;
        m.body_case = ALYS__WIRE__WIRE_MSG__BODY_GET_BLOCKS;
        m.get_blocks = &gb;
        for (n = 0; n < 8; n++)
            send_msg(self, who, &m, 0);
        break;
    }
    case HS_MULTIPART:
        for (n = 0; n < 8; n++) {
            const void *parts[] = {junk, junk, junk};
            size_t lens[] = {sizeof junk, sizeof junk, sizeof junk};
            to_node(self, who, parts, lens, 3);
        }
        break;
    default: break;
    }
    atomic_fetch_add(&self->sent, (uint64_t) n);
}

static void on_node(hs_server_t *self, zframe_t **last)
{
    zmsg_t *msg = zmsg_recv(self->router);
    zframe_t *who = msg ? zmsg_pop(msg) : NULL;
    zframe_t *data = msg ? zmsg_pop(msg) : NULL;
    if (who && data) {
        char err[160];
        alys_wire_msg_t *m = alys_wire_decode(zframe_data(data), zframe_size(data), err, sizeof err);
        bool status = m && m->body_case == ALYS__WIRE__WIRE_MSG__BODY_STATUS;
        if (status)
            answer_status(self, who, m->request_id);
        else if (m && self->mode == HS_DUPLICATE)
            answer_twice(self, who, m);
        else if (m && self->mode == HS_MISMATCH &&
                 (m->body_case == ALYS__WIRE__WIRE_MSG__BODY_GET_HEADERS ||
                  m->body_case == ALYS__WIRE__WIRE_MSG__BODY_GET_BLOCKS))
            answer_more(self, who, m);
        alys_wire_free(&m);
        /* Ready only after our first Status answer: the attack follows it. */
        if (status || *last) {
            zframe_destroy(last);
            *last = zframe_dup(who);
            attack(self, who);
        }
    }
    zframe_destroy(&who);
    zframe_destroy(&data);
    zmsg_destroy(&msg);
}

static void hs_run(zsock_t *pipe, void *arg)
{
    hs_server_t *self = arg;
    self->router = zsock_new(ZMQ_ROUTER);
    bool ok = self->router != NULL;
    if (ok) {
        zsock_set_linger(self->router, 0);
        zsock_set_sndhwm(self->router, 1000);
        zsock_set_router_mandatory(self->router, 0); /* a hung-up node: dropped */
        /* A CURVE server (no ZAP handler here: any client key is let in). */
        zsock_set_curve_server(self->router, 1);
        zsock_set_curve_secretkey_bin(self->router, alys_nodekey_secret(self->key));
        int port = zsock_bind(self->router, "%s", self->endpoint);
        ok = port > 0;
        if (ok)
            snprintf(self->endpoint, sizeof self->endpoint, "alys://%s@127.0.0.1:%d",
                     alys_nodekey_public_hex(self->key), port);
    }
    if (ok && self->mode == HS_UNSOLICITED_BIG)
        ok = (self->big = hc_pack_blocks(random_id(), 1, 7, (1u << 20) - 64, &self->big_len)) != NULL;
    self->up = ok;
    zsock_signal(pipe, ok ? 0 : 1);
    zpoller_t *poller = ok ? zpoller_new(pipe, self->router, NULL) : NULL;
    zframe_t *last = NULL;
    int64_t next_tick = it_now_ms() + HS_TICK_MS;
    while (poller) {
        void *which = zpoller_wait(poller, HS_TICK_MS);
        if (which == pipe) {
            zmsg_t *cmd = zmsg_recv(pipe);
            char *name = cmd ? zmsg_popstr(cmd) : NULL;
            bool term = !name || strcmp(name, "$TERM") == 0;
            free(name);
            zmsg_destroy(&cmd);
            if (term)
                break;
        } else if (which == self->router) {
            on_node(self, &last);
        } else if (zpoller_terminated(poller)) {
            break;
        }
        if (last && it_now_ms() >= next_tick) {
            attack(self, last);
            next_tick = it_now_ms() + HS_TICK_MS;
        }
    }
    zframe_destroy(&last);
    zpoller_destroy(&poller);
    zsock_destroy(&self->router);
    free(self->big);
    self->big = NULL;
}

hs_server_t *hs_new(const char *endpoint, hs_mode_t mode, const uint8_t *genesis, uint64_t height,
                    const char *node_id)
{
    hs_server_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    snprintf(self->endpoint, sizeof self->endpoint, "%s", endpoint);
    if (!(self->key = alys_nodekey_new())) {
        free(self);
        return NULL;
    }
    snprintf(self->node_id, sizeof self->node_id, "%s",
             node_id ? node_id : alys_nodekey_public_hex(self->key));
    memcpy(self->genesis, genesis, ALYS_HASH_LEN);
    self->mode = mode;
    self->height = height;
    atomic_init(&self->sent, 0);
    atomic_init(&self->probes, 0);
    self->actor = zactor_new(hs_run, self);
    /* zactor_new waits for the signal: a failed bind ends the thread. */
    if (!self->actor || !self->up) {
        hs_destroy(&self);
        return NULL;
    }
    return self;
}

void hs_destroy(hs_server_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    zactor_destroy(&(*self_p)->actor);
    alys_nodekey_destroy(&(*self_p)->key);
    free(*self_p);
    *self_p = NULL;
}

const char *hs_endpoint(hs_server_t *self)
{
    return self->endpoint;
}

const char *hs_key(hs_server_t *self)
{
    return alys_nodekey_public_hex(self->key);
}

uint64_t hs_sent(hs_server_t *self)
{
    return atomic_load(&self->sent);
}

uint64_t hs_probes(hs_server_t *self)
{
    return atomic_load(&self->probes);
}
