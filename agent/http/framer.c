/* HTTP/1.1 framing per connection on llhttp (see framer.h).
 *
 * llhttp is driven with pauses: on_headers_complete and on_message_complete
 * return HPE_PAUSED, so llhttp_execute() returns at those points and
 * llhttp_get_error_pos() tells exactly which bytes belong to the head (up to
 * and including its final LF), the body and the next message. After a head,
 * the parser is run once over no bytes: a message without a body completes
 * there, without waiting for the next packet. */
#include "http/framer.h"

#include <sm/buf.h>
#include <sm/llhttp_reason.h>
#include <sm/err.h>
#include <sm/mem.h>
#include <sm/util.h>

#include <inttypes.h>
#include <llhttp.h>
#include <stdio.h>
#include <string.h>

enum st {
    ST_HEAD,          /* waiting for / buffering a message head */
    ST_BODY,          /* head delivered, body in progress */
    ST_SYNC,          /* resynchronising: scanning for a start line */
    ST_WAIT_UPGRADE,  /* C2S after an Upgrade/CONNECT request: held until its response */
    ST_DISCARD,       /* S2C of a mid-stream join before the client side synced */
    ST_DEAD,          /* protocol switched */
};

enum pev { PEV_NONE, PEV_HEADERS, PEV_MESSAGE, PEV_ERROR };

struct pending {
    int8_t method;    /* llhttp_method_t, -1 unknown */
    bool skip;
};

struct hdir {
    struct agent_http_framer *fr;
    enum agent_dir dir;
    llhttp_t parser;
    llhttp_t fresh;           /* parser as llhttp_init() leaves it, .data = this */
    enum st st;
    struct sm_buf head;       /* partial head */
    struct sm_buf sync;       /* bytes kept while resynchronising */
    uint64_t head_ts;
    bool skip_cur;            /* current message is not delivered */
    bool interim_cur;         /* current response is 1xx (not 101) */
    int req_method_cur;       /* responses: method of the paired request */
    enum pev ev;              /* set by the parser callbacks */
};

struct agent_http_framer {
    struct agent_http_cb cb;
    size_t max_header;
    struct agent_http_budget *budget;
    uint64_t accounted;       /* bytes of ours counted in budget->used */
    struct hdir d[2];
    struct pending q[AGENT_HTTP_MAX_PIPELINE];
    size_t qh, qn;
    struct sm_buf upbuf;      /* C2S bytes held in ST_WAIT_UPGRADE */
    bool upgraded;
    struct agent_http_framer_stats stats;
};

/* ---- resynchronisation scanners ----------------------------------------- */

enum chk { CHK_NO, CHK_PARTIAL, CHK_MATCH };

static const char *const sync_methods[] = {
    "GET", "POST", "PUT", "DELETE", "HEAD", "PATCH", "OPTIONS", "TRACE", "CONNECT",
};

static bool is_upper(uint8_t c) { return c >= 'A' && c <= 'Z'; }
static bool is_digit(uint8_t c) { return c >= '0' && c <= '9'; }

/* Matches literal lit at p (n available): CHK_MATCH, CHK_PARTIAL (n too short
 * but consistent) or CHK_NO. */
static enum chk lit(const uint8_t *p, size_t n, const char *s)
{
    size_t l = strlen(s);
    size_t k = n < l ? n : l;
    if (memcmp(p, s, k))
        return CHK_NO;
    return n < l ? CHK_PARTIAL : CHK_MATCH;
}

/* "HTTP/1.x" + line end. */
static enum chk check_eol(const uint8_t *p, size_t n, size_t *used)
{
    if (n == 0)
        return CHK_PARTIAL;
    if (p[0] == '\n') {
        *used = 1;
        return CHK_MATCH;
    }
    if (p[0] != '\r')
        return CHK_NO;
    if (n < 2)
        return CHK_PARTIAL;
    if (p[1] != '\n')
        return CHK_NO;
    *used = 2;
    return CHK_MATCH;
}

static enum chk check_version(const uint8_t *p, size_t n)
{
    enum chk c = lit(p, n, "HTTP/1.");
    if (c != CHK_MATCH)
        return c;
    if (n < 8)
        return CHK_PARTIAL;
    return (p[7] == '0' || p[7] == '1') ? CHK_MATCH : CHK_NO;
}

