/*  alys-faultproxy's transformations (actors/faultproxy/faultproxy.c): each
 *  fault kind changes what it should, and only that. */
#include <unistd.h>

#include "bus.h"
#include "faultproxy.h"
#include "wire/wire.h"
#include "test_net_util.h"

static chain_fx_t fx;

static void fx_setup(void)
{
    chain_fx_make(&fx, 12, 3);
}
static void fx_teardown(void)
{
    chain_fx_free(&fx);
}

TestSuite(net_fault, .init = fx_setup, .fini = fx_teardown);

/* ---- helpers ------------------------------------------------------------------- */

/* A proxy of kind spec, its upload capped at kbps KiB/s per client (0 = none). */
static fp_t *proxy_capped(const char *spec, uint64_t arg, uint32_t kbps)
{
    fp_config_t cfg;
    memset(&cfg, 0, sizeof cfg);
    char err[256];
    cr_assert_eq(fp_parse(spec, arg, &cfg, err, sizeof err), 0, "%s", err);
    cfg.genesis = alys_chaingen_genesis(fx.gen);
    cfg.keys = alys_chaingen_keys(fx.gen);
    snprintf(cfg.tag, sizeof cfg.tag, "fp9");
    snprintf(cfg.listen, sizeof cfg.listen, "tcp://127.0.0.1:9");
    cfg.upload_kbps = kbps;
    cr_assert_eq(fp_check(&cfg, err, sizeof err), 0, "%s", err);
    fp_t *fp = fp_new(&cfg);
    cr_assert_not_null(fp);
    return fp;
}

static fp_t *proxy(const char *spec, uint64_t arg)
{
    return proxy_capped(spec, arg, 0);
}

typedef struct {
    uint8_t *bytes;
    size_t len;
} frame_t;

static frame_t pack(const alys_wire_msg_t *m)
{
    frame_t f = {.len = alys__wire__wire_msg__get_packed_size(m)};
    f.bytes = malloc(f.len);
    cr_assert_not_null(f.bytes);
    alys__wire__wire_msg__pack(m, f.bytes);
    return f;
}

static frame_t blocks_frame(uint64_t start, size_t n)
{
    Alys__Wire__Blocks b = ALYS__WIRE__BLOCKS__INIT;
    b.start = start;
    b.n_blocks = n;
    b.blocks = &fx.blocks[start - 1];
    alys_wire_msg_t m = ALYS__WIRE__WIRE_MSG__INIT;
    m.request_id = 5;
    m.body_case = ALYS__WIRE__WIRE_MSG__BODY_BLOCKS;
    m.blocks = &b;
    return pack(&m);
}

static uint8_t s_genesis_hash[ALYS_HASH_LEN];

static frame_t status_frame(uint64_t height)
{
    memset(s_genesis_hash, 7, sizeof s_genesis_hash);
    Alys__Wire__Status st = ALYS__WIRE__STATUS__INIT;
    st.protocol_version = 1;
    st.genesis_hash = (ProtobufCBinaryData){ALYS_HASH_LEN, s_genesis_hash};
    st.head_height = height;
    st.node_id = "nodeA";
    st.listen = "tcp://127.0.0.1:30411";
    alys_wire_msg_t m = ALYS__WIRE__WIRE_MSG__INIT;
    m.request_id = 9;
    m.body_case = ALYS__WIRE__WIRE_MSG__BODY_STATUS;
    m.status = &st;
    return pack(&m);
}

/* The message the proxy sends on (its replacement or the original). */
static alys_wire_msg_t *passed(const frame_t *in, const fp_out_t *out)
{
    char err[160];
    alys_wire_msg_t *m = out->bytes ? alys_wire_decode(out->bytes, out->len, err, sizeof err)
                                    : alys_wire_decode(in->bytes, in->len, err, sizeof err);
    cr_assert_not_null(m, "%s", err);
    return m;
}

/* ---- parsing ------------------------------------------------------------------- */

