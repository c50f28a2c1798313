# Benchmarks of the snapshot reader (label "bench": not run by default).
# Run: ctest --test-dir <build> -L bench --output-on-failure
add_executable(bench_storedfields ${CMAKE_CURRENT_SOURCE_DIR}/bench/bench_storedfields.c)
sm_target_warnings(bench_storedfields)
target_link_libraries(bench_storedfields PRIVATE rfs_lucene)
sm_script_test(bench_storedfields
  COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/bench/bench_storedfields.sh $<TARGET_FILE:bench_storedfields> 200 speed
  LABELS bench TIMEOUT 1800)
sm_script_test(bench_storedfields_compression
  COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/bench/bench_storedfields.sh $<TARGET_FILE:bench_storedfields> 200 compression
  LABELS bench TIMEOUT 1800)
