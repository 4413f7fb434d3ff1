/*  chaingen.c: the deterministic chain generator (contract in chaingen.h).
 *
 *  Speed. A block costs K+1 signatures (~17 us each with a cached key pair)
 *  and, for its state root, two SHAKE256 lattice vectors (~4.5 us each) per
 *  touched account, done once by the generator to learn the root and once
 *  more by alys_execute_block to confirm it. Blocks are therefore built in
 *  batches, in a pipeline:
 *    1. draft  (sequential): slots, txs, the generator's own account
 *       arithmetic and incremental lattice -> state root; draft and tx faults
 *    2. txs    (parallel):   sign every tx, tx root
 *    3. link   (sequential): parent hashes, header hashes; link faults
 *    4. seal   (parallel):   sign headers, encode records
 *    5. fault  (sequential): faults on signed or encoded blocks
 *  while a separate thread executes the previous batch with
 *  alys_execute_block over an alys_memstate (the chain's own rules confirm
 *  every root the generator computed). Nothing here depends on timing or
 *  thread count: every item's output is a pure function of its inputs.
 *
 *  Signing uses libsecp256k1 directly (BIP340, no aux randomness, exactly
 *  what alys_sign does) only to keep each key pair parsed once: alys_sign
 *  re-derives the key pair per call, which doubles the cost. The tests check
 *  every generated signature with alys_verify.
 */
#include "chaingen.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <secp256k1.h>
#include <secp256k1_extrakeys.h>
#include <secp256k1_schnorrsig.h>

#include "chain.pb-c.h"
#include "chain/export.h"
#include "chain/memstate.h"
#include "chain/state.h"

#define KDF_TAG      "alys-chaingen/v1"
#define RNG_TAG      "alys-chaingen/v1/rng"
#define SKIP_ONE_IN  20            /* 1 slot in 20 is left empty */
#define MAX_AMOUNT   1000
#define MAX_FEE      10
#define FAR_FUTURE_MS 31557600000000ULL   /* 1000 Julian years */
#define BATCH_TXS    16384         /* txs per batch: bounds the pipeline's memory */
#define MAX_BATCH    256
#define VCACHE_MAX   16384         /* accounts whose lattice vector we keep (32 MiB) */
#define POOL         3             /* batches alive: emitting, executing, building */

static void set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

static uint32_t online_cpus(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    if (n < 1)
        return 1;
    return n > ALYS_CHAINGEN_MAX_THREADS ? ALYS_CHAINGEN_MAX_THREADS : (uint32_t)n;
}

/* ================================================================ parallel */

/* Fork-join over n items with a shared counter (dynamic balance). If a
 * thread cannot be started the caller simply does more of the work. */
typedef void (*par_fn)(void *ctx, size_t i);

typedef struct {
    par_fn        fn;
    void         *ctx;
    size_t        n;
    atomic_size_t next;
} par_t;

static void *par_worker(void *arg)
{
    par_t *p = arg;
    for (size_t i; (i = atomic_fetch_add(&p->next, 1)) < p->n;)
        p->fn(p->ctx, i);
    return NULL;
}

static void parallel_for(size_t n, uint32_t threads, par_fn fn, void *ctx)
{
    par_t p = { .fn = fn, .ctx = ctx, .n = n };
    atomic_init(&p.next, 0);
    pthread_t tid[ALYS_CHAINGEN_MAX_THREADS];
    uint32_t started = 0;
    for (uint32_t k = 1; k < threads && k < n; k++)
        if (pthread_create(&tid[started], NULL, par_worker, &p) == 0)
            started++;
    par_worker(&p);
    for (uint32_t k = 0; k < started; k++)
        pthread_join(tid[k], NULL);
}

/* ================================================================ keys */

/* One secp256k1 context for all signing threads: signing only reads it. Not
 * randomized: these keys come from a public seed, blinding protects nothing. */
static secp256k1_context *s_ctx;
static pthread_once_t s_ctx_once = PTHREAD_ONCE_INIT;

static void ctx_init(void)
{
    s_ctx = secp256k1_context_create(SECP256K1_CONTEXT_NONE);
}

