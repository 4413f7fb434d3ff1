/*  export.c: the "alys-export-v1" stream (format documented in export.h).
 *
 *  Buffered stdio with a large buffer: an import reads hundreds of MB
 *  sequentially and the per-record cost must stay far below a block's
 *  validation cost. Every length is checked against its bound before any
 *  allocation sized by it.
 */
#include "export.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "chain.pb-c.h"
#include "util.h"

#define STDIO_BUF_BYTES (1024 * 1024)
#define ERR_BYTES       256

/* The reader's and writer's errors: a message, the status is returned apart. */
#define set_err(err, errlen, ...) ((void) alys_set_err((err), (errlen), -1, __VA_ARGS__))

static void put_be32(uint8_t out[4], uint32_t v)
{
    out[0] = (uint8_t) (v >> 24);
    out[1] = (uint8_t) (v >> 16);
    out[2] = (uint8_t) (v >> 8);
    out[3] = (uint8_t) v;
}

static uint32_t get_be32(const uint8_t in[4])
{
    return ((uint32_t) in[0] << 24) | ((uint32_t) in[1] << 16) | ((uint32_t) in[2] << 8) |
           (uint32_t) in[3];
}

/* Copy up to 32 chars of untrusted text, printable ASCII only, so a hostile
 * magic string cannot smuggle control characters into logs. */
static void sanitize(const char *in, char *out, size_t outlen)
{
    size_t o = 0;
    for (size_t i = 0; in[i] && o + 1 < outlen && i < 32; i++) {
        unsigned char c = (unsigned char) in[i];
        out[o++] = (c >= 0x20 && c < 0x7f && c != '"') ? (char) c : '?';
    }
    out[o] = '\0';
}

/* ---------------------------------------------------------------- header */

int alys_export_header_encode(const alys_export_header_t *h, uint8_t **out, size_t *len)
{
    Alys__Chain__ExportHeader m = ALYS__CHAIN__EXPORT_HEADER__INIT;
    m.magic = (char *) ALYS_EXPORT_MAGIC;
    m.genesis_hash.data = (uint8_t *) h->genesis_hash;
    m.genesis_hash.len = ALYS_HASH_LEN;
    m.first_height = h->first_height;
    m.block_count = h->block_count;
    size_t n = alys__chain__export_header__get_packed_size(&m);
    uint8_t *buf = malloc(n ? n : 1);
    if (!buf)
        return -1;
    alys__chain__export_header__pack(&m, buf);
    *out = buf;
    *len = n;
    return 0;
}

static int check_header_msg(const Alys__Chain__ExportHeader *m, alys_export_header_t *out,
                            char *err, size_t errlen)
{
    if (strcmp(m->magic, ALYS_EXPORT_MAGIC) != 0) {
        char shown[40];
        sanitize(m->magic, shown, sizeof shown);
        set_err(err, errlen, "wrong magic \"%s\" (want \"%s\"): not an alys export stream", shown,
                ALYS_EXPORT_MAGIC);
        return -1;
    }
    if (m->genesis_hash.len != ALYS_HASH_LEN) {
        set_err(err, errlen, "genesis_hash is %zu bytes (want %d)", m->genesis_hash.len,
                ALYS_HASH_LEN);
        return -1;
    }
    if (m->first_height == 0) {
        set_err(err, errlen, "first_height 0 (the genesis is never a record; blocks start at 1)");
        return -1;
    }
    memcpy(out->genesis_hash, m->genesis_hash.data, ALYS_HASH_LEN);
    out->first_height = m->first_height;
    out->block_count = m->block_count;
    return 0;
}

int alys_export_header_decode(const uint8_t *buf, size_t len, alys_export_header_t *out,
                              char *err, size_t errlen)
{
    if (len > ALYS_EXPORT_MAX_HEADER_BYTES) {
        set_err(err, errlen, "header length %zu exceeds the limit %d", len,
                ALYS_EXPORT_MAX_HEADER_BYTES);
        return -1;
    }
    Alys__Chain__ExportHeader *m = alys__chain__export_header__unpack(NULL, len, buf);
    if (!m) {
        set_err(err, errlen,
                "header does not decode as alys.chain.ExportHeader: "
                "not an alys export stream");
        return -1;
    }
    int rc = check_header_msg(m, out, err, errlen);
    alys__chain__export_header__free_unpacked(m, NULL);
    return rc;
}

