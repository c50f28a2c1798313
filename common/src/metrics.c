/* Metrics and health endpoint (see sm/metrics.h). */
#define _GNU_SOURCE
#include <sm/metrics.h>

#include <sm/err.h>
#include <sm/log.h>
#include <sm/mem.h>
#include <sm/util.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define REQ_MAX 4096

struct sm_metrics {
    int fd;
    int wake[2];               /* pipe: stop() wakes the thread */
    uint16_t port;
    pthread_t thread;
    sm_metrics_render_fn render;
    sm_metrics_health_fn health, ready;
    void *arg;
};

void sm_metrics_put(struct sm_buf *out, const char *name, const char *type, const char *help,
                    uint64_t value)
{
    sm_buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n%s %" PRIu64 "\n", name, help, name, type, name, value);
}

void sm_metrics_put_double(struct sm_buf *out, const char *name, const char *type, const char *help,
                           double value)
{
    sm_buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n%s %.9g\n", name, help, name, type, name, value);
}

/* Writes the response; HEAD (head_only) gets the head alone. */
static void respond(int fd, bool head_only, int status, const char *reason, const char *ctype,
                    const uint8_t *body, size_t len)
{
    char head[256];
    int n = snprintf(head, sizeof(head),
                     "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n",
                     status, reason, ctype, len);
    const uint8_t *parts[2] = { (const uint8_t *)head, body };
    size_t lens[2] = { (size_t)n, len };
    for (int i = 0; i < (head_only ? 1 : 2); i++) {
        size_t off = 0;
        while (off < lens[i]) {
            ssize_t w = send(fd, parts[i] + off, lens[i] - off, MSG_NOSIGNAL);
            if (w < 0 && errno == EINTR)
                continue;
            if (w <= 0)
                return;
            off += (size_t)w;
        }
    }
}

static void serve(struct sm_metrics *m, int fd)
{
    char req[REQ_MAX + 1];
    size_t len = 0;
    uint64_t deadline = sm_now_ms() + 1000;
    while (len < REQ_MAX) {
        struct pollfd p = { fd, POLLIN, 0 };
        uint64_t now = sm_now_ms();
        if (now >= deadline || poll(&p, 1, (int)(deadline - now)) <= 0)
            return;
        ssize_t r = recv(fd, req + len, REQ_MAX - len, 0);
        if (r <= 0)
            return;
        len += (size_t)r;
        req[len] = 0;
        if (strstr(req, "\r\n\r\n") || strstr(req, "\n\n"))
            break;
    }
    req[len] = 0;
    char method[16] = "", path[256] = "";
    const char *sp = strchr(req, ' ');
    if (!sp || (size_t)(sp - req) >= sizeof(method)) {
        respond(fd, false, 400, "Bad Request", "text/plain", (const uint8_t *)"bad request\n", 12);
        return;
    }
    memcpy(method, req, (size_t)(sp - req));
    const char *p = sp + 1;
    size_t pl = strcspn(p, " ?\r\n");
    if (pl >= sizeof(path))
        pl = sizeof(path) - 1;
    memcpy(path, p, pl);
    path[pl] = 0;
    if (strcmp(method, "GET") && strcmp(method, "HEAD")) {
        respond(fd, false, 405, "Method Not Allowed", "text/plain", (const uint8_t *)"GET only\n", 9);
        return;
    }
    bool head = !strcmp(method, "HEAD");
    if (!strcmp(path, "/metrics")) {
        struct sm_buf out;
        sm_buf_init(&out, 4u << 20);
        m->render(m->arg, &out);
        respond(fd, head, 200, "OK", "text/plain; version=0.0.4", out.data, out.len);
        sm_buf_free(&out);
    } else if (!strcmp(path, "/health") || !strcmp(path, "/ready")) {
        char why[200] = "ok";
        sm_metrics_health_fn fn = path[1] == 'r' && m->ready ? m->ready : m->health;
        bool ok = fn ? fn(m->arg, why, sizeof(why)) : true;
        char body[256];
        int n = snprintf(body, sizeof(body), "%s\n", why);
        respond(fd, head, ok ? 200 : 503, ok ? "OK" : "Service Unavailable", "text/plain", (const uint8_t *)body,
                (size_t)n);
    } else {
        respond(fd, head, 404, "Not Found", "text/plain", (const uint8_t *)"not found\n", 10);
    }
}

