/*  crypto.c: hashing (OpenSSL libcrypto) and BIP340 Schnorr (libsecp256k1).
 *
 *  Process-wide state is created once (pthread_once): the fetched EVP_MD
 *  objects, a randomized signing context and the hash-map key. Verification
 *  uses secp256k1_context_static, which needs no setup and is safe from any
 *  thread. Each thread keeps one EVP_MD_CTX (freed at thread exit) because
 *  allocating a context per hash costs more than the SHA-256 itself.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <secp256k1.h>
#include <secp256k1_extrakeys.h>
#include <secp256k1_schnorrsig.h>

#include "chain_internal.h"

static pthread_once_t s_once = PTHREAD_ONCE_INIT;
static pthread_key_t s_ctx_key;
static EVP_MD *s_sha256;
static EVP_MD *s_shake256;
static secp256k1_context *s_sign_ctx;
static uint64_t s_sip_k0, s_sip_k1;

static void die(const char *what)
{
    fprintf(stderr, "alys chain crypto: %s\n", what);
    abort();
}

static void free_thread_ctx(void *p)
{
    EVP_MD_CTX_free(p);
}

/* Randomization only hardens signing against side channels; a failure to get
 * entropy leaves a working (unblinded) context, so it is not fatal. Same for
 * the hash-map key: without entropy it is fixed, which only weakens the
 * flooding defence. */
static void init_once(void)
{
    s_sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
    s_shake256 = EVP_MD_fetch(NULL, "SHAKE256", NULL);
    if (!s_sha256 || !s_shake256)
        die("OpenSSL has no SHA256/SHAKE256");
    if (pthread_key_create(&s_ctx_key, free_thread_ctx) != 0)
        die("pthread_key_create failed");
    s_sign_ctx = secp256k1_context_create(SECP256K1_CONTEXT_NONE);
    if (!s_sign_ctx)
        die("secp256k1_context_create failed");
    uint8_t seed[48];
    if (RAND_bytes(seed, sizeof seed) == 1) {
        if (!secp256k1_context_randomize(s_sign_ctx, seed))
            fprintf(stderr, "alys chain crypto: context randomize failed\n");
        memcpy(&s_sip_k0, seed + 32, 8);
        memcpy(&s_sip_k1, seed + 40, 8);
    }
    OPENSSL_cleanse(seed, sizeof seed);
}

static EVP_MD_CTX *thread_ctx(void)
{
    if (pthread_once(&s_once, init_once) != 0)
        die("pthread_once failed");
    EVP_MD_CTX *ctx = pthread_getspecific(s_ctx_key);
    if (ctx)
        return ctx;
    ctx = EVP_MD_CTX_new();
    if (!ctx || pthread_setspecific(s_ctx_key, ctx) != 0)
        die("cannot allocate a digest context");
    return ctx;
}

void alys_sha256(const void *data, size_t len, alys_hash_t out)
{
    EVP_MD_CTX *ctx = thread_ctx();
    if (EVP_DigestInit_ex2(ctx, s_sha256, NULL) != 1
        || EVP_DigestUpdate(ctx, data, len) != 1
        || EVP_DigestFinal_ex(ctx, out, NULL) != 1)
        die("SHA-256 failed");
}

/* Own context, not the thread's: callers may hash other things meanwhile. */
void achain_sha256_init(achain_sha256_t *st)
{
    (void) thread_ctx();
    st->md_ctx = EVP_MD_CTX_new();
    if (!st->md_ctx || EVP_DigestInit_ex2(st->md_ctx, s_sha256, NULL) != 1)
        die("SHA-256 init failed");
}

void achain_sha256_update(achain_sha256_t *st, const void *data, size_t len)
{
    if (EVP_DigestUpdate(st->md_ctx, data, len) != 1)
        die("SHA-256 update failed");
}

void achain_sha256_final(achain_sha256_t *st, alys_hash_t out)
{
    if (EVP_DigestFinal_ex(st->md_ctx, out, NULL) != 1)
        die("SHA-256 final failed");
    EVP_MD_CTX_free(st->md_ctx);
    st->md_ctx = NULL;
}

void achain_shake256(const void *data, size_t len, uint8_t *out, size_t outlen)
{
    EVP_MD_CTX *ctx = thread_ctx();
    if (EVP_DigestInit_ex2(ctx, s_shake256, NULL) != 1
        || EVP_DigestUpdate(ctx, data, len) != 1
        || EVP_DigestFinalXOF(ctx, out, outlen) != 1)
        die("SHAKE256 failed");
}

/* Expand data to outlen pseudo-random bytes: ChaCha20 keystream keyed by
 * SHA-256(data). It replaced SHAKE256 for the lattice's 2 KiB account
 * vectors: same role (an XOF from a hash), about 4x cheaper per account,
 * and account vectors dominate sequential execution time. */
void achain_expand(const void *data, size_t len, uint8_t *out, size_t outlen)
{
    static const uint8_t zeros[256];
    alys_hash_t key;
    uint8_t iv[16] = {0};
    alys_sha256(data, len, key);
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    if (!c || EVP_EncryptInit_ex(c, EVP_chacha20(), NULL, key, iv) != 1)
        die("ChaCha20 init failed");
    for (size_t off = 0; off < outlen; off += sizeof zeros) {
        size_t n = outlen - off < sizeof zeros ? outlen - off : sizeof zeros;
        int outl = 0;
        if (EVP_EncryptUpdate(c, out + off, &outl, zeros, (int) n) != 1 || (size_t) outl != n)
            die("ChaCha20 failed");
    }
    EVP_CIPHER_CTX_free(c);
}