Test(net_fault, parse_kinds_and_defaults)
{
    fp_config_t c;
    char err[512];
    memset(&c, 0, sizeof c);
    cr_expect_eq(fp_parse("delay", 0, &c, err, sizeof err), 0);
    cr_expect_eq(c.kind, FP_DELAY);
    cr_expect_eq(c.arg, 50);
    cr_expect_eq(fp_parse("drop", 7, &c, err, sizeof err), 0);
    cr_expect_eq(c.arg, 7);
    cr_expect_eq(fp_parse("corrupt:bad_nonce", 0, &c, err, sizeof err), 0);
    cr_expect_eq(c.kind, FP_CORRUPT);
    cr_expect_eq(c.corrupt, ALYS_BLOCK_BAD_NONCE);
    cr_expect_eq(fp_parse("lie_height_near", 0, &c, err, sizeof err), 0);
    cr_expect_eq(c.arg, 1000);
    cr_expect_eq(fp_parse("corrupt", 0, &c, err, sizeof err), 0);
    cr_expect_eq(c.corrupt, ALYS_BLOCK_BAD_TX_SIG, "bare corrupt: a bad tx signature");
    cr_expect_eq(fp_check(&c, err, sizeof err), 0, "which needs no key nor genesis");
    cr_expect_neq(fp_parse("corrupt:not_a_kind", 0, &c, err, sizeof err), 0);
    cr_expect_neq(fp_parse("delay:5", 0, &c, err, sizeof err), 0);
    cr_expect_neq(fp_parse("explode", 0, &c, err, sizeof err), 0);
    cr_expect(strstr(err, "wrong_genesis") != NULL, "%s", err);
}

Test(net_fault, corrupt_needs_its_material)
{
    fp_config_t c;
    char err[256];
    memset(&c, 0, sizeof c);
    cr_assert_eq(fp_parse("corrupt:wrong_proposer", 0, &c, err, sizeof err), 0);
    cr_expect_neq(fp_check(&c, err, sizeof err), 0, "no genesis");
    c.genesis = alys_chaingen_genesis(fx.gen);
    cr_assert_eq(fp_parse("corrupt:tx_root_mismatch", 0, &c, err, sizeof err), 0);
    cr_expect_neq(fp_check(&c, err, sizeof err), 0, "no keys to re-sign");
    cr_assert_eq(fp_parse("corrupt:bad_proposer_signature", 0, &c, err, sizeof err), 0);
    cr_expect_eq(fp_check(&c, err, sizeof err), 0, "flipping a signature needs no key");
    alys_forge_keys_t auth = *alys_chaingen_keys(fx.gen);
    auth.account_count = 0;
    c.keys = &auth;
    cr_assert_eq(fp_parse("corrupt:bad_nonce", 0, &c, err, sizeof err), 0);
    cr_expect_neq(fp_check(&c, err, sizeof err), 0, "a transfer needs the account keys (--seed)");
}

/* ---- Status -------------------------------------------------------------------- */

Test(net_fault, status_always_names_the_proxy)
{
    fp_t *fp = proxy("drop", 0);
    frame_t in = status_frame(2000);
    fp_out_t out;
    fp_response(fp, "c", 1, in.bytes, in.len, &out);
    alys_wire_msg_t *m = passed(&in, &out);
    cr_expect_str_eq(m->status->node_id, "nodeA/fp9");
    cr_expect_str_eq(m->status->listen, "tcp://127.0.0.1:9");
    cr_expect_eq(m->status->head_height, 2000, "height untouched");
    cr_expect_eq(memcmp(m->status->genesis_hash.data, s_genesis_hash, 32), 0, "genesis untouched");
    cr_expect(!out.drop);
    alys_wire_free(&m);
    free(out.bytes);
    free(in.bytes);
    fp_destroy(&fp);
    cr_expect_null(fp);
}