static const secp256k1_context *sctx(void)
{
    (void)pthread_once(&s_ctx_once, ctx_init);
    return s_ctx;
}

/* SHA-256(tag 0 seed 0 label 0 index-u32le [counter]) until it is a valid
 * secret key (fails with probability ~2^-128, so counter is ~always absent). */
static void derive_secret(const char *seed, const char *label, uint32_t index,
                          uint8_t out[ALYS_SECKEY_LEN])
{
    uint8_t buf[sizeof KDF_TAG + ALYS_CHAINGEN_MAX_SEED + 1 + 16 + 4 + 1];
    size_t n = 0, sl = strnlen(seed, ALYS_CHAINGEN_MAX_SEED), ll = strlen(label);
    memcpy(buf + n, KDF_TAG, sizeof KDF_TAG);          /* includes the NUL */
    n += sizeof KDF_TAG;
    memcpy(buf + n, seed, sl);
    n += sl;
    buf[n++] = 0;
    memcpy(buf + n, label, ll);
    n += ll;
    buf[n++] = 0;
    for (int i = 0; i < 4; i++)
        buf[n++] = (uint8_t)(index >> (8 * i));
    alys_sha256(buf, n, out);
    for (uint8_t counter = 1; !secp256k1_ec_seckey_verify(sctx(), out); counter++) {
        buf[n] = counter;
        alys_sha256(buf, n + 1, out);
    }
}

typedef struct {
    const char           *seed;
    alys_chaingen_keys_t *k;
    secp256k1_keypair    *kp;      /* authorities then accounts, may be NULL */
    atomic_int            failed;
} derive_job_t;

static void derive_one(void *arg, size_t i)
{
    derive_job_t *j = arg;
    bool auth = i < j->k->authority_count;
    uint32_t idx = auth ? (uint32_t)i : (uint32_t)(i - j->k->authority_count);
    uint8_t *sec = auth ? j->k->authority_sec[idx] : j->k->account_sec[idx];
    uint8_t *pub = auth ? j->k->authority_pub[idx] : j->k->account_pub[idx];
    secp256k1_keypair local, *kp = j->kp ? &j->kp[i] : &local;
    secp256k1_xonly_pubkey x;
    derive_secret(j->seed, auth ? "authority" : "account", idx, sec);
    if (!secp256k1_keypair_create(sctx(), kp, sec) ||
        !secp256k1_keypair_xonly_pub(sctx(), &x, NULL, kp) ||
        !secp256k1_xonly_pubkey_serialize(sctx(), pub, &x))
        atomic_store(&j->failed, 1);
}

static int keys_alloc(alys_chaingen_keys_t *k, uint32_t authorities, uint32_t accounts)
{
    memset(k, 0, sizeof *k);
    k->authority_count = authorities;
    k->account_count = accounts;
    k->authority_sec = calloc(authorities ? authorities : 1, ALYS_SECKEY_LEN);
    k->authority_pub = calloc(authorities ? authorities : 1, ALYS_PUBKEY_LEN);
    k->account_sec = calloc(accounts ? accounts : 1, ALYS_SECKEY_LEN);
    k->account_pub = calloc(accounts ? accounts : 1, ALYS_PUBKEY_LEN);
    if (!k->authority_sec || !k->authority_pub || !k->account_sec || !k->account_pub) {
        alys_chaingen_keys_clear(k);
        return -1;
    }
    return 0;
}

/* kp (may be NULL): receives the F + A key pairs, authorities first. */
static int keys_derive(const char *seed, uint32_t authorities, uint32_t accounts,
                       uint32_t threads, alys_chaingen_keys_t *out, secp256k1_keypair *kp)
{
    if (!sctx() || keys_alloc(out, authorities, accounts) != 0)
        return -1;
    derive_job_t j = { .seed = seed, .k = out, .kp = kp };
    atomic_init(&j.failed, 0);
    parallel_for((size_t)authorities + accounts, threads, derive_one, &j);
    if (atomic_load(&j.failed)) {
        alys_chaingen_keys_clear(out);
        return -1;
    }
    return 0;
}

