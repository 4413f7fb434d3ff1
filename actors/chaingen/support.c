/*  support.c: threads, the signing context and key derivation for the
 *  generator (chaingen.c) and the fault injector (fault.c).
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "chaingen_internal.h"

#define KDF_TAG "alys-chaingen/v1"

uint32_t cg_online_cpus(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    if (n < 1)
        return 1;
    return n > ALYS_CHAINGEN_MAX_THREADS ? ALYS_CHAINGEN_MAX_THREADS : (uint32_t)n;
}

/* ================================================================ parallel */

/* Fork-join over n items with a shared counter (dynamic balance). If a
 * thread cannot be started the caller simply does more of the work. */
typedef struct {
    cg_par_fn        fn;
    void         *ctx;
    size_t        n;
    atomic_size_t next;
} par_t;

static void *par_worker(void *arg)
{
    par_t *p = arg;
    for (size_t i; (i = atomic_fetch_add(&p->next, 1)) < p->n;)
        p->fn(p->ctx, i);
    return NULL;
}

void cg_parallel_for(size_t n, uint32_t threads, cg_par_fn fn, void *ctx)
{
    par_t p = { .fn = fn, .ctx = ctx, .n = n };
    atomic_init(&p.next, 0);
    pthread_t tid[ALYS_CHAINGEN_MAX_THREADS];
    uint32_t started = 0;
    for (uint32_t k = 1; k < threads && k < n; k++)
        if (pthread_create(&tid[started], NULL, par_worker, &p) == 0)
            started++;
    par_worker(&p);
    for (uint32_t k = 0; k < started; k++)
        pthread_join(tid[k], NULL);
}

/* ================================================================ keys */

/* One secp256k1 context for all signing threads: signing only reads it. Not
 * randomized: these keys come from a public seed, blinding protects nothing.
 * Lives as long as the process. */
static secp256k1_context *s_ctx;
static pthread_once_t s_ctx_once = PTHREAD_ONCE_INIT;

static void ctx_init(void)
{
    s_ctx = secp256k1_context_create(SECP256K1_CONTEXT_NONE);
}

const secp256k1_context *cg_secp(void)
{
    (void)pthread_once(&s_ctx_once, ctx_init);
    return s_ctx;
}

/* SHA-256(tag 0 seed 0 label 0 index-u32le [counter]) until it is a valid
 * secret key (fails with probability ~2^-128, so counter is ~always absent). */
static void derive_secret(const char *seed, const char *label, uint32_t index,
                          uint8_t out[ALYS_SECKEY_LEN])
{
    uint8_t buf[sizeof KDF_TAG + ALYS_CHAINGEN_MAX_SEED + 1 + 16 + 4 + 1];
    size_t n = 0, sl = strnlen(seed, ALYS_CHAINGEN_MAX_SEED), ll = strlen(label);
    memcpy(buf + n, KDF_TAG, sizeof KDF_TAG);          /* includes the NUL */
    n += sizeof KDF_TAG;
    memcpy(buf + n, seed, sl);
    n += sl;
    buf[n++] = 0;
    memcpy(buf + n, label, ll);
    n += ll;
    buf[n++] = 0;
    for (int i = 0; i < 4; i++)
        buf[n++] = (uint8_t)(index >> (8 * i));
    alys_sha256(buf, n, out);
    for (uint8_t counter = 1; !secp256k1_ec_seckey_verify(cg_secp(), out); counter++) {
        buf[n] = counter;
        alys_sha256(buf, n + 1, out);
    }
}

typedef struct {
    const char           *seed;
    alys_chaingen_keys_t *k;
    secp256k1_keypair    *kp;      /* authorities then accounts, may be NULL */
    atomic_int            failed;
} derive_job_t;

static void derive_one(void *arg, size_t i)
{
    derive_job_t *j = arg;
    bool auth = i < j->k->authority_count;
    uint32_t idx = auth ? (uint32_t)i : (uint32_t)(i - j->k->authority_count);
    uint8_t *sec = auth ? j->k->authority_sec[idx] : j->k->account_sec[idx];
    uint8_t *pub = auth ? j->k->authority_pub[idx] : j->k->account_pub[idx];
    secp256k1_keypair local, *kp = j->kp ? &j->kp[i] : &local;
    secp256k1_xonly_pubkey x;
    derive_secret(j->seed, auth ? "authority" : "account", idx, sec);
    if (!secp256k1_keypair_create(cg_secp(), kp, sec) ||
        !secp256k1_keypair_xonly_pub(cg_secp(), &x, NULL, kp) ||
        !secp256k1_xonly_pubkey_serialize(cg_secp(), pub, &x))
        atomic_store(&j->failed, 1);
}

static int keys_alloc(alys_chaingen_keys_t *k, uint32_t authorities, uint32_t accounts)
{
    memset(k, 0, sizeof *k);
    k->authority_count = authorities;
    k->account_count = accounts;
    k->authority_sec = calloc(authorities ? authorities : 1, ALYS_SECKEY_LEN);
    k->authority_pub = calloc(authorities ? authorities : 1, ALYS_PUBKEY_LEN);
    k->account_sec = calloc(accounts ? accounts : 1, ALYS_SECKEY_LEN);
    k->account_pub = calloc(accounts ? accounts : 1, ALYS_PUBKEY_LEN);
    if (!k->authority_sec || !k->authority_pub || !k->account_sec || !k->account_pub) {
        alys_chaingen_keys_clear(k);
        return -1;
    }
    return 0;
}

int cg_keys_derive(const char *seed, uint32_t authorities, uint32_t accounts,
                   uint32_t threads, alys_chaingen_keys_t *out, secp256k1_keypair *kp)
{
    if (!cg_secp() || keys_alloc(out, authorities, accounts) != 0)
        return -1;
    derive_job_t j = { .seed = seed, .k = out, .kp = kp };
    atomic_init(&j.failed, 0);
    cg_parallel_for((size_t)authorities + accounts, threads, derive_one, &j);
    if (atomic_load(&j.failed)) {
        alys_chaingen_keys_clear(out);
        return -1;
    }
    return 0;
}

int alys_chaingen_keys_derive(const char *seed, uint32_t authorities, uint32_t accounts,
                              alys_chaingen_keys_t *out)
{
    return cg_keys_derive(seed, authorities, accounts, cg_online_cpus(), out, NULL);
}

void alys_chaingen_keys_clear(alys_chaingen_keys_t *k)
{
    if (!k)
        return;
    /* secret keys: wipe before free (explicit_bzero: a plain memset before
     * free may be optimised away), they sign for the chain */
    if (k->authority_sec)
        explicit_bzero(k->authority_sec, (size_t)k->authority_count * ALYS_SECKEY_LEN);
    if (k->account_sec)
        explicit_bzero(k->account_sec, (size_t)k->account_count * ALYS_SECKEY_LEN);
    free(k->authority_sec);
    free(k->authority_pub);
    free(k->account_sec);
    free(k->account_pub);
    memset(k, 0, sizeof *k);
}

const uint8_t *alys_chaingen_keys_secret(const alys_chaingen_keys_t *k,
                                         const uint8_t pubkey[ALYS_PUBKEY_LEN])
{
    for (uint32_t i = 0; i < k->authority_count; i++)
        if (memcmp(k->authority_pub[i], pubkey, ALYS_PUBKEY_LEN) == 0)
            return k->authority_sec[i];
    for (uint32_t i = 0; i < k->account_count; i++)
        if (memcmp(k->account_pub[i], pubkey, ALYS_PUBKEY_LEN) == 0)
            return k->account_sec[i];
    return NULL;
}

