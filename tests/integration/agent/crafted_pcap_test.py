#!/usr/bin/python3
"""searchmig-agent on capture files crafted with scapy: a request with a lost
segment (the gap is reported as a connectionException and the broken request
is never glued to the next one), a connection joined mid-stream (recording
starts at the next request line), a websocket upgrade (capture of the
connection stops with a note) and suppression/redaction filters."""
import os
import shutil
import socket
import subprocess
import sys
import tempfile

sys.dont_write_bytecode = True   # nothing written into the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tslib  # noqa: E402

try:
    from scapy.all import IP, TCP, Ether, Raw, wrpcap  # noqa: E402
except ImportError:
    print("SKIP: python3-scapy not installed")
    sys.exit(77)

AGENT = sys.argv[1] if __name__ == "__main__" else None


class Conn:
    """Builds the packets of one TCP connection with correct seq/ack."""

    def __init__(self, pkts, cport, t, syn=True, cseq=1000, sseq=5000):
        self.pkts, self.cport, self.t = pkts, cport, t
        self.c, self.s = cseq, sseq
        if syn:
            self._add(0, "S", b"", seq=self.c - 1, ack=0)
            self._add(1, "SA", b"", seq=self.s - 1, ack=self.c)
            self._add(0, "A", b"")

    def _add(self, d, flags, data, seq=None, ack=None):
        src, dst = ("10.0.0.1", "10.0.0.2") if d == 0 else ("10.0.0.2", "10.0.0.1")
        sp, dp = (self.cport, 9200) if d == 0 else (9200, self.cport)
        if seq is None:
            seq = self.c if d == 0 else self.s
        if ack is None:
            ack = self.s if d == 0 else self.c
        p = Ether() / IP(src=src, dst=dst) / TCP(sport=sp, dport=dp, flags=flags, seq=seq, ack=ack)
        if data:
            p = p / Raw(load=data)
        self.t[0] += 0.001
        p.time = self.t[0]
        self.pkts.append(p)

    def send(self, d, data, lose=False):
        """d 0: client, 1: server. lose: advance the sequence without a packet."""
        if not lose:
            self._add(d, "PA", data)
        if d == 0:
            self.c += len(data)
        else:
            self.s += len(data)
        if not lose:
            self._add(1 - d, "A", b"")   # the peer acknowledges (beyond any hole)

    def fin(self):
        self._add(0, "FA", b"")
        self.c += 1
        self._add(1, "FA", b"")
        self.s += 1
        self._add(0, "A", b"")


