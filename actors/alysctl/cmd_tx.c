/*  alysctl tx send --to ADDR --amount N --fee N [--nonce N] --key-file F
 *  alysctl tx submit HEX
 *  alysctl tx status [--json]
 *
 *  send    signs a transfer with the secret key in F (64 hex digits, one
 *          line; a file others can read is refused, as the producer does)
 *          and submits it. ADDR is the recipient's 32-byte x-only public
 *          key in hex. Without --nonce, the sender's account nonce at the
 *          head (GetAccount to StorageActor): right when the sender has
 *          nothing pending in the mempool.
 *  submit  submits one encoded alys.chain.Tx given in hex (alys-loadgen's
 *          output format).
 *  Both go to PeerManager (SubmitTx, proto/mempool.proto), which hands the
 *  tx to the mempool and gossips it if admitted; the answer is printed as
 *  "accepted <tx id>" or "refused: <reason>" (the mempool's reason names).
 *  status  the mempool (GetMempoolStatus to StorageActor): size, bounds,
 *          admitted and refused counts since the storage process started.
 *  Exit: 0 accepted / shown, 1 refused or no answer, 2 usage.
 */
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "alysctl.h"
#include "chain/chain.h"
#include "chain/mempool_tx.h"
#include "cmd_client.h"
#include "util.h"

#define KEY_FILE_MAX 256

static int parse_u64(const char *opt, const char *s, uint64_t *out)
{
    char *end = NULL;
    errno = 0;
    unsigned long long v = (s[0] >= '0' && s[0] <= '9') ? strtoull(s, &end, 10) : 0;
    if (!end || *end || errno == ERANGE)
        return alysctl_usage_error("tx", "%s '%s' is not a non-negative integer", opt, s);
    *out = v;
    return 0;
}

/* The secret key in path: 64 hex digits, an optional newline, mode 0600. */
static int read_key(const char *path, uint8_t sec[ALYS_SECKEY_LEN])
{
    struct stat st;
    if (stat(path, &st) != 0) {
        fprintf(stderr, "alysctl: %s: %s\n", path, strerror(errno));
        return -1;
    }
    if (!S_ISREG(st.st_mode) || (st.st_mode & 077)) {
        fprintf(stderr,
                "alysctl: %s: not a regular file of mode 0600 (the key signs transfers)\n", path);
        return -1;
    }
    FILE *f = fopen(path, "r");
    char buf[KEY_FILE_MAX + 1];
    size_t n = f ? fread(buf, 1, KEY_FILE_MAX, f) : 0;
    if (f)
        fclose(f);
    buf[n] = 0;
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
        buf[--n] = 0;
    int rc = 0;
    if (n != 2 * ALYS_SECKEY_LEN || alys_unhex(buf, sec, ALYS_SECKEY_LEN) != 0) {
        fprintf(stderr, "alysctl: %s: not one secret key in 64 hex digits\n", path);
        rc = -1;
    }
    memset(buf, 0, sizeof buf);
    return rc;
}

static int account_nonce(const alys_config_t *cfg, const uint8_t pub[ALYS_PUBKEY_LEN], uint64_t *nonce)
{
    Alys__Storage__GetAccount ga = ALYS__STORAGE__GET_ACCOUNT__INIT;
    ga.pubkey = (ProtobufCBinaryData){ALYS_PUBKEY_LEN, (uint8_t *) pub};
    Alys__Storage__StorageMsg sm = ALYS__STORAGE__STORAGE_MSG__INIT;
    sm.msg_case = ALYS__STORAGE__STORAGE_MSG__MSG_GET_ACCOUNT;
    sm.get_account = &ga;
    alys_env_t *reply = NULL;
    if (alysctl_storage_request(NULL, cfg->ep_storage, &sm, ALYSCTL_TIMEOUT_MS, &reply) != 0) {
        fprintf(stderr, "alysctl: no StorageActor answering at %s\n", cfg->ep_storage);
        return -1;
    }
    int rc = -1;
    if (reply->body_case == ALYS__BUS__ENVELOPE__BODY_STORAGE &&
        reply->storage->msg_case == ALYS__STORAGE__STORAGE_MSG__MSG_ACCOUNT_STATE) {
        *nonce = reply->storage->account_state->nonce;
        rc = 0;
    } else {
        const char *e = alysctl_reply_error(reply);
        fprintf(stderr, "alysctl: cannot read the sender's nonce: %s\n", e ? e : "unexpected reply");
    }
    alys_env_free(&reply);
    return rc;
}

