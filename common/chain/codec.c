/*  codec.c: protobuf (proto/chain.proto) <-> C values, bounded.
 *
 *  Input from peers and files is hostile until decoded. Before protobuf-c
 *  allocates anything we (1) refuse input over the size bound and (2) walk
 *  the top-level wire format to count repeated fields, so "too many txs" is
 *  a precise oversize error rather than an allocation. protobuf-c then
 *  unpacks into an arena whose total is capped at 16 x input + 64 KiB: an
 *  honest message needs under 2x (a tx is ~140 bytes on the wire and ~240
 *  unpacked), so only crafted input (e.g. floods of tiny unknown fields)
 *  reaches the cap, and then fails instead of growing memory. The arena
 *  also makes the ~4 allocations per tx that protobuf-c does a pointer bump,
 *  released in one go.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "chain.pb-c.h"
#include "chain_internal.h"

#define HEADER_MAX_BYTES (64 * 1024)
#define ARENA_SLACK      (64 * 1024)
#define ARENA_FACTOR     16
#define CHUNK_MIN        (64 * 1024)
#define CHUNK_MAX        (1024 * 1024)

/* ---- bounded arena allocator for protobuf-c ---- */

typedef struct chunk {
    struct chunk *next;
    size_t cap, used;
    max_align_t data[];
} chunk_t;

typedef struct {
    chunk_t *head;
    size_t budget, spent, next_cap;
    bool exhausted;
} arena_t;

static chunk_t *arena_chunk(arena_t *a, size_t size)
{
    size_t cap = a->next_cap > size ? a->next_cap : size;
    if (cap > a->budget - a->spent && size <= a->budget - a->spent)
        cap = a->budget - a->spent; /* never reserve past the budget */
    chunk_t *c = malloc(sizeof *c + cap);
    if (!c)
        return NULL;
    c->next = a->head;
    c->cap = cap;
    c->used = 0;
    a->head = c;
    a->next_cap = a->next_cap * 2 > CHUNK_MAX ? CHUNK_MAX : a->next_cap * 2;
    return c;
}

static void *arena_alloc(void *data, size_t size)
{
    arena_t *a = data;
    size_t align = sizeof(max_align_t);
    if (size > SIZE_MAX - align) {
        a->exhausted = true;
        return NULL;
    }
    size = (size + align - 1) & ~(align - 1);
    if (size > a->budget - a->spent) {
        a->exhausted = true;
        return NULL;
    }
    chunk_t *c = a->head;
    if (!c || c->cap - c->used < size)
        c = arena_chunk(a, size);
    if (!c) {
        a->exhausted = true;
        return NULL;
    }
    void *p = (uint8_t *) c->data + c->used;
    c->used += size;
    a->spent += size;
    return p;
}

/* Everything goes at once in arena_release. */
static void arena_free(void *data, void *ptr)
{
    (void) data;
    (void) ptr;
}

static void arena_init(arena_t *a, size_t input_len)
{
    memset(a, 0, sizeof *a);
    a->budget = input_len * ARENA_FACTOR + ARENA_SLACK;
    a->next_cap = CHUNK_MIN;
}

static void arena_release(arena_t *a)
{
    while (a->head) {
        chunk_t *next = a->head->next;
        free(a->head);
        a->head = next;
    }
}

/* ---- top-level wire scan ---- */

#define SCAN_FIELDS 8

static bool read_varint(const uint8_t *buf, size_t len, size_t *pos, uint64_t *out)
{
    uint64_t x = 0;
    for (int shift = 0; shift < 64 && *pos < len; shift += 7) {
        uint8_t b = buf[(*pos)++];
        x |= (uint64_t) (b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *out = x;
            return true;
        }
    }
    return false;
}

