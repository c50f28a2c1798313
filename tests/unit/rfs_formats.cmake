# rfs/lucene stored fields and doc values (owner: formats).
sm_test(test_storedfields_fixtures
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_storedfields_fixtures.c LIBS rfs_lucene)
sm_test(test_storedfields_unit
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_storedfields_unit.c LIBS rfs_lucene)

# Indices written by real Lucene 8.7 at test time (tests/lucene-gen/), compared
# document by document with what Lucene itself reads back.
add_executable(test_storedfields_lucene ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_storedfields_lucene.c)
sm_target_warnings(test_storedfields_lucene)
target_include_directories(test_storedfields_lucene PRIVATE ${CMAKE_SOURCE_DIR}/tests/unit)
target_link_libraries(test_storedfields_lucene PRIVATE rfs_lucene)
set(SM_LUCENE_GEN ${CMAKE_CURRENT_SOURCE_DIR}/lucene-gen/run.sh)
sm_script_test(lucene_gen_compile COMMAND ${SM_LUCENE_GEN} compile LABELS unit)
set_tests_properties(lucene_gen_compile PROPERTIES FIXTURES_SETUP lucene_gen)
foreach(kind mixed soft)
  foreach(mode speed compression)
    foreach(cfs cfs nocfs)
      sm_script_test(test_storedfields_lucene_${kind}_${mode}_${cfs}
        COMMAND ${SM_LUCENE_GEN} check ${mode} ${cfs} ${kind}
                $<TARGET_FILE:test_storedfields_lucene>
        LABELS unit TIMEOUT 120)
      set_tests_properties(test_storedfields_lucene_${kind}_${mode}_${cfs}
        PROPERTIES FIXTURES_REQUIRED lucene_gen)
    endforeach()
  endforeach()
endforeach()
# Lucene70 doc values (ES 6.x soft deletes), written through a FilterCodec.
foreach(cfs cfs nocfs)
  sm_script_test(test_storedfields_lucene_soft70_speed_${cfs}
    COMMAND ${SM_LUCENE_GEN} check speed ${cfs} soft70 $<TARGET_FILE:test_storedfields_lucene>
    LABELS unit TIMEOUT 120)
  set_tests_properties(test_storedfields_lucene_soft70_speed_${cfs}
    PROPERTIES FIXTURES_REQUIRED lucene_gen)
endforeach()

# Lucene 4.10.4 (ES 1.x) written at test time with GenIndex4.java.
foreach(cfs cfs nocfs)
  sm_script_test(test_storedfields_lucene4_${cfs}
    COMMAND ${SM_LUCENE_GEN} check4 ${cfs} $<TARGET_FILE:test_storedfields_lucene>
    LABELS unit TIMEOUT 120)
  set_tests_properties(test_storedfields_lucene4_${cfs} PROPERTIES RESOURCE_LOCK lucene4_jars)
endforeach()
