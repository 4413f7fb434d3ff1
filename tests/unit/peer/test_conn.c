/*  PeerManager's connection core (pm_conn.h) without sockets: the endpoint
 *  book, dial, handshake, probes, down, backoff, re-dial, and the link
 *  failing under a ready peer (socket monitor, failed send) charging it. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "peer_test_util.h"
#include "pm_conn.h"

/* Keys are 64 hex digits; a peer is its key (pm_conn.h). */
#define K1   "1111111111111111111111111111111111111111111111111111111111111111"
#define K2   "2222222222222222222222222222222222222222222222222222222222222222"
#define KOUR "9999999999999999999999999999999999999999999999999999999999999999"
#define EP   "alys://" K1 "@127.0.0.1:4000"

static pm_conns_t *s_book;

static void setup(void)
{
    s_book = pm_conns_new("tcp://127.0.0.1:9999");
    cr_assert_not_null(s_book);
    pm_conns_set_key(s_book, KOUR);
}

static void teardown(void)
{
    pm_conns_destroy(&s_book);
    cr_assert_null(s_book);
}

TestSuite(conn, .init = setup, .fini = teardown);

/* A connection dialled and handshaken at t: READY as K1, probe id 1 done. */
static pm_conn_t *ready_conn(int64_t t)
{
    int slot = pm_conns_learn(s_book, EP);
    cr_assert_geq(slot, 0);
    pm_conn_t *c = pm_conns_at(s_book, (size_t) slot);
    pm_conn_fx_t fx = pm_conn_tick(c, t, true);
    cr_assert_eq(fx.todo, PM_DO_PLUG | PM_DO_PROBE);
    cr_assert(fx.dialing);
    pm_conn_plugged(c);
    pm_conn_probe_sent(c, 1, t);
    cr_assert(pm_conn_is_probe(c, 1));
    cr_assert(pm_conn_ready(c, t + 5));
    cr_assert_eq(c->state, PM_CONN_READY);
    return c;
}

Test(conn, book_learns_valid_endpoints_once_and_never_ours)
{
    int a = pm_conns_learn(s_book, EP);
    cr_expect_geq(a, 0);
    cr_expect_eq(pm_conns_learn(s_book, EP), a, "known endpoint keeps its slot");
    cr_expect_eq(pm_conns_learn(s_book, "alys://" KOUR "@127.0.0.1:9999"), -1, "our own key");
    cr_expect_eq(pm_conns_learn(s_book, "alys://" KOUR "@10.1.1.1:1"), -1, "our key anywhere");
    cr_expect_eq(pm_conns_learn(s_book, "ipc:///tmp/x"), -1, "not alys://");
    cr_expect_eq(pm_conns_learn(s_book, "tcp://127.0.0.1:4000"), -1, "no key");
    cr_expect_eq(pm_conns_learn(s_book, "alys://" K1 "@bad host:1"), -1, "spaces");
    cr_expect_eq(pm_conns_by_endpoint(s_book, EP), a);
    cr_expect_eq(pm_conns_at(s_book, (size_t) a)->state, PM_CONN_IDLE);
    cr_expect_str_eq(pm_conns_at(s_book, (size_t) a)->peer_id, K1, "the key is the id at once");
    /* The same endpoint with its key in z85 is the same endpoint. */
    cr_expect_eq(pm_conns_learn(s_book, "alys://Yne@$w-vo<fVvi]a<NY6T1ed:M$fCG*[IaLV{hID@1.2.3.4:5"),
                 pm_conns_learn(s_book, "alys://bb88471d65e2659b30c55a5321cebb5aab2b70a398645c26dca2b2fcb43fc518"
                                        "@1.2.3.4:5"));
}

Test(conn, book_is_bounded)
{
    char ep[160];
    for (int i = 0; i < PM_CONN_MAX; i++) {
        snprintf(ep, sizeof ep, "alys://" K1 "@10.0.0.1:%d", 1000 + i);
        cr_assert_geq(pm_conns_learn(s_book, ep), 0);
    }
    cr_expect_eq(pm_conns_learn(s_book, "alys://" K2 "@10.0.0.2:1"), -1);
}

