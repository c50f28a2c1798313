/* HTTP client for clusters (Elasticsearch/OpenSearch) and S3, on libcurl.
 *
 * One client wraps one CURL easy handle, so connections are kept alive and
 * reused between requests; a client is used by one thread at a time (make one
 * per worker thread). TLS verification is on unless --<p>-insecure; Basic
 * auth or AWS SigV4 (service es, aoss or s3); optional gzip request bodies;
 * gzip/deflate responses are decoded by curl.
 *
 * Retries: 429, 502, 503 and 504 responses and connection errors/timeouts
 * are retried up to max_retries times with capped exponential backoff and
 * full jitter (delay = random(0, min(cap, base * 2^retry))); a Retry-After
 * header (seconds or HTTP date) on the response sets the least delay. A
 * request with SM_HTTP_NO_RETRY is tried once.
 *
 * Flags: every tool embeds the same flag set through SM_HTTP_OPTS() with a
 * prefix ("target", "source"), giving --target URL, --target-ca-cert FILE,
 * --target-insecure, --target-client-cert/-key, --target-username,
 * --target-password (env SM_TARGET_PASSWORD; "@FILE" reads a file),
 * --target-password-file, --target-aws-region, --target-aws-service,
 * --target-aws-profile, --target-gzip, --target-connect-timeout,
 * --target-timeout, --target-max-retries, --target-backoff-base,
 * --target-backoff-cap. See docs/http-client.md. */
#ifndef SM_HTTP_H
#define SM_HTTP_H
#include <sm/buf.h>
#include <sm/opt.h>

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct sm_http_opts {
    char *url;                    /* base URL: http[s]://host[:port][/prefix] */
    char *ca_cert;                /* PEM CA bundle used to verify the server */
    bool insecure;                /* skip certificate and host name verification */
    char *client_cert;            /* PEM client certificate (mutual TLS) */
    char *client_key;             /* PEM client key */
    char *username;               /* Basic auth user */
    char *password;               /* literal, "@FILE" or "file:FILE" (see sm_secret_resolve) */
    char *password_file;          /* file holding the password */
    char *aws_region;             /* SigV4 region; setting region or service enables SigV4 */
    char *aws_service;            /* es | aoss | s3 */
    char *aws_profile;            /* profile in ~/.aws/credentials (default AWS_PROFILE/default) */
    bool gzip;                    /* gzip request bodies (Content-Encoding: gzip) */
    uint64_t connect_timeout_ms;
    uint64_t timeout_ms;          /* whole request, per attempt */
    int64_t max_retries;          /* retries after the first attempt */
    uint64_t backoff_base_ms;
    uint64_t backoff_cap_ms;
    uint64_t max_response;        /* response body cap in bytes */
    uint64_t down_wait_ms;        /* an unreachable server that answered before: retried past
                                     max_retries for up to this long per request (0: off) */
    char *user_agent;             /* NULL: "searchmig/<version>" (not a flag) */
};

/* Defaults, shared by the flag table and sm_http_opts_init(). */
#define SM_HTTP_DEF_CONNECT_TIMEOUT "10s"
#define SM_HTTP_DEF_TIMEOUT         "60s"
#define SM_HTTP_DEF_MAX_RETRIES     "5"
#define SM_HTTP_DEF_BACKOFF_BASE    "200ms"
#define SM_HTTP_DEF_BACKOFF_CAP     "30s"
#define SM_HTTP_DEF_MAX_RESPONSE    "512MiB"
#define SM_HTTP_DEF_DOWN_WAIT       "5m"
/* Longest wait a Retry-After header can ask for. */
#define SM_HTTP_RETRY_AFTER_MAX_MS  (300u * 1000u)

/* Option table entries for one endpoint, to place inside a tool's sm_opt
 * table: pfx is the flag prefix ("target"), envpfx the environment prefix
 * ("SM_TARGET", giving SM_TARGET_PASSWORD), T the tool's config struct and f
 * the struct sm_http_opts member in it:
 *     static const struct sm_opt replay_opts[] = {
 *         SM_HTTP_OPTS("target", "SM_TARGET", struct replay_cfg, target),
 *         ...
 *         SM_OPT_END };
 * The tool frees the strings with sm_opts_free(). */
