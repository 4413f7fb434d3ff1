/*  nodekey.c: see nodekey.h. */
#include "nodekey.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

#include "chain/chain.h"
#include "util.h"

struct alys_nodekey {
    uint8_t public_key[ALYS_KEY_LEN];
    uint8_t secret_key[ALYS_KEY_LEN];
    char public_hex[ALYS_KEY_HEX_LEN + 1];
};

/* ---- key text ------------------------------------------------------------- */

static const char s_z85[] = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                            ".-:+=^!/*?&<>()[]{}@%$#";

static int z85_value(char c)
{
    const char *p = c ? strchr(s_z85, c) : NULL;
    return p ? (int) (p - s_z85) : -1;
}

/* 40 z85 characters -> 32 bytes; -1 on a bad character or a group over
 * 2^32 (z85 has 85^5 > 2^32 codes, the rest are not keys). */
static int z85_decode(const char *text, uint8_t out[ALYS_KEY_LEN])
{
    for (size_t g = 0; g < ALYS_KEY_Z85_LEN / 5; g++) {
        uint64_t v = 0;
        for (size_t i = 0; i < 5; i++) {
            int d = z85_value(text[g * 5 + i]);
            if (d < 0)
                return -1;
            v = v * 85 + (uint64_t) d;
        }
        if (v > UINT32_MAX)
            return -1;
        for (size_t i = 0; i < 4; i++)
            out[g * 4 + i] = (uint8_t) (v >> (24 - 8 * i));
    }
    return 0;
}

static void z85_encode(const uint8_t key[ALYS_KEY_LEN], char out[ALYS_KEY_Z85_LEN + 1])
{
    for (size_t g = 0; g < ALYS_KEY_LEN / 4; g++) {
        uint32_t v = (uint32_t) key[g * 4] << 24 | (uint32_t) key[g * 4 + 1] << 16 |
                     (uint32_t) key[g * 4 + 2] << 8 | key[g * 4 + 3];
        for (int i = 4; i >= 0; i--) {
            out[g * 5 + (size_t) i] = s_z85[v % 85];
            v /= 85;
        }
    }
    out[ALYS_KEY_Z85_LEN] = '\0';
}

int alys_key_parse(const char *text, size_t len, uint8_t out[ALYS_KEY_LEN])
{
    uint8_t key[ALYS_KEY_LEN];
    if (!text)
        return -1;
    if (len == ALYS_KEY_Z85_LEN) {
        if (z85_decode(text, key) != 0)
            return -1;
    } else if (len == ALYS_KEY_HEX_LEN) {
        char hex[ALYS_KEY_HEX_LEN + 1]; /* text may go on past len */
        memcpy(hex, text, len);
        hex[len] = '\0';
        if (alys_unhex(hex, key, ALYS_KEY_LEN) != 0)
            return -1;
    } else {
        return -1;
    }
    memcpy(out, key, ALYS_KEY_LEN);
    return 0;
}

void alys_key_hex(const uint8_t key[ALYS_KEY_LEN], char out[ALYS_KEY_HEX_LEN + 1])
{
    alys_hex(key, ALYS_KEY_LEN, out);
}

bool alys_key_is_hex(const char *text)
{
    if (!text || strlen(text) != ALYS_KEY_HEX_LEN)
        return false;
    for (size_t i = 0; i < ALYS_KEY_HEX_LEN; i++)
        if (!((text[i] >= '0' && text[i] <= '9') || (text[i] >= 'a' && text[i] <= 'f')))
            return false;
    return true;
}

/* ---- the pair --------------------------------------------------------------- */

/* Fill in the public key (and its hex) from the secret one. */
static int derive_public(alys_nodekey_t *k)
{
    char sec[ALYS_KEY_Z85_LEN + 1], pub[ALYS_KEY_Z85_LEN + 1];
    z85_encode(k->secret_key, sec);
    int rc = zmq_curve_public(pub, sec) == 0 && z85_decode(pub, k->public_key) == 0 ? 0 : -1;
    explicit_bzero(sec, sizeof sec);
    if (rc == 0)
        alys_key_hex(k->public_key, k->public_hex);
    return rc;
}

alys_nodekey_t *alys_nodekey_new(void)
{
    alys_nodekey_t *k = calloc(1, sizeof *k);
    char pub[ALYS_KEY_Z85_LEN + 1], sec[ALYS_KEY_Z85_LEN + 1];
    if (k && zmq_curve_keypair(pub, sec) == 0 && z85_decode(sec, k->secret_key) == 0 &&
        derive_public(k) == 0) {
        explicit_bzero(sec, sizeof sec);
        return k;
    }
    explicit_bzero(sec, sizeof sec);
    alys_nodekey_destroy(&k);
    return NULL;
}

