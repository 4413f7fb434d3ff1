/*  config_parse.c: the TOML-subset parser of the config file.
 *
 *  Debian 12 packages no C TOML library (there is no libtoml/tomlc99/toml-c
 *  package), so this file carries a small hand-written parser of the TOML
 *  subset the config uses:
 *    [table] headers, bare keys, key = value,
 *    basic "strings" with the escapes \" \\ \n \t,
 *    integers (optional sign, '_' between digits), floats, true/false,
 *    arrays of strings (may span lines, trailing comma allowed),
 *    # comments and blank lines (LF or CRLF line ends).
 *  It is strict on purpose: anything outside that subset, an unknown table or
 *  key, a wrong type, an out-of-range number, an unknown enum word, a
 *  duplicate, or a string longer than its field is an error reported as
 *  "FILE:LINE:COL: message naming the key", so that no process ever starts on
 *  a config that does not mean what its author thinks. Columns are 1-based
 *  byte offsets in the line. Which keys exist, their types, ranges and
 *  defaults is config_keys.c's business (config_schema.h).
 *
 *  The whole file is validated into a scratch copy, which is copied out only
 *  when everything (including the cross-key checks) passed: callers never see
 *  a half-loaded config.
 */
#include "config_schema.h"
#include "membudget.h"
#include "nodeaddr.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define KEY_NAME_MAX 64 /* longest bare key or table name we accept */
#define TOKEN_SHOW   32 /* how much of a bad token an error message quotes */
/* A --set value quoted and escaped: a path or an array of a few endpoints. */
#define SET_TEXT_MAX (ALYS_PATH_MAX * 2 + 8)

/* -------------------------------------------------------------- error output */

typedef struct {
    int line, col; /* line 0: no position (whole-file problems) */
} pos_t;

static const pos_t NOPOS = {0, 0};

/* An error message that does not fit errlen is truncated: still a useful
 * message, and the caller chose the buffer. */
static void put_err(char *err, size_t errlen, const char *name, pos_t at, const char *msg)
{
    if (!err || errlen == 0)
        return;
    if (at.line > 0)
        (void) snprintf(err, errlen, "%s:%d:%d: %s", name, at.line, at.col, msg);
    else
        (void) snprintf(err, errlen, "%s: %s", name, msg);
}

void cfg_put_err(char *err, size_t errlen, const char *name, const char *msg)
{
    put_err(err, errlen, name, NOPOS, msg);
}

/* ------------------------------------------------------------------- parser */

typedef struct {
    const char *s;     /* the text, n bytes, not NUL-terminated */
    size_t n, i;       /* length and read position */
    int line;          /* 1-based line of s[i] */
    size_t line_start; /* offset of that line's first byte */
    const char *name;  /* file name for messages */
    char *err;
    size_t errlen;
    int table; /* index in tables[], -1 before the first header */
    pos_t table_seen[CFG_MAX_TABLES];
    pos_t key_seen[CFG_MAX_KEYS]; /* where each key was set; line 0 = default */
    char base[PATH_MAX];          /* absolute directory of the config file */
    char abs_name[PATH_MAX];
    alys_config_t cfg;       /* scratch: copied out only on success */
    const char *const *sets; /* --set overrides, applied after the text */
    size_t nsets;
    bool setting; /* applying a --set: p->name is "--set K=V", no line */
    char set_name[ALYS_ERR_MAX / 2];
} parser_t;

__attribute__((format(printf, 3, 4))) static int fail_at(parser_t *p, pos_t at, const char *fmt, ...)
{
    char msg[ALYS_ERR_MAX];
    va_list ap;
    va_start(ap, fmt);
    (void) vsnprintf(msg, sizeof msg, fmt, ap); /* truncation: see put_err */
    va_end(ap);
    if (at.line < 0) { /* a key set by --set number -line - 1 */
        char name[ALYS_ERR_MAX / 2];
        (void) snprintf(name, sizeof name, "--set %s", p->sets[-at.line - 1]);
        put_err(p->err, p->errlen, name, NOPOS, msg);
    } else {
        put_err(p->err, p->errlen, p->name, p->setting ? NOPOS : at, msg);
    }
    return -1;
}

static pos_t here(const parser_t *p)
{
    return (pos_t){p->line, (int) (p->i - p->line_start) + 1};
}

static unsigned char peek(const parser_t *p, size_t k)
{
    return p->i + k < p->n ? (unsigned char) p->s[p->i + k] : '\0';
}

static unsigned char cur(const parser_t *p)
{
    return peek(p, 0);
}
static bool at_eof(const parser_t *p)
{
    return p->i >= p->n;
}
static bool is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}
static bool is_alpha(unsigned char c)
{
    return (c | 0x20) >= 'a' && (c | 0x20) <= 'z';
}
static bool is_bare(unsigned char c)
{
    return is_alpha(c) || is_digit(c) || c == '_' || c == '-';
}
static bool is_ctrl(unsigned char c)
{
    return (c < 0x20 && c != '\t') || c == 0x7f;
}

