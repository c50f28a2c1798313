/* Cluster/S3 HTTP client on libcurl: one easy handle per client (keep-alive),
 * TLS, Basic auth or SigV4, gzip bodies, retries with capped exponential
 * backoff and full jitter. See sm/http.h. */
#include <sm/http.h>
#include <sm/err.h>
#include <sm/llhttp_reason.h>
#include <sm/log.h>
#include <sm/mem.h>
#include <sm/sigv4.h>
#include <sm/util.h>

#include <curl/curl.h>
#include <llhttp.h>

#include <ctype.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#define HTTP_HDR_MAX (256u << 10)        /* response header block cap */
#define HTTP_URL_MAX (64u << 10)

struct sm_http_client {
    char *name;                          /* "target" */
    struct sm_http_opts o;               /* copied strings */
    CURL *curl;
    char errbuf[CURL_ERROR_SIZE];
    char *base;                          /* scheme://host[:port][/prefix], no credentials */
    char *host_hdr;                      /* "Host: host[:port]" for signing */
    char *prefix;                        /* path prefix from the URL ("" or "/p") */
    char *host;                          /* host without IPv6 brackets */
    char *port;                          /* explicit, or the scheme's default */
    bool tls;                            /* https */
    char *password;                      /* resolved */
    bool sigv4;
    char *region, *service;
    struct sm_aws_creds creds;
    struct sm_buf gz;                    /* compressed body */
    struct sm_gzip *gzc;                 /* made at the first gzip body */
    struct sm_buf url;
    uint64_t rng;
    sm_http_attempt_cb cb;
    void *cb_arg;
    bool big_upload;                     /* upload buffer raised to 1 MiB (see sm_http_send) */
    /* SM_HTTP_DIRECT_BODY requests: a connect-only handle whose connection
     * the client speaks HTTP/1.1 on itself (see direct_attempt). */
    CURL *raw;
    curl_socket_t raw_sock;
    uint64_t raw_requests;               /* answered on the current raw connection */
    bool no_direct;                      /* a proxy is configured in the environment */
    char ua[96];                         /* default User-Agent */
    char *auth_hdr;                      /* "Authorization: Basic ..." for the raw connection */
    struct sm_buf dhead;                 /* request head, then the 64 KiB read buffer */
    struct sm_http_stats stats;
    struct sm_ratelimit warn_rl;
    uint64_t base_hash;                  /* of base: the answered registry's key */
};

/* ------------------------------------------------------- unreachable server */

/* A server that answered once in this process and then refuses or cannot be
 * reached (restart, failover) is waited for (down_wait_ms); one that never
 * answered is most likely a wrong URL and fails after the normal retries.
 * Every client of the same base URL shares what is known: the answered
 * registry holds the hashes of base URLs that gave an HTTP response. */
#define ANSWERED_SLOTS 32
#define DOWN_PROBE_MAX_MS 5000u       /* longest pause between probes of a down server */
static _Atomic uint64_t answered[ANSWERED_SLOTS];
static atomic_bool stop_waiting;
static _Atomic uint64_t down_warn_ms;

static bool has_answered(uint64_t h)
{
    for (size_t i = 0; i < ANSWERED_SLOTS; i++) {
        uint64_t v = atomic_load_explicit(&answered[i], memory_order_relaxed);
        if (v == h)
            return true;
        if (!v)
            return false;
    }
    return false;
}

static void mark_answered(uint64_t h)
{
    for (size_t i = 0; i < ANSWERED_SLOTS; i++) {
        uint64_t v = atomic_load_explicit(&answered[i], memory_order_relaxed);
        if (v == h)
            return;
        if (!v && atomic_compare_exchange_strong(&answered[i], &v, h))
            return;
        if (v == h)
            return;
    }
}

void sm_http_stop_waiting(void)
{
    atomic_store(&stop_waiting, true);
}

/* Sleeps ms, in slices, returning early once sm_http_stop_waiting() was called. */
static void sleep_unless_stopped(uint64_t ms)
{
    while (ms && !atomic_load(&stop_waiting)) {
        uint64_t d = SM_MIN(ms, 100u);
        sm_sleep_ms(d);
        ms -= d;
    }
}

/* One warning per 10 s for the whole process (several workers, several clients). */
static void warn_down(const struct sm_http_client *c, const char *reason, uint64_t left_ms)
{
    uint64_t now = sm_now_ms(), last = atomic_load_explicit(&down_warn_ms, memory_order_relaxed);
    if ((last && now - last < 10000) ||
        !atomic_compare_exchange_strong_explicit(&down_warn_ms, &last, now, memory_order_relaxed,
                                                 memory_order_relaxed))
        return;
    sm_log_warn("%s %s unreachable (%s): waiting for it, requests are retried for up to %.0f s more "
                "(down wait)", c->name, c->base, reason, (double)left_ms / 1000.0);
}

/* ------------------------------------------------------------- options */

#define HTTP_OPT_PFX "x"
struct opts_wrap { struct sm_http_opts h; };
static const struct sm_opt defaults_tbl[] = {
    SM_HTTP_OPTS(HTTP_OPT_PFX, "SM_X", struct opts_wrap, h),
    SM_OPT_END
};

int sm_http_opts_init(struct sm_http_opts *o)
{
    struct opts_wrap w;
    memset(&w, 0, sizeof(w));
    int rc = sm_opts_defaults(defaults_tbl, &w, NULL, 0);
    *o = w.h;
    return rc;
}

void sm_http_opts_free(struct sm_http_opts *o)
{
    if (!o)
        return;
    char **strs[] = { &o->url, &o->ca_cert, &o->client_cert, &o->client_key, &o->username,
                      &o->password, &o->password_file, &o->aws_region, &o->aws_service,
                      &o->aws_profile, &o->user_agent };
    for (size_t i = 0; i < SM_ARRAY_LEN(strs); i++) {
        sm_free(*strs[i]);
        *strs[i] = NULL;
    }
}

static int copy_opts(struct sm_http_opts *dst, const struct sm_http_opts *src)
{
    *dst = *src;
    char **strs[] = { &dst->url, &dst->ca_cert, &dst->client_cert, &dst->client_key, &dst->username,
                      &dst->password, &dst->password_file, &dst->aws_region, &dst->aws_service,
                      &dst->aws_profile, &dst->user_agent };
    int rc = SM_OK;
    for (size_t i = 0; i < SM_ARRAY_LEN(strs); i++) {
        if (*strs[i] && !(*strs[i] = sm_strdup(*strs[i])))
            rc = SM_ENOMEM;
    }
    return rc;
}

/* --------------------------------------------------------------- client */

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc;

