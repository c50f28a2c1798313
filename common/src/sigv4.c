/* AWS Signature Version 4: canonical request, string to sign, signing key,
 * Authorization header; credentials and region from the environment and the
 * standard AWS files. See sm/sigv4.h for the rules. */
#include <sm/sigv4.h>
#include <sm/buf.h>
#include <sm/err.h>
#include <sm/mem.h>
#include <sm/util.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define SIGV4_ALGO "AWS4-HMAC-SHA256"
#define SIGV4_MAX_TEXT (16u << 20)      /* cap of canonical request and friends */
#define AWS_FILE_MAX (1u << 20)

/* ---------------------------------------------------------------- hashing */

void sm_sha256_hex(const void *p, size_t n, char hex[65])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    if (!EVP_Digest(p ? p : "", n, md, &mdlen, EVP_sha256(), NULL) || mdlen != 32) {
        memset(hex, '0', 64);
        hex[64] = 0;
        return;
    }
    sm_hex(md, 32, hex);
}

static int hmac256(const void *key, size_t klen, const void *data, size_t dlen, unsigned char out[32])
{
    unsigned int len = 0;
    if (!HMAC(EVP_sha256(), key, (int)klen, data, dlen, out, &len) || len != 32)
        return SM_EIO;
    return SM_OK;
}

/* ---------------------------------------------------------------- encoding */

static bool unreserved(unsigned char c)
{
    return isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~';
}

int sm_uri_encode(struct sm_buf *out, const void *s, size_t n, bool keep_slash)
{
    static const char hexd[] = "0123456789ABCDEF";
    const unsigned char *p = s;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = p[i];
        int rc;
        if (unreserved(c) || (keep_slash && c == '/')) {
            rc = sm_buf_append(out, &c, 1);
        } else {
            char e[3] = { '%', hexd[c >> 4], hexd[c & 15] };
            rc = sm_buf_append(out, e, 3);
        }
        if (rc)
            return rc;
    }
    return SM_OK;
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Percent-decodes s[0..n) into out; an invalid escape is kept literally. */
static int uri_decode(struct sm_buf *out, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '%' && i + 2 < n && hexval(s[i + 1]) >= 0 && hexval(s[i + 2]) >= 0) {
            c = (unsigned char)(hexval(s[i + 1]) << 4 | hexval(s[i + 2]));
            i += 2;
        }
        int rc = sm_buf_append(out, &c, 1);
        if (rc)
            return rc;
    }
    return SM_OK;
}

/* Encodes after decoding: the canonical form of an already-encoded string. */
static int reencode(struct sm_buf *out, const char *s, size_t n, bool keep_slash)
{
    struct sm_buf tmp;
    sm_buf_init(&tmp, SIGV4_MAX_TEXT);
    int rc = uri_decode(&tmp, s, n);
    if (!rc)
        rc = sm_uri_encode(out, tmp.data ? tmp.data : (const uint8_t *)"", tmp.len, keep_slash);
    sm_buf_free(&tmp);
    return rc;
}

/* ------------------------------------------------------------ canonical URI */

/* RFC 3986 dot-segment removal plus collapsing of empty segments, as AWS
 * normalises paths: "//a/./b/../c/" -> "/a/c/". */
static int normalize_path(struct sm_buf *out, const char *path)
{
    size_t n = strlen(path);
    size_t *stack = sm_malloc((n / 2 + 2) * sizeof(*stack));   /* segment starts, for ".." */
    size_t depth = 0, base = out->len;
    int rc = SM_OK;
    if (!stack)
        return SM_ENOMEM;
    bool trailing = n && path[n - 1] == '/';
    const char *p = path;
    for (;;) {
        while (*p == '/')
            p++;
        if (!*p)
            break;
        size_t sl = strcspn(p, "/");
        bool last = !p[sl];
        if (sl == 1 && p[0] == '.') {
            trailing |= last;                       /* "/a/." -> "/a/" */
        } else if (sl == 2 && p[0] == '.' && p[1] == '.') {
            if (depth)
                out->len = stack[--depth];
            trailing |= last;
        } else {
            stack[depth++] = out->len;
            if ((rc = sm_buf_append(out, "/", 1)) || (rc = sm_buf_append(out, p, sl)))
                break;
        }
        p += sl;
    }
    if (!rc && (out->len == base || trailing))
        rc = sm_buf_append(out, "/", 1);
    if (!rc && out->data)
        out->data[out->len] = 0;
    sm_free(stack);
    return rc;
}

