#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

/* Process-wide by design: every function of a process logs under one name. */
static char s_name[64] = "alys";
static alys_log_level_t s_level = ALYS_LOG_INFO;

int alys_log_level_parse(const char *s, alys_log_level_t *out)
{
    static const char *names[] = {"debug", "info", "warn", "error"};
    for (int i = 0; i < 4; i++) {
        if (s && strcmp(s, names[i]) == 0) {
            *out = (alys_log_level_t) i;
            return 0;
        }
    }
    return -1;
}

void alys_log_set_name(const char *name)
{
    snprintf(s_name, sizeof s_name, "%s", name ? name : "alys");
}

void alys_log_init(const char *name, const char *level)
{
    alys_log_set_name(name);
    alys_log_level_t l;
    if (level && alys_log_level_parse(level, &l) == 0)
        s_level = l;
}

void alys_log(alys_log_level_t level, const char *fmt, ...)
{
    static const char *tags[] = {"DEBUG", "INFO", "WARN", "ERROR"};
    if (level < s_level)
        return;
    struct timeval tv;
    gettimeofday(&tv, NULL);
    struct tm tm;
    gmtime_r(&tv.tv_sec, &tm);
    char line[2048];
    int n = snprintf(line, sizeof line, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %-5s %s[%d]: ",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                     tm.tm_sec, (long) (tv.tv_usec / 1000), tags[level], s_name, (int) getpid());
    if (n < 0 || (size_t) n >= sizeof line)
        n = 0;
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof line - (size_t) n - 1, fmt, ap);
    va_end(ap);
    size_t len = (size_t) n + (m < 0 ? 0 : (size_t) m);
    if (len > sizeof line - 2)
        len = sizeof line - 2;
    line[len++] = '\n';
    /* One write() per line so lines from several processes never interleave. */
    ssize_t w = write(STDERR_FILENO, line, len);
    (void) w;
}
