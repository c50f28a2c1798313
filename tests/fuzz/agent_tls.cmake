# Capture agent: TLS filter record layer / handshake / key log parser.
sm_fuzz_target(fuzz_tls
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/fuzz_tls.c
  LIBS agent_pipeline
  CORPUS ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/corpus/fuzz_tls)
