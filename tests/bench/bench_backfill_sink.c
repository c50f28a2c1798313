/* Benchmark sink for the backfill: a tiny HTTP/1.1 server that discards
 * `_bulk` bodies (answering {"took":0,"errors":false,"items":[]})
 * without copying them (recv MSG_TRUNC) and forwards every other request to
 * an upstream cluster (the target stand-in, which keeps the coordination
 * index), one thread per connection.
 *
 *   bench_backfill_sink UPSTREAM_PORT PORT_FILE
 * GET /_sink/stats -> {"bulk_requests":n,"bulk_bytes":n} */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

static int upstream_port;
#define DISCARD (1u << 20)
static char discard[DISCARD];   /* never read: recv(MSG_TRUNC) does not copy into it */
static _Atomic uint64_t bulk_requests, bulk_bytes;

static int write_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n) {
        ssize_t w = write(fd, c, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        c += w;
        n -= (size_t)w;
    }
    return 0;
}

static void reply(int fd, const char *body)
{
    char h[256];
    int n = snprintf(h, sizeof(h), "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n\r\n",
                     strlen(body));
    if (!write_all(fd, h, (size_t)n))
        write_all(fd, body, strlen(body));
}

/* Forwards head (with the body that follows) upstream with Connection: close
 * and relays the response back; returns -1 to close the client connection. */
static int forward(int fd, const char *head, size_t hlen, const char *body, size_t blen)
{
    int u = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)upstream_port) };
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (u < 0 || connect(u, (struct sockaddr *)&a, sizeof(a)) < 0) {
        if (u >= 0)
            close(u);
        return -1;
    }
    /* Drop the client's Connection header, add ours. */
    size_t first = (size_t)(strstr(head, "\r\n") - head) + 2;
    write_all(u, head, first);
    write_all(u, "Connection: close\r\n", 19);
    const char *p = head + first;
    while (p < head + hlen) {
        const char *e = strstr(p, "\r\n");
        size_t l = (size_t)(e - p) + 2;
        if (strncasecmp(p, "Connection:", 11) && strncasecmp(p, "Expect:", 7))
            write_all(u, p, l);
        p += l;
    }
    write_all(u, "\r\n", 2);
    write_all(u, body, blen);
    /* Response: read all until EOF, then send with Connection: keep-alive semantics intact
     * (the upstream answer has a Content-Length). */
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    for (;;) {
        if (n == cap) {
            cap *= 2;
            buf = realloc(buf, cap);
        }
        ssize_t r = read(u, buf + n, cap - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        n += (size_t)r;
    }
    close(u);
    int rc = write_all(fd, buf, n);
    free(buf);
    return rc;
}

static void *conn_main(void *arg)
{
    int fd = (int)(intptr_t)arg;
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap);
    for (;;) {
        char *end;
        while (!(end = len ? memmem(buf, len, "\r\n\r\n", 4) : NULL)) {
            if (len == cap)
                buf = realloc(buf, cap *= 2);
            ssize_t r = read(fd, buf + len, cap - len);
            if (r <= 0)
                goto out;
            len += (size_t)r;
        }
        size_t hlen = (size_t)(end - buf) + 4;
        char save = buf[hlen - 1];
        buf[hlen - 1] = 0;
        size_t clen = 0;
        const char *cl = strcasestr(buf, "\r\nContent-Length:");
        if (cl)
            clen = strtoull(cl + 17, NULL, 10);
        bool expect = strcasestr(buf, "\r\nExpect: 100-continue") != NULL;
        bool bulk = false;
        char *sp = strchr(buf, ' ');
        char *sp2 = sp ? strchr(sp + 1, ' ') : NULL;
        if (sp && sp2) {
            char *q = memchr(sp + 1, '?', (size_t)(sp2 - sp - 1));
            char *pe = q ? q : sp2;
            bulk = pe - (sp + 1) >= 6 && !memcmp(pe - 6, "/_bulk", 6);
        }
        bool stats = sp && !strncmp(sp + 1, "/_sink/stats", 12);
        buf[hlen - 1] = save;
        if (expect && write_all(fd, "HTTP/1.1 100 Continue\r\n\r\n", 25))
            goto out;
        /* Body: discard for bulk, else buffer it. */
        size_t have = len - hlen;
        if (bulk) {
            size_t left = clen > have ? clen - have : 0;
            /* MSG_TRUNC: TCP drops the bytes without copying them (the sink
             * shares the cores with the backfill: it should cost little). */
            while (left) {
                ssize_t r = recv(fd, discard, left < DISCARD ? left : DISCARD, MSG_TRUNC);
                if (r < 0 && errno == EINTR)
                    continue;
                if (r <= 0)
                    goto out;
                left -= (size_t)r;
            }
            atomic_fetch_add(&bulk_requests, 1);
            atomic_fetch_add(&bulk_bytes, clen);
            reply(fd, "{\"took\":0,\"errors\":false,\"items\":[]}");
        } else {
            while (have < clen) {
                if (len == cap)
                    buf = realloc(buf, cap *= 2);
                ssize_t r = read(fd, buf + len, cap - len);
                if (r <= 0)
                    goto out;
                len += (size_t)r;
                have += (size_t)r;
            }
            if (stats) {
                char b[128];
                snprintf(b, sizeof(b), "{\"bulk_requests\":%llu,\"bulk_bytes\":%llu}",
                         (unsigned long long)atomic_load(&bulk_requests), (unsigned long long)atomic_load(&bulk_bytes));
                reply(fd, b);
            } else {
                buf[hlen - 2] = 0;
                if (forward(fd, buf, hlen - 2, buf + hlen, clen))
                    goto out;
            }
        }
        /* Keep what followed this request. */
        size_t used = hlen + (bulk ? (have < clen ? have : clen) : clen);
        if (bulk && have > clen)
            used = hlen + clen;
        if (used > len)
            used = len;
        memmove(buf, buf + used, len - used);
        len -= used;
    }
out:
    free(buf);
    close(fd);
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: %s UPSTREAM_PORT PORT_FILE\n", argv[0]);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    upstream_port = (int)strtol(argv[1], NULL, 10);
    int s = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    struct sockaddr_in a = { .sin_family = AF_INET };
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t al = sizeof(a);
    if (bind(s, (struct sockaddr *)&a, sizeof(a)) || listen(s, 64) || getsockname(s, (struct sockaddr *)&a, &al))
        return 1;
    char tmp[4200];
    snprintf(tmp, sizeof(tmp), "%s.tmp", argv[2]);
    FILE *f = fopen(tmp, "w");
    if (!f)
        return 1;
    fprintf(f, "%d\n", ntohs(a.sin_port));
    fclose(f);
    rename(tmp, argv[2]);
    for (;;) {
        int c = accept(s, NULL, NULL);
        if (c < 0)
            continue;
        setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        pthread_t t;
        if (pthread_create(&t, NULL, conn_main, (void *)(intptr_t)c))
            close(c);
        else
            pthread_detach(t);
    }
}
