#!/usr/bin/python3
"""JSSE key logging attached at run time, end to end: a JDK HttpsServer started
WITHOUT the agent; curl connections (TLS 1.3 and 1.2); the searchmig-keylog
agent attached with `searchmig-agent keys attach`; more curl connections (TLS 1.3 and 1.2, AES-GCM
and ChaCha20, keep-alive, multi-record bodies) and openssl s_client session
resumption (TLS 1.2 and 1.3, its key log compared with the Java agent's);
tcpdump on lo; then
searchmig-agent --pcap --tls-keylog <the Java agent's file> --output.
Every connection made after the attach must come out of the records byte-exact
(compared with curl --trace, which shows the plaintext curl sent and received);
the connections made before the attach must be reported undecryptable
(a ConnectionException, no data).
Usage: run_java_keylog.py BUILD_SH WORKDIR SERVER_JAVA SEARCHMIG_AGENT. Exit 77 when
java/javac/keytool/curl/openssl/tcpdump are missing or tcpdump cannot capture on lo."""
import base64, os, shutil, signal, stat, subprocess, sys, time

SKIP = 77


def varint(b, i):
    v = s = 0
    while True:
        c = b[i]; i += 1
        v |= (c & 0x7f) << s; s += 7
        if c < 0x80:
            return v, i


def fields(b):
    """(field number, wire type, value) of one protobuf message."""
    i = 0
    while i < len(b):
        k, i = varint(b, i)
        f, wt = k >> 3, k & 7
        if wt == 0:
            v, i = varint(b, i)
        elif wt == 2:
            n, i = varint(b, i); v = b[i:i + n]; i += n
        elif wt == 1:
            v = b[i:i + 8]; i += 8
        elif wt == 5:
            v = b[i:i + 4]; i += 4
        else:
            raise ValueError("wire type %d" % wt)
        yield f, wt, v


def read_records(path):
    """connectionId -> {'c2s': bytes, 's2c': bytes, 'exc': [messages]} (TrafficCaptureStream.proto)."""
    conns = {}
    for line in open(path, "rb"):
        line = line.strip()
        if not line:
            continue
        ts = base64.b64decode(line.split(b"|")[-1])
        cid, obs = None, []
        for f, wt, v in fields(ts):
            if f == 1 and wt == 2:
                cid = v.decode()
            elif f == 2 and wt == 2:
                obs.append(v)
        c = conns.setdefault(cid, {"c2s": b"", "s2c": b"", "exc": []})
        for o in obs:
            for f, wt, v in fields(o):
                if wt != 2:
                    continue
                if f in (4, 5, 8, 9):   # read, readSegment, write, writeSegment
                    data = b"".join(x for g, t, x in fields(v) if g == (1 if f in (4, 8) else 2) and t == 2)
                    c["c2s" if f in (4, 5) else "s2c"] += data
                elif f == 12:           # connectionException
                    c["exc"].append(b"".join(x for g, t, x in fields(v) if g == 1).decode(errors="replace"))
    return conns


def trace_bytes(path):
    """(sent, received) application bytes from a curl --trace file."""
    sent, recv = bytearray(), bytearray()
    cur, left = None, 0
    for line in open(path, encoding="latin-1"):
        if line.startswith("=> ") or line.startswith("<= ") or line.startswith("== "):
            cur, left = None, 0
            kind = line[3:].split(",")[0]
            if kind in ("Send header", "Send data"):
                cur = sent
            elif kind in ("Recv header", "Recv data"):
                cur = recv
            if cur is not None:
                left = int(line.split(",")[1].split()[0])
            continue
        if cur is None or left <= 0 or len(line) < 7 or line[4] != ":":
            continue
        n = min(16, left)
        cur += bytes(int(line[6 + 3 * j:8 + 3 * j], 16) for j in range(n))
        left -= n
    return bytes(sent), bytes(recv)


