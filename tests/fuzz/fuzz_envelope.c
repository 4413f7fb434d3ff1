/*  fuzz_envelope.c: the bus's frame decoder, alys_env_decode (common/bus.c),
 *  i.e. alys_pb_unpack_bounded with the budgeted allocator, on arbitrary
 *  bytes, as a ROUTER mailbox would receive them from any connected peer.
 *
 *  Invariants: a refused frame gets an error message and is counted exactly
 *  once (malformed or oversize) in alys_bus_stats; an accepted envelope has
 *  a body, and packing it, decoding that and packing again gives the same
 *  bytes (protobuf-c re-encoding is canonical after one pass; except for
 *  protobuf-c's over-long field-0 leniency, see fuzz_util.h); no memory
 *  error or leak (the budgeted allocator frees everything it handed out).
 */
#include "bus.h"
#include "fuzz_util.h"

static uint8_t *pack(const alys_env_t *env, size_t *len)
{
    *len = protobuf_c_message_get_packed_size(&env->base);
    uint8_t *buf = malloc(*len ? *len : 1);
    FUZZ_CHECK(buf != NULL, "out of memory");
    FUZZ_CHECK(protobuf_c_message_pack(&env->base, buf) == *len, "pack size mismatch");
    return buf;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    alys_bus_stats_t before = *alys_bus_stats();
    char err[256] = "";
    alys_env_t *env = alys_env_decode(data, size, err, sizeof err);
    const alys_bus_stats_t *after = alys_bus_stats();
    FUZZ_CHECK(after->received == before.received + 1, "received not counted");
    uint64_t refused = (after->malformed - before.malformed) + (after->oversize - before.oversize);
    if (!env) {
        FUZZ_CHECK(fuzz_has_text(err, sizeof err), "refused without a message");
        FUZZ_CHECK(refused == 1, "refusal counted %llu times", (unsigned long long) refused);
        return 0;
    }
    FUZZ_CHECK(refused == 0, "accepted frame counted as refused");
    FUZZ_CHECK(env->body_case != ALYS__BUS__ENVELOPE__BODY__NOT_SET, "accepted without a body");
    FUZZ_CHECK(strcmp(alys_env_body_name(env), "unknown") != 0, "body case %d has no name",
               (int) env->body_case);
    FUZZ_CHECK(env->sender != NULL, "NULL sender");

    if (fuzz_pb_has_field0(&env->base)) { /* see fuzz_util.h */
        alys_env_free(&env);
        return 0;
    }
    size_t len1, len2;
    uint8_t *p1 = pack(env, &len1);
    bool oversize = false;
    err[0] = '\0';
    ProtobufCMessage *again = alys_pb_unpack_bounded(&alys__bus__envelope__descriptor, p1, len1,
                                                     "envelope", &oversize, err, sizeof err);
    /* A frame padded with fields that unpacking drops (repeated scalars,
     * last one wins) buys a larger budget than its re-encoding gets: only a
     * non-budget failure is a bug. */
    FUZZ_CHECK(again != NULL || oversize, "re-encoded envelope does not decode: %s", err);
    if (again) {
        uint8_t *p2 = pack((const alys_env_t *) again, &len2);
        FUZZ_CHECK(len2 == len1 && memcmp(p1, p2, len1) == 0, "re-encoding not canonical");
        free(p2);
        alys_pb_free(again);
    }
    free(p1);
    alys_env_free(&env);
    FUZZ_CHECK(env == NULL, "alys_env_free did not clear the pointer");
    return 0;
}
