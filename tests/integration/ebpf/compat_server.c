/* compat_server: a TCP server on 127.0.0.1 that, on each accepted connection,
 * first makes a 32-bit system call through `int $0x80` whose number is the
 * 64-bit number of writev (20 = ia32 getpid), with the registers a 64-bit
 * writev on the connection would use (rdi = the socket, rsi = an iovec of
 * "BOGUS..."), then answers with a plain 64-bit write of "hello\n" and closes.
 * getpid returns the pid (> 0): a capture that took the call for a 64-bit
 * writev would report "BOGUS" bytes the connection never carried
 * (run_ebpf.py compat).
 *   compat_server PORT_FILE N     (serves N connections, then exits) */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

static long int80_getpid_with_writev_regs(int fd, const struct iovec *iov)
{
#if defined(__x86_64__)
    long ret;
    register long rdi __asm__("rdi") = fd;
    register long rsi __asm__("rsi") = (long)iov;
    register long rdx __asm__("rdx") = 1;
    __asm__ volatile("int $0x80"
                     : "=a"(ret)
                     : "0"(20L), "r"(rdi), "r"(rsi), "r"(rdx)
                     : "memory", "rcx", "r8", "r9", "r10", "r11");
    return ret;
#else
    (void)fd;
    (void)iov;
    return -1;
#endif
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: %s PORT_FILE N\n", argv[0]);
        return 2;
    }
#if !defined(__x86_64__)
    fprintf(stderr, "compat_server: x86_64 only\n");
    return 77;
#endif
    int n = atoi(argv[2]);
    int s = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    struct sockaddr_in a = { .sin_family = AF_INET };
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t al = sizeof(a);
    if (bind(s, (struct sockaddr *)&a, sizeof(a)) || listen(s, 8) || getsockname(s, (struct sockaddr *)&a, &al)) {
        perror("compat_server: listen");
        return 1;
    }
    FILE *f = fopen(argv[1], "w");
    if (!f)
        return 1;
    fprintf(f, "%d\n", ntohs(a.sin_port));
    fclose(f);
    static char bogus[64];
    memset(bogus, 'B', sizeof(bogus));
    memcpy(bogus, "BOGUS", 5);
    struct iovec iov = { bogus, sizeof(bogus) };
    for (int i = 0; i < n; i++) {
        int c = accept(s, NULL, NULL);
        if (c < 0)
            return 1;
        long pid = int80_getpid_with_writev_regs(c, &iov);
        if (pid != (long)getpid()) {
            fprintf(stderr, "compat_server: int $0x80 getpid returned %ld, want %ld\n", pid, (long)getpid());
            return 1;
        }
        char req[256];
        ssize_t r = read(c, req, sizeof(req));   /* the client's line */
        (void)r;
        if (write(c, "hello\n", 6) != 6)
            return 1;
        close(c);
    }
    close(s);
    return 0;
}
