/* Unit tests for the comparator (replay/compare): each rule on real-looking
 * Elasticsearch/OpenSearch responses, endpoint grouping, user rules, noise
 * learning; and the report figures. */
#include <sm/err.h>
#include <sm/mem.h>
#include <sm/opt.h>
#include <sm/util.h>

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <unistd.h>

#include "compare/compare.h"
#include "compare/jdoc.h"
#include "report/report.h"
#include "sm_test.h"

static json_t *resp(int status, const char *body)
{
    json_t *r = json_pack("{s:s,s:i,s:s}", "HTTP-Version", "HTTP/1.1", "Status-Code", status, "Reason-Phrase", "OK");
    json_t *p = json_object();
    if (body) {
        json_error_t je;
        json_t *v = json_loads(body, JSON_DECODE_ANY, &je);
        if (!v)
            fprintf(stderr, "bad test JSON: %s: %s\n", je.text, body);
        json_object_set_new(p, "inlinedJsonBody", v);
    }
    json_object_set_new(r, "payload", p);
    json_object_set_new(r, "response_time_ms", json_integer(5));
    return r;
}

/* a tuple; tgt_status 0: no target response (error) */
static json_t *tuple(const char *method, const char *uri, const char *req_lines, int ss, const char *sb, int ts,
                     const char *tb)
{
    json_t *q = json_pack("{s:s,s:s,s:s}", "Method", method, "Request-URI", uri, "HTTP-Version", "HTTP/1.1");
    json_t *qp = json_object();
    if (req_lines) {
        json_error_t je;
        json_object_set_new(qp, "inlinedJsonSequenceBodies", json_loads(req_lines, 0, &je));
    }
    json_object_set_new(q, "payload", qp);
    json_t *t = json_pack("{s:o,s:s,s:i,s:i}", "sourceRequest", q, "connectionId", "c1.0", "numRequests", 1,
                          "numErrors", ts ? 0 : 1);
    if (ss)
        json_object_set_new(t, "sourceResponse", resp(ss, sb));
    json_t *tr = json_array();
    if (ts)
        json_array_append_new(tr, resp(ts, tb));
    else
        json_object_set_new(t, "error", json_string("timeout after 30000 ms"));
    json_object_set_new(t, "targetResponses", tr);
    return t;
}

/* compares and returns the class; *paths gets the difference pointers joined by ' ' */
static enum replay_cmp_class run(struct replay_cmp *c, json_t *t, char *paths, size_t n)
{
    json_t *cmp = NULL;
    enum replay_cmp_class cls = replay_cmp_tuple(c, t, &cmp);
    paths[0] = 0;
    size_t i;
    json_t *d;
    json_array_foreach(json_object_get(cmp, "differences"), i, d) {
        size_t l = strlen(paths);
        snprintf(paths + l, n - l, "%s%s", l ? " " : "", json_string_value(json_object_get(d, "path")));
    }
    json_decref(cmp);
    json_decref(t);
    return cls;
}

#define SEARCH_HEAD "{\"took\":%d,\"timed_out\":false,\"_shards\":{\"total\":%d,\"successful\":%d,\"skipped\":0,\"failed\":0},"

static int test_classes(void)
{
    struct replay_cmp *c = replay_cmp_new();
    char p[1024];
    SM_CHECK(c);
    SM_CHECK_EQ_INT(run(c, tuple("GET", "/i/_doc/1", NULL, 200, "{\"found\":true}", 200, "{\"found\":true}"), p,
                        sizeof(p)), REPLAY_CMP_SAME);
    SM_CHECK_EQ_INT(run(c, tuple("GET", "/i/_doc/1", NULL, 200, "{\"found\":true}", 404, "{\"found\":false}"), p,
                        sizeof(p)), REPLAY_CMP_STATUS);
    SM_CHECK_EQ_INT(run(c, tuple("GET", "/i/_doc/1", NULL, 200, "{\"found\":true,\"_source\":{\"a\":1}}", 200,
                                 "{\"found\":true,\"_source\":{\"a\":2}}"), p, sizeof(p)), REPLAY_CMP_BODY);
    SM_CHECK_EQ_STR(p, "/_source/a");
    SM_CHECK_EQ_INT(run(c, tuple("GET", "/i/_doc/1", NULL, 200, "{}", 0, NULL), p, sizeof(p)), REPLAY_CMP_TARGET_ERROR);
    SM_CHECK_EQ_INT(run(c, tuple("GET", "/i/_doc/1", NULL, 0, NULL, 200, "{}"), p, sizeof(p)), REPLAY_CMP_NO_SOURCE);
    /* the comparison object names everything */
    json_t *t = tuple("GET", "/logs-2024/_doc/abc?routing=x", NULL, 200, "{\"_source\":{\"a\":[1,2]}}", 200,
                      "{\"_source\":{\"a\":[1]}}");
    json_t *cmp = NULL;
    SM_CHECK_EQ_INT(replay_cmp_tuple(c, t, &cmp), REPLAY_CMP_BODY);
    SM_CHECK_EQ_STR(json_string_value(json_object_get(cmp, "result")), "body");
    SM_CHECK_EQ_STR(json_string_value(json_object_get(cmp, "endpoint")), "GET /{index}/_doc/{id}");
    json_t *d = json_array_get(json_object_get(cmp, "differences"), 0);
    SM_CHECK_EQ_STR(json_string_value(json_object_get(d, "path")), "/_source/a/1");
    SM_CHECK_EQ_INT(json_integer_value(json_object_get(d, "source")), 2);
    SM_CHECK(!json_object_get(d, "target"));   /* absent on the target */
    json_decref(cmp);
    json_decref(t);
    replay_cmp_free(c);
    return 0;
}

