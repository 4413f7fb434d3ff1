/* common/nodekey: the node key file in a temporary directory: created once
 * with mode 0600 and kept; loaded back to the same key; refused when open to
 * group or others, malformed, oversized, or not matching its public key;
 * and the key text forms (hex, z85). */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "nodekey.h"

static char s_dir[64];
static char s_path[128];

static void setup(void)
{
    snprintf(s_dir, sizeof s_dir, "/tmp/alys-nodekey-XXXXXX");
    cr_assert_not_null(mkdtemp(s_dir));
    snprintf(s_path, sizeof s_path, "%s/node.key", s_dir);
}

static void teardown(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", s_dir);
    cr_expect_eq(system(cmd), 0);
}

TestSuite(nodekey, .init = setup, .fini = teardown);

static void write_file(const char *text, mode_t mode)
{
    int fd = open(s_path, O_WRONLY | O_CREAT | O_TRUNC, mode);
    cr_assert_geq(fd, 0);
    cr_assert_eq(write(fd, text, strlen(text)), (ssize_t) strlen(text));
    cr_assert_eq(fchmod(fd, mode), 0);
    close(fd);
}

Test(nodekey, first_open_creates_a_0600_file_and_the_second_loads_the_same_key)
{
    char err[256] = "";
    bool created = false;
    alys_nodekey_t *a = alys_nodekey_open(s_path, &created, err, sizeof err);
    cr_assert_not_null(a, "%s", err);
    cr_expect(created);
    struct stat st;
    cr_assert_eq(stat(s_path, &st), 0);
    cr_expect_eq(st.st_mode & 0777, 0600);
    alys_nodekey_t *b = alys_nodekey_open(s_path, &created, err, sizeof err);
    cr_assert_not_null(b, "%s", err);
    cr_expect(!created, "an existing key is kept");
    cr_expect_str_eq(alys_nodekey_public_hex(a), alys_nodekey_public_hex(b));
    cr_expect_arr_eq(alys_nodekey_secret(a), alys_nodekey_secret(b), ALYS_KEY_LEN);
    cr_expect(alys_key_is_hex(alys_nodekey_public_hex(a)));
    alys_nodekey_destroy(&a);
    alys_nodekey_destroy(&b);
    cr_expect_null(b);
}

Test(nodekey, open_makes_a_missing_directory)
{
    char deep[160], err[256] = "";
    snprintf(deep, sizeof deep, "%s/data/sub/node.key", s_dir);
    alys_nodekey_t *k = alys_nodekey_open(deep, NULL, err, sizeof err);
    cr_expect_not_null(k, "%s", err);
    alys_nodekey_destroy(&k);
}

Test(nodekey, save_refuses_to_replace_an_existing_key)
{
    char err[256] = "";
    alys_nodekey_t *a = alys_nodekey_new(), *b = alys_nodekey_new();
    cr_assert(a && b);
    cr_expect_str_neq(alys_nodekey_public_hex(a), alys_nodekey_public_hex(b));
    cr_assert_eq(alys_nodekey_save(a, s_path, err, sizeof err), 0, "%s", err);
    cr_expect_neq(alys_nodekey_save(b, s_path, err, sizeof err), 0);
    alys_nodekey_t *c = alys_nodekey_load(s_path, err, sizeof err);
    cr_assert_not_null(c, "%s", err);
    cr_expect_str_eq(alys_nodekey_public_hex(c), alys_nodekey_public_hex(a));
    alys_nodekey_destroy(&a);
    alys_nodekey_destroy(&b);
    alys_nodekey_destroy(&c);
}

Test(nodekey, a_file_open_to_group_or_others_is_refused_with_its_mode)
{
    char err[256] = "";
    alys_nodekey_t *a = alys_nodekey_open(s_path, NULL, err, sizeof err);
    cr_assert_not_null(a);
    alys_nodekey_destroy(&a);
    const mode_t bad[] = {0640, 0604, 0620, 0602, 0644};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cr_assert_eq(chmod(s_path, bad[i]), 0);
        err[0] = '\0';
        cr_expect_null(alys_nodekey_open(s_path, NULL, err, sizeof err), "mode %o", bad[i]);
        cr_expect_not_null(strstr(err, "group or others"), "%s", err);
    }
    cr_assert_eq(chmod(s_path, 0400), 0);
    alys_nodekey_t *b = alys_nodekey_load(s_path, err, sizeof err);
    cr_expect_not_null(b, "read-only for the owner is fine: %s", err);
    alys_nodekey_destroy(&b);
}

