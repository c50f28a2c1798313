#define _GNU_SOURCE   /* memrchr */
/* TrafficStream file forms: base64 lines (optionally "<key>|"), plain or gzip.
 * Writer with size rotation; reader that auto-detects gzip, skips and counts
 * malformed lines and never trusts its input. */
#include <sm/buf.h>
#include <sm/err.h>
#include <sm/log.h>
#include <sm/mem.h>
#include <sm/ts.h>
#include <sm/util.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>
#include <zlib.h>

/* ========================================================================= */
/* writer                                                                    */
/* ========================================================================= */

struct sm_ts_writer {
    struct sm_ts_writer_conf conf;
    char *path;          /* conf.path copy */
    char *cur_path;      /* file being written */
    unsigned seq;        /* rotation number of cur (0 = no rotation) */
    FILE *fp;            /* plain */
    gzFile gz;           /* gzip */
    bool is_stdout;
    uint64_t records;    /* in the current file */
    uint64_t lines_bytes; /* uncompressed bytes written to the current file */
    uint8_t *enc;        /* encode buffer */
    size_t enc_cap;
    char *line;          /* base64 line buffer; plain files: lines not yet written (line_len) */
    size_t line_cap, line_len;
    uint64_t line_recs;  /* records in line[0, line_len) (accepted, not yet written) */
    uint64_t lost;       /* records accepted and then lost by a failed write */
    uint64_t gz_pending; /* gzip: records accepted since the last successful flush */
    bool gz_broken;      /* a gzip write failed: the next record goes to a new file */
    uint64_t gz_retry_at; /* ... not before this (sm_now_ms), not one file per record */
};

/* Plain files: lines are encoded into one buffer and written with one
 * write() per WRITE_BATCH bytes (stdio unbuffered), instead of going through
 * a 4 KiB stdio buffer (2-3 write() calls per line of a few KiB: offline
 * bench, 300k system calls for 2 GB). Flushed when full, by
 * sm_ts_writer_flush(), at rotation and at close. */
#define WRITE_BATCH (1024u * 1024u)

static bool ends_with(const char *s, const char *suf)
{
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && !strcmp(s + a - b, suf);
}

/* Name of rotated file number seq. */
static char *rotated_name(const char *path, unsigned seq)
{
    char buf[PATH_MAX];
    int n;
    if (ends_with(path, ".gz"))
        n = snprintf(buf, sizeof(buf), "%.*s.%06u.gz", (int)(strlen(path) - 3), path, seq);
    else
        n = snprintf(buf, sizeof(buf), "%s.%06u", path, seq);
    if (n < 0 || (size_t)n >= sizeof(buf))
        return NULL;
    return sm_strdup(buf);
}

/* Highest rotation number already present next to path (0 if none). */
static unsigned highest_seq(const char *path)
{
    char dir[PATH_MAX], base[PATH_MAX];
    const char *slash = strrchr(path, '/');
    if (slash) {
        snprintf(dir, sizeof(dir), "%.*s", (int)(slash - path) ? (int)(slash - path) : 1, path);
        snprintf(base, sizeof(base), "%s", slash + 1);
    } else {
        snprintf(dir, sizeof(dir), ".");
        snprintf(base, sizeof(base), "%s", path);
    }
    bool gz = ends_with(base, ".gz");
    if (gz)
        base[strlen(base) - 3] = 0;
    size_t bl = strlen(base);
    unsigned best = 0;
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        const char *nm = de->d_name;
        if (strncmp(nm, base, bl) || nm[bl] != '.')
            continue;
        const char *num = nm + bl + 1;
        size_t digits = strspn(num, "0123456789");
        if (digits == 0 || digits > 9)
            continue;
        if (gz ? strcmp(num + digits, ".gz") : num[digits] != 0)
            continue;
        unsigned v = 0;
        for (size_t i = 0; i < digits; i++)
            v = v * 10 + (unsigned)(num[i] - '0');
        if (v > best)
            best = v;
    }
    closedir(d);
    return best;
}

