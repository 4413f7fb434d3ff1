/*  test_keyfile.c: the authority key file: accepted, and each refusal. */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "keyfile.h"
#include "mp_fixture.h"

static mpf_t f;
static char dir[64];
static char path[128];

static void setup(void)
{
    mpf_init(&f, 2, 100);
    snprintf(dir, sizeof dir, "/tmp/alys-keyfile-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/key", dir);
}

static void teardown(void)
{
    unlink(path);
    rmdir(dir);
    mpf_fini(&f);
}

TestSuite(keyfile, .init = setup, .fini = teardown);

static void write_file(const char *text, mode_t mode)
{
    unlink(path);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    cr_assert_geq(fd, 0);
    size_t n = strlen(text);
    cr_assert_eq(write(fd, text, n), (ssize_t) n);
    cr_assert_eq(fchmod(fd, mode), 0);
    close(fd);
}

static void write_key(const uint8_t sk[ALYS_SECKEY_LEN], const char *tail, mode_t mode)
{
    char text[2 * ALYS_SECKEY_LEN + 8];
    alys_hex(sk, ALYS_SECKEY_LEN, text);
    strcat(text, tail);
    write_file(text, mode);
}

Test(keyfile, an_authority_key_gives_its_index)
{
    write_key(f.keys.authority_sec[2], "\n", 0600);
    uint8_t sk[ALYS_SECKEY_LEN];
    char err[256] = "";
    cr_assert_eq(keyfile_load(path, &f.g, sk, err, sizeof err), 2, "%s", err);
    cr_assert_eq(memcmp(sk, f.keys.authority_sec[2], ALYS_SECKEY_LEN), 0);
}

Test(keyfile, no_newline_and_crlf_are_accepted)
{
    uint8_t sk[ALYS_SECKEY_LEN];
    char err[256] = "";
    write_key(f.keys.authority_sec[0], "", 0400);
    cr_assert_eq(keyfile_load(path, &f.g, sk, err, sizeof err), 0, "%s", err);
    write_key(f.keys.authority_sec[1], "\r\n", 0600);
    cr_assert_eq(keyfile_load(path, &f.g, sk, err, sizeof err), 1, "%s", err);
}

Test(keyfile, a_file_group_or_others_may_read_is_refused)
{
    uint8_t sk[ALYS_SECKEY_LEN];
    char err[256] = "";
    write_key(f.keys.authority_sec[0], "\n", 0640);
    cr_assert_eq(keyfile_load(path, &f.g, sk, err, sizeof err), -1);
    cr_assert(strstr(err, "mode 0640"), "%s", err);
    write_key(f.keys.authority_sec[0], "\n", 0604);
    cr_assert_eq(keyfile_load(path, &f.g, sk, err, sizeof err), -1);
    cr_assert(strstr(err, "chmod 600"), "%s", err);
}

Test(keyfile, a_key_not_among_the_authorities_is_refused)
{
    uint8_t sk[ALYS_SECKEY_LEN];
    char err[256] = "";
    write_key(f.keys.account_sec[0], "\n", 0600);
    cr_assert_eq(keyfile_load(path, &f.g, sk, err, sizeof err), -1);
    cr_assert(strstr(err, "not one of the genesis' 3 authorities"), "%s", err);
    uint8_t zero[ALYS_SECKEY_LEN] = {0};
    cr_assert_eq(memcmp(sk, zero, ALYS_SECKEY_LEN), 0, "the refused secret is wiped");
}

Test(keyfile, text_that_is_not_64_hex_digits_is_refused)
{
    uint8_t sk[ALYS_SECKEY_LEN];
    char err[256] = "";
    write_file("zz00000000000000000000000000000000000000000000000000000000000000\n", 0600);
    cr_assert_eq(keyfile_load(path, &f.g, sk, err, sizeof err), -1);
    cr_assert(strstr(err, "64 hex digits"), "%s", err);
    write_file("0123\n", 0600);
    cr_assert_eq(keyfile_load(path, &f.g, sk, err, sizeof err), -1);
    cr_assert(strstr(err, "64 hex digits"), "%s", err);
}

Test(keyfile, an_invalid_secret_is_refused)
{
    uint8_t sk[ALYS_SECKEY_LEN];
    char err[256] = "";
    write_file("0000000000000000000000000000000000000000000000000000000000000000\n", 0600);
    cr_assert_eq(keyfile_load(path, &f.g, sk, err, sizeof err), -1);
    cr_assert(strstr(err, "secp256k1"), "%s", err);
}

Test(keyfile, a_large_file_is_refused_before_parsing)
{
    char big[KEYFILE_MAX + 16];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    write_file(big, 0600);
    uint8_t sk[ALYS_SECKEY_LEN];
    char err[256] = "";
    cr_assert_eq(keyfile_load(path, &f.g, sk, err, sizeof err), -1);
    cr_assert(strstr(err, "larger"), "%s", err);
}

Test(keyfile, a_missing_file_names_the_path)
{
    uint8_t sk[ALYS_SECKEY_LEN];
    char err[256] = "";
    cr_assert_eq(keyfile_load("/nonexistent/alys-key", &f.g, sk, err, sizeof err), -1);
    cr_assert(strstr(err, "/nonexistent/alys-key"), "%s", err);
}
