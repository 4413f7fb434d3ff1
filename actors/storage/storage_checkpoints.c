/*  storage_checkpoints.c: checkpoints (the seed's BlockCheckpoint) and the
 *  peer ban list.
 *
 *  Checkpoints are written in the WriteBatch of the blocks they describe
 *  (storage_execute.c calls in here) or on demand for the head, pruned to
 *  max_checkpoints in the same batch, and their heights are mirrored in
 *  memory (self->cps) so pruning needs no scan. The ban list is replaced
 *  whole, in one WriteBatch.
 */
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "storage_internal.h"
#include "util.h"

/* ------------------------------------------------------------ the list in memory */

int storage_cps_push(storage_cps_t *cps, uint64_t h)
{
    if (cps->count == cps->cap) {
        size_t cap = cps->cap ? 2 * cps->cap : 16;
        uint64_t *p = realloc(cps->heights, cap * sizeof *p);
        if (!p)
            return -1;
        cps->heights = p;
        cps->cap = cap;
    }
    cps->heights[cps->count++] = h;
    return 0;
}

void storage_cps_apply(storage_t *self, const uint64_t *added, size_t nadded, size_t drop)
{
    storage_cps_t *cps = &self->cps;
    for (size_t i = 0; i < nadded; i++)
        if (!(cps->count && cps->heights[cps->count - 1] == added[i]))
            if (storage_cps_push(cps, added[i]) != 0)
                log_warn("checkpoint list: out of memory (list is rebuilt on restart)");
    if (drop > cps->count)
        drop = cps->count;
    if (drop) {
        memmove(cps->heights, cps->heights + drop, (cps->count - drop) * sizeof *cps->heights);
        cps->count -= drop;
    }
    self->head.last_checkpoint = cps->count ? cps->heights[cps->count - 1] : 0;
}

/* ------------------------------------------------------------ records in a batch */

int storage_wb_put_checkpoint(rocksdb_writebatch_t *wb, storage_t *self, const alys_header_t *h,
                              const alys_hash_t hash, const Alys__Progress__SyncProgress *progress)
{
    uint8_t *buf;
    size_t len;
    if (storage_checkpoint_pack(h, hash, progress, self->policy.checkpoint_interval,
                                (uint64_t) alys_now_ms(), &buf, &len) != 0)
        return -1;
    storage_wb_put_height(wb, self, CF_CHECKPOINTS, h->height, buf, len);
    free(buf);
    return 0;
}

size_t storage_wb_prune_checkpoints(rocksdb_writebatch_t *wb, storage_t *self,
                                    const uint64_t *added, size_t nadded)
{
    const storage_cps_t *cps = &self->cps;
    size_t total = cps->count + nadded;
    size_t max = self->policy.max_checkpoints;
    size_t drop = total > max ? total - max : 0;
    for (size_t i = 0; i < drop; i++) {
        uint64_t h = i < cps->count ? cps->heights[i] : added[i - cps->count];
        storage_wb_delete_height(wb, self, CF_CHECKPOINTS, h);
    }
    return drop;
}

/* ------------------------------------------------------------ checkpoints (API) */

static int read_checkpoint(storage_t *self, uint64_t h, Alys__Chain__BlockCheckpoint **out,
                           char *err, size_t errlen)
{
    uint8_t key[HEIGHT_KEY_LEN];
    put_be64(key, h);
    char *val;
    size_t vlen;
    int rc = storage_db_get(self, CF_CHECKPOINTS, key, sizeof key, &val, &vlen, err, errlen);
    if (rc == 0)
        return alys_set_err(err, errlen, STORAGE_EIO, "checkpoint %llu vanished",
                            (unsigned long long) h);
    if (rc != 1)
        return rc;
    *out = alys__chain__block_checkpoint__unpack(NULL, vlen, (const uint8_t *) val);
    rocksdb_free(val);
    if (!*out)
        return alys_set_err(err, errlen, STORAGE_EIO, "checkpoint %llu does not decode (damaged)",
                            (unsigned long long) h);
    return STORAGE_OK;
}