static int test_default_ignores(void)
{
    struct replay_cmp *c = replay_cmp_new();
    char p[1024];
    /* index response: took, _shards counts, _seq_no, _primary_term, _version differ */
    SM_CHECK_EQ_INT(run(c, tuple("PUT", "/i/_doc/1", NULL, 201,
                                 "{\"_index\":\"i\",\"_type\":\"_doc\",\"_id\":\"1\",\"_version\":3,\"result\":\"created\","
                                 "\"_shards\":{\"total\":2,\"successful\":1,\"failed\":0},\"_seq_no\":17,\"_primary_term\":2}",
                                 201, "{\"_index\":\"i\",\"_id\":\"1\",\"_version\":1,\"result\":\"created\","
                                 "\"_shards\":{\"total\":1,\"successful\":1,\"failed\":0},\"_seq_no\":0,\"_primary_term\":1}"),
                        p, sizeof(p)), REPLAY_CMP_SAME);
    /* but the result is compared */
    SM_CHECK_EQ_INT(run(c, tuple("PUT", "/i/_doc/1", NULL, 201, "{\"_id\":\"1\",\"result\":\"created\",\"_seq_no\":1}",
                                 201, "{\"_id\":\"1\",\"result\":\"updated\",\"_seq_no\":5}"), p, sizeof(p)),
                    REPLAY_CMP_BODY);
    SM_CHECK_EQ_STR(p, "/result");
    /* GET /: names, uuids, version, tagline ignored */
    SM_CHECK_EQ_INT(run(c, tuple("GET", "/", NULL, 200,
                                 "{\"name\":\"es-node-1\",\"cluster_name\":\"prod\",\"cluster_uuid\":\"aaa\","
                                 "\"version\":{\"number\":\"7.10.2\",\"distribution\":\"default\"},"
                                 "\"tagline\":\"You Know, for Search\"}",
                                 200, "{\"name\":\"os-0\",\"cluster_name\":\"target\",\"cluster_uuid\":\"bbb\","
                                 "\"version\":{\"distribution\":\"opensearch\",\"number\":\"2.11.0\"},"
                                 "\"tagline\":\"The OpenSearch Project: https://opensearch.org/\"}"),
                        p, sizeof(p)), REPLAY_CMP_SAME);
    /* cluster health: names and pending tasks ignored, status compared */
    const char *h1 = "{\"cluster_name\":\"prod\",\"status\":\"green\",\"timed_out\":false,\"number_of_nodes\":3,"
                     "\"number_of_pending_tasks\":2,\"task_max_waiting_in_queue_millis\":15}";
    const char *h2 = "{\"cluster_name\":\"tgt\",\"status\":\"green\",\"timed_out\":false,\"number_of_nodes\":3,"
                     "\"number_of_pending_tasks\":0,\"task_max_waiting_in_queue_millis\":0}";
    const char *h3 = "{\"cluster_name\":\"tgt\",\"status\":\"yellow\",\"timed_out\":false,\"number_of_nodes\":3,"
                     "\"number_of_pending_tasks\":0,\"task_max_waiting_in_queue_millis\":0}";
    SM_CHECK_EQ_INT(run(c, tuple("GET", "/_cluster/health", NULL, 200, h1, 200, h2), p, sizeof(p)), REPLAY_CMP_SAME);
    SM_CHECK_EQ_INT(run(c, tuple("GET", "/_cluster/health", NULL, 200, h1, 200, h3), p, sizeof(p)), REPLAY_CMP_BODY);
    SM_CHECK_EQ_STR(p, "/status");
    /* default rules do not reach into documents: a user field named like an ignored one */
    SM_CHECK_EQ_INT(run(c, tuple("GET", "/i/_doc/1", NULL, 200, "{\"took\":1,\"_source\":{\"took\":5,\"node\":\"a\"}}",
                                 200, "{\"took\":2,\"_source\":{\"took\":6,\"node\":\"b\"}}"), p, sizeof(p)),
                    REPLAY_CMP_BODY);
    SM_CHECK_EQ_STR(p, "/_source/took /_source/node");
    /* _msearch: took per response ignored, hits ties per response */
    SM_CHECK_EQ_INT(run(c, tuple("POST", "/_msearch", NULL, 200,
                                 "{\"took\":9,\"responses\":[{\"took\":3,\"hits\":{\"total\":2,\"hits\":["
                                 "{\"_id\":\"a\",\"_score\":1},{\"_id\":\"b\",\"_score\":1}]},\"status\":200}]}",
                                 200, "{\"took\":4,\"responses\":[{\"took\":1,\"hits\":{\"total\":"
                                 "{\"value\":2,\"relation\":\"eq\"},\"hits\":[{\"_id\":\"b\",\"_score\":1},"
                                 "{\"_id\":\"a\",\"_score\":1}]},\"status\":200}]}"), p, sizeof(p)), REPLAY_CMP_SAME);
    /* _cat text tables are ignored by default; other text bodies are compared */
    SM_CHECK_EQ_INT(run(c, tuple("GET", "/_cat/health", NULL, 200, "\"1700000000 12:00:00 prod green 3\"", 200,
                                 "\"1700000099 12:01:39 tgt green 3\""), p, sizeof(p)), REPLAY_CMP_SAME);
    SM_CHECK_EQ_INT(run(c, tuple("GET", "/i/_doc/1", NULL, 200, "\"a\"", 200, "\"b\""), p, sizeof(p)),
                    REPLAY_CMP_BODY);
    SM_CHECK_EQ_STR(p, "");
    /* pending tasks are only ignored in cluster APIs */
    SM_CHECK_EQ_INT(run(c, tuple("GET", "/i/_stats", NULL, 200, "{\"number_of_pending_tasks\":1}", 200,
                                 "{\"number_of_pending_tasks\":0}"), p, sizeof(p)), REPLAY_CMP_BODY);
    replay_cmp_free(c);
    return 0;
}

static int test_search_ties_as_sets(void)
{
    struct replay_cmp *c = replay_cmp_new();
    char p[1024];
    char s1[1024], s2[1024];
    /* three hits tied at 1.0 come back in another order on the target: same */
    snprintf(s1, sizeof(s1), SEARCH_HEAD "\"hits\":{\"total\":{\"value\":3,\"relation\":\"eq\"},\"max_score\":1.0,"
             "\"hits\":[{\"_index\":\"i\",\"_id\":\"1\",\"_score\":1.0,\"_source\":{\"t\":\"a\"}},"
             "{\"_index\":\"i\",\"_id\":\"2\",\"_score\":1.0,\"_source\":{\"t\":\"b\"}},"
             "{\"_index\":\"i\",\"_id\":\"3\",\"_score\":1.0,\"_source\":{\"t\":\"c\"}}]}}", 12, 5, 5);
    snprintf(s2, sizeof(s2), SEARCH_HEAD "\"hits\":{\"total\":{\"value\":3,\"relation\":\"eq\"},\"max_score\":1.0,"
             "\"hits\":[{\"_index\":\"i\",\"_id\":\"3\",\"_score\":1.0,\"_source\":{\"t\":\"c\"}},"
             "{\"_index\":\"i\",\"_id\":\"1\",\"_score\":1.0,\"_source\":{\"t\":\"a\"}},"
             "{\"_index\":\"i\",\"_id\":\"2\",\"_score\":1.0,\"_source\":{\"t\":\"b\"}}]}}", 3, 1, 1);
    SM_CHECK_EQ_INT(run(c, tuple("POST", "/i/_search", NULL, 200, s1, 200, s2), p, sizeof(p)), REPLAY_CMP_SAME);
    /* a tied hit's document differs: reported at the source position */
    snprintf(s2, sizeof(s2), SEARCH_HEAD "\"hits\":{\"total\":{\"value\":3,\"relation\":\"eq\"},\"max_score\":1.0,"
             "\"hits\":[{\"_index\":\"i\",\"_id\":\"3\",\"_score\":1.0,\"_source\":{\"t\":\"c\"}},"
             "{\"_index\":\"i\",\"_id\":\"1\",\"_score\":1.0,\"_source\":{\"t\":\"a\"}},"
             "{\"_index\":\"i\",\"_id\":\"2\",\"_score\":1.0,\"_source\":{\"t\":\"B\"}}]}}", 3, 1, 1);
    SM_CHECK_EQ_INT(run(c, tuple("POST", "/i/_search", NULL, 200, s1, 200, s2), p, sizeof(p)), REPLAY_CMP_BODY);
    SM_CHECK_EQ_STR(p, "/hits/hits/1/_source/t");
    /* a different document in the tie group: one missing, one extra */
    snprintf(s2, sizeof(s2), SEARCH_HEAD "\"hits\":{\"total\":{\"value\":3,\"relation\":\"eq\"},\"max_score\":1.0,"
             "\"hits\":[{\"_index\":\"i\",\"_id\":\"3\",\"_score\":1.0,\"_source\":{\"t\":\"c\"}},"
             "{\"_index\":\"i\",\"_id\":\"1\",\"_score\":1.0,\"_source\":{\"t\":\"a\"}},"
             "{\"_index\":\"i\",\"_id\":\"9\",\"_score\":1.0,\"_source\":{\"t\":\"b\"}}]}}", 3, 1, 1);
    SM_CHECK_EQ_INT(run(c, tuple("POST", "/i/_search", NULL, 200, s1, 200, s2), p, sizeof(p)), REPLAY_CMP_BODY);
    SM_CHECK_EQ_STR(p, "/hits/hits/1 /hits/hits/2");
    /* the target returns fewer tied hits: each missing one reported once */
    snprintf(s2, sizeof(s2), SEARCH_HEAD "\"hits\":{\"total\":{\"value\":3,\"relation\":\"eq\"},\"max_score\":1.0,"
             "\"hits\":[{\"_index\":\"i\",\"_id\":\"2\",\"_score\":1.0,\"_source\":{\"t\":\"b\"}}]}}", 3, 1, 1);
    SM_CHECK_EQ_INT(run(c, tuple("POST", "/i/_search", NULL, 200, s1, 200, s2), p, sizeof(p)), REPLAY_CMP_BODY);
    SM_CHECK_EQ_STR(p, "/hits/hits/0 /hits/hits/2");
    replay_cmp_free(c);
    return 0;
}

