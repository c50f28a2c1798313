"""Minimal TrafficStream reader for the agent's integration tests: base64 lines
(optionally gzip) decoded with a small protobuf wire-format parser (stdlib
only), per-connection request/response bytes rebuilt from the records, and the
Kafka side of the tests (the sm-kafka-standin process, the topic read with kcat)."""
import base64
import gzip
import subprocess


def _varint(b, i):
    v = 0
    shift = 0
    while True:
        c = b[i]
        i += 1
        v |= (c & 0x7F) << shift
        if c < 0x80:
            return v, i
        shift += 7


def fields(b):
    """Yields (field number, wire type, value) of one message."""
    i = 0
    while i < len(b):
        key, i = _varint(b, i)
        fn, wt = key >> 3, key & 7
        if wt == 0:
            v, i = _varint(b, i)
        elif wt == 2:
            n, i = _varint(b, i)
            v = b[i:i + n]
            i += n
        elif wt == 1:
            v = b[i:i + 8]
            i += 8
        elif wt == 5:
            v = b[i:i + 4]
            i += 4
        else:
            raise ValueError("wire type %d" % wt)
        yield fn, wt, v


KINDS = {4: "read", 5: "readSegment", 8: "write", 9: "writeSegment", 10: "disconnect", 11: "close",
         12: "connectionException", 14: "segmentEnd", 15: "endOfMessageIndicator", 16: "requestDropped"}


def parse_obs(b):
    obs = {"kind": None, "data": b"", "ts": None}
    for fn, _, v in fields(b):
        if fn == 1:
            sec = nanos = 0
            for f2, _, v2 in fields(v):
                if f2 == 1:
                    sec = v2
                elif f2 == 2:
                    nanos = v2
            obs["ts"] = sec * 1000000000 + nanos
        elif fn in KINDS:
            obs["kind"] = KINDS[fn]
            for f2, _, v2 in fields(v):
                if fn in (4, 8) and f2 == 1:
                    obs["data"] = bytes(v2)
                elif fn in (5, 9) and f2 == 2:
                    obs["data"] = bytes(v2)
                elif fn == 12 and f2 == 1:
                    obs["data"] = bytes(v2)
                elif fn == 15:
                    obs["fl" if f2 == 1 else "hl"] = v2
    return obs


def parse_ts(b):
    ts = {"connectionId": "", "nodeId": "", "prior": None, "unterminated": None, "number": None,
          "last": None, "obs": []}
    for fn, _, v in fields(b):
        if fn == 1:
            ts["connectionId"] = v.decode()
        elif fn == 5:
            ts["nodeId"] = v.decode()
        elif fn == 6:
            ts["prior"] = v
        elif fn == 7:
            ts["unterminated"] = bool(v)
        elif fn == 2:
            ts["obs"].append(parse_obs(v))
        elif fn == 3:
            ts["number"] = v
        elif fn == 4:
            ts["last"] = v
    return ts


def read_records(path):
    with open(path, "rb") as f:
        data = f.read()
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    out = []
    for line in data.splitlines():
        line = line.strip()
        if line:
            raw = base64.b64decode(line)
            out.append((raw, parse_ts(raw)))
    return out


def connections(records):
    """connectionId -> dict(c2s, s2c, eoms, closes, exceptions, uris) with checks
    of index order and the per-record state fields."""
    by = {}
    for _, ts in records:
        by.setdefault(ts["connectionId"], []).append(ts)
    conns = {}
    for cid, recs in by.items():
        c = {"c2s": b"", "s2c": b"", "eoms": 0, "closes": 0, "exceptions": [], "requests": []}
        eoms = 0
        unterminated = False
        req = b""
        for k, ts in enumerate(recs, 1):
            idx = ts["last"] if ts["last"] is not None else ts["number"]
            assert idx == k, "%s: record %d has index %r" % (cid, k, idx)
            assert (ts["last"] is not None) == (k == len(recs)), "%s: last record marker" % cid
            assert (ts["prior"] or 0) == eoms, "%s: priorRequestsReceived %r != %d" % (cid, ts["prior"], eoms)
            assert bool(ts["unterminated"]) == unterminated, "%s: unterminated flag" % cid
            assert ts["nodeId"], "no nodeId"
            for o in ts["obs"]:
                if o["kind"] in ("read", "readSegment"):
                    c["c2s"] += o["data"]
                    req += o["data"]
                    unterminated = True
                elif o["kind"] in ("write", "writeSegment"):
                    c["s2c"] += o["data"]
                elif o["kind"] == "endOfMessageIndicator":
                    eoms += 1
                    c["eoms"] += 1
                    first = req[:o.get("fl", 0)]
                    assert first.endswith(b"\r\n"), "EOM first line length"
                    assert req[o["fl"]:o["fl"] + o.get("hl", 0)].endswith(b"\r\n\r\n"), "EOM headers length"
                    c["requests"].append(req)
                    req = b""
                    unterminated = False
                elif o["kind"] == "close":
                    c["closes"] += 1
                elif o["kind"] == "connectionException":
                    c["exceptions"].append(o["data"].decode(errors="replace"))
                    req = b""
                    unterminated = False
        conns[cid] = c
    return conns


def kafka_standin(standin, topic):
    """Starts sm-kafka-standin: one broker, topic with 3 partitions, gone with the test
    (stdin EOF, parent death). (process, bootstrap servers); bootstrap is None, and the
    line it printed is in process.first_line, when it did not start."""
    ks = subprocess.Popen([standin, "--brokers", "1", "--topic", topic + ":3", "--exit-on-eof",
                           "--die-with-parent"], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    ks.first_line = ks.stdout.readline().decode().strip()
    if not ks.first_line.startswith("bootstrap="):
        return ks, None
    return ks, ks.first_line[len("bootstrap="):]


def kcat_records(boot, topic):
    """Every record of the topic read with kcat: [(partition, key, value)] in partition order."""
    r = subprocess.run(["kcat", "-C", "-b", boot, "-t", topic, "-e", "-q", "-o", "beginning",
                        "-f", "%p\\n%k\\n%S\\n%s"], capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr
    out, i, recs = r.stdout, 0, []
    while i < len(out):
        nl = out.index(b"\n", i)
        part = int(out[i:nl])
        i = nl + 1
        nl = out.index(b"\n", i)
        key = out[i:nl].decode()
        i = nl + 1
        nl = out.index(b"\n", i)
        size = int(out[i:nl])
        i = nl + 1
        recs.append((part, key, out[i:i + size]))
        i += size
    return recs


def kafka_parsed(recs):
    """[(value, parsed TrafficStream)] of kcat_records() in their order, checking that
    the key is the connectionId and that each connection is in one partition."""
    parts, parsed = {}, []
    for part, key, value in recs:
        ts = parse_ts(value)
        assert ts["connectionId"] == key, "Kafka key is not the connectionId"
        parts.setdefault(key, set()).add(part)
        parsed.append((value, ts))
    assert all(len(p) == 1 for p in parts.values()), "a connection spread over partitions"
    return parsed
