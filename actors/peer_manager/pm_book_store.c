/*  pm_book_store.c: the address book (pm_addrbook.h) across restarts, kept
 *  by StorageActor (GetAddrBook / PutAddrBook, one bounded value).
 *
 *    - load once at start, before any peer is dialled (peer_net waits for
 *      pm_book_store_ready); any answer counts (an error answer is an empty
 *      book, a storage without the request too); no answer is retried,
 *      PM_BOOK_LOAD_TRIES times, then the node goes on with an empty book
 *      rather than never dialling;
 *    - what is loaded is bounded: at most PM_BOOK_RECORDS_MAX entries, each
 *      string within its field, and the book's own bounds on import;
 *    - then save at most every PM_BOOK_SAVE_EVERY_MS when the book changed,
 *      one save in flight; a failed save is tried again next time. */
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "pm.h"
#include "pm_addrbook.h"

bool pm_book_store_ready(const pm_t *pm)
{
    return pm->book_io.loaded;
}

static void on_loaded(pm_t *pm, void *arg, uint64_t tag, const alys_env_t *reply)
{
    (void) arg;
    (void) tag;
    pm->book_io.loading = false;
    if (!reply) {
        if (++pm->book_io.load_tries < PM_BOOK_LOAD_TRIES) {
            log_warn("no answer loading the address book: retrying");
            return;
        }
        log_warn("no answer loading the address book: starting with an empty one");
        pm->book_io.loaded = true;
        return;
    }
    pm->book_io.loaded = true;
    const Alys__Storage__StorageMsg *m = pm_storage_body(reply,
                                                         ALYS__STORAGE__STORAGE_MSG__MSG_ADDR_BOOK);
    if (!m || !m->addr_book) {
        log_warn("storage answered the address book load with an error: starting empty");
        return;
    }
    size_t n = m->addr_book->n_entries;
    n = n < PM_BOOK_RECORDS_MAX ? n : PM_BOOK_RECORDS_MAX;
    pm_book_record_t *recs = calloc(n ? n : 1, sizeof *recs);
    if (!recs) {
        log_warn("out of memory loading the address book: starting empty");
        return;
    }
    size_t ok = 0;
    for (size_t i = 0; i < n; i++) {
        const Alys__Storage__BookEntry *e = m->addr_book->entries[i];
        pm_book_record_t *r = &recs[ok];
        if (!e || alys_strlcpy(r->endpoint, e->endpoint ? e->endpoint : "", sizeof r->endpoint) ||
            alys_strlcpy(r->source, e->source ? e->source : "", sizeof r->source))
            continue; /* never truncate an endpoint into another */
        r->tried = e->tried;
        r->last_success = e->last_success;
        r->failures = e->failures;
        ok++;
    }
    size_t taken = pm_addrbook_import(pn_addrbook(pm), recs, ok, pm_now(pm));
    pm_addrbook_clear_dirty(pn_addrbook(pm));
    free(recs);
    log_info("address book: %zu of %zu stored endpoints loaded", taken, m->addr_book->n_entries);
}

static void on_saved(pm_t *pm, void *arg, uint64_t tag, const alys_env_t *reply)
{
    (void) arg;
    pm->book_io.saving = false;
    if (!pm_storage_body(reply, ALYS__STORAGE__STORAGE_MSG__MSG_ADDR_BOOK)) {
        log_warn("cannot save the address book (%s): trying again later",
                 reply ? "error reply" : "no answer");
        pm->book_io.retry = true;
        return;
    }
    log_debug("address book saved (%llu endpoints)", (unsigned long long) tag);
}

static void load(pm_t *pm)
{
    Alys__Storage__GetAddrBook get = ALYS__STORAGE__GET_ADDR_BOOK__INIT;
    Alys__Storage__StorageMsg msg = ALYS__STORAGE__STORAGE_MSG__INIT;
    msg.msg_case = ALYS__STORAGE__STORAGE_MSG__MSG_GET_ADDR_BOOK;
    msg.get_addr_book = &get;
    if (pm_storage_request(pm, &msg, PM_STORE_TIMEOUT_MS, on_loaded, NULL, 0) == 0)
        pm->book_io.loading = true;
}

static void save(pm_t *pm)
{
    pm_book_record_t *recs = calloc(PM_BOOK_RECORDS_MAX, sizeof *recs);
    Alys__Storage__BookEntry *pb = calloc(PM_BOOK_RECORDS_MAX, sizeof *pb);
    Alys__Storage__BookEntry **ptrs = calloc(PM_BOOK_RECORDS_MAX, sizeof *ptrs);
    if (recs && pb && ptrs) {
        size_t n = pm_addrbook_export(pn_addrbook(pm), recs, PM_BOOK_RECORDS_MAX);
        for (size_t i = 0; i < n; i++) {
            pb[i] = (Alys__Storage__BookEntry) ALYS__STORAGE__BOOK_ENTRY__INIT;
            pb[i].endpoint = recs[i].endpoint;
            pb[i].source = recs[i].source;
            pb[i].tried = recs[i].tried;
            pb[i].last_success = recs[i].last_success;
            pb[i].failures = recs[i].failures;
            ptrs[i] = &pb[i];
        }
        Alys__Storage__PutAddrBook put = ALYS__STORAGE__PUT_ADDR_BOOK__INIT;
        put.n_entries = n;
        put.entries = ptrs;
        Alys__Storage__StorageMsg msg = ALYS__STORAGE__STORAGE_MSG__INIT;
        msg.msg_case = ALYS__STORAGE__STORAGE_MSG__MSG_PUT_ADDR_BOOK;
        msg.put_addr_book = &put;
        if (pm_storage_request(pm, &msg, PM_STORE_TIMEOUT_MS, on_saved, NULL, n) == 0) {
            pm->book_io.saving = true;
            pm->book_io.saved_at = pm_mono(pm);
            pm_addrbook_clear_dirty(pn_addrbook(pm));
        }
    }
    free(recs);
    free(pb);
    free(ptrs);
}

void pm_book_store_tick(pm_t *pm)
{
    pm_book_io_t *io = &pm->book_io;
    if (!io->loaded) {
        if (!io->loading)
            load(pm);
        return;
    }
    bool changed = pm_addrbook_dirty(pn_addrbook(pm)) || io->retry;
    if (io->saving || !changed || pm_mono(pm) - io->saved_at < PM_BOOK_SAVE_EVERY_MS)
        return;
    io->retry = false;
    save(pm);
}
