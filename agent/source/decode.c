/* Link/IP/TCP decoding; see decode.h. */
#include "source/decode.h"

#include <string.h>
#include <sys/socket.h>

#define MAX_VLAN_TAGS 4
#define MAX_V6_EXT    8

static uint16_t be16(const uint8_t *p) { return (uint16_t)((p[0] << 8) | p[1]); }
static uint32_t be32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}
static uint32_t le32(const uint8_t *p)
{
    return ((uint32_t)p[3] << 24) | ((uint32_t)p[2] << 16) | ((uint32_t)p[1] << 8) | p[0];
}

/* p/caplen: the transport header onwards, wire: its length on the wire. */
static int decode_tcp(const uint8_t *p, uint32_t caplen, uint32_t wire, struct agent_tcp_seg *seg)
{
    if (caplen < 20 || wire < 20)
        return AGENT_DEC_ERROR;
    uint32_t doff = (uint32_t)(p[12] >> 4) * 4;
    if (doff < 20 || doff > caplen || doff > wire)
        return AGENT_DEC_ERROR;
    seg->sport = be16(p);
    seg->dport = be16(p + 2);
    seg->seq = be32(p + 4);
    seg->ack = be32(p + 8);
    seg->flags = p[13] & 0x3f;
    seg->win = be16(p + 14);
    seg->payload = p + doff;
    seg->paylen = caplen - doff;
    seg->wirelen = wire - doff;
    if (seg->paylen > seg->wirelen)
        seg->paylen = seg->wirelen;
    return AGENT_DEC_TCP;
}

/* avail: captured bytes from p; wire: bytes on the wire from p. */
static int decode_ipv4(const uint8_t *p, uint32_t avail, uint32_t wire, struct agent_tcp_seg *seg)
{
    if (avail < 20 || (p[0] >> 4) != 4)
        return AGENT_DEC_ERROR;
    uint32_t ihl = (uint32_t)(p[0] & 0x0f) * 4;
    uint32_t tot = be16(p + 2);
    if (tot == 0)               /* TSO/GSO super-packets captured before segmentation */
        tot = wire;
    if (ihl < 20 || ihl > avail || tot < ihl)
        return AGENT_DEC_ERROR;
    if (tot > wire)
        return AGENT_DEC_ERROR;  /* claims more than was on the wire */
    if (be16(p + 6) & 0x3fff)   /* MF or fragment offset */
        return AGENT_DEC_FRAGMENT;
    if (p[9] != 6)
        return AGENT_DEC_NOT_TCP;
    seg->family = AF_INET;
    memset(seg->src, 0, sizeof(seg->src));
    memset(seg->dst, 0, sizeof(seg->dst));
    memcpy(seg->src, p + 12, 4);
    memcpy(seg->dst, p + 16, 4);
    uint32_t cap = avail < tot ? avail : tot;   /* drop Ethernet padding */
    return decode_tcp(p + ihl, cap - ihl, tot - ihl, seg);
}

static int decode_ipv6(const uint8_t *p, uint32_t avail, uint32_t wire, struct agent_tcp_seg *seg)
{
    if (avail < 40 || (p[0] >> 4) != 6)
        return AGENT_DEC_ERROR;
    uint32_t plen = be16(p + 4);
    if (plen == 0)              /* jumbogram or GSO: take what the wire had */
        plen = wire - 40;
    uint32_t tot = 40 + plen;
    if (tot > wire)
        return AGENT_DEC_ERROR;
    uint32_t cap = avail < tot ? avail : tot;
    uint8_t nh = p[6];
    uint32_t off = 40;
    seg->family = AF_INET6;
    memcpy(seg->src, p + 8, 16);
    memcpy(seg->dst, p + 24, 16);
    for (int i = 0; i <= MAX_V6_EXT; i++) {
        uint32_t len;
        switch (nh) {
        case 6:
            return decode_tcp(p + off, cap - off, tot - off, seg);
        case 0: case 43: case 60: case 135: case 139: case 140:   /* hop, routing, dest, mobility, HIP, shim6 */
            if (off + 8 > cap)
                return AGENT_DEC_ERROR;
            len = ((uint32_t)p[off + 1] + 1) * 8;
            break;
        case 44:                                /* fragment */
            if (off + 8 > cap)
                return AGENT_DEC_ERROR;
            if (be16(p + off + 2) != 0)         /* offset or M set: a real fragment */
                return AGENT_DEC_FRAGMENT;
            len = 8;                            /* atomic fragment: carry on */
            break;
        case 51:                                /* AH */
            if (off + 8 > cap)
                return AGENT_DEC_ERROR;
            len = ((uint32_t)p[off + 1] + 2) * 4;
            break;
        default:                                /* 59 no next header, ESP, UDP, ICMPv6, ... */
            return AGENT_DEC_NOT_TCP;
        }
        nh = p[off];
        if (len > cap - off)
            return AGENT_DEC_ERROR;
        off += len;
    }
    return AGENT_DEC_ERROR;                     /* too many extension headers */
}

