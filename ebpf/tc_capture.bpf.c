// SPDX-License-Identifier: GPL-2.0
/* ebpf-tc engine: clsact ingress/egress programs that keep TCP packets of the
 * chosen ports (map "ports", changeable at run time) and copy headers plus
 * payload up to the snap length into a ring buffer. Failed reservations are
 * counted per CPU ("drops"). The programs never change or drop a packet:
 * they return TC_ACT_UNSPEC so other filters still run. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "capture_event.h"

#define TC_ACT_UNSPEC (-1)
#define ETH_P_IP   0x0800
#define ETH_P_IPV6 0x86DD
#define ETH_P_8021Q 0x8100
#define ETH_P_8021AD 0x88A8
#define IPPROTO_TCP_ 6

char LICENSE[] SEC("license") = "GPL";

/* Submit flags for a record of sz bytes (what was reserved); see sm_rb_flags(). Set
 * after the maps below. */
#define RB_FLAGS(sz, shift) sm_rb_flags(bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA), (sz), (shift))

struct {
    __uint(type, BPF_MAP_TYPE_RINGBUF);
    __uint(max_entries, 1 << 24);          /* resized by user space before load */
} events SEC(".maps");

SM_PORTS_MAP;

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, struct sm_tc_config);
} tc_config SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 64);
    __type(key, __u32);                    /* ifindex */
    __type(value, __u32);                  /* SM_TC_L2_* */
} tc_ifaces SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, __u64);
} drops SEC(".maps");

static __always_inline int port_match(const struct sm_tc_config *cfg, __u16 sport, __u16 dport)
{
    if (cfg->all_ports)
        return 1;
    return sm_port_in(&ports, sport) || sm_port_in(&ports, dport);
}

/* Reserves a record of constant size cls, copies cap (<= cls) bytes. */
static __always_inline int emit(struct __sk_buff *skb, __u32 cap, __u32 cls, __u8 dir, __u32 l2, __u32 shift)
{
    struct sm_tc_event *e = bpf_ringbuf_reserve(&events, sizeof(*e) + cls, 0);
    if (!e) {
        __u32 k = 0;
        __u64 *d = bpf_map_lookup_elem(&drops, &k);
        if (d)
            *d += 1;
        return 0;
    }
    e->ts_ns = bpf_ktime_get_ns();
    e->ifindex = skb->ifindex;
    e->len = skb->len;
    e->dir = dir;
    e->l2 = (__u8)l2;
    e->pad = 0;
    if (cap > 0) {
        /* cls is a power of two: the mask tells the verifier 1 <= c + 1 <= cls */
        __u32 c = (cap - 1) & (cls - 1);
        cap = c + 1;
        if (bpf_skb_load_bytes(skb, 0, (void *)(e + 1), c + 1) < 0)
            cap = 0;
    }
    e->caplen = cap;
    bpf_ringbuf_submit(e, RB_FLAGS(sizeof(*e) + cls, shift));
    return 0;
}

/* Headers through bpf_skb_load_bytes (any skb layout). 1: TCP, *sport and
 * *dport set; 0: not a packet for us. */
static __always_inline int ports_copied(struct __sk_buff *skb, __u32 l2, __u16 *sport, __u16 *dport)
{
    __u32 off = 0;
    __u16 proto;
    if (l2 == SM_TC_L2_ETHER) {
        struct { __u8 dst[6], src[6]; __be16 type; } eth;
        if (bpf_skb_load_bytes(skb, 0, &eth, sizeof(eth)) < 0)
            return 0;
        proto = bpf_ntohs(eth.type);
        off = sizeof(eth);
        for (int i = 0; i < 2; i++) {      /* VLAN tags left in the frame */
            if (proto != ETH_P_8021Q && proto != ETH_P_8021AD)
                break;
            struct { __be16 tci, type; } vl;
            if (bpf_skb_load_bytes(skb, off, &vl, sizeof(vl)) < 0)
                return 0;
            proto = bpf_ntohs(vl.type);
            off += sizeof(vl);
        }
    } else {
        proto = bpf_ntohs(skb->protocol);
    }
    if (proto == ETH_P_IP) {
        __u8 vihl, p;
        if (bpf_skb_load_bytes(skb, off, &vihl, 1) < 0 || bpf_skb_load_bytes(skb, off + 9, &p, 1) < 0)
            return 0;
        if (p != IPPROTO_TCP_)
            return 0;
        __be16 frag;
        if (bpf_skb_load_bytes(skb, off + 6, &frag, 2) < 0)
            return 0;
        if (bpf_ntohs(frag) & 0x1fff)      /* non-first fragment: no TCP header */
            return 0;
        off += (vihl & 0x0f) * 4;
    } else if (proto == ETH_P_IPV6) {
        __u8 nh;
        if (bpf_skb_load_bytes(skb, off + 6, &nh, 1) < 0 || nh != IPPROTO_TCP_)
            return 0;                      /* extension headers: not captured */
        off += 40;
    } else {
        return 0;
    }
    __be16 pp[2];
    if (bpf_skb_load_bytes(skb, off, pp, sizeof(pp)) < 0)
        return 0;
    *sport = bpf_ntohs(pp[0]);
    *dport = bpf_ntohs(pp[1]);
    return 1;
}

