sm_test(test_common_core SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_common_core.c LIBS sm_common)
