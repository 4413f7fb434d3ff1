/*  sync_test_util.h: a harness around sync_machine_t for the unit tests.
 *  It records every action the machine emits, answers requests on demand and
 *  drives time by hand: no sockets, no sleeps.
 */
#ifndef SYNC_TEST_UTIL_H
#define SYNC_TEST_UTIL_H

#include "sync_machine.h"

#define T_MAX_ACTS 8192

typedef struct {
    sync_machine_t *m;
    uint64_t now;
    sync_action_t acts[T_MAX_ACTS]; /* actions since the last t_clear() */
    size_t n;
    size_t hdr_scan; /* FETCH_HEADERS answered up to here */
} t_harness_t;

sync_machine_config_t t_config(void);
/* New harness with cfg, init at head (hash of head) at now = 1000. */
void t_setup(t_harness_t *t, const sync_machine_config_t *cfg, uint64_t head);
void t_teardown(t_harness_t *t);
void t_drain(t_harness_t *t); /* append pending actions to acts */
void t_clear(t_harness_t *t); /* drain, then forget recorded actions */
void t_hash(uint64_t height, alys_hash_t out);
void t_peer(t_harness_t *t, const char *id, uint64_t height);
void t_commit(t_harness_t *t, uint64_t height);
void t_tick(t_harness_t *t, uint64_t advance_ms);

size_t t_count(const t_harness_t *t, sync_action_kind_t kind);
/* The i-th recorded action of kind, or NULL. */
const sync_action_t *t_find(const t_harness_t *t, sync_action_kind_t kind, size_t i);
const sync_action_t *t_last(const t_harness_t *t, sync_action_kind_t kind);
bool t_has_transition(const t_harness_t *t, sync_state_kind_t from, sync_state_kind_t to);
bool t_penalised(const t_harness_t *t, const char *peer, sync_penalty_t kind);

/* Answer every FETCH_HEADERS recorded so far (and those it triggers) with
 * verified hashes, up to max_rounds replies. Returns replies sent. */
int t_answer_headers(t_harness_t *t, int max_rounds);
sync_state_kind_t t_state(const t_harness_t *t);
sync_progress_t *t_progress(const t_harness_t *t); /* static buffer */
/* Requests of this kind still open: emitted, not cancelled, not answered. */
size_t t_open_fetches(const t_harness_t *t);

#endif
