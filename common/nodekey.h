/*  nodekey.h: the node's identity, a persistent CURVE key pair.
 *
 *  A node is its public key: peers name it by the key (never by a name it
 *  declares), ZeroMQ CURVE authenticates it on every node-to-node link, and
 *  its endpoints carry the key (nodeaddr.h: alys://<key>@host:port).
 *
 *  The key file (<data_dir>/node.key, alys_nodekey_path) is text:
 *
 *      # alys-sync node key ...
 *      public-key = "<64 hex>"
 *      secret-key = "<40 z85>"
 *
 *  Blank lines and '#' comments are skipped; the secret key is the file's
 *  substance (the public key is derived from it and, when the file names
 *  one, must match). A file readable or writable by group or others, not a
 *  regular file, over ALYS_NODEKEY_FILE_MAX bytes, or not in this form is
 *  refused: the caller exits with a config error naming the file and why,
 *  rather than running as a node whose identity anyone on the host can take.
 *
 *  Creation (alys_nodekey_open on a missing file) writes a fresh pair to a
 *  temporary file (mode 0600, fsync'd) and link(2)s it into place: a reader
 *  never sees a half-written key, and of two processes creating at once one
 *  wins and the other loads the winner's key (the supervisor's preflight,
 *  alysctl key show and the peer manager all open it this way).
 *
 *  Ownership: alys_nodekey_new / _load / _open return a key the caller frees
 *  with alys_nodekey_destroy(&key), which wipes the secret and nulls the
 *  pointer. Accessors return pointers into the key, valid for its life.
 */
#ifndef ALYS_NODEKEY_H
#define ALYS_NODEKEY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ALYS_KEY_LEN          32   /* CURVE keys, binary */
#define ALYS_KEY_HEX_LEN      64   /* the canonical printed form */
#define ALYS_KEY_Z85_LEN      40   /* ZeroMQ's text form */
#define ALYS_NODEKEY_FILE_MAX 4096 /* a key file is a few lines */
#define ALYS_NODEKEY_FILE     "node.key"

typedef struct alys_nodekey alys_nodekey_t;

/* A fresh pair in memory (nothing written). NULL when CURVE is unavailable. */
alys_nodekey_t *alys_nodekey_new(void);
/* Load an existing key file. NULL with err on a missing, unsafe (mode) or
 * malformed file. */
alys_nodekey_t *alys_nodekey_load(const char *path, char *err, size_t errlen);
/* Load path, or create it with a fresh pair when it does not exist (its
 * directory is made if missing, mode 0700). *created (may be NULL) says
 * which. NULL with err when the file is unsafe, malformed or unwritable. */
alys_nodekey_t *alys_nodekey_open(const char *path, bool *created, char *err, size_t errlen);
/* Write key to path (mode 0600); fails if path exists. 0 or -1 with err. */
int alys_nodekey_save(const alys_nodekey_t *key, const char *path, char *err, size_t errlen);
void alys_nodekey_destroy(alys_nodekey_t **self_p);

const uint8_t *alys_nodekey_public(const alys_nodekey_t *self); /* ALYS_KEY_LEN bytes */
const uint8_t *alys_nodekey_secret(const alys_nodekey_t *self); /* ALYS_KEY_LEN bytes */
const char *alys_nodekey_public_hex(const alys_nodekey_t *self);

/* "<data_dir>/node.key" into out. 0, or -1 when it does not fit. */
int alys_nodekey_path(const char *data_dir, char *out, size_t outlen);

/* A public key as text: 64 hex digits (either case) or 40 z85 characters,
 * exactly (len bytes, no terminator needed). 0 and out set, else -1. */
int alys_key_parse(const char *text, size_t len, uint8_t out[ALYS_KEY_LEN]);
/* The canonical form: 64 lowercase hex digits + NUL into out. */
void alys_key_hex(const uint8_t key[ALYS_KEY_LEN], char out[ALYS_KEY_HEX_LEN + 1]);
/* Whether text is a canonical key (64 lowercase hex digits, NUL-terminated). */
bool alys_key_is_hex(const char *text);

#endif
