/*  gen_seeds.c: writes the fuzz targets' seed corpora at run time (nothing
 *  binary is committed). Not a fuzz target; run by scripts/fuzz.sh as
 *
 *      gen_seeds CHAIN_DIR OUT_DIR
 *
 *  CHAIN_DIR is alys-chaingen output (genesis, chain.export) made with the
 *  seed and authority count of fuzz_util.h; OUT_DIR gets one folder per
 *  target: block/ header/ genesis/ export/ (from the chain), wire/ (real
 *  Status/Headers/Blocks/... messages around that chain) and envelope/ +
 *  wire/ gen-* files: every body of alys.bus.Envelope and alys.wire.WireMsg,
 *  two oneof levels deep, with every field set, built generically from the
 *  protobuf-c descriptors so new message kinds get seeds without edits here.
 *  config/ is filled by scripts/fuzz.sh (copies of deploy/alys-sync.toml).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "bus.h"
#include "chain/export.h"
#include "fuzz_util.h"
#include "wire/wire.h"

#define MAX_RECORDS 16
#define MAX_DEPTH   6

static const char *s_out;

static void die(const char *what)
{
    fprintf(stderr, "gen_seeds: %s\n", what);
    exit(1);
}

static void write_file(const char *dir, const char *name, const void *bytes, size_t len)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", s_out, dir);
    if (mkdir(path, 0755) != 0 && errno != EEXIST)
        die("cannot create a corpus folder");
    snprintf(path, sizeof path, "%s/%s/%s", s_out, dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || (len && fwrite(bytes, 1, len, f) != len) || fclose(f) != 0)
        die("cannot write a seed");
}

static void write_msg(const char *dir, const char *name, const ProtobufCMessage *m)
{
    size_t len = protobuf_c_message_get_packed_size(m);
    uint8_t *buf = malloc(len ? len : 1);
    if (!buf)
        die("out of memory");
    protobuf_c_message_pack(m, buf);
    write_file(dir, name, buf, len);
    free(buf);
}

static uint8_t *read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        die("cannot open the chain files (run alys-chaingen first)");
    size_t cap = 1 << 16, n = 0;
    uint8_t *buf = malloc(cap);
    for (size_t r; buf && (r = fread(buf + n, 1, cap - n, f)) > 0;) {
        n += r;
        if (n == cap) {
            uint8_t *bigger = realloc(buf, cap *= 2);
            if (!bigger)
                free(buf);
            buf = bigger;
        }
    }
    fclose(f);
    if (!buf)
        die("out of memory");
    *len = n;
    return buf;
}

/* ---- generic messages from descriptors -------------------------------- */

typedef struct {
    void **p;
    size_t n, cap;
} pool_t;

static void *pool_alloc(pool_t *pool, size_t size)
{
    if (pool->n == pool->cap) {
        pool->cap = pool->cap ? 2 * pool->cap : 64;
        pool->p = realloc(pool->p, pool->cap * sizeof *pool->p);
        if (!pool->p)
            die("out of memory");
    }
    void *m = calloc(1, size ? size : 1);
    if (!m)
        die("out of memory");
    return pool->p[pool->n++] = m;
}

static void pool_free(pool_t *pool)
{
    for (size_t i = 0; i < pool->n; i++)
        free(pool->p[i]);
    free(pool->p);
    memset(pool, 0, sizeof *pool);
}

static size_t elem_size(const ProtobufCFieldDescriptor *f)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
    case PROTOBUF_C_TYPE_DOUBLE: return 8;
    case PROTOBUF_C_TYPE_BOOL: return sizeof(protobuf_c_boolean);
    case PROTOBUF_C_TYPE_STRING: return sizeof(char *);
    case PROTOBUF_C_TYPE_BYTES: return sizeof(ProtobufCBinaryData);
    case PROTOBUF_C_TYPE_MESSAGE: return sizeof(ProtobufCMessage *);
    default: return 4; /* 32-bit integers, enums, float */
    }
}

static char s_text[] = "seed-node";
static uint8_t s_bytes[ALYS_HASH_LEN] = {0xab, 0xcd, 0x01, 0x02};

static void fill_message(pool_t *pool, ProtobufCMessage *m, int depth, const unsigned *picks);

