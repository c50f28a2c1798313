#!/bin/sh
# test_lucene_gen.sh KIND CFS TESTBIN: writes an index with real Lucene 8.7
# (tests/lucene-gen/GenIndex.java, compiled by the lucene_gen_compile test),
# dumps what Lucene reads, and runs TESTBIN INDEX DUMP. Exit 77 without Java.
set -eu
J=/usr/share/java
CLASSES="${SM_BINARY_DIR:?}/lucene-gen/classes"
CP="$J/lucene-core-8.7.0.jar:$J/lucene-backward-codecs-8.7.0.jar:$CLASSES"
if ! command -v java >/dev/null 2>&1 || [ ! -f "$J/lucene-core-8.7.0.jar" ] ||
   [ ! -f "$CLASSES/GenIndex.class" ]; then
    echo "SKIP: java, liblucene8-java or the compiled generator missing"
    exit 77
fi
out="$SM_BINARY_DIR/lucene-gen-iter"
d="$out/$1-$2"
mkdir -p "$out"
rm -rf "$d"
java -cp "$CP" GenIndex write "$d" speed "$2" "$1"
java -cp "$CP" GenIndex dump "$d" > "$d.dump"
exec "$3" "$d" "$d.dump"
