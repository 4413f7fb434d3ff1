/*  fuzz_util.h: helpers shared by the libFuzzer targets in tests/fuzz/.
 *
 *  FUZZ_CHECK(cond, ...) turns a violated invariant into an abort() that
 *  libFuzzer reports as a crash (with the input saved), after printing what
 *  was expected. fuzz_genesis() builds the genesis the seed chain was made
 *  for (scripts/fuzz.sh runs alys-chaingen with the same seed, authority
 *  count, slot and genesis time), so seed blocks pass the signature checks
 *  and mutations reach every stateless rule, not only the first one.
 */
#ifndef ALYS_FUZZ_UTIL_H
#define ALYS_FUZZ_UTIL_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <protobuf-c/protobuf-c.h>

#include "chain/chain.h"

/* Must match the alys-chaingen arguments in scripts/fuzz.sh. */
#define FUZZ_CHAIN_SEED        "1"
#define FUZZ_CHAIN_AUTHORITIES 3u
#define FUZZ_CHAIN_SLOT_MS     2000u       /* alys-chaingen default */
#define FUZZ_CHAIN_TIME        1600000000u /* alys-chaingen default */

#define FUZZ_CHECK(cond, ...)                                                                       \
    do {                                                                                            \
        if (!(cond)) {                                                                              \
            fprintf(stderr, "fuzz invariant violated at %s:%d: %s\n  ", __FILE__, __LINE__, #cond); \
            fprintf(stderr, __VA_ARGS__);                                                           \
            fputc('\n', stderr);                                                                    \
            abort();                                                                                \
        }                                                                                           \
    } while (0)

/* A NUL-terminated message was written: errors must say why. */
static inline int fuzz_has_text(const char *s, size_t cap)
{
    return s[0] != '\0' && memchr(s, '\0', cap) != NULL;
}

/* The chaingen key derivation (actors/chaingen/chaingen.h, DETERMINISM):
 * SHA-256("alys-chaingen/v1" 0 seed 0 "authority" 0 index-u32le [counter]). */
static inline void fuzz_authority_pubkey(uint32_t index, uint8_t pub[ALYS_PUBKEY_LEN])
{
    static const char tag[] = "alys-chaingen/v1", seed[] = FUZZ_CHAIN_SEED, label[] = "authority";
    uint8_t buf[sizeof tag + sizeof seed + sizeof label + 5], sec[ALYS_SECKEY_LEN];
    size_t n = 0;
    memcpy(buf + n, tag, sizeof tag); /* each copy includes its NUL */
    n += sizeof tag;
    memcpy(buf + n, seed, sizeof seed);
    n += sizeof seed;
    memcpy(buf + n, label, sizeof label);
    n += sizeof label;
    for (int i = 0; i < 4; i++)
        buf[n++] = (uint8_t) (index >> (8 * i));
    alys_sha256(buf, n, sec);
    for (uint8_t counter = 1; alys_keypair_pubkey(sec, pub) != 0; counter++) {
        buf[n] = counter;
        alys_sha256(buf, n + 1, sec);
    }
}

/* Authorities, slot and time of the seed chain; no accounts (stateless
 * checks do not read balances). Lives for the whole process. */
static inline const alys_genesis_t *fuzz_genesis(void)
{
    static alys_genesis_t g;
    static uint8_t auth[FUZZ_CHAIN_AUTHORITIES][ALYS_PUBKEY_LEN];
    if (g.authority_count == 0) {
        for (uint32_t i = 0; i < FUZZ_CHAIN_AUTHORITIES; i++)
            fuzz_authority_pubkey(i, auth[i]);
        snprintf(g.chain_id, sizeof g.chain_id, "alys-chaingen");
        g.authorities = auth;
        g.authority_count = FUZZ_CHAIN_AUTHORITIES;
        g.slot_duration_ms = FUZZ_CHAIN_SLOT_MS;
        g.genesis_time = FUZZ_CHAIN_TIME;
        alys_genesis_finalize(&g);
    }
    return &g;
}

/* A verdict that refuses must name a known rule and say why. */
static inline void fuzz_check_refusal(const alys_verdict_t *v)
{
    FUZZ_CHECK(v->code > ALYS_BLOCK_OK && v->code < ALYS_BLOCK_ERROR_COUNT, "code %d", (int) v->code);
    FUZZ_CHECK(fuzz_has_text(v->detail, sizeof v->detail), "refusal %s without detail",
               alys_block_error_name(v->code));
}

/* True if m or any sub-message kept an unknown field numbered 0. protobuf-c
 * 1.4 refuses tag 0 in one byte (0x00-0x07) but accepts an over-long
 * encoding of it (0x80 0x00 ...) and keeps it as an unknown field, which it
 * then re-encodes in one byte and refuses: a library leniency (field 0 is
 * invalid protobuf), not a project bug, so round-trip checks skip it. */
static inline bool fuzz_pb_has_field0(const ProtobufCMessage *m)
{
    if (!m)
        return false;
    for (unsigned i = 0; i < m->n_unknown_fields; i++)
        if (m->unknown_fields[i].tag == 0)
            return true;
    const ProtobufCMessageDescriptor *d = m->descriptor;
    const uint8_t *base = (const uint8_t *) m;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        if (f->type != PROTOBUF_C_TYPE_MESSAGE)
            continue;
        if ((f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
            *(const uint32_t *) (base + f->quantifier_offset) != f->id)
            continue;
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t n = *(const size_t *) (base + f->quantifier_offset);
            ProtobufCMessage *const *arr = *(ProtobufCMessage *const *const *) (base + f->offset);
            for (size_t j = 0; j < n; j++)
                if (fuzz_pb_has_field0(arr[j]))
                    return true;
        } else if (fuzz_pb_has_field0(*(ProtobufCMessage *const *) (base + f->offset))) {
            return true;
        }
    }
    return false;
}

#endif
