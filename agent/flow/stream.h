/* The boundary between capture and the HTTP/record pipeline.
 *
 * Every capture engine ends here: the packet engines (pcap live, pcap file,
 * eBPF TC) after flow tracking and TCP reassembly, the eBPF socket engine
 * directly (its bytes are already in stream order). Downstream code (HTTP
 * framing, record building, sinks) sees only these callbacks and never knows
 * which engine fed it.
 *
 * Ordering contract: for one connection, open comes first, then data/gap
 * events in stream order per direction (the two directions interleaved in
 * capture-time order as well as the engine can tell), then exactly one close.
 * Callback data is borrowed for the duration of the call.
 *
 * Notes from the packet engines (agent/flow/flow.c, capture, additive):
 * - open is called lazily, at the first data or gap event of a connection;
 *   connections that never carry a byte (SYN floods, port probes) produce no
 *   events at all. ts_ns of open is that first event's packet time.
 * - data ts_ns is the capture time of the packet that carried those bytes
 *   (bytes held out of order keep their own packet's time).
 * - gap is reported before the bytes that follow the hole; lost is exact
 *   (sequence-number arithmetic) for the packet engines. why is a static
 *   string: "capture loss", "queue bound", "memory cap", "hole timeout",
 *   "connection end", "truncated".
 * - close carries every buffered byte before it (holes as gaps). */
#ifndef AGENT_FLOW_STREAM_H
#define AGENT_FLOW_STREAM_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum agent_dir { AGENT_C2S = 0, AGENT_S2C = 1 };   /* client->server = "read" in records */

enum agent_close_reason {
    AGENT_CLOSE_FIN,        /* orderly close seen (FIN in both directions, or one FIN + drain) */
    AGENT_CLOSE_RST,        /* reset */
    AGENT_CLOSE_IDLE,       /* no packet for the idle timeout */
    AGENT_CLOSE_SHUTDOWN,   /* agent stopping: connection still open */
    AGENT_CLOSE_EVICTED,    /* flow table full: oldest evicted (counted) */
    AGENT_CLOSE_REPLACED,   /* a new connection took its tuple: its own close was not seen */
};

struct agent_conn_info {
    int family;                 /* AF_INET or AF_INET6 */
    uint8_t client_ip[16];      /* IPv4 in the first 4 bytes */
    uint8_t server_ip[16];
    uint16_t client_port, server_port;
    bool mid_stream;            /* no SYN seen: joined an open connection */
    uint64_t engine_conn_id;    /* engine-unique number (e.g. socket cookie), 0 if none */
};

struct agent_stream_cb {
    void *arg;
    /* A new connection. Returns the per-connection handle passed to the other
     * callbacks (NULL: ignore this connection; no further events for it). */
    void *(*open)(void *arg, const struct agent_conn_info *info, uint64_t ts_ns);
    /* In-order bytes of one direction. */
    void (*data)(void *arg, void *conn, enum agent_dir dir, const uint8_t *p, size_t n,
                 uint64_t ts_ns);
    /* Bytes lost in one direction (capture loss, truncation, undecryptable).
     * lost may be 0 when unknown. */
    void (*gap)(void *arg, void *conn, enum agent_dir dir, uint64_t lost, uint64_t ts_ns,
                const char *why);
    /* End of the connection; conn is not used afterwards. */
    void (*close)(void *arg, void *conn, enum agent_close_reason reason, uint64_t ts_ns);
};

#endif
