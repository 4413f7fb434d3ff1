/*  log.h: one line per event on stderr, prefixed with time, level and the
 *  process name, so the interleaved output of a supervisor and its children
 *  stays readable; or, with log_format = "json", one JSON object a line:
 *  {"ts":"2026-12-04T20:00:00.000Z","level":"info","proc":"sync","pid":42,"msg":"..."}.
 *  Process-wide: set once at start by alys_log_init; the level may change
 *  later (SIGHUP).
 */
#ifndef ALYS_LOG_H
#define ALYS_LOG_H

typedef enum {
    ALYS_LOG_DEBUG = 0,
    ALYS_LOG_INFO,
    ALYS_LOG_WARN,
    ALYS_LOG_ERROR
} alys_log_level_t;

void alys_log_init(const char *name, const char *level); /* level: debug|info|warn|error */
void alys_log_set_name(const char *name);
int alys_log_set_level(const char *level);   /* -1 if not a level name; unchanged */
int alys_log_set_format(const char *format); /* "text" | "json"; -1 otherwise */
int alys_log_level_parse(const char *s, alys_log_level_t *out);
void alys_log(alys_log_level_t level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_debug(...) alys_log(ALYS_LOG_DEBUG, __VA_ARGS__)
#define log_info(...)  alys_log(ALYS_LOG_INFO, __VA_ARGS__)
#define log_warn(...)  alys_log(ALYS_LOG_WARN, __VA_ARGS__)
#define log_error(...) alys_log(ALYS_LOG_ERROR, __VA_ARGS__)

#endif
