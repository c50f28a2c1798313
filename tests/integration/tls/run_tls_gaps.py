#!/usr/bin/python3
"""TLS record resynchronisation after capture gaps, with real tools: keep-alive
HTTPS connections (Python ssl client and server) captured by tcpdump on lo; then packets are dropped from the
capture with scapy (one client segment carrying a whole request, three
consecutive server segments in the middle of a 21 KB response, cutting two
records and the boundary between them), as kernel drops would. The loopback
capture's GSO-sized packets are first cut into 1000-byte segments, as they
would be on a NIC. Per connection:
TLS 1.3 AES-128-GCM, TLS 1.3 ChaCha20-Poly1305, TLS 1.2 AES-128-GCM, TLS 1.2
ChaCha20-Poly1305.

Checked through tls_dump (pcap-file engine + TLS filter): each direction gets
exactly one gap, the plaintext before it is an exact prefix and the plaintext
after it an exact suffix of what the server read/wrote, and the suffix holds
every message after the damaged one. Then through searchmig-agent --pcap
--tls-keylog: the records hold every request except the dropped one, byte
for byte, the responses after the damaged one exactly, and the gap as a
connection exception.
Usage: run_tls_gaps.py TLS_DUMP SEARCHMIG_AGENT. Exit 77 without tcpdump,
openssl or scapy."""
import os, shutil, signal, socket, ssl, subprocess, sys, tempfile, time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "agent"))
SKIP = 77
NREQ = 12
DROP_REQ = 4          # client segment carrying this request is dropped
DROP_RESP = 6         # three server segments in the middle of this response (21 KB) are dropped
PAD = 700             # request size ~760 bytes: one segment, told apart from handshake messages


def request(i):
    return (b"GET /r/%d HTTP/1.1\r\nHost: localhost\r\nX-Pad: %s\r\n%s\r\n" %
            (i, b"p" * PAD, b"Connection: close\r\n" if i == NREQ - 1 else b""))


def client_main(port, keylog, maxver, ciphers):
    """Subprocess: one keep-alive connection, NREQ requests, each after the
    previous response; prints the negotiated version and suite."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.keylog_filename = keylog
    if maxver == "1.2":
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        ctx.set_ciphers(ciphers)
    raw = socket.socket()
    raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    raw.connect(("127.0.0.1", port))
    s = ctx.wrap_socket(raw)
    buf = b""
    for i in range(NREQ):
        s.sendall(request(i))
        while b"\r\n\r\n" not in buf:
            buf += s.recv(65536)
        head, buf = buf.split(b"\r\n\r\n", 1)
        n = int([l for l in head.split(b"\r\n") if l.lower().startswith(b"content-length:")][0].split(b":")[1])
        while len(buf) < n:
            buf += s.recv(65536)
        buf = buf[n:]
        time.sleep(0.02)
    print(s.version(), s.cipher()[0])
    s.close()
    return 0


def segment(pkts, mss=1000):
    """Loopback packets are GSO-sized (up to 64 KB): cut their payload into
    segments of at most mss bytes, as a NIC would put them on the wire."""
    from scapy.all import IP, TCP, Raw
    out = []
    for p in pkts:
        if TCP not in p or len(bytes(p[TCP].payload)) <= mss:
            out.append(p)
            continue
        data, seq = bytes(p[TCP].payload), p[TCP].seq
        for off in range(0, len(data), mss):
            q = p.copy()
            q[TCP].remove_payload()
            q[TCP].add_payload(Raw(data[off:off + mss]))
            q[TCP].seq = (seq + off) & 0xffffffff
            del q[IP].len, q[IP].chksum, q[TCP].chksum
            q = q.__class__(bytes(q))
            q.time = p.time
            out.append(q)
    return out


def drop_packets(pcap_in, pcap_out, cports):
    """Segments the capture (segment()), then drops, per client port: the
    segment of request DROP_REQ, and server segments 15..17 of response
    DROP_RESP (crossing a record boundary at 16 KB). Returns {cport: (lost_c2s, lost_s2c)}."""
    from scapy.all import rdpcap, wrpcap, TCP
    pkts = segment(rdpcap(pcap_in))
    drop, info = set(), {}
    for cp in cports:
        reqs, resp_segs = [], {}
        for k, p in enumerate(pkts):
            if TCP not in p:
                continue
            t = p[TCP]
            n = len(bytes(t.payload))
            if not n or cp not in (t.sport, t.dport):
                continue
            if t.sport == cp and 700 <= n <= 1000:
                reqs.append(k)
            elif t.dport == cp and reqs:
                resp_segs.setdefault(len(reqs) - 1, []).append(k)
        if len(reqs) != NREQ or len(resp_segs.get(DROP_RESP, [])) < 16:
            raise SystemExit("port %d: %d request segments, %d segments in response %d: capture not as expected" %
                             (cp, len(reqs), len(resp_segs.get(DROP_RESP, [])), DROP_RESP))
        gone = [reqs[DROP_REQ]] + resp_segs[DROP_RESP][15:18]
        drop.update(gone)
        info[cp] = (len(bytes(pkts[gone[0]][TCP].payload)), sum(len(bytes(pkts[k][TCP].payload)) for k in gone[1:]))
    wrpcap(pcap_out, [p for k, p in enumerate(pkts) if k not in drop])
    return info


def responses(rec_s2c):
    """Splits the server's recorded bytes into responses."""
    out, i = [], 0
    while i < len(rec_s2c):
        h = rec_s2c.index(b"\r\n\r\n", i) + 4
        n = int([l for l in rec_s2c[i:h].split(b"\r\n") if l.lower().startswith(b"content-length:")][0].split(b":")[1])
        out.append(rec_s2c[i:h + n])
        i = h + n
    return out


