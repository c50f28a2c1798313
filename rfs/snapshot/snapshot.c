/* Snapshot repository reader (snapshot.h). Format notes: docs/snapshot-reader.md. */
#include "snapshot/snapshot.h"

#include "repo/codec.h"

#include <sm/err.h>
#include <sm/log.h>
#include <sm/mem.h>
#include <sm/util.h>

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_PARTS 1000000u

struct snap_entry {
    struct rfs_snapshot_info info;
    enum rfs_repo_layout layout;   /* per snapshot: V1/V2 share the root `index` */
    char *key;                     /* name (V1/V2) or uuid (V5): used in blob names */
    json_t *lookup;                /* index_metadata_lookup (borrowed from data) or NULL */
};

struct rfs_repo {
    struct rfs_dir *dir;
    enum rfs_repo_layout layout;
    int64_t gen;
    json_t *data;
    size_t nsnaps;
    struct snap_entry *snaps;
};

struct idx_entry {
    char *name;
    json_t *repo_index;            /* indices.<name> from RepositoryData (V5), borrowed */
    struct rfs_index_info *info;   /* lazily loaded */
};

struct rfs_snapshot {
    struct rfs_repo *repo;
    size_t si;
    size_t nidx;
    struct idx_entry *idx;
    json_t *global;
};

/* ---------- small helpers ---------- */

const char *rfs_snapshot_state_name(int state)
{
    switch (state) {
    case RFS_SNAP_IN_PROGRESS: return "IN_PROGRESS";
    case RFS_SNAP_SUCCESS: return "SUCCESS";
    case RFS_SNAP_FAILED: return "FAILED";
    case RFS_SNAP_PARTIAL: return "PARTIAL";
    case RFS_SNAP_INCOMPATIBLE: return "INCOMPATIBLE";
    default: return "UNKNOWN";
    }
}

static int state_from_name(const char *s)
{
    static const char *names[] = { "IN_PROGRESS", "SUCCESS", "FAILED", "PARTIAL", "INCOMPATIBLE" };
    for (size_t i = 0; s && i < SM_ARRAY_LEN(names); i++)
        if (!strcmp(s, names[i]))
            return (int)i;
    return RFS_SNAP_UNKNOWN;
}

bool rfs_version_is_opensearch(uint32_t id)
{
    return (id & 0x08000000u) != 0;
}

int rfs_version_major(uint32_t id)
{
    return (int)((id & ~0x08000000u) / 1000000u);
}

const char *rfs_version_format(uint32_t id, char *buf, size_t len)
{
    uint32_t v = id & ~0x08000000u;
    if (!rfs_version_is_opensearch(id) && v >= RFS_INDEX_VERSION_DETACHED) {
        /* Elasticsearch 8.11+ numbers index versions apart from releases
         * (8_500_000 up; 9_000_000 up for 9.x): the release is not in the id */
        if (v < 9000000u)
            snprintf(buf, len, "8.11+ (index version %u)", v);
        else
            snprintf(buf, len, "%u.0+ (index version %u)", v / 1000000u, v);
        return buf;
    }
    snprintf(buf, len, "%u.%u.%u", v / 1000000u, v / 10000u % 100u, v / 100u % 100u);
    return buf;
}

const char *rfs_version_product(uint32_t id)
{
    return rfs_version_is_opensearch(id) ? "OpenSearch" : "Elasticsearch";
}

bool rfs_checksum_parse_base36(const char *s, uint32_t *crc)
{
    if (!s || !*s || strlen(s) > 13)
        return false;
    uint64_t v = 0;
    for (const char *p = s; *p; p++) {
        int d;
        if (*p >= '0' && *p <= '9') d = *p - '0';
        else if (*p >= 'a' && *p <= 'z') d = *p - 'a' + 10;
        else return false;
        v = v * 36 + (uint64_t)d;
        if (v > 0xffffffffu)
            return false;
    }
    *crc = (uint32_t)v;
    return true;
}

static char *dupf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *dupf(const char *fmt, ...)
{
    char tmp[4096];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof(tmp))
        return NULL;
    return sm_strdup(tmp);
}

