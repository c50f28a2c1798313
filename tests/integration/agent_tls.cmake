# Capture agent TLS decryption with real clients/servers (openssl s_client,
# curl, Python ssl), tcpdump on lo, the pcap-file engine and the TLS filter.
add_executable(tls_dump ${CMAKE_CURRENT_SOURCE_DIR}/integration/tls/tls_dump.c)
sm_target_warnings(tls_dump)
target_link_libraries(tls_dump PRIVATE agent_capture agent_pipeline)
add_dependencies(tls_dump searchmig-agent)   # the script runs both
sm_script_test(tls_real_clients COMMAND /usr/bin/python3 ${CMAKE_CURRENT_SOURCE_DIR}/integration/tls/run_tls.py
               $<TARGET_FILE:tls_dump> $<TARGET_FILE:searchmig-agent> TIMEOUT 180)
set_tests_properties(tls_real_clients PROPERTIES RESOURCE_LOCK capture_lo)
# Record resynchronisation after capture gaps: packets dropped with scapy from
# a real tcpdump capture of keep-alive HTTPS connections (TLS 1.3/1.2, GCM and
# ChaCha20); the messages after each gap must come out exact.
sm_script_test(tls_capture_gaps COMMAND /usr/bin/python3 ${CMAKE_CURRENT_SOURCE_DIR}/integration/tls/run_tls_gaps.py
               $<TARGET_FILE:tls_dump> $<TARGET_FILE:searchmig-agent> TIMEOUT 180)
set_tests_properties(tls_capture_gaps PROPERTIES RESOURCE_LOCK capture_lo)
