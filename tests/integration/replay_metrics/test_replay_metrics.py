#!/usr/bin/python3
"""searchmig-replay live monitoring: --metrics-listen (Prometheus /metrics and
/health) and --summary-interval, against the target stand-in.

Records are fed through stdin in two batches while the replayer runs; after
each batch /metrics is scraped with curl and every counter must equal what was
replayed (requests, retries forced by injected 503s, status matches and
differences, drops by capture and by rule, a malformed line). The periodic
summary lines (stderr not a terminal: plain log lines) must reach the final
counts; on a terminal the summary is one line redrawn in place."""
import json
import os
import pty
import re
import select
import signal
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.request

SRC = os.environ.get("SM_SOURCE_DIR", os.path.abspath(os.path.join(os.path.dirname(__file__), "../../..")))
BIN = os.environ.get("SM_BINARY_DIR", os.path.join(SRC, "build"))
REPLAY = os.path.join(BIN, "replay", "searchmig-replay")

# record builders of the end-to-end test (protobuf classes generated from the proto file)
sys.path.insert(0, os.path.join(SRC, "tests", "integration", "replay"))
from test_replay_e2e import http_req, http_resp, obs, rec, start_standin  # noqa: E402
import base64  # noqa: E402

TMP = tempfile.mkdtemp(prefix="sm-replay-metrics-")
DEADLINE = 60
SUMMARY_RE = re.compile(r"live: (?P<rate>[0-9.]+|-) req/s, sent (?P<sent>\d+), status match (?P<match>[0-9.]+%|-), "
                        r"lag p99 (?P<lag>[0-9.]+) ms, pending (?P<pending>\d+)")


def read(path):
    with open(path, errors="replace") as f:
        return f.read()


def b64(r):
    return base64.b64encode(r.SerializeToString()).decode()


def conn(cid, t0, exchanges, dropped_tail=None):
    """One record: (method, path, source status) exchanges, then close."""
    r = rec(cid, number=1)
    t = t0
    for method, path, status in exchanges:
        req, fl, hl = http_req(method, path)
        obs(r, t, read=req)
        obs(r, t, eom=(fl, hl))
        obs(r, t + 0.01, write=http_resp(status, "X", {"status": status}))
        t += 0.05
    if dropped_tail:
        obs(r, t, read=dropped_tail)
        obs(r, t, requestDropped=True)
    obs(r, t + 0.05, close=True)
    return b64(r)


def parse_metrics(text):
    """Strict parse of the exposition text: every sample follows its HELP and TYPE."""
    out, helped, typed = {}, set(), {}
    for line in text.splitlines():
        if line.startswith("# HELP "):
            helped.add(line.split()[2])
        elif line.startswith("# TYPE "):
            _, _, name, kind = line.split()
            typed[name] = kind
        elif line.strip():
            name, value = line.split()
            assert re.fullmatch(r"searchmig_replay_[a-z0-9_]+", name), name
            assert name in helped and name in typed, name
            assert name not in out, "duplicate " + name
            assert (typed[name] == "counter") == name.endswith("_total"), name
            out[name] = float(value)
    return out


