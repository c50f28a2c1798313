#!/usr/bin/python3
"""searchmig-agent under floods keeps memory within its configured bounds.

Capture files written directly (Ethernet/IPv4 pcap, struct packing: scapy is
too slow for 200k connections), each with complete "witness" HTTP
transactions before and after the flood:
  syn        200k SYNs from distinct client ports/addresses
  halfopen   20k connections sending 8 KiB of an unfinished request head, no FIN
  giant      one request head of 10 MiB without an empty line
  holes      2000 connections whose first data segment is missing, followed by
             64 KiB of segments that never get their hole filled
Each runs under /usr/bin/time -v with
  --max-flows 1000 --mem-cap 8MiB --max-header-size 64KiB
  --max-http-buffered 8MiB --max-buffered 8MiB
and must exit 0, keep peak RSS under 64 MiB, report the flood in its stderr
summary (evicted / gaps / broken) and still write the witness transactions
(decoded from the output: request and response bytes, exact).

RSS bound: the configured bounds add up to 24 MiB (flow table and
reassembly queues 8, partial HTTP heads 8, open records 8) over the process's
baseline (libraries, about 6 MiB, measured here on a tiny capture and
printed); 64 MiB leaves room for allocator overhead and fragmentation while
failing clearly on any unbounded growth (the unbounded floods would need
160 MiB (halfopen), 128 MiB (holes)). With SM_SANITIZED=1 (ASan build) the
RSS bound is not checked; the flow table's own peak (flow_mem_peak <= --mem-cap)
still is.
Usage: flood_test.py AGENT"""
import os
import re
import struct
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "agent"))

AGENT = sys.argv[1]
PORT = 9200
RSS_BOUND_KIB = 64 * 1024
SANITIZED = os.environ.get("SM_SANITIZED", "0") not in ("", "0", "OFF")
LIMITS = ["--max-flows", "1000", "--mem-cap", "8MiB", "--max-header-size", "64KiB",
          "--max-http-buffered", "8MiB", "--max-buffered", "8MiB"]
MSS = 1448
SERVER = 0x0a000001


