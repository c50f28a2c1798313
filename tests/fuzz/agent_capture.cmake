# Capture agent: decode + flow table + TCP reassembly fed TLV packet sequences.
sm_fuzz_target(fuzz_reassembly
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/fuzz_reassembly.c
  LIBS agent_capture
  CORPUS ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/corpus/fuzz_reassembly)
