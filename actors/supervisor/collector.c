/*  collector.c: latest value per (name, labels), rendered as Prometheus text. */
#include "collector.h"

#include <czmq.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_LABELS 32

typedef struct {
    const char *key;
    size_t key_len;
    const char *value;
    size_t value_len; /* raw, still escaped */
} label_t;

typedef struct {
    char *family; /* TYPE/HELP name: the sample name less _bucket/_sum/_count */
    char *name;   /* sample name */
    char *labels; /* as rendered, actor first */
    char *base;   /* labels without le: groups a histogram's samples */
    char *actor;  /* actor label value, "" if none */
    int rank;     /* histogram order: 0 bucket, 1 sum, 2 count */
    double le;
    double value;
} series_t;

typedef struct {
    collector_kind_t kind;
    char *help;
    size_t refs; /* series in the family */
} family_t;

struct collector {
    pthread_mutex_t lock;
    zhashx_t *series;   /* "name{labels}" -> series_t* */
    zhashx_t *families; /* family -> family_t* */
    uint64_t dropped;
};

/* ---- validation */

static int is_name_start(int c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':';
}

static int is_name_char(int c)
{
    return is_name_start(c) || (c >= '0' && c <= '9');
}

int collector_valid_name(const char *name)
{
    if (!name || !is_name_start((unsigned char) name[0]) || strlen(name) >= COLLECTOR_NAME_MAX)
        return 0;
    for (const char *p = name + 1; *p; p++)
        if (!is_name_char((unsigned char) *p))
            return 0;
    return 1;
}

/* Split `k="v",k2="v2"` into labels; -1 if the syntax is not exactly that. */
static int split_labels(const char *s, label_t *out, int max)
{
    int n = 0;
    while (*s) {
        if (n == max)
            return -1;
        label_t *l = &out[n];
        l->key = s;
        if (!is_name_start((unsigned char) *s) || *s == ':')
            return -1;
        while (is_name_char((unsigned char) *s) && *s != ':')
            s++;
        l->key_len = (size_t) (s - l->key);
        if (s[0] != '=' || s[1] != '"')
            return -1;
        s += 2;
        l->value = s;
        while (*s && *s != '"') {
            if (*s == '\\') {
                if (s[1] != '\\' && s[1] != '"' && s[1] != 'n')
                    return -1;
                s++;
            } else if (*s == '\n') {
                return -1;
            }
            s++;
        }
        if (*s != '"')
            return -1;
        l->value_len = (size_t) (s - l->value);
        s++;
        n++;
        if (*s == ',' && s[1])
            s++;
        else if (*s)
            return -1;
    }
    return n;
}

static int key_is(const label_t *l, const char *key)
{
    return l->key_len == strlen(key) && memcmp(l->key, key, l->key_len) == 0;
}

int collector_parse_labels(const char *labels, int *has_actor)
{
    label_t ls[MAX_LABELS];
    int n = split_labels(labels ? labels : "", ls, MAX_LABELS);
    if (has_actor) {
        *has_actor = 0;
        for (int i = 0; i < n; i++)
            if (key_is(&ls[i], "actor"))
                *has_actor = 1;
    }
    return n;
}

/* ---- store */

static void series_free(void **item)
{
    series_t *s = *item;
    if (s) {
        free(s->family);
        free(s->name);
        free(s->labels);
        free(s->base);
        free(s->actor);
        free(s);
        *item = NULL;
    }
}

static void family_free(void **item)
{
    family_t *f = *item;
    if (f) {
        free(f->help);
        free(f);
        *item = NULL;
    }
}

collector_t *collector_new(void)
{
    collector_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->series = zhashx_new();
    self->families = zhashx_new();
    if (!self->series || !self->families || pthread_mutex_init(&self->lock, NULL) != 0) {
        zhashx_destroy(&self->series);
        zhashx_destroy(&self->families);
        free(self);
        return NULL;
    }
    zhashx_set_destructor(self->series, series_free);
    zhashx_set_destructor(self->families, family_free);
    return self;
}

void collector_destroy(collector_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    collector_t *self = *self_p;
    zhashx_destroy(&self->series);
    zhashx_destroy(&self->families);
    pthread_mutex_destroy(&self->lock);
    free(self);
    *self_p = NULL;
}

