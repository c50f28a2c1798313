#define _GNU_SOURCE
/* bench_tls_httpd: a small keep-alive HTTPS (HTTP/1.1) server for the TLS
 * benchmark (bench_tls.py). OpenSSL, one thread per connection, blocking
 * SSL_read/SSL_write. GET /N answers N body bytes (at most 1 MiB); a request
 * is a head ended by an empty line (no body). Session secrets are appended to
 * the NSS key log file KEYLOG. SUITE "tls1.3" = TLS 1.3 with OpenSSL's
 * defaults, anything else = TLS 1.2 with that cipher list. Prints the port.
 * Usage: bench_tls_httpd CERT KEY KEYLOG SUITE */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_BODY (1u << 20)
static char body[MAX_BODY];
static FILE *keylog;
static pthread_mutex_t keylog_lock = PTHREAD_MUTEX_INITIALIZER;
static SSL_CTX *ctx;

static void keylog_cb(const SSL *ssl, const char *line)
{
    (void)ssl;
    pthread_mutex_lock(&keylog_lock);
    fprintf(keylog, "%s\n", line);
    fflush(keylog);
    pthread_mutex_unlock(&keylog_lock);
}

static void *conn_main(void *arg)
{
    int fd = (int)(intptr_t)arg;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    SSL *ssl = SSL_new(ctx);
    char buf[16384], head[128];
    size_t have = 0;
    if (!ssl || SSL_set_fd(ssl, fd) != 1 || SSL_accept(ssl) != 1)
        goto out;
    for (;;) {
        char *end = memmem(buf, have, "\r\n\r\n", 4);
        if (!end) {
            if (have == sizeof buf)
                break;
            int n = SSL_read(ssl, buf + have, (int)(sizeof buf - have));
            if (n <= 0)
                break;
            have += (size_t)n;
            continue;
        }
        unsigned long len = 0;
        if (have > 5 && memcmp(buf, "GET /", 5) == 0)
            len = strtoul(buf + 5, NULL, 10);
        if (len > MAX_BODY)
            len = MAX_BODY;
        int hl = snprintf(head, sizeof head,
                          "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %lu\r\n\r\n", len);
        /* head and body in one write when small: one TLS record, like a real server */
        char small[4096 + 128];
        if (len <= 4096) {
            memcpy(small, head, (size_t)hl);
            memcpy(small + hl, body, len);
            if (SSL_write(ssl, small, hl + (int)len) <= 0)
                break;
        } else if (SSL_write(ssl, head, hl) <= 0 || SSL_write(ssl, body, (int)len) <= 0) {
            break;
        }
        size_t used = (size_t)(end + 4 - buf);
        memmove(buf, buf + used, have - used);
        have -= used;
    }
    SSL_shutdown(ssl);
out:
    SSL_free(ssl);
    close(fd);
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: bench_tls_httpd CERT KEY KEYLOG SUITE\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    for (size_t i = 0; i < MAX_BODY; i++)
        body[i] = "0123456789abcdef"[i % 16];
    keylog = fopen(argv[3], "a");
    ctx = SSL_CTX_new(TLS_server_method());
    if (!keylog || !ctx || SSL_CTX_use_certificate_chain_file(ctx, argv[1]) != 1 ||
        SSL_CTX_use_PrivateKey_file(ctx, argv[2], SSL_FILETYPE_PEM) != 1) {
        ERR_print_errors_fp(stderr);
        return 1;
    }
    if (strcmp(argv[4], "tls1.3") == 0) {
        SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
    } else if (SSL_CTX_set_max_proto_version(ctx, TLS1_2_VERSION) != 1 ||
               SSL_CTX_set_cipher_list(ctx, argv[4]) != 1) {
        ERR_print_errors_fp(stderr);
        return 1;
    }
    SSL_CTX_set_keylog_callback(ctx, keylog_cb);
    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t sl = sizeof sa;
    if (bind(lfd, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(lfd, 1024) != 0 ||
        getsockname(lfd, (struct sockaddr *)&sa, &sl) != 0) {
        perror("bench_tls_httpd: listen");
        return 1;
    }
    printf("%d\n", ntohs(sa.sin_port));
    fflush(stdout);
    for (;;) {
        int fd = accept(lfd, NULL, NULL);
        if (fd < 0)
            continue;
        pthread_t t;
        pthread_attr_t at;
        pthread_attr_init(&at);
        pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
        if (pthread_create(&t, &at, conn_main, (void *)(intptr_t)fd) != 0)
            close(fd);
        pthread_attr_destroy(&at);
    }
}
