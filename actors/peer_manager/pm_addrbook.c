/*  pm_addrbook.c: see pm_addrbook.h. */
#include "pm_addrbook.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chain/chain.h"
#include "nodeaddr.h"
#include "wire/wire.h"

#define NEW_SLOTS   (PM_BOOK_NEW_BUCKETS * PM_BOOK_BUCKET_SIZE)
#define TRIED_SLOTS (PM_BOOK_TRIED_BUCKETS * PM_BOOK_BUCKET_SIZE)

typedef struct {
    bool used;
    bool in_use; /* being dialled or connected */
    char endpoint[ALYS_ENDPOINT_MAX];
    uint64_t ep_hash; /* quick compare before strcmp */
    char source[PM_BOOK_GROUP_MAX];
    uint64_t heard_at, last_try, last_success, next_try;
    uint32_t failures; /* in a row */
} entry_t;

struct pm_addrbook {
    uint64_t k0, k1;
    char our_listen[ALYS_ENDPOINT_MAX];
    entry_t new_[NEW_SLOTS];
    entry_t tried[TRIED_SLOTS];
    entry_t boot[PM_BOOK_BOOT_MAX];
    uint64_t self_ep[PM_BOOK_SELF_MAX]; /* hashes of endpoints found to be us */
    size_t n_self;
    /* new-dial token bucket */
    uint32_t tokens;
    uint64_t tokens_at;
    unsigned turn;                         /* tried / new alternation */
    unsigned new_turn;                     /* newest / round-robin alternation */
    char newest_source[PM_BOOK_GROUP_MAX]; /* source group of the last newest pick */
    size_t cursor;                         /* round-robin bucket */
    bool dirty;
    uint64_t added, evicted;
};

/* ---- the keyed hash (SipHash-2-4, common/chain) ---- */

/* hash of the strings a, b (NUL-separated) and the number n. */
static uint64_t khash(const pm_addrbook_t *self, const char *a, const char *b, uint64_t n)
{
    uint8_t buf[2 * ALYS_ENDPOINT_MAX + 16];
    size_t la = strnlen(a, ALYS_ENDPOINT_MAX), lb = strnlen(b, ALYS_ENDPOINT_MAX);
    memcpy(buf, a, la);
    buf[la] = 0;
    memcpy(buf + la + 1, b, lb);
    buf[la + 1 + lb] = 0;
    size_t len = la + lb + 2;
    for (int i = 0; i < 8; i++)
        buf[len++] = (uint8_t) (n >> (8 * i));
    return alys_siphash24(self->k0, self->k1, buf, len);
}

static uint64_t ep_hash(const pm_addrbook_t *self, const char *endpoint)
{
    return khash(self, "ep", endpoint, 0);
}

/* ---- groups ----------------------------------------------------------------- */

/* The host of "scheme://[key@]host:port" into out; false without one. */
static bool host_of(const char *endpoint, char *out, size_t outlen)
{
    const char *p = strstr(endpoint, "://");
    if (!p)
        return false;
    p += 3;
    const char *at = strrchr(p, '@');
    if (at)
        p = at + 1;
    const char *colon = strrchr(p, ':');
    size_t n = colon ? (size_t) (colon - p) : strlen(p);
    if (n >= 2 && p[0] == '[' && p[n - 1] == ']') { /* [v6] */
        p++;
        n -= 2;
    }
    if (n == 0 || n >= outlen)
        return false;
    memcpy(out, p, n);
    out[n] = '\0';
    return true;
}

