#!/usr/bin/python3
"""searchmig-agent on a capture file made at test time: tcpdump on loopback
records curl (keep-alive, POST with a body, chunked upload, HEAD) talking to
python HTTP servers; the agent's records must rebuild exactly the bytes of
every TCP connection (compared with tshark's `follow,tcp,raw`), with one
endOfMessage per request, and the URIs must match tshark's HTTP dissection.
Then a live capture on lo is stopped with SIGTERM while a keep-alive
connection is open: its records must be complete and closed. And a live
capture that fell behind (the agent stopped with SIGSTOP while a client
talks, then SIGCONT and SIGTERM at once) still records every request and
response the kernel captured before the SIGTERM, each once; a single
request on a quiet link is processed while the agent runs (every engine); and
SIGHUP applies the config file's new server port without a restart (every
live engine).
Needs root (or CAP_NET_RAW) for tcpdump/libpcap: exits 77 otherwise."""
import http.server
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.dont_write_bytecode = True   # nothing written into the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tslib  # noqa: E402

AGENT = sys.argv[1]
SRC = os.environ.get("SM_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "../../.."))


def skip(why):
    print("SKIP:", why)
    sys.exit(77)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


class Echo(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def _body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            data = b""
            while True:
                n = int(self.rfile.readline().split(b";")[0], 16)
                if n == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return data
                data += self.rfile.read(n)
                self.rfile.readline()
        n = int(self.headers.get("Content-Length", "0"))
        return self.rfile.read(n)

    def do_GET(self):
        body = ("hello from %s\n" % self.path).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        body = self._body()
        out = b'{"received":%d}' % len(body)
        self.send_response(201)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    do_PUT = do_POST


class FastEcho(Echo):
    # no Nagle: the head and the body of a response (two writes) leave at once, not 40 ms
    # apart (the client's delayed ACK)
    disable_nagle_algorithm = True


def start_echo(port, handler=Echo):
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


def start_tcpdump(path, ports):
    flt = " or ".join("tcp port %d" % p for p in ports)
    p = subprocess.Popen(["tcpdump", "-i", "lo", "--immediate-mode", "-B", "65536", "-U", "-s", "0", "-w", path, flt],
                         stderr=subprocess.PIPE, stdout=subprocess.DEVNULL)
    line = p.stderr.readline().decode()
    if "listening" not in line:
        p.kill()
        skip("tcpdump cannot capture on lo: " + line.strip())
    return p


def wait_stable(path, quiet=0.7, limit=20):
    """Waits until path stopped growing for `quiet` seconds (at most `limit`)."""
    end = time.time() + limit
    last, since = -1, time.time()
    while time.time() < end:
        size = os.path.getsize(path) if os.path.exists(path) else 0
        if size != last:
            last, since = size, time.time()
        elif time.time() - since >= quiet:
            return
        time.sleep(0.1)


def stop(p):
    p.send_signal(signal.SIGINT)
    try:
        p.wait(timeout=10)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()


def curl(*args):
    t0 = time.time()
    subprocess.run(["curl", "-s", "-o", "/dev/null", *args], check=True, timeout=30)
    if os.environ.get("SM_DEBUG_IT"):
        print("curl %s: %.2fs" % (args[-1], time.time() - t0), file=sys.stderr)


def tshark_streams(pcap):
    """Per TCP stream: (client bytes, server bytes) from tshark's follow."""
    ids = subprocess.run(["tshark", "-r", pcap, "-T", "fields", "-e", "tcp.stream"], check=True,
                         capture_output=True, text=True).stdout.split()
    ids = sorted(set(int(i) for i in ids if i))
    args = ["tshark", "-r", pcap, "-q"]
    for i in ids:
        args += ["-z", "follow,tcp,raw,%d" % i]
    out = subprocess.run(args, check=True, capture_output=True, text=True).stdout
    streams = []
    cur = None
    for line in out.splitlines():
        if line.startswith("Follow: tcp"):
            cur = [b"", b""]
            streams.append(cur)
        elif cur is None or line.startswith(("Filter:", "Node ", "=====")) or not line.strip():
            continue
        elif line.startswith("\t"):
            cur[1] += bytes.fromhex(line.strip())
        else:
            cur[0] += bytes.fromhex(line.strip())
    return [tuple(s) for s in streams if s[0] or s[1]]


def tshark_uris(pcap, ports):
    args = ["tshark", "-r", pcap]
    for p in ports:
        args += ["-d", "tcp.port==%d,http" % p]
    args += ["-Y", "http.request", "-T", "fields", "-e", "http.request.uri"]
    return sorted(subprocess.run(args, check=True, capture_output=True, text=True).stdout.split())


def run_agent(args, **kw):
    r = subprocess.run([AGENT, *args], capture_output=True, text=True, timeout=120, **kw)
    sys.stderr.write(r.stderr)
    assert r.returncode == 0, "agent exit %d" % r.returncode
    assert "searchmig-agent: packets=" in r.stderr, "no final stats line"
    return r


def check_offline(tmp):
    echo = start_echo(0)
    p_echo, p_files = echo.server_address[1], free_port()
    www = os.path.join(tmp, "www")
    os.mkdir(www)
    with open(os.path.join(www, "index.txt"), "w") as f:
        f.write("static file\n" * 50)
    pcap = os.path.join(tmp, "t.pcap")
    files = subprocess.Popen(["/usr/bin/python3", "-m", "http.server", str(p_files), "--bind", "127.0.0.1",
                              "--directory", www], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", p_files), timeout=1).close()
                break
            except OSError:
                time.sleep(0.05)
        td = start_tcpdump(pcap, [p_echo, p_files])
        base = "http://127.0.0.1:%d" % p_echo
        curl(base + "/a", base + "/b?x=1", base + "/c")                       # keep-alive, 3 requests
        curl("-d", '{"doc":1}', "-H", "Content-Type: application/json", base + "/idx/_doc")
        big = os.path.join(tmp, "big.ndjson")
        with open(big, "w") as f:
            for i in range(3000):
                f.write('{"index":{}}\n{"n":%d}\n' % i)
        curl("-H", "Transfer-Encoding: chunked", "--data-binary", "@" + big, base + "/_bulk")
        curl("-X", "PUT", "--data-binary", "@" + big, base + "/idx/_bulk")   # large body, Content-Length
        curl("-I", "http://127.0.0.1:%d/index.txt" % p_files)                 # HEAD (HTTP/1.0 server)
        curl("http://127.0.0.1:%d/index.txt" % p_files)                       # close-delimited side
        wait_stable(pcap)   # tcpdump -U writes each packet: wait until it caught up
        stop(td)
    finally:
        echo.shutdown()
        files.terminate()
        files.wait()

    out = os.path.join(tmp, "out.log")
    ports = [p_echo, p_files]
    run_agent(["--pcap", pcap, "--port", str(p_echo), "--port", str(p_files), "--output", out,
               "--max-record-size", "64KiB", "--node-id", "it-node", "--stats-interval", "0"])
    records = tslib.read_records(out)
    for raw, _ in records:
        assert len(raw) <= 64 * 1024, "record over the cap"
    # interop: the proto file decodes them
    proto = os.path.join(SRC, "common/proto/TrafficCaptureStream.proto")
    r = subprocess.run(["protoc", "--decode=TrafficStream", "-I", os.path.dirname(proto), "-I", "/usr/include",
                        proto], input=records[0][0], capture_output=True, timeout=30)
    assert r.returncode == 0 and b"connectionId" in r.stdout, r.stderr

    conns = tslib.connections(records)
    streams = tshark_streams(pcap)
    assert len(conns) == len(streams) == 6, "%d connections recorded, %d streams" % (len(conns), len(streams))
    got = sorted((c["c2s"], c["s2c"]) for c in conns.values())
    assert got == sorted(streams), "rebuilt bytes differ from tshark's streams"
    uris = []
    for c in conns.values():
        assert c["closes"] == 1 and not c["exceptions"], c["exceptions"]
        for req in c["requests"]:
            uris.append(req.split(b" ")[1].decode())
    assert sum(c["eoms"] for c in conns.values()) == 8
    assert sorted(uris) == tshark_uris(pcap, ports), (sorted(uris), tshark_uris(pcap, ports))
    assert all(ts["nodeId"] == "it-node" for _, ts in records)
    # the 6 MB bodies did not fit one 64 KiB record
    assert any(o["kind"] == "readSegment" for _, ts in records for o in ts["obs"]) or len(records) > 8
    print("offline: %d records, %d connections, %d requests: bytes identical to tshark" %
          (len(records), len(conns), len(uris)))


def check_live_sigterm(tmp):
    echo = start_echo(0)
    port = echo.server_address[1]
    mport = free_port()
    out = os.path.join(tmp, "live.log")
    agent = subprocess.Popen([AGENT, "--interface", "lo", "--port", str(port), "--output", out,
                              "--stats-interval", "0", "--idle-flush", "200ms",
                              "--metrics-listen", "127.0.0.1:%d" % mport],
                             stderr=subprocess.PIPE, text=True)
    try:
        seen = []
        while True:   # its first lines: "...: capturing, ..." or why not
            line = agent.stderr.readline()
            seen.append(line)
            if "capturing" in line:
                break
            if not line or len(seen) > 20:
                agent.kill()
                raise AssertionError("live capture did not start: " + "".join(seen).strip())
        time.sleep(0.5)
        s = socket.create_connection(("127.0.0.1", port))
        reqs = []
        for i in range(3):
            req = b"GET /live/%d HTTP/1.1\r\nHost: x\r\n\r\n" % i
            s.sendall(req)
            reqs.append(req)
            data = b""
            while b"hello" not in data or not data.endswith(b"\n"):
                data += s.recv(65536)
        # wait (bounded) until the agent saw the 3 requests and its idle flush
        # wrote the open connection's record
        metrics = ""
        deadline = time.time() + 20
        while time.time() < deadline:
            metrics = subprocess.run(["curl", "-s", "http://127.0.0.1:%d/metrics" % mport],
                                     capture_output=True, text=True, timeout=10).stdout
            if "searchmig_agent_requests_total 3\n" in metrics and "searchmig_agent_records_total 1\n" in metrics:
                break
            time.sleep(0.1)
        assert "searchmig_agent_requests_total 3\n" in metrics, metrics
        assert "searchmig_agent_connections_open 1\n" in metrics, metrics
        assert "searchmig_agent_records_total 1\n" in metrics, metrics   # the idle flush
        for name in ("flows_evicted_total", "flows_replaced_total", "rst_ignored_total"):
            assert "searchmig_agent_%s 0\n" % name in metrics, metrics
        health = subprocess.run(["curl", "-s", "http://127.0.0.1:%d/health" % mport], capture_output=True,
                                text=True, timeout=10).stdout
        assert health == "ok\n", health
        agent.send_signal(signal.SIGTERM)
        _, err = agent.communicate(timeout=30)
        sys.stderr.write(err)
        assert agent.returncode == 0, "agent exit %d" % agent.returncode
        assert "searchmig-agent: packets=" in err
        s.close()
    finally:
        echo.shutdown()
        if agent.poll() is None:
            agent.kill()
    conns = tslib.connections(tslib.read_records(out))
    assert len(conns) == 1, conns.keys()
    c = list(conns.values())[0]
    assert c["requests"] == reqs and c["closes"] == 1, c
    print("live: SIGTERM flushed and closed the open connection (%d requests)" % len(reqs))


def check_ready_full_disk(tmp):
    """/ready turns 503 with the reason once the file output loses records
    (a full disk, here RLIMIT_FSIZE), while /health stays 200: a restart would
    not help."""
    import resource
    echo = start_echo(0)
    port, mport = echo.server_address[1], free_port()
    out = os.path.join(tmp, "full.log")

    def small_disk():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)   # write() fails with EFBIG instead
        resource.setrlimit(resource.RLIMIT_FSIZE, (48 << 10, 48 << 10))

    agent = subprocess.Popen([AGENT, "--interface", "lo", "--port", str(port), "--output", out,
                              "--stats-interval", "0", "--idle-flush", "100ms",
                              "--metrics-listen", "127.0.0.1:%d" % mport],
                             stderr=subprocess.PIPE, text=True, preexec_fn=small_disk)

    def get(path):
        r = subprocess.run(["curl", "-s", "-w", "\n%{http_code}", "http://127.0.0.1:%d%s" % (mport, path)],
                           capture_output=True, text=True, timeout=10).stdout
        body, _, code = r.rpartition("\n")
        return int(code), body
    try:
        seen = []
        while True:
            line = agent.stderr.readline()
            seen.append(line)
            if "capturing" in line:
                break
            if not line or len(seen) > 20:
                agent.kill()
                raise AssertionError("live capture did not start: " + "".join(seen).strip())
        time.sleep(0.3)
        assert get("/ready") == (200, "ok\n"), get("/ready")
        # ~200 KB of request bodies: the records cannot all fit 48 KiB
        for i in range(20):
            s = socket.create_connection(("127.0.0.1", port))
            body = b"x" * 10000
            s.sendall(b"POST /full/%d HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s"
                      % (i, len(body), body))
            while s.recv(65536):
                pass
            s.close()
        deadline = time.time() + 20
        code, why = get("/ready")
        while code == 200 and time.time() < deadline:
            time.sleep(0.2)
            code, why = get("/ready")
        assert code == 503 and why.startswith("losing records: ") and "failed in the sink" in why, (code, why)
        assert get("/health") == (200, "ok\n"), get("/health")
        metrics = get("/metrics")[1]
        failed = [ln for ln in metrics.splitlines() if ln.startswith("searchmig_agent_sink_failed_total ")]
        assert failed and int(failed[0].split()[1]) > 0, failed
        agent.send_signal(signal.SIGTERM)
        _, err = agent.communicate(timeout=30)
        assert "records_failed=" in err and "records_failed=0" not in err, err[-500:]
    finally:
        echo.shutdown()
        if agent.poll() is None:
            agent.kill()
    print("ready: 503 '%s' once records were lost, /health 200" % why.strip())


def start_live(engine, what, args, log=None):
    """Starts searchmig-agent --engine engine (on lo unless ebpf-socket) with args and waits
    for its "capturing" line. Returns the process, or None when an eBPF engine is not
    available here (said on stdout); a pcap agent that does not start fails the test. The
    stderr lines read go to log when given."""
    agent = subprocess.Popen([AGENT, "--engine", engine] + (["--interface", "lo"] if engine != "ebpf-socket" else []) +
                             args, stderr=subprocess.PIPE, text=True)
    seen = [] if log is None else log
    while True:
        line = agent.stderr.readline()
        seen.append(line)
        if "capturing" in line:
            return agent
        if not line or len(seen) > 40:
            agent.kill()
            if engine != "pcap":   # eBPF not built or not permitted here
                print("live %s: %s not available: %s" % (what, engine, "".join(seen).strip()[-200:]))
                return None
            raise AssertionError("live capture did not start: " + "".join(seen).strip())


def check_live_backlog(tmp, engine):
    """The requests must come fast: while the agent is stopped, each 10 ms the kernel hands
    over a partly filled ring block (pcap), so a slow trickle would fill the ring's blocks."""
    echo = start_echo(0, FastEcho)
    port = echo.server_address[1]
    out = os.path.join(tmp, "backlog-%s.log" % engine)
    agent = start_live(engine, "backlog", ["--port", str(port), "--output", out, "--stats-interval", "0"])
    n = 200
    if not agent:
        echo.shutdown()
        return
    try:
        time.sleep(0.5)
        agent.send_signal(signal.SIGSTOP)   # the capture falls behind: packets wait in the ring
        try:
            s = socket.create_connection(("127.0.0.1", port))
            reqs, resps = [], b""
            for i in range(n):
                req = b"GET /backlog/%d HTTP/1.1\r\nHost: x\r\n\r\n" % i
                s.sendall(req)
                reqs.append(req)
                want = b"hello from /backlog/%d\n" % i
                while not resps.endswith(want):
                    resps += s.recv(65536)
            s.close()
        finally:
            agent.send_signal(signal.SIGCONT)
            agent.send_signal(signal.SIGTERM)   # at once: nothing of the above was read yet
        _, err = agent.communicate(timeout=60)
        sys.stderr.write(err)
        assert agent.returncode == 0, "agent exit %d" % agent.returncode
    finally:
        echo.shutdown()
        if agent.poll() is None:
            agent.kill()
    conns = tslib.connections(tslib.read_records(out))
    assert len(conns) == 1, "%d connections recorded, 1 expected" % len(conns)
    c = list(conns.values())[0]
    assert c["requests"] == reqs, "%d of %d requests recorded" % (len(c["requests"]), n)
    assert c["s2c"] == resps, "%d of %d response bytes recorded" % (len(c["s2c"]), len(resps))
    assert c["closes"] == 1, c["closes"]
    print("live %s: a capture %d requests behind at SIGTERM recorded all of them" % (engine, n))


def check_live_quiet(tmp, engine):
    """One request on an otherwise quiet link is processed while the agent runs (not only at
    shutdown): the eBPF programs wake user space only once 256 KiB wait, so the engines must
    also read the ring when their poll times out."""
    echo = start_echo(0, FastEcho)
    port, mport = echo.server_address[1], free_port()
    out = os.path.join(tmp, "quiet-%s.log" % engine)
    agent = start_live(engine, "quiet", ["--port", str(port), "--output", out, "--stats-interval", "0",
                                         "--metrics-listen", "127.0.0.1:%d" % mport])
    if not agent:
        echo.shutdown()
        return
    try:
        time.sleep(0.5)
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(b"GET /quiet HTTP/1.1\r\nHost: x\r\n\r\n")
        data = b""
        while not data.endswith(b"hello from /quiet\n"):
            data += s.recv(65536)
        metrics = ""
        deadline = time.time() + 20   # bounded wait, not a timing check
        while time.time() < deadline:
            metrics = subprocess.run(["curl", "-s", "http://127.0.0.1:%d/metrics" % mport],
                                     capture_output=True, text=True, timeout=10).stdout
            if "searchmig_agent_requests_total 1\n" in metrics:
                break
            time.sleep(0.1)
        s.close()
        assert "searchmig_agent_requests_total 1\n" in metrics, "%s: the request was not processed" % engine
        agent.send_signal(signal.SIGTERM)
        _, err = agent.communicate(timeout=30)
        assert agent.returncode == 0, "agent exit %d" % agent.returncode
    finally:
        echo.shutdown()
        if agent.poll() is None:
            agent.kill()
    print("live %s: a single request on a quiet link processed while running" % engine)


def check_live_reload(tmp, engine):
    """SIGHUP re-reads the server ports from the config file and the running capture applies
    them: with port A configured, requests to B are not recorded; after the file says B and
    SIGHUP, requests to B are and those to A are not. The eBPF engines change their kernel
    port maps in place, pcap sets a new BPF filter; ebpf-socket's process filter (pid) is
    applied the same way."""
    echo_a, echo_b = start_echo(0, FastEcho), start_echo(0, FastEcho)
    pa, pb, mport = echo_a.server_address[1], echo_b.server_address[1], free_port()
    conf = os.path.join(tmp, "reload-%s.conf" % engine)
    with open(conf, "w") as f:
        f.write("port = %d\n" % pa)
    out = os.path.join(tmp, "reload-%s.log" % engine)
    log = []
    agent = start_live(engine, "reload", ["--config", conf, "--output", out, "--stats-interval", "0",
                                          "--idle-flush", "100ms", "--metrics-listen", "127.0.0.1:%d" % mport], log)
    if not agent:
        echo_a.shutdown()
        echo_b.shutdown()
        return

    def wait_log(word):
        while True:
            line = agent.stderr.readline()
            log.append(line)
            if word in line:
                return True
            if not line or len(log) > 40:
                return False

    def get(port, path):
        with socket.create_connection(("127.0.0.1", port)) as s:
            s.sendall(b"GET " + path.encode() + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            while s.recv(65536):
                pass

    def wait_requests(n):
        deadline = time.time() + 20   # bounded wait, not a timing check
        metrics = ""
        while time.time() < deadline:
            metrics = subprocess.run(["curl", "-s", "http://127.0.0.1:%d/metrics" % mport],
                                     capture_output=True, text=True, timeout=10).stdout
            if "searchmig_agent_requests_total %d\n" % n in metrics:
                return
            time.sleep(0.1)
        raise AssertionError("%s: requests_total never reached %d: %s" % (engine, n, metrics[-300:]))

    try:
        time.sleep(0.5)
        get(pa, "/a1")
        get(pb, "/b1")
        get(pa, "/a2")
        wait_requests(2)
        with open(conf, "w") as f:
            f.write("port = %d\n" % pb)
        agent.send_signal(signal.SIGHUP)
        assert wait_log("now capturing port(s) %d" % pb), "%s: SIGHUP not applied: %s" % (engine, "".join(log))
        # the eBPF port map changed at once, pcap's filter at its next poll, the flow table at its
        # next tick (100 ms each)
        time.sleep(0.5)
        get(pb, "/b2")
        get(pa, "/a3")
        get(pb, "/b3")
        wait_requests(4)
        want = {"/a1", "/a2", "/b2", "/b3"}
        if engine == "ebpf-socket":
            # the process filter follows SIGHUP too: pid 1 (not our server) records nothing,
            # then this process (the echo servers are its threads) records again
            for pid, path in ((1, "/b4"), (os.getpid(), "/b5")):
                with open(conf, "w") as f:
                    f.write("port = %d\npid = %d\n" % (pb, pid))
                agent.send_signal(signal.SIGHUP)
                assert wait_log("process filter now, process %d only" % pid), \
                    "%s: process filter not applied: %s" % (engine, "".join(log))
                time.sleep(0.3)
                get(pb, path)
            wait_requests(5)
            want.add("/b5")
        agent.send_signal(signal.SIGTERM)
        _, err = agent.communicate(timeout=30)
        assert agent.returncode == 0, "agent exit %d: %s" % (agent.returncode, err[-500:])
        got = set()
        for c in tslib.connections(tslib.read_records(out)).values():
            for req in c["requests"]:
                got.add(req.split(b" ")[1].decode())
        assert got == want, "%s: recorded %s, want %s" % (engine, sorted(got), sorted(want))
    finally:
        echo_a.shutdown()
        echo_b.shutdown()
        if agent.poll() is None:
            agent.kill()
    print("live %s: SIGHUP applied the new port" % engine)


def check_reload_custom_filter(tmp):
    """With --bpf-filter the ports come from the user's expression: SIGHUP changes nothing,
    says why, and the agent keeps running."""
    port = free_port()
    log = []
    agent = start_live("pcap", "bpf-filter", ["--port", str(port), "--bpf-filter", "tcp port %d" % port,
                                              "--output", os.path.join(tmp, "custom.log"), "--stats-interval", "0"],
                       log)
    try:
        agent.send_signal(signal.SIGHUP)
        while True:
            line = agent.stderr.readline()
            log.append(line)
            assert line and len(log) < 60, "pcap --bpf-filter: no answer to SIGHUP: %s" % "".join(log)
            if "ports not changed" in line:
                assert "--bpf-filter" in line, line
                break
        agent.send_signal(signal.SIGTERM)
        agent.communicate(timeout=30)
        assert agent.returncode == 0, "agent exit %d" % agent.returncode
    finally:
        if agent.poll() is None:
            agent.kill()
    print("live pcap --bpf-filter: SIGHUP refused with the reason, agent kept running")


def check_tc_attach(tmp):
    """--tc-attach picks how ebpf-tc hooks in: tc gives classic clsact filters, auto (default)
    tcx links where the kernel has them; an unknown mode is refused before anything loads."""
    r = subprocess.run([AGENT, "--engine", "ebpf-tc", "--interface", "lo", "--tc-attach", "tcxx",
                        "--output", os.path.join(tmp, "bad.log")], capture_output=True, text=True, timeout=30)
    assert r.returncode != 0 and "--tc-attach 'tcxx': auto, tcx or tc" in r.stderr, (r.returncode, r.stderr)
    for mode, want in (("tc", "TC filters attached"), ("auto", None)):
        log = []
        agent = start_live("ebpf-tc", "tc-attach " + mode,
                           ["--port", str(free_port()), "--tc-attach", mode, "--output",
                            os.path.join(tmp, "attach-%s.log" % mode), "--stats-interval", "0"], log)
        if not agent:
            return
        agent.send_signal(signal.SIGTERM)
        agent.communicate(timeout=30)
        text = "".join(log)
        assert agent.returncode == 0, "--tc-attach %s: exit %d" % (mode, agent.returncode)
        ok = want in text if want else ("tcx links attached" in text or "no tcx on this kernel" in text)
        assert ok, "--tc-attach %s: %s" % (mode, text)
    print("live ebpf-tc --tc-attach: tc and auto attach as said, a bad mode refused")


def main():
    for tool in ("tcpdump", "tshark", "curl", "protoc"):
        if not shutil.which(tool):
            skip(tool + " not installed")
    if os.geteuid() != 0:
        skip("needs root for tcpdump/libpcap on lo")
    tmp = tempfile.mkdtemp(prefix="sm-agent-it-")
    try:
        check_offline(tmp)
        check_live_sigterm(tmp)
        check_ready_full_disk(tmp)
        check_reload_custom_filter(tmp)
        check_tc_attach(tmp)
        for engine in ("pcap", "ebpf-tc", "ebpf-socket"):
            check_live_backlog(tmp, engine)
            check_live_quiet(tmp, engine)
            check_live_reload(tmp, engine)
    finally:
        if not os.environ.get("SM_KEEP_TMP"):
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
