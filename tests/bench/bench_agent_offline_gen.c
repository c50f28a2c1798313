/* Writes a pcap (Ethernet, IPv4) of HTTP/1.1 keep-alive traffic for the
 * offline throughput benchmark of searchmig-agent (bench_agent_offline.py).
 *
 *   bench_agent_offline_gen OUT.pcap TRANSACTIONS [PORT [SEED]]
 *
 * About 200 connections are open at once, transactions interleaved between
 * them at random; each connection carries 50..250 request/response pairs,
 * starts with a three-way handshake and ends with FIN/ACK both ways. Requests:
 * GET/POST/PUT/HEAD against search-like paths, POST/PUT with 100..1500 B
 * JSON bodies. Responses: mostly 200 B..3 KiB with Content-Length, 3 %
 * chunked (1..8 chunks of 50 B..4 KB), 1 % 16..64 KiB, 0.02 % 256 KiB..1 MiB, HEAD answered
 * without body. Data is cut at MSS 1448; the client ACKs each response.
 * IPv4 checksums are set, TCP checksums left 0 (as with offload).
 * Prints one line: transactions=N connections=N packets=N bytes=N
 * c2s_bytes=N s2c_bytes=N (payload bytes per direction). */
#include <inttypes.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MSS 1448
#define ACTIVE 200

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rnd(void)
{
    uint64_t x = rng_state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    rng_state = x;
    return x * 0x2545f4914f6cdd1dull;
}

static uint32_t rnd_range(uint32_t lo, uint32_t hi)   /* inclusive */
{
    return lo + (uint32_t)(rnd() % (uint64_t)(hi - lo + 1));
}

struct conn {
    uint32_t cip, sip;
    uint16_t cport;
    uint32_t cseq, sseq;
    uint32_t left;   /* transactions to go */
    int open;
};

static FILE *out;
static uint64_t ts_us = 1700000000ull * 1000000ull;
static uint64_t n_packets, n_bytes, c2s_bytes, s2c_bytes;
static uint16_t server_port = 9200;
static uint16_t ip_id;

static void put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static void write_le32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

enum { F_FIN = 0x01, F_SYN = 0x02, F_PSH = 0x08, F_ACK = 0x10 };

/* One TCP segment; c2s: client to server. */
static void emit(const struct conn *c, int c2s, uint32_t seq, uint32_t ack, uint8_t flags, const uint8_t *data,
                 size_t len)
{
    uint8_t h[16 + 14 + 20 + 20];
    size_t caplen = 14 + 20 + 20 + len;
    ts_us += 3 + rnd() % 20;
    write_le32(h, (uint32_t)(ts_us / 1000000u));
    write_le32(h + 4, (uint32_t)(ts_us % 1000000u));
    write_le32(h + 8, (uint32_t)caplen);
    write_le32(h + 12, (uint32_t)caplen);
    uint8_t *e = h + 16;
    static const uint8_t mac_c[6] = { 0x02, 0, 0, 0, 0, 1 }, mac_s[6] = { 0x02, 0, 0, 0, 0, 2 };
    memcpy(e, c2s ? mac_s : mac_c, 6);
    memcpy(e + 6, c2s ? mac_c : mac_s, 6);
    put16(e + 12, 0x0800);
    uint8_t *ip = e + 14;
    memset(ip, 0, 20);
    ip[0] = 0x45;
    put16(ip + 2, (uint16_t)(20 + 20 + len));
    put16(ip + 4, ip_id++);
    ip[6] = 0x40;   /* DF */
    ip[8] = 64;
    ip[9] = 6;
    put32(ip + 12, c2s ? c->cip : c->sip);
    put32(ip + 16, c2s ? c->sip : c->cip);
    uint32_t sum = 0;
    for (int i = 0; i < 20; i += 2)
        sum += (uint32_t)(ip[i] << 8 | ip[i + 1]);
    while (sum >> 16)
        sum = (sum & 0xffff) + (sum >> 16);
    put16(ip + 10, (uint16_t)~sum);
    uint8_t *t = ip + 20;
    memset(t, 0, 20);
    put16(t, c2s ? c->cport : server_port);
    put16(t + 2, c2s ? server_port : c->cport);
    put32(t + 4, seq);
    put32(t + 8, ack);
    t[12] = 5 << 4;
    t[13] = flags;
    put16(t + 14, 65535);
    fwrite(h, 1, sizeof h, out);
    if (len)
        fwrite(data, 1, len, out);
    n_packets++;
    n_bytes += caplen;
}

