# Agent Kafka sink and its on-disk spool (docs/kafka.md).
sm_test(test_spool SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_spool.c LIBS agent_pipeline)
sm_test(test_agent_kafka SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_agent_kafka.c LIBS agent_pipeline
        LABELS integration TIMEOUT 240 ENV SM_KAFKA_STANDIN=$<TARGET_FILE:sm-kafka-standin>)
add_dependencies(test_agent_kafka sm-kafka-standin)