static bool is_token(unsigned char c)
{
    return is_bare(c) || c == '+' || c == '.';
}

/* Length of the run of number/word characters at the read position. */
static size_t token_len(const parser_t *p)
{
    size_t k = 0;
    while (p->i + k < p->n && is_token((unsigned char) p->s[p->i + k]))
        k++;
    return k;
}

static bool at_line_end(const parser_t *p)
{
    unsigned char c = cur(p);
    return at_eof(p) || c == '\n' || c == '\r';
}

/* "end of file", "end of line", "'x'" or "byte 0x07", for "expected ..., found ..." */
static const char *describe_here(const parser_t *p, char *buf, size_t cap)
{
    unsigned char c = cur(p);
    if (at_eof(p))
        return "end of file";
    if (c == '\n' || c == '\r')
        return "end of line";
    if (c >= 0x20 && c < 0x7f)
        (void) snprintf(buf, cap, "'%c'", c);
    else
        (void) snprintf(buf, cap, "byte 0x%02x", c);
    return buf;
}

static int expected(parser_t *p, const char *what)
{
    char buf[16];
    return fail_at(p, here(p), "expected %s, found %s", what, describe_here(p, buf, sizeof buf));
}

static void skip_ws(parser_t *p)
{
    while (cur(p) == ' ' || cur(p) == '\t')
        p->i++;
}

/* At '#': up to (not including) the line end. TOML forbids control bytes in
 * comments; rejecting them also catches binary files early. */
static int skip_comment(parser_t *p)
{
    while (!at_line_end(p)) {
        if (is_ctrl(cur(p)))
            return fail_at(p, here(p), "control character 0x%02x in comment", cur(p));
        p->i++;
    }
    return 0;
}

/* At '\n' or '\r'. */
static int newline(parser_t *p)
{
    if (cur(p) == '\r') {
        if (peek(p, 1) != '\n')
            return fail_at(p, here(p), "carriage return without line feed");
        p->i++;
    }
    p->i++;
    p->line++;
    p->line_start = p->i;
    return 0;
}

/* Skips spaces, comments and line ends: what may sit between lines, and
 * between the entries of an array. */
static int skip_blank(parser_t *p)
{
    for (;;) {
        skip_ws(p);
        if (cur(p) == '#' && skip_comment(p) != 0)
            return -1;
        if (at_eof(p) || !at_line_end(p))
            return 0;
        if (newline(p) != 0)
            return -1;
    }
}

/* After a header or a value: only spaces and a comment may follow. */
static int end_line(parser_t *p, const char *after)
{
    skip_ws(p);
    if (cur(p) == '#' && skip_comment(p) != 0)
        return -1;
    if (at_eof(p))
        return 0;
    if (at_line_end(p))
        return newline(p);
    char what[128];
    (void) snprintf(what, sizeof what, "end of line after %s", after);
    return expected(p, what);
}

/* A bare key or table name (table names may be dotted, to be reported as
 * unknown rather than as a syntax error). */
static int read_name(parser_t *p, char *out, size_t cap, bool dots)
{
    pos_t at = here(p);
    size_t k = 0;
    while (is_bare(cur(p)) || (dots && cur(p) == '.')) {
        if (k + 1 >= cap)
            return fail_at(p, at, "name longer than %zu bytes", cap - 1);
        out[k++] = (char) cur(p);
        p->i++;
    }
    out[k] = '\0';
    return 0;
}


static int parse_table(parser_t *p)
{
    pos_t at = here(p);
    p->i++;
    if (cur(p) == '[')
        return fail_at(p, at, "arrays of tables ([[...]]) are not supported");
    skip_ws(p);
    char name[KEY_NAME_MAX + 1];
    if (!is_bare(cur(p)))
        return expected(p, "a table name");
    if (read_name(p, name, sizeof name, true) != 0)
        return -1;
    skip_ws(p);
    if (cur(p) != ']')
        return expected(p, "']' after the table name");
    p->i++;
    int t = cfg_find_table(name);
    const char *near = t < 0 ? cfg_suggest_table(name) : NULL;
    if (near)
        return fail_at(p, at, "unknown table [%s] (did you mean [%s]?)", name, near);
    if (t < 0)
        return fail_at(p, at, "unknown table [%s]", name);
    if (p->table_seen[t].line)
        return fail_at(p, at, "duplicate table [%s] (first at line %d)", name, p->table_seen[t].line);
    p->table_seen[t] = at;
    p->table = t;
    return end_line(p, "the table header");
}

/* ------------------------------------------------------------------- values */

static bool word_is(const parser_t *p, size_t len, const char *w)
{
    return len == strlen(w) && memcmp(p->s + p->i, w, len) == 0;
}

