# Metadata migration rules (rfs/metadata/): before/after cases in
# tests/fixtures/metadata/*.json, rule table, report.
sm_test(test_metadata SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_metadata.c LIBS rfs_core)
