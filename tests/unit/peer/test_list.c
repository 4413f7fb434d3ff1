/*  test_list.c: PeerManager's listings (pm_list.h): the PeerSet, unlisted
 *  endpoints, when the PeerSet is pushed. */
#include "peer_test_util.h"
#include "pm_list.h"

/* ---- the push interval -------------------------------------------------------------- */

Test(list, clean_set_not_pushed_before_the_interval)
{
    cr_assert_not(pm_list_push_due(false, false, 1000, 1000 + PM_LIST_PUSH_MS - 1));
}

Test(list, clean_set_pushed_at_the_interval)
{
    cr_assert(pm_list_push_due(false, false, 1000, 1000 + PM_LIST_PUSH_MS));
}

Test(list, dirty_set_pushed_at_once)
{
    cr_assert(pm_list_push_due(false, true, 1000, 1001));
}

Test(list, forced_push_goes_at_once)
{
    cr_assert(pm_list_push_due(true, false, 1000, 1000));
}

/* ---- the PeerSet ---------------------------------------------------------------------- */

static const Alys__Peer__PeerEntry *find(const Alys__Peer__PeerSet *s, const char *id)
{
    for (size_t i = 0; i < s->n_peers; i++)
        if (strcmp(s->peers[i]->peer_id, id) == 0)
            return s->peers[i];
    return NULL;
}

Test(list, sync_set_is_the_selection_in_order_with_its_timeouts)
{
    peer_table_t *t = table_with(NULL);
    add_connected(t, "a", 100, T0);
    add_connected(t, "b", 200, T0);
    add_connected(t, "c", 300, T0);
    record_ok(t, "b", 50, 1 << 20, 64, T0);
    record_ok(t, "c", 900, 1 << 10, 1, T0);
    Alys__Peer__PeerSet *s = pm_list_peerset(t, T0 + 1, false, NULL, 0);
    cr_assert_not_null(s);
    peer_select_req_t req = {.count = PEER_TABLE_MAX_PEERS};
    peer_ref_t order[PEER_TABLE_MAX_PEERS];
    size_t n = peer_table_select(t, &req, T0 + 1, order, PEER_TABLE_MAX_PEERS);
    cr_assert_eq(s->n_peers, n);
    cr_assert_eq(s->n_timeout_ms, n);
    cr_assert_eq(s->batch_size, peer_table_batch_size(t, T0 + 1));
    for (size_t i = 0; i < n; i++) {
        cr_assert_str_eq(s->peers[i]->peer_id, order[i].id);
        cr_assert_eq(s->timeout_ms[i], peer_table_request_timeout(t, order[i].id, s->batch_size));
        cr_assert_str_eq(s->peers[i]->state, "connected");
    }
    pm_list_free(&s);
    cr_assert_null(s);
    peer_table_destroy(&t);
}

static void time_out(peer_table_t *t, const char *id, int n, uint64_t now)
{
    for (int i = 0; i < n; i++) {
        peer_outcome_t o = {.kind = PEER_OUTCOME_TIMEOUT, .latency_ms = 5000};
        peer_action_t a;
        cr_assert_eq(peer_table_record(t, id, &o, now, &a), PEER_OK);
    }
}

/* Every peer below the cutoff: the selection falls back to them, and the
 * sync set must offer them as usable (a restarted SyncActor learns its
 * peers from it), not as low_score (issue 7: the simulator's seed 142). */
Test(list, sync_set_offers_fallback_peers_as_connected)
{
    peer_table_t *t = table_with(NULL);
    add_connected(t, "a", 100, T0);
    time_out(t, "a", 5, T0);
    peer_view_t v;
    cr_assert_eq(peer_table_get(t, "a", T0 + 1, &v), PEER_OK);
    cr_assert_not(v.eligible, "five timeouts put it below the cutoff");
    Alys__Peer__PeerSet *s = pm_list_peerset(t, T0 + 1, false, NULL, 0);
    cr_assert_eq(s->n_peers, 1);
    cr_assert_str_eq(s->peers[0]->state, "connected");
    pm_list_free(&s);
    peer_table_destroy(&t);
}

/* An eligible peer exists: one below the cutoff is not selected, and the
 * full listing says low_score. */
Test(list, full_listing_says_low_score_when_another_is_eligible)
{
    peer_table_t *t = table_with(NULL);
    add_connected(t, "a", 100, T0);
    add_connected(t, "b", 100, T0);
    time_out(t, "b", 5, T0);
    Alys__Peer__PeerSet *s = pm_list_peerset(t, T0 + 1, true, NULL, 0);
    cr_assert_not_null(find(s, "b"));
    cr_assert_str_eq(find(s, "b")->state, "low_score");
    cr_assert_str_eq(find(s, "a")->state, "connected");
    pm_list_free(&s);
    peer_table_destroy(&t);
}