static void fill_value(pool_t *pool, const ProtobufCFieldDescriptor *f, void *dst, int depth,
                       const unsigned *picks)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64: *(uint64_t *) dst = 3; break;
    case PROTOBUF_C_TYPE_DOUBLE: *(double *) dst = 1.5; break;
    case PROTOBUF_C_TYPE_FLOAT: *(float *) dst = 1.5f; break;
    case PROTOBUF_C_TYPE_BOOL: *(protobuf_c_boolean *) dst = 1; break;
    case PROTOBUF_C_TYPE_STRING: *(char **) dst = s_text; break;
    case PROTOBUF_C_TYPE_BYTES:
        *(ProtobufCBinaryData *) dst = (ProtobufCBinaryData){sizeof s_bytes, s_bytes};
        break;
    case PROTOBUF_C_TYPE_ENUM: {
        const ProtobufCEnumDescriptor *e = f->descriptor;
        *(int *) dst = e->n_values > 1 ? e->values[1].value : e->values[0].value;
        break;
    }
    case PROTOBUF_C_TYPE_MESSAGE: {
        const ProtobufCMessageDescriptor *d = f->descriptor;
        ProtobufCMessage *sub = pool_alloc(pool, d->sizeof_message);
        d->message_init(sub);
        fill_message(pool, sub, depth + 1, picks);
        *(ProtobufCMessage **) dst = sub;
        break;
    }
    default: *(uint32_t *) dst = 3; break;
    }
}

/* Sets every field; of each oneof the member picks[depth] (modulo its size). */
static void fill_message(pool_t *pool, ProtobufCMessage *m, int depth, const unsigned *picks)
{
    const ProtobufCMessageDescriptor *d = m->descriptor;
    uint8_t *base = (uint8_t *) m;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        if (f->type == PROTOBUF_C_TYPE_MESSAGE && depth >= MAX_DEPTH)
            continue;
        if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
            unsigned count = 0, ord = 0;
            for (unsigned j = 0; j < d->n_fields; j++) {
                if ((d->fields[j].flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
                    d->fields[j].quantifier_offset == f->quantifier_offset) {
                    if (j < i)
                        ord++;
                    count++;
                }
            }
            if (ord != picks[depth] % count)
                continue;
            *(uint32_t *) (base + f->quantifier_offset) = f->id;
            fill_value(pool, f, base + f->offset, depth, picks);
        } else if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            void *arr = pool_alloc(pool, elem_size(f));
            fill_value(pool, f, arr, depth, picks);
            *(size_t *) (base + f->quantifier_offset) = 1;
            *(void **) (base + f->offset) = arr;
        } else {
            fill_value(pool, f, base + f->offset, depth, picks);
            if (f->label == PROTOBUF_C_LABEL_OPTIONAL && f->type != PROTOBUF_C_TYPE_STRING &&
                f->type != PROTOBUF_C_TYPE_MESSAGE)
                *(protobuf_c_boolean *) (base + f->quantifier_offset) = 1;
        }
    }
}

/* One file per distinct encoding of (top oneof member a, nested member b).
 * Returns how many of them the target's own decoder accepts. */
static int generic_seeds(const char *dir, const ProtobufCMessageDescriptor *d,
                         bool (*accepts)(const uint8_t *, size_t))
{
    int written = 0, accepted = 0;
    for (unsigned a = 0; a < 16; a++) {
        for (unsigned b = 0; b < 40; b++) {
            unsigned picks[MAX_DEPTH + 1] = {a, b};
            pool_t pool = {0};
            ProtobufCMessage *m = pool_alloc(&pool, d->sizeof_message);
            d->message_init(m);
            fill_message(&pool, m, 0, picks);
            size_t len = protobuf_c_message_get_packed_size(m);
            uint8_t *buf = pool_alloc(&pool, len);
            protobuf_c_message_pack(m, buf);
            alys_hash_t h;
            alys_sha256(buf, len, h);
            char name[32];
            memcpy(name, "gen-", 4);
            alys_hex(h, 8, name + 4);
            write_file(dir, name, buf, len); /* same bytes, same name: deduplicated */
            written++;
            accepted += accepts(buf, len);
            pool_free(&pool);
        }
    }
    return written ? accepted : -1;
}

static bool env_accepts(const uint8_t *buf, size_t len)
{
    char err[256];
    alys_env_t *env = alys_env_decode(buf, len, err, sizeof err);
    bool ok = env != NULL;
    alys_env_free(&env);
    return ok;
}

static bool wire_accepts(const uint8_t *buf, size_t len)
{
    char err[256];
    alys_wire_msg_t *m = alys_wire_decode(buf, len, err, sizeof err);
    bool ok = m != NULL;
    alys_wire_free(&m);
    return ok;
}

