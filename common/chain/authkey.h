/*  authkey.h: an authority's secret key file, read and checked, pure apart
 *  from reading the one file. In common/ because two processes apply the
 *  same rule: alys-producer loads the key, and the supervisor's preflight
 *  refuses to start a node whose [producer] key_file breaks it (exit 78).
 *
 *  The file holds one authority secret key as 64 hex digits (one line of
 *  alys-chaingen's keys file), an optional trailing newline, nothing else.
 *  Refused, each with its own message: a file group or others may read or
 *  write (mode & 077: the key signs blocks; like ssh, we do not use a key
 *  others can read), not a regular file, larger than ALYS_AUTHKEY_MAX bytes,
 *  not 64 hex digits, not a valid secp256k1 secret, or a key whose public
 *  key is not among the genesis authorities.
 *
 *  The secret stays in the caller's buffer; alys_authkey_load wipes its own
 *  copies. Exit code for every refusal: 78 (EX_CONFIG, ALYS_EXIT_CONFIG).
 */
#ifndef ALYS_CHAIN_AUTHKEY_H
#define ALYS_CHAIN_AUTHKEY_H

#include <stddef.h>
#include <stdint.h>

#include "chain.h"

#define ALYS_AUTHKEY_MAX         256
#define ALYS_AUTHKEY_EXIT_CONFIG 78

/* Read path into seckey and check it against g. Returns the authority
 * index (>= 0), or -1 with err naming the file and the rule broken. */
int alys_authkey_load(const char *path, const alys_genesis_t *g, uint8_t seckey[ALYS_SECKEY_LEN],
                      char *err, size_t errlen);

#endif
