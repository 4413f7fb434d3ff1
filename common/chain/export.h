/*  export.h: the chain export stream ("alys-export-v1"), written by
 *  alys-chaingen and `alysctl export`, read by `alysctl import` (compare
 *  `geth export` / `geth import`).
 *
 *  FORMAT
 *  ------
 *  A stream is a sequence of records. Every record is
 *
 *      +----------------------------+---------------------------+
 *      | N: 4 bytes, unsigned,      | N bytes: one protobuf     |
 *      |    big-endian              |    message (proto3)       |
 *      +----------------------------+---------------------------+
 *
 *  with no padding, no trailer and no checksum of its own (every block carries
 *  its own hashes and signatures, checked on import).
 *
 *  Record 0 (offset 0) is an alys.chain.ExportHeader (proto/chain.proto):
 *      magic        = "alys-export-v1"  (exactly; anything else is refused)
 *      genesis_hash = the 32-byte hash of the chain's genesis
 *                     (alys_genesis_t.hash); an importer refuses a stream
 *                     whose genesis is not its own
 *      first_height = height of the first block record (>= 1: the genesis
 *                     itself is never a record)
 *      block_count  = number of block records that follow, or 0 = unknown
 *  Its N must be at most ALYS_EXPORT_MAX_HEADER_BYTES (4096).
 *
 *  Records 1, 2, ... are each one alys.chain.Block, in height order (the block
 *  of record i is meant to have height first_height + i - 1). N must be at most
 *  ALYS_MAX_BLOCK_BYTES (1 MiB).
 *
 *  Example, the start of a 30-block export (hex):
 *      00 00 00 36                      header record, N = 54
 *      0a 0e "alys-export-v1"           magic        (field 1, 14 bytes)
 *      12 20 80 74 1f ... 57 b8         genesis_hash (field 2, 32 bytes)
 *      18 01                            first_height (field 3) = 1
 *      20 1e                            block_count  (field 4) = 30
 *      00 00 02 ed 0a b4 ...            record 1: N = 749, an alys.chain.Block
 *  (protobuf field order and encoding are the protobuf-c writer's; a reader
 *  must accept any valid protobuf encoding of the same message.)
 *
 *  The stream ends at end of file exactly on a record boundary. When
 *  block_count is not 0 the stream must hold exactly block_count block records,
 *  so a file cut at any byte is detected; with block_count 0 a cut on a record
 *  boundary cannot be told from the real end.
 *
 *  WHAT THE READER CHECKS (and what it leaves to the node)
 *  ----------------------------------------------------------
 *  The reader checks framing only: the header (size, decoding, magic, 32-byte
 *  genesis hash, first_height >= 1), every length against its bound BEFORE
 *  allocating, truncation, and the record count. It does not decode blocks:
 *  next() hands back the raw protobuf bytes so an importer can forward them
 *  without re-encoding, and every block rule (decoding, heights, hashes,
 *  signatures) is the node's to check and report at the right height.
 *
 *  Errors are one line naming the record index (header = 0) and the byte
 *  offset of the record's length prefix, e.g.
 *      chain.export: record 1234 at offset 5678: truncated (need 300 bytes, have 12)
 *      chain.export: record 7 at offset 901: length 2000000 exceeds the limit 1048576
 *      chain.export: record 0 at offset 0: wrong magic "alys-export-v0" (want
 *          "alys-export-v1"): not an alys export stream
 *      chain.export: record 12 at offset 9001: truncated (the header announces
 *          30 blocks, the stream ends after 11)
 *  No input crashes the reader or makes it allocate more than the bound.
 *
 *  OWNERSHIP
 *  ---------
 *  Writers and readers are created with _new and freed with _destroy(&p),
 *  which sets p to NULL (CZMQ style). Byte buffers handed out by
 *  alys_export_reader_next() are malloc'ed and owned by the caller.
 *  Error strings are copied into caller buffers (err, errlen) or, for the
 *  writer, kept in the writer (alys_export_writer_error()).
 *  Neither class is thread-safe; use one per thread.
 */
#ifndef ALYS_EXPORT_H
#define ALYS_EXPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "chain.h"