static void curl_init(void)
{
    curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static size_t on_body(char *p, size_t size, size_t n, void *arg);
static size_t on_header(char *p, size_t size, size_t n, void *arg);

void sm_http_client_endpoint(const struct sm_http_client *c, struct sm_http_endpoint *out)
{
    memset(out, 0, sizeof(*out));
    out->tls = c->tls;
    out->host = c->host;
    out->port = c->port;
    out->base = c->base;
    out->host_hdr = c->host_hdr;
    out->prefix = c->prefix;
    if (c->password) {
        out->username = c->o.username;
        out->password = c->password;
    }
    out->sigv4 = c->sigv4;
    if (c->sigv4) {
        out->region = c->region;
        out->service = c->service;
        out->creds = &c->creds;
    }
}

bool sm_http_status_retriable(long status)
{
    return status == 429 || status == 502 || status == 503 || status == 504;
}

static int check_file(const char *name, const char *flag, const char *path, char *err, size_t errlen)
{
    if (path && access(path, R_OK) != 0)
        return sm_errf(err, errlen, SM_ECONFIG, "%s: --%s-%s %s: %s", name, name, flag, path, strerror(errno));
    return SM_OK;
}

/* Splits the base URL into the parts the client needs. */
static int parse_url(struct sm_http_client *c, char *err, size_t errlen)
{
    CURLU *u = curl_url();
    char *scheme = NULL, *host = NULL, *port = NULL, *path = NULL, *user = NULL, *pass = NULL;
    int rc = SM_OK;
    if (!u)
        return SM_ENOMEM;
    if (!c->o.url || !*c->o.url) {
        rc = sm_errf(err, errlen, SM_ECONFIG, "%s: no URL (--%s URL)", c->name, c->name);
        goto out;
    }
    if (curl_url_set(u, CURLUPART_URL, c->o.url, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK) {
        rc = sm_errf(err, errlen, SM_ECONFIG, "%s: '%s' is not a URL (http[s]://host[:port])", c->name, c->o.url);
        goto out;
    }
    if (strcasecmp(scheme, "http") && strcasecmp(scheme, "https")) {
        rc = sm_errf(err, errlen, SM_ECONFIG, "%s: URL scheme '%s' is not http or https", c->name, scheme);
        goto out;
    }
    curl_url_get(u, CURLUPART_PORT, &port, 0);           /* only when explicit */
    curl_url_get(u, CURLUPART_PATH, &path, 0);
    curl_url_get(u, CURLUPART_USER, &user, CURLU_URLDECODE);
    curl_url_get(u, CURLUPART_PASSWORD, &pass, CURLU_URLDECODE);
    bool default_port = port && ((!strcasecmp(scheme, "http") && !strcmp(port, "80")) ||
                                 (!strcasecmp(scheme, "https") && !strcmp(port, "443")));
    struct sm_buf b;
    sm_buf_init(&b, HTTP_URL_MAX);
    size_t pl = path ? strlen(path) : 0;
    while (pl && path[pl - 1] == '/')
        pl--;
    if (!(c->prefix = sm_strndup(path ? path : "", pl))) {
        rc = SM_ENOMEM;
        goto out;
    }
    for (char *s = scheme; *s; s++)
        *s = (char)tolower((unsigned char)*s);
    c->tls = !strcmp(scheme, "https");
    size_t hl = strlen(host);
    bool bracketed = hl > 2 && host[0] == '[' && host[hl - 1] == ']';   /* IPv6 literal */
    c->host = bracketed ? sm_strndup(host + 1, hl - 2) : sm_strdup(host);
    c->port = sm_strdup(port ? port : c->tls ? "443" : "80");
    if (!c->host || !c->port) {
        rc = SM_ENOMEM;
        goto out;
    }
    rc = sm_buf_printf(&b, "%s://%s%s%s%s", scheme, host, port && !default_port ? ":" : "",
                       port && !default_port ? port : "", c->prefix);
    if (!rc) {
        c->base = sm_strndup((char *)b.data, b.len);
        sm_buf_reset(&b);
        rc = sm_buf_printf(&b, "Host: %s%s%s", host, port && !default_port ? ":" : "",
                           port && !default_port ? port : "");
        if (!rc)
            c->host_hdr = sm_strndup((char *)b.data, b.len);
        if (!c->base || !c->host_hdr)
            rc = SM_ENOMEM;
        uint64_t h = 1469598103934665603ull;     /* FNV-1a; never 0 (empty registry slot) */
        for (const char *q = c->base ? c->base : ""; *q; q++)
            h = (h ^ (uint8_t)*q) * 1099511628211ull;
        c->base_hash = h | 1;
    }
    sm_buf_free(&b);
    if (!rc && user && *user && !c->o.username) {       /* credentials in the URL */
        c->o.username = sm_strdup(user);
        if (pass && !c->o.password && !c->o.password_file)
            c->o.password = sm_strdup(pass);
    }
out:
    curl_free(scheme);
    curl_free(host);
    curl_free(port);
    curl_free(path);
    curl_free(user);
    curl_free(pass);
    curl_url_cleanup(u);
    return rc;
}

static int setup_auth(struct sm_http_client *c, char *err, size_t errlen)
{
    const struct sm_http_opts *o = &c->o;
    bool basic = o->username && *o->username;
    c->sigv4 = (o->aws_region && *o->aws_region) || (o->aws_service && *o->aws_service);
    if (basic && c->sigv4)
        return sm_errf(err, errlen, SM_ECONFIG, "%s: choose Basic auth (--%s-username) or SigV4 (--%s-aws-*), not both",
                       c->name, c->name, c->name);
    if (!basic && (o->password || o->password_file))
        return sm_errf(err, errlen, SM_ECONFIG, "%s: a password was given without --%s-username", c->name, c->name);
    if (basic) {
        if (o->password && o->password_file)
            return sm_errf(err, errlen, SM_ECONFIG, "%s: give --%s-password or --%s-password-file, not both",
                           c->name, c->name, c->name);
        if (o->password_file) {
            uint8_t *d;
            size_t n;
            int rc = sm_read_file(o->password_file, 1 << 16, &d, &n);
            if (rc)
                return sm_errf(err, errlen, SM_ECONFIG, "%s: --%s-password-file %s: %s", c->name, c->name,
                               o->password_file, sm_strerror(rc));
            while (n && (d[n - 1] == '\n' || d[n - 1] == '\r'))
                d[--n] = 0;
            c->password = (char *)d;
        } else if (o->password) {
            char sub[256] = "";
            if (!(c->password = sm_secret_resolve(o->password, sub, sizeof(sub))))
                return sm_errf(err, errlen, SM_ECONFIG, "%s: --%s-password: %s", c->name, c->name, sub);
        } else {
            return sm_errf(err, errlen, SM_ECONFIG,
                           "%s: --%s-username needs a password (--%s-password-file or the environment)",
                           c->name, c->name, c->name);
        }
        curl_easy_setopt(c->curl, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
        curl_easy_setopt(c->curl, CURLOPT_USERNAME, o->username);
        curl_easy_setopt(c->curl, CURLOPT_PASSWORD, c->password);
        /* the same header for requests on the raw connection (SM_HTTP_DIRECT_BODY) */
        size_t ul = strlen(o->username), pl = strlen(c->password);
        char *up = sm_malloc(ul + pl + 2);
        if (up)
            c->auth_hdr = sm_malloc(sizeof("Authorization: Basic ") + sm_base64_enc_len(ul + pl + 1) + 1);
        if (!up || !c->auth_hdr) {
            sm_free(up);
            return SM_ENOMEM;
        }
        snprintf(up, ul + pl + 2, "%s:%s", o->username, c->password);
        strcpy(c->auth_hdr, "Authorization: Basic ");
        sm_base64_encode(up, ul + pl + 1, c->auth_hdr + strlen(c->auth_hdr));
        memset(up, 0, ul + pl + 1);
        sm_free(up);
    }
    if (c->sigv4) {
        const char *svc = o->aws_service && *o->aws_service ? o->aws_service : "es";
        if (strcmp(svc, "es") && strcmp(svc, "aoss") && strcmp(svc, "s3"))
            return sm_errf(err, errlen, SM_ECONFIG, "%s: --%s-aws-service '%s' is not es, aoss or s3",
                           c->name, c->name, svc);
        if (!(c->service = sm_strdup(svc)))
            return SM_ENOMEM;
        c->region = o->aws_region && *o->aws_region ? sm_strdup(o->aws_region) : sm_aws_region_default(o->aws_profile);
        if (!c->region)
            return sm_errf(err, errlen, SM_ECONFIG,
                           "%s: SigV4 needs a region: --%s-aws-region, AWS_REGION or AWS_DEFAULT_REGION",
                           c->name, c->name);
        char sub[384] = "";
        int rc = sm_aws_creds_load(&c->creds, o->aws_profile, sub, sizeof(sub));
        if (rc)
            return sm_errf(err, errlen, SM_ECONFIG, "%s: %s", c->name, sub);
    }
    return SM_OK;
}

static const char *user_agent(struct sm_http_client *c)
{
    if (c->o.user_agent)
        return c->o.user_agent;
    if (!c->ua[0])
        snprintf(c->ua, sizeof(c->ua), "searchmig/%s", sm_version_string);
    return c->ua;
}

/* Connection options shared by the request handle and the raw handle. */
static void connection_opts(struct sm_http_client *c, CURL *h)
{
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, c->errbuf);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(h, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)c->o.connect_timeout_ms);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)c->o.timeout_ms);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    if (c->o.ca_cert)
        curl_easy_setopt(h, CURLOPT_CAINFO, c->o.ca_cert);
    if (c->o.insecure) {
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
    }
    if (c->o.client_cert)
        curl_easy_setopt(h, CURLOPT_SSLCERT, c->o.client_cert);
    if (c->o.client_key)
        curl_easy_setopt(h, CURLOPT_SSLKEY, c->o.client_key);
}

