/* The HTML report: one self-contained file (inline CSS, inline SVG charts,
 * no scripts, no external resources) rendered from the figures JSON. Every
 * number a test may check carries its raw value in a data-value attribute. */
#include "report/report.h"

#include <sm/buf.h>
#include <sm/err.h>
#include <sm/mem.h>

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define HTML_MAX ((size_t)512 << 20)
#define MAX_ROWS 50

static const char *const class_colors[] = { "#2e7d32", "#ef6c00", "#c62828", "#6a1b9a", "#757575" };
static const char *const class_labels[] = { "same", "status differs", "body differs", "target error/timeout",
                                            "no source response" };

static void esc(struct sm_buf *b, const char *s)
{
    if (!s)
        return;
    const char *run = s;
    for (; *s; s++) {
        const char *rep = NULL;
        switch (*s) {
        case '&': rep = "&amp;"; break;
        case '<': rep = "&lt;"; break;
        case '>': rep = "&gt;"; break;
        case '"': rep = "&quot;"; break;
        default: break;
        }
        if (rep) {
            sm_buf_append(b, run, (size_t)(s - run));
            sm_buf_append_str(b, rep);
            run = s + 1;
        }
    }
    sm_buf_append(b, run, (size_t)(s - run));
}

static void esc_json(struct sm_buf *b, const json_t *v, size_t maxlen)
{
    if (!v) {
        sm_buf_append_str(b, "<span class=\"absent\">(absent)</span>");
        return;
    }
    char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY | JSON_SORT_KEYS);
    if (!s)
        return;
    size_t l = strlen(s);
    if (l > maxlen) {
        s[maxlen] = 0;
        esc(b, s);
        sm_buf_printf(b, "&hellip; (%zu bytes)", l);
    } else {
        esc(b, s);
    }
    free(s);
}

static json_int_t geti(const json_t *o, const char *k)
{
    return json_integer_value(json_object_get(o, k));
}

static void td_int(struct sm_buf *b, json_int_t v, const char *cls)
{
    sm_buf_printf(b, "<td class=\"num%s%s\" data-value=\"%lld\">%lld</td>", cls ? " " : "", cls ? cls : "",
                  (long long)v, (long long)v);
}

/* an integer figure that may be null (no data) */
static void td_opt(struct sm_buf *b, const json_t *v, const char *cls)
{
    if (json_is_integer(v))
        td_int(b, json_integer_value(v), cls);
    else
        sm_buf_printf(b, "<td class=\"num %s\" data-value=\"\">&ndash;</td>", cls);
}

static void td_ratio(struct sm_buf *b, const json_t *r, const char *cls)
{
    if (json_is_number(r)) {
        double v = json_number_value(r);
        sm_buf_printf(b, "<td class=\"num %s%s\" data-value=\"%.2f\">%.2f&times;</td>", cls,
                      v > 1.5 ? " slow" : v < 0.67 ? " fast" : "", v, v);
    } else {
        sm_buf_printf(b, "<td class=\"num %s\" data-value=\"\">&ndash;</td>", cls);
    }
}

static const char css[] =
    "body{font-family:-apple-system,'Segoe UI',Helvetica,Arial,sans-serif;margin:24px auto;max-width:1200px;"
    "color:#222;background:#fff;padding:0 16px}"
    "h1{font-size:24px;margin:0 0 4px}h2{font-size:18px;margin:28px 0 8px;border-bottom:1px solid #ddd;"
    "padding-bottom:4px}p.sub{color:#666;margin:0 0 12px}"
    "table{border-collapse:collapse;font-size:13px;margin:6px 0}th,td{border:1px solid #ddd;padding:3px 8px;"
    "text-align:left;vertical-align:top}th{background:#f3f3f3}td.num{text-align:right;"
    "font-variant-numeric:tabular-nums}td.zero{color:#bbb}td.diag{background:#e8f5e9}td.off{background:#fff3e0}"
    "td.slow{color:#c62828;font-weight:bold}td.fast{color:#2e7d32}"
    ".big{font-size:44px;font-weight:bold;color:#2e7d32}.row{display:flex;gap:32px;align-items:flex-start;"
    "flex-wrap:wrap}"
    "table.diff{width:100%;table-layout:fixed}table.diff td{font-family:monospace;font-size:12px;"
    "word-break:break-all;white-space:pre-wrap}table.diff td.src{background:#fdecea}"
    "table.diff td.tgt{background:#e8f5e9}.example{margin:8px 0 16px}.example .req{font-family:monospace}"
    ".absent{color:#999;font-style:italic}svg text{font-size:11px;fill:#444}.legend{font-size:12px}"
    "code{font-family:monospace}";

