# Replay timing: requests spread over a few seconds of source time on several
# connections, replayed at speedups 1, 2 and 10 to a local C server that logs
# arrival times; generous bounds only (the precise figure is bench_replay's).
add_executable(bench_replay_httpd ${CMAKE_CURRENT_SOURCE_DIR}/bench/bench_replay_httpd.c)
sm_target_warnings(bench_replay_httpd)
target_link_libraries(bench_replay_httpd PRIVATE Threads::Threads)
add_executable(bench_replay_gen ${CMAKE_CURRENT_SOURCE_DIR}/bench/bench_replay_gen.c)
sm_target_warnings(bench_replay_gen)
target_link_libraries(bench_replay_gen PRIVATE sm_common)
sm_script_test(replay_timing
  COMMAND /usr/bin/python3 ${CMAKE_CURRENT_SOURCE_DIR}/integration/replay_timing/test_replay_timing.py
  LABELS integration TIMEOUT 120
  ENV "SM_REPLAY_HTTPD=$<TARGET_FILE:bench_replay_httpd>;SM_REPLAY_GEN=$<TARGET_FILE:bench_replay_gen>")
# A timing test: run it alone, not beside a libFuzzer session or another
# integration test of the parallel ctest run (it failed its 250 ms bound under
# a concurrent ASan fuzzer on the 2-core machine, with the old build as well).
set_tests_properties(replay_timing PROPERTIES RUN_SERIAL TRUE)
