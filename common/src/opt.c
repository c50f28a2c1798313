#include <sm/opt.h>
#include <sm/err.h>
#include <sm/log.h>
#include <sm/mem.h>
#include <sm/util.h>
#include "sm_version.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

const char sm_version_string[] = SM_VERSION;

#define FIELD(cfg, o, T) ((T *)((char *)(cfg) + (o)->off))

int sm_strlist_push(struct sm_strlist *l, const char *s)
{
    char **nv = sm_realloc(l->v, (l->n + 2) * sizeof(*nv));
    if (!nv)
        return SM_ENOMEM;
    l->v = nv;
    if (!(l->v[l->n] = sm_strdup(s)))
        return SM_ENOMEM;
    l->n++;
    l->v[l->n] = NULL;
    return SM_OK;
}

void sm_strlist_free(struct sm_strlist *l)
{
    for (size_t i = 0; i < l->n; i++)
        sm_free(l->v[i]);
    sm_free(l->v);
    l->v = NULL;
    l->n = 0;
}

const char *sm_strlist_kv_get(const struct sm_strlist *l, const char *key)
{
    size_t kl = strlen(key);
    const char *found = NULL;
    for (size_t i = 0; i < l->n; i++)
        if (!strncmp(l->v[i], key, kl) && l->v[i][kl] == '=')
            found = l->v[i] + kl + 1;   /* last one wins */
    return found;
}

static const struct sm_opt *find_opt(const struct sm_opt *opts, const char *name, size_t n)
{
    for (const struct sm_opt *o = opts; o->name; o++)
        if (strlen(o->name) == n && !strncmp(o->name, name, n))
            return o;
    return NULL;
}

static const char *closest(const struct sm_opt *opts, const char *name)
{
    const char *best = NULL;
    size_t bestd = 4;
    for (const struct sm_opt *o = opts; o->name; o++) {
        size_t d = sm_edit_distance(o->name, name);
        if (d < bestd) {
            bestd = d;
            best = o->name;
        }
    }
    return best;
}

static int unknown(const struct sm_opt *opts, const char *what, const char *name, char *err, size_t errlen)
{
    const char *c = closest(opts, name);
    if (c)
        return sm_errf(err, errlen, SM_ECONFIG, "unknown %s '%s' (did you mean '%s'?)", what, name, c);
    return sm_errf(err, errlen, SM_ECONFIG, "unknown %s '%s'", what, name);
}

static int set_value(const struct sm_opt *o, void *cfg, const char *val, char *err, size_t errlen)
{
    int rc = SM_OK;
    switch (o->type) {
    case SM_OPT_STR: {
        char **p = FIELD(cfg, o, char *);
        char *n = val ? sm_strdup(val) : NULL;
        if (val && !n)
            return SM_ENOMEM;
        sm_free(*p);
        *p = n;
        return SM_OK;
    }
    case SM_OPT_INT:
        rc = sm_parse_i64(val, INT64_MIN, INT64_MAX, FIELD(cfg, o, int64_t));
        break;
    case SM_OPT_BOOL:
        rc = sm_parse_bool(val, FIELD(cfg, o, bool));
        break;
    case SM_OPT_SIZE:
        rc = sm_parse_size(val, FIELD(cfg, o, uint64_t));
        break;
    case SM_OPT_DURATION:
        rc = sm_parse_duration_ms(val, FIELD(cfg, o, uint64_t));
        break;
    case SM_OPT_DOUBLE:
        rc = sm_parse_double(val, FIELD(cfg, o, double));
        break;
    case SM_OPT_LIST: {
        struct sm_strlist *l = FIELD(cfg, o, struct sm_strlist);
        const char *p = val;
        while (*p) {
            size_t n = strcspn(p, ",");
            char *item = sm_strndup(p, n);
            if (!item)
                return SM_ENOMEM;
            if (n)
                rc = sm_strlist_push(l, item);
            sm_free(item);
            if (rc)
                return rc;
            p += n;
            if (*p == ',')
                p++;
        }
        return SM_OK;
    }
    case SM_OPT_KV:
        if (!strchr(val, '=') || val[0] == '=')
            return sm_errf(err, errlen, SM_ECONFIG, "--%s expects key=value, got '%s'", o->name, val);
        return sm_strlist_push(FIELD(cfg, o, struct sm_strlist), val);
    }
    if (rc) {
        static const char *const want[] = { "text", "an integer", "true or false",
                                            "a size such as 64KiB or 1GiB",
                                            "a duration such as 250ms, 5s or 2m", "a number",
                                            "a list", "key=value" };
        return sm_errf(err, errlen, SM_ECONFIG, "--%s: '%s' is not %s", o->name, val, want[o->type]);
    }
    return SM_OK;
}

