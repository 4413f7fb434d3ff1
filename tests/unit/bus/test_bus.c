/* The bus: envelope round trip, bounded decoding of hostile frames, and the
 * socket helpers over a real ROUTER/DEALER pair. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "bus.h"
#include "metrics_client.h"

static zframe_t *ping_frame(uint64_t seq)
{
    Alys__Control__Ping ping = ALYS__CONTROL__PING__INIT;
    ping.seq = seq;
    Alys__Control__Control ctl = ALYS__CONTROL__CONTROL__INIT;
    ctl.msg_case = ALYS__CONTROL__CONTROL__MSG_PING;
    ctl.ping = &ping;
    alys_env_t env = ALYS__BUS__ENVELOPE__INIT;
    env.corr_id = 77;
    env.body_case = ALYS__BUS__ENVELOPE__BODY_CONTROL;
    env.control = &ctl;
    return alys_env_encode(&env);
}

Test(bus, envelope_round_trip)
{
    alys_bus_set_name("tester");
    zframe_t *f = ping_frame(123456789);
    cr_assert_not_null(f);
    char err[256];
    alys_env_t *env = alys_env_decode(zframe_data(f), zframe_size(f), err, sizeof err);
    cr_assert_not_null(env, "%s", err);
    cr_assert_eq(env->corr_id, 77);
    cr_assert_str_eq(env->sender, "tester");
    cr_assert_eq(env->body_case, ALYS__BUS__ENVELOPE__BODY_CONTROL);
    cr_assert_eq(env->control->msg_case, ALYS__CONTROL__CONTROL__MSG_PING);
    cr_assert_eq(env->control->ping->seq, 123456789);
    cr_assert_str_eq(alys_env_body_name(env), "control");
    alys_env_free(&env);
    cr_assert_null(env);
    zframe_destroy(&f);
}

Test(bus, truncated_frames_rejected_without_crash)
{
    zframe_t *f = ping_frame(42);
    size_t len = zframe_size(f);
    int rejected = 0;
    for (size_t cut = 0; cut < len; cut++) {
        char err[256] = "";
        alys_env_t *env = alys_env_decode(zframe_data(f), cut, err, sizeof err);
        if (!env) {
            rejected++;
            cr_assert(strlen(err) > 0, "a rejection must say why");
        }
        alys_env_free(&env);
    }
    /* Every strict prefix is either rejected or decodes to a valid envelope
     * (protobuf prefixes can be valid); the empty frame has no body. */
    cr_assert_gt(rejected, 0);
    zframe_destroy(&f);
}

Test(bus, bit_flipped_frames_never_crash)
{
    zframe_t *f = ping_frame(99);
    size_t len = zframe_size(f);
    uint8_t *copy = malloc(len);
    int rejected = 0, accepted = 0;
    for (size_t bit = 0; bit < len * 8; bit++) {
        memcpy(copy, zframe_data(f), len);
        copy[bit / 8] ^= (uint8_t) (1u << (bit % 8));
        char err[256];
        alys_env_t *env = alys_env_decode(copy, len, err, sizeof err);
        if (env)
            accepted++;
        else
            rejected++;
        alys_env_free(&env);
    }
    cr_assert_eq(rejected + accepted, (int) (len * 8));
    cr_assert_gt(rejected, 0, "some flips must break the frame");
    free(copy);
    zframe_destroy(&f);
}

Test(bus, oversize_frame_rejected_before_unpacking)
{
    size_t len = ALYS_MAX_MSG_BYTES + 1;
    uint8_t *big = calloc(1, len);
    char err[256];
    const alys_bus_stats_t *st = alys_bus_stats();
    uint64_t before = st->oversize;
    alys_env_t *env = alys_env_decode(big, len, err, sizeof err);
    cr_assert_null(env);
    cr_assert(strstr(err, "exceeds the limit") != NULL, "got: %s", err);
    cr_assert_eq(st->oversize, before + 1);
    free(big);
}

Test(bus, small_frame_cannot_unpack_into_huge_structure)
{
    /* A frame of many empty sub-messages (repeated field 2 of Envelope is a
     * string; use the event's repeated fields: tag 6, length 0, repeated)
     * inflates on unpack; the budget stops it. Build: Envelope.event (11)
     * containing 400k empty Field entries. */
    size_t n = 400000;
    size_t inner = n * 2;
    uint8_t *buf = malloc(inner + 16);
    size_t off = 0;
    buf[off++] = (11 << 3) | 2; /* field 11, length-delimited */
    size_t v = inner;           /* varint length */
    while (v >= 0x80) {
        buf[off++] = (uint8_t) (v | 0x80);
        v >>= 7;
    }
    buf[off++] = (uint8_t) v;
    for (size_t i = 0; i < n; i++) {
        buf[off++] = (6 << 3) | 2; /* Event.fields, empty Field */
        buf[off++] = 0;
    }
    char err[256];
    alys_env_t *env = alys_env_decode(buf, off, err, sizeof err);
    cr_assert_null(env, "a 0.8 MB frame of empty fields must not unpack into ~40 MB");
    cr_assert(strstr(err, "budget") != NULL, "got: %s", err);
    free(buf);
}

Test(bus, envelope_without_body_rejected)
{
    alys_env_t env = ALYS__BUS__ENVELOPE__INIT;
    env.corr_id = 5;
    size_t len = alys__bus__envelope__get_packed_size(&env);
    uint8_t buf[64];
    alys__bus__envelope__pack(&env, buf);
    char err[256];
    alys_env_t *d = alys_env_decode(buf, len, err, sizeof err);
    cr_assert_null(d);
    cr_assert(strstr(err, "no body") != NULL, "got: %s", err);
}

