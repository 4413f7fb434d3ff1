/*  util.h: small helpers every process needs (time, files, strings). */
#ifndef ALYS_UTIL_H
#define ALYS_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

int64_t alys_now_ms(void);  /* wall clock, unix ms */
int64_t alys_mono_ms(void); /* monotonic ms, for timeouts and rates */
int64_t alys_mono_us(void);
/* mkdir -p; returns 0 or -1 with errno. */
int alys_mkdir_p(const char *path, unsigned mode);
/* Read a whole file of at most max bytes; *out malloc'ed (caller frees) and
 * NUL-terminated. Returns 0, or -1 with a message in err. */
int alys_read_file(const char *path, size_t max, uint8_t **out, size_t *len, char *err, size_t errlen);
/* Format a message into err (when err and errlen allow) and return rc, so a
 * failing path reads `return alys_set_err(err, errlen, -1, "...", ...)`. */
int alys_set_err(char *err, size_t errlen, int rc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Copy src into dst of size n; returns -1 (and writes nothing) if it does not fit. */
int alys_strlcpy(char *dst, const char *src, size_t n);
/* Remove "ipc://" from an endpoint and return the filesystem path, or NULL. */
const char *alys_ipc_path(const char *endpoint);

#endif
