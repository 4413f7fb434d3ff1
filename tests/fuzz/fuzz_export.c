/*  fuzz_export.c: the export stream reader (common/chain/export.c:
 *  alys_export_reader_new_stream / _next, what `alysctl import` runs on a
 *  file from anywhere) on arbitrary bytes, each block record then decoded as
 *  the importer does (alys_block_decode).
 *
 *  Invariants: every error is one message "chain.export: record I at offset
 *  O: ..." and is sticky (the next call fails with the same text); the
 *  header record survives encode -> decode unchanged; the offset advances
 *  by exactly 4 + N per record and a clean end is at the end of the input,
 *  after exactly block_count records when the header announces a count;
 *  record sizes respect ALYS_MAX_BLOCK_BYTES; no memory error or leak.
 */
#include <stdio.h>

#include "chain/export.h"
#include "fuzz_util.h"

static void check_error(const char *err, size_t cap)
{
    FUZZ_CHECK(fuzz_has_text(err, cap), "error without a message");
    FUZZ_CHECK(strncmp(err, "chain.export: record ", 21) == 0, "error '%s' lacks its prefix", err);
}

static void check_header(const alys_export_header_t *h)
{
    FUZZ_CHECK(h->first_height >= 1, "first_height 0 accepted");
    uint8_t *enc = NULL;
    size_t len = 0;
    char why[256] = "";
    FUZZ_CHECK(alys_export_header_encode(h, &enc, &len) == 0, "header does not encode");
    alys_export_header_t back;
    FUZZ_CHECK(alys_export_header_decode(enc, len, &back, why, sizeof why) == 0,
               "re-encoded header refused: %s", why);
    FUZZ_CHECK(memcmp(back.genesis_hash, h->genesis_hash, ALYS_HASH_LEN) == 0 &&
                   back.first_height == h->first_height && back.block_count == h->block_count,
               "header changed in the round trip");
    free(enc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* fmemopen wants a writable buffer and refuses size 0 on old glibcs. */
    uint8_t *copy = malloc(size + 1);
    FUZZ_CHECK(copy != NULL, "out of memory");
    memcpy(copy, data, size);
    FILE *f = fmemopen(copy, size ? size : 1, "rb");
    FUZZ_CHECK(f != NULL, "fmemopen failed");
    if (size == 0)
        (void) fgetc(f); /* consume the placeholder byte: empty stream */

    char err[1024] = "";
    alys_export_reader_t *r = alys_export_reader_new_stream(f, err, sizeof err);
    if (!r) {
        check_error(err, sizeof err);
        free(copy);
        return 0;
    }
    const alys_export_header_t *h = alys_export_reader_header(r);
    check_header(h);
    uint64_t offset = alys_export_reader_offset(r);
    FUZZ_CHECK(offset >= 4 && offset <= size, "offset %llu after the header",
               (unsigned long long) offset);

    int rc;
    for (;;) {
        uint8_t *bytes = NULL;
        size_t len = 0;
        err[0] = '\0';
        rc = alys_export_reader_next(r, &bytes, &len, err, sizeof err);
        if (rc != 1)
            break;
        FUZZ_CHECK(bytes != NULL, "record without a buffer");
        FUZZ_CHECK(len <= ALYS_MAX_BLOCK_BYTES, "record of %zu bytes", len);
        uint64_t now = alys_export_reader_offset(r);
        FUZZ_CHECK(now == offset + 4 + len, "offset %llu -> %llu for %zu bytes",
                   (unsigned long long) offset, (unsigned long long) now, len);
        offset = now;
        alys_block_t b;
        alys_verdict_t v;
        if (alys_block_decode(bytes, len, &b, &v) == 0)
            alys_block_clear(&b);
        else
            fuzz_check_refusal(&v);
        free(bytes);
    }
    uint64_t count = alys_export_reader_count(r);
    if (rc == 0) {
        FUZZ_CHECK(offset == size, "clean end at offset %llu of %zu", (unsigned long long) offset,
                   size);
        FUZZ_CHECK(h->block_count == 0 || count == h->block_count, "%llu of %llu blocks",
                   (unsigned long long) count, (unsigned long long) h->block_count);
    } else {
        FUZZ_CHECK(rc == -1, "next returned %d", rc);
        check_error(err, sizeof err);
        char again[sizeof err] = "";
        uint8_t *bytes = NULL;
        size_t len = 0;
        FUZZ_CHECK(alys_export_reader_next(r, &bytes, &len, again, sizeof again) == -1,
                   "error not sticky");
        FUZZ_CHECK(strcmp(again, err) == 0, "sticky error changed: '%s' then '%s'", err, again);
        FUZZ_CHECK(alys_export_reader_count(r) == count, "count moved after an error");
    }
    alys_export_reader_destroy(&r);
    FUZZ_CHECK(r == NULL, "destroy did not clear the pointer");
    free(copy);
    return 0;
}