static enum chk check_request_line(const uint8_t *p, size_t n)
{
    size_t i = 0;
    while (i < n && i < 8 && is_upper(p[i]))
        i++;
    if (i == n) {   /* all uppercase so far: a method prefix? */
        for (size_t m = 0; m < SM_ARRAY_LEN(sync_methods); m++)
            if (lit(p, n, sync_methods[m]) != CHK_NO)
                return CHK_PARTIAL;
        return CHK_NO;
    }
    if (p[i] != ' ' || i < 3)
        return CHK_NO;
    bool known = false, connect = false;
    for (size_t m = 0; m < SM_ARRAY_LEN(sync_methods); m++)
        if (strlen(sync_methods[m]) == i && !memcmp(p, sync_methods[m], i)) {
            known = true;
            connect = !strcmp(sync_methods[m], "CONNECT");
        }
    if (!known)
        return CHK_NO;
    i++;
    if (i == n)
        return CHK_PARTIAL;
    if (!(p[i] == '/' || p[i] == '*' || (p[i] == 'h' && !connect) ||
          (connect && (is_digit(p[i]) || (p[i] | 0x20) >= 'a'))))
        return CHK_NO;
    size_t t0 = i;
    while (i < n && p[i] > 0x20 && p[i] != 0x7f)
        i++;
    if (i == n)
        return CHK_PARTIAL;
    if (p[i] != ' ' || i == t0)
        return CHK_NO;
    i++;
    enum chk c = check_version(p + i, n - i);
    if (c != CHK_MATCH)
        return c;
    i += 8;
    size_t used;
    return check_eol(p + i, n - i, &used);
}

static enum chk check_status_line(const uint8_t *p, size_t n)
{
    enum chk c = check_version(p, n);
    if (c != CHK_MATCH)
        return c;
    size_t i = 8;
    if (i == n)
        return CHK_PARTIAL;
    if (p[i++] != ' ')
        return CHK_NO;
    for (int k = 0; k < 3; k++, i++) {
        if (i == n)
            return CHK_PARTIAL;
        if (!is_digit(p[i]) || (k == 0 && (p[i] < '1' || p[i] > '5')))
            return CHK_NO;
    }
    if (i == n)
        return CHK_PARTIAL;
    if (p[i] == ' ') {
        i++;
        while (i < n && p[i] != '\r' && p[i] != '\n') {
            if ((p[i] < 0x20 && p[i] != '\t') || p[i] == 0x7f)
                return CHK_NO;
            i++;
        }
    }
    size_t used;
    return check_eol(p + i, n - i, &used);
}

static size_t scan(const uint8_t *p, size_t n, bool *partial, bool req)
{
    *partial = false;
    for (size_t i = 0; i < n; i++) {
        if (req ? !is_upper(p[i]) : p[i] != 'H')
            continue;
        enum chk c = req ? check_request_line(p + i, n - i) : check_status_line(p + i, n - i);
        if (c == CHK_MATCH)
            return i;
        if (c == CHK_PARTIAL) {
            *partial = true;
            return i;
        }
    }
    return n;
}

size_t agent_http_scan_request(const uint8_t *p, size_t n, bool *partial)
{
    return scan(p, n, partial, true);
}

size_t agent_http_scan_response(const uint8_t *p, size_t n, bool *partial)
{
    return scan(p, n, partial, false);
}

/* ---- parser glue ----------------------------------------------------------- */

static struct pending *q_front(struct agent_http_framer *fr)
{
    return fr->qn ? &fr->q[fr->qh] : NULL;
}

static void q_pop(struct agent_http_framer *fr)
{
    if (!fr->qn)
        return;
    fr->qh = (fr->qh + 1) % AGENT_HTTP_MAX_PIPELINE;
    fr->qn--;
}

static void q_push(struct agent_http_framer *fr, int method, bool skip)
{
    if (fr->qn == AGENT_HTTP_MAX_PIPELINE) {
        fr->stats.pipeline_overflow++;
        return;
    }
    struct pending *e = &fr->q[(fr->qh + fr->qn) % AGENT_HTTP_MAX_PIPELINE];
    e->method = (int8_t)method;
    e->skip = skip;
    fr->qn++;
}

