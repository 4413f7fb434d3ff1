/*  alysctl peers [--json]: PeerManagerActor's peer table.
 *
 *  One GetPeers to the peer manager's mailbox (ep_peer_manager); the reply
 *  is a PeerSet listing, in this order: the peers eligible for sync, best
 *  first by the configured strategy; every other known peer (connecting,
 *  disconnected, banned, or low_score: connected but below the score
 *  cutoff for sync); bans of peers not in the table (a ban outlives the
 *  entry and survives restarts); endpoints refused at the handshake (state
 *  "refused": another genesis, ...) or dialled without an answer yet (state
 *  "connecting": e.g. an unreachable bootstrap peer), and the size of the
 *  address book (endpoints heard of, by table). No answer within 2 s:
 *  exit 1.
 *
 *  --json prints
 *    {"strategy", "batch_size", "book": {"new", "tried", "bootstrap"},
 *     "peers": [{"peer_id", "endpoint", "state", "reported_height", "score",
 *                "latency_ms", "min_rtt_ms", "bandwidth", "error_rate",
 *                "reliability", "blocks_served", "timeout_ms", "ban_until",
 *                "ban_reason"}, ...]}
 *  with ban_until in unix ms (0 = not banned) and ban_reason also holding
 *  why a connection was refused.
 */
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "alysctl.h"
#include "cmd_client.h"

typedef Alys__Peer__PeerSet peerset_t;

static const char *str(const char *s)
{
    return s ? s : "";
}

static json_t *entry_json(const Alys__Peer__PeerEntry *e, uint32_t timeout_ms)
{
    json_t *o = json_pack("{s:s, s:s, s:s, s:I, s:f, s:f, s:f, s:f, s:f, s:f, s:I, s:I, s:I, s:s}",
                          "peer_id", str(e->peer_id), "endpoint", str(e->endpoint), "state",
                          str(e->state), "reported_height", (json_int_t) e->reported_height,
                          "score", e->score, "latency_ms", e->latency_ms, "min_rtt_ms",
                          e->min_rtt_ms, "bandwidth", e->bandwidth, "error_rate", e->error_rate,
                          "reliability", e->reliability, "blocks_served",
                          (json_int_t) e->blocks_served, "timeout_ms", (json_int_t) timeout_ms,
                          "ban_until", (json_int_t) e->ban_until, "ban_reason", str(e->ban_reason));
    /* Serving: what this inbound client is owed (pm_inbound.h). */
    if (!o || json_object_set_new(o, "bytes_owed", json_integer((json_int_t) e->bytes_owed)) != 0 ||
        json_object_set_new(o, "address", json_string(str(e->address))) != 0 ||
        json_object_set_new(o, "direction", json_string(str(e->direction))) != 0) {
        json_decref(o);
        return NULL;
    }
    return o;
}

static int print_json(const peerset_t *set)
{
    json_t *peers = json_array();
    json_t *root = json_pack("{s:s, s:I, s:{s:I, s:I, s:I}}", "strategy", str(set->strategy),
                             "batch_size", (json_int_t) set->batch_size, "book", "new",
                             (json_int_t) set->book_new, "tried", (json_int_t) set->book_tried,
                             "bootstrap", (json_int_t) set->book_bootstrap);
    if (!peers || !root) {
        json_decref(peers);
        json_decref(root);
        return -1;
    }
    for (size_t i = 0; i < set->n_peers; i++) {
        uint32_t t = i < set->n_timeout_ms ? set->timeout_ms[i] : 0;
        json_t *e = entry_json(set->peers[i], t);
        if (!e || json_array_append_new(peers, e) != 0) {
            json_decref(peers);
            json_decref(root);
            return -1;
        }
    }
    json_object_set_new(root, "peers", peers);
    char *text = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    json_decref(root);
    if (!text)
        return -1;
    printf("%s\n", text);
    free(text);
    return 0;
}

/* "until 14:03:22" in local time, or "" when not banned. */
static void format_until(uint64_t ms, char *buf, size_t len)
{
    buf[0] = '\0';
    if (ms == 0)
        return;
    time_t t = (time_t) (ms / 1000);
    struct tm tm;
    if (localtime_r(&t, &tm))
        strftime(buf, len, "until %Y-%m-%d %H:%M:%S", &tm);
}

static void print_table(const peerset_t *set)
{
    printf("strategy %s, batch size %u, %zu entries\n", str(set->strategy), set->batch_size,
           set->n_peers);
    printf("address book: %u new, %u tried, %u bootstrap\n", set->book_new, set->book_tried,
           set->book_bootstrap);
    printf("%-24s %-28s %-3s %-15s %-12s %9s %7s %9s %9s %7s %9s %s\n", "PEER", "ENDPOINT", "DIR",
           "ADDRESS", "STATE", "HEIGHT", "SCORE", "LAT(ms)", "RTT(ms)", "ERR", "OWED(KiB)",
           "BAN / REASON");
    for (size_t i = 0; i < set->n_peers; i++) {
        const Alys__Peer__PeerEntry *e = set->peers[i];
        char until[48], note[200];
        format_until(e->ban_until, until, sizeof until);
        snprintf(note, sizeof note, "%s%s%s", until, until[0] && *str(e->ban_reason) ? " " : "",
                 str(e->ban_reason));
        printf("%-24s %-28s %-3s %-15s %-12s %9llu %7.1f %9.1f %9.1f %7.3f %9llu %s\n",
               *str(e->peer_id) ? e->peer_id : "-", *str(e->endpoint) ? e->endpoint : "-",
               *str(e->direction) ? e->direction : "-", *str(e->address) ? e->address : "-",
               str(e->state), (unsigned long long) e->reported_height, e->score, e->latency_ms,
               e->min_rtt_ms, e->error_rate, (unsigned long long) (e->bytes_owed / 1024), note);
    }
}

int alysctl_peers(const alys_config_t *cfg, int argc, char **argv)
{
    int json = alysctl_json_flag(argc, argv, 1);
    if (json < 0) {
        return alysctl_usage_error("peers", "takes only --json");
    }
    Alys__Peer__GetPeers get = ALYS__PEER__GET_PEERS__INIT;
    Alys__Peer__PeerMsg msg = ALYS__PEER__PEER_MSG__INIT;
    msg.msg_case = ALYS__PEER__PEER_MSG__MSG_GET_PEERS;
    msg.get_peers = &get;
    alys_env_t req = ALYS__BUS__ENVELOPE__INIT;
    req.body_case = ALYS__BUS__ENVELOPE__BODY_PEER;
    req.peer = &msg;
    alys_env_t *reply = NULL;
    if (alysctl_request(cfg->ep_peer_manager, &req, ALYSCTL_TIMEOUT_MS, &reply) != 0) {
        fprintf(stderr, "alysctl: no peer manager answering at %s\n", cfg->ep_peer_manager);
        return 1;
    }
    int rc = 1;
    const char *err = alysctl_reply_error(reply);
    if (err)
        fprintf(stderr, "alysctl: peer manager: %s\n", err);
    else if (reply->body_case != ALYS__BUS__ENVELOPE__BODY_PEER ||
             reply->peer->msg_case != ALYS__PEER__PEER_MSG__MSG_PEER_SET)
        fprintf(stderr, "alysctl: unexpected answer from the peer manager\n");
    else if (json)
        rc = print_json(reply->peer->peer_set) == 0 ? 0 : 1;
    else {
        print_table(reply->peer->peer_set);
        rc = 0;
    }
    alys_env_free(&reply);
    return rc;
}
