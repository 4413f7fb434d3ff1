/*  pm_bans.c: see pm_bans.h. */
#include "pm_bans.h"

pm_bans_do_t pm_bans_next(pm_bans_t *b, size_t ban_count)
{
    if (!b->loaded)
        return b->loading ? PM_BANS_NOTHING : PM_BANS_LOAD;
    /* Expired bans change the count too: the stored list follows. */
    if (ban_count != b->saved_count)
        b->dirty = true;
    return b->dirty && !b->saving ? PM_BANS_SAVE : PM_BANS_NOTHING;
}

void pm_bans_sent(pm_bans_t *b, pm_bans_do_t what)
{
    if (what == PM_BANS_LOAD) {
        b->loading = true;
    } else if (what == PM_BANS_SAVE) {
        b->saving = true;
        b->dirty = false;
    }
}

void pm_bans_loaded(pm_bans_t *b, bool ok, size_t imported, size_t ban_count)
{
    b->loading = false;
    if (!ok)
        return;
    b->loaded = true;
    /* Bans made before the load (none normally) must be saved with the rest. */
    b->dirty = ban_count != imported;
    b->saved_count = imported;
}

void pm_bans_saved(pm_bans_t *b, bool ok, size_t saved)
{
    b->saving = false;
    if (ok)
        b->saved_count = saved;
    else
        b->dirty = true;
}

void pm_bans_changed(pm_bans_t *b)
{
    b->dirty = true;
}
