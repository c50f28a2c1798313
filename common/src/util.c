#include <sm/util.h>
#include <sm/err.h>
#include <sm/mem.h>

#include <ctype.h>
#include <errno.h>
#include <fnmatch.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <zlib.h>

int sm_parse_i64(const char *s, int64_t min, int64_t max, int64_t *out)
{
    if (!s || !*s || isspace((unsigned char)*s))
        return SM_ECONFIG;
    errno = 0;
    char *end;
    long long v = strtoll(s, &end, 10);
    if (errno || *end || v < min || v > max)
        return SM_ECONFIG;
    *out = v;
    return SM_OK;
}

int sm_parse_u64(const char *s, uint64_t max, uint64_t *out)
{
    if (!s || !isdigit((unsigned char)*s))
        return SM_ECONFIG;
    errno = 0;
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end || v > max)
        return SM_ECONFIG;
    *out = v;
    return SM_OK;
}

int sm_parse_double(const char *s, double *out)
{
    if (!s || !*s || isspace((unsigned char)*s))
        return SM_ECONFIG;
    errno = 0;
    char *end;
    double v = strtod(s, &end);
    if (errno || *end || !isfinite(v))
        return SM_ECONFIG;
    *out = v;
    return SM_OK;
}

int sm_parse_bool(const char *s, bool *out)
{
    static const char *const yes[] = { "true", "yes", "on", "1" };
    static const char *const no[] = { "false", "no", "off", "0" };
    for (size_t i = 0; i < 4; i++) {
        if (!strcasecmp(s, yes[i])) {
            *out = true;
            return SM_OK;
        }
        if (!strcasecmp(s, no[i])) {
            *out = false;
            return SM_OK;
        }
    }
    return SM_ECONFIG;
}

/* Splits "1.5GiB" into number and unit; number may be fractional. */
static int split_num_unit(const char *s, double *num, const char **unit)
{
    if (!s || !*s || !(isdigit((unsigned char)*s) || *s == '.'))
        return SM_ECONFIG;
    errno = 0;
    char *end;
    *num = strtod(s, &end);
    if (errno || end == s || *num < 0 || !isfinite(*num))
        return SM_ECONFIG;
    while (*end == ' ')
        end++;
    *unit = end;
    return SM_OK;
}

int sm_parse_size(const char *s, uint64_t *out)
{
    static const struct { const char *u; double mul; } units[] = {
        { "", 1 }, { "b", 1 },
        { "k", 1024.0 }, { "kb", 1e3 }, { "kib", 1024.0 },
        { "m", 1048576.0 }, { "mb", 1e6 }, { "mib", 1048576.0 },
        { "g", 1073741824.0 }, { "gb", 1e9 }, { "gib", 1073741824.0 },
        { "t", 1099511627776.0 }, { "tb", 1e12 }, { "tib", 1099511627776.0 },
    };
    double num;
    const char *unit;
    if (split_num_unit(s, &num, &unit))
        return SM_ECONFIG;
    for (size_t i = 0; i < SM_ARRAY_LEN(units); i++)
        if (!strcasecmp(unit, units[i].u)) {
            double v = num * units[i].mul;
            if (v >= 18446744073709549568.0)
                return SM_ECONFIG;
            *out = (uint64_t)v;
            return SM_OK;
        }
    return SM_ECONFIG;
}

int sm_parse_duration_ms(const char *s, uint64_t *out)
{
    static const struct { const char *u; double mul; } units[] = {
        { "", 1000 }, { "ms", 1 }, { "s", 1000 }, { "m", 60000 }, { "min", 60000 },
        { "h", 3600000 }, { "d", 86400000 },
    };
    double num;
    const char *unit;
    if (split_num_unit(s, &num, &unit))
        return SM_ECONFIG;
    for (size_t i = 0; i < SM_ARRAY_LEN(units); i++)
        if (!strcasecmp(unit, units[i].u)) {
            double v = num * units[i].mul;
            if (v >= 9.2e18)
                return SM_ECONFIG;
            *out = (uint64_t)(v + 0.5);
            return SM_OK;
        }
    return SM_ECONFIG;
}

