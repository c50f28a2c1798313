sm_test(test_common_core SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_common_core.c LIBS sm_common PkgConfig::ZLIB)
sm_test(test_metrics SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_metrics.c LIBS sm_common)
