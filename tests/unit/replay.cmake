sm_test(test_replay_accum SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_replay_accum.c LIBS replay_core)
