/*  fuzz_wire.c: the node-to-node wire decoder, alys_wire_decode
 *  (common/wire/wire.c), on arbitrary frames as a remote peer
 *  could send them, then the response checks a decoded message is put
 *  through (alys_wire_check_range / alys_wire_check_headers / alys_wire_check_blocks, node id
 *  and endpoint validation, alys_wire_endpoint_id, alys_wire_fit_items).
 *
 *  Invariants: a refused frame gets an error message; an accepted one has a
 *  body, respects every protocol bound (item counts and sizes, text
 *  lengths), survives alys_wire_encode -> alys_wire_decode with canonical bytes (but for
 *  protobuf-c's over-long field-0 leniency, see fuzz_util.h); check
 *  outcomes are valid kinds, INVALID names an item index inside the list;
 *  alys_wire_endpoint_id output is terminated, starts with '@' and fits
 *  ALYS_WIRE_ID_MAX; an endpoint text that parses as alys:// (common/nodeaddr)
 *  has a canonical form that parses to the same key, host and port and is
 *  its own canonical form; no memory error or leak.
 */
#include "bus.h"
#include "fuzz_util.h"
#include "nodeaddr.h"
#include "wire/wire.h"

static uint8_t *pack(const alys_wire_msg_t *m, size_t *len)
{
    *len = protobuf_c_message_get_packed_size(&m->base);
    uint8_t *buf = malloc(*len ? *len : 1);
    FUZZ_CHECK(buf != NULL, "out of memory");
    FUZZ_CHECK(protobuf_c_message_pack(&m->base, buf) == *len, "pack size mismatch");
    return buf;
}

static void check_kind(alys_wire_verdict_t k, size_t bad, size_t n, const char *detail)
{
    FUZZ_CHECK(k == ALYS_WIRE_OK || k == ALYS_WIRE_SHORT || k == ALYS_WIRE_INVALID ||
                   k == ALYS_WIRE_VIOLATION,
               "outcome %d", (int) k);
    FUZZ_CHECK(fuzz_has_text(detail, ALYS_WIRE_DETAIL_MAX), "outcome %d without detail", (int) k);
    if (k == ALYS_WIRE_INVALID)
        FUZZ_CHECK(bad < n, "INVALID at item %zu of %zu", bad, n);
}

static void check_endpoint_text(const char *ep)
{
    (void) alys_wire_valid_endpoint(ep);
    char id[ALYS_WIRE_ID_MAX + 8];
    memset(id, 'Z', sizeof id);
    alys_wire_endpoint_id(ep, id, sizeof id);
    FUZZ_CHECK(id[0] == '@' && memchr(id, '\0', ALYS_WIRE_ID_MAX) != NULL, "endpoint id '%.*s'",
               ALYS_WIRE_ID_MAX, id);
    alys_nodeaddr_t a, b;
    char canon[ALYS_ENDPOINT_MAX], again[ALYS_ENDPOINT_MAX];
    if (alys_nodeaddr_parse(ep, &a) != 0)
        return;
    FUZZ_CHECK(alys_nodeaddr_format(&a, canon, sizeof canon) == 0, "no canonical form for '%s'", ep);
    FUZZ_CHECK(alys_nodeaddr_parse(canon, &b) == 0 && memcmp(a.key, b.key, ALYS_KEY_LEN) == 0 &&
                   strcmp(a.host, b.host) == 0 && a.port == b.port,
               "canonical '%s' of '%s' differs", canon, ep);
    FUZZ_CHECK(alys_nodeaddr_canonical(canon, again, sizeof again) == 0 && strcmp(canon, again) == 0,
               "canonical form not stable: '%s'", canon);
}

/* The checks a peer manager runs on a response to GetX{start, count}; the
 * request's count is taken from request_id so both sides of every
 * matching rule are reachable. */
static void check_items(const ProtobufCBinaryData *items, size_t n, uint64_t start,
                        bool truncated, uint64_t request_id, bool blocks)
{
    char detail[ALYS_WIRE_DETAIL_MAX];
    bool partial = false;
    size_t bad = 0;
    uint32_t req_count = (uint32_t) (request_id % (ALYS_WIRE_MAX_BLOCKS + 2));
    alys_wire_verdict_t k = alys_wire_check_range(start, req_count, start + (request_id >> 63), n,
                                                  truncated, &partial, detail, sizeof detail);
    check_kind(k, 0, 1, detail);
    FUZZ_CHECK(!partial || (k == ALYS_WIRE_OK && n < req_count), "partial with %zu of %u", n,
               req_count);
    if (blocks) {
        k = alys_wire_check_blocks(items, n, start, NULL, 0, &bad, detail, sizeof detail);
        check_kind(k, bad, n, detail);
        /* Against expected hashes too (all zero: no real header hashes so). */
        uint8_t(*expected)[ALYS_HASH_LEN] = calloc(n ? n : 1, ALYS_HASH_LEN);
        FUZZ_CHECK(expected != NULL, "out of memory");
        k = alys_wire_check_blocks(items, n, start, (const uint8_t(*)[ALYS_HASH_LEN]) expected, n,
                                   &bad, detail, sizeof detail);
        check_kind(k, bad, n, detail);
        free(expected);
    } else {
        k = alys_wire_check_headers(items, n, start, &bad, detail, sizeof detail);
        check_kind(k, bad, n, detail);
    }
    size_t fit = alys_wire_fit_items(items, n, (size_t) (request_id & 0xffff), ALYS_MAX_MSG_BYTES);
    FUZZ_CHECK(fit <= n, "fit %zu of %zu", fit, n);
}

