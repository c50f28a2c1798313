/* Metadata migration: templates, indices (settings, mappings, aliases) from a
 * snapshot or a live cluster to a target cluster, with version-aware
 * transformations (docs/metadata.md).
 *
 *   rfs_md_plan_new()          empty plan (options, versions)
 *   rfs_md_collect_snapshot()  items from a snapshot's global + index metadata
 *   rfs_md_collect_live()      items from a live source over REST
 *   rfs_md_transform()         filters, system-item skips, the rule table
 *   rfs_md_check_target()      action per item: create / exists / skip / conflict
 *   rfs_md_apply()             creates the items in dependency order
 *   rfs_md_report()            the JSON report
 *
 * Items keep an internal body form: "settings" flat ("index.x": "v"),
 * "mappings" typed ({type: mapping}; composable/component templates use the
 * pseudo type "_doc"), "aliases", plus the template keys. The rules in
 * rules.c work on that form; rfs_md_render() produces the request body the
 * target expects (typed on Elasticsearch 6, typeless after). */
#ifndef RFS_METADATA_METADATA_H
#define RFS_METADATA_METADATA_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include <sm/http.h>

enum rfs_md_kind {
    RFS_MD_COMPONENT_TEMPLATE = 0,   /* created first: index templates refer to them */
    RFS_MD_INDEX_TEMPLATE = 1,
    RFS_MD_LEGACY_TEMPLATE = 2,
    RFS_MD_INDEX = 3,
    RFS_MD_KINDS = 4,
};
#define RFS_MD_KIND_BIT(k) (1u << (k))
#define RFS_MD_ALL_TEMPLATES (RFS_MD_KIND_BIT(RFS_MD_COMPONENT_TEMPLATE) | \
                              RFS_MD_KIND_BIT(RFS_MD_INDEX_TEMPLATE) | RFS_MD_KIND_BIT(RFS_MD_LEGACY_TEMPLATE))
#define RFS_MD_ALL_KINDS (RFS_MD_ALL_TEMPLATES | RFS_MD_KIND_BIT(RFS_MD_INDEX))
/* "component_template", "index_template", "template", "index" */
const char *rfs_md_kind_name(enum rfs_md_kind k);

enum rfs_md_action {
    RFS_MD_CREATE = 0,     /* would be / was created */
    RFS_MD_SKIP,           /* filtered out or system item (note says why) */
    RFS_MD_EXISTS,         /* already on the target, left alone */
    RFS_MD_OVERWRITE,      /* exists, replaced (--overwrite) */
    RFS_MD_CONFLICT,       /* cannot be created as is (problems say why) */
    RFS_MD_FAILED,         /* the target (or reading the source) failed: error says why */
};
const char *rfs_md_action_name(enum rfs_md_action a);

enum rfs_md_multi_type { RFS_MD_MULTI_UNION = 0, RFS_MD_MULTI_SPLIT = 1 };

/* A cluster version: Elasticsearch or OpenSearch, major.minor. */
struct rfs_md_version {
    bool opensearch;
    int major, minor;
    char number[32];               /* "7.10.2" */
};
/* The Elasticsearch major whose mapping/settings rules apply: ES majors as
 * is; OpenSearch 1.x = 7 (typeless, types still accepted), 2.x+ = 8 (no types,
 * soft deletes mandatory). */
int rfs_md_compat_major(const struct rfs_md_version *v);
/* Parses "7.10.2"; opensearch as given. Returns 0 or SM_EINVAL. */
int rfs_md_version_parse(const char *number, bool opensearch, struct rfs_md_version *v);

struct rfs_md_opts {
    const char *index_pattern;      /* NULL: all */
    const char *template_pattern;   /* NULL: all */
    bool include_system;            /* do not skip system/internal items */
    bool overwrite;
    int64_t replicas;               /* < 0: keep */
    bool drop_allocation;           /* remove index.routing.allocation.* */
    enum rfs_md_multi_type multi_type;
};

struct rfs_md_item {
    enum rfs_md_kind kind;
    char *name;                    /* target name */
    char *source_name;             /* name on the source (differs for split indices) */
    json_t *source;                /* original metadata as read (internal form) */
    json_t *body;                  /* transformed internal form */
    json_t *transforms;            /* array of {"rule","description","changes":[...]} */
    json_t *notes;                 /* array of strings */
    json_t *problems;              /* array of strings: reasons for CONFLICT/FAILED */
    json_t *type_rule;             /* indices: how documents' types map (for the backfill), or NULL */
    enum rfs_md_action action;
    char *error;                   /* target's reason on FAILED */
    bool done;                     /* migrate: the request succeeded */
};

struct rfs_md_plan {
    struct rfs_md_opts opts;
    struct rfs_md_version source, target;
    bool source_known, target_known;
    json_t *source_info;           /* {"kind":"snapshot",...} for the report */
    json_t *target_info;
    struct rfs_md_item **items;
    size_t nitems, cap;
};

