# S3 repositories (rfs/io/s3.c) against the S3 stand-in, and the backfill
# layers (rfs/backfill/).
sm_test(test_s3 SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_s3.c LIBS rfs_repo TIMEOUT 120)
sm_test(test_backfill_bulk SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_backfill_bulk.c LIBS rfs_core TIMEOUT 120)