/* Submit one encoded tx to PeerManager and print the verdict. */
static int submit(const alys_config_t *cfg, const uint8_t *bytes, size_t len)
{
    alys_tx_t tx;
    const char *why = NULL;
    if (alys_tx_decode(bytes, len, &tx, &why) != 0) {
        fprintf(stderr, "alysctl: not a transaction: %s\n", why);
        return 1;
    }
    ProtobufCBinaryData item = {len, (uint8_t *) bytes};
    Alys__Mempool__SubmitTx st = ALYS__MEMPOOL__SUBMIT_TX__INIT;
    st.n_txs = 1;
    st.txs = &item;
    st.origin = "alysctl";
    Alys__Mempool__MempoolMsg msg = ALYS__MEMPOOL__MEMPOOL_MSG__INIT;
    msg.msg_case = ALYS__MEMPOOL__MEMPOOL_MSG__MSG_SUBMIT_TX;
    msg.submit_tx = &st;
    alys_env_t req = ALYS__BUS__ENVELOPE__INIT;
    req.body_case = ALYS__BUS__ENVELOPE__BODY_MEMPOOL;
    req.mempool = &msg;
    alys_env_t *reply = NULL;
    if (alysctl_request(cfg->ep_peer_manager, &req, ALYSCTL_TIMEOUT_MS, &reply) != 0) {
        fprintf(stderr, "alysctl: no PeerManager answering at %s\n", cfg->ep_peer_manager);
        return 1;
    }
    int rc = 1;
    const char *error = alysctl_reply_error(reply);
    if (error) {
        fprintf(stderr, "alysctl: refused: %s\n", error);
    } else if (reply->body_case != ALYS__BUS__ENVELOPE__BODY_MEMPOOL ||
               reply->mempool->msg_case != ALYS__MEMPOOL__MEMPOOL_MSG__MSG_SUBMIT_TX_REPLY ||
               reply->mempool->submit_tx_reply->n_results != 1) {
        fprintf(stderr, "alysctl: unexpected %s reply\n", alys_env_body_name(reply));
    } else {
        const char *r = reply->mempool->submit_tx_reply->results[0];
        alys_hash_t id;
        char hex[2 * ALYS_HASH_LEN + 1];
        alys_tx_id(&tx, id);
        alys_hex(id, ALYS_HASH_LEN, hex);
        if (strcmp(r, "added") == 0 || strcmp(r, "added_evicted") == 0) {
            printf("accepted %s\n", hex);
            rc = 0;
        } else {
            printf("refused: %s (tx %s)\n", r, hex);
        }
    }
    alys_env_free(&reply);
    return rc;
}

typedef struct {
    const char *to, *key_file;
    uint64_t amount, fee, nonce;
    bool has_amount, has_fee, has_nonce;
} send_args_t;

static int parse_send(int argc, char **argv, send_args_t *a)
{
    memset(a, 0, sizeof *a);
    for (int i = 2; i < argc; i++) {
        const char *o = argv[i];
        if (i + 1 >= argc)
            return alysctl_usage_error("tx", "%s needs a value", o);
        const char *v = argv[++i];
        int rc = 0;
        if (strcmp(o, "--to") == 0)
            a->to = v;
        else if (strcmp(o, "--key-file") == 0)
            a->key_file = v;
        else if (strcmp(o, "--amount") == 0)
            rc = parse_u64(o, v, &a->amount), a->has_amount = true;
        else if (strcmp(o, "--fee") == 0)
            rc = parse_u64(o, v, &a->fee), a->has_fee = true;
        else if (strcmp(o, "--nonce") == 0)
            rc = parse_u64(o, v, &a->nonce), a->has_nonce = true;
        else
            return alysctl_usage_error("tx", "unknown option %s", o);
        if (rc)
            return rc;
    }
    if (!a->to || !a->key_file || !a->has_amount || !a->has_fee)
        return alysctl_usage_error("tx", "send needs --to, --amount, --fee and --key-file");
    return 0;
}

static int cmd_send(const alys_config_t *cfg, int argc, char **argv)
{
    send_args_t a;
    int rc = parse_send(argc, argv, &a);
    if (rc)
        return rc;
    alys_tx_t tx;
    memset(&tx, 0, sizeof tx);
    if (strlen(a.to) != 2 * ALYS_PUBKEY_LEN || alys_unhex(a.to, tx.to, ALYS_PUBKEY_LEN) != 0)
        return alysctl_usage_error("tx", "--to wants a 32-byte public key in 64 hex digits");
    uint8_t sec[ALYS_SECKEY_LEN];
    if (read_key(a.key_file, sec) != 0 || alys_keypair_pubkey(sec, tx.from) != 0) {
        memset(sec, 0, sizeof sec);
        fprintf(stderr, "alysctl: %s: not a valid secret key\n", a.key_file);
        return 1;
    }
    tx.amount = a.amount;
    tx.fee = a.fee;
    tx.nonce = a.nonce;
    if (!a.has_nonce && account_nonce(cfg, tx.from, &tx.nonce) != 0) {
        memset(sec, 0, sizeof sec);
        return 1;
    }
    alys_hash_t h;
    alys_tx_hash(&tx, h);
    rc = alys_sign(sec, h, tx.signature);
    memset(sec, 0, sizeof sec);
    if (rc != 0) {
        fprintf(stderr, "alysctl: signing failed\n");
        return 1;
    }
    uint8_t buf[ALYS_TX_MAX_BYTES];
    size_t len = alys_tx_encode(&tx, buf);
    return submit(cfg, buf, len);
}

