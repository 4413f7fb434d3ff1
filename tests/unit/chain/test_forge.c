/*  test_forge.c: the block-forging library's keys and threads
 *  (common/forge): derivation by the documented formula on any thread
 *  count, the keys file alys-chaingen writes and alys-faultproxy reads, and
 *  the fork-join. The fault kinds themselves are tested over generated
 *  chains in test_chaingen.c. */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "forge/keys.h"
#include "forge/par.h"

static char s_dir[64];
static char s_path[96];

static void setup(void)
{
    snprintf(s_dir, sizeof s_dir, "/tmp/alys-forge-XXXXXX");
    cr_assert_not_null(mkdtemp(s_dir));
    snprintf(s_path, sizeof s_path, "%s/keys", s_dir);
}

static void teardown(void)
{
    (void) unlink(s_path);
    (void) rmdir(s_dir);
}

TestSuite(forge, .init = setup, .fini = teardown);

static void write_text(const char *text)
{
    FILE *f = fopen(s_path, "w");
    cr_assert_not_null(f);
    cr_assert_eq(fputs(text, f) >= 0, true);
    cr_assert_eq(fclose(f), 0);
}

static bool all_zero(const void *p, size_t n)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++)
        if (b[i])
            return false;
    return true;
}

/* ---- derivation */

/* keys.h: SHA-256("alys-chaingen/v1" 0 seed 0 label 0 index-u32le), here
 * laid out by hand (with a valid key on the first try, as for ~all seeds). */
static void documented_secret(const char *seed, const char *label, uint32_t index,
                              uint8_t out[ALYS_SECKEY_LEN])
{
    uint8_t buf[128];
    size_t n = 0;
    memcpy(buf, "alys-chaingen/v1", 17);
    n += 17;
    memcpy(buf + n, seed, strlen(seed) + 1);
    n += strlen(seed) + 1;
    memcpy(buf + n, label, strlen(label) + 1);
    n += strlen(label) + 1;
    for (int i = 0; i < 4; i++)
        buf[n++] = (uint8_t) (index >> (8 * i));
    alys_sha256(buf, n, out);
}

Test(forge, keys_follow_the_documented_derivation)
{
    alys_forge_keys_t k;
    cr_assert_eq(alys_forge_keys_derive("forge-seed", 3, 2, &k), 0);
    cr_assert_eq(k.authority_count, 3);
    cr_assert_eq(k.account_count, 2);
    uint8_t want[ALYS_SECKEY_LEN], pub[ALYS_PUBKEY_LEN];
    for (uint32_t i = 0; i < 3; i++) {
        documented_secret("forge-seed", "authority", i, want);
        cr_expect_eq(memcmp(k.authority_sec[i], want, ALYS_SECKEY_LEN), 0, "authority %u", i);
        cr_assert_eq(alys_keypair_pubkey(want, pub), 0);
        cr_expect_eq(memcmp(k.authority_pub[i], pub, ALYS_PUBKEY_LEN), 0);
    }
    for (uint32_t i = 0; i < 2; i++) {
        documented_secret("forge-seed", "account", i, want);
        cr_expect_eq(memcmp(k.account_sec[i], want, ALYS_SECKEY_LEN), 0, "account %u", i);
    }
    alys_forge_keys_clear(&k);
}

Test(forge, keys_are_the_same_on_any_thread_count)
{
    enum { F = 5, A = 40 };
    alys_forge_keys_t one, many;
    secp256k1_keypair kp1[F + A], kp8[F + A];
    cr_assert_eq(alys_forge_keys_derive_par("threads", F, A, 1, &one, kp1), 0);
    cr_assert_eq(alys_forge_keys_derive_par("threads", F, A, 8, &many, kp8), 0);
    cr_expect_eq(memcmp(one.authority_sec, many.authority_sec, F * ALYS_SECKEY_LEN), 0);
    cr_expect_eq(memcmp(one.account_pub, many.account_pub, A * ALYS_PUBKEY_LEN), 0);
    cr_expect_eq(memcmp(kp1, kp8, sizeof kp1), 0, "the signing key pairs differ");
    alys_forge_keys_clear(&one);
    alys_forge_keys_clear(&many);
}

Test(forge, clear_leaves_an_empty_value)
{
    alys_forge_keys_t k;
    cr_assert_eq(alys_forge_keys_derive("c", 1, 1, &k), 0);
    alys_forge_keys_clear(&k);
    cr_expect(all_zero(&k, sizeof k));
    alys_forge_keys_clear(&k); /* twice is harmless */
    alys_forge_keys_clear(NULL);
}

/* ---- keys file */