Test(net_fault, wrong_genesis_rewrites_the_genesis_hash)
{
    fp_t *fp = proxy("wrong_genesis", 0);
    frame_t in = status_frame(10);
    fp_out_t out;
    fp_response(fp, "c", 1, in.bytes, in.len, &out);
    alys_wire_msg_t *m = passed(&in, &out);
    cr_expect_eq(m->status->genesis_hash.len, 32);
    cr_expect_neq(memcmp(m->status->genesis_hash.data, s_genesis_hash, 32), 0);
    cr_expect_eq(m->status->head_height, 10);
    alys_wire_free(&m);
    free(out.bytes);
    free(in.bytes);
    fp_destroy(&fp);
}

Test(net_fault, lie_height_far_and_near)
{
    fp_t *far = proxy("lie_height", 0);
    fp_t *near = proxy("lie_height_near", 500);
    frame_t in = status_frame(2000);
    fp_out_t out;
    fp_response(far, "c", 1, in.bytes, in.len, &out);
    alys_wire_msg_t *m = passed(&in, &out);
    cr_expect_eq(m->status->head_height, FP_LIE_HEIGHT_VALUE);
    alys_wire_free(&m);
    free(out.bytes);
    fp_response(near, "c", 1, in.bytes, in.len, &out);
    m = passed(&in, &out);
    cr_expect_eq(m->status->head_height, 2500);
    alys_wire_free(&m);
    free(out.bytes);
    /* blocks are left alone */
    frame_t b = blocks_frame(1, 4);
    fp_response(near, "c", 1, b.bytes, b.len, &out);
    cr_expect_null(out.bytes);
    cr_expect(!out.drop);
    free(b.bytes);
    free(in.bytes);
    fp_destroy(&far);
    fp_destroy(&near);
}

/* ---- timing and loss ----------------------------------------------------------- */

Test(net_fault, delay_holds_every_response)
{
    fp_t *fp = proxy("delay", 75);
    frame_t b = blocks_frame(1, 4), s = status_frame(1);
    fp_out_t out;
    fp_response(fp, "c", 1, b.bytes, b.len, &out);
    cr_expect_eq(out.delay_ms, 75);
    cr_expect_null(out.bytes, "content unchanged");
    fp_response(fp, "c", 1, s.bytes, s.len, &out);
    cr_expect_eq(out.delay_ms, 75);
    free(out.bytes);
    free(b.bytes);
    free(s.bytes);
    fp_destroy(&fp);
}

Test(net_fault, drop_one_in_n_data_responses)
{
    fp_t *fp = proxy("drop", 3);
    frame_t b = blocks_frame(1, 2), s = status_frame(1);
    int dropped = 0;
    for (int i = 0; i < 9; i++) {
        fp_out_t out;
        fp_response(fp, "c", 1, b.bytes, b.len, &out);
        dropped += out.drop;
        fp_response(fp, "c", 1, s.bytes, s.len, &out);
        cr_expect(!out.drop, "status is never dropped");
        free(out.bytes);
    }
    cr_expect_eq(dropped, 3);
    free(b.bytes);
    free(s.bytes);
    fp_destroy(&fp);
}

Test(net_fault, stall_after_k_blocks_per_client)
{
    fp_t *fp = proxy("stall", 8);
    frame_t b = blocks_frame(1, 4);
    fp_out_t out;
    fp_response(fp, "a", 1, b.bytes, b.len, &out);
    cr_expect(!out.drop);
    fp_response(fp, "a", 1, b.bytes, b.len, &out);
    cr_expect(!out.drop);
    fp_response(fp, "a", 1, b.bytes, b.len, &out);
    cr_expect(out.drop, "8 blocks served: never again");
    fp_response(fp, "b", 1, b.bytes, b.len, &out);
    cr_expect(!out.drop, "another client has its own count");
    frame_t s = status_frame(1);
    fp_response(fp, "a", 1, s.bytes, s.len, &out);
    cr_expect(!out.drop, "the staller keeps answering Status");
    free(out.bytes);
    free(s.bytes);
    free(b.bytes);
    fp_destroy(&fp);
}

