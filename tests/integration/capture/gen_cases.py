#!/usr/bin/python3
"""Writes crafted pcaps with scapy for the capture integration test and a
JSON file of what the reassembler must produce for each.

usage: gen_cases.py OUTDIR   -> OUTDIR/<case>.pcap and OUTDIR/cases.json
       gen_cases.py OUTDIR --fuzz-seeds DIR   also writes each case as a
           tests/fuzz/fuzz_reassembly.c input (TLV packet records) into DIR

Every case is one or more TCP conversations described abstractly (direction,
flags, seq, ack, payload), then damaged (reordered, duplicated, overlapped,
cut) and rendered on a link type (Ethernet, 802.1Q, QinQ, Linux SLL, SLL2,
DLT_NULL loopback, raw IP; IPv4 or IPv6)."""
import json
import logging
import os
import random
import struct
import sys

from scapy.all import (IP, IPv6, TCP, CookedLinux, Dot1AD, Dot1Q, Ether,
                       Loopback, PcapWriter, Raw, conf)

try:
    from scapy.layers.l2 import CookedLinuxV2
except ImportError:  # pragma: no cover
    CookedLinuxV2 = None

SPORT = 9200
rnd = random.Random(1234)


def conv(req, resp, cport=40001, isn_c=1000, isn_s=50000, mss=100, handshake=True, close="fin"):
    """Abstract packets: (dir, flags, seq, ack, payload); dir 0 = client->server."""
    pk = []
    c, s = isn_c, isn_s
    if handshake:
        pk.append((0, "S", c, 0, b""))
        pk.append((1, "SA", s, c + 1, b""))
        c += 1
        s += 1
        pk.append((0, "A", c, s, b""))
    for i in range(0, len(req), mss):
        chunk = req[i:i + mss]
        pk.append((0, "PA", c, s, chunk))
        c += len(chunk)
    pk.append((1, "A", s, c, b""))
    for i in range(0, len(resp), mss):
        chunk = resp[i:i + mss]
        pk.append((1, "PA", s, c, chunk))
        s += len(chunk)
    pk.append((0, "A", c, s, b""))
    if close == "fin":
        pk.append((0, "FA", c, s, b""))
        pk.append((1, "FA", s, c + 1, b""))
        pk.append((0, "A", c + 1, s + 1, b""))
    elif close == "rst":
        pk.append((1, "R", s, 0, b""))
    return [dict(dir=d, flags=f, seq=q & 0xffffffff, ack=a & 0xffffffff, data=p, cport=cport)
            for (d, f, q, a, p) in pk]


def render(pkts, link="ether", v6=False):
    out = []
    t = 1700000000.0
    cip, sip = ("fd00::1", "fd00::2") if v6 else ("10.1.0.1", "10.1.0.2")
    for p in pkts:
        src, dst = (cip, sip) if p["dir"] == 0 else (sip, cip)
        sp, dp = (p["cport"], SPORT) if p["dir"] == 0 else (SPORT, p["cport"])
        l3 = (IPv6(src=src, dst=dst) if v6 else IP(src=src, dst=dst, flags="DF"))
        pkt = l3 / TCP(sport=sp, dport=dp, flags=p["flags"], seq=p["seq"], ack=p["ack"], window=65535)
        if p["data"]:
            pkt = pkt / Raw(p["data"])
        if link == "ether":
            pkt = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / pkt
        elif link == "vlan":
            pkt = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / Dot1Q(vlan=42) / pkt
        elif link == "qinq":
            pkt = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / Dot1AD(vlan=7) / Dot1Q(vlan=42) / pkt
        elif link == "sll":
            pkt = CookedLinux(pkttype=0, lladdrtype=1, lladdrlen=6, proto=0x86DD if v6 else 0x0800) / pkt
        elif link == "sll2":
            pkt = CookedLinuxV2(proto=0x86DD if v6 else 0x0800, lladdrtype=1, lladdrlen=6) / pkt
        elif link == "null":
            pkt = Loopback(type=24 if v6 else 2) / pkt
        elif link == "raw":
            pass
        t += 0.001
        pkt.time = t
        out.append(pkt)
    return out