void pm_addrbook_group(const char *endpoint, char *out, size_t outlen)
{
    char host[ALYS_ENDPOINT_MAX];
    if (!outlen)
        return;
    out[0] = '\0';
    if (!endpoint)
        return;
    if (!strstr(endpoint, "://")) { /* a bare source word, an address */
        char wrapped[ALYS_ENDPOINT_MAX + 16];
        snprintf(wrapped, sizeof wrapped, "tcp://%s:0", endpoint);
        if (!host_of(wrapped, host, sizeof host))
            return;
    } else if (!host_of(endpoint, host, sizeof host)) {
        return;
    }
    unsigned a, b, c, d;
    char extra;
    if (sscanf(host, "%u.%u.%u.%u%c", &a, &b, &c, &d, &extra) == 4 && a < 256 && b < 256) {
        snprintf(out, outlen, "%u.%u", a, b); /* IPv4 /16 */
        return;
    }
    if (strchr(host, ':')) { /* IPv6: the first two hextets, a /32 */
        const char *second = strchr(host, ':');
        const char *end = second ? strchr(second + 1, ':') : NULL;
        size_t n = end ? (size_t) (end - host) : strlen(host);
        snprintf(out, outlen, "%.*s", (int) n, host);
        return;
    }
    snprintf(out, outlen, "%s", host); /* a name is its own group */
}

/* ---- lifetime --------------------------------------------------------------- */

pm_addrbook_t *pm_addrbook_new(const uint8_t key[16], const char *our_listen)
{
    pm_addrbook_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    for (int i = 0; i < 8; i++) {
        self->k0 |= (uint64_t) key[i] << (8 * i);
        self->k1 |= (uint64_t) key[8 + i] << (8 * i);
    }
    snprintf(self->our_listen, sizeof self->our_listen, "%s", our_listen ? our_listen : "");
    self->tokens = PM_BOOK_NEW_DIALS;
    return self;
}

void pm_addrbook_destroy(pm_addrbook_t **self_p)
{
    if (self_p && *self_p) {
        free(*self_p);
        *self_p = NULL;
    }
}

/* ---- lookup ----------------------------------------------------------------- */

static entry_t *find_in(entry_t *t, size_t n, uint64_t h, const char *endpoint)
{
    for (size_t i = 0; i < n; i++)
        if (t[i].used && t[i].ep_hash == h && strcmp(t[i].endpoint, endpoint) == 0)
            return &t[i];
    return NULL;
}

static entry_t *find(const pm_addrbook_t *cself, const char *endpoint, pm_book_table_t *table)
{
    pm_addrbook_t *self = (pm_addrbook_t *) cself;
    uint64_t h = ep_hash(self, endpoint);
    entry_t *e;
    pm_book_table_t t = PM_BOOK_NONE;
    if ((e = find_in(self->boot, PM_BOOK_BOOT_MAX, h, endpoint)))
        t = PM_BOOK_BOOT;
    else if ((e = find_in(self->tried, TRIED_SLOTS, h, endpoint)))
        t = PM_BOOK_TRIED;
    else if ((e = find_in(self->new_, NEW_SLOTS, h, endpoint)))
        t = PM_BOOK_NEW;
    if (table)
        *table = t;
    return e;
}

pm_book_table_t pm_addrbook_table_of(const pm_addrbook_t *self, const char *endpoint)
{
    pm_book_table_t t = PM_BOOK_NONE;
    if (endpoint)
        find(self, endpoint, &t);
    return t;
}

bool pm_addrbook_in_use(const pm_addrbook_t *self, const char *endpoint)
{
    entry_t *e = endpoint ? find(self, endpoint, NULL) : NULL;
    return e && e->in_use;
}

static bool is_self(const pm_addrbook_t *self, const char *endpoint)
{
    if (self->our_listen[0] && strcmp(self->our_listen, endpoint) == 0)
        return true;
    uint64_t h = ep_hash(self, endpoint);
    for (size_t i = 0; i < self->n_self; i++)
        if (self->self_ep[i] == h)
            return true;
    return false;
}

static bool acceptable(const pm_addrbook_t *self, const char *endpoint)
{
    /* Keyed endpoints only (a peer is its key, common/nodeaddr.h); callers
     * pass them canonical, so one peer is one entry. */
    return endpoint && alys_nodeaddr_valid(endpoint) && strlen(endpoint) < ALYS_ENDPOINT_MAX &&
           !is_self(self, endpoint);
}

/* ---- insertion -------------------------------------------------------------- */

