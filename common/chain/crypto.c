/*  crypto.c: hashing (OpenSSL libcrypto) and BIP340 Schnorr (libsecp256k1).
 *
 *  Process-wide state is created once each (pthread_once), on first use of
 *  what needs it, because OpenSSL's provider machinery is expensive to wake:
 *  its first EVP fetch loads openssl.cnf and the default provider, ~9
 *  million instructions, as much as loading the actors' 32 shared libraries,
 *  paid on every actor (re)start before Ready. So:
 *    - SHA-256 (one-shot and streaming) uses OpenSSL's low-level
 *      SHA256_Init/Update/Final: no provider, no EVP dispatch (EVP added
 *      ~2,000 instructions to each ~100-byte hash; a 10-tx block does ~70
 *      of them in storage and ~25 per validator). Deprecated in OpenSSL 3
 *      but present, and they run the same assembly (SHA-NI where present).
 *    - the hash-map key comes from getrandom(2), not RAND_bytes;
 *    - ChaCha20 (lattice vectors) and SHAKE256 are fetched on first use;
 *      each thread keeps one ChaCha20 EVP_CIPHER_CTX (freed at thread exit),
 *      set up with the fetched cipher once and only re-keyed per call: a
 *      fresh context per call with EVP_chacha20() cost an implicit provider
 *      fetch and two allocations each time, ~30% of a lattice vector;
 *    - the signing context (randomized) is made on the first signature.
 *  Verification uses secp256k1_context_static, which needs no setup and is
 *  safe from any thread.
 */
#define OPENSSL_SUPPRESS_DEPRECATED /* SHA256_Init/Update/Final, see above */

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <secp256k1.h>
#include <secp256k1_extrakeys.h>
#include <secp256k1_schnorrsig.h>

#include "chain_internal.h"

/* What one thread reuses between calls. */
typedef struct {
    EVP_MD_CTX *md;         /* SHAKE256; NULL until first use */
    EVP_CIPHER_CTX *chacha; /* ChaCha20, cipher set; NULL until first use */
} thread_ctx_t;

static pthread_once_t s_key_once = PTHREAD_ONCE_INIT;    /* thread key, SipHash key */
static pthread_once_t s_chacha_once = PTHREAD_ONCE_INIT; /* fetched ChaCha20 */
static pthread_once_t s_shake_once = PTHREAD_ONCE_INIT;  /* fetched SHAKE256 */
static pthread_once_t s_sign_once = PTHREAD_ONCE_INIT;   /* signing context */
static pthread_key_t s_ctx_key;
static EVP_MD *s_shake256;
static EVP_CIPHER *s_chacha20;
static secp256k1_context *s_sign_ctx;
static uint64_t s_sip_k0, s_sip_k1;

static void die(const char *what)
{
    fprintf(stderr, "alys chain crypto: %s\n", what);
    abort();
}

static void free_thread_ctx(void *p)
{
    thread_ctx_t *t = p;
    EVP_MD_CTX_free(t->md);
    EVP_CIPHER_CTX_free(t->chacha);
    free(t);
}

/* Without entropy the hash-map key is fixed, which only weakens the flooding
 * defence: not fatal. */
static void init_keys(void)
{
    if (pthread_key_create(&s_ctx_key, free_thread_ctx) != 0)
        die("pthread_key_create failed");
    uint64_t k[2];
    if (getrandom(k, sizeof k, 0) == (ssize_t) sizeof k) {
        s_sip_k0 = k[0];
        s_sip_k1 = k[1];
    }
}

static void init_chacha(void)
{
    if (!(s_chacha20 = EVP_CIPHER_fetch(NULL, "ChaCha20", NULL)))
        die("OpenSSL has no ChaCha20");
}

static void init_shake(void)
{
    if (!(s_shake256 = EVP_MD_fetch(NULL, "SHAKE256", NULL)))
        die("OpenSSL has no SHAKE256");
}

/* Randomization only hardens signing against side channels; a failure to get
 * entropy leaves a working (unblinded) context, so it is not fatal. */
