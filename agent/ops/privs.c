/* Privilege drop (see privs.h). */
#define _GNU_SOURCE
#include "ops/privs.h"

#include "source/source.h"

#include <sm/err.h>
#include <sm/log.h>

#include <errno.h>
#include <grp.h>
#include <linux/capability.h>
#include <pwd.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

static int cap_get(struct __user_cap_data_struct d[2])
{
    struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
    return (int)syscall(SYS_capget, &h, d);
}

static int cap_set(struct __user_cap_data_struct d[2])
{
    struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
    return (int)syscall(SYS_capset, &h, d);
}

static unsigned long long mask_of(const struct __user_cap_data_struct d[2], int which)
{
    unsigned long long lo, hi;
    if (which == 0) {
        lo = d[0].effective;
        hi = d[1].effective;
    } else {
        lo = d[0].permitted;
        hi = d[1].permitted;
    }
    return lo | (hi << 32);
}

unsigned long long agent_privs_effective(void)
{
    struct __user_cap_data_struct d[2];
    memset(d, 0, sizeof(d));
    if (cap_get(d) != 0)
        return 0;
    return mask_of(d, 0);
}

static unsigned long long keep_mask(unsigned keep)
{
    unsigned long long m = 0;
    if (keep & AGENT_CAP_NET_RAW)
        m |= 1ull << CAP_NET_RAW;
    if (keep & AGENT_CAP_NET_ADMIN)
        m |= 1ull << CAP_NET_ADMIN;
#ifdef CAP_BPF
    if (keep & AGENT_CAP_BPF)
        m |= 1ull << CAP_BPF;
#endif
#ifdef CAP_PERFMON
    if (keep & AGENT_CAP_PERFMON)
        m |= 1ull << CAP_PERFMON;
#endif
    return m;
}

int agent_privs_drop(unsigned keep, const char *user, char *err, size_t errlen)
{
    struct __user_cap_data_struct d[2];
    memset(d, 0, sizeof(d));
    if (cap_get(d) != 0)
        return sm_errf(err, errlen, SM_EIO, "privileges: capget: %s", strerror(errno));
    unsigned long long permitted = mask_of(d, 1);
    unsigned long long want = keep_mask(keep) & permitted;
    struct passwd *pw = NULL;
    if (user && *user) {
        errno = 0;
        if (!(pw = getpwnam(user)))
            return sm_errf(err, errlen, SM_ENOTFOUND, "privileges: no user '%s'", user);
    }
    if (!permitted && !pw)
        return SM_OK;   /* nothing to drop */

    /* 1. the bounding set, while CAP_SETPCAP is still effective */
    if (permitted & (1ull << CAP_SETPCAP)) {
        for (int c = 0; c < 64; c++) {
            if (want & (1ull << c))
                continue;
            if (prctl(PR_CAPBSET_READ, c, 0, 0, 0) < 0)
                break;   /* past the kernel's last capability */
            if (prctl(PR_CAPBSET_DROP, c, 0, 0, 0) != 0)
                return sm_errf(err, errlen, SM_EIO, "privileges: dropping capability %d: %s", c,
                               strerror(errno));
        }
    }
    /* 2. the user, keeping the permitted set across setuid */
    if (pw) {
        if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) != 0 || setgroups(1, &pw->pw_gid) != 0 ||
            setresgid(pw->pw_gid, pw->pw_gid, pw->pw_gid) != 0 ||
            setresuid(pw->pw_uid, pw->pw_uid, pw->pw_uid) != 0)
            return sm_errf(err, errlen, SM_EIO, "privileges: switching to user %s: %s", user, strerror(errno));
        prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0);
    }
    /* 3. effective = permitted = what the engine needs; nothing inheritable */
    memset(d, 0, sizeof(d));
    d[0].effective = d[0].permitted = (uint32_t)want;
    d[1].effective = d[1].permitted = (uint32_t)(want >> 32);
    if (cap_set(d) != 0)
        return sm_errf(err, errlen, SM_EIO, "privileges: capset: %s", strerror(errno));
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
        return sm_errf(err, errlen, SM_EIO, "privileges: no_new_privs: %s", strerror(errno));
    return SM_OK;
}
