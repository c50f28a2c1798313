# Comparator: in-place JSON parser (differential against jansson) + tuple comparison.
sm_fuzz_target(fuzz_jdoc SOURCES ${CMAKE_SOURCE_DIR}/tests/fuzz/fuzz_jdoc.c LIBS replay_core
               CORPUS ${CMAKE_SOURCE_DIR}/tests/fuzz/corpus/fuzz_jdoc)
# Direct tuple serialiser (differential against the jansson tree it replaced).
sm_fuzz_target(fuzz_tuple_canon SOURCES ${CMAKE_SOURCE_DIR}/tests/fuzz/fuzz_tuple_canon.c LIBS replay_core
               CORPUS ${CMAKE_SOURCE_DIR}/tests/fuzz/corpus/fuzz_tuple_canon)