/* ---- chain-derived seeds ----------------------------------------------- */

typedef struct {
    uint8_t *block[MAX_RECORDS];
    size_t block_len[MAX_RECORDS];
    uint8_t *header[MAX_RECORDS];
    size_t header_len[MAX_RECORDS];
    size_t n;
    alys_header_t last;
} chain_seeds_t;

static void chain_seeds(const char *chain_dir, chain_seeds_t *cs, alys_genesis_t *g)
{
    char path[4096], err[512], name[32];
    size_t len;
    snprintf(path, sizeof path, "%s/genesis", chain_dir);
    uint8_t *gbytes = read_all(path, &len);
    write_file("genesis", "genesis", gbytes, len);
    if (alys_genesis_decode(gbytes, len, g, err, sizeof err) != 0)
        die(err);
    free(gbytes);
    /* The block target checks signatures against fuzz_genesis(): the chain
     * must have been generated with the same seed and authority count. */
    const alys_genesis_t *fg = fuzz_genesis();
    if (g->authority_count != fg->authority_count ||
        memcmp(g->authorities, fg->authorities, g->authority_count * ALYS_PUBKEY_LEN) != 0 ||
        g->slot_duration_ms != fg->slot_duration_ms || g->genesis_time != fg->genesis_time)
        die("the chain's genesis is not fuzz_util.h's (alys-chaingen --seed " FUZZ_CHAIN_SEED
            " --authorities 3 and default slot/time expected)");

    snprintf(path, sizeof path, "%s/chain.export", chain_dir);
    uint8_t *stream = read_all(path, &len);
    write_file("export", "chain.export", stream, len);
    alys_export_reader_t *r = alys_export_reader_new(path, err, sizeof err);
    if (!r)
        die(err);
    uint64_t header_end = alys_export_reader_offset(r);
    write_file("export", "header-only", stream, header_end);
    uint8_t *bytes;
    size_t blen;
    int rc;
    while (cs->n < MAX_RECORDS &&
           (rc = alys_export_reader_next(r, &bytes, &blen, err, sizeof err)) == 1) {
        alys_block_t b;
        alys_verdict_t v;
        if (alys_block_decode(bytes, blen, &b, &v) != 0)
            die(v.detail);
        if (!alys_block_check_stateless(fuzz_genesis(), &b, &v))
            die(v.detail);
        snprintf(name, sizeof name, "block-%02zu", cs->n);
        write_file("block", name, bytes, blen);
        uint8_t *hbytes;
        size_t hlen;
        if (alys_header_encode(&b.header, &hbytes, &hlen) != 0)
            die("header encode");
        snprintf(name, sizeof name, "header-%02zu", cs->n);
        write_file("header", name, hbytes, hlen);
        cs->block[cs->n] = bytes;
        cs->block_len[cs->n] = blen;
        cs->header[cs->n] = hbytes;
        cs->header_len[cs->n] = hlen;
        cs->last = b.header;
        cs->n++;
        if (cs->n == 3) /* a short stream: header + 2 records */
            write_file("export", "three-records", stream, alys_export_reader_offset(r));
        alys_block_clear(&b);
    }
    if (cs->n == 0)
        die("the chain has no blocks");
    alys_export_reader_destroy(&r);
    free(stream);
}

