/*  log.c: see log.h. */
#include "log.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

/* Process-wide by design: every function of a process logs under one name. */
static char s_name[64] = "alys";
static alys_log_level_t s_level = ALYS_LOG_INFO;
static bool s_json;

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

int alys_log_set_level(const char *level)
{
    alys_log_level_t l;
    if (!level || alys_log_level_parse(level, &l) != 0)
        return -1;
    s_level = l;
    return 0;
}

int alys_log_set_format(const char *format)
{
    if (format && strcmp(format, "json") == 0)
        s_json = true;
    else if (!format || strcmp(format, "text") == 0)
        s_json = false;
    else
        return -1;
    return 0;
}

void alys_log_init(const char *name, const char *level)
{
    alys_log_set_name(name);
    (void) alys_log_set_level(level);
}

/* JSON string body of s into out (cap bytes with the NUL), cut to fit. */
static size_t json_escape(const char *s, char *out, size_t cap)
{
    size_t o = 0;
    for (; *s && o + 7 < cap; s++) {
        unsigned char c = (unsigned char) *s;
        if (c == '"' || c == '\\') {
            out[o++] = '\\';
            out[o++] = (char) c;
        } else if (c == '\n') {
            out[o++] = '\\';
            out[o++] = 'n';
        } else if (c < 0x20) {
            o += (size_t) snprintf(out + o, cap - o, "\\u%04x", c);
        } else {
            out[o++] = (char) c;
        }
    }
    out[o] = '\0';
    return o;
}

static const char *const s_tags[] = {"DEBUG", "INFO", "WARN", "ERROR"};
static const char *const s_words[] = {"debug", "info", "warn", "error"};

/* One line in line[cap]; returns its length without the newline. */
static size_t format_line(char *line, size_t cap, alys_log_level_t level, const char *msg)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    struct tm tm;
    gmtime_r(&tv.tv_sec, &tm);
    char ts[96]; /* sized for any int the compiler can imagine in struct tm */
    snprintf(ts, sizeof ts, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (long) (tv.tv_usec / 1000));
    int n;
    if (s_json) {
        char esc[1600], name[140];
        json_escape(msg, esc, sizeof esc);
        json_escape(s_name, name, sizeof name);
        n = snprintf(line, cap,
                     "{\"ts\":\"%s\",\"level\":\"%s\",\"proc\":\"%s\",\"pid\":%d,"
                     "\"msg\":\"%s\"}",
                     ts, s_words[level], name, (int) getpid(), esc);
    } else {
        n = snprintf(line, cap, "%s %-5s %s[%d]: %s", ts, s_tags[level], s_name, (int) getpid(), msg);
    }
    if (n < 0)
        return 0;
    return (size_t) n < cap ? (size_t) n : cap - 1;
}

void alys_log(alys_log_level_t level, const char *fmt, ...)
{
    if (level < s_level)
        return;
    char msg[1500];
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (m < 0)
        msg[0] = '\0';
    char line[2048];
    size_t len = format_line(line, sizeof line - 1, level, msg);
    if (s_json && len == sizeof line - 2)
        len = format_line(line, sizeof line - 1, level, "(log line too long)");
    line[len++] = '\n';
    /* One write() per line so lines from several processes never interleave. */
    ssize_t w = write(STDERR_FILENO, line, len);
    (void) w;
}