struct sm_http_client *sm_http_client_new(const struct sm_http_opts *opts, const char *name,
                                          char *err, size_t errlen)
{
    pthread_once(&curl_once, curl_init);
    if (curl_init_rc != CURLE_OK) {
        sm_errf(err, errlen, SM_EIO, "curl_global_init: %s", curl_easy_strerror(curl_init_rc));
        return NULL;
    }
    struct sm_http_client *c = sm_calloc(1, sizeof(*c));
    if (!c) {
        sm_errf(err, errlen, SM_ENOMEM, "out of memory");
        return NULL;
    }
    int rc;
    sm_buf_init(&c->gz, SIZE_MAX / 2);
    sm_buf_init(&c->url, HTTP_URL_MAX);
    sm_buf_init(&c->dhead, SIZE_MAX / 4);
    c->rng = sm_now_ns() ^ (uint64_t)(uintptr_t)c ^ ((uint64_t)getpid() << 32);
    if (!c->rng)
        c->rng = 0x9e3779b97f4a7c15ull;
    if (!(c->name = sm_strdup(name && *name ? name : "http")) || copy_opts(&c->o, opts) ||
        !(c->curl = curl_easy_init())) {
        sm_errf(err, errlen, SM_ENOMEM, "out of memory");
        goto fail;
    }
    if ((rc = parse_url(c, err, errlen)))
        goto fail;
    if (check_file(c->name, "ca-cert", c->o.ca_cert, err, errlen) ||
        check_file(c->name, "client-cert", c->o.client_cert, err, errlen) ||
        check_file(c->name, "client-key", c->o.client_key, err, errlen))
        goto fail;
    if (c->o.client_key && !c->o.client_cert) {
        sm_errf(err, errlen, SM_ECONFIG, "%s: --%s-client-key needs --%s-client-cert", c->name, c->name, c->name);
        goto fail;
    }
    if (c->o.max_retries < 0 || c->o.max_retries > 100) {
        sm_errf(err, errlen, SM_ECONFIG, "%s: --%s-max-retries must be 0..100", c->name, c->name);
        goto fail;
    }
    if ((rc = setup_auth(c, err, errlen)))
        goto fail;
    if (c->o.insecure && !strncmp(c->base, "https:", 6))
        sm_log_warn("%s: --%s-insecure: the TLS certificate of %s is not verified", c->name, c->name, c->base);

    CURL *h = c->curl;
    connection_opts(c, h);
    curl_easy_setopt(h, CURLOPT_PATH_AS_IS, 1L);         /* send (and sign) the path as given */
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(h, CURLOPT_ACCEPT_ENCODING, "");    /* every encoding curl can decode */
    curl_easy_setopt(h, CURLOPT_USERAGENT, user_agent(c));
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    /* curl takes proxies from the environment; requests on a raw connection
     * would bypass them, so SM_HTTP_DIRECT_BODY is ignored then. */
    static const char *const proxy_env[] = { "http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY",
                                             "all_proxy", "ALL_PROXY" };
    for (size_t i = 0; i < SM_ARRAY_LEN(proxy_env); i++) {
        const char *v = getenv(proxy_env[i]);
        if (v && *v)
            c->no_direct = true;
    }
    if (!c->o.max_response)
        c->o.max_response = 512ull << 20;
    return c;
fail:
    sm_http_client_free(c);
    return NULL;
}

