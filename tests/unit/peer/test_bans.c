/*  Bans: export/import round trip (they survive restarts), matching by id and
 *  endpoint, bans outliving table entries, malformed imports. */
#include "peer_test_util.h"

Test(bans, export_import_round_trip)
{
    peer_table_t *t = table_with(NULL);
    add_connected(t, "liar", 10, T0);
    add_connected(t, "honest", 10, T0);
    record(t, "liar", PEER_OUTCOME_VIOLATION, T0);
    cr_assert_eq(peer_table_ban(t, "manual", 2 * HOUR, "operator", T0), PEER_OK);
    cr_expect_eq(peer_table_ban_count(t, T0), 2);

    peer_ban_t saved[8];
    size_t n = peer_table_export_bans(t, T0 + 1, saved, 8);
    cr_assert_eq(n, 2);
    peer_table_destroy(&t);

    /* "Restart": a new table, bans loaded back from storage. */
    peer_table_t *t2 = table_with(NULL);
    cr_expect_eq(peer_table_import_bans(t2, saved, n, T0 + 2), 2);
    cr_expect(peer_table_is_banned(t2, "liar", NULL, T0 + 2));
    cr_expect(peer_table_is_banned(t2, NULL, "tcp://liar:1", T0 + 2));
    cr_expect(peer_table_is_banned(t2, "manual", NULL, T0 + 2));
    cr_expect_not(peer_table_is_banned(t2, "honest", "tcp://honest:1", T0 + 2));
    cr_expect_eq(peer_table_add(t2, "liar", "tcp://liar:1", T0 + 2), PEER_ERR_BANNED);
    cr_expect_eq(peer_table_add(t2, "honest", "tcp://honest:1", T0 + 2), PEER_OK);
    /* Same durations as before the restart. */
    peer_ban_t again[8];
    cr_assert_eq(peer_table_export_bans(t2, T0 + 2, again, 8), 2);
    for (size_t i = 0; i < 2; i++) {
        const peer_ban_t *b = strcmp(again[i].peer_id, "liar") == 0 ? &again[i] : NULL;
        if (b) {
            cr_expect_eq(b->ban_until, T0 + HOUR);
            cr_expect_str_eq(b->endpoint, "tcp://liar:1");
        }
    }
    /* And they end when they should. */
    cr_expect(peer_table_is_banned(t2, "manual", NULL, T0 + 2 * HOUR - 1));
    cr_expect_not(peer_table_is_banned(t2, "manual", NULL, T0 + 2 * HOUR));
    cr_expect_eq(peer_table_ban_count(t2, T0 + HOUR), 1);
    peer_table_destroy(&t2);
}

Test(bans, import_skips_expired_and_malformed)
{
    peer_ban_t in[3];
    memset(in, 0, sizeof in);
    snprintf(in[0].peer_id, sizeof in[0].peer_id, "old");
    in[0].ban_until = T0 - 1;                         /* expired while we were down */
    memset(in[1].peer_id, 'x', sizeof in[1].peer_id); /* not NUL-terminated */
    in[1].ban_until = T0 + HOUR;
    snprintf(in[2].endpoint, sizeof in[2].endpoint, "tcp://bad:1");
    in[2].ban_until = T0 + HOUR; /* endpoint-only ban: fine */
    peer_table_t *t = table_with(NULL);
    cr_expect_eq(peer_table_import_bans(t, in, 3, T0), 1);
    cr_expect_eq(peer_table_add(t, "old", "tcp://old:1", T0), PEER_OK);
    cr_expect_eq(peer_table_add(t, "fresh-name", "tcp://bad:1", T0), PEER_ERR_BANNED);
    cr_expect_eq(peer_table_import_bans(t, NULL, 5, T0), 0);
    peer_table_destroy(&t);
}

Test(bans, import_bans_peers_already_in_table)
{
    peer_table_t *t = table_with(NULL);
    add_connected(t, "a", 10, T0);
    peer_ban_t b;
    memset(&b, 0, sizeof b);
    snprintf(b.endpoint, sizeof b.endpoint, "tcp://a:1");
    snprintf(b.reason, sizeof b.reason, "stored");
    b.ban_until = T0 + HOUR;
    cr_assert_eq(peer_table_import_bans(t, &b, 1, T0), 1);
    peer_view_t v = view_of(t, "a", T0);
    cr_expect_eq(v.info.state, PEER_STATE_BANNED);
    cr_expect_not(v.eligible);
    cr_expect_eq(v.info.ban_until, T0 + HOUR);
    peer_table_destroy(&t);
}

Test(bans, ban_outlives_table_entry_and_new_name_same_endpoint)
{
    peer_table_t *t = table_with(NULL);
    add_connected(t, "a", 10, T0);
    record(t, "a", PEER_OUTCOME_VIOLATION, T0);
    cr_assert_eq(peer_table_remove(t, "a"), PEER_OK);
    cr_expect_eq(peer_table_add(t, "a", "tcp://a:1", T0 + 1), PEER_ERR_BANNED);
    cr_expect_eq(peer_table_add(t, "a-renamed", "tcp://a:1", T0 + 1), PEER_ERR_BANNED);
    cr_expect_eq(peer_table_add(t, "a", "tcp://a:1", T0 + HOUR), PEER_OK);
    peer_table_destroy(&t);
}

Test(bans, manual_ban_of_a_known_peer_and_extension)
{
    peer_table_t *t = table_with(NULL);
    add_connected(t, "a", 10, T0);
    cr_assert_eq(peer_table_ban(t, "a", 0, "operator", T0), PEER_OK); /* 0 = ban_ms */
    cr_expect_eq(view_of(t, "a", T0).info.ban_until, T0 + HOUR);
    cr_assert_eq(peer_table_ban(t, "a", 3 * HOUR, "again", T0), PEER_OK);
    cr_expect_eq(view_of(t, "a", T0).info.ban_until, T0 + 3 * HOUR);
    cr_assert_eq(peer_table_ban(t, "a", MINUTE, "shorter", T0), PEER_OK);
    cr_expect_eq(view_of(t, "a", T0).info.ban_until, T0 + 3 * HOUR); /* never shortened */
    cr_expect_eq(peer_table_ban_count(t, T0), 1);
    cr_expect_eq(peer_table_ban(t, "", 0, "x", T0), PEER_ERR_INVALID);
    peer_table_tick(t, T0 + 3 * HOUR);
    cr_expect_eq(peer_table_ban_count(t, T0 + 3 * HOUR), 0);
    cr_expect_eq(view_of(t, "a", T0 + 3 * HOUR).info.state, PEER_STATE_DISCONNECTED);
    peer_table_destroy(&t);
}

Test(bans, list_is_bounded)
{
    peer_table_t *t = table_with(NULL);
    char id[32];
    for (int i = 0; i < PEER_MAX_BANS + 10; i++) {
        snprintf(id, sizeof id, "b%d", i);
        cr_assert_eq(peer_table_ban(t, id, HOUR + (uint64_t) i, "x", T0), PEER_OK);
    }
    cr_expect_eq(peer_table_ban_count(t, T0), PEER_MAX_BANS);
    /* The shortest bans made room for the longer ones. */
    cr_expect_not(peer_table_is_banned(t, "b0", NULL, T0));
    cr_expect(peer_table_is_banned(t, "b1033", NULL, T0));
    peer_table_destroy(&t);
}