/* Digits with single '_' only between two digits. Advances *j. */
static bool scan_digits(const char *t, size_t n, size_t *j)
{
    size_t start = *j;
    while (*j < n) {
        unsigned char c = (unsigned char) t[*j];
        bool under = c == '_' && *j > start && is_digit((unsigned char) t[*j - 1]) &&
                     *j + 1 < n && is_digit((unsigned char) t[*j + 1]);
        if (!is_digit(c) && !under)
            break;
        (*j)++;
    }
    return *j > start;
}

/* [+-] int [. digits] [(e|E) [+-] digits], no leading zero in int (TOML). */
static bool number_syntax(const char *t, size_t n, bool *is_float)
{
    size_t j = 0;
    *is_float = false;
    if (j < n && (t[j] == '+' || t[j] == '-'))
        j++;
    size_t int_start = j;
    if (!scan_digits(t, n, &j))
        return false;
    if (t[int_start] == '0' && j - int_start > 1)
        return false;
    if (j < n && t[j] == '.') {
        j++;
        if (!scan_digits(t, n, &j))
            return false;
        *is_float = true;
    }
    if (j < n && (t[j] == 'e' || t[j] == 'E')) {
        j++;
        if (j < n && (t[j] == '+' || t[j] == '-'))
            j++;
        if (!scan_digits(t, n, &j))
            return false;
        *is_float = true;
    }
    return j == n;
}

/* What the value at the read position looks like, for wrong-type messages. */
static const char *value_class(const parser_t *p)
{
    unsigned char c = cur(p);
    size_t len = token_len(p);
    bool is_float;
    if (at_eof(p))
        return "end of file";
    if (at_line_end(p) || c == '#')
        return "end of line";
    if (c == '"')
        return "a string";
    if (c == '\'')
        return "a literal string";
    if (c == '[')
        return "an array";
    if (c == '{')
        return "an inline table";
    if (is_digit(c) || c == '+' || c == '-' || c == '.') {
        if (!number_syntax(p->s + p->i, len, &is_float))
            return "an invalid number";
        return is_float ? "a float" : "an integer";
    }
    if (word_is(p, len, "true") || word_is(p, len, "false"))
        return "a boolean";
    return len ? "an unquoted word" : "an unexpected character";
}

static const char *type_word(cfg_kind_t kind)
{
    switch (kind) {
    case CFG_K_INT: return "an integer";
    case CFG_K_F64: return "a number";
    case CFG_K_BOOL: return "true or false";
    case CFG_K_LIST: return "an array of strings";
    default: return "a string";
    }
}

static int wrong_type(parser_t *p, const cfg_key_t *k)
{
    return fail_at(p, here(p), "expected %s for key '%s', found %s", type_word(k->kind), k->name,
                   value_class(p));
}

/* At the byte after '\\'. */
static int read_escape(parser_t *p, pos_t start, unsigned char *out)
{
    pos_t at = here(p);
    at.col--;
    unsigned char c = cur(p);
    switch (c) {
    case '"': *out = '"'; break;
    case '\\': *out = '\\'; break;
    case 'n': *out = '\n'; break;
    case 't': *out = '\t'; break;
    default:
        if (at_line_end(p))
            return fail_at(p, start, "unterminated string");
        if (c >= 0x20 && c < 0x7f)
            return fail_at(p, at, "unsupported escape '\\%c' (use \\\" \\\\ \\n or \\t)", c);
        return fail_at(p, at, "unsupported escape: backslash before byte 0x%02x", c);
    }
    p->i++;
    return 0;
}

/* At '"': reads a basic string into out (cap bytes with the NUL). *len gets the
 * full unescaped length even when it did not fit, so the caller can refuse it
 * with the size: strings are never silently truncated. */
static int read_string(parser_t *p, char *out, size_t cap, size_t *len)
{
    pos_t start = here(p);
    if (peek(p, 1) == '"' && peek(p, 2) == '"')
        return fail_at(p, start, "multi-line strings (\"\"\") are not supported");
    p->i++;
    size_t n = 0;
    for (;;) {
        unsigned char c = cur(p);
        if (at_line_end(p))
            return fail_at(p, start, "unterminated string");
        if (c == '"') {
            p->i++;
            break;
        }
        if (is_ctrl(c))
            return fail_at(p, here(p), "control character 0x%02x in string", c);
        p->i++;
        if (c == '\\' && read_escape(p, start, &c) != 0)
            return -1;
        if (n + 1 < cap)
            out[n] = (char) c;
        n++;
    }
    out[n + 1 < cap ? n : cap - 1] = '\0';
    *len = n;
    return 0;
}

static bool is_choice(const char *const *choices, const char *v)
{
    for (size_t i = 0; choices[i]; i++)
        if (strcmp(choices[i], v) == 0)
            return true;
    return false;
}