/* ---- charts ---- */

static void chart_classes(struct sm_buf *b, const json_t *f)
{
    const json_t *cls = json_object_get(f, "classes");
    double total = (double)geti(f, "tuples");
    const int w = 800, h = 34;
    sm_buf_printf(b, "<svg id=\"chart-classes\" xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
                  "viewBox=\"0 0 %d %d\" role=\"img\" aria-label=\"results by class\">", w, h + 20, w, h + 20);
    double x = 0;
    for (int i = 0; i < REPLAY_CMP_NCLASSES; i++) {
        double n = (double)geti(cls, replay_cmp_class_name((enum replay_cmp_class)i));
        double bw = total > 0 ? n / total * w : 0;
        if (bw > 0)
            sm_buf_printf(b, "<rect x=\"%.2f\" y=\"0\" width=\"%.2f\" height=\"%d\" fill=\"%s\"><title>%s: %.0f</title>"
                          "</rect>", x, bw, h, class_colors[i], class_labels[i], n);
        x += bw;
    }
    if (total <= 0)
        sm_buf_printf(b, "<rect x=\"0\" y=\"0\" width=\"%d\" height=\"%d\" fill=\"#eee\"/>", w, h);
    double lx = 0;
    for (int i = 0; i < REPLAY_CMP_NCLASSES; i++) {
        sm_buf_printf(b, "<rect x=\"%.0f\" y=\"%d\" width=\"10\" height=\"10\" fill=\"%s\"/><text x=\"%.0f\" y=\"%d\">"
                      "%s</text>", lx, h + 8, class_colors[i], lx + 14, h + 17, class_labels[i]);
        lx += 160;
    }
    sm_buf_append_str(b, "</svg>");
}

static double lx_of(double v, double vmax, double x0, double w)
{
    return x0 + log10(v + 1.0) / log10(vmax + 1.0) * w;
}

static void chart_cdf(struct sm_buf *b, const json_t *lat)
{
    const int W = 820, H = 340, x0 = 60, y0 = 20, w = 720, h = 270;
    const json_t *cs = json_object_get(json_object_get(lat, "source"), "cdf");
    const json_t *ct = json_object_get(json_object_get(lat, "target"), "cdf");
    double vmax = 1;
    const json_t *series[2] = { cs, ct };
    for (int k = 0; k < 2; k++) {
        size_t i;
        const json_t *p;
        json_array_foreach((json_t *)series[k], i, p) {
            double v = json_number_value(json_array_get(p, 0));
            if (v > vmax)
                vmax = v;
        }
    }
    /* round the axis up to a power of ten */
    double top = pow(10, ceil(log10(vmax + 1.0)));
    sm_buf_printf(b, "<svg id=\"chart-latency-cdf\" xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
                  "viewBox=\"0 0 %d %d\" role=\"img\" aria-label=\"latency CDF\">", W, H, W, H);
    sm_buf_printf(b, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"#fafafa\" stroke=\"#ccc\"/>", x0, y0, w,
                  h);
    for (int q = 0; q <= 100; q += 25) {
        double y = y0 + h - q / 100.0 * h;
        sm_buf_printf(b, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#e0e0e0\"/>"
                      "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%d%%</text>", x0, y, x0 + w, y, x0 - 6, y + 4, q);
    }
    for (double t = 0; t <= top; t = t ? t * 10 : 1) {
        double x = lx_of(t, top, x0, w);
        sm_buf_printf(b, "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" stroke=\"#e0e0e0\"/>"
                      "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%.0f</text>", x, y0, x, y0 + h, x, y0 + h + 14,
                      t);
    }
    sm_buf_printf(b, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">response time, ms (log scale)</text>",
                  x0 + w / 2, y0 + h + 32);
    const char *colors[2] = { "#1565c0", "#ef6c00" };
    const char *names[2] = { "source", "target" };
    for (int k = 0; k < 2; k++) {
        if (!json_array_size(series[k]))
            continue;
        sm_buf_printf(b, "<polyline class=\"cdf-%s\" fill=\"none\" stroke=\"%s\" stroke-width=\"2\" points=\"",
                      names[k], colors[k]);
        size_t i;
        const json_t *p;
        double prev_y = y0 + h;
        json_array_foreach((json_t *)series[k], i, p) {
            double v = json_number_value(json_array_get(p, 0)), q = json_number_value(json_array_get(p, 1));
            double x = lx_of(v, top, x0, w), y = y0 + h - q * h;
            sm_buf_printf(b, "%.1f,%.1f %.1f,%.1f ", x, prev_y, x, y);
            prev_y = y;
        }
        sm_buf_append_str(b, "\"/>");
        sm_buf_printf(b, "<rect x=\"%d\" y=\"%d\" width=\"14\" height=\"4\" fill=\"%s\"/><text x=\"%d\" y=\"%d\" "
                      "class=\"legend\">%s</text>", x0 + 12, y0 + 12 + k * 16, colors[k], x0 + 32, y0 + 17 + k * 16,
                      names[k]);
    }
    if (!json_array_size(cs) && !json_array_size(ct))
        sm_buf_printf(b, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">no response times in these tuples</text>",
                      x0 + w / 2, y0 + h / 2);
    sm_buf_append_str(b, "</svg>");
}

