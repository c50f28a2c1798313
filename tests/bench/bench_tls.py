#!/usr/bin/python3
"""TLS decryption speed of searchmig-agent, all in one run (docs/tls.md "Performance").

A local HTTPS server (bench_tls_httpd: OpenSSL, a thread per connection,
HTTP/1.1 keep-alive, GET /N answers N body bytes) writes its session secrets
to a key log.
(1) offline: tcpdump captures wrk on lo against /BENCH_BODY (64 KiB) for
    BENCH_PCAP_SECONDS; searchmig-agent --pcap F --port P --tls-keylog K
    --output <tmpfs> is timed (BENCH_RUNS, median kept) and its MB/s of
    plaintext (the agent's plaintext_bytes) printed beside
    `openssl speed -evp aes-128-gcm / aes-256-gcm / chacha20-poly1305 -seconds 3`
    (16 KiB blocks = full TLS records) from the same run.
(2) live: wrk (BENCH_SECONDS, BENCH_CONNS) against /1024 without capture and
    with searchmig-agent --engine E --tls-keylog K running, for each engine E
    of BENCH_ENGINES (pcap, ebpf-tc, ebpf-socket; an engine that cannot start
    here is reported and skipped) (rounds interleaved, BENCH_ROUNDS, median
    kept): throughput ratio, p99 latency ratio, the share of wrk's requests
    the agent recorded decrypted, TLS gaps and resynchronisations.
BENCH_OFFLINE=0 skips (1), BENCH_LIVE=0 skips (2).
Fails only on errors (agent exit code, no summary, nothing decrypted); no
timing assertion. Exit 77 without root, wrk, tcpdump or openssl.
With TLS_DUMP (tests/integration/tls/tls_dump --discard 1), (1) also times
the pcap-file engine + reassembly + TLS filter alone (plaintext counted,
not framed, recorded or written): the decryption layer's own speed.
Usage: bench_tls.py SEARCHMIG_AGENT BENCH_TLS_HTTPD [TLS_DUMP]"""
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