static int open_current(struct sm_ts_writer *w, char *err, size_t errlen)
{
    const char *target;
    if (w->is_stdout) {
        target = "-";
    } else if (w->conf.rotate_bytes || w->gz_broken) {
        /* after a broken gzip stream even an unrotated output goes on in a new file
         * (<name>.NNNNNN.gz): appended to the broken one it could not be read */
        if (w->gz_broken && !w->conf.rotate_bytes && !w->seq)
            w->seq = highest_seq(w->path);
        sm_free(w->cur_path);
        w->cur_path = rotated_name(w->path, ++w->seq);
        if (!w->cur_path)
            return sm_errf(err, errlen, SM_ECONFIG, "%s: output path too long", w->path);
        target = w->cur_path;
    } else {
        target = w->path;
        if (!w->cur_path && !(w->cur_path = sm_strdup(w->path)))
            return sm_errf(err, errlen, SM_ENOMEM, "%s: out of memory", w->path);
    }
    w->records = 0;
    w->lines_bytes = 0;
    if (w->conf.gzip) {
        char mode[8];
        snprintf(mode, sizeof(mode), "%s%d", w->conf.rotate_bytes ? "wb" : "ab",
                 w->conf.gzip_level > 0 && w->conf.gzip_level <= 9 ? w->conf.gzip_level : 6);
        if (w->is_stdout) {
            int fd = dup(STDOUT_FILENO);
            w->gz = fd >= 0 ? gzdopen(fd, mode) : NULL;
            if (!w->gz && fd >= 0)
                close(fd);
        } else {
            int fd = open(target, O_WRONLY | O_CREAT | O_CLOEXEC |
                                      (w->conf.rotate_bytes ? O_EXCL : O_APPEND), 0644);
            w->gz = fd >= 0 ? gzdopen(fd, mode) : NULL;
            if (!w->gz && fd >= 0)
                close(fd);
        }
        if (!w->gz)
            return sm_errf(err, errlen, SM_EIO, "%s: cannot open for writing: %s", target, strerror(errno));
        gzbuffer(w->gz, 64 * 1024);
    } else {
        if (w->is_stdout) {
            w->fp = stdout;
        } else {
            int fd = open(target, O_WRONLY | O_CREAT | O_CLOEXEC |
                                      (w->conf.rotate_bytes ? O_EXCL : O_APPEND), 0644);
            w->fp = fd >= 0 ? fdopen(fd, "ab") : NULL;
            if (!w->fp && fd >= 0)
                close(fd);
            if (w->fp)
                setvbuf(w->fp, NULL, _IONBF, 0);   /* we batch (WRITE_BATCH) */
        }
        if (!w->fp)
            return sm_errf(err, errlen, SM_EIO, "%s: cannot open for writing: %s", target, strerror(errno));
    }
    w->gz_broken = false;   /* only once a new file is open: a failed open keeps waiting */
    sm_dbg(SM_DBG_SINK, "ts writer: writing %s", target);
    return SM_OK;
}

/* Writes the batched lines of a plain file. When the write fails (disk
 * full, I/O error), the batch's records are lost (counted in w->lost, except
 * `mine`: the caller's own record, which it reports failed itself) and, on a
 * regular file, the part of the batch that reached the file is cut off again,
 * so the file keeps whole lines only and later lines do not get glued to a
 * broken one. */
static int batch_out_mine(struct sm_ts_writer *w, uint64_t mine, char *err, size_t errlen)
{
    if (!w->line_len || !w->fp)
        return SM_OK;
    size_t n = w->line_len;
    uint64_t recs = w->line_recs;
    w->line_len = 0;
    w->line_recs = 0;
    int cut;
    struct iovec iov = { w->line, n };
    int e = sm_fd_append_whole(fileno(w->fp), &iov, 1, &cut);
    if (!e)
        return SM_OK;
    w->lost += recs > mine ? recs - mine : 0;
    w->records -= w->records >= recs - mine ? recs - mine : w->records;   /* the file's own count */
    return sm_errf(err, errlen, SM_EIO, "%s: write failed: %s (%" PRIu64 " record%s lost%s)",
                   w->cur_path ? w->cur_path : "-", strerror(e), recs, recs == 1 ? "" : "s",
                   cut > 0 ? ", partial lines removed" : cut < 0 ? ", partial lines could not be removed" : "");
}