static const char *suffix_of(const char *name, const char *suffix)
{
    size_t n = strlen(name), m = strlen(suffix);
    return n > m && strcmp(name + n - m, suffix) == 0 ? name + n - m : NULL;
}

/* Family name and rank of a histogram sample; -1 if it is not one. */
static int histogram_part(const char *name, char *family, size_t len, int *rank)
{
    static const char *parts[] = {"_bucket", "_sum", "_count"};
    for (int r = 0; r < 3; r++) {
        const char *s = suffix_of(name, parts[r]);
        if (s) {
            snprintf(family, len, "%.*s", (int) (s - name), name);
            *rank = r;
            return 0;
        }
    }
    return -1;
}

static double parse_le(const label_t *l)
{
    char buf[64];
    snprintf(buf, sizeof buf, "%.*s", (int) (l->value_len < 63 ? l->value_len : 63), l->value);
    if (strcmp(buf, "+Inf") == 0 || strcmp(buf, "Inf") == 0)
        return INFINITY;
    char *end;
    double v = strtod(buf, &end);
    return (*buf && *end == '\0') ? v : NAN;
}

/* Fill the derived fields of s from its labels (le, base, actor). */
static int derive(series_t *s, const char *labels, char *err, size_t errlen)
{
    label_t ls[MAX_LABELS];
    int n = split_labels(labels, ls, MAX_LABELS);
    if (n < 0) {
        snprintf(err, errlen, "malformed labels '%.80s'", labels);
        return -1;
    }
    char base[COLLECTOR_LABELS_MAX + 64] = "";
    size_t used = 0;
    bool have_le = false;
    s->le = 0;
    for (int i = 0; i < n; i++) {
        if (s->rank == 0 && key_is(&ls[i], "le") && strcmp(s->name, s->family) != 0) {
            s->le = parse_le(&ls[i]);
            have_le = true;
            continue;
        }
        if (key_is(&ls[i], "actor") && !s->actor)
            s->actor = strndup(ls[i].value, ls[i].value_len);
        int w = snprintf(base + used, sizeof base - used, "%s%.*s=\"%.*s\"", used ? "," : "",
                         (int) ls[i].key_len, ls[i].key, (int) ls[i].value_len, ls[i].value);
        if (w > 0 && (size_t) w < sizeof base - used)
            used += (size_t) w;
    }
    if (strcmp(s->name, s->family) != 0 && s->rank == 0 && (!have_le || isnan(s->le))) {
        snprintf(err, errlen, "histogram bucket %s without a numeric le label", s->name);
        return -1;
    }
    s->base = strdup(base);
    if (!s->actor)
        s->actor = strdup("");
    return s->base && s->actor ? 0 : -1;
}

static series_t *series_new(const char *name, const char *labels, collector_kind_t kind,
                            char *err, size_t errlen)
{
    series_t *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    char family[COLLECTOR_NAME_MAX];
    if (kind == COLLECTOR_HISTOGRAM) {
        if (histogram_part(name, family, sizeof family, &s->rank) != 0) {
            snprintf(err, errlen, "histogram sample %s is not _bucket, _sum or _count", name);
            free(s);
            return NULL;
        }
    } else {
        snprintf(family, sizeof family, "%s", name);
    }
    s->family = strdup(family);
    s->name = strdup(name);
    s->labels = strdup(labels);
    void *item = s;
    if (!s->family || !s->name || !s->labels || derive(s, labels, err, errlen) != 0) {
        series_free(&item);
        return NULL;
    }
    return s;
}

/* Family bookkeeping: one kind per family; returns -1 on a kind conflict. */
static int family_ref(collector_t *self, const series_t *s, collector_kind_t kind,
                      const char *help, char *err, size_t errlen)
{
    family_t *f = zhashx_lookup(self->families, s->family);
    if (f) {
        if (f->kind != kind) {
            snprintf(err, errlen, "%s is already a metric of another type", s->family);
            return -1;
        }
        f->refs++;
        return 0;
    }
    f = calloc(1, sizeof *f);
    if (!f)
        return -1;
    f->kind = kind;
    f->refs = 1;
    f->help = strndup(help ? help : "", COLLECTOR_HELP_MAX);
    if (!f->help || zhashx_insert(self->families, s->family, f) != 0) {
        void *item = f;
        family_free(&item);
        return -1;
    }
    return 0;
}

