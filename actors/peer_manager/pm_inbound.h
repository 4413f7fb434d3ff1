/*  pm_inbound.h: what one inbound client may cost us, as a pure core: no
 *  sockets, no clock (time is a parameter). tests/unit/peer/test_inbound.c
 *  drives it; peer_serve.c translates.
 *
 *  Budgets (credit-based serving). Every answer handed to the listen
 *  socket is "owed" to its client until the socket has taken it (the
 *  shell reports that: pm_core_on_client_taken). A range request being
 *  read from storage "reserves" the most its answer can be (the caller's
 *  estimate, pm_inbound_reserve: at most one frame, 8 MiB): the storage
 *  reply and the answer made from it live in our memory meanwhile. Per
 *  client:
 *    - requests in progress (a storage read) plus range answers still owed
 *      are at most max_requests ([network] serve_max_requests);
 *    - bytes owed plus bytes reserved are at most client_bytes ([network]
 *      serve_client_mb);
 *  and for all clients together, bytes owed plus reserved are at most
 *  total_bytes ([network] serve_memory_mb). A range request past any of
 *  these gets WireError BUSY and no disk read. An answer is checked again
 *  when it is made (its reservation given back first): one that would go
 *  over a byte budget is not sent (a range answer becomes BUSY when that
 *  fits, any other answer is dropped). Small answers (errors, Status,
 *  Peers) are checked against bytes owed only, and may pass the total by an
 *  eighth, so that a BUSY or a newcomer's Status gets through while reads
 *  have reserved the budget or stalled clients hold it; their count per
 *  client is bounded by SERVE_SOCK_SNDHWM (serve_sock.h). So the memory
 *  serving holds for its clients is bounded by the budgets, whatever they
 *  read or do not read.
 *
 *  Stalled clients. A client that owes bytes and whose socket has taken
 *  none for PM_INBOUND_STALL_MS is stalled (it does not read). Its bytes
 *  stay owed until its connection closes, so when the total budget is what
 *  refuses a request, the stalled client owing the most is dropped: evicted
 *  (ignored, as below) and its connection closed by the shell, which gives
 *  its bytes back; so is an answer refused by the total. A client alone
 *  over its own budget only gets BUSY.
 *
 *  Admission (pm_inbound_admit), when a client first speaks, or speaks
 *  again after PM_INBOUND_IDLE_MS of silence (ROUTER sockets do not tell
 *  us of a disconnect, so a silent client stops holding a slot):
 *    - from an address that already has per_address admitted clients:
 *      refused (PM_INBOUND_TOO_MANY_FROM_ADDRESS);
 *    - inbound slots (max_peers) full: the worst admitted client is
 *      evicted (pm_inbound_pick_victim) and this one takes its slot; when
 *      every admitted client is protected, this one is refused.
 *  Refused and evicted clients are ignored (no answers) for
 *  PM_INBOUND_REFUSED_MS, then may try again. Outbound connections (the
 *  peers we chose) are not in this table: strangers cannot crowd them out.
 *
 *  Eviction (pm_inbound_pick_victim), modelled on Bitcoin Core's
 *  SelectNodeToEvict, not copied: protect, in turn,
 *    1. the longest-connected client of each of the PM_INBOUND_PROTECT
 *       address groups with the fewest clients (varied groups: an attacker
 *       with many addresses in one /16 cannot claim them);
 *    2. the PM_INBOUND_PROTECT clients with the best score as our peers
 *       (score > 0: they served us well);
 *    3. the PM_INBOUND_PROTECT clients that most recently pushed a block;
 *    4. the longer-connected half of the rest.
 *  Of the rest, the address group with the most clients loses its most
 *  recently connected one. Nothing left: nobody is evicted.
 *
 *  Address groups: IPv4 a.b.0.0/16, IPv6 the first 32 bits, else the whole
 *  address (pm_inbound_group).
 */
#ifndef PM_INBOUND_H
#define PM_INBOUND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PM_INBOUND_ADDR_MAX   64
#define PM_INBOUND_PROTECT    4
#define PM_INBOUND_IDLE_MS    30000 /* a client silent this long holds no slot */
#define PM_INBOUND_REFUSED_MS 60000 /* refused/evicted: ignored this long */
#define PM_INBOUND_STALL_MS   10000 /* owed, and nothing taken this long: stalled */
#define PM_INBOUND_MAX_CANDS  4096  /* pm_inbound_pick_victim reads at most this many */

typedef struct {
    uint32_t max_peers;    /* [network] max_inbound_peers */
    uint32_t per_address;  /* [network] max_inbound_per_address */
    uint32_t max_requests; /* [network] serve_max_requests */
    uint64_t client_bytes; /* [network] serve_client_mb, in bytes */
    uint64_t total_bytes;  /* [network] serve_memory_mb, in bytes */
} pm_inbound_cfg_t;

typedef enum {
    PM_INBOUND_NEW = 0, /* not decided yet (or silent for PM_INBOUND_IDLE_MS) */
    PM_INBOUND_ADMITTED,
    PM_INBOUND_TOO_MANY_FROM_ADDRESS,
    PM_INBOUND_FULL, /* slots full, nobody to evict */
    PM_INBOUND_EVICTED,
} pm_inbound_state_t;

