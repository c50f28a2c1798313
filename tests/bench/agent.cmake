# Offline throughput of searchmig-agent beside tcpflow and tshark on the same
# generated capture (500k HTTP transactions) in the same run; label "bench"
# (not run by default). Run: ctest --test-dir <build> -R bench_agent_offline -V
# Sizes: BENCH_TRANSACTIONS, BENCH_RUNS, BENCH_TSHARK_RUNS (see the script).
if(TARGET searchmig-agent)
  add_executable(bench_agent_offline_gen ${CMAKE_CURRENT_SOURCE_DIR}/bench/bench_agent_offline_gen.c)
  sm_target_warnings(bench_agent_offline_gen)
  sm_script_test(bench_agent_offline
    COMMAND /usr/bin/python3 ${CMAKE_CURRENT_SOURCE_DIR}/bench/bench_agent_offline.py
            $<TARGET_FILE:searchmig-agent> $<TARGET_FILE:bench_agent_offline_gen>
    LABELS bench TIMEOUT 1800)
endif()
