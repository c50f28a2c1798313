#!/usr/bin/python3
"""Live capture overhead of searchmig-agent with each capture engine, all in one run.

wrk drives a local keep-alive HTTP server (bench_engines_httpd: read/write,
1 KiB responses) with no capture, then with the whole agent capturing
(searchmig-agent --engine pcap | ebpf-tc | ebpf-socket --output <tmpfs>:
capture, reassembly, HTTP framing, TrafficStream records, base64 file
output). Per engine: throughput ratio and p99 latency ratio against no
capture, the requests and responses the agent recorded against the server's
own request count (exit summary), the agent's CPU per 1k requests (user +
system; BPF program time is charged to the traffic's threads and shows in the
throughput ratio instead), its context switches per 1k requests (wakeups), its
peak RSS, the TCP retransmissions on the host during the round (a p99
near 200 ms is a retransmission timeout), and the cost of a system call of an
unrelated process while the engine runs ("syscall ns": dd of 1-byte blocks,
median of the rounds; ebpf-socket's syscall hooks run for every process).
It also prints CPU per request (wrk + server, and the agent; medians) and the
ratio they imply, which the machine's speed drifting between rounds moves
less than requests/s. The "none" rounds also give the noise floor: their own spread (min/max
throughput over the median) is printed, since other work on a shared machine
moves the ratios more than the capture does.
Env: BENCH_SECONDS (default 6), BENCH_CONNS (32), BENCH_THREADS (2),
BENCH_ROUNDS (5: engines interleaved, the median round kept);
BENCH_ENGINES (comma list, default pcap,ebpf-tc,ebpf-socket; "none" always runs);
BENCH_AGENT (another searchmig-agent binary, e.g. a build of an older tree, for A/B);
BENCH_TRAFFIC_CPUS and BENCH_AGENT_CPUS (taskset lists, e.g. 0 and 1): wrk +
server on some cores, the agent on others, which leaves in the throughput
ratio only what capture costs the traffic itself (the kernel hook and copy),
not the agent's own CPU taking cores from wrk and the server.
BENCH_SERVER=nginx: the same against nginx from Debian (one worker per traffic core, a static
1 KiB file, no access log) instead of the do-nothing bench_engines_httpd: a real HTTP server's
cost per request, against which the capture's share is smaller; requests counted are wrk's and
the server's CPU is its workers' (/proc). Exit 77 without root or wrk (or nginx when asked)."""
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

BIN = os.environ.get("SM_BINARY_DIR", ".")
AGENT = os.environ.get("BENCH_AGENT") or os.path.join(BIN, "agent", "searchmig-agent")
HTTPD = os.path.join(BIN, "tests", "bench_engines_httpd")
SECS = int(os.environ.get("BENCH_SECONDS", "6"))
CONNS = int(os.environ.get("BENCH_CONNS", "32"))
THREADS = int(os.environ.get("BENCH_THREADS", "2"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "5"))
# BENCH_TRAFFIC_CPUS / BENCH_AGENT_CPUS: taskset lists (e.g. "0" and "1") to run wrk + server
# and the agent on separate cores; unset: everything shares all cores.
TRAFFIC_CPUS = os.environ.get("BENCH_TRAFFIC_CPUS", "")
AGENT_CPUS = os.environ.get("BENCH_AGENT_CPUS", "")
SERVER = os.environ.get("BENCH_SERVER", "httpd")
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
NGINX_CONF = """worker_processes %(workers)d;
daemon off;
master_process on;
pid %(dir)s/nginx.pid;
error_log %(dir)s/error.log;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 100000000;
  server { listen 127.0.0.1:%(port)d; root %(dir)s; }
}
"""


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def proc_cpu(pid):
    """user + system seconds of a process and its reaped children (/proc/PID/stat)"""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return sum(int(x) for x in fields[11:15]) / os.sysconf("SC_CLK_TCK")


class Nginx:
    """nginx serving a 1 KiB index.html; cpu() = the workers' CPU seconds so far."""
    def __init__(self, work):
        self.dir = tempfile.mkdtemp(prefix="nginx-", dir=work)
        with open(os.path.join(self.dir, "index.html"), "w") as f:
            f.write("x" * 1024)
        self.port = free_port()
        ncpu = len(TRAFFIC_CPUS.split(",")) if TRAFFIC_CPUS else os.cpu_count()
        conf = os.path.join(self.dir, "nginx.conf")
        with open(conf, "w") as f:
            f.write(NGINX_CONF % {"workers": ncpu, "dir": self.dir, "port": self.port})
        self.p = subprocess.Popen(pin(TRAFFIC_CPUS) + [NGINX, "-c", conf, "-p", self.dir],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.05)
        self.workers = [int(x) for x in subprocess.run(["pgrep", "-P", str(self.p.pid)], capture_output=True,
                                                       text=True).stdout.split()]

    def cpu(self):
        return sum(proc_cpu(w) for w in self.workers)

    def stop(self):
        self.p.send_signal(signal.SIGQUIT)
        try:
            self.p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()


