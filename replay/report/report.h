/* Report: aggregates compared tuples into figures (JSON), a terminal table
 * and a single self-contained HTML file with inline SVG charts
 * (docs/compare.md). The HTML is rendered from the figures, so its numbers
 * are the JSON's. Also the `compare` and `report` subcommands of
 * searchmig-replay. */
#ifndef REPLAY_REPORT_H
#define REPLAY_REPORT_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

#include <sm/buf.h>

#include "compare/compare.h"

/* Key added beside the MA keys by the live replay: wall-clock time (ms since
 * the epoch) the tuple was completed; gives the throughput chart. */
#define REPLAY_REPORT_TIME_KEY "replayedAtMs"

struct replay_report;

struct replay_report *replay_report_new(void);
void replay_report_free(struct replay_report *r);
/* Adds one tuple with its "comparison" object (from replay_cmp_tuple). */
void replay_report_add(struct replay_report *r, const json_t *tuple, const json_t *comparison);
struct jd_val;
void replay_report_add_jd(struct replay_report *r, const struct jd_val *tuple, const json_t *comparison);
/* The figures (new reference); top: how many differing endpoints get
 * examples; learned: optional learned-noise rules to include (borrowed). */
json_t *replay_report_figures(struct replay_report *r, size_t top, const json_t *learned);

/* Writes the HTML page for figures to path. */
int replay_report_write_html(const json_t *figures, const char *path, char *err, size_t errlen);
/* Prints the key table (classes, status matrix, top endpoints). */
void replay_report_print(const json_t *figures, FILE *out);

/* Reads tuple files (JSON lines, gzip or plain; directories: every file in
 * them, in name order) and calls fn for each tuple. Lines that are not JSON
 * objects are counted in *bad. */
int replay_report_read_tuples(const char *path, void (*fn)(void *arg, json_t *tuple), void *arg, uint64_t *bad,
                              char *err, size_t errlen);
/* Same with the fast parser (compare/jdoc.h); the tuple is valid during the call. */
int replay_report_read_tuples_jd(const char *path, void (*fn)(void *arg, const struct jd_val *tuple), void *arg,
                                 uint64_t *bad, char *err, size_t errlen);

/* Live replay: a comparison hook for struct replay_engine_cfg plus counters. */
struct replay_live_compare {
    struct replay_cmp *cmp;
    uint64_t counts[REPLAY_CMP_NCLASSES];
    struct sm_buf view;            /* scratch of replay_live_compare_tuple() */
};
/* Sets up lc with the default rules, rules_file (may be NULL) and the
 * replay's index renames (may be NULL); on error lc holds nothing. */
int replay_live_compare_init(struct replay_live_compare *lc, const char *rules_file,
                             const struct sm_strlist *renames, char *err, size_t errlen);
void replay_live_compare_fini(struct replay_live_compare *lc);
/* Signature of replay_engine_cfg.compare; arg is a struct replay_live_compare.
 * Appends ",\"comparison\":{...}" (replay_live_compare_tuple()) and
 * ",\"replayedAtMs\":N" to the unterminated tuple in line. */
struct replay_tuple_parts;
void replay_live_compare_hook(void *arg, struct sm_buf *line, const struct replay_tuple_parts *parts);
/* The hook's comparison: appends the "comparison" object of the tuple in line
 * (parts as for the hook) to out and returns its class (-1: none, out of
 * memory). view is a scratch buffer (zeroed before first use). */
int replay_live_compare_tuple(struct replay_cmp *cmp, struct sm_buf *view, const struct sm_buf *line,
                              const struct replay_tuple_parts *parts, struct sm_buf *out);
/* Prints per-class counts and adds them as "comparison" to the summary JSON
 * file when summary_json is not NULL. */
void replay_live_compare_summary(const struct replay_live_compare *lc, FILE *out, const char *summary_json);

/* Subcommands: argv[0] is "compare" or "report". Return the exit code. */
int replay_cli_compare(int argc, char **argv);

#endif
