/* common/nodeaddr: alys://<key>@host:port endpoints: good forms (hex and z85
 * keys, names, IPv4, IPv6) parse to one canonical text; bad ones (schemes,
 * keys, hosts, ports, hostile lengths) are refused. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "nodeaddr.h"

#define HEX "bb88471d65e2659b30c55a5321cebb5aab2b70a398645c26dca2b2fcb43fc518"
#define Z85 "Yne@$w-vo<fVvi]a<NY6T1ed:M$fCG*[IaLV{hID"

Test(nodeaddr, hex_and_z85_forms_give_one_canonical_text)
{
    char a[ALYS_ENDPOINT_MAX], b[ALYS_ENDPOINT_MAX];
    cr_assert_eq(alys_nodeaddr_canonical("alys://" HEX "@127.0.0.1:30303", a, sizeof a), 0);
    cr_assert_eq(alys_nodeaddr_canonical("alys://" Z85 "@127.0.0.1:30303", b, sizeof b), 0);
    cr_expect_str_eq(a, "alys://" HEX "@127.0.0.1:30303");
    cr_expect_str_eq(a, b, "z85 (which holds '@' and ':') reads as the same key");
    alys_nodeaddr_t n;
    cr_assert_eq(alys_nodeaddr_parse(a, &n), 0);
    cr_expect_str_eq(n.host, "127.0.0.1");
    cr_expect_eq(n.port, 30303);
    char tcp[64];
    cr_assert_eq(alys_nodeaddr_tcp(&n, tcp, sizeof tcp), 0);
    cr_expect_str_eq(tcp, "tcp://127.0.0.1:30303");
    char hex[ALYS_KEY_HEX_LEN + 1];
    cr_assert_eq(alys_nodeaddr_key_hex(b, hex, sizeof hex), 0);
    cr_expect_str_eq(hex, HEX);
}

Test(nodeaddr, names_and_ipv6_hosts)
{
    char out[ALYS_ENDPOINT_MAX];
    cr_expect_eq(alys_nodeaddr_canonical("alys://" HEX "@node-1.example.org:1", out, sizeof out), 0);
    cr_expect_eq(alys_nodeaddr_canonical("alys://" HEX "@[::1]:65535", out, sizeof out), 0);
    cr_expect_str_eq(out, "alys://" HEX "@[::1]:65535");
    alys_nodeaddr_t n;
    cr_assert_eq(alys_nodeaddr_parse(out, &n), 0);
    char tcp[64];
    cr_assert_eq(alys_nodeaddr_tcp(&n, tcp, sizeof tcp), 0);
    cr_expect_str_eq(tcp, "tcp://[::1]:65535");
}

Test(nodeaddr, bad_inputs_are_refused)
{
    const char *bad[] = {
        NULL,
        "",
        "alys://",
        "tcp://127.0.0.1:30303",
        "ALYS://" HEX "@127.0.0.1:30303",
        "alys://@127.0.0.1:30303",
        "alys://" HEX "127.0.0.1:30303",
        "alys://" HEX "@127.0.0.1",
        "alys://" HEX "@127.0.0.1:",
        "alys://" HEX "@:30303",
        "alys://" HEX "@127.0.0.1:0",
        "alys://" HEX "@127.0.0.1:65536",
        "alys://" HEX "@127.0.0.1:030303",
        "alys://" HEX "@127.0.0.1:+1",
        "alys://" HEX "@127.0.0.1:3a",
        "alys://" HEX "@*:30303",
        "alys://" HEX "@a b:30303",
        "alys://" HEX "@a\"b:30303",
        "alys://" HEX "@[::1:30303",
        "alys://" HEX "@[]:30303",
        "alys://" HEX "@[::g]:30303",
        "alys://" HEX "0@127.0.0.1:30303",
        "alys://" HEX "@127.0.0.1:30303@x",
        "alys://g" HEX "@127.0.0.1:30303",
        "alys://" Z85 "x@127.0.0.1:30303",
        "alys://" HEX "@127.0.0.1:30303 ",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        alys_nodeaddr_t n;
        cr_expect_neq(alys_nodeaddr_parse(bad[i], &n), 0, "case %zu: %s", i, bad[i] ? bad[i] : "NULL");
        cr_expect(!alys_nodeaddr_valid(bad[i]), "case %zu", i);
    }
}

Test(nodeaddr, hostile_lengths_are_refused_without_overrun)
{
    static char text[8192];
    /* a host that fills the buffer and more */
    int n = snprintf(text, sizeof text, "alys://" HEX "@");
    memset(text + n, 'a', sizeof text - (size_t) n - 8);
    snprintf(text + sizeof text - 8, 8, ":30303");
    alys_nodeaddr_t a;
    cr_expect_neq(alys_nodeaddr_parse(text, &a), 0);
    /* the longest text that is still an endpoint: under ALYS_ENDPOINT_MAX */
    memset(text, 0, sizeof text);
    n = snprintf(text, sizeof text, "alys://" HEX "@");
    size_t host = ALYS_ENDPOINT_MAX - 1 - (size_t) n - 6;
    memset(text + n, 'b', host);
    snprintf(text + (size_t) n + host, 8, ":30303");
    cr_assert_eq(strlen(text), ALYS_ENDPOINT_MAX - 1);
    cr_expect_eq(alys_nodeaddr_parse(text, &a), 0);
    char out[ALYS_ENDPOINT_MAX];
    cr_expect_eq(alys_nodeaddr_canonical(text, out, sizeof out), 0);
    cr_expect_str_eq(out, text);
    char small[32];
    cr_expect_neq(alys_nodeaddr_canonical(text, small, sizeof small), 0, "too small to hold it");
    /* one more byte is over the bound */
    text[strlen(text) - 6] = 'b';
    snprintf(text + ALYS_ENDPOINT_MAX - 6, 8, ":30303");
    cr_expect_neq(alys_nodeaddr_parse(text, &a), 0);
    /* a key of hostile length */
    memset(text, 0, sizeof text);
    n = snprintf(text, sizeof text, "alys://");
    memset(text + n, 'f', 200);
    snprintf(text + n + 200, 32, "@127.0.0.1:30303");
    cr_expect_neq(alys_nodeaddr_parse(text, &a), 0);
}

Test(nodeaddr, our_endpoint_from_listen)
{
    uint8_t key[ALYS_KEY_LEN];
    cr_assert_eq(alys_key_parse(HEX, 64, key), 0);
    char out[ALYS_ENDPOINT_MAX];
    cr_assert_eq(alys_nodeaddr_from_listen(key, "tcp://10.0.0.2:30303", out, sizeof out), 0);
    cr_expect_str_eq(out, "alys://" HEX "@10.0.0.2:30303");
    cr_expect_eq(alys_nodeaddr_from_listen(key, "tcp://*:30303", out, sizeof out), 0);
    cr_expect_str_eq(out, "alys://" HEX "@*:30303");
    cr_expect(!alys_nodeaddr_valid(out), "a wildcard host is shown, never dialled");
    cr_expect_neq(alys_nodeaddr_from_listen(key, "ipc:///tmp/x", out, sizeof out), 0);
    cr_expect_neq(alys_nodeaddr_from_listen(key, "", out, sizeof out), 0);
    cr_expect_neq(alys_nodeaddr_from_listen(key, NULL, out, sizeof out), 0);
}