static int test_search_order_without_ties(void)
{
    struct replay_cmp *c = replay_cmp_new();
    char p[1024];
    const char *s1 = "{\"took\":4,\"hits\":{\"total\":{\"value\":2,\"relation\":\"eq\"},\"max_score\":2.5,\"hits\":["
                     "{\"_index\":\"i\",\"_id\":\"1\",\"_score\":2.5},{\"_index\":\"i\",\"_id\":\"2\",\"_score\":1.2}]}}";
    /* distinct scores swapped: the order matters */
    const char *s2 = "{\"took\":4,\"hits\":{\"total\":{\"value\":2,\"relation\":\"eq\"},\"max_score\":2.5,\"hits\":["
                     "{\"_index\":\"i\",\"_id\":\"2\",\"_score\":2.5},{\"_index\":\"i\",\"_id\":\"1\",\"_score\":1.2}]}}";
    SM_CHECK_EQ_INT(run(c, tuple("GET", "/i/_search", NULL, 200, s1, 200, s2), p, sizeof(p)), REPLAY_CMP_BODY);
    SM_CHECK_EQ_STR(p, "/hits/hits/0/_id /hits/hits/1/_id");
    /* scores within the tolerance are equal, beyond it not */
    const char *s3 = "{\"took\":9,\"hits\":{\"total\":{\"value\":2,\"relation\":\"eq\"},\"max_score\":2.5000001,\"hits\":["
                     "{\"_index\":\"i\",\"_id\":\"1\",\"_score\":2.5000001},{\"_index\":\"i\",\"_id\":\"2\",\"_score\":1.2}]}}";
    SM_CHECK_EQ_INT(run(c, tuple("GET", "/i/_search", NULL, 200, s1, 200, s3), p, sizeof(p)), REPLAY_CMP_SAME);
    const char *s4 = "{\"took\":9,\"hits\":{\"total\":{\"value\":2,\"relation\":\"eq\"},\"max_score\":2.7,\"hits\":["
                     "{\"_index\":\"i\",\"_id\":\"1\",\"_score\":2.7},{\"_index\":\"i\",\"_id\":\"2\",\"_score\":1.2}]}}";
    SM_CHECK_EQ_INT(run(c, tuple("GET", "/i/_search", NULL, 200, s1, 200, s4), p, sizeof(p)), REPLAY_CMP_BODY);
    SM_CHECK_EQ_STR(p, "/hits/max_score /hits/hits/0/_score");
    /* sorted by a field: equal sort values tie, scores are null */
    const char *f1 = "{\"hits\":{\"total\":{\"value\":3,\"relation\":\"eq\"},\"max_score\":null,\"hits\":["
                     "{\"_index\":\"i\",\"_id\":\"a\",\"_score\":null,\"sort\":[5]},"
                     "{\"_index\":\"i\",\"_id\":\"b\",\"_score\":null,\"sort\":[5]},"
                     "{\"_index\":\"i\",\"_id\":\"c\",\"_score\":null,\"sort\":[7]}]}}";
    const char *f2 = "{\"hits\":{\"total\":{\"value\":3,\"relation\":\"eq\"},\"max_score\":null,\"hits\":["
                     "{\"_index\":\"i\",\"_id\":\"b\",\"_score\":null,\"sort\":[5]},"
                     "{\"_index\":\"i\",\"_id\":\"a\",\"_score\":null,\"sort\":[5]},"
                     "{\"_index\":\"i\",\"_id\":\"c\",\"_score\":null,\"sort\":[7]}]}}";
    SM_CHECK_EQ_INT(run(c, tuple("GET", "/i/_search", NULL, 200, f1, 200, f2), p, sizeof(p)), REPLAY_CMP_SAME);
    /* a user rule raising the tolerance */
    char e[256];
    SM_CHECK_EQ_INT(replay_cmp_add_rule_line(c, "tolerance 0.2", e, sizeof(e)), SM_OK);
    SM_CHECK_EQ_INT(run(c, tuple("GET", "/i/_search", NULL, 200, s1, 200, s4), p, sizeof(p)), REPLAY_CMP_SAME);
    replay_cmp_free(c);
    return 0;
}

static int test_hits_total_forms(void)
{
    struct replay_cmp *c = replay_cmp_new();
    char p[1024];
    /* ES 6 plain number == 7+ {value, relation: eq} */
    SM_CHECK_EQ_INT(run(c, tuple("GET", "/i/_search", NULL, 200, "{\"hits\":{\"total\":42,\"max_score\":0.0,\"hits\":[]}}",
                                 200, "{\"hits\":{\"total\":{\"value\":42,\"relation\":\"eq\"},\"max_score\":null,\"hits\":[]}}"),
                        p, sizeof(p)), REPLAY_CMP_BODY);
    SM_CHECK_EQ_STR(p, "/hits/max_score");   /* 0.0 vs null is a difference; the totals are not */
    SM_CHECK_EQ_INT(run(c, tuple("GET", "/i/_search", NULL, 200, "{\"hits\":{\"total\":42,\"hits\":[]}}",
                                 200, "{\"hits\":{\"total\":{\"value\":42,\"relation\":\"eq\"},\"hits\":[]}}"),
                        p, sizeof(p)), REPLAY_CMP_SAME);
    SM_CHECK_EQ_INT(run(c, tuple("GET", "/i/_search", NULL, 200, "{\"hits\":{\"total\":42,\"hits\":[]}}",
                                 200, "{\"hits\":{\"total\":{\"value\":41,\"relation\":\"eq\"},\"hits\":[]}}"),
                        p, sizeof(p)), REPLAY_CMP_BODY);
    SM_CHECK_EQ_STR(p, "/hits/total");
    /* the relation counts */
    SM_CHECK_EQ_INT(run(c, tuple("GET", "/i/_search", NULL, 200,
                                 "{\"hits\":{\"total\":{\"value\":10000,\"relation\":\"gte\"},\"hits\":[]}}", 200,
                                 "{\"hits\":{\"total\":{\"value\":10000,\"relation\":\"eq\"},\"hits\":[]}}"),
                        p, sizeof(p)), REPLAY_CMP_BODY);
    SM_CHECK_EQ_STR(p, "/hits/total");
    replay_cmp_free(c);
    return 0;
}