static bool skip_value(const uint8_t *buf, size_t len, size_t *pos, unsigned wire)
{
    uint64_t n;
    switch (wire) {
    case 0: return read_varint(buf, len, pos, &n);
    case 1: n = 8; break;
    case 5: n = 4; break;
    case 2:
        if (!read_varint(buf, len, pos, &n))
            return false;
        break;
    default: return false; /* groups (3, 4) are not proto3 */
    }
    if (n > len - *pos)
        return false;
    *pos += (size_t) n;
    return true;
}

/* Counts top-level occurrences of field numbers < SCAN_FIELDS. Returns false
 * with *bad_at = offset of the offending field if the wire format is broken. */
static bool scan_fields(const uint8_t *buf, size_t len, size_t counts[SCAN_FIELDS], size_t *bad_at)
{
    memset(counts, 0, SCAN_FIELDS * sizeof counts[0]);
    size_t pos = 0;
    while (pos < len) {
        size_t start = pos;
        uint64_t tag;
        if (!read_varint(buf, len, &pos, &tag) || (tag >> 3) == 0 ||
            !skip_value(buf, len, &pos, (unsigned) (tag & 7))) {
            *bad_at = start;
            return false;
        }
        if ((tag >> 3) < SCAN_FIELDS)
            counts[tag >> 3]++;
    }
    return true;
}

/* ---- field copies ---- */

static bool copy_bytes(uint8_t *dst, const ProtobufCBinaryData *src, size_t want,
                       alys_verdict_t *v, const char *where, const char *field)
{
    if (src->len != want)
        return achain_fail(v, ALYS_BLOCK_MALFORMED, -1, "%s: %s is %zu bytes, expected %zu",
                           where, field, src->len, want);
    memcpy(dst, src->data, want);
    return true;
}

static bool header_from_pb(const Alys__Chain__Header *m, alys_header_t *h, alys_verdict_t *v)
{
    if (!m)
        return achain_fail(v, ALYS_BLOCK_MALFORMED, -1, "block has no header");
    h->height = m->height;
    h->slot = m->slot;
    h->timestamp = m->timestamp;
    h->proposer = m->proposer;
    return copy_bytes(h->parent_hash, &m->parent_hash, ALYS_HASH_LEN, v, "header", "parent_hash") &&
           copy_bytes(h->tx_root, &m->tx_root, ALYS_HASH_LEN, v, "header", "tx_root") &&
           copy_bytes(h->state_root, &m->state_root, ALYS_HASH_LEN, v, "header", "state_root") &&
           copy_bytes(h->signature, &m->signature, ALYS_SIG_LEN, v, "header", "signature");
}

/* The "tx N" of a failure's detail is formatted only on failure: an
 * snprintf per tx was a quarter of decoding a valid block. */
static bool tx_from_pb(const Alys__Chain__Tx *m, alys_tx_t *tx, size_t i, alys_verdict_t *v)
{
    tx->amount = m->amount;
    tx->fee = m->fee;
    tx->nonce = m->nonce;
    if (m->from.len == ALYS_PUBKEY_LEN && m->to.len == ALYS_PUBKEY_LEN &&
        m->signature.len == ALYS_SIG_LEN) {
        memcpy(tx->from, m->from.data, ALYS_PUBKEY_LEN);
        memcpy(tx->to, m->to.data, ALYS_PUBKEY_LEN);
        memcpy(tx->signature, m->signature.data, ALYS_SIG_LEN);
        return true;
    }
    char where[24];
    snprintf(where, sizeof where, "tx %zu", i);
    if (copy_bytes(tx->from, &m->from, ALYS_PUBKEY_LEN, v, where, "from") &&
        copy_bytes(tx->to, &m->to, ALYS_PUBKEY_LEN, v, where, "to"))
        (void) copy_bytes(tx->signature, &m->signature, ALYS_SIG_LEN, v, where, "signature");
    v->tx_index = (int32_t) i;
    return false;
}

