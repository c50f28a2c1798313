/* Request filters and header redaction (see filter.h). */
#define _GNU_SOURCE
#include "record/filter.h"

#include <sm/err.h>
#include <sm/mem.h>

#include <regex.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

struct agent_filter {
    regex_t *capture, *suppress;
    size_t ncapture, nsuppress;
    struct sm_strlist cmethods, smethods, redact;
};

static int compile(const struct sm_strlist *l, regex_t **out, size_t *n, char *err, size_t errlen)
{
    *n = 0;
    if (!l || !l->n)
        return SM_OK;
    *out = sm_calloc(l->n, sizeof(regex_t));
    if (!*out)
        return sm_errf(err, errlen, SM_ENOMEM, "filter: out of memory");
    for (size_t i = 0; i < l->n; i++) {
        int rc = regcomp(&(*out)[i], l->v[i], REG_EXTENDED | REG_NOSUB);
        if (rc) {
            char msg[128];
            regerror(rc, &(*out)[i], msg, sizeof(msg));
            return sm_errf(err, errlen, SM_ECONFIG, "path pattern '%s': %s", l->v[i], msg);
        }
        (*n)++;
    }
    return SM_OK;
}

static int copy_list(struct sm_strlist *dst, const struct sm_strlist *src)
{
    if (!src)
        return SM_OK;
    for (size_t i = 0; i < src->n; i++)
        if (sm_strlist_push(dst, src->v[i]))
            return SM_ENOMEM;
    return SM_OK;
}

struct agent_filter *agent_filter_new(const struct agent_filter_conf *conf, char *err, size_t errlen)
{
    struct agent_filter *f = sm_calloc(1, sizeof(*f));
    if (!f) {
        sm_errf(err, errlen, SM_ENOMEM, "filter: out of memory");
        return NULL;
    }
    if (compile(conf->capture_paths, &f->capture, &f->ncapture, err, errlen) ||
        compile(conf->suppress_paths, &f->suppress, &f->nsuppress, err, errlen))
        goto fail;
    if (copy_list(&f->cmethods, conf->capture_methods) || copy_list(&f->smethods, conf->suppress_methods) ||
        copy_list(&f->redact, conf->redact_headers)) {
        sm_errf(err, errlen, SM_ENOMEM, "filter: out of memory");
        goto fail;
    }
    return f;
fail:
    agent_filter_free(f);
    return NULL;
}

void agent_filter_free(struct agent_filter *f)
{
    if (!f)
        return;
    for (size_t i = 0; i < f->ncapture; i++)
        regfree(&f->capture[i]);
    for (size_t i = 0; i < f->nsuppress; i++)
        regfree(&f->suppress[i]);
    sm_free(f->capture);
    sm_free(f->suppress);
    sm_strlist_free(&f->cmethods);
    sm_strlist_free(&f->smethods);
    sm_strlist_free(&f->redact);
    sm_free(f);
}

static bool in_list(const struct sm_strlist *l, const char *s)
{
    for (size_t i = 0; i < l->n; i++)
        if (!strcmp(l->v[i], s))
            return true;
    return false;
}

static bool any_match(const regex_t *re, size_t n, const char *path)
{
    for (size_t i = 0; i < n; i++)
        if (regexec(&re[i], path, 0, NULL, 0) == 0)
            return true;
    return false;
}

bool agent_filter_suppress(const struct agent_filter *f, const char *method, const char *target,
                           size_t target_len)
{
    if (!f)
        return false;
    if (method && f->cmethods.n && !in_list(&f->cmethods, method))
        return true;
    if (method && in_list(&f->smethods, method))
        return true;
    if (!f->ncapture && !f->nsuppress)
        return false;
    /* the path: absolute-form loses scheme and authority, then the query */
    const char *t = target ? target : "";
    size_t n = target ? target_len : 0;
    const char *ss = n > 8 ? memmem(t, n, "://", 3) : NULL;
    if (ss && t[0] != '/') {
        const char *slash = memchr(ss + 3, '/', n - (size_t)(ss + 3 - t));
        n = slash ? n - (size_t)(slash - t) : 0;
        t = slash ? slash : "";
    }
    const char *qm = memchr(t, '?', n);
    if (qm)
        n = (size_t)(qm - t);
    char path[2048];
    if (n >= sizeof(path))
        n = sizeof(path) - 1;
    memcpy(path, t, n);
    path[n] = 0;
    if (f->ncapture && !any_match(f->capture, f->ncapture, path))
        return true;
    return any_match(f->suppress, f->nsuppress, path);
}

bool agent_filter_redacts(const struct agent_filter *f)
{
    return f && f->redact.n > 0;
}

static bool redacted_name(const struct agent_filter *f, const uint8_t *name, size_t n)
{
    for (size_t i = 0; i < f->redact.n; i++)
        if (strlen(f->redact.v[i]) == n && !strncasecmp(f->redact.v[i], (const char *)name, n))
            return true;
    return false;
}

int agent_filter_redact(const struct agent_filter *f, const uint8_t *head, size_t len,
                        size_t first_line_len, struct sm_buf *out)
{
    sm_buf_reset(out);
    int rc = sm_buf_append(out, head, first_line_len);
    if (rc)
        return rc;
    int count = 0;
    bool folding = false;   /* continuation lines of a redacted header are dropped */
    size_t i = first_line_len;
    while (i < len) {
        const uint8_t *lf = memchr(head + i, '\n', len - i);
        size_t end = lf ? (size_t)(lf - head) + 1 : len;   /* line incl. its LF */
        const uint8_t *line = head + i;
        size_t ll = end - i;
        if (folding && (line[0] == ' ' || line[0] == '\t')) {
            i = end;
            continue;
        }
        folding = false;
        const uint8_t *colon = memchr(line, ':', ll);
        if (colon && redacted_name(f, line, (size_t)(colon - line))) {
            size_t eol = ll;   /* keep the line ending as it was */
            if (eol && line[eol - 1] == '\n')
                eol--;
            if (eol && line[eol - 1] == '\r')
                eol--;
            size_t v = (size_t)(colon - line) + 1;
            while (v < eol && (line[v] == ' ' || line[v] == '\t'))
                v++;
            if ((rc = sm_buf_append(out, line, v)) || (rc = sm_buf_append_str(out, AGENT_FILTER_REDACTED)) ||
                (rc = sm_buf_append(out, line + eol, ll - eol)))
                return rc;
            count++;
            folding = true;
        } else if ((rc = sm_buf_append(out, line, ll))) {
            return rc;
        }
        i = end;
    }
    return count;
}
