# Capture agent integration tests: pcaps made at test time (scapy, tcpdump +
# curl), live capture on loopback and across a veth pair in network namespaces.
add_executable(capture_dump ${CMAKE_CURRENT_SOURCE_DIR}/integration/capture/capture_dump.c)
sm_target_warnings(capture_dump)
target_link_libraries(capture_dump PRIVATE agent_capture Threads::Threads)

set(_capdir ${CMAKE_CURRENT_SOURCE_DIR}/integration/capture)
sm_script_test(capture_scapy_cases COMMAND /usr/bin/python3 ${_capdir}/run_cases.py TIMEOUT 120)
sm_script_test(capture_tcpdump_curl COMMAND /usr/bin/python3 ${_capdir}/run_real.py offline TIMEOUT 180)
sm_script_test(capture_live_lo COMMAND /usr/bin/python3 ${_capdir}/run_real.py live TIMEOUT 180)
sm_script_test(capture_live_netns COMMAND /usr/bin/python3 ${_capdir}/run_real.py netns TIMEOUT 180)
set_tests_properties(capture_scapy_cases capture_tcpdump_curl capture_live_lo capture_live_netns
                     PROPERTIES RESOURCE_LOCK capture_lo)
