/*  alysctl key: the node's identity (common/nodekey.h).
 *
 *    key show [--endpoint]  the public key and the alys:// endpoint peers
 *                           dial for [network] listen; --endpoint prints
 *                           only the endpoint (for scripts)
 *    key new PATH           a fresh key file at PATH (the fault proxy's,
 *                           a key made ahead of a node); prints its key
 *
 *  `key show` opens <data_dir>/node.key the way the node does: it creates
 *  the key when there is none yet, so an operator (or devnet.sh) can hand
 *  out a node's endpoint before its first start. Run it as the node's user,
 *  or the node cannot read the file it made.
 */
#include <stdio.h>
#include <string.h>

#include "alysctl.h"
#include "nodeaddr.h"
#include "nodekey.h"

static int key_show(const alys_config_t *cfg, bool endpoint_only)
{
    char path[ALYS_PATH_MAX + 16], err[ALYS_ERR_MAX];
    if (alys_nodekey_path(cfg->data_dir, path, sizeof path) != 0) {
        fprintf(stderr, "alysctl key: data_dir too long\n");
        return ALYS_EXIT_CONFIG;
    }
    bool created = false;
    alys_nodekey_t *key = alys_nodekey_open(path, &created, err, sizeof err);
    if (!key) {
        fprintf(stderr, "alysctl: config error: %s\n", err);
        return ALYS_EXIT_CONFIG;
    }
    char ep[ALYS_ENDPOINT_MAX];
    bool serving = cfg->listen[0] && alys_nodeaddr_from_listen(alys_nodekey_public(key),
                                                               cfg->listen, ep, sizeof ep) == 0;
    int rc = 0;
    if (endpoint_only) {
        if (serving)
            printf("%s\n", ep);
        else
            fprintf(stderr, "alysctl key: [network] listen is not tcp://HOST:PORT: no endpoint\n");
        rc = serving ? 0 : 1;
    } else {
        printf("key       %s\n", alys_nodekey_public_hex(key));
        if (serving)
            printf("endpoint  %s%s\n", ep,
                   strstr(ep, "@*:") || strstr(ep, "@0.0.0.0:")
                       ? "  (a wildcard listen host: peers dial this node's real address)"
                       : "");
        else
            printf("endpoint  none ([network] listen is not tcp://HOST:PORT)\n");
        printf("file      %s%s\n", path, created ? " (created now)" : "");
    }
    alys_nodekey_destroy(&key);
    return rc;
}

static int key_new(const char *path)
{
    char err[ALYS_ERR_MAX];
    alys_nodekey_t *key = alys_nodekey_new();
    if (!key) {
        fprintf(stderr, "alysctl key: cannot make a CURVE key pair\n");
        return 3;
    }
    int rc = alys_nodekey_save(key, path, err, sizeof err);
    if (rc == 0)
        printf("%s\n", alys_nodekey_public_hex(key));
    else
        fprintf(stderr, "alysctl key: %s\n", err);
    alys_nodekey_destroy(&key);
    return rc == 0 ? 0 : 3;
}

int alysctl_key(const alys_config_t *cfg, int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "show") == 0) {
        if (argc == 2)
            return key_show(cfg, false);
        if (argc == 3 && strcmp(argv[2], "--endpoint") == 0)
            return key_show(cfg, true);
        return alysctl_bad_args("key", argc, argv);
    }
    if (argc == 3 && strcmp(argv[1], "new") == 0)
        return key_new(argv[2]);
    if (argc >= 2 && strcmp(argv[1], "new") != 0)
        return alysctl_usage_error("key", "unknown subcommand '%s'", argv[1]);
    return alysctl_bad_args("key", argc, argv);
}