void alys_nodekey_destroy(alys_nodekey_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    explicit_bzero(*self_p, sizeof **self_p);
    free(*self_p);
    *self_p = NULL;
}

const uint8_t *alys_nodekey_public(const alys_nodekey_t *self)
{
    return self->public_key;
}

const uint8_t *alys_nodekey_secret(const alys_nodekey_t *self)
{
    return self->secret_key;
}

const char *alys_nodekey_public_hex(const alys_nodekey_t *self)
{
    return self->public_hex;
}

int alys_nodekey_path(const char *data_dir, char *out, size_t outlen)
{
    int n = snprintf(out, outlen, "%s/%s", data_dir ? data_dir : ".", ALYS_NODEKEY_FILE);
    return n > 0 && (size_t) n < outlen ? 0 : -1;
}

/* ---- the file ----------------------------------------------------------------- */

/* One `name = "value"` line: the value's bounds in line, or -1. */
static int parse_line(char *line, const char **name, char **value)
{
    char *eq = strchr(line, '=');
    if (!eq)
        return -1;
    char *end = eq;
    while (end > line && (end[-1] == ' ' || end[-1] == '\t'))
        end--;
    *end = '\0';
    char *v = eq + 1;
    while (*v == ' ' || *v == '\t')
        v++;
    size_t n = strlen(v);
    while (n > 0 && (v[n - 1] == ' ' || v[n - 1] == '\t' || v[n - 1] == '\r'))
        v[--n] = '\0';
    if (n < 2 || v[0] != '"' || v[n - 1] != '"')
        return -1;
    v[n - 1] = '\0';
    *name = line;
    *value = v + 1;
    return 0;
}

/* The file's text (NUL-terminated, writable) into k. */
static int parse_text(char *text, alys_nodekey_t *k, char *err, size_t errlen)
{
    bool have_secret = false, have_public = false;
    uint8_t named_public[ALYS_KEY_LEN];
    int lineno = 0;
    for (char *save = NULL, *line = strtok_r(text, "\n", &save); line;
         line = strtok_r(NULL, "\n", &save)) {
        lineno++;
        while (*line == ' ' || *line == '\t')
            line++;
        if (*line == '\0' || *line == '#' || *line == '\r')
            continue;
        const char *name;
        char *value;
        if (parse_line(line, &name, &value) != 0)
            return alys_set_err(err, errlen, -1, "line %d is not name = \"value\"", lineno);
        if (strcmp(name, "secret-key") == 0 && !have_secret) {
            have_secret = true;
            if (strlen(value) != ALYS_KEY_Z85_LEN || z85_decode(value, k->secret_key) != 0)
                return alys_set_err(err, errlen, -1, "secret-key is not 40 z85 characters");
        } else if (strcmp(name, "public-key") == 0 && !have_public) {
            have_public = true;
            if (alys_key_parse(value, strlen(value), named_public) != 0)
                return alys_set_err(err, errlen, -1, "public-key is not a key");
        } else {
            return alys_set_err(err, errlen, -1, "line %d: unknown or repeated '%s'", lineno, name);
        }
    }
    if (!have_secret)
        return alys_set_err(err, errlen, -1, "no secret-key");
    if (derive_public(k) != 0)
        return alys_set_err(err, errlen, -1, "cannot derive the public key (no CURVE in libzmq?)");
    if (have_public && memcmp(named_public, k->public_key, ALYS_KEY_LEN) != 0)
        return alys_set_err(err, errlen, -1, "public-key does not belong to secret-key");
    return 0;
}

/* Read fd (already opened at path) after checking what it is. */
static alys_nodekey_t *load_fd(int fd, const char *path, char *err, size_t errlen)
{
    struct stat st;
    if (fstat(fd, &st) != 0) {
        alys_set_err(err, errlen, -1, "key file %s: %s", path, strerror(errno));
        return NULL;
    }
    if (!S_ISREG(st.st_mode)) {
        alys_set_err(err, errlen, -1, "key file %s is not a regular file", path);
        return NULL;
    }
    if (st.st_mode & 077) {
        alys_set_err(err, errlen, -1,
                     "key file %s is open to group or others (mode %03o): it is the node's "
                     "identity; chmod 600 it, or move it away for a new identity",
                     path, (unsigned) (st.st_mode & 0777));
        return NULL;
    }
    if (st.st_size > ALYS_NODEKEY_FILE_MAX) {
        alys_set_err(err, errlen, -1, "key file %s is over %d bytes: not a key file", path,
                     ALYS_NODEKEY_FILE_MAX);
        return NULL;
    }
    char text[ALYS_NODEKEY_FILE_MAX + 1];
    ssize_t n = read(fd, text, ALYS_NODEKEY_FILE_MAX);
    alys_nodekey_t *k = n >= 0 ? calloc(1, sizeof *k) : NULL;
    if (n < 0)
        alys_set_err(err, errlen, -1, "cannot read key file %s: %s", path, strerror(errno));
    if (k) {
        text[n] = '\0';
        char why[160];
        if (memchr(text, '\0', (size_t) n) || parse_text(text, k, why, sizeof why) != 0) {
            alys_set_err(err, errlen, -1, "key file %s is malformed: %s", path,
                         memchr(text, '\0', (size_t) n) ? "binary data" : why);
            alys_nodekey_destroy(&k);
        }
    }
    explicit_bzero(text, sizeof text);
    return k;
}

