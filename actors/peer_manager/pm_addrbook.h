/*  pm_addrbook.h: PeerManager's address book: every peer endpoint the node
 *  has heard of, and the decision which one to dial next. Pure: no sockets,
 *  no clock (every call takes now, unix ms), no randomness (the bucket key is
 *  handed in). Modelled on Bitcoin Core's addrman, much smaller.
 *
 *  Three tables, an endpoint is in at most one:
 *    bootstrap  the config's peers: always kept, never displaced, never
 *               evicted for failing (backoff capped at PM_BOOK_BOOT_BACKOFF_MAX_MS)
 *    tried      endpoints we connected to and that answered our handshake
 *    new        endpoints heard of (Status listen, GetPeers answers), not
 *               yet connected
 *
 *  Why junk cannot fill it. The new table is PM_BOOK_NEW_BUCKETS buckets of
 *  PM_BOOK_BUCKET_SIZE. An endpoint heard from a source goes to the bucket
 *  keyed_hash(source group, keyed_hash(source group, endpoint group) %
 *  PM_BOOK_NEW_BUCKETS_PER_SOURCE): one source group (an IPv4 /16, an IPv6
 *  /32, a host name, or "inbound" for announcements whose sender address we
 *  do not know) reaches at most PM_BOOK_NEW_BUCKETS_PER_SOURCE buckets, so it
 *  can crowd out only the endpoints that share them, and the key (random per
 *  node) keeps it from choosing which. The tried table is keyed by the
 *  endpoint's own group: an attacker gets into it only with endpoints that
 *  really answer. Bootstrap entries live apart and nothing displaces them.
 *
 *  In a full bucket a newcomer replaces the worst entry not being dialled
 *  (most failures, then heard longest ago): what was heard last is kept, so
 *  an honest endpoint announced once after a flood of junk is in the book;
 *  a full tried bucket sends its least recently connected entry back to new.
 *
 *  Failures. A failed attempt backs the entry off: PM_BOOK_BACKOFF_BASE_MS
 *  doubling to PM_BOOK_BACKOFF_MAX_MS. A new entry is evicted after
 *  PM_BOOK_NEW_RETRIES failures in a row, a tried one after
 *  PM_BOOK_TRIED_MAX_FAILURES.
 *
 *  What to dial (pm_addrbook_pick). Due bootstrap entries first; then
 *  tried and new in turn. New endpoints are never dialled in bulk: at most
 *  PM_BOOK_NEW_DIALS per PM_BOOK_NEW_DIAL_INTERVAL_MS (a token bucket), and
 *  those alternate between the newest never-tried entry of the whole table
 *  (what was heard last is dialled soon) and a round-robin over the buckets
 *  (each source's share is bounded however fast it announces). So after any
 *  flood, an endpoint heard once is dialled within two new picks unless
 *  something newer came since, and within 2 * PM_BOOK_NEW_BUCKETS picks
 *  regardless.
 *
 *  Endpoints are alys://KEY@host:port (common/nodeaddr.h), keyed by their
 *  canonical string (the caller canonicalises: a z85 and a hex spelling of
 *  one key are one entry); the group is read from the host.
 *
 *  Ownership: pm_addrbook_new allocates, pm_addrbook_destroy(&self) frees and
 *  nulls. Strings are copied in; pick copies the endpoint out.
 */
#ifndef PM_ADDRBOOK_H
#define PM_ADDRBOOK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"

#define PM_BOOK_NEW_BUCKETS             64
#define PM_BOOK_TRIED_BUCKETS           16
#define PM_BOOK_BUCKET_SIZE             16 /* so 1024 new, 256 tried */
#define PM_BOOK_NEW_BUCKETS_PER_SOURCE  8
#define PM_BOOK_TRIED_BUCKETS_PER_GROUP 4
#define PM_BOOK_BOOT_MAX                ALYS_MAX_BOOTSTRAP
#define PM_BOOK_SELF_MAX                8 /* endpoints found to be this node */
#define PM_BOOK_GROUP_MAX               64
#define PM_BOOK_NEW_RETRIES             3
#define PM_BOOK_TRIED_MAX_FAILURES      10
#define PM_BOOK_BACKOFF_BASE_MS         1000
#define PM_BOOK_BACKOFF_MAX_MS          600000
#define PM_BOOK_BOOT_BACKOFF_MAX_MS     10000
#define PM_BOOK_NEW_DIALS               2
#define PM_BOOK_NEW_DIAL_INTERVAL_MS    1000
/* Source group of announcements from inbound clients (sender unknown). */
#define PM_BOOK_SOURCE_INBOUND          "inbound"