/* ---------------------------------------------------------------- writer */

struct alys_export_writer {
    FILE *f;
    bool is_stdout;
    uint64_t announced; /* 0 = unknown */
    uint64_t count;
    char path[256];
    char err[ERR_BYTES];
};

static int write_record(alys_export_writer_t *self, const uint8_t *bytes, size_t len)
{
    uint8_t prefix[ALYS_EXPORT_PREFIX_BYTES];
    if (len > UINT32_MAX) {
        set_err(self->err, sizeof self->err, "chain.export: record of %zu bytes cannot be framed",
                len);
        return -1;
    }
    put_be32(prefix, (uint32_t) len);
    if (fwrite(prefix, 1, sizeof prefix, self->f) != sizeof prefix ||
        (len > 0 && fwrite(bytes, 1, len, self->f) != len)) {
        set_err(self->err, sizeof self->err, "chain.export: %s: write: %s", self->path,
                strerror(errno));
        return -1;
    }
    return 0;
}

static FILE *open_out(const char *path, bool *is_stdout)
{
    *is_stdout = strcmp(path, "-") == 0;
    FILE *f = *is_stdout ? stdout : fopen(path, "wb");
    /* A full buffer per write call: the default 4 KiB would mean a syscall
     * for most blocks. Failure to enlarge only costs speed. */
    if (f && !*is_stdout)
        (void) setvbuf(f, NULL, _IOFBF, STDIO_BUF_BYTES);
    return f;
}

alys_export_writer_t *alys_export_writer_new(const char *path, const alys_hash_t genesis_hash,
                                             uint64_t first_height, uint64_t block_count,
                                             char *err, size_t errlen)
{
    if (first_height == 0) {
        set_err(err, errlen, "chain.export: first_height must be >= 1 (the genesis is not a record)");
        return NULL;
    }
    alys_export_writer_t *self = calloc(1, sizeof *self);
    if (!self) {
        set_err(err, errlen, "chain.export: out of memory");
        return NULL;
    }
    snprintf(self->path, sizeof self->path, "%s", path);
    self->announced = block_count;
    self->f = open_out(path, &self->is_stdout);
    if (!self->f) {
        set_err(err, errlen, "chain.export: %s: %s", path, strerror(errno));
        free(self);
        return NULL;
    }
    alys_export_header_t h = {.first_height = first_height, .block_count = block_count};
    memcpy(h.genesis_hash, genesis_hash, ALYS_HASH_LEN);
    uint8_t *buf = NULL;
    size_t len = 0;
    if (alys_export_header_encode(&h, &buf, &len) != 0 || write_record(self, buf, len) != 0) {
        set_err(err, errlen, "%s", self->err[0] ? self->err : "chain.export: out of memory");
        free(buf);
        alys_export_writer_destroy(&self);
        return NULL;
    }
    free(buf);
    return self;
}

int alys_export_writer_write_raw(alys_export_writer_t *self, const uint8_t *bytes, size_t len)
{
    if (!self->f) {
        set_err(self->err, sizeof self->err, "chain.export: writer already closed");
        return -1;
    }
    if (write_record(self, bytes, len) != 0)
        return -1;
    self->count++;
    return 0;
}

int alys_export_writer_write_block(alys_export_writer_t *self, const uint8_t *block_bytes, size_t len)
{
    /* Refuse here what every reader would refuse: never write a stream we
     * cannot read back. */
    if (len > ALYS_MAX_BLOCK_BYTES) {
        set_err(self->err, sizeof self->err,
                "chain.export: block record %" PRIu64 " is %zu bytes, over the limit %d",
                self->count + 1, len, ALYS_MAX_BLOCK_BYTES);
        return -1;
    }
    return alys_export_writer_write_raw(self, block_bytes, len);
}

int alys_export_writer_write_block_value(alys_export_writer_t *self, const alys_block_t *b)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    if (alys_block_encode(b, &buf, &len) != 0) {
        set_err(self->err, sizeof self->err,
                "chain.export: block at height %" PRIu64 " does not encode", b->header.height);
        return -1;
    }
    int rc = alys_export_writer_write_block(self, buf, len);
    free(buf);
    return rc;
}

