/*  alys-supervisor: starts every actor of the config and keeps it alive.
 *  The policy is in supervisor.c, the I/O in server.c, the checks before
 *  anything starts in preflight.c; this reads the command line and the
 *  config.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bus.h"
#include "config.h"
#include "log.h"
#include "membudget.h"
#include "preflight.h"
#include "server.h"
#include "version.h"

typedef struct {
    const char *config;
    const char *sets[ALYS_SET_MAX];
    size_t nsets;
    bool check; /* --check: validate, report, exit */
} args_t;

static void usage(FILE *out)
{
    fprintf(out,
            "usage: alys-supervisor [--config FILE] [--set KEY=VALUE]... [--check]\n"
            "       alys-supervisor --help | --version\n"
            "  Starts storage, peer_manager, block_processor, sync and the validators of\n"
            "  the config, restarts them when they die or hang, stops them on SIGTERM.\n"
            "  --config FILE     the node's config (default: $ALYS_CONFIG, else\n"
            "                    " ALYS_DEFAULT_CONFIG ")\n"
            "  --set KEY=VALUE   override a config key, e.g. --set sync.max_parallel_downloads=8\n"
            "                    (same validation as the file; passed on to every actor)\n"
            "  --check           check the config, genesis, directories and ports, then exit\n"
            "  -h, --help        this help\n"
            "  -V, --version     version and commit\n"
            "signals: SIGTERM/SIGINT stop the node; SIGHUP re-reads log_level and reopens logs\n"
            "exit status: 0 stopped, 1 gave up on an actor (restart intensity), 2 usage error,\n"
            "  %d config or environment error (also when an actor exits %d; not restarted)\n",
            ALYS_EXIT_CONFIG, ALYS_EXIT_CONFIG);
}

static int usage_error(const char *what, const char *arg)
{
    fprintf(stderr, "alys-supervisor: %s%s%s%s\n", what, arg ? " '" : "", arg ? arg : "",
            arg ? "'" : "");
    usage(stderr);
    return ALYS_EXIT_USAGE;
}

/* -1: go on; else the exit code. */
static int parse_args(args_t *a, int argc, char **argv)
{
    static const struct option opts[] = {{"config", required_argument, 0, 'c'},
                                         {"set", required_argument, 0, 'S'},
                                         {"check", no_argument, 0, 'k'},
                                         {"help", no_argument, 0, 'h'},
                                         {"version", no_argument, 0, 'V'},
                                         {0, 0, 0, 0}};
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":c:hV", opts, NULL)) != -1) {
        switch (c) {
        case 'c': a->config = optarg; break;
        case 'S':
            if (!strchr(optarg, '='))
                return usage_error("--set needs KEY=VALUE, got", optarg);
            if (a->nsets >= ALYS_SET_MAX)
                return usage_error("too many --set options", NULL);
            a->sets[a->nsets++] = optarg;
            break;
        case 'k': a->check = true; break;
        case 'h': usage(stdout); return 0;
        case 'V': alys_print_version("alys-supervisor"); return 0;
        case ':': return usage_error("option needs a value:", argv[optind - 1]);
        default: return usage_error("unknown option", argv[optind - 1]);
        }
    }
    if (optind < argc)
        return usage_error("unexpected argument", argv[optind]);
    if (!a->config)
        a->config = alys_config_default_path();
    return -1;
}

/* Keys accepted without effect, and the memory budget: said once at start. */
static void report_config(const alys_config_t *cfg)
{
    char notes[sizeof cfg->notes];
    snprintf(notes, sizeof notes, "%s", cfg->notes);
    char *save = NULL;
    for (char *line = strtok_r(notes, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
        log_warn("config: %s", line);
    alys_membudget_t mb;
    char line[ALYS_ERR_MAX];
    if (alys_membudget_derive(&mb, cfg->max_memory_gb, cfg->cache_size_mb, line, sizeof line) != 0) {
        log_warn("config: %s", line); /* not reached: refused at load */
        return;
    }
    alys_membudget_describe(&mb, line, sizeof line);
    log_info("%s", line);
}

int main(int argc, char **argv)
{
    args_t a = {0};
    int rc = parse_args(&a, argc, argv);
    if (rc >= 0)
        return rc;
    alys_config_t cfg;
    alys_config_defaults(&cfg);
    char err[ALYS_ERR_MAX];
    if (alys_config_load_set(&cfg, a.config, a.sets, a.nsets, err, sizeof err) != 0) {
        fprintf(stderr, "alys-supervisor: config error: %s\n", err);
        return ALYS_EXIT_CONFIG;
    }
    alys_log_init("supervisor", cfg.log_level);
    alys_log_set_format(cfg.log_format);
    alys_bus_set_name("supervisor");
    report_config(&cfg);
    if (a.check) {
        if (preflight_check(&cfg, err, sizeof err) != 0) {
            fprintf(stderr, "alys-supervisor: %s\n", err);
            return ALYS_EXIT_CONFIG;
        }
        printf("%s: config, genesis, directories and ports are usable\n", cfg.path);
        return 0;
    }
    sup_server_t *server = sup_server_new(&cfg, a.sets, a.nsets, err, sizeof err);
    if (!server) {
        fprintf(stderr, "alys-supervisor: %s\n", err);
        return ALYS_EXIT_CONFIG;
    }
    rc = sup_server_run(server);
    sup_server_destroy(&server);
    return rc;
}
