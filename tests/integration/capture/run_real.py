#!/usr/bin/python3
"""Real traffic (curl against server.py, which records every byte it
received and sent per connection) captured three ways:

  offline  tcpdump -i lo -w F, then the pcap-file engine; also cross-checked
           with tshark's own reassembly (follow,tcp,raw)
  live     the pcap engine on lo (needs CAP_NET_RAW; exit 77 without)
  netns    the pcap engine on one end of a veth pair between two network
           namespaces (needs ip netns; exit 77 when not permitted)

Every connection's reassembled bytes must equal what the server recorded."""
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import capcommon  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
SKIP = 77


class Skip(Exception):
    pass


def start_server(recdir, bind, prefix=()):
    p = subprocess.Popen(list(prefix) + ["/usr/bin/python3", os.path.join(HERE, "server.py"), "--bind", bind,
                                         "--record", recdir], stdout=subprocess.PIPE, text=True)
    port = int(p.stdout.readline())
    return p, port


def workload(base_urls, work, prefix=()):
    payload = os.path.join(work, "payload.bin")
    with open(payload, "wb") as f:
        f.write(bytes(range(256)) * 400)
    for base in base_urls:
        cmds = [
            ["curl", "-sS", "-o", "/dev/null", "-o", "/dev/null", "-o", "/dev/null",
             base + "/small", base + "/big", base + "/chunked"],
            ["curl", "-sS", "-o", "/dev/null", "-H", "Expect:", "--data-binary", "@" + payload, base + "/echo"],
            ["curl", "-sS", "-o", "/dev/null", "-I", base + "/small"],
            ["curl", "-sS", "-o", "/dev/null", base + "/close"],
        ]
        for c in cmds:
            subprocess.run(list(prefix) + c, check=True, timeout=30)


def wait_file(path, proc, secs=10):
    end = time.time() + secs
    while time.time() < end:
        if os.path.exists(path):
            return
        if proc.poll() is not None:
            if proc.returncode == SKIP:
                raise Skip("capture engine cannot open the interface")
            raise RuntimeError("capture_dump exited %d" % proc.returncode)
        time.sleep(0.05)
    raise RuntimeError("capture_dump not ready")


def stop(proc):
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise RuntimeError("capture_dump did not stop on SIGTERM")
    if proc.returncode != 0:
        raise RuntimeError("capture_dump exited %d" % proc.returncode)


def tcpdump_capture(work, attempt):
    """Record the workload with tcpdump; returns (recdir, port, pcap, kernel
    drops). tcpdump itself can lose packets on a loaded machine (the CI runs
    tests in parallel); such a file is missing bytes for reasons outside the
    code under test, so the caller captures again instead of failing."""
    recdir = os.path.join(work, "rec%d" % attempt)
    os.makedirs(recdir)
    srv, port = start_server(recdir, "::")
    try:
        pcap = os.path.join(work, "lo%d.pcap" % attempt)
        td = subprocess.Popen(["tcpdump", "-i", "lo", "-n", "-U", "--immediate-mode", "-B", "65536", "-s", "0",
                               "-w", pcap, "tcp port %d" % port], stderr=subprocess.PIPE, text=True)
        line = td.stderr.readline()
        if "listening" not in line:
            td.wait()
            raise Skip("tcpdump cannot capture on lo: " + line.strip())
        workload(["http://127.0.0.1:%d" % port, "http://[::1]:%d" % port], work)
        time.sleep(0.5)
        td.send_signal(signal.SIGINT)
        rest = td.communicate(timeout=20)[1]
    finally:
        srv.kill()
        srv.wait()
    m = re.search(r"(\d+) packets? dropped by kernel", rest)
    if not m:
        raise RuntimeError("tcpdump did not report its drop count: " + rest.strip())
    return recdir, port, pcap, int(m.group(1))


