/*  preflight.c: see preflight.h. */
#include "preflight.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "chain/authkey.h"
#include "chain/chain.h"
#include "nodekey.h"
#include "util.h"

static int check_genesis(const alys_config_t *cfg, char *err, size_t errlen)
{
    if (!cfg->genesis_file[0])
        return 0; /* "none yet" is a documented state */
    alys_genesis_t g;
    memset(&g, 0, sizeof g);
    char why[256];
    if (alys_genesis_load(cfg->genesis_file, &g, why, sizeof why) != 0) {
        snprintf(err, errlen, "node.genesis_file '%s' is not usable: %s", cfg->genesis_file, why);
        return -1;
    }
    alys_genesis_clear(&g);
    return 0;
}

/* [producer] enabled: the key must load and be a genesis authority, from a
 * file only its owner may read (authkey.h), before anything starts: the
 * producer would otherwise die at each restart with the same reason. */
static int check_producer(const alys_config_t *cfg, char *err, size_t errlen)
{
    if (!cfg->producer_enabled)
        return 0;
    if (!cfg->producer_key_file[0] || !cfg->genesis_file[0]) {
        snprintf(err, errlen, "producer.enabled needs producer.key_file and node.genesis_file");
        return -1;
    }
    alys_genesis_t g;
    memset(&g, 0, sizeof g);
    char why[512];
    if (alys_genesis_load(cfg->genesis_file, &g, why, sizeof why) != 0) {
        snprintf(err, errlen, "node.genesis_file '%s' is not usable: %s", cfg->genesis_file, why);
        return -1;
    }
    uint8_t sk[ALYS_SECKEY_LEN];
    int idx = alys_authkey_load(cfg->producer_key_file, &g, sk, why, sizeof why);
    explicit_bzero(sk, sizeof sk);
    alys_genesis_clear(&g);
    if (idx < 0) {
        snprintf(err, errlen, "producer.key_file: %s", why);
        return -1;
    }
    return 0;
}

/* Made if missing, then proven writable by creating and removing a file:
 * access(W_OK) says nothing about a read-only mount or a full disk. */
static int check_dir(const char *key, const char *dir, char *err, size_t errlen)
{
    if (alys_mkdir_p(dir, 0755) != 0) {
        snprintf(err, errlen, "%s '%s' cannot be created: %s", key, dir, strerror(errno));
        return -1;
    }
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        snprintf(err, errlen, "%s '%s' is not a directory", key, dir);
        return -1;
    }
    char probe[ALYS_PATH_MAX + 32];
    snprintf(probe, sizeof probe, "%s/.alys-preflight-%d", dir, (int) getpid());
    int fd = open(probe, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        snprintf(err, errlen, "%s '%s' is not writable: %s", key, dir, strerror(errno));
        return -1;
    }
    close(fd);
    if (unlink(probe) != 0) {
        snprintf(err, errlen, "%s '%s': cannot remove a file: %s", key, dir, strerror(errno));
        return -1;
    }
    return 0;
}

/* Binds host:port once and lets go. host NULL: every address. */
static int try_bind(const char *key, const char *host, const char *port, char *err, size_t errlen)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    int rc = getaddrinfo(host, port, &hints, &res);
    if (rc != 0) {
        snprintf(err, errlen, "%s: cannot resolve '%s': %s", key, host ? host : "*", gai_strerror(rc));
        return -1;
    }
    int fd = socket(res->ai_family, res->ai_socktype | SOCK_CLOEXEC, res->ai_protocol);
    int one = 1;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        bind(fd, res->ai_addr, res->ai_addrlen) != 0) {
        snprintf(err, errlen, "%s: cannot bind %s:%s: %s", key, host ? host : "*", port,
                 strerror(errno));
        if (fd >= 0)
            close(fd);
        freeaddrinfo(res);
        return -1;
    }
    close(fd);
    freeaddrinfo(res);
    return 0;
}

/* tcp://HOST:PORT endpoints the node binds; ipc and "" are not ports, and a
 * '*' port is chosen by the system. */
static int check_endpoint_port(const char *key, const char *ep, char *err, size_t errlen)
{
    if (strncmp(ep, "tcp://", 6) != 0)
        return 0;
    char host[ALYS_ENDPOINT_MAX];
    snprintf(host, sizeof host, "%s", ep + 6);
    char *colon = strrchr(host, ':');
    if (!colon)
        return 0; /* the config loader already refuses this */
    *colon = '\0';
    const char *port = colon + 1;
    if (strcmp(port, "*") == 0)
        return 0;
    char *h = host;
    if (h[0] == '[') { /* [::1] */
        h++;
        h[strcspn(h, "]")] = '\0';
    }
    return try_bind(key, strcmp(h, "*") == 0 ? NULL : h, port, err, errlen);
}

/* The node key (common/nodekey.h): made here on a first start, so the
 * node's identity exists before any actor runs and a key file that is
 * unsafe or malformed stops the node with its cause, not one actor in a
 * restart loop. */
static int check_node_key(const alys_config_t *cfg, char *err, size_t errlen)
{
    char path[ALYS_PATH_MAX + 16], why[ALYS_ERR_MAX];
    if (alys_nodekey_path(cfg->data_dir, path, sizeof path) != 0)
        return alys_set_err(err, errlen, -1, "node.data_dir: too long for the node key's path");
    alys_nodekey_t *key = alys_nodekey_open(path, NULL, why, sizeof why);
    if (!key)
        return alys_set_err(err, errlen, -1, "node key: %s", why);
    alys_nodekey_destroy(&key);
    return 0;
}

int preflight_check(const alys_config_t *cfg, char *err, size_t errlen)
{
    if (check_genesis(cfg, err, errlen) != 0 || check_producer(cfg, err, errlen) != 0 ||
        check_dir("node.data_dir", cfg->data_dir, err, errlen) != 0 ||
        check_dir("node.run_dir", cfg->run_dir, err, errlen) != 0 ||
        check_node_key(cfg, err, errlen) != 0 ||
        check_endpoint_port("network.listen", cfg->listen, err, errlen) != 0 ||
        check_endpoint_port("validation.worker_listen", cfg->worker_listen, err, errlen) != 0)
        return -1;
    if (cfg->metrics_enabled) {
        char port[8];
        snprintf(port, sizeof port, "%u", (unsigned) cfg->metrics_port);
        if (try_bind("metrics.metrics_port", cfg->metrics_bind, port, err, errlen) != 0)
            return -1;
    }
    return 0;
}
