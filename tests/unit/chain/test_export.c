/*  test_export.c: the "alys-export-v1" stream (common/chain/export.h):
 *  round trip, truncation at every byte, over-size lengths refused before
 *  reading, wrong magic and header fields, record counts, bit flips.
 */
#include <criterion/criterion.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "chain.pb-c.h"
#include "chain/export.h"

#define NBLOCKS 5

static char s_path[64];

static void make_path(void)
{
    snprintf(s_path, sizeof s_path, "/tmp/test-export-XXXXXX");
    int fd = mkstemp(s_path);
    cr_assert(fd >= 0);
    close(fd);
}

static void drop_path(void)
{
    unlink(s_path);
}

TestSuite(export, .init = make_path, .fini = drop_path);

static const alys_hash_t s_genesis = {0xab, 0xcd, 1, 2, 3};

/* Block i: i*7 bytes (record 1 is empty), content a function of i. */
static size_t fake_len(int i)
{
    return (size_t) i * 7;
}

static void fake_bytes(int i, uint8_t *out)
{
    for (size_t k = 0; k < fake_len(i); k++)
        out[k] = (uint8_t) (i * 31 + k);
}

static void write_fake(const char *path, uint64_t announced)
{
    char err[256];
    alys_export_writer_t *w = alys_export_writer_new(path, s_genesis, 1, announced, err, sizeof err);
    cr_assert(w, "%s", err);
    for (int i = 0; i < NBLOCKS; i++) {
        uint8_t buf[64];
        fake_bytes(i, buf);
        cr_assert_eq(alys_export_writer_write_block(w, buf, fake_len(i)), 0);
    }
    cr_assert_eq(alys_export_writer_count(w), NBLOCKS);
    cr_assert_eq(alys_export_writer_close(w), 0, "%s", alys_export_writer_error(w));
    alys_export_writer_destroy(&w);
    cr_assert_null(w);
}

static uint8_t *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    cr_assert(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *buf = malloc((size_t) n + 1);
    cr_assert(buf);
    cr_assert_eq(fread(buf, 1, (size_t) n, f), (size_t) n);
    fclose(f);
    *len = (size_t) n;
    return buf;
}

static void spit(const char *path, const uint8_t *buf, size_t len)
{
    FILE *f = fopen(path, "wb");
    cr_assert(f);
    cr_assert_eq(fwrite(buf, 1, len, f), len);
    cr_assert_eq(fclose(f), 0);
}

/* Read the whole stream; returns the final next() result (0 or -1), the
 * block count in *n and the message in err. -2 if the header failed. */
static int read_all(const char *path, uint64_t *n, char *err, size_t errlen)
{
    alys_export_reader_t *r = alys_export_reader_new(path, err, errlen);
    if (!r)
        return -2;
    uint8_t *bytes;
    size_t len;
    int rc;
    while ((rc = alys_export_reader_next(r, &bytes, &len, err, errlen)) == 1)
        free(bytes);
    *n = alys_export_reader_count(r);
    alys_export_reader_destroy(&r);
    return rc;
}

Test(export, round_trip_identical_bytes)
{
    write_fake(s_path, NBLOCKS);
    char err[256];
    alys_export_reader_t *r = alys_export_reader_new(s_path, err, sizeof err);
    cr_assert(r, "%s", err);
    const alys_export_header_t *h = alys_export_reader_header(r);
    cr_assert_eq(memcmp(h->genesis_hash, s_genesis, ALYS_HASH_LEN), 0);
    cr_assert_eq(h->first_height, 1);
    cr_assert_eq(h->block_count, NBLOCKS);
    for (int i = 0; i < NBLOCKS; i++) {
        uint8_t *bytes = NULL, want[64];
        size_t len = 99;
        cr_assert_eq(alys_export_reader_next(r, &bytes, &len, err, sizeof err), 1, "%s", err);
        cr_assert_not_null(bytes, "even an empty record gives a buffer");
        fake_bytes(i, want);
        cr_assert_eq(len, fake_len(i));
        cr_assert_eq(memcmp(bytes, want, len), 0);
        free(bytes);
    }
    uint8_t *bytes;
    size_t len;
    cr_assert_eq(alys_export_reader_next(r, &bytes, &len, err, sizeof err), 0);
    cr_assert_eq(alys_export_reader_next(r, &bytes, &len, err, sizeof err), 0, "end stays end");
    cr_assert_eq(alys_export_reader_count(r), NBLOCKS);
    alys_export_reader_destroy(&r);
}

