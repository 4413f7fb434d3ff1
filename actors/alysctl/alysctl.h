/*  alysctl.h: the operator's command-line tool. Each subcommand lives in its
 *  own cmd_*.c file; main.c only dispatches. A subcommand whose file is not
 *  built is reported as unavailable (weak symbols), so areas can land apart.
 */
#ifndef ALYSCTL_H
#define ALYSCTL_H

#include "config.h"

/* argc/argv start at the subcommand's own arguments (argv[0] = subcommand).
 * Return the process exit code. */
typedef int(alysctl_cmd_fn)(const alys_config_t *cfg, int argc, char **argv);

/* The optional "--json" of a subcommand: argv[first..argc) may hold only
 * "--json". Returns 1 (given), 0 (not given) or -1 (anything else: the
 * caller prints its usage). */
int alysctl_json_flag(int argc, char **argv, int first);

/* A usage error of subcommand `cmd`: "alysctl CMD: PROBLEM" on stderr, then
 * that command's usage. Returns 2 (ALYS_EXIT_USAGE) for the caller to return. */
int alysctl_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The same when the arguments as a whole do not parse: names them. */
int alysctl_bad_args(const char *cmd, int argc, char **argv);

alysctl_cmd_fn alysctl_status;     /* status [--json] */
alysctl_cmd_fn alysctl_monitor;    /* monitor */
alysctl_cmd_fn alysctl_import;     /* import FILE */
alysctl_cmd_fn alysctl_export;     /* export FILE [--from H] [--to H] */
alysctl_cmd_fn alysctl_peers;      /* peers [--json] */
alysctl_cmd_fn alysctl_sync;       /* sync pause|resume|start [--from H] [--target H] */
alysctl_cmd_fn alysctl_checkpoint; /* checkpoint list|create */
alysctl_cmd_fn alysctl_cert;       /* cert new PATH */
alysctl_cmd_fn alysctl_tx;         /* tx send|submit|status */
alysctl_cmd_fn alysctl_key;        /* key show [--endpoint] | new PATH */

#endif