typedef enum { PM_BOOK_NONE = 0, PM_BOOK_NEW, PM_BOOK_TRIED, PM_BOOK_BOOT } pm_book_table_t;

/* What pm_addrbook_add did. */
typedef enum {
    PM_BOOK_ADDED = 0,
    PM_BOOK_KNOWN,   /* already in the book: nothing changed */
    PM_BOOK_INVALID, /* not an endpoint, or ours / this node */
    PM_BOOK_NO_ROOM, /* its bucket is full of entries being dialled */
} pm_book_add_t;

typedef struct {
    size_t n_new, n_tried, n_boot, in_use;
    uint64_t added, evicted; /* since start */
} pm_book_stats_t;

/* One entry as persisted (StorageActor): what survives a restart. */
typedef struct {
    char endpoint[ALYS_ENDPOINT_MAX];
    char source[PM_BOOK_GROUP_MAX]; /* the source group it was heard from */
    bool tried;
    uint64_t last_success; /* unix ms, 0 = never */
    uint32_t failures;
} pm_book_record_t;

#define PM_BOOK_RECORDS_MAX \
    (PM_BOOK_NEW_BUCKETS * PM_BOOK_BUCKET_SIZE + PM_BOOK_TRIED_BUCKETS * PM_BOOK_BUCKET_SIZE)

typedef struct pm_addrbook pm_addrbook_t;

/* key: 16 bytes for the bucket hash (random per node; tests pass a fixed
 * one). our_listen: never added ("" or NULL = none). NULL on no memory. */
pm_addrbook_t *pm_addrbook_new(const uint8_t key[16], const char *our_listen);
void pm_addrbook_destroy(pm_addrbook_t **self_p);

/* The group of an endpoint's (or address's) host: "a.b" for IPv4, the first
 * two hextets for IPv6, else the host name; "" when there is no host.
 * Written to out (PM_BOOK_GROUP_MAX). A bare word without "://" (such as
 * PM_BOOK_SOURCE_INBOUND) is its own group. */
void pm_addrbook_group(const char *endpoint, char *out, size_t outlen);

/* A config peer: kept for good (moved out of new/tried if there). false
 * when invalid or PM_BOOK_BOOT_MAX are set. */
bool pm_addrbook_add_bootstrap(pm_addrbook_t *self, const char *endpoint);
/* endpoint heard from source (an endpoint, an address, or
 * PM_BOOK_SOURCE_INBOUND). */
pm_book_add_t pm_addrbook_add(pm_addrbook_t *self, const char *endpoint, const char *source,
                              uint64_t now);

/* The next endpoint to dial now, copied to out (ALYS_ENDPOINT_MAX); it is
 * then in use until pm_addrbook_failed / pm_addrbook_released. false when
 * nothing is due (or the new-dial budget is spent). */
bool pm_addrbook_pick(pm_addrbook_t *self, uint64_t now, char *out, size_t outlen);
/* The dial of endpoint answered our handshake: it moves to tried (bootstrap
 * stays), failures reset. */
void pm_addrbook_good(pm_addrbook_t *self, const char *endpoint, uint64_t now);
/* The attempt failed (no answer, refused): backoff, eviction. */
void pm_addrbook_failed(pm_addrbook_t *self, const char *endpoint, uint64_t now);
/* A connection that worked ended: not in use, dialled again after the base
 * backoff. */
void pm_addrbook_released(pm_addrbook_t *self, const char *endpoint, uint64_t now);
/* endpoint is this node: removed, and never added again. */
void pm_addrbook_self(pm_addrbook_t *self, const char *endpoint);

pm_book_table_t pm_addrbook_table_of(const pm_addrbook_t *self, const char *endpoint);
bool pm_addrbook_in_use(const pm_addrbook_t *self, const char *endpoint);
void pm_addrbook_stats(const pm_addrbook_t *self, pm_book_stats_t *out);
int64_t pm_addrbook_backoff(uint32_t failures, bool bootstrap);

/* Persistence: up to cap entries of new and tried (bootstrap comes from the
 * config), tried first. Import adds records as heard (tried ones straight
 * to tried), skipping invalid ones; returns how many were taken. */
size_t pm_addrbook_export(const pm_addrbook_t *self, pm_book_record_t *out, size_t cap);
size_t pm_addrbook_import(pm_addrbook_t *self, const pm_book_record_t *in, size_t n, uint64_t now);
/* Whether the book changed since the last pm_addrbook_clear_dirty. */
bool pm_addrbook_dirty(const pm_addrbook_t *self);
void pm_addrbook_clear_dirty(pm_addrbook_t *self);

#endif
