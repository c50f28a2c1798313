/* Link, IP and TCP header decoding of one captured packet.
 *
 * Link types: Ethernet (802.1Q / 802.1ad / QinQ tags), Linux cooked SLL and
 * SLL2, loopback DLT_NULL / DLT_LOOP, raw IP (DLT_RAW, LINKTYPE_RAW,
 * DLT_IPV4, DLT_IPV6). IPv4 with options; IPv6 with an extension header walk.
 * IP fragments are counted and not reassembled. TCP checksums are not
 * checked (offloading makes captured checksums wrong). Never reads outside
 * pkt->data[0..caplen). */
#ifndef AGENT_SOURCE_DECODE_H
#define AGENT_SOURCE_DECODE_H
#include <stdbool.h>
#include <stdint.h>

#include "source/source.h"

#define AGENT_TCP_FIN 0x01
#define AGENT_TCP_SYN 0x02
#define AGENT_TCP_RST 0x04
#define AGENT_TCP_PSH 0x08
#define AGENT_TCP_ACK 0x10
#define AGENT_TCP_URG 0x20

enum agent_decode_result {
    AGENT_DEC_TCP = 0,         /* seg filled */
    AGENT_DEC_NOT_TCP = 1,     /* valid packet, not TCP (ARP, UDP, ICMP, ...) */
    AGENT_DEC_FRAGMENT = 2,    /* IPv4/IPv6 fragment: counted, dropped */
    AGENT_DEC_ERROR = -1,      /* truncated or malformed headers */
    AGENT_DEC_BAD_LINK = -2,   /* unsupported link type */
};

struct agent_tcp_seg {
    int family;                /* AF_INET / AF_INET6 */
    uint8_t src[16], dst[16];  /* IPv4 in the first 4 bytes, rest zero */
    uint16_t sport, dport;
    uint32_t seq, ack;
    uint8_t flags;             /* AGENT_TCP_* */
    uint16_t win;
    const uint8_t *payload;    /* into the packet */
    uint32_t paylen;           /* payload bytes captured (at payload) */
    uint32_t wirelen;          /* payload bytes on the wire (> paylen when truncated) */
};

/* True if agent_decode() understands this link type. */
bool agent_decode_link_supported(int linktype);

/* Decodes pkt. Returns enum agent_decode_result. */
int agent_decode(const struct agent_pkt *pkt, struct agent_tcp_seg *seg);

#endif
