/* Comparator: classifies a result tuple (docs/capture-format.md section 6) by
 * how the target's response differs from the source's, with body comparison
 * that knows Elasticsearch/OpenSearch responses (docs/compare.md):
 *  - default ignore rules for fields that always differ between clusters
 *    (took, _shards counts, _seq_no, _primary_term, _version, node/cluster
 *    names and uuids, _nodes, timestamps in cluster APIs, tagline/version on
 *    GET /), removable with "unignore";
 *  - search hits matched as sets within runs of tied scores (or equal sort
 *    values), in order elsewhere; hits.total normalised (ES 6 plain number ==
 *    {"value":n,"relation":"eq"}); _score/max_score with a float tolerance;
 *  - bulk items item by item (auto-generated _id ignored where the action
 *    line had none); aggregation buckets matched by key;
 *  - user rules per endpoint pattern and learned noise.
 * The result is a "comparison" object added beside the tuple's MA keys:
 *   {"result": "same|status|body|target_error|no_source",
 *    "endpoint": "GET /{index}/_search", "source_status": 200,
 *    "target_status": 200, "num_differences": n,
 *    "differences": [{"path": "/json/pointer", "source": v, "target": v}]}
 * ("source"/"target" absent when the value is absent on that side).
 * A struct replay_cmp is not thread-safe; use one per thread. */
#ifndef REPLAY_COMPARE_H
#define REPLAY_COMPARE_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include <sm/opt.h>

enum replay_cmp_class {
    REPLAY_CMP_SAME = 0,
    REPLAY_CMP_STATUS,        /* status codes differ */
    REPLAY_CMP_BODY,          /* same status, bodies differ */
    REPLAY_CMP_TARGET_ERROR,  /* no target response (error or timeout) */
    REPLAY_CMP_NO_SOURCE,     /* no source response captured: not comparable */
    REPLAY_CMP_NCLASSES
};

/* "same", "status", "body", "target_error", "no_source". */
const char *replay_cmp_class_name(enum replay_cmp_class c);

struct replay_cmp;

/* New comparator with the default rules. NULL on allocation failure. */
struct replay_cmp *replay_cmp_new(void);
void replay_cmp_free(struct replay_cmp *c);

/* Adds one rule line: "ignore PATH", "unignore PATH", "tolerance X",
 * "max-differences N", "[ENDPOINT-PATTERN]" (scopes the following lines;
 * "[*]" back to all endpoints). PATH is a JSON pointer ("/hits/hits/ * /_score",
 * anchored at the body root) or a dotted field path ("_shards.total",
 * matching at any depth); a segment "*" matches one level, "**" any number,
 * and globs inside a segment ("*_in_millis") work. "#" starts a comment. */
int replay_cmp_add_rule_line(struct replay_cmp *c, const char *line, char *err, size_t errlen);
/* Loads a rules file: simple lines as above, or JSON
 * {"tolerance": x, "max_differences": n,
 *  "rules": [{"endpoint": "GET /{index}/_search", "ignore": [...], "unignore": [...]}]}. */
int replay_cmp_load_rules(struct replay_cmp *c, const char *path, char *err, size_t errlen);
/* Index renames used by the replay ("old=new", "prefix*=newprefix*"): a
 * target _index equal to the renamed source _index counts as equal. */
int replay_cmp_set_index_renames(struct replay_cmp *c, const struct sm_strlist *renames,
                                 char *err, size_t errlen);

struct jd_val;
/* Same on a tuple parsed with jd_parse() (compare/jdoc.h): the fast path. */
enum replay_cmp_class replay_cmp_tuple_jd(struct replay_cmp *c, const struct jd_val *tuple, json_t **out);
/* Same on a serialised tuple: the text text[0..len) followed by tail (may be
 * NULL; e.g. the closing brace of a tuple still being written). The
 * "comparison" object is appended to out as JSON (the bytes
 * replay_tuple_dump() gives for replay_cmp_tuple_jd()'s), nothing on error. */
struct sm_buf;
enum replay_cmp_class replay_cmp_tuple_text(struct replay_cmp *c, const char *text, size_t len, const char *tail,
                                            struct sm_buf *out);
/* One message of a tuple for replay_cmp_tuple_parts(), absent unless present:
 * json[0..len) is the message's JSON or, with payload_only, only the value of
 * its "payload", the members the comparison reads besides it given as
 * method/uri (a request; left out when NULL or not UTF-8) or status. */
struct replay_cmp_part {
    bool present, payload_only, is_request;
    const char *json;
    size_t len;
    const char *method, *uri;
    int status;
};
/* replay_cmp_tuple_text() on {"sourceRequest":req,"sourceResponse":src,
 * "targetResponses":[tgt]} without writing and parsing that text: only the
 * JSON parts are parsed. Returns the class, or -1 (nothing appended) when a
 * part does not parse with jd_parse() (nesting limit): use the text form. */
int replay_cmp_tuple_parts(struct replay_cmp *c, const struct replay_cmp_part *req, const struct replay_cmp_part *src,
                           const struct replay_cmp_part *tgt, struct sm_buf *out);
/* Compares one tuple and returns its class; *out (if not NULL) receives a
 * new "comparison" object. The tuple is not modified. */
enum replay_cmp_class replay_cmp_tuple(struct replay_cmp *c, const json_t *tuple, json_t **out);

/* Noise learning: compares the target responses of the same request
 * (matching connectionId) in two replays to the same cluster; every path
 * that differs becomes an ignore rule for that request's endpoint (array
 * indices generalised to "*"). Returns how many new rules were learned. */
size_t replay_cmp_learn_pair(struct replay_cmp *c, const json_t *tuple_a, const json_t *tuple_b);
/* Learned rules as a JSON array of {"endpoint", "path"} (new reference). */
json_t *replay_cmp_learned_json(const struct replay_cmp *c);

/* Endpoint group of a request: method plus path with index names, ids and
 * other user names generalised ("GET /{index}/_search", "POST /_bulk",
 * "GET /{index}/_doc/{id}", "GET /_cluster/health"); query string dropped.
 * Writes at most outlen bytes (NUL-terminated). */
void replay_cmp_endpoint(const char *method, const char *uri, char *out, size_t outlen);

/* Tuple accessors shared with the report. */
const json_t *replay_cmp_target_response(const json_t *tuple);  /* last attempt or NULL */
const struct jd_val *replay_cmp_jd_target_response(const struct jd_val *tuple);
int replay_cmp_jd_status(const struct jd_val *msg);            /* Status-Code or 0 */
int64_t replay_cmp_jd_response_ms(const struct jd_val *msg);   /* response_time_ms or -1 */

#endif
