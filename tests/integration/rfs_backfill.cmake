# searchmig-rfs backfill / backfill-status end to end against the target and
# S3 stand-ins (tests/integration/backfill/test_backfill.py), in groups so
# each test stays short.
set(_bf ${CMAKE_CURRENT_LIST_DIR}/backfill/test_backfill.py)
sm_script_test(rfs_backfill_fixtures
  COMMAND /usr/bin/python3 ${_bf} BackfillTest.test_every_fixture_exact BackfillTest.test_dry_run
          BackfillTest.test_typed_target_and_status_before_setup
          BackfillTest.test_segment_checksums_streamed_exact BackfillTest.test_segment_checksums_damaged_segment
          BackfillTest.test_https_and_basic_auth BackfillTest.test_sigv4_target
          BackfillTest.test_status_past_10000_items
  LABELS integration TIMEOUT 300)
sm_script_test(rfs_backfill_crash
  COMMAND /usr/bin/python3 ${_bf} BackfillTest.test_crash_resume_from_checkpoint
          BackfillTest.test_paused_worker_loses_lease BackfillTest.test_sigterm_releases_item
          BackfillTest.test_target_outage_rides_through BackfillTest.test_target_outage_past_down_wait_resumes_own_item
          BackfillTest.test_unreachable_target_fails_fast
  LABELS integration TIMEOUT 300)
sm_script_test(rfs_backfill_parallel_faults
  COMMAND /usr/bin/python3 ${_bf} BackfillTest.test_two_processes_split_work BackfillTest.test_faults_still_exact
          BackfillTest.test_mapping_rejection_in_failures_file BackfillTest.test_unreadable_shard_fails_item
          BackfillTest.test_missing_shard_metadata_others_go_on BackfillTest.test_source_types_like_docs
          BackfillTest.test_write_blocked_index_fails_item_not_documents
          BackfillTest.test_oversized_document_to_failures_file BackfillTest.test_ingest_pipelines
  LABELS integration TIMEOUT 300)
sm_script_test(rfs_backfill_s3
  COMMAND /usr/bin/python3 ${_bf} BackfillTest.test_s3_same_as_fs_and_errors BackfillTest.test_s3_session_token
  LABELS integration TIMEOUT 300)