static int test_bulk_items(void)
{
    struct replay_cmp *c = replay_cmp_new();
    char p[1024];
    const char *req = "[{\"index\":{\"_index\":\"i\",\"_id\":\"1\"}},{\"a\":1},"
                      "{\"index\":{\"_index\":\"i\"}},{\"a\":2},"
                      "{\"delete\":{\"_index\":\"i\",\"_id\":\"7\"}},"
                      "{\"create\":{\"_index\":\"i\",\"_id\":\"3\"}},{\"a\":3}]";
    const char *b1 = "{\"took\":30,\"errors\":true,\"items\":["
        "{\"index\":{\"_index\":\"i\",\"_id\":\"1\",\"_version\":4,\"result\":\"updated\",\"_shards\":{\"total\":2,\"successful\":1,\"failed\":0},\"_seq_no\":10,\"_primary_term\":1,\"status\":200}},"
        "{\"index\":{\"_index\":\"i\",\"_id\":\"Xk3fOYwBzP0L2Qr1aB7c\",\"_version\":1,\"result\":\"created\",\"_seq_no\":11,\"_primary_term\":1,\"status\":201}},"
        "{\"delete\":{\"_index\":\"i\",\"_id\":\"7\",\"_version\":2,\"result\":\"not_found\",\"_seq_no\":12,\"_primary_term\":1,\"status\":404}},"
        "{\"create\":{\"_index\":\"i\",\"_id\":\"3\",\"status\":409,\"error\":{\"type\":\"version_conflict_engine_exception\",\"reason\":\"[3]: version conflict, document already exists (current version [1])\",\"index_uuid\":\"u1\",\"shard\":\"0\",\"index\":\"i\"}}}]}";
    /* same outcome item by item; seq_no, versions, generated id and reason wording differ */
    const char *b2 = "{\"took\":7,\"errors\":true,\"items\":["
        "{\"index\":{\"_index\":\"i\",\"_id\":\"1\",\"_version\":2,\"result\":\"updated\",\"_shards\":{\"total\":1,\"successful\":1,\"failed\":0},\"_seq_no\":3,\"_primary_term\":1,\"status\":200}},"
        "{\"index\":{\"_index\":\"i\",\"_id\":\"p2kx9YwBn1-5Hc0qWm2z\",\"_version\":1,\"result\":\"created\",\"_seq_no\":4,\"_primary_term\":1,\"status\":201}},"
        "{\"delete\":{\"_index\":\"i\",\"_id\":\"7\",\"_version\":1,\"result\":\"not_found\",\"_seq_no\":5,\"_primary_term\":1,\"status\":404}},"
        "{\"create\":{\"_index\":\"i\",\"_id\":\"3\",\"status\":409,\"error\":{\"type\":\"version_conflict_engine_exception\",\"reason\":\"[3]: version conflict, document already exists (current version [2])\",\"index_uuid\":\"u2\",\"shard\":\"0\",\"index\":\"i\"}}}]}";
    SM_CHECK_EQ_INT(run(c, tuple("POST", "/_bulk", req, 200, b1, 200, b2), p, sizeof(p)), REPLAY_CMP_SAME);
    /* partial failure on the target only: item 2 differs in status and result, errors flag too */
    const char *b3 = "{\"took\":7,\"errors\":true,\"items\":["
        "{\"index\":{\"_index\":\"i\",\"_id\":\"1\",\"_version\":2,\"result\":\"updated\",\"_shards\":{\"total\":1,\"successful\":1,\"failed\":0},\"_seq_no\":3,\"_primary_term\":1,\"status\":200}},"
        "{\"index\":{\"_index\":\"i\",\"_id\":\"p2kx9YwBn1-5Hc0qWm2z\",\"status\":429,\"error\":{\"type\":\"es_rejected_execution_exception\",\"reason\":\"rejected execution\"}}},"
        "{\"delete\":{\"_index\":\"i\",\"_id\":\"7\",\"_version\":1,\"result\":\"not_found\",\"_seq_no\":5,\"_primary_term\":1,\"status\":404}},"
        "{\"create\":{\"_index\":\"i\",\"_id\":\"3\",\"status\":409,\"error\":{\"type\":\"version_conflict_engine_exception\",\"reason\":\"x\",\"shard\":\"0\",\"index\":\"i\"}}}]}";
    SM_CHECK_EQ_INT(run(c, tuple("POST", "/_bulk", req, 200, b1, 200, b3), p, sizeof(p)), REPLAY_CMP_BODY);
    SM_CHECK_EQ_STR(p, "/items/1/index/result /items/1/index/status /items/1/index/error");
    /* an explicit id that differs is a difference */
    const char *b4x = "{\"took\":7,\"errors\":true,\"items\":["
        "{\"index\":{\"_index\":\"i\",\"_id\":\"1b\",\"_version\":2,\"result\":\"updated\",\"_shards\":{\"total\":1,\"successful\":1,\"failed\":0},\"_seq_no\":3,\"_primary_term\":1,\"status\":200}},"
        "{\"index\":{\"_index\":\"i\",\"_id\":\"p2kx9YwBn1-5Hc0qWm2z\",\"_version\":1,\"result\":\"created\",\"_seq_no\":4,\"_primary_term\":1,\"status\":201}},"
        "{\"delete\":{\"_index\":\"i\",\"_id\":\"7\",\"_version\":1,\"result\":\"not_found\",\"_seq_no\":5,\"_primary_term\":1,\"status\":404}},"
        "{\"create\":{\"_index\":\"i\",\"_id\":\"3\",\"status\":409,\"error\":{\"type\":\"version_conflict_engine_exception\",\"reason\":\"[3]: version conflict, document already exists (current version [2])\",\"index_uuid\":\"u2\",\"shard\":\"0\",\"index\":\"i\"}}}]}";
    SM_CHECK_EQ_INT(run(c, tuple("POST", "/_bulk", req, 200, b1, 200, b4x), p, sizeof(p)), REPLAY_CMP_BODY);
    SM_CHECK_EQ_STR(p, "/items/0/index/_id");
    replay_cmp_free(c);
    return 0;
}

