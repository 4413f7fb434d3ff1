/*  forge/fault.c: see fault.h. alys_forge_fault_mutate is the change
 *  alone (the generator applies it where the change belongs in its
 *  pipeline); alys_forge_corrupt_block applies it to a finished block and
 *  re-signs what the change touched.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "forge/fault.h"

#include "chain.pb-c.h"
#include "util.h"

#define FAR_FUTURE_MS 31557600000000ULL /* 1000 Julian years */

bool alys_forge_fault_is_kind(alys_block_error_t k)
{
    return k > ALYS_BLOCK_OK && k < ALYS_BLOCK_ERROR_COUNT && k != ALYS_BLOCK_INTERNAL_ERROR;
}

bool alys_forge_fault_needs_tx(alys_block_error_t k)
{
    return k == ALYS_BLOCK_BAD_TX_SIG || k == ALYS_BLOCK_BAD_NONCE ||
           k == ALYS_BLOCK_INSUFFICIENT_BALANCE;
}

bool alys_forge_fault_is_encoding(alys_block_error_t kind)
{
    return kind == ALYS_BLOCK_MALFORMED || kind == ALYS_BLOCK_OVERSIZE;
}

int alys_forge_fault_parse(const char *name, alys_block_error_t *kind, char *err, size_t errlen)
{
    char list[512] = "";
    size_t used = 0;
    for (int k = 0; k < ALYS_BLOCK_ERROR_COUNT; k++) {
        if (!alys_forge_fault_is_kind((alys_block_error_t) k))
            continue;
        const char *n = alys_block_error_name((alys_block_error_t) k);
        if (strcmp(n, name) == 0) {
            *kind = (alys_block_error_t) k;
            return 0;
        }
        int w = snprintf(list + used, sizeof list - used, "%s%s", used ? ", " : "", n);
        if (w > 0 && (size_t) w < sizeof list - used)
            used += (size_t) w;
    }
    return alys_set_err(err, errlen, -1, "--fault %s: unknown kind (one of: %s)", name, list);
}

/* The slot, and the proposer and timestamp that go with it, so that a slot
 * fault breaks the slot rule only. */
void alys_forge_set_slot(alys_header_t *h, const alys_genesis_t *g, uint64_t slot)
{
    h->slot = slot;
    h->proposer = (uint32_t) (slot % g->authority_count);
    h->timestamp = g->genesis_time + slot * g->slot_duration_ms / 1000;
}

static uint64_t far_future_slots(const alys_genesis_t *g)
{
    return FAR_FUTURE_MS / g->slot_duration_ms;
}

/* Check the preconditions of kind on b. Returns 0 or -1 with err. */
static int fault_applies(const alys_block_t *b, alys_block_error_t kind,
                         const alys_forge_fault_ctx_t *ctx, char *err, size_t errlen)
{
    if (!alys_forge_fault_is_kind(kind) || alys_forge_fault_is_encoding(kind))
        return alys_set_err(err, errlen, -1, "fault %s does not apply to a block value",
                            alys_block_error_name(kind));
    if (alys_forge_fault_needs_tx(kind) && b->tx_count == 0)
        return alys_set_err(err, errlen, -1, "fault %s needs a block with txs",
                            alys_block_error_name(kind));
    if (kind == ALYS_BLOCK_WRONG_PROPOSER && ctx->genesis->authority_count < 2)
        return alys_set_err(err, errlen, -1, "fault wrong_proposer needs at least 2 authorities");
    if (kind == ALYS_BLOCK_NON_INCREASING_SLOT && !ctx->parent)
        return alys_set_err(err, errlen, -1, "fault non_increasing_slot needs the parent header");
    return 0;
}