Test(bus, router_dealer_exchange_and_bad_frames_dropped)
{
    char ep[128];
    snprintf(ep, sizeof ep, "ipc:///tmp/alys-test-bus-%d.sock", getpid());
    zsock_t *router = alys_router_bind(ep);
    cr_assert_not_null(router);
    zsock_t *dealer = alys_dealer_connect(ep, "client-1");
    cr_assert_not_null(dealer);
    zsock_set_rcvtimeo(router, 2000);
    zsock_set_rcvtimeo(dealer, 2000);

    /* Garbage first: dropped, counted, the loop goes on. */
    zstr_send(dealer, "definitely not protobuf \xff\xff\xff");
    zframe_t *id = NULL;
    alys_env_t *env = NULL;
    uint64_t malformed = alys_bus_stats()->malformed;
    cr_assert_eq(alys_recv_from(router, &id, &env), 1);
    cr_assert_eq(alys_bus_stats()->malformed, malformed + 1);

    zframe_t *f = ping_frame(7);
    cr_assert_eq(zframe_send(&f, dealer, 0), 0);
    cr_assert_eq(alys_recv_from(router, &id, &env), 0);
    cr_assert_eq(zframe_size(id), strlen("client-1"));
    cr_assert_eq(memcmp(zframe_data(id), "client-1", 8), 0);
    cr_assert_eq(env->control->ping->seq, 7);

    /* Reply: corr_id echoed and reply flag set. */
    cr_assert_eq(alys_reply_error(router, id, env, ALYS_ERR_NOT_FOUND, "no %s", "thing"), 0);
    alys_env_t *rep = NULL;
    cr_assert_eq(alys_recv(dealer, &rep), 0);
    cr_assert(rep->reply);
    cr_assert_eq(rep->corr_id, 77);
    cr_assert_eq(rep->body_case, ALYS__BUS__ENVELOPE__BODY_ERROR);
    cr_assert_str_eq(rep->error->message, "no thing");

    /* Replying to an identity that is not connected fails visibly. */
    cr_assert_neq(alys_send_to_name(router, "nobody", rep), 0);

    alys_env_free(&rep);
    alys_env_free(&env);
    zframe_destroy(&id);
    zsock_destroy(&dealer);
    zsock_destroy(&router);
}

Test(bus, corr_ids_unique_and_nonzero)
{
    uint64_t a = alys_next_corr_id(), b = alys_next_corr_id();
    cr_assert_neq(a, 0);
    cr_assert_neq(a, b);
}

Test(bus, metrics_flush_publishes_changed_series)
{
    char ep[128];
    snprintf(ep, sizeof ep, "ipc:///tmp/alys-test-metrics-%d.sock", getpid());
    zsock_t *sub = zsock_new(ZMQ_SUB);
    zsock_set_subscribe(sub, "");
    cr_assert_eq(zsock_bind(sub, "%s", ep), 0);
    zsock_set_rcvtimeo(sub, 2000);
    zsock_t *pub = alys_pub_connect(ep);
    /* A bound SUB sends its subscription only when it processes commands
     * (inside recv/poll), and the PUB reads it only inside a send: poll the
     * SUB and send a warm-up until the pipe carries messages, as the
     * supervisor's polling loop does in production. */
    zsock_set_rcvtimeo(sub, 50);
    for (int i = 0; i < 40; i++) {
        zstr_sendx(pub, "warm-up", "", NULL);
        char *t = zstr_recv(sub);
        if (t) {
            zstr_free(&t);
            zsock_flush(sub);
            break;
        }
    }
    zsock_set_rcvtimeo(sub, 2000);

    alys_metrics_t *m = alys_metrics_new();
    alys_metric_add(m, "alys_test_total", NULL, "a counter", 2);
    alys_metric_add(m, "alys_test_total", NULL, "a counter", 3);
    cr_assert_eq(alys_metric_value(m, "alys_test_total", NULL), 5);
    alys_metric_observe(m, "alys_test_seconds", "k=\"v\"", "a histogram", 0.003);
    cr_assert_eq(alys_metrics_flush(m, pub), 2);

    char topic[32];
    alys_env_t *env = NULL;
    int rc;
    while ((rc = alys_recv_topic(sub, topic, sizeof topic, &env)) == 1)
        ; /* the warm-up, if it got through, is not an envelope */
    cr_assert_eq(rc, 0);
    cr_assert_str_eq(topic, "metric");
    cr_assert_str_eq(env->metric->name, "alys_test_total");
    cr_assert_eq(env->metric->value, 5);
    alys_env_free(&env);
    /* The histogram arrives as cumulative buckets, then _sum and _count. */
    int buckets = 0;
    double count = -1;
    while (alys_recv_topic(sub, topic, sizeof topic, &env) == 0) {
        if (strcmp(env->metric->name, "alys_test_seconds_bucket") == 0)
            buckets++;
        if (strcmp(env->metric->name, "alys_test_seconds_count") == 0) {
            count = env->metric->value;
            alys_env_free(&env);
            break;
        }
        alys_env_free(&env);
    }
    cr_assert_eq(buckets, 17);
    cr_assert_eq(count, 1);
    /* Nothing changed: the next (non-full) flush sends nothing. */
    cr_assert_eq(alys_metrics_flush(m, pub), 0);
    alys_metrics_destroy(&m);
    cr_assert_null(m);
    zsock_destroy(&pub);
    zsock_destroy(&sub);
}