static const char *jstr(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

static bool jint(json_t *o, const char *key, int64_t *out)
{
    json_t *v = json_object_get(o, key);
    if (json_is_integer(v)) {
        *out = json_integer_value(v);
        return true;
    }
    if (json_is_string(v))   /* settings are strings */
        return sm_parse_i64(json_string_value(v), INT64_MIN, INT64_MAX, out) == SM_OK;
    return false;
}

/* A path component from metadata must not escape the repository. */
static bool safe_component(const char *s)
{
    return s && *s && !strchr(s, '/') && strcmp(s, ".") && strcmp(s, "..");
}

static bool blob_exists(struct rfs_dir *dir, const char *path)
{
    struct rfs_blob *b = NULL;
    if (rfs_dir_open(dir, path, &b, NULL, 0))
        return false;
    rfs_blob_close(b);
    return true;
}

static int cmp_strp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void strlist_sort(struct sm_strlist *l)
{
    if (l->n > 1)
        qsort(l->v, l->n, sizeof(char *), cmp_strp);
}

/* ---------- repository ---------- */

static int read_small(struct rfs_dir *dir, const char *path, size_t max, uint8_t **data, size_t *len,
                      char *err, size_t errlen)
{
    struct rfs_blob *b = NULL;
    int rc = rfs_dir_open(dir, path, &b, err, errlen);
    if (rc)
        return rc;
    rc = rfs_blob_read_all(b, max, data, len);
    if (rc)
        rc = sm_errf(err, errlen, rc, "%s: %s", path, sm_strerror(rc));
    rfs_blob_close(b);
    return rc;
}

static int find_generation(struct rfs_dir *dir, int64_t *gen, char *err, size_t errlen)
{
    uint8_t *d = NULL;
    size_t n = 0;
    char e2[512] = "";
    int rc = read_small(dir, "index.latest", 64, &d, &n, e2, sizeof(e2));
    if (rc == SM_OK) {
        if (n != 8) {
            sm_free(d);
            return sm_errf(err, errlen, SM_ECORRUPT, "index.latest: %zu bytes, expected 8", n);
        }
        uint64_t v = 0;
        for (int i = 0; i < 8; i++)
            v = v << 8 | d[i];
        sm_free(d);
        if ((int64_t)v < 0)
            return sm_errf(err, errlen, SM_ECORRUPT, "index.latest: negative generation %" PRId64, (int64_t)v);
        *gen = (int64_t)v;
        return SM_OK;
    }
    if (rc != SM_ENOTFOUND)
        return sm_errf(err, errlen, rc, "%s", e2);
    /* No index.latest: the largest index-N. */
    struct sm_strlist names = { 0 };
    rc = rfs_dir_list(dir, "", &names);
    if (rc) {
        sm_strlist_free(&names);
        return sm_errf(err, errlen, rc, "%s: cannot list repository root: %s", dir->desc, sm_strerror(rc));
    }
    int64_t best = -1;
    for (size_t i = 0; i < names.n; i++) {
        uint64_t g;
        if (!strncmp(names.v[i], "index-", 6) && sm_parse_u64(names.v[i] + 6, INT64_MAX, &g) == SM_OK &&
            (int64_t)g > best)
            best = (int64_t)g;
    }
    sm_strlist_free(&names);
    *gen = best;
    return best >= 0 ? SM_OK : SM_ENOTFOUND;
}

static void snap_entry_free(struct snap_entry *e)
{
    sm_free(e->info.name);
    sm_free(e->info.uuid);
    sm_free(e->info.version);
    sm_free(e->info.details_error);
    sm_strlist_free(&e->info.indices);
    sm_free(e->key);
}

void rfs_repo_close(struct rfs_repo *repo)
{
    if (!repo)
        return;
    for (size_t i = 0; i < repo->nsnaps; i++)
        snap_entry_free(&repo->snaps[i]);
    sm_free(repo->snaps);
    json_decref(repo->data);
    sm_free(repo);
}

static int parse_repo_data_v5(struct rfs_repo *repo, const char *blob, char *err, size_t errlen)
{
    json_t *snaps = json_object_get(repo->data, "snapshots");
    json_t *indices = json_object_get(repo->data, "indices");
    if (!json_is_array(snaps) || (indices && !json_is_object(indices)))
        return sm_errf(err, errlen, SM_ECORRUPT, "%s: no 'snapshots' array", blob);
    size_t n = json_array_size(snaps);
    repo->snaps = sm_calloc(n ? n : 1, sizeof(*repo->snaps));
    if (!repo->snaps)
        return SM_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        json_t *s = json_array_get(snaps, i);
        struct snap_entry *e = &repo->snaps[repo->nsnaps];
        const char *name = jstr(s, "name"), *uuid = jstr(s, "uuid");
        if (!name || !uuid || !safe_component(uuid))
            return sm_errf(err, errlen, SM_ECORRUPT, "%s: snapshot #%zu has no valid name/uuid", blob, i);
        repo->nsnaps++;
        e->layout = RFS_LAYOUT_V5;
        e->info.name = sm_strdup(name);
        e->info.uuid = sm_strdup(uuid);
        e->key = sm_strdup(uuid);
        if (!e->info.name || !e->info.uuid || !e->key)
            return SM_ENOMEM;
        int64_t v;
        e->info.state = jint(s, "state", &v) ? (int)v : RFS_SNAP_UNKNOWN;
        e->info.start_ms = jint(s, "start_time_millis", &v) ? v : -1;
        e->info.end_ms = jint(s, "end_time_millis", &v) ? v : -1;
        json_t *ver = json_object_get(s, "version");
        if (json_is_string(ver)) {
            e->info.version = sm_strdup(json_string_value(ver));
        } else if (json_is_integer(ver)) {   /* ES 8.9+: IndexVersion id */
            char vb[48];
            e->info.version = sm_strdup(rfs_version_format((uint32_t)json_integer_value(ver), vb, sizeof(vb)));
        }
        json_t *lookup = json_object_get(s, "index_metadata_lookup");
        e->lookup = json_is_object(lookup) ? lookup : NULL;
        /* indices containing this snapshot */
        const char *iname;
        json_t *ix;
        json_object_foreach(indices, iname, ix) {
            json_t *list = json_object_get(ix, "snapshots"), *el;
            size_t k;
            json_array_foreach(list, k, el) {
                /* 5.4.1+: uuid strings; before: {"name":..,"uuid":..} objects */
                const char *u = json_is_string(el) ? json_string_value(el) : jstr(el, "uuid");
                if (u && !strcmp(u, uuid)) {
                    if (sm_strlist_push(&e->info.indices, iname))
                        return SM_ENOMEM;
                    break;
                }
            }
        }
        strlist_sort(&e->info.indices);
    }
    return SM_OK;
}

static int parse_repo_index_v1v2(struct rfs_repo *repo, char *err, size_t errlen)
{
    json_t *snaps = json_object_get(repo->data, "snapshots");
    if (!json_is_array(snaps))
        return sm_errf(err, errlen, SM_ECORRUPT, "index: no 'snapshots' array");
    size_t n = json_array_size(snaps);
    repo->snaps = sm_calloc(n ? n : 1, sizeof(*repo->snaps));
    if (!repo->snaps)
        return SM_ENOMEM;
    bool any_v2 = false;
    for (size_t i = 0; i < n; i++) {
        json_t *s = json_array_get(snaps, i);
        const char *name = json_is_string(s) ? json_string_value(s) : NULL;
        if (!safe_component(name))
            return sm_errf(err, errlen, SM_ECORRUPT, "index: snapshot #%zu has no valid name", i);
        struct snap_entry *e = &repo->snaps[repo->nsnaps++];
        e->info.name = sm_strdup(name);
        e->key = sm_strdup(name);
        if (!e->info.name || !e->key)
            return SM_ENOMEM;
        e->info.state = RFS_SNAP_UNKNOWN;
        e->info.start_ms = e->info.end_ms = -1;
        char path[1024];
        snprintf(path, sizeof(path), "snap-%s.dat", name);
        e->layout = blob_exists(repo->dir, path) ? RFS_LAYOUT_V2 : RFS_LAYOUT_V1;
        any_v2 |= e->layout == RFS_LAYOUT_V2;
    }
    repo->layout = any_v2 ? RFS_LAYOUT_V2 : RFS_LAYOUT_V1;
    return SM_OK;
}