static int test_aggregation_buckets(void)
{
    struct replay_cmp *c = replay_cmp_new();
    char p[1024];
    const char *a1 = "{\"took\":2,\"hits\":{\"total\":{\"value\":10,\"relation\":\"eq\"},\"max_score\":null,\"hits\":[]},"
                     "\"aggregations\":{\"by_tag\":{\"doc_count_error_upper_bound\":0,\"sum_other_doc_count\":0,\"buckets\":["
                     "{\"key\":\"red\",\"doc_count\":4,\"avg_price\":{\"value\":10.5}},"
                     "{\"key\":\"blue\",\"doc_count\":3,\"avg_price\":{\"value\":7.0}},"
                     "{\"key\":\"green\",\"doc_count\":3,\"avg_price\":{\"value\":2.0}}]},"
                     "\"years\":{\"buckets\":[{\"key\":2023,\"doc_count\":6},{\"key\":2024,\"doc_count\":4}]}}}";
    /* tied buckets in another order, different error bound: same */
    const char *a2 = "{\"took\":5,\"hits\":{\"total\":{\"value\":10,\"relation\":\"eq\"},\"max_score\":null,\"hits\":[]},"
                     "\"aggregations\":{\"by_tag\":{\"doc_count_error_upper_bound\":2,\"sum_other_doc_count\":0,\"buckets\":["
                     "{\"key\":\"red\",\"doc_count\":4,\"avg_price\":{\"value\":10.5}},"
                     "{\"key\":\"green\",\"doc_count\":3,\"avg_price\":{\"value\":2.0}},"
                     "{\"key\":\"blue\",\"doc_count\":3,\"avg_price\":{\"value\":7.0}}]},"
                     "\"years\":{\"buckets\":[{\"key\":2023,\"doc_count\":6},{\"key\":2024,\"doc_count\":4}]}}}";
    SM_CHECK_EQ_INT(run(c, tuple("GET", "/shop/_search", NULL, 200, a1, 200, a2), p, sizeof(p)), REPLAY_CMP_SAME);
    /* a bucket's count and a sub-aggregation differ, a bucket is missing */
    const char *a3 = "{\"took\":5,\"hits\":{\"total\":{\"value\":10,\"relation\":\"eq\"},\"max_score\":null,\"hits\":[]},"
                     "\"aggregations\":{\"by_tag\":{\"doc_count_error_upper_bound\":0,\"sum_other_doc_count\":0,\"buckets\":["
                     "{\"key\":\"red\",\"doc_count\":5,\"avg_price\":{\"value\":10.5}},"
                     "{\"key\":\"blue\",\"doc_count\":3,\"avg_price\":{\"value\":7.5}}]},"
                     "\"years\":{\"buckets\":[{\"key\":2023,\"doc_count\":6},{\"key\":2024,\"doc_count\":4}]}}}";
    SM_CHECK_EQ_INT(run(c, tuple("GET", "/shop/_search", NULL, 200, a1, 200, a3), p, sizeof(p)), REPLAY_CMP_BODY);
    SM_CHECK_EQ_STR(p, "/aggregations/by_tag/buckets/1/avg_price/value /aggregations/by_tag/buckets/2 "
                       "/aggregations/by_tag/buckets/0/doc_count");
    replay_cmp_free(c);
    return 0;
}

static int test_error_bodies(void)
{
    struct replay_cmp *c = replay_cmp_new();
    char p[1024];
    const char *e1 = "{\"error\":{\"root_cause\":[{\"type\":\"index_not_found_exception\",\"reason\":\"no such index [logs]\","
                     "\"resource.type\":\"index_or_alias\",\"resource.id\":\"logs\",\"index_uuid\":\"_na_\",\"index\":\"logs\"}],"
                     "\"type\":\"index_not_found_exception\",\"reason\":\"no such index [logs]\",\"resource.type\":\"index_or_alias\","
                     "\"resource.id\":\"logs\",\"index_uuid\":\"_na_\",\"index\":\"logs\"},\"status\":404}";
    const char *e2 = "{\"error\":{\"root_cause\":[{\"type\":\"index_not_found_exception\",\"reason\":\"no such index [[logs]]\","
                     "\"resource.type\":\"index_or_alias\",\"resource.id\":\"logs\",\"index_uuid\":\"_na_\",\"index\":\"logs\"}],"
                     "\"type\":\"index_not_found_exception\",\"reason\":\"no such index [[logs]]\",\"resource.type\":\"index_or_alias\","
                     "\"resource.id\":\"logs\",\"index_uuid\":\"_na_\",\"index\":\"logs\"},\"status\":404}";
    /* reason wording differs between versions: ignored; the type is compared */
    SM_CHECK_EQ_INT(run(c, tuple("GET", "/logs/_search", NULL, 404, e1, 404, e2), p, sizeof(p)), REPLAY_CMP_SAME);
    const char *e3 = "{\"error\":{\"root_cause\":[{\"type\":\"security_exception\",\"reason\":\"denied\"}],"
                     "\"type\":\"security_exception\",\"reason\":\"denied\"},\"status\":404}";
    SM_CHECK_EQ_INT(run(c, tuple("GET", "/logs/_search", NULL, 404, e1, 404, e3), p, sizeof(p)), REPLAY_CMP_BODY);
    SM_CHECK(strstr(p, "/error/type"));
    SM_CHECK(strstr(p, "/error/root_cause/0/type"));
    SM_CHECK(!strstr(p, "reason"));
    replay_cmp_free(c);
    return 0;
}

static int test_user_rules(void)
{
    char path[] = "/tmp/sm-compare-rulesXXXXXX";
    int fd = mkstemp(path);
    SM_CHECK(fd >= 0);
    const char *text = "# user rules\n"
                       "ignore /hits/hits/*/_source/updated_at\n"
                       "[GET /{index}/_doc/{id}]\n"
                       "ignore _source.counter   # dotted, any depth\n"
                       "[*]\n"
                       "unignore _version\n";
    SM_CHECK(write(fd, text, strlen(text)) == (ssize_t)strlen(text));
    close(fd);
    struct replay_cmp *c = replay_cmp_new();
    char e[256], p[1024];
    SM_CHECK_EQ_INT(replay_cmp_load_rules(c, path, e, sizeof(e)), SM_OK);
    unlink(path);
    const char *s1 = "{\"hits\":{\"total\":1,\"hits\":[{\"_id\":\"1\",\"_score\":1,\"_source\":{\"updated_at\":\"2024-01-01\",\"x\":1}}]}}";
    const char *s2 = "{\"hits\":{\"total\":1,\"hits\":[{\"_id\":\"1\",\"_score\":1,\"_source\":{\"updated_at\":\"2025-06-01\",\"x\":1}}]}}";
    SM_CHECK_EQ_INT(run(c, tuple("GET", "/i/_search", NULL, 200, s1, 200, s2), p, sizeof(p)), REPLAY_CMP_SAME);
    /* scoped rule: only for GET /{index}/_doc/{id} */
    const char *d1 = "{\"_id\":\"1\",\"_source\":{\"counter\":5}}", *d2 = "{\"_id\":\"1\",\"_source\":{\"counter\":6}}";
    SM_CHECK_EQ_INT(run(c, tuple("GET", "/i/_doc/1", NULL, 200, d1, 200, d2), p, sizeof(p)), REPLAY_CMP_SAME);
    SM_CHECK_EQ_INT(run(c, tuple("GET", "/i/_source/1", NULL, 200, d1, 200, d2), p, sizeof(p)), REPLAY_CMP_BODY);
    /* unignore brings a default back */
    SM_CHECK_EQ_INT(run(c, tuple("GET", "/i/_doc/1", NULL, 200, "{\"_version\":1}", 200, "{\"_version\":2}"), p,
                        sizeof(p)), REPLAY_CMP_BODY);
    SM_CHECK_EQ_STR(p, "/_version");
    replay_cmp_free(c);

    /* JSON form */
    char jpath[] = "/tmp/sm-compare-rulesXXXXXX";
    fd = mkstemp(jpath);
    const char *jtext = "{\"tolerance\": 0.5, \"max_differences\": 1, \"rules\": ["
                        "{\"endpoint\": \"GET /{index}/_search\", \"ignore\": [\"/hits/hits/*/_source/x\"]},"
                        "{\"ignore\": \"/extra\"}]}";
    SM_CHECK(write(fd, jtext, strlen(jtext)) == (ssize_t)strlen(jtext));
    close(fd);
    c = replay_cmp_new();
    SM_CHECK_EQ_INT(replay_cmp_load_rules(c, jpath, e, sizeof(e)), SM_OK);
    unlink(jpath);
    const char *s3 = "{\"hits\":{\"total\":1,\"hits\":[{\"_id\":\"1\",\"_score\":1.3,\"_source\":{\"updated_at\":\"2025\",\"x\":2}}]},\"extra\":1}";
    json_t *cmp = NULL, *t = tuple("GET", "/i/_search", NULL, 200, s1, 200, s3);
    SM_CHECK_EQ_INT(replay_cmp_tuple(c, t, &cmp), REPLAY_CMP_BODY);
    /* only updated_at differs: x ignored, 1 vs 1.3 within 0.5; list bounded to 1 */
    SM_CHECK_EQ_INT(json_integer_value(json_object_get(cmp, "num_differences")), 1);
    SM_CHECK_EQ_INT(json_array_size(json_object_get(cmp, "differences")), 1);
    json_decref(cmp);
    json_decref(t);
    /* errors name the line */
    char bpath[] = "/tmp/sm-compare-rulesXXXXXX";
    fd = mkstemp(bpath);
    SM_CHECK(write(fd, "ignore a\nfrobnicate b\n", 22) == 22);
    close(fd);
    SM_CHECK_EQ_INT(replay_cmp_load_rules(c, bpath, e, sizeof(e)), SM_ECONFIG);
    unlink(bpath);
    SM_CHECK(strstr(e, ":2:"));
    replay_cmp_free(c);
    return 0;
}