static bool block_from_pb(const Alys__Chain__Block *m, alys_block_t *out, alys_verdict_t *v)
{
    if (!header_from_pb(m->header, &out->header, v))
        return false;
    if (m->n_txs > ALYS_MAX_TXS_PER_BLOCK) /* the scan makes this unreachable */
        return achain_fail(v, ALYS_BLOCK_OVERSIZE, -1, "block has %zu txs, max %d", m->n_txs,
                           ALYS_MAX_TXS_PER_BLOCK);
    if (m->n_txs == 0)
        return true;
    out->txs = malloc(m->n_txs * sizeof *out->txs);
    if (!out->txs)
        return achain_fail(v, ALYS_BLOCK_INTERNAL_ERROR, -1, "out of memory for %zu txs", m->n_txs);
    out->tx_count = (uint32_t) m->n_txs;
    for (size_t i = 0; i < m->n_txs; i++)
        if (!tx_from_pb(m->txs[i], &out->txs[i], i, v))
            return false;
    return true;
}

static ProtobufCAllocator arena_allocator(arena_t *a)
{
    return (ProtobufCAllocator){.alloc = arena_alloc, .free = arena_free, .allocator_data = a};
}

static bool unpack_failed(alys_verdict_t *v, const arena_t *a, const char *what)
{
    if (a->exhausted)
        return achain_fail(v, ALYS_BLOCK_MALFORMED, -1,
                           "%s: decoding needs more than %zu bytes of memory", what, a->budget);
    return achain_fail(v, ALYS_BLOCK_MALFORMED, -1, "%s: invalid protobuf", what);
}

static bool block_prescan(const uint8_t *buf, size_t len, alys_verdict_t *v)
{
    if (len > ALYS_MAX_BLOCK_BYTES)
        return achain_fail(v, ALYS_BLOCK_OVERSIZE, -1, "block is %zu bytes, max %d", len,
                           ALYS_MAX_BLOCK_BYTES);
    size_t counts[SCAN_FIELDS], bad_at;
    if (!scan_fields(buf, len, counts, &bad_at))
        return achain_fail(v, ALYS_BLOCK_MALFORMED, -1,
                           "block: truncated or invalid field at byte %zu of %zu", bad_at, len);
    if (counts[2] > ALYS_MAX_TXS_PER_BLOCK)
        return achain_fail(v, ALYS_BLOCK_OVERSIZE, -1, "block has %zu txs, max %d", counts[2],
                           ALYS_MAX_TXS_PER_BLOCK);
    return true;
}

int alys_block_decode(const uint8_t *buf, size_t len, alys_block_t *out, alys_verdict_t *v)
{
    alys_verdict_t scratch;
    if (!v)
        v = &scratch;
    memset(out, 0, sizeof *out);
    if (!buf && len)
        return achain_fail(v, ALYS_BLOCK_MALFORMED, -1, "block: no buffer"), -1;
    if (!block_prescan(buf, len, v))
        return -1;
    arena_t a;
    arena_init(&a, len);
    ProtobufCAllocator alloc = arena_allocator(&a);
    Alys__Chain__Block *m = alys__chain__block__unpack(&alloc, len, buf);
    bool ok = m ? block_from_pb(m, out, v) : unpack_failed(v, &a, "block");
    arena_release(&a);
    if (!ok) {
        alys_block_clear(out);
        return -1;
    }
    achain_ok(v);
    return 0;
}

int alys_header_decode(const uint8_t *buf, size_t len, alys_header_t *out, alys_verdict_t *v)
{
    alys_verdict_t scratch;
    if (!v)
        v = &scratch;
    memset(out, 0, sizeof *out);
    if (len > HEADER_MAX_BYTES)
        return achain_fail(v, ALYS_BLOCK_OVERSIZE, -1, "header is %zu bytes, max %d", len,
                           HEADER_MAX_BYTES),
               -1;
    if (!buf && len)
        return achain_fail(v, ALYS_BLOCK_MALFORMED, -1, "header: no buffer"), -1;
    arena_t a;
    arena_init(&a, len);
    ProtobufCAllocator alloc = arena_allocator(&a);
    Alys__Chain__Header *m = alys__chain__header__unpack(&alloc, len, buf);
    bool ok = m ? header_from_pb(m, out, v) : unpack_failed(v, &a, "header");
    arena_release(&a);
    if (!ok)
        return -1;
    achain_ok(v);
    return 0;
}

