#!/usr/bin/python3
"""Replay benchmark (label bench; figures go to docs/replay.md):
 (a) maximum replay rate (--speedup-factor 0) to a local C keep-alive server
     next to wrk's rate against the same server in the same run (target >= 0.8);
 (b) timing fidelity at speedup 1 and ~5k requests/s: p50/p99 absolute
     send-time error measured at the server (target p99 < 2 ms), and the
     engine's own lag figures;
 (c) peak RSS with 10k open source connections (and with 64, for scale).
Asserts only that every request arrived; prints all figures side by side and
writes them to <build>/bench_replay.json."""
import json
import os
import sys
sys.dont_write_bytecode = True
import re
import shutil
import subprocess
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration", "replay_timing"))
import replay_timing_lib as rt  # noqa: E402

TMP = tempfile.mkdtemp(prefix="sm-bench-replay-")
RATE_REQS = int(os.environ.get("SM_BENCH_REPLAY_REQS", "100000"))
WORKERS = os.environ.get("SM_BENCH_REPLAY_WORKERS", "16")


def wrk_rate(url, conns, seconds=5):
    out = subprocess.run(["wrk", "-t2", f"-c{conns}", f"-d{seconds}s", url + "/b/0/0?o=0"],
                         capture_output=True, text=True, check=True).stdout
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    return float(m.group(1))


def bench_rate():
    recs = os.path.join(TMP, "rate.txt")
    rt.generate(recs, 64, RATE_REQS, 10000, body=0)
    srv = rt.Server(threads=2)
    try:
        _, wall, rss, _ = rt.run_replay(["--input", recs, "--target", srv.url, "--speedup-factor", "0",
                                         "--workers", WORKERS, "--tuples-dir", os.path.join(TMP, "tuples-rate"),
                                         "--summary-json", os.path.join(TMP, "rate.json")])
        s = rt.summary_json(os.path.join(TMP, "rate.json"))
        assert s["sent"] == RATE_REQS, s
        replay = RATE_REQS / wall
        cpu_us = rt.LAST_CPU_S * 1e6 / RATE_REQS
        wrk_same = wrk_rate(srv.url, int(WORKERS))
        wrk_64 = wrk_rate(srv.url, 64)
    finally:
        srv.stop()
    shutil.rmtree(os.path.join(TMP, "tuples-rate"), ignore_errors=True)
    return {"replay_rps": replay, "cpu_us_per_request": cpu_us, "wrk_rps_same_conns": wrk_same, "wrk_rps_64_conns": wrk_64,
            "ratio": replay / wrk_same, "replay_rss_kib": rss, "workers": int(WORKERS), "requests": RATE_REQS}


def bench_fidelity():
    recs = os.path.join(TMP, "fidelity.txt")
    n, dur = 25000, 5000                      # 5k requests/s for 5 s
    rt.generate(recs, 64, n, dur, body=200, jitter=50)
    log = os.path.join(TMP, "arrivals.log")
    srv = rt.Server(threads=2, log=log)
    try:
        rt.run_replay(["--input", recs, "--target", srv.url, "--speedup-factor", "1",
                       "--tuples-dir", os.path.join(TMP, "tuples-fid"), "--summary-json",
                       os.path.join(TMP, "fid.json")])
    finally:
        arrivals = srv.stop()
    r = rt.analyze(arrivals, 1)
    s = rt.summary_json(os.path.join(TMP, "fid.json"))
    assert r["n"] == n and r["order_violations"] == 0, (r["n"], r["order_violations"])
    return {"requests": n, "rate_rps": n / (dur / 1000), "p50_ms": r["p50"], "p99_ms": r["p99"], "max_ms": r["max"],
            "engine_lag_p99_ms": s["lag_p99_us"] / 1000}


def bench_rss(conns):
    recs = os.path.join(TMP, f"conns{conns}.txt")
    rt.generate(recs, conns, 2 * conns if conns > 64 else 20000, 2000, body=200)
    srv = rt.Server(threads=2)
    try:
        _, wall, rss, _ = rt.run_replay(["--input", recs, "--target", srv.url, "--speedup-factor", "0",
                                         "--tuples-dir", os.path.join(TMP, f"tuples-c{conns}"),
                                         "--summary-json", os.path.join(TMP, f"c{conns}.json")])
    finally:
        srv.stop()
    s = rt.summary_json(os.path.join(TMP, f"c{conns}.json"))
    assert s["sent"] == s["requests"], s
    return {"source_connections": conns, "requests": s["requests"], "peak_rss_kib": rss, "wall_s": wall}


def main():
    for p in (rt.REPLAY, rt.HTTPD, rt.GEN):
        if not os.path.exists(p):
            print(f"{p} not built", file=sys.stderr)
            return 77
    if not shutil.which("wrk"):
        print("wrk not installed", file=sys.stderr)
        return 77
    res = {"rate": bench_rate(), "fidelity": bench_fidelity(), "rss_64": bench_rss(64), "rss_10k": bench_rss(10000)}
    a, f, r64, r10 = res["rate"], res["fidelity"], res["rss_64"], res["rss_10k"]
    print("searchmig-replay benchmark (local C server, same run)")
    print(f"  max rate      replay {a['replay_rps']:>9.0f} req/s ({a['workers']} workers)   "
          f"wrk -c{a['workers']} {a['wrk_rps_same_conns']:>9.0f} req/s   wrk -c64 {a['wrk_rps_64_conns']:>9.0f} req/s   "
          f"ratio {a['ratio']:.3f} (target >= 0.8); replay CPU {a['cpu_us_per_request']:.1f} us/request")
    print(f"  fidelity      speedup 1, {f['rate_rps']:.0f} req/s: send-time error p50 {f['p50_ms']:.3f} ms, "
          f"p99 {f['p99_ms']:.3f} ms, max {f['max_ms']:.3f} ms (target p99 < 2 ms); engine lag p99 "
          f"{f['engine_lag_p99_ms']:.3f} ms")
    print(f"  memory        peak RSS {r10['peak_rss_kib'] / 1024:.1f} MiB with {r10['source_connections']} open source "
          f"connections ({r10['requests']} requests); {r64['peak_rss_kib'] / 1024:.1f} MiB with 64")
    try:
        with open(os.path.join(rt.BIN, "bench_replay.json"), "w") as fh:
            json.dump(res, fh, indent=2)
    except OSError:
        pass
    shutil.rmtree(TMP, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