#define SM_HTTP_OPTS(pfx, envpfx, T, f) \
    { pfx, SM_OPT_STR, offsetof(T, f.url), NULL, pfx " cluster URL, http[s]://host:port", envpfx "_URL", 0, "URL" }, \
    { pfx "-ca-cert", SM_OPT_STR, offsetof(T, f.ca_cert), NULL, "CA certificates (PEM) to verify the " pfx "'s TLS certificate", NULL, 0, "FILE" }, \
    { pfx "-insecure", SM_OPT_BOOL, offsetof(T, f.insecure), "false", "do not verify the " pfx "'s TLS certificate (unsafe)", NULL, 0, NULL }, \
    { pfx "-client-cert", SM_OPT_STR, offsetof(T, f.client_cert), NULL, "client certificate (PEM) for TLS client auth", NULL, 0, "FILE" }, \
    { pfx "-client-key", SM_OPT_STR, offsetof(T, f.client_key), NULL, "client private key (PEM)", NULL, 0, "FILE" }, \
    { pfx "-username", SM_OPT_STR, offsetof(T, f.username), NULL, "Basic auth user for the " pfx, envpfx "_USERNAME", 0, "USER" }, \
    { pfx "-password", SM_OPT_STR, offsetof(T, f.password), NULL, "Basic auth password (@FILE reads it from FILE)", envpfx "_PASSWORD", SM_OPT_SECRET, "PASSWORD" }, \
    { pfx "-password-file", SM_OPT_STR, offsetof(T, f.password_file), NULL, "file holding the Basic auth password", NULL, 0, "FILE" }, \
    { pfx "-aws-region", SM_OPT_STR, offsetof(T, f.aws_region), NULL, "sign requests with AWS SigV4 for this region (default AWS_REGION)", NULL, 0, "REGION" }, \
    { pfx "-aws-service", SM_OPT_STR, offsetof(T, f.aws_service), NULL, "sign requests with AWS SigV4 for service es, aoss or s3", NULL, 0, "SERVICE" }, \
    { pfx "-aws-profile", SM_OPT_STR, offsetof(T, f.aws_profile), NULL, "profile in the AWS credentials file (default AWS_PROFILE)", NULL, 0, "NAME" }, \
    { pfx "-gzip", SM_OPT_BOOL, offsetof(T, f.gzip), "false", "gzip request bodies", NULL, 0, NULL }, \
    { pfx "-connect-timeout", SM_OPT_DURATION, offsetof(T, f.connect_timeout_ms), SM_HTTP_DEF_CONNECT_TIMEOUT, "TCP+TLS connect timeout", NULL, 0, NULL }, \
    { pfx "-timeout", SM_OPT_DURATION, offsetof(T, f.timeout_ms), SM_HTTP_DEF_TIMEOUT, "timeout of one request attempt", NULL, 0, NULL }, \
    { pfx "-max-retries", SM_OPT_INT, offsetof(T, f.max_retries), SM_HTTP_DEF_MAX_RETRIES, "retries on 429/502/503/504 and connection errors", NULL, 0, NULL }, \
    { pfx "-backoff-base", SM_OPT_DURATION, offsetof(T, f.backoff_base_ms), SM_HTTP_DEF_BACKOFF_BASE, "first retry delay bound (doubles per retry, full jitter)", NULL, 0, NULL }, \
    { pfx "-backoff-cap", SM_OPT_DURATION, offsetof(T, f.backoff_cap_ms), SM_HTTP_DEF_BACKOFF_CAP, "longest retry delay", NULL, 0, NULL }, \
    { pfx "-down-wait", SM_OPT_DURATION, offsetof(T, f.down_wait_ms), SM_HTTP_DEF_DOWN_WAIT, "an unreachable " pfx " (connection refused, host unreachable, connect timeout) is retried past --" pfx "-max-retries for up to this long per request, so a restart loses nothing (0: off; see docs/http-client.md)", NULL, 0, "D" }, \
    { pfx "-max-response", SM_OPT_SIZE, offsetof(T, f.max_response), SM_HTTP_DEF_MAX_RESPONSE, "largest response body accepted", NULL, SM_OPT_HIDDEN, NULL }

/* Sets o to the table defaults (strings NULL). Returns SM_OK. */
int  sm_http_opts_init(struct sm_http_opts *o);
/* Frees the strings of o (not o itself) when it was not filled by a tool's
 * option table (those are freed by sm_opts_free). */
void sm_http_opts_free(struct sm_http_opts *o);

struct sm_http_client;

/* Creates a client. name is used in messages ("target"); opts is copied.
 * Resolves the password (password_file, "@FILE"), loads AWS credentials and
 * the region for SigV4. Returns NULL with err filled ("target: --target-ca-cert
 * /x: no such file") on bad options. */
struct sm_http_client *sm_http_client_new(const struct sm_http_opts *opts, const char *name,
                                          char *err, size_t errlen);
void sm_http_client_free(struct sm_http_client *c);
/* Base URL without credentials, for messages. */
const char *sm_http_client_url(const struct sm_http_client *c);
/* Ends every wait for an unreachable server (down_wait_ms) in the process:
 * requests held for one fail at their next probe, none waits again.
 * Async-signal-safe (for SIGTERM/SIGINT handlers). */
void sm_http_stop_waiting(void);

enum sm_http_req_flags {
    SM_HTTP_NO_RETRY  = 1u << 0,   /* one attempt only */
    SM_HTTP_NO_GZIP   = 1u << 1,   /* send this body uncompressed even with gzip on */
    SM_HTTP_UNSIGNED_PAYLOAD = 1u << 2, /* SigV4: UNSIGNED-PAYLOAD instead of the body hash */
    /* Large bodies: written from the caller's buffer on a connection of the
     * client's own (HTTP/1.1 keep-alive, TLS by curl) instead of being copied
     * into curl's upload buffer; same headers, auth, signing and retries, the
     * response is asked for without Content-Encoding. Ignored for HEAD and
     * when a proxy is set in the environment. */
    SM_HTTP_DIRECT_BODY = 1u << 3,
};

