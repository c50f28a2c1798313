# common/: SigV4 signing and the cluster HTTP client.
sm_test(test_sigv4 SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_sigv4.c LIBS sm_common)
sm_test(test_http SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_http.c ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_http_server.c
  LIBS sm_common TIMEOUT 120)
sm_test(test_http_tls SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_http_tls.c ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_http_server.c
  LIBS sm_common TIMEOUT 120)
