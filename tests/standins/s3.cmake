# S3 stand-in: serves directory trees as buckets with SigV4 verification
# (tests/standins/s3/s3_standin.py; used by test_s3 and the backfill tests).
set(SM_S3_STANDIN ${CMAKE_CURRENT_LIST_DIR}/s3/s3_standin.py)
