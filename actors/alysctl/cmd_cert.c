/*  alysctl cert new FILE: make a CURVE certificate pair for remote validators
 *  (FILE holds the public key, FILE_secret the secret one; CZMQ's zcert
 *  format). Debian's CZMQ package ships no certificate tool, so we carry this
 *  one: a worker's public cert goes into the node's curve_allowed_dir, its
 *  secret cert stays with the worker (--cert), the node's secret cert is
 *  [validation] curve_server_cert.
 */
#include <czmq.h>
#include <stdio.h>
#include <string.h>

#include "alysctl.h"

int alysctl_cert(const alys_config_t *cfg, int argc, char **argv)
{
    (void) cfg;
    if (argc != 3 || strcmp(argv[1], "new") != 0) {
        return argc >= 2 && strcmp(argv[1], "new") != 0
                   ? alysctl_usage_error("cert", "unknown subcommand '%s'", argv[1])
                   : alysctl_usage_error("cert", "expected: new PATH");
    }
    zcert_t *cert = zcert_new();
    if (!cert) {
        fprintf(stderr, "alysctl: cannot make a certificate\n");
        return 3;
    }
    zcert_set_meta(cert, "created-by", "alysctl");
    int rc = zcert_save(cert, argv[2]);
    if (rc != 0)
        fprintf(stderr, "alysctl: cannot write %s and %s_secret\n", argv[2], argv[2]);
    else
        printf("public  %s\nsecret  %s_secret\nkey     %s\n", argv[2], argv[2],
               zcert_public_txt(cert));
    zcert_destroy(&cert);
    return rc == 0 ? 0 : 3;
}
