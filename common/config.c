/*  config.c: loads the node's config file (deploy/alys-sync.toml).
 *
 *  The parser is config_parse.c, the key schema and every default
 *  config_keys.c; this file reads the file (bounded, regular files only) and
 *  holds the public entry points of config.h.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config_schema.h"

/* A config is a few KiB; the cap keeps a wrong path (a log, a device, a
 * database file) from being slurped into memory. */
#define CONFIG_MAX_BYTES (1024 * 1024)

const char *alys_config_default_path(void)
{
    const char *env = getenv("ALYS_CONFIG");
    return env && env[0] ? env : ALYS_DEFAULT_CONFIG;
}

void alys_config_defaults(alys_config_t *cfg)
{
    if (!cfg)
        return;
    cfg_set_defaults(cfg);
    /* "./run/block_processor.sock" always fits; nothing to report. */
    (void) cfg_derive_all(cfg, NULL, NULL);
}

int alys_config_derive_endpoints(alys_config_t *cfg)
{
    if (!cfg)
        return -1;
    return cfg_derive_all(cfg, NULL, NULL);
}

/* ------------------------------------------------------------------ loading */

static int sys_fail(char *err, size_t errlen, const char *file, const char *what)
{
    char msg[128];
    (void) snprintf(msg, sizeof msg, "%s: %s", what, strerror(errno));
    cfg_put_err(err, errlen, file, msg);
    return -1;
}

/* Reads a regular file of at most CONFIG_MAX_BYTES, checked with fstat before
 * anything is read. *text is malloc'd, NUL-terminated, *len bytes. */
static int read_fd(int fd, const char *file, char **text, size_t *len, char *err, size_t errlen)
{
    struct stat st;
    char msg[96];
    if (fstat(fd, &st) != 0)
        return sys_fail(err, errlen, file, "cannot stat");
    if (!S_ISREG(st.st_mode)) {
        cfg_put_err(err, errlen, file, "not a regular file");
        return -1;
    }
    if (st.st_size > CONFIG_MAX_BYTES) {
        (void) snprintf(msg, sizeof msg, "file is %lld bytes, over the 1 MiB limit",
                        (long long) st.st_size);
        cfg_put_err(err, errlen, file, msg);
        return -1;
    }
    size_t cap = (size_t) st.st_size + 1; /* +1: notices a file growing under us */
    char *buf = malloc(cap);
    if (!buf) {
        cfg_put_err(err, errlen, file, "out of memory");
        return -1;
    }
    size_t got = 0;
    while (got < cap) {
        ssize_t r = read(fd, buf + got, cap - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            free(buf);
            return sys_fail(err, errlen, file, "cannot read");
        }
        if (r == 0)
            break;
        got += (size_t) r;
    }
    if (got == cap) {
        free(buf);
        cfg_put_err(err, errlen, file, "file changed size while being read");
        return -1;
    }
    buf[got] = '\0';
    *text = buf;
    *len = got;
    return 0;
}

static int read_file(const char *file, char **text, size_t *len, char *err, size_t errlen)
{
    int fd = open(file, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0)
        return sys_fail(err, errlen, file, "cannot open");
    int rc = read_fd(fd, file, text, len, err, errlen);
    if (close(fd) != 0 && rc == 0) {
        free(*text);
        return sys_fail(err, errlen, file, "cannot close");
    }
    return rc;
}

int alys_config_load(alys_config_t *cfg, const char *file, char *err, size_t errlen)
{
    return alys_config_load_set(cfg, file, NULL, 0, err, errlen);
}

int alys_config_load_set(alys_config_t *cfg, const char *file, const char *const *sets,
                         size_t nsets, char *err, size_t errlen)
{
    if (!cfg || !file || !file[0]) {
        cfg_put_err(err, errlen, "config", "no config file given");
        return -1;
    }
    char *text = NULL;
    size_t len = 0;
    if (read_file(file, &text, &len, err, errlen) != 0)
        return -1;
    int rc = cfg_parse_text(cfg, text, len, file, true, sets, nsets, err, errlen);
    free(text);
    return rc;
}
