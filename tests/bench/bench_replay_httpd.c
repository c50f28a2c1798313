#define _GNU_SOURCE
/* bench_replay_httpd: a small keep-alive HTTP/1.1 server for the replay
 * timing test and benchmark. Reads requests (head ended by an empty line,
 * body by Content-Length), answers each with a fixed small JSON body from N
 * epoll threads, and remembers for every request the CLOCK_MONOTONIC time
 * its first byte was read, the connection it came on and its path.
 *
 * Usage: bench_replay_httpd THREADS [LOGFILE]
 * Prints the port on stdout; on SIGTERM writes one line per request to
 * LOGFILE: "<arrival_ns> <server_conn_no> <path>", then
 * "# requests=N" and exits. */
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
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define PATH_MAX_LOG 120
#define MAX_THREADS 16

static const char resp[] = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 15\r\n\r\n"
                           "{\"result\":\"ok\"}";
static int lfd;
static atomic_ullong n_req, conn_seq;
static bool logging;

struct arrival { uint64_t ns; uint64_t conn; char path[PATH_MAX_LOG]; };

struct tlog {
    struct arrival *v;
    size_t n, cap;
};
static struct tlog logs[MAX_THREADS];
static pthread_mutex_t log_mu[MAX_THREADS];

struct conn {
    int fd;
    uint64_t no;
    size_t have;
    uint64_t first_ns;      /* arrival of the first byte of the request being read; 0: none */
    char buf[65536];
};

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void log_req(int tid, const struct conn *c, const char *head, size_t head_len, uint64_t ns)
{
    if (!logging)
        return;
    struct tlog *l = &logs[tid];
    pthread_mutex_lock(&log_mu[tid]);
    if (l->n == l->cap) {
        size_t ncap = l->cap ? l->cap * 2 : 65536;
        struct arrival *nv = realloc(l->v, ncap * sizeof(*nv));
        if (!nv) {
            pthread_mutex_unlock(&log_mu[tid]);
            return;
        }
        l->v = nv;
        l->cap = ncap;
    }
    struct arrival *a = &l->v[l->n++];
    a->ns = ns;
    a->conn = c->no;
    const char *sp = memchr(head, ' ', head_len);
    const char *sp2 = sp ? memchr(sp + 1, ' ', head_len - (size_t)(sp + 1 - head)) : NULL;
    size_t pl = sp && sp2 ? (size_t)(sp2 - sp - 1) : 0;
    if (pl >= PATH_MAX_LOG)
        pl = PATH_MAX_LOG - 1;
    if (pl)
        memcpy(a->path, sp + 1, pl);
    a->path[pl] = 0;
    pthread_mutex_unlock(&log_mu[tid]);
}

/* Content-Length of a request head, 0 when absent. */
static size_t content_length(const char *head, size_t len)
{
    const char *p = head, *end = head + len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl)
            break;
        if ((size_t)(nl - p) > 15 && !strncasecmp(p, "content-length:", 15))
            return (size_t)strtoull(p + 15, NULL, 10);
        p = nl + 1;
    }
    return 0;
}

static void *worker(void *arg)
{
    int tid = (int)(intptr_t)arg;
    int ep = epoll_create1(0);
    struct epoll_event ev = { .events = EPOLLIN | EPOLLEXCLUSIVE, .data.ptr = NULL };
    epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
    struct epoll_event evs[64];
    for (;;) {
        int n = epoll_wait(ep, evs, 64, -1);
        for (int i = 0; i < n; i++) {
            struct conn *c = evs[i].data.ptr;
            if (!c) {
                int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK);
                if (fd < 0)
                    continue;
                int one = 1;
                setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
                c = calloc(1, sizeof(*c));
                if (!c) {
                    close(fd);
                    continue;
                }
                c->fd = fd;
                c->no = ++conn_seq;
                struct epoll_event ce = { .events = EPOLLIN, .data.ptr = c };
                epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ce);
                continue;
            }
            uint64_t t = now_ns();
            ssize_t r = read(c->fd, c->buf + c->have, sizeof(c->buf) - c->have);
            if (r <= 0) {
                if (r < 0 && errno == EAGAIN)
                    continue;
                close(c->fd);
                free(c);
                continue;
            }
            if (!c->first_ns)
                c->first_ns = t;
            c->have += (size_t)r;
            for (;;) {
                char *end = memmem(c->buf, c->have, "\r\n\r\n", 4);
                if (!end)
                    break;
                size_t head_len = (size_t)(end + 4 - c->buf);
                size_t used = head_len + content_length(c->buf, head_len);
                if (used > sizeof(c->buf)) {       /* too large for this server */
                    c->have = 0;
                    break;
                }
                if (used > c->have)
                    break;
                log_req(tid, c, c->buf, head_len, c->first_ns);
                n_req++;
                if (write(c->fd, resp, sizeof(resp) - 1) < 0 && errno != EAGAIN)
                    break;
                memmove(c->buf, c->buf + used, c->have - used);
                c->have -= used;
                c->first_ns = c->have ? t : 0;
            }
            if (c->have == sizeof(c->buf))
                c->have = 0;
        }
    }
    return NULL;
}

static int cmp_arrival(const void *a, const void *b)
{
    const struct arrival *x = a, *y = b;
    return x->ns < y->ns ? -1 : x->ns > y->ns;
}

int main(int argc, char **argv)
{
    int threads = argc > 1 ? (int)strtol(argv[1], NULL, 10) : 2;
    if (threads < 1 || threads > MAX_THREADS)
        threads = 2;
    const char *logf = argc > 2 ? argv[2] : NULL;
    logging = logf != NULL;
    lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    int one = 1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t al = sizeof(a);
    if (bind(lfd, (struct sockaddr *)&a, sizeof(a)) || listen(lfd, 4096) ||
        getsockname(lfd, (struct sockaddr *)&a, &al)) {
        perror("bench_replay_httpd");
        return 1;
    }
    printf("%u\n", ntohs(a.sin_port));
    fflush(stdout);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    for (int i = 0; i < threads; i++) {
        pthread_mutex_init(&log_mu[i], NULL);
        pthread_t t;
        pthread_create(&t, NULL, worker, (void *)(intptr_t)i);
    }
    int sig;
    sigwait(&set, &sig);
    if (logf) {
        FILE *f = fopen(logf, "w");
        if (!f) {
            perror(logf);
            return 1;
        }
        size_t total = 0;
        for (int i = 0; i < threads; i++) {
            pthread_mutex_lock(&log_mu[i]);
            total += logs[i].n;
        }
        struct arrival *all = malloc((total ? total : 1) * sizeof(*all));
        size_t k = 0;
        for (int i = 0; all && i < threads; i++) {
            if (logs[i].n)   /* a thread that served nothing has no log array */
                memcpy(all + k, logs[i].v, logs[i].n * sizeof(*all));
            k += logs[i].n;
        }
        if (all) {
            qsort(all, k, sizeof(*all), cmp_arrival);
            for (size_t i = 0; i < k; i++)
                fprintf(f, "%llu %llu %s\n", (unsigned long long)all[i].ns, (unsigned long long)all[i].conn,
                        all[i].path);
        }
        fprintf(f, "# requests=%llu\n", (unsigned long long)n_req);
        fclose(f);
    }
    return 0;
}
