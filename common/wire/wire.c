/*  wire/wire.c: see wire.h. */
#include "wire/wire.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bus.h"

/* ---- bounded decode ----------------------------------------------------- */

static size_t str_len(const char *s)
{
    return s ? strlen(s) : 0;
}

/* Items over their bound, or too many of them. NULL = fine. */
static const char *items_problem(const ProtobufCBinaryData *items, size_t n, size_t max_n,
                                 size_t max_bytes)
{
    if (n > max_n)
        return "too many items";
    for (size_t i = 0; i < n; i++)
        if (items[i].len > max_bytes)
            return "an item exceeds its size bound";
    return NULL;
}

static const char *locator_problem(const ProtobufCBinaryData *hashes, size_t n);

static const char *status_problem(const Alys__Wire__Status *s)
{
    if (s->genesis_hash.len != ALYS_HASH_LEN)
        return "status genesis hash is not 32 bytes";
    if (s->head_hash.len != 0 && s->head_hash.len != ALYS_HASH_LEN)
        return "status head hash is not 32 bytes";
    if (str_len(s->node_id) > ALYS_WIRE_MAX_TEXT || str_len(s->listen) > ALYS_WIRE_MAX_TEXT)
        return "status text field too long";
    return NULL;
}

static const char *locator_problem(const ProtobufCBinaryData *hashes, size_t n)
{
    if (n > ALYS_LOCATOR_MAX)
        return "locator of more than 128 hashes";
    for (size_t i = 0; i < n; i++)
        if (hashes[i].len != ALYS_HASH_LEN)
            return "locator hash is not 32 bytes";
    return NULL;
}

size_t alys_locator_heights(uint64_t head, uint32_t dense, uint64_t *out, size_t cap)
{
    size_t n = 0;
    uint64_t step = 1, h = head;
    if (dense < 1)
        dense = 1;
    if (dense > ALYS_LOCATOR_DENSE_MAX)
        dense = ALYS_LOCATOR_DENSE_MAX;
    /* Bitcoin's shape: the blocks below the head one by one (a fork is
     * most often shallow), then doubling steps back to the genesis, which
     * is always last (both sides share it). */
    while (n + 1 < cap && h > 0) {
        out[n++] = h;
        if (n >= dense && step < (UINT64_C(1) << 62))
            step *= 2;
        h = h > step ? h - step : 0;
    }
    if (n < cap)
        out[n++] = 0;
    return n;
}

/* The protocol's bounds on a decoded message. NULL = within bounds. */
static const char *bounds_problem(const alys_wire_msg_t *m)
{
    switch (m->body_case) {
    case ALYS__WIRE__WIRE_MSG__BODY_STATUS:
        return m->status ? status_problem(m->status) : "empty status";
    case ALYS__WIRE__WIRE_MSG__BODY_GET_HEADERS:
        return locator_problem(m->get_headers->locator, m->get_headers->n_locator);
    case ALYS__WIRE__WIRE_MSG__BODY_HEADERS:
        return items_problem(m->headers->headers, m->headers->n_headers, ALYS_WIRE_MAX_HEADERS,
                             ALYS_WIRE_MAX_HEADER_BYTES);
    case ALYS__WIRE__WIRE_MSG__BODY_BLOCKS:
        return items_problem(m->blocks->blocks, m->blocks->n_blocks, ALYS_WIRE_MAX_BLOCKS,
                             ALYS_MAX_BLOCK_BYTES);
    case ALYS__WIRE__WIRE_MSG__BODY_NEW_BLOCK:
        return m->new_block->block.len > ALYS_MAX_BLOCK_BYTES ? "new block too large" : NULL;
    case ALYS__WIRE__WIRE_MSG__BODY_PEERS:
        if (m->peers->n_endpoints > ALYS_WIRE_MAX_ENDPOINTS)
            return "too many endpoints";
        for (size_t i = 0; i < m->peers->n_endpoints; i++)
            if (str_len(m->peers->endpoints[i]) >= ALYS_ENDPOINT_MAX)
                return "endpoint too long";
        return NULL;
    case ALYS__WIRE__WIRE_MSG__BODY_ERROR:
        return str_len(m->error->message) > ALYS_WIRE_MAX_TEXT ? "error text too long" : NULL;
    case ALYS__WIRE__WIRE_MSG__BODY_SUBMIT_TX:
        return items_problem(m->submit_tx->txs, m->submit_tx->n_txs, ALYS_WIRE_MAX_TXS,
                             ALYS_WIRE_MAX_TX_BYTES);
    case ALYS__WIRE__WIRE_MSG__BODY_TX_RESULTS:
        if (m->tx_results->n_results > ALYS_WIRE_MAX_TXS)
            return "too many results";
        for (size_t i = 0; i < m->tx_results->n_results; i++)
            if (str_len(m->tx_results->results[i]) > ALYS_WIRE_MAX_RESULT)
                return "result too long";
        return NULL;
    case ALYS__WIRE__WIRE_MSG__BODY__NOT_SET: return "no body";
    default: return NULL;
    }
}

