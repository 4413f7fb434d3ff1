/*  fuzz_genesis.c: alys_genesis_decode (common/chain/codec.c), the decoder of
 *  the genesis file named by [node] genesis_file, on arbitrary bytes.
 *
 *  Invariants: a refused input gets an error message and leaves nothing
 *  allocated; an accepted genesis re-encodes, decodes back to the same
 *  parameters, keys and balances (and so the same hash and state root), and
 *  its encoding is canonical; no memory error or leak.
 */
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    alys_genesis_t g;
    char err[256] = "";
    if (alys_genesis_decode(data, size, &g, err, sizeof err) != 0) {
        FUZZ_CHECK(fuzz_has_text(err, sizeof err), "refused without a message");
        FUZZ_CHECK(g.authorities == NULL && g.balances == NULL, "refused decode left memory");
        return 0;
    }
    FUZZ_CHECK(g.authority_count >= 1 && g.authority_count <= ALYS_MAX_AUTHORITIES,
               "%u authorities", g.authority_count);
    FUZZ_CHECK(g.slot_duration_ms > 0, "slot duration 0 accepted");
    FUZZ_CHECK(memchr(g.chain_id, '\0', sizeof g.chain_id) != NULL, "chain_id not terminated");

    uint8_t *enc = NULL, *enc2 = NULL;
    size_t len = 0, len2 = 0;
    FUZZ_CHECK(alys_genesis_encode(&g, &enc, &len) == 0, "decoded genesis does not encode");
    alys_genesis_t back;
    FUZZ_CHECK(alys_genesis_decode(enc, len, &back, err, sizeof err) == 0,
               "re-encoding does not decode: %s", err);
    FUZZ_CHECK(strcmp(back.chain_id, g.chain_id) == 0, "chain_id changed");
    FUZZ_CHECK(back.slot_duration_ms == g.slot_duration_ms && back.genesis_time == g.genesis_time,
               "parameters changed");
    FUZZ_CHECK(back.authority_count == g.authority_count &&
                   memcmp(back.authorities, g.authorities,
                          g.authority_count * sizeof *g.authorities) == 0,
               "authorities changed");
    FUZZ_CHECK(back.balance_count == g.balance_count &&
                   (g.balance_count == 0 ||
                    memcmp(back.balances, g.balances, g.balance_count * sizeof *g.balances) == 0),
               "balances changed");
    FUZZ_CHECK(memcmp(back.hash, g.hash, ALYS_HASH_LEN) == 0 &&
                   memcmp(back.state_root, g.state_root, ALYS_HASH_LEN) == 0,
               "hash or state root changed");
    FUZZ_CHECK(alys_genesis_encode(&back, &enc2, &len2) == 0, "second encode failed");
    FUZZ_CHECK(len2 == len && memcmp(enc, enc2, len) == 0, "encoding not canonical");
    free(enc);
    free(enc2);
    alys_genesis_clear(&back);
    alys_genesis_clear(&g);
    return 0;
}