static int batch_out(struct sm_ts_writer *w, char *err, size_t errlen)
{
    return batch_out_mine(w, 0, err, errlen);
}

/* A gzip stream that failed to write is broken for good: what zlib held since
 * the last flush is lost, and the file is closed; the next record opens a new
 * file, not before conf.gz_retry_ms (one file per record while the disk stays
 * full would be no better). */
static int close_current(struct sm_ts_writer *w, char *err, size_t errlen);
static void gz_abandon(struct sm_ts_writer *w)
{
    w->lost += w->gz_pending;
    w->records -= w->records >= w->gz_pending ? w->gz_pending : w->records;
    w->gz_pending = 0;
    if (w->is_stdout)
        return;
    close_current(w, NULL, 0);
    w->gz_broken = true;
    w->gz_retry_at = sm_now_ms() + (w->conf.gz_retry_ms ? w->conf.gz_retry_ms : 10000);
}

uint64_t sm_ts_writer_lost(const struct sm_ts_writer *w)
{
    return w ? w->lost : 0;
}

/* Closes the current file and reports it. */
static int close_current(struct sm_ts_writer *w, char *err, size_t errlen)
{
    int rc = batch_out(w, err, errlen);
    uint64_t bytes = 0;
    const char *name = w->cur_path ? w->cur_path : "-";
    if (w->gz) {
        bytes = (uint64_t)gzoffset(w->gz);
        int zr = gzclose(w->gz);
        w->gz = NULL;
        if (zr != Z_OK) {
            w->lost += w->gz_pending;
            rc = sm_errf(err, errlen, SM_EIO, "%s: gzip close failed (%d)", name, zr);
        }
        w->gz_pending = 0;
        if (!w->is_stdout) {
            struct stat st;
            if (stat(name, &st) == 0)
                bytes = (uint64_t)st.st_size;
        }
    } else if (w->fp) {
        if (w->is_stdout) {
            if (fflush(w->fp) && rc == SM_OK)
                rc = sm_errf(err, errlen, SM_EIO, "stdout: %s", strerror(errno));
        } else {
            bytes = (uint64_t)ftello(w->fp);
            if (fclose(w->fp) && rc == SM_OK)
                rc = sm_errf(err, errlen, SM_EIO, "%s: close: %s", name, strerror(errno));
        }
        w->fp = NULL;
    } else {
        return SM_OK;
    }
    if (w->conf.on_close)
        w->conf.on_close(w->conf.arg, name, bytes, w->records);
    return rc;
}

struct sm_ts_writer *sm_ts_writer_open(const struct sm_ts_writer_conf *conf, char *err, size_t errlen)
{
    if (!conf || !conf->path || !*conf->path) {
        sm_errf(err, errlen, SM_EINVAL, "ts writer: no output path");
        return NULL;
    }
    struct sm_ts_writer *w = sm_calloc(1, sizeof(*w));
    if (!w || !(w->path = sm_strdup(conf->path))) {
        sm_free(w);
        sm_errf(err, errlen, SM_ENOMEM, "ts writer: out of memory");
        return NULL;
    }
    w->conf = *conf;
    w->conf.path = w->path;
    w->is_stdout = !strcmp(conf->path, "-");
    if (w->is_stdout)
        w->conf.rotate_bytes = 0;
    if (w->conf.rotate_bytes)
        w->seq = highest_seq(w->path);
    if (open_current(w, err, errlen)) {
        sm_free(w->cur_path);
        sm_free(w->path);
        sm_free(w);
        return NULL;
    }
    return w;
}

