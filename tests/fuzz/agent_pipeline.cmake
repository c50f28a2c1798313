# HTTP framing + record builder on TLV chunks (seeded from tests/fixtures/http).
sm_fuzz_target(fuzz_http_framing
  SOURCES ${CMAKE_SOURCE_DIR}/tests/fuzz/fuzz_http_framing.c
  LIBS agent_pipeline
  CORPUS ${CMAKE_SOURCE_DIR}/tests/fuzz/corpus/fuzz_http_framing)
