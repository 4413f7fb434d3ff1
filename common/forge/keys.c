/*  forge/keys.c: see keys.h. */
#include "forge/keys.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "forge/par.h"
#include "util.h"

#define KDF_TAG "alys-chaingen/v1"

/* ================================================================ context */

/* One secp256k1 context for all signing threads: signing only reads it. Not
 * randomized: these keys come from a public seed, blinding protects nothing.
 * A process-wide once-initialised value (libsecp256k1 contexts are meant to
 * be shared); it lives as long as the process. */
static secp256k1_context *s_ctx;
static pthread_once_t s_ctx_once = PTHREAD_ONCE_INIT;

static void ctx_init(void)
{
    s_ctx = secp256k1_context_create(SECP256K1_CONTEXT_NONE);
}

const secp256k1_context *alys_forge_secp(void)
{
    (void) pthread_once(&s_ctx_once, ctx_init);
    return s_ctx;
}

/* ================================================================ derivation */

/* SHA-256(tag 0 seed 0 label 0 index-u32le [counter]) until it is a valid
 * secret key (fails with probability ~2^-128, so counter is ~always absent). */
static void derive_secret(const char *seed, const char *label, uint32_t index,
                          uint8_t out[ALYS_SECKEY_LEN])
{
    uint8_t buf[sizeof KDF_TAG + ALYS_FORGE_MAX_SEED + 1 + 16 + 4 + 1];
    size_t n = 0, sl = strnlen(seed, ALYS_FORGE_MAX_SEED), ll = strnlen(label, 16);
    memcpy(buf + n, KDF_TAG, sizeof KDF_TAG); /* includes the NUL */
    n += sizeof KDF_TAG;
    memcpy(buf + n, seed, sl);
    n += sl;
    buf[n++] = 0;
    memcpy(buf + n, label, ll);
    n += ll;
    buf[n++] = 0;
    for (int i = 0; i < 4; i++)
        buf[n++] = (uint8_t) (index >> (8 * i));
    alys_sha256(buf, n, out);
    for (uint8_t counter = 1; !secp256k1_ec_seckey_verify(alys_forge_secp(), out); counter++) {
        buf[n] = counter;
        alys_sha256(buf, n + 1, out);
    }
    explicit_bzero(buf, sizeof buf);
}

typedef struct {
    const char *seed;
    alys_forge_keys_t *k;
    secp256k1_keypair *kp; /* authorities then accounts, may be NULL */
    atomic_int failed;
} derive_job_t;

static void derive_one(void *arg, size_t i)
{
    derive_job_t *j = arg;
    bool auth = i < j->k->authority_count;
    uint32_t idx = auth ? (uint32_t) i : (uint32_t) (i - j->k->authority_count);
    uint8_t *sec = auth ? j->k->authority_sec[idx] : j->k->account_sec[idx];
    uint8_t *pub = auth ? j->k->authority_pub[idx] : j->k->account_pub[idx];
    secp256k1_keypair local, *kp = j->kp ? &j->kp[i] : &local;
    secp256k1_xonly_pubkey x;
    derive_secret(j->seed, auth ? "authority" : "account", idx, sec);
    if (!secp256k1_keypair_create(alys_forge_secp(), kp, sec) ||
        !secp256k1_keypair_xonly_pub(alys_forge_secp(), &x, NULL, kp) ||
        !secp256k1_xonly_pubkey_serialize(alys_forge_secp(), pub, &x))
        atomic_store(&j->failed, 1);
    if (kp == &local)
        explicit_bzero(&local, sizeof local);
}

static int keys_alloc(alys_forge_keys_t *k, uint32_t authorities, uint32_t accounts)
{
    memset(k, 0, sizeof *k);
    k->authority_count = authorities;
    k->account_count = accounts;
    k->authority_sec = calloc(authorities ? authorities : 1, ALYS_SECKEY_LEN);
    k->authority_pub = calloc(authorities ? authorities : 1, ALYS_PUBKEY_LEN);
    k->account_sec = calloc(accounts ? accounts : 1, ALYS_SECKEY_LEN);
    k->account_pub = calloc(accounts ? accounts : 1, ALYS_PUBKEY_LEN);
    if (!k->authority_sec || !k->authority_pub || !k->account_sec || !k->account_pub) {
        alys_forge_keys_clear(k);
        return -1;
    }
    return 0;
}

int alys_forge_keys_derive_par(const char *seed, uint32_t authorities, uint32_t accounts,
                               uint32_t threads, alys_forge_keys_t *out, secp256k1_keypair *kp)
{
    memset(out, 0, sizeof *out);
    if (!alys_forge_secp() || keys_alloc(out, authorities, accounts) != 0)
        return -1;
    derive_job_t j = {.seed = seed, .k = out, .kp = kp};
    atomic_init(&j.failed, 0);
    alys_forge_parallel_for((size_t) authorities + accounts, threads, derive_one, &j);
    if (atomic_load(&j.failed)) {
        alys_forge_keys_clear(out);
        return -1;
    }
    return 0;
}

