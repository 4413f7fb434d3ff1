/*  itkey.c: see itkey.h. */
#include "itkey.h"

#include <stdbool.h>
#include <stdio.h>

#include "config.h"
#include "peerlink.h"

int itk_node_endpoint(const it_node_t *n, int port, char *out, size_t outlen)
{
    char data[sizeof n->dir + 8], path[sizeof data + 32], err[ALYS_ERR_MAX];
    snprintf(data, sizeof data, "%s/data", n->dir);
    bool created = false;
    alys_nodekey_t *k = alys_nodekey_path(data, path, sizeof path) == 0
                            ? alys_nodekey_open(path, &created, err, sizeof err)
                            : NULL;
    if (!k)
        return -1;
    int w = snprintf(out, outlen, "alys://%s@127.0.0.1:%d", alys_nodekey_public_hex(k), port);
    alys_nodekey_destroy(&k);
    return w > 0 && (size_t) w < outlen ? 0 : -1;
}

zsock_t *itk_dealer(const char *endpoint, const char *id, alys_nodekey_t **key)
{
    *key = alys_nodekey_new();
    zsock_t *s = *key ? zsock_new(ZMQ_DEALER) : NULL;
    if (s && id)
        zsock_set_identity(s, id);
    if (s)
        zsock_set_linger(s, 0);
    if (s && alys_peerlink_connect(s, endpoint, *key) != 0)
        zsock_destroy(&s);
    if (!s)
        alys_nodekey_destroy(key);
    return s;
}
