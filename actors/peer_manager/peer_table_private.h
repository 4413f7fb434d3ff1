/*  peer_table_private.h: the table's layout, shared by peer_table.c,
 *  peer_blame.c and peer_select.c only. Nothing outside actors/peer_manager
 *  includes this; the public API is peer_table.h.
 */
#ifndef PEER_TABLE_PRIVATE_H
#define PEER_TABLE_PRIVATE_H

#include "peer_table.h"

typedef struct {
    bool used;
    peer_info_t info;
    peer_metrics_t m;
    peer_score_t score;
    uint64_t disconnected_at; /* ms; picks the slot to recycle when full */
    bool dropped_for_score;   /* reconnect waits for the score to recover */
} peer_t;

typedef struct {
    char peer_id[PEER_ID_MAX];
    uint64_t start, end; /* [start, end) that failed from this peer */
    uint64_t at_ms;
    char reason[PEER_REASON_MAX];
} peer_suspect_t;

struct _peer_table_t {
    peer_table_config_t cfg;
    peer_t peers[PEER_TABLE_MAX_PEERS]; /* slot order = table order */
    size_t peer_count;                  /* used slots */
    peer_ban_t bans[PEER_MAX_BANS];     /* compact, [0, ban_count) */
    size_t ban_count;
    peer_suspect_t suspects[PEER_MAX_SUSPECTS]; /* compact */
    size_t suspect_count;
    size_t rr_cursor; /* round_robin: next slot to try */
};

/* Shared helpers (peer_table.c). */
peer_t *pt_find(peer_table_t *self, const char *peer_id);
/* Bring p up to now: decay its score, lift an expired ban. */
void pt_refresh(peer_table_t *self, peer_t *p, uint64_t now_ms);
/* Score cutoff for selection; see the header comment of peer_table.h. */
double pt_score_cutoff(const peer_table_config_t *cfg);
/* Connected, not banned, score at or above the cutoff. Refreshes p. */
bool pt_eligible(peer_table_t *self, peer_t *p, uint64_t now_ms);
/* Apply an outcome's metrics and score change; returns the action. */
peer_action_t pt_apply(peer_table_t *self, peer_t *p, const peer_outcome_t *o, uint64_t now_ms);
/* Ban table entry p for duration_ms (extends, never shortens), and record it
 * in the ban list. */
void pt_ban_entry(peer_table_t *self, peer_t *p, uint64_t duration_ms, const char *reason,
                  uint64_t now_ms);

/* peer_ban.c: enter or extend a ban list entry (evicting the soonest-ending
 * one when full); drop expired entries. */
void pt_ban_list_put(peer_table_t *self, const char *peer_id, const char *endpoint,
                     uint64_t ban_until, const char *reason);
void pt_ban_list_expire(peer_table_t *self, uint64_t now_ms);
/* Reason of the active ban on this id or endpoint, or NULL. */
const char *pt_ban_reason(peer_table_t *self, const char *peer_id, const char *endpoint,
                          uint64_t now_ms);

/* peer_blame.c: drop suspicions older than suspect_ttl_ms. */
void pt_suspects_expire(peer_table_t *self, uint64_t now_ms);

/* Copy src into dst (cap bytes) only if it fits; -1 (dst = "") if not. */
int pt_copy_exact(char *dst, size_t cap, const char *src);
/* Copy src into dst, truncating; NULL src gives "". */
void pt_copy_trunc(char *dst, size_t cap, const char *src);

#endif