static void wire_seeds(const chain_seeds_t *cs, const alys_genesis_t *g)
{
    Alys__Wire__WireMsg m = ALYS__WIRE__WIRE_MSG__INIT;
    m.request_id = 7;

    alys_hash_t head;
    alys_header_hash(&cs->last, head);
    Alys__Wire__Status st = ALYS__WIRE__STATUS__INIT;
    st.protocol_version = ALYS_WIRE_PROTOCOL_VERSION;
    st.genesis_hash = (ProtobufCBinaryData){ALYS_HASH_LEN, (uint8_t *) g->hash};
    st.head_height = cs->last.height;
    st.head_hash = (ProtobufCBinaryData){ALYS_HASH_LEN, head};
    st.node_id = s_text;
    char listen_ep[] = "tcp://127.0.0.1:30303";
    st.listen = listen_ep;
    m.body_case = ALYS__WIRE__WIRE_MSG__BODY_STATUS;
    m.status = &st;
    write_msg("wire", "status", &m.base);

    ProtobufCBinaryData items[MAX_RECORDS];
    for (size_t i = 0; i < cs->n; i++)
        items[i] = (ProtobufCBinaryData){cs->header_len[i], cs->header[i]};
    Alys__Wire__GetHeaders gh = ALYS__WIRE__GET_HEADERS__INIT;
    gh.start = 1;
    gh.count = (uint32_t) cs->n;
    m.body_case = ALYS__WIRE__WIRE_MSG__BODY_GET_HEADERS;
    m.get_headers = &gh;
    write_msg("wire", "get_headers", &m.base);
    Alys__Wire__Headers hs = ALYS__WIRE__HEADERS__INIT;
    hs.start = 1;
    hs.n_headers = cs->n;
    hs.headers = items;
    m.request_id = cs->n; /* fuzz_wire.c reads the asked count from it */
    m.body_case = ALYS__WIRE__WIRE_MSG__BODY_HEADERS;
    m.headers = &hs;
    write_msg("wire", "headers", &m.base);

    size_t nb = cs->n < 4 ? cs->n : 4;
    for (size_t i = 0; i < nb; i++)
        items[i] = (ProtobufCBinaryData){cs->block_len[i], cs->block[i]};
    Alys__Wire__GetBlocks gb = ALYS__WIRE__GET_BLOCKS__INIT;
    gb.start = 1;
    gb.count = (uint32_t) nb;
    m.body_case = ALYS__WIRE__WIRE_MSG__BODY_GET_BLOCKS;
    m.get_blocks = &gb;
    write_msg("wire", "get_blocks", &m.base);
    Alys__Wire__Blocks bs = ALYS__WIRE__BLOCKS__INIT;
    bs.start = 1;
    bs.n_blocks = nb;
    bs.blocks = items;
    m.request_id = nb;
    m.body_case = ALYS__WIRE__WIRE_MSG__BODY_BLOCKS;
    m.blocks = &bs;
    write_msg("wire", "blocks", &m.base);
    bs.truncated = 1;
    m.request_id = nb + 1;
    write_msg("wire", "blocks-truncated", &m.base);

    Alys__Wire__NewBlock nbk = ALYS__WIRE__NEW_BLOCK__INIT;
    nbk.block = (ProtobufCBinaryData){cs->block_len[cs->n - 1], cs->block[cs->n - 1]};
    m.request_id = cs->last.height;
    m.body_case = ALYS__WIRE__WIRE_MSG__BODY_NEW_BLOCK;
    m.new_block = &nbk;
    write_msg("wire", "new_block", &m.base);

    Alys__Wire__GetPeers gp = ALYS__WIRE__GET_PEERS__INIT;
    m.body_case = ALYS__WIRE__WIRE_MSG__BODY_GET_PEERS;
    m.get_peers = &gp;
    write_msg("wire", "get_peers", &m.base);
    char ep1[] = "tcp://10.0.0.1:30303", ep2[] = "tcp://[::1]:30304";
    char *eps[] = {ep1, ep2};
    Alys__Wire__Peers ps = ALYS__WIRE__PEERS__INIT;
    ps.n_endpoints = 2;
    ps.endpoints = eps;
    m.body_case = ALYS__WIRE__WIRE_MSG__BODY_PEERS;
    m.peers = &ps;
    write_msg("wire", "peers", &m.base);

    char text[] = "rate limited: 200 requests per second";
    Alys__Wire__WireError we = ALYS__WIRE__WIRE_ERROR__INIT;
    we.code = ALYS__WIRE__WIRE_ERROR__CODE__RATE_LIMITED;
    we.message = text;
    m.body_case = ALYS__WIRE__WIRE_MSG__BODY_ERROR;
    m.error = &we;
    write_msg("wire", "error", &m.base);
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: gen_seeds CHAIN_DIR OUT_DIR\n");
        return 2;
    }
    s_out = argv[2];
    if (mkdir(s_out, 0755) != 0 && errno != EEXIST)
        die("cannot create OUT_DIR");
    chain_seeds_t cs = {0};
    alys_genesis_t g;
    chain_seeds(argv[1], &cs, &g);
    wire_seeds(&cs, &g);
    int env_ok = generic_seeds("envelope", &alys__bus__envelope__descriptor, env_accepts);
    int wire_ok = generic_seeds("wire", &alys__wire__wire_msg__descriptor, wire_accepts);
    printf("gen_seeds: %zu blocks/headers, %d generated envelopes and %d wire messages accepted\n",
           cs.n, env_ok, wire_ok);
    for (size_t i = 0; i < cs.n; i++) {
        free(cs.block[i]);
        free(cs.header[i]);
    }
    alys_genesis_clear(&g);
    return env_ok > 0 && wire_ok > 0 ? 0 : 1;
}