Test(conn, handshake_makes_ready_and_asks_for_peers)
{
    pm_conn_t *c = ready_conn(1000);
    cr_expect_str_eq(c->peer_id, K1);
    cr_expect_eq(pm_conns_ready(s_book), 1);
    /* GetPeers at once after the handshake, then every PEERS_EVERY. */
    pm_conn_fx_t fx = pm_conn_tick(c, 1005, false);
    cr_expect(fx.todo & PM_DO_GET_PEERS);
    fx = pm_conn_tick(c, 1006, false);
    cr_expect_not(fx.todo & PM_DO_GET_PEERS);
    /* A second answer while ready is not "newly" ready. */
    pm_conn_probe_sent(c, 2, 2005);
    cr_expect_not(pm_conn_ready(c, 2010));
}

Test(conn, probes_every_second_while_ready)
{
    pm_conn_t *c = ready_conn(1000);
    cr_expect_not(pm_conn_tick(c, 1005 + PM_CONN_PROBE_EVERY_MS - 1, false).todo & PM_DO_PROBE);
    cr_expect(pm_conn_tick(c, 1005 + PM_CONN_PROBE_EVERY_MS, false).todo & PM_DO_PROBE);
}

Test(conn, stale_or_foreign_status_is_not_a_probe_answer)
{
    pm_conn_t *c = ready_conn(1000);
    cr_expect_not(pm_conn_is_probe(c, 1), "already answered");
    pm_conn_probe_sent(c, 7, 2000);
    cr_expect_not(pm_conn_is_probe(c, 8));
    cr_expect_not(pm_conn_is_probe(c, 0));
    cr_expect(pm_conn_is_probe(c, 7));
}

Test(conn, swallowed_probe_of_a_ready_peer_is_charged)
{
    pm_conn_t *c = ready_conn(1000);
    pm_conn_probe_sent(c, 2, 2000);
    pm_conn_fx_t fx = pm_conn_tick(c, 2000 + PM_CONN_PROBE_TIMEOUT_MS - 1, false);
    cr_expect_not(fx.todo & PM_DO_CHARGE, "not before the timeout");
    fx = pm_conn_tick(c, 2000 + PM_CONN_PROBE_TIMEOUT_MS, false);
    cr_expect(fx.todo & PM_DO_CHARGE, "a swallowed probe costs like a swallowed request");
    cr_expect_not(fx.todo & PM_DO_LOST, "one miss is not down");
    cr_expect_eq(c->state, PM_CONN_READY);
}

/* A probe sent while a response of ours is still due is answered behind it
 * (in order): its clock stops until nothing is due, then runs again. */
Test(conn, probe_does_not_time_out_while_a_response_is_due)
{
    pm_conn_t *c = ready_conn(1000);
    pm_conn_probe_sent(c, 2, 2000);
    int64_t t = 2000;
    for (; t < 2000 + 10 * PM_CONN_PROBE_TIMEOUT_MS; t += 100) {
        pm_conn_response_due(c, t);
        cr_assert_not(pm_conn_tick(c, t, false).todo & PM_DO_CHARGE, "charged at %lld", (long long) t);
    }
    cr_expect_eq(c->state, PM_CONN_READY);
    /* Nothing due any more: the probe is judged PROBE_TIMEOUT after that. */
    int64_t last = t - 100;
    cr_expect_not(pm_conn_tick(c, last + PM_CONN_PROBE_TIMEOUT_MS - 1, false).todo & PM_DO_CHARGE);
    cr_expect(pm_conn_tick(c, last + PM_CONN_PROBE_TIMEOUT_MS, false).todo & PM_DO_CHARGE);
}

Test(conn, two_unanswered_probes_in_a_row_take_it_down)
{
    pm_conn_t *c = ready_conn(1000);
    int64_t t = 2000;
    pm_conn_probe_sent(c, 2, t);
    t += PM_CONN_PROBE_TIMEOUT_MS;
    pm_conn_tick(c, t, false);
    t += PM_CONN_PROBE_EVERY_MS;
    cr_assert(pm_conn_tick(c, t, false).todo & PM_DO_PROBE);
    pm_conn_probe_sent(c, 3, t);
    pm_conn_fx_t fx = pm_conn_tick(c, t + PM_CONN_PROBE_TIMEOUT_MS, false);
    cr_expect_eq(fx.todo & (PM_DO_CHARGE | PM_DO_LOST), PM_DO_CHARGE | PM_DO_LOST);
    cr_expect(fx.was_ready);
    cr_expect_eq(c->state, PM_CONN_DOWN);
}

