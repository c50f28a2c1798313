#!/usr/bin/env bash
# The README's main-job command: installs what is missing, builds searchmig and
# runs a local demo on embedded defaults (files instead of Kafka, the fixture
# snapshot repository, local stand-in clusters). Output lands in ./out/demo.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
cmake -S . -B build/release -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build/release -j"$(nproc)" >/dev/null
bin=build/release
out=out/demo
rm -rf "$out" && mkdir -p "$out"
for t in agent rfs replay; do "$bin/$t/searchmig-$t" --version; done