alys_wire_msg_t *alys_wire_decode(const uint8_t *data, size_t len, char *err, size_t errlen)
{
    bool oversize;
    alys_wire_msg_t *m = (alys_wire_msg_t *) alys_pb_unpack_bounded(&alys__wire__wire_msg__descriptor,
                                                                    data, len, "WireMsg",
                                                                    &oversize, err, errlen);
    if (!m)
        return NULL;
    const char *problem = bounds_problem(m);
    if (problem) {
        snprintf(err, errlen, "%s: %s", alys_wire_body_name(m), problem);
        alys_wire_free(&m);
        return NULL;
    }
    return m;
}

void alys_wire_free(alys_wire_msg_t **msg_p)
{
    if (msg_p && *msg_p) {
        alys_pb_free(&(*msg_p)->base);
        *msg_p = NULL;
    }
}

zframe_t *alys_wire_encode(const alys_wire_msg_t *msg)
{
    size_t len = alys__wire__wire_msg__get_packed_size(msg);
    if (len > ALYS_MAX_MSG_BYTES)
        return NULL;
    zframe_t *frame = zframe_new(NULL, len);
    if (!frame)
        return NULL;
    alys__wire__wire_msg__pack(msg, zframe_data(frame));
    return frame;
}

const char *alys_wire_body_name(const alys_wire_msg_t *msg)
{
    switch (msg->body_case) {
    case ALYS__WIRE__WIRE_MSG__BODY_STATUS: return "status";
    case ALYS__WIRE__WIRE_MSG__BODY_GET_HEADERS: return "get_headers";
    case ALYS__WIRE__WIRE_MSG__BODY_HEADERS: return "headers";
    case ALYS__WIRE__WIRE_MSG__BODY_GET_BLOCKS: return "get_blocks";
    case ALYS__WIRE__WIRE_MSG__BODY_BLOCKS: return "blocks";
    case ALYS__WIRE__WIRE_MSG__BODY_NEW_BLOCK: return "new_block";
    case ALYS__WIRE__WIRE_MSG__BODY_GET_PEERS: return "get_peers";
    case ALYS__WIRE__WIRE_MSG__BODY_PEERS: return "peers";
    case ALYS__WIRE__WIRE_MSG__BODY_ERROR: return "error";
    case ALYS__WIRE__WIRE_MSG__BODY_SUBMIT_TX: return "submit_tx";
    case ALYS__WIRE__WIRE_MSG__BODY_TX_RESULTS: return "tx_results";
    default: return "none";
    }
}