int sm_ts_writer_write_raw(struct sm_ts_writer *w, const char *key, const uint8_t *data, size_t len,
                           char *err, size_t errlen)
{
    if (!w->fp && !w->gz) {
        if (w->gz_broken && sm_now_ms() < w->gz_retry_at)
            return sm_errf(err, errlen, SM_EIO, "%s: gzip output broken by a failed write; a new file is "
                           "tried %" PRIu64 " ms from now", w->path, w->gz_retry_at - sm_now_ms());
        int rc = open_current(w, err, errlen);
        if (rc) {
            if (w->gz_broken)   /* still no room: wait again */
                w->gz_retry_at = sm_now_ms() + (w->conf.gz_retry_ms ? w->conf.gz_retry_ms : 10000);
            return rc;
        }
    }
    size_t keylen = w->conf.with_key && key ? strlen(key) : 0;
    size_t need = keylen + 1 + sm_base64_enc_len(len) + 2;
    if (w->line_len && w->line_len + need > WRITE_BATCH) {
        int rc = batch_out(w, err, errlen);
        if (rc)
            return rc;
    }
    if (w->line_len + need > w->line_cap) {
        size_t cap = w->fp && w->line_len + need < WRITE_BATCH ? WRITE_BATCH : w->line_len + need;
        char *nl = sm_realloc(w->line, cap);
        if (!nl)
            return sm_errf(err, errlen, SM_ENOMEM, "ts writer: out of memory");
        w->line = nl;
        w->line_cap = cap;
    }
    char *line = w->line + w->line_len;
    size_t n = 0;
    if (w->conf.with_key) {
        for (size_t i = 0; i < keylen; i++) {
            char c = key[i];
            line[n++] = (c == '\n' || c == '\r') ? ' ' : c;   /* keep one record per line */
        }
        line[n++] = '|';
    }
    n += sm_base64_encode(data, len, line + n);
    line[n++] = '\n';
    const char *name = w->cur_path ? w->cur_path : "-";
    if (w->gz) {
        if (gzwrite(w->gz, line, (unsigned)n) != (int)n) {
            int zerr;
            const char *m = gzerror(w->gz, &zerr);
            int rc = sm_errf(err, errlen, SM_EIO, "%s: write failed: %s (the gzip stream is broken: "
                             "later records go to a new file)", name, zerr == Z_ERRNO ? strerror(errno) : m);
            gz_abandon(w);
            return rc;
        }
        w->gz_pending++;
    } else {
        w->line_len += n;
        w->line_recs++;
        if (w->line_len >= WRITE_BATCH) {
            int rc = batch_out_mine(w, 1, err, errlen);   /* this record fails with the batch */
            if (rc)
                return rc;
        }
    }
    w->records++;
    w->lines_bytes += n;
    if (w->conf.rotate_bytes && w->lines_bytes >= w->conf.rotate_bytes)
        return close_current(w, err, errlen);   /* the next write opens the next file */
    return SM_OK;
}

int sm_ts_writer_write(struct sm_ts_writer *w, const TrafficStream *ts, char *err, size_t errlen)
{
    size_t n = sm_ts_encoded_size(ts);
    if (n > w->enc_cap) {
        uint8_t *b = sm_realloc(w->enc, n ? n : 1);
        if (!b)
            return sm_errf(err, errlen, SM_ENOMEM, "ts writer: out of memory");
        w->enc = b;
        w->enc_cap = n;
    }
    size_t len;
    int rc = sm_ts_encode(ts, w->enc, w->enc_cap, &len);
    if (rc)
        return sm_errf(err, errlen, rc, "ts writer: encode failed: %s", sm_strerror(rc));
    return sm_ts_writer_write_raw(w, ts->connectionid, w->enc, len, err, errlen);
}

int sm_ts_writer_flush(struct sm_ts_writer *w, char *err, size_t errlen)
{
    const char *name = w->cur_path ? w->cur_path : "-";
    if (w->gz) {
        if (gzflush(w->gz, Z_SYNC_FLUSH) != Z_OK) {
            int rc = sm_errf(err, errlen, SM_EIO, "%s: flush failed (the gzip stream is broken: later records "
                             "go to a new file)", name);
            gz_abandon(w);
            return rc;
        }
        w->gz_pending = 0;
    }
    int rc = batch_out(w, err, errlen);
    if (rc)
        return rc;
    if (w->fp && fflush(w->fp))
        return sm_errf(err, errlen, SM_EIO, "%s: flush failed: %s", name, strerror(errno));
    return SM_OK;
}