void alys_block_clear(alys_block_t *b)
{
    if (!b)
        return;
    free(b->txs);
    b->txs = NULL;
    b->tx_count = 0;
}

/* ---- encode ---- */

/* protobuf-c's binary fields are non-const but packing only reads them. */
static ProtobufCBinaryData bin(const uint8_t *p, size_t n)
{
    return (ProtobufCBinaryData){.len = n, .data = (uint8_t *) p};
}

static void header_to_pb(const alys_header_t *h, Alys__Chain__Header *m)
{
    alys__chain__header__init(m);
    m->height = h->height;
    m->parent_hash = bin(h->parent_hash, ALYS_HASH_LEN);
    m->slot = h->slot;
    m->timestamp = h->timestamp;
    m->proposer = h->proposer;
    m->tx_root = bin(h->tx_root, ALYS_HASH_LEN);
    m->state_root = bin(h->state_root, ALYS_HASH_LEN);
    m->signature = bin(h->signature, ALYS_SIG_LEN);
}

static void tx_to_pb(const alys_tx_t *tx, Alys__Chain__Tx *m)
{
    alys__chain__tx__init(m);
    m->from = bin(tx->from, ALYS_PUBKEY_LEN);
    m->to = bin(tx->to, ALYS_PUBKEY_LEN);
    m->amount = tx->amount;
    m->fee = tx->fee;
    m->nonce = tx->nonce;
    m->signature = bin(tx->signature, ALYS_SIG_LEN);
}

/* Packs any message into a fresh malloc'ed buffer. */
static int pack_message(const ProtobufCMessage *m, uint8_t **out, size_t *len)
{
    size_t n = protobuf_c_message_get_packed_size(m);
    uint8_t *buf = malloc(n ? n : 1);
    if (!buf)
        return -1;
    if (protobuf_c_message_pack(m, buf) != n) {
        free(buf);
        return -1;
    }
    *out = buf;
    *len = n;
    return 0;
}

int alys_block_encode(const alys_block_t *b, uint8_t **out, size_t *len)
{
    if (b->tx_count > ALYS_MAX_TXS_PER_BLOCK || (b->tx_count && !b->txs))
        return -1;
    Alys__Chain__Header hdr;
    header_to_pb(&b->header, &hdr);
    Alys__Chain__Block m;
    alys__chain__block__init(&m);
    m.header = &hdr;
    /* One allocation for the tx messages and the pointer array protobuf-c wants. */
    size_t n = b->tx_count;
    void *mem = malloc(n * (sizeof(Alys__Chain__Tx) + sizeof(Alys__Chain__Tx *)) + 1);
    if (!mem)
        return -1;
    Alys__Chain__Tx *txs = mem;
    Alys__Chain__Tx **ptrs = (Alys__Chain__Tx **) (txs + n);
    for (size_t i = 0; i < n; i++) {
        tx_to_pb(&b->txs[i], &txs[i]);
        ptrs[i] = &txs[i];
    }
    m.n_txs = n;
    m.txs = ptrs;
    int rc = pack_message(&m.base, out, len);
    free(mem);
    return rc;
}

int alys_header_encode(const alys_header_t *h, uint8_t **out, size_t *len)
{
    Alys__Chain__Header m;
    header_to_pb(h, &m);
    return pack_message(&m.base, out, len);
}

/* ---- genesis ---- */

static int gfail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int gfail(char *err, size_t errlen, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
        if (n < 0)
            snprintf(err, errlen, "genesis: invalid");
    }
    return -1;
}

