# Lucene layer (rfs/lucene/): segment infos, compound files, field infos,
# live docs, iterator, ES document layer. Fixture zips (Lucene's own
# backward-compatibility indices) are extracted into the build tree at
# configure time.
set(RFS_LUCENE_FIXTURES ${CMAKE_BINARY_DIR}/fixtures/lucene)
file(GLOB RFS_LUCENE_ZIPS ${CMAKE_SOURCE_DIR}/tests/fixtures/lucene/*.zip)
foreach(z ${RFS_LUCENE_ZIPS})
  get_filename_component(n ${z} NAME_WLE)
  set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${z})
  if(NOT EXISTS ${RFS_LUCENE_FIXTURES}/${n}/segments_3)
    file(ARCHIVE_EXTRACT INPUT ${z} DESTINATION ${RFS_LUCENE_FIXTURES}/${n})
  endif()
endforeach()

sm_test(test_lucene
  SOURCES ${CMAKE_SOURCE_DIR}/tests/unit/test_lucene.c
  LIBS rfs_lucene
  ENV "RFS_LUCENE_FIXTURES=${RFS_LUCENE_FIXTURES}")
sm_test(test_lucene_esdoc
  SOURCES ${CMAKE_SOURCE_DIR}/tests/unit/test_lucene_esdoc.c
  LIBS rfs_lucene)

# The iterator (hard + soft deletes, doc-values update generations, stored
# fields) against indices written by real Lucene 8.7 at test time with the
# generator of tests/lucene-gen/ (compiled by the lucene_gen fixture of
# rfs_formats.cmake); its own output directory, so it never races the
# stored-fields tests. Exit 77 when Java or Debian's Lucene jars are missing.
add_executable(test_lucene_gen ${CMAKE_SOURCE_DIR}/tests/unit/test_lucene_gen.c)
sm_target_warnings(test_lucene_gen)
target_link_libraries(test_lucene_gen PRIVATE rfs_lucene)
foreach(kind soft mixed)
  foreach(cfs cfs nocfs)
    sm_script_test(test_lucene_gen_${kind}_${cfs}
      COMMAND sh ${CMAKE_SOURCE_DIR}/tests/unit/test_lucene_gen.sh ${kind} ${cfs}
              $<TARGET_FILE:test_lucene_gen>
      LABELS unit TIMEOUT 180)
    if(TEST lucene_gen_compile)
      set_tests_properties(test_lucene_gen_${kind}_${cfs} PROPERTIES FIXTURES_REQUIRED lucene_gen)
    endif()
  endforeach()
endforeach()

# Through the repository reader (rfs_shard_dir_open) on the snapshot fixtures.
sm_test(test_lucene_snapshots
  SOURCES ${CMAKE_SOURCE_DIR}/tests/unit/test_lucene_snapshots.c
  LIBS rfs_repo)
