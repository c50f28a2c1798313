# Snapshot repository reader: SMILE, CodecUtil/compression, repository layouts.
sm_test(test_smile SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_smile.c LIBS rfs_repo)
sm_test(test_repo_codec SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_repo_codec.c LIBS rfs_repo PkgConfig::LZF)
sm_test(test_repo_snapshot SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_repo_snapshot.c LIBS rfs_repo)
sm_test(test_repo_cbor SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_repo_cbor.c LIBS rfs_repo)
