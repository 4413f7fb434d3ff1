/*  alysctl's request client (actors/alysctl/cmd_client.c) against a fake
 *  endpoint in a thread: the reply carrying the request's correlation id is
 *  returned and everything else skipped (replies to other ids, non-replies,
 *  a late reply to a request that timed out), once; silence is a timeout. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "cmd_client.h"

/* Long enough for an inproc round trip on a loaded machine: only the upper
 * bound of a wait that ends as soon as the reply is there. */
#define REPLY_WAIT_MS 10000
/* A request the server never answers times out after this. */
#define SILENCE_MS    100

typedef enum {
    ANSWER_WITH_NOISE, /* a reply to another id, a non-reply, then the reply */
    HOLD,              /* no answer (the client times out) */
    ANSWER_HELD_FIRST, /* the held request's reply (late), then this one's */
} step_t;

/* The server thread does not call Criterion's assertions (they end the
 * test from its own thread): it counts failed sends for the test to check. */
typedef struct {
    char endpoint[64];
    step_t steps[4];
    size_t nsteps;
    int send_failures;
} script_t;

static void reply_named(script_t *sc, zsock_t *router, zframe_t *who, const alys_env_t *req,
                        const char *text)
{
    if (alys_reply_error(router, who, req, 1, "%s", text) != 0)
        sc->send_failures++;
}

/* The fake endpoint: one ROUTER, the script's steps in order. */
static void server(zsock_t *pipe, void *arg)
{
    script_t *sc = arg;
    zsock_t *router = alys_router_bind(sc->endpoint);
    zpoller_t *poller = zpoller_new(pipe, router, NULL);
    zsock_signal(pipe, router ? 0 : 1);
    zframe_t *held_who = NULL;
    alys_env_t *held = NULL;
    for (size_t step = 0; router && poller;) {
        zsock_t *which = zpoller_wait(poller, -1);
        if (which != router)
            break; /* $TERM or interrupted */
        zframe_t *who = NULL;
        alys_env_t *req = NULL;
        if (alys_recv_from(router, &who, &req) != 0)
            continue;
        step_t s = step < sc->nsteps ? sc->steps[step] : ANSWER_WITH_NOISE;
        step++;
        if (s == HOLD) {
            held_who = who;
            held = req;
            continue;
        }
        if (s == ANSWER_HELD_FIRST && held) {
            reply_named(sc, router, held_who, held, "late");
            zframe_destroy(&held_who);
            alys_env_free(&held);
        }
        alys_env_t other = *req;
        other.corr_id = req->corr_id + 1000;
        reply_named(sc, router, who, &other, "another id");
        alys_env_t notreply = ALYS__BUS__ENVELOPE__INIT;
        Alys__Bus__Error e = ALYS__BUS__ERROR__INIT;
        e.message = "not a reply";
        notreply.body_case = ALYS__BUS__ENVELOPE__BODY_ERROR;
        notreply.error = &e;
        notreply.corr_id = req->corr_id;
        if (alys_send_to(router, who, &notreply) != 0)
            sc->send_failures++;
        reply_named(sc, router, who, req, "the reply");
        zframe_destroy(&who);
        alys_env_free(&req);
    }
    zframe_destroy(&held_who);
    alys_env_free(&held);
    zpoller_destroy(&poller);
    zsock_destroy(&router);
}

static zactor_t *start(script_t *sc, const char *name)
{
    snprintf(sc->endpoint, sizeof sc->endpoint, "inproc://alysctl-client-%s", name);
    zactor_t *a = zactor_new(server, sc);
    cr_assert_not_null(a, "the fake endpoint did not start");
    return a;
}

static alys_env_t ping_request(Alys__Control__Control *ctl, Alys__Control__Ping *ping)
{
    alys__control__ping__init(ping);
    alys__control__control__init(ctl);
    ctl->msg_case = ALYS__CONTROL__CONTROL__MSG_PING;
    ctl->ping = ping;
    alys_env_t env = ALYS__BUS__ENVELOPE__INIT;
    env.body_case = ALYS__BUS__ENVELOPE__BODY_CONTROL;
    env.control = ctl;
    return env;
}

static void expect_reply(alysctl_client_t *c, const char *text)
{
    Alys__Control__Control ctl;
    Alys__Control__Ping ping;
    alys_env_t req = ping_request(&ctl, &ping);
    alys_env_t *reply = NULL;
    cr_assert_eq(alysctl_client_request(c, &req, REPLY_WAIT_MS, &reply), 0, "no reply");
    cr_assert_not_null(reply);
    cr_expect_eq(reply->corr_id, req.corr_id);
    cr_expect(reply->reply);
    cr_expect_str_eq(alysctl_reply_error(reply), text);
    alys_env_free(&reply);
}

Test(alysctl_client, the_reply_with_the_request_id_is_returned_and_the_rest_skipped)
{
    script_t sc = {.steps = {ANSWER_WITH_NOISE, ANSWER_WITH_NOISE}, .nsteps = 2};
    zactor_t *srv = start(&sc, "noise");
    alysctl_client_t *c = alysctl_client_new(sc.endpoint);
    cr_assert_not_null(c);
    expect_reply(c, "the reply");
    expect_reply(c, "the reply"); /* the same client, a second request */
    alysctl_client_destroy(&c);
    cr_expect_null(c);
    zactor_destroy(&srv);
    cr_expect_eq(sc.send_failures, 0);
}

Test(alysctl_client, silence_is_a_timeout_and_its_late_reply_is_skipped)
{
    script_t sc = {.steps = {HOLD, ANSWER_HELD_FIRST}, .nsteps = 2};
    zactor_t *srv = start(&sc, "late");
    alysctl_client_t *c = alysctl_client_new(sc.endpoint);
    cr_assert_not_null(c);
    Alys__Control__Control ctl;
    Alys__Control__Ping ping;
    alys_env_t req = ping_request(&ctl, &ping);
    alys_env_t *reply = NULL;
    cr_assert_eq(alysctl_client_request(c, &req, SILENCE_MS, &reply), -1, "the server is silent");
    cr_expect_null(reply);
    /* The next request gets its own reply, not the late one sent before it. */
    expect_reply(c, "the reply");
    alysctl_client_destroy(&c);
    zactor_destroy(&srv);
    cr_expect_eq(sc.send_failures, 0);
}

Test(alysctl_client, a_zero_timeout_fails_at_once)
{
    script_t sc = {.steps = {HOLD}, .nsteps = 1};
    zactor_t *srv = start(&sc, "zero");
    Alys__Control__Control ctl;
    Alys__Control__Ping ping;
    alys_env_t req = ping_request(&ctl, &ping);
    alys_env_t *reply = NULL;
    cr_expect_eq(alysctl_request(sc.endpoint, &req, 0, &reply), -1);
    cr_expect_null(reply);
    zactor_destroy(&srv);
    cr_expect_eq(sc.send_failures, 0);
}