Test(export, block_values_round_trip)
{
    alys_block_t b = {0};
    alys_tx_t txs[2] = {{.amount = 5, .fee = 1, .nonce = 0}, {.amount = 6, .fee = 2, .nonce = 1}};
    txs[0].from[0] = 1;
    txs[1].to[0] = 2;
    b.header.height = 7;
    b.header.slot = 9;
    b.txs = txs;
    b.tx_count = 2;
    char err[256];
    alys_export_writer_t *w = alys_export_writer_new(s_path, s_genesis, 7, 1, err, sizeof err);
    cr_assert(w, "%s", err);
    cr_assert_eq(alys_export_writer_write_block_value(w, &b), 0, "%s", alys_export_writer_error(w));
    cr_assert_eq(alys_export_writer_close(w), 0);
    alys_export_writer_destroy(&w);

    alys_export_reader_t *r = alys_export_reader_new(s_path, err, sizeof err);
    cr_assert(r, "%s", err);
    cr_assert_eq(alys_export_reader_header(r)->first_height, 7);
    uint8_t *bytes;
    size_t len;
    cr_assert_eq(alys_export_reader_next(r, &bytes, &len, err, sizeof err), 1);
    alys_block_t out;
    alys_verdict_t v;
    cr_assert_eq(alys_block_decode(bytes, len, &out, &v), 0, "%s", v.detail);
    cr_assert_eq(out.header.height, 7);
    cr_assert_eq(out.tx_count, 2);
    cr_assert_eq(out.txs[1].nonce, 1);
    alys_block_clear(&out);
    free(bytes);
    alys_export_reader_destroy(&r);
}

/* Offsets of every record's length prefix, header first, then the end. */
static void record_offsets(const uint8_t *buf, size_t len, size_t *off, int *count)
{
    size_t o = 0;
    int n = 0;
    while (o + 4 <= len) {
        off[n++] = o;
        o += 4 + ((size_t) buf[o] << 24 | (size_t) buf[o + 1] << 16 | (size_t) buf[o + 2] << 8 |
                  buf[o + 3]);
    }
    off[n] = o;
    *count = n;
    cr_assert_eq(o, len);
}

Test(export, truncated_at_every_byte)
{
    write_fake(s_path, NBLOCKS);
    size_t len;
    uint8_t *full = slurp(s_path, &len);
    size_t off[NBLOCKS + 2];
    int nrec;
    record_offsets(full, len, off, &nrec);
    cr_assert_eq(nrec, NBLOCKS + 1);
    for (size_t cut = 0; cut < len; cut++) {
        spit(s_path, full, cut);
        char err[256] = "", want[128];
        uint64_t n = 0;
        int rc = read_all(s_path, &n, err, sizeof err);
        cr_assert(rc < 0, "cut at %zu: no error", cut);
        /* the record the cut falls in (or the one that should start there) */
        int rec = 0;
        while (rec < nrec && off[rec + 1] <= cut)
            rec++;
        snprintf(want, sizeof want, "chain.export: record %d at offset %zu: ", rec, off[rec]);
        cr_assert(strncmp(err, want, strlen(want)) == 0, "cut %zu: got '%s', want prefix '%s'",
                  cut, err, want);
        cr_assert(strstr(err, "truncated") || strstr(err, "empty stream"), "cut %zu: '%s'", cut, err);
        cr_assert_eq(rc, rec == 0 ? -2 : -1, "cut %zu", cut);
        cr_assert_eq(n, rec == 0 ? 0 : (uint64_t) rec - 1, "cut %zu: blocks before the error", cut);
    }
    free(full);
}

Test(export, truncation_message_names_sizes)
{
    write_fake(s_path, NBLOCKS);
    size_t len;
    uint8_t *full = slurp(s_path, &len);
    size_t off[NBLOCKS + 2];
    int nrec;
    record_offsets(full, len, off, &nrec);
    /* cut 3 bytes into the body of the last record (28 bytes long) */
    spit(s_path, full, off[NBLOCKS] + 4 + 3);
    char err[256], want[160];
    uint64_t n;
    cr_assert_eq(read_all(s_path, &n, err, sizeof err), -1);
    snprintf(want, sizeof want,
             "chain.export: record %d at offset %zu: truncated (need 28 bytes, have 3)", NBLOCKS,
             off[NBLOCKS]);
    cr_assert_str_eq(err, want);
    /* a cut inside a length prefix */
    spit(s_path, full, off[2] + 2);
    cr_assert_eq(read_all(s_path, &n, err, sizeof err), -1);
    snprintf(want, sizeof want,
             "chain.export: record 2 at offset %zu: truncated length prefix (need 4 bytes, have 2)",
             off[2]);
    cr_assert_str_eq(err, want);
    free(full);
}