static void check_body(const alys_wire_msg_t *m)
{
    switch (m->body_case) {
    case ALYS__WIRE__WIRE_MSG__BODY_STATUS:
        FUZZ_CHECK(m->status->genesis_hash.len == ALYS_HASH_LEN, "status genesis hash len");
        (void) alys_wire_valid_node_id(m->status->node_id);
        check_endpoint_text(m->status->listen);
        break;
    case ALYS__WIRE__WIRE_MSG__BODY_HEADERS:
        FUZZ_CHECK(m->headers->n_headers <= ALYS_WIRE_MAX_HEADERS, "%zu headers",
                   m->headers->n_headers);
        check_items(m->headers->headers, m->headers->n_headers, m->headers->start,
                    m->headers->truncated, m->request_id, false);
        break;
    case ALYS__WIRE__WIRE_MSG__BODY_BLOCKS:
        FUZZ_CHECK(m->blocks->n_blocks <= ALYS_WIRE_MAX_BLOCKS, "%zu blocks", m->blocks->n_blocks);
        check_items(m->blocks->blocks, m->blocks->n_blocks, m->blocks->start,
                    m->blocks->truncated, m->request_id, true);
        break;
    case ALYS__WIRE__WIRE_MSG__BODY_NEW_BLOCK:
        FUZZ_CHECK(m->new_block->block.len <= ALYS_MAX_BLOCK_BYTES, "new block size");
        check_items(&m->new_block->block, 1, m->request_id, false, 1, true);
        break;
    case ALYS__WIRE__WIRE_MSG__BODY_PEERS:
        FUZZ_CHECK(m->peers->n_endpoints <= ALYS_WIRE_MAX_ENDPOINTS, "%zu endpoints",
                   m->peers->n_endpoints);
        for (size_t i = 0; i < m->peers->n_endpoints; i++)
            check_endpoint_text(m->peers->endpoints[i]);
        break;
    case ALYS__WIRE__WIRE_MSG__BODY_ERROR:
        FUZZ_CHECK(strlen(m->error->message) <= ALYS_WIRE_MAX_TEXT, "error text length");
        break;
    default: break;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[256] = "";
    alys_wire_msg_t *m = alys_wire_decode(data, size, err, sizeof err);
    if (!m) {
        FUZZ_CHECK(fuzz_has_text(err, sizeof err), "refused without a message");
        return 0;
    }
    FUZZ_CHECK(m->body_case != ALYS__WIRE__WIRE_MSG__BODY__NOT_SET, "accepted without a body");
    FUZZ_CHECK(strcmp(alys_wire_body_name(m), "none") != 0, "body case %d has no name",
               (int) m->body_case);
    check_body(m);

    if (fuzz_pb_has_field0(&m->base)) { /* see fuzz_util.h */
        alys_wire_free(&m);
        return 0;
    }
    size_t len1, len2;
    uint8_t *p1 = pack(m, &len1);
    zframe_t *frame = alys_wire_encode(m);
    FUZZ_CHECK(frame != NULL, "accepted message does not encode");
    FUZZ_CHECK(zframe_size(frame) == len1 && memcmp(zframe_data(frame), p1, len1) == 0,
               "alys_wire_encode differs from protobuf-c pack");
    err[0] = '\0';
    alys_wire_msg_t *again = alys_wire_decode(zframe_data(frame), zframe_size(frame), err, sizeof err);
    /* Only a memory-budget refusal may differ (see fuzz_envelope.c). */
    FUZZ_CHECK(again != NULL || strstr(err, "memory budget") != NULL,
               "re-encoded message refused: %s", err);
    if (again) {
        uint8_t *p2 = pack(again, &len2);
        FUZZ_CHECK(len2 == len1 && memcmp(p1, p2, len1) == 0, "re-encoding not canonical");
        free(p2);
        alys_wire_free(&again);
    }
    zframe_destroy(&frame);
    free(p1);
    alys_wire_free(&m);
    FUZZ_CHECK(m == NULL, "alys_wire_free did not clear the pointer");
    return 0;
}
