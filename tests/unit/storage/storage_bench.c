/*  storage_bench: commit throughput of the store module (execution + one
 *  RocksDB write per batch), without the BlockProcessor and without
 *  signature checks (the store does not verify signatures).
 *
 *      storage_bench [blocks=3000] [txs_per_block=10] [batch=256]
 *
 *  Prints blocks/s and tx/s with wal_sync on and off, then the time
 *  storage_open takes on the database just written (median and worst of
 *  REOPENS opens): the StorageActor's share of its restart after a crash.
 *  Figures, not assertions.
 */
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "storage.h"
#include "testchain.h"
#include "util.h"

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void) st, (void) flag, (void) ftw;
    return remove(path);
}

#define REOPENS 15

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *) a, y = *(const int64_t *) b;
    return (x > y) - (x < y);
}

/* Open and close the store REOPENS times; print median and worst open time. */
static int reopen(const alys_config_t *cfg)
{
    int64_t us[REOPENS];
    char err[512];
    for (int i = 0; i < REOPENS; i++) {
        int64_t t0 = alys_mono_us();
        storage_t *s = storage_open(cfg, err, sizeof err);
        us[i] = alys_mono_us() - t0;
        if (!s) {
            fprintf(stderr, "reopen: %s\n", err);
            return -1;
        }
        storage_destroy(&s);
    }
    qsort(us, REOPENS, sizeof us[0], cmp_i64);
    printf("wal_sync=%-5s reopen of that database (%d opens): median %.1f ms, worst %.1f ms\n",
           cfg->wal_sync ? "true" : "false", REOPENS, (double) us[REOPENS / 2] / 1e3,
           (double) us[REOPENS - 1] / 1e3);
    return 0;
}

static int run(const tchain_t *c, const char *dir, bool sync, uint32_t batch, uint32_t txs)
{
    alys_config_t cfg;
    alys_config_defaults(&cfg);
    snprintf(cfg.data_dir, sizeof cfg.data_dir, "%s/data-%s", dir, sync ? "sync" : "nosync");
    snprintf(cfg.genesis_file, sizeof cfg.genesis_file, "%s/genesis", dir);
    cfg.wal_sync = sync;
    char err[512];
    storage_t *s = storage_open(&cfg, err, sizeof err);
    if (!s) {
        fprintf(stderr, "open: %s\n", err);
        return -1;
    }
    int64_t t0 = alys_mono_us();
    for (size_t h = 0; h < c->nblocks; h += batch) {
        size_t n = c->nblocks - h < batch ? c->nblocks - h : batch;
        storage_batch_result_t r;
        if (storage_execute_batch(s, &c->blocks[h], n, NULL, &r, err, sizeof err) != 0 || r.failed) {
            fprintf(stderr, "batch at %zu: %s %s\n", h + 1, err, r.verdict.detail);
            storage_destroy(&s);
            return -1;
        }
    }
    double secs = (double) (alys_mono_us() - t0) / 1e6;
    storage_destroy(&s);
    printf("wal_sync=%-5s %zu blocks x %u txs, batches of %u: %.2f s, %.0f blocks/s, %.0f tx/s\n",
           sync ? "true" : "false", c->nblocks, txs, batch, secs, (double) c->nblocks / secs,
           (double) c->nblocks * txs / secs);
    return reopen(&cfg);
}

int main(int argc, char **argv)
{
    uint32_t blocks = argc > 1 ? (uint32_t) atoi(argv[1]) : 3000;
    uint32_t txs = argc > 2 ? (uint32_t) atoi(argv[2]) : 10;
    uint32_t batch = argc > 3 ? (uint32_t) atoi(argv[3]) : 256;
    if (batch == 0 || batch > STORAGE_MAX_BATCH_BLOCKS)
        batch = 256;
    char dir[] = "/tmp/alys-storage-bench-XXXXXX";
    if (!mkdtemp(dir))
        return 1;
    tchain_t *c = tchain_new(1000, 7, "storage-bench");
    char path[128];
    snprintf(path, sizeof path, "%s/genesis", dir);
    int64_t t0 = alys_mono_us();
    if (!c || tchain_save_genesis(c, path) != 0 || tchain_extend(c, blocks, txs) != 0)
        return 1;
    printf("generated %u blocks in %.2f s\n", blocks, (double) (alys_mono_us() - t0) / 1e6);
    int rc = run(c, dir, true, batch, txs) == 0 && run(c, dir, false, batch, txs) == 0 ? 0 : 1;
    tchain_destroy(&c);
    nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    return rc;
}
