/*  test_crypto.c: SHA-256, hash layouts, signing, the BIP340 vectors, hex,
 *  and the tx Merkle root. */
#include <criterion/criterion.h>
#include <openssl/sha.h>
#include <secp256k1.h>
#include <secp256k1_extrakeys.h>
#include <secp256k1_schnorrsig.h>
#include <string.h>

#include "fixture.h"

/* Layout pins, computed independently (Python hashlib over the layouts
 * documented in common/chain/chain.c) for sample_header() and sample_tx(). */
#define HEADER_HASH_PIN "bf0299203c9b84c5b40532aa696e09e1a9e041d34f040ad173dcfcff45524aac"
#define TX_HASH_PIN     "7aac513bfbbabc90c50766e3a4ab3488d4c7a711df3c2ea45ccd20d9189e7948"

static void unhex_any(const char *hex, uint8_t *out, size_t n)
{
    cr_assert_eq(alys_unhex(hex, out, n), 0, "bad hex %s", hex);
}

Test(crypto, sha256_known_answers)
{
    alys_hash_t h, want;
    alys_sha256("", 0, h);
    unhex_any("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", want, 32);
    cr_assert_arr_eq(h, want, 32);
    alys_sha256("abc", 3, h);
    unhex_any("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", want, 32);
    cr_assert_arr_eq(h, want, 32);
    const char *m = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    alys_sha256(m, strlen(m), h);
    unhex_any("248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1", want, 32);
    cr_assert_arr_eq(h, want, 32);
}

Test(crypto, hex_roundtrip_and_errors)
{
    uint8_t b[4] = {0x00, 0xab, 0x7f, 0xff}, back[4];
    char s[9];
    alys_hex(b, 4, s);
    cr_assert_str_eq(s, "00ab7fff");
    cr_assert_eq(alys_unhex("00AB7fff", back, 4), 0);
    cr_assert_arr_eq(back, b, 4);
    cr_assert_eq(alys_unhex("00ab7f", back, 4), -1);
    cr_assert_eq(alys_unhex("00ab7fff00", back, 4), -1);
    cr_assert_eq(alys_unhex("00ab7fzz", back, 4), -1);
    cr_assert_eq(alys_unhex(NULL, back, 4), -1);
}

static alys_header_t sample_header(void)
{
    alys_header_t h = {.height = 0x0102030405060708ULL,
                       .slot = 77,
                       .timestamp = 1700000154,
                       .proposer = 2};
    for (int i = 0; i < 32; i++) {
        h.parent_hash[i] = (uint8_t) i;
        h.tx_root[i] = (uint8_t) (0x40 + i);
        h.state_root[i] = (uint8_t) (0x80 + i);
    }
    memset(h.signature, 0x5a, sizeof h.signature);
    return h;
}

static void le(uint8_t *p, uint64_t x, int n)
{
    for (int i = 0; i < n; i++)
        p[i] = (uint8_t) (x >> (8 * i));
}

/* The documented layout, written out independently and hashed by OpenSSL. */
Test(crypto, header_hash_matches_documented_layout)
{
    alys_header_t h = sample_header();
    uint8_t buf[138], *p = buf;
    memcpy(p, "alys/header/v1", 14);
    p += 14;
    le(p, h.height, 8);
    p += 8;
    memcpy(p, h.parent_hash, 32);
    p += 32;
    le(p, h.slot, 8);
    p += 8;
    le(p, h.timestamp, 8);
    p += 8;
    le(p, h.proposer, 4);
    p += 4;
    memcpy(p, h.tx_root, 32);
    p += 32;
    memcpy(p, h.state_root, 32);
    p += 32;
    cr_assert_eq(p - buf, 138);
    alys_hash_t want, got;
    SHA256(buf, sizeof buf, want);
    alys_header_hash(&h, got);
    cr_assert_arr_eq(got, want, 32);
    /* Pinned: any change of layout is a consensus change and must be seen. */
    char hex[65];
    alys_hex(got, 32, hex);
    cr_assert_str_eq(hex, HEADER_HASH_PIN, "header hash changed: %s", hex);
}