/* May n more bytes be buffered? (budget->used is settled after each call.) */
static bool budget_ok(struct agent_http_framer *fr, size_t n)
{
    if (!fr->budget || fr->budget->used + n <= fr->budget->max)
        return true;
    fr->stats.budget_refusals++;
    return false;
}

static void account(struct agent_http_framer *fr)
{
    if (!fr->budget)
        return;
    uint64_t total = fr->d[0].head.len + fr->d[1].head.len + fr->d[0].sync.len + fr->d[1].sync.len +
                     fr->upbuf.len;
    fr->budget->used = fr->budget->used - fr->accounted + total;
    fr->accounted = total;
}

/* Pauses after the head. A callback that pauses cannot also return llhttp's
 * "no body" (1) or "upgrade" (2), so those are set the way llhttp sets them
 * for such a return: F_SKIPBODY, and upgrade for a tunnel. */
static int on_headers_complete(llhttp_t *hp)
{
    struct hdir *h = hp->data;
    h->ev = PEV_HEADERS;
    if (h->dir == AGENT_C2S)
        return HPE_PAUSED;
    struct pending *e = q_front(h->fr);
    int m = e ? e->method : -1;
    h->req_method_cur = m;
    unsigned st = hp->status_code;
    if (m == HTTP_HEAD || st == 204 || st == 304 || (st >= 100 && st < 200))
        hp->flags |= F_SKIPBODY;      /* no body whatever the headers say */
    if (m == HTTP_CONNECT && st >= 200 && st < 300) {
        hp->flags |= F_SKIPBODY;      /* tunnel: no body, no further responses */
        hp->upgrade = 1;
    }
    return HPE_PAUSED;
}

static int on_message_complete(llhttp_t *hp)
{
    struct hdir *h = hp->data;
    h->ev = PEV_MESSAGE;
    return HPE_PAUSED;
}

static const llhttp_settings_t parser_settings = {
    .on_headers_complete = on_headers_complete,
    .on_message_complete = on_message_complete,
};

/* A fresh parser per message: a copy of one initialised once per direction
 * (initialising one per message was 3% of the agent's CPU with http_parser:
 * a call into the library, a memset and the partial-store stalls that follow
 * it). */
static void parser_reset(struct hdir *h)
{
    h->parser = h->fresh;
}

/* Runs the parser over n bytes (n may be 0: the parser moves on as far as it
 * can without input) or, with eof, over the end of the stream. *used: bytes
 * taken, up to the pause or the error. */
static enum pev run(struct hdir *h, const uint8_t *p, size_t n, size_t *used, bool eof)
{
    static const uint8_t none[1];
    h->ev = PEV_NONE;
    llhttp_errno_t e = eof ? llhttp_finish(&h->parser) : llhttp_execute(&h->parser, (const char *)(p ? p : none), n);
    *used = e == HPE_OK || eof ? n : (size_t)((const uint8_t *)llhttp_get_error_pos(&h->parser) - (p ? p : none));
    if (e == HPE_PAUSED || e == HPE_PAUSED_UPGRADE) {
        if (e == HPE_PAUSED)
            llhttp_resume(&h->parser);
        else
            llhttp_resume_after_upgrade(&h->parser);
        return h->ev;
    }
    if (e != HPE_OK)
        return PEV_ERROR;
    return h->ev;   /* llhttp_finish() may have ended a close-delimited message */
}

/* why the parser stopped, for the broken-message report */
static const char *perr(const struct hdir *h)
{
    return sm_llhttp_reason(&h->parser, llhttp_get_errno(&h->parser));
}

/* ---- state changes --------------------------------------------------------- */

static const char *dir_name(enum agent_dir dir)
{
    return dir == AGENT_C2S ? "client->server" : "server->client";
}

static void to_sync(struct hdir *h)
{
    sm_buf_reset(&h->head);
    sm_buf_reset(&h->sync);
    parser_reset(h);
    h->skip_cur = false;
    h->interim_cur = false;
    h->st = ST_SYNC;
}

