/* AWS Signature Version 4 (header signing) with OpenSSL, for Amazon
 * OpenSearch Service ("es"), OpenSearch Serverless ("aoss") and S3 ("s3").
 *
 * The signer takes a request as it will go on the wire (method, path exactly as
 * sent, raw query string, headers, body) and returns the headers to add:
 * X-Amz-Date, optionally X-Amz-Security-Token and X-Amz-Content-Sha256, and
 * Authorization. Rules follow AWS's "Create a signed AWS API request" guide and
 * its published test suite (tests/fixtures/sigv4/):
 *   - path: for every service except s3, normalised (".", "..", repeated "/"
 *     removed) and URI-encoded once more as sent, so "%2F" on the wire signs as
 *     "%252F" ("double encoding"); for s3 not normalised, encoded once;
 *   - query: parameters split on '&' and '=', decoded, re-encoded per RFC 3986
 *     (A-Z a-z 0-9 - _ . ~ unreserved, everything else %XX uppercase), sorted by
 *     name then value, "name=" for a parameter without value;
 *   - headers: names lowercased, values trimmed with inner whitespace runs (and
 *     obs-fold line breaks) collapsed to one space, repeated names joined with
 *     ',' in order, sorted by name. Hop-by-hop and volatile headers
 *     (connection, expect, user-agent, transfer-encoding, x-amzn-trace-id) and
 *     the ones the signer produces itself are never signed. */
#ifndef SM_SIGV4_H
#define SM_SIGV4_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct sm_buf;

/* AWS credentials; strings are sm_malloc'd and owned by the struct. */
struct sm_aws_creds {
    char *access_key_id;
    char *secret_access_key;
    char *session_token;      /* NULL unless temporary credentials */
};

/* Loads credentials the way the AWS CLI does (first match wins):
 *   1. AWS_ACCESS_KEY_ID + AWS_SECRET_ACCESS_KEY (+ AWS_SESSION_TOKEN);
 *   2. the shared credentials file (AWS_SHARED_CREDENTIALS_FILE, default
 *      ~/.aws/credentials), section [profile] where profile is the argument,
 *      else AWS_PROFILE, else "default"; keys aws_access_key_id,
 *      aws_secret_access_key, aws_session_token.
 * Returns SM_OK, SM_ENOTFOUND (no credentials anywhere; err says where it
 * looked), SM_ECONFIG (file malformed or incomplete) or SM_ENOMEM. On error
 * *out is left empty. Free with sm_aws_creds_free(). */
int  sm_aws_creds_load(struct sm_aws_creds *out, const char *profile, char *err, size_t errlen);
void sm_aws_creds_free(struct sm_aws_creds *c);

/* Region from AWS_REGION, else AWS_DEFAULT_REGION, else "region" of the
 * profile in the config file (AWS_CONFIG_FILE, default ~/.aws/config).
 * Returns an sm_malloc'd string or NULL when none is configured. */
char *sm_aws_region_default(const char *profile);

enum sm_sigv4_flags {
    SM_SIGV4_NO_NORMALIZE     = 1u << 0, /* keep the path as is (implied by service "s3") */
    SM_SIGV4_CONTENT_SHA256   = 1u << 1, /* add and sign X-Amz-Content-Sha256 (implied by "s3") */
    SM_SIGV4_UNSIGNED_PAYLOAD = 1u << 2, /* payload hash is the literal UNSIGNED-PAYLOAD */
    SM_SIGV4_OMIT_TOKEN       = 1u << 3, /* add X-Amz-Security-Token after signing, unsigned */
};

struct sm_sigv4_cfg {
    const char *region;                  /* "us-east-1" */
    const char *service;                 /* "es", "aoss", "s3" */
    const struct sm_aws_creds *creds;    /* borrowed */
    unsigned flags;                      /* enum sm_sigv4_flags */
};

struct sm_sigv4_req {
    const char *method;                  /* "GET" */
    const char *path;                    /* path as sent, without query; "" means "/" */
    const char *query;                   /* raw query without '?', or NULL */
    const char *const *headers;          /* "Name: value" lines, NULL-terminated; must include Host */
    const void *body;
    size_t body_len;
    const char *payload_hash;            /* hex SHA-256 of the body if known, or NULL */
    int64_t time;                        /* signing time, Unix seconds UTC */
};

struct sm_sigv4_result {
    char amz_date[17];                   /* "20150830T123600Z" */
    char payload_hash[65];               /* hex SHA-256 or "UNSIGNED-PAYLOAD" */
    char signature[65];                  /* hex */
    char *authorization;                 /* value of the Authorization header */
    char *canonical_request;             /* for tests and --debug=http */
    char *string_to_sign;
    /* Header lines to add to the request, "Name: value", NULL-terminated:
     * X-Amz-Date, [X-Amz-Security-Token], [X-Amz-Content-Sha256], Authorization. */
    char *add_headers[5];
};

/* Signs req. On SM_OK fills *out (free with sm_sigv4_result_free). Returns
 * SM_EINVAL when something required is missing (credentials, region, Host
 * header; err names it), SM_ENOMEM. */
int  sm_sigv4_sign(const struct sm_sigv4_cfg *cfg, const struct sm_sigv4_req *req,
                   struct sm_sigv4_result *out, char *err, size_t errlen);
void sm_sigv4_result_free(struct sm_sigv4_result *r);

/* Helpers, exposed for tests and for callers that build paths/keys. */
/* Appends s[0..n) URI-encoded per RFC 3986 (unreserved kept, the rest %XX
 * uppercase); '/' is kept when keep_slash. SM_OK, SM_EFULL, SM_ENOMEM. */
int  sm_uri_encode(struct sm_buf *out, const void *s, size_t n, bool keep_slash);
/* Lowercase hex SHA-256 of p[0..n) into hex[65]. */
void sm_sha256_hex(const void *p, size_t n, char hex[65]);

#endif
