/*  test_codec.c: protobuf round trips, and every decoder fed truncated,
 *  bit-flipped and over-size input: a clear error, no crash (run the suite
 *  under ASan with -Db_sanitize=address to make "no crash" strict). */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "chain.pb-c.h"
#include "fixture.h"

static fx_t s_fx;
static alys_block_t s_b;

static void setup(void)
{
    fx_init(&s_fx);
    alys_header_t parent;
    alys_genesis_parent(&s_fx.g, &parent);
    alys_tx_t txs[2] = {
        fx_tx(&s_fx, 0, s_fx.user_pk[1], 1234, 5, 0),
        fx_tx(&s_fx, 1, s_fx.user_pk[2], 99, 1, 0),
    };
    fx_block(&s_fx, &parent, s_fx.g.hash, 4, txs, 2, &s_b);
}

static void teardown(void)
{
    alys_block_clear(&s_b);
    fx_fini(&s_fx);
}

TestSuite(codec, .init = setup, .fini = teardown);

static void encode(const alys_block_t *b, uint8_t **buf, size_t *len)
{
    cr_assert_eq(alys_block_encode(b, buf, len), 0);
}

Test(codec, block_roundtrip)
{
    uint8_t *buf;
    size_t len;
    encode(&s_b, &buf, &len);
    alys_block_t back;
    alys_verdict_t v;
    cr_assert_eq(alys_block_decode(buf, len, &back, &v), 0, "%s", v.detail);
    cr_assert_eq(memcmp(&back.header, &s_b.header, sizeof back.header), 0);
    cr_assert_eq(back.tx_count, 2);
    cr_assert_eq(memcmp(back.txs, s_b.txs, 2 * sizeof *back.txs), 0);
    uint8_t *again;
    size_t len2;
    encode(&back, &again, &len2);
    cr_assert_eq(len2, len);
    cr_assert_arr_eq(again, buf, len, "re-encoding must give identical bytes");
    free(again);
    free(buf);
    alys_block_clear(&back);
}

Test(codec, empty_block_roundtrip)
{
    alys_block_t e = {.header = s_b.header};
    uint8_t *buf;
    size_t len;
    encode(&e, &buf, &len);
    alys_block_t back;
    alys_verdict_t v;
    cr_assert_eq(alys_block_decode(buf, len, &back, &v), 0, "%s", v.detail);
    cr_assert_eq(back.tx_count, 0);
    cr_assert_null(back.txs);
    free(buf);
}

Test(codec, header_roundtrip)
{
    uint8_t *buf;
    size_t len;
    cr_assert_eq(alys_header_encode(&s_b.header, &buf, &len), 0);
    alys_header_t back;
    alys_verdict_t v;
    cr_assert_eq(alys_header_decode(buf, len, &back, &v), 0, "%s", v.detail);
    cr_assert_eq(memcmp(&back, &s_b.header, sizeof back), 0);
    free(buf);
}

/* Hand-built protobuf, to produce what our encoder never would. */
static void pack_pb(const ProtobufCMessage *m, uint8_t **buf, size_t *len)
{
    *len = protobuf_c_message_get_packed_size(m);
    *buf = malloc(*len + 1);
    cr_assert(*buf);
    cr_assert_eq(protobuf_c_message_pack(m, *buf), *len);
}

static void expect_decode_fail(const uint8_t *buf, size_t len, alys_block_error_t code,
                               int32_t tx_index, const char *detail)
{
    alys_block_t b;
    alys_verdict_t v;
    cr_assert_eq(alys_block_decode(buf, len, &b, &v), -1);
    cr_assert_eq(v.code, code, "got %s: %s", alys_block_error_name(v.code), v.detail);
    cr_assert_eq(v.tx_index, tx_index, "tx_index %d: %s", v.tx_index, v.detail);
    if (detail)
        cr_assert_str_eq(v.detail, detail);
    cr_assert_null(b.txs);
    cr_assert_eq(b.tx_count, 0);
}

Test(codec, missing_header_is_malformed)
{
    Alys__Chain__Block m;
    alys__chain__block__init(&m);
    uint8_t *buf;
    size_t len;
    pack_pb(&m.base, &buf, &len);
    expect_decode_fail(buf, len, ALYS_BLOCK_MALFORMED, -1, "block has no header");
    free(buf);
}

