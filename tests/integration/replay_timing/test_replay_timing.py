#!/usr/bin/python3
"""Replay timing: 600 requests spread over 3 s of source time on 12 source
connections are replayed at speedups 1, 2 and 10 to a local server that logs
the monotonic arrival time of each request. Every request must arrive once,
in order per source connection, each source connection over a target
connection of its own (mirroring), and at start + offset/speedup within a
generous bound (p99 < 250 ms: the suite runs on a loaded machine; the precise
figure is bench_replay's). The error distribution is printed."""
import os
import sys
sys.dont_write_bytecode = True
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import replay_timing_lib as rt  # noqa: E402

TMP = tempfile.mkdtemp(prefix="sm-replay-timing-")
CONNS, REQS, DUR_MS = 12, 600, 3000
P99_BOUND_MS = 250.0


class ReplayTiming(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        for p in (rt.REPLAY, rt.HTTPD, rt.GEN):
            if not os.path.exists(p):
                raise unittest.SkipTest(f"{p} not built")
        cls.records = os.path.join(TMP, "records.txt")
        rt.generate(cls.records, CONNS, REQS, DUR_MS, body=200, jitter=50)

    def replay_at(self, speedup):
        log = os.path.join(TMP, f"arrivals-{speedup}.log")
        srv = rt.Server(threads=2, log=log)
        summ = os.path.join(TMP, f"summary-{speedup}.json")
        try:
            _, wall, _, _ = rt.run_replay(["--input", self.records, "--target", srv.url, "--speedup-factor",
                                           str(speedup), "--tuples-dir", os.path.join(TMP, f"tuples-{speedup}"),
                                           "--summary-json", summ], timeout=60)
        finally:
            arrivals = srv.stop()
        r = rt.analyze(arrivals, speedup)
        s = rt.summary_json(summ)
        print(f"speedup {speedup:>4}: {r['n']} requests in {wall:.2f} s; send-time error "
              f"p50 {r['p50']:.3f} ms, p99 {r['p99']:.3f} ms, max {r['max']:.3f} ms; "
              f"engine lag p99 {s['lag_p99_us'] / 1000:.3f} ms", flush=True)
        self.check_complete(r, arrivals, s)
        self.assertLess(r["p99"], P99_BOUND_MS)
        # the schedule is followed, not just the order: the replay lasts about
        # the source span divided by the speedup, never much less
        first, last = arrivals[0][0], arrivals[-1][0]
        span_ms = (last - first) / 1e6
        expect_ms = DUR_MS / speedup
        self.assertGreater(span_ms, expect_ms * 0.9 - 10, "replay ran ahead of the schedule")
        self.assertLess(span_ms, expect_ms + 1000, "replay fell far behind the schedule")

    def check_complete(self, r, arrivals, s):
        """Every request arrives once, in order per source connection, and
        each source connection's requests come over one target connection of
        its own (connection mirroring, 1:1)."""
        self.assertEqual(r["n"], REQS, "every request arrives")
        self.assertEqual(r["duplicates"], 0)
        self.assertEqual(r["keys"], {(k % CONNS, k // CONNS) for k in range(REQS)})
        self.assertEqual(r["order_violations"], 0, "per-connection order kept")
        server_conns = {}
        for _, sconn, path in arrivals:
            m = rt.PATH_RE.match(path)
            if m:
                server_conns.setdefault(int(m.group(1)), set()).add(sconn)
        self.assertEqual(len(server_conns), CONNS)
        self.assertTrue(all(len(v) == 1 for v in server_conns.values()), server_conns)
        self.assertEqual(len(set().union(*server_conns.values())), CONNS, "one target connection per source one")
        self.assertEqual((s["sent"], s["tuples"]), (REQS, REQS))

    def test_three_sender_threads(self):
        """--send-threads 3 with 5 workers (quotas 2, 2, 1), as fast as the
        target answers: every request once, in order per source connection,
        each source connection over one target connection of its own."""
        log = os.path.join(TMP, "arrivals-threads.log")
        srv = rt.Server(threads=2, log=log)
        summ = os.path.join(TMP, "summary-threads.json")
        try:
            rt.run_replay(["--input", self.records, "--target", srv.url, "--speedup-factor", "0",
                           "--send-threads", "3", "--workers", "5",
                           "--tuples-dir", os.path.join(TMP, "tuples-threads"), "--summary-json", summ], timeout=60)
        finally:
            arrivals = srv.stop()
        self.check_complete(rt.analyze(arrivals, 1), arrivals, rt.summary_json(summ))

    def test_speedup_1(self):
        self.replay_at(1)

    def test_speedup_2(self):
        self.replay_at(2)

    def test_speedup_10(self):
        self.replay_at(10)


if __name__ == "__main__":
    unittest.main(verbosity=2)
