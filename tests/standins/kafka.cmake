# Kafka stand-in on librdkafka's mock cluster (docs/standins-kafka.md).
add_executable(sm-kafka-standin ${CMAKE_CURRENT_LIST_DIR}/kafka/kafka_standin.c)
sm_target_warnings(sm-kafka-standin)
target_link_libraries(sm-kafka-standin PRIVATE PkgConfig::RDKAFKA)
