/*  pm_fake_port.h: a fake port for pm_core.h: it records everything the
 *  core sends (as encoded frames, decoded back on demand) and answers dials
 *  as told. Header-only: one test file includes it. */
#ifndef PM_FAKE_PORT_H
#define PM_FAKE_PORT_H

#include <criterion/criterion.h>
#include <string.h>

#include "pm_core.h"
#include "pm_conn.h"

#define FAKE_MAX 512

typedef enum { OUT_BUS = 0, OUT_PEER, OUT_CLIENT } out_kind_t;

typedef struct {
    out_kind_t kind;
    pm_dest_t to; /* OUT_BUS */
    int slot;     /* OUT_PEER */
    zframe_t *frame;
    bool taken; /* looked at by a fake_next_* */
} fake_out_t;

typedef struct {
    fake_out_t out[FAKE_MAX];
    size_t n;
    int dial_rc; /* what peer_dial answers */
    char dialled[PM_CONN_MAX][256];
    bool hung_up[PM_CONN_MAX];
    int send_rc;       /* what peer_send answers */
    char dropped[256]; /* the last client dropped (client_drop) */
    size_t n_dropped;
} fake_t;

static void fake_add(fake_t *f, out_kind_t kind, pm_dest_t to, int slot, zframe_t *frame)
{
    cr_assert_lt(f->n, FAKE_MAX);
    cr_assert_not_null(frame);
    f->out[f->n++] = (fake_out_t){.kind = kind, .to = to, .slot = slot, .frame = frame};
}

static int fake_send(void *ctx, pm_dest_t to, alys_env_t *env)
{
    fake_add(ctx, OUT_BUS, to, -1, alys_env_encode(env));
    return 0;
}

static int fake_dial(void *ctx, int slot, const char *endpoint)
{
    fake_t *f = ctx;
    snprintf(f->dialled[slot], sizeof f->dialled[slot], "%s", endpoint);
    f->hung_up[slot] = false;
    return f->dial_rc;
}

static void fake_hangup(void *ctx, int slot, const char *endpoint)
{
    fake_t *f = ctx;
    (void) endpoint;
    f->hung_up[slot] = true;
}

static int fake_peer_send(void *ctx, int slot, const alys_wire_msg_t *m)
{
    fake_t *f = ctx;
    if (f->send_rc != 0)
        return f->send_rc;
    fake_add(f, OUT_PEER, PM_TO_SYNC, slot, alys_wire_encode(m));
    return 0;
}

static int fake_client_send(void *ctx, const uint8_t *id, size_t id_len, const alys_wire_msg_t *m,
                            bool range)
{
    (void) id;
    (void) id_len;
    (void) range;
    fake_add(ctx, OUT_CLIENT, PM_TO_SYNC, -1, alys_wire_encode(m));
    return 0;
}

static void fake_client_drop(void *ctx, const uint8_t *id, size_t id_len)
{
    fake_t *f = ctx;
    snprintf(f->dropped, sizeof f->dropped, "%.*s", (int) id_len, (const char *) id);
    f->n_dropped++;
}

static inline pm_port_t fake_port(fake_t *f)
{
    return (pm_port_t){.ctx = f,
                       .send = fake_send,
                       .peer_dial = fake_dial,
                       .peer_hangup = fake_hangup,
                       .peer_send = fake_peer_send,
                       .client_send = fake_client_send,
                       .client_drop = fake_client_drop};
}

static inline void fake_clear(fake_t *f)
{
    for (size_t i = 0; i < f->n; i++)
        zframe_destroy(&f->out[i].frame);
    f->n = 0;
}

/* The oldest bus envelope to `to` not yet looked at, decoded (free with
 * alys_env_free); NULL when none. Other outputs stay to be looked at. */
static inline alys_env_t *fake_next_bus(fake_t *f, pm_dest_t to)
{
    for (size_t i = 0; i < f->n; i++) {
        fake_out_t *o = &f->out[i];
        if (o->taken || o->kind != OUT_BUS || o->to != to)
            continue;
        char err[128];
        alys_env_t *env = alys_env_decode(zframe_data(o->frame), zframe_size(o->frame), err,
                                          sizeof err);
        cr_assert_not_null(env, "%s", err);
        o->taken = true;
        return env;
    }
    return NULL;
}

/* The next wire message of kind (OUT_PEER or OUT_CLIENT); *slot set for
 * OUT_PEER. Free with alys_wire_free. */
static inline alys_wire_msg_t *fake_next_wire(fake_t *f, out_kind_t kind, int *slot)
{
    for (size_t i = 0; i < f->n; i++) {
        fake_out_t *o = &f->out[i];
        if (o->taken || o->kind != kind)
            continue;
        char err[128];
        alys_wire_msg_t *m = alys_wire_decode(zframe_data(o->frame), zframe_size(o->frame), err,
                                              sizeof err);
        cr_assert_not_null(m, "%s", err);
        if (slot)
            *slot = o->slot;
        o->taken = true;
        return m;
    }
    return NULL;
}

#endif