Test(list, sync_set_leaves_out_bans_and_unlisted)
{
    peer_table_t *t = table_with(NULL);
    add_connected(t, "a", 100, T0);
    add_connected(t, "bad", 100, T0);
    cr_assert_eq(peer_table_ban(t, "bad", 0, "test", T0), PEER_OK);
    pm_unlisted_t u = {.peer_id = "@h:1", .endpoint = "tcp://h:1", .state = "refused"};
    Alys__Peer__PeerSet *s = pm_list_peerset(t, T0 + 1, false, &u, 1);
    cr_assert_eq(s->n_peers, 1);
    cr_assert_str_eq(s->peers[0]->peer_id, "a");
    pm_list_free(&s);
    peer_table_destroy(&t);
}

Test(list, full_listing_adds_others_bans_then_unlisted)
{
    peer_table_t *t = table_with(NULL);
    add_connected(t, "a", 100, T0);
    add_connected(t, "bad", 100, T0);
    cr_assert_eq(peer_table_ban(t, "bad", 0, "misbehaved", T0), PEER_OK);
    peer_ban_t old = {.peer_id = "gone",
                      .endpoint = "tcp://gone:1",
                      .reason = "old ban",
                      .ban_until = T0 + HOUR};
    cr_assert_eq(peer_table_import_bans(t, &old, 1, T0), 1);
    pm_unlisted_t u = {.peer_id = "@h:1",
                       .endpoint = "tcp://h:1",
                       .state = "refused",
                       .reason = "wrong genesis"};
    Alys__Peer__PeerSet *s = pm_list_peerset(t, T0 + 1, true, &u, 1);
    cr_assert_str_eq(s->peers[0]->peer_id, "a"); /* the selection first */
    cr_assert_str_eq(s->peers[0]->direction, "out", "the table's peers are ones we dial");
    const Alys__Peer__PeerEntry *bad = find(s, "bad");
    cr_assert_not_null(bad);
    cr_assert_str_eq(bad->state, "banned");
    cr_assert_gt(bad->ban_until, T0);
    const Alys__Peer__PeerEntry *gone = find(s, "gone");
    cr_assert_not_null(gone);
    cr_assert_str_eq(gone->state, "banned");
    cr_assert_str_eq(gone->ban_reason, "old ban");
    /* "bad" is in the table: listed once, not again as a ban. */
    size_t bads = 0;
    for (size_t i = 0; i < s->n_peers; i++)
        bads += strcmp(s->peers[i]->peer_id, "bad") == 0;
    cr_assert_eq(bads, 1);
    const Alys__Peer__PeerEntry *last = s->peers[s->n_peers - 1];
    cr_assert_str_eq(last->peer_id, "@h:1");
    cr_assert_str_eq(last->state, "refused");
    cr_assert_str_eq(last->ban_reason, "wrong genesis");
    cr_assert_str_eq(last->direction, "out", "a refused endpoint we dialled");
    cr_assert_eq(s->timeout_ms[s->n_peers - 1], 0);
    cr_assert_eq(s->n_timeout_ms, s->n_peers);
    pm_list_free(&s);
    peer_table_destroy(&t);
}

/* ---- unlisted endpoints ------------------------------------------------------------- */

#define KH "d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0"

Test(list, dialled_endpoint_shows_connecting_until_answered)
{
    peer_table_t *t = table_with(NULL);
    pm_conns_t *book = pm_conns_new("");
    int slot = pm_conns_learn(book, "alys://" KH "@10.0.0.9:7000");
    cr_assert_geq(slot, 0);
    pm_unlisted_t out[4];
    cr_assert_eq(pm_list_conns(book, t, out, 4), 1);
    cr_assert_str_eq(out[0].state, "connecting");
    cr_assert_str_eq(out[0].peer_id, KH, "the key");
    cr_assert_str_eq(out[0].endpoint, "alys://" KH "@10.0.0.9:7000");
    cr_assert_str_eq(out[0].reason, "");
    pm_conns_destroy(&book);
    peer_table_destroy(&t);
}

Test(list, refused_endpoint_shows_its_reason)
{
    peer_table_t *t = table_with(NULL);
    pm_conns_t *book = pm_conns_new("");
    int slot = pm_conns_learn(book, "alys://" KH "@h:1");
    pm_conn_refuse(pm_conns_at(book, (size_t) slot), 10, "handshake with an invalid node id");
    pm_unlisted_t out[4];
    cr_assert_eq(pm_list_conns(book, t, out, 4), 1);
    cr_assert_str_eq(out[0].state, "refused");
    cr_assert_str_eq(out[0].reason, "handshake with an invalid node id");
    pm_conns_destroy(&book);
    peer_table_destroy(&t);
}