static void chart_throughput(struct sm_buf *b, const json_t *tp)
{
    const int W = 820, H = 260, x0 = 60, y0 = 16, w = 720, h = 190;
    const json_t *counts = json_object_get(tp, "counts");
    size_t n = json_array_size(counts);
    json_int_t width = geti(tp, "bucket_s");
    if (width < 1)
        width = 1;
    double vmax = 1;
    for (size_t i = 0; i < n; i++) {
        double v = (double)json_integer_value(json_array_get(counts, i)) / (double)width;
        if (v > vmax)
            vmax = v;
    }
    sm_buf_printf(b, "<svg id=\"chart-throughput\" xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
                  "viewBox=\"0 0 %d %d\" role=\"img\" aria-label=\"throughput\">", W, H, W, H);
    sm_buf_printf(b, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"#fafafa\" stroke=\"#ccc\"/>", x0, y0, w,
                  h);
    for (int k = 0; k <= 4; k++) {
        double y = y0 + h - k / 4.0 * h;
        sm_buf_printf(b, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#e0e0e0\"/>"
                      "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%.0f</text>", x0, y, x0 + w, y, x0 - 6, y + 4,
                      vmax * k / 4.0);
    }
    if (!n) {
        sm_buf_printf(b, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">no replay timestamps in these tuples "
                      "(recorded by searchmig-replay as %s)</text>", x0 + w / 2, y0 + h / 2, REPLAY_REPORT_TIME_KEY);
    }
    double bw = n ? (double)w / (double)n : 0;
    for (size_t i = 0; i < n; i++) {
        json_int_t c = json_integer_value(json_array_get(counts, i));
        double v = (double)c / (double)width, bh = v / vmax * h;
        sm_buf_printf(b, "<rect class=\"tp\" x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\" fill=\"#1565c0\" "
                      "data-value=\"%lld\"><title>+%llds: %lld tuples</title></rect>", x0 + i * bw, y0 + h - bh,
                      bw > 2 ? bw - 1 : bw, bh, (long long)c, (long long)(i * (size_t)width), (long long)c);
    }
    if (n) {
        time_t t0 = (time_t)(geti(tp, "start_ms") / 1000);
        struct tm tm;
        char ts[64];
        gmtime_r(&t0, &tm);
        strftime(ts, sizeof(ts), "%Y-%m-%d %H:%M:%S UTC", &tm);
        sm_buf_printf(b, "<text x=\"%d\" y=\"%d\">%s</text><text x=\"%d\" y=\"%d\" text-anchor=\"end\">+%llds</text>",
                      x0, y0 + h + 14, ts, x0 + w, y0 + h + 14, (long long)((json_int_t)n * width));
        sm_buf_printf(b, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">tuples per second (buckets of %llds)</text>",
                      x0 + w / 2, y0 + h + 32, (long long)width);
    }
    sm_buf_append_str(b, "</svg>");
}

/* ---- tables ---- */

static void status_label(struct sm_buf *b, json_int_t s)
{
    if (s)
        sm_buf_printf(b, "%lld", (long long)s);
    else
        sm_buf_append_str(b, "none");
}

