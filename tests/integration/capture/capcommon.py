"""Shared helpers for the capture integration tests (stdlib only)."""
import os
import subprocess


def capture_dump_bin():
    b = os.environ.get("SM_BINARY_DIR", ".")
    for cand in (os.path.join(b, "tests", "capture_dump"), os.path.join(b, "capture_dump")):
        if os.path.exists(cand):
            return cand
    raise SystemExit("capture_dump not built under %s" % b)


def run_dump(args, outdir, **kw):
    os.makedirs(outdir, exist_ok=True)
    return subprocess.run([capture_dump_bin(), "--out", outdir] + args, **kw)


def read_result(outdir):
    """Returns {conn_id: {...}} from a capture_dump output directory."""
    conns = {}
    with open(os.path.join(outdir, "events.txt")) as f:
        for line in f:
            w = line.split()
            if not w:
                continue
            if w[0] == "open":
                cid = int(w[1])
                conns[cid] = {"client": w[2], "cport": int(w[3]), "server": w[4], "sport": int(w[5]),
                              "mid": w[6] == "mid=1", "gap_c2s": 0, "gap_s2c": 0, "gaps": [],
                              "close": None}
            elif w[0] == "gap":
                c = conns[int(w[1])]
                c["gap_" + w[2]] += int(w[3])
                c["gaps"].append((w[2], int(w[3]), " ".join(w[4:])))
            elif w[0] == "close":
                conns[int(w[1])]["close"] = w[2]
    for cid, c in conns.items():
        for d in ("c2s", "s2c"):
            p = os.path.join(outdir, "conn-%d.%s" % (cid, d))
            c[d] = open(p, "rb").read() if os.path.exists(p) else b""   # --no-data: none
    return conns


def recorded(recdir):
    """{client port: {"c2s": bytes, "s2c": bytes}} of what tests/integration/capture/server.py --record wrote."""
    conns = {}
    for name in os.listdir(recdir):
        port, d = name.split(".")
        with open(os.path.join(recdir, name), "rb") as f:
            conns.setdefault(int(port), {})[d] = f.read()
    return conns


def compare(rec, got, label):
    """Errors where the capture (read_result) differs from what the server saw (recorded)."""
    errs = []
    bycport = {c["cport"]: c for c in got.values()}
    if len(got) != len(rec):
        errs.append("%s: captured %d connections, server saw %d" % (label, len(got), len(rec)))
    for port, r in sorted(rec.items()):
        g = bycport.get(port)
        if not g:
            errs.append("%s: connection from port %d not captured" % (label, port))
            continue
        for d in ("c2s", "s2c"):
            if g[d] != r.get(d, b""):
                errs.append("%s: port %d %s: captured %d bytes, server %d" % (label, port, d, len(g[d]), len(r.get(d, b""))))
        if g["gaps"]:
            errs.append("%s: port %d: unexpected gaps %s" % (label, port, g["gaps"]))
        if g["close"] not in ("fin", "shutdown"):
            errs.append("%s: port %d: close %s" % (label, port, g["close"]))
        if g["mid"]:
            errs.append("%s: port %d: marked mid-stream" % (label, port))
    return errs


def read_stats(outdir):
    st = {}
    with open(os.path.join(outdir, "stats.txt")) as f:
        for line in f:
            k, v = line.strip().split("=")
            st[k] = int(v)
    return st


def tshark_follow(pcap, port=None):
    """Per TCP stream: (client 'ip:port', c2s bytes, s2c bytes) from tshark's
    own reassembly (follow,tcp,raw)."""
    out = subprocess.run(["tshark", "-r", pcap, "-T", "fields", "-e", "tcp.stream"],
                         capture_output=True, text=True, check=True).stdout.split()
    streams = sorted({int(x) for x in out if x.strip()})
    if not streams:
        return []
    args = ["tshark", "-r", pcap, "-q"]
    for s in streams:
        args += ["-z", "follow,tcp,raw,%d" % s]
    text = subprocess.run(args, capture_output=True, text=True, check=True).stdout
    res = []
    cur = None
    for line in text.splitlines():
        if line.startswith("Follow: "):
            cur = {"node0": None, "c2s": bytearray(), "s2c": bytearray()}
            res.append(cur)
        elif cur is None or line.startswith("===") or line.startswith("Filter:"):
            continue
        elif line.startswith("Node 0: "):
            cur["node0"] = line[8:].strip()
        elif line.startswith("Node 1: "):
            cur["node1"] = line[8:].strip()
        elif line.startswith("\t"):
            cur["s2c"] += bytes.fromhex(line.strip())
        elif line.strip():
            cur["c2s"] += bytes.fromhex(line.strip())
    return res
