/* Logging: levels, optional JSON lines, stderr or syslog, debug contexts.
 * Macros test the level before formatting. Nothing is logged per packet or
 * per document; use sm_log_ratelimited() for repeated conditions. */
#ifndef SM_LOG_H
#define SM_LOG_H
#include <stdbool.h>
#include <stdint.h>

enum sm_log_level { SM_LOG_ERR = 0, SM_LOG_WARN, SM_LOG_INFO, SM_LOG_DEBUG };

/* Debug contexts, enabled with --debug=flow,http,... */
enum sm_dbg_ctx {
    SM_DBG_FLOW = 1u << 0, SM_DBG_HTTP = 1u << 1, SM_DBG_RECORD = 1u << 2,
    SM_DBG_KAFKA = 1u << 3, SM_DBG_SINK = 1u << 4, SM_DBG_PCAP = 1u << 5,
    SM_DBG_BPF = 1u << 6, SM_DBG_TLS = 1u << 7, SM_DBG_REPLAY = 1u << 8,
    SM_DBG_COMPARE = 1u << 9, SM_DBG_REPO = 1u << 10, SM_DBG_LUCENE = 1u << 11,
    SM_DBG_SMILE = 1u << 12, SM_DBG_BACKFILL = 1u << 13, SM_DBG_CLIENT = 1u << 14,
    SM_DBG_ALL = 0xffffffffu,
};

struct sm_log_config {
    enum sm_log_level level;   /* default SM_LOG_INFO */
    unsigned debug;            /* enum sm_dbg_ctx bits */
    bool json;                 /* JSON lines instead of text */
    bool syslog;               /* syslog(3) instead of stderr */
    const char *ident;         /* program name in lines and syslog */
};

void sm_log_init(const struct sm_log_config *cfg);
/* Parses "flow,http" or "all" into dbg bits; returns SM_OK or SM_ECONFIG. */
int  sm_log_parse_debug(const char *spec, unsigned *out);
/* Parses "error|warn|info|debug". */
int  sm_log_parse_level(const char *spec, enum sm_log_level *out);

extern enum sm_log_level sm_log_level_cur;
extern unsigned sm_log_debug_cur;

void sm_log_write(enum sm_log_level lvl, const char *ctx, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define sm_log_at(lvl, ...) do { if ((lvl) <= sm_log_level_cur) sm_log_write((lvl), NULL, __VA_ARGS__); } while (0)
#define sm_log_err(...)  sm_log_at(SM_LOG_ERR, __VA_ARGS__)
#define sm_log_warn(...) sm_log_at(SM_LOG_WARN, __VA_ARGS__)
#define sm_log_info(...) sm_log_at(SM_LOG_INFO, __VA_ARGS__)
#define sm_dbg(ctxbit, ...) do { if (sm_log_debug_cur & (ctxbit)) sm_log_write(SM_LOG_DEBUG, #ctxbit, __VA_ARGS__); } while (0)

/* A status line kept at the bottom of a terminal (for text logs to a tty;
 * callers check isatty(2) and --log-json themselves): sm_log_status(line)
 * draws it or replaces the one shown; log lines written meanwhile appear above
 * it and it is redrawn under them; sm_log_status(NULL) ends it, leaving its
 * last text on its own line. Thread-safe, like sm_log_write(). */
void sm_log_status(const char *line);

/* Rate limiter for repeated warnings: returns true at most once per
 * interval_ms per limiter; *suppressed receives how many calls were skipped. */
struct sm_ratelimit { uint64_t last_ms; uint64_t suppressed; };
bool sm_log_ratelimited(struct sm_ratelimit *rl, uint64_t interval_ms, uint64_t *suppressed);

#endif