static int bad_choice(parser_t *p, pos_t at, const cfg_key_t *k, const char *v)
{
    char list[256] = "";
    size_t used = 0;
    for (size_t i = 0; k->choices[i]; i++) {
        int w = snprintf(list + used, sizeof list - used, "%s%s", i ? ", " : "", k->choices[i]);
        if (w < 0 || (size_t) w >= sizeof list - used)
            break;
        used += (size_t) w;
    }
    return fail_at(p, at, "%s must be one of %s (got '%s')", k->name, list, v);
}

/* tcp://HOST:PORT with PORT 1..65535 or '*' (bind to an ephemeral port). */
static bool tcp_ok(const char *addr)
{
    const char *colon = strrchr(addr, ':');
    if (!colon || colon == addr)
        return false;
    const char *port = colon + 1;
    if (strcmp(port, "*") == 0)
        return true;
    size_t n = strlen(port);
    if (n == 0 || n > 5 || strspn(port, "0123456789") != n)
        return false;
    long v = strtol(port, NULL, 10);
    return v >= 1 && v <= 65535;
}

/* ZeroMQ would only fail at bind/connect time, in another process; catch a
 * missing scheme or port and an ipc path over sun_path here, naming the key. */
static int check_endpoint(parser_t *p, pos_t at, const cfg_key_t *k, const char *v)
{
    if (strncmp(v, "ipc://", 6) == 0 && v[6] != '\0') {
        size_t len = strlen(v + 6);
        if (len > CFG_IPC_PATH_MAX)
            return fail_at(p, at,
                           "ipc path of '%s' is %zu bytes, over the %d-byte "
                           "unix socket path limit",
                           k->name, len, CFG_IPC_PATH_MAX);
        return 0;
    }
    if (strncmp(v, "tcp://", 6) == 0 && tcp_ok(v + 6))
        return 0;
    return fail_at(p, at,
                   "'%s' must be an endpoint like tcp://HOST:PORT or ipc://PATH "
                   "(got '%s')",
                   k->name, v);
}

static int check_string(parser_t *p, pos_t at, const cfg_key_t *k, const char *v)
{
    if (v[0] == '\0')
        return k->nonempty ? fail_at(p, at, "'%s' must not be empty", k->name) : 0;
    if (k->kind == CFG_K_ENUM && !is_choice(k->choices, v))
        return bad_choice(p, at, k, v);
    if (k->kind == CFG_K_ENDPOINT)
        return check_endpoint(p, at, k, v);
    return 0;
}

/* Reads one string into a field-sized buffer, refusing one that does not fit. */
static int read_field_string(parser_t *p, const cfg_key_t *k, char *buf, size_t *len)
{
    pos_t at = here(p);
    if (read_string(p, buf, k->size, len) != 0)
        return -1;
    if (*len >= k->size)
        return fail_at(p, at, "string too long for '%s' (%zu bytes, max %zu)", k->name, *len,
                       k->size - 1);
    return 0;
}

static int parse_string_value(parser_t *p, const cfg_key_t *k)
{
    pos_t at = here(p);
    char buf[ALYS_PATH_MAX];
    size_t len;
    if (cur(p) != '"')
        return wrong_type(p, k);
    if (read_field_string(p, k, buf, &len) != 0 || check_string(p, at, k, buf) != 0)
        return -1;
    char *field = (char *) &p->cfg + k->off;
    memset(field, 0, k->size);
    memcpy(field, buf, len + 1);
    return 0;
}

_Static_assert(ALYS_PATH_MAX >= ALYS_ENDPOINT_MAX && ALYS_PATH_MAX >= ALYS_NAME_MAX,
               "parse_string_value's buffer must hold the largest string field");

/* A peer endpoint carries the peer's key (common/nodeaddr.h): a peer is
 * its key, and a bare tcp://HOST:PORT says nothing about who answers. */
static int check_peer(parser_t *p, pos_t at, const cfg_key_t *k, const char *v)
{
    if (alys_nodeaddr_valid(v))
        return 0;
    return fail_at(p, at,
                   "'%s' entries must be alys://KEY@HOST:PORT (the peer's `alysctl key show`; "
                   "KEY 64 hex or 40 z85 characters) (got '%s')",
                   k->name, v);
}

/* One array entry; `count` entries are already stored. */
static int parse_list_item(parser_t *p, const cfg_key_t *k, size_t count)
{
    pos_t at = here(p);
    char buf[ALYS_PATH_MAX];
    size_t len;
    if (cur(p) != '"')
        return fail_at(p, at, "expected a string in array '%s', found %s", k->name, value_class(p));
    if (count >= (size_t) k->imax)
        return fail_at(p, at, "too many entries in '%s' (max %lld)", k->name, (long long) k->imax);
    if (read_field_string(p, k, buf, &len) != 0)
        return -1;
    if (buf[0] == '\0')
        return fail_at(p, at, "empty string in '%s'", k->name);
    if (check_peer(p, at, k, buf) != 0)
        return -1;
    char *entry = (char *) &p->cfg + k->off + count * k->size;
    memset(entry, 0, k->size);
    memcpy(entry, buf, len + 1);
    return 0;
}

