# TrafficStream decoder + records-file reader.
sm_fuzz_target(fuzz_trafficstream SOURCES ${CMAKE_SOURCE_DIR}/tests/fuzz/fuzz_trafficstream.c
               LIBS sm_common CORPUS ${CMAKE_SOURCE_DIR}/tests/fuzz/corpus/fuzz_trafficstream)
