#!/usr/bin/python3
"""searchmig-agent capturing live on lo into Kafka (sm-kafka-standin, librdkafka's
mock cluster) while every broker goes down in the middle of the traffic and comes
back: capture never stops, the records of the outage go to the on-disk spool, and
after recovery the topic holds every request of every phase, each connection in
one partition with its records in order; nothing is dropped.

Then Kafka goes down again and the agent is stopped in that outage: the
records it could not deliver stay in the spool, and a restarted agent sends
them once the brokers are back.

Traffic: 4 phases x 10 HTTP/1.1 requests, each on its own connection (so each
connection ends with a close and its record is complete), against a Python
server on a free port. The agent's own metrics say when it has seen, spooled
and delivered what it should; the topic is read back with kcat.

Needs root (live capture on lo), kcat and the stand-in: exits 77 otherwise."""
import http.server
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

sys.dont_write_bytecode = True   # nothing written into the source tree
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "agent"))
import tslib  # noqa: E402

AGENT, STANDIN = sys.argv[1], sys.argv[2]
TOPIC = "logging-traffic-topic"
PHASES = ("before", "during", "after", "stopped")
PER_PHASE = 10


def skip(why):
    print("SKIP:", why)
    sys.exit(77)


class Hello(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def do_GET(self):
        body = ("hello from %s\n" % self.path).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def metrics(mport):
    text = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % mport, timeout=10).read().decode()
    out = {}
    for line in text.splitlines():
        if line.startswith("searchmig_agent_"):
            k, v = line.split()
            out[k[len("searchmig_agent_"):]] = float(v)
    return out


def wait_for(mport, what, cond, limit=60):
    deadline = time.time() + limit
    m = {}
    while time.time() < deadline:
        m = metrics(mport)
        if cond(m):
            return m
        time.sleep(0.1)
    raise AssertionError("agent did not reach '%s' in %d s: %s" % (what, limit, m))


def burst(port, phase):
    for i in range(PER_PHASE):
        req = urllib.request.Request("http://127.0.0.1:%d/%s/%d" % (port, phase, i), headers={"Connection": "close"})
        with urllib.request.urlopen(req, timeout=10) as r:
            assert r.read() == ("hello from /%s/%d\n" % (phase, i)).encode()


def start_agent(port, boot, spool, *extra):
    """The agent capturing lo for port into Kafka, metrics on a port it picks itself
    (read from its log line). (process, stderr lines, metrics port); process None
    when capture did not start."""
    agent = subprocess.Popen([AGENT, "--interface", "lo", "--port", str(port), "--kafka-brokers", boot,
                              "--spool-dir", spool, "--stats-interval", "0",
                              "--metrics-listen", "127.0.0.1:0", *extra],
                             stderr=subprocess.PIPE, text=True)
    seen, mport = [], None
    while mport is None:
        line = agent.stderr.readline()
        seen.append(line)
        m = re.search(r"metrics: http://\S+ \(port (\d+)\)", line)
        if m:
            mport = int(m.group(1))
        elif not line or len(seen) > 20:
            agent.kill()
            agent.wait()
            return None, seen, None
    threading.Thread(target=lambda: seen.extend(agent.stderr), daemon=True).start()
    return agent, seen, mport


def command(ks, line):
    ks.stdin.write((line + "\n").encode())
    ks.stdin.flush()
    answer = ks.stdout.readline().decode().strip()
    assert answer == "ok " + line, answer


