/*  keyfile.h: the producer's authority key, read and checked, pure apart
 *  from reading the one file.
 *
 *  The file holds one authority secret key as 64 hex digits (one line of
 *  alys-chaingen's keys file), an optional trailing newline, nothing else.
 *  Refused, each with its own message: a file group or others may read or
 *  write (mode & 077: the key signs blocks; like ssh, we do not use a key
 *  others can read), not a regular file, larger than KEYFILE_MAX bytes,
 *  not 64 hex digits, not a valid secp256k1 secret, or a key whose public
 *  key is not among the genesis authorities.
 *
 *  The secret stays in the caller's buffer; keyfile_load wipes its own
 *  copies. Exit code for every refusal in alys-producer: 78 (EX_CONFIG).
 */
#ifndef ALYS_PRODUCER_KEYFILE_H
#define ALYS_PRODUCER_KEYFILE_H

#include <stddef.h>
#include <stdint.h>

#include "chain/chain.h"

#define KEYFILE_MAX         256
#define KEYFILE_EXIT_CONFIG 78

/* Read path into seckey and check it against g. Returns the authority
 * index (>= 0), or -1 with err naming the file and the rule broken. */
int keyfile_load(const char *path, const alys_genesis_t *g, uint8_t seckey[ALYS_SECKEY_LEN],
                 char *err, size_t errlen);

#endif
