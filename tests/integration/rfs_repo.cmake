# searchmig-rfs snapshots/indices/docs/restore-shard on the fixture repositories.
sm_script_test(rfs_cli
  COMMAND /usr/bin/python3 ${CMAKE_SOURCE_DIR}/tests/integration/rfs/cli_test.py $<TARGET_FILE:searchmig-rfs>
          ${CMAKE_SOURCE_DIR}
  LABELS integration)
# The expected document sets against real Lucene (Java); skipped without javac/jars.
sm_script_test(rfs_lucene_crosscheck
  COMMAND ${CMAKE_SOURCE_DIR}/tests/integration/rfs/lucene_crosscheck.sh $<TARGET_FILE:searchmig-rfs>
          ${CMAKE_SOURCE_DIR}
  LABELS integration)
# SMILE/CBOR/JSON/YAML _source written by real Lucene 8 at test time; skipped without javac/jars.
sm_script_test(rfs_source_types
  COMMAND /usr/bin/python3 ${CMAKE_SOURCE_DIR}/tests/integration/rfs/source_types_test.py
          $<TARGET_FILE:searchmig-rfs> ${CMAKE_SOURCE_DIR}
  LABELS integration)