static int genesis_prescan(const uint8_t *buf, size_t len, char *err, size_t errlen)
{
    if (len > ALYS_MAX_GENESIS_BYTES)
        return gfail(err, errlen, "genesis is %zu bytes, max %d", len, ALYS_MAX_GENESIS_BYTES);
    size_t counts[SCAN_FIELDS], bad_at;
    if (!scan_fields(buf, len, counts, &bad_at))
        return gfail(err, errlen, "genesis: truncated or invalid field at byte %zu of %zu",
                     bad_at, len);
    if (counts[2] > ALYS_MAX_AUTHORITIES)
        return gfail(err, errlen, "genesis has %zu authorities, max %d", counts[2],
                     ALYS_MAX_AUTHORITIES);
    if (counts[5] > ALYS_MAX_GENESIS_ACCOUNTS)
        return gfail(err, errlen, "genesis has %zu accounts, max %d", counts[5],
                     ALYS_MAX_GENESIS_ACCOUNTS);
    return 0;
}

static int genesis_params(const Alys__Chain__Genesis *m, alys_genesis_t *g, char *err, size_t errlen)
{
    size_t id_len = m->chain_id ? strlen(m->chain_id) : 0;
    if (id_len >= sizeof g->chain_id)
        return gfail(err, errlen, "genesis: chain_id is %zu bytes, max %zu", id_len,
                     sizeof g->chain_id - 1);
    if (id_len)
        memcpy(g->chain_id, m->chain_id, id_len);
    if (m->slot_duration_ms == 0)
        return gfail(err, errlen, "genesis: slot_duration_ms must be > 0");
    if (m->genesis_time > UINT64_MAX / 1000)
        return gfail(err, errlen, "genesis: genesis_time %llu out of range",
                     (unsigned long long) m->genesis_time);
    g->slot_duration_ms = m->slot_duration_ms;
    g->genesis_time = m->genesis_time;
    return 0;
}

static int genesis_authorities(const Alys__Chain__Genesis *m, alys_genesis_t *g, char *err,
                               size_t errlen)
{
    if (m->n_authorities == 0 || m->n_authorities > ALYS_MAX_AUTHORITIES)
        return gfail(err, errlen, "genesis has %zu authorities, need 1..%d", m->n_authorities,
                     ALYS_MAX_AUTHORITIES);
    g->authorities = malloc(m->n_authorities * sizeof *g->authorities);
    if (!g->authorities)
        return gfail(err, errlen, "genesis: out of memory");
    g->authority_count = (uint32_t) m->n_authorities;
    for (size_t i = 0; i < m->n_authorities; i++) {
        if (m->authorities[i].len != ALYS_PUBKEY_LEN)
            return gfail(err, errlen, "genesis: authority %zu is %zu bytes, expected %d", i,
                         m->authorities[i].len, ALYS_PUBKEY_LEN);
        memcpy(g->authorities[i], m->authorities[i].data, ALYS_PUBKEY_LEN);
        for (size_t j = 0; j < i; j++)
            if (memcmp(g->authorities[j], g->authorities[i], ALYS_PUBKEY_LEN) == 0)
                return gfail(err, errlen, "genesis: authorities %zu and %zu are the same key", j, i);
    }
    return 0;
}

static int cmp_account(const void *a, const void *b)
{
    return memcmp(((const alys_genesis_account_t *) a)->pubkey,
                  ((const alys_genesis_account_t *) b)->pubkey, ALYS_PUBKEY_LEN);
}

/* A key listed twice would enter the lattice as two accounts; refuse it
 * rather than guess whether the author meant the sum. */
static int genesis_no_duplicates(const alys_genesis_t *g, char *err, size_t errlen)
{
    if (g->balance_count < 2)
        return 0;
    alys_genesis_account_t *sorted = malloc(g->balance_count * sizeof *sorted);
    if (!sorted)
        return gfail(err, errlen, "genesis: out of memory");
    memcpy(sorted, g->balances, g->balance_count * sizeof *sorted);
    qsort(sorted, g->balance_count, sizeof *sorted, cmp_account);
    int rc = 0;
    for (uint32_t i = 1; i < g->balance_count && rc == 0; i++) {
        if (memcmp(sorted[i - 1].pubkey, sorted[i].pubkey, ALYS_PUBKEY_LEN) == 0) {
            char hex[2 * ALYS_PUBKEY_LEN + 1];
            alys_hex(sorted[i].pubkey, ALYS_PUBKEY_LEN, hex);
            rc = gfail(err, errlen, "genesis: account %s is listed more than once", hex);
        }
    }
    free(sorted);
    return rc;
}

