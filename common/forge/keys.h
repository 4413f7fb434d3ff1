/*  forge/keys.h: the key pairs of a forged chain (its authorities and
 *  funded accounts), derived from a public seed, and the keys file that
 *  alys-chaingen writes and alys-faultproxy reads.
 *
 *  DERIVATION (deterministic, the same on every machine and thread count):
 *    secret key = SHA-256("alys-chaingen/v1" 0x00 seed 0x00 label 0x00
 *                 index u32le [counter u8 if the first try is not a valid
 *                 key]) with label "authority" or "account".
 *  These keys sign test chains only: they come from a public seed and
 *  protect nothing.
 *
 *  KEYS FILE: the authority secret keys, 64 hex digits per line, in
 *  authority order, mode 0600. Loading it gives the authorities only
 *  (account_count 0): enough to re-sign headers.
 *
 *  Ownership: alys_forge_keys_t owns its four arrays; free with
 *  alys_forge_keys_clear (wipes the secrets). Functions with err/errlen
 *  copy a one-line message there.
 */
#ifndef ALYS_FORGE_KEYS_H
#define ALYS_FORGE_KEYS_H

#include <stddef.h>
#include <stdint.h>

#include <secp256k1.h>
#include <secp256k1_extrakeys.h>

#include "chain/chain.h"

#define ALYS_FORGE_MAX_SEED      256         /* bytes of seed text used */
#define ALYS_FORGE_KEYS_FILE_MAX (64 * 1024) /* bound on a keys file */

typedef struct {
    uint32_t authority_count;
    uint8_t (*authority_sec)[ALYS_SECKEY_LEN];
    uint8_t (*authority_pub)[ALYS_PUBKEY_LEN];
    uint32_t account_count;
    uint8_t (*account_sec)[ALYS_SECKEY_LEN];
    uint8_t (*account_pub)[ALYS_PUBKEY_LEN];
} alys_forge_keys_t;

/* Derive F authority and A account key pairs from seed (see above) on all
 * online CPUs. Returns 0, or -1 (out of memory, no signing context). */
int alys_forge_keys_derive(const char *seed, uint32_t authorities, uint32_t accounts,
                           alys_forge_keys_t *out);
/* The same on `threads` threads; kp (may be NULL) gets the F + A libsecp256k1
 * key pairs, authorities first, for fast signing (the caller owns kp, an
 * array of F + A entries, and should wipe it after use). */
int alys_forge_keys_derive_par(const char *seed, uint32_t authorities, uint32_t accounts,
                               uint32_t threads, alys_forge_keys_t *out, secp256k1_keypair *kp);
void alys_forge_keys_clear(alys_forge_keys_t *k);
/* Secret key of an authority or account public key; NULL if unknown.
 * Linear search: meant for the odd re-signing, not for every tx. */
const uint8_t *alys_forge_keys_secret(const alys_forge_keys_t *k,
                                      const uint8_t pubkey[ALYS_PUBKEY_LEN]);

/* Write the keys file (authorities only, mode 0600 even over an existing
 * file, fsync'ed). Returns 0, or -1 with err. */
int alys_forge_keys_save(const char *path, const alys_forge_keys_t *k, char *err, size_t errlen);
/* Read a keys file (at most ALYS_FORGE_KEYS_FILE_MAX bytes and
 * ALYS_MAX_AUTHORITIES keys) into out, public keys recomputed. Returns 0,
 * or -1 with err naming the line (out is then empty). */
int alys_forge_keys_load(const char *path, alys_forge_keys_t *out, char *err, size_t errlen);

/* The process-wide signing context (created once, then only read, so any
 * thread may sign with it); NULL if libsecp256k1 could not create it. */
const secp256k1_context *alys_forge_secp(void);

#endif
