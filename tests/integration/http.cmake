# HTTP client against the target stand-in with injected faults.
sm_test(test_http_standin SOURCES ${CMAKE_SOURCE_DIR}/tests/unit/test_http_standin.c
  LIBS sm_common LABELS integration TIMEOUT 120)
