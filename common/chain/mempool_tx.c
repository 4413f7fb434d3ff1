/*  mempool_tx.c: see mempool_tx.h. */
#include <stddef.h>
#include <string.h>

#include "chain.pb-c.h"
#include "mempool_tx.h"

/* Unpacked Tx of at most ALYS_TX_MAX_BYTES input needs a few hundred bytes:
 * the message and two byte fields point into it. */
#define ARENA_BYTES 1024

typedef struct {
    _Alignas(max_align_t) uint8_t mem[ARENA_BYTES];
    size_t used;
} arena_t;

static void *arena_alloc(void *data, size_t size)
{
    arena_t *a = data;
    size_t need = (size + 15) & ~(size_t) 15;
    if (need > ARENA_BYTES - a->used)
        return NULL;
    void *p = a->mem + a->used;
    a->used += need;
    return p;
}

static void arena_free(void *data, void *ptr)
{
    (void) data;
    (void) ptr; /* the arena goes with the stack frame */
}

static void to_pb(const alys_tx_t *tx, Alys__Chain__Tx *m)
{
    *m = (Alys__Chain__Tx) ALYS__CHAIN__TX__INIT;
    m->from = (ProtobufCBinaryData){ALYS_PUBKEY_LEN, (uint8_t *) tx->from};
    m->to = (ProtobufCBinaryData){ALYS_PUBKEY_LEN, (uint8_t *) tx->to};
    m->amount = tx->amount;
    m->fee = tx->fee;
    m->nonce = tx->nonce;
    m->signature = (ProtobufCBinaryData){ALYS_SIG_LEN, (uint8_t *) tx->signature};
}

size_t alys_tx_encoded_size(const alys_tx_t *tx)
{
    Alys__Chain__Tx m;
    to_pb(tx, &m);
    return alys__chain__tx__get_packed_size(&m);
}

size_t alys_tx_encode(const alys_tx_t *tx, uint8_t buf[ALYS_TX_MAX_BYTES])
{
    Alys__Chain__Tx m;
    to_pb(tx, &m);
    /* The largest Tx (every varint 10 bytes) is 167 bytes: always fits. */
    return alys__chain__tx__pack(&m, buf);
}

int alys_tx_decode(const uint8_t *buf, size_t len, alys_tx_t *out, const char **why)
{
    static const char *unused;
    if (!why)
        why = &unused;
    if (len > ALYS_TX_MAX_BYTES) {
        *why = "oversize";
        return -1;
    }
    arena_t arena = {.used = 0};
    ProtobufCAllocator alloc = {.alloc = arena_alloc, .free = arena_free, .allocator_data = &arena};
    Alys__Chain__Tx *m = alys__chain__tx__unpack(&alloc, len, buf);
    if (!m) {
        *why = "undecodable";
        return -1;
    }
    if (m->from.len != ALYS_PUBKEY_LEN || m->to.len != ALYS_PUBKEY_LEN ||
        m->signature.len != ALYS_SIG_LEN) {
        *why = "bad_field";
        return -1;
    }
    memcpy(out->from, m->from.data, ALYS_PUBKEY_LEN);
    memcpy(out->to, m->to.data, ALYS_PUBKEY_LEN);
    memcpy(out->signature, m->signature.data, ALYS_SIG_LEN);
    out->amount = m->amount;
    out->fee = m->fee;
    out->nonce = m->nonce;
    return 0;
}

void alys_tx_id(const alys_tx_t *tx, alys_hash_t out)
{
    uint8_t buf[ALYS_TX_MAX_BYTES];
    size_t len = alys_tx_encode(tx, buf);
    alys_sha256(buf, len, out);
}
