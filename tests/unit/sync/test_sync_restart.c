/*  test_sync_restart.c: restarts of the other actors are told apart by
 *  process instance (sync_restart.h): every new instance acted on once, at
 *  once, whatever came before it; the same instance seen twice, once. */
#include <criterion/criterion.h>

#include "sync_restart.h"

static sync_restart_t *r;

static void setup(void)
{
    r = sync_restart_new();
    cr_assert_not_null(r);
    /* The actors' first start: seen, nothing to do. */
    cr_assert_not(sync_restart_on_ready(r, SYNC_WATCH_PEER_MANAGER, 100));
    cr_assert_not(sync_restart_on_socket_back(r, SYNC_WATCH_PEER_MANAGER));
}

static void teardown(void)
{
    sync_restart_destroy(&r);
    cr_assert_null(r);
}

TestSuite(sync_restart, .init = setup, .fini = teardown);

/* The fault of issue 7: a PeerManager that died again within 5 s of its
 * previous restart was ignored. Two restarts 100 ms apart (there is no
 * time in the module at all: only instances count). */
Test(sync_restart, two_restarts_100_ms_apart_are_both_handled)
{
    sync_watch_t pm = SYNC_WATCH_PEER_MANAGER;
    sync_restart_on_socket_lost(r, pm);
    cr_expect(sync_restart_on_ready(r, pm, 101), "first restart");
    cr_expect_not(sync_restart_on_socket_back(r, pm), "its reconnect is the same restart");
    sync_restart_on_socket_lost(r, pm); /* 100 ms later it dies again */
    cr_expect(sync_restart_on_ready(r, pm, 102), "second restart");
    cr_expect_not(sync_restart_on_socket_back(r, pm));
    cr_expect_eq(sync_restart_count(r, pm), 2);
}

Test(sync_restart, two_restarts_seen_only_on_the_socket_are_both_handled)
{
    sync_watch_t pm = SYNC_WATCH_PEER_MANAGER;
    sync_restart_on_socket_lost(r, pm);
    cr_expect(sync_restart_on_socket_back(r, pm));
    sync_restart_on_socket_lost(r, pm);
    cr_expect(sync_restart_on_socket_back(r, pm));
    /* Their readys come late, in order: each only names its instance. */
    cr_expect_not(sync_restart_on_ready(r, pm, 101));
    cr_expect_not(sync_restart_on_ready(r, pm, 102));
    cr_expect_eq(sync_restart_count(r, pm), 2);
}

Test(sync_restart, the_same_restart_seen_via_ready_then_socket_is_handled_once)
{
    sync_watch_t pm = SYNC_WATCH_PEER_MANAGER;
    sync_restart_on_socket_lost(r, pm);
    cr_expect(sync_restart_on_ready(r, pm, 101));
    cr_expect_not(sync_restart_on_socket_back(r, pm));
    cr_expect_eq(sync_restart_count(r, pm), 1);
}

Test(sync_restart, the_same_restart_seen_via_socket_then_ready_is_handled_once)
{
    sync_watch_t pm = SYNC_WATCH_PEER_MANAGER;
    sync_restart_on_socket_lost(r, pm);
    cr_expect(sync_restart_on_socket_back(r, pm));
    cr_expect_not(sync_restart_on_ready(r, pm, 101));
    cr_expect_eq(sync_restart_count(r, pm), 1);
}

Test(sync_restart, a_ready_seen_twice_is_handled_once)
{
    sync_watch_t pm = SYNC_WATCH_PEER_MANAGER;
    cr_expect(sync_restart_on_ready(r, pm, 101));
    cr_expect_not(sync_restart_on_ready(r, pm, 101));
    cr_expect(sync_restart_on_ready(r, pm, 102));
    cr_expect_not(sync_restart_on_ready(r, pm, 101), "a late copy of an older instance");
    cr_expect_eq(sync_restart_count(r, pm), 2);
}

