/*  submit.c: see submit.h. */
#include "submit.h"

#include <czmq.h>
#include <string.h>
#include <unistd.h>

#include "chain/mempool_tx.h"
#include "nodeaddr.h"
#include "nodekey.h"
#include "peerlink.h"
#include "util.h"
#include "wire/wire.h"

struct submit {
    zsock_t *sock;
    alys_nodekey_t *key; /* ours on a CURVE link, NULL on plaintext */
    uint64_t next_id;
    submit_tally_t tally;
    uint8_t bufs[SUBMIT_MAX_BATCH][ALYS_TX_MAX_BYTES]; /* the message being sent */
};

void submit_tally_result(submit_tally_t *t, const char *r)
{
    if (strcmp(r, "added") == 0 || strcmp(r, "added_evicted") == 0) {
        t->accepted++;
        return;
    }
    for (size_t i = 0; i < SUBMIT_REASONS; i++) {
        if (t->reason[i][0] == 0)
            snprintf(t->reason[i], sizeof t->reason[i], "%s", r);
        if (strcmp(t->reason[i], r) == 0) {
            t->count[i]++;
            return;
        }
    }
}

void submit_tally_print(const submit_tally_t *t, FILE *f)
{
    fprintf(f, "alys-loadgen: %llu txs in %llu messages: %llu accepted", (unsigned long long) t->txs,
            (unsigned long long) t->messages, (unsigned long long) t->accepted);
    for (size_t i = 0; i < SUBMIT_REASONS && t->reason[i][0]; i++)
        fprintf(f, ", %s %llu", t->reason[i], (unsigned long long) t->count[i]);
    fprintf(f, "; rate-limited messages %llu, other errors %llu, unanswered %llu\n",
            (unsigned long long) t->rate_limited, (unsigned long long) t->other_errors,
            (unsigned long long) (t->messages - t->answered - t->rate_limited - t->other_errors));
}

static int send_msg(submit_t *self, const alys_wire_msg_t *m)
{
    zframe_t *f = alys_wire_encode(m);
    if (!f)
        return -1;
    int rc = zframe_send(&f, self->sock, 0);
    zframe_destroy(&f);
    return rc;
}

/* One frame, waiting up to wait_ms; NULL on timeout or an undecodable frame. */
static alys_wire_msg_t *recv_msg(submit_t *self, int wait_ms)
{
    zpoller_t *p = zpoller_new(self->sock, NULL);
    void *ready = p ? zpoller_wait(p, wait_ms) : NULL;
    zpoller_destroy(&p);
    if (!ready)
        return NULL;
    zframe_t *f = zframe_recv(self->sock);
    if (!f)
        return NULL;
    char err[128];
    alys_wire_msg_t *m = alys_wire_decode(zframe_data(f), zframe_size(f), err, sizeof err);
    zframe_destroy(&f);
    return m;
}