static size_t new_bucket(const pm_addrbook_t *self, const char *endpoint, const char *source)
{
    char sg[PM_BOOK_GROUP_MAX], eg[PM_BOOK_GROUP_MAX];
    pm_addrbook_group(source, sg, sizeof sg);
    pm_addrbook_group(endpoint, eg, sizeof eg);
    uint64_t h1 = khash(self, eg, sg, 1);
    return (size_t) (khash(self, sg, "", h1 % PM_BOOK_NEW_BUCKETS_PER_SOURCE) % PM_BOOK_NEW_BUCKETS);
}

static size_t tried_bucket(const pm_addrbook_t *self, const char *endpoint)
{
    char eg[PM_BOOK_GROUP_MAX];
    pm_addrbook_group(endpoint, eg, sizeof eg);
    uint64_t h1 = khash(self, endpoint, "", 2);
    return (size_t) (khash(self, eg, "tried", h1 % PM_BOOK_TRIED_BUCKETS_PER_GROUP) %
                     PM_BOOK_TRIED_BUCKETS);
}

/* How many entries of bucket were heard from source group g. */
static size_t group_count(const entry_t *bucket, const char *g)
{
    size_t n = 0;
    for (size_t i = 0; i < PM_BOOK_BUCKET_SIZE; i++)
        n += bucket[i].used && strcmp(bucket[i].source, g) == 0;
    return n;
}

/* Whether e should go before worst when room is needed in a new bucket
 * for a newcomer from group sg: failed entries first (most failures), then
 * the source group holding the most of the bucket (counting the newcomer
 * with its own group), so no group keeps more than its share against
 * another; then the one heard longest ago. */
static bool worse_new(const entry_t *bucket, const entry_t *e, const entry_t *worst, const char *sg)
{
    if (e->failures != worst->failures)
        return e->failures > worst->failures;
    size_t ce = group_count(bucket, e->source) + (strcmp(e->source, sg) == 0);
    size_t cw = group_count(bucket, worst->source) + (strcmp(worst->source, sg) == 0);
    if (ce != cw)
        return ce > cw;
    return e->heard_at < worst->heard_at;
}

/* The slot for a newcomer in bucket (of PM_BOOK_BUCKET_SIZE): a free one,
 * else the worst entry not in use (new: worse_new for source group sg;
 * tried, sg NULL: connected longest ago). NULL when all are in use. */
static entry_t *room_in(entry_t *bucket, const char *sg)
{
    entry_t *worst = NULL;
    for (size_t i = 0; i < PM_BOOK_BUCKET_SIZE; i++) {
        entry_t *e = &bucket[i];
        if (!e->used)
            return e;
        if (e->in_use)
            continue;
        if (!worst)
            worst = e;
        else if (!sg ? e->last_success < worst->last_success : worse_new(bucket, e, worst, sg))
            worst = e;
    }
    return worst;
}

static void fill(pm_addrbook_t *self, entry_t *e, const char *endpoint, const char *source_group,
                 uint64_t now)
{
    *e = (entry_t){.used = true, .heard_at = now};
    snprintf(e->endpoint, sizeof e->endpoint, "%s", endpoint);
    snprintf(e->source, sizeof e->source, "%s", source_group);
    e->ep_hash = ep_hash(self, endpoint);
    self->dirty = true;
}

/* Put endpoint in the new table under source_group (a group already). */
static pm_book_add_t add_new(pm_addrbook_t *self, const char *endpoint, const char *source_group,
                             uint64_t now, entry_t **out)
{
    entry_t *bucket = &self->new_[new_bucket(self, endpoint, source_group) * PM_BOOK_BUCKET_SIZE];
    entry_t *e = room_in(bucket, source_group);
    if (!e)
        return PM_BOOK_NO_ROOM;
    if (e->used)
        self->evicted++;
    fill(self, e, endpoint, source_group, now);
    self->added++;
    if (out)
        *out = e;
    return PM_BOOK_ADDED;
}

