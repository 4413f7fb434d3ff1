/*  What one inbound client may cost (pm_inbound.h): the credit and byte
 *  budgets, admission (slots, per-address limit, idle slots, refusals that
 *  lapse) and the eviction rule. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "pm_inbound.h"

#define MIB (1024ull * 1024ull)

static const pm_inbound_cfg_t CFG = {.max_peers = 8,
                                     .per_address = 2,
                                     .max_requests = 4,
                                     .client_bytes = 16 * MIB,
                                     .total_bytes = 40 * MIB};

/* ---- budgets ----------------------------------------------------------------- */

Test(inbound_budget, a_client_with_max_requests_in_progress_or_owed_gets_no_more_credit)
{
    pm_inbound_t in = {.state = PM_INBOUND_ADMITTED};
    pm_inbound_totals_t t = {0};
    pm_inbound_read_start(&in, &t, 1024);
    pm_inbound_read_start(&in, &t, 1024);
    pm_inbound_charge(&in, &t, 100, true, 0);
    cr_assert(pm_inbound_may_request(&CFG, &in, &t, 1024), "3 of 4 used: one more");
    pm_inbound_charge(&in, &t, 100, true, 0);
    cr_assert_not(pm_inbound_may_request(&CFG, &in, &t, 1024), "2 read + 2 owed = 4: BUSY");
    pm_inbound_credit(&in, &t, 100, true, 0);
    cr_assert(pm_inbound_may_request(&CFG, &in, &t, 1024), "the socket took one: credit is back");
}

Test(inbound_budget, small_answers_that_are_not_ranges_do_not_spend_the_request_credit)
{
    pm_inbound_t in = {.state = PM_INBOUND_ADMITTED};
    pm_inbound_totals_t t = {0};
    for (int i = 0; i < 10; i++)
        pm_inbound_charge(&in, &t, 80, false, 0);
    cr_assert(pm_inbound_may_request(&CFG, &in, &t, 1024));
    cr_assert_eq(in.owed, 800);
    cr_assert_eq(t.owed, 800);
}

Test(inbound_budget, an_answer_that_would_pass_the_client_byte_budget_is_not_sent)
{
    pm_inbound_t in = {.state = PM_INBOUND_ADMITTED};
    pm_inbound_totals_t t = {0};
    pm_inbound_charge(&in, &t, 8 * MIB, true, 0);
    cr_assert(pm_inbound_may_send(&CFG, &in, &t, 8 * MIB, true), "exactly 16 MiB owed is within");
    pm_inbound_charge(&in, &t, 8 * MIB, true, 0);
    cr_assert_not(pm_inbound_may_send(&CFG, &in, &t, 1, true), "one byte more is over");
    cr_assert_not(pm_inbound_may_request(&CFG, &in, &t, 1024), "spent bytes: no disk read either");
}

Test(inbound_budget, the_total_budget_binds_when_many_clients_each_owe_within_their_own)
{
    pm_inbound_t a = {0}, b = {0}, c = {0};
    pm_inbound_totals_t t = {0};
    pm_inbound_charge(&a, &t, 15 * MIB, true, 0);
    pm_inbound_charge(&b, &t, 15 * MIB, true, 0);
    cr_assert(pm_inbound_may_send(&CFG, &c, &t, 10 * MIB, true), "30 + 10 = 40 MiB: within");
    cr_assert_not(pm_inbound_may_send(&CFG, &c, &t, 10 * MIB + 1, true), "over the 40 MiB total");
    pm_inbound_charge(&c, &t, 10 * MIB, true, 0);
    cr_assert_not(pm_inbound_may_request(&CFG, &c, &t, 1024), "total spent: BUSY for everyone");
    pm_inbound_credit(&a, &t, 15 * MIB, true, 0);
    cr_assert(pm_inbound_may_request(&CFG, &c, &t, 1024), "another client's bytes were taken");
}

Test(inbound_budget, a_credit_for_a_client_no_longer_known_still_lowers_the_total_and_never_wraps)
{
    pm_inbound_t in = {0};
    pm_inbound_totals_t t = {0};
    pm_inbound_charge(&in, &t, 1000, true, 0);
    pm_inbound_credit(NULL, &t, 1000, true, 0);
    cr_assert_eq(t.owed, 0);
    pm_inbound_credit(&in, &t, 5000, true, 0);
    cr_assert_eq(in.owed, 0, "clamped at zero");
    cr_assert_eq(in.owed_ranges, 0);
    cr_assert_eq(t.owed, 0);
}

