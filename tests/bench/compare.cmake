# compare + report throughput over 120k generated tuples (figure in docs/compare.md)
sm_test(bench_compare SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/bench/bench_compare.c LIBS replay_core
        LABELS bench TIMEOUT 300)