Test(forge, keys_file_round_trips_the_authorities_in_order)
{
    alys_forge_keys_t k, got;
    char err[256] = "";
    cr_assert_eq(alys_forge_keys_derive("file", 4, 3, &k), 0);
    cr_assert_eq(alys_forge_keys_save(s_path, &k, err, sizeof err), 0, "%s", err);
    cr_assert_eq(alys_forge_keys_load(s_path, &got, err, sizeof err), 0, "%s", err);
    cr_expect_eq(got.authority_count, 4);
    cr_expect_eq(got.account_count, 0, "the file holds the authorities only");
    for (uint32_t i = 0; i < 4; i++) {
        cr_expect_eq(memcmp(got.authority_sec[i], k.authority_sec[i], ALYS_SECKEY_LEN), 0);
        cr_expect_eq(memcmp(got.authority_pub[i], k.authority_pub[i], ALYS_PUBKEY_LEN), 0);
    }
    cr_expect_eq(alys_forge_keys_secret(&got, k.authority_pub[2]), got.authority_sec[2]);
    alys_forge_keys_clear(&got);
    alys_forge_keys_clear(&k);
}

Test(forge, keys_file_is_private_even_over_an_existing_file)
{
    int fd = open(s_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    cr_assert(fd >= 0);
    cr_assert_eq(fchmod(fd, 0644), 0);
    cr_assert_eq(close(fd), 0);
    alys_forge_keys_t k;
    char err[256] = "";
    cr_assert_eq(alys_forge_keys_derive("mode", 1, 0, &k), 0);
    cr_assert_eq(alys_forge_keys_save(s_path, &k, err, sizeof err), 0, "%s", err);
    struct stat st;
    cr_assert_eq(stat(s_path, &st), 0);
    cr_expect_eq(st.st_mode & 0777, 0600, "mode %o", (unsigned) (st.st_mode & 0777));
    alys_forge_keys_clear(&k);
}

Test(forge, keys_file_save_reports_an_unwritable_path)
{
    alys_forge_keys_t k;
    char err[256] = "";
    cr_assert_eq(alys_forge_keys_derive("nowhere", 1, 0, &k), 0);
    cr_expect_eq(alys_forge_keys_save("/nonexistent-dir/keys", &k, err, sizeof err), -1);
    cr_expect(strstr(err, "/nonexistent-dir/keys"), "%s", err);
    alys_forge_keys_clear(&k);
}

static void expect_load_error(const char *want)
{
    alys_forge_keys_t got;
    char err[256] = "";
    cr_assert_eq(alys_forge_keys_load(s_path, &got, err, sizeof err), -1, "accepted; want '%s'", want);
    cr_expect(strstr(err, want), "got '%s', want '%s'", err, want);
    cr_expect(all_zero(&got, sizeof got), "a refused file leaves nothing behind");
}

Test(forge, keys_file_load_names_what_is_wrong)
{
    write_text("not-a-key\n");
    expect_load_error("line 1 is not a 64-hex-digit key");

    char zero[2 * ALYS_SECKEY_LEN + 2];
    memset(zero, '0', 2 * ALYS_SECKEY_LEN);
    zero[2 * ALYS_SECKEY_LEN] = '\n';
    zero[2 * ALYS_SECKEY_LEN + 1] = '\0';
    write_text(zero); /* 64 hex digits, but 0 is no secret key */
    expect_load_error("key 1 is not a valid secret key");

    write_text("\n\n");
    expect_load_error("holds no key");

    (void) unlink(s_path);
    alys_forge_keys_t got;
    char err[256] = "";
    cr_expect_eq(alys_forge_keys_load(s_path, &got, err, sizeof err), -1, "a missing file");
    cr_expect_neq(err[0], '\0');
}

Test(forge, keys_file_load_stops_at_the_authority_bound)
{
    alys_forge_keys_t k;
    char err[256] = "";
    cr_assert_eq(alys_forge_keys_derive("bound", ALYS_MAX_AUTHORITIES + 1, 0, &k), 0);
    cr_assert_eq(alys_forge_keys_save(s_path, &k, err, sizeof err), 0, "%s", err);
    alys_forge_keys_clear(&k);
    char want[64];
    snprintf(want, sizeof want, "line %d is not", ALYS_MAX_AUTHORITIES + 1);
    expect_load_error(want);
}

/* ---- fork-join */

typedef struct {
    atomic_int hits[1000];
} hits_t;

static void hit(void *ctx, size_t i)
{
    hits_t *h = ctx;
    atomic_fetch_add(&h->hits[i], 1);
}

Test(forge, parallel_for_runs_every_item_exactly_once)
{
    static const uint32_t threads[] = {0, 1, 3, ALYS_FORGE_MAX_THREADS + 10};
    for (size_t t = 0; t < sizeof threads / sizeof threads[0]; t++) {
        hits_t *h = calloc(1, sizeof *h);
        cr_assert_not_null(h);
        alys_forge_parallel_for(1000, threads[t], hit, h);
        for (size_t i = 0; i < 1000; i++)
            cr_assert_eq(atomic_load(&h->hits[i]), 1, "threads %u: item %zu ran %d times",
                         threads[t], i, atomic_load(&h->hits[i]));
        alys_forge_parallel_for(0, threads[t], hit, h); /* no item, no call */
        free(h);
    }
    uint32_t cpus = alys_forge_online_cpus();
    cr_expect(cpus >= 1 && cpus <= ALYS_FORGE_MAX_THREADS, "%u", cpus);
}