static int genesis_balances(const Alys__Chain__Genesis *m, alys_genesis_t *g, char *err, size_t errlen)
{
    if (m->n_balances > ALYS_MAX_GENESIS_ACCOUNTS)
        return gfail(err, errlen, "genesis has %zu accounts, max %d", m->n_balances,
                     ALYS_MAX_GENESIS_ACCOUNTS);
    if (m->n_balances == 0)
        return 0;
    g->balances = malloc(m->n_balances * sizeof *g->balances);
    if (!g->balances)
        return gfail(err, errlen, "genesis: out of memory");
    g->balance_count = (uint32_t) m->n_balances;
    for (size_t i = 0; i < m->n_balances; i++) {
        const ProtobufCBinaryData *pk = &m->balances[i]->pubkey;
        if (pk->len != ALYS_PUBKEY_LEN)
            return gfail(err, errlen, "genesis: account %zu pubkey is %zu bytes, expected %d", i,
                         pk->len, ALYS_PUBKEY_LEN);
        memcpy(g->balances[i].pubkey, pk->data, ALYS_PUBKEY_LEN);
        g->balances[i].balance = m->balances[i]->balance;
    }
    return genesis_no_duplicates(g, err, errlen);
}

static int genesis_from_pb(const Alys__Chain__Genesis *m, alys_genesis_t *g, bool with_root,
                           char *err, size_t errlen)
{
    if (genesis_params(m, g, err, errlen) != 0 || genesis_authorities(m, g, err, errlen) != 0 ||
        genesis_balances(m, g, err, errlen) != 0)
        return -1;
    if (with_root)
        alys_genesis_finalize(g);
    else
        achain_genesis_hash(g);
    return 0;
}

static int genesis_decode(const uint8_t *buf, size_t len, alys_genesis_t *out, bool with_root,
                          char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (!buf && len)
        return gfail(err, errlen, "genesis: no buffer");
    if (genesis_prescan(buf, len, err, errlen) != 0)
        return -1;
    arena_t a;
    arena_init(&a, len);
    ProtobufCAllocator alloc = arena_allocator(&a);
    Alys__Chain__Genesis *m = alys__chain__genesis__unpack(&alloc, len, buf);
    int rc = m ? genesis_from_pb(m, out, with_root, err, errlen)
               : gfail(err, errlen,
                       a.exhausted ? "genesis: decoding exceeds its memory budget"
                                   : "genesis: invalid protobuf");
    arena_release(&a);
    if (rc != 0)
        alys_genesis_clear(out);
    return rc;
}

int alys_genesis_decode(const uint8_t *buf, size_t len, alys_genesis_t *out, char *err, size_t errlen)
{
    return genesis_decode(buf, len, out, true, err, errlen);
}

int alys_genesis_decode_light(const uint8_t *buf, size_t len, alys_genesis_t *out, char *err,
                              size_t errlen)
{
    return genesis_decode(buf, len, out, false, err, errlen);
}

