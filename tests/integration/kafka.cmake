# searchmig-replay with Kafka input against sm-kafka-standin and the target stand-in (docs/kafka.md).
sm_test(test_replay_kafka SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/integration/kafka/test_replay_kafka.c
        LIBS sm_common LABELS integration TIMEOUT 120 ARGS test_replay_kafka_single
        ENV SM_KAFKA_STANDIN=$<TARGET_FILE:sm-kafka-standin> SM_REPLAY=$<TARGET_FILE:searchmig-replay>)
target_include_directories(test_replay_kafka PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/integration/kafka)
add_dependencies(test_replay_kafka sm-kafka-standin searchmig-replay)
add_test(NAME test_replay_kafka_group COMMAND test_replay_kafka test_replay_kafka_group)
set_tests_properties(test_replay_kafka_group PROPERTIES LABELS integration TIMEOUT 300 SKIP_RETURN_CODE 77
  ENVIRONMENT "SM_SOURCE_DIR=${CMAKE_SOURCE_DIR};SM_BINARY_DIR=${CMAKE_BINARY_DIR};SM_KAFKA_STANDIN=$<TARGET_FILE:sm-kafka-standin>;SM_REPLAY=$<TARGET_FILE:searchmig-replay>")
# a dead-letter file that cannot be written keeps the poison record's offset uncommitted
add_test(NAME test_replay_kafka_dlq COMMAND test_replay_kafka test_replay_kafka_dlq_unwritable)
set_tests_properties(test_replay_kafka_dlq PROPERTIES LABELS integration TIMEOUT 120 SKIP_RETURN_CODE 77
  ENVIRONMENT "SM_SOURCE_DIR=${CMAKE_SOURCE_DIR};SM_BINARY_DIR=${CMAKE_BINARY_DIR};SM_KAFKA_STANDIN=$<TARGET_FILE:sm-kafka-standin>;SM_REPLAY=$<TARGET_FILE:searchmig-replay>")
# a target stalled past max.poll.interval.ms with the engine full: partitions paused, no rebalance
add_test(NAME test_replay_kafka_stall COMMAND test_replay_kafka test_replay_kafka_stall)
set_tests_properties(test_replay_kafka_stall PROPERTIES LABELS integration TIMEOUT 120 SKIP_RETURN_CODE 77
  ENVIRONMENT "SM_SOURCE_DIR=${CMAKE_SOURCE_DIR};SM_BINARY_DIR=${CMAKE_BINARY_DIR};SM_KAFKA_STANDIN=$<TARGET_FILE:sm-kafka-standin>;SM_REPLAY=$<TARGET_FILE:searchmig-replay>")
# at-least-once bookkeeping (no Kafka needed)
sm_test(test_replay_offsets SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/integration/kafka/test_replay_offsets.c
        LIBS replay_core LABELS unit)
# capture -> Kafka -> replay, compared with capture -> file -> replay
sm_script_test(agent_kafka_replay
  COMMAND /usr/bin/python3 ${CMAKE_SOURCE_DIR}/tests/integration/kafka/agent_kafka_replay_test.py
          $<TARGET_FILE:searchmig-agent> $<TARGET_FILE:sm-kafka-standin> $<TARGET_FILE:searchmig-replay>
  LABELS integration TIMEOUT 180)
# live capture on lo into Kafka with every broker down in the middle: spooled, then all delivered
sm_script_test(agent_kafka_outage
  COMMAND /usr/bin/python3 ${CMAKE_SOURCE_DIR}/tests/integration/kafka/agent_kafka_outage_test.py
          $<TARGET_FILE:searchmig-agent> $<TARGET_FILE:sm-kafka-standin>
  LABELS integration TIMEOUT 180)