Test(inbound_budget, reads_in_progress_reserve_their_worst_case_and_give_it_back)
{
    pm_inbound_t in = {.state = PM_INBOUND_ADMITTED};
    pm_inbound_totals_t t = {0};
    uint64_t big = pm_inbound_reserve(1024, 0, 8 * MIB);
    cr_assert_eq(big, 8 * MIB, "nothing seen yet: a whole frame");
    cr_assert(pm_inbound_may_request(&CFG, &in, &t, big));
    pm_inbound_read_start(&in, &t, big);
    pm_inbound_read_start(&in, &t, big);
    cr_assert_not(pm_inbound_may_request(&CFG, &in, &t, big), "16 MiB reserved: no third");
    cr_assert_not(pm_inbound_may_send(&CFG, &in, &t, 1, true), "reserved bytes count for answers too");
    cr_assert(pm_inbound_may_send(&CFG, &in, &t, 100, false), "but not for a small BUSY");
    pm_inbound_read_end(&in, &t, big);
    cr_assert_eq(in.in_flight, 1);
    cr_assert_eq(t.reserved, 8 * MIB);
    cr_assert(pm_inbound_may_send(&CFG, &in, &t, 8 * MIB, true));
}

Test(inbound_budget, the_reservation_follows_the_largest_item_served_capped_at_a_frame)
{
    cr_assert_eq(pm_inbound_reserve(10, 1000, 8 * MIB), 10 * 1008 + 1024);
    cr_assert_eq(pm_inbound_reserve(1024, 600000, 8 * MIB), 8 * MIB);
}

Test(inbound_budget, small_answers_may_pass_the_total_by_an_eighth_but_not_a_client_budget)
{
    pm_inbound_t a = {0}, b = {0};
    pm_inbound_totals_t t = {0};
    pm_inbound_charge(&a, &t, 16 * MIB, true, 0);
    pm_inbound_charge(&b, &t, 16 * MIB, true, 0);
    pm_inbound_t c = {0};
    pm_inbound_charge(&c, &t, 8 * MIB, true, 0); /* the 40 MiB total is spent */
    pm_inbound_t d = {0};
    cr_assert_not(pm_inbound_may_send(&CFG, &d, &t, 100, true));
    cr_assert(pm_inbound_may_send(&CFG, &d, &t, 100, false), "a newcomer's Status gets through");
    cr_assert_not(pm_inbound_may_send(&CFG, &d, &t, 5 * MIB + 1, false), "within an eighth");
    cr_assert_not(pm_inbound_may_send(&CFG, &a, &t, 1, false), "a's own budget is spent");
}

/* ---- admission --------------------------------------------------------------- */

Test(inbound_admit, the_per_address_limit_holds_before_the_slot_count)
{
    cr_assert_eq(pm_inbound_admit(&CFG, 0, 0), PM_INBOUND_ADMITTED);
    cr_assert_eq(pm_inbound_admit(&CFG, 1, 1), PM_INBOUND_ADMITTED);
    cr_assert_eq(pm_inbound_admit(&CFG, 2, 2), PM_INBOUND_TOO_MANY_FROM_ADDRESS);
    cr_assert_eq(pm_inbound_admit(&CFG, 8, 2), PM_INBOUND_TOO_MANY_FROM_ADDRESS);
    cr_assert_eq(pm_inbound_admit(&CFG, 8, 0), PM_INBOUND_FULL);
}

Test(inbound_admit, a_refused_or_evicted_client_is_ignored_for_a_while_then_may_try_again)
{
    pm_inbound_totals_t t = {0};
    pm_inbound_t in = {0};
    pm_inbound_set(&in, PM_INBOUND_EVICTED, &t, 1000);
    cr_assert_eq(t.evicted, 1);
    cr_assert(pm_inbound_ignored(&in, 1000 + PM_INBOUND_REFUSED_MS - 1));
    cr_assert_not(pm_inbound_ignored(&in, 1000 + PM_INBOUND_REFUSED_MS));
    cr_assert_eq(in.state, PM_INBOUND_NEW);
    pm_inbound_set(&in, PM_INBOUND_TOO_MANY_FROM_ADDRESS, &t, 5000);
    cr_assert_eq(t.refused, 1);
    cr_assert(pm_inbound_ignored(&in, 5001));
}

