/*  prom_parse.c: see prom_parse.h. */
#include "prom_parse.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LINE_MAX_ 4096

typedef struct {
    char family[256];
    char type[16];
    /* histogram state for the current label set */
    char base[1024];
    double last_le;
    double last_bucket;
    double inf_count;
    bool have_inf;
} state_t;

static bool name_start(int c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':';
}
static bool name_char(int c)
{
    return name_start(c) || (c >= '0' && c <= '9');
}

static const char *read_name(const char *p, char *out, size_t len)
{
    size_t n = 0;
    if (!name_start((unsigned char) *p))
        return NULL;
    while (name_char((unsigned char) *p) && n + 1 < len)
        out[n++] = *p++;
    out[n] = '\0';
    return p;
}

static bool parse_value(const char *s, double *v)
{
    if (strcmp(s, "+Inf") == 0) {
        *v = INFINITY;
        return true;
    }
    if (strcmp(s, "-Inf") == 0) {
        *v = -INFINITY;
        return true;
    }
    if (strcmp(s, "NaN") == 0) {
        *v = NAN;
        return true;
    }
    char *end;
    *v = strtod(s, &end);
    return *s && *end == '\0';
}

/* Labels `{k="v",...}` starting at p; fills base (without le) and le. */
static const char *read_labels(const char *p, char *base, size_t blen, double *le, bool *has_le)
{
    size_t used = 0;
    base[0] = '\0';
    *has_le = false;
    p++; /* '{' */
    while (*p != '}') {
        char key[128];
        const char *kstart = p;
        p = read_name(p, key, sizeof key);
        if (!p || p[0] != '=' || p[1] != '"')
            return NULL;
        p += 2;
        const char *vstart = p;
        while (*p && *p != '"') {
            if (*p == '\\') {
                if (p[1] != '\\' && p[1] != '"' && p[1] != 'n')
                    return NULL;
                p++;
            }
            p++;
        }
        if (*p != '"')
            return NULL;
        if (strcmp(key, "le") == 0) {
            char v[64];
            snprintf(v, sizeof v, "%.*s", (int) (p - vstart), vstart);
            if (!parse_value(v, le))
                return NULL;
            *has_le = true;
        } else {
            int w = snprintf(base + used, blen - used, "%s%.*s", used ? "," : "",
                             (int) (p + 1 - kstart), kstart);
            if (w > 0 && (size_t) w < blen - used)
                used += (size_t) w;
        }
        p++;
        if (*p == ',')
            p++;
        else if (*p != '}')
            return NULL;
    }
    return p + 1;
}

static int fail(char *err, size_t errlen, int line, const char *what, const char *text)
{
    snprintf(err, errlen, "line %d: %s: %.120s", line, what, text);
    return -1;
}

static bool has_suffix(const char *name, const char *family, const char *suffix)
{
    size_t f = strlen(family);
    return strncmp(name, family, f) == 0 && strcmp(name + f, suffix) == 0;
}

/* Comment lines. Declared families are remembered in seen (newline list). */
static int comment(state_t *st, char *seen, size_t seenlen, const char *l, int n, char *err,
                   size_t errlen)
{
    char name[256];
    if (strncmp(l, "# HELP ", 7) == 0)
        return read_name(l + 7, name, sizeof name) ? 0 : fail(err, errlen, n, "bad HELP", l);
    if (strncmp(l, "# TYPE ", 7) != 0)
        return 0; /* other comments are allowed */
    const char *p = read_name(l + 7, name, sizeof name);
    if (!p || *p != ' ')
        return fail(err, errlen, n, "bad TYPE", l);
    p++;
    if (strcmp(p, "counter") && strcmp(p, "gauge") && strcmp(p, "histogram") &&
        strcmp(p, "summary") && strcmp(p, "untyped"))
        return fail(err, errlen, n, "unknown type", l);
    char key[260];
    snprintf(key, sizeof key, "\n%s\n", name);
    if (strstr(seen, key))
        return fail(err, errlen, n, "family declared twice", l);
    if (strlen(seen) + strlen(name) + 2 < seenlen) {
        strcat(seen, name);
        strcat(seen, "\n");
    }
    snprintf(st->family, sizeof st->family, "%s", name);
    snprintf(st->type, sizeof st->type, "%s", p);
    st->base[0] = '\x01'; /* no label set yet */
    return 0;
}