def pin(cpus):
    return ["taskset", "-c", cpus] if cpus else []


def wrk_run(port):
    """(requests/s, p99 ms, requests, wrk's CPU seconds)"""
    with tempfile.TemporaryFile("w+") as outf:
        p = subprocess.Popen(pin(TRAFFIC_CPUS) + ["wrk", "-t%d" % THREADS, "-c%d" % CONNS, "-d%ds" % SECS,
                                                  "--latency", "http://127.0.0.1:%d/" % port], stdout=outf)
        _, _, ru = os.wait4(p.pid, 0)
        outf.seek(0)
        out = outf.read()
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    total = int(re.search(r"(\d+) requests in", out).group(1))
    m = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    p99 = float(m.group(1)) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[m.group(2)]
    return rps, p99, total, ru.ru_utime + ru.ru_stime


def syscall_ns():
    """ns per system call of an unrelated process (dd: 1-byte reads from /dev/zero, writes to
    /dev/null; 2M calls): what the capture costs every other program on the host."""
    n = 1000000
    t0 = time.perf_counter()
    subprocess.run(pin(TRAFFIC_CPUS) + ["dd", "if=/dev/zero", "of=/dev/null", "bs=1", "count=%d" % n],
                   check=True, capture_output=True)
    return (time.perf_counter() - t0) * 1e9 / (2 * n)


def retrans():
    """TcpRetransSegs of the host (/proc/net/snmp)."""
    with open("/proc/net/snmp") as f:
        rows = [line.split() for line in f if line.startswith("Tcp:")]
    return int(rows[1][rows[0].index("RetransSegs")])


