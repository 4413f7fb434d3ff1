/*  peer_test_util.h: small helpers shared by the peer logic tests. */
#ifndef PEER_TEST_UTIL_H
#define PEER_TEST_UTIL_H

#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "peer_table.h"

#define T0     1700000000000ull /* a plausible unix ms "now" */
#define MINUTE (60ull * 1000)
#define HOUR   (60ull * MINUTE)

static inline peer_table_t *table_with(const peer_table_config_t *cfg)
{
    peer_table_t *t = peer_table_new(cfg);
    cr_assert_not_null(t);
    return t;
}

/* A connected peer: id, endpoint "tcp://<id>:1", height. */
static inline void add_connected(peer_table_t *t, const char *id, uint64_t height, uint64_t now)
{
    char ep[128];
    snprintf(ep, sizeof ep, "tcp://%s:1", id);
    cr_assert_eq(peer_table_add(t, id, ep, now), PEER_OK, "add %s", id);
    cr_assert_eq(peer_table_on_status(t, id, height, NULL, "1", now), PEER_OK);
}

static inline peer_action_t record(peer_table_t *t, const char *id, peer_outcome_kind_t k, uint64_t now)
{
    peer_outcome_t o = {.kind = k};
    peer_action_t a = PEER_ACTION_NONE;
    cr_assert_eq(peer_table_record(t, id, &o, now, &a), PEER_OK);
    return a;
}

static inline void record_ok(peer_table_t *t, const char *id, uint32_t latency_ms, uint64_t bytes,
                             uint32_t blocks, uint64_t now)
{
    peer_outcome_t o = {.kind = PEER_OUTCOME_OK, .latency_ms = latency_ms, .bytes = bytes, .blocks = blocks};
    cr_assert_eq(peer_table_record(t, id, &o, now, NULL), PEER_OK);
}

static inline double score_of(peer_table_t *t, const char *id, uint64_t now)
{
    double s = 0;
    cr_assert_eq(peer_table_score(t, id, now, &s), PEER_OK);
    return s;
}

static inline peer_view_t view_of(peer_table_t *t, const char *id, uint64_t now)
{
    peer_view_t v;
    cr_assert_eq(peer_table_get(t, id, now, &v), PEER_OK);
    return v;
}

#define assert_near(a, b, eps)                                                                  \
    cr_assert(fabs((double) (a) - (double) (b)) <= (eps), "%s = %f, want %f", #a, (double) (a), \
              (double) (b))

#endif