/* Bytes of a varint. */
static size_t varint_len(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

size_t alys_wire_fit_items(const ProtobufCBinaryData *items, size_t count, size_t overhead, size_t limit)
{
    /* The items sit inside a length-delimited sub-message (Headers/Blocks)
     * inside WireMsg: reserve 16 bytes for those two tags and lengths. */
    size_t used = overhead + 16;
    for (size_t i = 0; i < count; i++) {
        size_t item = 1 + varint_len(items[i].len) + items[i].len;
        if (used > limit || item > limit - used)
            return i;
        used += item;
    }
    return count;
}

/* ---- checks ------------------------------------------------------------- */

static void say(char *detail, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void say(char *detail, size_t len, const char *fmt, ...)
{
    if (!detail || !len)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, len, fmt, ap);
    va_end(ap);
}

alys_wire_verdict_t alys_wire_check_range(uint64_t req_start, uint32_t req_count,
                                          uint64_t resp_start, size_t n, bool truncated,
                                          bool *partial, char *detail, size_t detail_len)
{
    if (partial)
        *partial = false;
    say(detail, detail_len, "ok");
    if (n > req_count) {
        say(detail, detail_len, "%zu items for a request of %u", n, req_count);
        return ALYS_WIRE_VIOLATION;
    }
    if (n > 0 && resp_start != req_start) {
        say(detail, detail_len, "answer starts at %llu, asked %llu",
            (unsigned long long) resp_start, (unsigned long long) req_start);
        return ALYS_WIRE_VIOLATION;
    }
    if (n == 0 && truncated) {
        say(detail, detail_len, "empty answer flagged truncated");
        return ALYS_WIRE_VIOLATION;
    }
    if (n < req_count && !truncated) {
        say(detail, detail_len, "%zu of %u items, not truncated", n, req_count);
        return ALYS_WIRE_SHORT;
    }
    if (n < req_count && partial) {
        *partial = true;
        say(detail, detail_len, "%zu of %u items, truncated at the frame limit", n, req_count);
    }
    return ALYS_WIRE_OK;
}

static bool hash_differs(const alys_header_t *h, const uint8_t expected[ALYS_HASH_LEN])
{
    alys_hash_t got;
    alys_header_hash(h, got);
    return memcmp(got, expected, ALYS_HASH_LEN) != 0;
}

alys_wire_verdict_t alys_wire_check_blocks(const ProtobufCBinaryData *blocks, size_t n,
                                           uint64_t start, const uint8_t (*expected)[ALYS_HASH_LEN],
                                           size_t n_expected, size_t *bad, char *detail,
                                           size_t detail_len)
{
    say(detail, detail_len, "ok");
    for (size_t i = 0; i < n; i++) {
        if (bad)
            *bad = i;
        unsigned long long h = (unsigned long long) (start + i);
        alys_block_t b;
        alys_verdict_t v;
        if (alys_block_decode(blocks[i].data, blocks[i].len, &b, &v) != 0) {
            say(detail, detail_len, "block %llu does not decode: %s", h, v.detail);
            return ALYS_WIRE_INVALID;
        }
        bool wrong_height = b.header.height != start + i;
        bool mismatch = expected && i < n_expected && hash_differs(&b.header, expected[i]);
        unsigned long long got = (unsigned long long) b.header.height;
        alys_block_clear(&b);
        if (mismatch) {
            say(detail, detail_len, "block %llu does not match its verified header", h);
            return ALYS_WIRE_INVALID;
        }
        if (wrong_height) {
            say(detail, detail_len, "block at position of height %llu has height %llu", h, got);
            return ALYS_WIRE_INVALID;
        }
    }
    return ALYS_WIRE_OK;
}

alys_wire_verdict_t alys_wire_check_headers(const ProtobufCBinaryData *headers, size_t n,
                                            uint64_t start, size_t *bad, char *detail,
                                            size_t detail_len)
{
    say(detail, detail_len, "ok");
    for (size_t i = 0; i < n; i++) {
        if (bad)
            *bad = i;
        unsigned long long h = (unsigned long long) (start + i);
        alys_header_t hd;
        alys_verdict_t v;
        if (alys_header_decode(headers[i].data, headers[i].len, &hd, &v) != 0) {
            say(detail, detail_len, "header %llu does not decode: %s", h, v.detail);
            return ALYS_WIRE_INVALID;
        }
        if (hd.height != start + i) {
            say(detail, detail_len, "header at position of height %llu has height %llu", h,
                (unsigned long long) hd.height);
            return ALYS_WIRE_INVALID;
        }
    }
    return ALYS_WIRE_OK;
}

/* ---- names -------------------------------------------------------------- */

bool alys_wire_valid_node_id(const char *id)
{
    size_t n = str_len(id);
    if (n == 0 || n >= ALYS_WIRE_ID_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = id[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  strchr("._:@/-", c) != NULL;
        if (!ok)
            return false;
    }
    return true;
}

bool alys_wire_valid_endpoint(const char *ep)
{
    size_t n = str_len(ep);
    if (n <= 6 || n >= ALYS_ENDPOINT_MAX || strncmp(ep, "tcp://", 6) != 0)
        return false;
    const char *colon = strrchr(ep + 6, ':');
    if (!colon || colon == ep + 6 || !colon[1])
        return false;
    for (const char *p = colon + 1; *p; p++)
        if (*p < '0' || *p > '9')
            return false;
    for (const char *p = ep; *p; p++)
        if (*p <= ' ' || *p == '"' || *p == '\\' || *p > '~')
            return false;
    return true;
}

void alys_wire_endpoint_id(const char *endpoint, char *out, size_t outlen)
{
    const char *e = endpoint ? endpoint : "";
    if (strncmp(e, "tcp://", 6) == 0)
        e += 6;
    size_t room = outlen < ALYS_WIRE_ID_MAX ? outlen : ALYS_WIRE_ID_MAX;
    snprintf(out, room, "@%s", e);
}