def build_pcap(pcap):
    """Writes the crafted connections A (lost segment), B (mid-stream, filters),
    C (websocket upgrade) and D (a whole request lost before a HEAD) to pcap."""
    pkts, t = [], [1700000000.0]

    # A: a POST loses its middle segment; the next request must stand alone
    a = Conn(pkts, 40001, t)
    a.send(0, b"POST /a/_doc HTTP/1.1\r\nHost: h\r\nContent-Length: 30\r\n\r\n0123456789")
    a.send(0, b"ABCDEFGHIJ", lose=True)
    a.send(0, b"abcdefghij")
    a.send(1, b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n")
    a.send(0, b"GET /b HTTP/1.1\r\nHost: h\r\n\r\n")
    a.send(1, b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")
    a.fin()

    # B: joined mid-stream: the tail of a bulk body, then a clean request
    b = Conn(pkts, 40002, t, syn=False)
    b.send(0, b'"field":"value"}\n{"index":{}}\n{"x":1}\n')
    b.send(1, b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n{\"a\":")   # tail of an older response
    b.send(0, b"GET /_cluster/health HTTP/1.1\r\nHost: h\r\nAuthorization: Basic c2VjcmV0\r\n\r\n")
    b.send(1, b"HTTP/1.1 200 OK\r\nContent-Length: 15\r\n\r\n{\"status\":\"ok\"}")
    b.send(0, b"GET /_cat/indices HTTP/1.1\r\nHost: h\r\n\r\n")                # suppressed
    b.send(1, b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\ngreen\n")
    b.send(0, b"PUT /i/_doc/1 HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\n{}")
    b.send(1, b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n")
    b.fin()

    # C: websocket upgrade
    c = Conn(pkts, 40003, t)
    c.send(0, b"GET /ws HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
    c.send(1, b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
    c.send(0, b"\x81\x85binary")
    c.send(1, b"\x81\x02hi")
    c.fin()

    # D: a whole request lost (not pipelined): its response comes with an ACK covering it, so
    # the gap reaches the framer first and that response pairs with no request; the HEAD
    # that follows still gets a body-less response, nothing is reported broken
    d = Conn(pkts, 40004, t)
    d.send(0, b"GET /d1 HTTP/1.1\r\nHost: h\r\n\r\n")
    d.send(1, b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")
    d.send(0, b"GET /lost HTTP/1.1\r\nHost: h\r\n\r\n", lose=True)
    d.send(1, b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nlost")
    d.send(0, b"HEAD /d3 HTTP/1.1\r\nHost: h\r\n\r\n")
    d.send(1, b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n")
    d.send(0, b"GET /d4 HTTP/1.1\r\nHost: h\r\n\r\n")
    d.send(1, b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
    d.fin()

    wrpcap(pcap, pkts)


def main():
    tmp = tempfile.mkdtemp(prefix="sm-agent-crafted-")
    pcap = os.path.join(tmp, "crafted.pcap")
    build_pcap(pcap)
    out = os.path.join(tmp, "out.log")
    nsock_path = os.path.join(tmp, "notify")
    nsock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    nsock.bind(nsock_path)
    env = dict(os.environ, NOTIFY_SOCKET=nsock_path)
    r = subprocess.run([AGENT, "--pcap", pcap, "--port", "9200", "--output", out, "--stats-interval", "0",
                        "--suppress-path", "^/_cat", "--redact-header", "authorization"],
                       capture_output=True, text=True, timeout=60, env=env)
    nsock.settimeout(2)
    notes = []
    try:
        while True:
            notes.append(nsock.recv(4096).decode())
    except socket.timeout:
        pass
    nsock.close()
    assert notes and notes[0] == "READY=1", notes          # systemd: ready once capture runs
    assert any(n.startswith("STATUS=capturing pcap-file[") for n in notes), notes
    assert notes[-1].startswith("STOPPING=1"), notes
    sys.stderr.write(r.stderr)
    assert r.returncode == 0, r.returncode
    recs = tslib.read_records(out)
    conns = tslib.connections(recs)
    assert len(conns) == 4, len(conns)
    by_first = {}
    for cid, cv in conns.items():
        first = cv["requests"][0].split(b"\r\n")[0] if cv["requests"] else b""
        by_first[first] = cv
        assert cv["closes"] == 1, cv

    ca = by_first[b"GET /b HTTP/1.1"]
    assert ca["requests"] == [b"GET /b HTTP/1.1\r\nHost: h\r\n\r\n"], ca["requests"]
    assert len(ca["exceptions"]) == 1 and "capture gap: 10 bytes lost in client->server" in ca["exceptions"][0], \
        ca["exceptions"]
    assert ca["c2s"].startswith(b"POST /a/_doc") and b"abcdefghij" not in ca["c2s"], ca["c2s"]

    cb = by_first[b"GET /_cluster/health HTTP/1.1"]
    assert cb["requests"] == [
        b"GET /_cluster/health HTTP/1.1\r\nHost: h\r\nAuthorization: REDACTED\r\n\r\n",
        b"PUT /i/_doc/1 HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\n{}"], cb["requests"]
    assert not cb["exceptions"], cb["exceptions"]
    assert cb["s2c"] == (b"HTTP/1.1 200 OK\r\nContent-Length: 15\r\n\r\n{\"status\":\"ok\"}"
                         b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n"), cb["s2c"]

    cd = by_first[b"GET /d1 HTTP/1.1"]
    assert [r.split(b"\r\n")[0] for r in cd["requests"]] == [b"GET /d1 HTTP/1.1", b"HEAD /d3 HTTP/1.1",
                                                              b"GET /d4 HTTP/1.1"], cd["requests"]
    assert len(cd["exceptions"]) == 1 and "client->server" in cd["exceptions"][0], cd["exceptions"]
    assert cd["s2c"] == (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}"
                         b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nlost"
                         b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n"
                         b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"), cd["s2c"]

    cc = by_first[b"GET /ws HTTP/1.1"]
    assert len(cc["exceptions"]) == 1 and "101 Switching Protocols" in cc["exceptions"][0]
    assert b"binary" not in cc["c2s"] and b"hi" not in cc["s2c"][-2:]
    # records of one connection carry increasing capture timestamps
    for _, ts in recs:
        stamps = [o["ts"] for o in ts["obs"]]
        assert all(s is not None and s >= 1700000000 * 10**9 for s in stamps)
    shutil.rmtree(tmp, ignore_errors=True)
    print("crafted: gap reported and not glued, mid-stream join, redaction, suppression, upgrade: ok")


if __name__ == "__main__":
    main()