int rfs_repo_open(struct rfs_dir *dir, struct rfs_repo **out, char *err, size_t errlen)
{
    struct rfs_repo *repo = sm_calloc(1, sizeof(*repo));
    if (!repo)
        return SM_ENOMEM;
    repo->dir = dir;
    repo->gen = -1;
    char blob[64];
    int64_t gen = 0;
    int rc = find_generation(dir, &gen, err, errlen);
    if (rc == SM_OK) {
        repo->layout = RFS_LAYOUT_V5;
        repo->gen = gen;
        snprintf(blob, sizeof(blob), "index-%" PRId64, gen);
        uint8_t *d = NULL;
        size_t n = 0;
        if ((rc = read_small(dir, blob, RFS_REPO_META_MAX, &d, &n, err, errlen)))
            goto fail;
        json_error_t je;
        repo->data = json_loadb((const char *)d, n, 0, &je);
        sm_free(d);
        if (!repo->data || !json_is_object(repo->data)) {
            rc = sm_errf(err, errlen, SM_ECORRUPT, "%s: invalid JSON (line %d column %d: %s)", blob, je.line,
                         je.column, repo->data ? "not an object" : je.text);
            goto fail;
        }
        rc = parse_repo_data_v5(repo, blob, err, errlen);
    } else if (rc == SM_ENOTFOUND) {
        /* ES 1.x / 2.x: root blob `index` */
        rc = rfs_repo_read_xcontent(dir, "index", NULL, true, &repo->data, err, errlen);
        if (rc == SM_ENOTFOUND) {
            rc = sm_errf(err, errlen, SM_ENOTFOUND,
                         "%s: not a snapshot repository (no index.latest, index-N or index blob)", dir->desc);
            goto fail;
        }
        if (rc)
            goto fail;
        if (!json_is_object(repo->data)) {
            rc = sm_errf(err, errlen, SM_ECORRUPT, "index: not a JSON object");
            goto fail;
        }
        rc = parse_repo_index_v1v2(repo, err, errlen);
    }
    if (rc)
        goto fail;
    sm_dbg(SM_DBG_REPO, "repo %s: layout %d generation %" PRId64 ", %zu snapshots", dir->desc, repo->layout,
           repo->gen, repo->nsnaps);
    *out = repo;
    return SM_OK;
fail:
    rfs_repo_close(repo);
    return rc;
}

enum rfs_repo_layout rfs_repo_layout(const struct rfs_repo *repo) { return repo->layout; }
int64_t rfs_repo_generation(const struct rfs_repo *repo) { return repo->gen; }
struct rfs_dir *rfs_repo_dir(struct rfs_repo *repo) { return repo->dir; }
json_t *rfs_repo_data(struct rfs_repo *repo) { return repo->data; }
size_t rfs_repo_snapshot_count(const struct rfs_repo *repo) { return repo->nsnaps; }

static void snap_info_blob(const struct snap_entry *e, char *path, size_t len)
{
    if (e->layout == RFS_LAYOUT_V1)
        snprintf(path, len, "snapshot-%s", e->key);
    else
        snprintf(path, len, "snap-%s.dat", e->key);
}

static int load_details(struct rfs_repo *repo, struct snap_entry *e, char *err, size_t errlen)
{
    char path[1024];
    snap_info_blob(e, path, sizeof(path));
    json_t *root = NULL;
    int rc = rfs_repo_read_xcontent(repo->dir, path, "snapshot", e->layout == RFS_LAYOUT_V1, &root, err, errlen);
    if (rc)
        return rc;
    json_t *s = json_object_get(root, "snapshot");
    if (!json_is_object(s)) {
        json_decref(root);
        return sm_errf(err, errlen, SM_ECORRUPT, "%s: no 'snapshot' object", path);
    }
    const char *name = jstr(s, "name");
    if (name && strcmp(name, e->info.name))
        sm_log_warn("%s: snapshot name '%s' differs from repository data '%s'", path, name, e->info.name);
    int64_t v;
    if (jint(s, "version_id", &v) && v > 0 && v <= UINT32_MAX) {
        e->info.version_id = (uint32_t)v;
        e->info.product = rfs_version_product((uint32_t)v);
        if (!e->info.version) {
            char vb[48];
            e->info.version = sm_strdup(rfs_version_format((uint32_t)v, vb, sizeof(vb)));
        }
    }
    if (e->info.state == RFS_SNAP_UNKNOWN)
        e->info.state = state_from_name(jstr(s, "state"));
    if (e->info.start_ms < 0 && jint(s, "start_time", &v))
        e->info.start_ms = v;
    if (e->info.end_ms < 0 && jint(s, "end_time", &v))
        e->info.end_ms = v;
    if (!e->info.indices.n) {
        json_t *list = json_object_get(s, "indices"), *el;
        size_t k;
        json_array_foreach(list, k, el) {
            if (json_is_string(el) && sm_strlist_push(&e->info.indices, json_string_value(el))) {
                json_decref(root);
                return SM_ENOMEM;
            }
        }
        strlist_sort(&e->info.indices);
    }
    json_decref(root);
    e->info.details_loaded = true;
    return SM_OK;
}

const struct rfs_snapshot_info *rfs_repo_snapshot_at(struct rfs_repo *repo, size_t i)
{
    if (i >= repo->nsnaps)
        return NULL;
    struct snap_entry *e = &repo->snaps[i];
    if (!e->info.details_loaded && !e->info.details_error) {
        char err[512] = "";
        int rc = load_details(repo, e, err, sizeof(err));
        if (rc)
            e->info.details_error = sm_strdup(err[0] ? err : sm_strerror(rc));
    }
    return &e->info;
}

int rfs_repo_snapshot_find(const struct rfs_repo *repo, const char *name, size_t *idx)
{
    for (size_t i = 0; i < repo->nsnaps; i++)
        if (!strcmp(repo->snaps[i].info.name, name)) {
            *idx = i;
            return SM_OK;
        }
    for (size_t i = 0; i < repo->nsnaps; i++)
        if (repo->snaps[i].info.uuid && !strcmp(repo->snaps[i].info.uuid, name)) {
            *idx = i;
            return SM_OK;
        }
    return SM_ENOTFOUND;
}