Test(net_fault, disconnect_every_n_requests)
{
    fp_t *fp = proxy("disconnect", 4);
    uint8_t req[1] = {0};
    int downs = 0;
    fp_out_t out;
    for (int i = 1; i <= 12; i++) {
        bool down = fp_request(fp, req, sizeof req, &out);
        cr_expect_eq(down, i % 4 == 0, "request %d", i);
        cr_expect_null(out.bytes);
        downs += down;
    }
    cr_expect_eq(downs, 3);
    fp_destroy(&fp);
    fp = proxy("delay", 1);
    cr_expect(!fp_request(fp, req, sizeof req, &out));
    fp_destroy(&fp);
}

Test(net_fault, status_requests_go_up_without_the_clients_address)
{
    fp_t *fp = proxy("delay", 1);
    frame_t in = status_frame(0);
    fp_out_t out;
    cr_expect(!fp_request(fp, in.bytes, in.len, &out));
    alys_wire_msg_t *m = passed(&in, &out);
    cr_expect_str_eq(m->status->listen, "");
    cr_expect_str_eq(m->status->node_id, "nodeA", "the client keeps its name");
    alys_wire_free(&m);
    free(out.bytes);
    free(in.bytes);
    /* other requests go unchanged */
    frame_t b = blocks_frame(1, 1);
    cr_expect(!fp_request(fp, b.bytes, b.len, &out));
    cr_expect_null(out.bytes);
    free(b.bytes);
    fp_destroy(&fp);
}

Test(net_fault, truncate_cuts_without_the_flag)
{
    fp_t *fp = proxy("truncate", 0);
    frame_t b = blocks_frame(1, 12);
    fp_out_t out;
    fp_response(fp, "c", 1, b.bytes, b.len, &out);
    alys_wire_msg_t *m = passed(&b, &out);
    cr_expect_eq(m->blocks->n_blocks, 6);
    cr_expect(!m->blocks->truncated);
    cr_expect_eq(alys_wire_check_range(1, 12, m->blocks->start, m->blocks->n_blocks,
                                       m->blocks->truncated, NULL, NULL, 0),
                 ALYS_WIRE_SHORT);
    alys_wire_free(&m);
    free(out.bytes);
    /* a single block cannot be halved */
    frame_t one = blocks_frame(3, 1);
    fp_response(fp, "c", 1, one.bytes, one.len, &out);
    cr_expect_null(out.bytes);
    free(one.bytes);
    free(b.bytes);
    fp_destroy(&fp);
}

/* ---- corruption ---------------------------------------------------------------- */

/* Index of the one block that differs from the original range 1..n. */
static size_t changed_block(const alys_wire_msg_t *m, size_t n)
{
    cr_assert_eq(m->blocks->n_blocks, n, "no block added or removed");
    size_t found = n, count = 0;
    for (size_t i = 0; i < n; i++) {
        const ProtobufCBinaryData *a = &m->blocks->blocks[i], *o = &fx.blocks[i];
        if (a->len != o->len || memcmp(a->data, o->data, a->len) != 0) {
            found = i;
            count++;
        }
    }
    cr_assert_eq(count, 1, "exactly one block altered, got %zu", count);
    return found;
}

static const char *const s_stateless[] = {"bad_proposer_signature", "wrong_proposer",
                                          "bad_tx_signature", "tx_root_mismatch", "bad_timestamp"};
static const char *const s_resigned[] = {"parent_mismatch",     "height_gap",
                                         "non_increasing_slot", "future_slot",
                                         "bad_nonce",           "insufficient_balance",
                                         "state_root_mismatch"};