/* The same from the skb's linear data (direct packet access: no helper call
 * per field; on lo and most NICs every header is there). -1: a header is
 * not in the linear part, use ports_copied(). */
static __always_inline int ports_direct(struct __sk_buff *skb, __u32 l2, __u16 *sport, __u16 *dport)
{
    void *data = (void *)(long)skb->data, *end = (void *)(long)skb->data_end;
    __u32 off = 0;
    __u16 proto;
    if (l2 == SM_TC_L2_ETHER) {
        struct ethhdr *eth = data;
        if ((void *)(eth + 1) > end)
            return -1;
        proto = bpf_ntohs(eth->h_proto);
        off = sizeof(*eth);
        for (int i = 0; i < 2; i++) {
            if (proto != ETH_P_8021Q && proto != ETH_P_8021AD)
                break;
            __be16 *vl = data + off;       /* TCI, then the next type */
            if ((void *)(vl + 2) > end)
                return -1;
            proto = bpf_ntohs(vl[1]);
            off += 4;
        }
    } else {
        proto = bpf_ntohs(skb->protocol);
    }
    if (proto == ETH_P_IP) {
        struct iphdr *ip = data + off;
        if ((void *)(ip + 1) > end)
            return -1;
        if (ip->protocol != IPPROTO_TCP_ || (bpf_ntohs(ip->frag_off) & 0x1fff))
            return 0;
        off += ip->ihl * 4;
    } else if (proto == ETH_P_IPV6) {
        struct ipv6hdr *ip6 = data + off;
        if ((void *)(ip6 + 1) > end)
            return -1;
        if (ip6->nexthdr != IPPROTO_TCP_)
            return 0;
        off += sizeof(*ip6);
    } else {
        return 0;
    }
    if (off > 128)                         /* bound for the verifier: 14 + 8 + 60 at most */
        return 0;
    __be16 *pp = data + off;
    if ((void *)(pp + 2) > end)
        return -1;
    *sport = bpf_ntohs(pp[0]);
    *dport = bpf_ntohs(pp[1]);
    return 1;
}

static __always_inline int handle(struct __sk_buff *skb, __u8 dir)
{
    __u32 k = 0, ifindex = skb->ifindex, l2 = SM_TC_L2_ETHER;
    const struct sm_tc_config *cfg = bpf_map_lookup_elem(&tc_config, &k);
    __u16 sport, dport;
    if (!cfg)
        return TC_ACT_UNSPEC;
    if (cfg->raw_l2) {                     /* a hash lookup per packet only where needed */
        const __u32 *l2p = bpf_map_lookup_elem(&tc_ifaces, &ifindex);
        if (l2p)
            l2 = *l2p;
    }
    int r = ports_direct(skb, l2, &sport, &dport);
    if (r < 0)
        r = ports_copied(skb, l2, &sport, &dport);
    if (r <= 0 || !port_match(cfg, sport, dport))
        return TC_ACT_UNSPEC;

    __u32 cap = skb->len, snap = cfg->snaplen;
    if (snap > SM_TC_SNAP_MAX)
        snap = SM_TC_SNAP_MAX;
    if (cap > snap)
        cap = snap;
    if (cap <= 256)
        emit(skb, cap, 256, dir, l2, cfg->wake_shift);
    else if (cap <= 2048)
        emit(skb, cap, 2048, dir, l2, cfg->wake_shift);
    else if (cap <= 16384)
        emit(skb, cap, 16384, dir, l2, cfg->wake_shift);
    else
        emit(skb, cap, SM_TC_SNAP_MAX, dir, l2, cfg->wake_shift);
    return TC_ACT_UNSPEC;
}

SEC("tc")
int sm_tc_ingress(struct __sk_buff *skb)
{
    return handle(skb, SM_TC_INGRESS);
}

SEC("tc")
int sm_tc_egress(struct __sk_buff *skb)
{
    return handle(skb, SM_TC_EGRESS);
}
