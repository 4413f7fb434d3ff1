/*  config_schema.h: the key schema of the config file, private to
 *  common/config*.c (and their unit tests). Actors use config.h only.
 *
 *  config_keys.c holds the one table of every key: its table, type, range,
 *  choices and default. Nothing else in the tree states a default: code that
 *  needs one calls alys_config_defaults (config.h). config_parse.c reads the
 *  TOML subset and stores each value through this table; config.c loads files.
 */
#ifndef ALYS_CONFIG_SCHEMA_H
#define ALYS_CONFIG_SCHEMA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"

/* sizeof(((struct sockaddr_un *)0)->sun_path) - 1 on Linux: the longest ipc://
 * path ZeroMQ can bind. Longer paths only fail at bind time, far from here. */
#define CFG_IPC_PATH_MAX 107

/* Bounds of the tables below, for the parser's per-key arrays; the key table
 * checks them at build time. */
#define CFG_MAX_KEYS   96
#define CFG_MAX_TABLES 16

typedef enum {
    CFG_K_STR,
    CFG_K_ENUM,
    CFG_K_ENDPOINT,
    CFG_K_INT,
    CFG_K_F64,
    CFG_K_BOOL,
    CFG_K_LIST
} cfg_kind_t;

typedef struct {
    const char *table; /* "sync" */
    const char *key;   /* "strategy" */
    const char *name;  /* "sync.strategy", for messages */
    const char *also;  /* a second table the key is accepted in (where the
                                 * design seed put it), or NULL; one place per file */
    cfg_kind_t kind;
    size_t off, size;           /* the field in alys_config_t (LIST: one entry) */
    int64_t imin, imax;         /* INT range; LIST: imax = most entries */
    double fmin, fmax;          /* F64 range */
    const char *const *choices; /* ENUM, NULL-terminated */
    bool nonempty;              /* strings: "" is an error */
    bool resolve;               /* paths: relative ones start at the file's dir */
    size_t count_off;           /* LIST: where the entry count goes */
    const char *sdef;           /* default of a string key ("" if NULL) */
    int64_t idef;               /* default of an INT or BOOL key */
    double fdef;                /* default of an F64 key */
    const char *inert;          /* accepted but without effect: why (told at load) */
} cfg_key_t;

typedef struct {
    const char *lo, *hi; /* key names: lo must be <= (strict: <) hi */
    bool strict;
} cfg_order_rule_t;

size_t cfg_key_count(void);
const cfg_key_t *cfg_key_at(size_t index);
size_t cfg_table_count(void);
const char *cfg_table_at(size_t index);
int cfg_find_table(const char *name);
/* Key `key` accepted in `table` (its own or its `also`); table NULL: any. -1 if none. */
int cfg_find_key(const char *table, const char *key);
/* By its full name "sync.strategy"; -1 if none. */
int cfg_find_key_name(const char *name);
/* The known word closest to `word` (edit distance <= 2), for "did you mean";
 * NULL if none is close. Searches keys' short names, or tables' names. */
const char *cfg_suggest_key(const char *word);
const char *cfg_suggest_table(const char *word);
const cfg_order_rule_t *cfg_order_rules(size_t *count);

/* Every field from the key table's defaults (endpoints left empty). */
void cfg_set_defaults(alys_config_t *cfg);
/* Fills every empty endpoint with ipc://<run_dir>/<name>.sock. The first one
 * that does not fit is named in *bad with its path length in *badlen. */
int cfg_derive_all(alys_config_t *cfg, const char **bad, size_t *badlen);
int64_t cfg_load_int(const alys_config_t *cfg, const cfg_key_t *key);
void cfg_store_int(alys_config_t *cfg, const cfg_key_t *key, int64_t value);

/* config_parse.c: parse text over the defaults, then apply `sets` ("KEY=VALUE"
 * overrides, see alys_config_load_set). from_file: name is a file whose path
 * goes into cfg->path. On error -1, cfg untouched, message in err. */
int cfg_parse_text(alys_config_t *cfg, const char *text, size_t len, const char *name,
                   bool from_file, const char *const *sets, size_t nsets, char *err, size_t errlen);
/* "name: msg" into err (truncated to errlen). */
void cfg_put_err(char *err, size_t errlen, const char *name, const char *msg);

#endif
