sm_test(test_compare SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_compare.c LIBS replay_core m)
