#!/usr/bin/python3
"""searchmig-replay compare/report end to end.

1. `compare` on a hand-written tuple fixture (MA layout, gzip): exact class
   counts, annotated tuples, a user rules file.
2. A live replay against the target stand-in with the comparator plugged in:
   every tuple carries "comparison", the summary counts agree with them.
3. `report` on those tuples: the HTML is checked structurally (each chart and
   table present, every number equal to the JSON figures, nothing external)
   and rendered by headless Chromium to a PNG that must not be blank.
Exit 77 only when Chromium cannot start."""
import base64
import glob
import gzip
import html.parser
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import zlib

SRC = os.environ.get("SM_SOURCE_DIR", os.path.abspath(os.path.join(os.path.dirname(__file__), "../../..")))
BIN = os.environ.get("SM_BINARY_DIR", os.path.join(SRC, "build"))
REPLAY = os.path.join(BIN, "replay", "searchmig-replay")
STANDIN = os.path.join(SRC, "tests", "standins", "target", "target_standin.py")
FIXTURE = os.path.join(SRC, "tests", "fixtures", "compare", "tuples-000001.log.gz")
TMP = tempfile.mkdtemp(prefix="sm-report-")
FAILS = []


def check(cond, msg):
    if not cond:
        FAILS.append(msg)
        print("FAIL:", msg)
    return cond


def run(args, **kw):
    p = subprocess.run([REPLAY] + args, capture_output=True, text=True, timeout=300, **kw)
    if p.returncode != 0:
        print(p.stdout, p.stderr)
    return p


def read_lines(pattern):
    out = []
    for fn in sorted(glob.glob(pattern)):
        op = gzip.open if fn.endswith(".gz") else open
        with op(fn, "rt") as f:
            out += [json.loads(x) for x in f if x.strip()]
    return out


# ---------------------------------------------------------------- 1. fixture
def test_fixture():
    fig = os.path.join(TMP, "fixture.json")
    ann = os.path.join(TMP, "annotated.log.gz")
    p = run(["compare", FIXTURE, "--json", fig, "--tuples-out", ann])
    check(p.returncode == 0, "compare exit code")
    f = json.load(open(fig))
    check(f["classes"] == {"same": 11, "status": 2, "body": 3, "target_error": 2, "no_source": 1},
          f"fixture classes {f['classes']}")
    check("match rate 61.1%" in p.stdout, "terminal summary shows the match rate")
    check("GET /{index}/_doc/{id}" in p.stdout, "terminal summary lists endpoints")
    tuples = read_lines(ann)
    check(len(tuples) == 19, "annotated tuples written")
    by = {}
    for t in tuples:
        check("sourceRequest" in t and "targetResponses" in t, "MA keys kept")
        by.setdefault(t["comparison"]["result"], []).append(t)
    bulk = [t for t in by["body"] if t["comparison"]["endpoint"] == "POST /_bulk"]
    check(len(bulk) == 1, "bulk tuple differs")
    paths = [d["path"] for d in bulk[0]["comparison"]["differences"]]
    check(paths == ["/errors", "/items/1/index/result", "/items/1/index/status", "/items/1/index/error"],
          f"bulk differences {paths}")
    # a rules file turns the missing search hit and the bulk rejection into noise
    rules = os.path.join(TMP, "rules.txt")
    with open(rules, "w") as fh:
        fh.write("[POST /{index}/_search]\nignore /hits\n[POST /_bulk]\nignore errors\nignore /items/*/index\n")
    fig2 = os.path.join(TMP, "fixture2.json")
    p = run(["compare", FIXTURE, "--rules", rules, "--json", fig2, "--quiet"])
    f2 = json.load(open(fig2))
    check(p.stdout == "", "--quiet prints nothing")
    check(f2["classes"]["same"] == 14 and f2["classes"]["body"] == 0, f"rules applied {f2['classes']}")
    # noise learning: a second replay whose search results differ from the first in the same way
    second = os.path.join(TMP, "second.log")
    with open(second, "w") as fh:
        for t in read_lines(FIXTURE):
            if t["sourceRequest"]["Request-URI"] == "/books/_search" and t["targetResponses"]:
                t["targetResponses"][0]["payload"]["inlinedJsonBody"]["hits"]["total"] = 7
            fh.write(json.dumps(t) + "\n")
    fig3 = os.path.join(TMP, "fixture3.json")
    p = run(["compare", FIXTURE, "--learn-noise", second, "--json", fig3, "--quiet"])
    f3 = json.load(open(fig3))
    check({"endpoint": "POST /{index}/_search", "path": "/hits/total"} in f3.get("learned_noise", []),
          f"learned noise {f3.get('learned_noise')}")
    # bounded: with --learn-noise-max 1 only the first tuple of the second replay is held (not the
    # search), so nothing is learned, and the log says how many were left out
    fig4 = os.path.join(TMP, "fixture4.json")
    p = run(["compare", FIXTURE, "--learn-noise", second, "--learn-noise-max", "1", "--json", fig4, "--quiet"])
    f4 = json.load(open(fig4))
    check(p.returncode == 0 and not f4.get("learned_noise"), f"learned with max 1: {f4.get('learned_noise')}")
    check("more left out (--learn-noise-max)" in p.stderr, f"left-out count logged: {p.stderr[-300:]}")
    p = run(["compare", FIXTURE, "--learn-noise", second, "--learn-noise-max", "0", "--quiet"])
    check(p.returncode == 2 and "--learn-noise-max 0" in p.stderr, "--learn-noise-max 0 refused")
    # bad arguments
    p = run(["report", FIXTURE])
    check(p.returncode == 2 and "--html" in p.stderr, "report without --html is refused")
    # an empty tuples directory: an empty report (qsort of its NULL file list was undefined behaviour)
    empty = os.path.join(TMP, "no-tuples")
    os.makedirs(empty, exist_ok=True)
    p = run(["report", empty, "--html", os.path.join(TMP, "empty.html")])
    check(p.returncode == 0 and os.path.getsize(os.path.join(TMP, "empty.html")) > 0,
          f"report of an empty directory: rc {p.returncode} {p.stderr[-300:]}")