static void family_unref(collector_t *self, const char *family)
{
    family_t *f = zhashx_lookup(self->families, family);
    if (f && --f->refs == 0)
        zhashx_delete(self->families, family);
}

/* Under the lock. */
static int store(collector_t *self, const char *name, const char *labels, collector_kind_t kind,
                 const char *help, double value, char *err, size_t errlen)
{
    char key[COLLECTOR_NAME_MAX + COLLECTOR_LABELS_MAX + 96];
    snprintf(key, sizeof key, "%s{%s}", name, labels);
    series_t *s = zhashx_lookup(self->series, key);
    if (s) {
        s->value = value;
        return 0;
    }
    if (zhashx_size(self->series) >= COLLECTOR_MAX_SERIES) {
        snprintf(err, errlen, "store is full (%d series)", COLLECTOR_MAX_SERIES);
        return -1;
    }
    s = series_new(name, labels, kind, err, errlen);
    if (!s)
        return -1;
    void *item = s;
    if (family_ref(self, s, kind, help, err, errlen) != 0) {
        series_free(&item);
        return -1;
    }
    s->value = value;
    if (zhashx_insert(self->series, key, s) != 0) {
        family_unref(self, s->family);
        series_free(&item);
        return -1;
    }
    return 0;
}

static int check(const char *name, const char *labels, collector_kind_t kind, char *err, size_t errlen)
{
    if (!collector_valid_name(name)) {
        snprintf(err, errlen, "invalid metric name '%.80s'", name ? name : "");
        return -1;
    }
    if (strlen(labels) >= COLLECTOR_LABELS_MAX) {
        snprintf(err, errlen, "labels of %s longer than %d bytes", name, COLLECTOR_LABELS_MAX);
        return -1;
    }
    if (kind != COLLECTOR_COUNTER && kind != COLLECTOR_GAUGE && kind != COLLECTOR_HISTOGRAM) {
        snprintf(err, errlen, "unknown metric kind %d for %s", (int) kind, name);
        return -1;
    }
    return 0;
}

int collector_push(collector_t *self, const char *sender, const char *name, const char *labels,
                   collector_kind_t kind, const char *help, double value, char *err, size_t errlen)
{
    labels = labels ? labels : "";
    int has_actor = 0;
    int rc = check(name, labels, kind, err, errlen);
    if (rc == 0 && collector_parse_labels(labels, &has_actor) < 0) {
        snprintf(err, errlen, "malformed labels '%.80s' on %s", labels, name);
        rc = -1;
    }
    if (rc == 0 && (!sender || !*sender || strlen(sender) > 64 || strpbrk(sender, "\"\\\n"))) {
        snprintf(err, errlen, "unusable sender name for %s", name);
        rc = -1;
    }
    char full[COLLECTOR_LABELS_MAX + 96];
    if (rc == 0) {
        /* The sender's own actor label wins: a collector or proxy may have
         * set it on purpose, and doubling a label makes the line invalid. */
        if (has_actor)
            snprintf(full, sizeof full, "%s", labels);
        else
            snprintf(full, sizeof full, "actor=\"%.64s\"%s%s", sender, *labels ? "," : "", labels);
    }
    pthread_mutex_lock(&self->lock);
    if (rc == 0)
        rc = store(self, name, full, kind, help, value, err, errlen);
    if (rc != 0)
        self->dropped++;
    pthread_mutex_unlock(&self->lock);
    return rc;
}

int collector_set(collector_t *self, const char *name, const char *labels, collector_kind_t kind,
                  const char *help, double value)
{
    char err[256];
    labels = labels ? labels : "";
    if (check(name, labels, kind, err, sizeof err) != 0)
        return -1;
    pthread_mutex_lock(&self->lock);
    int rc = store(self, name, labels, kind, help, value, err, sizeof err);
    pthread_mutex_unlock(&self->lock);
    return rc;
}

/* Under the lock: delete every series matching (family or any, actor). */
static void remove_matching(collector_t *self, const char *family, const char *actor)
{
    zlistx_t *doomed = zlistx_new();
    if (!doomed)
        return;
    for (series_t *s = zhashx_first(self->series); s; s = zhashx_next(self->series))
        if ((!family || strcmp(s->family, family) == 0) && strcmp(s->actor, actor) == 0)
            zlistx_add_end(doomed, (void *) zhashx_cursor(self->series));
    for (const char *key = zlistx_first(doomed); key; key = zlistx_next(doomed)) {
        series_t *s = zhashx_lookup(self->series, key);
        if (s) {
            family_unref(self, s->family);
            zhashx_delete(self->series, key);
        }
    }
    zlistx_destroy(&doomed);
}

