/* Link/IP/TCP decoding (agent/source/decode.c) and the BPF filter builder. */
#include <sys/socket.h>

#include "sm_test.h"
#include <sm/util.h>
#include "test_flow_pkt.h"

#include <sm/err.h>

static int check_tcp(const struct agent_pkt *pkt, const struct tp *t, const char *payload)
{
    struct agent_tcp_seg seg;
    SM_CHECK_EQ_INT(agent_decode(pkt, &seg), AGENT_DEC_TCP);
    SM_CHECK_EQ_INT(seg.family, t->v6 ? AF_INET6 : AF_INET);
    SM_CHECK_EQ_INT(seg.sport, t->cport);
    SM_CHECK_EQ_INT(seg.dport, t->sport);
    SM_CHECK_EQ_INT(seg.seq, 0x01020304);
    SM_CHECK_EQ_INT(seg.ack, 0xa0b0c0d0u);
    SM_CHECK_EQ_INT(seg.flags, AGENT_TCP_ACK | AGENT_TCP_PSH);
    SM_CHECK_MEM(seg.src, t->cip, t->v6 ? 16 : 4);
    SM_CHECK_MEM(seg.dst, t->sip, t->v6 ? 16 : 4);
    SM_CHECK_EQ_INT(seg.paylen, strlen(payload));
    SM_CHECK_EQ_INT(seg.wirelen, strlen(payload));
    SM_CHECK_MEM(seg.payload, payload, strlen(payload));
    return 0;
}

static const struct agent_pkt *build(struct tp *t, const char *pl)
{
    return tp_tcp(t, 0, 0x01020304, 0xa0b0c0d0u, AGENT_TCP_ACK | AGENT_TCP_PSH, pl, strlen(pl));
}

static int test_link_types(void)
{
    static const int links[] = { AGENT_DLT_EN10MB, AGENT_DLT_LINUX_SLL, AGENT_DLT_LINUX_SLL2,
                                 AGENT_DLT_NULL, AGENT_DLT_LOOP, AGENT_DLT_RAW, AGENT_LINKTYPE_RAW,
                                 AGENT_DLT_RAW_BSD };
    static struct tp t;
    for (size_t i = 0; i < SM_ARRAY_LEN(links); i++)
        for (int v6 = 0; v6 < 2; v6++) {
            tp_init(&t, links[i], v6, 41000, 9200);
            if (check_tcp(build(&t, "hello"), &t, "hello")) {
                fprintf(stderr, "link %d v6 %d\n", links[i], v6);
                return 1;
            }
        }
    tp_init(&t, AGENT_DLT_IPV4, false, 1, 2);
    SM_CHECK(!check_tcp(build(&t, "x"), &t, "x"));
    tp_init(&t, AGENT_DLT_IPV6, true, 1, 2);
    SM_CHECK(!check_tcp(build(&t, "x"), &t, "x"));
    /* DLT_NULL written big-endian by another machine */
    tp_init(&t, AGENT_DLT_NULL, false, 1, 2);
    build(&t, "y");
    t.buf[0] = 0; t.buf[3] = 2;
    SM_CHECK(!check_tcp(&t.pkt, &t, "y"));
    /* unknown link type */
    struct agent_tcp_seg seg;
    t.pkt.linktype = 9999;
    SM_CHECK_EQ_INT(agent_decode(&t.pkt, &seg), AGENT_DEC_BAD_LINK);
    return 0;
}

static int test_vlan(void)
{
    static struct tp t;
    for (int tags = 1; tags <= 3; tags++) {
        tp_init(&t, AGENT_DLT_EN10MB, tags == 2, 5000, 9200);
        t.vlans = tags;
        SM_CHECK(!check_tcp(build(&t, "vlan"), &t, "vlan"));
    }
    tp_init(&t, AGENT_DLT_EN10MB, false, 5000, 9200);
    t.vlans = 5;                                   /* too many tags */
    struct agent_tcp_seg seg;
    SM_CHECK_EQ_INT(agent_decode(build(&t, "z"), &seg), AGENT_DEC_ERROR);
    return 0;
}