submit_t *submit_new(const char *endpoint, const alys_hash_t genesis_hash, int timeout_ms,
                     char *err, size_t errlen)
{
    submit_t *self = calloc(1, sizeof *self);
    if (!self || !(self->sock = zsock_new(ZMQ_DEALER))) {
        snprintf(err, errlen, "out of memory");
        submit_destroy(&self);
        return NULL;
    }
    zsock_set_linger(self->sock, 0);
    char id[ALYS_WIRE_ID_MAX];
    snprintf(id, sizeof id, "loadgen-%d", (int) getpid());
    zsock_set_identity(self->sock, id);
    /* On a CURVE link, a fresh key of ours each run: we are that key. */
    if (alys_nodeaddr_valid(endpoint) && (self->key = alys_nodekey_new()))
        snprintf(id, sizeof id, "%s", alys_nodekey_public_hex(self->key));
    if (alys_peerlink_connect(self->sock, endpoint, self->key) != 0) {
        snprintf(err, errlen, "cannot connect to %s", endpoint);
        submit_destroy(&self);
        return NULL;
    }
    Alys__Wire__Status st = ALYS__WIRE__STATUS__INIT;
    st.protocol_version = ALYS_WIRE_PROTOCOL_VERSION;
    st.genesis_hash = (ProtobufCBinaryData){ALYS_HASH_LEN, (uint8_t *) genesis_hash};
    st.node_id = id; /* on a CURVE link our key, the only id the node takes */
    st.listen = "";
    alys_wire_msg_t m = ALYS__WIRE__WIRE_MSG__INIT;
    m.request_id = ++self->next_id;
    m.body_case = ALYS__WIRE__WIRE_MSG__BODY_STATUS;
    m.status = &st;
    alys_wire_msg_t *r = send_msg(self, &m) == 0 ? recv_msg(self, timeout_ms) : NULL;
    bool ok = r && r->body_case == ALYS__WIRE__WIRE_MSG__BODY_STATUS;
    if (!ok)
        snprintf(err, errlen, "%s: no handshake within %d ms%s%s", endpoint, timeout_ms,
                 r && r->body_case == ALYS__WIRE__WIRE_MSG__BODY_ERROR ? ": " : "",
                 r && r->body_case == ALYS__WIRE__WIRE_MSG__BODY_ERROR && r->error->message
                     ? r->error->message
                     : "");
    alys_wire_free(&r);
    if (!ok)
        submit_destroy(&self);
    return self;
}

void submit_destroy(submit_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    zsock_destroy(&(*self_p)->sock);
    alys_nodekey_destroy(&(*self_p)->key);
    free(*self_p);
    *self_p = NULL;
}

int submit_send(submit_t *self, const alys_tx_t *txs, size_t n)
{
    if (n == 0 || n > SUBMIT_MAX_BATCH)
        return -1;
    ProtobufCBinaryData items[SUBMIT_MAX_BATCH];
    for (size_t i = 0; i < n; i++)
        items[i] = (ProtobufCBinaryData){alys_tx_encode(&txs[i], self->bufs[i]), self->bufs[i]};
    Alys__Wire__SubmitTx st = ALYS__WIRE__SUBMIT_TX__INIT;
    st.n_txs = n;
    st.txs = items;
    alys_wire_msg_t m = ALYS__WIRE__WIRE_MSG__INIT;
    m.request_id = ++self->next_id;
    m.body_case = ALYS__WIRE__WIRE_MSG__BODY_SUBMIT_TX;
    m.submit_tx = &st;
    if (send_msg(self, &m) != 0)
        return -1;
    self->tally.messages++;
    self->tally.txs += n;
    return 0;
}

static void take(submit_t *self, const alys_wire_msg_t *m)
{
    submit_tally_t *t = &self->tally;
    if (m->body_case == ALYS__WIRE__WIRE_MSG__BODY_TX_RESULTS) {
        t->answered++;
        for (size_t i = 0; i < m->tx_results->n_results; i++)
            submit_tally_result(t, m->tx_results->results[i]);
    } else if (m->body_case == ALYS__WIRE__WIRE_MSG__BODY_ERROR) {
        if (m->error->code == ALYS__WIRE__WIRE_ERROR__CODE__RATE_LIMITED)
            t->rate_limited++;
        else
            t->other_errors++;
    }
}

void submit_poll(submit_t *self, int wait_ms)
{
    alys_wire_msg_t *m;
    while ((m = recv_msg(self, wait_ms)) != NULL) {
        take(self, m);
        alys_wire_free(&m);
        wait_ms = 0;
    }
}

void submit_drain(submit_t *self, int timeout_ms)
{
    int64_t end = zclock_mono() + timeout_ms;
    const submit_tally_t *t = &self->tally;
    while (t->answered + t->rate_limited + t->other_errors < t->messages) {
        int64_t left = end - zclock_mono();
        if (left <= 0)
            return;
        submit_poll(self, (int) (left < 100 ? left : 100));
    }
}

const submit_tally_t *submit_tally(const submit_t *self)
{
    return &self->tally;
}