static int canonical_uri(struct sm_buf *out, const char *path, bool s3_style)
{
    if (!path || !*path)
        return sm_buf_append(out, "/", 1);
    if (s3_style) {
        /* per segment, so an encoded "%2F" inside a key stays "%2F" */
        int rc = path[0] == '/' ? SM_OK : sm_buf_append(out, "/", 1);
        for (const char *p = path; !rc;) {
            size_t sl = strcspn(p, "/");
            rc = reencode(out, p, sl, false);
            if (rc || !p[sl])
                break;
            rc = sm_buf_append(out, "/", 1);
            p += sl + 1;
        }
        return rc;
    }
    struct sm_buf norm;
    sm_buf_init(&norm, SIGV4_MAX_TEXT);
    int rc = normalize_path(&norm, path);
    if (!rc)
        rc = sm_uri_encode(out, norm.data, norm.len, true);
    sm_buf_free(&norm);
    return rc;
}

/* ---------------------------------------------------------- canonical query */

struct qparam { char *k, *v; };

static int qparam_cmp(const void *a, const void *b)
{
    const struct qparam *x = a, *y = b;
    int c = strcmp(x->k, y->k);
    return c ? c : strcmp(x->v, y->v);
}

static char *buf_cstr(struct sm_buf *b)
{
    if (!b->data && sm_buf_reserve(b, 1))
        return NULL;
    b->data[b->len] = 0;
    size_t len;
    return (char *)sm_buf_steal(b, &len);
}

static int canonical_query(struct sm_buf *out, const char *query)
{
    if (!query || !*query)
        return SM_OK;
    size_t cap = 1;
    for (const char *p = query; *p; p++)
        cap += *p == '&';
    struct qparam *ps = sm_calloc(cap, sizeof(*ps));
    if (!ps)
        return SM_ENOMEM;
    size_t n = 0;
    int rc = SM_OK;
    const char *p = query;
    while (*p && !rc) {
        size_t len = strcspn(p, "&");
        if (len) {
            const char *eq = memchr(p, '=', len);
            size_t kl = eq ? (size_t)(eq - p) : len;
            struct sm_buf kb, vb;
            sm_buf_init(&kb, SIGV4_MAX_TEXT);
            sm_buf_init(&vb, SIGV4_MAX_TEXT);
            rc = reencode(&kb, p, kl, false);
            if (!rc && eq)
                rc = reencode(&vb, eq + 1, len - kl - 1, false);
            if (!rc) {
                ps[n].k = buf_cstr(&kb);
                ps[n].v = buf_cstr(&vb);
                if (!ps[n].k || !ps[n].v)
                    rc = SM_ENOMEM;
                n++;
            }
            sm_buf_free(&kb);
            sm_buf_free(&vb);
        }
        p += len;
        if (*p == '&')
            p++;
    }
    if (!rc) {
        qsort(ps, n, sizeof(*ps), qparam_cmp);
        for (size_t i = 0; i < n && !rc; i++)
            rc = sm_buf_printf(out, "%s%s=%s", i ? "&" : "", ps[i].k, ps[i].v);
    }
    for (size_t i = 0; i < n; i++) {
        sm_free(ps[i].k);
        sm_free(ps[i].v);
    }
    sm_free(ps);
    return rc;
}

/* -------------------------------------------------------- canonical headers */

struct chdr { char *name; char *value; size_t order; };

static int chdr_cmp(const void *a, const void *b)
{
    const struct chdr *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    if (c)
        return c;
    return x->order < y->order ? -1 : x->order > y->order;
}

static bool skip_header(const char *lname)
{
    static const char *const skip[] = {
        "authorization", "x-amz-date", "x-amz-security-token", "x-amz-content-sha256",
        "connection", "expect", "user-agent", "transfer-encoding", "x-amzn-trace-id",
        "keep-alive", "proxy-connection", "te", "upgrade",
    };
    for (size_t i = 0; i < SM_ARRAY_LEN(skip); i++)
        if (!strcmp(lname, skip[i]))
            return true;
    return false;
}