int32_t alys_forge_fault_mutate(alys_block_t *b, alys_block_error_t kind,
                                const alys_forge_fault_ctx_t *ctx)
{
    alys_header_t *h = &b->header;
    const alys_genesis_t *g = ctx->genesis;
    int32_t m = (int32_t) (b->tx_count / 2);
    switch (kind) {
    case ALYS_BLOCK_BAD_PROPOSER_SIG: h->signature[0] ^= 1; break;
    case ALYS_BLOCK_WRONG_PROPOSER:
        h->proposer = (uint32_t) ((h->slot + 1) % g->authority_count);
        break;
    case ALYS_BLOCK_BAD_TX_SIG: b->txs[m].signature[0] ^= 1; return m;
    case ALYS_BLOCK_TX_ROOT_MISMATCH: h->tx_root[0] ^= 1; break;
    case ALYS_BLOCK_PARENT_MISMATCH: h->parent_hash[0] ^= 1; break;
    case ALYS_BLOCK_HEIGHT_GAP: h->height += 1; break;
    case ALYS_BLOCK_NON_INCREASING_SLOT: alys_forge_set_slot(h, g, ctx->parent->slot); break;
    case ALYS_BLOCK_FUTURE_SLOT: alys_forge_set_slot(h, g, h->slot + far_future_slots(g)); break;
    case ALYS_BLOCK_BAD_TIMESTAMP: h->timestamp += 1; break;
    case ALYS_BLOCK_BAD_NONCE: b->txs[m].nonce += 1; return m;
    case ALYS_BLOCK_INSUFFICIENT_BALANCE: b->txs[m].amount = 1ULL << 62; return m;
    case ALYS_BLOCK_STATE_ROOT_MISMATCH: h->state_root[0] ^= 1; break;
    default: break;
    }
    return -1;
}

static int sign_hash(const uint8_t *sec, const alys_hash_t msg, uint8_t sig[ALYS_SIG_LEN])
{
    return sec ? alys_sign(sec, msg, sig) : -1;
}

/* Re-sign tx m and redo the tx root (tx kinds), then re-sign the header
 * (every kind but the two that break a signature on purpose). */
static int resign(alys_block_t *b, alys_block_error_t kind, int32_t m,
                  const alys_forge_fault_ctx_t *ctx, char *err, size_t errlen)
{
    alys_hash_t hash;
    if (kind == ALYS_BLOCK_BAD_NONCE || kind == ALYS_BLOCK_INSUFFICIENT_BALANCE) {
        alys_tx_t *tx = &b->txs[m];
        alys_tx_hash(tx, hash);
        if (sign_hash(alys_forge_keys_secret(ctx->keys, tx->from), hash, tx->signature) != 0)
            return alys_set_err(err, errlen, -1, "fault %s: no secret key for the sender of tx %d",
                                alys_block_error_name(kind), m);
        alys_tx_root(b->txs, b->tx_count, b->header.tx_root);
    }
    if (kind == ALYS_BLOCK_BAD_PROPOSER_SIG || kind == ALYS_BLOCK_BAD_TX_SIG)
        return 0;
    uint32_t p = b->header.proposer;
    alys_header_hash(&b->header, hash);
    if (p >= ctx->keys->authority_count ||
        sign_hash(ctx->keys->authority_sec[p], hash, b->header.signature) != 0)
        return alys_set_err(err, errlen, -1, "fault %s: no secret key for authority %u",
                            alys_block_error_name(kind), p);
    return 0;
}

int alys_forge_corrupt_block(alys_block_t *b, alys_block_error_t kind,
                             const alys_forge_fault_ctx_t *ctx, int32_t *tx_index, char *err,
                             size_t errlen)
{
    if (fault_applies(b, kind, ctx, err, errlen) != 0)
        return -1;
    /* a fault touches the header and at most tx m: keep both to restore */
    alys_header_t header = b->header;
    int32_t m = (int32_t) (b->tx_count / 2);
    alys_tx_t tx = {0};
    if (b->tx_count)
        tx = b->txs[m];
    int32_t changed = alys_forge_fault_mutate(b, kind, ctx);
    if (resign(b, kind, changed, ctx, err, errlen) != 0) {
        b->header = header;
        if (b->tx_count)
            b->txs[m] = tx;
        return -1;
    }
    if (tx_index)
        *tx_index = changed;
    return 0;
}

