#!/usr/bin/python3
"""Runs the README's demo (scripts/demo.sh) on this build and checks its
results: the target holds exactly the source's documents, every request the
clients sent during capture was captured and replayed, and the report exists
and agrees with the tuples."""
import json
import os
import subprocess
import sys
import tempfile

src = os.environ["SM_SOURCE_DIR"]
build = os.environ["SM_BINARY_DIR"]
if os.geteuid() != 0:
    print("SKIP: the demo captures live on loopback and needs root")
    sys.exit(77)
out = tempfile.mkdtemp(prefix="sm-demo-")
env = dict(os.environ, SM_DEMO_BUILD=build, SM_DEMO_OUT=out, SM_DEMO_SKIP_BUILD="1")
p = subprocess.run(["bash", os.path.join(src, "scripts", "demo.sh")], env=env, capture_output=True, text=True,
                   timeout=900)
print(p.stdout[-6000:])
failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        failures.append(what)


check(p.returncode == 0, f"demo.sh exit code 0 (got {p.returncode}): {p.stderr[-2000:]}")


def read(path):
    with open(path) as f:
        return f.read()


if p.returncode == 0:
    # the demo has stopped its stand-ins; it wrote their final state to final-state.json
    summary = json.loads(read(os.path.join(out, "work", "replay-summary.json")))
    before = int(read(os.path.join(out, "source-requests.before")).strip())
    after = int(read(os.path.join(out, "source-requests.after")).strip())
    during_capture = after - before
    check(summary["requests"] == during_capture,
          f"every request the clients sent was captured ({summary['requests']} of {during_capture})")
    check(summary["sent"] == summary["requests"] and summary["target_errors"] == 0,
          f"every captured request was replayed ({summary['sent']} of {summary['requests']})")
    check(summary["tuples"] == summary["requests"], "one tuple per request")
    report = json.loads(read(os.path.join(out, "work", "report.json")))
    total = report.get("total", report.get("tuples", -1))
    check(total == summary["tuples"], f"report covers every tuple ({total} vs {summary['tuples']})")
    html = read(os.path.join(out, "work", "report.html"))
    check("<svg" in html and "Match rate" in html, "HTML report has its charts")
    final = json.loads(read(os.path.join(out, "final-state.json")))
    check(final["source"] == final["target"], "target documents equal source documents, index by index")
    n = sum(len(v) for v in final["source"].values())
    check(n > 0, f"documents compared: {n}")
    treq = read(os.path.join(out, "target-requests.log"))
    check(" DELETE /.searchmig_backfill 200 " in treq,
          "searchmig backfill cleanup deleted the coordination index once the backfill was complete")
print(f"{0 if failures else 1} passed, {1 if failures else 0} failed")
sys.exit(1 if failures else 0)
