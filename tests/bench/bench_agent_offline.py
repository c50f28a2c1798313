#!/usr/bin/python3
"""Offline throughput of searchmig-agent beside tcpflow and tshark, same file, same run.

bench_agent_offline_gen writes a pcap of BENCH_TRANSACTIONS (default 500000)
HTTP/1.1 keep-alive transactions (a few thousand connections, varied sizes,
some chunked and some large bodies) into a tmpfs directory. Then, rounds
interleaved (BENCH_RUNS, default 3), each under /usr/bin/time -v:
  agent-file  searchmig-agent --pcap F --port P --output <tmpfs>/records.log
  agent-null  searchmig-agent --pcap F --port P --output /dev/null
  tcpflow     tcpflow -r F -o <tmpfs dir>          (reassembly only, one file per flow)
  tshark      tshark -r F -Y http.request -T fields -e http.request.uri  (HTTP dissection;
              BENCH_TSHARK_RUNS rounds, default 1: it is slow)
Prints per tool min/median wall time, packets/s and MB/s (capture file bytes)
at the median, peak RSS, and the speed ratios against tcpflow and tshark.
Fails (exit 1) only on incompleteness: the agent must report every request
and response, exactly the generated payload bytes per direction, no gaps, no
broken messages and no dropped records, and write as many lines as records.
No timing assertion. Exit 77 when tcpflow or tshark is missing.
Usage: bench_agent_offline.py AGENT GENERATOR"""
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile

AGENT, GEN = sys.argv[1], sys.argv[2]
TX = int(os.environ.get("BENCH_TRANSACTIONS", "500000"))
RUNS = int(os.environ.get("BENCH_RUNS", "3"))
TSHARK_RUNS = int(os.environ.get("BENCH_TSHARK_RUNS", "1"))
PORT = 9200


def timed(argv, stdout=subprocess.DEVNULL):
    """Runs argv under /usr/bin/time -v: (rc, stderr text, wall s, user s, sys s, max RSS KiB)."""
    r = subprocess.run(["/usr/bin/time", "-v"] + argv, stdout=stdout, stderr=subprocess.PIPE, text=True,
                       timeout=1800)
    err = r.stderr

    def field(name):
        m = re.search(r"^\s*" + re.escape(name) + r": (.*)$", err, re.M)
        return m.group(1).strip() if m else None
    parts = [float(x) for x in field("Elapsed (wall clock) time (h:mm:ss or m:ss)").split(":")]
    wall = 0.0
    for x in parts:
        wall = wall * 60 + x
    return (r.returncode, err, wall, float(field("User time (seconds)")), float(field("System time (seconds)")),
            int(field("Maximum resident set size (kbytes)")))


