/*  nodeaddr.c: see nodeaddr.h. */
#include "nodeaddr.h"

#include <stdio.h>
#include <string.h>

#define SCHEME_LEN (sizeof ALYS_NODEADDR_SCHEME - 1)

static bool host_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '.' || c == '-' || c == '_';
}

/* host (len bytes): a name/IPv4 of host_char, or [IPv6] of hex, ':' and '.'. */
static bool host_ok(const char *host, size_t len, bool allow_star)
{
    if (len == 0)
        return false;
    if (allow_star && len == 1 && host[0] == '*')
        return true;
    if (host[0] == '[') {
        if (len < 3 || host[len - 1] != ']')
            return false;
        for (size_t i = 1; i + 1 < len; i++)
            if (!strchr("0123456789abcdefABCDEF:.", host[i]) || !host[i])
                return false;
        return true;
    }
    for (size_t i = 0; i < len; i++)
        if (!host_char(host[i]))
            return false;
    return true;
}

/* "PORT": 1..65535, digits only. */
static int port_of(const char *p, uint16_t *out)
{
    size_t n = strlen(p);
    if (n == 0 || n > 5 || strspn(p, "0123456789") != n)
        return -1;
    unsigned long v = 0;
    for (size_t i = 0; i < n; i++)
        v = v * 10 + (unsigned long) (p[i] - '0');
    if (v < 1 || v > 65535)
        return -1;
    *out = (uint16_t) v;
    return 0;
}

/* "host:port" (the text after the key's '@' or after "tcp://"). */
static int hostport(const char *hp, bool allow_star, alys_nodeaddr_t *out)
{
    const char *colon = strrchr(hp, ':');
    if (!colon)
        return -1;
    size_t hlen = (size_t) (colon - hp);
    if (hlen >= sizeof out->host || !host_ok(hp, hlen, allow_star) || port_of(colon + 1, &out->port))
        return -1;
    memcpy(out->host, hp, hlen);
    out->host[hlen] = '\0';
    return 0;
}

int alys_nodeaddr_parse(const char *text, alys_nodeaddr_t *out)
{
    if (!text || !out)
        return -1;
    size_t n = strnlen(text, ALYS_ENDPOINT_MAX);
    if (n >= ALYS_ENDPOINT_MAX || strncmp(text, ALYS_NODEADDR_SCHEME, SCHEME_LEN) != 0)
        return -1;
    const char *key = text + SCHEME_LEN;
    const char *at = strrchr(key, '@');
    if (!at)
        return -1;
    alys_nodeaddr_t a;
    memset(&a, 0, sizeof a);
    if (alys_key_parse(key, (size_t) (at - key), a.key) != 0 || hostport(at + 1, false, &a) != 0)
        return -1;
    *out = a;
    return 0;
}

int alys_nodeaddr_format(const alys_nodeaddr_t *a, char *out, size_t outlen)
{
    char hex[ALYS_KEY_HEX_LEN + 1];
    alys_key_hex(a->key, hex);
    int n = snprintf(out, outlen, "%s%s@%s:%u", ALYS_NODEADDR_SCHEME, hex, a->host,
                     (unsigned) a->port);
    return n > 0 && (size_t) n < outlen && (size_t) n < ALYS_ENDPOINT_MAX ? 0 : -1;
}

int alys_nodeaddr_tcp(const alys_nodeaddr_t *a, char *out, size_t outlen)
{
    int n = snprintf(out, outlen, "tcp://%s:%u", a->host, (unsigned) a->port);
    return n > 0 && (size_t) n < outlen ? 0 : -1;
}

int alys_nodeaddr_canonical(const char *text, char *out, size_t outlen)
{
    alys_nodeaddr_t a;
    return alys_nodeaddr_parse(text, &a) == 0 ? alys_nodeaddr_format(&a, out, outlen) : -1;
}

bool alys_nodeaddr_valid(const char *text)
{
    alys_nodeaddr_t a;
    return alys_nodeaddr_parse(text, &a) == 0;
}

int alys_nodeaddr_key_hex(const char *text, char *out, size_t outlen)
{
    alys_nodeaddr_t a;
    if (outlen < ALYS_KEY_HEX_LEN + 1 || alys_nodeaddr_parse(text, &a) != 0)
        return -1;
    alys_key_hex(a.key, out);
    return 0;
}

int alys_nodeaddr_from_listen(const uint8_t key[ALYS_KEY_LEN], const char *listen, char *out,
                              size_t outlen)
{
    alys_nodeaddr_t a;
    memset(&a, 0, sizeof a);
    if (!listen || strncmp(listen, "tcp://", 6) != 0 ||
        strnlen(listen, ALYS_ENDPOINT_MAX) >= ALYS_ENDPOINT_MAX || hostport(listen + 6, true, &a) != 0)
        return -1;
    memcpy(a.key, key, ALYS_KEY_LEN);
    return alys_nodeaddr_format(&a, out, outlen);
}