def mode_offline(work):
    if not shutil.which("tcpdump") or not shutil.which("tshark"):
        raise Skip("tcpdump/tshark not installed")
    for attempt in range(1, 4):
        recdir, port, pcap, drops = tcpdump_capture(work, attempt)
        if drops == 0:
            break
        print("tcpdump dropped %d packets (attempt %d), capturing again" % (drops, attempt))
    else:
        raise Skip("tcpdump keeps dropping packets on this machine")
    out = os.path.join(work, "out")
    r = capcommon.run_dump(["--engine", "pcap-file", "--file", pcap, "--port", str(port)], out)
    if r.returncode != 0:
        return ["capture_dump exit %d" % r.returncode]
    got = capcommon.read_result(out)
    errs = capcommon.compare(capcommon.recorded(recdir), got, "offline")
    # tshark's own reassembly of the same file agrees stream by stream
    bycport = {c["cport"]: c for c in got.values()}
    ts = capcommon.tshark_follow(pcap)
    if len(ts) != len(got):
        errs.append("tshark sees %d streams, we %d" % (len(ts), len(got)))
    for s in ts:
        cport = int(s["node0"].rsplit(":", 1)[1])
        g = bycport.get(cport)
        if not g or g["c2s"] != bytes(s["c2s"]) or g["s2c"] != bytes(s["s2c"]):
            errs.append("tshark stream from port %d differs" % cport)
    return errs


def run_live(work, iface, server_bind, urls, ns_server=(), ns_client=()):
    recdir = os.path.join(work, "rec")
    os.makedirs(recdir)
    srv, port = start_server(recdir, server_bind, ns_server)
    try:
        out = os.path.join(work, "out")
        os.makedirs(out)
        ready = os.path.join(work, "ready")
        cap = subprocess.Popen(list(ns_server) + [capcommon.capture_dump_bin(), "--out", out, "--engine", "pcap",
                                                  "--iface", iface, "--port", str(port), "--ready-file", ready,
                                                  "--max-seconds", "120"])
        try:
            wait_file(ready, cap)
            time.sleep(0.2)
            workload([u % port for u in urls], work, ns_client)
            time.sleep(0.5)
        finally:
            if cap.poll() is None:
                stop(cap)
    finally:
        srv.kill()
        srv.wait()
    got = capcommon.read_result(out)
    return capcommon.compare(capcommon.recorded(recdir), got, "live " + iface)


def mode_live(work):
    return run_live(work, "lo", "::", ["http://127.0.0.1:%d", "http://[::1]:%d"])


def mode_netns(work):
    tag = str(os.getpid() % 100000)
    nss, nsc = "smcapS" + tag, "smcapC" + tag
    vs, vc = "smvS" + tag, "smvC" + tag

    def ip(*a):
        return subprocess.run(["ip"] + list(a), capture_output=True, text=True)

    if not shutil.which("ip"):
        raise Skip("iproute2 not installed")
    r = ip("netns", "add", nss)
    if r.returncode != 0:
        raise Skip("ip netns add not permitted: " + r.stderr.strip())
    try:
        for step in (["netns", "add", nsc],
                     ["link", "add", vs, "type", "veth", "peer", "name", vc],
                     ["link", "set", vs, "netns", nss], ["link", "set", vc, "netns", nsc],
                     ["-n", nss, "addr", "add", "10.213.0.1/24", "dev", vs],
                     ["-n", nsc, "addr", "add", "10.213.0.2/24", "dev", vc],
                     ["-n", nss, "link", "set", vs, "up"], ["-n", nsc, "link", "set", vc, "up"],
                     ["-n", nss, "link", "set", "lo", "up"], ["-n", nsc, "link", "set", "lo", "up"]):
            r = ip(*step)
            if r.returncode != 0:
                raise Skip("ip %s: %s" % (" ".join(step), r.stderr.strip()))
        return run_live(work, vs, "10.213.0.1", ["http://10.213.0.1:%d"],
                        ns_server=("ip", "netns", "exec", nss), ns_client=("ip", "netns", "exec", nsc))
    finally:
        ip("netns", "del", nsc)
        ip("netns", "del", nss)


def main():
    mode = sys.argv[1]
    work = tempfile.mkdtemp(prefix="sm-cap-%s-" % mode)
    try:
        errs = {"offline": mode_offline, "live": mode_live, "netns": mode_netns}[mode](work)
    except Skip as e:
        print("SKIP:", e)
        return SKIP
    finally:
        if not os.environ.get("SM_KEEP_TMP"):
            shutil.rmtree(work, ignore_errors=True)
    for e in errs:
        print("FAIL", e)
    print("%s: %s" % (mode, "ok" if not errs else "%d problems" % len(errs)))
    return 1 if errs else 0


if __name__ == "__main__":
    sys.exit(main())