Test(nodekey, malformed_files_are_refused_and_never_replaced)
{
    const char *bad[] = {
        "",
        "# only a comment\n",
        "secret-key = \"tooshort\"\n",
        "secret-key = JTKVSB%%)wK0E.X)V>+}o?pNmC{O&4W4b!Ni{Lh6\n",      /* no quotes */
        "secret-key = \"JTKVSB%%)wK0E.X)V>+}o?pNmC{O&4W4b!Ni{Lh~\"\n",  /* '~' not z85 */
        "secret-key = \"#####JTKVSB%%)wK0E.X)V>+}o?pNmC{O&4W4b!Ni\"\n", /* group > 2^32 */
        "secret-key = \"JTKVSB%%)wK0E.X)V>+}o?pNmC{O&4W4b!Ni{Lh6\"\nbogus = \"1\"\n",
        "secret-key = \"JTKVSB%%)wK0E.X)V>+}o?pNmC{O&4W4b!Ni{Lh6\"\n"
        "secret-key = \"JTKVSB%%)wK0E.X)V>+}o?pNmC{O&4W4b!Ni{Lh6\"\n", /* repeated */
        "public-key = \""
        "0000000000000000000000000000000000000000000000000000000000000000"
        "\"\nsecret-key = \"JTKVSB%%)wK0E.X)V>+}o?pNmC{O&4W4b!Ni{Lh6\"\n", /* mismatch */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        write_file(bad[i], 0600);
        char err[256] = "";
        cr_expect_null(alys_nodekey_open(s_path, NULL, err, sizeof err), "case %zu", i);
        cr_expect_not_null(strstr(err, "malformed"), "case %zu: %s", i, err);
        struct stat st;
        cr_expect_eq(stat(s_path, &st), 0);
        cr_expect_eq((size_t) st.st_size, strlen(bad[i]), "case %zu: the file is left alone", i);
    }
}

Test(nodekey, an_oversized_or_binary_file_is_refused)
{
    char *big = malloc(ALYS_NODEKEY_FILE_MAX + 2);
    cr_assert_not_null(big);
    memset(big, '#', ALYS_NODEKEY_FILE_MAX + 1);
    big[ALYS_NODEKEY_FILE_MAX + 1] = '\0';
    write_file(big, 0600);
    free(big);
    char err[256] = "";
    cr_expect_null(alys_nodekey_load(s_path, err, sizeof err));
    cr_expect_not_null(strstr(err, "bytes"), "%s", err);
    int fd = open(s_path, O_WRONLY | O_TRUNC);
    cr_assert_geq(fd, 0);
    cr_assert_eq(write(fd, "a\0b", 3), 3);
    close(fd);
    cr_expect_null(alys_nodekey_load(s_path, err, sizeof err));
}

Test(nodekey, a_hand_written_file_without_public_key_loads)
{
    /* secret key of the libzmq test vectors; the public key is derived */
    write_file("# comment\n\n  secret-key = \"D:)Q[IlAW!ahhC2ac:9*A}h:p?([4%wOTJ%JR%cs\"  \n", 0600);
    char err[256] = "";
    alys_nodekey_t *k = alys_nodekey_load(s_path, err, sizeof err);
    cr_assert_not_null(k, "%s", err);
    uint8_t pub[ALYS_KEY_LEN];
    cr_assert_eq(alys_key_parse("Yne@$w-vo<fVvi]a<NY6T1ed:M$fCG*[IaLV{hID", 40, pub), 0);
    cr_expect_arr_eq(alys_nodekey_public(k), pub, ALYS_KEY_LEN);
    alys_nodekey_destroy(&k);
}

Test(nodekey, a_missing_file_or_a_directory_is_an_error_for_load)
{
    char err[256] = "";
    cr_expect_null(alys_nodekey_load(s_path, err, sizeof err));
    cr_expect_null(alys_nodekey_load(s_dir, err, sizeof err));
}

Test(nodekey, key_text_hex_and_z85_agree_and_bad_forms_fail)
{
    uint8_t a[ALYS_KEY_LEN], b[ALYS_KEY_LEN];
    /* libzmq's test vector: z85 and the same bytes in hex */
    cr_assert_eq(alys_key_parse("Yne@$w-vo<fVvi]a<NY6T1ed:M$fCG*[IaLV{hID", 40, a), 0);
    char hex[ALYS_KEY_HEX_LEN + 1];
    alys_key_hex(a, hex);
    cr_expect(alys_key_is_hex(hex));
    cr_assert_eq(alys_key_parse(hex, strlen(hex), b), 0);
    cr_expect_arr_eq(a, b, ALYS_KEY_LEN);
    cr_expect_str_eq(hex, "bb88471d65e2659b30c55a5321cebb5aab2b70a398645c26dca2b2fcb43fc518");
    for (size_t i = 0; hex[i]; i++)
        hex[i] = (char) (hex[i] >= 'a' ? hex[i] - 32 : hex[i]);
    cr_expect_eq(alys_key_parse(hex, strlen(hex), b), 0, "upper case hex is accepted");
    cr_expect(!alys_key_is_hex(hex), "but is not canonical");
    cr_expect_neq(alys_key_parse(hex, 63, b), 0);
    cr_expect_neq(alys_key_parse("Yne@$w-vo<fVvi]a<NY6T1ed:M$fCG*[IaLV{hI", 39, b), 0);
    cr_expect_neq(alys_key_parse("Yne@$w-vo<fVvi]a<NY6T1ed:M$fCG*[IaLV{hI\"", 40, b), 0);
    cr_expect_neq(alys_key_parse("g0000000000000000000000000000000000000000000000000000000000000000",
                                 64, b),
                  0);
    cr_expect_neq(alys_key_parse(NULL, 64, b), 0);
}

Test(nodekey, path_under_data_dir)
{
    char out[64];
    cr_expect_eq(alys_nodekey_path("/var/lib/alys", out, sizeof out), 0);
    cr_expect_str_eq(out, "/var/lib/alys/node.key");
    char tiny[8];
    cr_expect_neq(alys_nodekey_path("/var/lib/alys", tiny, sizeof tiny), 0);
}