/* One client's inbound record (kept in pm_client_t). */
typedef struct {
    pm_inbound_state_t state;
    int64_t decided_at;             /* when state was set */
    int64_t connected_at;           /* admitted at */
    int64_t last_block_at;          /* last NewBlock pushed; 0 = never */
    char addr[PM_INBOUND_ADDR_MAX]; /* remote address ("" = unknown) */
    uint32_t in_flight;             /* range requests being read */
    uint32_t owed_ranges;           /* range answers handed, not yet taken */
    uint64_t owed;                  /* bytes handed, not yet taken */
    uint64_t reserved;              /* bytes reserved by reads in progress */
    int64_t progress_at;            /* last bytes taken, or when owing began */
} pm_inbound_t;

/* All clients together. */
typedef struct {
    uint64_t owed;     /* bytes handed, not yet taken */
    uint64_t reserved; /* bytes reserved by reads in progress */
    uint64_t busy;     /* BUSY answers (credit or bytes) */
    uint64_t dropped;  /* answers not sent (over a byte budget, or the pipe full) */
    uint64_t evicted;  /* clients evicted for a newcomer */
    uint64_t refused;  /* clients refused (per-address limit, slots full) */
} pm_inbound_totals_t;

/* An eviction candidate (the caller fills one per admitted client). */
typedef struct {
    size_t handle; /* the caller's */
    int64_t connected_at;
    int64_t last_block_at; /* 0 = never */
    double score;          /* as our peer; 0 = not a peer of ours */
    char group[PM_INBOUND_ADDR_MAX];
} pm_inbound_cand_t;

/* The address group of addr into out (outlen). */
void pm_inbound_group(const char *addr, char *out, size_t outlen);

/* Is this client's slot live at now (admitted and heard from within
 * PM_INBOUND_IDLE_MS of last_seen)? */
bool pm_inbound_live(const pm_inbound_t *in, int64_t last_seen, int64_t now);

/* Index into cands of the client to evict, or -1 (all protected or n 0).
 * Reorders cands. */
long pm_inbound_pick_victim(pm_inbound_cand_t *cands, size_t n);

/* Does a client whose state is set ignore its frames at now? (refused or
 * evicted less than PM_INBOUND_REFUSED_MS ago). After that, state goes
 * back to NEW (the caller admits again). */
bool pm_inbound_ignored(pm_inbound_t *in, int64_t now);

/* The admission verdict for a NEW client, given how many admitted live
 * clients there are in all (live) and from its address (from_addr). FULL
 * means: slots full, evict someone (pm_inbound_pick_victim) then call
 * pm_inbound_set(ADMITTED), or refuse (pm_inbound_set(FULL)). */
pm_inbound_state_t pm_inbound_admit(const pm_inbound_cfg_t *cfg, size_t live, size_t from_addr);
void pm_inbound_set(pm_inbound_t *in, pm_inbound_state_t state, pm_inbound_totals_t *t, int64_t now);

/* The bytes to reserve for a range of count items when the largest item
 * seen so far is item_max bytes (0 = none seen yet: a full frame). At most
 * frame_max, at least 1 KiB. */
uint64_t pm_inbound_reserve(uint32_t count, uint64_t item_max, uint64_t frame_max);
/* May a range request that reserves reserve bytes start now (credit and
 * bytes)? false = BUSY. */
bool pm_inbound_may_request(const pm_inbound_cfg_t *cfg, const pm_inbound_t *in,
                            const pm_inbound_totals_t *t, uint64_t reserve);
/* A read started (reserve, in_flight + 1) / ended (both given back; in may
 * be NULL when the client is no longer known). */
void pm_inbound_read_start(pm_inbound_t *in, pm_inbound_totals_t *t, uint64_t reserve);
void pm_inbound_read_end(pm_inbound_t *in, pm_inbound_totals_t *t, uint64_t reserve);
/* May an answer of bytes be handed to the socket? range: it answers a range
 * request (its own reservation given back already); other answers are
 * checked against bytes owed only, not reservations, with an eighth of the
 * total as slack (so a BUSY gets through), and are few (the listen
 * socket's high-water mark). */
bool pm_inbound_may_send(const pm_inbound_cfg_t *cfg, const pm_inbound_t *in,
                         const pm_inbound_totals_t *t, uint64_t bytes, bool range);
/* An answer of bytes was handed at now (range: it answers a range request). */
void pm_inbound_charge(pm_inbound_t *in, pm_inbound_totals_t *t, uint64_t bytes, bool range,
                       int64_t now);
/* The socket has taken bytes at now (in NULL: the client is no longer known). */
void pm_inbound_credit(pm_inbound_t *in, pm_inbound_totals_t *t, uint64_t bytes, bool range,
                       int64_t now);

/* Is the total budget what refuses a request reserving reserve bytes? */
bool pm_inbound_total_spent(const pm_inbound_cfg_t *cfg, const pm_inbound_totals_t *t,
                            uint64_t reserve);
/* Owes bytes and its socket has taken none for PM_INBOUND_STALL_MS. */
bool pm_inbound_stalled(const pm_inbound_t *in, int64_t now);

#endif