/* The message in progress is broken: report it (unless it was skipped) and resync. */
static void broken(struct hdir *h, const char *why, uint64_t ts)
{
    struct agent_http_framer *fr = h->fr;
    bool in_msg = h->st == ST_BODY || (h->st == ST_HEAD && h->head.len > 0);
    if (h->dir == AGENT_C2S && h->st == ST_HEAD && h->head.len > 0)
        q_push(fr, -1, false);        /* its response will still come */
    if (h->dir == AGENT_S2C && in_msg && !h->interim_cur)
        q_pop(fr);
    fr->stats.broken++;
    if (fr->cb.broken)
        fr->cb.broken(fr->cb.arg, h->dir, in_msg, why, ts);
    to_sync(h);
}

/* The parser refused the body (or what follows a head): counted, reported, resync. */
static void body_error(struct hdir *h, uint64_t ts)
{
    char why[160];
    h->fr->stats.parse_errors++;
    snprintf(why, sizeof(why), "HTTP %s body framing error: %s", h->dir == AGENT_C2S ? "request" : "response",
             perr(h));
    broken(h, why, ts);
}

static void do_upgrade(struct agent_http_framer *fr, const char *why, uint64_t ts)
{
    fr->upgraded = true;
    fr->d[0].st = fr->d[1].st = ST_DEAD;
    sm_buf_free(&fr->upbuf);
    if (fr->cb.upgrade)
        fr->cb.upgrade(fr->cb.arg, why, ts);
}

static void feed_dir(struct agent_http_framer *fr, struct hdir *h, const uint8_t *p, size_t n,
                     uint64_t ts);

/* Delivers the head in data (h->head, or the caller's bytes when the whole
 * head came in one piece: no copy). */
static void deliver_head(struct hdir *h, const uint8_t *data, size_t len)
{
    struct agent_http_framer *fr = h->fr;
    struct agent_http_head hd = { 0 };
    hd.dir = h->dir;
    hd.data = data;
    hd.len = len;
    hd.ts_ns = h->head_ts;
    const uint8_t *lf = memchr(hd.data, '\n', hd.len);
    hd.first_line_len = lf ? (uint32_t)(lf - hd.data + 1) : (uint32_t)hd.len;
    hd.req_method = -1;
    if (h->dir == AGENT_C2S) {
        hd.method = h->parser.method;
        hd.method_name = llhttp_method_name((llhttp_method_t)h->parser.method);
        const uint8_t *sp = memchr(hd.data, ' ', hd.first_line_len);
        if (sp) {
            const uint8_t *t = sp + 1;
            const uint8_t *end = hd.data + hd.first_line_len;
            const uint8_t *sp2 = memchr(t, ' ', (size_t)(end - t));
            hd.target = (const char *)t;
            hd.target_len = sp2 ? (size_t)(sp2 - t) : 0;
        }
        int v = fr->cb.head ? fr->cb.head(fr->cb.arg, &hd) : AGENT_HTTP_KEEP;
        h->skip_cur = v == AGENT_HTTP_SKIP;
        q_push(fr, h->parser.method, h->skip_cur);
    } else {
        struct pending *e = q_front(fr);
        hd.status = h->parser.status_code;
        hd.interim = hd.status >= 100 && hd.status < 200 && hd.status != 101;
        hd.req_method = h->req_method_cur;
        h->interim_cur = hd.interim;
        h->skip_cur = e && e->skip;
        if (!h->skip_cur && fr->cb.head)
            fr->cb.head(fr->cb.arg, &hd);
    }
    sm_buf_reset(&h->head);
}