pm_book_add_t pm_addrbook_add(pm_addrbook_t *self, const char *endpoint, const char *source,
                              uint64_t now)
{
    if (!acceptable(self, endpoint))
        return PM_BOOK_INVALID;
    if (find(self, endpoint, NULL))
        return PM_BOOK_KNOWN;
    char sg[PM_BOOK_GROUP_MAX];
    pm_addrbook_group(source ? source : PM_BOOK_SOURCE_INBOUND, sg, sizeof sg);
    return add_new(self, endpoint, sg, now, NULL);
}

bool pm_addrbook_add_bootstrap(pm_addrbook_t *self, const char *endpoint)
{
    if (!acceptable(self, endpoint))
        return false;
    pm_book_table_t t;
    entry_t *old = find(self, endpoint, &t);
    if (t == PM_BOOK_BOOT)
        return true;
    for (size_t i = 0; i < PM_BOOK_BOOT_MAX; i++) {
        entry_t *e = &self->boot[i];
        if (e->used)
            continue;
        entry_t keep = old ? *old : (entry_t){0};
        fill(self, e, endpoint, "bootstrap", 0);
        if (old) { /* it moves here: keep what we know of it */
            e->in_use = keep.in_use;
            e->last_success = keep.last_success;
            *old = (entry_t){0};
        }
        return true;
    }
    return false;
}

/* Move e (in new) to tried; a full tried bucket sends its least recently
 * connected entry back to new. */
static entry_t *promote(pm_addrbook_t *self, entry_t *e)
{
    entry_t moving = *e;
    entry_t *bucket = &self->tried[tried_bucket(self, moving.endpoint) * PM_BOOK_BUCKET_SIZE];
    entry_t *slot = room_in(bucket, NULL);
    if (!slot)
        return e; /* all connected: it stays in new, still in use */
    *e = (entry_t){0};
    if (slot->used) {
        entry_t old = *slot;
        entry_t *back = NULL;
        if (add_new(self, old.endpoint, old.source, old.heard_at, &back) == PM_BOOK_ADDED) {
            back->last_success = old.last_success;
            back->last_try = old.last_try;
        }
    }
    *slot = moving;
    self->dirty = true;
    return slot;
}

/* ---- outcomes --------------------------------------------------------------- */

int64_t pm_addrbook_backoff(uint32_t failures, bool bootstrap)
{
    int64_t cap = bootstrap ? PM_BOOK_BOOT_BACKOFF_MAX_MS : PM_BOOK_BACKOFF_MAX_MS;
    int64_t ms = PM_BOOK_BACKOFF_BASE_MS;
    for (uint32_t i = 1; i < failures && ms < cap; i++)
        ms *= 2;
    return ms < cap ? ms : cap;
}

void pm_addrbook_good(pm_addrbook_t *self, const char *endpoint, uint64_t now)
{
    pm_book_table_t t;
    entry_t *e = endpoint ? find(self, endpoint, &t) : NULL;
    if (!e)
        return;
    if (t == PM_BOOK_NEW)
        e = promote(self, e);
    e->in_use = true;
    e->failures = 0;
    e->last_success = now;
    e->next_try = now;
    self->dirty = true;
}

void pm_addrbook_failed(pm_addrbook_t *self, const char *endpoint, uint64_t now)
{
    pm_book_table_t t;
    entry_t *e = endpoint ? find(self, endpoint, &t) : NULL;
    if (!e)
        return;
    e->in_use = false;
    e->failures++;
    e->next_try = now + (uint64_t) pm_addrbook_backoff(e->failures, t == PM_BOOK_BOOT);
    uint32_t limit = t == PM_BOOK_NEW ? PM_BOOK_NEW_RETRIES : PM_BOOK_TRIED_MAX_FAILURES;
    if (t != PM_BOOK_BOOT && e->failures >= limit) {
        *e = (entry_t){0};
        self->evicted++;
    }
    self->dirty = true;
}

void pm_addrbook_released(pm_addrbook_t *self, const char *endpoint, uint64_t now)
{
    entry_t *e = endpoint ? find(self, endpoint, NULL) : NULL;
    if (!e)
        return;
    e->in_use = false;
    e->next_try = now + PM_BOOK_BACKOFF_BASE_MS;
}

