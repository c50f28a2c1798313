#!/usr/bin/python3
"""TLS decryption end to end with real tools: an HTTPS server (Python ssl,
recording the exact bytes it read and wrote per client port), clients that
log their own session keys (openssl s_client -keylogfile, curl with
SSLKEYLOGFILE, Python ssl keylog_filename), tcpdump on lo, then tls_dump
(pcap-file engine + TLS filter). Every request and response must come out
byte-exact; a client that logs no keys must be reported undecryptable.
Then the same capture through searchmig-agent --pcap --tls-keylog: its HTTP
pipeline must see every request and response.
Usage: run_tls.py TLS_DUMP [SEARCHMIG_AGENT]. Exit 77 when tcpdump cannot capture on lo."""
import os, shutil, signal, socket, ssl, subprocess, sys, tempfile, threading, time

SKIP = 77


class Server:
    """One listening socket per TLS configuration; each connection serves
    requests until 'Connection: close' or EOF."""
    def __init__(self, cert, key, recdir, max_version=None, ciphers=None):
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(cert, key)
        if max_version:
            self.ctx.maximum_version = max_version
        if ciphers:
            self.ctx.set_ciphers(ciphers)
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.recdir = recdir
        threading.Thread(target=self.loop, daemon=True).start()

    def loop(self):
        while True:
            try:
                c, addr = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self.serve, args=(c, addr), daemon=True).start()

    def serve(self, raw, addr):
        got, sent = bytearray(), bytearray()
        try:
            s = self.ctx.wrap_socket(raw, server_side=True)
            buf = b""
            n = 0
            while True:
                while b"\r\n\r\n" not in buf:
                    d = s.recv(65536)
                    if not d:
                        raise EOFError
                    buf += d
                    got += d
                head, buf = buf.split(b"\r\n\r\n", 1)
                n += 1
                body = (b"%d:" % n + head.split(b" ")[1] + b"\n") * (1 + 3000 * (n % 2))
                close = b"connection: close" in head.lower()
                resp = (b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n%s\r\n" %
                        (len(body), b"Connection: close\r\n" if close else b"")) + body
                s.sendall(resp)
                sent += resp
                if close:
                    break
        except (EOFError, OSError, ssl.SSLError):
            pass
        finally:
            with open(os.path.join(self.recdir, "%d.c2s" % addr[1]), "wb") as f:
                f.write(got)
            with open(os.path.join(self.recdir, "%d.s2c" % addr[1]), "wb") as f:
                f.write(sent)
            raw.close()