static void table_matrix(struct sm_buf *b, const json_t *m)
{
    const json_t *sc = json_object_get(m, "source"), *tc = json_object_get(m, "target"),
                 *counts = json_object_get(m, "counts");
    sm_buf_append_str(b, "<table id=\"status-matrix\"><tr><th>source &#8595; / target &#8594;</th>");
    for (size_t j = 0; j < json_array_size(tc); j++) {
        sm_buf_append_str(b, "<th>");
        status_label(b, json_integer_value(json_array_get(tc, j)));
        sm_buf_append_str(b, "</th>");
    }
    sm_buf_append_str(b, "</tr>");
    for (size_t i = 0; i < json_array_size(sc); i++) {
        json_int_t s = json_integer_value(json_array_get(sc, i));
        sm_buf_append_str(b, "<tr><th>");
        status_label(b, s);
        sm_buf_append_str(b, "</th>");
        const json_t *row = json_array_get(counts, i);
        for (size_t j = 0; j < json_array_size(tc); j++) {
            json_int_t t = json_integer_value(json_array_get(tc, j));
            json_int_t c = json_integer_value(json_array_get(row, j));
            sm_buf_printf(b, "<td class=\"num %s\" data-source=\"%lld\" data-target=\"%lld\" data-value=\"%lld\">%lld</td>",
                          !c ? "zero" : s == t ? "diag" : "off", (long long)s, (long long)t, (long long)c,
                          (long long)c);
        }
        sm_buf_append_str(b, "</tr>");
    }
    sm_buf_append_str(b, "</table>");
}

static void table_latency(struct sm_buf *b, const json_t *f)
{
    const json_t *lat = json_object_get(f, "latency");
    sm_buf_append_str(b, "<table id=\"latency-overall\"><tr><th></th><th>count</th><th>p50 ms</th><th>p90 ms</th>"
                      "<th>p99 ms</th></tr>");
    const char *side[2] = { "source", "target" };
    for (int k = 0; k < 2; k++) {
        const json_t *s = json_object_get(lat, side[k]);
        sm_buf_printf(b, "<tr data-side=\"%s\"><th>%s</th>", side[k], side[k]);
        td_int(b, geti(s, "count"), "count");
        td_opt(b, json_object_get(s, "p50"), "p50");
        td_opt(b, json_object_get(s, "p90"), "p90");
        td_opt(b, json_object_get(s, "p99"), "p99");
        sm_buf_append_str(b, "</tr>");
    }
    sm_buf_append_str(b, "<tr data-side=\"ratio\"><th>target / source</th><td></td>");
    td_ratio(b, json_object_get(lat, "ratio_p50"), "p50");
    td_ratio(b, json_object_get(lat, "ratio_p90"), "p90");
    td_ratio(b, json_object_get(lat, "ratio_p99"), "p99");
    sm_buf_append_str(b, "</tr></table>");

    sm_buf_append_str(b, "<table id=\"latency-endpoints\"><tr><th>endpoint</th><th>count</th><th>match</th>"
                      "<th>src p50</th><th>src p90</th><th>src p99</th><th>tgt p50</th><th>tgt p90</th>"
                      "<th>tgt p99</th><th>ratio p50</th><th>ratio p90</th><th>ratio p99</th></tr>");
    const json_t *eps = json_object_get(f, "endpoints");
    size_t i;
    const json_t *e;
    json_array_foreach((json_t *)eps, i, e) {
        if (i >= MAX_ROWS)
            break;
        const json_t *s = json_object_get(e, "source"), *t = json_object_get(e, "target");
        sm_buf_append_str(b, "<tr data-endpoint=\"");
        esc(b, json_string_value(json_object_get(e, "endpoint")));
        sm_buf_append_str(b, "\"><td><code>");
        esc(b, json_string_value(json_object_get(e, "endpoint")));
        sm_buf_append_str(b, "</code></td>");
        td_int(b, geti(e, "count"), "count");
        double mr = json_number_value(json_object_get(e, "match_rate"));
        sm_buf_printf(b, "<td class=\"num match\" data-value=\"%.4f\">%.1f%%</td>", mr, mr * 100.0);
        td_opt(b, json_object_get(s, "p50"), "sp50");
        td_opt(b, json_object_get(s, "p90"), "sp90");
        td_opt(b, json_object_get(s, "p99"), "sp99");
        td_opt(b, json_object_get(t, "p50"), "tp50");
        td_opt(b, json_object_get(t, "p90"), "tp90");
        td_opt(b, json_object_get(t, "p99"), "tp99");
        td_ratio(b, json_object_get(e, "ratio_p50"), "r50");
        td_ratio(b, json_object_get(e, "ratio_p90"), "r90");
        td_ratio(b, json_object_get(e, "ratio_p99"), "r99");
        sm_buf_append_str(b, "</tr>");
    }
    sm_buf_append_str(b, "</table>");
    if (json_array_size(eps) > MAX_ROWS)
        sm_buf_printf(b, "<p class=\"sub\">%zu more endpoints in the JSON figures.</p>", json_array_size(eps) - MAX_ROWS);
}

