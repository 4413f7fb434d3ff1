/* common/sockmon: events of real sockets (ipc:// in a temporary directory;
 * inproc connections raise no monitor events at all), the event mask, the
 * decoder on hand-made messages, and the event names. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sockmon.h"
#include "util.h"

/* Connection events arrive within milliseconds on a quiet machine; this is
 * only the bound after which a test gives up ("eventually within T"). */
#define EVENT_WAIT_MS 10000

static char s_dir[64];
static char s_ep[128];

static void setup(void)
{
    snprintf(s_dir, sizeof s_dir, "/tmp/alys-sockmon-XXXXXX");
    cr_assert_not_null(mkdtemp(s_dir));
    snprintf(s_ep, sizeof s_ep, "ipc://%s/sock", s_dir);
}

static void teardown(void)
{
    char path[96];
    snprintf(path, sizeof path, "%s/sock", s_dir);
    (void) unlink(path);
    (void) rmdir(s_dir);
}

TestSuite(sockmon, .init = setup, .fini = teardown);

/* Read events from mon until `want` arrives (returns true, addr filled) or
 * EVENT_WAIT_MS passes. Every event seen before it is OR-ed into *seen. */
static bool wait_event(zsock_t *mon, int want, char *addr, size_t addrlen, int *seen)
{
    zpoller_t *p = zpoller_new(mon, NULL);
    cr_assert_not_null(p);
    int64_t deadline = alys_mono_ms() + EVENT_WAIT_MS;
    bool found = false;
    for (int64_t left = EVENT_WAIT_MS; !found && left > 0; left = deadline - alys_mono_ms()) {
        if (!zpoller_wait(p, (int) left))
            break;
        int ev = sockmon_read(mon, addr, addrlen);
        if (ev == want)
            found = true;
        else if (seen)
            *seen |= ev;
    }
    zpoller_destroy(&p);
    return found;
}

Test(sockmon, a_connection_raises_listening_accepted_and_connected_with_the_endpoint)
{
    zsock_t *srv = zsock_new(ZMQ_ROUTER);
    zsock_t *srv_mon = sockmon_new(srv, "srv", ZMQ_EVENT_LISTENING | ZMQ_EVENT_ACCEPTED);
    cr_assert_not_null(srv_mon);
    cr_assert_eq(zsock_bind(srv, "%s", s_ep), 0);
    zsock_t *cli = zsock_new(ZMQ_DEALER);
    zsock_t *cli_mon = sockmon_new(cli, "cli", ZMQ_EVENT_CONNECTED);
    cr_assert_not_null(cli_mon);
    cr_assert_eq(zsock_connect(cli, "%s", s_ep), 0);

    char addr[256];
    cr_assert(wait_event(srv_mon, ZMQ_EVENT_LISTENING, addr, sizeof addr, NULL));
    cr_expect_str_eq(addr, s_ep);
    cr_assert(wait_event(srv_mon, ZMQ_EVENT_ACCEPTED, addr, sizeof addr, NULL));
    cr_assert(wait_event(cli_mon, ZMQ_EVENT_CONNECTED, addr, sizeof addr, NULL));
    cr_expect_str_eq(addr, s_ep);

    zsock_destroy(&cli_mon);
    zsock_destroy(&cli);
    zsock_destroy(&srv_mon);
    zsock_destroy(&srv);
}

Test(sockmon, only_the_events_of_the_mask_are_reported)
{
    zsock_t *srv = zsock_new(ZMQ_ROUTER);
    zsock_t *mon = sockmon_new(srv, "srv", ZMQ_EVENT_DISCONNECTED);
    cr_assert_not_null(mon);
    cr_assert_eq(zsock_bind(srv, "%s", s_ep), 0);
    zsock_t *cli = zsock_new(ZMQ_DEALER);
    cr_assert_eq(zsock_connect(cli, "%s", s_ep), 0);
    /* a message through proves the connection is up before it goes away */
    cr_assert_eq(zstr_send(cli, "hello"), 0);
    zmsg_t *got = zmsg_recv(srv);
    cr_assert_not_null(got);
    zmsg_destroy(&got);
    zsock_destroy(&cli);

    int seen = 0;
    char addr[256];
    cr_assert(wait_event(mon, ZMQ_EVENT_DISCONNECTED, addr, sizeof addr, &seen),
              "the peer closed: DISCONNECTED is expected");
    cr_expect_eq(seen, 0, "events outside the mask were reported (0x%x)", seen);
    zsock_destroy(&mon);
    zsock_destroy(&srv);
}

