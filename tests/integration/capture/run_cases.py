#!/usr/bin/python3
"""Crafted pcaps (scapy) through the pcap-file engine: the reassembled byte
streams, gap sizes, close reasons and mid-stream flags must match what
gen_cases.py says was sent."""
import json
import os
import shutil
import subprocess
import sys
import tempfile

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import capcommon  # noqa: E402


def main():
    try:
        import scapy  # noqa: F401
    except ImportError:
        print("SKIP: python3-scapy not installed")
        return 77
    work = tempfile.mkdtemp(prefix="sm-capcases-")
    try:
        here = os.path.dirname(os.path.abspath(__file__))
        subprocess.run(["/usr/bin/python3", os.path.join(here, "gen_cases.py"), work], check=True)
        with open(os.path.join(work, "cases.json")) as f:
            cases = json.load(f)
        failures = 0
        for name, case in sorted(cases.items()):
            out = os.path.join(work, "out-" + name)
            r = capcommon.run_dump(["--engine", "pcap-file", "--file", os.path.join(work, case["pcap"]),
                                    "--port", "9200"], out)
            errs = []
            if r.returncode != 0:
                errs.append("capture_dump exit %d" % r.returncode)
            else:
                # connections by client port, in the order they were opened
                # (a port reused by a later connection has several)
                got, ngot = {}, 0
                for cid, c in sorted(capcommon.read_result(out).items()):
                    got.setdefault(c["cport"], []).append(c)
                    ngot += 1
                if ngot != len(case["conns"]):
                    errs.append("%d connections, expected %d" % (ngot, len(case["conns"])))
                for e in case["conns"]:
                    g = got[e["cport"]].pop(0) if got.get(e["cport"]) else None
                    if not g:
                        errs.append("connection from port %d missing" % e["cport"])
                        continue
                    for d in ("c2s", "s2c"):
                        want = bytes.fromhex(e[d])
                        if g[d] != want:
                            errs.append("%s: %d bytes differ from the %d expected (first diff at %s)" % (
                                d, len(g[d]), len(want),
                                next((i for i, (a, b) in enumerate(zip(g[d], want)) if a != b), "end")))
                        if g["gap_" + d] != e["gap_" + d]:
                            errs.append("%s: gap bytes %d, expected %d" % (d, g["gap_" + d], e["gap_" + d]))
                    if g["close"] != e["close"]:
                        errs.append("close %s, expected %s" % (g["close"], e["close"]))
                    if g["mid"] != e["mid"]:
                        errs.append("mid_stream %s, expected %s" % (g["mid"], e["mid"]))
                st = capcommon.read_stats(out)
                if name == "overlap" and st["overlap_diff_bytes"] == 0:
                    errs.append("overlap with different bytes not counted")
                if name == "retrans" and st["retransmissions"] == 0:
                    errs.append("retransmissions not counted")
                if name == "port_reuse" and st["flows_replaced"] != 1:
                    errs.append("flows_replaced %d, expected 1" % st["flows_replaced"])
                if name == "stray_rst" and st["rst_ignored"] != 2:
                    errs.append("rst_ignored %d, expected 2" % st["rst_ignored"])
                if name == "reorder" and st["ooo_segments"] == 0:
                    errs.append("out-of-order segments not counted")
            print("%s %s%s" % ("FAIL" if errs else "ok  ", name, (": " + "; ".join(errs)) if errs else ""))
            failures += bool(errs)
        print("%d cases, %d failed" % (len(cases), failures))
        return 1 if failures else 0
    finally:
        if os.environ.get("SM_KEEP_TMP"):
            print("kept", work)
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
