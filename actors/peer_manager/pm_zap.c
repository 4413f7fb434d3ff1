/*  pm_zap.c: see pm_zap.h. */
#include "pm_zap.h"

#include <stdio.h>
#include <string.h>

#include "nodekey.h"

static pm_zap_t refuse(const char *why)
{
    pm_zap_t z = {.allow = false, .status = "400"};
    snprintf(z.text, sizeof z.text, "%s", why);
    return z;
}

pm_zap_t pm_zap_decide(const char *domain, const char *mechanism, const uint8_t *key,
                       size_t key_len, peer_table_t *table, uint64_t wall_ms)
{
    if (!domain || strcmp(domain, PM_ZAP_DOMAIN) != 0)
        return refuse("unknown domain");
    if (!mechanism || strcmp(mechanism, "CURVE") != 0)
        return refuse("CURVE only: a peer is its key");
    if (!key || key_len != ALYS_KEY_LEN)
        return refuse("no CURVE key");
    pm_zap_t z = {.allow = true, .status = "200"};
    alys_key_hex(key, z.user_id);
    if (table && peer_table_is_banned(table, z.user_id, NULL, wall_ms)) {
        pm_zap_t r = refuse("banned");
        snprintf(r.user_id, sizeof r.user_id, "%s", z.user_id); /* for our log */
        r.allow = false;
        return r;
    }
    snprintf(z.text, sizeof z.text, "OK");
    return z;
}