static bool ws(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Parses "Name: value" into a lowercased name and a trimmed, collapsed value. */
static int parse_header(const char *line, struct chdr *h)
{
    const char *colon = strchr(line, ':');
    if (!colon)
        return SM_EINVAL;
    const char *ns = line, *ne = colon;
    while (ns < ne && ws(*ns))
        ns++;
    while (ne > ns && ws(ne[-1]))
        ne--;
    if (ne == ns)
        return SM_EINVAL;
    h->name = sm_strndup(ns, (size_t)(ne - ns));
    h->value = sm_malloc(strlen(colon + 1) + 1);
    if (!h->name || !h->value)
        return SM_ENOMEM;
    for (char *c = h->name; *c; c++)
        *c = (char)tolower((unsigned char)*c);
    char *o = h->value;
    const char *v = colon + 1;
    while (ws(*v))
        v++;
    while (*v) {
        if (ws(*v)) {
            while (ws(*v))
                v++;
            if (*v)
                *o++ = ' ';
        } else {
            *o++ = *v++;
        }
    }
    *o = 0;
    return SM_OK;
}

/* ------------------------------------------------------------------- sign */

void sm_sigv4_result_free(struct sm_sigv4_result *r)
{
    if (!r)
        return;
    sm_free(r->authorization);
    sm_free(r->canonical_request);
    sm_free(r->string_to_sign);
    for (size_t i = 0; i < SM_ARRAY_LEN(r->add_headers); i++)
        sm_free(r->add_headers[i]);
    memset(r, 0, sizeof(*r));
}

static int add_hdr(struct chdr *hs, size_t *n, const char *name, const char *value, size_t order)
{
    hs[*n].name = sm_strdup(name);
    hs[*n].value = sm_strdup(value);
    hs[*n].order = order;
    (*n)++;
    return hs[*n - 1].name && hs[*n - 1].value ? SM_OK : SM_ENOMEM;
}

int sm_sigv4_sign(const struct sm_sigv4_cfg *cfg, const struct sm_sigv4_req *req,
                  struct sm_sigv4_result *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    if (!cfg->creds || !cfg->creds->access_key_id || !cfg->creds->secret_access_key)
        return sm_errf(err, errlen, SM_EINVAL, "sigv4: no AWS credentials");
    if (!cfg->region || !*cfg->region)
        return sm_errf(err, errlen, SM_EINVAL, "sigv4: no AWS region");
    if (!cfg->service || !*cfg->service)
        return sm_errf(err, errlen, SM_EINVAL, "sigv4: no AWS service");
    if (!req->method || !*req->method)
        return sm_errf(err, errlen, SM_EINVAL, "sigv4: no method");

    bool s3 = !strcmp(cfg->service, "s3");
    unsigned flags = cfg->flags | (s3 ? SM_SIGV4_NO_NORMALIZE | SM_SIGV4_CONTENT_SHA256 : 0);
    const char *token = cfg->creds->session_token && *cfg->creds->session_token
                            ? cfg->creds->session_token : NULL;

    time_t t = (time_t)req->time;
    struct tm tm;
    if (!gmtime_r(&t, &tm))
        return sm_errf(err, errlen, SM_EINVAL, "sigv4: bad time %lld", (long long)req->time);
    strftime(out->amz_date, sizeof(out->amz_date), "%Y%m%dT%H%M%SZ", &tm);
    char date8[9];
    memcpy(date8, out->amz_date, 8);
    date8[8] = 0;

    if (flags & SM_SIGV4_UNSIGNED_PAYLOAD)
        snprintf(out->payload_hash, sizeof(out->payload_hash), "UNSIGNED-PAYLOAD");
    else if (req->payload_hash)
        snprintf(out->payload_hash, sizeof(out->payload_hash), "%s", req->payload_hash);
    else
        sm_sha256_hex(req->body, req->body_len, out->payload_hash);

    /* headers */
    size_t nin = 0;
    for (const char *const *h = req->headers; h && *h; h++)
        nin++;
    struct chdr *hs = sm_calloc(nin + 4, sizeof(*hs));
    if (!hs)
        return SM_ENOMEM;
    size_t n = 0;
    int rc = SM_OK;
    bool have_host = false;
    struct sm_buf cr, sts, hdrs, signed_list;
    sm_buf_init(&cr, SIGV4_MAX_TEXT);
    sm_buf_init(&sts, SIGV4_MAX_TEXT);
    sm_buf_init(&hdrs, SIGV4_MAX_TEXT);
    sm_buf_init(&signed_list, SIGV4_MAX_TEXT);
    for (size_t i = 0; i < nin; i++) {
        struct chdr h = { NULL, NULL, i };
        rc = parse_header(req->headers[i], &h);
        if (rc || skip_header(h.name)) {
            sm_free(h.name);
            sm_free(h.value);
            if (rc == SM_EINVAL) {
                rc = sm_errf(err, errlen, SM_EINVAL, "sigv4: malformed header '%.60s'", req->headers[i]);
                goto out;
            }
            if (rc)
                goto out;
            continue;
        }
        if (!strcmp(h.name, "host"))
            have_host = true;
        hs[n++] = h;
    }
    if (!have_host) {
        rc = sm_errf(err, errlen, SM_EINVAL, "sigv4: request has no Host header");
        goto out;
    }
    if ((rc = add_hdr(hs, &n, "x-amz-date", out->amz_date, nin)))
        goto out;
    if (token && !(flags & SM_SIGV4_OMIT_TOKEN) && (rc = add_hdr(hs, &n, "x-amz-security-token", token, nin + 1)))
        goto out;
    if ((flags & SM_SIGV4_CONTENT_SHA256) && (rc = add_hdr(hs, &n, "x-amz-content-sha256", out->payload_hash, nin + 2)))
        goto out;
    qsort(hs, n, sizeof(*hs), chdr_cmp);
    for (size_t i = 0; i < n && !rc; i++) {
        if (i && !strcmp(hs[i].name, hs[i - 1].name)) {
            rc = sm_buf_printf(&hdrs, ",%s", hs[i].value);
            continue;
        }
        if (i)
            rc = sm_buf_append(&hdrs, "\n", 1);
        if (!rc)
            rc = sm_buf_printf(&hdrs, "%s:%s", hs[i].name, hs[i].value);
        if (!rc)
            rc = sm_buf_printf(&signed_list, "%s%s", i ? ";" : "", hs[i].name);
    }
    if (rc)
        goto out;

    /* canonical request */
    if ((rc = sm_buf_printf(&cr, "%s\n", req->method)) ||
        (rc = canonical_uri(&cr, req->path, flags & SM_SIGV4_NO_NORMALIZE)) ||
        (rc = sm_buf_append(&cr, "\n", 1)) ||
        (rc = canonical_query(&cr, req->query)) ||
        (rc = sm_buf_printf(&cr, "\n%.*s\n\n%.*s\n%s", (int)hdrs.len, hdrs.data ? (char *)hdrs.data : "",
                            (int)signed_list.len, signed_list.data ? (char *)signed_list.data : "",
                            out->payload_hash)))
        goto out;

    /* string to sign */
    char crhash[65];
    sm_sha256_hex(cr.data, cr.len, crhash);
    if ((rc = sm_buf_printf(&sts, SIGV4_ALGO "\n%s\n%s/%s/%s/aws4_request\n%s", out->amz_date, date8,
                            cfg->region, cfg->service, crhash)))
        goto out;

    /* signing key and signature */
    {
        unsigned char k[32], k2[32];
        size_t sl = strlen(cfg->creds->secret_access_key);
        char *seed = sm_malloc(sl + 5);
        if (!seed) {
            rc = SM_ENOMEM;
            goto out;
        }
        memcpy(seed, "AWS4", 4);
        memcpy(seed + 4, cfg->creds->secret_access_key, sl + 1);
        rc = hmac256(seed, sl + 4, date8, 8, k);
        OPENSSL_cleanse(seed, sl + 4);
        sm_free(seed);
        if (!rc)
            rc = hmac256(k, 32, cfg->region, strlen(cfg->region), k2);
        if (!rc)
            rc = hmac256(k2, 32, cfg->service, strlen(cfg->service), k);
        if (!rc)
            rc = hmac256(k, 32, "aws4_request", 12, k2);
        if (!rc)
            rc = hmac256(k2, 32, sts.data, sts.len, k);
        if (rc) {
            rc = sm_errf(err, errlen, SM_EIO, "sigv4: HMAC-SHA256 failed");
            goto out;
        }
        sm_hex(k, 32, out->signature);
        OPENSSL_cleanse(k2, sizeof(k2));
    }

    {
        struct sm_buf a;
        sm_buf_init(&a, SIGV4_MAX_TEXT);
        rc = sm_buf_printf(&a, SIGV4_ALGO " Credential=%s/%s/%s/%s/aws4_request, SignedHeaders=%.*s, Signature=%s",
                           cfg->creds->access_key_id, date8, cfg->region, cfg->service,
                           (int)signed_list.len, (char *)signed_list.data, out->signature);
        out->authorization = rc ? NULL : buf_cstr(&a);
        sm_buf_free(&a);
        if (!rc && !out->authorization)
            rc = SM_ENOMEM;
        if (rc)
            goto out;
    }
    out->canonical_request = buf_cstr(&cr);
    out->string_to_sign = buf_cstr(&sts);
    if (!out->canonical_request || !out->string_to_sign) {
        rc = SM_ENOMEM;
        goto out;
    }

    {
        size_t k = 0;
        struct sm_buf line;
        sm_buf_init(&line, SIGV4_MAX_TEXT);
        const char *names[4] = { "X-Amz-Date", NULL, NULL, "Authorization" };
        const char *vals[4] = { out->amz_date, NULL, NULL, out->authorization };
        if (token) {
            names[1] = "X-Amz-Security-Token";
            vals[1] = token;
        }
        if (flags & SM_SIGV4_CONTENT_SHA256) {
            names[2] = "X-Amz-Content-Sha256";
            vals[2] = out->payload_hash;
        }
        for (size_t i = 0; i < 4 && !rc; i++) {
            if (!names[i])
                continue;
            sm_buf_reset(&line);
            rc = sm_buf_printf(&line, "%s: %s", names[i], vals[i]);
            if (!rc && !(out->add_headers[k++] = sm_strndup((char *)line.data, line.len)))
                rc = SM_ENOMEM;
        }
        sm_buf_free(&line);
    }

out:
    for (size_t i = 0; i < n; i++) {
        sm_free(hs[i].name);
        sm_free(hs[i].value);
    }
    sm_free(hs);
    sm_buf_free(&cr);
    sm_buf_free(&sts);
    sm_buf_free(&hdrs);
    sm_buf_free(&signed_list);
    if (rc)
        sm_sigv4_result_free(out);
    return rc;
}

/* ------------------------------------------------------------ credentials */

void sm_aws_creds_free(struct sm_aws_creds *c)
{
    if (!c)
        return;
    if (c->secret_access_key)
        OPENSSL_cleanse(c->secret_access_key, strlen(c->secret_access_key));
    sm_free(c->access_key_id);
    sm_free(c->secret_access_key);
    sm_free(c->session_token);
    memset(c, 0, sizeof(*c));
}

static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    char *e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1]))
        *--e = 0;
    return s;
}