/* New plan with a copy of opts (pattern strings are borrowed: keep them alive). */
struct rfs_md_plan *rfs_md_plan_new(const struct rfs_md_opts *opts);
void rfs_md_plan_free(struct rfs_md_plan *plan);   /* NULL-safe */

/* Adds an item (internal form body: stolen reference). Returns the item or NULL (ENOMEM). */
struct rfs_md_item *rfs_md_plan_add(struct rfs_md_plan *plan, enum rfs_md_kind kind, const char *name,
                                    json_t *body);

/* Converts Elasticsearch/OpenSearch metadata into the internal form:
 * settings flattened (nested objects, "index." prefix added), mappings typed
 * (array form, typeless form wrapped under default_type). New reference. */
json_t *rfs_md_normalize(const json_t *meta, const char *default_type);
/* The same for composable/component templates: "template" (settings,
 * mappings, aliases) lifted into the item, mappings under "_doc". */
json_t *rfs_md_normalize_v2(const json_t *tmpl);
/* Flattens a settings object ({"index":{"a":"1"}} -> {"index.a":"1"}); values as strings. */
json_t *rfs_md_flatten_settings(const json_t *settings);

/* Reads the snapshot's global metadata (legacy, composable and component
 * templates) and every index's metadata. An index whose metadata cannot be
 * read becomes a FAILED item naming the blob. Returns 0 or an error (repo or
 * snapshot unreadable) with err set. */
struct rfs_snapshot;
int rfs_md_collect_snapshot(struct rfs_md_plan *plan, struct rfs_snapshot *snap, char *err, size_t errlen);

/* GET / and the version of a cluster. */
int rfs_md_cluster_version(struct sm_http_client *c, struct rfs_md_version *v, json_t **info, char *err,
                           size_t errlen);

/* Reads templates and indices from a live cluster. */
int rfs_md_collect_live(struct rfs_md_plan *plan, struct sm_http_client *src, char *err, size_t errlen);

/* Applies filters, skips system items, splits multi-type indices if asked,
 * then every applicable rule of the table. Needs plan->source/target. */
int rfs_md_transform(struct rfs_md_plan *plan);

/* The request body for the target (new reference). */
json_t *rfs_md_render(const struct rfs_md_plan *plan, const struct rfs_md_item *item);

/* Looks every pending item up on the target: EXISTS (or OVERWRITE with --overwrite). */
int rfs_md_check_target(struct rfs_md_plan *plan, struct sm_http_client *tgt, char *err, size_t errlen);

/* Creates CREATE/OVERWRITE items in dependency order; failures are recorded
 * per item (FAILED with the target's reason). Returns the number of failed items. */
size_t rfs_md_apply(struct rfs_md_plan *plan, struct sm_http_client *tgt);

/* The report (new reference); mode "evaluate" or "migrate". */
json_t *rfs_md_report(const struct rfs_md_plan *plan, const char *mode);

/* ---- rule table (rules.c) ---- */

struct rfs_md_ctx {
    const struct rfs_md_plan *plan;
    int src_major, tgt_major;      /* rfs_md_compat_major */
    bool tgt_opensearch;
    struct rfs_md_item *item;
    json_t *changes;               /* current rule's change list */
};

struct rfs_md_rule {
    const char *name;
    const char *description;
    int src_min, src_max;          /* source compat major range */
    int tgt_min, tgt_max;          /* target compat major range */
    unsigned kinds;                /* RFS_MD_KIND_BIT mask */
    /* Changes item->body in place, recording each change with rfs_md_change();
     * problems with rfs_md_problem(). Returns 0 or SM_ENOMEM. */
    int (*apply)(struct rfs_md_ctx *ctx, json_t *body);
};

extern const struct rfs_md_rule rfs_md_rules[];
extern const size_t rfs_md_nrules;

/* Records a change under the current rule (printf-style). */
void rfs_md_change(struct rfs_md_ctx *ctx, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void rfs_md_problem(struct rfs_md_item *item, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void rfs_md_note(struct rfs_md_item *item, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Runs the applicable rules on item (used by rfs_md_transform and the unit tests). */
int rfs_md_apply_rules(const struct rfs_md_plan *plan, struct rfs_md_item *item);
/* Runs one rule by name regardless of versions (unit tests). SM_ENOTFOUND if unknown. */
int rfs_md_apply_rule(const struct rfs_md_plan *plan, struct rfs_md_item *item, const char *rule);

/* Multi-type union of typed mappings {t1: m1, t2: m2} -> one mapping; a
 * field defined differently in two types is a problem on item. New reference. */
json_t *rfs_md_union_mappings(struct rfs_md_item *item, const json_t *typed);

#endif