static void message_end(struct hdir *h, uint64_t ts)
{
    struct agent_http_framer *fr = h->fr;
    bool skip = h->skip_cur;
    h->skip_cur = false;
    h->st = ST_HEAD;
    if (h->dir == AGENT_C2S) {
        fr->stats.requests++;
        bool upgrade = h->parser.upgrade;
        if (skip) {
            if (fr->cb.end_skipped)
                fr->cb.end_skipped(fr->cb.arg, AGENT_C2S, ts);
        } else if (fr->cb.end) {
            fr->cb.end(fr->cb.arg, AGENT_C2S, ts);
        }
        parser_reset(h);
        if (upgrade && !fr->upgraded)
            h->st = ST_WAIT_UPGRADE;
        return;
    }
    bool interim = h->interim_cur;
    h->interim_cur = false;
    unsigned st = h->parser.status_code;
    int m = h->req_method_cur;
    bool upgrade = st == 101 || (m == HTTP_CONNECT && st >= 200 && st < 300);
    if (interim) {
        fr->stats.interim++;
    } else {
        fr->stats.responses++;
        q_pop(fr);
    }
    if (skip) {
        if (fr->cb.end_skipped)
            fr->cb.end_skipped(fr->cb.arg, AGENT_S2C, ts);
    } else if (fr->cb.end) {
        fr->cb.end(fr->cb.arg, AGENT_S2C, ts);
    }
    parser_reset(h);
    if (fr->upgraded)
        return;
    if (upgrade) {
        char why[128];
        if (st == 101)
            snprintf(why, sizeof(why), "protocol upgrade (101 Switching Protocols): capture of this connection stopped");
        else
            snprintf(why, sizeof(why), "CONNECT tunnel established (%u): capture of this connection stopped", st);
        do_upgrade(fr, why, ts);
        return;
    }
    struct hdir *c = &fr->d[AGENT_C2S];
    if (!interim && c->st == ST_WAIT_UPGRADE && fr->qn == 0) {
        /* the upgrade was refused: what the client sent meanwhile is HTTP */
        size_t len;
        uint8_t *held = sm_buf_steal(&fr->upbuf, &len);
        sm_buf_init(&fr->upbuf, fr->max_header);
        c->st = ST_HEAD;
        if (held) {
            feed_dir(fr, c, held, len, ts);
            sm_free(held);
        }
    }
}

/* ---- the byte loop --------------------------------------------------------- */

