/*  pm_bans.h: when PeerManager loads and saves its bans (StorageActor keeps
 *  them across restarts), as a pure state machine (tests/unit/peer/
 *  test_bans_store.c; the bans themselves are peer_table's).
 *
 *    - load once, before any peer is dialled (peer_net waits for
 *      pm_bans_t.loaded): a banned bootstrap endpoint is never dialled;
 *      a failed load is retried on the next tick;
 *    - then save whenever the set changed: a new ban (pm_bans_changed), or
 *      a different count than last saved (bans that ran out); one save in
 *      flight at a time; a failed save is retried;
 *    - bans made before the load completed are saved with the loaded ones.
 */
#ifndef PM_BANS_H
#define PM_BANS_H

#include <stdbool.h>
#include <stddef.h>

typedef struct {
    bool loaded;
    bool loading;
    bool dirty;
    bool saving;
    size_t saved_count;
} pm_bans_t;

typedef enum { PM_BANS_NOTHING = 0, PM_BANS_LOAD, PM_BANS_SAVE } pm_bans_do_t;

/* What to ask StorageActor now; ban_count: the table's active bans. */
pm_bans_do_t pm_bans_next(pm_bans_t *b, size_t ban_count);
/* The request for what went out (not called when it could not be sent). */
void pm_bans_sent(pm_bans_t *b, pm_bans_do_t what);
/* Answers: ok false = error or no answer (retried). */
void pm_bans_loaded(pm_bans_t *b, bool ok, size_t imported, size_t ban_count);
void pm_bans_saved(pm_bans_t *b, bool ok, size_t saved);
void pm_bans_changed(pm_bans_t *b);

#endif
