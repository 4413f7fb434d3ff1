/*  PeerManager's address book (pm_addrbook.h) without sockets, in simulated
 *  time: junk cannot displace bootstrap peers or keep an honest endpoint
 *  from being dialled, failures back off and evict, every table is bounded,
 *  new endpoints are never dialled in bulk, and the book survives export /
 *  import. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "pm_addrbook.h"

/* Endpoints carry a key (common/nodeaddr.h); the book keys them by their
 * string, so one key for all of them is enough here. */
#define EPK "alys://a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1@"

static const uint8_t KEY[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
#define OURS   EPK "127.0.0.1:9999"
#define BOOT1  EPK "192.168.1.1:4000"
#define BOOT2  EPK "192.168.1.2:4000"
#define HONEST EPK "172.16.5.5:4000"

static pm_addrbook_t *s_book;

static void setup(void)
{
    s_book = pm_addrbook_new(KEY, OURS);
    cr_assert_not_null(s_book);
}

static void teardown(void)
{
    pm_addrbook_destroy(&s_book);
    cr_assert_null(s_book);
}

TestSuite(addrbook, .init = setup, .fini = teardown);

/* Source i of 100, each in its own /16; junk endpoint j of source i. */
static void junk_source(int i, char *out, size_t len)
{
    snprintf(out, len, EPK "10.%d.0.1:4000", i);
}

static void junk_endpoint(int i, int j, char *out, size_t len)
{
    snprintf(out, len, EPK "11.%d.%d.%d:%d", i, j / 250, j % 250, 5000 + j);
}

/* 10,000 junk endpoints from 100 sources, 100 each, at t. */
static void flood(uint64_t t)
{
    char src[ALYS_ENDPOINT_MAX], ep[ALYS_ENDPOINT_MAX];
    for (int i = 0; i < 100; i++) {
        junk_source(i, src, sizeof src);
        for (int j = 0; j < 100; j++) {
            junk_endpoint(i, j, ep, sizeof ep);
            pm_addrbook_add(s_book, ep, src, t);
        }
    }
}

/* Every junk dial fails at once; picks from t until honest is picked or
 * limit_ms of simulated time passed (100 ms steps, like pn_tick). The time
 * honest was picked, or 0. */
static uint64_t run_until_picked(const char *honest, uint64_t t, uint64_t limit_ms)
{
    char ep[ALYS_ENDPOINT_MAX];
    for (uint64_t now = t; now <= t + limit_ms; now += 100) {
        while (pm_addrbook_pick(s_book, now, ep, sizeof ep)) {
            if (strcmp(ep, honest) == 0)
                return now;
            if (strcmp(ep, BOOT1) != 0 && strcmp(ep, BOOT2) != 0)
                pm_addrbook_failed(s_book, ep, now);
        }
    }
    return 0;
}

Test(addrbook, groups)
{
    char g[PM_BOOK_GROUP_MAX];
    pm_addrbook_group("tcp://10.20.30.40:5", g, sizeof g);
    cr_assert_str_eq(g, "10.20");
    pm_addrbook_group("alys://KEY@10.20.99.1:5", g, sizeof g);
    cr_assert_str_eq(g, "10.20");
    pm_addrbook_group("tcp://[2001:db8:1::1]:5", g, sizeof g);
    cr_assert_str_eq(g, "2001:db8");
    pm_addrbook_group("tcp://node-a.example:5", g, sizeof g);
    cr_assert_str_eq(g, "node-a.example");
    pm_addrbook_group(PM_BOOK_SOURCE_INBOUND, g, sizeof g);
    cr_assert_str_eq(g, "inbound");
}

Test(addrbook, junk_cannot_displace_bootstrap_peers)
{
    cr_assert(pm_addrbook_add_bootstrap(s_book, BOOT1));
    cr_assert(pm_addrbook_add_bootstrap(s_book, BOOT2));
    flood(1000);
    cr_assert_eq(pm_addrbook_table_of(s_book, BOOT1), PM_BOOK_BOOT);
    cr_assert_eq(pm_addrbook_table_of(s_book, BOOT2), PM_BOOK_BOOT);
    /* Bootstrap peers are dialled first, whatever the flood. */
    char ep[ALYS_ENDPOINT_MAX];
    cr_assert(pm_addrbook_pick(s_book, 2000, ep, sizeof ep));
    cr_assert(strcmp(ep, BOOT1) == 0 || strcmp(ep, BOOT2) == 0);
    /* Even failing many times, they stay and come back within the cap. */
    for (int i = 0; i < 50; i++)
        pm_addrbook_failed(s_book, BOOT1, 2000);
    cr_assert_eq(pm_addrbook_table_of(s_book, BOOT1), PM_BOOK_BOOT);
    cr_assert_eq(pm_addrbook_backoff(50, true), PM_BOOK_BOOT_BACKOFF_MAX_MS);
    flood(3000);
    cr_assert_eq(pm_addrbook_table_of(s_book, BOOT1), PM_BOOK_BOOT);
}

Test(addrbook, honest_endpoint_announced_once_after_junk_is_picked_within_30s)
{
    cr_assert(pm_addrbook_add_bootstrap(s_book, BOOT1));
    flood(1000);
    /* Heard from a source of its own, and (below) from one of the junk sources. */
    cr_assert_eq(pm_addrbook_add(s_book, HONEST, EPK "10.200.0.1:4000", 2000), PM_BOOK_ADDED);
    uint64_t at = run_until_picked(HONEST, 2000, 30000);
    cr_assert(at != 0, "the honest endpoint was not picked within 30 s of simulated time");
}

Test(addrbook, honest_endpoint_from_a_junk_source_is_picked_within_30s)
{
    flood(1000);
    cr_assert_eq(pm_addrbook_add(s_book, HONEST, EPK "10.7.0.1:4000", 2000), PM_BOOK_ADDED);
    uint64_t at = run_until_picked(HONEST, 2000, 30000);
    cr_assert(at != 0, "the honest endpoint was not picked within 30 s of simulated time");
}

Test(addrbook, honest_endpoint_is_picked_while_junk_keeps_coming)
{
    /* The flood goes on after the honest announcement (new junk every
     * 100 ms from every source): the round-robin over buckets still gets
     * to it, just later. */
    flood(1000);
    cr_assert_eq(pm_addrbook_add(s_book, HONEST, EPK "10.200.0.1:4000", 2000), PM_BOOK_ADDED);
    char ep[ALYS_ENDPOINT_MAX], src[ALYS_ENDPOINT_MAX], junk[ALYS_ENDPOINT_MAX];
    int serial = 0;
    bool picked = false;
    for (uint64_t now = 2000; now <= 2000 + 120000 && !picked; now += 100) {
        for (int i = 0; i < 100; i++, serial++) {
            junk_source(i, src, sizeof src);
            snprintf(junk, sizeof junk, EPK "12.%d.%d.%d:7000", serial / 65536 % 256,
                     serial / 256 % 256, serial % 256);
            pm_addrbook_add(s_book, junk, src, now);
        }
        while (!picked && pm_addrbook_pick(s_book, now, ep, sizeof ep)) {
            picked = strcmp(ep, HONEST) == 0;
            if (!picked)
                pm_addrbook_failed(s_book, ep, now);
        }
        if (pm_addrbook_table_of(s_book, HONEST) == PM_BOOK_NONE)
            break; /* displaced: the assertion below says so */
    }
    cr_assert(picked, "the honest endpoint was never picked under a continuing flood");
}

Test(addrbook, one_source_fills_only_its_share)
{
    char ep[ALYS_ENDPOINT_MAX];
    for (int j = 0; j < 10000; j++) {
        snprintf(ep, sizeof ep, EPK "11.%d.%d.1:%d", j / 200 % 256, j % 200, 5000 + j % 1000);
        pm_addrbook_add(s_book, ep, PM_BOOK_SOURCE_INBOUND, 1000);
    }
    pm_book_stats_t st;
    pm_addrbook_stats(s_book, &st);
    cr_assert_leq(st.n_new, PM_BOOK_NEW_BUCKETS_PER_SOURCE * PM_BOOK_BUCKET_SIZE);
    cr_assert_gt(st.n_new, 0);
}

Test(addrbook, tables_are_bounded)
{
    flood(1000);
    flood(2000);
    pm_book_stats_t st;
    pm_addrbook_stats(s_book, &st);
    cr_assert_leq(st.n_new, PM_BOOK_NEW_BUCKETS * PM_BOOK_BUCKET_SIZE);
    cr_assert_gt(st.n_new, PM_BOOK_NEW_BUCKETS * PM_BOOK_BUCKET_SIZE / 2,
                 "100 sources should spread over most buckets");
    /* Tried: 1,000 endpoints that all answered. */
    char ep[ALYS_ENDPOINT_MAX];
    for (int j = 0; j < 1000; j++) {
        snprintf(ep, sizeof ep, EPK "13.%d.%d.1:4000", j / 100, j % 100);
        pm_addrbook_add(s_book, ep, EPK "13.0.0.1:1", 3000);
        pm_addrbook_good(s_book, ep, 3000 + (uint64_t) j);
        pm_addrbook_released(s_book, ep, 3000 + (uint64_t) j);
    }
    pm_addrbook_stats(s_book, &st);
    cr_assert_leq(st.n_tried, PM_BOOK_TRIED_BUCKETS * PM_BOOK_BUCKET_SIZE);
    cr_assert_gt(st.n_tried, 0);
    cr_assert_leq(st.n_new, PM_BOOK_NEW_BUCKETS * PM_BOOK_BUCKET_SIZE);
}

Test(addrbook, ours_and_self_are_never_added)
{
    cr_assert_eq(pm_addrbook_add(s_book, OURS, EPK "10.0.0.1:1", 1), PM_BOOK_INVALID);
    cr_assert_eq(pm_addrbook_add(s_book, "not an endpoint", EPK "10.0.0.1:1", 1), PM_BOOK_INVALID);
    cr_assert_eq(pm_addrbook_add(s_book, HONEST, EPK "10.0.0.1:1", 1), PM_BOOK_ADDED);
    cr_assert_eq(pm_addrbook_add(s_book, HONEST, EPK "10.0.0.1:1", 1), PM_BOOK_KNOWN);
    pm_addrbook_self(s_book, HONEST);
    cr_assert_eq(pm_addrbook_table_of(s_book, HONEST), PM_BOOK_NONE);
    cr_assert_eq(pm_addrbook_add(s_book, HONEST, EPK "10.0.0.1:1", 2), PM_BOOK_INVALID);
}

Test(addrbook, failed_new_endpoint_backs_off_then_is_evicted)
{
    cr_assert_eq(pm_addrbook_add(s_book, HONEST, EPK "10.0.0.1:1", 0), PM_BOOK_ADDED);
    char ep[ALYS_ENDPOINT_MAX];
    uint64_t t = 10000;
    for (uint32_t f = 1; f <= PM_BOOK_NEW_RETRIES; f++) {
        cr_assert(pm_addrbook_pick(s_book, t, ep, sizeof ep), "attempt %u", f);
        cr_assert_str_eq(ep, HONEST);
        cr_assert(pm_addrbook_in_use(s_book, HONEST));
        cr_assert_not(pm_addrbook_pick(s_book, t + 100000, ep, sizeof ep), "in use: not twice");
        pm_addrbook_failed(s_book, HONEST, t);
        if (f == PM_BOOK_NEW_RETRIES)
            break;
        int64_t wait = pm_addrbook_backoff(f, false);
        cr_assert_not(pm_addrbook_pick(s_book, t + (uint64_t) wait - 1, ep, sizeof ep),
                      "picked during its backoff");
        t += (uint64_t) wait;
    }
    cr_assert_eq(pm_addrbook_table_of(s_book, HONEST), PM_BOOK_NONE);
}

Test(addrbook, backoff_doubles_to_its_cap)
{
    cr_assert_eq(pm_addrbook_backoff(1, false), PM_BOOK_BACKOFF_BASE_MS);
    cr_assert_eq(pm_addrbook_backoff(2, false), 2 * PM_BOOK_BACKOFF_BASE_MS);
    cr_assert_eq(pm_addrbook_backoff(3, false), 4 * PM_BOOK_BACKOFF_BASE_MS);
    cr_assert_eq(pm_addrbook_backoff(40, false), PM_BOOK_BACKOFF_MAX_MS);
}

Test(addrbook, tried_endpoint_survives_failures_until_its_limit)
{
    char ep[ALYS_ENDPOINT_MAX];
    pm_addrbook_add(s_book, HONEST, EPK "10.0.0.1:1", 0);
    cr_assert(pm_addrbook_pick(s_book, 1000, ep, sizeof ep));
    pm_addrbook_good(s_book, HONEST, 1000);
    cr_assert_eq(pm_addrbook_table_of(s_book, HONEST), PM_BOOK_TRIED);
    pm_addrbook_released(s_book, HONEST, 2000);
    for (int i = 1; i < PM_BOOK_TRIED_MAX_FAILURES; i++) {
        pm_addrbook_failed(s_book, HONEST, 3000);
        cr_assert_eq(pm_addrbook_table_of(s_book, HONEST), PM_BOOK_TRIED, "failure %d", i);
    }
    pm_addrbook_failed(s_book, HONEST, 3000);
    cr_assert_eq(pm_addrbook_table_of(s_book, HONEST), PM_BOOK_NONE);
}

Test(addrbook, new_endpoints_are_not_dialled_in_bulk)
{
    flood(1000);
    char ep[ALYS_ENDPOINT_MAX];
    /* Over 10 s of simulated time, with every dial ending at once, at most
     * PM_BOOK_NEW_DIALS per interval (plus the first full bucket). */
    int dials = 0;
    for (uint64_t now = 2000; now < 12000; now += 100) {
        while (pm_addrbook_pick(s_book, now, ep, sizeof ep)) {
            dials++;
            pm_addrbook_failed(s_book, ep, now);
        }
    }
    int limit = PM_BOOK_NEW_DIALS * (10000 / PM_BOOK_NEW_DIAL_INTERVAL_MS + 1);
    cr_assert_leq(dials, limit, "%d new dials in 10 s", dials);
    cr_assert_gt(dials, 0);
}

Test(addrbook, tried_and_new_take_turns)
{
    char ep[ALYS_ENDPOINT_MAX], t1[ALYS_ENDPOINT_MAX];
    for (int j = 0; j < 4; j++) {
        snprintf(t1, sizeof t1, EPK "13.%d.0.1:4000", j);
        pm_addrbook_add(s_book, t1, EPK "13.0.0.1:1", 0);
        pm_addrbook_good(s_book, t1, 100000);
        pm_addrbook_released(s_book, t1, 100000);
    }
    flood(200000);
    int tried = 0, fresh = 0;
    for (uint64_t now = 300000; now < 303000; now += 100) {
        while (pm_addrbook_pick(s_book, now, ep, sizeof ep)) {
            if (pm_addrbook_table_of(s_book, ep) == PM_BOOK_TRIED)
                tried++;
            else
                fresh++;
        }
    }
    cr_assert_eq(tried, 4, "every tried endpoint dialled");
    cr_assert_gt(fresh, 0, "new endpoints dialled too");
}

Test(addrbook, export_import_round_trip_is_bounded)
{
    char ep[ALYS_ENDPOINT_MAX];
    pm_addrbook_add(s_book, HONEST, EPK "10.0.0.1:1", 0);
    cr_assert(pm_addrbook_pick(s_book, 1000, ep, sizeof ep));
    pm_addrbook_good(s_book, HONEST, 1000);
    flood(2000);
    static pm_book_record_t recs[PM_BOOK_RECORDS_MAX];
    size_t n = pm_addrbook_export(s_book, recs, PM_BOOK_RECORDS_MAX);
    cr_assert_gt(n, 100);
    cr_assert(recs[0].tried, "tried entries first");
    cr_assert_str_eq(recs[0].endpoint, HONEST);

    pm_addrbook_t *again = pm_addrbook_new(KEY, OURS);
    cr_assert_not_null(again);
    size_t taken = pm_addrbook_import(again, recs, n, 5000);
    cr_assert_eq(taken, n);
    cr_assert_eq(pm_addrbook_table_of(again, HONEST), PM_BOOK_TRIED);
    /* Garbage records (unterminated strings, bad endpoints) are skipped. */
    pm_book_record_t bad[2];
    memset(bad, 'x', sizeof bad);
    snprintf(bad[1].endpoint, sizeof bad[1].endpoint, "nonsense");
    bad[1].source[0] = '\0';
    cr_assert_eq(pm_addrbook_import(again, bad, 2, 5000), 0);
    pm_addrbook_destroy(&again);
}

/* One source that keeps announcing (GetPeers answers of 64 new endpoints
 * every 10 s) does not bury an endpoint another source announced once: the
 * newest picks take turns between source groups. */
Test(addrbook, a_source_announcing_without_end_does_not_bury_another_sources_endpoint)
{
    flood(1000);
    cr_assert_eq(pm_addrbook_add(s_book, HONEST, "inbound", 2000), PM_BOOK_ADDED);
    char ep[ALYS_ENDPOINT_MAX], junk[ALYS_ENDPOINT_MAX];
    int serial = 0;
    uint64_t picked_at = 0;
    for (uint64_t now = 2000; now <= 2000 + 30000 && !picked_at; now += 100) {
        if ((now - 2000) % 10000 == 0)
            for (int j = 0; j < 64; j++, serial++) {
                snprintf(junk, sizeof junk, EPK "13.%d.%d.1:7000", serial / 256 % 256, serial % 256);
                pm_addrbook_add(s_book, junk, EPK "10.250.0.1:4000", now + 1);
            }
        while (!picked_at && pm_addrbook_pick(s_book, now, ep, sizeof ep)) {
            if (strcmp(ep, HONEST) == 0)
                picked_at = now;
            else if (strcmp(ep, BOOT1) != 0 && strcmp(ep, BOOT2) != 0)
                pm_addrbook_failed(s_book, ep, now);
        }
    }
    cr_assert_neq(picked_at, 0, "the endpoint announced once was not picked within 30 s");
    cr_assert_leq(picked_at - 2000, 3000, "picked only after %llu ms of simulated time",
                  (unsigned long long) (picked_at - 2000));
}