Test(conn, monitor_disconnect_of_a_ready_peer_is_down_and_charged_at_once)
{
    pm_conn_t *c = ready_conn(1000);
    pm_conn_probe_sent(c, 2, 2000);
    pm_conn_fx_t fx = pm_conn_link_down(c, 2100);
    cr_expect_eq(fx.todo, PM_DO_LOST | PM_DO_CHARGE);
    cr_expect(fx.was_ready, "SyncActor is told");
    cr_expect(fx.link_lost, "its requests went with the link: charged");
    cr_expect_eq(c->state, PM_CONN_DOWN);
    cr_expect_eq(c->probe_id, 0, "the outstanding probe went with the link");
    /* A second event of the same outage costs nothing more. */
    cr_expect_eq(pm_conn_link_down(c, 2150).todo, 0);
}

Test(conn, send_failing_under_a_ready_peer_is_its_link_failing)
{
    pm_conn_t *c = ready_conn(1000);
    pm_conn_fx_t fx = pm_conn_send_failed(c, 1500);
    cr_expect_eq(fx.todo, PM_DO_LOST | PM_DO_CHARGE, "not nobody's fault");
    cr_expect(fx.link_lost);
    cr_expect_eq(c->state, PM_CONN_DOWN);
    /* While down, more failures are not charged again. */
    cr_expect_not(pm_conn_send_failed(c, 1600).todo & PM_DO_CHARGE);
}

Test(conn, down_peer_is_reprobed_with_backoff_and_at_once_when_the_link_is_back)
{
    pm_conn_t *c = ready_conn(1000);
    pm_conn_link_down(c, 2000);
    cr_expect_not(pm_conn_tick(c, 2000, false).todo & PM_DO_PROBE, "backoff first");
    cr_expect(pm_conn_tick(c, 2000 + pm_conn_backoff(1), false).todo & PM_DO_PROBE);
    /* Nobody there: the probe cannot go; the wait doubles. */
    pm_conn_fx_t fx = pm_conn_send_failed(c, 2100);
    cr_expect_not(fx.todo & (PM_DO_CHARGE | PM_DO_LOST));
    cr_expect_eq(c->next_probe, 2100 + pm_conn_backoff(2));
    /* The monitor says it is back: probe now, not after the backoff. */
    pm_conn_link_up(c, 2150);
    cr_expect(pm_conn_tick(c, 2150, false).todo & PM_DO_PROBE);
    pm_conn_probe_sent(c, 9, 2150);
    cr_expect(pm_conn_ready(c, 2160), "re-dialled: ready again");
    cr_expect_eq(c->failures, 0);
}

Test(conn, backoff_doubles_from_100ms_to_the_cap)
{
    cr_expect_eq(pm_conn_backoff(0), 100);
    cr_expect_eq(pm_conn_backoff(1), 100);
    cr_expect_eq(pm_conn_backoff(2), 200);
    cr_expect_eq(pm_conn_backoff(3), 400);
    cr_expect_eq(pm_conn_backoff(40), PM_CONN_BACKOFF_MAX_MS);
}

Test(conn, dial_that_is_not_answered_backs_off_without_charge)
{
    int slot = pm_conns_learn(s_book, EP);
    pm_conn_t *c = pm_conns_at(s_book, (size_t) slot);
    pm_conn_tick(c, 0, true);
    pm_conn_plugged(c);
    pm_conn_probe_sent(c, 1, 0);
    pm_conn_fx_t fx = pm_conn_tick(c, PM_CONN_PROBE_TIMEOUT_MS, false);
    cr_expect_not(fx.todo & (PM_DO_CHARGE | PM_DO_LOST));
    cr_expect_eq(c->state, PM_CONN_DIALING);
    cr_expect_eq(c->next_probe, PM_CONN_PROBE_TIMEOUT_MS + pm_conn_backoff(1));
}

Test(conn, probe_error_is_not_charged)
{
    pm_conn_t *c = ready_conn(1000);
    pm_conn_probe_sent(c, 2, 2000);
    pm_conn_fx_t fx = pm_conn_probe_error(c, 2001);
    cr_expect_not(fx.todo & PM_DO_CHARGE, "it answered: busy, not silent");
}

