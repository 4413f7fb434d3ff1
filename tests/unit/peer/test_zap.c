/*  Who may link to our listen socket (pm_zap.h): CURVE only, in our
 *  domain, with a 32-byte key that is not banned; the User-Id is the key
 *  in hex. */
#include <criterion/criterion.h>
#include <string.h>

#include "peer_test_util.h"
#include "pm_zap.h"

static const uint8_t s_key[32] = {0xab, 0xcd, 1, 2, 3};
#define KEY_HEX "abcd010203000000000000000000000000000000000000000000000000000000"

Test(zap, a_curve_client_is_allowed_as_its_key)
{
    pm_zap_t z = pm_zap_decide(PM_ZAP_DOMAIN, "CURVE", s_key, 32, NULL, T0);
    cr_expect(z.allow);
    cr_expect_str_eq(z.status, "200");
    cr_expect_str_eq(z.user_id, KEY_HEX);
}

Test(zap, other_mechanisms_domains_and_key_sizes_are_refused)
{
    const char *mech[] = {"NULL", "PLAIN", "GSSAPI", "", NULL};
    for (size_t i = 0; i < sizeof mech / sizeof mech[0]; i++) {
        pm_zap_t z = pm_zap_decide(PM_ZAP_DOMAIN, mech[i], s_key, 32, NULL, T0);
        cr_expect_not(z.allow, "%s", mech[i] ? mech[i] : "NULL pointer");
        cr_expect_str_eq(z.status, "400");
        cr_expect_str_empty(z.user_id);
    }
    cr_expect_not(pm_zap_decide("alys-validators", "CURVE", s_key, 32, NULL, T0).allow);
    cr_expect_not(pm_zap_decide(NULL, "CURVE", s_key, 32, NULL, T0).allow);
    cr_expect_not(pm_zap_decide(PM_ZAP_DOMAIN, "CURVE", s_key, 31, NULL, T0).allow);
    cr_expect_not(pm_zap_decide(PM_ZAP_DOMAIN, "CURVE", s_key, 33, NULL, T0).allow);
    cr_expect_not(pm_zap_decide(PM_ZAP_DOMAIN, "CURVE", NULL, 32, NULL, T0).allow);
}

Test(zap, a_banned_key_is_refused_until_its_ban_ends)
{
    peer_table_config_t cfg;
    peer_table_config_defaults(&cfg);
    peer_table_t *t = table_with(&cfg);
    cr_expect(pm_zap_decide(PM_ZAP_DOMAIN, "CURVE", s_key, 32, t, T0).allow, "not banned yet");
    cr_assert_eq(peer_table_add(t, KEY_HEX, "", T0), PEER_OK);
    peer_action_t a = PEER_ACTION_NONE;
    peer_table_blame_now(t, KEY_HEX, PEER_OUTCOME_VIOLATION, "lied", T0, &a);
    cr_assert_eq(a, PEER_ACTION_BAN);
    pm_zap_t z = pm_zap_decide(PM_ZAP_DOMAIN, "CURVE", s_key, 32, t, T0 + 1);
    cr_expect_not(z.allow);
    cr_expect_str_eq(z.text, "banned");
    cr_expect(pm_zap_decide(PM_ZAP_DOMAIN, "CURVE", s_key, 32, t, T0 + cfg.ban_ms + 1).allow,
              "the ban ran out");
    peer_table_destroy(&t);
}
