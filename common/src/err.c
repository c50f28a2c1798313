#include <sm/err.h>

#include <stdarg.h>
#include <stdio.h>

static const char *const err_names[] = {
    [0] = "success",
    [1] = "out of memory",
    [2] = "I/O error",
    [3] = "corrupt data",
    [4] = "protocol or format violation",
    [5] = "buffer or queue full",
    [6] = "temporarily unavailable",
    [7] = "configuration error",
    [8] = "not found",
    [9] = "unsupported format or feature",
    [10] = "timed out",
    [11] = "invalid argument",
    [12] = "unexpected end of input",
    [13] = "version conflict",
};

const char *sm_strerror(int err)
{
    int i = -err;
    if (i < 0 || (size_t)i >= sizeof(err_names) / sizeof(err_names[0]) || !err_names[i])
        return "unknown error";
    return err_names[i];
}

bool sm_err_retriable(int err)
{
    return err == SM_EAGAIN || err == SM_ETIMEOUT || err == SM_EIO;
}

int sm_errf(char *errbuf, size_t errlen, int err, const char *fmt, ...)
{
    if (errbuf && errlen > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(errbuf, errlen, fmt, ap);
        va_end(ap);
    }
    return err;
}
