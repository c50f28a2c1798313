#include <sm/log.h>
#include <sm/util.h>
#include <sm/err.h>

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <syslog.h>
#include <time.h>

enum sm_log_level sm_log_level_cur = SM_LOG_INFO;
unsigned sm_log_debug_cur;
static struct sm_log_config cur = { SM_LOG_INFO, 0, false, false, "searchmig" };
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

static char status_line[512];   /* shown at the bottom of the terminal (sm_log_status) */
static bool status_shown;

static const char *const level_names[] = { "error", "warn", "info", "debug" };

static const struct { const char *name; unsigned bit; } dbg_names[] = {
    { "flow", SM_DBG_FLOW }, { "http", SM_DBG_HTTP }, { "record", SM_DBG_RECORD },
    { "kafka", SM_DBG_KAFKA }, { "sink", SM_DBG_SINK }, { "pcap", SM_DBG_PCAP },
    { "bpf", SM_DBG_BPF }, { "tls", SM_DBG_TLS }, { "replay", SM_DBG_REPLAY },
    { "compare", SM_DBG_COMPARE }, { "repo", SM_DBG_REPO }, { "lucene", SM_DBG_LUCENE },
    { "smile", SM_DBG_SMILE }, { "backfill", SM_DBG_BACKFILL }, { "client", SM_DBG_CLIENT },
    { "all", SM_DBG_ALL },
};

void sm_log_init(const struct sm_log_config *cfg)
{
    cur = *cfg;
    if (!cur.ident)
        cur.ident = "searchmig";
    sm_log_level_cur = cfg->debug ? SM_LOG_DEBUG : cfg->level;
    sm_log_debug_cur = cfg->debug;
    if (cur.syslog)
        openlog(cur.ident, LOG_PID, LOG_DAEMON);
}

int sm_log_parse_level(const char *spec, enum sm_log_level *out)
{
    for (size_t i = 0; i < SM_ARRAY_LEN(level_names); i++)
        if (!strcasecmp(spec, level_names[i])) {
            *out = (enum sm_log_level)i;
            return SM_OK;
        }
    if (!strcasecmp(spec, "warning")) {
        *out = SM_LOG_WARN;
        return SM_OK;
    }
    return SM_ECONFIG;
}

int sm_log_parse_debug(const char *spec, unsigned *out)
{
    unsigned bits = 0;
    const char *p = spec;
    while (*p) {
        size_t n = strcspn(p, ",");
        bool found = false;
        for (size_t i = 0; i < SM_ARRAY_LEN(dbg_names); i++)
            if (strlen(dbg_names[i].name) == n && !strncasecmp(p, dbg_names[i].name, n)) {
                bits |= dbg_names[i].bit;
                found = true;
            }
        if (!found && n)
            return SM_ECONFIG;
        p += n;
        if (*p == ',')
            p++;
    }
    *out = bits;
    return SM_OK;
}

static void json_escape(FILE *f, const char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c < 0x20)
            fprintf(f, "\\u%04x", c);
        else
            fputc(c, f);
    }
}

void sm_log_write(enum sm_log_level lvl, const char *ctx, const char *fmt, ...)
{
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (ctx && !strncmp(ctx, "SM_DBG_", 7))
        ctx += 7;

    if (cur.syslog) {
        static const int prio[] = { LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG };
        syslog(prio[lvl], "%s%s%s", ctx ? ctx : "", ctx ? ": " : "", msg);
        return;
    }
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char tbuf[40];
    size_t tl = strftime(tbuf, sizeof(tbuf), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(tbuf + tl, sizeof(tbuf) - tl, ".%03ldZ", ts.tv_nsec / 1000000);

    pthread_mutex_lock(&log_lock);
    if (status_shown)
        fputs("\r\033[K", stderr);   /* the log line goes where the status line was */
    if (cur.json) {
        fprintf(stderr, "{\"ts\":\"%s\",\"level\":\"%s\",\"prog\":\"", tbuf, level_names[lvl]);
        json_escape(stderr, cur.ident);
        fputs("\"", stderr);
        if (ctx) {
            fputs(",\"ctx\":\"", stderr);
            json_escape(stderr, ctx);
            fputs("\"", stderr);
        }
        fputs(",\"msg\":\"", stderr);
        json_escape(stderr, msg);
        fputs("\"}\n", stderr);
    } else {
        fprintf(stderr, "%s %s %s: %s%s%s\n", tbuf, cur.ident, level_names[lvl],
                ctx ? ctx : "", ctx ? ": " : "", msg);
    }
    if (status_shown)
        fputs(status_line, stderr);
    fflush(stderr);
    pthread_mutex_unlock(&log_lock);
}

void sm_log_status(const char *line)
{
    pthread_mutex_lock(&log_lock);
    if (line) {
        snprintf(status_line, sizeof(status_line), "%s", line);
        fprintf(stderr, "\r%s\033[K", status_line);
        status_shown = true;
    } else if (status_shown) {
        fputc('\n', stderr);
        status_shown = false;
    }
    fflush(stderr);
    pthread_mutex_unlock(&log_lock);
}

bool sm_log_ratelimited(struct sm_ratelimit *rl, uint64_t interval_ms, uint64_t *suppressed)
{
    uint64_t now = sm_now_ms();
    if (rl->last_ms == 0 || now - rl->last_ms >= interval_ms) {
        if (suppressed)
            *suppressed = rl->suppressed;
        rl->suppressed = 0;
        rl->last_ms = now ? now : 1;
        return true;
    }
    rl->suppressed++;
    return false;
}