def main():
    if len(sys.argv) >= 2 and sys.argv[1] == "--client":
        return client_main(int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5])
    if len(sys.argv) < 3:
        return 2
    if not shutil.which("tcpdump") or not shutil.which("openssl"):
        print("SKIP: tcpdump/openssl not installed")
        return SKIP
    try:
        import scapy.all  # noqa: F401
    except ImportError:
        print("SKIP: no scapy")
        return SKIP
    work = tempfile.mkdtemp(prefix="tls-gaps-")
    try:
        return run(sys.argv[1], sys.argv[2], work)
    finally:
        if os.environ.get("KEEP_WORK"):
            print("work dir:", work)
        else:
            shutil.rmtree(work, ignore_errors=True)


def run(dump, agent, work):
    from run_tls import run_dump, setup
    import tslib
    s = setup(work, ("ECDHE-RSA-AES128-GCM-SHA256", "ECDHE-RSA-CHACHA20-POLY1305"))
    if s is None:
        return SKIP
    rec, out, srv13, srv12, ports, pcap, td = s
    keylog = os.path.join(work, "keys.log")
    cases = [("TLSv1.3", "TLS_AES_128_GCM_SHA256", srv13.port, "1.3", ""),
             ("TLSv1.3", "TLS_CHACHA20_POLY1305_SHA256", srv13.port, "1.3", ""),
             ("TLSv1.2", "ECDHE-RSA-AES128-GCM-SHA256", srv12["ECDHE-RSA-AES128-GCM-SHA256"].port, "1.2",
              "ECDHE-RSA-AES128-GCM-SHA256"),
             ("TLSv1.2", "ECDHE-RSA-CHACHA20-POLY1305", srv12["ECDHE-RSA-CHACHA20-POLY1305"].port, "1.2",
              "ECDHE-RSA-CHACHA20-POLY1305")]
    errs = []
    for ver, suite, port, maxver, ciphers in cases:
        env = dict(os.environ)
        if maxver == "1.3":   # the client's TLS 1.3 suite through OpenSSL's configuration
            conf = os.path.join(work, suite + ".cnf")
            with open(conf, "w") as f:
                f.write("openssl_conf = init\n[init]\nssl_conf = ssl\n[ssl]\nsystem_default = sd\n"
                        "[sd]\nCiphersuites = %s\n" % suite)
            env["OPENSSL_CONF"] = conf
        r = subprocess.run([sys.executable, os.path.abspath(__file__), "--client", str(port), keylog, maxver, ciphers],
                           env=env, capture_output=True, text=True, timeout=60)
        if r.returncode != 0 or r.stdout.split() != [ver, suite]:
            errs.append("client %s %s: exit %d, negotiated %r, %s" % (ver, suite, r.returncode, r.stdout.strip(),
                                                                      r.stderr[-300:]))
    time.sleep(0.5)
    td.send_signal(signal.SIGINT)
    td.wait(timeout=20)
    if errs:
        for e in errs:
            print("ERROR:", e)
        return 1
    recs = {int(f.split(".")[0]) for f in os.listdir(rec)}
    cports = sorted(recs)
    dropped = os.path.join(work, "dropped.pcap")
    lost = drop_packets(pcap, dropped, cports)
    print("dropped per connection (c2s bytes, s2c bytes):", lost)

    # 1. the TLS filter's output
    conns = run_dump(dump, dropped, keylog, out, ports)
    if conns is None:
        return 1
    seen = set()
    for cid, c in conns.items():
        cp = c["cport"]
        seen.add(cp)
        rc2s = open(os.path.join(rec, "%d.c2s" % cp), "rb").read()
        rs2c = open(os.path.join(rec, "%d.s2c" % cp), "rb").read()
        reqs = [request(i) for i in range(NREQ)]
        if b"".join(reqs) != rc2s:
            errs.append("port %d: the server did not read the expected requests" % cp)
            continue
        resps = responses(rs2c)
        want_tail = {"c2s": len(b"".join(reqs[DROP_REQ + 1:])), "s2c": len(b"".join(resps[DROP_RESP + 1:]))}
        for d, recd in (("c2s", rc2s), ("s2c", rs2c)):
            got = open(os.path.join(out, "conn-%s.%s" % (cid, d)), "rb").read()
            # one hole: the flow layer may report it in pieces (one gap per
            # missing packet run), all at the same place in the plaintext
            gaps = [(off, w) for gd, off, w in c["gaps"] if gd == d]
            if not gaps or any(g != gaps[0] for g in gaps) or gaps[0][1] != "capture loss":
                errs.append("port %d %s: gaps %r (want one hole, 'capture loss')" % (cp, d, gaps))
                continue
            pre = gaps[0][0]
            tail = len(got) - pre
            if got[:pre] != recd[:pre]:
                errs.append("port %d %s: bytes before the gap are not an exact prefix of what was sent" % (cp, d))
            elif tail and got[pre:] != recd[len(recd) - tail:]:
                errs.append("port %d %s: bytes after the gap are not an exact suffix of what was sent" % (cp, d))
            elif tail < want_tail[d] or len(got) >= len(recd):
                errs.append("port %d %s: %d bytes after the gap, want at least %d (%d of %d delivered)" %
                            (cp, d, tail, want_tail[d], len(got), len(recd)))
    if seen != set(cports):
        errs.append("connections seen by tls_dump %r, want %r" % (sorted(seen), cports))
    stats = dict(l.strip().split("=") for l in open(os.path.join(out, "stats.txt")))
    print("tls_dump stats:", stats)
    n = len(cports)
    if int(stats["resyncs"]) != 2 * n or int(stats["resync_failures"]) != 0 or int(stats["auth_failures"]) != 0:
        errs.append("resyncs %s (want %d), failures %s, auth failures %s" %
                    (stats["resyncs"], 2 * n, stats["resync_failures"], stats["auth_failures"]))

    # 2. the agent: records hold every request but the dropped one, exactly
    outrec = os.path.join(work, "records.out")
    args = [agent, "--pcap", dropped, "--tls-keylog", keylog, "--tls-key-wait", "200ms", "--output", outrec]
    for p in ports:
        args += ["--port", str(p), "--tls-port", str(p)]
    r = subprocess.run(args, capture_output=True, text=True, timeout=120)
    summary = [l for l in r.stderr.splitlines() if l.startswith("searchmig-agent: packets=")]
    if r.returncode != 0 or not summary:
        errs.append("searchmig-agent exit %d: %s" % (r.returncode, r.stderr[-500:]))
    else:
        print("agent:", summary[0])
        by = tslib.connections(tslib.read_records(outrec))
        if len(by) != n:
            errs.append("agent records for %d connections, want %d" % (len(by), n))
        want = [request(i) for i in range(NREQ) if i != DROP_REQ]
        for cid, c in by.items():
            if c["requests"] != want:
                errs.append("agent conn %s: %d requests recorded, want the %d sent but the dropped one, exactly" %
                            (cid, len(c["requests"]), len(want)))
            if not any("capture gap" in e for e in c["exceptions"]):
                errs.append("agent conn %s: no capture gap exception (%r)" % (cid, c["exceptions"]))
            ok = False
            for p in cports:
                resps = responses(open(os.path.join(rec, "%d.s2c" % p), "rb").read())
                if c["s2c"].startswith(b"".join(resps[:DROP_REQ])) and \
                        c["s2c"].endswith(b"".join(resps[DROP_RESP + 1:])):
                    ok = True
            if not ok:
                errs.append("agent conn %s: responses before/after the gaps not recorded exactly" % cid)
    for e in errs:
        print("ERROR:", e)
    print("%d connections, each resynchronised after a gap in both directions" % n if not errs else "FAILED")
    return 1 if errs else 0


if __name__ == "__main__":
    sys.exit(main())
