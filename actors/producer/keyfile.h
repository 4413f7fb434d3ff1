/*  keyfile.h: the producer's authority key. The rule lives in
 *  common/chain/authkey.h (the supervisor's preflight applies it too);
 *  these names are kept for the producer and its tests.
 */
#ifndef ALYS_PRODUCER_KEYFILE_H
#define ALYS_PRODUCER_KEYFILE_H

#include "chain/authkey.h"

#define KEYFILE_MAX         ALYS_AUTHKEY_MAX
#define KEYFILE_EXIT_CONFIG ALYS_AUTHKEY_EXIT_CONFIG
#define keyfile_load        alys_authkey_load

#endif
