/* Privilege drop once the capture is open: keep only the capabilities the
 * capture engine declares (agent_capture_caps(), enum agent_cap), optionally
 * switch to an unprivileged user, and forbid regaining privileges
 * (no_new_privs). Raw capget/capset/prctl: no libcap needed. */
#ifndef AGENT_OPS_PRIVS_H
#define AGENT_OPS_PRIVS_H
#include <stddef.h>

/* keep: enum agent_cap bits (agent/source/source.h). user: NULL/"" keeps the
 * uid. A process without capabilities has nothing to drop (SM_OK).
 * SM_OK, SM_ENOTFOUND (no such user) or SM_EIO (a system call failed; err
 * says which). On error the process may be partly dropped: exit. */
int agent_privs_drop(unsigned keep, const char *user, char *err, size_t errlen);
/* Effective capabilities now, as a 64-bit mask of CAP_* numbers. */
unsigned long long agent_privs_effective(void);

#endif