static alys_wire_msg_t *corrupted(const char *kind, size_t *at)
{
    char spec[64];
    snprintf(spec, sizeof spec, "corrupt:%s", kind);
    fp_t *fp = proxy(spec, 0);
    frame_t b = blocks_frame(1, 12);
    fp_out_t out;
    fp_response(fp, "c", 1, b.bytes, b.len, &out);
    cr_assert_not_null(out.bytes, "%s: %s", kind, out.note);
    cr_expect_eq(fp_altered(fp), 1);
    alys_wire_msg_t *m = passed(&b, &out);
    *at = changed_block(m, 12);
    free(out.bytes);
    free(b.bytes);
    fp_destroy(&fp);
    return m;
}

Test(net_fault, corrupt_stateless_kinds_fail_exactly_their_check)
{
    const alys_genesis_t *g = alys_chaingen_genesis(fx.gen);
    for (size_t k = 0; k < sizeof s_stateless / sizeof s_stateless[0]; k++) {
        size_t at;
        alys_wire_msg_t *m = corrupted(s_stateless[k], &at);
        alys_block_t b;
        alys_verdict_t v;
        cr_assert_eq(alys_block_decode(m->blocks->blocks[at].data, m->blocks->blocks[at].len, &b, &v),
                     0);
        cr_expect(!alys_block_check_stateless(g, &b, &v), "%s passed", s_stateless[k]);
        cr_expect_str_eq(alys_block_error_name(v.code), s_stateless[k]);
        alys_block_clear(&b);
        alys_wire_free(&m);
    }
}

Test(net_fault, corrupt_kinds_that_resign_pass_the_signature_checks)
{
    /* Their change is re-signed, so the block is well signed but wrong in
     * one rule; the header hash changes, so a body fetched against verified
     * headers is caught on arrival (alys_wire_check_blocks). */
    const alys_genesis_t *g = alys_chaingen_genesis(fx.gen);
    for (size_t k = 0; k < sizeof s_resigned / sizeof s_resigned[0]; k++) {
        size_t at;
        alys_wire_msg_t *m = corrupted(s_resigned[k], &at);
        alys_block_t b;
        alys_verdict_t v;
        cr_assert_eq(alys_block_decode(m->blocks->blocks[at].data, m->blocks->blocks[at].len, &b, &v),
                     0);
        cr_expect(alys_block_check_stateless(g, &b, &v), "%s: %s", s_resigned[k], v.detail);
        alys_hash_t h;
        alys_header_hash(&b.header, h);
        cr_expect_neq(memcmp(h, fx.hash[at], 32), 0, "%s: header changed", s_resigned[k]);
        cr_expect_eq(alys_wire_check_blocks(m->blocks->blocks, 12, 1,
                                            (const uint8_t(*)[32]) fx.hash, 12, NULL, NULL, 0),
                     ALYS_WIRE_INVALID, "%s", s_resigned[k]);
        alys_block_clear(&b);
        alys_wire_free(&m);
    }
}

Test(net_fault, bad_tx_signature_keeps_the_header_hash)
{
    /* The tx root covers tx hashes without signatures: the header still
     * matches, only validation (BlockProcessor) can tell. */
    size_t at;
    alys_wire_msg_t *m = corrupted("bad_tx_signature", &at);
    cr_expect_eq(alys_wire_check_blocks(m->blocks->blocks, 12, 1, (const uint8_t(*)[32]) fx.hash,
                                        12, NULL, NULL, 0),
                 ALYS_WIRE_OK);
    alys_wire_free(&m);
}

Test(net_fault, corrupt_encoding_kinds_do_not_decode)
{
    const char *kinds[] = {"malformed", "oversize"};
    for (size_t k = 0; k < 2; k++) {
        size_t at;
        alys_wire_msg_t *m = corrupted(kinds[k], &at);
        size_t bad = 99;
        cr_expect_eq(alys_wire_check_blocks(m->blocks->blocks, 12, 1, NULL, 0, &bad, NULL, 0),
                     ALYS_WIRE_INVALID, "%s", kinds[k]);
        cr_expect_eq(bad, at);
        alys_wire_free(&m);
    }
}

