# agent pipeline: HTTP framing, TrafficStream records, sinks (agent/http, record, sink).
sm_test(test_http_framing SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_http_framing.c LIBS agent_pipeline)
sm_test(test_record SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_record.c LIBS agent_pipeline)
sm_test(test_sink SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_sink.c LIBS agent_pipeline)
sm_test(test_sink_metrics SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_sink_metrics.c LIBS agent_pipeline)
