/*  faultproxy.c: see faultproxy.h. */
#include "faultproxy.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "forge/fault.h"
#include "util.h"
#include "wire/wire.h"

#define FP_CLIENTS 64

typedef struct {
    bool used;
    uint8_t id[255];
    size_t len;
    uint64_t served; /* blocks forwarded to it (stall) */
    uint64_t seen;   /* for recycling the least recent */
    int64_t busy_us; /* upload cap: its link is busy until then (fp_shape) */
} fp_client_t;

struct fp {
    fp_config_t cfg;
    uint64_t responses;
    uint64_t altered;
    uint64_t data_responses;
    uint64_t requests;
    uint64_t tick;
    fp_client_t clients[FP_CLIENTS];
};

static const struct {
    const char *name;
    fp_kind_t kind;
    uint64_t default_arg;
} s_kinds[] = {
    {"none", FP_NONE, 0},
    {"delay", FP_DELAY, 50},
    {"drop", FP_DROP, 3},
    {"stall", FP_STALL, 64},
    {"corrupt", FP_CORRUPT, 0},
    {"truncate", FP_TRUNCATE, 0},
    {"lie_height", FP_LIE_HEIGHT, 0},
    {"lie_height_near", FP_LIE_HEIGHT_NEAR, 1000},
    {"disconnect", FP_DISCONNECT, 20},
    {"wrong_genesis", FP_WRONG_GENESIS, 0},
};
#define NKINDS (sizeof s_kinds / sizeof s_kinds[0])

static void say(char *buf, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void say(char *buf, size_t len, const char *fmt, ...)
{
    if (!buf || !len)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, len, fmt, ap);
    va_end(ap);
}

const char *fp_kind_name(fp_kind_t k)
{
    for (size_t i = 0; i < NKINDS; i++)
        if (s_kinds[i].kind == k)
            return s_kinds[i].name;
    return "none";
}

int fp_parse(const char *spec, uint64_t arg, fp_config_t *cfg, char *err, size_t errlen)
{
    char name[64];
    const char *colon = strchr(spec, ':');
    size_t n = colon ? (size_t) (colon - spec) : strlen(spec);
    if (n >= sizeof name) {
        say(err, errlen, "--fault %s: unknown kind", spec);
        return -1;
    }
    memcpy(name, spec, n);
    name[n] = '\0';
    for (size_t i = 0; i < NKINDS; i++) {
        if (strcmp(name, s_kinds[i].name) != 0)
            continue;
        if (colon && s_kinds[i].kind != FP_CORRUPT) {
            say(err, errlen, "--fault %s: only corrupt takes a kind (corrupt:bad_nonce)", spec);
            return -1;
        }
        cfg->kind = s_kinds[i].kind;
        cfg->arg = arg ? arg : s_kinds[i].default_arg;
        /* Bare "corrupt": a bad tx signature, which needs no key and keeps
         * the header hash, so only validation can tell (the blame path). */
        cfg->corrupt = ALYS_BLOCK_BAD_TX_SIG;
        if (cfg->kind == FP_CORRUPT && colon)
            return alys_forge_fault_parse(colon + 1, &cfg->corrupt, err, errlen);
        return 0;
    }
    say(err, errlen,
        "--fault %s: unknown kind (none, delay, drop, stall, corrupt:<kind>, truncate, "
        "lie_height, lie_height_near, disconnect, wrong_genesis)",
        spec);
    return -1;
}

/* Kinds whose change must be re-signed by the proposer. */
static bool needs_authority(alys_block_error_t k)
{
    return k != ALYS_BLOCK_BAD_PROPOSER_SIG && k != ALYS_BLOCK_BAD_TX_SIG &&
           !alys_forge_fault_is_encoding(k);
}

/* Kinds whose change reads the genesis (authority count, slot timing). */
static bool needs_genesis(alys_block_error_t k)
{
    return k == ALYS_BLOCK_WRONG_PROPOSER || k == ALYS_BLOCK_NON_INCREASING_SLOT ||
           k == ALYS_BLOCK_FUTURE_SLOT;
}