static int histogram_sample(state_t *st, const char *name, const char *base, double le,
                            bool has_le, double v, int n, const char *l, char *err, size_t errlen)
{
    if (has_suffix(name, st->family, "_bucket")) {
        if (!has_le)
            return fail(err, errlen, n, "bucket without le", l);
        if (strcmp(base, st->base) != 0) {
            snprintf(st->base, sizeof st->base, "%s", base);
            st->last_le = -INFINITY;
            st->last_bucket = 0;
            st->have_inf = false;
        }
        if (le <= st->last_le || v < st->last_bucket)
            return fail(err, errlen, n, "buckets not ascending or not cumulative", l);
        st->last_le = le;
        st->last_bucket = v;
        if (isinf(le)) {
            st->have_inf = true;
            st->inf_count = v;
        }
        return 0;
    }
    if (has_suffix(name, st->family, "_count")) {
        if (strcmp(base, st->base) != 0 || !st->have_inf || st->inf_count != v)
            return fail(err, errlen, n, "_count without a matching +Inf bucket", l);
        return 0;
    }
    if (has_suffix(name, st->family, "_sum"))
        return 0;
    return fail(err, errlen, n, "sample is not part of its histogram family", l);
}

static int sample(state_t *st, const char *l, int n, prom_summary_t *out, char *err, size_t errlen)
{
    char name[256], base[1024] = "";
    double le = 0;
    bool has_le = false;
    const char *p = read_name(l, name, sizeof name);
    if (!p)
        return fail(err, errlen, n, "bad metric name", l);
    if (*p == '{' && !(p = read_labels(p, base, sizeof base, &le, &has_le)))
        return fail(err, errlen, n, "bad labels", l);
    if (*p != ' ')
        return fail(err, errlen, n, "no value", l);
    char value[64];
    snprintf(value, sizeof value, "%s", p + 1);
    char *sp = strchr(value, ' '); /* an optional timestamp follows */
    if (sp)
        *sp = '\0';
    double v;
    if (!parse_value(value, &v))
        return fail(err, errlen, n, "bad value", l);
    if (!*st->family)
        return fail(err, errlen, n, "sample before any TYPE", l);
    out->samples++;
    if (strcmp(st->type, "histogram") == 0)
        return histogram_sample(st, name, base, le, has_le, v, n, l, err, errlen);
    if (strcmp(name, st->family) != 0)
        return fail(err, errlen, n, "sample outside its family", l);
    return 0;
}

int prom_parse(const char *text, prom_summary_t *out, char *err, size_t errlen)
{
    state_t st;
    memset(&st, 0, sizeof st);
    memset(out, 0, sizeof *out);
    static char seen[1 << 16];
    snprintf(seen, sizeof seen, "\n");
    int n = 0;
    for (const char *l = text; *l;) {
        const char *nl = strchr(l, '\n');
        if (!nl)
            return fail(err, errlen, n + 1, "last line not terminated", l);
        char line[LINE_MAX_];
        size_t len = (size_t) (nl - l);
        if (len >= sizeof line)
            return fail(err, errlen, n + 1, "line too long", l);
        memcpy(line, l, len);
        line[len] = '\0';
        n++;
        l = nl + 1;
        if (!*line)
            continue;
        int rc;
        if (line[0] == '#') {
            rc = comment(&st, seen, sizeof seen, line, n, err, errlen);
            if (rc == 0 && strncmp(line, "# TYPE ", 7) == 0) {
                out->families++;
                out->histograms += strcmp(st.type, "histogram") == 0;
            }
        } else {
            rc = sample(&st, line, n, out, err, errlen);
        }
        if (rc != 0)
            return -1;
    }
    return 0;
}

int prom_value(const char *text, const char *series, double *value)
{
    size_t len = strlen(series);
    for (const char *l = text; l && *l; l = strchr(l, '\n'), l = l ? l + 1 : NULL) {
        if (strncmp(l, series, len) == 0 && l[len] == ' ') {
            char buf[64];
            const char *end = strchr(l + len + 1, '\n');
            snprintf(buf, sizeof buf, "%.*s", (int) (end ? end - (l + len + 1) : 63), l + len + 1);
            return parse_value(buf, value) ? 0 : -1;
        }
    }
    return -1;
}
