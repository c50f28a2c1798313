#!/usr/bin/env bash
# The README's test command: installs what is missing, builds searchmig twice
# (gcc release build; clang build with AddressSanitizer + UndefinedBehaviorSanitizer
# and libFuzzer harnesses) and runs the whole ctest suite in each.
# Benchmarks (label "bench") are not part of it: run `ctest --test-dir build/release -L bench`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
jobs=$(nproc)
ctest_args=(--output-on-failure -j"$jobs" -LE bench --timeout 900)

echo "== release build (gcc, -Werror) =="
cmake -S . -B build/release -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build/release -j"$jobs"
ctest --test-dir build/release "${ctest_args[@]}"

echo "== sanitizer build (clang, ASan+UBSan, libFuzzer) =="
CC=clang cmake -S . -B build/asan -DCMAKE_BUILD_TYPE=Debug -DSM_SANITIZE=ON -DSM_FUZZ=ON >/dev/null
cmake --build build/asan -j"$jobs"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --test-dir build/asan "${ctest_args[@]}"
