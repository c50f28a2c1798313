# Live capture overhead of the engines (label "bench": not run by default):
# wrk against a local keep-alive server with no capture, pcap, ebpf-tc and
# ebpf-socket in the same run. Run: ctest --test-dir <build> -R bench_engines
if(SM_WITH_EBPF)
  add_executable(bench_engines_httpd ${CMAKE_CURRENT_SOURCE_DIR}/bench/bench_engines_httpd.c)
  sm_target_warnings(bench_engines_httpd)
  target_link_libraries(bench_engines_httpd PRIVATE Threads::Threads)
  sm_script_test(bench_engines
    COMMAND /usr/bin/python3 ${CMAKE_CURRENT_SOURCE_DIR}/bench/bench_engines.py
    LABELS bench TIMEOUT 900)
  set_tests_properties(bench_engines PROPERTIES RESOURCE_LOCK capture_lo)
endif()