def run_one(engine, work):
    statf = os.path.join(work, "httpd-%s.txt" % engine)
    if SERVER == "nginx":
        srv = Nginx(work)
        port = srv.port
    else:
        srv = subprocess.Popen(pin(TRAFFIC_CPUS) + [HTTPD, "2", statf], stdout=subprocess.PIPE, text=True)
        port = int(srv.stdout.readline())
    dump = None
    srv_cpu0 = srv.cpu() if SERVER == "nginx" else 0
    try:
        if engine != "none":
            out = os.path.join(work, engine + ".records")
            args = pin(AGENT_CPUS) + [AGENT, "--engine", engine, "--port", str(port), "--output", out, "--stats-interval", "0",
                    "--log-level", "warn"]
            if engine in ("pcap", "ebpf-tc"):
                args += ["--interface", "lo"]
            logf = open(os.path.join(work, engine + ".log"), "w+")
            dump = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=logf)
            time.sleep(1.5)   # capture open (libpcap / BPF programs attached) well before this
            if dump.poll() is not None:
                logf.seek(0)
                raise RuntimeError("%s did not start (rc %s): %s" % (engine, dump.returncode, logf.read()[-500:]))
        sysns = syscall_ns()
        r0 = retrans()
        rps, p99, total, wrk_cpu = wrk_run(port)
        rtx = retrans() - r0
        time.sleep(0.5)   # let the capture drain
        cpu = None
        captured = None
        csw = None
        rss = None
        if dump:
            dump.send_signal(signal.SIGTERM)
            _, status, ru = os.wait4(dump.pid, 0)
            dump.returncode = os.waitstatus_to_exitcode(status)
            cpu = ru.ru_utime + ru.ru_stime
            csw = ru.ru_nvcsw + ru.ru_nivcsw
            rss = ru.ru_maxrss / 1024.0
            logf.seek(0)
            txt = logf.read()
            m = re.search(r"^searchmig-agent: packets=.*$", txt, re.M)
            if dump.returncode != 0 or not m:
                raise RuntimeError("%s: agent exit %s: %s" % (engine, dump.returncode, txt[-800:]))
            st = {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", m.group(0))}
            captured = (st["requests"], st["responses"], st["drops"], st["gaps"])
            os.unlink(out)
    finally:
        if SERVER == "nginx":
            srv_cpu = srv.cpu() - srv_cpu0
            srv.stop()
        else:
            srv.send_signal(signal.SIGTERM)
            srv.wait(timeout=10)
        if dump and dump.poll() is None:
            dump.kill()
    if SERVER == "nginx":   # no server-side counts: wrk's completed requests, bytes not counted
        sst = {"requests": total, "bytes_in": 0, "bytes_out": 0, "cpu_us": int(srv_cpu * 1e6)}
    else:
        sst = dict(kv.split("=") for kv in open(statf).read().split())
    sent = int(sst["bytes_in"]) + int(sst["bytes_out"])
    traffic_us = (wrk_cpu + int(sst["cpu_us"]) / 1e6) * 1e6 / int(sst["requests"]) if int(sst["requests"]) else 0
    return {"rps": rps, "p99": p99, "total": total, "cpu": cpu, "sysns": sysns, "traffic_us": traffic_us, "captured": captured, "sent": sent,
            "requests": int(sst["requests"]), "csw": csw, "rss": rss, "retrans": rtx}


def captured_share(r):
    """requests recorded (with their responses) over the requests the server answered (nginx:
    over those wrk completed; the few in flight when wrk stops may add to the recorded ones)"""
    cap = r["captured"]
    return min(cap[0], cap[1]) / r["requests"] if r["requests"] else 0


def main():
    if os.geteuid() != 0:
        print("SKIP: needs root")
        return 77
    if not shutil.which("wrk"):
        print("SKIP: wrk not installed")
        return 77
    if SERVER == "nginx" and not os.path.exists(NGINX):
        print("SKIP: BENCH_SERVER=nginx but nginx is not installed")
        return 77
    # records on tmpfs: the disk is not what is measured
    work = tempfile.mkdtemp(prefix="bench-engines-", dir="/dev/shm" if os.path.isdir("/dev/shm") else None)
    engines = ["none"] + [e for e in os.environ.get("BENCH_ENGINES", "pcap,ebpf-tc,ebpf-socket").split(",")
                          if e in ("pcap", "ebpf-tc", "ebpf-socket")]
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
    print("wrk -t%d -c%d -d%ds, 1 KiB responses, keep-alive, loopback, server %s; median of %d rounds"
          % (THREADS, CONNS, SECS, "nginx" if SERVER == "nginx" else "bench_engines_httpd", ROUNDS))
    print("%-12s %10s %8s %9s %8s %14s %8s %6s %14s %10s %9s %8s %12s" % (
        "engine", "req/s", "ratio", "p99 ms", "ratio", "recorded", "drops", "gaps", "cpu s/1k req",
        "csw/1k req", "RSS MiB", "retrans", "syscall ns"))
    ok = True
    for e in engines:
        r = best[e]
        cap = r["captured"]
        capratio = "-" if cap is None else "%.4f" % captured_share(r)
        cpu = "-" if r["cpu"] is None else "%.4f" % (r["cpu"] / (r["requests"] / 1000.0))
        csw = "-" if r["csw"] is None else "%.1f" % (r["csw"] / (r["requests"] / 1000.0))
        rss = "-" if r["rss"] is None else "%.1f" % r["rss"]
        sysns = sorted(x["sysns"] for x in runs[e])[len(runs[e]) // 2]
        print("%-12s %10.0f %8.3f %9.3f %8.3f %14s %8s %6s %14s %10s %9s %8d %12.0f" % (
            e, r["rps"], r["rps"] / base["rps"], r["p99"], r["p99"] / base["p99"] if base["p99"] else 0,
            capratio, "-" if cap is None else cap[2], "-" if cap is None else cap[3], cpu, csw, rss,
            r["retrans"], sysns))
        if cap is not None and cap[0] == 0:
            ok = False
    # CPU per request, medians over the rounds: less exposed to the machine's speed drifting
    # between rounds than requests/s. traffic = wrk + server (their rusage: kernel work done in
    # their context, the capture's kernel hooks included); agent = the agent process.
    def med(vals):
        vals = sorted(vals)
        return vals[len(vals) // 2]
    t0 = med(r["traffic_us"] for r in runs["none"])
    print("CPU per request (us, median of rounds): traffic = wrk + server, agent = searchmig-agent;")
    print("cpu ratio = none's traffic / (traffic + agent): the throughput ratio if CPU alone bounds it and")
    print("the agent shares the traffic's cores; in-path ratio = none's traffic / traffic: the same with the")
    print("agent on cores of its own (BENCH_AGENT_CPUS)")
    print("%-12s %10s %10s %10s %10s %14s" % ("engine", "traffic", "in-path", "agent", "cpu ratio", "in-path ratio"))
    for e in engines:
        t = med(r["traffic_us"] for r in runs[e])
        a = 0.0 if e == "none" else med(r["cpu"] * 1e6 / r["requests"] for r in runs[e] if r["requests"])
        print("%-12s %10.2f %10.2f %10.2f %10.3f %14.3f" % (e, t, t - t0, a, t0 / (t + a) if t + a else 0,
                                                      t0 / t if t else 0))
    nr = sorted(r["rps"] for r in runs["none"])
    print("noise floor: no-capture rounds span %.3f..%.3f of their median (%s req/s)"
          % (nr[0] / base["rps"], nr[-1] / base["rps"], ", ".join("%.0f" % x for x in nr)))
    for e in engines:
        print("%-12s rounds: ratio %s; p99 ratio %s; recorded %s" % (
            e, ", ".join("%.3f" % (r["rps"] / base["rps"]) for r in runs[e]),
            ", ".join("%.2f" % (r["p99"] / base["p99"]) for r in runs[e]),
            "-" if e == "none" else ", ".join("%.4f" % captured_share(r) for r in runs[e])))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