int storage_create_checkpoint(storage_t *self, const Alys__Progress__SyncProgress *progress,
                              Alys__Chain__BlockCheckpoint **out, char *err, size_t errlen)
{
    if (out)
        *out = NULL;
    if (self->head.height == 0)
        return alys_set_err(err, errlen, STORAGE_EINVAL,
                            "no checkpoint at height 0: nothing is synced yet");
    if (!self->policy.checkpoint_interval || !self->policy.max_checkpoints)
        return alys_set_err(err, errlen, STORAGE_EINVAL,
                            "checkpoints are disabled (max_checkpoints 0)");
    rocksdb_writebatch_t *wb = rocksdb_writebatch_create();
    uint64_t h = self->head.height;
    int rc = STORAGE_OK;
    if (storage_wb_put_checkpoint(wb, self, &self->head_header, self->head.hash, progress) != 0)
        rc = alys_set_err(err, errlen, STORAGE_EIO, "out of memory");
    bool replaces = self->cps.count && self->cps.heights[self->cps.count - 1] == h;
    size_t drop = replaces ? 0 : storage_wb_prune_checkpoints(wb, self, &h, 1);
    if (rc == STORAGE_OK)
        rc = storage_db_write(self, wb, err, errlen);
    rocksdb_writebatch_destroy(wb);
    if (rc != STORAGE_OK)
        return rc;
    storage_cps_apply(self, &h, 1, drop);
    if (self->metrics) {
        alys_metric_add(self->metrics, "alys_checkpoints_created_total", NULL,
                        "Checkpoints written", 1);
        alys_metric_set(self->metrics, "alys_checkpoint_height", NULL,
                        "Height of the newest checkpoint", (double) h);
    }
    return out ? read_checkpoint(self, h, out, err, errlen) : STORAGE_OK;
}

void storage_checkpoints_free(Alys__Chain__BlockCheckpoint **list, size_t n)
{
    for (size_t i = 0; list && i < n; i++)
        alys__chain__block_checkpoint__free_unpacked(list[i], NULL);
    free(list);
}

int storage_list_checkpoints(storage_t *self, Alys__Chain__BlockCheckpoint ***out, size_t *n,
                             char *err, size_t errlen)
{
    *out = NULL;
    *n = 0;
    if (self->cps.count == 0)
        return STORAGE_OK;
    Alys__Chain__BlockCheckpoint **list = calloc(self->cps.count, sizeof *list);
    if (!list)
        return alys_set_err(err, errlen, STORAGE_EIO, "out of memory");
    for (size_t i = 0; i < self->cps.count; i++) {
        int rc = read_checkpoint(self, self->cps.heights[i], &list[i], err, errlen);
        if (rc != STORAGE_OK) {
            storage_checkpoints_free(list, i);
            return rc;
        }
    }
    *out = list;
    *n = self->cps.count;
    return STORAGE_OK;
}

/* ------------------------------------------------------------ peer bans */

static int check_bans(Alys__Storage__PeerBan *const *bans, size_t n, char *err, size_t errlen)
{
    if (n > STORAGE_MAX_PEER_BANS)
        return alys_set_err(err, errlen, STORAGE_EINVAL, "%zu bans exceed the limit %d", n,
                            STORAGE_MAX_PEER_BANS);
    for (size_t i = 0; i < n; i++) {
        const char *id = bans[i] ? bans[i]->peer_id : NULL;
        size_t len = id ? strlen(id) : 0;
        if (len == 0 || len > STORAGE_MAX_PEER_ID)
            return alys_set_err(err, errlen, STORAGE_EINVAL,
                                "ban %zu: peer_id empty or over %d bytes", i, STORAGE_MAX_PEER_ID);
    }
    return STORAGE_OK;
}