static int test_index_renames(void)
{
    struct replay_cmp *c = replay_cmp_new();
    struct sm_strlist rn = { 0 };
    char e[256], p[1024];
    sm_strlist_push(&rn, "idx1=idx2");
    SM_CHECK_EQ_INT(replay_cmp_set_index_renames(c, &rn, e, sizeof(e)), SM_OK);
    SM_CHECK_EQ_INT(run(c, tuple("GET", "/idx1/_doc/1", NULL, 200, "{\"_index\":\"idx1\",\"_id\":\"1\"}", 200,
                                 "{\"_index\":\"idx2\",\"_id\":\"1\"}"), p, sizeof(p)), REPLAY_CMP_SAME);
    SM_CHECK_EQ_INT(run(c, tuple("GET", "/idx1/_doc/1", NULL, 200, "{\"_index\":\"idx1\",\"_id\":\"1\"}", 200,
                                 "{\"_index\":\"idx3\",\"_id\":\"1\"}"), p, sizeof(p)), REPLAY_CMP_BODY);
    sm_strlist_free(&rn);
    replay_cmp_free(c);
    return 0;
}

static int test_noise_learning(void)
{
    struct replay_cmp *c = replay_cmp_new();
    char p[1024];
    /* two replays to the same target disagree on a generated field */
    json_t *r1 = tuple("GET", "/i/_search", NULL, 200, "{}", 200,
                       "{\"hits\":{\"total\":1,\"hits\":[{\"_id\":\"1\",\"_score\":1,\"fields\":{\"now\":[\"t1\"]}}]}}");
    json_t *r2 = tuple("GET", "/i/_search", NULL, 200, "{}", 200,
                       "{\"hits\":{\"total\":1,\"hits\":[{\"_id\":\"1\",\"_score\":1,\"fields\":{\"now\":[\"t2\"]}}]}}");
    const char *src = "{\"hits\":{\"total\":1,\"hits\":[{\"_id\":\"1\",\"_score\":1,\"fields\":{\"now\":[\"t0\"]}}]}}";
    SM_CHECK_EQ_INT(run(c, tuple("GET", "/i/_search", NULL, 200, src, 200,
                                 "{\"hits\":{\"total\":1,\"hits\":[{\"_id\":\"1\",\"_score\":1,\"fields\":{\"now\":[\"t1\"]}}]}}"),
                        p, sizeof(p)), REPLAY_CMP_BODY);
    SM_CHECK_EQ_INT(replay_cmp_learn_pair(c, r1, r2), 1);
    SM_CHECK_EQ_INT(replay_cmp_learn_pair(c, r1, r2), 0);   /* not twice */
    json_t *l = replay_cmp_learned_json(c);
    SM_CHECK_EQ_STR(json_string_value(json_object_get(json_array_get(l, 0), "path")), "/hits/hits/*/fields/now/*");
    SM_CHECK_EQ_STR(json_string_value(json_object_get(json_array_get(l, 0), "endpoint")), "GET /{index}/_search");
    json_decref(l);
    SM_CHECK_EQ_INT(run(c, tuple("GET", "/i/_search", NULL, 200, src, 200,
                                 "{\"hits\":{\"total\":1,\"hits\":[{\"_id\":\"1\",\"_score\":1,\"fields\":{\"now\":[\"t9\"]}}]}}"),
                        p, sizeof(p)), REPLAY_CMP_SAME);
    /* other endpoints keep comparing that path */
    SM_CHECK_EQ_INT(run(c, tuple("POST", "/i/_search/template", NULL, 200, src, 200,
                                 "{\"hits\":{\"total\":1,\"hits\":[{\"_id\":\"1\",\"_score\":1,\"fields\":{\"now\":[\"t9\"]}}]}}"),
                        p, sizeof(p)), REPLAY_CMP_BODY);
    json_decref(r1);
    json_decref(r2);
    replay_cmp_free(c);
    return 0;
}

static int test_endpoints(void)
{
    static const char *const cases[][3] = {
        { "GET", "/logs-2024.01/_search?q=x", "GET /{index}/_search" },
        { "POST", "/_bulk", "POST /_bulk" },
        { "POST", "/logs/_bulk?refresh=true", "POST /{index}/_bulk" },
        { "GET", "/logs/_doc/abc%2F1", "GET /{index}/_doc/{id}" },
        { "PUT", "/logs", "PUT /{index}" },
        { "GET", "/_cluster/health", "GET /_cluster/health" },
        { "GET", "/_cluster/health/logs", "GET /_cluster/health/{index}" },
        { "GET", "/", "GET /" },
        { "HEAD", "/logs", "HEAD /{index}" },
        { "GET", "/_cat/indices/logs*?v", "GET /_cat/indices/{index}" },
        { "GET", "/_cat/health", "GET /_cat/health" },
        { "POST", "/logs/_update/7", "POST /{index}/_update/{id}" },
        { "PUT", "/logs/_alias/current", "PUT /{index}/_alias/{name}" },
        { "GET", "/logs/doc/1", "GET /{index}/{type}/{id}" },
        { "POST", "/logs/doc/_search", "POST /{index}/{type}/_search" },
        { "GET", "/_nodes/stats", "GET /_nodes/stats" },
        { "GET", "/_nodes/n1/stats", "GET /_nodes/{node}/stats" },
        { "PUT", "/_template/t1", "PUT /_template/{name}" },
        { "DELETE", "/_search/scroll/abc", "DELETE /_search/scroll/{name}" },
        { "GET", "/a,b/_count", "GET /{index}/_count" },
        { "POST", "/logs/_doc", "POST /{index}/_doc" },
    };
    char out[256];
    for (size_t i = 0; i < SM_ARRAY_LEN(cases); i++) {
        replay_cmp_endpoint(cases[i][0], cases[i][1], out, sizeof(out));
        SM_CHECK_EQ_STR(out, cases[i][2]);
    }
    char tiny[8];
    replay_cmp_endpoint("GET", "/logs/_search", tiny, sizeof(tiny));
    SM_CHECK_EQ_STR(tiny, "GET /{i");
    return 0;
}

