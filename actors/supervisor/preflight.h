/*  preflight.h: what the supervisor checks before it spawns anything.
 *
 *  Issue 10's "fail fast, say why": a config that loads can still name a
 *  genesis file that is missing or not a genesis, a data_dir or run_dir the
 *  service user cannot write, or a port something else holds. Each of these
 *  used to surface as an actor dying at start until the restart intensity
 *  gave up with "exit 1" as the only reason. Here they are found first and
 *  reported with the cause; the supervisor then exits ALYS_EXIT_CONFIG (78).
 */
#ifndef ALYS_SUP_PREFLIGHT_H
#define ALYS_SUP_PREFLIGHT_H

#include <stddef.h>

#include "config.h"

/* 0 if everything checked is usable; else -1 and one line in err naming the
 * key, the value and the cause. Creates data_dir and run_dir if missing (as
 * the node would). Binds nothing that it keeps. */
int preflight_check(const alys_config_t *cfg, char *err, size_t errlen);

#endif