int alys_chaingen_keys_derive(const char *seed, uint32_t authorities, uint32_t accounts,
                              alys_chaingen_keys_t *out)
{
    return keys_derive(seed, authorities, accounts, online_cpus(), out, NULL);
}

void alys_chaingen_keys_clear(alys_chaingen_keys_t *k)
{
    if (!k)
        return;
    /* secret keys: wipe before free, they sign for the chain */
    if (k->authority_sec)
        memset(k->authority_sec, 0, (size_t)k->authority_count * ALYS_SECKEY_LEN);
    if (k->account_sec)
        memset(k->account_sec, 0, (size_t)k->account_count * ALYS_SECKEY_LEN);
    free(k->authority_sec);
    free(k->authority_pub);
    free(k->account_sec);
    free(k->account_pub);
    memset(k, 0, sizeof *k);
}

const uint8_t *alys_chaingen_keys_secret(const alys_chaingen_keys_t *k,
                                         const uint8_t pubkey[ALYS_PUBKEY_LEN])
{
    for (uint32_t i = 0; i < k->authority_count; i++)
        if (memcmp(k->authority_pub[i], pubkey, ALYS_PUBKEY_LEN) == 0)
            return k->authority_sec[i];
    for (uint32_t i = 0; i < k->account_count; i++)
        if (memcmp(k->account_pub[i], pubkey, ALYS_PUBKEY_LEN) == 0)
            return k->account_sec[i];
    return NULL;
}

/* ================================================================ rng */

/* xoshiro256** (Blackman & Vigna): fast, and defined bit for bit, so every
 * platform draws the same chain. */
typedef struct { uint64_t s[4]; } rng_t;

