#!/usr/bin/python3
"""searchmig-agent -> Kafka end to end: the crafted capture file is recorded
once to a file and once to the Kafka stand-in (sm-kafka-standin, librdkafka's
mock cluster); the topic read back with kcat must hold the same connections
with the same bytes, key = connectionId, records of a connection in index
order. Skipped (77) when the stand-in or kcat is missing."""
import os
import shutil
import subprocess
import sys
import tempfile

sys.dont_write_bytecode = True   # nothing written into the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tslib  # noqa: E402

try:
    import crafted_pcap_test  # noqa: E402
except ImportError:
    print("SKIP: python3-scapy not installed")
    sys.exit(77)

AGENT, STANDIN = sys.argv[1], sys.argv[2]
TOPIC = "logging-traffic-topic"


def skip(why):
    print("SKIP:", why)
    sys.exit(77)


def summary(conns):
    return sorted((c["c2s"], c["s2c"], c["eoms"], c["closes"], len(c["exceptions"])) for c in conns.values())


def main():
    if not os.path.exists(STANDIN):
        skip("sm-kafka-standin not built")
    if not shutil.which("kcat"):
        skip("kcat not installed")
    tmp = tempfile.mkdtemp(prefix="sm-agent-kafka-")
    ks = None
    try:
        pcap = os.path.join(tmp, "crafted.pcap")
        crafted_pcap_test.build_pcap(pcap)
        common = ["--pcap", pcap, "--port", "9200", "--stats-interval", "0", "--max-record-size", "1KiB"]
        out = os.path.join(tmp, "out.log")
        r = subprocess.run([AGENT, *common, "--output", out], capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        file_recs = tslib.read_records(out)

        ks, boot = tslib.kafka_standin(STANDIN, TOPIC)
        if not boot:
            skip("stand-in did not start: " + ks.first_line)
        r = subprocess.run([AGENT, *common, "--kafka-brokers", boot, "--spool-dir", os.path.join(tmp, "spool")],
                           capture_output=True, text=True, timeout=120)
        sys.stderr.write(r.stderr)
        assert r.returncode == 0, r.returncode
        assert "records_dropped=0" in r.stderr

        recs = tslib.kcat_records(boot, TOPIC)
        assert len(recs) == len(file_recs), "%d records in the topic, expected %d" % (len(recs), len(file_recs))
        # in partition order each connection's records are 1..n (checked by tslib)
        kconns = tslib.connections(tslib.kafka_parsed(recs))
        fconns = tslib.connections(file_recs)
        assert summary(kconns) == summary(fconns), "Kafka records differ from the file's"
        print("kafka: %d records of %d connections in the topic, identical to the file output" %
              (len(recs), len(kconns)))
    finally:
        if ks:
            ks.stdin.close()
            try:
                ks.wait(timeout=10)
            except subprocess.TimeoutExpired:
                ks.kill()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
