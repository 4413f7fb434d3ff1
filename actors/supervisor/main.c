/*  alys-supervisor: starts every actor of the config and keeps it alive.
 *  The policy is in supervisor.c, the I/O in server.c; this only reads the
 *  command line and the config.
 */
#include <stdio.h>
#include <string.h>

#include "bus.h"
#include "config.h"
#include "log.h"
#include "server.h"

static int usage(void)
{
    fprintf(stderr, "usage: alys-supervisor --config FILE\n"
                    "  starts storage, peer_manager, block_processor, sync and the validators\n"
                    "  of FILE, restarts them when they die or hang, stops them on SIGTERM\n");
    return 2;
}

int main(int argc, char **argv)
{
    const char *path = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--config") == 0 && i + 1 < argc)
            path = argv[++i];
        else
            return usage();
    }
    if (!path)
        return usage();
    alys_config_t cfg;
    alys_config_defaults(&cfg);
    char err[ALYS_ERR_MAX];
    if (alys_config_load(&cfg, path, err, sizeof err) != 0) {
        fprintf(stderr, "alys-supervisor: config error: %s\n", err);
        return 2;
    }
    alys_log_init("supervisor", cfg.log_level);
    alys_bus_set_name("supervisor");
    sup_server_t *server = sup_server_new(&cfg, err, sizeof err);
    if (!server) {
        fprintf(stderr, "alys-supervisor: %s\n", err);
        return 1;
    }
    int rc = sup_server_run(server);
    sup_server_destroy(&server);
    return rc;
}