class ReplayMetrics(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.portfile = os.path.join(TMP, "port")
        cls.standin_proc, cls.url = start_standin(cls.portfile, "--flavor", "opensearch-2.11",
                                                  "--log", os.path.join(TMP, "standin.log"))

    @classmethod
    def tearDownClass(cls):
        cls.standin_proc.terminate()
        cls.standin_proc.wait()

    def standin(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req) as r:
            return json.loads(r.read() or b"null")

    def curl(self, port, path):
        p = subprocess.run(["curl", "-s", "-w", "\n%{http_code}", f"http://127.0.0.1:{port}{path}"],
                           capture_output=True, text=True, timeout=10)
        body, _, code = p.stdout.rpartition("\n")
        return int(code), body

    def scrape(self, port):
        code, body = self.curl(port, "/metrics")
        self.assertEqual(code, 200)
        return parse_metrics(body)

    def wait_metrics(self, port, cond, what):
        end = time.time() + DEADLINE
        while True:
            m = self.scrape(port)
            if cond(m):
                return m
            if time.time() > end:
                self.fail(f"metrics never showed {what}: {m}")
            time.sleep(0.05)

    def wait_log(self, path, pattern, what):
        end = time.time() + DEADLINE
        while True:
            found = re.search(pattern, read(path))
            if found:
                return found
            if time.time() > end:
                self.fail(f"log never showed {what}:\n{read(path)}")
            time.sleep(0.05)

    def test_metrics_and_summary_lines(self):
        self.standin("DELETE", "/_standin/faults")
        self.standin("DELETE", "/_standin/stats")
        # the first two attempts of GET /flaky get a 503: two retries
        self.standin("POST", "/_standin/faults", {"path": "/flaky", "method": "GET", "status": 503, "count": 2})
        log = os.path.join(TMP, "replay-stderr.log")
        summary = os.path.join(TMP, "summary.json")
        with open(log, "w") as err:
            p = subprocess.Popen([REPLAY, "--input", "-", "--target", self.url, "--speedup-factor", "0",
                                  "--tuples-dir", os.path.join(TMP, "tuples"), "--summary-json", summary,
                                  "--metrics-listen", "127.0.0.1:0", "--summary-interval", "200ms",
                                  "--drop-request", "^DELETE /dropme", "--target-max-retries", "3",
                                  "--target-backoff-base", "10ms"],
                                 stdin=subprocess.PIPE, stderr=err, stdout=subprocess.DEVNULL, text=True)
        try:
            port = int(self.wait_log(log, r"metrics: http://127\.0\.0\.1:0/metrics \(port (\d+)\)", "the port")[1])
            self.assertNotEqual(port, 0)
            code, body = self.curl(port, "/health")
            self.assertEqual((code, body), (200, "ok\n"))
            self.assertEqual(self.curl(port, "/nope")[0], 404)
            m = self.scrape(port)
            for name in ("input_records_total", "requests_submitted_total", "requests_sent_total",
                         "tuples_written_total", "requests_pending"):
                self.assertEqual(m["searchmig_replay_" + name], 0, name)
            self.assertNotIn("searchmig_replay_kafka_commits_total", m)   # file input

            # batch 1: a malformed line (counted when the reader returns the next record),
            # two requests whose target status equals the source's
            p.stdin.write("!!! not base64 !!!\n")
            p.stdin.write(conn("c1", 0.0, [("GET", "/", 200), ("GET", "/_cluster/health", 200)]) + "\n")
            p.stdin.flush()
            m = self.wait_metrics(port, lambda m: m["searchmig_replay_tuples_written_total"] == 2,
                                  "2 tuples written")
            expect1 = {
                "input_records_total": 1, "input_malformed_total": 1, "input_dead_letters_total": 0,
                "requests_rebuilt_total": 2, "requests_dropped_by_capture_total": 0,
                "requests_submitted_total": 2, "requests_sent_total": 2, "target_errors_total": 0,
                "target_attempts_total": 2, "target_retries_total": 0, "requests_dropped_by_rules_total": 0,
                "requests_unparsable_total": 0, "transform_errors_total": 0, "tuples_written_total": 2,
                "status_match_total": 2, "status_differ_total": 0, "requests_pending": 0,
                "source_connections_total": 1,
            }
            for k, v in expect1.items():
                self.assertEqual(m["searchmig_replay_" + k], v, k)
            self.assertGreaterEqual(m["searchmig_replay_lag_max_seconds"], m["searchmig_replay_lag_p99_seconds"])
            self.assertGreaterEqual(m["searchmig_replay_lag_p99_seconds"], m["searchmig_replay_lag_p50_seconds"])
            # a summary line while it runs
            self.wait_log(log, r"live: [0-9.]+ req/s, sent 2, status match 100\.0%, lag p99 [0-9.]+ ms, pending 0",
                          "a summary line with 2 sent")

            # batch 2: a status the target does not share (the index is missing there), two retried
            # 503s, a request the capture dropped, a request dropped by --drop-request
            p.stdin.write(conn("c2", 1.0, [("GET", "/missing-index/_doc/1", 200)]) + "\n")
            p.stdin.write(conn("c3", 1.1, [("GET", "/flaky", 404)]) + "\n")
            p.stdin.write(conn("c4", 1.2, [("GET", "/", 200)], dropped_tail=b"GET /_cat/health HTTP/1.1\r\n") + "\n")
            p.stdin.write(conn("c5", 1.3, [("DELETE", "/dropme", 200), ("GET", "/", 200)]) + "\n")
            p.stdin.flush()
            m = self.wait_metrics(port, lambda m: m["searchmig_replay_tuples_written_total"] == 6
                                  and m["searchmig_replay_requests_pending"] == 0, "6 tuples written")
            expect2 = {
                "input_records_total": 5, "input_malformed_total": 1, "input_dead_letters_total": 0,
                "requests_rebuilt_total": 7, "requests_dropped_by_capture_total": 1,
                "requests_submitted_total": 7, "requests_sent_total": 6, "target_errors_total": 0,
                "target_attempts_total": 8, "target_retries_total": 2, "requests_dropped_by_rules_total": 1,
                "requests_unparsable_total": 0, "transform_errors_total": 0, "tuples_written_total": 6,
                "status_match_total": 5, "status_differ_total": 1, "requests_pending": 0,
                "source_connections_total": 5, "source_waits_expired_total": 0,
            }
            for k, v in expect2.items():
                self.assertEqual(m["searchmig_replay_" + k], v, k)
            # what really reached the target: the 6 requests sent plus the 2 rejected attempts
            st = self.standin("GET", "/_standin/stats")
            self.assertEqual(st["total_requests"], 8)
            self.assertEqual(st["faults_injected"], 2)

            # the summary lines catch up: 6 sent, 5 of 6 statuses match
            self.wait_log(log, r"live: [0-9.]+ req/s, sent 6, status match 83\.3%, lag p99 [0-9.]+ ms, pending 0",
                          "a summary line with 6 sent")
            # SIGTERM: reading stops after the next record, /health turns 503 at once
            p.send_signal(signal.SIGTERM)
            end = time.time() + DEADLINE
            while self.curl(port, "/health")[0] != 503 and time.time() < end:
                time.sleep(0.05)
            self.assertEqual(self.curl(port, "/health"), (503, "stopping\n"))
            p.stdin.close()
            self.assertEqual(p.wait(timeout=DEADLINE), 0)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()

        text = read(log)
        self.assertNotIn("\r", text)   # not a terminal: plain lines, no redraw
        lines = [SUMMARY_RE.search(x) for x in text.splitlines() if " live: " in x]
        self.assertGreaterEqual(len(lines), 2, text)
        self.assertTrue(all(lines), text)
        sent = [int(x["sent"]) for x in lines]
        self.assertEqual(sent, sorted(sent))
        self.assertTrue(all(x["match"] in ("-", "100.0%", "83.3%") for x in lines), text)
        # the final summary agrees with the last scrape
        with open(summary) as f:
            s = json.load(f)
        self.assertEqual((s["records"], s["malformed_lines"], s["sent"], s["attempts"], s["status_match"],
                          s["status_differ"], s["tuples"], s["dropped_by_rules"], s["requests_dropped"]),
                         (5, 1, 6, 8, 5, 1, 6, 1, 1))

    def test_ready_when_tuples_are_lost(self):
        """/ready turns 503 with the reason once result tuples are lost to write
        errors (a full disk: RLIMIT_FSIZE), /health stays 200, exit code 1."""
        import resource

        def small_disk():
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)   # write() fails with EFBIG instead
            resource.setrlimit(resource.RLIMIT_FSIZE, (256 << 10, 256 << 10))
        log = os.path.join(TMP, "replay-ready.log")
        with open(log, "w") as err:
            p = subprocess.Popen([REPLAY, "--input", "-", "--target", self.url, "--speedup-factor", "0",
                                  "--tuples-dir", os.path.join(TMP, "tuples-ready"),
                                  "--metrics-listen", "127.0.0.1:0"],
                                 stdin=subprocess.PIPE, stderr=err, stdout=subprocess.DEVNULL, text=True,
                                 preexec_fn=small_disk)
        try:
            port = int(self.wait_log(log, r"metrics: http://127\.0\.0\.1:0/metrics \(port (\d+)\)", "the port")[1])
            self.assertEqual(self.curl(port, "/ready"), (200, "ok\n"))
            # ~3 MB of tuples (long URLs): more than one 1 MiB batch, more than the 256 KiB allowed
            q = "q=" + "x" * 3000
            for i in range(100):
                p.stdin.write(conn(f"r{i}", i * 0.01, [("GET", f"/ready/{i}?{q}", 200)] * 3) + "\n")
            p.stdin.flush()
            end = time.time() + DEADLINE
            code, why = self.curl(port, "/ready")
            while code == 200 and time.time() < end:
                time.sleep(0.05)
                code, why = self.curl(port, "/ready")
            self.assertEqual(code, 503, why)
            self.assertRegex(why, r"^losing result tuples: \d+ lost to write errors so far, the last within 60 s\n$")
            self.assertEqual(self.curl(port, "/health"), (200, "ok\n"))
            self.assertGreater(self.scrape(port)["searchmig_replay_tuples_lost_total"], 0)
            p.stdin.close()
            self.assertEqual(p.wait(timeout=DEADLINE), 1)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()

    def test_terminal_status_line(self):
        self.standin("DELETE", "/_standin/faults")
        inp = os.path.join(TMP, "tty-records.log")
        with open(inp, "w") as f:
            f.write(conn("t1", 0.0, [("GET", "/", 200), ("GET", "/", 200), ("GET", "/", 200)]) + "\n")
        master, slave = pty.openpty()
        # an interval longer than the run: the only redraw is the last one, at exit
        p = subprocess.Popen([REPLAY, "--input", inp, "--target", self.url, "--speedup-factor", "0",
                              "--tuples-dir", os.path.join(TMP, "tty-tuples"), "--summary-interval", "1h"],
                             stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=slave)
        os.close(slave)
        out = b""
        end = time.time() + DEADLINE
        while time.time() < end:
            ready, _, _ = select.select([master], [], [], 1)
            if ready:
                try:
                    chunk = os.read(master, 65536)
                except OSError:   # EIO: the replayer exited, pty closed
                    break
                if not chunk:
                    break
                out += chunk
            elif p.poll() is not None:
                break
        os.close(master)
        self.assertEqual(p.wait(timeout=DEADLINE), 0)
        text = out.decode(errors="replace")
        found = re.search(r"\rlive: (?:[0-9.]+|-) req/s, sent 3, status match 100\.0%, lag p99 [0-9.]+ ms, "
                          r"pending 0\x1b\[K\r?\n", text)
        self.assertTrue(found, repr(text))
        # the final summary starts on its own line after it
        self.assertIn("searchmig-replay summary", text[found.end():])

    def test_kafka_counters(self):
        kstandin = os.environ.get("SM_KAFKA_STANDIN", "")
        if not os.access(kstandin, os.X_OK) or not os.access("/usr/bin/kcat", os.X_OK):
            self.skipTest("sm-kafka-standin or kcat not available")
        self.standin("DELETE", "/_standin/faults")
        ks = subprocess.Popen([kstandin, "--brokers", "1", "--topic", "rt:2", "--exit-on-eof", "--die-with-parent"],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        log = os.path.join(TMP, "kafka-replay-stderr.log")
        p = None
        try:
            line = ks.stdout.readline().strip()
            self.assertTrue(line.startswith("bootstrap="), line)
            boot = line[len("bootstrap="):]
            with open(log, "w") as err:
                p = subprocess.Popen([REPLAY, "--kafka-brokers", boot, "--kafka-topic", "rt", "--kafka-group-id", "gm",
                                      "--kafka-property", "reconnect.backoff.max.ms=500",
                                      "--target", self.url, "--speedup-factor", "0",
                                      "--tuples-dir", os.path.join(TMP, "kafka-tuples"),
                                      "--dead-letter-file", os.path.join(TMP, "kafka.dead"),
                                      "--commit-interval", "200ms", "--source-response-wait", "1s",
                                      "--metrics-listen", "127.0.0.1:0", "--summary-interval", "200ms"],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err)
            port = int(self.wait_log(log, r"metrics: http://127\.0\.0\.1:0/metrics \(port (\d+)\)", "the port")[1])
            m = self.scrape(port)
            self.assertEqual(m["searchmig_replay_kafka_commits_total"], 0)
            # three connections (one record each: 2 + 1 + 1 requests, statuses as the target's
            # but one), then a record that is not a TrafficStream (dead-lettered)
            recs = [("k1", conn("k1", 0.0, [("GET", "/", 200), ("GET", "/", 200)])),
                    ("k2", conn("k2", 0.1, [("GET", "/missing-index/_doc/1", 200)])),
                    ("k3", conn("k3", 0.2, [("GET", "/", 200)]))]
            files = []
            for i, (key, b) in enumerate(recs):
                f = os.path.join(TMP, f"kafka-rec-{i}.bin")
                with open(f, "wb") as fh:
                    fh.write(base64.b64decode(b))
                files.append((key, f))
            poison = os.path.join(TMP, "kafka-poison.bin")
            with open(poison, "wb") as fh:
                fh.write(bytes([0xff, 0xff, 0xff, 0xff, 0x0f]) + b"poison")
            files.append(("k1", poison))
            for key, f in files:
                subprocess.run(["kcat", "-P", "-b", boot, "-t", "rt", "-k", key, f], check=True, timeout=30)
            m = self.wait_metrics(port, lambda m: m["searchmig_replay_tuples_written_total"] == 4
                                  and m["searchmig_replay_input_dead_letters_total"] == 1
                                  and m["searchmig_replay_kafka_commits_total"] >= 1, "4 tuples and a commit")
            expect = {
                "input_records_total": 4, "input_malformed_total": 1, "input_dead_letters_total": 1,
                "requests_rebuilt_total": 4, "requests_submitted_total": 4, "requests_sent_total": 4,
                "target_attempts_total": 4, "target_retries_total": 0, "tuples_written_total": 4,
                "status_match_total": 3, "status_differ_total": 1, "duplicate_requests_total": 0,
                "kafka_commit_errors_total": 0,
            }
            for k, v in expect.items():
                self.assertEqual(m["searchmig_replay_" + k], v, k)
            self.assertGreaterEqual(m["searchmig_replay_kafka_partitions_assigned_total"], 1)
            self.wait_log(log, r"live: [0-9.]+ req/s, sent 4, status match 75\.0%, lag p99 [0-9.]+ ms, pending 0",
                          "a summary line with 4 sent")
            p.send_signal(signal.SIGTERM)
            self.assertEqual(p.wait(timeout=DEADLINE), 0)
        finally:
            if p and p.poll() is None:
                p.kill()
                p.wait()
            ks.stdin.close()
            ks.wait(timeout=DEADLINE)

    def test_bad_listen_address(self):
        p = subprocess.run([REPLAY, "--input", "/dev/null", "--target", self.url, "--tuples-dir",
                            os.path.join(TMP, "bad-tuples"), "--metrics-listen", "nonsense"],
                           capture_output=True, text=True, timeout=DEADLINE)
        self.assertEqual(p.returncode, 1)
        self.assertIn("nonsense", p.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