/* ---------- snapshot ---------- */

static void index_info_free(struct rfs_index_info *ii)
{
    if (!ii)
        return;
    sm_free(ii->name);
    sm_free(ii->repo_id);
    sm_free(ii->meta_blob);
    json_decref(ii->metadata);
    json_decref(ii->settings);
    json_decref(ii->mappings);
    json_decref(ii->aliases);
    sm_free(ii->index_uuid);
    sm_free(ii);
}

void rfs_snapshot_close(struct rfs_snapshot *snap)
{
    if (!snap)
        return;
    for (size_t i = 0; i < snap->nidx; i++) {
        sm_free(snap->idx[i].name);
        index_info_free(snap->idx[i].info);
    }
    sm_free(snap->idx);
    json_decref(snap->global);
    sm_free(snap);
}

int rfs_snapshot_open(struct rfs_repo *repo, const char *name, struct rfs_snapshot **out,
                      char *err, size_t errlen)
{
    size_t si;
    if (rfs_repo_snapshot_find(repo, name, &si)) {
        char list[512] = "";
        size_t off = 0;
        for (size_t i = 0; i < repo->nsnaps && off < sizeof(list) - 1; i++) {
            int n = snprintf(list + off, sizeof(list) - off, "%s%s", i ? ", " : "", repo->snaps[i].info.name);
            if (n < 0)
                break;
            off += (size_t)n;
        }
        return sm_errf(err, errlen, SM_ENOTFOUND, "%s: no snapshot '%s' (snapshots: %s)", repo->dir->desc, name,
                       repo->nsnaps ? list : "none");
    }
    struct snap_entry *e = &repo->snaps[si];
    int rc = SM_OK;
    if (!e->info.details_loaded) {
        sm_free(e->info.details_error);
        e->info.details_error = NULL;
        rc = load_details(repo, e, err, errlen);
        if (rc && (e->layout != RFS_LAYOUT_V5 || rc != SM_ENOTFOUND))
            return rc;   /* V5 can do without snap-*.dat for the index list; the rest cannot */
        if (rc)
            sm_log_warn("snapshot %s: %s", e->info.name, err);
    }
    if (e->info.state == RFS_SNAP_IN_PROGRESS || e->info.state == RFS_SNAP_FAILED ||
        e->info.state == RFS_SNAP_INCOMPATIBLE)
        return sm_errf(err, errlen, SM_EUNSUPPORTED, "snapshot '%s' is %s: cannot read it", e->info.name,
                       rfs_snapshot_state_name(e->info.state));
    if (e->info.state == RFS_SNAP_PARTIAL)
        sm_log_warn("snapshot '%s' is PARTIAL: failed shards are missing", e->info.name);

    struct rfs_snapshot *snap = sm_calloc(1, sizeof(*snap));
    if (!snap)
        return SM_ENOMEM;
    snap->repo = repo;
    snap->si = si;
    snap->nidx = e->info.indices.n;
    snap->idx = sm_calloc(snap->nidx ? snap->nidx : 1, sizeof(*snap->idx));
    if (!snap->idx) {
        rfs_snapshot_close(snap);
        return SM_ENOMEM;
    }
    json_t *indices = json_object_get(repo->data, "indices");
    for (size_t i = 0; i < snap->nidx; i++) {
        snap->idx[i].name = sm_strdup(e->info.indices.v[i]);
        if (!snap->idx[i].name) {
            rfs_snapshot_close(snap);
            return SM_ENOMEM;
        }
        if (e->layout == RFS_LAYOUT_V5) {
            snap->idx[i].repo_index = json_object_get(indices, e->info.indices.v[i]);
            if (!json_is_object(snap->idx[i].repo_index)) {
                rc = sm_errf(err, errlen, SM_ECORRUPT, "index-%" PRId64 ": snapshot '%s' lists index '%s' "
                             "that the repository data does not hold", repo->gen, e->info.name, snap->idx[i].name);
                rfs_snapshot_close(snap);
                return rc;
            }
        } else if (!safe_component(snap->idx[i].name)) {
            rc = sm_errf(err, errlen, SM_ECORRUPT, "snapshot '%s': invalid index name '%s'", e->info.name,
                         snap->idx[i].name);
            rfs_snapshot_close(snap);
            return rc;
        }
    }
    *out = snap;
    return SM_OK;
}

const struct rfs_snapshot_info *rfs_snapshot_info(const struct rfs_snapshot *snap)
{
    return &snap->repo->snaps[snap->si].info;
}

size_t rfs_snapshot_index_count(const struct rfs_snapshot *snap) { return snap->nidx; }

const char *rfs_snapshot_index_name(const struct rfs_snapshot *snap, size_t i)
{
    return i < snap->nidx ? snap->idx[i].name : NULL;
}

int rfs_snapshot_index_find(const struct rfs_snapshot *snap, const char *name, size_t *idx)
{
    for (size_t i = 0; i < snap->nidx; i++)
        if (!strcmp(snap->idx[i].name, name)) {
            *idx = i;
            return SM_OK;
        }
    return SM_ENOTFOUND;
}

/* Nested settings ({"index":{"number_of_shards":..}}) -> flat dotted keys. */
static int flatten_into(json_t *dst, const char *prefix, json_t *src)
{
    const char *k;
    json_t *v;
    json_object_foreach(src, k, v) {
        char key[1024];
        if (prefix[0])
            snprintf(key, sizeof(key), "%s.%s", prefix, k);
        else
            snprintf(key, sizeof(key), "%s", k);
        int rc;
        if (json_is_object(v))
            rc = flatten_into(dst, key, v);
        else
            rc = json_object_set(dst, key, v) ? SM_ENOMEM : SM_OK;
        if (rc)
            return rc;
    }
    return SM_OK;
}

