/*  peerlink.c: see peerlink.h. */
#include "peerlink.h"

#include "nodeaddr.h"

int alys_peerlink_connect(zsock_t *sock, const char *endpoint, const alys_nodekey_t *ours)
{
    if (!sock || !endpoint)
        return -1;
    alys_nodeaddr_t a;
    if (alys_nodeaddr_parse(endpoint, &a) != 0)
        return zsock_connect(sock, "%s", endpoint) == 0 ? 0 : -1;
    char tcp[ALYS_ENDPOINT_MAX];
    if (alys_nodeaddr_tcp(&a, tcp, sizeof tcp) != 0)
        return -1;
    if (ours) {
        zsock_set_curve_publickey_bin(sock, alys_nodekey_public(ours));
        zsock_set_curve_secretkey_bin(sock, alys_nodekey_secret(ours));
        zsock_set_curve_serverkey_bin(sock, a.key);
    }
    return zsock_connect(sock, "%s", tcp) == 0 ? 0 : -1;
}
