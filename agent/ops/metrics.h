/* Prometheus-format metrics and a health endpoint on a local HTTP port.
 *
 *   GET /metrics  -> 200, text/plain; version=0.0.4, body from the render callback
 *   GET /health   -> 200 "ok" while the health callback says so, else 503
 *   anything else -> 404
 *
 * One background thread serves one short request at a time (1 s read
 * timeout per connection); it never touches capture. The callbacks run on
 * that thread and must be thread-safe (the pipeline's stats are). */
#ifndef AGENT_OPS_METRICS_H
#define AGENT_OPS_METRICS_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sm/buf.h>

/* Appends the metrics text to out. */
typedef void (*agent_metrics_render_fn)(void *arg, struct sm_buf *out);
/* Returns true when healthy; may write a short reason into why. */
typedef bool (*agent_metrics_health_fn)(void *arg, char *why, size_t whylen);

struct agent_metrics;

/* Listens on listen ("127.0.0.1:9464", "[::1]:9464", ":9464"; port 0 picks
 * one) and starts the thread. NULL on error (err names the address). */
struct agent_metrics *agent_metrics_start(const char *listen, agent_metrics_render_fn render,
                                          agent_metrics_health_fn health, void *arg, char *err,
                                          size_t errlen);
/* The port actually bound. */
uint16_t agent_metrics_port(const struct agent_metrics *m);
/* Stops the thread, closes the socket, frees m (NULL: no-op). */
void agent_metrics_stop(struct agent_metrics *m);

/* Helpers for render callbacks: one "# HELP/# TYPE" header and one sample. */
void agent_metrics_put(struct sm_buf *out, const char *name, const char *type, const char *help,
                       uint64_t value);

#endif
