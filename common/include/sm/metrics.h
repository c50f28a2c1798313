/* Prometheus-format metrics and a health endpoint on a local HTTP port,
 * shared by searchmig-agent (--metrics-listen) and searchmig-replay.
 *
 *   GET /metrics  -> 200, text/plain; version=0.0.4, body from the render callback
 *   GET /health   -> 200 "ok" while the health callback says so, else 503
 *                    (liveness: the process works; a restart would help)
 *   GET /ready    -> 200 "ok" while the ready callback says so, else 503 with
 *                    the reason (readiness: it also does its job, e.g. loses
 *                    no data; a restart would not help). No ready callback:
 *                    the health callback's answer.
 *   anything else -> 404 (405 for methods other than GET and HEAD)
 *
 * One background thread serves one short request at a time (1 s read
 * timeout per connection); it never touches the tool's hot path. The
 * callbacks run on that thread and must be thread-safe. */
#ifndef SM_METRICS_H
#define SM_METRICS_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sm/buf.h>

/* Appends the metrics text to out. */
typedef void (*sm_metrics_render_fn)(void *arg, struct sm_buf *out);
/* Returns true when healthy; may write a short reason into why. */
typedef bool (*sm_metrics_health_fn)(void *arg, char *why, size_t whylen);

struct sm_metrics;

/* Listens on listen ("127.0.0.1:9464", "[::1]:9464", ":9464"; port 0 picks
 * one) and starts the thread. render is required, health and ready may be
 * NULL (always healthy; ready = healthy); arg is passed to all three and must
 * outlive sm_metrics_stop(). NULL on error (err names the address). */
struct sm_metrics *sm_metrics_start(const char *listen, sm_metrics_render_fn render,
                                    sm_metrics_health_fn health, sm_metrics_health_fn ready, void *arg,
                                    char *err, size_t errlen);
/* The port actually bound. */
uint16_t sm_metrics_port(const struct sm_metrics *m);
/* Stops the thread, closes the socket, frees m (NULL: no-op). */
void sm_metrics_stop(struct sm_metrics *m);

/* For ready callbacks: whether a loss counter grew within the last window_ns,
 * as seen by the calls (a growth counts from the first call that sees it, so
 * probes every few seconds place it to within that). Zero-initialise. */
struct sm_recent_growth { uint64_t count, at_ns; };
static inline bool sm_recent_growth(struct sm_recent_growth *g, uint64_t count, uint64_t now_ns,
                                    uint64_t window_ns)
{
    if (count > g->count) {
        g->count = count;
        g->at_ns = now_ns ? now_ns : 1;
    }
    return g->at_ns && now_ns - g->at_ns < window_ns;
}

/* Helpers for render callbacks: one "# HELP/# TYPE" header and one sample. */
void sm_metrics_put(struct sm_buf *out, const char *name, const char *type, const char *help,
                    uint64_t value);
/* The same for a non-integer value (seconds, ratios), printed with %.9g. */
void sm_metrics_put_double(struct sm_buf *out, const char *name, const char *type, const char *help,
                           double value);

#endif
