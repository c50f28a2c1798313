# Capture agent: decoding, flow table, TCP reassembly (agent/source, agent/flow).
sm_test(test_decode SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_decode.c LIBS agent_capture)
sm_test(test_reasm SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_reasm.c LIBS agent_capture)
sm_test(test_flow SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_flow.c LIBS agent_capture)