int fp_check(const fp_config_t *cfg, char *err, size_t errlen)
{
    if (cfg->upload_kbps > FP_UPLOAD_KBPS_MAX) {
        say(err, errlen, "--upload-kbps %u: at most %u", (unsigned) cfg->upload_kbps,
            (unsigned) FP_UPLOAD_KBPS_MAX);
        return -1;
    }
    if (cfg->kind != FP_CORRUPT)
        return 0;
    alys_block_error_t k = cfg->corrupt;
    if (needs_genesis(k) && !cfg->genesis) {
        say(err, errlen, "corrupt:%s needs --genesis", alys_block_error_name(k));
        return -1;
    }
    if (needs_authority(k) && (!cfg->keys || cfg->keys->authority_count == 0)) {
        say(err, errlen, "corrupt:%s re-signs blocks: it needs --keys or --seed",
            alys_block_error_name(k));
        return -1;
    }
    if ((k == ALYS_BLOCK_BAD_NONCE || k == ALYS_BLOCK_INSUFFICIENT_BALANCE) &&
        (!cfg->keys || cfg->keys->account_count == 0)) {
        say(err, errlen, "corrupt:%s re-signs a transfer: it needs --seed (account keys)",
            alys_block_error_name(k));
        return -1;
    }
    if (k == ALYS_BLOCK_WRONG_PROPOSER && cfg->genesis->authority_count < 2) {
        say(err, errlen, "corrupt:wrong_proposer needs at least 2 authorities");
        return -1;
    }
    return 0;
}

fp_t *fp_new(const fp_config_t *cfg)
{
    fp_t *self = calloc(1, sizeof *self);
    if (self)
        self->cfg = *cfg;
    return self;
}

void fp_destroy(fp_t **self_p)
{
    if (self_p && *self_p) {
        free(*self_p);
        *self_p = NULL;
    }
}

uint64_t fp_responses(const fp_t *self)
{
    return self->responses;
}
uint64_t fp_altered(const fp_t *self)
{
    return self->altered;
}

/* ---- helpers ----------------------------------------------------------------- */

static fp_client_t *client_get(fp_t *self, const void *id, size_t len)
{
    if (len > sizeof self->clients[0].id)
        len = sizeof self->clients[0].id;
    fp_client_t *victim = &self->clients[0];
    for (size_t i = 0; i < FP_CLIENTS; i++) {
        fp_client_t *c = &self->clients[i];
        if (c->used && c->len == len && memcmp(c->id, id, len) == 0) {
            c->seen = ++self->tick;
            return c;
        }
        if (!c->used || (victim->used && c->seen < victim->seen))
            victim = c;
    }
    *victim = (fp_client_t){.used = true, .len = len, .seen = ++self->tick};
    memcpy(victim->id, id, len);
    return victim;
}

static int pack(const alys_wire_msg_t *m, fp_out_t *out)
{
    size_t len = alys__wire__wire_msg__get_packed_size(m);
    uint8_t *bytes = malloc(len ? len : 1);
    if (!bytes)
        return -1;
    alys__wire__wire_msg__pack(m, bytes);
    out->bytes = bytes;
    out->len = len;
    return 0;
}

/* ---- Status ------------------------------------------------------------------ */