Test(export, unknown_count_ends_on_any_boundary)
{
    write_fake(s_path, 0);
    uint64_t n;
    char err[256];
    cr_assert_eq(read_all(s_path, &n, err, sizeof err), 0, "%s", err);
    cr_assert_eq(n, NBLOCKS);
}

Test(export, oversize_length_refused_before_reading)
{
    write_fake(s_path, 0);
    size_t len;
    uint8_t *full = slurp(s_path, &len);
    /* a prefix one over the bound and no body at all: a reader that read
     * (or allocated) first would say "truncated", not "exceeds" */
    uint8_t *buf = malloc(len + 4);
    memcpy(buf, full, len);
    uint32_t big = ALYS_MAX_BLOCK_BYTES + 1;
    buf[len] = (uint8_t) (big >> 24);
    buf[len + 1] = (uint8_t) (big >> 16);
    buf[len + 2] = (uint8_t) (big >> 8);
    buf[len + 3] = (uint8_t) big;
    spit(s_path, buf, len + 4);
    char err[256], want[160];
    uint64_t n;
    cr_assert_eq(read_all(s_path, &n, err, sizeof err), -1);
    snprintf(want, sizeof want,
             "chain.export: record %d at offset %zu: length %u exceeds the limit %d", NBLOCKS + 1,
             len, big, ALYS_MAX_BLOCK_BYTES);
    cr_assert_str_eq(err, want);
    cr_assert_eq(n, NBLOCKS);
    /* 0xffffffff likewise */
    memset(buf + len, 0xff, 4);
    spit(s_path, buf, len + 4);
    cr_assert_eq(read_all(s_path, &n, err, sizeof err), -1);
    cr_assert(strstr(err, "length 4294967295 exceeds the limit"), "%s", err);
    /* and a header length over 4096 */
    spit(s_path, (const uint8_t *) "\x00\x00\x10\x01", 4);
    cr_assert_eq(read_all(s_path, &n, err, sizeof err), -2);
    cr_assert_str_eq(err, "chain.export: record 0 at offset 0: length 4097 exceeds the limit 4096");
    free(buf);
    free(full);
}

/* A header record from raw fields, bypassing the writer's checks. */
static void write_header(const char *path, const char *magic, size_t hash_len, uint64_t first)
{
    uint8_t hash[40] = {0};
    Alys__Chain__ExportHeader m = ALYS__CHAIN__EXPORT_HEADER__INIT;
    m.magic = (char *) magic;
    m.genesis_hash.data = hash;
    m.genesis_hash.len = hash_len;
    m.first_height = first;
    size_t n = alys__chain__export_header__get_packed_size(&m);
    uint8_t buf[256];
    cr_assert(n + 4 <= sizeof buf);
    buf[0] = buf[1] = 0;
    buf[2] = (uint8_t) (n >> 8);
    buf[3] = (uint8_t) n;
    alys__chain__export_header__pack(&m, buf + 4);
    spit(path, buf, n + 4);
}

Test(export, wrong_magic_and_bad_header_fields)
{
    char err[256];
    write_header(s_path, "alys-export-v0", 32, 1);
    cr_assert_null(alys_export_reader_new(s_path, err, sizeof err));
    cr_assert_str_eq(err, "chain.export: record 0 at offset 0: wrong magic \"alys-export-v0\" "
                          "(want \"alys-export-v1\"): not an alys export stream");
    write_header(s_path, "", 32, 1);
    cr_assert_null(alys_export_reader_new(s_path, err, sizeof err));
    cr_assert(strstr(err, "wrong magic \"\""), "%s", err);
    write_header(s_path, "alys-export-v1\n\x1b[31m", 32, 1);
    cr_assert_null(alys_export_reader_new(s_path, err, sizeof err));
    cr_assert_null(strchr(err, '\x1b'), "control characters are not echoed");
    write_header(s_path, ALYS_EXPORT_MAGIC, 31, 1);
    cr_assert_null(alys_export_reader_new(s_path, err, sizeof err));
    cr_assert(strstr(err, "genesis_hash is 31 bytes"), "%s", err);
    write_header(s_path, ALYS_EXPORT_MAGIC, 32, 0);
    cr_assert_null(alys_export_reader_new(s_path, err, sizeof err));
    cr_assert(strstr(err, "first_height 0"), "%s", err);
    write_header(s_path, ALYS_EXPORT_MAGIC, 32, 1);
    alys_export_reader_t *r = alys_export_reader_new(s_path, err, sizeof err);
    cr_assert(r, "%s", err);
    alys_export_reader_destroy(&r);
    /* not protobuf at all */
    spit(s_path, (const uint8_t *) "\x00\x00\x00\x03\xff\xff\xff", 7);
    cr_assert_null(alys_export_reader_new(s_path, err, sizeof err));
    cr_assert(strstr(err, "does not decode"), "%s", err);
    /* a missing file */
    cr_assert_null(alys_export_reader_new("/nonexistent/x.export", err, sizeof err));
    cr_assert(strstr(err, "No such file"), "%s", err);
}

