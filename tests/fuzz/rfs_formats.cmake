# Stored-fields chunk decoder (rfs/lucene/storedfields*.c), owner: formats.
sm_fuzz_target(fuzz_storedfields
  SOURCES ${CMAKE_SOURCE_DIR}/tests/fuzz/fuzz_storedfields.c
  LIBS rfs_lucene)