void sm_http_client_free(struct sm_http_client *c)
{
    if (!c)
        return;
    if (c->curl)
        curl_easy_cleanup(c->curl);
    if (c->raw)
        curl_easy_cleanup(c->raw);
    if (c->auth_hdr) {
        memset(c->auth_hdr, 0, strlen(c->auth_hdr));
        sm_free(c->auth_hdr);
    }
    sm_buf_free(&c->dhead);
    if (c->password)
        memset(c->password, 0, strlen(c->password));
    sm_free(c->password);
    sm_http_opts_free(&c->o);
    sm_aws_creds_free(&c->creds);
    sm_free(c->region);
    sm_free(c->service);
    sm_free(c->name);
    sm_free(c->base);
    sm_free(c->host_hdr);
    sm_free(c->prefix);
    sm_free(c->host);
    sm_free(c->port);
    sm_buf_free(&c->gz);
    sm_gzip_free(c->gzc);
    sm_buf_free(&c->url);
    sm_free(c);
}

const char *sm_http_client_url(const struct sm_http_client *c)
{
    return c->base;
}

void sm_http_client_set_attempt_cb(struct sm_http_client *c, sm_http_attempt_cb cb, void *arg)
{
    c->cb = cb;
    c->cb_arg = arg;
}

void sm_http_client_stats(const struct sm_http_client *c, struct sm_http_stats *out)
{
    *out = c->stats;
}

/* ------------------------------------------------------------ responses */

struct recv_ctx {
    struct sm_http_response *resp;
    uint64_t cap;
    bool overflow;                       /* body over the cap */
    bool oom;                            /* allocation failed */
    bool hdr_overflow;                   /* header block over HTTP_HDR_MAX */
};

static size_t on_body(char *p, size_t size, size_t n, void *arg)
{
    struct recv_ctx *rx = arg;
    size_t len = size * n;
    if (rx->resp->body.len + len > rx->cap) {
        rx->overflow = true;
        return 0;                          /* makes curl fail with CURLE_WRITE_ERROR */
    }
    int rc = sm_buf_append(&rx->resp->body, p, len);
    if (rc) {
        rx->oom = rc == SM_ENOMEM;
        rx->overflow = rc == SM_EFULL;
        return 0;
    }
    return len;
}

static size_t on_header(char *p, size_t size, size_t n, void *arg)
{
    struct recv_ctx *rx = arg;
    size_t len = size * n;
    if (len >= 5 && !memcmp(p, "HTTP/", 5)) {   /* a new response (100-continue, retry) */
        sm_buf_reset(&rx->resp->headers);
        return len;
    }
    int rc = sm_buf_append(&rx->resp->headers, p, len);
    if (rc) {
        rx->oom = rc == SM_ENOMEM;
        rx->hdr_overflow = rc == SM_EFULL;
        return 0;
    }
    return len;
}

const char *sm_http_response_header(const struct sm_http_response *r, const char *name,
                                    char *val, size_t vallen)
{
    if (!r->headers.data || !vallen)
        return NULL;
    size_t nl = strlen(name);
    const char *s = (const char *)r->headers.data, *end = s + r->headers.len;
    while (s < end) {
        const char *e = memchr(s, '\n', (size_t)(end - s));
        if (!e)
            e = end;
        if ((size_t)(e - s) > nl && s[nl] == ':' && !strncasecmp(s, name, nl)) {
            const char *v = s + nl + 1, *ve = e;
            while (v < ve && (*v == ' ' || *v == '\t'))
                v++;
            while (ve > v && (ve[-1] == '\r' || ve[-1] == ' ' || ve[-1] == '\t'))
                ve--;
            size_t vl = SM_MIN((size_t)(ve - v), vallen - 1);
            memcpy(val, v, vl);
            val[vl] = 0;
            return val;
        }
        s = e + 1;
    }
    return NULL;
}

void sm_http_response_free(struct sm_http_response *r)
{
    if (!r)
        return;
    sm_buf_free(&r->body);
    sm_buf_free(&r->headers);
}

/* --------------------------------------------------------------- sending */

static uint64_t rnd(struct sm_http_client *c)
{
    uint64_t x = c->rng;      /* xorshift64* */
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    c->rng = x;
    return x * 0x2545F4914F6CDD1Dull;
}

/* Retry-After: delta seconds or an HTTP date. Returns ms, 0 if absent/bad. */
static uint64_t retry_after_ms(const struct sm_http_response *r)
{
    char v[128];
    if (!sm_http_response_header(r, "Retry-After", v, sizeof(v)) || !*v)
        return 0;
    uint64_t secs;
    uint64_t ms;
    if (!sm_parse_u64(v, UINT64_MAX / 1000, &secs)) {
        ms = secs * 1000;
    } else {
        time_t t = curl_getdate(v, NULL);
        time_t now = time(NULL);
        if (t == (time_t)-1 || t <= now)
            return 0;
        ms = (uint64_t)(t - now) * 1000;
    }
    return SM_MIN(ms, (uint64_t)SM_HTTP_RETRY_AFTER_MAX_MS);
}

static uint64_t backoff_ms(struct sm_http_client *c, unsigned retry)
{
    uint64_t cap = c->o.backoff_cap_ms, d = c->o.backoff_base_ms;
    for (unsigned i = 1; i < retry && d < cap; i++)
        d *= 2;
    d = SM_MIN(d, cap);
    return d ? rnd(c) % (d + 1) : 0;          /* full jitter */
}

static bool curl_retriable(CURLcode cc)
{
    switch (cc) {
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_GOT_NOTHING:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_PARTIAL_FILE:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
        return true;
    default:
        return false;
    }
}

static bool has_header(const char *const *headers, const char *name)
{
    size_t nl = strlen(name);
    for (const char *const *h = headers; h && *h; h++)
        if (!strncasecmp(*h, name, nl) && (*h)[nl] == ':')
            return true;
    return false;
}

/* Debug output of a canonical request with the session token masked. */
static void log_canonical(struct sm_http_client *c, const char *cr)
{
    static const char tag[] = "\nx-amz-security-token:";
    const char *t = strstr(cr, tag);
    if (!t) {
        sm_dbg(SM_DBG_HTTP, "%s: sigv4 canonical request:\n%s", c->name, cr);
        return;
    }
    const char *e = strchr(t + sizeof(tag) - 1, '\n');
    sm_dbg(SM_DBG_HTTP, "%s: sigv4 canonical request:\n%.*s<redacted>%s", c->name,
           (int)(t - cr + (int)sizeof(tag) - 1), cr, e ? e : "");
}

