#!/bin/bash
# Cross-checks the expected document sets against real Lucene: each shard is
# restored with `searchmig-rfs restore-shard` and read by Debian's Lucene
# (8.7 for ES 6.8/7.10, 4.10 for ES 1.x) through LuceneDocs*.java; the result
# must equal tests/fixtures/expected/*.tsv (which `docs` is tested against).
# Skips (77) without javac or the Lucene 8 jars. The Lucene 4.10 part runs only
# when liblucene4.10-java is installed (it conflicts with liblucene8-java, so
# usually it is not; the ES 1.x sets were checked with it once, see
# tests/fixtures/expected/README.md).
set -euo pipefail
RFS=$1
SRC=$2
FIX=$SRC/tests/fixtures/snapshots
EXP=$SRC/tests/fixtures/expected
J8="/usr/share/java/lucene-core-8.7.0.jar:/usr/share/java/lucene-backward-codecs-8.7.0.jar"
J4="/usr/share/java/lucene-core-4.10.4.jar"
command -v javac >/dev/null || { echo "SKIP: no javac"; exit 77; }
for j in ${J8//:/ }; do [ -f "$j" ] || { echo "SKIP: $j missing"; exit 77; }; done
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
javac -d "$TMP/c8" -cp "$J8" "$SRC/tests/integration/rfs/LuceneDocs.java"

# fixture snapshot class indices... (index:shards)
check() {
    local fixture=$1 snap=$2 cls=$3 cp=$4; shift 4
    local out=$TMP/$fixture.$snap.tsv
    : > "$out.unsorted"
    for spec in "$@"; do
        local index=${spec%%:*} shards=${spec##*:}
        for ((s = 0; s < shards; s++)); do
            local d=$TMP/r/$fixture/$snap/$index/$s
            mkdir -p "$d"
            "$RFS" restore-shard --repo "$FIX/$fixture" --snapshot "$snap" --index "$index" --shard $s --dest "$d"
            java -cp "$cp" "$cls" "$d" "$index" >> "$out.unsorted"
        done
    done
    LC_ALL=C sort "$out.unsorted" > "$out"
    LC_ALL=C sort "$EXP/$fixture.$snap.tsv" > "$out.expected"
    if ! cmp -s "$out" "$out.expected"; then
        echo "FAIL: $fixture/$snap: real Lucene disagrees with the expected set"
        diff "$out.expected" "$out" | head -20
        exit 1
    fi
    echo "ok   $fixture/$snap: $(wc -l < "$out") documents"
}
check ES_6_8_Single global_state_snapshot LuceneDocs "$TMP/c8:$J8" posts_2023_02_25:1 posts_2024_01_01:1
check ES_7_10_Single global_state_snapshot LuceneDocs "$TMP/c8:$J8" posts_2023_02_25:1 posts_2024_01_01:1
check ES_7_10_Updates_Deletes_w_Soft rfs_snapshot LuceneDocs "$TMP/c8:$J8" test_updates_deletes:1
if [ ! -f "$J4" ]; then
    echo "note: $J4 absent, ES 1.x fixtures not cross-checked in this run"
    exit 0
fi
javac -d "$TMP/c4" -cp "$J4" "$SRC/tests/integration/rfs/LuceneDocs4.java"
check ES_1_7_5 test_1 LuceneDocs4 "$TMP/c4:$J4" index-1.7.5:1
check ES_1_7_4_compressed snap1x LuceneDocs4 "$TMP/c4:$J4" idx:5
check ES_1_7_4_compressed snap1x_uncompressed LuceneDocs4 "$TMP/c4:$J4" idx:5