/* A mapping given as binary (base64 of DFL/LZF-compressed JSON) -> object. */
static int decode_binary_mapping(const char *b64, json_t **out, const char *blob, char *err, size_t errlen)
{
    size_t n = strlen(b64);
    uint8_t *raw = sm_malloc(n / 4 * 3 + 4);
    if (!raw)
        return SM_ENOMEM;
    size_t rawlen = 0;
    if (sm_base64_decode(b64, n, raw, &rawlen)) {
        sm_free(raw);
        return sm_errf(err, errlen, SM_ECORRUPT, "%s: mapping is a string but not base64", blob);
    }
    int rc = rfs_codec_decode_xcontent(raw, rawlen, NULL, true, out, blob, err, errlen);
    sm_free(raw);
    return rc;
}

static int normalise_mappings(json_t *md, json_t **out, const char *blob, char *err, size_t errlen)
{
    json_t *m = json_object_get(md, "mappings");
    json_t *res = json_object();
    if (!res)
        return SM_ENOMEM;
    int rc = SM_OK;
    if (json_is_object(m)) {
        json_object_update(res, m);
    } else if (json_is_array(m)) {
        size_t i;
        json_t *el;
        json_array_foreach(m, i, el) {
            json_t *obj = el, *dec = NULL;
            if (json_is_string(el)) {
                if ((rc = decode_binary_mapping(json_string_value(el), &dec, blob, err, errlen)))
                    break;
                obj = dec;
            }
            if (!json_is_object(obj)) {
                json_decref(dec);
                rc = sm_errf(err, errlen, SM_ECORRUPT, "%s: mapping #%zu is not an object", blob, i);
                break;
            }
            const char *type;
            json_t *tv;
            json_object_foreach(obj, type, tv) {
                json_t *mv = tv;
                json_t *dec2 = NULL;
                if (json_is_string(tv)) {   /* {"type": <binary>} */
                    if ((rc = decode_binary_mapping(json_string_value(tv), &dec2, blob, err, errlen)))
                        break;
                    json_t *inner = json_object_get(dec2, type);
                    mv = inner ? inner : dec2;
                }
                json_object_set(res, type, mv);
                json_decref(dec2);
            }
            json_decref(dec);
            if (rc)
                break;
        }
    }
    if (rc) {
        json_decref(res);
        return rc;
    }
    *out = res;
    return SM_OK;
}

static int index_meta_blob(struct rfs_snapshot *snap, struct idx_entry *ie, char **path, char **repo_id,
                           char *err, size_t errlen)
{
    struct rfs_repo *repo = snap->repo;
    struct snap_entry *e = &repo->snaps[snap->si];
    if (e->layout == RFS_LAYOUT_V1) {
        *repo_id = sm_strdup(ie->name);
        *path = dupf("indices/%s/snapshot-%s", ie->name, e->key);
    } else if (e->layout == RFS_LAYOUT_V2) {
        *repo_id = sm_strdup(ie->name);
        *path = dupf("indices/%s/meta-%s.dat", ie->name, e->key);
    } else {
        const char *id = jstr(ie->repo_index, "id");
        if (!safe_component(id))
            return sm_errf(err, errlen, SM_ECORRUPT, "index-%" PRId64 ": index '%s' has no valid id", repo->gen,
                           ie->name);
        *repo_id = sm_strdup(id);
        const char *x = e->key;
        const char *ident = e->lookup ? jstr(e->lookup, id) : NULL;   /* 7.9+ */
        if (ident) {
            const char *blobid = jstr(json_object_get(repo->data, "index_metadata_identifiers"), ident);
            if (!safe_component(blobid))
                return sm_errf(err, errlen, SM_ECORRUPT,
                               "index-%" PRId64 ": index metadata identifier '%s' of index '%s' has no blob",
                               repo->gen, ident, ie->name);
            x = blobid;
        }
        *path = dupf("indices/%s/meta-%s.dat", id, x);
    }
    return *path && *repo_id ? SM_OK : SM_ENOMEM;
}

int rfs_snapshot_index_at(struct rfs_snapshot *snap, size_t i, const struct rfs_index_info **out,
                          char *err, size_t errlen)
{
    if (i >= snap->nidx)
        return sm_errf(err, errlen, SM_EINVAL, "index #%zu out of range", i);
    struct idx_entry *ie = &snap->idx[i];
    if (ie->info) {
        *out = ie->info;
        return SM_OK;
    }
    struct rfs_repo *repo = snap->repo;
    struct snap_entry *e = &repo->snaps[snap->si];
    struct rfs_index_info *ii = sm_calloc(1, sizeof(*ii));
    if (!ii)
        return SM_ENOMEM;
    json_t *root = NULL;
    int rc = index_meta_blob(snap, ie, &ii->meta_blob, &ii->repo_id, err, errlen);
    if (rc)
        goto fail;
    ii->name = sm_strdup(ie->name);
    if (!ii->name) {
        rc = SM_ENOMEM;
        goto fail;
    }
    rc = rfs_repo_read_xcontent(repo->dir, ii->meta_blob, "index-metadata", e->layout == RFS_LAYOUT_V1, &root,
                                err, errlen);
    if (rc)
        goto fail;
    json_t *md = json_object_get(root, ie->name);
    if (!md && json_object_size(root) == 1) {   /* renamed? take the only entry */
        const char *k;
        json_t *v;
        json_object_foreach(root, k, v) md = v;
        sm_log_warn("%s: index metadata is keyed by another name than '%s'", ii->meta_blob, ie->name);
    }
    if (!json_is_object(md)) {
        rc = sm_errf(err, errlen, SM_ECORRUPT, "%s: no metadata object for index '%s'", ii->meta_blob, ie->name);
        goto fail;
    }
    ii->metadata = json_incref(md);
    json_t *settings = json_object_get(md, "settings");
    if (!json_is_object(settings)) {
        rc = sm_errf(err, errlen, SM_ECORRUPT, "%s: index '%s' has no settings", ii->meta_blob, ie->name);
        goto fail;
    }
    if (!(ii->settings = json_object()) || (rc = flatten_into(ii->settings, "", settings))) {
        rc = rc ? rc : SM_ENOMEM;
        goto fail;
    }
    if ((rc = normalise_mappings(md, &ii->mappings, ii->meta_blob, err, errlen)))
        goto fail;
    json_t *aliases = json_object_get(md, "aliases");
    ii->aliases = json_is_object(aliases) ? json_incref(aliases) : json_object();
    int64_t v;
    if (!jint(ii->settings, "index.number_of_shards", &v) || v < 1 || v > 100000) {
        rc = sm_errf(err, errlen, SM_ECORRUPT, "%s: index '%s' has no valid index.number_of_shards",
                     ii->meta_blob, ie->name);
        goto fail;
    }
    ii->number_of_shards = (int)v;
    const char *u = jstr(ii->settings, "index.uuid");
    if (u && !(ii->index_uuid = sm_strdup(u))) {
        rc = SM_ENOMEM;
        goto fail;
    }
    if (jint(ii->settings, "index.version.created", &v) && v > 0 && v <= UINT32_MAX) {
        ii->created_id = (uint32_t)v;
        rfs_version_format(ii->created_id, ii->created_version, sizeof(ii->created_version));
        ii->created_product = rfs_version_product(ii->created_id);
    }
    if (ie->repo_index) {
        json_t *g = json_object_get(ie->repo_index, "shard_generations");
        ii->shard_generations = json_is_array(g) ? g : NULL;
        ii->shard_path_type = jint(ie->repo_index, "shard_path_type", &v) ? (int)v : 0;
    }
    json_decref(root);
    ie->info = ii;
    *out = ii;
    return SM_OK;
fail:
    json_decref(root);
    index_info_free(ii);
    return rc;
}

