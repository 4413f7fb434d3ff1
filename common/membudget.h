/*  membudget.h: the node's memory budget (sync.max_memory_gb) split among
 *  its big consumers. One pure function: every actor sizes its buffers from
 *  it, and the supervisor logs the split once at start.
 *
 *  Rule. sync.cache_size_mb, when set (non-zero), is the RocksDB block cache
 *  as given; it may take at most half of the budget (the rest is for the
 *  parts below and the process baselines). Everything else is a share of
 *  the budget, raised to a floor (the node still works at the smallest
 *  budget, 1 GiB) and held to a cap (more would not be used):
 *
 *    consumer                      share      floor     cap
 *    RocksDB block cache (auto)    1/16       8 MiB     -- (half the budget)
 *    RocksDB write buffers, total  1/512      8 MiB     256 MiB
 *    PeerManager reorder buffer    1/128      16 MiB    256 MiB
 *
 *  At the default budget (8 GiB) the shares give today's sizes: cache
 *  512 MiB, write buffers 16 MiB, reorder 64 MiB. The reorder cap is what
 *  its 32 entries of at most one 8 MiB download can hold; its floor holds
 *  two such downloads. BlockProcessor's parked copy of that buffer
 *  (actors/block_processor/park.h) is held to the same reorder share: the
 *  buffer's bytes once more, at most. The per-column-family memtable
 *  (4 MiB) is a quarter of the write-buffer total, at least 2 MiB, at most
 *  64 MiB.
 */
#ifndef ALYS_MEMBUDGET_H
#define ALYS_MEMBUDGET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint64_t budget_bytes;          /* max_memory_gb, in bytes */
    uint64_t cache_bytes;           /* RocksDB block cache */
    bool cache_explicit;            /* from sync.cache_size_mb */
    uint64_t write_buffer_bytes;    /* RocksDB memtables, all column families */
    uint64_t cf_write_buffer_bytes; /* one column family's memtable */
    uint64_t reorder_bytes;         /* PeerManager reorder buffer bound */
} alys_membudget_t;

/* Fills *out from the budget in GiB and the explicit cache size in MiB (0:
 * a share of the budget). Returns 0, or -1 with a message naming the keys
 * in err when the budget cannot hold the explicit cache (or is 0). Pure. */
int alys_membudget_derive(alys_membudget_t *out, uint32_t max_memory_gb, uint32_t cache_size_mb,
                          char *err, size_t errlen);

/* One line, "memory budget 8 GiB: rocksdb cache 512 MiB, ..." into buf. */
void alys_membudget_describe(const alys_membudget_t *b, char *buf, size_t len);

#endif