static int test_report_figures(void)
{
    struct replay_cmp *c = replay_cmp_new();
    struct replay_report *r = replay_report_new();
    SM_CHECK(c && r);
    for (int i = 0; i < 100; i++) {
        json_t *t = i < 90 ? tuple("GET", "/i/_doc/1", NULL, 200, "{\"a\":1}", 200, "{\"a\":1}")
                  : i < 95 ? tuple("GET", "/i/_search", NULL, 200, "{\"a\":1}", 200, "{\"a\":2}")
                  : i < 98 ? tuple("GET", "/i/_search", NULL, 200, "{\"a\":1}", 503, "{\"a\":1}")
                           : tuple("POST", "/_bulk", NULL, 200, "{}", 0, NULL);
        json_object_set_new(json_object_get(t, "sourceResponse"), "response_time_ms", json_integer(i));
        json_t *tr = json_array_get(json_object_get(t, "targetResponses"), 0);
        if (tr)
            json_object_set_new(tr, "response_time_ms", json_integer(2 * i));
        json_object_set_new(t, REPLAY_REPORT_TIME_KEY, json_integer(1700000000000 + i * 100));
        json_t *cmp = NULL;
        replay_cmp_tuple(c, t, &cmp);
        replay_report_add(r, t, cmp);
        json_decref(cmp);
        json_decref(t);
    }
    json_t *f = replay_report_figures(r, 10, NULL);
    SM_CHECK_EQ_INT(json_integer_value(json_object_get(f, "tuples")), 100);
    const json_t *cls = json_object_get(f, "classes");
    SM_CHECK_EQ_INT(json_integer_value(json_object_get(cls, "same")), 90);
    SM_CHECK_EQ_INT(json_integer_value(json_object_get(cls, "body")), 5);
    SM_CHECK_EQ_INT(json_integer_value(json_object_get(cls, "status")), 3);
    SM_CHECK_EQ_INT(json_integer_value(json_object_get(cls, "target_error")), 2);
    SM_CHECK(fabs(json_real_value(json_object_get(f, "match_rate")) - 0.9) < 1e-9);
    const json_t *lat = json_object_get(f, "latency");
    SM_CHECK_EQ_INT(json_integer_value(json_object_get(json_object_get(lat, "source"), "p50")), 49);
    SM_CHECK_EQ_INT(json_integer_value(json_object_get(json_object_get(lat, "source"), "p99")), 98);
    SM_CHECK_EQ_INT(json_integer_value(json_object_get(json_object_get(lat, "target"), "count")), 98);
    SM_CHECK(fabs(json_number_value(json_object_get(lat, "ratio_p50")) - 2.0) < 0.05);
    /* status matrix: 200->200 95, 200->503 3, 200->none 2 */
    const json_t *m = json_object_get(f, "status_matrix");
    SM_CHECK_EQ_INT(json_array_size(json_object_get(m, "source")), 1);
    SM_CHECK_EQ_INT(json_integer_value(json_array_get(json_object_get(m, "target"), 0)), 0);
    const json_t *row = json_array_get(json_object_get(m, "counts"), 0);
    SM_CHECK_EQ_INT(json_integer_value(json_array_get(row, 0)), 2);
    SM_CHECK_EQ_INT(json_integer_value(json_array_get(row, 1)), 95);
    SM_CHECK_EQ_INT(json_integer_value(json_array_get(row, 2)), 3);
    const json_t *top = json_object_get(f, "top_differing");
    SM_CHECK_EQ_INT(json_array_size(top), 1);
    SM_CHECK_EQ_STR(json_string_value(json_object_get(json_array_get(top, 0), "endpoint")), "GET /{index}/_search");
    SM_CHECK_EQ_INT(json_integer_value(json_object_get(json_array_get(top, 0), "differing")), 8);
    SM_CHECK_EQ_INT(json_array_size(json_object_get(json_array_get(top, 0), "examples")), 3);
    SM_CHECK_EQ_STR(json_string_value(json_object_get(json_array_get(json_object_get(f, "errors"), 0), "error")),
                    "timeout after 30000 ms");
    /* 100 tuples over 9.9 s: 10 per second */
    const json_t *tp = json_object_get(f, "throughput");
    SM_CHECK_EQ_INT(json_array_size(json_object_get(tp, "counts")), 10);
    SM_CHECK_EQ_INT(json_integer_value(json_object_get(tp, "peak_per_s")), 10);
    char html[] = "/tmp/sm-compare-htmlXXXXXX";
    int fd = mkstemp(html);
    close(fd);
    char e[256];
    SM_CHECK_EQ_INT(replay_report_write_html(f, html, e, sizeof(e)), SM_OK);
    uint8_t *data;
    size_t len;
    SM_CHECK_EQ_INT(sm_read_file(html, 1 << 24, &data, &len), SM_OK);
    unlink(html);
    SM_CHECK(strstr((char *)data, "id=\"status-matrix\""));
    SM_CHECK(strstr((char *)data, "id=\"chart-latency-cdf\""));
    SM_CHECK(strstr((char *)data, "data-value=\"0.9000\">90.0%"));
    SM_CHECK(!strstr((char *)data, "<script"));
    sm_free(data);
    json_decref(f);
    replay_report_free(r);
    replay_cmp_free(c);
    return 0;
}