void collector_remove(collector_t *self, const char *name, const char *actor)
{
    pthread_mutex_lock(&self->lock);
    remove_matching(self, name, actor);
    pthread_mutex_unlock(&self->lock);
}

void collector_forget(collector_t *self, const char *actor)
{
    pthread_mutex_lock(&self->lock);
    remove_matching(self, NULL, actor);
    pthread_mutex_unlock(&self->lock);
}

size_t collector_size(collector_t *self)
{
    pthread_mutex_lock(&self->lock);
    size_t n = zhashx_size(self->series);
    pthread_mutex_unlock(&self->lock);
    return n;
}

uint64_t collector_dropped(collector_t *self)
{
    pthread_mutex_lock(&self->lock);
    uint64_t n = self->dropped;
    pthread_mutex_unlock(&self->lock);
    return n;
}

/* ---- rendering */

static int by_family_then_labels(const void *a, const void *b)
{
    const series_t *x = *(series_t *const *) a, *y = *(series_t *const *) b;
    int c = strcmp(x->family, y->family);
    if (c == 0)
        c = strcmp(x->base, y->base);
    if (c == 0)
        c = x->rank - y->rank;
    if (c == 0)
        c = x->le < y->le ? -1 : x->le > y->le ? 1 : 0;
    if (c == 0)
        c = strcmp(x->name, y->name);
    return c;
}

static void format_value(double v, char *buf, size_t len)
{
    if (isnan(v))
        snprintf(buf, len, "NaN");
    else if (isinf(v))
        snprintf(buf, len, "%s", v > 0 ? "+Inf" : "-Inf");
    else if (v == floor(v) && fabs(v) < 1e15)
        snprintf(buf, len, "%.0f", v);
    else {
        /* Shortest of 15..17 digits that reads back exactly: 0.009, not
         * 0.0089999999999999993. */
        for (int digits = 15; digits <= 17; digits++) {
            snprintf(buf, len, "%.*g", digits, v);
            if (strtod(buf, NULL) == v)
                break;
        }
    }
}

static void write_help(FILE *out, const char *family, const char *help)
{
    fprintf(out, "# HELP %s ", family);
    for (const char *p = help; *p; p++) {
        if (*p == '\\')
            fputs("\\\\", out);
        else if (*p == '\n')
            fputs("\\n", out);
        else
            fputc(*p, out);
    }
    fputc('\n', out);
}

static const char *type_name(collector_kind_t kind)
{
    return kind == COLLECTOR_COUNTER ? "counter"
           : kind == COLLECTOR_GAUGE ? "gauge"
                                     : "histogram";
}

static void render_sorted(collector_t *self, series_t **all, size_t n, FILE *out)
{
    const char *current = NULL;
    for (size_t i = 0; i < n; i++) {
        series_t *s = all[i];
        if (!current || strcmp(current, s->family) != 0) {
            family_t *f = zhashx_lookup(self->families, s->family);
            write_help(out, s->family, f && *f->help ? f->help : s->family);
            fprintf(out, "# TYPE %s %s\n", s->family, type_name(f ? f->kind : COLLECTOR_GAUGE));
            current = s->family;
        }
        char value[64];
        format_value(s->value, value, sizeof value);
        if (*s->labels)
            fprintf(out, "%s{%s} %s\n", s->name, s->labels, value);
        else
            fprintf(out, "%s %s\n", s->name, value);
    }
}

char *collector_render(collector_t *self)
{
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    if (!out)
        return NULL;
    pthread_mutex_lock(&self->lock);
    size_t n = zhashx_size(self->series);
    series_t **all = calloc(n ? n : 1, sizeof *all);
    if (all) {
        size_t i = 0;
        for (series_t *s = zhashx_first(self->series); s && i < n; s = zhashx_next(self->series))
            all[i++] = s;
        qsort(all, i, sizeof *all, by_family_then_labels);
        render_sorted(self, all, i, out);
    }
    pthread_mutex_unlock(&self->lock);
    free(all);
    if (fclose(out) != 0 || !all) {
        free(text);
        return NULL;
    }
    return text;
}
