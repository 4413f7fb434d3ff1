/*  The wire protocol's pure parts (common/wire/wire.c): the
 *  bounded decode, the request/response matching rules, and the content
 *  checks of blocks against their verified header hashes. */
#include "bus.h"
#include "peer_table.h"
#include "wire/wire.h"
#include "test_net_util.h"

/* ---- matching rules ---------------------------------------------------------- */

typedef struct {
    uint64_t req_start;
    uint32_t req_count;
    uint64_t resp_start;
    size_t n;
    bool truncated;
    alys_wire_verdict_t want;
    bool want_partial;
} range_case_t;

Test(net_wire, range_rules)
{
    const range_case_t cases[] = {
        {100, 10, 100, 10, false, ALYS_WIRE_OK, false}, /* as asked */
        {100, 10, 100, 10, true, ALYS_WIRE_OK, false},  /* flag on a full answer: harmless */
        {100, 10, 100, 11, false, ALYS_WIRE_VIOLATION, false}, /* more than asked */
        {100, 10, 100, 11, true, ALYS_WIRE_VIOLATION, false},
        {100, 10, 101, 10, false, ALYS_WIRE_VIOLATION, false}, /* wrong start */
        {100, 10, 99, 3, true, ALYS_WIRE_VIOLATION, false},
        {100, 10, 100, 4, false, ALYS_WIRE_SHORT, false},    /* fewer, no reason */
        {100, 10, 100, 4, true, ALYS_WIRE_OK, true},         /* fewer, frame limit */
        {100, 10, 0, 0, false, ALYS_WIRE_SHORT, false},      /* nothing at all */
        {100, 10, 100, 0, true, ALYS_WIRE_VIOLATION, false}, /* empty "truncated" */
        {100, 1, 100, 1, false, ALYS_WIRE_OK, false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const range_case_t *c = &cases[i];
        bool partial = true;
        char detail[ALYS_WIRE_DETAIL_MAX] = "";
        alys_wire_verdict_t k = alys_wire_check_range(c->req_start, c->req_count, c->resp_start,
                                                      c->n, c->truncated, &partial, detail,
                                                      sizeof detail);
        cr_expect_eq(k, c->want, "case %zu: got %s want %s (%s)", i,
                     peer_outcome_name((peer_outcome_kind_t) k),
                     peer_outcome_name((peer_outcome_kind_t) c->want), detail);
        cr_expect_eq(partial, c->want_partial, "case %zu partial", i);
        cr_expect(detail[0] != '\0', "case %zu has a detail", i);
    }
}

/* ---- content checks ---------------------------------------------------------- */

static chain_fx_t fx;

static void fx_setup(void)
{
    chain_fx_make(&fx, 12, 3);
}
static void fx_teardown(void)
{
    chain_fx_free(&fx);
}

TestSuite(net_blocks, .init = fx_setup, .fini = fx_teardown);

Test(net_blocks, matching_blocks_pass_with_and_without_expected_hashes)
{
    char detail[ALYS_WIRE_DETAIL_MAX];
    cr_expect_eq(alys_wire_check_blocks(fx.blocks, 12, 1, (const uint8_t(*)[32]) fx.hash, 12,
                                        NULL, detail, sizeof detail),
                 ALYS_WIRE_OK, "%s", detail);
    cr_expect_eq(alys_wire_check_blocks(fx.blocks + 4, 5, 5, (const uint8_t(*)[32]) & fx.hash[4],
                                        5, NULL, detail, sizeof detail),
                 ALYS_WIRE_OK, "%s", detail);
    cr_expect_eq(alys_wire_check_blocks(fx.blocks, 12, 1, NULL, 0, NULL, detail, sizeof detail),
                 ALYS_WIRE_OK, "%s", detail);
}

Test(net_blocks, body_not_matching_its_verified_header_is_invalid_at_once)
{
    uint8_t expected[12][ALYS_HASH_LEN];
    memcpy(expected, fx.hash, sizeof expected);
    expected[6][0] ^= 1; /* the verified header of height 7 says otherwise */
    size_t bad = 99;
    char detail[ALYS_WIRE_DETAIL_MAX];
    cr_expect_eq(alys_wire_check_blocks(fx.blocks, 12, 1, (const uint8_t(*)[32]) expected, 12,
                                        &bad, detail, sizeof detail),
                 ALYS_WIRE_INVALID);
    cr_expect_eq(bad, 6);
    cr_expect(strstr(detail, "block 7") != NULL, "%s", detail);
    /* A short answer is checked against the hashes of the heights it holds. */
    cr_expect_eq(alys_wire_check_blocks(fx.blocks, 6, 1, (const uint8_t(*)[32]) expected, 12,
                                        &bad, detail, sizeof detail),
                 ALYS_WIRE_OK, "%s", detail);
}

Test(net_blocks, undecodable_block_is_invalid)
{
    ProtobufCBinaryData blocks[3] = {fx.blocks[0], fx.blocks[1], fx.blocks[2]};
    uint8_t junk[] = {0x0a, 0xff, 0xff, 0x01}; /* a field running past the end */
    blocks[1] = (ProtobufCBinaryData){sizeof junk, junk};
    size_t bad = 99;
    char detail[ALYS_WIRE_DETAIL_MAX];
    cr_expect_eq(alys_wire_check_blocks(blocks, 3, 1, NULL, 0, &bad, detail, sizeof detail),
                 ALYS_WIRE_INVALID);
    cr_expect_eq(bad, 1);
    cr_expect(strstr(detail, "does not decode") != NULL, "%s", detail);
}

Test(net_blocks, blocks_at_the_wrong_heights_are_invalid)
{
    /* heights 2..4 served as if they started at 1 */
    size_t bad = 99;
    char detail[ALYS_WIRE_DETAIL_MAX];
    cr_expect_eq(alys_wire_check_blocks(fx.blocks + 1, 3, 1, NULL, 0, &bad, detail, sizeof detail),
                 ALYS_WIRE_INVALID);
    cr_expect_eq(bad, 0);
}

Test(net_blocks, headers_checked_for_decoding_and_heights)
{
    char detail[ALYS_WIRE_DETAIL_MAX];
    cr_expect_eq(alys_wire_check_headers(fx.headers, 12, 1, NULL, detail, sizeof detail),
                 ALYS_WIRE_OK, "%s", detail);
    size_t bad = 99;
    cr_expect_eq(alys_wire_check_headers(fx.headers + 2, 4, 2, &bad, detail, sizeof detail),
                 ALYS_WIRE_INVALID);
    cr_expect_eq(bad, 0);
    ProtobufCBinaryData h[2] = {fx.headers[0], {3, (uint8_t *) "\x08\x80\x80"}};
    cr_expect_eq(alys_wire_check_headers(h, 2, 1, &bad, detail, sizeof detail), ALYS_WIRE_INVALID);
    cr_expect_eq(bad, 1);
}

/* ---- bounded decode ---------------------------------------------------------- */

static zframe_t *encode(const alys_wire_msg_t *m)
{
    zframe_t *f = alys_wire_encode(m);
    cr_assert_not_null(f);
    return f;
}

Test(net_blocks, blocks_roundtrip)
{
    Alys__Wire__Blocks b = ALYS__WIRE__BLOCKS__INIT;
    b.start = 1;
    b.n_blocks = 12;
    b.blocks = fx.blocks;
    alys_wire_msg_t m = ALYS__WIRE__WIRE_MSG__INIT;
    m.request_id = 77;
    m.body_case = ALYS__WIRE__WIRE_MSG__BODY_BLOCKS;
    m.blocks = &b;
    zframe_t *f = encode(&m);
    char err[128];
    alys_wire_msg_t *d = alys_wire_decode(zframe_data(f), zframe_size(f), err, sizeof err);
    cr_assert_not_null(d, "%s", err);
    cr_expect_eq(d->request_id, 77);
    cr_expect_eq(d->blocks->n_blocks, 12);
    cr_expect_str_eq(alys_wire_body_name(d), "blocks");
    alys_wire_free(&d);
    cr_expect_null(d);
    zframe_destroy(&f);
}

Test(net_wire, decode_refuses_what_breaks_the_bounds)
{
    char err[160];
    /* garbage */
    uint8_t junk[] = {0xff, 0xff, 0xff, 0xff};
    cr_expect_null(alys_wire_decode(junk, sizeof junk, err, sizeof err));
    /* an over-size frame, refused before unpacking */
    cr_expect_null(alys_wire_decode(junk, (size_t) ALYS_MAX_MSG_BYTES + 1, err, sizeof err));
    cr_expect(strstr(err, "exceeds") != NULL, "%s", err);
    /* more blocks than any request may ask */
    ProtobufCBinaryData *many = calloc(ALYS_WIRE_MAX_BLOCKS + 1, sizeof *many);
    cr_assert_not_null(many);
    Alys__Wire__Blocks b = ALYS__WIRE__BLOCKS__INIT;
    b.n_blocks = ALYS_WIRE_MAX_BLOCKS + 1;
    b.blocks = many;
    alys_wire_msg_t m = ALYS__WIRE__WIRE_MSG__INIT;
    m.body_case = ALYS__WIRE__WIRE_MSG__BODY_BLOCKS;
    m.blocks = &b;
    zframe_t *f = encode(&m);
    cr_expect_null(alys_wire_decode(zframe_data(f), zframe_size(f), err, sizeof err));
    cr_expect(strstr(err, "too many") != NULL, "%s", err);
    zframe_destroy(&f);
    free(many);
    /* a Status whose genesis hash is not 32 bytes */
    uint8_t g[31] = {0};
    Alys__Wire__Status st = ALYS__WIRE__STATUS__INIT;
    st.genesis_hash = (ProtobufCBinaryData){sizeof g, g};
    m.body_case = ALYS__WIRE__WIRE_MSG__BODY_STATUS;
    m.status = &st;
    f = encode(&m);
    cr_expect_null(alys_wire_decode(zframe_data(f), zframe_size(f), err, sizeof err));
    zframe_destroy(&f);
    /* no body at all */
    alys_wire_msg_t empty = ALYS__WIRE__WIRE_MSG__INIT;
    f = encode(&empty);
    cr_expect_null(alys_wire_decode(zframe_data(f), zframe_size(f), err, sizeof err));
    zframe_destroy(&f);
}

Test(net_wire, fit_items_cuts_at_the_frame_limit)
{
    size_t big = 3u * 1024 * 1024;
    ProtobufCBinaryData items[4] = {{big, NULL}, {big, NULL}, {big, NULL}, {10, NULL}};
    cr_expect_eq(alys_wire_fit_items(items, 4, 64, ALYS_MAX_MSG_BYTES), 2);
    cr_expect_eq(alys_wire_fit_items(items + 3, 1, 64, ALYS_MAX_MSG_BYTES), 1);
    cr_expect_eq(alys_wire_fit_items(items, 4, 64, 100), 0);
    cr_expect_eq(alys_wire_fit_items(items, 0, 64, 100), 0);
}

Test(net_wire, names_and_endpoints)
{
    cr_expect(alys_wire_valid_node_id("nodeA"));
    cr_expect(alys_wire_valid_node_id("@127.0.0.1:30303"));
    cr_expect(!alys_wire_valid_node_id(""));
    cr_expect(!alys_wire_valid_node_id(NULL));
    cr_expect(!alys_wire_valid_node_id("a b"));
    cr_expect(!alys_wire_valid_node_id("quote\""));
    char long_id[80];
    memset(long_id, 'x', sizeof long_id - 1);
    long_id[sizeof long_id - 1] = '\0';
    cr_expect(!alys_wire_valid_node_id(long_id));
    cr_expect(alys_wire_valid_endpoint("tcp://127.0.0.1:30303"));
    cr_expect(alys_wire_valid_endpoint("tcp://host.example:1"));
    cr_expect(!alys_wire_valid_endpoint("ipc:///tmp/x.sock"));
    cr_expect(!alys_wire_valid_endpoint("tcp://127.0.0.1"));
    cr_expect(!alys_wire_valid_endpoint("tcp://127.0.0.1:30x"));
    cr_expect(!alys_wire_valid_endpoint("tcp://:30303"));
    cr_expect(!alys_wire_valid_endpoint("tcp://a b:1"));
    char id[ALYS_WIRE_ID_MAX];
    alys_wire_endpoint_id("tcp://127.0.0.1:30303", id, sizeof id);
    cr_expect_str_eq(id, "@127.0.0.1:30303");
    cr_expect(alys_wire_valid_node_id(id));
}

/* ---- block locator ------------------------------------------------------------ */

Test(net_wire, locator_heights_dense_then_doubling_genesis_last)
{
    uint64_t h[ALYS_LOCATOR_MAX];
    size_t n = alys_locator_heights(1000, 10, h, ALYS_LOCATOR_MAX);
    const uint64_t want[] = {1000, 999, 998, 997, 996, 995, 994, 993, 992, 991,
                             989,  985, 977, 961, 929, 865, 737, 481, 0};
    cr_assert_eq(n, sizeof want / sizeof want[0], "%zu heights", n);
    for (size_t i = 0; i < n; i++)
        cr_assert_eq(h[i], want[i], "height %zu: %llu != %llu", i, (unsigned long long) h[i],
                     (unsigned long long) want[i]);
    cr_assert_eq(alys_locator_heights(0, 10, h, ALYS_LOCATOR_MAX), 1);
    cr_assert_eq(h[0], 0);
    n = alys_locator_heights(3, 10, h, ALYS_LOCATOR_MAX);
    cr_assert_eq(n, 4);
    cr_assert(h[0] == 3 && h[1] == 2 && h[2] == 1 && h[3] == 0);
    /* Any height fits: strictly descending, genesis last, within the bound. */
    n = alys_locator_heights(UINT64_MAX / 2, 10, h, ALYS_LOCATOR_MAX);
    cr_assert(n <= ALYS_LOCATOR_MAX);
    cr_assert_eq(h[n - 1], 0);
    for (size_t i = 1; i < n; i++)
        cr_assert(h[i] < h[i - 1]);
}

static alys_wire_msg_t *decode_get_headers(size_t n_hashes, size_t hash_len, char *err, size_t errlen)
{
    alys_wire_msg_t m = ALYS__WIRE__WIRE_MSG__INIT;
    Alys__Wire__GetHeaders gh = ALYS__WIRE__GET_HEADERS__INIT;
    static uint8_t bytes[ALYS_LOCATOR_MAX + 1][ALYS_HASH_LEN + 1];
    ProtobufCBinaryData loc[ALYS_LOCATOR_MAX + 1];
    for (size_t i = 0; i < n_hashes; i++)
        loc[i] = (ProtobufCBinaryData){.data = bytes[i], .len = hash_len};
    gh.count = 512;
    gh.locator = loc;
    gh.n_locator = n_hashes;
    m.request_id = 7;
    m.body_case = ALYS__WIRE__WIRE_MSG__BODY_GET_HEADERS;
    m.get_headers = &gh;
    zframe_t *f = alys_wire_encode(&m);
    cr_assert_not_null(f);
    alys_wire_msg_t *out = alys_wire_decode(zframe_data(f), zframe_size(f), err, errlen);
    zframe_destroy(&f);
    return out;
}

Test(net_wire, locator_bounded_on_decode)
{
    char err[128];
    alys_wire_msg_t *ok = decode_get_headers(ALYS_LOCATOR_MAX, ALYS_HASH_LEN, err, sizeof err);
    cr_assert_not_null(ok, "%s", err);
    cr_assert_eq(ok->get_headers->n_locator, ALYS_LOCATOR_MAX);
    alys_wire_free(&ok);
    cr_assert_null(decode_get_headers(ALYS_LOCATOR_MAX + 1, ALYS_HASH_LEN, err, sizeof err));
    cr_assert(strstr(err, "locator of more than 128"), "%s", err);
    cr_assert_null(decode_get_headers(3, ALYS_HASH_LEN + 1, err, sizeof err));
    cr_assert(strstr(err, "locator hash is not 32 bytes"), "%s", err);
}

/* Fork choice asks for max_reorg_depth + 2 dense heights: the whole reorg
 * window one by one, then the doubling tail; the genesis still last, and
 * the densest request still fits the bound with 2^32 blocks of tail. */
Test(net_wire, locator_heights_dense_over_the_reorg_window)
{
    uint64_t h[ALYS_LOCATOR_MAX];
    size_t n = alys_locator_heights(1000, 66, h, ALYS_LOCATOR_MAX);
    for (size_t i = 0; i < 66; i++)
        cr_assert_eq(h[i], 1000 - i, "dense height %zu", i);
    cr_assert_eq(h[66], 1000 - 65 - 2, "then doubling steps");
    cr_assert_eq(h[n - 1], 0);
    n = alys_locator_heights(UINT64_C(1) << 33, 500, h, ALYS_LOCATOR_MAX);
    cr_assert(n <= ALYS_LOCATOR_MAX);
    cr_assert_eq(h[ALYS_LOCATOR_DENSE_MAX - 1], (UINT64_C(1) << 33) - ALYS_LOCATOR_DENSE_MAX + 1,
                 "dense is capped at ALYS_LOCATOR_DENSE_MAX");
    cr_assert_eq(h[n - 1], 0);
    for (size_t i = 1; i < n; i++)
        cr_assert(h[i] < h[i - 1]);
    cr_assert(h[n - 2] < (UINT64_C(1) << 33) - (UINT64_C(1) << 32), "the tail reaches 2^32 back");
}