struct sm_http_req {
    const char *method;                 /* "GET", "HEAD", "PUT", ... */
    const char *path;                   /* "/idx/_doc/1?refresh=true", appended to the base URL */
    const char *const *headers;         /* "Name: value" lines, NULL-terminated, or NULL */
    const void *body;                   /* sent when body != NULL (even if body_len == 0) */
    size_t body_len;
    unsigned flags;                     /* enum sm_http_req_flags */
    uint64_t max_response;              /* 0: the client's cap */
};

struct sm_http_response {
    long status;                        /* final HTTP status, 0 if none was received */
    struct sm_buf body;                 /* decoded body, NUL-terminated when non-empty */
    struct sm_buf headers;              /* raw "Name: value\r\n" lines of the final response */
    unsigned attempts;                  /* tries made */
    uint64_t elapsed_ms;                /* including backoff sleeps */
};

/* Sends a request, retrying as described above. Returns SM_OK when an HTTP
 * response was received: out->status may be any code, also 429/5xx when the
 * retries ran out. Otherwise: SM_EIO (connection refused/reset/closed, TLS
 * failure), SM_ETIMEOUT, SM_EFULL (response over the cap), SM_EINVAL,
 * SM_ENOMEM, with err like "POST http://x:9200/_bulk: connection refused
 * after 6 attempts". out is initialised by the call (previous contents are
 * NOT freed) and must be released with sm_http_response_free() in every case. */
int sm_http_send(struct sm_http_client *c, const struct sm_http_req *req,
                 struct sm_http_response *out, char *err, size_t errlen);

/* Shorthand for sm_http_send() without flags. */
int sm_http_request(struct sm_http_client *c, const char *method, const char *path,
                    const char *const *headers, const void *body, size_t body_len,
                    struct sm_http_response *out, char *err, size_t errlen);

/* Value of the first response header called name (case-insensitive), copied
 * into val[vallen] (trimmed, truncated); NULL when absent. */
const char *sm_http_response_header(const struct sm_http_response *r, const char *name,
                                    char *val, size_t vallen);
void sm_http_response_free(struct sm_http_response *r);

/* JSON round trip: body (borrowed, may be NULL) is serialised compactly and
 * sent with Content-Type: application/json. *out (may be NULL) receives the
 * parsed response body (new reference, NULL when the body is empty or not
 * JSON) and *status (may be NULL) the status. Returns SM_OK for 2xx;
 * SM_ENOTFOUND for 404, SM_ECONFLICT for 409, SM_EAGAIN for 429/5xx (retries
 * exhausted), SM_EPROTO for other statuses, each with err like
 * "PUT http://x/idx: 400 resource_already_exists_exception: index [idx] exists"
 * and *out and *status still set; transport errors as sm_http_send(). */
struct sm_aws_creds;
/* What the client made of its options, for code that speaks HTTP itself
 * (the replayer's event loop): URL parts, Basic credentials, SigV4 settings,
 * validated with the same messages as every tool. Strings belong to c. */
struct sm_http_endpoint {
    bool tls;                            /* https */
    const char *host;                    /* without IPv6 brackets */
    const char *port;                    /* explicit, or the scheme's default */
    const char *base;                    /* scheme://host[:port][/prefix], no credentials */
    const char *host_hdr;                /* "Host: host[:port]" */
    const char *prefix;                  /* "" or "/p" */
    const char *username, *password;     /* Basic auth (resolved password), or NULL */
    bool sigv4;
    const char *region, *service;        /* SigV4, or NULL */
    const struct sm_aws_creds *creds;
};
void sm_http_client_endpoint(const struct sm_http_client *c, struct sm_http_endpoint *out);

int sm_http_request_json(struct sm_http_client *c, const char *method, const char *path,
                         const json_t *body, json_t **out, long *status, char *err, size_t errlen);

/* Attempt observer (tests, metrics): called after every attempt. */
struct sm_http_attempt {
    const char *method;
    const char *url;
    unsigned attempt;                   /* 1-based */
    long status;                        /* 0 when no response */
    int err;                            /* SM_OK when a response arrived */
    const char *error;                  /* transport error text, or "" */
    bool will_retry;
    uint64_t delay_ms;                  /* sleep before the next attempt */
    uint64_t retry_after_ms;            /* from Retry-After, 0 if none */
};
typedef void (*sm_http_attempt_cb)(void *arg, const struct sm_http_attempt *a);
void sm_http_client_set_attempt_cb(struct sm_http_client *c, sm_http_attempt_cb cb, void *arg);

struct sm_http_stats {
    uint64_t requests;                  /* sm_http_send calls */
    uint64_t attempts;                  /* tries, including retries */
    uint64_t retries;
    uint64_t failures;                  /* calls ending in a transport error or a retryable status */
    uint64_t bytes_sent;                /* request bodies as sent (after gzip) */
    uint64_t bytes_received;            /* response bodies after decoding */
};
void sm_http_client_stats(const struct sm_http_client *c, struct sm_http_stats *out);

/* True for the statuses the client retries (429, 502, 503, 504). */
bool sm_http_status_retriable(long status);

#endif
