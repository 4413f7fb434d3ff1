/*  version.h: what every binary says for --version and in alys_build_info.
 *  The version is meson's project version; the commit is `git describe
 *  --always --dirty` of the source tree at build time ("unknown" outside git).
 */
#ifndef ALYS_VERSION_H
#define ALYS_VERSION_H

#include <stdbool.h>

const char *alys_version(void); /* "0.1.0" */
const char *alys_commit(void);  /* "836d26f-dirty", "unknown" */
/* "PROG 0.1.0 (commit 836d26f)" on stdout. */
void alys_print_version(const char *prog);
/* True when argv holds --version (or --help/-h for alys_cli_asks_help).
 * Binaries with their own argument parsing ask these first, so the answer
 * comes whatever else the command line says or lacks. */
bool alys_cli_asks_version(int argc, char **argv);
bool alys_cli_asks_help(int argc, char **argv);

#endif