AGENT, HTTPD = sys.argv[1], sys.argv[2]
TLS_DUMP = sys.argv[3] if len(sys.argv) > 3 else None   # capture + TLS filter only, output discarded
SECS = int(os.environ.get("BENCH_SECONDS", "10"))
CONNS = int(os.environ.get("BENCH_CONNS", "16"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
RUNS = int(os.environ.get("BENCH_RUNS", "3"))
PCAP_SECS = int(os.environ.get("BENCH_PCAP_SECONDS", "1"))
BODY = int(os.environ.get("BENCH_BODY", "65536"))
ENGINES = [e for e in os.environ.get("BENCH_ENGINES", "pcap,ebpf-tc,ebpf-socket").split(",") if e]
OFFLINE = os.environ.get("BENCH_OFFLINE", "1") != "0"
LIVE = os.environ.get("BENCH_LIVE", "1") != "0"
# BENCH_TRAFFIC_CPUS / BENCH_AGENT_CPUS: taskset lists to run wrk + server and the live agent on
# separate cores (see bench_engines.py); unset: everything shares all cores.
TRAFFIC_CPUS = os.environ.get("BENCH_TRAFFIC_CPUS", "")
AGENT_CPUS = os.environ.get("BENCH_AGENT_CPUS", "")


def pin(cpus):
    return ["taskset", "-c", cpus] if cpus else []



def wrk_run(port, path, secs, conns):
    r = subprocess.run(pin(TRAFFIC_CPUS) + ["wrk", "-t2", "-c%d" % conns, "-d%ds" % secs, "--latency",
                        "https://127.0.0.1:%d/%s" % (port, path)], capture_output=True, text=True,
                       timeout=secs + 60)
    out = r.stdout
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if r.returncode != 0 or not m:
        raise RuntimeError("wrk failed: %s %s" % (out, r.stderr))
    total = int(re.search(r"(\d+) requests in", out).group(1))
    m2 = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    p99 = float(m2.group(1)) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[m2.group(2)]
    errs = re.search(r"Socket errors: (.*)", out)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if non2xx:
        raise RuntimeError("wrk: %s non-2xx responses" % non2xx.group(1))
    return float(m.group(1)), p99, total, errs.group(1) if errs else ""


def summary(stderr):
    """{key: int} of the agent's two exit summary lines."""
    kv = {}
    for line in stderr.splitlines():
        if line.startswith("searchmig-agent: tls ") or line.startswith("searchmig-agent: packets="):
            pre = "tls_" if line.startswith("searchmig-agent: tls ") else ""
            for m in re.finditer(r"(\w+)=(\d+)", line):
                kv[pre + m.group(1)] = int(m.group(2))
    if "tls_decrypted" not in kv or "requests" not in kv:
        raise RuntimeError("no exit summary from searchmig-agent: %s" % stderr[-800:])
    return kv


def openssl_speed(cipher):
    r = subprocess.run(["openssl", "speed", "-evp", cipher, "-seconds", "3", "-bytes", "16384"],
                       capture_output=True, text=True, timeout=120)
    # last line: "<name>  <n>k" (1000s of bytes per second)
    for line in reversed(r.stdout.splitlines()):
        m = re.search(r"([\d.]+)k\s*$", line)
        if m:
            return float(m.group(1)) * 1000 / 1e6
    raise RuntimeError("openssl speed %s: %s %s" % (cipher, r.stdout, r.stderr))


def start_agent(args, log):
    p = subprocess.Popen(pin(AGENT_CPUS) + [AGENT] + args, stdout=subprocess.DEVNULL, stderr=log)
    time.sleep(1.5)   # no ready file: libpcap is open well before this
    if p.poll() is not None:
        raise RuntimeError("searchmig-agent exited early (rc %s)" % p.returncode)
    return p


def start_server(work, cert, key, suite):
    keylog = os.path.join(work, "keys-%s.log" % suite)
    srv = subprocess.Popen(pin(TRAFFIC_CPUS) + [HTTPD, cert, key, keylog, suite], stdout=subprocess.PIPE, text=True)
    line = srv.stdout.readline()
    if not line.strip().isdigit():
        raise RuntimeError("bench_tls_httpd %s did not start" % suite)
    port = int(line)
    wrk_run(port, "1", 1, 2)   # warm up, and checks the suite is accepted
    return srv, port, keylog


def offline(work, suite, port, keylog, openssl):
    pcap = os.path.join(work, "tls.pcap")
    td = subprocess.Popen(["tcpdump", "-i", "lo", "-s", "0", "-B", "262144", "-U", "-w", pcap,
                           "tcp port %d" % port], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    line = td.stderr.readline()   # "listening on lo, ..." once the capture is open (a big -B takes a while)
    if "listening" not in line:
        raise RuntimeError("tcpdump: %s" % line)
    time.sleep(0.5)
    _, _, sent, _ = wrk_run(port, str(BODY), PCAP_SECS, 2)
    time.sleep(0.5)
    td.send_signal(signal.SIGINT)
    tderr = td.communicate(timeout=30)[1]
    m = re.search(r"(\d+) packets dropped by kernel", tderr)
    print("[%s] capture: %d wrk requests of %d B bodies, pcap %.1f MB, tcpdump kernel drops %s"
          % (suite, sent, BODY, os.path.getsize(pcap) / 1e6, m.group(1) if m else "?"))
    walls = []
    kv = None
    out = os.path.join(work, "records.out")
    for _ in range(RUNS):
        t0 = time.monotonic()
        r = subprocess.run([AGENT, "--pcap", pcap, "--port", str(port), "--tls-keylog", keylog,
                            "--output", out], capture_output=True, text=True, timeout=600)
        walls.append(time.monotonic() - t0)
        if r.returncode != 0:
            raise RuntimeError("searchmig-agent --pcap exit %d: %s" % (r.returncode, r.stderr[-800:]))
        kv = summary(r.stderr)
        os.unlink(out)
    if kv["tls_decrypted"] == 0 or kv["tls_plaintext_bytes"] == 0 or kv["tls_undecryptable"] != 0:
        raise RuntimeError("[%s] not all decrypted: %s" % (suite, kv))
    if kv["gaps"] or kv["drops"]:
        print("[%s] WARNING: the capture is incomplete (tcpdump dropped packets): %d gaps" % (suite, kv["gaps"]))
    wall = statistics.median(walls)
    mbs = kv["tls_plaintext_bytes"] / 1e6 / wall
    print("[%s] offline: plaintext %.1f MB, %d/%d TLS connections decrypted (%d TCP), %d requests %d responses, gaps %d; "
          "wall median %.2f s (min %.2f) -> %.0f MB/s plaintext (%.0f MB/s of pcap)"
          % (suite, kv["tls_plaintext_bytes"] / 1e6, kv["tls_decrypted"], kv["tls_connections"],
             kv["connections"], kv["requests"],
             kv["responses"], kv["gaps"], wall, min(walls), mbs, os.path.getsize(pcap) / 1e6 / wall))
    print("[%s] agent MB/s / openssl speed: %s" % (suite, ", ".join("%s %.3f" % (c, mbs / v)
                                                               for c, v in openssl.items())))
    if TLS_DUMP:
        dwalls = []
        dout = os.path.join(work, "dump")
        os.makedirs(dout, exist_ok=True)
        for _ in range(RUNS):
            t0 = time.monotonic()
            r = subprocess.run([TLS_DUMP, "--file", pcap, "--keylog", keylog, "--out", dout, "--port", str(port),
                                "--discard", "1"], capture_output=True, text=True, timeout=600)
            dwalls.append(time.monotonic() - t0)
            if r.returncode != 0:
                raise RuntimeError("tls_dump exit %d: %s" % (r.returncode, r.stderr[-800:]))
        st = dict(l.strip().split("=") for l in open(os.path.join(dout, "stats.txt")))
        dmbs = int(st["bytes_plaintext"]) / 1e6 / statistics.median(dwalls)
        print("[%s] capture + decryption only (tls_dump --discard, no HTTP/records/output): wall median %.2f s "
              "-> %.0f MB/s plaintext; / openssl speed: %s" %
              (suite, statistics.median(dwalls), dmbs, ", ".join("%s %.3f" % (c, dmbs / v) for c, v in openssl.items())))
    os.unlink(pcap)


def main():
    sys.stdout.reconfigure(line_buffering=True)
    if os.geteuid() != 0:
        print("SKIP: needs root (tcpdump / live capture on lo)")
        return 77
    for tool in ("wrk", "tcpdump", "openssl"):
        if not shutil.which(tool):
            print("SKIP: %s not installed" % tool)
            return 77
    base = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None
    work = tempfile.mkdtemp(prefix="bench_tls.", dir=base)
    srv = None
    try:
        cert, key = os.path.join(work, "cert.pem"), os.path.join(work, "key.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                        "-nodes", "-keyout", key, "-out", cert, "-days", "1", "-subj", "/CN=localhost"],
                       check=True, capture_output=True)
        suites = os.environ.get("BENCH_SUITES", "tls1.3,ECDHE-ECDSA-AES128-GCM-SHA256,"
                                "ECDHE-ECDSA-CHACHA20-POLY1305").split(",")
        openssl = {c: openssl_speed(c) for c in ("aes-128-gcm", "aes-256-gcm", "chacha20-poly1305")} \
            if OFFLINE else {}
        for c, v in openssl.items():
            print("openssl speed -evp %-18s %7.0f MB/s (16 KiB blocks, 1 core)" % (c, v))

        # (1) offline, one capture per suite
        for suite in (suites if OFFLINE else []):
            srv, port, keylog = start_server(work, cert, key, suite)
            try:
                offline(work, suite, port, keylog, openssl)
            finally:
                srv.kill()
                srv.wait()
                srv = None

        if not LIVE:
            return 0
        srv, port, keylog = start_server(work, cert, key, "tls1.3")
        # (2) live, each engine
        engines = list(ENGINES)
        res = {m: [] for m in ["none"] + engines}
        for rnd in range(ROUNDS):
            for mode in ["none"] + engines:
                if mode != "none" and mode not in engines:
                    continue
                agent = None
                logf = open(os.path.join(work, "agent.log"), "w+")
                try:
                    if mode != "none":
                        args = ["--engine", mode, "--port", str(port), "--tls-keylog", keylog,
                                "--output", os.path.join(work, "live.out"), "--stats-interval", "0"]
                        if mode != "ebpf-socket":
                            args += ["--interface", "lo"]
                        try:
                            agent = start_agent(args, logf)
                        except RuntimeError as e:
                            logf.seek(0)
                            print("engine %s: cannot start here (%s): %s; skipped" %
                                  (mode, e, logf.read().strip()[-300:]))
                            engines.remove(mode)
                            continue
                    rps, p99, total, serr = wrk_run(port, "1024", SECS, CONNS)
                    share = None
                    if agent:
                        time.sleep(1.0)
                        agent.send_signal(signal.SIGTERM)
                        _, status, ru = os.wait4(agent.pid, 0)
                        agent.returncode = rc = os.waitstatus_to_exitcode(status)
                        cpu = ru.ru_utime + ru.ru_stime
                        logf.seek(0)
                        txt = logf.read()
                        if rc != 0:
                            raise RuntimeError("searchmig-agent live exit %d: %s" % (rc, txt[-800:]))
                        kv = summary(txt)
                        kv["cpu_ms"] = int(cpu * 1000)
                        share = (min(kv["requests"], kv["responses"]), total, kv)
                        os.unlink(os.path.join(work, "live.out"))
                    res[mode].append((rps, p99, total, share))
                    print("round %d %-11s %8.0f req/s p99 %7.2f ms %d requests %s%s"
                          % (rnd + 1, mode, rps, p99, total, ("socket errors " + serr) if serr else "",
                             " agent: requests=%d (%.1f%%) responses=%d tls decrypted=%d/%d drops=%d gaps=%d "
                             "tls gaps=%d resyncs=%d resync_failures=%d records_lost=%d resync_trials=%d cpu %.2f s"
                             % (share[2]["requests"], 100.0 * share[0] / total, share[2]["responses"],
                                share[2]["tls_decrypted"], share[2]["tls_connections"], share[2]["drops"],
                                share[2]["gaps"], share[2].get("tls_gaps", -1), share[2].get("tls_resyncs", -1),
                                share[2].get("tls_resync_failures", -1), share[2].get("tls_records_lost", -1),
                                share[2].get("tls_resync_trials", -1),
                                share[2]["cpu_ms"] / 1000)
                             if share else ""))
                finally:
                    if agent and agent.poll() is None:
                        agent.kill()
                        agent.wait()
                    logf.close()
        med = {m: sorted(v, key=lambda x: x[0])[len(v) // 2] for m, v in res.items() if v}
        n = med["none"]
        print("live (median of %d rounds, %d s, %d conns, 1 KiB bodies, TLS 1.3): no capture %.0f req/s p99 %.2f ms"
              % (ROUNDS, SECS, CONNS, n[0], n[1]))
        recorded_any = False
        for mode in engines:
            if mode not in med:
                continue
            a = med[mode]
            ratios = sorted(r[0] / n[0] for r in res[mode])
            shares = sorted(100.0 * r[3][0] / r[2] for r in res[mode] if r[2])
            recorded_any |= a[3][0] > 0
            print("  %-11s %.0f req/s p99 %.2f ms: throughput ratio %.3f (rounds vs median no-capture %s), "
                  "p99 ratio %.2f, recorded decrypted %.1f%% of wrk's requests (rounds %s), agent cpu %.2f s"
                  % (mode, a[0], a[1], a[0] / n[0], " ".join("%.2f" % r for r in ratios), a[1] / n[1],
                     100.0 * a[3][0] / a[2], " ".join("%.1f" % x for x in shares), a[3][2]["cpu_ms"] / 1000))
        if engines and not recorded_any:
            raise RuntimeError("live capture recorded nothing")
        return 0
    except (RuntimeError, subprocess.SubprocessError, OSError, ValueError) as e:
        print("ERROR:", e)
        return 1
    finally:
        if srv:
            srv.kill()
            srv.wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