int alys_genesis_encode(const alys_genesis_t *g, uint8_t **out, size_t *len)
{
    size_t na = g->authority_count, nb = g->balance_count;
    if (na > ALYS_MAX_AUTHORITIES || nb > ALYS_MAX_GENESIS_ACCOUNTS)
        return -1;
    size_t bytes = na * sizeof(ProtobufCBinaryData) +
                   nb * (sizeof(Alys__Chain__Account) + sizeof(Alys__Chain__Account *)) + 1;
    void *mem = malloc(bytes);
    if (!mem)
        return -1;
    ProtobufCBinaryData *auths = mem;
    Alys__Chain__Account *accts = (Alys__Chain__Account *) (auths + na);
    Alys__Chain__Account **ptrs = (Alys__Chain__Account **) (accts + nb);
    for (size_t i = 0; i < na; i++)
        auths[i] = bin(g->authorities[i], ALYS_PUBKEY_LEN);
    for (size_t i = 0; i < nb; i++) {
        alys__chain__account__init(&accts[i]);
        accts[i].pubkey = bin(g->balances[i].pubkey, ALYS_PUBKEY_LEN);
        accts[i].balance = g->balances[i].balance;
        ptrs[i] = &accts[i];
    }
    Alys__Chain__Genesis m;
    alys__chain__genesis__init(&m);
    char chain_id[sizeof g->chain_id];
    memcpy(chain_id, g->chain_id, sizeof chain_id);
    chain_id[sizeof chain_id - 1] = '\0';
    m.chain_id = chain_id;
    m.n_authorities = na;
    m.authorities = auths;
    m.slot_duration_ms = g->slot_duration_ms;
    m.genesis_time = g->genesis_time;
    m.n_balances = nb;
    m.balances = ptrs;
    int rc = pack_message(&m.base, out, len);
    free(mem);
    return rc;
}

/* ---- genesis files ---- */

static int read_file(const char *path, uint8_t **buf, size_t *len, char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return gfail(err, errlen, "genesis %s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || st.st_size < 0 || st.st_size > ALYS_MAX_GENESIS_BYTES) {
        close(fd);
        return gfail(err, errlen, "genesis %s: unreadable or larger than %d bytes", path,
                     ALYS_MAX_GENESIS_BYTES);
    }
    size_t n = (size_t) st.st_size, got = 0;
    uint8_t *p = malloc(n ? n : 1);
    while (p && got < n) {
        ssize_t r = read(fd, p + got, n - got);
        if (r <= 0 && !(r < 0 && errno == EINTR))
            break;
        got += r > 0 ? (size_t) r : 0;
    }
    close(fd);
    if (!p || got != n) {
        free(p);
        return gfail(err, errlen, "genesis %s: short read", path);
    }
    *buf = p;
    *len = n;
    return 0;
}

static int genesis_load(const char *path, alys_genesis_t *out, bool with_root, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    uint8_t *buf = NULL;
    size_t len = 0;
    if (read_file(path, &buf, &len, err, errlen) != 0)
        return -1;
    int rc = genesis_decode(buf, len, out, with_root, err, errlen);
    free(buf);
    return rc;
}

int alys_genesis_load(const char *path, alys_genesis_t *out, char *err, size_t errlen)
{
    return genesis_load(path, out, true, err, errlen);
}

int alys_genesis_load_light(const char *path, alys_genesis_t *out, char *err, size_t errlen)
{
    return genesis_load(path, out, false, err, errlen);
}

static int write_all(int fd, const uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t) w;
    }
    return 0;
}

/* Write to a temporary file, fsync, rename: a crash leaves the old file or
 * the new one, never a torn genesis. */
int alys_genesis_save(const char *path, const alys_genesis_t *g)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    if (alys_genesis_encode(g, &buf, &len) != 0)
        return -1;
    char tmp[4096];
    int n = snprintf(tmp, sizeof tmp, "%s.tmp", path);
    int fd = (n > 0 && (size_t) n < sizeof tmp)
                 ? open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)
                 : -1;
    int rc = fd < 0 ? -1 : 0;
    if (rc == 0 && (write_all(fd, buf, len) != 0 || fsync(fd) != 0))
        rc = -1;
    if (fd >= 0 && close(fd) != 0)
        rc = -1;
    if (rc == 0 && rename(tmp, path) != 0)
        rc = -1;
    if (rc != 0 && fd >= 0)
        unlink(tmp);
    free(buf);
    return rc;
}
