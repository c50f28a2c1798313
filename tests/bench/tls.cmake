# TLS decryption speed (label "bench": not run by default): offline MB/s of
# plaintext decrypted by searchmig-agent beside `openssl speed -evp`, and live
# overhead with wrk against a local HTTPS server, in the same run.
# Run: ctest --test-dir <build> -R bench_tls -V  (sizes: see bench_tls.py)
if(TARGET searchmig-agent)
  find_package(OpenSSL QUIET)
  if(OpenSSL_FOUND)
    add_executable(bench_tls_httpd ${CMAKE_CURRENT_SOURCE_DIR}/bench/bench_tls_httpd.c)
    sm_target_warnings(bench_tls_httpd)
    target_link_libraries(bench_tls_httpd PRIVATE OpenSSL::SSL OpenSSL::Crypto Threads::Threads)
    # tls_dump (tests/integration/agent_tls.cmake): capture + decryption alone
    sm_script_test(bench_tls
      COMMAND /usr/bin/python3 ${CMAKE_CURRENT_SOURCE_DIR}/bench/bench_tls.py
              $<TARGET_FILE:searchmig-agent> $<TARGET_FILE:bench_tls_httpd> $<TARGET_FILE:tls_dump>
      LABELS bench TIMEOUT 900)
    set_tests_properties(bench_tls PROPERTIES RESOURCE_LOCK capture_lo)
  endif()
endif()