uint64_t alys_export_writer_count(const alys_export_writer_t *self)
{
    return self->count;
}

const char *alys_export_writer_error(const alys_export_writer_t *self)
{
    return self->err;
}

/* fsync only what can be synced: pipes and terminals refuse it (EINVAL),
 * and there is nothing durable to wait for there. */
static int sync_file(FILE *f)
{
    struct stat st;
    int fd = fileno(f);
    if (fstat(fd, &st) != 0)
        return -1;
    if (!S_ISREG(st.st_mode))
        return 0;
    return fsync(fd);
}

int alys_export_writer_close(alys_export_writer_t *self)
{
    if (!self->f) {
        set_err(self->err, sizeof self->err, "chain.export: writer already closed");
        return -1;
    }
    int rc = 0;
    if (fflush(self->f) != 0 || sync_file(self->f) != 0) {
        set_err(self->err, sizeof self->err, "chain.export: %s: flush: %s", self->path,
                strerror(errno));
        rc = -1;
    }
    if (!self->is_stdout && fclose(self->f) != 0 && rc == 0) {
        set_err(self->err, sizeof self->err, "chain.export: %s: close: %s", self->path,
                strerror(errno));
        rc = -1;
    }
    self->f = NULL;
    if (rc == 0 && self->announced != 0 && self->count != self->announced) {
        set_err(self->err, sizeof self->err,
                "chain.export: %s: header announces %" PRIu64 " blocks but %" PRIu64 " were written",
                self->path, self->announced, self->count);
        rc = -1;
    }
    return rc;
}

void alys_export_writer_destroy(alys_export_writer_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    alys_export_writer_t *self = *self_p;
    if (self->f && !self->is_stdout)
        fclose(self->f);
    else if (self->f)
        fflush(self->f);
    free(self);
    *self_p = NULL;
}

/* ---------------------------------------------------------------- reader */

struct alys_export_reader {
    FILE *f;
    bool is_stdin;
    alys_export_header_t header;
    uint64_t count;          /* block records returned */
    uint64_t offset;         /* byte offset of the next record */
    char err[2 * ERR_BYTES]; /* sticky error, "" if none */
};

/* Fill self->err with "chain.export: record I at offset O: <why>". */
static void rec_err(alys_export_reader_t *self, uint64_t index, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void rec_err(alys_export_reader_t *self, uint64_t index, const char *fmt, ...)
{
    char why[ERR_BYTES];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    snprintf(self->err, sizeof self->err,
             "chain.export: record %" PRIu64 " at offset %" PRIu64 ": %s", index, self->offset, why);
}

/* fread that tells a short read apart from an I/O error. Returns bytes read. */
static size_t read_full(alys_export_reader_t *self, uint8_t *buf, size_t len, bool *io_error)
{
    size_t got = len ? fread(buf, 1, len, self->f) : 0;
    *io_error = got < len && ferror(self->f);
    return got;
}

/* Read one record's length prefix and body, bounded by limit. Returns 1 with
 * a malloc'ed body, 0 on a clean EOF before the first prefix byte, -1 on
 * error (self->err set). */
static int read_record(alys_export_reader_t *self, uint64_t index, size_t limit, uint8_t **body,
                       size_t *len)
{
    uint8_t prefix[ALYS_EXPORT_PREFIX_BYTES];
    bool io_error = false;
    size_t got = read_full(self, prefix, sizeof prefix, &io_error);
    if (io_error) {
        rec_err(self, index, "read error: %s", strerror(errno));
        return -1;
    }
    if (got == 0)
        return 0;
    if (got < sizeof prefix) {
        rec_err(self, index, "truncated length prefix (need %zu bytes, have %zu)", sizeof prefix, got);
        return -1;
    }
    uint32_t n = get_be32(prefix);
    if (n > limit) {
        rec_err(self, index, "length %" PRIu32 " exceeds the limit %zu", n, limit);
        return -1;
    }
    uint8_t *buf = malloc(n ? n : 1);
    if (!buf) {
        rec_err(self, index, "out of memory for %" PRIu32 " bytes", n);
        return -1;
    }
    got = read_full(self, buf, n, &io_error);
    if (got < n) {
        if (io_error)
            rec_err(self, index, "read error: %s", strerror(errno));
        else
            rec_err(self, index, "truncated (need %" PRIu32 " bytes, have %zu)", n, got);
        free(buf);
        return -1;
    }
    self->offset += sizeof prefix + n;
    *body = buf;
    *len = n;
    return 1;
}

static int read_header(alys_export_reader_t *self)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    int rc = read_record(self, 0, ALYS_EXPORT_MAX_HEADER_BYTES, &buf, &len);
    if (rc == 0)
        rec_err(self, 0, "empty stream (no header): not an alys export stream");
    if (rc != 1)
        return -1;
    char why[ERR_BYTES];
    if (alys_export_header_decode(buf, len, &self->header, why, sizeof why) != 0) {
        self->offset = 0; /* the error is about the record at 0 */
        rec_err(self, 0, "%s", why);
        free(buf);
        return -1;
    }
    free(buf);
    return 0;
}