class Pcap:
    def __init__(self, path):
        self.f = open(path, "wb")
        self.f.write(struct.pack("<IHHiIII", 0xa1b2c3d4, 2, 4, 0, 0, 262144, 1))
        self.t = 1700000000 * 1000000
        self.n = 0

    def seg(self, cip, cport, c2s, seq, ack, flags, data=b""):
        self.t += 5
        src, dst = (cip, SERVER) if c2s else (SERVER, cip)
        sport, dport = (cport, PORT) if c2s else (PORT, cport)
        ip = struct.pack("!BBHHHBBHII", 0x45, 0, 40 + len(data), self.n & 0xffff, 0x4000, 64, 6, 0, src, dst)
        tcp = struct.pack("!HHIIBBHHH", sport, dport, seq & 0xffffffff, ack & 0xffffffff, 0x50, flags,
                          65535, 0, 0)
        frame = b"\x02\0\0\0\0\x02\x02\0\0\0\0\x01\x08\x00" + ip + tcp + data
        self.f.write(struct.pack("<IIII", self.t // 1000000, self.t % 1000000, len(frame), len(frame)))
        self.f.write(frame)
        self.n += 1

    def close(self):
        self.f.close()


SYN, FIN, RST, PSH, ACK = 0x02, 0x01, 0x04, 0x08, 0x10


class Conn:
    def __init__(self, pc, cip, cport, handshake=True):
        self.pc, self.cip, self.cport = pc, cip, cport
        self.c, self.s = 1000, 50000
        if handshake:
            pc.seg(cip, cport, True, self.c, 0, SYN)
            pc.seg(cip, cport, False, self.s, self.c + 1, SYN | ACK)
            self.c += 1
            self.s += 1
            pc.seg(cip, cport, True, self.c, self.s, ACK)

    def send(self, c2s, data, skip_first=False):
        for off in range(0, len(data), MSS):
            part = data[off:off + MSS]
            if not (skip_first and off == 0):
                if c2s:
                    self.pc.seg(self.cip, self.cport, True, self.c + off, self.s, PSH | ACK, part)
                else:
                    self.pc.seg(self.cip, self.cport, False, self.s + off, self.c, PSH | ACK, part)
        if c2s:
            self.c += len(data)
        else:
            self.s += len(data)

    def fin(self):
        self.pc.seg(self.cip, self.cport, True, self.c, self.s, FIN | ACK)
        self.pc.seg(self.cip, self.cport, False, self.s, self.c + 1, FIN | ACK)
        self.c += 1
        self.s += 1
        self.pc.seg(self.cip, self.cport, True, self.c, self.s, ACK)


def witness(pc, tag, cport):
    """One complete keep-alive connection with two transactions; returns (request bytes, response bytes)."""
    c = Conn(pc, 0x0a630001, cport)
    reqs, resps = b"", b""
    for i in range(2):
        body = (b'{"query":{"match":{"w":"%s-%d"}}}' % (tag.encode(), i)) * 40
        req = (b"POST /witness-%s/_search HTTP/1.1\r\nHost: es\r\nContent-Type: application/json\r\n"
               b"Content-Length: %d\r\n\r\n" % (tag.encode(), len(body))) + body
        rbody = b'{"took":1,"hits":{"total":0},"tag":"%s-%d"}' % (tag.encode(), i) + b" " * 3000
        resp = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n" % len(rbody) + rbody
        c.send(True, req)
        c.send(False, resp)
        reqs += req
        resps += resp
    c.fin()
    return reqs, resps


def client(i):
    """Distinct (address, port) for flood connection i."""
    return 0x0b000000 + (i // 40000) * 256 + 1, 20000 + i % 40000


def make_syn(pc):
    for i in range(200000):
        cip, cport = client(i)
        pc.seg(cip, cport, True, 7777 + i, 0, SYN)


def make_halfopen(pc):
    head = b"GET /_search?q=" + b"x" * 8000
    for i in range(20000):
        cip, cport = client(i)
        c = Conn(pc, cip, cport)
        c.send(True, head)


def make_giant(pc):
    c = Conn(pc, 0x0b000001, 33333)
    c.send(True, b"GET /giant HTTP/1.1\r\nHost: es\r\n")
    line = b"X-Filler: " + b"y" * 1000 + b"\r\n"
    total = 0
    chunk = line * 64
    while total < 10 * 1024 * 1024:
        c.send(True, chunk)
        total += len(chunk)
    # a second giant head, on another connection, that does end
    c2 = Conn(pc, 0x0b000002, 33334)
    c2.send(True, b"GET /giant2 HTTP/1.1\r\nHost: es\r\n" + line * 2048 + b"\r\n")
    c2.send(False, b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\n\r\n")
    c2.fin()


def make_holes(pc):
    data = b"POST /_bulk HTTP/1.1\r\nHost: es\r\nContent-Length: 70000\r\n\r\n" + b"z" * 65536
    for i in range(2000):
        cip, cport = client(i)
        c = Conn(pc, cip, cport)
        c.send(True, data, skip_first=True)


CASES = [("syn", make_syn, ("evicted",)),
         ("halfopen", make_halfopen, ("evicted",)),
         ("giant", make_giant, ("broken",)),
         ("holes", make_holes, ("evicted", "gaps"))]


def run_agent(pcap, out):
    r = subprocess.run(["/usr/bin/time", "-v", AGENT, "--pcap", pcap, "--port", str(PORT), "--output", out,
                        "--log-level", "warn"] + LIMITS, capture_output=True, text=True, timeout=300)
    m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", r.stderr)
    rss = int(m.group(1)) if m else None
    s = re.search(r"^searchmig-agent: packets=.*$", r.stderr, re.M)
    summary = {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", s.group(0))} if s else None
    return r.returncode, rss, summary, r.stderr


def streams(out):
    """connectionId -> (read bytes, write bytes, EOMs, closes), with tslib's
    checks of record order and per-record state on every connection."""
    from tslib import connections, read_records
    return {cid: (c["c2s"], c["s2c"], c["eoms"], c["closes"]) for cid, c in connections(read_records(out)).items()}


def main():
    failures = []
    with tempfile.TemporaryDirectory(prefix="agent_flood.") as work:
        # baseline: witnesses only
        pc = Pcap(os.path.join(work, "base.pcap"))
        want = [witness(pc, "base", 40001)]
        pc.close()
        rc, base_rss, summary, err = run_agent(os.path.join(work, "base.pcap"), os.path.join(work, "base.log"))
        if rc != 0 or not summary:
            print(err)
            return 1
        print("baseline: rss %.1f MiB, %s" % (base_rss / 1024.0, summary))
        for name, make, expect in CASES:
            pcap = os.path.join(work, name + ".pcap")
            out = os.path.join(work, name + ".log")
            pc = Pcap(pcap)
            want = [witness(pc, name + "-before", 40001)]
            make(pc)
            want.append(witness(pc, name + "-after", 40002))
            pc.close()
            rc, rss, summary, err = run_agent(pcap, out)
            print("%-8s %8d packets %6.1f MB: exit %d, peak RSS %.1f MiB, %s" % (
                name, pc.n, os.path.getsize(pcap) / 1e6, rc, (rss or 0) / 1024.0,
                " ".join("%s=%d" % (k, summary[k]) for k in ("connections", "requests", "responses", "records",
                                                               "gaps", "broken", "evicted", "bytes_lost",
                                                               "flow_mem_peak") if summary and k in summary)))
            if rc != 0:
                failures.append("%s: exit %d: %s" % (name, rc, err[-800:]))
                continue
            if summary is None:
                failures.append("%s: no summary line" % name)
                continue
            if SANITIZED:
                pass   # ASan's shadow memory and quarantine: RSS says nothing about the agent's bounds
            elif rss is None or rss > RSS_BOUND_KIB:
                failures.append("%s: peak RSS %s KiB over %d KiB" % (name, rss, RSS_BOUND_KIB))
            if summary.get("flow_mem_peak", 1 << 62) > 8 * 1024 * 1024:
                failures.append("%s: flow_mem_peak %s over --mem-cap" % (name, summary.get("flow_mem_peak")))
            for k in expect:
                if not summary.get(k):
                    failures.append("%s: summary reports %s=%s, expected > 0" % (name, k, summary.get(k)))
            got = {}
            for cid, (rd, wr, eoms, closes) in streams(out).items():
                got.setdefault(rd, []).append((wr, eoms, closes))
            for req, resp in want:
                if (resp, 2, 1) not in got.get(req, []):
                    failures.append("%s: witness connection %r... not recorded exactly" % (name, req[:40]))
            if summary["requests"] < 4:
                failures.append("%s: requests=%d, the 4 witness requests are missing" % (name, summary["requests"]))
    for f in failures:
        print("FAIL:", f)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