/* Builds the header list of one attempt (SigV4 signs with the current time). */
static int build_headers(struct sm_http_client *c, const struct sm_http_req *req, const char *path,
                         const void *body, size_t body_len, bool gz, struct curl_slist **out,
                         char *err, size_t errlen)
{
    const char *lines[64];
    size_t n = 0;
    for (const char *const *h = req->headers; h && *h; h++) {
        if (n >= SM_ARRAY_LEN(lines) - 6)
            return sm_errf(err, errlen, SM_EINVAL, "%s: too many request headers", c->name);
        lines[n++] = *h;
    }
    if (body && !has_header(req->headers, "Content-Type"))
        lines[n++] = "Content-Type: application/json";
    if (gz)
        lines[n++] = "Content-Encoding: gzip";
    if (c->sigv4 && !has_header(req->headers, "Host"))
        lines[n++] = c->host_hdr;            /* signed, so sent explicitly */
    lines[n] = NULL;

    struct curl_slist *sl = NULL, *t;
    int rc = SM_OK;
    for (size_t i = 0; i < n && !rc; i++) {
        if (!(t = curl_slist_append(sl, lines[i])))
            rc = SM_ENOMEM;
        else
            sl = t;
    }
    if (!rc && !(t = curl_slist_append(sl, "Expect:")))   /* no 100-continue round trip */
        rc = SM_ENOMEM;
    else if (!rc)
        sl = t;
    if (!rc && c->sigv4) {
        const char *q = strchr(path, '?');
        char *p = q ? sm_strndup(path, (size_t)(q - path)) : sm_strdup(path);
        struct sm_sigv4_cfg cfg = { c->region, c->service, &c->creds,
                                    (req->flags & SM_HTTP_UNSIGNED_PAYLOAD) ? SM_SIGV4_UNSIGNED_PAYLOAD : 0 };
        struct sm_sigv4_req sreq = { req->method, p, q ? q + 1 : NULL, lines, body, body_len, NULL,
                                     (int64_t)(sm_wall_ms() / 1000) };
        struct sm_sigv4_result res;
        char sub[256] = "";
        if (!p)
            rc = SM_ENOMEM;
        else if ((rc = sm_sigv4_sign(&cfg, &sreq, &res, sub, sizeof(sub))))
            sm_errf(err, errlen, rc, "%s: %s", c->name, sub);
        else {
            for (size_t i = 0; res.add_headers[i] && !rc; i++) {
                if (!(t = curl_slist_append(sl, res.add_headers[i])))
                    rc = SM_ENOMEM;
                else
                    sl = t;
            }
            if (sm_log_debug_cur & SM_DBG_HTTP)
                log_canonical(c, res.canonical_request);
            sm_sigv4_result_free(&res);
        }
        sm_free(p);
    }
    if (rc) {
        curl_slist_free_all(sl);
        return rc;
    }
    *out = sl;
    return SM_OK;
}

static void set_method(CURL *h, const char *method, const void *body, size_t len)
{
    if (!strcmp(method, "HEAD")) {
        curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
        curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, NULL);
        return;
    }
    curl_easy_setopt(h, CURLOPT_NOBODY, 0L);
    bool want_body = body || !strcmp(method, "POST") || !strcmp(method, "PUT");
    if (want_body) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)(body ? len : 0));
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body ? body : "");
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, strcmp(method, "POST") ? method : NULL);
    } else {
        curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, strcmp(method, "GET") ? method : NULL);
    }
}

/* Short reason for a transport error. */
static void describe(struct sm_http_client *c, CURL *h, CURLcode cc, char *out, size_t outlen)
{
    long oserr = 0;
    curl_easy_getinfo(h, CURLINFO_OS_ERRNO, &oserr);
    if (cc == CURLE_COULDNT_CONNECT && oserr) {
        snprintf(out, outlen, "%s", strerror((int)oserr));
        out[0] = (char)tolower((unsigned char)out[0]);
    } else if (cc == CURLE_GOT_NOTHING) {
        snprintf(out, outlen, "connection closed without a response");
    } else if (c->errbuf[0] && strncmp(c->errbuf, "getpeername()", 13) != 0) {
        /* (curl keeps its first message; a non-fatal getpeername() failure
         * on a connection the peer already closed would hide the real one) */
        snprintf(out, outlen, "%s", c->errbuf);
    } else {
        snprintf(out, outlen, "%s", curl_easy_strerror(cc));
    }
}

/* ------------------------------------------------ raw connection requests */

/* SM_HTTP_DIRECT_BODY: curl copies a request body into its upload buffer
 * before sending it (for a 1 MiB bulk body, a 1 MiB memcpy per request). A
 * connect-only handle lets curl connect (TCP, TLS with the same options) and
 * the client write the request head and the caller's body itself with
 * curl_easy_send(), which sends from the given buffer; the response is read
 * with curl_easy_recv() and framed by llhttp (no Content-Encoding is
 * asked for). Retries, signing, stats and callbacks are sm_http_send()'s. */

static void raw_close(struct sm_http_client *c)
{
    if (c->raw)
        curl_easy_cleanup(c->raw);
    c->raw = NULL;
    c->raw_requests = 0;
}

/* Waits until the raw socket is readable/writable; SM_ETIMEOUT past deadline. */
static int raw_wait(struct sm_http_client *c, bool out, uint64_t deadline)
{
    struct pollfd p = { .fd = c->raw_sock, .events = out ? POLLOUT : POLLIN };
    for (;;) {
        uint64_t now = sm_now_ms();
        if (now >= deadline)
            return SM_ETIMEOUT;
        int r = poll(&p, 1, (int)SM_MIN(deadline - now, 3600000u));
        if (r > 0)
            return SM_OK;
        if (r < 0 && errno != EINTR)
            return SM_EIO;
    }
}

static int raw_connect(struct sm_http_client *c, char *reason, size_t rlen, bool *retry)
{
    if (!(c->raw = curl_easy_init())) {
        snprintf(reason, rlen, "out of memory");
        return SM_ENOMEM;
    }
    connection_opts(c, c->raw);
    curl_easy_setopt(c->raw, CURLOPT_URL, c->base);
    curl_easy_setopt(c->raw, CURLOPT_CONNECT_ONLY, 1L);
    curl_easy_setopt(c->raw, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);   /* ALPN: http/1.1 only */
    c->errbuf[0] = 0;
    CURLcode cc = curl_easy_perform(c->raw);
    if (cc == CURLE_OK && curl_easy_getinfo(c->raw, CURLINFO_ACTIVESOCKET, &c->raw_sock) == CURLE_OK &&
        c->raw_sock != CURL_SOCKET_BAD)
        return SM_OK;
    describe(c, c->raw, cc, reason, rlen);
    *retry = curl_retriable(cc);
    raw_close(c);
    return cc == CURLE_OPERATION_TIMEDOUT ? SM_ETIMEOUT : SM_EIO;
}

static int raw_send(struct sm_http_client *c, const void *p, size_t n, uint64_t deadline)
{
    const char *b = p;
    while (n) {
        size_t sent = 0;
        CURLcode cc = curl_easy_send(c->raw, b, n, &sent);
        if (cc == CURLE_AGAIN) {
            int rc = raw_wait(c, true, deadline);
            if (rc)
                return rc;
            continue;
        }
        if (cc != CURLE_OK)
            return SM_EIO;
        b += sent;
        n -= sent;
    }
    return SM_OK;
}

