/*  fuzz_header.c: alys_header_decode (common/chain/codec.c) on arbitrary
 *  bytes, then the header checks (alys_header_check and, against the
 *  genesis parent, alys_header_check_link) on whatever decodes.
 *
 *  Invariants: a refused input gets MALFORMED/OVERSIZE with a detail; an
 *  accepted header re-encodes, decodes back to the same value and its
 *  encoding is canonical; the check verdicts agree with their return values
 *  and name a header/link rule; no memory error or leak.
 */
#include "fuzz_util.h"

static void check_verdict(bool ok, const alys_verdict_t *v, bool link)
{
    FUZZ_CHECK(ok == (v->code == ALYS_BLOCK_OK), "return %d vs code %s", ok,
               alys_block_error_name(v->code));
    if (ok)
        return;
    fuzz_check_refusal(v);
    bool expected =
        link ? (v->code == ALYS_BLOCK_HEIGHT_GAP || v->code == ALYS_BLOCK_PARENT_MISMATCH ||
                v->code == ALYS_BLOCK_NON_INCREASING_SLOT || v->code == ALYS_BLOCK_FUTURE_SLOT)
             : (v->code == ALYS_BLOCK_WRONG_PROPOSER || v->code == ALYS_BLOCK_BAD_TIMESTAMP ||
                v->code == ALYS_BLOCK_BAD_PROPOSER_SIG);
    FUZZ_CHECK(expected, "%s check gave %s (%s)", link ? "link" : "header",
               alys_block_error_name(v->code), v->detail);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    alys_header_t h;
    alys_verdict_t v;
    if (alys_header_decode(data, size, &h, &v) != 0) {
        fuzz_check_refusal(&v);
        FUZZ_CHECK(v.code == ALYS_BLOCK_MALFORMED || v.code == ALYS_BLOCK_OVERSIZE,
                   "decode refused with %s", alys_block_error_name(v.code));
        return 0;
    }
    uint8_t *enc = NULL, *enc2 = NULL;
    size_t len = 0, len2 = 0;
    FUZZ_CHECK(alys_header_encode(&h, &enc, &len) == 0, "decoded header does not encode");
    alys_header_t back;
    FUZZ_CHECK(alys_header_decode(enc, len, &back, &v) == 0, "re-encoding does not decode: %s",
               v.detail);
    FUZZ_CHECK(memcmp(&back, &h, sizeof h) == 0, "header changed in the round trip");
    FUZZ_CHECK(alys_header_encode(&back, &enc2, &len2) == 0, "second encode failed");
    FUZZ_CHECK(len2 == len && memcmp(enc, enc2, len) == 0, "encoding not canonical");
    free(enc);
    free(enc2);

    const alys_genesis_t *g = fuzz_genesis();
    check_verdict(alys_header_check(g, &h, &v), &v, false);
    alys_header_t parent;
    alys_genesis_parent(g, &parent);
    /* "now" a day after the header's own timestamp when it can be, so both
     * sides of the future-slot rule are reachable. */
    uint64_t now_ms = h.timestamp < UINT64_MAX / 1000 - 86400 ? (h.timestamp + 86400) * 1000 : 0;
    check_verdict(alys_header_check_link(&parent, g->hash, &h, alys_genesis_slot_at(g, now_ms), &v),
                  &v, true);
    return 0;
}