def premain(work, jar, ks):
    """-javaagent at JVM start: the agent's lines must equal curl's own SSLKEYLOGFILE lines."""
    keylog, theirs = os.path.join(work, "premain.keys"), os.path.join(work, "curl.keys")
    srv = subprocess.Popen(["java", "-javaagent:%s=%s" % (jar, keylog), "-cp", work, "TlsEchoServer", ks, "secret12"],
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        line = srv.stdout.readline().decode()
        if not line.startswith("port "):
            return ["-javaagent server did not start: %r" % line]
        url = "https://127.0.0.1:%s/premain" % line.split()[1]
        env = dict(os.environ, SSLKEYLOGFILE=theirs)
        for extra in ([], ["--tls-max", "1.2"]):
            subprocess.run(["curl", "-sk", "--http1.1", "-o", "/dev/null"] + extra + [url], env=env, check=True, timeout=30)
    finally:
        srv.kill()
        srv.wait()
    mine = set(open(keylog)) if os.path.exists(keylog) else set()
    want = set(l for l in open(theirs) if l.strip() and not l.startswith(("#", "EXPORTER_SECRET")))
    print("-javaagent: %d key log lines, curl logged %d" % (len(mine), len(want)))
    if len(want) != 5 or mine != want:
        return ["-javaagent: key log lines differ from curl's (%d vs %d)" % (len(mine), len(want))]
    return []


def main():
    build_sh, work, server_java, agent = sys.argv[1:5]
    for tool in ("java", "javac", "keytool", "curl", "openssl", "tcpdump"):
        if not shutil.which(tool):
            print("SKIP: %s not found" % tool)
            return SKIP
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    jars = os.path.join(work, "jars")
    subprocess.run(["sh", build_sh, jars], check=True, timeout=120)
    jar = os.path.join(jars, "searchmig-keylog.jar")
    subprocess.run(["javac", "-d", work, server_java], check=True, timeout=120)
    ks = os.path.join(work, "ks.p12")
    subprocess.run(["keytool", "-genkeypair", "-alias", "srv", "-keyalg", "RSA", "-keysize", "2048",
                    "-dname", "CN=localhost", "-validity", "2", "-storetype", "PKCS12", "-keystore", ks,
                    "-storepass", "secret12", "-keypass", "secret12"], check=True, timeout=60,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    srv_err = open(os.path.join(work, "server.err"), "wb")
    srv = subprocess.Popen(["java", "-cp", work, "TlsEchoServer", ks, "secret12"],
                           stdout=subprocess.PIPE, stderr=srv_err)
    td = None
    try:
        line = srv.stdout.readline().decode()
        if not line.startswith("port "):
            print("server did not start:", line, open(os.path.join(work, "server.err")).read())
            return 1
        port = int(line.split()[1])
        pcap = os.path.join(work, "cap.pcap")
        td = subprocess.Popen(["tcpdump", "-i", "lo", "-n", "-U", "--immediate-mode", "-B", "65536", "-s", "0", "-w", pcap, "tcp port %d" % port],
                              stderr=subprocess.PIPE, text=True)
        line = td.stderr.readline()
        if "listening" not in line:
            td.wait()
            td = None
            print("SKIP: tcpdump cannot capture on lo:", line.strip())
            return SKIP
        url = "https://127.0.0.1:%d" % port
        base = ["curl", "-sk", "--http1.1", "-o", "/dev/null", "-o", "/dev/null"]
        # before the attach: JSSE logs nothing for these
        for tag, extra in (("13", []), ("12", ["--tls-max", "1.2"])):
            subprocess.run(base[:3] + extra + ["-o", "/dev/null", "-d", "before-" + tag, url + "/before/" + tag],
                           check=True, timeout=30)
        keylog = os.path.join(work, "keys", "jsse.keys")
        os.makedirs(os.path.dirname(keylog))
        # the user-facing command: searchmig-agent keys attach (runs the JDK attach launcher)
        r = subprocess.run([agent, "keys", "attach", "--pid", str(srv.pid), "--keylog", keylog, "--jar", jar],
                           capture_output=True, text=True, timeout=60)
        if r.returncode != 0:
            print("attach failed:", r.returncode, r.stdout, r.stderr)
            return 1
        after = [("13", []),
                 ("13chacha", ["--tls13-ciphers", "TLS_CHACHA20_POLY1305_SHA256"]),
                 ("12", ["--tls-max", "1.2"]),
                 ("12chacha", ["--tls-max", "1.2", "--ciphers", "ECDHE-RSA-CHACHA20-POLY1305"]),
                 ("12aes128", ["--tls-max", "1.2", "--ciphers", "ECDHE-RSA-AES128-GCM-SHA256"])]
        traces, resumed = {}, {}
        for i, (tag, extra) in enumerate(after):
            body = os.path.join(work, "body-" + tag)
            with open(body, "wb") as f:   # multi-record (> 16 KiB) on every second connection
                f.write((b"{\"q\":\"%s\",\"n\":%d}\n" % (tag.encode(), i)) * (1 + 2000 * (i % 2)))
            tr = os.path.join(work, "trace-" + tag)
            subprocess.run(base + extra + ["--trace", tr, "--data-binary", "@" + body,
                                           url + "/after/%s/a" % tag, url + "/after/%s/b?x=1" % tag],
                           check=True, timeout=30)
            traces[tag] = trace_bytes(tr)
        # session resumption (TLS 1.2 session id/ticket, TLS 1.3 PSK) with openssl s_client,
        # whose own key log must match the Java agent's lines for the same connections
        client_keys = os.path.join(work, "s_client.keys")
        for v in ("1_2", "1_3"):
            sess = os.path.join(work, "sess" + v)
            for n, sa in ((1, ["-sess_out", sess]), (2, ["-sess_in", sess])):
                req = b"GET /res/%s/%d HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % (v.encode(), n)
                p = subprocess.Popen(["openssl", "s_client", "-tls" + v, "-connect", "127.0.0.1:%d" % port,
                                      "-keylogfile", client_keys, "-ign_eof"] + sa,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
                o, _ = p.communicate(req, timeout=30)
                resumed[req] = b"Reused, TLSv" in o
        time.sleep(1)
        td.send_signal(signal.SIGINT)
        td.wait(timeout=20)
        td = None
    finally:
        if td:
            td.kill()
        srv.kill()
        srv.wait()
    errs = []
    st = os.stat(keylog)
    if stat.S_IMODE(st.st_mode) != 0o600:
        errs.append("key log mode %o, want 600" % stat.S_IMODE(st.st_mode))
    labels = {}
    for l in open(keylog):
        labels[l.split()[0]] = labels.get(l.split()[0], 0) + 1
    print("key log lines:", labels)
    want = {"CLIENT_RANDOM": 5, "CLIENT_HANDSHAKE_TRAFFIC_SECRET": 4, "SERVER_HANDSHAKE_TRAFFIC_SECRET": 4,
            "CLIENT_TRAFFIC_SECRET_0": 4, "SERVER_TRAFFIC_SECRET_0": 4}
    if labels != want:
        errs.append("key log lines %r, want %r" % (labels, want))
    theirs = set(l for l in open(client_keys) if l.strip() and not l.startswith(("#", "EXPORTER_SECRET")))
    if len(theirs) != 10 or not theirs <= set(open(keylog)):
        errs.append("s_client's %d key log lines are not all in the Java agent's" % len(theirs))
    if sorted(resumed.values()) != [False, False, True, True]:
        errs.append("s_client sessions: resumed %r" % resumed)
    out = os.path.join(work, "records.out")
    r = subprocess.run([agent, "--pcap", pcap, "--port", str(port), "--tls-port", str(port),
                        "--tls-keylog", keylog, "--tls-key-wait", "200ms", "--output", out],
                       capture_output=True, text=True, timeout=120)
    summary = [l for l in r.stderr.splitlines() if l.startswith("searchmig-agent: packets=")]
    print("agent:", summary[0] if summary else r.stderr[-800:])
    if r.returncode != 0:
        errs.append("searchmig-agent exit %d: %s" % (r.returncode, r.stderr[-800:]))
        conns = {}
    else:
        conns = read_records(out)
    matched, undecryptable, other = set(), 0, []
    for cid, c in conns.items():
        hit = [t for t, (s, rv) in traces.items() if s and c["c2s"] == s and c["s2c"] == rv]
        if hit and not c["exc"]:
            matched.add(hit[0])
        elif c["c2s"] in resumed and not c["exc"] and c["s2c"].startswith(b"HTTP/1.1 200 OK\r\n") and \
                c["s2c"].endswith(b"\r\n\r\necho GET %s 0\n" % c["c2s"].split(b" ")[1]):
            matched.add(c["c2s"])
        elif not c["c2s"] and not c["s2c"] and c["exc"] and all("tls" in e for e in c["exc"]):
            undecryptable += 1
            print("undecryptable:", cid, c["exc"])
        else:
            other.append((cid, len(c["c2s"]), len(c["s2c"]), c["exc"], c["c2s"][:60]))
    for tag, (s, rv) in traces.items():
        if tag not in matched:
            errs.append("connection %s: not decrypted byte-exact (%d bytes sent, %d received per curl)"
                        % (tag, len(s), len(rv)))
        if s.count(b"POST /after/%s/" % tag.encode()) != 2 or rv.count(b"HTTP/1.1 200 OK\r\n") != 2:
            errs.append("connection %s: curl trace holds no two exchanges" % tag)
    for req in resumed:
        if req not in matched:
            errs.append("s_client connection %r: not decrypted exactly" % req[:20])
    if undecryptable != 2:
        errs.append("%d connections reported undecryptable, want 2 (made before the attach)" % undecryptable)
    for o in other:
        errs.append("unexpected connection %r" % (o,))
    errs += premain(work, jar, ks)
    for e in errs:
        print("ERROR:", e)
    print("%d connections decrypted byte-exact after the attach, %d before it undecryptable"
          % (len(matched), undecryptable))
    return 1 if errs else 0


if __name__ == "__main__":
    sys.exit(main())
