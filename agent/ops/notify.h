/* systemd notification (sd_notify protocol, without libsystemd): a datagram
 * to the socket named by $NOTIFY_SOCKET, e.g. "READY=1" once capture really
 * runs, "STATUS=capturing pcap[eth0], 0 drops", "STOPPING=1". */
#ifndef AGENT_OPS_NOTIFY_H
#define AGENT_OPS_NOTIFY_H

/* Sends state (a "KEY=value\n..." text). Returns 1 if sent, 0 when
 * $NOTIFY_SOCKET is unset (not under systemd), or a negative sm_err. */
int agent_notify(const char *state);

#endif