static int parse_list_value(parser_t *p, const cfg_key_t *k)
{
    pos_t open = here(p);
    size_t count = 0;
    if (cur(p) != '[')
        return wrong_type(p, k);
    p->i++;
    for (;;) {
        if (skip_blank(p) != 0)
            return -1;
        if (cur(p) == ']')
            break;
        if (at_eof(p))
            return fail_at(p, open, "unterminated array for '%s'", k->name);
        if (parse_list_item(p, k, count) != 0)
            return -1;
        count++;
        if (skip_blank(p) != 0)
            return -1;
        if (cur(p) == ',') {
            p->i++;
            continue;
        }
        if (cur(p) == ']')
            break;
        if (at_eof(p))
            return fail_at(p, open, "unterminated array for '%s'", k->name);
        return expected(p, "',' or ']' in the array");
    }
    p->i++;
    *(uint32_t *) ((char *) &p->cfg + k->count_off) = (uint32_t) count;
    return 0;
}


/* The token without its '_' separators, NUL-terminated; false if too long to
 * be any number we accept. */
static bool strip_token(const char *t, size_t n, char *out, size_t cap)
{
    size_t k = 0;
    for (size_t j = 0; j < n; j++) {
        if (t[j] == '_')
            continue;
        if (k + 1 >= cap)
            return false;
        out[k++] = t[j];
    }
    out[k] = '\0';
    return true;
}

/* Checks the number token at the read position; *len gets its length. */
static int number_token(parser_t *p, const cfg_key_t *k, size_t *len, bool *is_float)
{
    unsigned char c = cur(p);
    *len = token_len(p);
    if (*len == 0 || !(is_digit(c) || c == '+' || c == '-' || c == '.'))
        return wrong_type(p, k);
    if (!number_syntax(p->s + p->i, *len, is_float))
        return fail_at(p, here(p), "invalid number '%.*s' for '%s'",
                       (int) (*len > TOKEN_SHOW ? TOKEN_SHOW : *len), p->s + p->i, k->name);
    return 0;
}

static int out_of_range(parser_t *p, const cfg_key_t *k, size_t len)
{
    int show = (int) (len > TOKEN_SHOW ? TOKEN_SHOW : len);
    if (k->kind == CFG_K_F64)
        return fail_at(p, here(p), "value %.*s out of range for '%s' (%g..%g)", show, p->s + p->i,
                       k->name, k->fmin, k->fmax);
    return fail_at(p, here(p), "value %.*s out of range for '%s' (%lld..%lld)", show, p->s + p->i,
                   k->name, (long long) k->imin, (long long) k->imax);
}

static int parse_int_value(parser_t *p, const cfg_key_t *k)
{
    size_t len;
    bool is_float;
    char buf[32];
    if (number_token(p, k, &len, &is_float) != 0)
        return -1;
    if (is_float)
        return wrong_type(p, k);
    if (!strip_token(p->s + p->i, len, buf, sizeof buf))
        return out_of_range(p, k, len);
    errno = 0;
    long long v = strtoll(buf, NULL, 10);
    if (errno == ERANGE || v < k->imin || v > k->imax)
        return out_of_range(p, k, len);
    cfg_store_int(&p->cfg, k, v);
    p->i += len;
    return 0;
}

/* Integers are accepted for float keys: "latency_weight = 1" means 1.0. */
static int parse_f64_value(parser_t *p, const cfg_key_t *k)
{
    size_t len;
    bool is_float;
    char buf[64];
    if (number_token(p, k, &len, &is_float) != 0)
        return -1;
    if (!strip_token(p->s + p->i, len, buf, sizeof buf))
        return out_of_range(p, k, len);
    errno = 0;
    double v = strtod(buf, NULL);
    if (errno == ERANGE || !isfinite(v) || v < k->fmin || v > k->fmax)
        return out_of_range(p, k, len);
    *(double *) ((char *) &p->cfg + k->off) = v;
    p->i += len;
    return 0;
}

static int parse_bool_value(parser_t *p, const cfg_key_t *k)
{
    size_t len = token_len(p);
    bool v = word_is(p, len, "true");
    if (!v && !word_is(p, len, "false"))
        return wrong_type(p, k);
    *(bool *) ((char *) &p->cfg + k->off) = v;
    p->i += len;
    return 0;
}

static int parse_value(parser_t *p, const cfg_key_t *k)
{
    switch (k->kind) {
    case CFG_K_INT: return parse_int_value(p, k);
    case CFG_K_F64: return parse_f64_value(p, k);
    case CFG_K_BOOL: return parse_bool_value(p, k);
    case CFG_K_LIST: return parse_list_value(p, k);
    default: return parse_string_value(p, k);
    }
}