/* Reads what is there (up to cap bytes); *got 0 at the end of the stream. */
static int raw_recv(struct sm_http_client *c, void *buf, size_t cap, uint64_t deadline, size_t *got)
{
    for (;;) {
        CURLcode cc = curl_easy_recv(c->raw, buf, cap, got);
        if (cc == CURLE_OK)
            return SM_OK;
        if (cc != CURLE_AGAIN)
            return SM_EIO;
        int rc = raw_wait(c, false, deadline);
        if (rc)
            return rc;
    }
}

/* llhttp callbacks filling a response: headers as "Name: value\r\n"
 * lines (like curl's header callback, trailers included), interim 1xx
 * responses dropped. A callback failing sets rc and the reason. */
struct raw_rx {
    struct sm_http_response *out;
    char *reason;
    size_t rlen;
    int rc;
    bool value;                          /* the last header bytes were a value */
    bool head, done;                     /* final response: headers, whole message seen */
};

static int rx_fail(struct raw_rx *rx, int rc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int rx_fail(struct raw_rx *rx, int rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(rx->reason, rx->rlen, fmt, ap);
    va_end(ap);
    rx->rc = rc;
    return -1;
}

static int rx_append(struct raw_rx *rx, struct sm_buf *b, const char *p, size_t n)
{
    int rc = sm_buf_append(b, p, n);
    if (rc == SM_ENOMEM)
        return rx_fail(rx, rc, "out of memory reading the response");
    if (rc && b == &rx->out->headers)
        return rx_fail(rx, SM_EPROTO, "response headers over %u bytes", HTTP_HDR_MAX);
    if (rc)
        return rx_fail(rx, SM_EFULL, "response body over the %llu byte cap", (unsigned long long)b->max);
    return 0;
}

/* Header bytes: ": " between a name and its value, CRLF before the next name. */
static int rx_header(llhttp_t *p, bool value, const char *s, size_t n)
{
    struct raw_rx *rx = p->data;
    if (rx->value != value && rx_append(rx, &rx->out->headers, value ? ": " : "\r\n", 2))
        return -1;
    rx->value = value;
    return rx_append(rx, &rx->out->headers, s, n);
}

static int rx_field(llhttp_t *p, const char *s, size_t n) { return rx_header(p, false, s, n); }
static int rx_value(llhttp_t *p, const char *s, size_t n) { return rx_header(p, true, s, n); }

static int rx_body(llhttp_t *p, const char *s, size_t n)
{
    struct raw_rx *rx = p->data;
    return rx_append(rx, &rx->out->body, s, n);
}

static int rx_begin(llhttp_t *p)
{
    struct raw_rx *rx = p->data;
    sm_buf_reset(&rx->out->headers);
    rx->value = false;
    return 0;
}

static int rx_headers_done(llhttp_t *p)
{
    struct raw_rx *rx = p->data;
    if (rx_header(p, false, "\r\n", 2))        /* ends the last line, then the empty one */
        return -1;
    if (p->upgrade)
        return rx_fail(rx, SM_EPROTO, "unexpected protocol upgrade in the response");
    if (p->status_code < 200)
        return 0;                               /* interim: completes without a body */
    char v[64];
    if (sm_http_response_header(rx->out, "Content-Encoding", v, sizeof(v)) && strcasecmp(v, "identity"))
        return rx_fail(rx, SM_EPROTO, "unexpected Content-Encoding %s in the response", v);
    if ((p->flags & F_CONTENT_LENGTH) && p->content_length > rx->out->body.max)
        return rx_fail(rx, SM_EFULL, "response body over the %llu byte cap", (unsigned long long)rx->out->body.max);
    rx->head = true;
    return 0;
}

static int rx_complete(llhttp_t *p)
{
    struct raw_rx *rx = p->data;
    if (p->status_code >= 200) {
        if (rx->value && rx_append(rx, &rx->out->headers, "\r\n", 2))   /* after trailers */
            return -1;
        rx->done = true;
        return HPE_PAUSED;                       /* bytes after it are not ours */
    }
    return 0;
}

static const llhttp_settings_t rx_settings = {
    .on_message_begin = rx_begin, .on_header_field = rx_field, .on_header_value = rx_value,
    .on_headers_complete = rx_headers_done, .on_body = rx_body, .on_message_complete = rx_complete,
};

/* One attempt on the raw connection (connecting first if needed). Returns
 * SM_OK with out->status, out->headers and out->body set, or an error with
 * reason filled, *retry telling whether a retry may help and *unreached
 * whether the server could not be connected to at all. */
static int direct_attempt(struct sm_http_client *c, const char *method, const char *path, const struct curl_slist *hdrs,
                          const void *body, size_t body_len, struct sm_http_response *out, char *reason,
                          size_t rlen, bool *retry, bool *unreached)
{
    uint64_t deadline = sm_now_ms() + (c->o.timeout_ms ? c->o.timeout_ms : 3600000u);
    *retry = false;
    for (int fresh = 0;; fresh++) {
        bool reused = c->raw && c->raw_requests > 0;
        int rc = SM_OK;
        if (!c->raw && (rc = raw_connect(c, reason, rlen, retry))) {
            *unreached = *retry;     /* refused, unreachable, connect timeout, name not resolved */
            return rc;
        }
        /* head */
        struct sm_buf *h = &c->dhead;
        sm_buf_reset(h);
        rc = sm_buf_printf(h, "%s %s HTTP/1.1\r\n", method, path);
        bool host = false;
        for (const struct curl_slist *l = hdrs; l && !rc; l = l->next) {
            const char *colon = strchr(l->data, ':');
            if (!colon || !colon[1])
                continue;                           /* "Name:" removes a header in curl: nothing to send */
            host |= !strncasecmp(l->data, "Host:", 5);
            rc = sm_buf_printf(h, "%s\r\n", l->data);
        }
        if (!rc && !host)
            rc = sm_buf_printf(h, "%s\r\n", c->host_hdr);
        if (!rc)
            rc = sm_buf_printf(h, "User-Agent: %s\r\nAccept: */*\r\n", user_agent(c));
        if (!rc && c->auth_hdr)
            rc = sm_buf_printf(h, "%s\r\n", c->auth_hdr);
        if (!rc)
            rc = sm_buf_printf(h, "Content-Length: %zu\r\n\r\n", body_len);
        if (rc) {
            snprintf(reason, rlen, "request head too large");
            return rc == SM_EFULL ? SM_EINVAL : rc;
        }
        rc = raw_send(c, h->data, h->len, deadline);
        if (!rc)
            rc = raw_send(c, body, body_len, deadline);
        bool sent = rc == SM_OK;
        if (rc == SM_EIO)
            rc = SM_OK;             /* a server that refused the body may have answered (413) before closing */

        /* response, read into c->dhead */
        struct raw_rx rx = { .out = out, .reason = reason, .rlen = rlen };
        llhttp_t p;
        llhttp_init(&p, HTTP_RESPONSE, &rx_settings);
        p.data = &rx;
        size_t total = 0;
        bool keep = false;
        sm_buf_reset(h);
        if (!rc && (rc = sm_buf_reserve(h, 64u << 10)))
            rx_fail(&rx, rc, "out of memory reading the response");
        while (!rc) {
            size_t n = 0;
            if ((rc = raw_recv(c, h->data, h->cap, deadline, &n)))
                break;
            total += n;
            /* n 0: EOF, which ends a close-delimited response */
            llhttp_errno_t e = n ? llhttp_execute(&p, (const char *)h->data, n) : llhttp_finish(&p);
            size_t used = e == HPE_PAUSED ? (size_t)((const uint8_t *)llhttp_get_error_pos(&p) - h->data) : n;
            if (rx.done) {
                keep = n && used == n && llhttp_should_keep_alive(&p);
                break;
            }
            if (rx.rc)
                rc = rx.rc;
            else if (!n)
                rc = SM_EIO;                        /* closed before the end of the response */
            else if (e != HPE_OK) {
                snprintf(reason, rlen, "malformed response (%s)",
                         sm_llhttp_reason(&p, e));
                rc = SM_EPROTO;
            }
        }
        if (keep)
            c->raw_requests++;
        else
            raw_close(c);
        if (!rc) {
            out->status = p.status_code;
            return SM_OK;
        }
        /* A kept-alive connection the server closed meanwhile: once more on a new one. */
        if (rc == SM_EIO && !total && reused && !fresh)
            continue;
        *retry = rc == SM_ETIMEOUT || rc == SM_EIO;
        if (rc == SM_ETIMEOUT)
            snprintf(reason, rlen, "timed out after %llu ms", (unsigned long long)c->o.timeout_ms);
        else if (rc == SM_EIO)
            snprintf(reason, rlen, "connection closed %s", !sent ? "while sending the request"
                                                       : !total ? "without a response"
                                                       : rx.head ? "in the response body" : "in the response headers");
        out->status = 0;
        return rc;
    }
}

int sm_http_send(struct sm_http_client *c, const struct sm_http_req *req,
                 struct sm_http_response *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    uint64_t cap = req->max_response ? req->max_response : c->o.max_response;
    sm_buf_init(&out->body, cap);
    sm_buf_init(&out->headers, HTTP_HDR_MAX);
    const char *method = req->method && *req->method ? req->method : "GET";
    const char *path = req->path && *req->path ? req->path : "/";
    uint64_t t0 = sm_now_ms();
    c->stats.requests++;

    /* full path (prefix + path), URL */
    struct sm_buf fp;
    sm_buf_init(&fp, HTTP_URL_MAX);
    int rc = sm_buf_printf(&fp, "%s%s%s", c->prefix, path[0] == '/' ? "" : "/", path);
    sm_buf_reset(&c->url);
    if (!rc)
        rc = sm_buf_printf(&c->url, "%s%s%s", c->base, path[0] == '/' ? "" : "/", path);
    if (rc) {
        sm_buf_free(&fp);
        c->stats.failures++;
        return sm_errf(err, errlen, rc == SM_EFULL ? SM_EINVAL : rc, "%s %s: path too long", method, path);
    }
    const char *url = (const char *)c->url.data;

    const void *body = req->body;
    size_t body_len = req->body_len;
    bool gz = false;
    if (body && body_len && c->o.gzip && !(req->flags & SM_HTTP_NO_GZIP)) {
        if ((rc = sm_gzip(&c->gzc, &c->gz, body, body_len))) {
            sm_buf_free(&fp);
            c->stats.failures++;
            return sm_errf(err, errlen, rc, "%s %s: gzip failed", method, url);
        }
        body = c->gz.data;
        body_len = c->gz.len;
        gz = true;
    }

    unsigned max_attempts = (req->flags & SM_HTTP_NO_RETRY) ? 1u : (unsigned)c->o.max_retries + 1u;
    bool direct = (req->flags & SM_HTTP_DIRECT_BODY) && body && !c->no_direct && strcmp(method, "HEAD");
    struct recv_ctx rx = { out, cap, false, false, false };
    CURL *h = c->curl;
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &rx);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, &rx);
    if (!direct)
        set_method(h, method, body, body_len);
    /* Large bodies (bulk requests) in 1 MiB writes instead of curl's 64 KiB:
     * a sixteenth of the send and poll calls. Set once per client (setting it
     * frees curl's buffer), on the first large body. */
    if (!direct && body_len >= (1u << 20) && !c->big_upload) {
        curl_easy_setopt(h, CURLOPT_UPLOAD_BUFFERSIZE, 1L << 20);
        c->big_upload = true;
    }

    char reason[CURL_ERROR_SIZE + 64] = "";
    int result = SM_OK;
    bool err_set = false;
    uint64_t down_since = 0;                /* first attempt that could not connect */
    for (unsigned attempt = 1;; attempt++) {
        struct curl_slist *hdrs = NULL;
        if ((rc = build_headers(c, req, (const char *)fp.data, body, body_len, gz, &hdrs, err, errlen))) {
            result = rc;
            err_set = true;
            break;
        }
        sm_buf_reset(&out->body);
        sm_buf_reset(&out->headers);
        rx.overflow = rx.oom = rx.hdr_overflow = false;
        c->errbuf[0] = 0;
        CURLcode cc = CURLE_OK;
        int drc = SM_OK;
        bool dretry = false, unreached = false;
        if (direct) {
            drc = direct_attempt(c, method, (const char *)fp.data, hdrs, body, body_len, out, reason,
                                 sizeof(reason), &dretry, &unreached);
        } else {
            curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
            cc = curl_easy_perform(h);
            curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
        }
        curl_slist_free_all(hdrs);
        out->attempts = attempt;
        c->stats.attempts++;
        if (body)
            c->stats.bytes_sent += body_len;

        struct sm_http_attempt a = { method, url, attempt, 0, SM_OK, "", false, 0, 0 };
        bool retry = false;
        if (direct ? drc == SM_OK : cc == CURLE_OK) {
            if (!direct)
                curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &out->status);
            c->stats.bytes_received += out->body.len;
            a.status = out->status;
            if (sm_http_status_retriable(out->status)) {
                retry = true;
                a.retry_after_ms = retry_after_ms(out);
                snprintf(reason, sizeof(reason), "HTTP %ld", out->status);
            }
            result = SM_OK;
            mark_answered(c->base_hash);
        } else if (direct) {
            out->status = 0;
            result = drc;
            retry = dretry;
            a.err = result;
            a.error = reason;
        } else {
            out->status = 0;
            if (rx.overflow) {
                snprintf(reason, sizeof(reason), "response body over the %llu byte cap",
                         (unsigned long long)cap);
                result = SM_EFULL;
            } else if (rx.oom) {
                snprintf(reason, sizeof(reason), "out of memory reading the response");
                result = SM_ENOMEM;
            } else if (rx.hdr_overflow) {
                snprintf(reason, sizeof(reason), "response headers over %u bytes", HTTP_HDR_MAX);
                result = SM_EPROTO;
            } else {
                describe(c, h, cc, reason, sizeof(reason));
                result = cc == CURLE_OPERATION_TIMEDOUT ? SM_ETIMEOUT
                         : cc == CURLE_URL_MALFORMAT ? SM_EINVAL : SM_EIO;
                retry = curl_retriable(cc);
                /* (a timeout is left out: curl does not tell a connect
                 * timeout from a slow response on a kept-alive connection) */
                unreached = cc == CURLE_COULDNT_CONNECT || cc == CURLE_COULDNT_RESOLVE_HOST;
            }
            a.err = result;
            a.error = reason;
        }
        a.will_retry = retry && attempt < max_attempts;
        if (a.will_retry)
            a.delay_ms = SM_MAX(backoff_ms(c, attempt), a.retry_after_ms);
        if (unreached && !down_since)
            down_since = sm_now_ms();
        /* past the retries: a server that answered before is waited for */
        if (retry && unreached && !a.will_retry && max_attempts > 1 && c->o.down_wait_ms &&
            has_answered(c->base_hash) && !atomic_load(&stop_waiting)) {
            uint64_t waited = sm_now_ms() - down_since;
            if (waited < c->o.down_wait_ms) {
                uint64_t d = SM_MIN(SM_MAX(c->o.backoff_cap_ms, 1u), DOWN_PROBE_MAX_MS);
                a.will_retry = true;
                a.delay_ms = SM_MIN(d / 2 + rnd(c) % (d / 2 + 1), c->o.down_wait_ms - waited);
                warn_down(c, reason, c->o.down_wait_ms - waited);
            }
        }
        if (c->cb)
            c->cb(c->cb_arg, &a);
        sm_dbg(SM_DBG_HTTP, "%s %s: attempt %u/%u: status %ld%s%s, %s %llu ms", method, url, attempt,
               max_attempts, a.status, a.error[0] ? ", " : "", a.error, a.will_retry ? "retry in" : "took",
               (unsigned long long)(a.will_retry ? a.delay_ms : sm_now_ms() - t0));
        if (!a.will_retry)
            break;
        c->stats.retries++;
        uint64_t supp;
        if (attempt == 1 && sm_log_ratelimited(&c->warn_rl, 10000, &supp)) {
            if (supp)
                sm_log_warn("%s: %s %s: %s, retrying (%llu more since the last message)", c->name, method,
                            url, reason, (unsigned long long)supp);
            else
                sm_log_warn("%s: %s %s: %s, retrying", c->name, method, url, reason);
        }
        sleep_unless_stopped(a.delay_ms);
    }
    sm_buf_free(&fp);
    out->elapsed_ms = sm_now_ms() - t0;
    if (result != SM_OK || sm_http_status_retriable(out->status))
        c->stats.failures++;
    if (result != SM_OK && !err_set) {
        if (down_since && out->attempts > max_attempts)
            sm_errf(err, errlen, result, "%s %s: %s after %u attempts (unreachable for %.0f s)", method, url, reason,
                    out->attempts, (double)(sm_now_ms() - down_since) / 1000.0);
        else if (out->attempts > 1)
            sm_errf(err, errlen, result, "%s %s: %s after %u attempts", method, url, reason, out->attempts);
        else
            sm_errf(err, errlen, result, "%s %s: %s", method, url, reason);
    }
    return result;
}