static void status_out(fp_t *self, const alys_wire_msg_t *m, fp_out_t *out)
{
    Alys__Wire__Status st = *m->status;
    char node_id[ALYS_WIRE_ID_MAX];
    /* The proxy's own key when it has one (it is a peer of its own: a
     * Status naming the upstream's key would contradict the link); else
     * "<node_id>/<tag>", cut so the tag survives. */
    size_t tag = strlen(self->cfg.tag);
    int keep = (int) (ALYS_WIRE_ID_MAX - 2 - tag);
    if (self->cfg.node_id[0])
        snprintf(node_id, sizeof node_id, "%s", self->cfg.node_id);
    else
        snprintf(node_id, sizeof node_id, "%.*s/%s", keep > 0 ? keep : 0,
                 st.node_id ? st.node_id : "", self->cfg.tag);
    st.node_id = node_id;
    if (self->cfg.listen[0])
        st.listen = self->cfg.listen;
    uint8_t genesis[ALYS_HASH_LEN];
    if (st.genesis_hash.len == ALYS_HASH_LEN) {
        memcpy(genesis, st.genesis_hash.data, ALYS_HASH_LEN);
        st.genesis_hash.data = genesis;
    }
    if (self->cfg.kind == FP_WRONG_GENESIS) {
        for (size_t i = 0; i < st.genesis_hash.len; i++)
            genesis[i] ^= 0xa5;
        say(out->note, sizeof out->note, "status: genesis hash rewritten");
        self->altered++;
    } else if (self->cfg.kind == FP_LIE_HEIGHT) {
        say(out->note, sizeof out->note, "status: height %llu claimed as %llu",
            (unsigned long long) st.head_height, (unsigned long long) FP_LIE_HEIGHT_VALUE);
        st.head_height = FP_LIE_HEIGHT_VALUE;
        self->altered++;
    } else if (self->cfg.kind == FP_LIE_HEIGHT_NEAR) {
        say(out->note, sizeof out->note, "status: height %llu claimed as %llu",
            (unsigned long long) st.head_height,
            (unsigned long long) (st.head_height + self->cfg.arg));
        st.head_height += self->cfg.arg;
        self->altered++;
    }
    alys_wire_msg_t copy = *m;
    copy.status = &st;
    pack(&copy, out);
}

/* ---- item responses ---------------------------------------------------------- */

/* Headers/Blocks: the item array and count of m. */
static void items_of(const alys_wire_msg_t *m, ProtobufCBinaryData **items, size_t *n)
{
    if (m->body_case == ALYS__WIRE__WIRE_MSG__BODY_HEADERS) {
        *items = m->headers->headers;
        *n = m->headers->n_headers;
    } else {
        *items = m->blocks->blocks;
        *n = m->blocks->n_blocks;
    }
}

/* m with its items replaced by items[0..n), truncated flag as given. */
static void pack_items(const alys_wire_msg_t *m, ProtobufCBinaryData *items, size_t n,
                       bool truncated, fp_out_t *out)
{
    alys_wire_msg_t copy = *m;
    Alys__Wire__Headers h;
    Alys__Wire__Blocks b;
    if (m->body_case == ALYS__WIRE__WIRE_MSG__BODY_HEADERS) {
        h = *m->headers;
        h.headers = items;
        h.n_headers = n;
        h.truncated = truncated;
        copy.headers = &h;
    } else {
        b = *m->blocks;
        b.blocks = items;
        b.n_blocks = n;
        b.truncated = truncated;
        copy.blocks = &b;
    }
    pack(&copy, out);
}

static void truncate_out(fp_t *self, const alys_wire_msg_t *m, fp_out_t *out)
{
    ProtobufCBinaryData *items;
    size_t n;
    items_of(m, &items, &n);
    if (n < 2)
        return;
    pack_items(m, items, n / 2, false, out);
    say(out->note, sizeof out->note, "%s: %zu of %zu items, not flagged truncated",
        alys_wire_body_name(m), n / 2, n);
    self->altered++;
}

/* The index to corrupt: the middle, or the nearest one the kind applies to. */
static bool pick_block(const fp_config_t *cfg, const ProtobufCBinaryData *blocks, size_t n, size_t *at)
{
    bool tx = cfg->corrupt == ALYS_BLOCK_BAD_TX_SIG || cfg->corrupt == ALYS_BLOCK_BAD_NONCE ||
              cfg->corrupt == ALYS_BLOCK_INSUFFICIENT_BALANCE;
    bool parent = cfg->corrupt == ALYS_BLOCK_NON_INCREASING_SLOT;
    for (size_t k = 0; k < n; k++) {
        size_t i = (n / 2 + k) % n;
        if (parent && i == 0)
            continue;
        alys_block_t b;
        if (alys_block_decode(blocks[i].data, blocks[i].len, &b, NULL) != 0)
            continue;
        bool ok = !tx || b.tx_count > 0;
        alys_block_clear(&b);
        if (ok) {
            *at = i;
            return true;
        }
    }
    return false;
}