int sm_opts_defaults(const struct sm_opt *opts, void *cfg, char *err, size_t errlen)
{
    for (const struct sm_opt *o = opts; o->name; o++)
        if (o->def) {
            int rc = set_value(o, cfg, o->def, err, errlen);
            if (rc)
                return rc;
        }
    return SM_OK;
}

int sm_opts_set(const struct sm_opt *opts, void *cfg, const char *name, const char *val,
                char *err, size_t errlen)
{
    const struct sm_opt *o = find_opt(opts, name, strlen(name));
    if (!o)
        return unknown(opts, "option", name, err, errlen);
    return set_value(o, cfg, val, err, errlen);
}

static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    char *e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1]))
        *--e = 0;
    return s;
}

int sm_opts_load_file(const struct sm_opt *opts, void *cfg, const char *path, char *err, size_t errlen)
{
    uint8_t *data;
    size_t len;
    int rc = sm_read_file(path, 1 << 20, &data, &len);
    if (rc)
        return sm_errf(err, errlen, SM_ECONFIG, "config %s: %s", path, sm_strerror(rc));
    char *save = NULL;
    int lineno = 0;
    char *text = (char *)data;
    for (char *line = text; line; line = save) {
        save = strchr(line, '\n');
        if (save)
            *save++ = 0;
        lineno++;
        char *s = trim(line);
        if (!*s || *s == '#' || *s == ';')
            continue;
        char *eq = strchr(s, '=');
        if (!eq) {
            rc = sm_errf(err, errlen, SM_ECONFIG, "%s:%d: expected 'key = value'", path, lineno);
            break;
        }
        *eq = 0;
        char *key = trim(s), *val = trim(eq + 1);
        size_t vl = strlen(val);
        if (vl >= 2 && ((val[0] == '"' && val[vl - 1] == '"') || (val[0] == '\'' && val[vl - 1] == '\''))) {
            val[vl - 1] = 0;
            val++;
        }
        const struct sm_opt *o = find_opt(opts, key, strlen(key));
        if (!o || !strcmp(key, "config")) {
            char sub[256];
            unknown(opts, "key", key, sub, sizeof(sub));
            rc = sm_errf(err, errlen, SM_ECONFIG, "%s:%d: %s", path, lineno, sub);
            break;
        }
        char sub[256];
        rc = set_value(o, cfg, val, sub, sizeof(sub));
        if (rc) {
            sm_errf(err, errlen, rc, "%s:%d: %s", path, lineno, sub);
            break;
        }
    }
    sm_free(data);
    return rc;
}

static const char *metavar(const struct sm_opt *o)
{
    if (o->metavar)
        return o->metavar;
    static const char *const mv[] = { "TEXT", "N", "", "SIZE", "DURATION", "X", "LIST", "KEY=VALUE" };
    return mv[o->type];
}