LINKTYPES = {"ether": 1, "vlan": 1, "qinq": 1, "sll": 113, "sll2": 276, "null": 0, "raw": 101}


FUZZ_LINK = {"ether": 0, "vlan": 0, "qinq": 0, "sll": 1, "sll2": 2, "null": 3, "raw": 5}
FUZZ_DIR = None


def write(outdir, name, pkts, link="ether", v6=False):
    path = os.path.join(outdir, name + ".pcap")
    w = PcapWriter(path, linktype=LINKTYPES[link], sync=True)
    rendered = render(pkts, link, v6)
    for p in rendered:
        w.write(p)
    w.close()
    if FUZZ_DIR:
        with open(os.path.join(FUZZ_DIR, name), "wb") as f:
            for p in rendered:
                b = bytes(p)
                f.write(struct.pack("<BH", FUZZ_LINK[link] | (1 << 3), len(b)) + b)
    return path


def body(n, seed):
    r = random.Random(seed)
    return bytes(r.randrange(256) for _ in range(n))


REQ = b"POST /idx/_doc/1 HTTP/1.1\r\nHost: es\r\nContent-Type: application/json\r\nContent-Length: 300\r\n\r\n" + \
      b"{\"f\":\"" + b"a" * 290 + b"\"}\r\n"
RESP = b"HTTP/1.1 201 Created\r\ncontent-type: application/json\r\ncontent-length: 800\r\n\r\n" + body(800, 7)


def data_packets(pkts, d):
    return [i for i, p in enumerate(pkts) if p["dir"] == d and p["data"]]