/* Finds key in section of an INI file (AWS shared file syntax). Section
 * names match either "name" or "profile name" (the config file's form).
 * Returns sm_malloc'd value, NULL if absent; *found_section tells whether
 * the section exists. */
static char *ini_get(const char *text, const char *section, const char *key, bool *found_section)
{
    char *copy = sm_strdup(text);
    char *result = NULL;
    bool in = false;
    if (!copy)
        return NULL;
    char *next;
    for (char *line = copy; line; line = next) {
        next = strchr(line, '\n');
        if (next)
            *next++ = 0;
        char *s = trim(line);
        if (!*s || *s == '#' || *s == ';')
            continue;
        if (*s == '[') {
            char *e = strchr(s, ']');
            if (!e)
                continue;
            *e = 0;
            char *name = trim(s + 1);
            if (!strncmp(name, "profile ", 8) && strcmp(section, "default") != 0)
                name = trim(name + 8);
            in = !strcmp(name, section);
            if (in && found_section)
                *found_section = true;
            continue;
        }
        if (!in)
            continue;
        char *eq = strchr(s, '=');
        if (!eq)
            continue;
        *eq = 0;
        if (!strcasecmp(trim(s), key)) {
            sm_free(result);
            result = sm_strdup(trim(eq + 1));
        }
    }
    sm_free(copy);
    return result;
}