static void feed_dir(struct agent_http_framer *fr, struct hdir *h, const uint8_t *p, size_t n,
                     uint64_t ts)
{
    /* seg[0]: bytes taken back from the sync buffer (owned), processed before
     * the rest of the caller's bytes in seg[1]. */
    uint8_t *owned = NULL;
    const uint8_t *sp[2] = { NULL, p };
    size_t sn[2] = { 0, n };
    bool req = h->dir == AGENT_C2S;

    for (;;) {
        int k = sn[0] ? 0 : 1;
        if (!sn[k])
            break;
        const uint8_t *q = sp[k];
        size_t qn = sn[k];
        size_t used = 0;   /* bytes of q accounted for in this step */

        switch (h->st) {
        case ST_DEAD:
            goto out;
        case ST_DISCARD:
            fr->stats.skipped_bytes += qn;
            used = qn;
            break;
        case ST_WAIT_UPGRADE:
            if (!budget_ok(fr, qn) || sm_buf_append(&fr->upbuf, q, qn) != SM_OK) {
                do_upgrade(fr, "protocol upgrade requested and client kept sending: capture of this "
                               "connection stopped", ts);
                goto out;
            }
            used = qn;
            break;
        case ST_SYNC: {
            size_t room = AGENT_HTTP_SYNC_MAX - h->sync.len;
            size_t take = qn < room ? qn : room;
            if (!budget_ok(fr, take) || sm_buf_append(&h->sync, q, take) != SM_OK) {
                fr->stats.skipped_bytes += take;   /* no memory: drop, stay in sync */
                used = take;
                break;
            }
            used = take;
            bool partial;
            size_t at = scan(h->sync.data, h->sync.len, &partial, req);
            if (at == h->sync.len) {
                fr->stats.skipped_bytes += h->sync.len;
                sm_buf_reset(&h->sync);
                break;
            }
            fr->stats.skipped_bytes += at;
            sm_buf_consume(&h->sync, at);
            if (partial) {
                if (h->sync.len == AGENT_HTTP_SYNC_MAX) {   /* a "line" too long to be one */
                    sm_buf_consume(&h->sync, 1);
                    fr->stats.skipped_bytes++;
                }
                break;
            }
            /* a start line: replay the kept bytes as a new message */
            size_t len;
            uint8_t *held = sm_buf_steal(&h->sync, &len);
            sm_buf_init(&h->sync, AGENT_HTTP_SYNC_MAX);
            sp[k] += used;
            sn[k] -= used;
            used = 0;
            /* seg[0], if it was being read, was appended whole (the sync
             * buffer was empty): its bytes live on in held */
            sm_free(owned);
            owned = held;
            sp[0] = held;
            sn[0] = len;
            fr->stats.resyncs++;
            h->st = ST_HEAD;
            parser_reset(h);
            if (req && fr->d[AGENT_S2C].st == ST_DISCARD)
                to_sync(&fr->d[AGENT_S2C]);
            continue;
        }
        case ST_HEAD: {
            if (h->head.len == 0) {
                /* stray CR/LF between messages belong to none: skip them */
                while (used < qn && (q[used] == '\r' || q[used] == '\n'))
                    used++;
                if (used) {
                    fr->stats.skipped_bytes += used;
                    break;
                }
                h->head_ts = ts;
            }
            size_t c;
            enum pev ev = run(h, q, qn, &c, false);
            if (ev == PEV_NONE) {
                if (!budget_ok(fr, qn)) {
                    broken(h, "HTTP buffer budget for all connections exhausted (--max-http-buffered)", ts);
                } else if (sm_buf_append(&h->head, q, qn) != SM_OK) {
                    char why[128];
                    snprintf(why, sizeof(why), "%s header block larger than %zu bytes",
                             req ? "request" : "response", fr->max_header);
                    fr->stats.oversized_heads++;
                    broken(h, why, ts);
                }
                used = qn;
                break;
            }
            if (ev == PEV_ERROR) {
                char why[160];
                fr->stats.parse_errors++;
                snprintf(why, sizeof(why), "HTTP %s parse error: %s", req ? "request" : "response", perr(h));
                bool had = h->head.len > 0;
                broken(h, why, ts);
                used = c;
                if (used == 0 && !had) {   /* resync must make progress */
                    used = 1;
                    fr->stats.skipped_bytes++;
                }
                break;
            }
            if (ev == PEV_MESSAGE) {   /* cannot happen before headers; be safe */
                used = c;
                message_end(h, ts);
                break;
            }
            /* PEV_HEADERS: the head is q[0..c) (up to its final LF) */
            size_t hend = c;
            if (!budget_ok(fr, hend)) {
                broken(h, "HTTP buffer budget for all connections exhausted (--max-http-buffered)", ts);
                used = hend;
                break;
            }
            /* a head that came whole is delivered from the caller's bytes
             * (same size limit as when buffered: sm_buf's max) */
            bool direct = h->head.len == 0 && hend <= h->head.max;
            if (!direct && sm_buf_append(&h->head, q, hend) != SM_OK) {
                char why[128];
                snprintf(why, sizeof(why), "%s header block larger than %zu bytes",
                         req ? "request" : "response", fr->max_header);
                fr->stats.oversized_heads++;
                broken(h, why, ts);
                used = hend;
                break;
            }
            h->st = ST_BODY;
            if (direct)
                deliver_head(h, q, hend);
            else
                deliver_head(h, h->head.data, h->head.len);
            if (fr->upgraded)
                goto out;
            used = hend;
            /* no body (HEAD, 204, a request without length...): the message
             * ends here, not when the next bytes come */
            size_t c0;
            enum pev ev0 = run(h, q + hend, 0, &c0, false);
            if (ev0 == PEV_MESSAGE) {
                message_end(h, ts);
                if (fr->upgraded)
                    goto out;
            } else if (ev0 == PEV_ERROR) {
                body_error(h, ts);
            }
            break;
        }
        case ST_BODY: {
            size_t c;
            enum pev ev = run(h, q, qn, &c, false);
            size_t end = ev == PEV_NONE ? qn : c;
            if (end && !h->skip_cur && fr->cb.body)
                fr->cb.body(fr->cb.arg, h->dir, q, end, ts);
            used = end;
            if (ev == PEV_MESSAGE) {
                message_end(h, ts);
                if (fr->upgraded)
                    goto out;
            } else if (ev == PEV_ERROR) {
                body_error(h, ts);
                if (used == 0) {
                    used = 1;
                    fr->stats.skipped_bytes++;
                }
            } else if (ev == PEV_HEADERS) {   /* cannot happen in a body: treat as broken */
                broken(h, "HTTP framing error: headers inside a body", ts);
                if (used == 0) {
                    used = 1;
                    fr->stats.skipped_bytes++;
                }
            }
            break;
        }
        }
        sp[k] += used;
        sn[k] -= used;
    }
out:
    sm_free(owned);
}