int rfs_snapshot_load_all(struct rfs_snapshot *snap, char *err, size_t errlen)
{
    for (size_t i = 0; i < snap->nidx; i++) {
        const struct rfs_index_info *ii;
        int rc = rfs_snapshot_index_at(snap, i, &ii, err, errlen);
        if (rc)
            return rc;
    }
    return SM_OK;
}

int rfs_snapshot_global_metadata(struct rfs_snapshot *snap, json_t **out, char *err, size_t errlen)
{
    if (snap->global) {
        *out = snap->global;
        return SM_OK;
    }
    struct snap_entry *e = &snap->repo->snaps[snap->si];
    char path[1024];
    if (e->layout == RFS_LAYOUT_V1)
        snprintf(path, sizeof(path), "metadata-%s", e->key);
    else
        snprintf(path, sizeof(path), "meta-%s.dat", e->key);
    json_t *root = NULL;
    int rc = rfs_repo_read_xcontent(snap->repo->dir, path, "metadata", e->layout == RFS_LAYOUT_V1, &root, err,
                                    errlen);
    if (rc)
        return rc;
    json_t *md = json_object_get(root, "meta-data");
    if (!json_is_object(md)) {
        json_decref(root);
        return sm_errf(err, errlen, SM_ECORRUPT, "%s: no 'meta-data' object", path);
    }
    snap->global = json_incref(md);
    json_decref(root);
    *out = snap->global;
    return SM_OK;
}

/* ---------- shards ---------- */

static void shard_file_free(struct rfs_shard_file *f)
{
    sm_free(f->name);
    sm_free(f->physical_name);
    sm_free(f->checksum);
    sm_free(f->written_by);
    sm_free(f->meta_hash);
}

void rfs_shard_close(struct rfs_shard *shard)
{
    if (!shard)
        return;
    for (size_t i = 0; i < shard->nfiles; i++)
        shard_file_free(&shard->files[i]);
    sm_free(shard->files);
    sm_free(shard->index_name);
    sm_free(shard->path);
    sm_free(shard->blob);
    sm_free(shard);
}

/* OpenSearch hashed shard paths: snapshot_shard_paths/snapshot_path_<id>.<name>.<n>.<type>.<algo> */
static int hashed_shard_path(struct rfs_repo *repo, const struct rfs_index_info *ii, int shard, char **out,
                             char *err, size_t errlen)
{
    struct sm_strlist names = { 0 };
    int rc = rfs_dir_list(repo->dir, "snapshot_shard_paths", &names);
    char prefix[1024];
    snprintf(prefix, sizeof(prefix), "snapshot_path_%s.%s.", ii->repo_id, ii->name);
    const char *found = NULL;
    for (size_t i = 0; !rc && i < names.n; i++)
        if (!strncmp(names.v[i], prefix, strlen(prefix)))
            found = names.v[i];
    if (!found) {
        sm_strlist_free(&names);
        return sm_errf(err, errlen, SM_EUNSUPPORTED,
                       "index '%s' uses shard_path_type %d but snapshot_shard_paths/%s* is missing", ii->name,
                       ii->shard_path_type, prefix);
    }
    char path[1200];
    snprintf(path, sizeof(path), "snapshot_shard_paths/%s", found);
    sm_strlist_free(&names);
    json_t *root = NULL;
    rc = rfs_repo_read_xcontent(repo->dir, path, NULL, true, &root, err, errlen);
    if (rc)
        return rc;
    json_t *p = json_array_get(json_object_get(root, "paths"), (size_t)shard);
    const char *s = json_is_string(p) ? json_string_value(p) : NULL;
    if (!s || !*s || strstr(s, "..") || s[0] == '/') {
        json_decref(root);
        return sm_errf(err, errlen, SM_ECORRUPT, "%s: no valid path for shard %d", path, shard);
    }
    size_t n = strlen(s);
    while (n && s[n - 1] == '/')
        n--;
    *out = sm_strndup(s, n);
    json_decref(root);
    return *out ? SM_OK : SM_ENOMEM;
}