Test(export, counts_enforced)
{
    /* one record more than announced */
    char err[256];
    alys_export_writer_t *w = alys_export_writer_new(s_path, s_genesis, 1, 2, err, sizeof err);
    cr_assert(w);
    for (int i = 0; i < 3; i++)
        cr_assert_eq(alys_export_writer_write_block(w, (const uint8_t *) "x", 1), 0);
    cr_assert_eq(alys_export_writer_close(w), -1, "the writer refuses a count mismatch");
    cr_assert(strstr(alys_export_writer_error(w), "announces 2 blocks but 3"), "%s",
              alys_export_writer_error(w));
    alys_export_writer_destroy(&w);
    uint64_t n;
    cr_assert_eq(read_all(s_path, &n, err, sizeof err), -1);
    cr_assert(strstr(err, "record 3 at offset") && strstr(err, "extra record after the 2 blocks"),
              "%s", err);
    cr_assert_eq(n, 2);
}

Test(export, writer_bounds)
{
    char err[256];
    cr_assert_null(alys_export_writer_new(s_path, s_genesis, 0, 0, err, sizeof err));
    cr_assert(strstr(err, "first_height"), "%s", err);
    cr_assert_null(alys_export_writer_new("/nonexistent/dir/x", s_genesis, 1, 0, err, sizeof err));
    alys_export_writer_t *w = alys_export_writer_new(s_path, s_genesis, 1, 0, err, sizeof err);
    cr_assert(w);
    uint8_t *big = calloc(1, ALYS_MAX_BLOCK_BYTES + 1);
    cr_assert_eq(alys_export_writer_write_block(w, big, ALYS_MAX_BLOCK_BYTES + 1), -1);
    cr_assert(strstr(alys_export_writer_error(w), "over the limit"));
    cr_assert_eq(alys_export_writer_write_block(w, big, ALYS_MAX_BLOCK_BYTES), 0,
                 "the bound itself is fine");
    cr_assert_eq(alys_export_writer_close(w), 0);
    cr_assert_eq(alys_export_writer_close(w), -1, "closing twice is an error, not a crash");
    alys_export_writer_destroy(&w);
    alys_export_writer_destroy(&w); /* NULL-safe */
    uint64_t n;
    cr_assert_eq(read_all(s_path, &n, err, sizeof err), 0, "%s", err);
    cr_assert_eq(n, 1);
    free(big);
}

Test(export, bit_flips_never_crash)
{
    write_fake(s_path, NBLOCKS);
    size_t len;
    uint8_t *full = slurp(s_path, &len);
    for (size_t i = 0; i < len; i++) {
        for (int bit = 0; bit < 8; bit += 3) {
            full[i] ^= (uint8_t) (1 << bit);
            FILE *f = fmemopen(full, len, "rb");
            cr_assert(f);
            char err[256];
            alys_export_reader_t *r = alys_export_reader_new_stream(f, err, sizeof err);
            if (r) {
                uint8_t *bytes;
                size_t blen;
                int rc;
                while ((rc = alys_export_reader_next(r, &bytes, &blen, err, sizeof err)) == 1) {
                    cr_assert(blen <= ALYS_MAX_BLOCK_BYTES);
                    free(bytes);
                }
                cr_assert(rc == 0 || strncmp(err, "chain.export: record ", 21) == 0, "%s", err);
                alys_export_reader_destroy(&r);
            }
            full[i] ^= (uint8_t) (1 << bit);
        }
    }
    free(full);
}

Test(export, errors_are_sticky)
{
    write_fake(s_path, NBLOCKS);
    size_t len;
    uint8_t *full = slurp(s_path, &len);
    spit(s_path, full, len - 1);
    char err[256], err2[256];
    alys_export_reader_t *r = alys_export_reader_new(s_path, err, sizeof err);
    cr_assert(r);
    uint8_t *bytes;
    size_t blen;
    while (alys_export_reader_next(r, &bytes, &blen, err, sizeof err) == 1)
        free(bytes);
    cr_assert_eq(alys_export_reader_next(r, &bytes, &blen, err2, sizeof err2), -1);
    cr_assert_str_eq(err, err2);
    alys_export_reader_destroy(&r);
    free(full);
}
