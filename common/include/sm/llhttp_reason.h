/* Why llhttp stopped, for error messages (the agent framer, the replayer's
 * parser, the HTTP client's own connection). */
#ifndef SM_LLHTTP_REASON_H
#define SM_LLHTTP_REASON_H

#include <llhttp.h>

/* llhttp's reason text when it set one, else the name of e (what
 * llhttp_execute() or llhttp_finish() returned). */
static inline const char *sm_llhttp_reason(const llhttp_t *p, llhttp_errno_t e)
{
    const char *r = llhttp_get_error_reason(p);
    return r ? r : llhttp_errno_name(e);
}

#endif