/* ---- public API ------------------------------------------------------------ */

struct agent_http_framer *agent_http_framer_new(const struct agent_http_limits *lim,
                                                const struct agent_http_cb *cb, bool mid_stream)
{
    struct agent_http_framer *fr = sm_calloc(1, sizeof(*fr));
    if (!fr)
        return NULL;
    fr->cb = *cb;
    fr->max_header = lim && lim->max_header ? lim->max_header : AGENT_HTTP_MAX_HEADER_DEFAULT;
    fr->budget = lim ? lim->budget : NULL;
    sm_buf_init(&fr->upbuf, fr->max_header);
    for (int i = 0; i < 2; i++) {
        struct hdir *h = &fr->d[i];
        h->fr = fr;
        h->dir = (enum agent_dir)i;
        sm_buf_init(&h->head, fr->max_header);
        sm_buf_init(&h->sync, AGENT_HTTP_SYNC_MAX);
        llhttp_init(&h->fresh, h->dir == AGENT_C2S ? HTTP_REQUEST : HTTP_RESPONSE, &parser_settings);
        /* the server took it: header values with bytes RFC 9110 does not
         * allow, and bare LF line ends, are framed as http_parser did */
        llhttp_set_lenient_headers(&h->fresh, 1);
        h->fresh.data = h;
        parser_reset(h);
        h->req_method_cur = -1;
        h->st = ST_HEAD;
    }
    if (mid_stream) {
        fr->d[AGENT_C2S].st = ST_SYNC;
        fr->d[AGENT_S2C].st = ST_DISCARD;
    }
    return fr;
}

void agent_http_framer_free(struct agent_http_framer *fr)
{
    if (!fr)
        return;
    if (fr->budget)
        fr->budget->used -= fr->accounted;
    for (int i = 0; i < 2; i++) {
        sm_buf_free(&fr->d[i].head);
        sm_buf_free(&fr->d[i].sync);
    }
    sm_buf_free(&fr->upbuf);
    sm_free(fr);
}

void agent_http_framer_feed(struct agent_http_framer *fr, enum agent_dir dir, const uint8_t *p,
                            size_t n, uint64_t ts_ns)
{
    if (!fr || fr->upgraded || n == 0)
        return;
    feed_dir(fr, &fr->d[dir == AGENT_S2C ? 1 : 0], p, n, ts_ns);
    account(fr);
}

void agent_http_framer_gap(struct agent_http_framer *fr, enum agent_dir dir, uint64_t lost,
                           const char *why, uint64_t ts_ns)
{
    if (!fr || fr->upgraded)
        return;
    struct hdir *h = &fr->d[dir == AGENT_S2C ? 1 : 0];
    if (h->st == ST_DISCARD)
        return;
    char msg[200];
    if (lost)
        snprintf(msg, sizeof(msg), "capture gap: %" PRIu64 " bytes lost in %s stream (%s)", lost,
                 dir_name(h->dir), why ? why : "unknown");
    else
        snprintf(msg, sizeof(msg), "capture gap: bytes lost in %s stream (%s)", dir_name(h->dir),
                 why ? why : "unknown");
    if (h->st == ST_WAIT_UPGRADE) {
        sm_buf_reset(&fr->upbuf);
    }
    broken(h, msg, ts_ns);
    account(fr);
}

void agent_http_framer_eof(struct agent_http_framer *fr, uint64_t ts_ns)
{
    if (!fr || fr->upgraded)
        return;
    struct hdir *h = &fr->d[AGENT_S2C];
    if (h->st != ST_BODY && !(h->st == ST_HEAD && h->head.len))
        return;
    size_t c;
    enum pev ev = run(h, NULL, 0, &c, true);
    if (ev == PEV_MESSAGE && h->st == ST_BODY)
        message_end(h, ts_ns);
    account(fr);
}

bool agent_http_framer_upgraded(const struct agent_http_framer *fr)
{
    return fr && fr->upgraded;
}

bool agent_http_framer_request_open(const struct agent_http_framer *fr)
{
    return fr && fr->d[AGENT_C2S].st == ST_BODY;
}

void agent_http_framer_stats(const struct agent_http_framer *fr, struct agent_http_framer_stats *out)
{
    *out = fr->stats;
}