# ---------------------------------------------------------------- 2. live replay
def pb_module():
    subprocess.run(["protoc", "--python_out", TMP, "-I", os.path.join(SRC, "common", "proto"), "-I", "/usr/include",
                    os.path.join(SRC, "common", "proto", "TrafficCaptureStream.proto")], check=True)
    sys.path.insert(0, TMP)
    import TrafficCaptureStream_pb2 as pb
    return pb


def build_records(pb):
    t0 = 1_700_000_000
    s = pb.TrafficStream()
    s.connectionId = "c1"
    s.nodeId = "source-node-1"
    s.numberOfThisLastChunk = 1
    t = [0.0]

    def exchange(method, path, body, status, resp_body, ctype="application/json"):
        b = json.dumps(body).encode() if body is not None else b""
        head = f"{method} {path} HTTP/1.1\r\nHost: source:9200\r\n"
        if body is not None:
            head += f"Content-Type: {ctype}\r\nContent-Length: {len(b)}\r\n"
        head += "\r\n"
        for kind, data in (("read", head.encode() + b), ("eom", None), ("write", None)):
            o = s.subStream.add()
            o.ts.seconds = int(t0 + t[0])
            o.ts.nanos = int((t[0] % 1) * 1e9)
            if kind == "read":
                o.read.data = data
            elif kind == "eom":
                o.endOfMessageIndicator.firstLineByteLength = head.index("\r\n") + 2
                o.endOfMessageIndicator.headersByteLength = len(head)
            else:
                rb = json.dumps(resp_body).encode()
                o.write.data = (f"HTTP/1.1 {status} X\r\ncontent-type: application/json; charset=UTF-8\r\n"
                                f"content-length: {len(rb)}\r\n\r\n").encode() + rb
                t[0] += 0.01
            t[0] += 0.005

    exchange("PUT", "/idx1", {"settings": {"number_of_shards": 1}}, 200,
             {"acknowledged": True, "shards_acknowledged": True, "index": "idx1"})
    for i in range(1, 4):
        exchange("PUT", f"/idx1/_doc/{i}?refresh=true", {"title": f"doc {i}", "n": i}, 201,
                 {"_index": "idx1", "_type": "_doc", "_id": str(i), "_version": 1, "result": "created",
                  "forced_refresh": True, "_shards": {"total": 2, "successful": 1, "failed": 0},
                  "_seq_no": i + 40, "_primary_term": 3})
    for i in range(1, 4):
        exchange("GET", f"/idx1/_doc/{i}", None, 200,
                 {"_index": "idx1", "_type": "_doc", "_id": str(i), "_version": 1, "_seq_no": i + 40,
                  "_primary_term": 3, "found": True, "_source": {"title": f"doc {i}", "n": i}})
    # the source had a document the target has not: status differs
    exchange("GET", "/idx1/_doc/99", None, 200, {"_index": "idx1", "_id": "99", "found": True, "_source": {}})
    # a search whose source result had one more document: body differs
    exchange("POST", "/idx1/_search", {"query": {"match_all": {}}}, 200,
             {"took": 5, "timed_out": False, "_shards": {"total": 5, "successful": 5, "skipped": 0, "failed": 0},
              "hits": {"total": 4, "max_score": 1.0, "hits": [
                  {"_index": "idx1", "_type": "_doc", "_id": str(i), "_score": 1.0,
                   "_source": {"title": f"doc {i}", "n": i}} for i in (3, 2, 1, 4)]}})
    o = s.subStream.add()
    o.ts.seconds = int(t0 + t[0])
    o.close.SetInParent()
    return [base64.b64encode(s.SerializeToString()).decode()]