/* Sends len bytes in MSS segments, the last with PSH. */
static void send_data(struct conn *c, int c2s, const uint8_t *data, size_t len)
{
    size_t off = 0;
    while (off < len) {
        size_t n = len - off > MSS ? MSS : len - off;
        if (c2s) {
            emit(c, 1, c->cseq, c->sseq, (uint8_t)(F_ACK | (off + n == len ? F_PSH : 0)), data + off, n);
            c->cseq += (uint32_t)n;
        } else {
            emit(c, 0, c->sseq, c->cseq, (uint8_t)(F_ACK | (off + n == len ? F_PSH : 0)), data + off, n);
            c->sseq += (uint32_t)n;
        }
        off += n;
    }
    if (c2s)
        c2s_bytes += len;
    else
        s2c_bytes += len;
}

static char filler[1 << 21];

static void make_filler(void)
{
    static const char *words[] = { "\"took\":", "\"hits\":", "{\"_index\":\"logs-2026.11\",", "\"_id\":\"",
                                   "\"_score\":1.0,", "\"message\":\"GET /api/v1/items HTTP/1.1 200\",",
                                   "\"host\":\"web-17\",", "\"@timestamp\":\"2026-11-23T12:00:00Z\"},",
                                   "\"tags\":[\"a\",\"b\"],", "\"value\":12345," };
    size_t off = 0;
    while (off < sizeof filler) {
        const char *w = words[rnd() % (sizeof words / sizeof words[0])];
        size_t n = strlen(w);
        if (n > sizeof filler - off)
            n = sizeof filler - off;
        memcpy(filler + off, w, n);
        off += n;
    }
}

struct sbuf {
    uint8_t *p;
    size_t len, cap;
};

static void sb_add(struct sbuf *b, const void *d, size_t n)
{
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n)
            cap *= 2;
        b->p = realloc(b->p, cap);
        if (!b->p) {
            perror("realloc");
            exit(1);
        }
        b->cap = cap;
    }
    memcpy(b->p + b->len, d, n);
    b->len += n;
}