Test(sockmon, two_monitors_with_one_label_do_not_collide)
{
    zsock_t *a = zsock_new(ZMQ_ROUTER);
    zsock_t *b = zsock_new(ZMQ_ROUTER);
    zsock_t *ma = sockmon_new(a, "same", ZMQ_EVENT_LISTENING);
    zsock_t *mb = sockmon_new(b, "same", ZMQ_EVENT_LISTENING);
    cr_assert_not_null(ma);
    cr_assert_not_null(mb, "a second monitor with the same label must get its own endpoint");
    char ep_b[160];
    snprintf(ep_b, sizeof ep_b, "%s-b", s_ep);
    cr_assert_eq(zsock_bind(a, "%s", s_ep), 0);
    cr_assert_eq(zsock_bind(b, "%s", ep_b), 0);
    char addr[256];
    cr_assert(wait_event(ma, ZMQ_EVENT_LISTENING, addr, sizeof addr, NULL));
    cr_expect_str_eq(addr, s_ep);
    cr_assert(wait_event(mb, ZMQ_EVENT_LISTENING, addr, sizeof addr, NULL));
    cr_expect_str_eq(addr, ep_b);
    zsock_destroy(&ma);
    zsock_destroy(&mb);
    zsock_destroy(&a);
    zsock_destroy(&b);
    (void) unlink(ep_b + strlen("ipc://"));
}

/* ---- the decoder, on hand-made messages */

static zmsg_t *event_msg(uint16_t ev, const char *addr)
{
    uint8_t head[6] = {0};
    memcpy(head, &ev, sizeof ev);
    zmsg_t *m = zmsg_new();
    cr_assert_not_null(m);
    cr_assert_eq(zmsg_addmem(m, head, sizeof head), 0);
    if (addr)
        cr_assert_eq(zmsg_addstr(m, addr), 0);
    return m;
}

Test(sockmon, decode_returns_the_event_and_the_address)
{
    zmsg_t *m = event_msg(ZMQ_EVENT_ACCEPTED, "tcp://127.0.0.1:9000");
    char addr[64];
    cr_expect_eq(sockmon_decode(m, addr, sizeof addr), ZMQ_EVENT_ACCEPTED);
    cr_expect_str_eq(addr, "tcp://127.0.0.1:9000");
    cr_expect_eq(sockmon_decode(m, NULL, 0), ZMQ_EVENT_ACCEPTED, "addr is optional");
    zmsg_destroy(&m);
}

Test(sockmon, decode_truncates_a_long_address_to_the_buffer)
{
    zmsg_t *m = event_msg(ZMQ_EVENT_CONNECTED, "tcp://10.0.0.1:5555");
    char addr[8];
    memset(addr, 'x', sizeof addr);
    cr_expect_eq(sockmon_decode(m, addr, sizeof addr), ZMQ_EVENT_CONNECTED);
    cr_expect_str_eq(addr, "tcp://1");
    zmsg_destroy(&m);
}

Test(sockmon, decode_refuses_what_is_not_an_event)
{
    char addr[16] = "stale";
    cr_expect_eq(sockmon_decode(NULL, addr, sizeof addr), 0);
    cr_expect_str_eq(addr, "", "addr is emptied when there is no event");

    zmsg_t *empty = zmsg_new();
    cr_expect_eq(sockmon_decode(empty, addr, sizeof addr), 0);
    zmsg_destroy(&empty);

    zmsg_t *shortm = zmsg_new();
    cr_assert_eq(zmsg_addmem(shortm, "\x01\x00\x00", 3), 0);
    cr_assert_eq(zmsg_addstr(shortm, "tcp://x"), 0);
    cr_expect_eq(sockmon_decode(shortm, addr, sizeof addr), 0, "a head under 6 bytes is no event");
    zmsg_destroy(&shortm);

    zmsg_t *noaddr = event_msg(ZMQ_EVENT_CLOSED, NULL);
    strcpy(addr, "stale");
    cr_expect_eq(sockmon_decode(noaddr, addr, sizeof addr), ZMQ_EVENT_CLOSED);
    cr_expect_str_eq(addr, "", "no address frame gives an empty address");
    zmsg_destroy(&noaddr);
}

Test(sockmon, every_event_has_its_own_name_and_unknown_ones_are_other)
{
    static const int evs[] = {
        ZMQ_EVENT_CONNECTED,
        ZMQ_EVENT_CONNECT_DELAYED,
        ZMQ_EVENT_CONNECT_RETRIED,
        ZMQ_EVENT_LISTENING,
        ZMQ_EVENT_BIND_FAILED,
        ZMQ_EVENT_ACCEPTED,
        ZMQ_EVENT_ACCEPT_FAILED,
        ZMQ_EVENT_CLOSED,
        ZMQ_EVENT_DISCONNECTED,
        ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL,
        ZMQ_EVENT_HANDSHAKE_SUCCEEDED,
        ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL,
        ZMQ_EVENT_HANDSHAKE_FAILED_AUTH,
    };
    size_t n = sizeof evs / sizeof evs[0];
    for (size_t i = 0; i < n; i++) {
        const char *name = sockmon_event_name(evs[i]);
        cr_expect_str_neq(name, "other", "event 0x%x has no name", evs[i]);
        for (size_t j = 0; j < i; j++)
            cr_expect_str_neq(name, sockmon_event_name(evs[j]), "two events named %s", name);
    }
    cr_expect_str_eq(sockmon_event_name(ZMQ_EVENT_DISCONNECTED), "disconnected");
    cr_expect_str_eq(sockmon_event_name(ZMQ_EVENT_HANDSHAKE_FAILED_AUTH), "handshake_failed_auth");
    cr_expect_str_eq(sockmon_event_name(0), "other");
    cr_expect_str_eq(sockmon_event_name(ZMQ_EVENT_MONITOR_STOPPED), "other");
}
