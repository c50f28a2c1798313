/* Endpoint grouping: "METHOD /path" with index names, ids and other
 * user-chosen names generalised, system API words kept literal. */
#include "compare/compare.h"

#include <stdio.h>
#include <string.h>

#define MAX_SEGS 12

struct ep_out {
    char *p;
    size_t left;
};

static void put(struct ep_out *o, const char *s, size_t n)
{
    if (!o->left)
        return;
    size_t k = n < o->left - 1 ? n : o->left - 1;
    memcpy(o->p, s, k);
    o->p += k;
    o->left -= k;
    *o->p = 0;
}

static bool is_word(const char *s, size_t n, const char *const *words)
{
    for (size_t i = 0; words[i]; i++)
        if (words[i][0] == s[0] && strlen(words[i]) == n && !memcmp(words[i], s, n))
            return true;
    return false;
}

/* words that appear literally after a system segment */
static const char *const sys_words[] = {
    "health", "state", "settings", "stats", "pipeline", "scroll", "allocation", "explain", "reroute",
    "pending_tasks", "indices", "count", "nodes", "shards", "segments", "recovery", "aliases", "templates",
    "thread_pool", "master", "cluster_manager", "plugins", "tasks", "fielddata", "info", "usage", "hot_threads",
    "verify", "status", "metadata", "routing_table", "blocks", "version", "process", "jvm", "os", "fs",
    "transport", "http", "breaker", "ingest", "discovery", "reload_secure_settings", "simulate",
    "repositories", "snapshots", "nodeattrs", "component_templates", "allocation_explain", "decommission",
    "weighted_routing", "voting_config_exclusions", "local", NULL,
};

/* index-level APIs whose next segment is a document id */
static const char *const doc_apis[] = {
    "_doc", "_create", "_update", "_source", "_explain", "_termvectors", NULL,
};

void replay_cmp_endpoint(const char *method, const char *uri, char *out, size_t outlen)
{
    struct ep_out o = { out, outlen };
    if (outlen)
        out[0] = 0;
    put(&o, method && *method ? method : "?", strlen(method && *method ? method : "?"));
    put(&o, " ", 1);
    if (!uri)
        uri = "";
    size_t plen = strcspn(uri, "?#");
    const char *seg[MAX_SEGS];
    size_t slen[MAX_SEGS], n = 0;
    const char *p = uri, *end = uri + plen;
    bool more = false;
    while (p < end) {
        while (p < end && *p == '/')
            p++;
        if (p >= end)
            break;
        const char *s = p;
        while (p < end && *p != '/')
            p++;
        if (n == MAX_SEGS) {
            more = true;
            break;
        }
        seg[n] = s;
        slen[n++] = (size_t)(p - s);
    }
    if (!n) {
        put(&o, "/", 1);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        const char *s = seg[i];
        size_t l = slen[i];
        bool us = s[0] == '_';
        const char *name = NULL;   /* placeholder, or NULL: literal */
        if (i == 0) {
            if (!us)
                name = "{index}";
        } else if (seg[0][0] != '_') {
            /* /{index}/... */
            const char *prev = seg[i - 1];
            size_t pl = slen[i - 1];
            if (us)
                name = NULL;
            else if (is_word(prev, pl, doc_apis))
                name = "{id}";
            else if ((pl == 6 && !memcmp(prev, "_alias", 6)) || (pl == 8 && !memcmp(prev, "_aliases", 8)))
                name = "{name}";
            else if (pl == 8 && !memcmp(prev, "_mapping", 8))
                name = "{type}";
            else if (i == 1)
                name = "{type}";   /* ES 6: /{index}/{type}/... */
            else if (i == 2 && seg[1][0] != '_')
                name = "{id}";     /* ES 6: /{index}/{type}/{id} */
            else
                name = "{name}";
        } else {
            /* system endpoint */
            size_t fl = slen[0];
            bool cat = fl == 4 && !memcmp(seg[0], "_cat", 4);
            bool cluster = fl == 8 && !memcmp(seg[0], "_cluster", 8);
            if (us)
                name = NULL;
            else if (cat)
                name = i == 1 ? NULL : "{index}";
            else if (cluster && i == 2 && slen[1] == 6 && !memcmp(seg[1], "health", 6))
                name = "{index}";
            else if (cluster && i == 3 && slen[1] == 5 && !memcmp(seg[1], "state", 5))
                name = "{index}";
            else if (is_word(s, l, sys_words))
                name = NULL;
            else if (fl == 6 && !memcmp(seg[0], "_nodes", 6))
                name = "{node}";
            else
                name = "{name}";
        }
        put(&o, "/", 1);
        if (name)
            put(&o, name, strlen(name));
        else
            put(&o, s, l);
    }
    if (more)
        put(&o, "/...", 4);
}