void sm_opts_print(const struct sm_opt *opts, const void *cfg, FILE *out)
{
    for (const struct sm_opt *o = opts; o->name; o++) {
        if (o->flags & SM_OPT_HIDDEN)
            continue;
        const void *base = cfg;
        switch (o->type) {
        case SM_OPT_STR: {
            const char *v = *(char *const *)((const char *)base + o->off);
            if (v)
                fprintf(out, "%s = %s\n", o->name, (o->flags & SM_OPT_SECRET) ? "(set)" : v);
            break;
        }
        case SM_OPT_INT:
            fprintf(out, "%s = %lld\n", o->name, (long long)*(const int64_t *)((const char *)base + o->off));
            break;
        case SM_OPT_BOOL:
            fprintf(out, "%s = %s\n", o->name, *(const bool *)((const char *)base + o->off) ? "true" : "false");
            break;
        case SM_OPT_SIZE:
            fprintf(out, "%s = %llu\n", o->name,
                    (unsigned long long)*(const uint64_t *)((const char *)base + o->off));
            break;
        case SM_OPT_DURATION:
            fprintf(out, "%s = %llums\n", o->name,
                    (unsigned long long)*(const uint64_t *)((const char *)base + o->off));
            break;
        case SM_OPT_DOUBLE:
            fprintf(out, "%s = %g\n", o->name, *(const double *)((const char *)base + o->off));
            break;
        case SM_OPT_LIST:
        case SM_OPT_KV: {
            const struct sm_strlist *l = (const struct sm_strlist *)((const char *)base + o->off);
            for (size_t i = 0; i < l->n; i++)
                fprintf(out, "%s = %s\n", o->name, (o->flags & SM_OPT_SECRET) ? "(set)" : l->v[i]);
            break;
        }
        }
    }
}

void sm_opts_help(const struct sm_cli *cli, FILE *out)
{
    fprintf(out, "Usage: %s %s\n", cli->prog, cli->usage ? cli->usage : "[OPTIONS]");
    if (cli->summary)
        fprintf(out, "\n%s\n", cli->summary);
    fprintf(out, "\nOptions:\n");
    for (const struct sm_opt *o = cli->opts; o->name; o++) {
        if (o->flags & SM_OPT_HIDDEN)
            continue;
        char left[96];
        if (o->type == SM_OPT_BOOL)
            snprintf(left, sizeof(left), "--%s", o->name);
        else
            snprintf(left, sizeof(left), "--%s %s", o->name, metavar(o));
        fprintf(out, "  %-34s %s", left, o->help ? o->help : "");
        if (o->def && *o->def && !(o->flags & SM_OPT_SECRET))
            fprintf(out, " [default: %s]", o->def);
        if (o->type == SM_OPT_LIST || o->type == SM_OPT_KV)
            fprintf(out, " (repeatable)");
        if (o->env)
            fprintf(out, " (env %s)", o->env);
        fputc('\n', out);
    }
    if (cli->allow_config) {
        fprintf(out, "  %-34s %s\n", "--config FILE",
                "read settings from FILE: one 'option-name = value' per line");
        fprintf(out, "  %-34s %s\n", "--check-config",
                "check the settings (config file, environment, command line), print them and exit");
    }
    fprintf(out, "  %-34s %s\n", "--help", "show this help and exit");
    fprintf(out, "  %-34s %s\n", "--version", "show the version and exit");
}

void sm_opts_free(const struct sm_opt *opts, void *cfg)
{
    for (const struct sm_opt *o = opts; o->name; o++) {
        if (o->type == SM_OPT_STR) {
            char **p = FIELD(cfg, o, char *);
            sm_free(*p);
            *p = NULL;
        } else if (o->type == SM_OPT_LIST || o->type == SM_OPT_KV) {
            sm_strlist_free(FIELD(cfg, o, struct sm_strlist));
        }
    }
}

int sm_opts_apply_env(const struct sm_opt *opts, void *cfg, char *err, size_t errlen)
{
    for (const struct sm_opt *o = opts; o->name; o++) {
        const char *v = o->env ? getenv(o->env) : NULL;
        int rc;
        if (v && *v && (rc = set_value(o, cfg, v, err, errlen)))
            return rc;
    }
    return SM_OK;
}

int sm_opts_parse(const struct sm_cli *cli, void *cfg, int argc, char **argv,
                  struct sm_strlist *pos, char *err, size_t errlen)
{
    const struct sm_opt *opts = cli->opts;
    int rc = sm_opts_defaults(opts, cfg, err, errlen);
    if (rc)
        return rc;