Test(inbound_admit, a_silent_admitted_client_stops_holding_its_slot)
{
    pm_inbound_totals_t t = {0};
    pm_inbound_t in = {0};
    pm_inbound_set(&in, PM_INBOUND_ADMITTED, &t, 0);
    cr_assert(pm_inbound_live(&in, 100, 100 + PM_INBOUND_IDLE_MS - 1));
    cr_assert_not(pm_inbound_live(&in, 100, 100 + PM_INBOUND_IDLE_MS));
    cr_assert_not(pm_inbound_ignored(&in, 1), "admitted clients are served");
}

Test(inbound_admit, address_groups_are_ipv4_slash_16_and_ipv6_slash_32)
{
    char g[PM_INBOUND_ADDR_MAX];
    pm_inbound_group("10.1.2.3", g, sizeof g);
    cr_assert_str_eq(g, "10.1");
    pm_inbound_group("10.1.200.7", g, sizeof g);
    cr_assert_str_eq(g, "10.1");
    pm_inbound_group("2001:db8:1::5", g, sizeof g);
    cr_assert_str_eq(g, "2001:db8");
    pm_inbound_group("", g, sizeof g);
    cr_assert_str_eq(g, "");
}

/* ---- eviction ---------------------------------------------------------------- */

static pm_inbound_cand_t cand(size_t handle, const char *group, int64_t connected_at)
{
    pm_inbound_cand_t c = {.handle = handle, .connected_at = connected_at};
    snprintf(c.group, sizeof c.group, "%s", group);
    return c;
}

static size_t victim(pm_inbound_cand_t *cands, size_t n)
{
    long v = pm_inbound_pick_victim(cands, n);
    cr_assert_geq(v, 0, "someone is evicted");
    return cands[v].handle;
}

Test(inbound_evict, the_youngest_of_the_largest_address_group_is_evicted)
{
    /* 4 distinct small groups are protected, then half by age; 20 from
     * one attacker /16 remain the largest group. */
    pm_inbound_cand_t c[32];
    size_t n = 0;
    for (int i = 0; i < 6; i++) {
        char g[16];
        snprintf(g, sizeof g, "10.%d", i);
        c[n] = cand(n, g, 10 + i);
        n++;
    }
    for (int i = 0; i < 20; i++) {
        c[n] = cand(n, "66.6", 100 + i);
        n++;
    }
    cr_assert_eq(victim(c, n), 25, "the attacker group's newest connection");
}

Test(inbound_evict, peers_that_served_us_well_and_recent_block_senders_are_protected)
{
    pm_inbound_cand_t c[16];
    size_t n = 0;
    for (int i = 0; i < 12; i++) {
        c[n] = cand(n, "66.6", 100 + i);
        n++;
    }
    /* The youngest would go, but it served us well; the next youngest
     * pushed a block recently. */
    c[11].score = 50;
    c[10].last_block_at = 5000;
    size_t v = victim(c, n);
    cr_assert_neq(v, 11);
    cr_assert_neq(v, 10);
    cr_assert_eq(v, 9);
}

Test(inbound_evict, nobody_is_evicted_when_every_client_is_protected)
{
    pm_inbound_cand_t c[4] = {cand(0, "1.1", 1), cand(1, "2.2", 2), cand(2, "3.3", 3),
                              cand(3, "4.4", 4)};
    cr_assert_eq(pm_inbound_pick_victim(c, 4), -1);
    cr_assert_eq(pm_inbound_pick_victim(c, 0), -1);
}

Test(inbound_evict, an_attacker_with_many_connections_from_one_group_cannot_evict_varied_honest_peers)
{
    /* 8 honest peers in distinct groups, connected long ago; 8 attacker
     * connections from one /16. Whoever is evicted, it is the attacker's. */
    pm_inbound_cand_t c[16];
    size_t n = 0;
    for (int i = 0; i < 8; i++) {
        char g[16];
        snprintf(g, sizeof g, "20.%d", i);
        c[n] = cand(n, g, 1 + i);
        n++;
    }
    for (int i = 0; i < 8; i++) {
        c[n] = cand(n, "66.6", 1000 + i);
        n++;
    }
    cr_assert_geq(victim(c, n), 8);
}