alys_nodekey_t *alys_nodekey_load(const char *path, char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        alys_set_err(err, errlen, -1, "cannot open key file %s: %s", path, strerror(errno));
        return NULL;
    }
    alys_nodekey_t *k = load_fd(fd, path, err, errlen);
    close(fd);
    return k;
}

static int write_all(int fd, const char *text, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, text, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        text += n;
        len -= (size_t) n;
    }
    return 0;
}

/* Write the file at tmp (new, 0600) and fsync it. */
static int write_tmp(const alys_nodekey_t *key, const char *tmp)
{
    char sec[ALYS_KEY_Z85_LEN + 1], text[512];
    z85_encode(key->secret_key, sec);
    int n = snprintf(text, sizeof text,
                     "# alys-sync node key: the CURVE key pair that is this node's identity.\n"
                     "# Keep it secret (mode 0600). Peers know the node by public-key;\n"
                     "# `alysctl key show` prints it and the node's alys:// endpoint.\n"
                     "public-key = \"%s\"\n"
                     "secret-key = \"%s\"\n",
                     key->public_hex, sec);
    explicit_bzero(sec, sizeof sec);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    int rc = fd >= 0 && n > 0 && (size_t) n < sizeof text &&
                     write_all(fd, text, (size_t) n) == 0 && fsync(fd) == 0
                 ? 0
                 : -1;
    explicit_bzero(text, sizeof text);
    if (fd >= 0 && close(fd) != 0)
        rc = -1;
    return rc;
}

int alys_nodekey_save(const alys_nodekey_t *key, const char *path, char *err, size_t errlen)
{
    char tmp[4096];
    int n = snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long) getpid());
    if (n <= 0 || (size_t) n >= sizeof tmp)
        return alys_set_err(err, errlen, -1, "key file path %s is too long", path);
    (void) unlink(tmp); /* a leftover of a crashed run of this pid */
    if (write_tmp(key, tmp) != 0) {
        int e = errno;
        (void) unlink(tmp);
        return alys_set_err(err, errlen, -1, "cannot write key file %s: %s", tmp, strerror(e));
    }
    /* link(2), not rename(2): it fails when path exists, so a key is never
     * replaced, and the file appears whole. */
    int rc = link(tmp, path);
    int e = errno;
    (void) unlink(tmp);
    if (rc != 0)
        return alys_set_err(err, errlen, e == EEXIST ? 1 : -1, "cannot create key file %s: %s",
                            path, strerror(e));
    return 0;
}

/* The directory part of path (made if missing). */
static int make_dir_of(const char *path)
{
    char dir[4096];
    if (alys_strlcpy(dir, path, sizeof dir) != 0)
        return -1;
    char *slash = strrchr(dir, '/');
    if (!slash || slash == dir)
        return 0;
    *slash = '\0';
    return alys_mkdir_p(dir, 0700);
}

alys_nodekey_t *alys_nodekey_open(const char *path, bool *created, char *err, size_t errlen)
{
    if (created)
        *created = false;
    if (access(path, F_OK) == 0 || errno != ENOENT)
        return alys_nodekey_load(path, err, errlen);
    alys_nodekey_t *k = alys_nodekey_new();
    if (!k) {
        alys_set_err(err, errlen, -1, "cannot make a CURVE key pair (libzmq without CURVE?)");
        return NULL;
    }
    if (make_dir_of(path) != 0) {
        alys_set_err(err, errlen, -1, "cannot make the directory of key file %s: %s", path,
                     strerror(errno));
        alys_nodekey_destroy(&k);
        return NULL;
    }
    int rc = alys_nodekey_save(k, path, err, errlen);
    if (rc == 0 && created)
        *created = true;
    if (rc != 0)
        alys_nodekey_destroy(&k);
    /* Another process created it first: its key is the node's. */
    return rc == 1 ? alys_nodekey_load(path, err, errlen) : k;
}
