#!/bin/sh
# Stored-fields benchmark: our decoder vs Lucene's Java reader vs plain liblz4,
# on one index of >= 200 MB of _source-like JSON written by real Lucene
# (BEST_SPEED, Lucene87 LZ4 with preset dictionary). Single core (taskset).
#   bench_storedfields.sh BENCH_BIN [MB] [MODE]
# Run with: ctest --test-dir BUILD -L bench --output-on-failure
set -eu
BIN="$1"
MB="${2:-200}"
MODE="${3:-speed}"
J=/usr/share/java
JARS="$J/lucene-core-8.7.0.jar:$J/lucene-backward-codecs-8.7.0.jar"
OUT="${SM_BINARY_DIR:?}/bench-storedfields"
if ! command -v javac >/dev/null 2>&1 || [ ! -f "$J/lucene-core-8.7.0.jar" ]; then
    echo "SKIP: javac or liblucene8-java missing"; exit 77
fi
mkdir -p "$OUT/classes"
javac -nowarn -cp "$JARS" -d "$OUT/classes" "${SM_SOURCE_DIR:?}/tests/lucene-gen/GenIndex.java"
IDX="$OUT/index-$MODE-$MB"
if [ ! -f "$IDX/.done" ]; then
    rm -rf "$IDX"
    java -cp "$JARS:$OUT/classes" GenIndex write "$IDX" "$MODE" nocfs bench "$MB"
    touch "$IDX/.done"
fi
PIN=""
command -v taskset >/dev/null 2>&1 && PIN="taskset -c 0"
$PIN "$BIN" decode "$IDX" > "$OUT/c.txt"
$PIN "$BIN" lz4 "$IDX" > "$OUT/lz4.txt"
$PIN java -cp "$JARS:$OUT/classes" GenIndex bench "$IDX" > "$OUT/java.txt"
cat "$OUT/c.txt" "$OUT/lz4.txt" "$OUT/java.txt"
/usr/bin/python3 - "$OUT" "$IDX" <<'PY'
import sys, os
out, idx = sys.argv[1], sys.argv[2]
kv = {}
for f in ("c.txt", "lz4.txt"):
    for line in open(os.path.join(out, f)):
        k, v = line.split()
        kv[k] = float(v)
def java(kind):
    rows = [l.split() for l in open(os.path.join(out, "java.txt")) if l.startswith("java_" + kind + " ")]
    sec = min(float(l[6]) for l in rows)
    return float(rows[0][2]), float(rows[0][4]), sec
jd_docs, jd_bytes, jd_sec = java("doc")
js_docs, js_bytes, js_sec = java("seq")
size = sum(os.path.getsize(os.path.join(idx, f)) for f in os.listdir(idx) if f.endswith(".fdt"))
mb = kv["c_source_bytes"] / 1e6
rows = [("searchmig C decoder", kv["c_docs"] / kv["c_seconds"], mb / kv["c_seconds"], kv["c_seconds"]),
        ("Lucene Java, merge instance", js_docs / js_sec, js_bytes / 1e6 / js_sec, js_sec),
        ("Lucene Java, document(i)", jd_docs / jd_sec, jd_bytes / 1e6 / jd_sec, jd_sec),
        ("plain liblz4 (64 KiB blocks)", None, kv["lz4_bytes"] / 1e6 / kv["lz4_seconds"], kv["lz4_seconds"])]
print("\nindex %s: %.0f docs, %.1f MB of _source, .fdt %.1f MB" % (idx, kv["c_docs"], mb, size / 1e6))
print("%-30s %12s %12s %9s" % ("", "docs/s", "MB/s", "seconds"))
for name, dps, mbs, sec in rows:
    print("%-30s %12s %12.1f %9.3f" % (name, "%.0f" % dps if dps else "-", mbs, sec))
c_mbs = mb / kv["c_seconds"]
print("C vs Java merge instance: %.2fx; vs Java document(i): %.2fx; raw LZ4 / C: %.2fx; "
      "C peak RSS %.1f MiB"
      % (c_mbs / (js_bytes / 1e6 / js_sec), c_mbs / (jd_bytes / 1e6 / jd_sec),
         (kv["lz4_bytes"] / 1e6 / kv["lz4_seconds"]) / c_mbs, kv["c_peak_rss_kib"] / 1024))
PY