/* New bytes for block i made invalid as cfg->corrupt says; 0 or -1. */
static int corrupt_block(const fp_config_t *cfg, const ProtobufCBinaryData *blocks, size_t i,
                         uint8_t **bytes, size_t *len, char *err, size_t errlen)
{
    alys_block_t b, parent;
    memset(&parent, 0, sizeof parent);
    if (alys_block_decode(blocks[i].data, blocks[i].len, &b, NULL) != 0)
        return -1;
    int rc = 0;
    if (alys_forge_fault_is_encoding(cfg->corrupt)) {
        rc = alys_forge_corrupt_encoding(&b, cfg->corrupt, bytes, len, err, errlen);
    } else {
        bool has_parent = i > 0 && alys_block_decode(blocks[i - 1].data, blocks[i - 1].len,
                                                     &parent, NULL) == 0;
        alys_forge_fault_ctx_t ctx = {.genesis = cfg->genesis,
                                      .keys = cfg->keys,
                                      .parent = has_parent ? &parent.header : NULL};
        rc = alys_forge_corrupt_block(&b, cfg->corrupt, &ctx, NULL, err, errlen);
        if (rc == 0)
            rc = alys_block_encode(&b, bytes, len);
        alys_block_clear(&parent);
    }
    alys_block_clear(&b);
    return rc;
}

static void corrupt_out(fp_t *self, const alys_wire_msg_t *m, fp_out_t *out)
{
    ProtobufCBinaryData *blocks = m->blocks->blocks;
    size_t n = m->blocks->n_blocks, at = 0;
    if (n == 0 || !pick_block(&self->cfg, blocks, n, &at)) {
        say(out->note, sizeof out->note, "blocks: nothing %s applies to",
            alys_block_error_name(self->cfg.corrupt));
        return;
    }
    ProtobufCBinaryData *copy = malloc(n * sizeof *copy);
    uint8_t *bytes = NULL;
    size_t len = 0;
    char err[160] = "out of memory";
    if (copy && corrupt_block(&self->cfg, blocks, at, &bytes, &len, err, sizeof err) == 0) {
        memcpy(copy, blocks, n * sizeof *copy);
        copy[at] = (ProtobufCBinaryData){len, bytes};
        pack_items(m, copy, n, m->blocks->truncated, out);
        say(out->note, sizeof out->note, "blocks: block %llu made %s",
            (unsigned long long) (m->blocks->start + at), alys_block_error_name(self->cfg.corrupt));
        self->altered++;
    } else {
        say(out->note, sizeof out->note, "blocks: corrupting failed: %s", err);
    }
    free(bytes);
    free(copy);
}

static bool is_items(const alys_wire_msg_t *m)
{
    return m->body_case == ALYS__WIRE__WIRE_MSG__BODY_HEADERS ||
           m->body_case == ALYS__WIRE__WIRE_MSG__BODY_BLOCKS;
}

static void stall_out(fp_t *self, const void *client, size_t client_len, const alys_wire_msg_t *m,
                      fp_out_t *out)
{
    fp_client_t *c = client_get(self, client, client_len);
    if (c->served >= self->cfg.arg) {
        out->drop = true;
        say(out->note, sizeof out->note, "blocks: stalled after %llu blocks",
            (unsigned long long) c->served);
        self->altered++;
        return;
    }
    c->served += m->blocks->n_blocks;
}

/* ---- entry points ------------------------------------------------------------ */