/* Delete every stored ban key into wb (the list is replaced whole). */
static int wb_clear_bans(storage_t *self, rocksdb_writebatch_t *wb, char *err, size_t errlen)
{
    rocksdb_iterator_t *it = rocksdb_create_iterator_cf(self->db.db, self->db.ropts,
                                                        self->db.cf[CF_PEERS]);
    for (rocksdb_iter_seek_to_first(it); rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
        size_t klen;
        const char *k = rocksdb_iter_key(it, &klen);
        rocksdb_writebatch_delete_cf(wb, self->db.cf[CF_PEERS], k, klen);
    }
    return storage_iter_close(it, STORAGE_OK, "peers", err, errlen);
}

int storage_put_peer_bans(storage_t *self, Alys__Storage__PeerBan *const *bans, size_t n,
                          char *err, size_t errlen)
{
    int rc = check_bans(bans, n, err, errlen);
    if (rc != STORAGE_OK)
        return rc;
    rocksdb_writebatch_t *wb = rocksdb_writebatch_create();
    rc = wb_clear_bans(self, wb, err, errlen);
    for (size_t i = 0; rc == STORAGE_OK && i < n; i++) {
        size_t len = alys__storage__peer_ban__get_packed_size(bans[i]);
        uint8_t *buf = malloc(len ? len : 1);
        if (!buf) {
            rc = alys_set_err(err, errlen, STORAGE_EIO, "out of memory");
            break;
        }
        alys__storage__peer_ban__pack(bans[i], buf);
        rocksdb_writebatch_put_cf(wb, self->db.cf[CF_PEERS], bans[i]->peer_id,
                                  strlen(bans[i]->peer_id), (const char *) buf, len);
        free(buf);
    }
    if (rc == STORAGE_OK)
        rc = storage_db_write(self, wb, err, errlen);
    rocksdb_writebatch_destroy(wb);
    return rc;
}

void storage_peer_bans_free(Alys__Storage__PeerBan **list, size_t n)
{
    for (size_t i = 0; list && i < n; i++)
        alys__storage__peer_ban__free_unpacked(list[i], NULL);
    free(list);
}

/* Append one stored ban to the growing list; undecodable records are
 * skipped with a warning (a damaged ban must not stop the node). */
static int push_ban(Alys__Storage__PeerBan ***list, size_t *n, size_t *cap, const char *val, size_t vlen)
{
    Alys__Storage__PeerBan *ban = alys__storage__peer_ban__unpack(NULL, vlen, (const uint8_t *) val);
    if (!ban) {
        log_warn("peers: skipping a ban record that does not decode");
        return 0;
    }
    if (*n == *cap) {
        size_t c = *cap ? 2 * *cap : 16;
        Alys__Storage__PeerBan **p = realloc(*list, c * sizeof *p);
        if (!p) {
            alys__storage__peer_ban__free_unpacked(ban, NULL);
            return -1;
        }
        *list = p;
        *cap = c;
    }
    (*list)[(*n)++] = ban;
    return 0;
}

int storage_get_peer_bans(storage_t *self, Alys__Storage__PeerBan ***out, size_t *n, char *err,
                          size_t errlen)
{
    Alys__Storage__PeerBan **list = NULL;
    size_t count = 0, cap = 0;
    int rc = STORAGE_OK;
    rocksdb_iterator_t *it = rocksdb_create_iterator_cf(self->db.db, self->db.ropts,
                                                        self->db.cf[CF_PEERS]);
    for (rocksdb_iter_seek_to_first(it); rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
        size_t vlen;
        const char *v = rocksdb_iter_value(it, &vlen);
        if (push_ban(&list, &count, &cap, v, vlen) != 0) {
            rc = alys_set_err(err, errlen, STORAGE_EIO, "out of memory");
            break;
        }
    }
    rc = storage_iter_close(it, rc, "peers", err, errlen);
    if (rc != STORAGE_OK) {
        storage_peer_bans_free(list, count);
        return rc;
    }
    *out = list;
    *n = count;
    return STORAGE_OK;
}