const char *sm_ts_writer_path(const struct sm_ts_writer *w)
{
    return w && (w->fp || w->gz) ? (w->cur_path ? w->cur_path : "-") : NULL;
}

int sm_ts_writer_close(struct sm_ts_writer *w, char *err, size_t errlen)
{
    if (!w)
        return SM_OK;
    int rc = close_current(w, err, errlen);
    sm_free(w->enc);
    sm_free(w->line);
    sm_free(w->cur_path);
    sm_free(w->path);
    sm_free(w);
    return rc;
}

/* ========================================================================= */
/* reader                                                                    */
/* ========================================================================= */

#define IN_CHUNK  (64u * 1024u)
#define OUT_CHUNK (64u * 1024u)

struct sm_ts_reader {
    char *name;
    int fd;              /* -1 for memory */
    bool own_fd;
    const uint8_t *mem;
    size_t mem_len, mem_pos;

    uint8_t *in;         /* raw input window */
    size_t in_len, in_pos;
    bool in_eof;

    bool detected, gz, zinit, zdone;
    z_stream zs;

    uint8_t *out;        /* decompressed (or raw) bytes not yet split into lines */
    size_t out_len, out_pos;
    bool out_eof;        /* no more bytes will come */

    struct sm_buf line;  /* current line, capped at max_line + 1 */
    size_t max_line;
    bool too_long;       /* current line exceeded max_line: being skipped */

    uint8_t *dec;        /* base64-decoded record */
    size_t dec_cap;
    uint64_t lineno;

    int sticky;          /* fatal input error, returned again on every call */
    char sticky_msg[256];

    sm_ts_bad_line_cb bad_cb;
    void *bad_arg;
    struct sm_ratelimit rl;
    struct sm_ts_reader_stats st;
};

static struct sm_ts_reader *reader_new(const char *name, char *err, size_t errlen)
{
    struct sm_ts_reader *r = sm_calloc(1, sizeof(*r));
    if (!r || !(r->name = sm_strdup(name ? name : "input")) || !(r->in = sm_malloc(IN_CHUNK)) ||
        !(r->out = sm_malloc(OUT_CHUNK))) {
        if (r) {
            sm_free(r->name);
            sm_free(r->in);
            sm_free(r);
        }
        sm_errf(err, errlen, SM_ENOMEM, "%s: out of memory", name ? name : "input");
        return NULL;
    }
    r->fd = -1;
    r->max_line = (SM_TS_DECODE_MAX / 3 + 1) * 4 + 4096;
    sm_buf_init(&r->line, r->max_line + 1);
    return r;
}

struct sm_ts_reader *sm_ts_reader_open_fd(int fd, const char *name, char *err, size_t errlen)
{
    struct sm_ts_reader *r = reader_new(name, err, errlen);
    if (r)
        r->fd = fd;
    return r;
}

struct sm_ts_reader *sm_ts_reader_open(const char *path, char *err, size_t errlen)
{
    if (!strcmp(path, "-"))
        return sm_ts_reader_open_fd(STDIN_FILENO, "stdin", err, errlen);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        sm_errf(err, errlen, errno == ENOENT ? SM_ENOTFOUND : SM_EIO, "%s: %s", path, strerror(errno));
        return NULL;
    }
    struct sm_ts_reader *r = sm_ts_reader_open_fd(fd, path, err, errlen);
    if (!r) {
        close(fd);
        return NULL;
    }
    r->own_fd = true;
    return r;
}

struct sm_ts_reader *sm_ts_reader_open_mem(const void *data, size_t len, const char *name,
                                           char *err, size_t errlen)
{
    struct sm_ts_reader *r = reader_new(name ? name : "memory", err, errlen);
    if (r) {
        r->mem = data;
        r->mem_len = len;
    }
    return r;
}