def main():
    if os.geteuid() != 0:
        skip("live capture needs root")
    if not os.path.exists(STANDIN):
        skip("sm-kafka-standin not built")
    if not shutil.which("kcat"):
        skip("kcat not installed")
    tmp = tempfile.mkdtemp(prefix="sm-agent-outage-")
    ks = agent = srv = None
    try:
        ks, boot = tslib.kafka_standin(STANDIN, TOPIC)
        if not boot:
            skip("stand-in did not start: " + ks.first_line)
        srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hello)   # port 0: no race with other tests
        port = srv.server_address[1]
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        spool = os.path.join(tmp, "spool")
        agent, seen, mport = start_agent(port, boot, spool, "--idle-flush", "200ms")
        if agent is None:
            skip("live capture did not start: " + "".join(seen).strip())
        time.sleep(0.5)

        burst(port, "before")
        wait_for(mport, "10 requests delivered",
                 lambda m: m["requests_total"] == 10 and m["sink_delivered_total"] == m["records_total"] >= 10)

        command(ks, "down")
        burst(port, "during")
        m = wait_for(mport, "the outage's records in the spool",
                     lambda m: m["requests_total"] == 20 and m["records_total"] >= 20 and m["spool_bytes"] > 0)
        time.sleep(1)
        m = metrics(mport)
        assert m["sink_delivered_total"] < m["records_total"], m     # nothing delivered while down
        assert m["records_dropped_total"] == 0, m

        command(ks, "up")
        burst(port, "after")
        m = wait_for(mport, "every record delivered and the spool empty",
                     lambda m: m["requests_total"] == 30 and m["sink_delivered_total"] == m["records_total"]
                     and m["spool_bytes"] == 0)
        # Kafka goes down again and the agent is stopped during this outage: its
        # records cannot be delivered within the stop's 10 s flush, so they stay in
        # the spool (exit 1: output not delivered); the next start sends them first
        command(ks, "down")
        burst(port, "stopped")
        m = wait_for(mport, "the last burst recorded", lambda m: m["requests_total"] == 40 and m["records_total"] >= 40)
        records = int(m["records_total"])
        agent.send_signal(signal.SIGTERM)
        agent.wait(timeout=60)
        err = "".join(seen)
        sys.stderr.write(err)
        assert agent.returncode == 1, "agent exit %d with undeliverable records" % agent.returncode
        assert "records_dropped=0" in err, err
        assert any(f.endswith(".seg") for f in os.listdir(spool)), os.listdir(spool)

        command(ks, "up")
        agent, seen, mport = start_agent(port, boot, spool)
        assert agent is not None, "".join(seen)
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                m = metrics(mport)
                if m["spool_bytes"] == 0 and m["records_total"] == 0:
                    break
            except OSError:
                pass
            time.sleep(0.1)
        agent.send_signal(signal.SIGTERM)
        agent.wait(timeout=60)
        err = "".join(seen)
        sys.stderr.write(err)
        assert agent.returncode == 0, "restarted agent exit %d" % agent.returncode

        recs = tslib.kcat_records(boot, TOPIC)
        # duplicates (a resend of a record Kafka already had) are allowed by the
        # at-least-once spool but must be exact copies; count them and leave them out
        unique, dups = [], 0
        seen_values = set()
        for part, key, value in recs:
            if value in seen_values:
                dups += 1
                continue
            seen_values.add(value)
            unique.append((part, key, value))
        assert len(unique) == records, "%d distinct records in the topic, the agent wrote %d" % (len(unique), records)
        # sorted is stable: the partition order kept; connections() checks each one's record order
        conns = tslib.connections(tslib.kafka_parsed(sorted(unique, key=lambda r: r[0])))
        uris = []
        for c in conns.values():
            assert c["closes"] == 1 and not c["exceptions"], c
            uris += [r.split(b" ")[1].decode() for r in c["requests"]]
            assert c["s2c"].startswith(b"HTTP/1.1 200"), c["s2c"][:40]
        want = sorted("/%s/%d" % (ph, i) for ph in PHASES for i in range(PER_PHASE))
        assert sorted(uris) == want, sorted(uris)
        print("kafka outage: %d connections, %d records (%d resent duplicates) in the topic; every request "
              "of the %d before, during and after an outage and through a stop in one is there" % (len(conns), records, dups, len(want)))
    finally:
        if agent and agent.poll() is None:
            agent.kill()
            agent.wait()
        if srv:
            srv.shutdown()
        if ks:
            ks.stdin.close()
            try:
                ks.wait(timeout=10)
            except subprocess.TimeoutExpired:
                ks.kill()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