int sm_http_request(struct sm_http_client *c, const char *method, const char *path,
                    const char *const *headers, const void *body, size_t body_len,
                    struct sm_http_response *out, char *err, size_t errlen)
{
    struct sm_http_req req = { method, path, headers, body, body_len, 0, 0 };
    return sm_http_send(c, &req, out, err, errlen);
}

/* "400 mapper_parsing_exception: failed to parse" from an error body. */
static void error_summary(const json_t *j, const struct sm_http_response *r, char *out, size_t outlen)
{
    const json_t *e = json_object_get(j, "error");
    const json_t *rc = json_object_get(e, "root_cause");
    if (json_is_array(rc) && json_array_size(rc) && !json_object_get(e, "reason"))
        e = json_array_get(rc, 0);
    const char *type = json_string_value(json_object_get(e, "type"));
    const char *reason = json_string_value(json_object_get(e, "reason"));
    if (type || reason)
        snprintf(out, outlen, "%ld %s%s%s", r->status, type ? type : "", type && reason ? ": " : "",
                 reason ? reason : "");
    else if (json_is_string(e))
        snprintf(out, outlen, "%ld %s", r->status, json_string_value(e));
    else
        snprintf(out, outlen, "%ld %.*s", r->status, (int)SM_MIN(r->body.len, (size_t)200),
                 r->body.data ? (const char *)r->body.data : "");
}

