/* Options: one table per tool holds each setting once (name, type, default,
 * help); the command line (--kebab-case), the config file (`name = value`),
 * environment variables (for secrets) and --help all come from it.
 *
 * Precedence, lowest first: table default < config file (--config FILE)
 * < environment variable named in the table < command line.
 * Repeatable options (LIST, KV) accumulate across config and command line. */
#ifndef SM_OPT_H
#define SM_OPT_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

enum sm_opt_type {
    SM_OPT_STR,       /* char * (sm_malloc'd, freed by sm_opts_free) */
    SM_OPT_INT,       /* int64_t */
    SM_OPT_BOOL,      /* bool; "--x" sets true, "--no-x" false, "--x=false" */
    SM_OPT_SIZE,      /* uint64_t bytes: 64KiB, 1MiB, 2GiB */
    SM_OPT_DURATION,  /* uint64_t milliseconds: 250ms, 1s, 5m */
    SM_OPT_DOUBLE,    /* double */
    SM_OPT_LIST,      /* struct sm_strlist: repeatable, also comma-separated */
    SM_OPT_KV,        /* struct sm_strlist of "key=value": repeatable */
};

enum sm_opt_flags {
    SM_OPT_SECRET = 1u << 0,   /* never echoed; warn when given on the command line */
    SM_OPT_HIDDEN = 1u << 1,   /* not in --help */
};

struct sm_strlist { char **v; size_t n; };

struct sm_opt {
    const char *name;          /* long name without "--", also the config key */
    enum sm_opt_type type;
    size_t off;                /* offsetof(config struct, field) */
    const char *def;           /* default as text, NULL for none */
    const char *help;
    const char *env;           /* environment variable that may supply it, or NULL */
    unsigned flags;
    const char *metavar;       /* shown in --help, e.g. "FILE"; NULL: from type */
};

#define SM_OPT_END { NULL, 0, 0, NULL, NULL, NULL, 0, NULL }

struct sm_cli {
    const char *prog;          /* "searchmig-agent" */
    const char *usage;         /* "[OPTIONS]" or "COMMAND [OPTIONS]" */
    const char *summary;       /* one paragraph shown under usage */
    const struct sm_opt *opts;
    bool allow_config;         /* accept --config FILE */
};

/* Applies defaults to cfg. */
int sm_opts_defaults(const struct sm_opt *opts, void *cfg, char *err, size_t errlen);
/* Sets one option from text; name as in the table. */
int sm_opts_set(const struct sm_opt *opts, void *cfg, const char *name, const char *val,
                char *err, size_t errlen);
/* Reads `key = value` lines (# comments, blank lines, optional quotes). Unknown
 * keys are an error that names the closest known key. */
int sm_opts_load_file(const struct sm_opt *opts, void *cfg, const char *path,
                      char *err, size_t errlen);
/* Full parse: defaults, --config, environment, command line. --help and
 * --version (and --check-config) are handled here: they print and return
 * SM_EEOF (caller exits 0).
 * Non-option arguments are collected into *pos (may be NULL to forbid them).
 * "--" ends options. */
int sm_opts_parse(const struct sm_cli *cli, void *cfg, int argc, char **argv,
                  struct sm_strlist *pos, char *err, size_t errlen);
/* Applies the environment variables named in the table (set and non-empty)
 * to cfg; sm_opts_parse() does this between the config file and the command
 * line, tools with their own config formats call it themselves. */
int sm_opts_apply_env(const struct sm_opt *opts, void *cfg, char *err, size_t errlen);
void sm_opts_help(const struct sm_cli *cli, FILE *out);
/* Prints every (non-hidden) setting as `name = value` lines, secrets as
 * "(set)". --check-config (tools with allow_config) prints this after the
 * full parse and returns SM_EEOF. */
void sm_opts_print(const struct sm_opt *opts, const void *cfg, FILE *out);
void sm_opts_free(const struct sm_opt *opts, void *cfg);

int  sm_strlist_push(struct sm_strlist *l, const char *s);
void sm_strlist_free(struct sm_strlist *l);
/* For a KV list: value of key, or NULL. */
const char *sm_strlist_kv_get(const struct sm_strlist *l, const char *key);

/* Reads a secret: if value starts with "@" or "file:" it is read from that
 * file (trailing newline stripped). Returns sm_malloc'd string or NULL. */
char *sm_secret_resolve(const char *value, char *err, size_t errlen);

extern const char sm_version_string[];   /* "0.1.0 (git abc123)" */

#endif