/* owns: close f on destroy (false for stdin, which is not ours to close). */
static alys_export_reader_t *reader_open(FILE *f, bool owns, char *err, size_t errlen)
{
    alys_export_reader_t *self = calloc(1, sizeof *self);
    if (!self) {
        set_err(err, errlen, "chain.export: out of memory");
        if (owns)
            fclose(f);
        return NULL;
    }
    self->f = f;
    self->is_stdin = !owns;
    if (read_header(self) != 0) {
        set_err(err, errlen, "%s", self->err);
        alys_export_reader_destroy(&self);
        return NULL;
    }
    return self;
}

alys_export_reader_t *alys_export_reader_new_stream(FILE *f, char *err, size_t errlen)
{
    return reader_open(f, true, err, errlen);
}

alys_export_reader_t *alys_export_reader_new(const char *path, char *err, size_t errlen)
{
    bool is_stdin = strcmp(path, "-") == 0;
    FILE *f = is_stdin ? stdin : fopen(path, "rb");
    if (!f) {
        set_err(err, errlen, "chain.export: %s: %s", path, strerror(errno));
        return NULL;
    }
    if (!is_stdin)
        (void) setvbuf(f, NULL, _IOFBF, STDIO_BUF_BYTES);
    return reader_open(f, !is_stdin, err, errlen);
}

const alys_export_header_t *alys_export_reader_header(const alys_export_reader_t *self)
{
    return &self->header;
}

/* At EOF: fine unless the header announced more blocks than we saw. */
static int at_end(alys_export_reader_t *self, uint64_t index)
{
    if (self->header.block_count != 0 && self->count < self->header.block_count) {
        rec_err(self, index,
                "truncated (the header announces %" PRIu64
                " blocks, the stream ends after %" PRIu64 ")",
                self->header.block_count, self->count);
        return -1;
    }
    return 0;
}

int alys_export_reader_next(alys_export_reader_t *self, uint8_t **bytes, size_t *len, char *err,
                            size_t errlen)
{
    if (self->err[0]) {
        set_err(err, errlen, "%s", self->err);
        return -1;
    }
    uint64_t index = self->count + 1;
    int rc = read_record(self, index, ALYS_MAX_BLOCK_BYTES, bytes, len);
    if (rc == 0 && at_end(self, index) == 0)
        return 0;
    if (rc == 1 && self->header.block_count != 0 && self->count >= self->header.block_count) {
        free(*bytes);
        *bytes = NULL;
        self->offset -= ALYS_EXPORT_PREFIX_BYTES + *len;
        rec_err(self, index, "extra record after the %" PRIu64 " blocks the header announces",
                self->header.block_count);
        rc = -1;
    }
    if (rc != 1) {
        set_err(err, errlen, "%s", self->err);
        return -1;
    }
    self->count++;
    return 1;
}

uint64_t alys_export_reader_count(const alys_export_reader_t *self)
{
    return self->count;
}

uint64_t alys_export_reader_offset(const alys_export_reader_t *self)
{
    return self->offset;
}

void alys_export_reader_destroy(alys_export_reader_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    alys_export_reader_t *self = *self_p;
    if (self->f && !self->is_stdin)
        fclose(self->f);
    free(self);
    *self_p = NULL;
}