int sm_http_request_json(struct sm_http_client *c, const char *method, const char *path,
                         const json_t *body, json_t **out, long *status, char *err, size_t errlen)
{
    if (out)
        *out = NULL;
    if (status)
        *status = 0;
    char *text = NULL;
    if (body && !(text = json_dumps(body, JSON_COMPACT)))
        return sm_errf(err, errlen, SM_ENOMEM, "%s %s: cannot serialise the JSON body", method, path);
    static const char *const hdrs[] = { "Content-Type: application/json", "Accept: application/json", NULL };
    struct sm_http_response r;
    int rc = sm_http_request(c, method, path, hdrs, text, text ? strlen(text) : 0, &r, err, errlen);
    free(text);
    if (rc) {
        sm_http_response_free(&r);
        return rc;
    }
    if (status)
        *status = r.status;
    json_t *j = NULL;
    if (r.body.len) {
        json_error_t je;
        j = json_loadb((const char *)r.body.data, r.body.len, 0, &je);
    }
    if (r.status < 200 || r.status > 299) {
        char summary[512];
        error_summary(j, &r, summary, sizeof(summary));
        rc = r.status == 404 ? SM_ENOTFOUND : r.status == 409 ? SM_ECONFLICT
             : (sm_http_status_retriable(r.status) || r.status >= 500) ? SM_EAGAIN : SM_EPROTO;
        sm_errf(err, errlen, rc, "%s %s%s: %s", method, c->base, path, summary);
    } else if (r.body.len && !j && strcmp(method, "HEAD") != 0) {
        rc = sm_errf(err, errlen, SM_EPROTO, "%s %s%s: response is not JSON: %.80s", method, c->base, path,
                     (const char *)r.body.data);
    }
    sm_http_response_free(&r);
    if (out)
        *out = j;
    else
        json_decref(j);
    return rc;
}
