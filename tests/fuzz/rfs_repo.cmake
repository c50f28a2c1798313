# Fuzz harnesses of the snapshot repository reader.
sm_fuzz_target(fuzz_smile SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/fuzz_smile.c LIBS rfs_repo)
sm_fuzz_target(fuzz_codec_blob SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/fuzz_codec_blob.c LIBS rfs_repo)