#define ALYS_EXPORT_MAGIC            "alys-export-v1"
#define ALYS_EXPORT_MAX_HEADER_BYTES 4096
#define ALYS_EXPORT_PREFIX_BYTES     4

typedef struct {
    alys_hash_t genesis_hash;
    uint64_t first_height;
    uint64_t block_count; /* 0 = unknown */
} alys_export_header_t;

/* ---------------------------------------------------------------- writer */

typedef struct alys_export_writer alys_export_writer_t;

/* Create (truncate) path and write the header record. path "-" = stdout.
 * block_count 0 = unknown; otherwise close() fails unless exactly that many
 * blocks were written. Returns NULL with a message in err on failure. */
alys_export_writer_t *alys_export_writer_new(const char *path, const alys_hash_t genesis_hash,
                                             uint64_t first_height, uint64_t block_count,
                                             char *err, size_t errlen);

/* Append one block record from already-encoded protobuf bytes (not checked
 * to decode). len over ALYS_MAX_BLOCK_BYTES is refused. Returns 0 or -1. */
int alys_export_writer_write_block(alys_export_writer_t *self, const uint8_t *block_bytes, size_t len);

/* Encode b (alys_block_encode) and append it. Returns 0 or -1. */
int alys_export_writer_write_block_value(alys_export_writer_t *self, const alys_block_t *b);

/* Append a record with NO bound check (len up to UINT32_MAX). Only for
 * fault injection: it can write streams the reader refuses. Counts as a
 * block record. Returns 0 or -1. */
int alys_export_writer_write_raw(alys_export_writer_t *self, const uint8_t *bytes, size_t len);

/* Block records written so far. */
uint64_t alys_export_writer_count(const alys_export_writer_t *self);

/* Flush, fsync (skipped for pipes and terminals) and close the file; checks
 * the announced block count. Returns 0 or -1. Call once; destroy afterwards. */
int alys_export_writer_close(alys_export_writer_t *self);

/* The last error of this writer ("" if none). Owned by the writer. */
const char *alys_export_writer_error(const alys_export_writer_t *self);

/* Close (without fsync) if still open and free; *self_p = NULL. NULL-safe. */
void alys_export_writer_destroy(alys_export_writer_t **self_p);

/* ---------------------------------------------------------------- reader */

typedef struct alys_export_reader alys_export_reader_t;

/* Open path ("-" = stdin) and read and check the header record. Returns NULL
 * with a message in err on failure. */
alys_export_reader_t *alys_export_reader_new(const char *path, char *err, size_t errlen);

/* Same over an open stream (e.g. fmemopen for fuzzing); takes ownership of
 * f (closed by destroy, also on failure). */
alys_export_reader_t *alys_export_reader_new_stream(FILE *f, char *err, size_t errlen);

/* The checked header. Owned by the reader. */
const alys_export_header_t *alys_export_reader_header(const alys_export_reader_t *self);

/* Read the next block record. Returns 1 with *bytes (malloc'ed, caller
 * frees; never NULL, even for len 0) and *len set, 0 at the clean end of the
 * stream, -1 on error with a message in err. Errors are sticky: every later
 * call returns -1 again. */
int alys_export_reader_next(alys_export_reader_t *self, uint8_t **bytes, size_t *len, char *err,
                            size_t errlen);

/* Block records returned so far, and the byte offset of the next record. */
uint64_t alys_export_reader_count(const alys_export_reader_t *self);
uint64_t alys_export_reader_offset(const alys_export_reader_t *self);

void alys_export_reader_destroy(alys_export_reader_t **self_p);

/* ---------------------------------------------------------------- helpers */

/* Encode h as the header record's protobuf bytes; *out malloc'ed, caller
 * frees. Returns 0 or -1. */
int alys_export_header_encode(const alys_export_header_t *h, uint8_t **out, size_t *len);

/* Decode and check header record bytes. Returns 0, or -1 with a message
 * (without the "record 0 at offset 0" prefix) in err. */
int alys_export_header_decode(const uint8_t *buf, size_t len, alys_export_header_t *out,
                              char *err, size_t errlen);

#endif
