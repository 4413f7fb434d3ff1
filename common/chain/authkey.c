/*  authkey.c: see authkey.h. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "authkey.h"

static int fail(char *err, size_t errlen, const char *path, const char *why)
{
    snprintf(err, errlen, "key file %s: %s", path, why);
    return -1;
}

/* Read at most ALYS_AUTHKEY_MAX bytes of an owner-only regular file into buf. */
static int read_private(const char *path, char *buf, size_t *len, char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return fail(err, errlen, path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return fail(err, errlen, path, "not a regular file");
    }
    if (st.st_mode & 077) {
        close(fd);
        char why[128];
        snprintf(why, sizeof why, "mode %04o lets group or others access it; chmod 600",
                 (unsigned) (st.st_mode & 07777));
        return fail(err, errlen, path, why);
    }
    ssize_t n = read(fd, buf, ALYS_AUTHKEY_MAX + 1);
    close(fd);
    if (n < 0)
        return fail(err, errlen, path, strerror(errno));
    if ((size_t) n > ALYS_AUTHKEY_MAX)
        return fail(err, errlen, path, "larger than one key line");
    *len = (size_t) n;
    return 0;
}

/* The genesis index of pubkey, -1 if it is not an authority. */
static int authority_index(const alys_genesis_t *g, const uint8_t pub[ALYS_PUBKEY_LEN])
{
    for (uint32_t i = 0; i < g->authority_count; i++)
        if (memcmp(g->authorities[i], pub, ALYS_PUBKEY_LEN) == 0)
            return (int) i;
    return -1;
}

int alys_authkey_load(const char *path, const alys_genesis_t *g, uint8_t seckey[ALYS_SECKEY_LEN],
                      char *err, size_t errlen)
{
    char buf[ALYS_AUTHKEY_MAX + 2];
    size_t len = 0;
    if (read_private(path, buf, &len, err, errlen) != 0)
        return -1;
    if (len > 0 && buf[len - 1] == '\n')
        len--;
    if (len > 0 && buf[len - 1] == '\r')
        len--;
    buf[len] = '\0';
    int rc = -1;
    uint8_t pub[ALYS_PUBKEY_LEN];
    if (len != 2 * ALYS_SECKEY_LEN || alys_unhex(buf, seckey, ALYS_SECKEY_LEN) != 0)
        fail(err, errlen, path, "not one line of 64 hex digits");
    else if (alys_keypair_pubkey(seckey, pub) != 0)
        fail(err, errlen, path, "not a valid secp256k1 secret key");
    else if ((rc = authority_index(g, pub)) < 0) {
        char hex[2 * ALYS_PUBKEY_LEN + 1];
        alys_hex(pub, ALYS_PUBKEY_LEN, hex);
        char why[200];
        snprintf(why, sizeof why, "public key %.16s.. is not one of the genesis' %u authorities",
                 hex, g->authority_count);
        fail(err, errlen, path, why);
    }
    explicit_bzero(buf, sizeof buf); /* a plain memset before return may be elided */
    if (rc < 0)
        explicit_bzero(seckey, ALYS_SECKEY_LEN);
    return rc;
}