static int unknown_key(parser_t *p, pos_t at, const char *key)
{
    const char *table = cfg_table_at(p->table);
    int other = cfg_find_key(NULL, key);
    if (other >= 0)
        return fail_at(p, at, "unknown key '%s.%s' (it belongs in [%s])", table, key,
                       cfg_key_at(other)->table);
    const char *near = cfg_suggest_key(key);
    if (near)
        return fail_at(p, at, "unknown key '%s.%s' (did you mean '%s'?)", table, key, near);
    return fail_at(p, at, "unknown key '%s.%s'", table, key);
}

static int parse_keyval(parser_t *p)
{
    pos_t at = here(p);
    char key[KEY_NAME_MAX + 1];
    if (read_name(p, key, sizeof key, false) != 0)
        return -1;
    skip_ws(p);
    if (cur(p) == '.')
        return fail_at(p, here(p), "dotted keys are not supported; use a [table] header");
    if (cur(p) != '=') {
        char what[KEY_NAME_MAX + 32];
        (void) snprintf(what, sizeof what, "'=' after key '%s'", key);
        return expected(p, what);
    }
    p->i++;
    skip_ws(p);
    if (p->table < 0)
        return fail_at(p, at, "key '%s' is outside any [table]", key);
    int k = cfg_find_key(cfg_table_at(p->table), key);
    if (k < 0)
        return unknown_key(p, at, key);
    if (p->key_seen[k].line)
        return fail_at(p, at, "duplicate key '%s' (first set at line %d)", cfg_key_at(k)->name,
                       p->key_seen[k].line);
    p->key_seen[k] = at;
    if (parse_value(p, cfg_key_at(k)) != 0)
        return -1;
    char after[KEY_NAME_MAX * 2 + 32];
    (void) snprintf(after, sizeof after, "the value of '%s'", cfg_key_at(k)->name);
    return end_line(p, after);
}

static int parse_line(parser_t *p)
{
    unsigned char c = cur(p);
    if (c == '[')
        return parse_table(p);
    if (is_bare(c))
        return parse_keyval(p);
    if (c == '"' || c == '\'')
        return fail_at(p, here(p), "quoted keys are not supported");
    return expected(p, "a key, a [table] header or a comment");
}

static int parse_document(parser_t *p)
{
    /* A UTF-8 byte order mark is harmless; editors on some systems add one. */
    if (p->n >= 3 && memcmp(p->s, "\xEF\xBB\xBF", 3) == 0)
        p->i = p->line_start = 3;
    for (;;) {
        if (skip_blank(p) != 0)
            return -1;
        if (at_eof(p))
            return 0;
        if (parse_line(p) != 0)
            return -1;
    }
}

/* ------------------------------------------------------------ after parsing */

/* Collapses "//", "." and ".." of an absolute path in place, lexically: the
 * directories need not exist yet (data_dir is created by the node). */
static void normalize(char *path)
{
    size_t r = 0, w = 0, n = strlen(path);
    while (r < n) {
        while (r < n && path[r] == '/')
            r++;
        size_t start = r;
        while (r < n && path[r] != '/')
            r++;
        size_t len = r - start;
        if (len == 0 || (len == 1 && path[start] == '.'))
            continue;
        if (len == 2 && path[start] == '.' && path[start + 1] == '.') {
            while (w > 0 && path[--w] != '/')
                ;
            continue;
        }
        path[w++] = '/';
        memmove(path + w, path + start, len);
        w += len;
    }
    if (w == 0)
        path[w++] = '/';
    path[w] = '\0';
}

/* base + "/" + rel (or rel alone when absolute), normalized, into out. */
static int make_absolute(const char *base, const char *rel, char *out, size_t cap)
{
    char tmp[2 * PATH_MAX];
    int w = rel[0] == '/' ? snprintf(tmp, sizeof tmp, "%s", rel)
                          : snprintf(tmp, sizeof tmp, "%s/%s", base, rel);
    if (w < 0 || (size_t) w >= sizeof tmp)
        return -1;
    normalize(tmp);
    size_t len = strlen(tmp);
    if (len >= cap)
        return -1;
    memcpy(out, tmp, len + 1);
    return 0;
}

/* The config file's absolute path and directory: relative paths in the file
 * mean "next to this file", so a copied config works from any cwd. */
static int locate_file(parser_t *p)
{
    char cwd[PATH_MAX];
    if (p->name[0] != '/' && !getcwd(cwd, sizeof cwd))
        return fail_at(p, NOPOS, "cannot resolve relative paths: getcwd: %s", strerror(errno));
    if (make_absolute(p->name[0] == '/' ? "/" : cwd, p->name, p->abs_name, sizeof p->abs_name) != 0)
        return fail_at(p, NOPOS, "config file path is too long");
    memcpy(p->base, p->abs_name, sizeof p->base);
    char *slash = strrchr(p->base, '/');
    if (slash == p->base)
        slash[1] = '\0';
    else
        *slash = '\0';
    return 0;
}