def start_standin():
    portfile = os.path.join(TMP, "port")
    proc = subprocess.Popen(["/usr/bin/python3", STANDIN, "--port", "0", "--port-file", portfile,
                             "--flavor", "opensearch-2.11"], stdout=subprocess.DEVNULL)
    for _ in range(100):
        if os.path.exists(portfile) and open(portfile).read().strip():
            break
        time.sleep(0.1)
    return proc, "http://127.0.0.1:" + open(portfile).read().strip()


def test_live():
    pb = pb_module()
    inp = os.path.join(TMP, "records.log")
    with open(inp, "w") as fh:
        fh.write("\n".join(build_records(pb)) + "\n")
    proc, url = start_standin()
    try:
        tuples = os.path.join(TMP, "tuples")
        summary = os.path.join(TMP, "summary.json")
        p = run(["--input", inp, "--target", url, "--speedup-factor", "0", "--workers", "2",
                 "--index-rename", "idx1=idx2", "--tuples-dir", tuples, "--summary-json", summary])
        check(p.returncode == 0, "replay exit code")
        check("comparison" in p.stderr and "same" in p.stderr, "replay summary prints comparison counts")
    finally:
        proc.terminate()
        proc.wait()
    s = json.load(open(summary))
    lines = read_lines(os.path.join(tuples, "tuples-*"))
    check(len(lines) == 9, f"{len(lines)} tuples")
    counts = {}
    for t in lines:
        c = t.get("comparison")
        if not check(c is not None and isinstance(t.get("replayedAtMs"), int), "tuple has comparison and time"):
            continue
        counts[c["result"]] = counts.get(c["result"], 0) + 1
        uri = t["sourceRequest"]["Request-URI"]
        if uri.startswith("/idx1/_doc/") and t["sourceRequest"]["Method"] == "GET":
            want = "status" if uri.endswith("/99") else "same"
            check(c["result"] == want, f"{uri}: {c['result']} {c.get('differences')}")
        if uri == "/idx1/_search":
            paths = [d["path"] for d in c["differences"]]
            check(c["result"] == "body" and "/hits/total" in paths and "/hits/hits/3" in paths,
                  f"search differences {paths}")
    check(s.get("comparison", {}).get("same") == counts.get("same"), f"summary comparison {s.get('comparison')}")
    check(counts.get("same", 0) >= 7, f"live classes {counts}")
    return tuples


