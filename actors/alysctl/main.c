/*  alysctl: inspect and steer a running node. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "alysctl.h"
#include "bus.h"
#include "log.h"
#include "version.h"

/* Weak: a subcommand not linked in resolves to NULL and is reported. */
#pragma weak alysctl_status
#pragma weak alysctl_monitor
#pragma weak alysctl_import
#pragma weak alysctl_export
#pragma weak alysctl_peers
#pragma weak alysctl_sync
#pragma weak alysctl_checkpoint
#pragma weak alysctl_cert
#pragma weak alysctl_tx
#pragma weak alysctl_key

typedef struct {
    const char *name;
    alysctl_cmd_fn *fn;
    const char *args; /* what follows the command name */
    const char *what; /* one line: what it does */
} command_t;

static const command_t s_cmds[] = {
    {"status", alysctl_status, "[--json]", "actors, sync state, progress and readiness"},
    {"monitor", alysctl_monitor, "[--metrics] [--fields] [--count N]",
     "follow lifecycle, sync and ZeroMQ socket events (--metrics: metric updates too)"},
    {"import", alysctl_import, "FILE [--batch N] [--window N]", "stream an export file into the node"},
    {"export", alysctl_export, "FILE [--from H] [--to H]", "write the node's chain to a file"},
    {"peers", alysctl_peers, "[--json]", "peer table with scores and bans"},
    {"sync", alysctl_sync,
     "status [--json] | head | can-produce | pause | resume | start [--from H] [--target H]",
     "the SyncActor: state, head, CanProduceBlocks; pause, resume or restart a sync"},
    {"checkpoint", alysctl_checkpoint, "list [--json] | create | recover HEIGHT",
     "sync checkpoints: list them, make one now, roll back to one"},
    {"cert", alysctl_cert, "new PATH", "make a CURVE certificate pair (remote validators)"},
    {"tx", alysctl_tx,
     "send --to ADDR --amount N --fee N [--nonce N] --key-file F | submit HEX | status [--json]",
     "transactions: sign and submit a transfer, submit one, the mempool's state"},
    {"key", alysctl_key, "show [--endpoint] | new PATH",
     "the node's identity: its public key and alys:// endpoint (made on first use)"},
};
#define NCMDS (sizeof s_cmds / sizeof s_cmds[0])

int alysctl_json_flag(int argc, char **argv, int first)
{
    int json = 0;
    for (int i = first; i < argc; i++) {
        if (strcmp(argv[i], "--json") != 0)
            return -1;
        json = 1;
    }
    return json;
}

static void usage(FILE *out)
{
    fprintf(out, "usage: alysctl [--config FILE] COMMAND [ARGS]\n"
                 "       alysctl COMMAND --help | alysctl --help | alysctl --version\n"
                 "  --config FILE  the node's config (default: $ALYS_CONFIG, else\n"
                 "                 " ALYS_DEFAULT_CONFIG ")\n"
                 "commands:\n");
    for (size_t i = 0; i < NCMDS; i++)
        fprintf(out, "  %-11s %s%s\n  %-11s   %s\n", s_cmds[i].name, s_cmds[i].args,
                s_cmds[i].fn ? "" : " (not built)", "", s_cmds[i].what);
    fprintf(out,
            "exit status: 0 done, 1 refused or no answer, 2 usage error, 3 failed, "
            "%d config error\n",
            ALYS_EXIT_CONFIG);
}

static const command_t *find_command(const char *name);

static void command_usage(FILE *out, const command_t *c)
{
    fprintf(out, "usage: alysctl [--config FILE] %s %s\n  %s\n", c->name, c->args, c->what);
}

int alysctl_usage_error(const char *cmd, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fprintf(stderr, "alysctl %s: %s\n", cmd, msg);
    const command_t *c = find_command(cmd);
    if (c)
        command_usage(stderr, c);
    return ALYS_EXIT_USAGE;
}

int alysctl_bad_args(const char *cmd, int argc, char **argv)
{
    char args[400] = "";
    size_t used = 0;
    for (int i = 1; i < argc && used < sizeof args; i++)
        used += (size_t) snprintf(args + used, sizeof args - used, "%s%s", i > 1 ? " " : "", argv[i]);
    if (argc <= 1)
        return alysctl_usage_error(cmd, "arguments missing");
    return alysctl_usage_error(cmd, "bad or missing arguments in '%s'", args);
}

static int usage_error(const char *fmt, const char *arg, const char *hint)
{
    fprintf(stderr, "alysctl: ");
    fprintf(stderr, fmt, arg);
    if (hint)
        fprintf(stderr, " (did you mean '%s'?)", hint);
    fprintf(stderr, "\n");
    usage(stderr);
    return ALYS_EXIT_USAGE;
}

static const command_t *find_command(const char *name)
{
    for (size_t c = 0; c < NCMDS; c++)
        if (strcmp(name, s_cmds[c].name) == 0)
            return &s_cmds[c];
    return NULL;
}

static const char *command_name(size_t i)
{
    return s_cmds[i].name;
}

/* The command closest to a mistyped one (edit distance <= 2). */
static const char *suggest(const char *word)
{
    const char *best = NULL;
    size_t best_d = 3;
    for (size_t i = 0; i < NCMDS; i++) {
        size_t d = alys_edit_distance(word, command_name(i));
        if (d < best_d) {
            best_d = d;
            best = command_name(i);
        }
    }
    return best;
}

static bool wants_help(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
            return true;
    return false;
}

int main(int argc, char **argv)
{
    const char *config_path = NULL;
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        if (strcmp(argv[i], "--config") == 0 && i + 1 < argc) {
            config_path = argv[++i];
        } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(argv[i], "--version") == 0 || strcmp(argv[i], "-V") == 0) {
            alys_print_version("alysctl");
            return 0;
        } else if (strcmp(argv[i], "--config") == 0) {
            return usage_error("--config needs a FILE", NULL, NULL);
        } else {
            return usage_error("unknown option '%s'", argv[i], NULL);
        }
    }
    if (i >= argc)
        return usage_error("no command given%s", "", NULL);
    const command_t *cmd = find_command(argv[i]);
    if (!cmd)
        return usage_error("unknown command '%s'", argv[i], suggest(argv[i]));
    if (wants_help(argc - i, argv + i)) {
        command_usage(stdout, cmd);
        return 0;
    }
    if (!cmd->fn) {
        fprintf(stderr, "alysctl: '%s' is not built into this alysctl\n", cmd->name);
        return ALYS_EXIT_USAGE;
    }
    if (!config_path)
        config_path = alys_config_default_path();
    alys_config_t cfg;
    alys_config_defaults(&cfg);
    char err[ALYS_ERR_MAX];
    if (alys_config_load(&cfg, config_path, err, sizeof err) != 0) {
        fprintf(stderr, "alysctl: config error: %s\n", err);
        return ALYS_EXIT_CONFIG;
    }
    alys_log_init("alysctl", "warn");
    alys_bus_set_name("alysctl");
    return cmd->fn(&cfg, argc - i, argv + i);
}
