# Lucene layer fuzzing: TLV of Lucene files -> segments_N/.si/.cfe/.fnm
# parsers and the whole document iterator over a memory directory.
sm_fuzz_target(fuzz_lucene_segments
  SOURCES ${CMAKE_SOURCE_DIR}/tests/fuzz/fuzz_lucene_segments.c
  LIBS rfs_lucene)