/* the fast parser agrees with jansson and rejects what jansson rejects */
static int test_jdoc_parser(void)
{
    static const char *const good[] = {
        "{\"a\":[1,-2,3.5,-0.25e2,1E3,123456789012345678,true,false,null],\"b\":{\"c\":\"x\\\"y\\\\z\"}}",
        "\"\\u00e9\\u20ac\\ud83d\\ude00\\n\\t\\/\"",
        "  [ ] ", "{}", "0", "-9223372036854775807", "[[[[{\"k\":[{}]}]]]]", "{\"a\":1,\"a\":2}",
        "\"caf\xc3\xa9\"",
    };
    static const char *const bad[] = {
        "", "{", "[1,]", "{\"a\"}", "{\"a\":1,}", "\"abc", "tru", "nul", "[1 2]", "{\"a\":1}x", "\"\\x\"",
        "\"\\ud800\"", "-", "\"a\nb\"", "{1:2}",
    };
    struct jd_doc *d = jd_doc_new();
    SM_CHECK(d);
    for (size_t i = 0; i < SM_ARRAY_LEN(good); i++) {
        char buf[256];
        size_t n = strlen(good[i]);
        memcpy(buf, good[i], n + 1);
        jd_doc_reset(d);
        const struct jd_val *v = jd_parse(d, buf, n);
        json_error_t je;
        json_t *ref = json_loads(good[i], JSON_DECODE_ANY, &je);
        if (!v || !ref) {
            fprintf(stderr, "case %zu: %s\n", i, good[i]);
            SM_CHECK(v && ref);
        }
        json_t *back = jd_to_json(v);
        bool eq = json_equal(back, ref);
        if (!eq && i == 7)
            eq = true;   /* duplicate keys: jansson keeps the last, jd both */
        if (!eq) {
            char *x = json_dumps(back, JSON_ENCODE_ANY), *y = json_dumps(ref, JSON_ENCODE_ANY);
            fprintf(stderr, "case %zu: %s != %s\n", i, x, y);
            free(x);
            free(y);
            return 1;
        }
        json_decref(back);
        json_decref(ref);
    }
    for (size_t i = 0; i < SM_ARRAY_LEN(bad); i++) {
        char buf[64];
        size_t n = strlen(bad[i]);
        memcpy(buf, bad[i], n + 1);
        jd_doc_reset(d);
        if (jd_parse(d, buf, n)) {
            fprintf(stderr, "accepted bad JSON %zu: %s\n", i, bad[i]);
            return 1;
        }
    }
    /* what jansson refuses but jd_parse passes through (raw bytes, overflowing
     * reals: found by fuzz_jdoc) still converts, readable, instead of
     * vanishing from the differences */
    {
        char raw[] = "{\"k\xff\":[\"a\xff\xc3\",1e999,-1e999]}";
        jd_doc_reset(d);
        const struct jd_val *v = jd_parse(d, raw, strlen(raw));
        SM_CHECK(v);
        json_t *j = jd_to_json(v);
        SM_CHECK(j);
        json_t *arr = json_object_get(j, "k\xef\xbf\xbd");
        SM_CHECK(arr && json_array_size(arr) == 3);
        SM_CHECK_EQ_STR(json_string_value(json_array_get(arr, 0)), "a\xef\xbf\xbd\xef\xbf\xbd");
        SM_CHECK(json_real_value(json_array_get(arr, 1)) == DBL_MAX);
        SM_CHECK(json_real_value(json_array_get(arr, 2)) == -DBL_MAX);
        json_decref(j);
    }
    /* a document much larger than one arena chunk, and deep nesting bounded */
    size_t big = 2u << 20;
    char *buf = sm_malloc(big + 16);
    SM_CHECK(buf);
    size_t k = 0;
    buf[k++] = '[';
    while (k < big - 8) {
        memcpy(buf + k, "[1,\"ab\"],", 9);
        k += 9;
    }
    buf[k - 1] = ']';
    jd_doc_reset(d);
    const struct jd_val *v = jd_parse(d, buf, k);
    SM_CHECK(v && v->type == JD_ARRAY && jd_size(v) == (k - 1) / 9);
    SM_CHECK_EQ_STR(jd_str(jd_at(jd_at(v, 1000), 1)), "ab");
    for (k = 0; k < 2000; k++)
        buf[k] = '[';
    jd_doc_reset(d);
    SM_CHECK(!jd_parse(d, buf, 2000));
    sm_free(buf);
    jd_doc_free(d);
    return 0;
}

/* mutation check: random edits of real-looking tuples; whatever jansson
 * accepts the fast parser must accept with the same value, and nothing
 * may crash (the sanitizer build runs this too) */
static int test_jdoc_mutations(void)
{
    static const char *const seeds[] = {
        "{\"sourceRequest\":{\"Method\":\"GET\",\"Request-URI\":\"/i/_search\",\"payload\":{}},"
        "\"sourceResponse\":{\"Status-Code\":200,\"response_time_ms\":5,\"payload\":{\"inlinedJsonBody\":"
        "{\"took\":3,\"hits\":{\"total\":{\"value\":1,\"relation\":\"eq\"},\"max_score\":1.5e0,\"hits\":"
        "[{\"_id\":\"a\\u00e9\\n\",\"_score\":-0.25,\"_source\":{\"t\":[true,false,null,\"x\\\"y\"]}}]}}}},"
        "\"targetResponses\":[],\"connectionId\":\"c.1\",\"numErrors\":1,\"error\":\"timeout\"}",
        "[{\"index\":{\"_index\":\"i\",\"_id\":\"1\"}},{\"a\":1},{\"delete\":{\"_id\":\"\\ud83d\\ude00\"}}]",
    };
    static const char alphabet[] = "{}[],:\"\\0123456789.eE-+ \ntfnaur\x01\xc3\xa9";
    struct jd_doc *d = jd_doc_new();
    uint64_t rng = 0x9e3779b97f4a7c15ull;
    char buf[2048], copy[2048];
    unsigned accepted = 0;
    for (unsigned iter = 0; iter < 20000; iter++) {
        const char *seed = seeds[iter % SM_ARRAY_LEN(seeds)];
        size_t n = strlen(seed);
        memcpy(buf, seed, n);
        int edits = 1 + (int)(iter % 3);
        for (int e = 0; e < edits; e++) {
            rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
            size_t pos = (size_t)(rng % (n + 1));
            int op = (int)((rng >> 32) % 3);
            char ch = alphabet[(rng >> 40) % (sizeof(alphabet) - 1)];
            if (op == 0 && pos < n) {
                buf[pos] = ch;
            } else if (op == 1 && pos < n) {
                memmove(buf + pos, buf + pos + 1, n - pos - 1);
                n--;
            } else if (n + 1 < sizeof(buf) - 1) {
                memmove(buf + pos + 1, buf + pos, n - pos);
                buf[pos] = ch;
                n++;
            }
        }
        memcpy(copy, buf, n);
        json_error_t je;
        json_t *ref = json_loadb(copy, n, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
        jd_doc_reset(d);
        const struct jd_val *v = jd_parse(d, buf, n);
        if (ref) {
            accepted++;
            json_t *back = jd_to_json(v);
            if (!v || !json_equal(back, ref)) {
                fprintf(stderr, "mutation %u differs: %.*s\n", iter, (int)n, copy);
                return 1;
            }
            json_decref(back);
        } else if (v) {
            json_decref(jd_to_json(v));   /* accepted more (big numbers, raw bytes): must still convert */
        }
        json_decref(ref);
    }
    SM_CHECK(accepted > 100);   /* the check saw valid documents, not only rejects */
    jd_doc_free(d);
    return 0;
}

SM_TEST_MAIN(SM_TC(test_jdoc_parser), SM_TC(test_jdoc_mutations), SM_TC(test_classes), SM_TC(test_default_ignores), SM_TC(test_search_ties_as_sets),
             SM_TC(test_search_order_without_ties), SM_TC(test_hits_total_forms), SM_TC(test_bulk_items),
             SM_TC(test_aggregation_buckets), SM_TC(test_error_bodies), SM_TC(test_user_rules),
             SM_TC(test_index_renames), SM_TC(test_noise_learning), SM_TC(test_endpoints),
             SM_TC(test_report_figures))
