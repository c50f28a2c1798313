/* NSS key log: parse lines, keep secrets by client random (bounded, oldest
 * dropped first), follow the file as it grows. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sm/err.h>
#include <sm/log.h>
#include <sm/mem.h>

#include "tls/tls_int.h"

void tls_keylog_init(struct tls_keylog *kl, uint32_t max, struct agent_tls_stats *st)
{
    memset(kl, 0, sizeof *kl);
    kl->fd = -1;
    kl->max = max ? max : 65536;
    kl->st = st;
}

int tls_keylog_set_path(struct tls_keylog *kl, const char *path)
{
    sm_free(kl->path);
    kl->path = path ? sm_strdup(path) : NULL;
    return (path && !kl->path) ? SM_ENOMEM : SM_OK;
}

void tls_keylog_fini(struct tls_keylog *kl)
{
    if (kl->fd >= 0)
        close(kl->fd);
    for (struct tls_keys *k = kl->oldest, *n; k; k = n) {
        n = k->newer;
        OPENSSL_cleanse(k, sizeof *k);
        sm_free(k);
    }
    sm_free(kl->path);
    memset(kl, 0, sizeof *kl);
    kl->fd = -1;
}

static unsigned bucket_of(const uint8_t r[TLS_RANDOM_LEN])
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < TLS_RANDOM_LEN; i++)
        h = (h ^ r[i]) * 16777619u;
    return h & (TLS_KEYLOG_BUCKETS - 1);
}

const struct tls_keys *tls_keylog_find(const struct tls_keylog *kl, const uint8_t random[TLS_RANDOM_LEN])
{
    for (struct tls_keys *k = kl->bucket[bucket_of(random)]; k; k = k->hnext)
        if (!memcmp(k->random, random, TLS_RANDOM_LEN))
            return k;
    return NULL;
}

static void evict_oldest(struct tls_keylog *kl)
{
    struct tls_keys *k = kl->oldest;
    if (!k)
        return;
    struct tls_keys **pp = &kl->bucket[bucket_of(k->random)];
    while (*pp && *pp != k)
        pp = &(*pp)->hnext;
    if (*pp)
        *pp = k->hnext;
    kl->oldest = k->newer;
    if (kl->oldest)
        kl->oldest->older = NULL;
    else
        kl->newest = NULL;
    kl->count--;
    if (kl->st) {
        kl->st->keylog_evicted++;
        kl->st->keylog_entries = kl->count;
    }
    OPENSSL_cleanse(k, sizeof *k);
    sm_free(k);
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Hex field of exactly 2*want (want == 0: any even length up to max). */
static int unhex(const char *s, size_t n, uint8_t *out, size_t max)
{
    if (n % 2 || n / 2 > max || n == 0)
        return -1;
    for (size_t i = 0; i < n / 2; i++) {
        int hi = hexval(s[2 * i]), lo = hexval(s[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return -1;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return (int)(n / 2);
}

static const struct { const char *label; int sec; } labels[] = {
    { "CLIENT_RANDOM", TLS_SEC_MASTER },
    { "CLIENT_HANDSHAKE_TRAFFIC_SECRET", TLS_SEC_CHS },
    { "SERVER_HANDSHAKE_TRAFFIC_SECRET", TLS_SEC_SHS },
    { "CLIENT_TRAFFIC_SECRET_0", TLS_SEC_CTS0 },
    { "SERVER_TRAFFIC_SECRET_0", TLS_SEC_STS0 },
    /* known, not needed */
    { "EXPORTER_SECRET", -1 },
    { "EARLY_EXPORTER_SECRET", -1 },
    { "CLIENT_EARLY_TRAFFIC_SECRET", -1 },
    { "RSA", -1 },
};

int tls_keylog_parse(struct tls_keylog *kl, const char *line, size_t n)
{
    while (n && (line[n - 1] == '\r' || line[n - 1] == ' ' || line[n - 1] == '\t'))
        n--;
    size_t i = 0;
    while (i < n && (line[i] == ' ' || line[i] == '\t'))
        i++;
    if (i == n || line[i] == '#')
        return 1;
    const char *f[3];
    size_t fl[3], nf = 0;
    while (i < n && nf < 3) {
        size_t s = i;
        while (i < n && line[i] != ' ')
            i++;
        f[nf] = line + s;
        fl[nf++] = i - s;
        while (i < n && line[i] == ' ')
            i++;
    }
    if (nf != 3 || i != n)
        goto bad;
    int sec = -2;
    for (size_t k = 0; k < sizeof labels / sizeof labels[0]; k++)
        if (strlen(labels[k].label) == fl[0] && !memcmp(labels[k].label, f[0], fl[0]))
            sec = labels[k].sec;
    if (sec == -1)
        return 1;
    if (sec == -2)
        goto bad;
    uint8_t rnd[TLS_RANDOM_LEN], secret[TLS_SECRET_MAX];
    int slen;
    if (unhex(f[1], fl[1], rnd, sizeof rnd) != TLS_RANDOM_LEN || (slen = unhex(f[2], fl[2], secret, sizeof secret)) < 0)
        goto bad;
    if (sec == TLS_SEC_MASTER ? slen != 48 : (slen != 32 && slen != 48))
        goto bad;
    struct tls_keys *k = (struct tls_keys *)tls_keylog_find(kl, rnd);
    if (!k) {
        if (kl->count >= kl->max)
            evict_oldest(kl);
        k = sm_calloc(1, sizeof *k);
        if (!k)
            return SM_ENOMEM;
        memcpy(k->random, rnd, sizeof rnd);
        unsigned b = bucket_of(rnd);
        k->hnext = kl->bucket[b];
        kl->bucket[b] = k;
        k->older = kl->newest;
        if (kl->newest)
            kl->newest->newer = k;
        kl->newest = k;
        if (!kl->oldest)
            kl->oldest = k;
        kl->count++;
    }
    memcpy(k->sec[sec], secret, (size_t)slen);
    k->len[sec] = (uint8_t)slen;
    k->have |= 1u << sec;
    OPENSSL_cleanse(secret, sizeof secret);
    if (kl->st) {
        kl->st->keylog_lines++;
        kl->st->keylog_entries = kl->count;
    }
    return 0;
bad:
    if (kl->st)
        kl->st->keylog_bad_lines++;
    return SM_EPROTO;
}

static void reopen(struct tls_keylog *kl, bool counted)
{
    if (kl->fd >= 0)
        close(kl->fd);
    kl->fd = open(kl->path, O_RDONLY | O_CLOEXEC);
    kl->off = 0;
    kl->llen = 0;
    kl->overlong = false;
    if (kl->fd < 0)
        return;
    struct stat sb;
    if (fstat(kl->fd, &sb) == 0) {
        kl->dev = sb.st_dev;
        kl->ino = sb.st_ino;
    }
    if (counted && kl->st)
        kl->st->keylog_reopens++;
}

int tls_keylog_poll(struct tls_keylog *kl)
{
    if (!kl->path)
        return 0;
    struct stat sb;
    if (stat(kl->path, &sb) != 0)
        return 0;                 /* not there (yet, or rotated away): keep what we have */
    if (kl->fd < 0)
        reopen(kl, false);
    else if (sb.st_dev != kl->dev || sb.st_ino != kl->ino || sb.st_size < kl->off) {
        sm_log_info("tls: key log %s replaced or truncated, reading it again", kl->path);
        reopen(kl, true);
    }
    if (kl->fd < 0)
        return 0;
    int stored = 0;
    char buf[16384];
    for (;;) {
        ssize_t r = pread(kl->fd, buf, sizeof buf, kl->off);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        kl->off += r;
        for (ssize_t i = 0; i < r; i++) {
            char c = buf[i];
            if (c == '\n') {
                if (!kl->overlong && tls_keylog_parse(kl, kl->line, kl->llen) == 0)
                    stored++;
                kl->llen = 0;
                kl->overlong = false;
            } else if (kl->llen < sizeof kl->line) {
                kl->line[kl->llen++] = c;
            } else if (!kl->overlong) {
                kl->overlong = true;
                if (kl->st)
                    kl->st->keylog_bad_lines++;
            }
        }
    }
    return stored;
}
