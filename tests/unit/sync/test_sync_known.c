/*  test_sync_known.c: the known-peer table stays exactly in step with
 *  PeerManager's connected peers (sync_known.h): in on connected, out on
 *  gone or absent, bounded with eviction, and every exit reported so the
 *  machine is never left with a ghost. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "sync_known.h"

static sync_known_t *k;

static void setup(void)
{
    k = sync_known_new(4, SYNC_KNOWN_ABSENT_MS);
    cr_assert_not_null(k);
}

static void teardown(void)
{
    sync_known_destroy(&k);
    cr_assert_null(k);
}

TestSuite(sync_known, .init = setup, .fini = teardown);

static void seen(const char *id, uint64_t now)
{
    bool ev;
    sync_peer_id_t old;
    cr_assert(sync_known_seen(k, id, now, &ev, old));
    cr_assert_not(ev, "no eviction expected for %s", id);
}

Test(sync_known, connected_peers_are_added_once)
{
    seen("a", 1000);
    seen("a", 1100);
    seen("b", 1100);
    cr_expect_eq(sync_known_count(k), 2);
    cr_expect(sync_known_has(k, "a"));
}

Test(sync_known, a_disconnected_peer_leaves_and_is_reported_once)
{
    seen("a", 1000);
    cr_expect(sync_known_gone(k, "a"), "known: tell the machine");
    cr_expect_not(sync_known_gone(k, "a"), "already gone: nothing to tell");
    cr_expect_not(sync_known_gone(k, "never"), "never known: no ghost made");
    cr_expect_eq(sync_known_count(k), 0);
}

Test(sync_known, a_peer_missing_from_the_sets_leaves_after_the_absent_time)
{
    seen("a", 1000);
    seen("b", 1000);
    seen("b", 1000 + SYNC_KNOWN_ABSENT_MS); /* b is still in the set */
    sync_peer_id_t id;
    cr_expect_not(sync_known_next_absent(k, 1000 + SYNC_KNOWN_ABSENT_MS - 1, id));
    cr_assert(sync_known_next_absent(k, 1000 + SYNC_KNOWN_ABSENT_MS, id));
    cr_expect_str_eq(id, "a");
    cr_expect_not(sync_known_next_absent(k, 1000 + SYNC_KNOWN_ABSENT_MS, id));
    cr_expect(sync_known_has(k, "b"));
    cr_expect_not(sync_known_has(k, "a"));
}

Test(sync_known, a_full_table_evicts_the_peer_reported_longest_ago)
{
    seen("a", 1000);
    seen("b", 900);
    seen("c", 1100);
    seen("d", 1200);
    bool ev = false;
    sync_peer_id_t old = "";
    cr_assert(sync_known_seen(k, "e", 1300, &ev, old));
    cr_expect(ev);
    cr_expect_str_eq(old, "b");
    cr_expect_eq(sync_known_count(k), 4);
    cr_expect(sync_known_has(k, "e"));
    cr_expect_not(sync_known_has(k, "b"));
}

Test(sync_known, bad_ids_are_refused)
{
    bool ev;
    sync_peer_id_t old;
    char longid[SYNC_PEER_ID_MAX + 2];
    memset(longid, 'x', sizeof longid - 1);
    longid[sizeof longid - 1] = '\0';
    cr_expect_not(sync_known_seen(k, "", 1, &ev, old));
    cr_expect_not(sync_known_seen(k, NULL, 1, &ev, old));
    cr_expect_not(sync_known_seen(k, longid, 1, &ev, old));
    cr_expect_eq(sync_known_count(k), 0);
}

Test(sync_known, entry_states)
{
    cr_expect_eq(sync_known_entry_kind("connected"), SYNC_ENTRY_CONNECTED);
    cr_expect_eq(sync_known_entry_kind("disconnected"), SYNC_ENTRY_GONE);
    cr_expect_eq(sync_known_entry_kind("banned"), SYNC_ENTRY_GONE);
    cr_expect_eq(sync_known_entry_kind("refused"), SYNC_ENTRY_GONE);
    cr_expect_eq(sync_known_entry_kind("dialing"), SYNC_ENTRY_OTHER);
    cr_expect_eq(sync_known_entry_kind(NULL), SYNC_ENTRY_OTHER);
}

/* The table and the machine stay in step: replay random PeerDiscovered /
 * PeerDisconnected / PeerSet pushes against a real machine, telling it
 * every exit the table reports, and compare its peer count with the
 * table's after every step. */
Test(sync_known, the_machine_never_keeps_a_ghost)
{
    sync_known_destroy(&k);
    k = sync_known_new(8, SYNC_KNOWN_ABSENT_MS);
    sync_machine_config_t cfg;
    sync_machine_config_defaults(&cfg);
    sync_machine_t *m = sync_machine_new(&cfg);
    cr_assert_not_null(m);
    alys_hash_t h = {0};
    sync_machine_init(m, 0, 0, h, 0);
    uint64_t s = 12345, now = 1000;
    for (int step = 0; step < 2000; step++) {
        s = s * 6364136223846793005ULL + 1442695040888963407ULL;
        char id[8];
        snprintf(id, sizeof id, "p%u", (unsigned) (s >> 40) % 12);
        unsigned op = (unsigned) (s >> 33) % 4;
        now += (s >> 20) % 400;
        bool ev;
        sync_peer_id_t out;
        if (op <= 1 && sync_known_seen(k, id, now, &ev, out)) {
            if (ev)
                sync_machine_on_peer_disconnected(m, now, out, "evicted");
            sync_machine_on_peer_status(m, now, id, 100, 0);
        } else if (op == 2 && sync_known_gone(k, id)) {
            sync_machine_on_peer_disconnected(m, now, id, "gone");
        } else if (op == 3) {
            while (sync_known_next_absent(k, now, out))
                sync_machine_on_peer_disconnected(m, now, out, "absent");
        }
        sync_action_t a;
        while (sync_machine_next_action(m, &a))
            ;
        sync_progress_t p;
        sync_machine_get_progress(m, now, &p);
        cr_assert_eq(p.total_peers, sync_known_count(k), "step %d: machine %u, table %zu", step,
                     p.total_peers, sync_known_count(k));
    }
    sync_machine_destroy(&m);
}

/* A peer that announces itself under a new id at every report (what a
 * PeerManager without ghost protection used to pass on): each id that is
 * no longer reported leaves after the absent time, so the table holds only
 * the ids of the last absent_ms, never the whole history, and a late
 * honest peer always gets in. */
Test(sync_known, a_renaming_peer_cannot_fill_the_table)
{
    uint64_t now = 1000;
    char id[32];
    sync_peer_id_t out;
    for (int i = 0; i < 500; i++, now += 1000) {
        snprintf(id, sizeof id, "renamer-%d", i);
        bool ev;
        cr_assert(sync_known_seen(k, id, now, &ev, out));
        cr_assert_not(ev, "report %d evicted %s: absent ids were not cleared", i, out);
        while (sync_known_next_absent(k, now, out))
            cr_assert_str_neq(out, id);
        cr_assert_leq(sync_known_count(k), 1 + SYNC_KNOWN_ABSENT_MS / 1000);
    }
    bool ev;
    cr_assert(sync_known_seen(k, "honest", now, &ev, out));
    cr_assert(sync_known_has(k, "honest"));
}
