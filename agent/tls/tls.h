/* TLS decryption stream filter: sits between TCP reassembly (agent/flow) and
 * the HTTP pipeline. It implements struct agent_stream_cb itself, takes the
 * ciphertext of connections that speak TLS, and calls the downstream
 * callbacks with the plaintext application data, so HTTP framing and records
 * are the same as for clear traffic. Other connections pass through untouched.
 *
 *   struct agent_tls_cfg cfg;
 *   agent_tls_cfg_init(&cfg);
 *   cfg.keylog_path = "/run/searchmig/keys.log";
 *   struct agent_tls_filter *tls;
 *   if (agent_tls_filter_new(&cfg, &pipeline_cb, &tls, err, sizeof err) == SM_OK)
 *       agent_capture_open(&capcfg, agent_tls_filter_cb(tls), &cap, err, sizeof err);
 *   ...
 *   agent_capture_close(cap);    // closes the flows through the filter
 *   agent_tls_filter_free(tls);  // connections still waiting for keys: undecryptable
 *
 * Secrets come from an NSS key log file (see docs/tls.md) that the filter
 * follows as it grows (truncation and replacement are detected). They are
 * matched to connections by the ClientHello random.
 *
 * Threading: all calls on the capture thread (the one that runs callbacks),
 * except agent_tls_filter_stats(), which copies counters and may race
 * harmlessly (64-bit loads). */
#ifndef AGENT_TLS_TLS_H
#define AGENT_TLS_TLS_H
#include <stddef.h>
#include <stdint.h>

#include "flow/stream.h"

#define AGENT_TLS_MAX_PORTS 32

struct agent_tls_cfg {
    const char *keylog_path;       /* NSS key log file; NULL: no secrets (TLS is undecryptable) */
    uint16_t ports[AGENT_TLS_MAX_PORTS];  /* server ports carrying TLS; 0 ports: detect TLS by
                                           * the first client bytes on every connection */
    size_t nports;
    uint64_t key_wait_ns;          /* how long a connection waits for its secrets (wall time),
                                    * default 5 s */
    uint64_t max_pending;          /* ciphertext buffered per connection while waiting, default 1 MiB */
    uint64_t max_pending_total;    /* ... and over all connections, default 256 MiB */
    uint32_t max_keys;             /* key log entries kept (oldest dropped), default 65536 */
    uint64_t poll_interval_ns;     /* key log re-read at most this often, default 20 ms */
    uint64_t (*clock_ns)(void);    /* monotonic clock; NULL: CLOCK_MONOTONIC (tests inject one) */
};

/* Counters (cumulative unless noted). */
struct agent_tls_stats {
    uint64_t conns_tls;            /* connections recognised as TLS */
    uint64_t conns_clear;          /* connections passed through untouched */
    uint64_t conns_decrypted;      /* TLS connections whose secrets were found */
    uint64_t conns_undecryptable;  /* reported undecryptable (any reason below) */
    uint64_t conns_no_keys;        /* ... secrets never arrived within key_wait */
    uint64_t conns_no_handshake;   /* ... joined mid-stream: no ClientHello seen */
    uint64_t conns_unsupported;    /* ... unsupported version or cipher suite */
    uint64_t conns_pending_full;   /* ... buffer bound hit while waiting for secrets */
    uint64_t conns_broken;         /* ... capture gap in the handshake or not resynchronised, malformed records */
    uint64_t conns_resumed;        /* resumed sessions (TLS 1.2 session id/ticket, TLS 1.3 PSK) */
    uint64_t keys_late;            /* connections that had to wait for their secrets */
    uint64_t records;              /* TLS records parsed */
    uint64_t records_decrypted;
    uint64_t auth_failures;        /* AEAD tag mismatches (wrong secrets or corruption) */
    uint64_t key_updates;          /* TLS 1.3 KeyUpdate messages applied */
    uint64_t bytes_plaintext;      /* decrypted application bytes passed downstream */
    uint64_t bytes_clear;          /* bytes of clear (non-TLS) connections passed through */
    uint64_t bytes_dropped;        /* ciphertext bytes of undecryptable connections */
    uint64_t pending_bytes;        /* gauge: ciphertext held while waiting for secrets */
    uint64_t keylog_lines;         /* secrets read from the key log */
    uint64_t keylog_bad_lines;     /* lines that are neither comments nor known labels */
    uint64_t keylog_reopens;       /* truncation or replacement of the key log detected */
    uint64_t keylog_evicted;       /* entries dropped at max_keys */
    uint64_t keylog_entries;       /* gauge: client randoms with secrets */
    uint64_t gaps;                 /* capture gaps inside decrypted TLS streams (per direction) */
    uint64_t resyncs;              /* ... after which the record stream was found again */
    uint64_t resync_failures;      /* ... after which it was not (direction lost, in conns_broken) */
    uint64_t records_lost;         /* records skipped across gaps (sequence number jumps) */
    uint64_t resync_trials;        /* AEAD trial decryptions spent resynchronising */
    uint64_t conns_early_data;     /* TLS 1.3 ClientHellos offering 0-RTT early data */
    uint64_t early_data_skipped;   /* 0-RTT records seen and not decrypted (reported as a gap) */
    uint64_t renegotiations;       /* TLS 1.2 renegotiations seen (not followed: undecryptable) */
    char last_unsupported[64];     /* name of the last unsupported suite/version seen */
};

struct agent_tls_filter;

void agent_tls_cfg_init(struct agent_tls_cfg *cfg);

/* Creates the filter. downstream is copied (its arg must outlive the
 * filter); cfg and its strings are only read during the call (the key log
 * path is copied). A key log that does not exist yet is not an error (it is
 * opened when it appears). SM_OK and *out, SM_ECONFIG (err filled), SM_ENOMEM. */
int agent_tls_filter_new(const struct agent_tls_cfg *cfg, const struct agent_stream_cb *downstream,
                         struct agent_tls_filter **out, char *err, size_t errlen);
/* The upstream callbacks to hand to the capture engine (owned by the filter). */
const struct agent_stream_cb *agent_tls_filter_cb(struct agent_tls_filter *tls);
/* Re-reads the key log and resolves connections waiting for secrets:
 * decrypts those whose secrets arrived, reports undecryptable those whose
 * wait expired. Called by the filter on every event; call it from the main
 * loop too when capture can be idle. */
void agent_tls_filter_tick(struct agent_tls_filter *tls);
void agent_tls_filter_stats(const struct agent_tls_filter *tls, struct agent_tls_stats *out);
/* Ends every connection still waiting for secrets: a last key log read,
 * then decrypted or undecryptable, and closed downstream (those not yet
 * closed upstream with AGENT_CLOSE_SHUTDOWN). Call after the capture engine
 * has closed its flows (agent_capture_close). */
void agent_tls_filter_drain(struct agent_tls_filter *tls);
/* agent_tls_filter_drain(), then frees everything. NULL: no-op. */
void agent_tls_filter_free(struct agent_tls_filter *tls);

/* Internal pieces, exposed for tests and the fuzzer. */
/* Parses one NSS key log line (no newline). 0 if stored, 1 if comment/blank,
 * SM_EPROTO if malformed or unknown label. */
int agent_tls_keylog_line(struct agent_tls_filter *tls, const char *line, size_t n);

#endif
