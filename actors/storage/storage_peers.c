/*  storage_peers.c: PeerManager's address book, kept as one bounded value
 *  (an encoded AddrBook) under META_ADDR_BOOK in the meta column family.
 *  Put replaces it whole after checking every bound; get reads it back,
 *  refusing a stored value over STORAGE_MAX_BOOK_BYTES and dropping entries
 *  past the bounds (a damaged or foreign value must not cost memory or stop
 *  the node: it reads as an empty book, with a warning). */
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "storage_internal.h"
#include "util.h"

static bool entry_ok(const Alys__Storage__BookEntry *e)
{
    size_t ep = e && e->endpoint ? strlen(e->endpoint) : 0;
    size_t src = e && e->source ? strlen(e->source) : 0;
    return ep > 0 && ep <= STORAGE_MAX_BOOK_EP && src <= STORAGE_MAX_BOOK_SRC;
}

int storage_put_addr_book(storage_t *self, const Alys__Storage__PutAddrBook *req, char *err,
                          size_t errlen)
{
    if (req->n_entries > STORAGE_MAX_BOOK_ENTRIES)
        return alys_set_err(err, errlen, STORAGE_EINVAL, "%zu book entries exceed the limit %d",
                            req->n_entries, STORAGE_MAX_BOOK_ENTRIES);
    for (size_t i = 0; i < req->n_entries; i++)
        if (!entry_ok(req->entries[i]))
            return alys_set_err(err, errlen, STORAGE_EINVAL,
                                "book entry %zu: endpoint empty or a string over its bound", i);
    Alys__Storage__AddrBook book = ALYS__STORAGE__ADDR_BOOK__INIT;
    book.n_entries = req->n_entries;
    book.entries = req->entries;
    size_t len = alys__storage__addr_book__get_packed_size(&book);
    if (len > STORAGE_MAX_BOOK_BYTES)
        return alys_set_err(err, errlen, STORAGE_EINVAL, "the book is %zu bytes, over %d", len,
                            STORAGE_MAX_BOOK_BYTES);
    uint8_t *buf = malloc(len ? len : 1);
    if (!buf)
        return alys_set_err(err, errlen, STORAGE_EIO, "out of memory");
    alys__storage__addr_book__pack(&book, buf);
    rocksdb_writebatch_t *wb = rocksdb_writebatch_create();
    storage_wb_put_meta(wb, self, META_ADDR_BOOK, buf, len);
    int rc = storage_db_write(self, wb, err, errlen);
    rocksdb_writebatch_destroy(wb);
    free(buf);
    return rc;
}

/* Keep the first entries that respect the bounds, in place. */
static void keep_bounded(Alys__Storage__AddrBook *book)
{
    size_t kept = 0;
    for (size_t i = 0; i < book->n_entries; i++) {
        if (kept < STORAGE_MAX_BOOK_ENTRIES && entry_ok(book->entries[i])) {
            Alys__Storage__BookEntry *e = book->entries[i];
            book->entries[i] = book->entries[kept];
            book->entries[kept++] = e;
        }
    }
    /* The dropped ones stay in the array past n_entries: free them now. */
    for (size_t i = kept; i < book->n_entries; i++) {
        alys__storage__book_entry__free_unpacked(book->entries[i], NULL);
        book->entries[i] = NULL;
    }
    book->n_entries = kept;
}

int storage_get_addr_book(storage_t *self, Alys__Storage__AddrBook **out, char *err, size_t errlen)
{
    *out = NULL;
    char *val = NULL;
    size_t vlen = 0;
    int rc = storage_db_get(self, CF_META, META_ADDR_BOOK, strlen(META_ADDR_BOOK), &val, &vlen,
                            err, errlen);
    if (rc < 0)
        return rc;
    Alys__Storage__AddrBook *book = NULL;
    if (rc == 1 && vlen > STORAGE_MAX_BOOK_BYTES)
        log_warn("the stored address book is %zu bytes, over %d: starting with an empty one",
                 vlen, STORAGE_MAX_BOOK_BYTES);
    else if (rc == 1 && !(book = alys__storage__addr_book__unpack(NULL, vlen, (const uint8_t *) val)))
        log_warn("the stored address book does not decode: starting with an empty one");
    rocksdb_free(val);
    if (book) {
        keep_bounded(book);
    } else {
        book = malloc(sizeof *book);
        if (!book)
            return alys_set_err(err, errlen, STORAGE_EIO, "out of memory");
        alys__storage__addr_book__init(book);
    }
    *out = book;
    return STORAGE_OK;
}

void storage_addr_book_free(Alys__Storage__AddrBook **book_p)
{
    if (book_p && *book_p) {
        alys__storage__addr_book__free_unpacked(*book_p, NULL);
        *book_p = NULL;
    }
}