static void top_differing(struct sm_buf *b, const json_t *f)
{
    const json_t *top = json_object_get(f, "top_differing");
    sm_buf_append_str(b, "<table id=\"top-differing\"><tr><th>endpoint</th><th>count</th><th>differing</th>"
                      "<th>status differs</th><th>body differs</th></tr>");
    size_t i;
    const json_t *e;
    json_array_foreach((json_t *)top, i, e) {
        sm_buf_append_str(b, "<tr data-endpoint=\"");
        esc(b, json_string_value(json_object_get(e, "endpoint")));
        sm_buf_append_str(b, "\"><td><code>");
        esc(b, json_string_value(json_object_get(e, "endpoint")));
        sm_buf_append_str(b, "</code></td>");
        td_int(b, geti(e, "count"), "count");
        td_int(b, geti(e, "differing"), "differing");
        td_int(b, geti(e, "status"), "status");
        td_int(b, geti(e, "body"), "body");
        sm_buf_append_str(b, "</tr>");
    }
    if (!json_array_size(top))
        sm_buf_append_str(b, "<tr><td colspan=\"5\">no endpoint differs</td></tr>");
    sm_buf_append_str(b, "</table>");
    json_array_foreach((json_t *)top, i, e) {
        sm_buf_append_str(b, "<h3><code>");
        esc(b, json_string_value(json_object_get(e, "endpoint")));
        sm_buf_append_str(b, "</code></h3>");
        size_t k;
        const json_t *ex;
        json_array_foreach(json_object_get(e, "examples"), k, ex) {
            sm_buf_append_str(b, "<div class=\"example\"><div class=\"req\">");
            esc(b, json_string_value(json_object_get(ex, "request")));
            sm_buf_append_str(b, " &mdash; ");
            esc(b, json_string_value(json_object_get(ex, "connectionId")));
            sm_buf_append_str(b, " &mdash; status ");
            status_label(b, geti(ex, "source_status"));
            sm_buf_append_str(b, " vs ");
            status_label(b, geti(ex, "target_status"));
            sm_buf_append_str(b, "</div><table class=\"diff\"><tr><th style=\"width:28%\">path</th>"
                              "<th>source</th><th>target</th></tr>");
            size_t d;
            const json_t *df;
            json_array_foreach(json_object_get(ex, "differences"), d, df) {
                sm_buf_append_str(b, "<tr><td>");
                const char *p = json_string_value(json_object_get(df, "path"));
                esc(b, p && *p ? p : "(whole body)");
                sm_buf_append_str(b, "</td><td class=\"src\">");
                esc_json(b, json_object_get(df, "source"), 600);
                sm_buf_append_str(b, "</td><td class=\"tgt\">");
                esc_json(b, json_object_get(df, "target"), 600);
                sm_buf_append_str(b, "</td></tr>");
            }
            if (!json_array_size(json_object_get(ex, "differences")))
                sm_buf_append_str(b, "<tr><td colspan=\"3\">status code differs; bodies not compared</td></tr>");
            sm_buf_append_str(b, "</table></div>");
        }
    }
}

static void table_errors(struct sm_buf *b, const json_t *f)
{
    sm_buf_append_str(b, "<table id=\"errors\"><tr><th>error</th><th>count</th></tr>");
    size_t i;
    const json_t *e;
    json_array_foreach(json_object_get(f, "errors"), i, e) {
        sm_buf_append_str(b, "<tr><td>");
        esc(b, json_string_value(json_object_get(e, "error")));
        sm_buf_append_str(b, "</td>");
        td_int(b, geti(e, "count"), "count");
        sm_buf_append_str(b, "</tr>");
    }
    if (!json_array_size(json_object_get(f, "errors")))
        sm_buf_append_str(b, "<tr><td colspan=\"2\">no target errors or timeouts</td></tr>");
    sm_buf_append_str(b, "</table>");
}