void pm_addrbook_self(pm_addrbook_t *self, const char *endpoint)
{
    if (!endpoint)
        return;
    entry_t *e = find(self, endpoint, NULL);
    if (e)
        *e = (entry_t){0};
    self->self_ep[self->n_self % PM_BOOK_SELF_MAX] = ep_hash(self, endpoint);
    if (self->n_self < PM_BOOK_SELF_MAX)
        self->n_self++;
    self->dirty = true;
}

/* ---- what to dial ----------------------------------------------------------- */

static bool due(const entry_t *e, uint64_t now)
{
    return e->used && !e->in_use && e->next_try <= now;
}

/* The due entry of t[0..n) tried longest ago (never = first). */
static entry_t *oldest_try(entry_t *t, size_t n, uint64_t now)
{
    entry_t *best = NULL;
    for (size_t i = 0; i < n; i++)
        if (due(&t[i], now) && (!best || t[i].last_try < best->last_try))
            best = &t[i];
    return best;
}

/* The due entry of t[0..n) heard last and never dialled, from another
 * source group than skip if there is one: one source announcing without
 * end (a peer answering GetPeers with 64 new junk endpoints every 10 s)
 * must not bury what another source announced once, so the newest picks
 * take turns between source groups. */
static entry_t *newest(entry_t *t, size_t n, uint64_t now, const char *skip)
{
    entry_t *best = NULL, *other = NULL;
    for (size_t i = 0; i < n; i++) {
        entry_t *e = &t[i];
        if (!due(e, now) || e->last_try)
            continue;
        if (!best || e->heard_at > best->heard_at)
            best = e;
        if (strcmp(e->source, skip) != 0 && (!other || e->heard_at > other->heard_at))
            other = e;
    }
    return other ? other : best;
}

/* The entry of one bucket to dial on its round-robin turn: the due entry
 * whose source group has the fewest entries there (a group announcing
 * little is not queued behind one announcing much), heard longest ago. */
static entry_t *bucket_pick(entry_t *bucket, uint64_t now)
{
    entry_t *best = NULL;
    size_t best_n = 0;
    for (size_t i = 0; i < PM_BOOK_BUCKET_SIZE; i++) {
        entry_t *e = &bucket[i];
        if (!due(e, now))
            continue;
        size_t n = group_count(bucket, e->source);
        if (!best || n < best_n || (n == best_n && e->heard_at < best->heard_at)) {
            best = e;
            best_n = n;
        }
    }
    return best;
}

static entry_t *round_robin(pm_addrbook_t *self, uint64_t now)
{
    for (size_t k = 0; k < PM_BOOK_NEW_BUCKETS; k++) {
        size_t b = (self->cursor + k) % PM_BOOK_NEW_BUCKETS;
        entry_t *e = bucket_pick(&self->new_[b * PM_BOOK_BUCKET_SIZE], now);
        if (e) {
            self->cursor = (b + 1) % PM_BOOK_NEW_BUCKETS;
            return e;
        }
    }
    return NULL;
}

static void refill(pm_addrbook_t *self, uint64_t now)
{
    if (now < self->tokens_at) { /* the clock went back: start again from here */
        self->tokens_at = now;
        return;
    }
    uint64_t periods = (now - self->tokens_at) / PM_BOOK_NEW_DIAL_INTERVAL_MS;
    if (!periods)
        return;
    uint64_t t = self->tokens + periods * PM_BOOK_NEW_DIALS;
    self->tokens = (uint32_t) (t > PM_BOOK_NEW_DIALS ? PM_BOOK_NEW_DIALS : t);
    self->tokens_at += periods * PM_BOOK_NEW_DIAL_INTERVAL_MS;
}