    /* pass 1: --help, --version, --config */
    bool check = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--"))
            break;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            sm_opts_help(cli, stdout);
            return SM_EEOF;
        }
        if (!strcmp(a, "--version")) {
            printf("%s %s\n", cli->prog, sm_version_string);
            return SM_EEOF;
        }
        if (cli->allow_config && !strcmp(a, "--check-config"))
            check = true;
        if (cli->allow_config && (!strcmp(a, "--config") || !strncmp(a, "--config=", 9))) {
            const char *path = a[8] == '=' ? a + 9 : (i + 1 < argc ? argv[++i] : NULL);
            if (!path)
                return sm_errf(err, errlen, SM_ECONFIG, "--config needs a FILE");
            if ((rc = sm_opts_load_file(opts, cfg, path, err, errlen)))
                return rc;
        }
    }
    /* pass 2: environment variables */
    if ((rc = sm_opts_apply_env(opts, cfg, err, errlen)))
        return rc;
    /* pass 3: command line */
    bool opts_done = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (opts_done || a[0] != '-' || a[1] == '\0') {
            if (!pos)
                return sm_errf(err, errlen, SM_ECONFIG, "unexpected argument '%s'", a);
            if ((rc = sm_strlist_push(pos, a)))
                return rc;
            continue;
        }
        if (!strcmp(a, "--")) {
            opts_done = true;
            continue;
        }
        if (a[1] != '-')
            return sm_errf(err, errlen, SM_ECONFIG, "unknown option '%s' (options are --long-names)", a);
        const char *name = a + 2;
        const char *eq = strchr(name, '=');
        size_t nl = eq ? (size_t)(eq - name) : strlen(name);
        if (cli->allow_config && nl == 6 && !strncmp(name, "config", 6)) {
            if (!eq)
                i++;
            continue;
        }
        if (cli->allow_config && !strcmp(a, "--check-config"))
            continue;
        const struct sm_opt *o = find_opt(opts, name, nl);
        const char *val = eq ? eq + 1 : NULL;
        if (!o && nl > 3 && !strncmp(name, "no-", 3)) {
            o = find_opt(opts, name + 3, nl - 3);
            if (o && o->type == SM_OPT_BOOL && !eq) {
                *FIELD(cfg, o, bool) = false;
                continue;
            }
            o = NULL;
        }
        if (!o) {
            char nm[128];
            snprintf(nm, sizeof(nm), "--%.*s", (int)(nl < 100 ? nl : 100), name);
            const char *c = closest(opts, nm + 2);
            if (c)
                return sm_errf(err, errlen, SM_ECONFIG, "unknown option '%s' (did you mean '--%s'?)", nm, c);
            return sm_errf(err, errlen, SM_ECONFIG, "unknown option '%s'; see --help", nm);
        }
        if (o->type == SM_OPT_BOOL && !val) {
            *FIELD(cfg, o, bool) = true;
            continue;
        }
        if (!val) {
            if (i + 1 >= argc)
                return sm_errf(err, errlen, SM_ECONFIG, "--%s needs a value (%s)", o->name, metavar(o));
            val = argv[++i];
        }
        if (o->flags & SM_OPT_SECRET)
            sm_log_warn("--%s given on the command line is visible to other users; prefer %s%s",
                        o->name, o->env ? "the environment variable " : "a config file",
                        o->env ? o->env : "");
        if ((rc = set_value(o, cfg, val, err, errlen)))
            return rc;
    }
    if (check) {   /* like `nginx -t`: every setting parsed; show what would be used */
        sm_opts_print(opts, cfg, stdout);
        printf("%s: configuration ok\n", cli->prog);
        return SM_EEOF;
    }
    return SM_OK;
}

char *sm_secret_resolve(const char *value, char *err, size_t errlen)
{
    if (!value)
        return NULL;
    const char *path = NULL;
    if (value[0] == '@')
        path = value + 1;
    else if (!strncmp(value, "file:", 5))
        path = value + 5;
    if (!path)
        return sm_strdup(value);
    uint8_t *data;
    size_t len;
    int rc = sm_read_file(path, 1 << 16, &data, &len);
    if (rc) {
        sm_errf(err, errlen, rc, "secret file %s: %s", path, sm_strerror(rc));
        return NULL;
    }
    while (len && (data[len - 1] == '\n' || data[len - 1] == '\r'))
        data[--len] = 0;
    return (char *)data;
}