def main():
    sys.stdout.reconfigure(line_buffering=True)
    for tool in ("tcpflow", "tshark"):
        if not shutil.which(tool):
            print("SKIP: %s not installed" % tool)
            return 77
    base = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None
    work = tempfile.mkdtemp(prefix="bench_agent_offline.", dir=base)
    try:
        return run(work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def run(work):
    pcap = os.path.join(work, "traffic.pcap")
    g = subprocess.run([GEN, pcap, str(TX), str(PORT)], capture_output=True, text=True, check=True)
    gen = {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", g.stdout)}
    size = os.path.getsize(pcap)
    print("capture: %d transactions, %d connections, %d packets, %.1f MB (payload c2s %.1f MB, s2c %.1f MB)"
          % (gen["transactions"], gen["connections"], gen["packets"], size / 1e6, gen["c2s_bytes"] / 1e6,
             gen["s2c_bytes"] / 1e6))
    assert size == gen["bytes"], (size, gen["bytes"])

    results = {}   # tool -> list of (wall, user, sys, rss)
    failures = []
    records_out = os.path.join(work, "records.log")
    tf_dir = os.path.join(work, "tcpflow")
    for rnd in range(RUNS):
        # agent writing its records (base64 lines) to a tmpfs file
        rc, err, *t = timed([AGENT, "--pcap", pcap, "--port", str(PORT), "--output", records_out,
                             "--log-level", "warn"])
        results.setdefault("agent-file", []).append(t)
        failures += check_agent(rc, err, gen, records_out, "agent-file round %d" % rnd)
        os.unlink(records_out)
        # the same without the cost of storing 4/3 of the payload as base64 text
        rc, err, *t = timed([AGENT, "--pcap", pcap, "--port", str(PORT), "--output", "/dev/null",
                             "--log-level", "warn"])
        results.setdefault("agent-null", []).append(t)
        failures += check_agent(rc, err, gen, None, "agent-null round %d" % rnd)
        # tcpflow: reassembly only, one file per flow and direction
        os.makedirs(tf_dir)
        rc, err, *t = timed(["tcpflow", "-r", pcap, "-o", tf_dir])
        if rc != 0:
            failures.append("tcpflow exited %d: %s" % (rc, err[-500:]))
        results.setdefault("tcpflow", []).append(t)
        nflows = len([f for f in os.listdir(tf_dir) if not f.endswith(".xml")])
        shutil.rmtree(tf_dir)
        if rnd < TSHARK_RUNS:
            uris = os.path.join(work, "uris.txt")
            with open(uris, "w") as f:
                rc, err, *t = timed(["tshark", "-r", pcap, "-Y", "http.request", "-T", "fields",
                                     "-e", "http.request.uri"], stdout=f)
            if rc != 0:
                failures.append("tshark exited %d: %s" % (rc, err[-500:]))
            with open(uris) as f:
                n_uris = sum(1 for _ in f)
            os.unlink(uris)
            results.setdefault("tshark", []).append(t)
            print("round %d: tcpflow wrote %d stream files, tshark dissected %d requests" % (rnd, nflows, n_uris))
        else:
            print("round %d: tcpflow wrote %d stream files" % (rnd, nflows))

    print()
    print("%-11s %4s %9s %9s %12s %9s %9s %9s" % ("tool", "runs", "min s", "median s", "packets/s", "MB/s",
                                                    "cpu s", "peak RSS"))
    med = {}
    for tool in ("agent-file", "agent-null", "tcpflow", "tshark"):
        rows = results.get(tool)
        if not rows:
            continue
        walls = [r[0] for r in rows]
        m = statistics.median(walls)
        med[tool] = m
        cpu = statistics.median([r[1] + r[2] for r in rows])
        rss = max(r[3] for r in rows)
        print("%-11s %4d %9.2f %9.2f %12.0f %9.1f %9.2f %6.1f MiB" % (
            tool, len(rows), min(walls), m, gen["packets"] / m, size / 1e6 / m, cpu, rss / 1024.0))
    print()
    for a in ("agent-file", "agent-null"):
        for b in ("tcpflow", "tshark"):
            if a in med and b in med:
                print("speed %s / %s: %.2fx" % (a, b, med[b] / med[a]))
    if "agent-file" in med and "tcpflow" in med:
        print("target (agent with file output faster than tcpflow): %s"
              % ("met" if med["agent-file"] < med["tcpflow"] else "NOT met"))
    if failures:
        print()
        for f in failures:
            print("FAIL:", f)
        return 1
    print("completeness: every run recorded %d requests and %d responses, all payload bytes, no gaps"
          % (gen["transactions"], gen["transactions"]))
    return 0


def check_agent(rc, err, gen, out, what):
    bad = []
    if rc != 0:
        bad.append("%s exited %d: %s" % (what, rc, err[-500:]))
        return bad
    m = re.search(r"^searchmig-agent: packets=.*$", err, re.M)
    if not m:
        return ["%s: no summary line" % what]
    s = {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", m.group(0))}
    want = {"packets": gen["packets"], "requests": gen["transactions"], "responses": gen["transactions"],
            "connections": gen["connections"], "bytes_c2s": gen["c2s_bytes"], "bytes_s2c": gen["s2c_bytes"],
            "gaps": 0, "broken": 0, "records_dropped": 0}
    for k, v in want.items():
        if s.get(k) != v:
            bad.append("%s: %s=%s, expected %d" % (what, k, s.get(k), v))
    if out is not None:
        with open(out, "rb") as f:
            lines = sum(1 for _ in f)
        if lines != s.get("records"):
            bad.append("%s: %d lines written, summary says records=%s" % (what, lines, s.get("records")))
    return bad


if __name__ == "__main__":
    sys.exit(main())
