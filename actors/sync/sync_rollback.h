/*  sync_rollback.h: the quiet window around a Rollback the SyncActor sent
 *  to Storage. Pure: time is passed in (now_ms, monotonic).
 *
 *  While our Rollback is in flight, and for quiet_ms after Storage answered
 *  it, commit reports (BatchOutcome, BatchProcessed, head_advanced) may
 *  predate the rollback: fed to the machine they would move its head back
 *  above Storage's. They are dropped; when the window closes the caller asks
 *  Storage for its head once, so nothing committed meanwhile is missed.
 *
 *  Ownership: sync_rollback_new/destroy.
 */
#ifndef SYNC_ROLLBACK_H
#define SYNC_ROLLBACK_H

#include <stdbool.h>
#include <stdint.h>

/* After Storage answered the Rollback, reports this old may still arrive. */
#define SYNC_ROLLBACK_QUIET_MS 300

typedef struct sync_rollback sync_rollback_t;

sync_rollback_t *sync_rollback_new(uint32_t quiet_ms);
void sync_rollback_destroy(sync_rollback_t **self_p);

void sync_rollback_sent(sync_rollback_t *self);                  /* our Rollback went out */
void sync_rollback_done(sync_rollback_t *self, uint64_t now_ms); /* Storage answered: its head */
/* Storage refused it or it timed out: no window (the caller asks the head). */
void sync_rollback_failed(sync_rollback_t *self);

/* May a commit report reach the machine now? */
bool sync_rollback_accepts_commit(const sync_rollback_t *self, uint64_t now_ms);
/* True once, at the first call after the window closed: ask for the head. */
bool sync_rollback_window_closed(sync_rollback_t *self, uint64_t now_ms);

#endif
