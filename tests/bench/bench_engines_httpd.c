#define _GNU_SOURCE
/* bench_engines_httpd: a small keep-alive HTTP/1.1 server for the capture
 * overhead benchmark (bench_engines.py). Answers every request (head ended
 * by an empty line, no body) with a fixed 1 KiB body, using read()/write()
 * from N epoll threads. Prints the port on stdout; on SIGTERM writes
 * "requests=N bytes_in=N bytes_out=N cpu_us=N" (its user + system CPU time) to
 * the file given as argv[2]. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#define BODY 1024
static char resp[BODY + 128];
static size_t resp_len;
static int lfd;
static atomic_ullong n_req, n_in, n_out;

struct conn { int fd; size_t have; char buf[8192]; };

static void *worker(void *arg)
{
    (void)arg;
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
                c->fd = fd;
                struct epoll_event ce = { .events = EPOLLIN, .data.ptr = c };
                epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ce);
                continue;
            }
            ssize_t r = read(c->fd, c->buf + c->have, sizeof(c->buf) - c->have);
            if (r <= 0) {
                if (r < 0 && errno == EAGAIN)
                    continue;
                close(c->fd);
                free(c);
                continue;
            }
            n_in += (unsigned long long)r;
            c->have += (size_t)r;
            char *end;
            while ((end = memmem(c->buf, c->have, "\r\n\r\n", 4))) {
                size_t used = (size_t)(end + 4 - c->buf);
                if (write(c->fd, resp, resp_len) == (ssize_t)resp_len)
                    n_out += resp_len;
                n_req++;
                memmove(c->buf, c->buf + used, c->have - used);
                c->have -= used;
            }
            if (c->have == sizeof(c->buf))
                c->have = 0;
        }
    }
    return NULL;
}

int main(int argc, char **argv)
{
    int threads = argc > 1 ? (int)strtol(argv[1], NULL, 10) : 2;
    const char *statf = argc > 2 ? argv[2] : NULL;
    int w = snprintf(resp, sizeof(resp), "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n", BODY);
    memset(resp + w, 'x', BODY);
    resp_len = (size_t)w + BODY;
    lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    int one = 1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t al = sizeof(a);
    if (bind(lfd, (struct sockaddr *)&a, sizeof(a)) || listen(lfd, 1024) || getsockname(lfd, (struct sockaddr *)&a, &al)) {
        perror("bench_engines_httpd");
        return 1;
    }
    printf("%u\n", ntohs(a.sin_port));
    fflush(stdout);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    for (int i = 0; i < threads; i++) {
        pthread_t t;
        pthread_create(&t, NULL, worker, NULL);
    }
    int sig;
    sigwait(&set, &sig);
    if (statf) {
        FILE *f = fopen(statf, "w");
        if (f) {
            struct rusage ru;
            getrusage(RUSAGE_SELF, &ru);
            unsigned long long cpu_us = (unsigned long long)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000ull +
                                        (unsigned long long)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
            fprintf(f, "requests=%llu bytes_in=%llu bytes_out=%llu cpu_us=%llu\n", (unsigned long long)n_req,
                    (unsigned long long)n_in, (unsigned long long)n_out, cpu_us);
            fclose(f);
        }
    }
    return 0;
}