static void init_sign(void)
{
    s_sign_ctx = secp256k1_context_create(SECP256K1_CONTEXT_NONE);
    if (!s_sign_ctx)
        die("secp256k1_context_create failed");
    uint8_t seed[32];
    if (RAND_bytes(seed, sizeof seed) == 1 && !secp256k1_context_randomize(s_sign_ctx, seed))
        fprintf(stderr, "alys chain crypto: context randomize failed\n");
    OPENSSL_cleanse(seed, sizeof seed);
}

static void once(pthread_once_t *o, void (*fn)(void))
{
    if (pthread_once(o, fn) != 0)
        die("pthread_once failed");
}

static thread_ctx_t *thread_ctx(void)
{
    once(&s_key_once, init_keys);
    thread_ctx_t *t = pthread_getspecific(s_ctx_key);
    if (t)
        return t;
    t = calloc(1, sizeof *t);
    if (!t || pthread_setspecific(s_ctx_key, t) != 0)
        die("cannot allocate a thread's crypto contexts");
    return t;
}

void alys_sha256(const void *data, size_t len, alys_hash_t out)
{
    SHA256_CTX c;
    if (SHA256_Init(&c) != 1 || SHA256_Update(&c, data, len) != 1 || SHA256_Final(out, &c) != 1)
        die("SHA-256 failed");
}

/* Own context (malloc'ed SHA256_CTX), not the thread's: callers may hash
 * other things meanwhile. */
void achain_sha256_init(achain_sha256_t *st)
{
    SHA256_CTX *c = malloc(sizeof *c);
    if (!c || SHA256_Init(c) != 1)
        die("SHA-256 init failed");
    st->md_ctx = c;
}

void achain_sha256_update(achain_sha256_t *st, const void *data, size_t len)
{
    if (SHA256_Update(st->md_ctx, data, len) != 1)
        die("SHA-256 update failed");
}

void achain_sha256_final(achain_sha256_t *st, alys_hash_t out)
{
    if (SHA256_Final(out, st->md_ctx) != 1)
        die("SHA-256 final failed");
    free(st->md_ctx);
    st->md_ctx = NULL;
}

void achain_shake256(const void *data, size_t len, uint8_t *out, size_t outlen)
{
    once(&s_shake_once, init_shake);
    thread_ctx_t *t = thread_ctx();
    if (!t->md && !(t->md = EVP_MD_CTX_new()))
        die("cannot allocate a digest context");
    if (EVP_DigestInit_ex2(t->md, s_shake256, NULL) != 1 ||
        EVP_DigestUpdate(t->md, data, len) != 1 || EVP_DigestFinalXOF(t->md, out, outlen) != 1)
        die("SHAKE256 failed");
}

/* Expand data to outlen pseudo-random bytes: ChaCha20 keystream keyed by
 * SHA-256(data). It replaced SHAKE256 for the lattice's 2 KiB account
 * vectors: same role (an XOF from a hash), about 4x cheaper per account,
 * and account vectors dominate sequential execution time. The keystream is
 * the encryption of zeros, done in place in out. */
void achain_expand(const void *data, size_t len, uint8_t *out, size_t outlen)
{
    static const uint8_t iv[16];
    alys_hash_t key;
    alys_sha256(data, len, key);
    once(&s_chacha_once, init_chacha);
    thread_ctx_t *t = thread_ctx();
    if (!t->chacha) {
        t->chacha = EVP_CIPHER_CTX_new();
        if (!t->chacha || EVP_EncryptInit_ex2(t->chacha, s_chacha20, NULL, NULL, NULL) != 1)
            die("ChaCha20 init failed");
    }
    /* NULL cipher: keep the one set above, only re-key (no fetch, no alloc). */
    if (EVP_EncryptInit_ex2(t->chacha, NULL, key, iv, NULL) != 1)
        die("ChaCha20 init failed");
    memset(out, 0, outlen);
    for (size_t off = 0; off < outlen;) {
        int n = outlen - off > INT32_MAX ? INT32_MAX : (int) (outlen - off);
        int outl = 0;
        if (EVP_EncryptUpdate(t->chacha, out + off, &outl, out + off, n) != 1 || outl != n)
            die("ChaCha20 failed");
        off += (size_t) n;
    }
}