def s_client(port, keylog, args, requests, sess_in=None, sess_out=None):
    cmd = ["openssl", "s_client", "-connect", "127.0.0.1:%d" % port, "-quiet", "-keylogfile", keylog] + args
    if sess_in:
        cmd += ["-sess_in", sess_in]
    if sess_out:
        cmd += ["-sess_out", sess_out]
    data = b"".join(b"GET %s HTTP/1.1\r\nHost: localhost\r\n%s\r\n" % (p, b"Connection: close\r\n" if i == len(requests) - 1 else b"")
                    for i, p in enumerate(requests))
    r = subprocess.run(cmd, input=data, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
    return r.stdout


def s_client_key_update(port, keylog):
    """s_client's interactive 'K' command (KeyUpdate, update requested)
    between two requests; stdin stays open until the server closes."""
    cmd = ["openssl", "s_client", "-connect", "127.0.0.1:%d" % port, "-tls1_3", "-keylogfile", keylog]
    p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    p.stdin.write(b"GET /k1 HTTP/1.1\r\nHost: localhost\r\n\r\n")
    p.stdin.flush()
    time.sleep(0.5)
    p.stdin.write(b"K\n")
    p.stdin.flush()
    time.sleep(0.5)
    p.stdin.write(b"GET /k2 HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
    p.stdin.flush()
    try:
        p.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        p.kill()
        p.communicate()


def py_client(port, keylog, paths):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if keylog:
        ctx.keylog_filename = keylog
    with socket.create_connection(("127.0.0.1", port)) as raw, ctx.wrap_socket(raw) as s:
        for i, p in enumerate(paths):
            s.sendall(b"GET %s HTTP/1.1\r\nHost: localhost\r\n%s\r\n" % (p, b"Connection: close\r\n" if i == len(paths) - 1 else b""))
        while s.recv(65536):
            pass


def main():
    if len(sys.argv) < 2:
        return 2
    dump = sys.argv[1]
    if not shutil.which("tcpdump") or not shutil.which("openssl"):
        print("SKIP: tcpdump/openssl not installed")
        return SKIP
    work = tempfile.mkdtemp(prefix="tls-it-")
    try:
        return run(dump, work)
    finally:
        if os.environ.get("KEEP_WORK"):
            print("work dir:", work)
        else:
            shutil.rmtree(work, ignore_errors=True)


def setup(work, suites12):
    """Certificate, a TLS 1.3 server and a TLS 1.2 server per suite in suites12
    (all recording what they read/write in work/rec), and tcpdump on lo for
    their ports. Returns (rec, out, srv13, srv12, ports, pcap, tcpdump), or None when
    tcpdump cannot capture on lo (it printed why)."""
    rec = os.path.join(work, "rec"); os.makedirs(rec)
    out = os.path.join(work, "out"); os.makedirs(out)
    cert, key = os.path.join(work, "c.pem"), os.path.join(work, "k.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert,
                    "-subj", "/CN=localhost", "-days", "1"], check=True, capture_output=True)
    srv13 = Server(cert, key, rec)
    srv12 = {c: Server(cert, key, rec, ssl.TLSVersion.TLSv1_2, c) for c in suites12}
    ports = [srv13.port] + [s.port for s in srv12.values()]
    pcap = os.path.join(work, "lo.pcap")
    flt = " or ".join("tcp port %d" % p for p in ports)
    td = subprocess.Popen(["tcpdump", "-i", "lo", "-n", "-U", "--immediate-mode", "-B", "65536", "-s", "0", "-w", pcap, flt],
                          stderr=subprocess.PIPE, text=True)
    line = td.stderr.readline()
    if "listening" not in line:
        td.wait()
        print("SKIP: tcpdump cannot capture on lo:", line.strip())
        return None
    return rec, out, srv13, srv12, ports, pcap, td


def run_dump(dump, pcap, keylog, out, ports):
    """tls_dump over pcap: {conn id: {"cport": client port, "gaps": [(dir, offset, why)]}}
    from its events, or None when it failed (printed)."""
    args = [dump, "--file", pcap, "--keylog", keylog, "--out", out, "--key-wait-ms", "200"]
    for p in ports:
        args += ["--port", str(p)]
    r = subprocess.run(args, capture_output=True, text=True, timeout=120)
    if r.returncode != 0:
        print("tls_dump failed:", r.returncode, r.stderr)
        return None
    conns = {}
    for line in open(os.path.join(out, "events.txt")):
        f = line.split()
        if f[0] == "open":
            conns[f[1]] = {"cport": int(f[2]), "gaps": []}
        elif f[0] == "gap":
            conns[f[1]]["gaps"].append((f[2], int(f[3]), " ".join(f[5:])))
    return conns


def run(dump, work):
    s = setup(work, ("ECDHE-RSA-AES128-GCM-SHA256", "ECDHE-RSA-AES256-GCM-SHA384", "ECDHE-RSA-CHACHA20-POLY1305"))
    if s is None:
        return SKIP
    rec, out, srv13, srv12, ports, pcap, td = s
    keylogs = []
    def kl(name):
        p = os.path.join(work, name + ".keys"); keylogs.append(p); return p
    expect_ok, expect_bad = 0, 0
    # TLS 1.3, each suite, openssl s_client, keep-alive with two requests
    for suite in ("TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256"):
        s_client(srv13.port, kl("s13-" + suite), ["-tls1_3", "-ciphersuites", suite], [b"/a/" + suite.encode(), b"/b/_search"])
        expect_ok += 1
    # TLS 1.2, each suite, curl with SSLKEYLOGFILE (two URLs on one connection)
    for suite, s in srv12.items():
        env = dict(os.environ, SSLKEYLOGFILE=kl("curl12-" + suite))
        subprocess.run(["curl", "-sk", "--tls-max", "1.2", "-o", "/dev/null", "-o", "/dev/null",
                        "https://127.0.0.1:%d/c/%s" % (s.port, suite), "https://127.0.0.1:%d/d/x" % s.port],
                       env=env, check=True, timeout=30)
        expect_ok += 1
    # curl TLS 1.3 default suite
    env = dict(os.environ, SSLKEYLOGFILE=kl("curl13"))
    subprocess.run(["curl", "-sk", "-o", "/dev/null", "https://127.0.0.1:%d/e/curl13" % srv13.port], env=env, check=True, timeout=30)
    expect_ok += 1
    # session resumption, TLS 1.3 and 1.2 (s_client -sess_out / -sess_in)
    for tag, args, port in (("13", ["-tls1_3"], srv13.port), ("12", ["-tls1_2"], srv12["ECDHE-RSA-AES128-GCM-SHA256"].port)):
        sess = os.path.join(work, "sess" + tag)
        s_client(port, kl("res1-" + tag), args, [b"/r1/" + tag.encode()], sess_out=sess)
        s_client(port, kl("res2-" + tag), args, [b"/r2/" + tag.encode()], sess_in=sess)
        expect_ok += 2
    # TLS 1.3 KeyUpdate in the middle of a connection
    s_client_key_update(srv13.port, kl("ku13"))
    expect_ok += 1
    # Python ssl client with keylog_filename
    py_client(srv13.port, kl("py13"), [b"/f/py", b"/g/py"])
    expect_ok += 1
    # a client that logs no keys: undecryptable
    py_client(srv13.port, None, [b"/h/nokeys"])
    expect_bad += 1
    time.sleep(0.5)
    td.send_signal(signal.SIGINT)
    td.wait(timeout=20)
    keylog = os.path.join(work, "all.keys")
    with open(keylog, "wb") as f:
        for p in keylogs:
            if os.path.exists(p):
                f.write(open(p, "rb").read())
    os.chmod(keylog, 0o600)
    conns = run_dump(dump, pcap, keylog, out, ports)
    if conns is None:
        return 1
    errs = []
    ok = bad = 0
    for cid, c in conns.items():
        c2s = open(os.path.join(out, "conn-%s.c2s" % cid), "rb").read()
        s2c = open(os.path.join(out, "conn-%s.s2c" % cid), "rb").read()
        rc2s = open(os.path.join(rec, "%d.c2s" % c["cport"]), "rb").read()
        rs2c = open(os.path.join(rec, "%d.s2c" % c["cport"]), "rb").read()
        if b"/h/nokeys" in rc2s:
            if c2s or s2c or len(c["gaps"]) != 2 or not all(w == "tls: no keys" for _, _, w in c["gaps"]):
                errs.append("conn %s (no keys): expected two 'tls: no keys' gaps and no data, got %r, %d/%d bytes" % (cid, c["gaps"], len(c2s), len(s2c)))
            else:
                bad += 1
            continue
        if c["gaps"]:
            errs.append("conn %s port %d: unexpected gaps %r" % (cid, c["cport"], c["gaps"]))
        if c2s != rc2s:
            errs.append("conn %s port %d: request bytes differ (%d vs %d)" % (cid, c["cport"], len(c2s), len(rc2s)))
        if s2c != rs2c:
            errs.append("conn %s port %d: response bytes differ (%d vs %d)" % (cid, c["cport"], len(s2c), len(rs2c)))
        if c2s == rc2s and s2c == rs2c and rc2s:
            ok += 1
    stats = dict(l.strip().split("=") for l in open(os.path.join(out, "stats.txt")))
    if ok != expect_ok or bad != expect_bad:
        errs.append("decrypted %d connections (want %d), undecryptable %d (want %d)" % (ok, expect_ok, bad, expect_bad))
    if int(stats["conns_resumed"]) < 2:
        errs.append("resumed sessions counted: %s (want >= 2)" % stats["conns_resumed"])
    if int(stats["conns_no_keys"]) != expect_bad or int(stats["conns_decrypted"]) != expect_ok:
        errs.append("counters: decrypted %s, no keys %s" % (stats["conns_decrypted"], stats["conns_no_keys"]))
    if int(stats["key_updates"]) < 2:
        errs.append("key updates applied: %s (want >= 2)" % stats["key_updates"])
    if int(stats["auth_failures"]) != 0:
        errs.append("auth failures: %s" % stats["auth_failures"])
    if len(sys.argv) > 2:   # the agent itself: filter wired between capture and the HTTP pipeline
        nreq = sum(open(os.path.join(rec, f), "rb").read().count(b"GET ") for f in os.listdir(rec)
                   if f.endswith(".c2s") and b"/h/nokeys" not in open(os.path.join(rec, f), "rb").read())
        args = [sys.argv[2], "--pcap", pcap, "--tls-keylog", keylog, "--tls-key-wait", "200ms",
                "--output", os.path.join(work, "records.out")]
        for p in ports:
            args += ["--port", str(p), "--tls-port", str(p)]
        r = subprocess.run(args, capture_output=True, text=True, timeout=120)
        summary = [l for l in r.stderr.splitlines() if l.startswith("searchmig-agent: packets=")]
        if r.returncode != 0 or not summary:
            errs.append("searchmig-agent exit %d: %s" % (r.returncode, r.stderr[-500:]))
        else:
            kv = dict(x.split("=") for x in summary[0].split() if "=" in x)
            if int(kv["requests"]) != nreq or int(kv["responses"]) != nreq:
                errs.append("agent saw %s requests / %s responses, %d were sent" % (kv["requests"], kv["responses"], nreq))
            print("agent:", summary[0])
    print("stats:", stats)
    for e in errs:
        print("ERROR:", e)
    print("%d connections decrypted byte-exact, %d undecryptable as expected" % (ok, bad))
    return 1 if errs else 0


if __name__ == "__main__":
    sys.exit(main())