static void fill_pb_block(Alys__Chain__Block *m, Alys__Chain__Header *h, Alys__Chain__Tx *txs,
                          Alys__Chain__Tx **ptrs, int n)
{
    static uint8_t z[64];
    alys__chain__block__init(m);
    alys__chain__header__init(h);
    h->parent_hash = (ProtobufCBinaryData){32, z};
    h->tx_root = (ProtobufCBinaryData){32, z};
    h->state_root = (ProtobufCBinaryData){32, z};
    h->signature = (ProtobufCBinaryData){64, z};
    m->header = h;
    for (int i = 0; i < n; i++) {
        alys__chain__tx__init(&txs[i]);
        txs[i].from = (ProtobufCBinaryData){32, z};
        txs[i].to = (ProtobufCBinaryData){32, z};
        txs[i].signature = (ProtobufCBinaryData){64, z};
        ptrs[i] = &txs[i];
    }
    m->n_txs = (size_t) n;
    m->txs = ptrs;
}

Test(codec, wrong_field_lengths_name_the_field)
{
    Alys__Chain__Block m;
    Alys__Chain__Header h;
    Alys__Chain__Tx txs[5], *ptrs[5];
    uint8_t *buf;
    size_t len;
    fill_pb_block(&m, &h, txs, ptrs, 5);
    pack_pb(&m.base, &buf, &len);
    alys_block_t ok;
    cr_assert_eq(alys_block_decode(buf, len, &ok, NULL), 0);
    alys_block_clear(&ok);
    free(buf);

    txs[3].signature.len = 12;
    pack_pb(&m.base, &buf, &len);
    expect_decode_fail(buf, len, ALYS_BLOCK_MALFORMED, 3, "tx 3: signature is 12 bytes, expected 64");
    free(buf);
    txs[3].signature.len = 64;

    txs[0].to.len = 31;
    pack_pb(&m.base, &buf, &len);
    expect_decode_fail(buf, len, ALYS_BLOCK_MALFORMED, 0, "tx 0: to is 31 bytes, expected 32");
    free(buf);
    txs[0].to.len = 32;

    txs[4].from.len = 0;
    pack_pb(&m.base, &buf, &len);
    expect_decode_fail(buf, len, ALYS_BLOCK_MALFORMED, 4, "tx 4: from is 0 bytes, expected 32");
    free(buf);
    txs[4].from.len = 32;

    h.parent_hash.len = 0;
    pack_pb(&m.base, &buf, &len);
    expect_decode_fail(buf, len, ALYS_BLOCK_MALFORMED, -1,
                       "header: parent_hash is 0 bytes, expected 32");
    free(buf);
    h.parent_hash.len = 32;

    h.signature.len = 63;
    pack_pb(&m.base, &buf, &len);
    expect_decode_fail(buf, len, ALYS_BLOCK_MALFORMED, -1,
                       "header: signature is 63 bytes, expected 64");
    free(buf);
}

Test(codec, oversize_bytes_refused_before_parsing)
{
    size_t len = ALYS_MAX_BLOCK_BYTES + 1;
    uint8_t *buf = calloc(1, len);
    cr_assert(buf);
    char want[96];
    snprintf(want, sizeof want, "block is %zu bytes, max %d", len, ALYS_MAX_BLOCK_BYTES);
    expect_decode_fail(buf, len, ALYS_BLOCK_OVERSIZE, -1, want);
    free(buf);
}

Test(codec, too_many_txs_refused_before_parsing)
{
    /* 4097 empty tx fields (tag 0x12, length 0) after nothing else. */
    size_t n = ALYS_MAX_TXS_PER_BLOCK + 1, len = 2 * n;
    uint8_t *buf = malloc(len);
    cr_assert(buf);
    for (size_t i = 0; i < n; i++) {
        buf[2 * i] = 0x12;
        buf[2 * i + 1] = 0x00;
    }
    expect_decode_fail(buf, len, ALYS_BLOCK_OVERSIZE, -1, "block has 4097 txs, max 4096");
    free(buf);
}

