/* searchmig: one list of error codes, one string table, retry classifiers. */
#ifndef SM_ERR_H
#define SM_ERR_H
#include <stdbool.h>
#include <stddef.h>

enum sm_err {
    SM_OK       = 0,
    SM_ENOMEM   = -1,  /* allocation failed */
    SM_EIO      = -2,  /* read/write/network I/O failed */
    SM_ECORRUPT = -3,  /* CRC mismatch, bad varint, impossible length */
    SM_EPROTO   = -4,  /* peer or input violates the protocol/format */
    SM_EFULL    = -5,  /* a bounded buffer or queue is at its cap */
    SM_EAGAIN   = -6,  /* transient: try again later */
    SM_ECONFIG  = -7,  /* bad option or config value */
    SM_ENOTFOUND = -8, /* file, blob, key or document absent */
    SM_EUNSUPPORTED = -9, /* format or feature recognised but not supported */
    SM_ETIMEOUT = -10, /* deadline passed */
    SM_EINVAL   = -11, /* caller passed an invalid argument */
    SM_EEOF     = -12, /* end of input reached before the value was complete */
    SM_ECONFLICT = -13, /* optimistic concurrency conflict (version/seq_no) */
};

/* Static description of err ("out of memory"); never NULL. */
const char *sm_strerror(int err);
/* True for errors worth retrying after a backoff (SM_EAGAIN, SM_ETIMEOUT, SM_EIO). */
bool sm_err_retriable(int err);

/* Formats into errbuf if errbuf != NULL && errlen > 0 (snprintf semantics),
 * then returns err unchanged, so callers can write `return sm_errf(...)`. */
int sm_errf(char *errbuf, size_t errlen, int err, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