static int test_ipv4_options_padding_fragments(void)
{
    static struct tp t;
    struct agent_tcp_seg seg;
    tp_init(&t, AGENT_DLT_EN10MB, false, 5000, 9200);
    build(&t, "opt");
    /* insert 8 bytes of IP options (NOP x4, EOL x4) */
    uint8_t *ip = t.buf + 14;
    size_t tail = t.pkt.caplen - 14 - 20;
    memmove(ip + 28, ip + 20, tail);
    memset(ip + 20, 1, 4);
    memset(ip + 24, 0, 4);
    ip[0] = 0x47;
    tp_put16(ip + 2, (uint16_t)(28 + tail));
    t.pkt.caplen = t.pkt.len = (uint32_t)(14 + 28 + tail);
    SM_CHECK(!check_tcp(&t.pkt, &t, "opt"));
    /* Ethernet padding after the IP packet is not payload */
    memset(t.buf + t.pkt.caplen, 0xee, 10);
    t.pkt.caplen += 10;
    t.pkt.len += 10;
    SM_CHECK(!check_tcp(&t.pkt, &t, "opt"));
    /* fragments */
    build(&t, "frag");
    tp_put16(t.buf + 14 + 6, 0x2000);              /* MF */
    SM_CHECK_EQ_INT(agent_decode(&t.pkt, &seg), AGENT_DEC_FRAGMENT);
    tp_put16(t.buf + 14 + 6, 0x0010);              /* offset 128 */
    SM_CHECK_EQ_INT(agent_decode(&t.pkt, &seg), AGENT_DEC_FRAGMENT);
    /* UDP */
    build(&t, "udp");
    t.buf[14 + 9] = 17;
    SM_CHECK_EQ_INT(agent_decode(&t.pkt, &seg), AGENT_DEC_NOT_TCP);
    /* ARP */
    build(&t, "arp");
    tp_put16(t.buf + 12, 0x0806);
    SM_CHECK_EQ_INT(agent_decode(&t.pkt, &seg), AGENT_DEC_NOT_TCP);
    /* bad IHL, total length beyond the wire */
    build(&t, "bad");
    t.buf[14] = 0x44;
    SM_CHECK_EQ_INT(agent_decode(&t.pkt, &seg), AGENT_DEC_ERROR);
    build(&t, "bad");
    tp_put16(t.buf + 14 + 2, 1400);
    SM_CHECK_EQ_INT(agent_decode(&t.pkt, &seg), AGENT_DEC_ERROR);
    /* bad TCP data offset */
    build(&t, "bad");
    t.buf[14 + 20 + 12] = 4 << 4;
    SM_CHECK_EQ_INT(agent_decode(&t.pkt, &seg), AGENT_DEC_ERROR);
    t.buf[14 + 20 + 12] = 15 << 4;
    SM_CHECK_EQ_INT(agent_decode(&t.pkt, &seg), AGENT_DEC_ERROR);
    return 0;
}

static int test_ipv6_extension_headers(void)
{
    static struct tp t;
    struct agent_tcp_seg seg;
    tp_init(&t, AGENT_DLT_EN10MB, true, 5000, 9200);
    build(&t, "ext");
    /* hop-by-hop (8 bytes) then destination options (16 bytes) then TCP */
    uint8_t *ip = t.buf + 14;
    size_t tail = t.pkt.caplen - 14 - 40;
    memmove(ip + 64, ip + 40, tail);
    memset(ip + 40, 0, 24);
    ip[6] = 0;                 /* hop-by-hop */
    ip[40] = 60; ip[41] = 0;   /* next: dest opts, len 8 */
    ip[48] = 6;  ip[49] = 1;   /* next: TCP, len 16 */
    tp_put16(ip + 4, (uint16_t)(24 + tail));
    t.pkt.caplen = t.pkt.len = (uint32_t)(14 + 64 + tail);
    SM_CHECK(!check_tcp(&t.pkt, &t, "ext"));
    /* atomic fragment header (offset 0, M=0) is walked over */
    build(&t, "atom");
    tail = t.pkt.caplen - 14 - 40;
    memmove(ip + 48, ip + 40, tail);
    memset(ip + 40, 0, 8);
    ip[6] = 44; ip[40] = 6;
    tp_put16(ip + 4, (uint16_t)(8 + tail));
    t.pkt.caplen = t.pkt.len = (uint32_t)(14 + 48 + tail);
    SM_CHECK(!check_tcp(&t.pkt, &t, "atom"));
    tp_put16(ip + 42, 0x0001);                     /* M set: a real fragment */
    SM_CHECK_EQ_INT(agent_decode(&t.pkt, &seg), AGENT_DEC_FRAGMENT);
    /* ICMPv6, no-next-header */
    build(&t, "icmp");
    ip[6] = 58;
    SM_CHECK_EQ_INT(agent_decode(&t.pkt, &seg), AGENT_DEC_NOT_TCP);
    ip[6] = 59;
    SM_CHECK_EQ_INT(agent_decode(&t.pkt, &seg), AGENT_DEC_NOT_TCP);
    /* extension header running past the packet */
    build(&t, "x");
    ip[6] = 0;
    ip[40] = 6;
    ip[41] = 200;
    SM_CHECK_EQ_INT(agent_decode(&t.pkt, &seg), AGENT_DEC_ERROR);
    return 0;
}