static int decode_l3(uint16_t ethertype, const uint8_t *p, uint32_t avail, uint32_t wire,
                     struct agent_tcp_seg *seg)
{
    for (int tags = 0; ethertype == 0x8100 || ethertype == 0x88a8 || ethertype == 0x9100; tags++) {
        if (tags >= MAX_VLAN_TAGS || avail < 4)
            return AGENT_DEC_ERROR;
        ethertype = be16(p + 2);
        p += 4;
        avail -= 4;
        wire -= 4;
    }
    switch (ethertype) {
    case 0x0800: return decode_ipv4(p, avail, wire, seg);
    case 0x86dd: return decode_ipv6(p, avail, wire, seg);
    default:     return AGENT_DEC_NOT_TCP;
    }
}

static int decode_ip_any(const uint8_t *p, uint32_t avail, uint32_t wire, struct agent_tcp_seg *seg)
{
    if (avail < 1)
        return AGENT_DEC_ERROR;
    switch (p[0] >> 4) {
    case 4:  return decode_ipv4(p, avail, wire, seg);
    case 6:  return decode_ipv6(p, avail, wire, seg);
    default: return AGENT_DEC_ERROR;
    }
}

bool agent_decode_link_supported(int linktype)
{
    switch (linktype) {
    case AGENT_DLT_EN10MB: case AGENT_DLT_LINUX_SLL: case AGENT_DLT_LINUX_SLL2:
    case AGENT_DLT_NULL: case AGENT_DLT_LOOP: case AGENT_DLT_RAW: case AGENT_DLT_RAW_BSD:
    case AGENT_LINKTYPE_RAW: case AGENT_DLT_IPV4: case AGENT_DLT_IPV6:
        return true;
    default:
        return false;
    }
}

int agent_decode(const struct agent_pkt *pkt, struct agent_tcp_seg *seg)
{
    const uint8_t *p = pkt->data;
    uint32_t cap = pkt->caplen;
    uint32_t wire = pkt->len < pkt->caplen ? pkt->caplen : pkt->len;
    uint32_t fam;

    switch (pkt->linktype) {
    case AGENT_DLT_EN10MB:
        if (cap < 14)
            return AGENT_DEC_ERROR;
        return decode_l3(be16(p + 12), p + 14, cap - 14, wire - 14, seg);
    case AGENT_DLT_LINUX_SLL:
        if (cap < 16)
            return AGENT_DEC_ERROR;
        return decode_l3(be16(p + 14), p + 16, cap - 16, wire - 16, seg);
    case AGENT_DLT_LINUX_SLL2:
        if (cap < 20)
            return AGENT_DEC_ERROR;
        return decode_l3(be16(p), p + 20, cap - 20, wire - 20, seg);
    case AGENT_DLT_NULL:
    case AGENT_DLT_LOOP:
        if (cap < 4)
            return AGENT_DEC_ERROR;
        if (pkt->linktype == AGENT_DLT_LOOP)
            fam = be32(p);
        else {
            fam = le32(p);              /* host order of the capturing machine */
            if (fam > 0xffff)
                fam = be32(p);
        }
        if (fam == 2)
            return decode_ipv4(p + 4, cap - 4, wire - 4, seg);
        if (fam == 10 || fam == 24 || fam == 28 || fam == 30)   /* AF_INET6: Linux, BSDs, macOS */
            return decode_ipv6(p + 4, cap - 4, wire - 4, seg);
        return AGENT_DEC_NOT_TCP;
    case AGENT_DLT_RAW:
    case AGENT_DLT_RAW_BSD:
    case AGENT_LINKTYPE_RAW:
        return decode_ip_any(p, cap, wire, seg);
    case AGENT_DLT_IPV4:
        return decode_ipv4(p, cap, wire, seg);
    case AGENT_DLT_IPV6:
        return decode_ipv6(p, cap, wire, seg);
    default:
        return AGENT_DEC_BAD_LINK;
    }
}
