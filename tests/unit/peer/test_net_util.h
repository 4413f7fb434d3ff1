/*  test_net_util.h: a small generated chain for the wire, reorder and
 *  faultproxy tests (tests/unit/peer/test_net*.c).
 *
 *  chain_fx_make generates n blocks with alys-chaingen's library and keeps,
 *  per height h (1..n, index h-1), the encoded block, its header encoding and
 *  its header hash. The generator (genesis, keys) stays alive for the tests
 *  that re-sign. chain_fx_free releases everything.
 */
#ifndef TEST_NET_UTIL_H
#define TEST_NET_UTIL_H

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chaingen.h"

#define FX_MAX 64

typedef struct {
    size_t n;
    ProtobufCBinaryData blocks[FX_MAX];  /* owned copies */
    ProtobufCBinaryData headers[FX_MAX]; /* owned encodings */
    uint8_t hash[FX_MAX][ALYS_HASH_LEN];
    alys_chaingen_t *gen;
} chain_fx_t;

static inline void chain_fx_make(chain_fx_t *fx, size_t n, uint32_t txs)
{
    cr_assert(n <= FX_MAX);
    memset(fx, 0, sizeof *fx);
    alys_chaingen_config_t c;
    alys_chaingen_config_default(&c);
    c.blocks = n;
    c.txs_per_block = txs;
    c.accounts = 8;
    c.authorities = 2;
    c.threads = 1;
    snprintf(c.seed, sizeof c.seed, "net-tests");
    char err[256];
    fx->gen = alys_chaingen_new(&c, err, sizeof err);
    cr_assert_not_null(fx->gen, "chaingen: %s", err);
    for (size_t i = 0; i < n; i++) {
        const uint8_t *bytes;
        size_t len;
        const alys_block_t *b;
        cr_assert_eq(alys_chaingen_next(fx->gen, &bytes, &len, &b, err, sizeof err), 1, "%s", err);
        fx->blocks[i].data = malloc(len);
        cr_assert_not_null(fx->blocks[i].data);
        memcpy(fx->blocks[i].data, bytes, len);
        fx->blocks[i].len = len;
        alys_header_hash(&b->header, fx->hash[i]);
        uint8_t *h = NULL;
        size_t hlen = 0;
        cr_assert_eq(alys_header_encode(&b->header, &h, &hlen), 0);
        fx->headers[i] = (ProtobufCBinaryData){hlen, h};
    }
    fx->n = n;
}

static inline void chain_fx_free(chain_fx_t *fx)
{
    for (size_t i = 0; i < fx->n; i++) {
        free(fx->blocks[i].data);
        free(fx->headers[i].data);
    }
    alys_chaingen_destroy(&fx->gen);
    memset(fx, 0, sizeof *fx);
}

#endif
