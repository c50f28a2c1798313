#!/usr/bin/python3
"""Live capture overhead of the capture engines, all in one run.

wrk drives a local keep-alive HTTP server (bench_engines_httpd: read/write,
1 KiB responses) with no capture, then with ebpf_dump capturing through
pcap, ebpf-tc and ebpf-socket (--no-data: streams are reassembled and
counted, not written). Per engine: throughput ratio and p99 latency ratio
against no capture, captured/sent bytes (both directions, against the
server's own counters), the capture process's CPU per 1k requests (user +
system of ebpf_dump; BPF program time is charged to the traffic's threads and
shows in the throughput ratio instead), its context switches per 1k requests
(wakeups: voluntary + involuntary), its peak RSS, and the TCP retransmissions
on the host during the round (a p99 near 200 ms is a retransmission timeout).
The "none" rounds also give the noise floor: their own spread (min/max
throughput over the median) is printed, since other work on a shared machine
moves the ratios more than the capture does.
Env: BENCH_SECONDS (default 8), BENCH_CONNS (32), BENCH_THREADS (2),
BENCH_ROUNDS (3: engines interleaved, the median round kept).
Exit 77 without root or wrk."""
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

BIN = os.environ.get("SM_BINARY_DIR", ".")
DUMP = os.path.join(BIN, "tests", "ebpf_dump")
HTTPD = os.path.join(BIN, "tests", "bench_engines_httpd")
SECS = int(os.environ.get("BENCH_SECONDS", "6"))
CONNS = int(os.environ.get("BENCH_CONNS", "32"))
THREADS = int(os.environ.get("BENCH_THREADS", "2"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))


def wrk_run(port):
    r = subprocess.run(["wrk", "-t%d" % THREADS, "-c%d" % CONNS, "-d%ds" % SECS, "--latency",
                        "http://127.0.0.1:%d/" % port], capture_output=True, text=True, timeout=SECS + 60)
    out = r.stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    total = int(re.search(r"(\d+) requests in", out).group(1))
    m = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    p99 = float(m.group(1)) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[m.group(2)]
    return rps, p99, total


def retrans():
    """TcpRetransSegs of the host (/proc/net/snmp)."""
    with open("/proc/net/snmp") as f:
        rows = [line.split() for line in f if line.startswith("Tcp:")]
    return int(rows[1][rows[0].index("RetransSegs")])


def run_one(engine, work):
    statf = os.path.join(work, "httpd-%s.txt" % engine)
    srv = subprocess.Popen([HTTPD, "2", statf], stdout=subprocess.PIPE, text=True)
    port = int(srv.stdout.readline())
    dump = None
    try:
        if engine != "none":
            out = os.path.join(work, engine)
            shutil.rmtree(out, ignore_errors=True)
            os.makedirs(out)
            ready = out + ".ready"
            if os.path.exists(ready):
                os.unlink(ready)
            args = [DUMP, "--engine", engine, "--port", str(port), "--out", out, "--ready-file", ready,
                    "--no-data", "1"]
            if engine in ("pcap", "ebpf-tc"):
                args += ["--iface", "lo"]
            dump = subprocess.Popen(args, stderr=subprocess.DEVNULL)
            end = time.time() + 60
            while not os.path.exists(ready):
                if dump.poll() is not None or time.time() > end:
                    raise RuntimeError("%s did not start (rc %s)" % (engine, dump.returncode))
                time.sleep(0.05)
        r0 = retrans()
        rps, p99, total = wrk_run(port)
        rtx = retrans() - r0
        time.sleep(0.5)   # let the capture drain
        cpu = None
        captured = None
        csw = None
        rss = None
        if dump:
            dump.send_signal(signal.SIGTERM)
            _, status, ru = os.wait4(dump.pid, 0)
            dump.returncode = status
            cpu = ru.ru_utime + ru.ru_stime
            csw = ru.ru_nvcsw + ru.ru_nivcsw
            rss = ru.ru_maxrss / 1024.0
            st = dict(line.strip().split("=", 1) for line in open(os.path.join(work, engine, "stats.txt")))
            captured = (int(st["c2s_bytes"]), int(st["s2c_bytes"]), int(st["kernel_drops"]), int(st["gaps"]))
    finally:
        srv.send_signal(signal.SIGTERM)
        srv.wait(timeout=10)
        if dump and dump.poll() is None:
            dump.kill()
    sst = dict(kv.split("=") for kv in open(statf).read().split())
    sent = int(sst["bytes_in"]) + int(sst["bytes_out"])
    return {"rps": rps, "p99": p99, "total": total, "cpu": cpu, "captured": captured, "sent": sent,
            "requests": int(sst["requests"]), "csw": csw, "rss": rss, "retrans": rtx}


def main():
    if os.geteuid() != 0:
        print("SKIP: needs root")
        return 77
    if not shutil.which("wrk"):
        print("SKIP: wrk not installed")
        return 77
    work = tempfile.mkdtemp(prefix="bench-engines-")
    engines = ["none", "pcap", "ebpf-tc", "ebpf-socket"]
    runs = {e: [] for e in engines}
    try:
        for _ in range(ROUNDS):
            for e in engines:
                runs[e].append(run_one(e, work))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    # the round with the median throughput per engine (noise on a shared machine goes both ways)
    best = {e: sorted(rs, key=lambda r: r["rps"])[len(rs) // 2] for e, rs in runs.items()}
    base = best["none"]
    print("wrk -t%d -c%d -d%ds, 1 KiB responses, keep-alive, loopback; median of %d rounds"
          % (THREADS, CONNS, SECS, ROUNDS))
    print("%-12s %10s %8s %9s %8s %14s %8s %6s %14s %10s %9s %8s" % (
        "engine", "req/s", "ratio", "p99 ms", "ratio", "captured/sent", "drops", "gaps", "cpu s/1k req",
        "csw/1k req", "RSS MiB", "retrans"))
    ok = True
    for e in engines:
        r = best[e]
        cap = r["captured"]
        capratio = "-" if cap is None else "%.4f" % ((cap[0] + cap[1]) / r["sent"] if r["sent"] else 0)
        cpu = "-" if r["cpu"] is None else "%.4f" % (r["cpu"] / (r["requests"] / 1000.0))
        csw = "-" if r["csw"] is None else "%.1f" % (r["csw"] / (r["requests"] / 1000.0))
        rss = "-" if r["rss"] is None else "%.1f" % r["rss"]
        print("%-12s %10.0f %8.3f %9.3f %8.3f %14s %8s %6s %14s %10s %9s %8d" % (
            e, r["rps"], r["rps"] / base["rps"], r["p99"], r["p99"] / base["p99"] if base["p99"] else 0,
            capratio, "-" if cap is None else cap[2], "-" if cap is None else cap[3], cpu, csw, rss,
            r["retrans"]))
        if cap is not None and cap[0] + cap[1] == 0:
            ok = False
    nr = sorted(r["rps"] for r in runs["none"])
    print("noise floor: no-capture rounds span %.3f..%.3f of their median (%s req/s)"
          % (nr[0] / base["rps"], nr[-1] / base["rps"], ", ".join("%.0f" % x for x in nr)))
    for e in engines:
        print("%-12s rounds: ratio %s" % (e, ", ".join("%.3f" % (r["rps"] / base["rps"]) for r in runs[e])))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
