# TrafficStream codec, file forms and Kafka helpers (docs/records.md).
sm_test(test_ts SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_ts.c LIBS sm_common)
sm_test(test_ts_file SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_ts_file.c LIBS sm_common)
sm_test(test_kafka SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_kafka.c LIBS sm_common)
sm_test(test_kafka_standin SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_kafka_standin.c LIBS sm_common
        LABELS integration TIMEOUT 240 ARGS $<TARGET_FILE:sm-kafka-standin>)
add_dependencies(test_kafka_standin sm-kafka-standin)
