/*  fuzz_block.c: alys_block_decode (common/chain/codec.c) on arbitrary bytes,
 *  then the stateless checks (alys_block_check_stateless) on whatever decodes.
 *
 *  Invariants: a refused input gets MALFORMED/OVERSIZE with a detail and
 *  leaves no txs behind; an accepted block re-encodes, decodes back to the
 *  same value, and its encoding is canonical (encode(decode(encode(b))) ==
 *  encode(b)); the stateless verdict agrees with the return value and names
 *  a stateless rule (and the offending tx for a bad tx signature); ASan/LSan
 *  see no memory error or leak.
 */
#include "fuzz_util.h"

static void check_stateless(const alys_block_t *b)
{
    alys_verdict_t v;
    bool ok = alys_block_check_stateless(fuzz_genesis(), b, &v);
    FUZZ_CHECK(ok == (v.code == ALYS_BLOCK_OK), "return %d vs code %s", ok,
               alys_block_error_name(v.code));
    if (ok)
        return;
    fuzz_check_refusal(&v);
    switch (v.code) {
    case ALYS_BLOCK_WRONG_PROPOSER:
    case ALYS_BLOCK_BAD_TIMESTAMP:
    case ALYS_BLOCK_TX_ROOT_MISMATCH:
    case ALYS_BLOCK_BAD_PROPOSER_SIG: break;
    case ALYS_BLOCK_BAD_TX_SIG:
        FUZZ_CHECK(v.tx_index >= 0 && (uint32_t) v.tx_index < b->tx_count,
                   "bad tx index %d of %u", v.tx_index, b->tx_count);
        break;
    default:
        FUZZ_CHECK(0, "stateless check gave %s (%s)", alys_block_error_name(v.code), v.detail);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    alys_block_t b;
    alys_verdict_t v;
    if (alys_block_decode(data, size, &b, &v) != 0) {
        fuzz_check_refusal(&v);
        FUZZ_CHECK(v.code == ALYS_BLOCK_MALFORMED || v.code == ALYS_BLOCK_OVERSIZE,
                   "decode refused with %s", alys_block_error_name(v.code));
        FUZZ_CHECK(b.txs == NULL && b.tx_count == 0, "refused decode left %u txs", b.tx_count);
        return 0;
    }
    FUZZ_CHECK(v.code == ALYS_BLOCK_OK, "accepted with code %s", alys_block_error_name(v.code));
    FUZZ_CHECK(b.tx_count <= ALYS_MAX_TXS_PER_BLOCK, "%u txs", b.tx_count);

    uint8_t *enc = NULL, *enc2 = NULL;
    size_t len = 0, len2 = 0;
    FUZZ_CHECK(alys_block_encode(&b, &enc, &len) == 0, "decoded block does not encode");
    alys_block_t back;
    FUZZ_CHECK(alys_block_decode(enc, len, &back, &v) == 0, "re-encoding does not decode: %s",
               v.detail);
    FUZZ_CHECK(memcmp(&back.header, &b.header, sizeof b.header) == 0, "header changed");
    FUZZ_CHECK(back.tx_count == b.tx_count, "tx count %u -> %u", b.tx_count, back.tx_count);
    FUZZ_CHECK(b.tx_count == 0 || memcmp(back.txs, b.txs, b.tx_count * sizeof *b.txs) == 0,
               "txs changed");
    FUZZ_CHECK(alys_block_encode(&back, &enc2, &len2) == 0, "second encode failed");
    FUZZ_CHECK(len2 == len && memcmp(enc, enc2, len) == 0, "encoding not canonical");
    free(enc);
    free(enc2);
    alys_block_clear(&back);

    check_stateless(&b);
    alys_block_clear(&b);
    FUZZ_CHECK(b.txs == NULL && b.tx_count == 0, "clear left txs");
    return 0;
}