static alys_tx_t sample_tx(void)
{
    alys_tx_t tx = {.amount = 1000, .fee = 7, .nonce = 3};
    memset(tx.from, 0x11, 32);
    memset(tx.to, 0x22, 32);
    memset(tx.signature, 0x33, 64);
    return tx;
}

Test(crypto, tx_hash_matches_documented_layout)
{
    alys_tx_t tx = sample_tx();
    uint8_t buf[98], *p = buf;
    memcpy(p, "alys/tx/v1", 10);
    p += 10;
    memcpy(p, tx.from, 32);
    p += 32;
    memcpy(p, tx.to, 32);
    p += 32;
    le(p, tx.amount, 8);
    p += 8;
    le(p, tx.fee, 8);
    p += 8;
    le(p, tx.nonce, 8);
    p += 8;
    alys_hash_t want, got;
    SHA256(buf, sizeof buf, want);
    alys_tx_hash(&tx, got);
    cr_assert_arr_eq(got, want, 32);
    char hex[65];
    alys_hex(got, 32, hex);
    cr_assert_str_eq(hex, TX_HASH_PIN, "tx hash changed: %s", hex);
}

#define MUTATE(T, sample, hashfn, stmt, expect_change)                   \
    do {                                                                 \
        T x = sample();                                                  \
        alys_hash_t a, b;                                                \
        hashfn(&x, a);                                                   \
        stmt;                                                            \
        hashfn(&x, b);                                                   \
        cr_assert_eq(memcmp(a, b, 32) != 0, expect_change, "%s", #stmt); \
    } while (0)

Test(crypto, every_header_field_changes_hash_but_signature)
{
    MUTATE(alys_header_t, sample_header, alys_header_hash, x.height++, true);
    MUTATE(alys_header_t, sample_header, alys_header_hash, x.height ^= 1ULL << 63, true);
    MUTATE(alys_header_t, sample_header, alys_header_hash, x.parent_hash[0] ^= 1, true);
    MUTATE(alys_header_t, sample_header, alys_header_hash, x.parent_hash[31] ^= 0x80, true);
    MUTATE(alys_header_t, sample_header, alys_header_hash, x.slot++, true);
    MUTATE(alys_header_t, sample_header, alys_header_hash, x.timestamp++, true);
    MUTATE(alys_header_t, sample_header, alys_header_hash, x.proposer++, true);
    MUTATE(alys_header_t, sample_header, alys_header_hash, x.tx_root[5] ^= 1, true);
    MUTATE(alys_header_t, sample_header, alys_header_hash, x.state_root[17] ^= 1, true);
    MUTATE(alys_header_t, sample_header, alys_header_hash, x.signature[0] ^= 1, false);
}

Test(crypto, every_tx_field_changes_hash_but_signature)
{
    MUTATE(alys_tx_t, sample_tx, alys_tx_hash, x.from[0] ^= 1, true);
    MUTATE(alys_tx_t, sample_tx, alys_tx_hash, x.to[31] ^= 1, true);
    MUTATE(alys_tx_t, sample_tx, alys_tx_hash, x.amount++, true);
    MUTATE(alys_tx_t, sample_tx, alys_tx_hash, x.fee++, true);
    MUTATE(alys_tx_t, sample_tx, alys_tx_hash, x.nonce++, true);
    MUTATE(alys_tx_t, sample_tx, alys_tx_hash, x.signature[9] ^= 1, false);
}

Test(crypto, sign_verify_and_every_flipped_bit_fails)
{
    uint8_t sk[32], pk[32], sig[64], sig2[64];
    alys_hash_t msg;
    fx_seckey("signer", 1, sk);
    cr_assert_eq(alys_keypair_pubkey(sk, pk), 0);
    alys_sha256("message", 7, msg);
    cr_assert_eq(alys_sign(sk, msg, sig), 0);
    cr_assert(alys_verify(pk, msg, sig));
    cr_assert_eq(alys_sign(sk, msg, sig2), 0);
    cr_assert_arr_eq(sig, sig2, 64, "alys_sign must be deterministic");
    for (int bit = 0; bit < 512; bit++) {
        sig[bit / 8] ^= (uint8_t) (1 << (bit % 8));
        cr_assert_not(alys_verify(pk, msg, sig), "sig bit %d", bit);
        sig[bit / 8] ^= (uint8_t) (1 << (bit % 8));
    }
    for (int bit = 0; bit < 256; bit++) {
        msg[bit / 8] ^= (uint8_t) (1 << (bit % 8));
        cr_assert_not(alys_verify(pk, msg, sig), "msg bit %d", bit);
        msg[bit / 8] ^= (uint8_t) (1 << (bit % 8));
        pk[bit / 8] ^= (uint8_t) (1 << (bit % 8));
        cr_assert_not(alys_verify(pk, msg, sig), "pubkey bit %d", bit);
        pk[bit / 8] ^= (uint8_t) (1 << (bit % 8));
    }
    cr_assert(alys_verify(pk, msg, sig));
}

Test(crypto, invalid_secret_keys_refused)
{
    uint8_t zero[32] = {0}, order[32], pk[32], sig[64];
    alys_hash_t msg = {0};
    unhex_any("FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141", order, 32);
    cr_assert_eq(alys_keypair_pubkey(zero, pk), -1);
    cr_assert_eq(alys_keypair_pubkey(order, pk), -1);
    cr_assert_eq(alys_sign(zero, msg, sig), -1);
}

/* ---- BIP340 ----
 * Official vectors, bitcoin/bips bip-0340/test-vectors.csv: rows 0-14, plus
 * rows 15-18 (variable-length messages, added upstream 2022-12). Columns:
 * index, secret key, public key, aux_rand, message, signature, result. */
typedef struct {
    const char *sk, *pk, *aux, *msg, *sig;
    bool valid;
} bip340_vec_t;

#include "bip340_vectors.inc"

static size_t hexlen(const char *s)
{
    return strlen(s) / 2;
}

static void check_vector_verify(int i, const bip340_vec_t *t)
{
    uint8_t pk[32], sig[64], msg[128];
    size_t mlen = hexlen(t->msg);
    unhex_any(t->pk, pk, 32);
    unhex_any(t->sig, sig, 64);
    if (mlen)
        unhex_any(t->msg, msg, mlen);
    if (mlen == 32) {
        cr_assert_eq(alys_verify(pk, msg, sig), t->valid, "vector %d verify", i);
        return;
    }
    /* Our API signs 32-byte hashes only; the library checks the others. */
    secp256k1_xonly_pubkey x;
    int ok = secp256k1_xonly_pubkey_parse(secp256k1_context_static, &x, pk) &&
             secp256k1_schnorrsig_verify(secp256k1_context_static, sig, msg, mlen, &x);
    cr_assert_eq(ok == 1, t->valid, "vector %d verify (msg %zu bytes)", i, mlen);
}

static void check_vector_sign(int i, const bip340_vec_t *t)
{
    uint8_t sk[32], pk[32], want_pk[32], aux[32], sig[64], want[64], msg[128];
    size_t mlen = hexlen(t->msg);
    unhex_any(t->sk, sk, 32);
    unhex_any(t->pk, want_pk, 32);
    unhex_any(t->aux, aux, 32);
    unhex_any(t->sig, want, 64);
    if (mlen)
        unhex_any(t->msg, msg, mlen);
    cr_assert_eq(alys_keypair_pubkey(sk, pk), 0, "vector %d keypair", i);
    cr_assert_arr_eq(pk, want_pk, 32, "vector %d pubkey", i);
    if (mlen == 32) {
        cr_assert_eq(alys_sign_aux(sk, msg, aux, sig), 0, "vector %d sign", i);
    } else {
        secp256k1_context *ctx = secp256k1_context_create(SECP256K1_CONTEXT_NONE);
        secp256k1_keypair kp;
        secp256k1_schnorrsig_extraparams ep = SECP256K1_SCHNORRSIG_EXTRAPARAMS_INIT;
        ep.ndata = aux;
        cr_assert(secp256k1_keypair_create(ctx, &kp, sk));
        cr_assert(secp256k1_schnorrsig_sign_custom(ctx, sig, msg, mlen, &kp, &ep));
        secp256k1_context_destroy(ctx);
    }
    cr_assert_arr_eq(sig, want, 64, "vector %d signature bytes", i);
}

Test(crypto, bip340_official_vectors)
{
    size_t n = sizeof s_bip340 / sizeof s_bip340[0];
    cr_assert_eq(n, 19);
    for (size_t i = 0; i < n; i++) {
        check_vector_verify((int) i, &s_bip340[i]);
        if (s_bip340[i].sk[0])
            check_vector_sign((int) i, &s_bip340[i]);
    }
}

/* ---- Merkle ---- */

static void ref_root(const alys_tx_t *txs, uint32_t n, alys_hash_t out)
{
    if (n == 0) {
        memset(out, 0, 32);
        return;
    }
    uint8_t(*level)[32] = malloc((n + 1) * 32);
    cr_assert(level);
    for (uint32_t i = 0; i < n; i++)
        alys_tx_hash(&txs[i], level[i]);
    while (n > 1) {
        if (n & 1) {
            memcpy(level[n], level[n - 1], 32);
            n++;
        }
        for (uint32_t i = 0; i < n / 2; i++) {
            uint8_t pair[64];
            memcpy(pair, level[2 * i], 32);
            memcpy(pair + 32, level[2 * i + 1], 32);
            SHA256(pair, 64, level[i]);
        }
        n /= 2;
    }
    memcpy(out, level[0], 32);
    free(level);
}

static void pair_hash(const uint8_t *a, const uint8_t *b, uint8_t *out)
{
    uint8_t buf[64];
    memcpy(buf, a, 32);
    memcpy(buf + 32, b, 32);
    SHA256(buf, 64, out);
}

Test(merkle, small_counts_by_hand)
{
    alys_tx_t txs[5];
    alys_hash_t h[5], root, want;
    for (int i = 0; i < 5; i++) {
        txs[i] = sample_tx();
        txs[i].nonce = (uint64_t) i;
        alys_tx_hash(&txs[i], h[i]);
    }
    alys_tx_root(txs, 0, root);
    memset(want, 0, 32);
    cr_assert_arr_eq(root, want, 32, "0 txs");
    alys_tx_root(txs, 1, root);
    cr_assert_arr_eq(root, h[0], 32, "1 tx");
    alys_tx_root(txs, 2, root);
    pair_hash(h[0], h[1], want);
    cr_assert_arr_eq(root, want, 32, "2 txs");
    uint8_t ab[32], cc[32], abcd[32], ee[32], eeee[32];
    pair_hash(h[0], h[1], ab);
    pair_hash(h[2], h[2], cc);
    pair_hash(ab, cc, want);
    alys_tx_root(txs, 3, root);
    cr_assert_arr_eq(root, want, 32, "3 txs");
    uint8_t cd[32];
    pair_hash(h[2], h[3], cd);
    pair_hash(ab, cd, abcd);
    pair_hash(h[4], h[4], ee);
    pair_hash(ee, ee, eeee);
    pair_hash(abcd, eeee, want);
    alys_tx_root(txs, 5, root);
    cr_assert_arr_eq(root, want, 32, "5 txs");
}

Test(merkle, streaming_equals_level_by_level)
{
    static alys_tx_t txs[300];
    for (int i = 0; i < 300; i++) {
        txs[i] = sample_tx();
        txs[i].amount = (uint64_t) i * 7919;
    }
    for (uint32_t n = 0; n <= 300; n += (n < 70 ? 1 : 23)) {
        alys_hash_t a, b;
        alys_tx_root(txs, n, a);
        ref_root(txs, n, b);
        cr_assert_arr_eq(a, b, 32, "n = %u", n);
    }
}

/* SipHash-2-4 against the reference vectors of Aumasson and Bernstein's
 * paper: key 00..0f, inputs 00.., of 0, 8 and 15 bytes. */
Test(crypto, siphash24_matches_the_reference_vectors)
{
    uint8_t in[15];
    for (int i = 0; i < 15; i++)
        in[i] = (uint8_t) i;
    const uint64_t k0 = 0x0706050403020100ULL, k1 = 0x0f0e0d0c0b0a0908ULL;
    cr_expect_eq(alys_siphash24(k0, k1, in, 0), 0x726fdb47dd0e0e31ULL);
    cr_expect_eq(alys_siphash24(k0, k1, in, 8), 0x93f5f5799a932462ULL);
    cr_expect_eq(alys_siphash24(k0, k1, in, 15), 0xa129ca6149be45e5ULL);
}
