/*  peer_ban.c: the ban list. It is kept apart from the peer entries so that a
 *  ban outlives its entry (removed, recycled, or not yet known after a restart)
 *  and so that it can be exported to and imported from StorageActor as a plain
 *  array. A ban matches a peer by id or by endpoint: a banned node must not
 *  come back under a new name from the same address.
 */
#include "peer_table_private.h"

#include <string.h>

static bool same(const char *a, const char *b)
{
    return a && b && a[0] && b[0] && strcmp(a, b) == 0;
}

static bool ban_matches(const peer_ban_t *b, const char *peer_id, const char *endpoint)
{
    return same(b->peer_id, peer_id) || same(b->endpoint, endpoint);
}

/* The entry for this id (or, for id-less bans, this endpoint), if any. */
static peer_ban_t *find_entry(peer_table_t *self, const char *peer_id, const char *endpoint)
{
    for (size_t i = 0; i < self->ban_count; i++) {
        peer_ban_t *b = &self->bans[i];
        if (peer_id && peer_id[0] ? same(b->peer_id, peer_id)
                                  : !b->peer_id[0] && same(b->endpoint, endpoint))
            return b;
    }
    return NULL;
}

/* Slot for a new entry; when full, the one ending soonest goes if it ends
 * before the new one (the longer ban is the one worth keeping). */
static peer_ban_t *new_entry(peer_table_t *self, uint64_t ban_until)
{
    if (self->ban_count < PEER_MAX_BANS)
        return &self->bans[self->ban_count++];
    peer_ban_t *soonest = &self->bans[0];
    for (size_t i = 1; i < self->ban_count; i++) {
        if (self->bans[i].ban_until < soonest->ban_until)
            soonest = &self->bans[i];
    }
    return soonest->ban_until < ban_until ? soonest : NULL;
}

void pt_ban_list_put(peer_table_t *self, const char *peer_id, const char *endpoint,
                     uint64_t ban_until, const char *reason)
{
    peer_ban_t *b = find_entry(self, peer_id, endpoint);
    if (b) {
        if (ban_until > b->ban_until) {
            b->ban_until = ban_until;
            pt_copy_trunc(b->reason, sizeof b->reason, reason);
        }
        if (!b->endpoint[0])
            pt_copy_trunc(b->endpoint, sizeof b->endpoint, endpoint);
        return;
    }
    b = new_entry(self, ban_until);
    if (!b)
        return; /* full of longer bans; the table entry is still banned */
    *b = (peer_ban_t){.ban_until = ban_until};
    pt_copy_trunc(b->peer_id, sizeof b->peer_id, peer_id);
    pt_copy_trunc(b->endpoint, sizeof b->endpoint, endpoint);
    pt_copy_trunc(b->reason, sizeof b->reason, reason);
}

void pt_ban_list_expire(peer_table_t *self, uint64_t now_ms)
{
    size_t kept = 0;
    for (size_t i = 0; i < self->ban_count; i++) {
        if (self->bans[i].ban_until > now_ms)
            self->bans[kept++] = self->bans[i];
    }
    self->ban_count = kept;
}

const char *pt_ban_reason(peer_table_t *self, const char *peer_id, const char *endpoint, uint64_t now_ms)
{
    for (size_t i = 0; i < self->ban_count; i++) {
        const peer_ban_t *b = &self->bans[i];
        if (b->ban_until > now_ms && ban_matches(b, peer_id, endpoint))
            return b->reason;
    }
    return NULL;
}

int peer_table_ban(peer_table_t *self, const char *peer_id, uint64_t duration_ms,
                   const char *reason, uint64_t now_ms)
{
    char id[PEER_ID_MAX];
    if (!peer_id || !peer_id[0] || pt_copy_exact(id, sizeof id, peer_id) != 0)
        return PEER_ERR_INVALID;
    if (duration_ms == 0)
        duration_ms = self->cfg.ban_ms;
    peer_t *p = pt_find(self, id);
    if (p) {
        pt_ban_entry(self, p, duration_ms, reason, now_ms);
        return PEER_OK;
    }
    /* Not in the table (yet): the list entry refuses it when it shows up. */
    uint64_t until = now_ms + duration_ms < now_ms ? UINT64_MAX : now_ms + duration_ms;
    pt_ban_list_put(self, id, "", until, reason);
    return PEER_OK;
}

bool peer_table_is_banned(peer_table_t *self, const char *peer_id, const char *endpoint, uint64_t now_ms)
{
    for (size_t i = 0; i < self->ban_count; i++) {
        const peer_ban_t *b = &self->bans[i];
        if (b->ban_until > now_ms && ban_matches(b, peer_id, endpoint))
            return true;
    }
    /* The list may have dropped an entry when full; the table entry is the
     * other witness. */
    peer_t *p = pt_find(self, peer_id);
    if (!p)
        return false;
    pt_refresh(self, p, now_ms);
    return p->info.state == PEER_STATE_BANNED;
}

size_t peer_table_ban_count(peer_table_t *self, uint64_t now_ms)
{
    size_t n = 0;
    for (size_t i = 0; i < self->ban_count; i++)
        n += self->bans[i].ban_until > now_ms;
    return n;
}

size_t peer_table_export_bans(peer_table_t *self, uint64_t now_ms, peer_ban_t *out, size_t cap)
{
    size_t n = 0;
    for (size_t i = 0; i < self->ban_count && n < cap; i++) {
        if (self->bans[i].ban_until > now_ms)
            out[n++] = self->bans[i];
    }
    return n;
}

/* Imported data came from disk: trust nothing about its strings. */
static bool ban_well_formed(const peer_ban_t *b)
{
    return memchr(b->peer_id, '\0', sizeof b->peer_id) &&
           memchr(b->endpoint, '\0', sizeof b->endpoint) &&
           memchr(b->reason, '\0', sizeof b->reason) && (b->peer_id[0] || b->endpoint[0]);
}

/* Table entries the imported ban names become banned (no score change: the
 * score that earned the ban decayed while we were down). */
static void mark_matching(peer_table_t *self, const peer_ban_t *b, uint64_t now_ms)
{
    for (size_t i = 0; i < PEER_TABLE_MAX_PEERS; i++) {
        peer_t *p = &self->peers[i];
        if (!p->used || !ban_matches(b, p->info.peer_id, p->info.endpoint))
            continue;
        pt_refresh(self, p, now_ms);
        p->info.state = PEER_STATE_BANNED;
        p->dropped_for_score = false;
        if (b->ban_until > p->info.ban_until)
            p->info.ban_until = b->ban_until;
    }
}

size_t peer_table_import_bans(peer_table_t *self, const peer_ban_t *bans, size_t n, uint64_t now_ms)
{
    size_t imported = 0;
    for (size_t i = 0; bans && i < n; i++) {
        const peer_ban_t *b = &bans[i];
        if (!ban_well_formed(b) || b->ban_until <= now_ms)
            continue;
        pt_ban_list_put(self, b->peer_id, b->endpoint, b->ban_until, b->reason);
        mark_matching(self, b, now_ms);
        imported++;
    }
    return imported;
}