int alys_forge_keys_derive(const char *seed, uint32_t authorities, uint32_t accounts,
                           alys_forge_keys_t *out)
{
    return alys_forge_keys_derive_par(seed, authorities, accounts, alys_forge_online_cpus(), out,
                                      NULL);
}

void alys_forge_keys_clear(alys_forge_keys_t *k)
{
    if (!k)
        return;
    /* secret keys: wipe before free (explicit_bzero: a plain memset before
     * free may be optimised away) */
    if (k->authority_sec)
        explicit_bzero(k->authority_sec, (size_t) k->authority_count * ALYS_SECKEY_LEN);
    if (k->account_sec)
        explicit_bzero(k->account_sec, (size_t) k->account_count * ALYS_SECKEY_LEN);
    free(k->authority_sec);
    free(k->authority_pub);
    free(k->account_sec);
    free(k->account_pub);
    memset(k, 0, sizeof *k);
}

const uint8_t *alys_forge_keys_secret(const alys_forge_keys_t *k,
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

/* ================================================================ keys file */

/* fchmod too: an existing file keeps its old mode through O_CREAT. */
int alys_forge_keys_save(const char *path, const alys_forge_keys_t *k, char *err, size_t errlen)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return alys_set_err(err, errlen, -1, "cannot write %s: %s", path, strerror(errno));
    int rc = fchmod(fd, 0600);
    for (uint32_t i = 0; rc == 0 && i < k->authority_count; i++) {
        char line[2 * ALYS_SECKEY_LEN + 2];
        alys_hex(k->authority_sec[i], ALYS_SECKEY_LEN, line);
        line[2 * ALYS_SECKEY_LEN] = '\n';
        if (write(fd, line, sizeof line - 1) != (ssize_t) (sizeof line - 1))
            rc = -1;
        explicit_bzero(line, sizeof line);
    }
    if (rc == 0)
        rc = fsync(fd);
    int saved = errno;
    if (close(fd) != 0 && rc == 0) {
        rc = -1;
        saved = errno;
    }
    if (rc != 0)
        return alys_set_err(err, errlen, -1, "cannot write %s: %s", path, strerror(saved));
    return 0;
}

/* One key per line (blank lines and spaces around keys ignored). */
static int parse_keys(const char *text, alys_forge_keys_t *k, char *err, size_t errlen)
{
    const char *p = text;
    while (*p) {
        while (*p == '\n' || *p == '\r' || *p == ' ')
            p++;
        if (!*p)
            break;
        char hex[2 * ALYS_SECKEY_LEN + 1];
        size_t n = strcspn(p, "\r\n ");
        if (n != 2 * ALYS_SECKEY_LEN || k->authority_count >= ALYS_MAX_AUTHORITIES)
            return alys_set_err(err, errlen, -1, "keys file: line %u is not a 64-hex-digit key",
                                k->authority_count + 1);
        memcpy(hex, p, n);
        hex[n] = '\0';
        uint32_t i = k->authority_count;
        int rc = alys_unhex(hex, k->authority_sec[i], ALYS_SECKEY_LEN) != 0 ||
                         alys_keypair_pubkey(k->authority_sec[i], k->authority_pub[i]) != 0
                     ? -1
                     : 0;
        explicit_bzero(hex, sizeof hex);
        if (rc != 0) {
            /* not counted, so alys_forge_keys_clear would not wipe it */
            explicit_bzero(k->authority_sec[i], ALYS_SECKEY_LEN);
            return alys_set_err(err, errlen, -1, "keys file: key %u is not a valid secret key", i + 1);
        }
        k->authority_count++;
        p += n;
    }
    return 0;
}

int alys_forge_keys_load(const char *path, alys_forge_keys_t *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    uint8_t *text = NULL;
    size_t len = 0;
    if (alys_read_file(path, ALYS_FORGE_KEYS_FILE_MAX, &text, &len, err, errlen) != 0)
        return -1;
    out->authority_sec = calloc(ALYS_MAX_AUTHORITIES, ALYS_SECKEY_LEN);
    out->authority_pub = calloc(ALYS_MAX_AUTHORITIES, ALYS_PUBKEY_LEN);
    int rc = out->authority_sec && out->authority_pub
                 ? parse_keys((const char *) text, out, err, errlen)
                 : alys_set_err(err, errlen, -1, "keys file %s: out of memory", path);
    explicit_bzero(text, len);
    free(text);
    if (rc == 0 && out->authority_count == 0)
        rc = alys_set_err(err, errlen, -1, "keys file %s holds no key", path);
    if (rc != 0)
        alys_forge_keys_clear(out);
    return rc;
}