static int test_truncation_never_overreads(void)
{
    static struct tp t;
    struct agent_tcp_seg seg;
    static const int links[] = { AGENT_DLT_EN10MB, AGENT_DLT_LINUX_SLL, AGENT_DLT_LINUX_SLL2,
                                 AGENT_DLT_NULL, AGENT_DLT_RAW };
    for (size_t i = 0; i < SM_ARRAY_LEN(links); i++)
        for (int v6 = 0; v6 < 2; v6++) {
            tp_init(&t, links[i], v6, 1, 2);
            build(&t, "0123456789");
            uint32_t full = t.pkt.caplen;
            for (uint32_t cut = 0; cut < full; cut++) {
                /* copy to an exact-size heap buffer so ASan sees any over-read */
                uint8_t *copy = malloc(cut ? cut : 1);
                memcpy(copy, t.buf, cut);
                struct agent_pkt pk = t.pkt;
                pk.data = copy;
                pk.caplen = cut;
                int rc = agent_decode(&pk, &seg);
                free(copy);
                if (cut >= full - 10) {             /* headers whole: payload truncated */
                    SM_CHECK_EQ_INT(rc, AGENT_DEC_TCP);
                    SM_CHECK_EQ_INT(seg.paylen, cut - (full - 10));
                    SM_CHECK_EQ_INT(seg.wirelen, 10);
                } else {
                    SM_CHECK_EQ_INT(rc, AGENT_DEC_ERROR);
                }
            }
        }
    return 0;
}

static int test_filter_builder(void)
{
    char buf[256];
    uint16_t ports[] = { 9200, 9300 };
    const char *hosts[] = { "10.0.0.1", "fd00::2" };
    SM_CHECK_EQ_INT(agent_source_build_filter(ports, 2, NULL, 0, buf, sizeof(buf)), SM_OK);
    SM_CHECK_EQ_STR(buf, "tcp and (port 9200 or port 9300)");
    SM_CHECK_EQ_INT(agent_source_build_filter(ports, 1, hosts, 2, buf, sizeof(buf)), SM_OK);
    SM_CHECK_EQ_STR(buf, "tcp and (port 9200) and (host 10.0.0.1 or host fd00::2)");
    SM_CHECK_EQ_INT(agent_source_build_filter(NULL, 0, NULL, 0, buf, sizeof(buf)), SM_OK);
    SM_CHECK_EQ_STR(buf, "tcp");
    SM_CHECK_EQ_INT(agent_source_build_filter(ports, 2, NULL, 0, buf, 10), SM_EFULL);
    SM_CHECK(agent_source_find("pcap") == &agent_source_pcap_live);
    SM_CHECK(agent_source_find("pcap-file") == &agent_source_pcap_file);
    SM_CHECK(agent_source_find("nope") == NULL);
    SM_CHECK(agent_source_pcap_live.caps & AGENT_CAP_NET_RAW);
    return 0;
}

SM_TEST_MAIN(SM_TC(test_link_types), SM_TC(test_vlan), SM_TC(test_ipv4_options_padding_fragments),
             SM_TC(test_ipv6_extension_headers), SM_TC(test_truncation_never_overreads),
             SM_TC(test_filter_builder))