static void sb_fmt(struct sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_fmt(struct sbuf *b, const char *fmt, ...)
{
    char tmp[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof tmp) {
        fprintf(stderr, "format overflow\n");
        exit(1);
    }
    sb_add(b, tmp, (size_t)n);
}

static void filler_at(struct sbuf *b, size_t n)
{
    size_t off = (size_t)(rnd() % (sizeof filler - n));
    sb_add(b, filler + off, n);
}

static void transaction(struct conn *c, struct sbuf *req, struct sbuf *resp)
{
    static const char *paths[] = { "/logs-2026.11/_search", "/_bulk", "/products/_doc/", "/_cluster/health",
                                   "/metrics-*/_search?size=100", "/_cat/indices?v", "/orders/_count" };
    req->len = resp->len = 0;
    uint32_t r = rnd_range(0, 99);
    const char *method = r < 55 ? "GET" : r < 85 ? "POST" : r < 97 ? "PUT" : "HEAD";
    const char *path = paths[rnd() % (sizeof paths / sizeof paths[0])];
    size_t body = 0;
    if (method[0] == 'P')
        body = rnd_range(100, 1500);
    sb_fmt(req, "%s %s%s HTTP/1.1\r\nHost: es-node-1:%u\r\nUser-Agent: opensearch-py/2.4.2 (Python 3.11)\r\n"
                "Accept: application/json\r\nConnection: keep-alive\r\n",
           method, path, path[strlen(path) - 1] == '/' ? "1234" : "", (unsigned)server_port);
    if (body)
        sb_fmt(req, "Content-Type: application/json\r\nContent-Length: %zu\r\n", body);
    sb_add(req, "\r\n", 2);
    if (body)
        filler_at(req, body);
    send_data(c, 1, req->p, req->len);

    uint32_t k = rnd_range(0, 9999);
    sb_fmt(resp, "HTTP/1.1 200 OK\r\ncontent-type: application/json; charset=UTF-8\r\nX-Opaque-Id: %08" PRIx64
                 "\r\n",
           rnd() & 0xffffffffu);
    if (method[0] == 'H') {
        sb_fmt(resp, "content-length: %u\r\n\r\n", rnd_range(100, 5000));
    } else if (k < 300) {   /* chunked */
        sb_fmt(resp, "transfer-encoding: chunked\r\n\r\n");
        uint32_t chunks = rnd_range(1, 8);
        for (uint32_t i = 0; i < chunks; i++) {
            size_t n = rnd_range(50, 4000);
            sb_fmt(resp, "%zx\r\n", n);
            filler_at(resp, n);
            sb_add(resp, "\r\n", 2);
        }
        sb_add(resp, "0\r\n\r\n", 5);
    } else {
        size_t n = k < 302 ? rnd_range(256 << 10, 1 << 20) : k < 402 ? rnd_range(16 << 10, 64 << 10)
                                                                     : rnd_range(200, 3072);
        sb_fmt(resp, "content-length: %zu\r\n\r\n", n);
        filler_at(resp, n);
    }
    send_data(c, 0, resp->p, resp->len);
    emit(c, 1, c->cseq, c->sseq, F_ACK, NULL, 0);
}

static void conn_open(struct conn *c, uint32_t idx)
{
    c->cip = 0x0a000000u | (10u << 8) | (1 + idx % 250);   /* 10.0.10.x */
    c->sip = 0x0a000001u;                                   /* 10.0.0.1 */
    c->cport = (uint16_t)(10000 + (idx * 7) % 50000);
    c->cseq = (uint32_t)rnd();
    c->sseq = (uint32_t)rnd();
    c->left = rnd_range(50, 250);
    c->open = 1;
    emit(c, 1, c->cseq, 0, F_SYN, NULL, 0);
    emit(c, 0, c->sseq, c->cseq + 1, F_SYN | F_ACK, NULL, 0);
    c->cseq++;
    c->sseq++;
    emit(c, 1, c->cseq, c->sseq, F_ACK, NULL, 0);
}

static void conn_close(struct conn *c)
{
    emit(c, 1, c->cseq, c->sseq, F_FIN | F_ACK, NULL, 0);
    c->cseq++;
    emit(c, 0, c->sseq, c->cseq, F_FIN | F_ACK, NULL, 0);
    c->sseq++;
    emit(c, 1, c->cseq, c->sseq, F_ACK, NULL, 0);
    c->open = 0;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s OUT.pcap TRANSACTIONS [PORT [SEED]]\n", argv[0]);
        return 2;
    }
    char *end;
    uint64_t total = strtoull(argv[2], &end, 10);
    if (*end || !total) {
        fprintf(stderr, "bad TRANSACTIONS\n");
        return 2;
    }
    if (argc > 3)
        server_port = (uint16_t)strtoul(argv[3], NULL, 10);
    if (argc > 4)
        rng_state ^= strtoull(argv[4], NULL, 10) * 0x100000001b3ull;
    out = fopen(argv[1], "wb");
    if (!out) {
        perror(argv[1]);
        return 1;
    }
    static char obuf[1 << 20];
    setvbuf(out, obuf, _IOFBF, sizeof obuf);
    uint8_t gh[24];
    write_le32(gh, 0xa1b2c3d4u);
    gh[4] = 2, gh[5] = 0, gh[6] = 4, gh[7] = 0;
    memset(gh + 8, 0, 8);
    write_le32(gh + 16, 262144);
    write_le32(gh + 20, 1);   /* LINKTYPE_ETHERNET */
    fwrite(gh, 1, sizeof gh, out);
    make_filler();

    static struct conn conns[ACTIVE];
    uint32_t next_idx = 0;
    uint64_t done = 0, nconns = 0;
    struct sbuf req = { 0 }, resp = { 0 };
    while (done < total) {
        struct conn *c = &conns[rnd() % ACTIVE];
        if (!c->open) {
            conn_open(c, next_idx++);
            nconns++;
        }
        transaction(c, &req, &resp);
        done++;
        if (--c->left == 0)
            conn_close(c);
    }
    for (int i = 0; i < ACTIVE; i++)
        if (conns[i].open)
            conn_close(&conns[i]);
    free(req.p);
    free(resp.p);
    if (fclose(out) != 0) {
        perror(argv[1]);
        return 1;
    }
    printf("transactions=%" PRIu64 " connections=%" PRIu64 " packets=%" PRIu64 " bytes=%" PRIu64
           " c2s_bytes=%" PRIu64 " s2c_bytes=%" PRIu64 "\n",
           done, nconns, n_packets, n_bytes + 24 + 16 * n_packets, c2s_bytes, s2c_bytes);
    return 0;
}