/* ---- a proxy with its own key ------------------------------------------------------ */

#define PROXY_KEY "f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0"

static fp_t *keyed_proxy(const char *spec)
{
    fp_config_t cfg;
    memset(&cfg, 0, sizeof cfg);
    char err[256];
    cr_assert_eq(fp_parse(spec, 0, &cfg, err, sizeof err), 0, "%s", err);
    cfg.genesis = alys_chaingen_genesis(fx.gen);
    cfg.keys = alys_chaingen_keys(fx.gen);
    snprintf(cfg.tag, sizeof cfg.tag, "fp9");
    snprintf(cfg.node_id, sizeof cfg.node_id, PROXY_KEY);
    snprintf(cfg.listen, sizeof cfg.listen, "alys://" PROXY_KEY "@127.0.0.1:9");
    fp_t *fp = fp_new(&cfg);
    cr_assert_not_null(fp);
    return fp;
}

Test(net_fault, a_keyed_proxy_names_its_own_key_both_ways)
{
    fp_t *fp = keyed_proxy("lie_height");
    frame_t in = status_frame(2000);
    fp_out_t out;
    fp_response(fp, "c", 1, in.bytes, in.len, &out);
    alys_wire_msg_t *m = passed(&in, &out);
    cr_expect_str_eq(m->status->node_id, PROXY_KEY, "downstream: the proxy's key is on the link");
    cr_expect_str_eq(m->status->listen, "alys://" PROXY_KEY "@127.0.0.1:9");
    cr_expect_eq(m->status->head_height, FP_LIE_HEIGHT_VALUE, "the fault still applies");
    alys_wire_free(&m);
    free(out.bytes);
    cr_expect(!fp_request(fp, in.bytes, in.len, &out));
    m = passed(&in, &out);
    cr_expect_str_eq(m->status->node_id, PROXY_KEY, "upstream: the proxy's key is on that link too");
    cr_expect_str_eq(m->status->listen, "");
    alys_wire_free(&m);
    free(out.bytes);
    free(in.bytes);
    fp_destroy(&fp);
}

/* ---- upload cap (fp_shape, fp_due) ---------------------------------------------- */

Test(net_fault, parse_none_and_the_cap_bound)
{
    fp_config_t c;
    char err[512];
    memset(&c, 0, sizeof c);
    c.kind = FP_DELAY;
    cr_expect_eq(fp_parse("none", 0, &c, err, sizeof err), 0, "%s", err);
    cr_expect_eq(c.kind, FP_NONE);
    cr_expect_str_eq(fp_kind_name(c.kind), "none");
    c.upload_kbps = FP_UPLOAD_KBPS_MAX;
    cr_expect_eq(fp_check(&c, err, sizeof err), 0, "%s", err);
    c.upload_kbps = FP_UPLOAD_KBPS_MAX + 1;
    cr_expect_neq(fp_check(&c, err, sizeof err), 0, "above the bound");
}

Test(net_fault, uncapped_frames_are_due_at_once)
{
    fp_t *fp = proxy("none", 0);
    cr_expect_eq(fp_shape(fp, "a", 1, 1 << 20, 1000), 1000);
    cr_expect_eq(fp_shape(fp, "a", 1, 1 << 20, 1000), 1000, "no link to be busy");
    fp_destroy(&fp);
}

Test(net_fault, cap_paces_one_clients_frames_at_the_rate)
{
    /* 10 KiB/s: a 1024-byte frame takes 100 ms of link */
    fp_t *fp = proxy_capped("none", 0, 10);
    for (int i = 1; i <= 10; i++)
        cr_expect_eq(fp_shape(fp, "a", 1, 1024, 5000), 5000 + 100 * i, "frame %d", i);
    /* handed over while the link is still busy (until 6000): queued behind */
    cr_expect_eq(fp_shape(fp, "a", 1, 2048, 5500), 6200);
    /* after an idle stretch: from now, idle time is not banked as a burst */
    cr_expect_eq(fp_shape(fp, "a", 1, 512, 9000), 9050);
    cr_expect_eq(fp_shape(fp, "a", 1, 512, 9000), 9100);
    fp_destroy(&fp);
}