/* ---- SipHash-2-4 ---- */

#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))

static void sip_round(uint64_t v[4])
{
    v[0] += v[1];
    v[1] = ROTL(v[1], 13);
    v[1] ^= v[0];
    v[0] = ROTL(v[0], 32);
    v[2] += v[3];
    v[3] = ROTL(v[3], 16);
    v[3] ^= v[2];
    v[0] += v[3];
    v[3] = ROTL(v[3], 21);
    v[3] ^= v[0];
    v[2] += v[1];
    v[1] = ROTL(v[1], 17);
    v[1] ^= v[2];
    v[2] = ROTL(v[2], 32);
}

static uint64_t load_le64(const uint8_t *p, size_t n)
{
    uint64_t x = 0;
    for (size_t i = n; i-- > 0;)
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

uint64_t alys_siphash24(uint64_t k0, uint64_t k1, const void *in, size_t len)
{
    const uint8_t *p = in;
    uint64_t v[4] = {k0 ^ 0x736f6d6570736575ULL, k1 ^ 0x646f72616e646f6dULL,
                     k0 ^ 0x6c7967656e657261ULL, k1 ^ 0x7465646279746573ULL};
    size_t whole = len - len % 8;
    for (size_t i = 0; i < whole; i += 8)
        sip_absorb(v, load_le64(p + i, 8));
    sip_absorb(v, ((uint64_t) len << 56) | load_le64(p + whole, len % 8));
    v[2] ^= 0xff;
    for (int i = 0; i < 4; i++)
        sip_round(v);
    return v[0] ^ v[1] ^ v[2] ^ v[3];
}

uint64_t achain_key_hash(const uint8_t key[ALYS_PUBKEY_LEN])
{
    once(&s_key_once, init_keys); /* makes sure the key is initialised */
    return alys_siphash24(s_sip_k0, s_sip_k1, key, ALYS_PUBKEY_LEN);
}

/* ---- BIP340 Schnorr ---- */

static const secp256k1_context *sign_ctx(void)
{
    once(&s_sign_once, init_sign);
    return s_sign_ctx;
}

int alys_keypair_pubkey(const uint8_t seckey[ALYS_SECKEY_LEN], uint8_t pubkey[ALYS_PUBKEY_LEN])
{
    const secp256k1_context *ctx = sign_ctx();
    secp256k1_keypair kp;
    secp256k1_xonly_pubkey xpk;
    int ok = secp256k1_keypair_create(ctx, &kp, seckey) &&
             secp256k1_keypair_xonly_pub(ctx, &xpk, NULL, &kp) &&
             secp256k1_xonly_pubkey_serialize(ctx, pubkey, &xpk);
    OPENSSL_cleanse(&kp, sizeof kp);
    return ok ? 0 : -1;
}

int alys_sign_aux(const uint8_t seckey[ALYS_SECKEY_LEN], const alys_hash_t msg,
                  const uint8_t *aux32, uint8_t sig[ALYS_SIG_LEN])
{
    const secp256k1_context *ctx = sign_ctx();
    secp256k1_keypair kp;
    int ok = secp256k1_keypair_create(ctx, &kp, seckey) &&
             secp256k1_schnorrsig_sign32(ctx, sig, msg, &kp, aux32);
    OPENSSL_cleanse(&kp, sizeof kp);
    return ok ? 0 : -1;
}

/* No aux randomness: BIP340 then derives the nonce from key and message only,
 * so the same inputs give the same signature bytes (chaingen relies on it). */
int alys_sign(const uint8_t seckey[ALYS_SECKEY_LEN], const alys_hash_t msg, uint8_t sig[ALYS_SIG_LEN])
{
    return alys_sign_aux(seckey, msg, NULL, sig);
}

bool alys_verify(const uint8_t pubkey[ALYS_PUBKEY_LEN], const alys_hash_t msg,
                 const uint8_t sig[ALYS_SIG_LEN])
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
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
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
