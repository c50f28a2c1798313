# searchmig-agent end to end: capture files made at test time with tcpdump + curl,
# cross-checked with tshark; live capture on lo stopped with SIGTERM. Needs root
# (exits 77 without it).
sm_script_test(agent_capture_pcap
  COMMAND /usr/bin/python3 ${CMAKE_SOURCE_DIR}/tests/integration/agent/capture_pcap_test.py
          $<TARGET_FILE:searchmig-agent>
  LABELS integration
  TIMEOUT 300)
# its live parts capture on lo with every engine: not beside other tests that do
# (an eBPF engine starting on lo removes filters it takes for stale ones)
set_tests_properties(agent_capture_pcap PROPERTIES RESOURCE_LOCK capture_lo)
# crafted capture files (scapy): lost segment, mid-stream join, upgrade, filters
sm_script_test(agent_crafted_pcap
  COMMAND /usr/bin/python3 ${CMAKE_SOURCE_DIR}/tests/integration/agent/crafted_pcap_test.py
          $<TARGET_FILE:searchmig-agent>
  LABELS integration
  TIMEOUT 120)
# agent -> Kafka stand-in (librdkafka mock cluster) -> kcat: same records as the file output.
# Skipped when sm-kafka-standin (tests/standins/kafka.cmake) or kcat is missing.
sm_script_test(agent_kafka_e2e
  COMMAND /usr/bin/python3 ${CMAKE_SOURCE_DIR}/tests/integration/agent/kafka_e2e_test.py
          $<TARGET_FILE:searchmig-agent> ${CMAKE_BINARY_DIR}/tests/sm-kafka-standin
  LABELS integration
  TIMEOUT 180)