static uint64_t rotl64(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

static uint64_t rng_next(rng_t *r)
{
    uint64_t *s = r->s;
    uint64_t result = rotl64(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl64(s[3], 45);
    return result;
}

/* Uniform in [0, n), n >= 1: rejection removes the modulo bias. */
static uint64_t rng_below(rng_t *r, uint64_t n)
{
    uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    uint64_t x;
    do
        x = rng_next(r);
    while (x >= limit);
    return x % n;
}

static void rng_seed(rng_t *r, const char *seed)
{
    uint8_t buf[sizeof RNG_TAG + ALYS_CHAINGEN_MAX_SEED];
    size_t sl = strnlen(seed, ALYS_CHAINGEN_MAX_SEED);
    memcpy(buf, RNG_TAG, sizeof RNG_TAG);
    memcpy(buf + sizeof RNG_TAG, seed, sl);
    alys_hash_t h;
    alys_sha256(buf, sizeof RNG_TAG + sl, h);
    for (int w = 0; w < 4; w++) {
        r->s[w] = 0;
        for (int i = 7; i >= 0; i--)
            r->s[w] = (r->s[w] << 8) | h[8 * w + i];
    }
    if (!(r->s[0] | r->s[1] | r->s[2] | r->s[3]))
        r->s[0] = 1;        /* the one state xoshiro cannot leave */
}

/* ================================================================ faults */

static bool is_fault_kind(alys_block_error_t k)
{
    return k > ALYS_BLOCK_OK && k < ALYS_BLOCK_ERROR_COUNT && k != ALYS_BLOCK_INTERNAL_ERROR;
}

static bool fault_needs_tx(alys_block_error_t k)
{
    return k == ALYS_BLOCK_BAD_TX_SIG || k == ALYS_BLOCK_BAD_NONCE ||
           k == ALYS_BLOCK_INSUFFICIENT_BALANCE;
}

bool alys_chaingen_fault_is_encoding(alys_block_error_t kind)
{
    return kind == ALYS_BLOCK_MALFORMED || kind == ALYS_BLOCK_OVERSIZE;
}

int alys_chaingen_fault_parse(const char *name, alys_block_error_t *kind, char *err, size_t errlen)
{
    char list[512] = "";
    size_t used = 0;
    for (int k = 0; k < ALYS_BLOCK_ERROR_COUNT; k++) {
        if (!is_fault_kind((alys_block_error_t)k))
            continue;
        const char *n = alys_block_error_name((alys_block_error_t)k);
        if (strcmp(n, name) == 0) {
            *kind = (alys_block_error_t)k;
            return 0;
        }
        int w = snprintf(list + used, sizeof list - used, "%s%s", used ? ", " : "", n);
        if (w > 0 && (size_t)w < sizeof list - used)
            used += (size_t)w;
    }
    set_err(err, errlen, "--fault %s: unknown kind (one of: %s)", name, list);
    return -1;
}

/* The slot, and the proposer and timestamp that go with it, so that a slot
 * fault breaks the slot rule only. */
static void set_slot(alys_header_t *h, const alys_genesis_t *g, uint64_t slot)
{
    h->slot = slot;
    h->proposer = (uint32_t)(slot % g->authority_count);
    h->timestamp = g->genesis_time + slot * g->slot_duration_ms / 1000;
}

static uint64_t far_future_slots(const alys_genesis_t *g)
{
    return FAR_FUTURE_MS / g->slot_duration_ms;
}

/* Check the preconditions of kind on b. Returns 0 or -1 with err. */
static int fault_applies(const alys_block_t *b, alys_block_error_t kind,
                         const alys_chaingen_fault_ctx_t *ctx, char *err, size_t errlen)
{
    if (!is_fault_kind(kind) || alys_chaingen_fault_is_encoding(kind)) {
        set_err(err, errlen, "fault %s does not apply to a block value", alys_block_error_name(kind));
        return -1;
    }
    if (fault_needs_tx(kind) && b->tx_count == 0) {
        set_err(err, errlen, "fault %s needs a block with txs", alys_block_error_name(kind));
        return -1;
    }
    if (kind == ALYS_BLOCK_WRONG_PROPOSER && ctx->genesis->authority_count < 2) {
        set_err(err, errlen, "fault wrong_proposer needs at least 2 authorities");
        return -1;
    }
    if (kind == ALYS_BLOCK_NON_INCREASING_SLOT && !ctx->parent) {
        set_err(err, errlen, "fault non_increasing_slot needs the parent header");
        return -1;
    }
    return 0;
}

/* The change alone, without re-signing: the generator signs later anyway.
 * Returns the altered tx index or -1. */
static int32_t fault_mutate(alys_block_t *b, alys_block_error_t kind,
                            const alys_chaingen_fault_ctx_t *ctx)
{
    alys_header_t *h = &b->header;
    int32_t m = (int32_t)(b->tx_count / 2);
    switch (kind) {
    case ALYS_BLOCK_BAD_PROPOSER_SIG:     h->signature[0] ^= 1; break;
    case ALYS_BLOCK_WRONG_PROPOSER:       h->proposer = (uint32_t)((h->slot + 1) % ctx->genesis->authority_count); break;
    case ALYS_BLOCK_BAD_TX_SIG:           b->txs[m].signature[0] ^= 1; return m;
    case ALYS_BLOCK_TX_ROOT_MISMATCH:     h->tx_root[0] ^= 1; break;
    case ALYS_BLOCK_PARENT_MISMATCH:      h->parent_hash[0] ^= 1; break;
    case ALYS_BLOCK_HEIGHT_GAP:           h->height += 1; break;
    case ALYS_BLOCK_NON_INCREASING_SLOT:  set_slot(h, ctx->genesis, ctx->parent->slot); break;
    case ALYS_BLOCK_FUTURE_SLOT:          set_slot(h, ctx->genesis, h->slot + far_future_slots(ctx->genesis)); break;
    case ALYS_BLOCK_BAD_TIMESTAMP:        h->timestamp += 1; break;
    case ALYS_BLOCK_BAD_NONCE:            b->txs[m].nonce += 1; return m;
    case ALYS_BLOCK_INSUFFICIENT_BALANCE: b->txs[m].amount = 1ULL << 62; return m;
    case ALYS_BLOCK_STATE_ROOT_MISMATCH:  h->state_root[0] ^= 1; break;
    default: break;
    }
    return -1;
}

static int sign_hash(const uint8_t *sec, const alys_hash_t msg, uint8_t sig[ALYS_SIG_LEN])
{
    return sec ? alys_sign(sec, msg, sig) : -1;
}

int alys_chaingen_corrupt_block(alys_block_t *b, alys_block_error_t kind,
                                const alys_chaingen_fault_ctx_t *ctx, int32_t *tx_index,
                                char *err, size_t errlen)
{
    if (fault_applies(b, kind, ctx, err, errlen) != 0)
        return -1;
    int32_t m = fault_mutate(b, kind, ctx);
    if (tx_index)
        *tx_index = m;
    alys_hash_t hash;
    if (kind == ALYS_BLOCK_BAD_NONCE || kind == ALYS_BLOCK_INSUFFICIENT_BALANCE) {
        alys_tx_t *tx = &b->txs[m];
        alys_tx_hash(tx, hash);
        if (sign_hash(alys_chaingen_keys_secret(ctx->keys, tx->from), hash, tx->signature) != 0) {
            set_err(err, errlen, "fault %s: no secret key for the sender of tx %d",
                    alys_block_error_name(kind), m);
            return -1;
        }
        alys_tx_root(b->txs, b->tx_count, b->header.tx_root);
    }
    if (kind == ALYS_BLOCK_BAD_PROPOSER_SIG || kind == ALYS_BLOCK_BAD_TX_SIG)
        return 0;
    uint32_t p = b->header.proposer;
    alys_header_hash(&b->header, hash);
    if (p >= ctx->keys->authority_count ||
        sign_hash(ctx->keys->authority_sec[p], hash, b->header.signature) != 0) {
        set_err(err, errlen, "fault %s: no secret key for authority %u", alys_block_error_name(kind), p);
        return -1;
    }
    return 0;
}

/* One tx as protobuf bytes, for padding an oversize record. */
static int encode_tx_pb(const alys_tx_t *tx, uint8_t **out, size_t *len)
{
    Alys__Chain__Tx m = ALYS__CHAIN__TX__INIT;
    m.from = (ProtobufCBinaryData){ ALYS_PUBKEY_LEN, (uint8_t *)tx->from };
    m.to = (ProtobufCBinaryData){ ALYS_PUBKEY_LEN, (uint8_t *)tx->to };
    m.amount = tx->amount;
    m.fee = tx->fee;
    m.nonce = tx->nonce;
    m.signature = (ProtobufCBinaryData){ ALYS_SIG_LEN, (uint8_t *)tx->signature };
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
        p[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    p[n++] = (uint8_t)v;
    return n;
}

/* Block.txs is field 2, length-delimited: protobuf appends repeated
 * elements found later in the bytes, so extra "0x12 len tx" entries after a
 * valid encoding add txs without re-encoding the rest. */
static int pad_txs(const alys_block_t *b, uint8_t *enc, size_t enc_len,
                   uint8_t **out, size_t *len)
{
    static const alys_tx_t zero_tx;
    uint8_t *tx_bytes = NULL;
    size_t tx_len = 0;
    if (encode_tx_pb(b->tx_count ? &b->txs[0] : &zero_tx, &tx_bytes, &tx_len) != 0)
        return -1;
    size_t extra = (size_t)ALYS_MAX_TXS_PER_BLOCK + 1 - b->tx_count;
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

int alys_chaingen_corrupt_encoding(const alys_block_t *b, alys_block_error_t kind,
                                   uint8_t **out, size_t *len, char *err, size_t errlen)
{
    if (!alys_chaingen_fault_is_encoding(kind) || b->tx_count > ALYS_MAX_TXS_PER_BLOCK) {
        set_err(err, errlen, "fault %s is not an encoding fault", alys_block_error_name(kind));
        return -1;
    }
    uint8_t *enc = NULL;
    size_t enc_len = 0;
    if (alys_block_encode(b, &enc, &enc_len) != 0) {
        set_err(err, errlen, "fault %s: the block does not encode", alys_block_error_name(kind));
        return -1;
    }
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
        set_err(err, errlen, "fault %s: out of memory", alys_block_error_name(kind));
    else if (*len > ALYS_MAX_BLOCK_BYTES) {
        set_err(err, errlen, "fault %s: record of %zu bytes would not fit the export stream",
                alys_block_error_name(kind), *len);
        free(*out);
        *out = NULL;
        rc = -1;
    }
    return rc;
}

/* ================================================================ config */

void alys_chaingen_config_default(alys_chaingen_config_t *c)
{
    memset(c, 0, sizeof *c);
    c->slot_ms = ALYS_CHAINGEN_DEFAULT_SLOT_MS;
    c->genesis_time = ALYS_CHAINGEN_DEFAULT_GENESIS_TIME;
    snprintf(c->chain_id, sizeof c->chain_id, "%s", ALYS_CHAINGEN_DEFAULT_CHAIN_ID);
    c->fault = ALYS_BLOCK_OK;
}

static int check_sizes(const alys_chaingen_config_t *c, char *err, size_t errlen)
{
    if (c->blocks > ALYS_CHAINGEN_MAX_BLOCKS)
        return set_err(err, errlen, "--blocks %" PRIu64 " exceeds the limit %llu", c->blocks,
                       ALYS_CHAINGEN_MAX_BLOCKS), -1;
    if (c->txs_per_block > ALYS_MAX_TXS_PER_BLOCK)
        return set_err(err, errlen, "--txs-per-block %" PRIu32 " exceeds the limit %d",
                       c->txs_per_block, ALYS_MAX_TXS_PER_BLOCK), -1;
    if (c->accounts < 1 || c->accounts > ALYS_MAX_GENESIS_ACCOUNTS)
        return set_err(err, errlen, "--accounts %" PRIu32 " is outside 1..%d", c->accounts,
                       ALYS_MAX_GENESIS_ACCOUNTS), -1;
    if (c->txs_per_block > 0 && c->accounts < 2)
        return set_err(err, errlen, "--accounts %" PRIu32 ": transfers need at least 2 accounts "
                       "(or --txs-per-block 0)", c->accounts), -1;
    if (c->authorities < 1 || c->authorities > ALYS_MAX_AUTHORITIES)
        return set_err(err, errlen, "--authorities %" PRIu32 " is outside 1..%d", c->authorities,
                       ALYS_MAX_AUTHORITIES), -1;
    if (c->threads > ALYS_CHAINGEN_MAX_THREADS)
        return set_err(err, errlen, "--threads %" PRIu32 " exceeds the limit %d", c->threads,
                       ALYS_CHAINGEN_MAX_THREADS), -1;
    return 0;
}

static int check_chain_id(const char *id, char *err, size_t errlen)
{
    size_t n = strnlen(id, 64);
    if (n == 0 || n > 63)
        return set_err(err, errlen, "--chain-id must be 1..63 characters"), -1;
    for (size_t i = 0; i < n; i++) {
        char ch = id[i];
        bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                  (ch >= '0' && ch <= '9') || ch == '-' || ch == '_' || ch == '.';
        if (!ok)
            return set_err(err, errlen, "--chain-id may hold only letters, digits, '-', '_' and '.'"), -1;
    }
    return 0;
}

static int check_chain(const alys_chaingen_config_t *c, char *err, size_t errlen)
{
    size_t sl = strnlen(c->seed, sizeof c->seed);
    if (sl == 0)
        return set_err(err, errlen, "--seed is required (any text; it determines every byte)"), -1;
    if (sl > ALYS_CHAINGEN_MAX_SEED)
        return set_err(err, errlen, "--seed is longer than %d characters", ALYS_CHAINGEN_MAX_SEED), -1;
    if (c->slot_ms < 1 || c->slot_ms > ALYS_CHAINGEN_MAX_SLOT_MS)
        return set_err(err, errlen, "--slot-ms %" PRIu64 " is outside 1..%llu", c->slot_ms,
                       ALYS_CHAINGEN_MAX_SLOT_MS), -1;
    if (c->genesis_time > ALYS_CHAINGEN_MAX_GENESIS_TIME)
        return set_err(err, errlen, "--genesis-time %" PRIu64 " exceeds the limit %llu",
                       c->genesis_time, ALYS_CHAINGEN_MAX_GENESIS_TIME), -1;
    return check_chain_id(c->chain_id, err, errlen);
}

static int check_fault(const alys_chaingen_config_t *c, char *err, size_t errlen)
{
    if (c->fault == ALYS_BLOCK_OK) {
        if (c->fault_height != 0)
            return set_err(err, errlen, "--fault-height needs --fault"), -1;
        return 0;
    }
    const char *name = alys_block_error_name(c->fault);
    if (!is_fault_kind(c->fault))
        return set_err(err, errlen, "--fault %s is not a fault kind", name), -1;
    if (c->fault_height < 1 || c->fault_height > c->blocks)
        return set_err(err, errlen, "--fault-height %" PRIu64 " is outside 1..%" PRIu64
                       " (--blocks)", c->fault_height, c->blocks), -1;
    if (fault_needs_tx(c->fault) && c->txs_per_block == 0)
        return set_err(err, errlen, "--fault %s needs --txs-per-block >= 1", name), -1;
    if (c->fault == ALYS_BLOCK_WRONG_PROPOSER && c->authorities < 2)
        return set_err(err, errlen, "--fault wrong_proposer needs --authorities >= 2"), -1;
    return 0;
}

int alys_chaingen_config_check(const alys_chaingen_config_t *c, char *err, size_t errlen)
{
    if (check_sizes(c, err, errlen) != 0 || check_chain(c, err, errlen) != 0)
        return -1;
    return check_fault(c, err, errlen);
}

/* ================================================================ generator state */

typedef struct {
    alys_block_t block;          /* txs: capacity K, owned */
    alys_tx_t   *exec_txs;       /* tx faults only: the valid twin's txs, owned */
    alys_hash_t  sim_root;       /* the state root the generator computed */
    alys_hash_t  hash;           /* header hash (after link faults) */
    uint8_t     *bytes;          /* the record, malloc'ed */
    size_t       len;
} gblock_t;

typedef struct {
    gblock_t *b;
    size_t    count, cap;
    uint32_t *signer;            /* cap * K sender account indices */
    /* execution status, guarded by the generator's mutex */
    bool      queued, done;
    int       exec_rc;
    char      exec_err[256];
} batch_t;

typedef struct {
    uint64_t bal, nonce;
} sim_acct_t;

struct alys_chaingen {
    alys_chaingen_config_t cfg;
    uint32_t               threads;
    alys_chaingen_keys_t   keys;
    secp256k1_keypair     *kp;          /* F authorities then A accounts */
    alys_genesis_t         genesis;
    rng_t                  rng;

    /* the generator's own view of the state: accounts 0..A-1, then the
     * authorities A..A+F-1 (they receive the fees) */
    sim_acct_t    *acct;
    uint64_t      *stamp;               /* last block that touched it */
    uint32_t      *touched;
    size_t         touched_n;
    sim_acct_t    *touched_before;
    alys_lattice_t lattice;
    alys_lattice_t *vcache;             /* current vector per account, or NULL */

    /* chain position */
    uint64_t       built;               /* blocks drafted so far */
    alys_header_t  prev;                /* last drafted header (draft fields) */
    alys_hash_t    prev_hash;           /* last linked header hash */

    /* pipeline */
    batch_t        pool[POOL];
    batch_t       *cur, *ahead;
    size_t         cur_pos;
    size_t         batch_blocks;

    /* execution thread */
    pthread_t       exec_tid;
    bool            exec_started, exec_stop;
    pthread_mutex_t mu;
    pthread_cond_t  cv;
    batch_t        *exec_queue[POOL];
    size_t          exec_head, exec_len;
    alys_memstate_t *ms;
    alys_overlay_t  *ov;
    alys_state_view_t view;

    alys_chaingen_result_t result;
    char            err[256];           /* sticky */
};

const alys_genesis_t *alys_chaingen_genesis(const alys_chaingen_t *self)
{
    return &self->genesis;
}

const alys_chaingen_keys_t *alys_chaingen_keys(const alys_chaingen_t *self)
{
    return &self->keys;
}

void alys_chaingen_result(const alys_chaingen_t *self, alys_chaingen_result_t *out)
{
    *out = self->result;
}