void sm_ts_reader_set_max_line(struct sm_ts_reader *r, size_t max_line)
{
    if (max_line < 16)
        max_line = 16;
    r->max_line = max_line;
    r->line.max = max_line + 1;
}

void sm_ts_reader_set_bad_line_cb(struct sm_ts_reader *r, sm_ts_bad_line_cb cb, void *arg)
{
    r->bad_cb = cb;
    r->bad_arg = arg;
}

void sm_ts_reader_report_bad(struct sm_ts_reader *r, uint64_t line, const char *reason)
{
    r->st.malformed++;
    r->st.last_malformed_line = line;
    if (r->bad_cb) {
        r->bad_cb(r->bad_arg, r->name, line, reason);
        return;
    }
    uint64_t supp = 0;
    if (sm_log_ratelimited(&r->rl, 5000, &supp))
        sm_log_warn("%s:%" PRIu64 ": skipped malformed record: %s (%" PRIu64 " skipped so far)",
                    r->name, line, reason, r->st.malformed);
}

/* Records a fatal input error "<name>: <what>"; every later call returns it. */
static int fatal(struct sm_ts_reader *r, int rc, char *err, size_t errlen, const char *what)
{
    r->sticky = rc;
    snprintf(r->sticky_msg, sizeof(r->sticky_msg), "%s: %s", r->name, what);
    return sm_errf(err, errlen, rc, "%s", r->sticky_msg);
}

/* Refills r->in when consumed. SM_OK (maybe with in_eof), or SM_EIO. */
static int fill_in(struct sm_ts_reader *r, char *err, size_t errlen)
{
    if (r->in_pos < r->in_len || r->in_eof)
        return SM_OK;
    r->in_pos = r->in_len = 0;
    if (r->fd < 0) {
        size_t n = SM_MIN(IN_CHUNK, r->mem_len - r->mem_pos);
        memcpy(r->in, r->mem + r->mem_pos, n);
        r->mem_pos += n;
        r->in_len = n;
        if (!n)
            r->in_eof = true;
        return SM_OK;
    }
    for (;;) {
        ssize_t n = read(r->fd, r->in, IN_CHUNK);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return fatal(r, SM_EIO, err, errlen, strerror(errno));
        r->in_len = (size_t)n;
        if (!n)
            r->in_eof = true;
        return SM_OK;
    }
}