static int cmd_submit(const alys_config_t *cfg, const char *hex)
{
    size_t n = strlen(hex);
    uint8_t buf[ALYS_TX_MAX_BYTES];
    if (n == 0 || n % 2 || n / 2 > sizeof buf || alys_unhex(hex, buf, n / 2) != 0)
        return alysctl_usage_error("tx", "submit wants one encoded transaction in hex (<= %d bytes)",
                                   ALYS_TX_MAX_BYTES);
    return submit(cfg, buf, n / 2);
}

static void print_status(const Alys__Mempool__MempoolStatus *s, bool json)
{
    if (json) {
        json_t *refused = json_object();
        for (size_t i = 0; refused && i < s->n_refused; i++)
            json_object_set_new(refused, s->refused[i]->reason,
                                json_integer((json_int_t) s->refused[i]->count));
        json_t *o = json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:o, s:I, s:I}", "txs",
                              (json_int_t) s->txs, "bytes", (json_int_t) s->bytes, "senders",
                              (json_int_t) s->senders, "max_txs", (json_int_t) s->max_txs,
                              "max_bytes", (json_int_t) s->max_bytes, "head_height",
                              (json_int_t) s->head_height, "admitted", (json_int_t) s->admitted,
                              "refused", refused ? refused : json_object(), "removed_included",
                              (json_int_t) s->removed_included, "readmitted",
                              (json_int_t) s->readmitted);
        char *text = o ? json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
        if (text)
            printf("%s\n", text);
        free(text);
        json_decref(o);
        return;
    }
    printf("mempool: %" PRIu64 " txs (max %" PRIu64 "), %" PRIu64 " bytes (max %" PRIu64
           "), %" PRIu64 " senders, head %" PRIu64 "\n",
           s->txs, s->max_txs, s->bytes, s->max_bytes, s->senders, s->head_height);
    printf("since start: %" PRIu64 " admitted, %" PRIu64 " left with blocks, %" PRIu64
           " back from undone blocks\n",
           s->admitted, s->removed_included, s->readmitted);
    for (size_t i = 0; i < s->n_refused; i++)
        printf("refused %-22s %" PRIu64 "\n", s->refused[i]->reason, s->refused[i]->count);
}

static int cmd_status(const alys_config_t *cfg, bool json)
{
    Alys__Mempool__GetMempoolStatus gs = ALYS__MEMPOOL__GET_MEMPOOL_STATUS__INIT;
    Alys__Mempool__MempoolMsg msg = ALYS__MEMPOOL__MEMPOOL_MSG__INIT;
    msg.msg_case = ALYS__MEMPOOL__MEMPOOL_MSG__MSG_GET_MEMPOOL_STATUS;
    msg.get_mempool_status = &gs;
    alys_env_t req = ALYS__BUS__ENVELOPE__INIT;
    req.body_case = ALYS__BUS__ENVELOPE__BODY_MEMPOOL;
    req.mempool = &msg;
    alys_env_t *reply = NULL;
    if (alysctl_request(cfg->ep_storage, &req, ALYSCTL_TIMEOUT_MS, &reply) != 0) {
        fprintf(stderr, "alysctl: no StorageActor answering at %s\n", cfg->ep_storage);
        return 1;
    }
    int rc = 1;
    const char *error = alysctl_reply_error(reply);
    if (error)
        fprintf(stderr, "alysctl: storage refused: %s\n", error);
    else if (reply->body_case != ALYS__BUS__ENVELOPE__BODY_MEMPOOL ||
             reply->mempool->msg_case != ALYS__MEMPOOL__MEMPOOL_MSG__MSG_MEMPOOL_STATUS)
        fprintf(stderr, "alysctl: unexpected %s reply\n", alys_env_body_name(reply));
    else {
        print_status(reply->mempool->mempool_status, json);
        rc = 0;
    }
    alys_env_free(&reply);
    return rc;
}

int alysctl_tx(const alys_config_t *cfg, int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "send") == 0)
        return cmd_send(cfg, argc, argv);
    if (argc == 3 && strcmp(argv[1], "submit") == 0)
        return cmd_submit(cfg, argv[2]);
    if (argc >= 2 && strcmp(argv[1], "status") == 0) {
        int json = alysctl_json_flag(argc, argv, 2);
        if (json < 0)
            return alysctl_usage_error("tx", "status takes only --json");
        return cmd_status(cfg, json == 1);
    }
    if (argc < 2)
        return alysctl_usage_error("tx", "send, submit HEX or status expected");
    return alysctl_bad_args("tx", argc, argv);
}