def main():
    global FUZZ_DIR
    outdir = sys.argv[1]
    if len(sys.argv) > 3 and sys.argv[2] == "--fuzz-seeds":
        FUZZ_DIR = sys.argv[3]
        os.makedirs(FUZZ_DIR, exist_ok=True)
    os.makedirs(outdir, exist_ok=True)
    conf.verb = 0
    logging.getLogger("scapy.runtime").setLevel(logging.ERROR)
    cases = {}

    def add(name, pkts, conns, link="ether", v6=False):
        write(outdir, name, pkts, link, v6)
        cases[name] = {"pcap": name + ".pcap", "conns": conns}

    def exp(c2s, s2c, close="fin", mid=False, gap_c2s=0, gap_s2c=0, cport=40001):
        return {"c2s": c2s.hex(), "s2c": s2c.hex(), "close": close, "mid": mid,
                "gap_c2s": gap_c2s, "gap_s2c": gap_s2c, "cport": cport}

    base = conv(REQ, RESP)
    add("inorder", base, [exp(REQ, RESP)])

    # reordering: shuffle the data segments of each direction within a window
    p = conv(REQ, RESP)
    for d in (0, 1):
        idx = data_packets(p, d)
        seg = [p[i] for i in idx]
        seg = seg[::-1]          # fully reversed
        for i, s in zip(idx, seg):
            p[i] = s
    # ACKs of the receiver come after the data in the original order; move the
    # last pure ACK of each direction after all data so no ACK passes a hole
    add("reorder", p, [exp(REQ, RESP)])

    # retransmissions: every data segment twice, some a third time later
    p = []
    for x in conv(REQ, RESP):
        p.append(x)
        if x["data"]:
            p.append(dict(x))
    p.insert(len(p) - 3, dict(conv(REQ, RESP)[3]))   # an old first segment near the end
    add("retrans", p, [exp(REQ, RESP)])

    # overlaps: a segment covering two queued ones with different bytes; first copy wins
    p = conv(REQ, RESP, mss=100)
    idx = data_packets(p, 0)       # request segments at offsets 0,100,200,...
    first, second, third = p[idx[0]], p[idx[1]], p[idx[2]]
    bogus = dict(second)
    bogus["seq"] = (second["seq"] + 50) & 0xffffffff
    bogus["data"] = b"Z" * 100     # overlaps the end of #2 and the start of #3
    # order: #2, #3, bogus (overlapping queued data), then #1 releases everything
    order = [second, third, bogus, first]
    rest = [x for i, x in enumerate(p) if i not in (idx[0], idx[1], idx[2])]
    k = idx[0]
    p = rest[:k] + order + rest[k:]
    add("overlap", p, [exp(REQ, RESP)])

    # loss: one request segment and one response segment never captured; the
    # receivers' ACKs show they were delivered
    p = conv(REQ, RESP)
    lost_c = p[data_packets(p, 0)[2]]
    lost_s = p[data_packets(p, 1)[4]]
    p = [x for x in p if x is not lost_c and x is not lost_s]
    req_seen = REQ[:200] + REQ[200 + len(lost_c["data"]):]
    resp_seen = RESP[:400] + RESP[400 + len(lost_s["data"]):]
    add("loss", p, [exp(req_seen, resp_seen, gap_c2s=len(lost_c["data"]), gap_s2c=len(lost_s["data"]))])

    # mid-stream: capture starts in the middle of the first request
    p = conv(REQ + REQ, RESP)
    p = p[3 + 2:]                  # drop handshake and two request segments
    add("midstream", p, [exp((REQ + REQ)[200:], RESP, mid=True)])

    # RST after the response
    add("rst", conv(REQ, RESP, close="rst"), [exp(REQ, RESP, close="rst")])

    # port reuse with the first connection's close lost in capture: the new
    # SYN is confirmed by its SYN-ACK, the old connection ends as "replaced"
    a = conv(REQ, RESP, close="lost")
    b = conv(RESP, REQ, isn_c=900000, isn_s=7000000)
    add("port_reuse", a + b, [exp(REQ, RESP, close="replaced"), exp(RESP, REQ)])

    # RSTs behind their sender's position (an old incarnation's, a middlebox's)
    # are ignored: the connection goes on to its FIN
    p = conv(REQ, RESP)
    k = data_packets(p, 1)[2]
    p.insert(k, dict(dir=1, flags="R", seq=(p[k]["seq"] - 100000) & 0xffffffff, ack=0, data=b"",
                     cport=40001))
    k = data_packets(p, 0)[1]
    p.insert(k, dict(dir=0, flags="RA", seq=(p[k]["seq"] - 1) & 0xffffffff, ack=p[k]["ack"], data=b"",
                     cport=40001))
    add("stray_rst", p, [exp(REQ, RESP)])

    # sequence numbers wrapping through 2^32 in both directions
    add("wrap", conv(REQ, RESP, isn_c=0xffffff00, isn_s=0xfffffff0), [exp(REQ, RESP)])

    # link types and IPv6
    for link in ("vlan", "qinq", "sll", "sll2", "null", "raw"):
        for v6 in (False, True):
            if link == "sll2" and CookedLinuxV2 is None:
                continue
            add("link_%s_%s" % (link, "v6" if v6 else "v4"), conv(REQ, RESP), [exp(REQ, RESP)], link, v6)

    # two interleaved connections, one of them reordered and ending in RST
    a = conv(REQ, RESP, cport=40001)
    b = conv(RESP, REQ, cport=40002, isn_c=7, isn_s=9, close="rst")
    p = []
    for i in range(max(len(a), len(b))):
        if i < len(a):
            p.append(a[i])
        if i < len(b):
            p.append(b[i])
    add("two_conns", p, [exp(REQ, RESP, cport=40001), exp(RESP, REQ, close="rst", cport=40002)])

    with open(os.path.join(outdir, "cases.json"), "w") as f:
        json.dump(cases, f, indent=1)


if __name__ == "__main__":
    main()