/* Produces more bytes into r->out (resets it). */
static int fill_out(struct sm_ts_reader *r, char *err, size_t errlen)
{
    r->out_pos = r->out_len = 0;
    for (;;) {
        int rc = fill_in(r, err, errlen);
        if (rc)
            return rc;
        if (!r->detected) {
            /* need two bytes (or EOF) to tell gzip from text */
            if (r->in_len - r->in_pos < 2 && !r->in_eof) {
                if (r->in_pos > 0) {
                    memmove(r->in, r->in + r->in_pos, r->in_len - r->in_pos);
                    r->in_len -= r->in_pos;
                    r->in_pos = 0;
                }
                if (r->fd < 0) {
                    size_t n = SM_MIN(IN_CHUNK - r->in_len, r->mem_len - r->mem_pos);
                    memcpy(r->in + r->in_len, r->mem + r->mem_pos, n);
                    r->mem_pos += n;
                    r->in_len += n;
                    if (!n)
                        r->in_eof = true;
                } else {
                    ssize_t n = read(r->fd, r->in + r->in_len, IN_CHUNK - r->in_len);
                    if (n < 0 && errno == EINTR)
                        continue;
                    if (n < 0)
                        return fatal(r, SM_EIO, err, errlen, strerror(errno));
                    r->in_len += (size_t)n;
                    if (!n)
                        r->in_eof = true;
                }
                continue;
            }
            r->detected = true;
            r->gz = r->in_len - r->in_pos >= 2 && r->in[r->in_pos] == 0x1f && r->in[r->in_pos + 1] == 0x8b;
            r->st.gzip = r->gz;
            if (r->gz) {
                memset(&r->zs, 0, sizeof(r->zs));
                if (inflateInit2(&r->zs, 15 + 16) != Z_OK)
                    return fatal(r, SM_ENOMEM, err, errlen, "cannot initialise zlib");
                r->zinit = true;
            }
        }
        if (!r->gz) {
            size_t n = r->in_len - r->in_pos;
            if (!n) {
                r->out_eof = r->in_eof;
                return SM_OK;
            }
            memcpy(r->out, r->in + r->in_pos, n);
            r->in_pos += n;
            r->out_len = n;
            return SM_OK;
        }
        if (r->zdone) {
            /* after a member: another member, trailing garbage, or the end */
            if (r->in_pos == r->in_len && r->in_eof) {
                r->out_eof = true;
                return SM_OK;
            }
            if (r->in_pos == r->in_len)
                continue;
            if (r->in[r->in_pos] != 0x1f) {
                sm_log_warn("%s: ignoring trailing bytes after the gzip data", r->name);
                r->in_pos = r->in_len;
                r->mem_pos = r->mem_len;
                r->in_eof = true;
                r->out_eof = true;
                return SM_OK;
            }
            inflateReset(&r->zs);
            r->zdone = false;
        }
        if (r->in_pos == r->in_len && r->in_eof) {
            /* input ended inside a gzip member */
            r->st.truncated = true;
            sm_log_warn("%s: gzip data ends early (truncated file?)", r->name);
            r->out_eof = true;
            return SM_OK;
        }
        r->zs.next_in = r->in + r->in_pos;
        r->zs.avail_in = (uInt)(r->in_len - r->in_pos);
        r->zs.next_out = r->out;
        r->zs.avail_out = OUT_CHUNK;
        int zr = inflate(&r->zs, Z_NO_FLUSH);
        r->in_pos = r->in_len - r->zs.avail_in;
        r->out_len = OUT_CHUNK - r->zs.avail_out;
        if (zr == Z_STREAM_END) {
            r->zdone = true;
        } else if (zr == Z_DATA_ERROR || zr == Z_NEED_DICT || zr == Z_STREAM_ERROR) {
        {
            char what[160];
            snprintf(what, sizeof(what), "corrupt gzip data near byte %lu: %s", (unsigned long)r->zs.total_in,
                     r->zs.msg ? r->zs.msg : "inflate failed");
            return fatal(r, SM_ECORRUPT, err, errlen, what);
        }
        } else if (zr == Z_MEM_ERROR) {
            return fatal(r, SM_ENOMEM, err, errlen, "out of memory in zlib");
        }
        if (r->out_len)
            return SM_OK;
    }
}

/* Gets the next complete line into r->line (without '\n'). SM_OK, SM_EEOF, or fatal. */
static int next_line(struct sm_ts_reader *r, char *err, size_t errlen)
{
    sm_buf_reset(&r->line);
    r->too_long = false;
    for (;;) {
        if (r->out_pos == r->out_len) {
            if (r->out_eof) {
                if (r->line.len || r->too_long)
                    return SM_OK;   /* last line without newline */
                return SM_EEOF;
            }
            int rc = fill_out(r, err, errlen);
            if (rc)
                return rc;
            continue;
        }
        const uint8_t *p = r->out + r->out_pos;
        size_t avail = r->out_len - r->out_pos;
        const uint8_t *nl = memchr(p, '\n', avail);
        size_t take = nl ? (size_t)(nl - p) : avail;
        if (!r->too_long) {
            int rc = sm_buf_append(&r->line, p, take);
            if (rc == SM_EFULL) {
                r->too_long = true;
                sm_buf_free(&r->line);
            } else if (rc) {
                return fatal(r, rc, err, errlen, "out of memory");
            }
        }
        r->out_pos += take + (nl ? 1 : 0);
        if (nl)
            return SM_OK;
    }
}

