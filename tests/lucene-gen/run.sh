#!/bin/sh
# Writes a Lucene index with real Lucene (Debian liblucene8-java 8.7), dumps
# what Lucene reads back, and compares with our decoder.
#   run.sh compile                    compile GenIndex.java into $SM_BINARY_DIR/lucene-gen
#   run.sh check MODE CFS KIND TESTBIN   write + dump + compare (exit 77 if Java is missing)
#   run.sh check4 CFS TESTBIN       same with Lucene 4.10.4 (GenIndex4.java). Its jars
#       conflict with liblucene8-java, so they are never installed: taken from
#       $SM_LUCENE4_JARS (a directory), /usr/share/java, or $SM_BINARY_DIR/lucene4
#       (filled by `apt-get download liblucene4.10-java` + `dpkg-deb -x`).
set -eu
JARS="/usr/share/java/lucene-core-8.7.0.jar:/usr/share/java/lucene-backward-codecs-8.7.0.jar"
SRC="${SM_SOURCE_DIR:?}/tests/lucene-gen"
OUT="${SM_BINARY_DIR:?}/lucene-gen"
have_java() {
    command -v javac >/dev/null 2>&1 && command -v java >/dev/null 2>&1 &&
        [ -f /usr/share/java/lucene-core-8.7.0.jar ]
}
case "$1" in
compile)
    have_java || { echo "SKIP: javac or liblucene8-java missing"; exit 77; }
    mkdir -p "$OUT/classes"
    javac -nowarn -cp "$JARS" -d "$OUT/classes" "$SRC/GenIndex.java"
    ;;
check)
    have_java || { echo "SKIP: javac or liblucene8-java missing"; exit 77; }
    [ -f "$OUT/classes/GenIndex.class" ] || "$0" compile
    idx="$OUT/$4-$2-$3"
    rm -rf "$idx"
    java -cp "$JARS:$OUT/classes" GenIndex write "$idx" "$2" "$3" "$4"
    java -cp "$JARS:$OUT/classes" GenIndex dump "$idx" > "$idx.dump"
    "$5" "$idx" "$idx.dump"
    ;;
check4)
    command -v javac >/dev/null 2>&1 || { echo "SKIP: javac missing"; exit 77; }
    L4=""
    for d in "${SM_LUCENE4_JARS:-}" /usr/share/java "$SM_BINARY_DIR/lucene4/usr/share/java"; do
        if [ -n "$d" ] && [ -f "$d/lucene-core-4.10.4.jar" ]; then L4="$d"; break; fi
    done
    if [ -z "$L4" ]; then
        # one-time download of the Debian package (no install: it conflicts with Lucene 8)
        tmp="$SM_BINARY_DIR/lucene4-dl"
        rm -rf "$tmp" && mkdir -p "$tmp"
        if (cd "$tmp" && apt-get download liblucene4.10-java >/dev/null 2>&1) &&
           dpkg-deb -x "$tmp"/liblucene4.10-java_*.deb "$SM_BINARY_DIR/lucene4"; then
            L4="$SM_BINARY_DIR/lucene4/usr/share/java"
        else
            echo "SKIP: Lucene 4.10 jars unavailable (set SM_LUCENE4_JARS)"; exit 77
        fi
    fi
    CP4="$L4/lucene-core-4.10.4.jar:$L4/lucene-analyzers-common-4.10.4.jar"
    mkdir -p "$OUT/classes4"
    javac -nowarn -cp "$CP4" -d "$OUT/classes4" "$SRC/GenIndex4.java"
    idx="$OUT/lucene4-$2"
    rm -rf "$idx"
    java -cp "$CP4:$OUT/classes4" GenIndex4 write "$idx" "$2"
    java -cp "$CP4:$OUT/classes4" GenIndex4 dump "$idx" > "$idx.dump"
    "$3" "$idx" "$idx.dump"
    ;;
*)
    echo "usage: $0 compile | check MODE CFS KIND TESTBIN | check4 CFS TESTBIN" >&2
    exit 2
    ;;
esac
