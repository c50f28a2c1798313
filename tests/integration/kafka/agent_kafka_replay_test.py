#!/usr/bin/python3
"""Capture -> Kafka -> replay: the crafted capture file (tests/integration/agent)
is recorded by searchmig-agent once to a file and once into the Kafka stand-in;
searchmig-replay replays the file (--input) and the topic (--kafka-brokers) to
the target stand-in. The Kafka replay must produce the same tuples (connection
id, request line, source response status) as the file replay, with no
malformed records or duplicates, and exit cleanly on SIGTERM.
argv: searchmig-agent sm-kafka-standin searchmig-replay"""
import glob
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True
SRC = os.environ.get("SM_SOURCE_DIR", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", ".."))
sys.path.insert(0, os.path.join(SRC, "tests", "integration", "agent"))
import tslib  # noqa: E402
try:
    import crafted_pcap_test  # noqa: E402
except ImportError:
    print("SKIP: python3-scapy (crafted capture) not available")
    sys.exit(77)

AGENT, STANDIN, REPLAY = sys.argv[1], sys.argv[2], sys.argv[3]
TOPIC = "logging-traffic-topic"
TARGET = os.path.join(SRC, "tests", "standins", "target", "target_standin.py")


def tuples(d, partial=False):
    """(connectionId, method, URI, source status) of every tuple; with partial,
    a line still being written is skipped."""
    out = []
    for f in sorted(glob.glob(os.path.join(d, "*"))):
        with open(f) as fh:
            for line in fh:
                if partial and not line.endswith("\n"):
                    continue
                t = json.loads(line)
                req = t.get("sourceRequest", {})
                resp = t.get("sourceResponse") or {}
                # connection ids are unique per agent run: keep the per-run counter and request index
                out.append((t["connectionId"].rsplit("-", 1)[-1], req.get("Method"), req.get("Request-URI"), resp.get("Status-Code")))
    return sorted(out)


def wait_for(pred, timeout):
    end = time.time() + timeout
    while time.time() < end:
        if pred():
            return True
        time.sleep(0.2)
    return False


def main():
    for p in (AGENT, STANDIN, REPLAY):
        if not os.access(p, os.X_OK):
            print("SKIP: %s not built" % p)
            sys.exit(77)
    tmp = tempfile.mkdtemp(prefix="sm-kafka-replay-")
    procs = []
    try:
        pcap = os.path.join(tmp, "crafted.pcap")
        crafted_pcap_test.build_pcap(pcap)
        common = ["--pcap", pcap, "--port", "9200", "--stats-interval", "0", "--max-record-size", "1KiB"]
        out = os.path.join(tmp, "out.log")
        r = subprocess.run([AGENT, *common, "--output", out], capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr

        ks, boot = tslib.kafka_standin(STANDIN, TOPIC)
        procs.append(ks)
        assert boot, ks.first_line
        r = subprocess.run([AGENT, *common, "--kafka-brokers", boot, "--spool-dir", os.path.join(tmp, "spool")],
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr

        portf = os.path.join(tmp, "target.port")
        tgt = subprocess.Popen(["/usr/bin/python3", TARGET, "--port", "0", "--port-file", portf,
                                "--flavor", "opensearch-2.11", "--log", os.path.join(tmp, "target.log")])
        procs.append(tgt)
        assert wait_for(lambda: os.path.exists(portf) and open(portf).read().strip(), 15), "no target"
        url = "http://127.0.0.1:%s" % open(portf).read().strip()

        fdir = os.path.join(tmp, "tuples-file")
        r = subprocess.run([REPLAY, "--input", out, "--target", url, "--tuples-dir", fdir,
                            "--speedup-factor", "0"], capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        want = tuples(fdir)
        assert want, "the file replay wrote no tuples"

        kdir = os.path.join(tmp, "tuples-kafka")
        summ = os.path.join(tmp, "summary.json")
        rp = subprocess.Popen([REPLAY, "--kafka-brokers", boot, "--kafka-group-id", "chain",
                               "--target", url, "--tuples-dir", kdir, "--speedup-factor", "0",
                               "--commit-interval", "300ms", "--source-response-wait", "1s",
                               "--summary-json", summ], stderr=subprocess.PIPE, text=True)
        procs.append(rp)
        # tuples are flushed before each commit: wait until all are there
        ok = wait_for(lambda: os.path.isdir(kdir) and len(tuples(kdir, True)) >= len(want), 30)
        rp.send_signal(signal.SIGTERM)
        _, err = rp.communicate(timeout=60)
        sys.stderr.write(err)
        assert ok, "kafka replay wrote %d of %d tuples" % (len(tuples(kdir, True)), len(want))
        assert rp.returncode == 0, rp.returncode
        got = tuples(kdir)
        assert got == want, "tuples differ:\nfile  %s\nkafka %s" % (want, got)
        s = json.load(open(summ))
        assert s["kafka_malformed"] == 0 and s["dead_letters"] == 0 and s["duplicates"] == 0, s
        print("kafka replay: %d tuples identical to the file replay's" % len(got))
    finally:
        for p in reversed(procs):
            if p.poll() is None:
                if p.stdin:
                    p.stdin.close()
                p.terminate()
                try:
                    p.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    p.kill()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