int sm_ts_reader_next_raw(struct sm_ts_reader *r, const uint8_t **data, size_t *len,
                          const char **key, uint64_t *line, char *err, size_t errlen)
{
    if (r->sticky)
        return sm_errf(err, errlen, r->sticky, "%s", r->sticky_msg);
    for (;;) {
        int rc = next_line(r, err, errlen);
        if (rc)
            return rc;
        r->lineno++;
        r->st.lines++;
        if (r->too_long) {
            char why[96];
            snprintf(why, sizeof(why), "line longer than %zu bytes", r->max_line);
            sm_ts_reader_report_bad(r, r->lineno, why);
            continue;
        }
        /* NUL-terminate (room: max is max_line + 1) and trim trailing \r and blanks */
        if (sm_buf_append(&r->line, "", 1))
            return fatal(r, SM_ENOMEM, err, errlen, "out of memory");
        char *s = (char *)r->line.data;
        size_t n = r->line.len - 1;
        while (n && (s[n - 1] == '\r' || s[n - 1] == ' ' || s[n - 1] == '\t'))
            s[--n] = 0;
        size_t lead = 0;
        while (lead < n && (s[lead] == ' ' || s[lead] == '\t'))
            lead++;
        if (lead == n)
            continue;   /* blank line */
        char *b64 = s + lead;
        const char *k = "";
        char *bar = memrchr(b64, '|', n - lead);
        if (bar) {
            *bar = 0;
            k = b64;
            b64 = bar + 1;
        }
        size_t bl = strlen(b64);
        if (!bl) {
            sm_ts_reader_report_bad(r, r->lineno, "no record after the key");
            continue;
        }
        size_t need = (bl / 4 + 1) * 3;
        if (need > r->dec_cap) {
            uint8_t *d = sm_realloc(r->dec, need);
            if (!d)
                return fatal(r, SM_ENOMEM, err, errlen, "out of memory");
            r->dec = d;
            r->dec_cap = need;
        }
        size_t dl = 0;
        if (sm_base64_decode(b64, bl, r->dec, &dl) != SM_OK) {
            sm_ts_reader_report_bad(r, r->lineno, "not base64");
            continue;
        }
        *data = r->dec;
        *len = dl;
        if (key)
            *key = k;
        if (line)
            *line = r->lineno;
        return SM_OK;
    }
}

int sm_ts_reader_next_in(struct sm_ts_reader *r, struct sm_ts_arena *a, TrafficStream **ts, const char **key,
                         uint64_t *line, char *err, size_t errlen)
{
    *ts = NULL;
    for (;;) {
        const uint8_t *data;
        size_t len;
        uint64_t ln;
        int rc = sm_ts_reader_next_raw(r, &data, &len, key, &ln, err, errlen);
        if (rc)
            return rc;
        char why[160];
        rc = a ? sm_ts_decode_in(a, data, len, SM_TS_DECODE_MAX, ts, why, sizeof(why))
               : sm_ts_decode(data, len, ts, why, sizeof(why));
        if (rc == SM_ENOMEM)
            return sm_errf(err, errlen, rc, "%s:%" PRIu64 ": %s", r->name, ln, why);
        if (rc) {
            sm_ts_reader_report_bad(r, ln, why);
            continue;
        }
        r->st.records++;
        if (line)
            *line = ln;
        return SM_OK;
    }
}

int sm_ts_reader_next(struct sm_ts_reader *r, TrafficStream **ts, const char **key,
                      uint64_t *line, char *err, size_t errlen)
{
    return sm_ts_reader_next_in(r, NULL, ts, key, line, err, errlen);
}

void sm_ts_reader_stats(const struct sm_ts_reader *r, struct sm_ts_reader_stats *out)
{
    *out = r->st;
}

void sm_ts_reader_close(struct sm_ts_reader *r)
{
    if (!r)
        return;
    if (r->zinit)
        inflateEnd(&r->zs);
    if (r->own_fd && r->fd >= 0)
        close(r->fd);
    sm_buf_free(&r->line);
    sm_free(r->dec);
    sm_free(r->in);
    sm_free(r->out);
    sm_free(r->name);
    sm_free(r);
}