static int parse_file_info(json_t *fi, struct rfs_shard_file *f, const char *blob, size_t i, char *err,
                           size_t errlen)
{
    const char *name = jstr(fi, "name"), *phys = jstr(fi, "physical_name");
    int64_t len;
    if (!safe_component(name) || !safe_component(phys))
        return sm_errf(err, errlen, SM_ECORRUPT, "%s: file #%zu has no valid name/physical_name", blob, i);
    if (!jint(fi, "length", &len) || len < 0)
        return sm_errf(err, errlen, SM_ECORRUPT, "%s: file %s has no valid length", blob, phys);
    f->name = sm_strdup(name);
    f->physical_name = sm_strdup(phys);
    if (!f->name || !f->physical_name)
        return SM_ENOMEM;
    f->length = (uint64_t)len;
    f->is_virtual = !strncmp(name, "v__", 3);
    const char *ck = jstr(fi, "checksum");
    if (ck) {
        if (!(f->checksum = sm_strdup(ck)))
            return SM_ENOMEM;
        f->has_crc = rfs_checksum_parse_base36(ck, &f->crc);
    }
    const char *wb = jstr(fi, "written_by");
    if (wb && !(f->written_by = sm_strdup(wb)))
        return SM_ENOMEM;
    int64_t ps;
    f->part_size = jint(fi, "part_size", &ps) && ps > 0 ? (uint64_t)ps : 0;
    uint64_t parts = 1;
    if (f->part_size && f->length > f->part_size)
        parts = (f->length + f->part_size - 1) / f->part_size;
    if (parts > MAX_PARTS)
        return sm_errf(err, errlen, SM_ECORRUPT, "%s: file %s has %llu parts", blob, phys, (unsigned long long)parts);
    f->parts = (uint32_t)parts;
    const char *mh = jstr(fi, "meta_hash");   /* SMILE binary and ES 1.x JSON: base64 here */
    if (mh && *mh) {
        size_t n = strlen(mh);
        f->meta_hash = sm_malloc(n / 4 * 3 + 4);
        if (!f->meta_hash)
            return SM_ENOMEM;
        if (sm_base64_decode(mh, n, f->meta_hash, &f->meta_hash_len))
            return sm_errf(err, errlen, SM_ECORRUPT, "%s: file %s: meta_hash is not base64", blob, phys);
    }
    if (f->is_virtual && (!f->meta_hash || f->meta_hash_len != f->length))
        return sm_errf(err, errlen, SM_ECORRUPT, "%s: virtual file %s (%s): meta_hash holds %zu bytes, length is %llu",
                       blob, phys, name, f->meta_hash_len, (unsigned long long)f->length);
    return SM_OK;
}

int rfs_shard_open(struct rfs_snapshot *snap, size_t index, int shard, struct rfs_shard **out,
                   char *err, size_t errlen)
{
    const struct rfs_index_info *ii;
    int rc = rfs_snapshot_index_at(snap, index, &ii, err, errlen);
    if (rc)
        return rc;
    if (shard < 0 || shard >= ii->number_of_shards)
        return sm_errf(err, errlen, SM_EINVAL, "index '%s' has %d shards, no shard %d", ii->name,
                       ii->number_of_shards, shard);
    struct rfs_repo *repo = snap->repo;
    struct snap_entry *e = &repo->snaps[snap->si];
    struct rfs_shard *sh = sm_calloc(1, sizeof(*sh));
    if (!sh)
        return SM_ENOMEM;
    sh->snap = snap;
    sh->shard = shard;
    sh->start_ms = sh->time_ms = -1;
    json_t *root = NULL;
    if (!(sh->index_name = sm_strdup(ii->name))) {
        rc = SM_ENOMEM;
        goto fail;
    }
    if (ii->shard_path_type != 0)
        rc = hashed_shard_path(repo, ii, shard, &sh->path, err, errlen);
    else
        rc = (sh->path = dupf("indices/%s/%d", ii->repo_id, shard)) ? SM_OK : SM_ENOMEM;
    if (rc)
        goto fail;
    sh->blob = e->layout == RFS_LAYOUT_V1 ? dupf("%s/snapshot-%s", sh->path, e->key)
                                          : dupf("%s/snap-%s.dat", sh->path, e->key);
    if (!sh->blob) {
        rc = SM_ENOMEM;
        goto fail;
    }
    rc = rfs_repo_read_xcontent(repo->dir, sh->blob, "snapshot", e->layout == RFS_LAYOUT_V1, &root, err, errlen);
    if (rc == SM_ENOTFOUND) {
        char shallow[2048];
        snprintf(shallow, sizeof(shallow), "%s/shallow-snap-%s.dat", sh->path, e->key);
        if (blob_exists(repo->dir, shallow))
            rc = sm_errf(err, errlen, SM_EUNSUPPORTED,
                         "%s: shallow (remote store) snapshot: segment data is not in the repository", shallow);
        else
            rc = sm_errf(err, errlen, SM_ENOTFOUND, "%s: shard %d of index '%s' is not in snapshot '%s'", sh->blob,
                         shard, ii->name, e->info.name);
    }
    if (rc)
        goto fail;
    int64_t v;
    if (jint(root, "start_time", &v))
        sh->start_ms = v;
    if (jint(root, "time", &v))
        sh->time_ms = v;
    json_t *files = json_object_get(root, "files");
    if (!json_is_array(files)) {
        rc = sm_errf(err, errlen, SM_ECORRUPT, "%s: no 'files' array", sh->blob);
        goto fail;
    }
    size_t n = json_array_size(files);
    sh->files = sm_calloc(n ? n : 1, sizeof(*sh->files));
    if (!sh->files) {
        rc = SM_ENOMEM;
        goto fail;
    }
    for (size_t i = 0; i < n; i++) {
        sh->nfiles++;
        if ((rc = parse_file_info(json_array_get(files, i), &sh->files[i], sh->blob, i, err, errlen)))
            goto fail;
        sh->total_bytes += sh->files[i].length;
        for (size_t j = 0; j < i; j++)
            if (!strcmp(sh->files[j].physical_name, sh->files[i].physical_name)) {
                rc = sm_errf(err, errlen, SM_ECORRUPT, "%s: file %s listed twice", sh->blob,
                             sh->files[i].physical_name);
                goto fail;
            }
    }
    json_decref(root);
    *out = sh;
    return SM_OK;
fail:
    json_decref(root);
    rfs_shard_close(sh);
    return rc;
}

const struct rfs_shard_file *rfs_shard_file_find(const struct rfs_shard *shard, const char *physical)
{
    for (size_t i = 0; i < shard->nfiles; i++)
        if (!strcmp(shard->files[i].physical_name, physical))
            return &shard->files[i];
    return NULL;
}

const struct rfs_shard_file *rfs_shard_segments_file(const struct rfs_shard *shard)
{
    for (size_t i = 0; i < shard->nfiles; i++)
        if (!strncmp(shard->files[i].physical_name, "segments_", 9))
            return &shard->files[i];
    return NULL;
}