Test(list, refused_endpoint_in_the_table_is_listed_from_the_table)
{
    peer_table_t *t = table_with(NULL);
    pm_conns_t *book = pm_conns_new("");
    int slot = pm_conns_learn(book, "alys://" KH "@h:1");
    pm_conn_t *c = pm_conns_at(book, (size_t) slot);
    cr_assert_eq(peer_table_add(t, KH, "alys://" KH "@h:1", T0), PEER_OK);
    pm_conn_refuse(c, 10, "wrong genesis");
    pm_unlisted_t out[4];
    cr_assert_eq(pm_list_conns(book, t, out, 4), 0);
    pm_conns_destroy(&book);
    peer_table_destroy(&t);
}

Test(list, unlisted_conns_stop_at_cap)
{
    peer_table_t *t = table_with(NULL);
    pm_conns_t *book = pm_conns_new("");
    for (int i = 1; i <= 3; i++) {
        char ep[128];
        snprintf(ep, sizeof ep, "alys://" KH "@h:%d", i);
        cr_assert_geq(pm_conns_learn(book, ep), 0);
    }
    pm_unlisted_t out[2];
    cr_assert_eq(pm_list_conns(book, t, out, 2), 2);
    pm_conns_destroy(&book);
    peer_table_destroy(&t);
}

static pm_client_t *refused_client(pm_clients_t *cl, uint8_t id, const char *node,
                                   const char *listen, int64_t at)
{
    pm_client_t *c = pm_clients_get(cl, &id, 1, at);
    cr_assert_not_null(c);
    c->state = PM_CLIENT_REFUSED;
    c->refused_at = at;
    snprintf(c->node_id, sizeof c->node_id, "%s", node);
    snprintf(c->listen, sizeof c->listen, "%s", listen);
    snprintf(c->reason, sizeof c->reason, "wrong genesis");
    return c;
}

Test(list, refused_inbound_client_listed_by_listen_or_node_id)
{
    pm_clients_t *cl = pm_clients_new(8);
    refused_client(cl, 1, "n1", "tcp://n1:9", 100);
    refused_client(cl, 2, "n2", "", 100);
    pm_unlisted_t out[4];
    cr_assert_eq(pm_list_clients(cl, 200, out, 4), 2);
    cr_assert_str_eq(out[0].endpoint, "tcp://n1:9");
    cr_assert_str_eq(out[0].peer_id, "n1");
    cr_assert_str_eq(out[0].state, "refused");
    cr_assert_str_eq(out[0].reason, "inbound: wrong genesis");
    cr_assert_str_eq(out[1].endpoint, "inbound:n2");
    pm_clients_destroy(&cl);
}

Test(list, refused_inbound_client_forgotten_after_ttl)
{
    pm_clients_t *cl = pm_clients_new(8);
    refused_client(cl, 1, "n1", "", 100);
    pm_unlisted_t out[4];
    cr_assert_eq(pm_list_clients(cl, 100 + PM_ADMIT_REFUSED_TTL_MS - 1, out, 4), 1);
    cr_assert_eq(pm_list_clients(cl, 100 + PM_ADMIT_REFUSED_TTL_MS, out, 4), 0);
    pm_clients_destroy(&cl);
}

Test(list, no_clients_table_lists_nothing)
{
    pm_unlisted_t out[1];
    cr_assert_eq(pm_list_clients(NULL, 0, out, 1), 0);
}

Test(list, inbound_clients_holding_a_slot_are_listed_with_their_bytes_owed_and_address)
{
    pm_clients_t *cl = pm_clients_new(8);
    pm_client_t *c = pm_clients_get(cl, (const uint8_t *) "x", 1, 100);
    snprintf(c->node_id, sizeof c->node_id, "nx");
    snprintf(c->in.addr, sizeof c->in.addr, "10.0.0.7");
    pm_inbound_totals_t t = {0};
    pm_inbound_set(&c->in, PM_INBOUND_ADMITTED, &t, 100);
    pm_inbound_charge(&c->in, &t, 5000, true, 0);
    pm_client_t *d = pm_clients_get(cl, (const uint8_t *) "y", 1, 100);
    pm_inbound_set(&d->in, PM_INBOUND_EVICTED, &t, 100);
    pm_unlisted_t out[4];
    cr_assert_eq(pm_list_clients(cl, 200, out, 4), 2);
    cr_assert_str_eq(out[0].state, "inbound");
    cr_assert_eq(out[0].bytes_owed, 5000);
    cr_assert_str_eq(out[0].address, "10.0.0.7");
    cr_assert_str_eq(out[0].endpoint, "inbound:nx");
    cr_assert(out[0].inbound && out[1].inbound, "listed as inbound (direction \"in\")");
    cr_assert_str_eq(out[1].state, "refused");
    cr_assert_str_eq(out[1].reason, "inbound: evicted for a newcomer");
    /* A silent client's slot lapses; the eviction is forgotten in time. */
    cr_assert_eq(pm_list_clients(cl, 100 + PM_INBOUND_REFUSED_MS, out, 4), 0);
    pm_clients_destroy(&cl);
}