static void apply(fp_t *self, const void *client, size_t client_len, const alys_wire_msg_t *m,
                  fp_out_t *out)
{
    bool blocks = m->body_case == ALYS__WIRE__WIRE_MSG__BODY_BLOCKS;
    switch (self->cfg.kind) {
    case FP_DELAY: out->delay_ms = (uint32_t) self->cfg.arg; break;
    case FP_DROP:
        /* the 1st, (N+1)th, ...: even a peer asked only once misbehaves */
        if (is_items(m) && self->data_responses++ % self->cfg.arg == 0) {
            out->drop = true;
            say(out->note, sizeof out->note, "%s: dropped", alys_wire_body_name(m));
            self->altered++;
        }
        break;
    case FP_STALL:
        if (blocks)
            stall_out(self, client, client_len, m, out);
        break;
    case FP_CORRUPT:
        if (blocks)
            corrupt_out(self, m, out);
        break;
    case FP_TRUNCATE:
        if (is_items(m))
            truncate_out(self, m, out);
        break;
    default: break;
    }
}

void fp_response(fp_t *self, const void *client, size_t client_len, const uint8_t *in, size_t len,
                 fp_out_t *out)
{
    memset(out, 0, sizeof *out);
    self->responses++;
    char err[160];
    alys_wire_msg_t *m = alys_wire_decode(in, len, err, sizeof err);
    if (!m)
        return; /* not ours to judge: pass it on */
    if (m->body_case == ALYS__WIRE__WIRE_MSG__BODY_STATUS)
        status_out(self, m, out);
    if (self->cfg.kind == FP_DELAY)
        out->delay_ms = (uint32_t) self->cfg.arg;
    else if (m->body_case != ALYS__WIRE__WIRE_MSG__BODY_STATUS)
        apply(self, client, client_len, m, out);
    alys_wire_free(&m);
}

bool fp_request(fp_t *self, const uint8_t *in, size_t len, fp_out_t *out)
{
    memset(out, 0, sizeof *out);
    self->requests++;
    if (self->cfg.kind == FP_DISCONNECT && self->cfg.arg && self->requests % self->cfg.arg == 0) {
        say(out->note, sizeof out->note, "request %llu: going down",
            (unsigned long long) self->requests);
        return true;
    }
    char err[160];
    alys_wire_msg_t *m = alys_wire_decode(in, len, err, sizeof err);
    bool rename = self->cfg.node_id[0] != '\0';
    if (m && m->body_case == ALYS__WIRE__WIRE_MSG__BODY_STATUS &&
        ((m->status->listen && m->status->listen[0]) || rename)) {
        Alys__Wire__Status st = *m->status;
        st.listen = "";
        /* Upstream, the proxy's key is on the link: its Status must say so. */
        if (rename)
            st.node_id = self->cfg.node_id;
        alys_wire_msg_t copy = *m;
        copy.status = &st;
        pack(&copy, out);
    }
    alys_wire_free(&m);
    return false;
}

int64_t fp_shape(fp_t *self, const void *client, size_t client_len, size_t len, int64_t now_ms)
{
    if (self->cfg.upload_kbps == 0)
        return now_ms;
    fp_client_t *c = client_get(self, client, client_len);
    int64_t now_us = now_ms * 1000;
    int64_t start = c->busy_us > now_us ? c->busy_us : now_us;
    /* Whole seconds and the remainder apart, so no len overflows; rounded
     * up so that a frame never costs nothing. */
    uint64_t rate = (uint64_t) self->cfg.upload_kbps * 1024;
    uint64_t tx_us = (uint64_t) len / rate * 1000000 +
                     ((uint64_t) len % rate * 1000000 + rate - 1) / rate;
    c->busy_us = start + (int64_t) tx_us;
    return (c->busy_us + 999) / 1000;
}

int64_t fp_due(fp_t *self, const void *client, size_t client_len, size_t len, uint32_t delay_ms,
               int64_t now_ms)
{
    return fp_shape(self, client, client_len, len, now_ms) + delay_ms;
}