int replay_report_write_html(const json_t *f, const char *path, char *err, size_t errlen)
{
    struct sm_buf b;
    sm_buf_init(&b, HTML_MAX);
    const json_t *cls = json_object_get(f, "classes");
    double mr = json_number_value(json_object_get(f, "match_rate"));
    sm_buf_printf(&b, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
                  "<meta name=\"viewport\" content=\"width=device-width\">"
                  "<title>searchmig replay comparison</title><style>%s</style></head><body>\n", css);
    sm_buf_printf(&b, "<h1>searchmig replay comparison</h1><p class=\"sub\">%lld tuples compared</p>\n",
                  (long long)geti(f, "tuples"));
    sm_buf_append_str(&b, "<section id=\"summary\"><h2>Match rate</h2><div class=\"row\"><div>");
    sm_buf_printf(&b, "<div class=\"big\" id=\"match-rate\" data-value=\"%.4f\">%.1f%%</div>", mr, mr * 100.0);
    sm_buf_append_str(&b, "<p class=\"sub\">same / (same + status + body + target error)</p></div>"
                      "<table id=\"classes\"><tr><th>result</th><th>count</th></tr>");
    for (int i = 0; i < REPLAY_CMP_NCLASSES; i++) {
        const char *n = replay_cmp_class_name((enum replay_cmp_class)i);
        sm_buf_printf(&b, "<tr data-class=\"%s\"><td><span style=\"color:%s\">&#9632;</span> %s</td>", n,
                      class_colors[i], class_labels[i]);
        td_int(&b, geti(cls, n), NULL);
        sm_buf_append_str(&b, "</tr>");
    }
    sm_buf_append_str(&b, "</table></div>");
    chart_classes(&b, f);
    sm_buf_append_str(&b, "</section>\n<section id=\"status\"><h2>Status codes: source vs target</h2>");
    table_matrix(&b, json_object_get(f, "status_matrix"));
    sm_buf_append_str(&b, "</section>\n<section id=\"latency\"><h2>Latency: source vs target</h2>");
    chart_cdf(&b, json_object_get(f, "latency"));
    table_latency(&b, f);
    sm_buf_append_str(&b, "</section>\n<section id=\"differences\"><h2>Top differing endpoints</h2>");
    top_differing(&b, f);
    sm_buf_append_str(&b, "</section>\n<section id=\"target-errors\"><h2>Errors and timeouts</h2>");
    table_errors(&b, f);
    sm_buf_append_str(&b, "</section>\n<section id=\"throughput\"><h2>Throughput over time</h2>");
    chart_throughput(&b, json_object_get(f, "throughput"));
    sm_buf_printf(&b, "<p class=\"sub\">peak %lld tuples/s</p>", (long long)geti(json_object_get(f, "throughput"),
                                                                                 "peak_per_s"));
    const json_t *learned = json_object_get(f, "learned_noise");
    if (json_array_size(learned)) {
        sm_buf_append_str(&b, "</section>\n<section id=\"noise\"><h2>Learned noise (ignored)</h2>"
                          "<table id=\"learned-noise\"><tr><th>endpoint</th><th>path</th></tr>");
        size_t i;
        const json_t *l;
        json_array_foreach((json_t *)learned, i, l) {
            sm_buf_append_str(&b, "<tr><td><code>");
            esc(&b, json_string_value(json_object_get(l, "endpoint")));
            sm_buf_append_str(&b, "</code></td><td><code>");
            esc(&b, json_string_value(json_object_get(l, "path")));
            sm_buf_append_str(&b, "</code></td></tr>");
        }
        sm_buf_append_str(&b, "</table>");
    }
    if (sm_buf_append_str(&b, "</section>\n</body></html>\n")) {
        sm_buf_free(&b);
        return sm_errf(err, errlen, SM_EFULL, "%s: report larger than %zu bytes", path, HTML_MAX);
    }
    FILE *fp = fopen(path, "wb");
    int rc = SM_OK;
    if (!fp || fwrite(b.data, 1, b.len, fp) != b.len)
        rc = sm_errf(err, errlen, SM_EIO, "%s: %s", path, strerror(errno));
    if (fp && fclose(fp) && !rc)
        rc = sm_errf(err, errlen, SM_EIO, "%s: %s", path, strerror(errno));
    sm_buf_free(&b);
    return rc;
}