/* Lucene wrote a CodecUtil footer into every file since 4.8. */
static bool has_footer(const struct rfs_shard_file *f)
{
    if (!strcmp(f->physical_name, "segments.gen") || !strcmp(f->physical_name, "write.lock"))
        return false;
    if (!f->written_by)
        return false;
    int major = 0, minor = 0;
    if (sscanf(f->written_by, "%d.%d", &major, &minor) != 2)
        return false;
    return major > 4 || (major == 4 && minor >= 8);
}

int rfs_shard_file_open(struct rfs_shard *shard, const struct rfs_shard_file *f, unsigned flags,
                        struct rfs_blob **out, char *err, size_t errlen)
{
    char bname[2048];
    snprintf(bname, sizeof(bname), "%s/%s[%s]", shard->path, f->name, f->physical_name);
    struct rfs_blob *blob = NULL;
    int rc;
    struct rfs_dir *dir = shard->snap->repo->dir;
    if (f->is_virtual) {
        rc = rfs_blob_open_mem(f->meta_hash, f->meta_hash_len, false, bname, &blob);
        if (rc)
            return rc;
    } else if (f->parts <= 1) {
        char path[2048];
        snprintf(path, sizeof(path), "%s/%s", shard->path, f->name);
        if ((rc = rfs_dir_open(dir, path, &blob, err, errlen)))
            return rc == SM_ENOTFOUND ? sm_errf(err, errlen, rc, "%s: missing blob for %s", path, f->physical_name)
                                      : rc;
        sm_free(blob->name);
        if (!(blob->name = sm_strdup(bname))) {
            rfs_blob_close(blob);
            return SM_ENOMEM;
        }
    } else {
        struct rfs_blob **parts = sm_calloc(f->parts, sizeof(*parts));
        if (!parts)
            return SM_ENOMEM;
        rc = SM_OK;
        for (uint32_t k = 0; k < f->parts; k++) {
            char path[2048];
            snprintf(path, sizeof(path), "%s/%s.part%u", shard->path, f->name, k);
            if ((rc = rfs_dir_open(dir, path, &parts[k], err, errlen))) {
                if (rc == SM_ENOTFOUND)
                    sm_errf(err, errlen, rc, "%s: missing part %u of %u for %s", path, k, f->parts, f->physical_name);
                break;
            }
            uint64_t want = k + 1 < f->parts ? f->part_size : f->length - f->part_size * (f->parts - 1);
            if (parts[k]->size != want) {
                rc = sm_errf(err, errlen, SM_ECORRUPT, "%s: part length %llu != %llu expected for %s", path,
                             (unsigned long long)parts[k]->size, (unsigned long long)want, f->physical_name);
                rfs_blob_close(parts[k]);
                parts[k] = NULL;
                break;
            }
        }
        if (rc) {
            for (uint32_t k = 0; k < f->parts; k++)
                rfs_blob_close(parts[k]);
            sm_free(parts);
            return rc;
        }
        rc = rfs_blob_open_concat(parts, f->parts, bname, &blob);
        sm_free(parts);
        if (rc)
            return rc;
    }
    if (blob->size != f->length) {
        rc = sm_errf(err, errlen, SM_ECORRUPT, "%s: length %llu != %llu in the shard metadata", bname,
                     (unsigned long long)blob->size, (unsigned long long)f->length);
        goto fail;
    }
    if ((flags & (RFS_SHARD_VERIFY_FOOTER | RFS_SHARD_VERIFY_CRC)) && has_footer(f)) {
        uint64_t crc;
        rc = (flags & RFS_SHARD_VERIFY_CRC) ? rfs_codec_blob_verify(blob, &crc, err, errlen)
                                            : rfs_codec_blob_footer(blob, &crc, err, errlen);
        if (rc)
            goto fail;
        if (f->has_crc && crc != f->crc) {
            rc = sm_errf(err, errlen, SM_ECORRUPT, "%s: footer checksum %08x != %08x (%s) in the shard metadata",
                         bname, (uint32_t)crc, f->crc, f->checksum);
            goto fail;
        }
    }
    *out = blob;
    return SM_OK;
fail:
    rfs_blob_close(blob);
    return rc;
}

/* ---------- shard dir ---------- */

struct shard_dir_ctx {
    struct rfs_shard *shard;
    unsigned flags;
};

static int sd_list(struct rfs_dir *dir, const char *prefix, struct sm_strlist *names)
{
    struct shard_dir_ctx *c = dir->ctx;
    if (prefix && *prefix)
        return SM_ENOTFOUND;
    for (size_t i = 0; i < c->shard->nfiles; i++)
        if (sm_strlist_push(names, c->shard->files[i].physical_name))
            return SM_ENOMEM;
    strlist_sort(names);
    return SM_OK;
}

static int sd_open(struct rfs_dir *dir, const char *path, struct rfs_blob **out, char *err, size_t errlen)
{
    struct shard_dir_ctx *c = dir->ctx;
    const struct rfs_shard_file *f = rfs_shard_file_find(c->shard, path);
    if (!f)
        return sm_errf(err, errlen, SM_ENOTFOUND, "%s: no file %s in the shard snapshot", dir->desc, path);
    return rfs_shard_file_open(c->shard, f, c->flags, out, err, errlen);
}

static void sd_close(struct rfs_dir *dir)
{
    sm_free(dir->ctx);
}

static const struct rfs_dir_ops shard_dir_ops = { "shard-snapshot", sd_list, sd_open, sd_close };

int rfs_shard_dir_open(struct rfs_shard *shard, unsigned flags, struct rfs_dir **out, char *err, size_t errlen)
{
    (void)err;
    (void)errlen;
    struct rfs_dir *dir = sm_calloc(1, sizeof(*dir));
    struct shard_dir_ctx *c = sm_calloc(1, sizeof(*c));
    if (!dir || !c || !(dir->desc = dupf("%s:%s", shard->snap->repo->dir->desc, shard->blob))) {
        sm_free(dir);
        sm_free(c);
        return SM_ENOMEM;
    }
    c->shard = shard;
    c->flags = flags;
    dir->ops = &shard_dir_ops;
    dir->ctx = c;
    *out = dir;
    return SM_OK;
}
