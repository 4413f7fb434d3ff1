/*  cmd_sync.h: the SyncActor's status for other alysctl commands
 *  (`alysctl status` shows it beside the actor table).
 *
 *  alysctl_sync_status_json asks the SyncActor (cfg->ep_sync, GetSyncStatus,
 *  2 s deadline) and builds the `sync` object:
 *    {"state": "DownloadingBlocks", "paused": false,
 *     the seed's SyncProgress fields under its names:
 *       "genesis_height", "current_height", "target_height",
 *       "highest_peer_height", "blocks_processed", "blocks_failed",
 *       "blocks_per_second", "sync_start_time" (unix ms), "last_checkpoint",
 *       "checkpoint_frequency", "active_peers", "total_peers",
 *       "peer_scores" ({peer_id: score}), "eta_seconds" (-1 = unknown),
 *       "can_produce_blocks",
 *     derived: "blocks_behind", "percent", "retries",
 *       "production_allowed_at" (unix ms, 0 = never),
 *     and "state_fields": the SyncState's own fields for the current state
 *       (Discovering: started_at, attempts; DownloadingHeaders: start_height,
 *       target_height, current_height (verified header tip), peer;
 *       DownloadingBlocks: start_height, target_height, current_height,
 *       batch_size, peers; CatchingUp: blocks_behind, sync_speed,
 *       estimated_time; Synced: last_check, peer_height; Failed: reason,
 *       last_good_height, recovery_attempts, next_retry)}.
 *  Returns 0 with *out set (caller json_decref's), or -1 with *out NULL
 *  when the SyncActor does not answer (the message is on stderr only when
 *  verbose).
 *
 *  alysctl_sync_status_print prints the same as a few text lines ("sync: not
 *  answering" when it does not answer; returns -1 then).
 */
#ifndef ALYSCTL_CMD_SYNC_H
#define ALYSCTL_CMD_SYNC_H

#include <jansson.h>

#include "config.h"

int alysctl_sync_status_json(const alys_config_t *cfg, json_t **out);
int alysctl_sync_status_print(const alys_config_t *cfg);

#endif
