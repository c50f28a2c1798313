# searchmig-rfs metadata evaluate|migrate against the target stand-in
# (tests/integration/metadata/test_metadata.py): every fixture snapshot per
# target flavor (one ctest each), then options, bad input and a live source.
foreach(flavor opensearch-2.11 elasticsearch-7.10 elasticsearch-6.8 opensearch-1.3)
  sm_script_test(rfs_metadata_${flavor}
    COMMAND /usr/bin/python3 ${CMAKE_CURRENT_LIST_DIR}/metadata/test_metadata.py MetadataTest.test_fixture_matrix
    ENV SM_MD_FLAVORS=${flavor}
    LABELS integration TIMEOUT 300)
endforeach()
sm_script_test(rfs_metadata_options
  COMMAND /usr/bin/python3 ${CMAKE_CURRENT_LIST_DIR}/metadata/test_metadata.py MetadataTest.test_split_replicas_allocation
    MetadataTest.test_bad_input MetadataTest.test_live_source
  LABELS integration TIMEOUT 300)
