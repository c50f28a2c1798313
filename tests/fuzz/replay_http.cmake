# The replayer's HTTP/1.1 parser: whole buffer against pieces, copy, serialise and parse back.
sm_fuzz_target(fuzz_replay_http SOURCES ${CMAKE_SOURCE_DIR}/tests/fuzz/fuzz_replay_http.c LIBS replay_core
               CORPUS ${CMAKE_SOURCE_DIR}/tests/fuzz/corpus/fuzz_replay_http)