static int aws_file_path(char *out, size_t outlen, const char *env, const char *leaf)
{
    const char *p = getenv(env);
    if (p && *p) {
        snprintf(out, outlen, "%s", p);
        return SM_OK;
    }
    const char *home = getenv("HOME");
    if (!home || !*home)
        return SM_ENOTFOUND;
    snprintf(out, outlen, "%s/.aws/%s", home, leaf);
    return SM_OK;
}

static const char *profile_name(const char *profile)
{
    if (profile && *profile)
        return profile;
    const char *p = getenv("AWS_PROFILE");
    return p && *p ? p : "default";
}

int sm_aws_creds_load(struct sm_aws_creds *out, const char *profile, char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    const char *ak = getenv("AWS_ACCESS_KEY_ID"), *sk = getenv("AWS_SECRET_ACCESS_KEY");
    if (ak && *ak && sk && *sk) {
        const char *tok = getenv("AWS_SESSION_TOKEN");
        out->access_key_id = sm_strdup(ak);
        out->secret_access_key = sm_strdup(sk);
        out->session_token = tok && *tok ? sm_strdup(tok) : NULL;
        if (!out->access_key_id || !out->secret_access_key || (tok && *tok && !out->session_token)) {
            sm_aws_creds_free(out);
            return SM_ENOMEM;
        }
        return SM_OK;
    }
    const char *prof = profile_name(profile);
    char path[4096];
    if (aws_file_path(path, sizeof(path), "AWS_SHARED_CREDENTIALS_FILE", "credentials"))
        return sm_errf(err, errlen, SM_ENOTFOUND,
                       "no AWS credentials: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY unset and no HOME for ~/.aws/credentials");
    uint8_t *data;
    size_t len;
    int rc = sm_read_file(path, AWS_FILE_MAX, &data, &len);
    if (rc == SM_ENOTFOUND)
        return sm_errf(err, errlen, SM_ENOTFOUND,
                       "no AWS credentials: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY unset and %s does not exist", path);
    if (rc)
        return sm_errf(err, errlen, rc, "AWS credentials file %s: %s", path, sm_strerror(rc));
    bool found = false;
    out->access_key_id = ini_get((char *)data, prof, "aws_access_key_id", &found);
    out->secret_access_key = ini_get((char *)data, prof, "aws_secret_access_key", NULL);
    out->session_token = ini_get((char *)data, prof, "aws_session_token", NULL);
    sm_free(data);
    if (!found) {
        sm_aws_creds_free(out);
        return sm_errf(err, errlen, SM_ENOTFOUND, "AWS credentials file %s has no profile [%s]", path, prof);
    }
    if (!out->access_key_id || !*out->access_key_id || !out->secret_access_key || !*out->secret_access_key) {
        sm_aws_creds_free(out);
        return sm_errf(err, errlen, SM_ECONFIG,
                       "AWS credentials file %s: profile [%s] lacks aws_access_key_id or aws_secret_access_key",
                       path, prof);
    }
    if (out->session_token && !*out->session_token) {
        sm_free(out->session_token);
        out->session_token = NULL;
    }
    return SM_OK;
}

char *sm_aws_region_default(const char *profile)
{
    const char *r = getenv("AWS_REGION");
    if (!r || !*r)
        r = getenv("AWS_DEFAULT_REGION");
    if (r && *r)
        return sm_strdup(r);
    char path[4096];
    if (aws_file_path(path, sizeof(path), "AWS_CONFIG_FILE", "config"))
        return NULL;
    uint8_t *data;
    size_t len;
    if (sm_read_file(path, AWS_FILE_MAX, &data, &len))
        return NULL;
    char *region = ini_get((char *)data, profile_name(profile), "region", NULL);
    sm_free(data);
    if (region && !*region) {
        sm_free(region);
        region = NULL;
    }
    return region;
}
