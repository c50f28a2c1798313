"""Helpers shared by the replay timing test and the replay benchmark:
generate records (bench_replay_gen), run the arrival-logging server
(bench_replay_httpd) and searchmig-replay, and measure the send-time error."""
import json
import os
import re
import subprocess
import time

SRC = os.environ.get("SM_SOURCE_DIR", os.path.abspath(os.path.join(os.path.dirname(__file__), "../../..")))
BIN = os.environ.get("SM_BINARY_DIR", os.path.join(SRC, "build"))
REPLAY = os.path.join(BIN, "replay", "searchmig-replay")
HTTPD = os.environ.get("SM_REPLAY_HTTPD", os.path.join(BIN, "tests", "bench_replay_httpd"))
GEN = os.environ.get("SM_REPLAY_GEN", os.path.join(BIN, "tests", "bench_replay_gen"))

LAST_CPU_S = 0.0          # user+sys seconds of the last run_replay()
PATH_RE = re.compile(r"^/b/(\d+)/(\d+)\?o=(\d+)$")


def generate(out, conns, requests, duration_ms, body=0, jitter=0):
    subprocess.run([GEN, out, str(conns), str(requests), str(duration_ms), str(body), str(jitter)], check=True)


class Server:
    """bench_replay_httpd; stop() returns [(arrival_ns, server_conn, path)]."""

    def __init__(self, threads=2, log=None):
        self.log = log
        args = [HTTPD, str(threads)] + ([log] if log else [])
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE)
        self.port = int(self.proc.stdout.readline())
        self.url = f"http://127.0.0.1:{self.port}"

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=30)
        if not self.log:
            return []
        out = []
        with open(self.log) as f:
            for line in f:
                if line.startswith("#"):
                    continue
                ns, conn, path = line.split(" ", 2)
                out.append((int(ns), int(conn), path.strip()))
        return out


def run_replay(args, timeout=600):
    """Runs searchmig-replay; returns (exit code, wall seconds, peak RSS KiB)."""
    import tempfile
    errf = tempfile.TemporaryFile()  # closed below
    t = time.monotonic()
    p = subprocess.Popen([REPLAY] + args, stdout=subprocess.DEVNULL, stderr=errf)
    deadline = t + timeout
    while True:
        pid, status, ru = os.wait4(p.pid, os.WNOHANG)
        if pid:
            break
        if time.monotonic() > deadline:
            p.kill()
            raise RuntimeError("searchmig-replay timed out")
        time.sleep(0.01)
    wall = time.monotonic() - t
    global LAST_CPU_S
    LAST_CPU_S = ru.ru_utime + ru.ru_stime
    p.returncode = os.waitstatus_to_exitcode(status)
    errf.seek(0)
    err = errf.read().decode(errors="replace")
    errf.close()
    if p.returncode:
        raise RuntimeError(f"searchmig-replay exited {p.returncode}: {err[-2000:]}")
    return p.returncode, wall, ru.ru_maxrss, err


def pct(sorted_vals, q):
    if not sorted_vals:
        return 0
    i = min(len(sorted_vals) - 1, int(len(sorted_vals) * q))
    return sorted_vals[i]


def analyze(arrivals, speedup):
    """Send-time error of every request: its arrival minus its schedule
    (source offset / speedup), relative to the earliest-relative request (the
    replay's start instant is not visible from outside, so errors are >= 0 and
    measure lateness against the best-kept point of the schedule).
    Returns dict with errors_ms (sorted), per-connection order violations,
    duplicates and the request keys seen."""
    recs = []
    for ns, sconn, path in arrivals:
        m = PATH_RE.match(path)
        if not m:
            continue
        c, seq, off = int(m.group(1)), int(m.group(2)), int(m.group(3))
        recs.append((ns, sconn, c, seq, off))
    d = [ns - off / speedup for ns, _, _, _, off in recs]
    anchor = min(d) if d else 0
    errs = sorted((x - anchor) / 1e6 for x in d)
    by_conn = {}
    for ns, sconn, c, seq, off in sorted(recs):
        by_conn.setdefault(c, []).append(seq)
    order_violations = sum(1 for seqs in by_conn.values() for a, b in zip(seqs, seqs[1:]) if b <= a)
    keys = [(c, seq) for _, _, c, seq, _ in recs]
    return {
        "n": len(recs),
        "errors_ms": errs,
        "p50": pct(errs, 0.50), "p99": pct(errs, 0.99), "max": errs[-1] if errs else 0,
        "order_violations": order_violations,
        "duplicates": len(keys) - len(set(keys)),
        "keys": set(keys),
    }


def summary_json(path):
    with open(path) as f:
        return json.load(f)
