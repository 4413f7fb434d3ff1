/*  membudget.c: the memory budget split (rule and table in membudget.h). */
#include "membudget.h"

#include <stdio.h>

#define MIB ((uint64_t) 1 << 20)
#define GIB ((uint64_t) 1 << 30)

#define CACHE_SHARE   16 /* budget / 16 */
#define CACHE_FLOOR   (8 * MIB)
#define WBUF_SHARE    512
#define WBUF_FLOOR    (8 * MIB)
#define WBUF_CAP      (256 * MIB)
#define CF_WBUF_FLOOR (2 * MIB)
#define CF_WBUF_CAP   (64 * MIB)
#define REORDER_SHARE 128
#define REORDER_FLOOR (16 * MIB)
#define REORDER_CAP   (256 * MIB)

static uint64_t clamp(uint64_t v, uint64_t lo, uint64_t hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

int alys_membudget_derive(alys_membudget_t *out, uint32_t max_memory_gb, uint32_t cache_size_mb,
                          char *err, size_t errlen)
{
    if (max_memory_gb == 0) {
        snprintf(err, errlen, "sync.max_memory_gb must be at least 1 GiB");
        return -1;
    }
    uint64_t budget = (uint64_t) max_memory_gb * GIB;
    /* The cache is one consumer among several (the download window's
     * blocks, the validators, the write buffers): it may take at most half. */
    if ((uint64_t) cache_size_mb * MIB > budget / 2) {
        snprintf(err, errlen,
                 "sync.cache_size_mb (%u MiB) must be at most half of "
                 "sync.max_memory_gb (%u GiB): the rest of the budget is for the download "
                 "window, the validators and the database's write buffers",
                 (unsigned) cache_size_mb, (unsigned) max_memory_gb);
        return -1;
    }
    alys_membudget_t b = {.budget_bytes = budget};
    b.cache_explicit = cache_size_mb != 0;
    /* An explicit cache below the floor is raised to it, as storage always
     * did: RocksDB with a near-empty cache thrashes its index blocks. */
    b.cache_bytes = b.cache_explicit ? (uint64_t) cache_size_mb * MIB : budget / CACHE_SHARE;
    if (b.cache_bytes < CACHE_FLOOR)
        b.cache_bytes = CACHE_FLOOR;
    b.write_buffer_bytes = clamp(budget / WBUF_SHARE, WBUF_FLOOR, WBUF_CAP);
    b.cf_write_buffer_bytes = clamp(b.write_buffer_bytes / 4, CF_WBUF_FLOOR, CF_WBUF_CAP);
    b.reorder_bytes = clamp(budget / REORDER_SHARE, REORDER_FLOOR, REORDER_CAP);
    *out = b;
    return 0;
}

void alys_membudget_describe(const alys_membudget_t *b, char *buf, size_t len)
{
    snprintf(buf, len,
             "memory budget %llu GiB (sync.max_memory_gb): rocksdb cache %llu MiB (%s), "
             "write buffers %llu MiB (%llu MiB per column family), reorder buffer %llu MiB",
             (unsigned long long) (b->budget_bytes / GIB),
             (unsigned long long) (b->cache_bytes / MIB),
             b->cache_explicit ? "sync.cache_size_mb" : "1/16 of the budget",
             (unsigned long long) (b->write_buffer_bytes / MIB),
             (unsigned long long) (b->cf_write_buffer_bytes / MIB),
             (unsigned long long) (b->reorder_bytes / MIB));
}
