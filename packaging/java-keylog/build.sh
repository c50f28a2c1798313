#!/bin/sh
# Builds the JSSE key log agent: build.sh OUTDIR
# -> OUTDIR/searchmig-keylog.jar (agent + AttachMain) and OUTDIR/searchmig-keylog-boot.jar
# (the hook class, appended to the bootstrap class path at run time; keep both jars together).
set -eu
src=$(cd "$(dirname "$0")" && pwd)
out=${1:?usage: build.sh OUTDIR}
mkdir -p "$out"
tmp=$(mktemp -d "$out/.jkl.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/boot" "$tmp/agent"
javac --release 17 -nowarn -d "$tmp/boot" "$src/boot/searchmig/keylog/boot/Hook.java"
javac -source 17 -target 17 -nowarn --add-exports java.base/jdk.internal.org.objectweb.asm=ALL-UNNAMED \
    -cp "$tmp/boot" -d "$tmp/agent" "$src"/src/searchmig/keylog/*.java
cat > "$tmp/manifest" <<MF
Premain-Class: searchmig.keylog.Agent
Agent-Class: searchmig.keylog.Agent
Can-Retransform-Classes: true
Can-Redefine-Classes: true
Main-Class: searchmig.keylog.AttachMain
MF
jar --create --file "$tmp/searchmig-keylog-boot.jar" -C "$tmp/boot" .
jar --create --file "$tmp/searchmig-keylog.jar" --manifest "$tmp/manifest" -C "$tmp/agent" .
chmod 0644 "$tmp"/*.jar
mv "$tmp/searchmig-keylog.jar" "$tmp/searchmig-keylog-boot.jar" "$out/"