Test(codec, memory_budget_caps_crafted_input)
{
    /* ~1 MiB of 2-byte unknown fields: each costs protobuf-c far more than
     * 16x its wire size in bookkeeping. Must fail, not balloon. */
    size_t len = ALYS_MAX_BLOCK_BYTES;
    uint8_t *buf = malloc(len);
    cr_assert(buf);
    for (size_t i = 0; i + 1 < len; i += 2) {
        buf[i] = 0x38; /* field 7, varint */
        buf[i + 1] = 0x00;
    }
    alys_block_t b;
    alys_verdict_t v;
    cr_assert_eq(alys_block_decode(buf, len, &b, &v), -1);
    cr_assert_eq(v.code, ALYS_BLOCK_MALFORMED);
    cr_assert(strstr(v.detail, "memory") != NULL, "%s", v.detail);
    free(buf);
}

Test(codec, garbage_and_empty_input)
{
    alys_block_t b;
    alys_verdict_t v;
    cr_assert_eq(alys_block_decode(NULL, 0, &b, &v), -1);
    cr_assert_str_eq(v.detail, "block has no header");
    const uint8_t junk[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    expect_decode_fail(junk, sizeof junk, ALYS_BLOCK_MALFORMED, -1, NULL);
    const uint8_t group[] = {0x0b, 0x0c}; /* field 1 as a group */
    expect_decode_fail(group, sizeof group, ALYS_BLOCK_MALFORMED, -1, NULL);
}

/* A decode either fails with a reason or yields a block that the stateless
 * checks refuse: a damaged block can never pass for a valid one. */
static void decode_damaged(const uint8_t *buf, size_t len, const char *what, size_t at)
{
    alys_block_t b;
    alys_verdict_t v;
    if (alys_block_decode(buf, len, &b, &v) != 0) {
        cr_assert(v.code == ALYS_BLOCK_MALFORMED || v.code == ALYS_BLOCK_OVERSIZE,
                  "%s %zu: code %s", what, at, alys_block_error_name(v.code));
        cr_assert_neq(v.detail[0], '\0', "%s %zu: empty detail", what, at);
        return;
    }
    cr_assert_not(alys_block_check_stateless(&s_fx.g, &b, &v), "%s %zu still valid", what, at);
    alys_block_clear(&b);
}

Test(codec, every_truncation_fails_cleanly)
{
    uint8_t *buf;
    size_t len;
    encode(&s_b, &buf, &len);
    for (size_t n = 0; n < len; n++) {
        uint8_t *copy = malloc(n ? n : 1); /* exact size: ASan sees any over-read */
        memcpy(copy, buf, n);
        decode_damaged(copy, n, "truncated to", n);
        free(copy);
    }
    free(buf);
}

Test(codec, every_bit_flip_fails_cleanly)
{
    uint8_t *buf;
    size_t len;
    encode(&s_b, &buf, &len);
    for (size_t bit = 0; bit < len * 8; bit++) {
        buf[bit / 8] ^= (uint8_t) (1u << (bit % 8));
        decode_damaged(buf, len, "bit", bit);
        buf[bit / 8] ^= (uint8_t) (1u << (bit % 8));
    }
    free(buf);
}

Test(codec, header_decoder_truncated_and_flipped)
{
    uint8_t *buf;
    size_t len;
    cr_assert_eq(alys_header_encode(&s_b.header, &buf, &len), 0);
    alys_header_t h;
    alys_verdict_t v;
    for (size_t n = 0; n < len; n++) {
        if (alys_header_decode(buf, n, &h, &v) == 0)
            cr_assert_not(alys_header_check(&s_fx.g, &h, &v), "truncated to %zu valid", n);
        else
            cr_assert_neq(v.detail[0], '\0');
    }
    for (size_t bit = 0; bit < len * 8; bit++) {
        buf[bit / 8] ^= (uint8_t) (1u << (bit % 8));
        if (alys_header_decode(buf, len, &h, &v) == 0)
            cr_assert_not(alys_header_check(&s_fx.g, &h, &v), "bit %zu valid", bit);
        else
            cr_assert_neq(v.detail[0], '\0');
        buf[bit / 8] ^= (uint8_t) (1u << (bit % 8));
    }
    uint8_t *big = calloc(1, 64 * 1024 + 1);
    cr_assert_eq(alys_header_decode(big, 64 * 1024 + 1, &h, &v), -1);
    cr_assert_eq(v.code, ALYS_BLOCK_OVERSIZE);
    free(big);
    free(buf);
}

/* ---- genesis ---- */

static void genesis_bytes(const alys_genesis_t *g, uint8_t **buf, size_t *len)
{
    cr_assert_eq(alys_genesis_encode(g, buf, len), 0);
}

Test(codec, genesis_roundtrip_and_hash)
{
    uint8_t *buf;
    size_t len;
    genesis_bytes(&s_fx.g, &buf, &len);
    alys_genesis_t g;
    char err[160];
    cr_assert_eq(alys_genesis_decode(buf, len, &g, err, sizeof err), 0, "%s", err);
    cr_assert_str_eq(g.chain_id, "alys-test");
    cr_assert_eq(g.authority_count, FX_AUTHS);
    cr_assert_eq(g.balance_count, FX_USERS);
    cr_assert_eq(g.slot_duration_ms, FX_SLOT_MS);
    cr_assert_eq(g.genesis_time, FX_GENESIS_TIME);
    cr_assert_arr_eq(g.hash, s_fx.g.hash, 32);
    cr_assert_arr_eq(g.state_root, s_fx.g.state_root, 32);
    alys_genesis_clear(&g);
    free(buf);
}

Test(codec, genesis_hash_covers_every_field)
{
    alys_hash_t h0;
    memcpy(h0, s_fx.g.hash, 32);
#define CHANGES(stmt, undo)                                       \
    do {                                                          \
        stmt;                                                     \
        alys_genesis_finalize(&s_fx.g);                           \
        cr_assert(memcmp(h0, s_fx.g.hash, 32) != 0, "%s", #stmt); \
        undo;                                                     \
        alys_genesis_finalize(&s_fx.g);                           \
        cr_assert_arr_eq(h0, s_fx.g.hash, 32);                    \
    } while (0)
    CHANGES(s_fx.g.chain_id[0] = 'b', s_fx.g.chain_id[0] = 'a');
    CHANGES(s_fx.g.authorities[1][3] ^= 1, s_fx.g.authorities[1][3] ^= 1);
    CHANGES(s_fx.g.authority_count--, s_fx.g.authority_count++);
    CHANGES(s_fx.g.slot_duration_ms++, s_fx.g.slot_duration_ms--);
    CHANGES(s_fx.g.genesis_time++, s_fx.g.genesis_time--);
    CHANGES(s_fx.g.balances[2].balance++, s_fx.g.balances[2].balance--);
    CHANGES(s_fx.g.balances[2].pubkey[0] ^= 1, s_fx.g.balances[2].pubkey[0] ^= 1);
    CHANGES(s_fx.g.balance_count--, s_fx.g.balance_count++);
#undef CHANGES
}

static void expect_genesis_error(const alys_genesis_t *g, const char *want)
{
    uint8_t *buf;
    size_t len;
    genesis_bytes(g, &buf, &len);
    alys_genesis_t out;
    char err[200] = "";
    cr_assert_eq(alys_genesis_decode(buf, len, &out, err, sizeof err), -1);
    cr_assert(strstr(err, want) != NULL, "error '%s' lacks '%s'", err, want);
    cr_assert_null(out.authorities);
    cr_assert_null(out.balances);
    free(buf);
}

Test(codec, genesis_rules)
{
    alys_genesis_t g = s_fx.g;
    g.slot_duration_ms = 0;
    expect_genesis_error(&g, "slot_duration_ms must be > 0");
    g = s_fx.g;
    g.authority_count = 0;
    expect_genesis_error(&g, "0 authorities");
    g = s_fx.g;
    memcpy(g.balances[5].pubkey, g.balances[2].pubkey, 32);
    expect_genesis_error(&g, "is listed more than once");
    memcpy(g.balances[5].pubkey, s_fx.user_pk[5], 32);
    memcpy(g.authorities[2], g.authorities[0], 32);
    expect_genesis_error(&g, "authorities 0 and 2 are the same key");
    /* g shares the fixture's arrays: put the key back for teardown's sake. */
    cr_assert_eq(alys_keypair_pubkey(s_fx.auth_sk[2], g.authorities[2]), 0);
}

Test(codec, genesis_field_sizes_and_bounds)
{
    Alys__Chain__Genesis m;
    alys__chain__genesis__init(&m);
    static uint8_t key[33];
    ProtobufCBinaryData auths[ALYS_MAX_AUTHORITIES + 1];
    for (int i = 0; i <= ALYS_MAX_AUTHORITIES; i++)
        auths[i] = (ProtobufCBinaryData){32, key};
    m.slot_duration_ms = 1000;
    m.authorities = auths;
    m.n_authorities = 1;
    auths[0].len = 33;
    uint8_t *buf;
    size_t len;
    char err[200];
    alys_genesis_t g;
    pack_pb(&m.base, &buf, &len);
    cr_assert_eq(alys_genesis_decode(buf, len, &g, err, sizeof err), -1);
    cr_assert_str_eq(err, "genesis: authority 0 is 33 bytes, expected 32");
    free(buf);
    auths[0].len = 32;
    m.n_authorities = ALYS_MAX_AUTHORITIES + 1;
    pack_pb(&m.base, &buf, &len);
    cr_assert_eq(alys_genesis_decode(buf, len, &g, err, sizeof err), -1);
    cr_assert_str_eq(err, "genesis has 65 authorities, max 64");
    free(buf);
    char long_id[80];
    memset(long_id, 'x', sizeof long_id - 1);
    long_id[sizeof long_id - 1] = '\0';
    m.chain_id = long_id;
    m.n_authorities = 1;
    pack_pb(&m.base, &buf, &len);
    cr_assert_eq(alys_genesis_decode(buf, len, &g, err, sizeof err), -1);
    cr_assert_str_eq(err, "genesis: chain_id is 79 bytes, max 63");
    free(buf);
    uint8_t *huge = calloc(1, ALYS_MAX_GENESIS_BYTES + 1);
    cr_assert_eq(alys_genesis_decode(huge, ALYS_MAX_GENESIS_BYTES + 1, &g, err, sizeof err), -1);
    cr_assert(strstr(err, "max") != NULL, "%s", err);
    free(huge);
}

Test(codec, genesis_truncated_and_flipped)
{
    uint8_t *buf;
    size_t len;
    genesis_bytes(&s_fx.g, &buf, &len);
    alys_genesis_t g;
    char err[200];
    for (size_t n = 0; n < len; n++) {
        err[0] = '\0';
        if (alys_genesis_decode(buf, n, &g, err, sizeof err) == 0) {
            cr_assert(memcmp(g.hash, s_fx.g.hash, 32) != 0, "truncated to %zu same genesis", n);
            alys_genesis_clear(&g);
        } else {
            cr_assert_neq(err[0], '\0');
        }
    }
    for (size_t bit = 0; bit < len * 8; bit++) {
        buf[bit / 8] ^= (uint8_t) (1u << (bit % 8));
        err[0] = '\0';
        if (alys_genesis_decode(buf, len, &g, err, sizeof err) == 0) {
            cr_assert(memcmp(g.hash, s_fx.g.hash, 32) != 0, "bit %zu same genesis", bit);
            alys_genesis_clear(&g);
        } else {
            cr_assert_neq(err[0], '\0');
        }
        buf[bit / 8] ^= (uint8_t) (1u << (bit % 8));
    }
    free(buf);
}

Test(codec, genesis_save_and_load)
{
    char dir[] = "/tmp/alys-chain-test-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    char path[256];
    snprintf(path, sizeof path, "%s/genesis", dir);
    cr_assert_eq(alys_genesis_save(path, &s_fx.g), 0);
    alys_genesis_t g;
    char err[200];
    cr_assert_eq(alys_genesis_load(path, &g, err, sizeof err), 0, "%s", err);
    cr_assert_arr_eq(g.hash, s_fx.g.hash, 32);
    alys_genesis_clear(&g);
    unlink(path);
    cr_assert_eq(alys_genesis_load(path, &g, err, sizeof err), -1);
    cr_assert(strstr(err, "No such file") != NULL, "%s", err);
    rmdir(dir);
}
