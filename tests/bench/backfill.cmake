# Backfill benchmark (label bench): end-to-end docs/s and MB/s into a sink
# that discards bulk bodies (bench_backfill_sink.c, coordination requests
# forwarded to the target stand-in) vs decode-only speed (bench_backfill_decode.c:
# the reader's document iterator alone over the same shards), 1 and 2 workers,
# on a 4-shard snapshot of real Lucene 8.7 indices (bench_backfill_corpus.py,
# cached in the build directory). Figures in docs/backfill.md.
add_executable(bench_backfill_sink ${CMAKE_CURRENT_LIST_DIR}/bench_backfill_sink.c)
sm_target_warnings(bench_backfill_sink)
target_link_libraries(bench_backfill_sink PRIVATE Threads::Threads)
add_executable(bench_backfill_decode ${CMAKE_CURRENT_LIST_DIR}/bench_backfill_decode.c)
sm_target_warnings(bench_backfill_decode)
target_link_libraries(bench_backfill_decode PRIVATE rfs_core Threads::Threads)
sm_script_test(bench_backfill
  COMMAND /usr/bin/python3 ${CMAKE_CURRENT_LIST_DIR}/bench_backfill.py
  ENV "SM_BENCH_SINK=$<TARGET_FILE:bench_backfill_sink>;SM_BENCH_DECODE=$<TARGET_FILE:bench_backfill_decode>"
  LABELS bench TIMEOUT 600)
