/*  alysctl: inspect and steer a running node. */
#include <stdio.h>
#include <string.h>

#include "alysctl.h"
#include "bus.h"
#include "log.h"

/* Weak: a subcommand not linked in resolves to NULL and is reported. */
#pragma weak alysctl_status
#pragma weak alysctl_monitor
#pragma weak alysctl_import
#pragma weak alysctl_export
#pragma weak alysctl_peers
#pragma weak alysctl_sync
#pragma weak alysctl_checkpoint
#pragma weak alysctl_cert

typedef struct {
    const char     *name;
    alysctl_cmd_fn *fn;
    const char     *usage;
} command_t;

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

static void usage(const command_t *cmds, size_t n)
{
    fprintf(stderr, "usage: alysctl --config FILE COMMAND [ARGS]\ncommands:\n");
    for (size_t i = 0; i < n; i++)
        fprintf(stderr, "  %-12s %s%s\n", cmds[i].name, cmds[i].usage,
                cmds[i].fn ? "" : " (not built)");
}

int main(int argc, char **argv)
{
    const command_t cmds[] = {
        {"status", alysctl_status, "[--json]  actors, sync state and progress"},
        {"monitor", alysctl_monitor, "follow lifecycle, sync and ZeroMQ socket events live"},
        {"import", alysctl_import, "FILE  stream an export file into the node"},
        {"export", alysctl_export, "FILE [--from H] [--to H]  write the node's chain out"},
        {"peers", alysctl_peers, "[--json]  peer table with scores and bans"},
        {"sync", alysctl_sync, "pause|resume|start [--from H] [--target H]"},
        {"checkpoint", alysctl_checkpoint, "list|create"},
        {"cert", alysctl_cert, "new PATH  make a CURVE certificate pair (remote validators)"},
    };
    size_t n = sizeof cmds / sizeof cmds[0];
    const char *config_path = NULL;
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        if (strcmp(argv[i], "--config") == 0 && i + 1 < argc)
            config_path = argv[++i];
        else {
            usage(cmds, n);
            return 2;
        }
    }
    if (i >= argc || !config_path) {
        usage(cmds, n);
        return 2;
    }
    alys_config_t cfg;
    alys_config_defaults(&cfg);
    char err[ALYS_ERR_MAX];
    if (alys_config_load(&cfg, config_path, err, sizeof err) != 0) {
        fprintf(stderr, "alysctl: config error: %s\n", err);
        return 2;
    }
    alys_log_init("alysctl", "warn");
    alys_bus_set_name("alysctl");
    for (size_t c = 0; c < n; c++) {
        if (strcmp(argv[i], cmds[c].name) != 0)
            continue;
        if (!cmds[c].fn) {
            fprintf(stderr, "alysctl: '%s' is not built into this alysctl\n", cmds[c].name);
            return 2;
        }
        return cmds[c].fn(&cfg, argc - i, argv + i);
    }
    fprintf(stderr, "alysctl: unknown command '%s'\n", argv[i]);
    usage(cmds, n);
    return 2;
}