static void *run(void *arg)
{
    struct sm_metrics *m = arg;
    for (;;) {
        struct pollfd p[2] = { { m->fd, POLLIN, 0 }, { m->wake[0], POLLIN, 0 } };
        int n = poll(p, 2, -1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 || (p[1].revents & (POLLIN | POLLHUP)))
            break;
        if (p[0].revents & POLLIN) {
            int c = accept(m->fd, NULL, NULL);
            if (c < 0)
                continue;
            serve(m, c);
            close(c);
        }
    }
    return NULL;
}

static int parse_listen(const char *addr, char *host, size_t hostlen, char *port, size_t portlen)
{
    const char *colon;
    if (addr[0] == '[') {
        const char *rb = strchr(addr, ']');
        if (!rb || rb[1] != ':')
            return SM_ECONFIG;
        snprintf(host, hostlen, "%.*s", (int)(rb - addr - 1), addr + 1);
        colon = rb + 1;
    } else {
        colon = strrchr(addr, ':');
        if (!colon)
            return SM_ECONFIG;
        snprintf(host, hostlen, "%.*s", (int)(colon - addr), addr);
    }
    snprintf(port, portlen, "%s", colon + 1);
    return *port ? SM_OK : SM_ECONFIG;
}

struct sm_metrics *sm_metrics_start(const char *addr, sm_metrics_render_fn render,
                                    sm_metrics_health_fn health, sm_metrics_health_fn ready, void *arg,
                                    char *err, size_t errlen)
{
    char host[128], port[16];
    if (!addr || parse_listen(addr, host, sizeof(host), port, sizeof(port))) {
        sm_errf(err, errlen, SM_ECONFIG, "metrics: '%s' is not HOST:PORT", addr ? addr : "");
        return NULL;
    }
    struct addrinfo hints = { .ai_flags = AI_PASSIVE | AI_NUMERICSERV, .ai_socktype = SOCK_STREAM };
    struct addrinfo *ai = NULL;
    int rc = getaddrinfo(*host ? host : NULL, port, &hints, &ai);
    if (rc) {
        sm_errf(err, errlen, SM_ECONFIG, "metrics: %s: %s", addr, gai_strerror(rc));
        return NULL;
    }
    struct sm_metrics *m = sm_calloc(1, sizeof(*m));
    if (!m) {
        freeaddrinfo(ai);
        sm_errf(err, errlen, SM_ENOMEM, "metrics: out of memory");
        return NULL;
    }
    m->fd = -1;
    m->wake[0] = m->wake[1] = -1;
    m->render = render;
    m->health = health;
    m->ready = ready;
    m->arg = arg;
    int one = 1;
    m->fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (m->fd < 0 || setsockopt(m->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
        bind(m->fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(m->fd, 16) < 0) {
        sm_errf(err, errlen, SM_EIO, "metrics: cannot listen on %s: %s", addr, strerror(errno));
        goto fail;
    }
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    if (getsockname(m->fd, (struct sockaddr *)&ss, &sl) == 0)
        m->port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                                 : ((struct sockaddr_in *)&ss)->sin_port);
    if (pipe2(m->wake, O_CLOEXEC) < 0 || pthread_create(&m->thread, NULL, run, m) != 0) {
        sm_errf(err, errlen, SM_EIO, "metrics: cannot start: %s", strerror(errno));
        goto fail;
    }
    freeaddrinfo(ai);
    return m;
fail:
    freeaddrinfo(ai);
    if (m->fd >= 0)
        close(m->fd);
    if (m->wake[0] >= 0) {
        close(m->wake[0]);
        close(m->wake[1]);
    }
    sm_free(m);
    return NULL;
}

uint16_t sm_metrics_port(const struct sm_metrics *m)
{
    return m->port;
}

void sm_metrics_stop(struct sm_metrics *m)
{
    if (!m)
        return;
    close(m->wake[1]);
    pthread_join(m->thread, NULL);
    close(m->wake[0]);
    close(m->fd);
    sm_free(m);
}