Test(conn, close_and_refuse_unplug_and_end_requests)
{
    pm_conn_t *c = ready_conn(1000);
    pm_conn_fx_t fx = pm_conn_close(c, "score");
    cr_expect_eq(fx.todo, PM_DO_UNPLUG | PM_DO_LOST);
    cr_expect(fx.was_ready);
    cr_expect_not(fx.link_lost, "closed by us: its requests are not its fault");
    cr_expect_eq(c->state, PM_CONN_CLOSED);
    cr_expect_eq(pm_conn_close(c, "again").todo, 0, "closing twice does nothing");
    fx = pm_conn_refuse(c, 5000, "wrong genesis");
    cr_expect_eq(c->state, PM_CONN_REFUSED);
    cr_expect_str_eq(c->reason, "wrong genesis");
}

Test(conn, self_is_never_dialled_again)
{
    pm_conn_t *c = ready_conn(1000);
    pm_conn_fx_t fx = pm_conn_self(c);
    cr_expect(fx.todo & PM_DO_UNPLUG);
    cr_expect_eq(c->state, PM_CONN_SELF);
    peer_table_config_t cfg;
    peer_table_config_defaults(&cfg);
    peer_table_t *t = table_with(&cfg);
    cr_expect_not(pm_conn_may_dial(c, t, 1000000, T0));
    cr_expect_eq(pm_conn_tick(c, 1000000, true).todo, 0);
    peer_table_destroy(&t);
}

Test(conn, may_dial_respects_bans_backoff_and_refusal_wait)
{
    peer_table_config_t cfg;
    peer_table_config_defaults(&cfg);
    peer_table_t *t = table_with(&cfg);
    int slot = pm_conns_learn(s_book, EP);
    pm_conn_t *c = pm_conns_at(s_book, (size_t) slot);
    cr_expect(pm_conn_may_dial(c, t, 0, T0), "fresh endpoint");
    pm_conn_refuse(c, 0, "bad handshake");
    cr_expect_not(pm_conn_may_dial(c, t, PM_CONN_REFUSED_RETRY_MS - 1, T0));
    cr_expect(pm_conn_may_dial(c, t, PM_CONN_REFUSED_RETRY_MS, T0));
    /* A banned endpoint is not dialled. */
    cr_assert_eq(peer_table_add(t, K1, EP, T0), PEER_OK);
    peer_action_t a = PEER_ACTION_NONE;
    peer_table_blame_now(t, K1, PEER_OUTCOME_VIOLATION, "x", T0, &a);
    cr_expect_not(pm_conn_may_dial(c, t, PM_CONN_REFUSED_RETRY_MS, T0 + 1));
    peer_table_destroy(&t);
}

Test(conn, one_key_at_two_endpoints_is_one_connection)
{
    int a = pm_conns_learn(s_book, "alys://" K1 "@10.0.0.1:1");
    int b = pm_conns_learn(s_book, "alys://" K1 "@10.0.0.2:2");
    cr_assert(a >= 0 && b >= 0 && a != b);
    cr_expect_eq(pm_conns_duplicate(s_book, (size_t) b), -1, "neither is ready");
    pm_conn_t *ca = pm_conns_at(s_book, (size_t) a);
    pm_conn_ready(ca, 0);
    cr_expect_eq(pm_conns_duplicate(s_book, (size_t) b), a);
    cr_expect_eq(pm_conns_by_peer(s_book, K1), a, "the ready one answers for the key");
    pm_conn_close(ca, "gone");
    cr_expect_eq(pm_conns_duplicate(s_book, (size_t) b), -1);
    cr_expect_str_eq(ca->peer_id, K1, "an identity never changes");
}

Test(conn, requests_go_only_to_ready_unbanned_peers)
{
    peer_table_config_t cfg;
    peer_table_config_defaults(&cfg);
    peer_table_t *t = table_with(&cfg);
    const char *why = NULL;
    cr_expect_eq(pm_conns_usable(s_book, t, K1, T0, &why), -1);
    cr_expect_str_eq(why, "unknown peer");
    pm_conn_t *c = ready_conn(1000);
    int slot = pm_conns_by_peer(s_book, K1);
    cr_expect_eq(pm_conns_usable(s_book, t, K1, T0, &why), slot);
    pm_conn_link_down(c, 2000);
    cr_expect_eq(pm_conns_usable(s_book, t, K1, T0, &why), -1);
    cr_expect_str_eq(why, "peer not connected", "down: SyncActor was told, not charged again");
    pm_conn_ready(c, 3000);
    cr_assert_eq(peer_table_add(t, K1, EP, T0), PEER_OK);
    peer_action_t a = PEER_ACTION_NONE;
    peer_table_blame_now(t, K1, PEER_OUTCOME_VIOLATION, "x", T0, &a);
    cr_expect_eq(pm_conns_usable(s_book, t, K1, T0 + 1, &why), -1);
    cr_expect_str_eq(why, "peer banned");
    peer_table_destroy(&t);
}