/* ---- SipHash-2-4 over exactly 32 bytes ---- */

#define ROTL(x, b) (uint64_t) (((x) << (b)) | ((x) >> (64 - (b))))

static void sip_round(uint64_t v[4])
{
    v[0] += v[1]; v[1] = ROTL(v[1], 13); v[1] ^= v[0]; v[0] = ROTL(v[0], 32);
    v[2] += v[3]; v[3] = ROTL(v[3], 16); v[3] ^= v[2];
    v[0] += v[3]; v[3] = ROTL(v[3], 21); v[3] ^= v[0];
    v[2] += v[1]; v[1] = ROTL(v[1], 17); v[1] ^= v[2]; v[2] = ROTL(v[2], 32);
}

static uint64_t load_le64(const uint8_t *p)
{
    uint64_t x = 0;
    for (int i = 7; i >= 0; i--)
        x = (x << 8) | p[i];
    return x;
}

static void sip_absorb(uint64_t v[4], uint64_t m)
{
    v[3] ^= m;
    sip_round(v);
    sip_round(v);
    v[0] ^= m;
}

uint64_t achain_key_hash(const uint8_t key[ALYS_PUBKEY_LEN])
{
    (void) thread_ctx();        /* makes sure the key is initialised */
    uint64_t v[4] = { s_sip_k0 ^ 0x736f6d6570736575ULL, s_sip_k1 ^ 0x646f72616e646f6dULL,
                      s_sip_k0 ^ 0x6c7967656e657261ULL, s_sip_k1 ^ 0x7465646279746573ULL };
    for (int i = 0; i < ALYS_PUBKEY_LEN; i += 8)
        sip_absorb(v, load_le64(key + i));
    sip_absorb(v, (uint64_t) ALYS_PUBKEY_LEN << 56);
    v[2] ^= 0xff;
    for (int i = 0; i < 4; i++)
        sip_round(v);
    return v[0] ^ v[1] ^ v[2] ^ v[3];
}

/* ---- BIP340 Schnorr ---- */

static const secp256k1_context *sign_ctx(void)
{
    (void) thread_ctx();
    return s_sign_ctx;
}

int alys_keypair_pubkey(const uint8_t seckey[ALYS_SECKEY_LEN], uint8_t pubkey[ALYS_PUBKEY_LEN])
{
    const secp256k1_context *ctx = sign_ctx();
    secp256k1_keypair kp;
    secp256k1_xonly_pubkey xpk;
    int ok = secp256k1_keypair_create(ctx, &kp, seckey)
          && secp256k1_keypair_xonly_pub(ctx, &xpk, NULL, &kp)
          && secp256k1_xonly_pubkey_serialize(ctx, pubkey, &xpk);
    OPENSSL_cleanse(&kp, sizeof kp);
    return ok ? 0 : -1;
}

int alys_sign_aux(const uint8_t seckey[ALYS_SECKEY_LEN], const alys_hash_t msg,
                  const uint8_t *aux32, uint8_t sig[ALYS_SIG_LEN])
{
    const secp256k1_context *ctx = sign_ctx();
    secp256k1_keypair kp;
    int ok = secp256k1_keypair_create(ctx, &kp, seckey)
          && secp256k1_schnorrsig_sign32(ctx, sig, msg, &kp, aux32);
    OPENSSL_cleanse(&kp, sizeof kp);
    return ok ? 0 : -1;
}

/* No aux randomness: BIP340 then derives the nonce from key and message only,
 * so the same inputs give the same signature bytes (chaingen relies on it). */
int alys_sign(const uint8_t seckey[ALYS_SECKEY_LEN], const alys_hash_t msg, uint8_t sig[ALYS_SIG_LEN])
{
    return alys_sign_aux(seckey, msg, NULL, sig);
}

bool alys_verify(const uint8_t pubkey[ALYS_PUBKEY_LEN], const alys_hash_t msg, const uint8_t sig[ALYS_SIG_LEN])
{
    secp256k1_xonly_pubkey xpk;
    if (!secp256k1_xonly_pubkey_parse(secp256k1_context_static, &xpk, pubkey))
        return false;
    return secp256k1_schnorrsig_verify(secp256k1_context_static, sig, msg, ALYS_HASH_LEN, &xpk) == 1;
}

/* ---- hex ---- */

void alys_hex(const uint8_t *bytes, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[bytes[i] >> 4];
        out[2 * i + 1] = digits[bytes[i] & 15];
    }
    out[2 * n] = '\0';
}

static int nibble(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

int alys_unhex(const char *hex, uint8_t *out, size_t n)
{
    if (!hex || strlen(hex) != 2 * n)
        return -1;
    for (size_t i = 0; i < n; i++) {
        int hi = nibble(hex[2 * i]), lo = nibble(hex[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return -1;
        out[i] = (uint8_t) (hi << 4 | lo);
    }
    return 0;
}
