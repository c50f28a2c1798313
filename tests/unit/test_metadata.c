/* Metadata transformation rules (rfs/metadata/rules.c): the before/after
 * cases of tests/fixtures/metadata/<rule>.json (format in its README.md), plus the
 * rule table, versions, settings flattening, the type union and the report. */
#include "sm_test.h"

#include "metadata/metadata.h"

#include <sm/err.h>

#include <dirent.h>
#include <jansson.h>
#include <stdbool.h>
#include <string.h>

static int parse_version(const char *s, struct rfs_md_version *v)
{
    bool os = !strncmp(s, "os-", 3);
    return rfs_md_version_parse(os ? s + 3 : s, os, v);
}

static enum rfs_md_kind kind_of(const char *k)
{
    if (!k || !strcmp(k, "index"))
        return RFS_MD_INDEX;
    if (!strcmp(k, "template"))
        return RFS_MD_LEGACY_TEMPLATE;
    if (!strcmp(k, "index_template"))
        return RFS_MD_INDEX_TEMPLATE;
    return RFS_MD_COMPONENT_TEMPLATE;
}

static int mismatch(const char *file, const char *name, const char *what, json_t *got, json_t *want)
{
    char *g = json_dumps(got, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
    char *w = json_dumps(want, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
    fprintf(stderr, "%s: case \"%s\": %s\n  got:  %s\n  want: %s\n", file, name, what, g ? g : "null",
            w ? w : "null");
    free(g);
    free(w);
    return 1;
}

static struct rfs_md_item *find_first(struct rfs_md_plan *plan, enum rfs_md_action a)
{
    for (size_t i = 0; i < plan->nitems; i++)
        if (plan->items[i]->action == a)
            return plan->items[i];
    return NULL;
}

static int run_case(const char *file, json_t *c)
{
    const char *name = json_string_value(json_object_get(c, "name"));
    const char *rule = json_string_value(json_object_get(c, "rule"));
    json_t *opts = json_object_get(c, "options");
    struct rfs_md_opts mo = { .replicas = -1 };
    if (json_is_integer(json_object_get(opts, "replicas")))
        mo.replicas = json_integer_value(json_object_get(opts, "replicas"));
    mo.drop_allocation = json_is_true(json_object_get(opts, "drop_allocation"));
    const char *mt = json_string_value(json_object_get(opts, "multi_type"));
    mo.multi_type = mt && !strcmp(mt, "split") ? RFS_MD_MULTI_SPLIT : RFS_MD_MULTI_UNION;
    struct rfs_md_plan *plan = rfs_md_plan_new(&mo);
    SM_CHECK(plan);
    SM_CHECK(!parse_version(json_string_value(json_object_get(c, "source")), &plan->source));
    SM_CHECK(!parse_version(json_string_value(json_object_get(c, "target")), &plan->target));
    enum rfs_md_kind kind = kind_of(json_string_value(json_object_get(c, "kind")));
    json_t *before = json_object_get(c, "before");
    const char *iname = json_string_value(json_object_get(c, "template_name"));
    if (!iname)
        iname = "test";
    int fail = 0;
    struct rfs_md_item *it;
    if (rule) {
        it = rfs_md_plan_add(plan, kind, iname, json_deep_copy(before));
        SM_CHECK(it);
        int rc = rfs_md_apply_rule(plan, it, rule);
        if (rc) {
            fprintf(stderr, "%s: case \"%s\": rule %s: %s\n", file, name, rule, sm_strerror(rc));
            fail = 1;
            goto out;
        }
        json_t *after = json_object_get(c, "after");
        if (after && !json_equal(it->body, after))
            fail |= mismatch(file, name, "body after the rule", it->body, after);
        json_t *changes = json_object_get(c, "changes");
        if (changes) {
            json_t *got = json_object_get(json_array_get(it->transforms, 0), "changes");
            if (!got)
                got = json_array();
            else
                json_incref(got);
            if (!json_equal(got, changes))
                fail |= mismatch(file, name, "changes", got, changes);
            json_decref(got);
        }
        /* a rule that changed something says so in the report */
        if (after && !json_equal(before, after) && json_array_size(it->transforms) != 1)
            fail |= mismatch(file, name, "transformations", it->transforms, after);
    } else {
        size_t xi;
        json_t *x;
        json_array_foreach(json_object_get(c, "extra_items"), xi, x) {
            enum rfs_md_kind xk = kind_of(json_string_value(json_object_get(x, "kind")));
            json_t *xb = json_object_get(x, "before");
            SM_CHECK(rfs_md_plan_add(plan, xk, json_string_value(json_object_get(x, "name")),
                                     xk == RFS_MD_INDEX_TEMPLATE || xk == RFS_MD_COMPONENT_TEMPLATE
                                         ? rfs_md_normalize_v2(xb)
                                         : rfs_md_normalize(xb, NULL)));
        }
        json_t *body = kind == RFS_MD_INDEX_TEMPLATE || kind == RFS_MD_COMPONENT_TEMPLATE
                           ? rfs_md_normalize_v2(before)
                           : rfs_md_normalize(before, NULL);
        it = rfs_md_plan_add(plan, kind, iname, body);
        SM_CHECK(it);
        SM_CHECK(!rfs_md_transform(plan));
        it = NULL;
        for (size_t i = 0; i < plan->nitems; i++)
            if (!strcmp(plan->items[i]->name, iname))
                it = plan->items[i];
        SM_CHECK(it);
        json_t *action = json_object_get(c, "action");
        if (action && strcmp(rfs_md_action_name(it->action), json_string_value(action)))
            fail |= mismatch(file, name, "action", json_string(rfs_md_action_name(it->action)), action);
        const char *iname2;
        json_t *ia;
        json_object_foreach(json_object_get(c, "expect_items"), iname2, ia) {
            bool found = false;
            for (size_t i = 0; i < plan->nitems; i++)
                if (!strcmp(plan->items[i]->name, iname2)) {
                    found = true;
                    if (strcmp(rfs_md_action_name(plan->items[i]->action), json_string_value(ia)))
                        fail |= mismatch(file, name, iname2, json_string(rfs_md_action_name(plan->items[i]->action)),
                                         ia);
                }
            if (!found)
                fail |= mismatch(file, name, "item missing", json_string(iname2), ia);
        }
        json_t *after = json_object_get(c, "after");
        if (after) {
            struct rfs_md_item *created = it->action == RFS_MD_CREATE ? it : find_first(plan, RFS_MD_CREATE);
            json_t *got = created ? rfs_md_render(plan, created) : json_null();
            if (!json_equal(got, after))
                fail |= mismatch(file, name, "rendered body", got, after);
            json_decref(got);
        }
    }
    json_t *problems = json_object_get(c, "problems");
    if (problems && (json_int_t)json_array_size(it->problems) != json_integer_value(problems))
        fail |= mismatch(file, name, "problems", it->problems, problems);
    json_t *nn = json_object_get(c, "expect_notes");
    if (nn && (json_int_t)json_array_size(it->notes) != json_integer_value(nn))
        fail |= mismatch(file, name, "notes", it->notes, nn);
    json_t *tr = json_object_get(c, "type_rule");
    if (tr && !json_equal(it->type_rule, tr))
        fail |= mismatch(file, name, "type rule", it->type_rule, tr);
out:
    rfs_md_plan_free(plan);
    return fail;
}

static int test_fixture_cases(void)
{
    const char *dir = sm_src_path("tests/fixtures/metadata");
    DIR *d = opendir(dir);
    SM_CHECK(d);
    struct dirent *de;
    int fail = 0, ncases = 0;
    json_t *seen_rules = json_object();
    while ((de = readdir(d))) {
        size_t n = strlen(de->d_name);
        if (n < 6 || strcmp(de->d_name + n - 5, ".json"))
            continue;
        char path[4096];
        snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
        json_error_t je;
        json_t *cases = json_load_file(path, 0, &je);
        if (!json_is_array(cases)) {
            fprintf(stderr, "%s:%d: %s\n", path, je.line, je.text);
            fail = 1;
            continue;
        }
        size_t i;
        json_t *c;
        json_array_foreach(cases, i, c) {
            ncases++;
            fail |= run_case(de->d_name, c);
            const char *r = json_string_value(json_object_get(c, "rule"));
            if (r)
                json_object_set_new(seen_rules, r, json_true());
            size_t k;
            json_t *cr;
            json_array_foreach(json_object_get(c, "covers"), k, cr)
                json_object_set_new(seen_rules, json_string_value(cr), json_true());
        }
        json_decref(cases);
    }
    closedir(d);
    SM_CHECK(ncases >= 30);
    /* every rule of the table has at least one before/after case */
    for (size_t i = 0; i < rfs_md_nrules; i++) {
        const char *r = rfs_md_rules[i].name;
        if (!json_object_get(seen_rules, r)) {
            fprintf(stderr, "rule %s has no fixture case\n", r);
            fail = 1;
        }
    }
    json_decref(seen_rules);
    return fail;
}

static int test_rule_table(void)
{
    SM_CHECK(rfs_md_nrules >= 15);
    for (size_t i = 0; i < rfs_md_nrules; i++) {
        const struct rfs_md_rule *r = &rfs_md_rules[i];
        SM_CHECK(r->name && r->description && r->apply && r->kinds);
        SM_CHECK(r->src_min <= r->src_max && r->tgt_min <= r->tgt_max);
        for (size_t k = 0; k < i; k++)
            SM_CHECK(strcmp(rfs_md_rules[k].name, r->name));
    }
    struct rfs_md_opts mo = { .replicas = -1 };
    struct rfs_md_plan *plan = rfs_md_plan_new(&mo);
    struct rfs_md_item *it = rfs_md_plan_add(plan, RFS_MD_INDEX, "x", json_object());
    SM_CHECK_EQ_INT(rfs_md_apply_rule(plan, it, "no_such_rule"), SM_ENOTFOUND);
    rfs_md_plan_free(plan);
    return 0;
}

static int test_versions(void)
{
    struct rfs_md_version v;
    SM_CHECK(!rfs_md_version_parse("7.10.2", false, &v));
    SM_CHECK_EQ_INT(v.major, 7);
    SM_CHECK_EQ_INT(v.minor, 10);
    SM_CHECK_EQ_INT(rfs_md_compat_major(&v), 7);
    /* what rfs_version_format() gives for an Elasticsearch 8.11+ index version */
    SM_CHECK(!rfs_md_version_parse("8.11+ (index version 8500003)", false, &v));
    SM_CHECK_EQ_INT(v.major, 8);
    SM_CHECK_EQ_INT(v.minor, 11);
    SM_CHECK_EQ_INT(rfs_md_compat_major(&v), 8);
    SM_CHECK_EQ_STR(v.number, "8.11+ (index version 8500003)");
    SM_CHECK(!rfs_md_version_parse("1.3.14", true, &v));
    SM_CHECK_EQ_INT(rfs_md_compat_major(&v), 7);
    SM_CHECK(!rfs_md_version_parse("2.11.0", true, &v));
    SM_CHECK_EQ_INT(rfs_md_compat_major(&v), 8);
    SM_CHECK(!rfs_md_version_parse("3.0.0", true, &v));
    SM_CHECK_EQ_INT(rfs_md_compat_major(&v), 8);
    SM_CHECK_EQ_INT(rfs_md_version_parse("x", false, &v), SM_EINVAL);
    SM_CHECK_EQ_INT(rfs_md_version_parse(NULL, false, &v), SM_EINVAL);
    return 0;
}

static int test_flatten_and_normalize(void)
{
    json_t *s = json_loads("{\"index\":{\"number_of_shards\":2,\"analysis\":{\"analyzer\":{\"a\":{\"type\":\"custom\","
                           "\"filter\":[\"lowercase\"]}}},\"hidden\":true},\"refresh_interval\":\"1s\"}", 0, NULL);
    json_t *f = rfs_md_flatten_settings(s);
    json_t *want = json_loads("{\"index.number_of_shards\":\"2\",\"index.analysis.analyzer.a.type\":\"custom\","
                              "\"index.analysis.analyzer.a.filter\":[\"lowercase\"],\"index.hidden\":\"true\","
                              "\"index.refresh_interval\":\"1s\"}", 0, NULL);
    SM_CHECK(json_equal(f, want));
    json_decref(s);
    json_decref(f);
    json_decref(want);
    /* typeless mappings get the default type; array form is merged */
    json_t *m = json_loads("{\"mappings\":{\"properties\":{\"a\":{\"type\":\"long\"}}}}", 0, NULL);
    json_t *n = rfs_md_normalize(m, "_doc");
    SM_CHECK(json_object_get(json_object_get(n, "mappings"), "_doc"));
    SM_CHECK(json_is_object(json_object_get(n, "aliases")));
    json_decref(n);
    json_decref(m);
    m = json_loads("{\"mappings\":[{\"t1\":{}},{\"t2\":{}}]}", 0, NULL);
    n = rfs_md_normalize(m, NULL);
    SM_CHECK_EQ_INT(json_object_size(json_object_get(n, "mappings")), 2);
    json_decref(n);
    json_decref(m);
    /* typed mappings stay typed even with a default type */
    m = json_loads("{\"mappings\":{\"doc\":{\"properties\":{}}}}", 0, NULL);
    n = rfs_md_normalize(m, "_doc");
    SM_CHECK(json_object_get(json_object_get(n, "mappings"), "doc"));
    json_decref(n);
    json_decref(m);
    return 0;
}

static int test_union_nested(void)
{
    struct rfs_md_opts mo = { .replicas = -1 };
    struct rfs_md_plan *plan = rfs_md_plan_new(&mo);
    struct rfs_md_item *it = rfs_md_plan_add(plan, RFS_MD_INDEX, "x", json_object());
    json_t *typed = json_loads("{\"a\":{\"dynamic\":\"strict\",\"properties\":{\"o\":{\"properties\":{\"p\":{\"type\":"
                               "\"long\"}}}}},\"b\":{\"dynamic\":\"strict\",\"properties\":{\"o\":{\"properties\":"
                               "{\"q\":{\"type\":\"long\"},\"p\":{\"type\":\"integer\"}}}}}}", 0, NULL);
    json_t *u = rfs_md_union_mappings(it, typed);
    SM_CHECK(u);
    SM_CHECK_EQ_STR(json_string_value(json_object_get(u, "dynamic")), "strict");
    json_t *o = json_object_get(json_object_get(json_object_get(u, "properties"), "o"), "properties");
    SM_CHECK_EQ_INT(json_object_size(o), 2);
    SM_CHECK_EQ_INT(json_array_size(it->problems), 1);
    SM_CHECK(strstr(json_string_value(json_array_get(it->problems, 0)), "field [o.p]"));
    json_decref(u);
    json_decref(typed);
    rfs_md_plan_free(plan);
    return 0;
}

static int test_report(void)
{
    struct rfs_md_opts mo = { .replicas = -1, .index_pattern = "keep*" };
    struct rfs_md_plan *plan = rfs_md_plan_new(&mo);
    rfs_md_version_parse("5.6.16", false, &plan->source);
    rfs_md_version_parse("2.11.0", true, &plan->target);
    json_t *meta = json_loads("{\"settings\":{\"index.number_of_shards\":\"1\",\"index.uuid\":\"u\"},\"mappings\":"
                              "[{\"t\":{\"_all\":{\"enabled\":true},\"properties\":{\"a\":{\"type\":\"keyword\"}}}}]}",
                              0, NULL);
    rfs_md_plan_add(plan, RFS_MD_INDEX, "keep1", rfs_md_normalize(meta, NULL));
    rfs_md_plan_add(plan, RFS_MD_INDEX, ".hidden", rfs_md_normalize(meta, NULL));
    json_decref(meta);
    SM_CHECK(!rfs_md_transform(plan));
    json_t *rep = rfs_md_report(plan, "evaluate");
    SM_CHECK_EQ_STR(json_string_value(json_object_get(rep, "mode")), "evaluate");
    json_t *sum = json_object_get(rep, "summary");
    SM_CHECK_EQ_INT(json_integer_value(json_object_get(sum, "create")), 1);
    SM_CHECK_EQ_INT(json_integer_value(json_object_get(sum, "skip")), 1);
    json_t *items = json_object_get(rep, "items");
    json_t *hidden = json_array_get(items, 0), *keep = json_array_get(items, 1);
    SM_CHECK_EQ_STR(json_string_value(json_object_get(hidden, "name")), ".hidden");
    SM_CHECK_EQ_STR(json_string_value(json_object_get(hidden, "action")), "skip");
    SM_CHECK_EQ_STR(json_string_value(json_object_get(keep, "action")), "create");
    json_t *body = json_object_get(keep, "body");
    SM_CHECK(!json_object_get(json_object_get(body, "settings"), "index.uuid"));
    SM_CHECK(!json_object_get(json_object_get(body, "mappings"), "_all"));
    SM_CHECK(json_object_get(json_object_get(json_object_get(body, "mappings"), "properties"), "a"));
    json_t *tr = json_object_get(json_object_get(rep, "type_rules"), "keep1");
    SM_CHECK_EQ_STR(json_string_value(json_object_get(tr, "mode")), "drop");
    size_t k;
    json_t *t;
    bool all = false;
    json_array_foreach(json_object_get(keep, "transformations"), k, t)
        all |= !strcmp(json_string_value(json_object_get(t, "rule")), "all_field");
    SM_CHECK(all);
    json_decref(rep);
    rfs_md_plan_free(plan);
    return 0;
}

SM_TEST_MAIN(SM_TC(test_fixture_cases), SM_TC(test_rule_table), SM_TC(test_versions),
             SM_TC(test_flatten_and_normalize), SM_TC(test_union_nested), SM_TC(test_report))