Test(net_fault, cap_keeps_the_rate_over_many_small_frames)
{
    /* 1000 KiB/s, 300-byte frames: 292.97 us each, not rounded to 0 or 1 ms
     * per frame: 10,000 of them take 2.93 s of link, as the rate says */
    fp_t *fp = proxy_capped("none", 0, 1000);
    int64_t due = 0, prev = 0;
    for (int i = 0; i < 10000; i++) {
        due = fp_shape(fp, "a", 1, 300, 0);
        cr_assert_geq(due, prev, "frame %d before frame %d", i, i - 1);
        prev = due;
    }
    int64_t want = (int64_t) (10000.0 * 300 * 1000 / (1000 * 1024)); /* 2929 ms */
    cr_expect(due >= want && due <= want + 1, "10,000 frames due at %lld ms, want ~%lld",
              (long long) due, (long long) want);
    fp_destroy(&fp);
}

Test(net_fault, cap_keeps_each_clients_order)
{
    /* frames of every size, handed over at times going forward: each due
     * time is no earlier than the previous one of the same client */
    fp_t *fp = proxy_capped("none", 0, 3);
    static const size_t sizes[] = {1, 70000, 5, 1024, 0, 9999, 3, 100000, 2};
    int64_t prev = 0, now = 100;
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        int64_t due = fp_shape(fp, "a", 1, sizes[i], now);
        cr_expect_geq(due, prev, "frame %zu (%zu bytes) would pass the one before", i, sizes[i]);
        cr_expect_geq(due, now, "frame %zu due before it was handed over", i);
        prev = due;
        now += 7;
    }
    fp_destroy(&fp);
}

Test(net_fault, cap_is_per_client)
{
    fp_t *fp = proxy_capped("none", 0, 10);
    for (int i = 0; i < 5; i++)
        fp_shape(fp, "a", 1, 10240, 0); /* a's link busy for 5 s */
    cr_expect_eq(fp_shape(fp, "b", 1, 1024, 0), 100, "b does not wait for a");
    cr_expect_eq(fp_shape(fp, "ab", 2, 1024, 0), 100, "nor does a longer id sharing a's prefix");
    cr_expect_eq(fp_shape(fp, "a", 1, 1024, 0), 5100, "a still waits for its own link");
    cr_expect_eq(fp_shape(fp, "b", 1, 1024, 0), 200);
    fp_destroy(&fp);
}

Test(net_fault, cap_composes_with_delay)
{
    /* --fault delay 40 --upload-kbps 10: each frame leaves the link at the
     * capped rate, then arrives 40 ms later; the latency does not hold the
     * link, so frames keep 100 ms apart, not 140 */
    fp_t *fp = proxy_capped("delay", 40, 10);
    frame_t b = blocks_frame(1, 4);
    int64_t tx = ((int64_t) b.len * 1000000 + 10 * 1024 - 1) / (10 * 1024); /* us */
    fp_out_t out;
    for (int i = 1; i <= 3; i++) {
        fp_response(fp, "c", 1, b.bytes, b.len, &out);
        cr_expect_eq(out.delay_ms, 40);
        cr_assert_null(out.bytes, "delay leaves the content alone");
        int64_t due = fp_due(fp, "c", 1, b.len, out.delay_ms, 1000);
        int64_t want = 1000 + (i * tx + 999) / 1000 + 40;
        cr_expect(due >= want - 1 && due <= want, "frame %d due %lld, want %lld", i,
                  (long long) due, (long long) want);
    }
    free(b.bytes);
    fp_destroy(&fp);
}