static int resolve_paths(parser_t *p)
{
    for (size_t k = 0; k < cfg_key_count(); k++) {
        if (!cfg_key_at(k)->resolve)
            continue;
        char *field = (char *) &p->cfg + cfg_key_at(k)->off;
        if (field[0] == '\0')
            continue;
        char out[ALYS_PATH_MAX];
        if (make_absolute(p->base, field, out, cfg_key_at(k)->size) != 0)
            return fail_at(p, p->key_seen[k],
                           "'%s' is too long once made absolute "
                           "(max %zu bytes)",
                           cfg_key_at(k)->name, cfg_key_at(k)->size - 1);
        memset(field, 0, cfg_key_at(k)->size);
        memcpy(field, out, strlen(out) + 1);
    }
    return 0;
}

/* Reports at the key set later in the file, the one most likely just edited
 * (a --set is later than the file). */
static pos_t later_pos(const parser_t *p, int a, int b)
{
    pos_t pa = p->key_seen[a], pb = p->key_seen[b];
    if (pa.line < 0 || pb.line < 0) /* a --set: the latest edit of all */
        return pa.line < pb.line ? pa : pb;
    if (pa.line > pb.line || (pa.line == pb.line && pa.col > pb.col))
        return pa;
    return pb;
}


static int check_order(parser_t *p)
{
    size_t nrules;
    const cfg_order_rule_t *rules = cfg_order_rules(&nrules);
    for (size_t r = 0; r < nrules; r++) {
        int a = cfg_find_key_name(rules[r].lo), b = cfg_find_key_name(rules[r].hi);
        if (a < 0 || b < 0)
            return fail_at(p, NOPOS, "internal: unknown key in order rule %zu", r);
        int64_t va = cfg_load_int(&p->cfg, cfg_key_at(a)), vb = cfg_load_int(&p->cfg, cfg_key_at(b));
        bool ok = rules[r].strict ? va < vb : va <= vb;
        if (!ok)
            return fail_at(p, later_pos(p, a, b), "%s (%lld) must be %s %s (%lld)",
                           cfg_key_at(a)->name, (long long) va,
                           rules[r].strict ? "<" : "<=", cfg_key_at(b)->name, (long long) vb);
    }
    return 0;
}

/* CURVE without its keys would make the validator socket refuse everyone at
 * run time; say so while the operator is still looking at the file. */
static int check_curve(parser_t *p)
{
    const alys_config_t *c = &p->cfg;
    if (!c->curve_enabled || (c->curve_server_cert[0] && c->curve_allowed_dir[0]))
        return 0;
    return fail_at(p, p->key_seen[cfg_find_key_name("validation.curve_enabled")],
                   "validation.curve_enabled = true needs curve_server_cert and "
                   "curve_allowed_dir");
}

static int derive_checked(parser_t *p)
{
    const char *bad = NULL;
    size_t need = 0;
    if (cfg_derive_all(&p->cfg, &bad, &need) == 0)
        return 0;
    return fail_at(p, p->key_seen[cfg_find_key_name("node.run_dir")],
                   "run_dir '%s' is too long for ipc endpoints: %s.sock would need a "
                   "%zu-byte path, over the %d-byte unix socket limit (shorten run_dir or "
                   "set [endpoints] %s)",
                   p->cfg.run_dir, bad, need, CFG_IPC_PATH_MAX, bad);
}

/* The memory budget must hold its parts (rule in membudget.h): refused at
 * load, so every actor's alys_membudget_derive succeeds later. */
static int check_memory(parser_t *p)
{
    const alys_config_t *c = &p->cfg;
    alys_membudget_t b;
    char why[ALYS_ERR_MAX];
    if (alys_membudget_derive(&b, c->max_memory_gb, c->cache_size_mb, why, sizeof why) == 0)
        return 0;
    int a = cfg_find_key_name("sync.cache_size_mb"), k = cfg_find_key_name("sync.max_memory_gb");
    return fail_at(p, later_pos(p, a, k), "%s", why);
}

/* Keys set (in the file or by --set) that are accepted but do nothing: said
 * in cfg.notes, one line each. */
static void collect_notes(parser_t *p)
{
    size_t used = 0;
    for (size_t k = 0; k < cfg_key_count(); k++) {
        const cfg_key_t *d = cfg_key_at(k);
        if (!d->inert || p->key_seen[k].line == 0)
            continue;
        int w = snprintf(p->cfg.notes + used, sizeof p->cfg.notes - used,
                         "%s has no effect: %s\n", d->name, d->inert);
        if (w < 0 || (size_t) w >= sizeof p->cfg.notes - used)
            break;
        used += (size_t) w;
    }
}