Test(conn, a_dial_whose_socket_failed_is_plugged_again_after_a_backoff)
{
    int slot = pm_conns_learn(s_book, EP);
    pm_conn_t *c = pm_conns_at(s_book, (size_t) slot);
    cr_assert(pm_conn_tick(c, 0, true).todo & PM_DO_PLUG);
    /* The shell could not make the socket: not plugged, the send fails. */
    pm_conn_send_failed(c, 0);
    cr_expect_eq(c->state, PM_CONN_DIALING);
    cr_expect_eq(pm_conn_tick(c, 1, false).todo, 0, "backing off");
    pm_conn_fx_t fx = pm_conn_tick(c, pm_conn_backoff(1), false);
    cr_expect_eq(fx.todo & (PM_DO_PLUG | PM_DO_PROBE), PM_DO_PLUG | PM_DO_PROBE);
}

/* ---- slots for the address book ---------------------------------------------------- */

Test(conn, an_unanswered_dial_gives_its_slot_up)
{
    int slot = pm_conns_learn(s_book, EP);
    pm_conn_t *c = pm_conns_at(s_book, (size_t) slot);
    int64_t t = 0;
    pm_conn_fx_t fx = pm_conn_tick(c, t, true);
    pm_conn_plugged(c);
    unsigned seen = 0;
    for (int i = 0; i < PM_CONN_DIAL_TRIES; i++) {
        cr_assert(fx.todo & PM_DO_PROBE, "probe %d", i);
        fx = pm_conn_send_failed(c, t); /* nobody there */
        seen |= fx.todo;
        t = c->next_probe;
        if (!(fx.todo & PM_DO_GIVE_UP))
            fx = pm_conn_tick(c, t, false);
    }
    cr_assert(seen & PM_DO_GIVE_UP, "gave up after %d tries", PM_CONN_DIAL_TRIES);
    pm_conns_release(s_book, (size_t) slot);
    cr_assert_eq(pm_conns_by_endpoint(s_book, EP), -1);
    cr_assert_eq(pm_conns_active(s_book), 0);
}

Test(conn, a_ready_peer_is_not_given_up_by_failed_probes)
{
    pm_conn_t *c = ready_conn(1000);
    pm_conn_fx_t fx = pm_conn_send_failed(c, 2000);
    cr_assert_eq(c->state, PM_CONN_DOWN);
    cr_assert_not(fx.todo & PM_DO_GIVE_UP, "lost once: probed again first");
}

Test(conn, open_recycles_refused_before_closed_and_never_live)
{
    char ep[ALYS_ENDPOINT_MAX], old[ALYS_ENDPOINT_MAX];
    bool was_closed;
    for (int i = 0; i < PM_CONN_MAX; i++) {
        snprintf(ep, sizeof ep, "alys://" K1 "@10.0.0.1:%d", 1000 + i);
        cr_assert_geq(pm_conns_open(s_book, ep, old, sizeof old, &was_closed), 0);
    }
    cr_assert_eq(pm_conns_open(s_book, "alys://" K2 "@10.0.0.2:1", old, sizeof old, &was_closed),
                 -1, "every slot live: nothing recycled");
    pm_conn_close(pm_conns_at(s_book, 3), "score");
    pm_conn_refuse(pm_conns_at(s_book, 5), 0, "genesis");
    int s = pm_conns_open(s_book, "alys://" K2 "@10.0.0.2:1", old, sizeof old, &was_closed);
    cr_assert_eq(s, 5, "the refused slot first");
    cr_assert_str_eq(old, "alys://" K1 "@10.0.0.1:1005");
    cr_assert_not(was_closed);
    s = pm_conns_open(s_book, "alys://" K2 "@10.0.0.2:2", old, sizeof old, &was_closed);
    cr_assert_eq(s, 3);
    cr_assert(was_closed, "the book is told a closed one went");
    cr_assert_eq(pm_conns_active(s_book), PM_CONN_MAX);
}