/* An instance the socket showed dies before its ready came: the next
 * instance's ready must not be taken for the old one's. */
Test(sync_restart, an_instance_that_died_unnamed_does_not_hide_the_next)
{
    sync_watch_t pm = SYNC_WATCH_PEER_MANAGER;
    sync_restart_on_socket_lost(r, pm);
    cr_expect(sync_restart_on_socket_back(r, pm)); /* instance 2, no ready yet */
    sync_restart_on_socket_lost(r, pm);            /* instance 2 dies */
    cr_expect(sync_restart_on_ready(r, pm, 103));  /* instance 3 ready, socket down */
    cr_expect_not(sync_restart_on_socket_back(r, pm));
    cr_expect_eq(sync_restart_count(r, pm), 2);
}

/* We started after the actor did: the first ready we see is a restart when
 * our connection to the old instance dropped. */
Test(sync_restart, a_first_ready_after_a_drop_is_a_restart)
{
    sync_watch_t st = SYNC_WATCH_STORAGE;
    cr_expect_not(sync_restart_on_socket_back(r, st), "the first connect");
    sync_restart_on_socket_lost(r, st);
    cr_expect(sync_restart_on_ready(r, st, 200));
    cr_expect_not(sync_restart_on_socket_back(r, st));
}

Test(sync_restart, actors_are_independent)
{
    sync_restart_on_socket_lost(r, SYNC_WATCH_PEER_MANAGER);
    cr_expect(sync_restart_on_ready(r, SYNC_WATCH_PEER_MANAGER, 300));
    cr_expect_not(sync_restart_on_ready(r, SYNC_WATCH_PROCESSOR, 301), "its first start");
    cr_expect(sync_restart_on_ready(r, SYNC_WATCH_PROCESSOR, 302));
    cr_expect_eq(sync_restart_count(r, SYNC_WATCH_STORAGE), 0);
}

Test(sync_restart, bad_pids_and_unknown_actors_are_ignored)
{
    cr_expect_not(sync_restart_on_ready(r, SYNC_WATCH_PEER_MANAGER, 0));
    cr_expect_not(sync_restart_on_ready(r, SYNC_WATCH_PEER_MANAGER, -5));
    cr_expect_not(sync_restart_on_ready(r, SYNC_WATCH_COUNT, 7));
    cr_expect_eq(sync_restart_watch_of("alysctl"), SYNC_WATCH_COUNT);
    cr_expect_eq(sync_restart_watch_of(NULL), SYNC_WATCH_COUNT);
    cr_expect_eq(sync_restart_watch_of("peer_manager"), SYNC_WATCH_PEER_MANAGER);
}

Test(sync_restart, the_pid_comes_from_the_field_or_the_detail)
{
    cr_expect_eq(sync_restart_event_pid("4242", "pid 1, ipc://x"), 4242);
    cr_expect_eq(sync_restart_event_pid(NULL, "pid 1234, ipc://x"), 1234);
    cr_expect_eq(sync_restart_event_pid("", "external, pid 77, tcp://y"), 77);
    cr_expect_eq(sync_restart_event_pid(NULL, "killed by signal 9"), 0);
    cr_expect_eq(sync_restart_event_pid("x", NULL), 0);
}

Test(sync_restart, effects_per_actor)
{
    cr_expect_eq(sync_restart_effects(SYNC_WATCH_STORAGE, false), SYNC_RESTART_GET_HEAD);
    cr_expect_eq(sync_restart_effects(SYNC_WATCH_PEER_MANAGER, false), 0u);
    cr_expect_eq(sync_restart_effects(SYNC_WATCH_STORAGE, true), SYNC_RESTART_GET_HEAD);
    cr_expect_eq(sync_restart_effects(SYNC_WATCH_PEER_MANAGER, true),
                 SYNC_RESTART_REISSUE | SYNC_RESTART_GET_PEERS);
    cr_expect_eq(sync_restart_effects(SYNC_WATCH_PROCESSOR, true), 0u);
}