static uint64_t clock_ns(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

uint64_t sm_now_ns(void) { return clock_ns(CLOCK_MONOTONIC); }
uint64_t sm_now_ms(void) { return clock_ns(CLOCK_MONOTONIC) / 1000000ull; }
uint64_t sm_wall_ms(void) { return clock_ns(CLOCK_REALTIME) / 1000000ull; }

void sm_sleep_ms(uint64_t ms)
{
    struct timespec ts = { (time_t)(ms / 1000), (long)(ms % 1000) * 1000000L };
    while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
        ;
}

static const char b64std[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char b64url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

size_t sm_base64_enc_len(size_t n)
{
    return (n + 2) / 3 * 4;
}

static size_t b64_encode(const uint8_t *in, size_t n, char *out, const char *alpha, bool pad)
{
    size_t o = 0, i = 0;
    for (; i + 2 < n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        out[o++] = alpha[v >> 18];
        out[o++] = alpha[(v >> 12) & 63];
        out[o++] = alpha[(v >> 6) & 63];
        out[o++] = alpha[v & 63];
    }
    if (i < n) {
        uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < n ? (uint32_t)in[i + 1] << 8 : 0);
        out[o++] = alpha[v >> 18];
        out[o++] = alpha[(v >> 12) & 63];
        if (i + 1 < n)
            out[o++] = alpha[(v >> 6) & 63];
        else if (pad)
            out[o++] = '=';
        if (pad)
            out[o++] = '=';
    }
    out[o] = '\0';
    return o;
}

size_t sm_base64_encode(const void *in, size_t n, char *out)
{
    return b64_encode(in, n, out, b64std, true);
}

size_t sm_base64url_encode(const void *in, size_t n, char *out)
{
    return b64_encode(in, n, out, b64url, false);
}

static int b64_val(unsigned char c)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+' || c == '-') return 62;
    if (c == '/' || c == '_') return 63;
    return -1;
}

int sm_base64_decode(const char *in, size_t n, uint8_t *out, size_t *outlen)
{
    while (n && (in[n - 1] == '\n' || in[n - 1] == '\r'))
        n--;
    while (n && in[n - 1] == '=')
        n--;
    if (n % 4 == 1)
        return SM_EPROTO;
    size_t o = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        int v = b64_val((unsigned char)in[i]);
        if (v < 0)
            return SM_EPROTO;
        acc = acc << 6 | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (uint8_t)(acc >> bits);
        }
    }
    *outlen = o;
    return SM_OK;
}

uint32_t sm_crc32(uint32_t crc, const void *p, size_t n)
{
    const Bytef *b = p;
    while (n > 0) {
        uInt chunk = n > (1u << 30) ? (1u << 30) : (uInt)n;
        crc = (uint32_t)crc32((uLong)crc, b, chunk);
        b += chunk;
        n -= chunk;
    }
    return crc;
}

void sm_hex(const void *p, size_t n, char *out)
{
    static const char hx[] = "0123456789abcdef";
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hx[b[i] >> 4];
        out[2 * i + 1] = hx[b[i] & 15];
    }
    out[2 * n] = '\0';
}

int sm_read_file(const char *path, size_t max, uint8_t **out, size_t *outlen)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return errno == ENOENT ? SM_ENOTFOUND : SM_EIO;
    int rc = SM_OK;
    size_t cap = 4096, len = 0;
    uint8_t *buf = sm_malloc(cap + 1);
    if (!buf) {
        fclose(f);
        return SM_ENOMEM;
    }
    for (;;) {
        if (len == cap) {
            if (cap >= max) {
                rc = SM_EFULL;
                break;
            }
            size_t ncap = cap * 2 > max ? max : cap * 2;
            uint8_t *nb = sm_realloc(buf, ncap + 1);
            if (!nb) {
                rc = SM_ENOMEM;
                break;
            }
            buf = nb;
            cap = ncap;
        }
        size_t r = fread(buf + len, 1, cap - len, f);
        len += r;
        if (r == 0) {
            if (ferror(f))
                rc = SM_EIO;
            break;
        }
    }
    fclose(f);
    if (rc) {
        sm_free(buf);
        return rc;
    }
    buf[len] = 0;
    *out = buf;
    *outlen = len;
    return SM_OK;
}

bool sm_pattern_match(const char *patterns, const char *name)
{
    bool matched = false, any_include = false;
    const char *p = patterns;
    char pat[512];
    while (p && *p) {
        size_t n = strcspn(p, ",");
        if (n && n < sizeof(pat)) {
            memcpy(pat, p, n);
            pat[n] = 0;
            const char *q = pat;
            while (*q == ' ')
                q++;
            if (*q == '-') {
                if (fnmatch(q + 1, name, 0) == 0)
                    return false;
            } else {
                any_include = true;
                if (fnmatch(q, name, 0) == 0)
                    matched = true;
            }
        }
        p += n;
        if (*p == ',')
            p++;
    }
    return any_include ? matched : true;
}

size_t sm_edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 64 || lb > 64)
        return la > lb ? la : lb;
    size_t row[65];
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t prev = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t tmp = row[j];
            size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
            size_t v = prev + cost;
            if (row[j] + 1 < v)
                v = row[j] + 1;
            if (row[j - 1] + 1 < v)
                v = row[j - 1] + 1;
            row[j] = v;
            prev = tmp;
        }
    }
    return row[lb];
}