/* "KEY=VALUE" as the text of that key's value, or of its unquoted string. */
static int set_value_text(parser_t *p, const cfg_key_t *k, const char *value, char *out, size_t cap)
{
    bool stringy = k->kind == CFG_K_STR || k->kind == CFG_K_ENUM || k->kind == CFG_K_ENDPOINT;
    size_t o = 0;
    if (!stringy || value[0] == '"') {
        if (strlen(value) >= cap)
            return fail_at(p, NOPOS, "value too long");
        memcpy(out, value, strlen(value) + 1);
        return 0;
    }
    out[o++] = '"';
    for (const char *v = value; *v; v++) {
        if (o + 4 >= cap)
            return fail_at(p, NOPOS, "value too long");
        if (*v == '"' || *v == '\\')
            out[o++] = '\\';
        out[o++] = *v;
    }
    out[o++] = '"';
    out[o] = '\0';
    return 0;
}

static int apply_set(parser_t *p, size_t index)
{
    const char *set = p->sets[index];
    (void) snprintf(p->set_name, sizeof p->set_name, "--set %s", set);
    p->name = p->set_name;
    p->setting = true;
    const char *eq = strchr(set, '=');
    char key[KEY_NAME_MAX * 2 + 2];
    size_t klen = eq ? (size_t) (eq - set) : 0;
    if (!eq || klen == 0 || klen >= sizeof key)
        return fail_at(p, NOPOS,
                       "expected KEY=VALUE with KEY as table.key, "
                       "e.g. sync.max_parallel_downloads=8");
    memcpy(key, set, klen);
    key[klen] = '\0';
    int k = cfg_find_key_name(key);
    if (k < 0 && !strchr(key, '.'))
        k = cfg_find_key(NULL, key); /* a short name is unambiguous today */
    if (k < 0) {
        const char *dot = strrchr(key, '.');
        const char *near = cfg_suggest_key(dot ? dot + 1 : key);
        if (near)
            return fail_at(p, NOPOS, "unknown key '%s' (did you mean '%s'?)", key, near);
        return fail_at(p, NOPOS, "unknown key '%s'", key);
    }
    char *buf = malloc(SET_TEXT_MAX);
    if (!buf)
        return fail_at(p, NOPOS, "out of memory");
    int rc = set_value_text(p, cfg_key_at(k), eq + 1, buf, SET_TEXT_MAX);
    if (rc == 0) {
        p->s = buf;
        p->n = strlen(buf);
        p->i = p->line_start = 0;
        p->line = 1;
        rc = parse_value(p, cfg_key_at(k));
        skip_ws(p);
        if (rc == 0 && !at_eof(p))
            rc = fail_at(p, NOPOS, "unexpected text after the value of '%s'", cfg_key_at(k)->name);
    }
    free(buf);
    if (rc == 0)
        p->key_seen[k] = (pos_t){-(int) index - 1, 0};
    return rc;
}

static int apply_sets(parser_t *p)
{
    const char *file = p->name;
    for (size_t i = 0; i < p->nsets; i++)
        if (apply_set(p, i) != 0)
            return -1;
    p->name = file;
    p->setting = false;
    return 0;
}

static int finish(parser_t *p, bool from_file)
{
    if (apply_sets(p) != 0 || resolve_paths(p) != 0 || check_order(p) != 0 ||
        check_curve(p) != 0 || check_memory(p) != 0 || derive_checked(p) != 0)
        return -1;
    collect_notes(p);
    const char *path = from_file ? p->abs_name : p->name;
    if (strlen(path) >= sizeof p->cfg.path)
        return fail_at(p, NOPOS, "config file path is too long (max %zu bytes)",
                       sizeof p->cfg.path - 1);
    memcpy(p->cfg.path, path, strlen(path) + 1);
    return 0;
}

int cfg_parse_text(alys_config_t *cfg, const char *text, size_t len, const char *name,
                   bool from_file, const char *const *sets, size_t nsets, char *err, size_t errlen)
{
    /* ~30 KiB of scratch: on the heap, not on a possibly small thread stack. */
    parser_t *p = calloc(1, sizeof *p);
    if (!p) {
        put_err(err, errlen, name, NOPOS, "out of memory");
        return -1;
    }
    p->s = text;
    p->n = len;
    p->line = 1;
    p->name = name;
    p->err = err;
    p->errlen = errlen;
    p->table = -1;
    p->sets = sets;
    p->nsets = nsets;
    cfg_set_defaults(&p->cfg);
    int rc = -1;
    if (locate_file(p) == 0 && parse_document(p) == 0 && finish(p, from_file) == 0) {
        *cfg = p->cfg;
        rc = 0;
    }
    free(p);
    return rc;
}

int alys_config_parse(alys_config_t *cfg, const char *text, const char *name, char *err, size_t errlen)
{
    if (!name || !name[0])
        name = "<config>";
    if (!cfg || !text) {
        put_err(err, errlen, name, NOPOS, "no config or text given");
        return -1;
    }
    return cfg_parse_text(cfg, text, strlen(text), name, false, NULL, 0, err, errlen);
}
