# Capture agent: TLS decryption filter (agent/tls) over real in-process OpenSSL sessions.
sm_test(test_tls SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_tls.c LIBS agent_pipeline PkgConfig::OPENSSL)
