/* Request transformations applied before a captured request is sent to the
 * target. Bodies are parsed only when a rule needs them (index renames and
 * type removal in _bulk/_mget/_msearch bodies).
 *
 *  - auth: the captured Authorization header is removed when --remove-auth-header
 *    is set or when the target client signs or authenticates itself
 *    (Basic/SigV4 are added by the HTTP client);
 *  - headers: --add-header "Name: value", --remove-header Name;
 *  - index renames: --index-rename old=new (exact names or prefix* = newprefix*)
 *    in the path's first segment (comma lists too) and in bulk action lines;
 *  - type removal (--remove-types): /idx/<type>/<id> -> /idx/_doc/<id>,
 *    /idx/<type>/_search -> /idx/_search, `_type` dropped from bulk action
 *    lines, include_type_name dropped from the query;
 *  - drop: requests whose "METHOD /path" matches --drop-request REGEX are not sent. */
#ifndef REPLAY_TRANSFORM_H
#define REPLAY_TRANSFORM_H
#include <stdbool.h>

#include <sm/opt.h>

#include "http/msg.h"

struct replay_transform;

struct replay_transform_cfg {
    bool remove_auth;
    const struct sm_strlist *add_headers;     /* "Name: value" */
    const struct sm_strlist *remove_headers;  /* names */
    const struct sm_strlist *index_renames;   /* "old=new" */
    bool remove_types;
    const struct sm_strlist *drop_patterns;   /* POSIX extended regex on "METHOD /path?query" */
};

struct replay_transform *replay_transform_new(const struct replay_transform_cfg *cfg,
                                              char *err, size_t errlen);
void replay_transform_free(struct replay_transform *t);

enum replay_tx_result { REPLAY_TX_SEND = 0, REPLAY_TX_DROP = 1 };

/* Transforms msg in place. Returns REPLAY_TX_SEND, REPLAY_TX_DROP or a
 * negative sm_err (bad body for a rule that needs it: err says why). */
int replay_transform_apply(struct replay_transform *t, struct replay_http_msg *msg,
                           char *err, size_t errlen);

/* Exposed for tests: rename one index name by the rules ("logs-1" with
 * "logs-*=new-logs-*" gives "new-logs-1"); returns a new string or NULL when
 * no rule matches. */
char *replay_transform_rename_index(const struct replay_transform *t, const char *name);

#endif