static entry_t *pick_new(pm_addrbook_t *self, uint64_t now)
{
    refill(self, now);
    if (!self->tokens)
        return NULL;
    entry_t *e = NULL;
    if (self->new_turn++ % 2 == 0) {
        e = newest(self->new_, NEW_SLOTS, now, self->newest_source);
        if (e)
            snprintf(self->newest_source, sizeof self->newest_source, "%s", e->source);
    }
    if (!e)
        e = round_robin(self, now);
    if (e)
        self->tokens--;
    return e;
}

bool pm_addrbook_pick(pm_addrbook_t *self, uint64_t now, char *out, size_t outlen)
{
    entry_t *e = oldest_try(self->boot, PM_BOOK_BOOT_MAX, now);
    if (!e) {
        bool tried_first = self->turn++ % 2 == 0;
        if (tried_first)
            e = oldest_try(self->tried, TRIED_SLOTS, now);
        if (!e)
            e = pick_new(self, now);
        if (!e && !tried_first)
            e = oldest_try(self->tried, TRIED_SLOTS, now);
    }
    if (!e)
        return false;
    e->in_use = true;
    e->last_try = now ? now : 1; /* 0 means "never" */
    snprintf(out, outlen, "%s", e->endpoint);
    return true;
}

/* ---- stats, persistence ----------------------------------------------------- */

static size_t count(const entry_t *t, size_t n, size_t *in_use)
{
    size_t c = 0;
    for (size_t i = 0; i < n; i++) {
        c += t[i].used;
        *in_use += t[i].used && t[i].in_use;
    }
    return c;
}

void pm_addrbook_stats(const pm_addrbook_t *self, pm_book_stats_t *out)
{
    *out = (pm_book_stats_t){.added = self->added, .evicted = self->evicted};
    out->n_new = count(self->new_, NEW_SLOTS, &out->in_use);
    out->n_tried = count(self->tried, TRIED_SLOTS, &out->in_use);
    out->n_boot = count(self->boot, PM_BOOK_BOOT_MAX, &out->in_use);
}

static size_t export_from(const entry_t *t, size_t n, bool tried, pm_book_record_t *out,
                          size_t cap, size_t have)
{
    for (size_t i = 0; i < n && have < cap; i++) {
        if (!t[i].used)
            continue;
        pm_book_record_t *r = &out[have++];
        *r = (pm_book_record_t){.tried = tried,
                                .last_success = t[i].last_success,
                                .failures = t[i].failures};
        snprintf(r->endpoint, sizeof r->endpoint, "%s", t[i].endpoint);
        snprintf(r->source, sizeof r->source, "%s", t[i].source);
    }
    return have;
}

size_t pm_addrbook_export(const pm_addrbook_t *self, pm_book_record_t *out, size_t cap)
{
    size_t n = export_from(self->tried, TRIED_SLOTS, true, out, cap, 0);
    return export_from(self->new_, NEW_SLOTS, false, out, cap, n);
}

size_t pm_addrbook_import(pm_addrbook_t *self, const pm_book_record_t *in, size_t n, uint64_t now)
{
    size_t taken = 0;
    for (size_t i = 0; i < n; i++) {
        const pm_book_record_t *r = &in[i];
        if (!memchr(r->endpoint, 0, sizeof r->endpoint) || !memchr(r->source, 0, sizeof r->source))
            continue;
        if (!acceptable(self, r->endpoint) || find(self, r->endpoint, NULL))
            continue;
        entry_t *e = NULL;
        if (add_new(self, r->endpoint, r->source[0] ? r->source : "stored", now, &e) != PM_BOOK_ADDED)
            continue;
        e->last_success = r->last_success;
        e->failures = r->failures < PM_BOOK_NEW_RETRIES ? r->failures : 0;
        if (r->tried) {
            e = promote(self, e);
            e->failures = r->failures < PM_BOOK_TRIED_MAX_FAILURES ? r->failures : 0;
        }
        taken++;
    }
    return taken;
}

bool pm_addrbook_dirty(const pm_addrbook_t *self)
{
    return self->dirty;
}

void pm_addrbook_clear_dirty(pm_addrbook_t *self)
{
    self->dirty = false;
}