# ---------------------------------------------------------------- 3. report
class Page(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.ids = {}
        self.stack = []
        self.cells = []          # (table id, attrs)
        self.rows = []           # (table id, attrs)
        self.rects = []
        self.polylines = []
        self.bad = []
        self.text = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if "id" in a:
            self.ids[a["id"]] = tag
        table = next((x for x in reversed(self.stack) if x[0] in ("table", "svg") and x[1]), (None, None))[1]
        if tag in ("td", "div") and "data-value" in a:
            self.cells.append((table, a))
        if tag == "tr":
            self.rows.append((table, a))
        if tag == "rect" and a.get("class") == "tp":
            self.rects.append(a)
        if tag == "polyline":
            self.polylines.append(a)
        if tag in ("script", "link", "img", "iframe", "object") or "src" in a or "href" in a:
            self.bad.append(tag)
        if tag not in ("meta", "br", "rect", "line", "polyline", "input"):
            self.stack.append((tag, a.get("id")))

    def handle_endtag(self, tag):
        for i in range(len(self.stack) - 1, -1, -1):
            if self.stack[i][0] == tag:
                del self.stack[i:]
                break

    def handle_data(self, data):
        self.text.append(data)


def png_pixels(path):
    data = open(path, "rb").read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, w = 8, b"", 0
    while pos < len(data):
        n, typ = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        if typ == b"IHDR":
            w, h, depth, ctype = struct.unpack(">IIBB", body[:10])
            assert depth == 8 and ctype in (2, 6), (depth, ctype)
            bpp = 3 if ctype == 2 else 4
        elif typ == b"IDAT":
            idat += body
        pos += 12 + n
    raw = zlib.decompress(idat)
    stride = w * bpp
    prev = bytearray(stride)
    rows = []
    for y in range(h):
        f = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b = prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            if f == 1:
                line[i] = (line[i] + a) & 255
            elif f == 2:
                line[i] = (line[i] + b) & 255
            elif f == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(bytes(line))
        prev = line
    return w, h, bpp, rows


def test_report(tuples):
    out_html = os.path.join(TMP, "report.html")
    out_json = os.path.join(TMP, "figures.json")
    # the live tuples plus the fixture, so every section has content
    p = run(["report", tuples, FIXTURE, "--html", out_html, "--json", out_json, "--index-rename", "idx1=idx2"])
    check(p.returncode == 0, "report exit code")
    f = json.load(open(out_json))
    doc = open(out_html, encoding="utf-8").read()
    pg = Page()
    pg.feed(doc)
    for i in ("match-rate", "classes", "chart-classes", "status-matrix", "chart-latency-cdf", "latency-overall",
              "latency-endpoints", "top-differing", "errors", "chart-throughput"):
        check(i in pg.ids, f"section {i} present")
    check(not pg.bad, f"no external resources or scripts: {pg.bad}")
    check("url(" not in doc and "@import" not in doc, "no CSS fetches")
    check(f["tuples"] == 28, f"report tuples {f['tuples']}")
    # match rate
    mr = [a for t, a in pg.cells if a.get("id") == "match-rate"]
    check(mr and mr[0]["data-value"] == "%.4f" % f["match_rate"], "match rate equals JSON")
    # classes
    rows = [a.get("data-class") for t, a in pg.rows if t == "classes" and a.get("data-class")]
    vals = [a["data-value"] for t, a in pg.cells if t == "classes"]
    cls = dict(zip(rows, vals))
    check(cls == {k: str(v) for k, v in f["classes"].items()}, f"classes table {cls}")
    # status matrix
    m = f["status_matrix"]
    want = {}
    for i, s in enumerate(m["source"]):
        for j, t in enumerate(m["target"]):
            want[(str(s), str(t))] = str(m["counts"][i][j])
    got = {(a["data-source"], a["data-target"]): a["data-value"] for t, a in pg.cells if t == "status-matrix"}
    check(got == want and sum(int(v) for v in got.values()) == f["tuples"], f"status matrix {got} vs {want}")
    # latency: overall and per endpoint
    lat = f["latency"]
    overall = [a for t, a in pg.cells if t == "latency-overall"]
    for side in ("source", "target"):
        for q in ("p50", "p90", "p99"):
            check(any(a["class"].endswith(" " + q) and a["data-value"] == str(lat[side][q]) for a in overall),
                  f"overall {side} {q}")
    check(len([pl for pl in pg.polylines if pl.get("class") in ("cdf-source", "cdf-target")]) == 2,
          "CDF has source and target lines")
    ep_rows = [a["data-endpoint"] for t, a in pg.rows if t == "latency-endpoints" and "data-endpoint" in a]
    ep_cells = [a for t, a in pg.cells if t == "latency-endpoints"]
    per_row = len(ep_cells) // max(1, len(ep_rows))
    check(ep_rows == [e["endpoint"] for e in f["endpoints"]][:50], "endpoint rows in JSON order")
    keymap = {"count": lambda e: e["count"], "sp50": lambda e: e["source"]["p50"], "sp90": lambda e: e["source"]["p90"],
              "sp99": lambda e: e["source"]["p99"], "tp50": lambda e: e["target"]["p50"],
              "tp90": lambda e: e["target"]["p90"], "tp99": lambda e: e["target"]["p99"],
              "r50": lambda e: e["ratio_p50"], "r90": lambda e: e["ratio_p90"], "r99": lambda e: e["ratio_p99"]}
    for r, e in enumerate(f["endpoints"][:50]):
        cells = ep_cells[r * per_row:(r + 1) * per_row]
        for c in cells:
            k = c["class"].split()[1]
            if k == "match":
                check(c["data-value"] == "%.4f" % e["match_rate"], f"{e['endpoint']} match")
                continue
            v = keymap[k](e)
            exp = "" if v is None else ("%.2f" % v if k.startswith("r") else str(v))
            check(c["data-value"] == exp, f"{e['endpoint']} {k}: {c['data-value']} != {exp}")
    # top differing
    td_rows = [a["data-endpoint"] for t, a in pg.rows if t == "top-differing" and "data-endpoint" in a]
    check(td_rows == [e["endpoint"] for e in f["top_differing"]] and td_rows, f"top differing {td_rows}")
    tdc = [a for t, a in pg.cells if t == "top-differing" and "differing" in a["class"]]
    check([c["data-value"] for c in tdc] == [str(e["differing"]) for e in f["top_differing"]], "differing counts")
    check(doc.count('<table class="diff">') == sum(len(e["examples"]) for e in f["top_differing"]),
          "one side-by-side table per example")
    # errors
    errc = [a["data-value"] for t, a in pg.cells if t == "errors"]
    check(errc == [str(e["count"]) for e in f["errors"]] and errc, f"errors {errc}")
    # throughput
    check([r["data-value"] for r in pg.rects] == [str(c) for c in f["throughput"]["counts"]] and pg.rects,
          "throughput bars equal JSON")
    return out_html


def test_render(out_html):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if not chromium:
        print("SKIP: chromium not installed")
        return 77
    png = os.path.join(TMP, "report.png")
    prof = tempfile.mkdtemp(prefix="sm-chromium-")
    try:
        p = subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                            "--no-first-run", "--disable-background-networking", "--disable-component-update",
                            "--disable-sync", "--user-data-dir=" + prof, "--screenshot=" + png,
                            "--window-size=1280,2000", "file://" + out_html],
                           capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as e:
        print("SKIP: chromium cannot start:", e)
        return 77
    finally:
        shutil.rmtree(prof, ignore_errors=True)
    if not os.path.exists(png):
        if p.returncode != 0:
            print("SKIP: chromium cannot start:", p.stderr[-2000:])
            return 77
        check(False, "chromium wrote no screenshot")
        return 1
    check(p.returncode == 0, f"chromium exit {p.returncode}: {p.stderr[-1000:]}")
    w, h, bpp, rows = png_pixels(png)
    check((w, h) == (1280, 2000), f"screenshot size {w}x{h}")
    colors = set()
    nonwhite = 0
    for y in range(0, h, 4):
        row = rows[y]
        for x in range(0, w, 4):
            px = row[x * bpp:x * bpp + 3]
            colors.add(px)
            if px != b"\xff\xff\xff":
                nonwhite += 1
    total = (h // 4) * (w // 4)
    check(len(colors) > 20, f"screenshot has {len(colors)} colours")
    check(nonwhite > total * 0.03, f"screenshot mostly blank ({nonwhite}/{total} non-white)")
    print("rendered", png, len(colors), "colours", nonwhite, "non-white samples")
    return 0


def main():
    test_fixture()
    tuples = test_live()
    out_html = test_report(tuples)
    rc = test_render(out_html)
    if FAILS:
        print(f"{len(FAILS)} checks failed")
        return 1
    if rc == 77:
        return 77
    print("all checks passed")
    if not os.environ.get("SM_KEEP_TMP"):
        shutil.rmtree(TMP, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