/* One tx as protobuf bytes, for padding an oversize record. */
static int encode_tx_pb(const alys_tx_t *tx, uint8_t **out, size_t *len)
{
    Alys__Chain__Tx m = ALYS__CHAIN__TX__INIT;
    m.from = (ProtobufCBinaryData){ALYS_PUBKEY_LEN, (uint8_t *) tx->from};
    m.to = (ProtobufCBinaryData){ALYS_PUBKEY_LEN, (uint8_t *) tx->to};
    m.amount = tx->amount;
    m.fee = tx->fee;
    m.nonce = tx->nonce;
    m.signature = (ProtobufCBinaryData){ALYS_SIG_LEN, (uint8_t *) tx->signature};
    *len = alys__chain__tx__get_packed_size(&m);
    *out = malloc(*len);
    if (!*out)
        return -1;
    alys__chain__tx__pack(&m, *out);
    return 0;
}

static size_t put_varint(uint8_t *p, uint64_t v)
{
    size_t n = 0;
    while (v >= 0x80) {
        p[n++] = (uint8_t) (v | 0x80);
        v >>= 7;
    }
    p[n++] = (uint8_t) v;
    return n;
}

/* Block.txs is field 2, length-delimited: protobuf appends repeated
 * elements found later in the bytes, so extra "0x12 len tx" entries after a
 * valid encoding add txs without re-encoding the rest. */
static int pad_txs(const alys_block_t *b, uint8_t *enc, size_t enc_len, uint8_t **out, size_t *len)
{
    static const alys_tx_t zero_tx;
    uint8_t *tx_bytes = NULL;
    size_t tx_len = 0;
    if (encode_tx_pb(b->tx_count ? &b->txs[0] : &zero_tx, &tx_bytes, &tx_len) != 0)
        return -1;
    size_t extra = (size_t) ALYS_MAX_TXS_PER_BLOCK + 1 - b->tx_count;
    size_t per = 1 + 10 + tx_len;
    uint8_t *buf = malloc(enc_len + extra * per);
    if (!buf) {
        free(tx_bytes);
        return -1;
    }
    memcpy(buf, enc, enc_len);
    size_t n = enc_len;
    for (size_t i = 0; i < extra; i++) {
        buf[n++] = 0x12;
        n += put_varint(buf + n, tx_len);
        memcpy(buf + n, tx_bytes, tx_len);
        n += tx_len;
    }
    free(tx_bytes);
    *out = buf;
    *len = n;
    return 0;
}

int alys_forge_corrupt_encoding(const alys_block_t *b, alys_block_error_t kind, uint8_t **out,
                                size_t *len, char *err, size_t errlen)
{
    if (!alys_forge_fault_is_encoding(kind) || b->tx_count > ALYS_MAX_TXS_PER_BLOCK)
        return alys_set_err(err, errlen, -1, "fault %s is not an encoding fault",
                            alys_block_error_name(kind));
    uint8_t *enc = NULL;
    size_t enc_len = 0;
    if (alys_block_encode(b, &enc, &enc_len) != 0)
        return alys_set_err(err, errlen, -1, "fault %s: the block does not encode",
                            alys_block_error_name(kind));
    int rc = 0;
    if (kind == ALYS_BLOCK_MALFORMED) {
        /* field 1 (header), length 127, then the end: a field running past
         * the end of the bytes, which no decoder can accept */
        uint8_t *buf = realloc(enc, enc_len + 2);
        if (!buf) {
            rc = -1;
        } else {
            buf[enc_len] = 0x0A;
            buf[enc_len + 1] = 0x7F;
            enc = NULL;
            *out = buf;
            *len = enc_len + 2;
        }
    } else {
        rc = pad_txs(b, enc, enc_len, out, len);
    }
    free(enc);
    if (rc != 0)
        (void) alys_set_err(err, errlen, -1, "fault %s: out of memory", alys_block_error_name(kind));
    else if (*len > ALYS_MAX_BLOCK_BYTES) {
        (void) alys_set_err(err, errlen, -1,
                            "fault %s: record of %zu bytes would not fit the export stream",
                            alys_block_error_name(kind), *len);
        free(*out);
        *out = NULL;
        rc = -1;
    }
    return rc;
}
