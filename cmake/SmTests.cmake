# sm_unit_test(<name> SOURCES ... LIBS ... [LABELS ...])
#   builds tests/unit/<name> and registers it with ctest (label "unit" by default).
# Tests that need root/BPF/network exit 77: ctest reports them as skipped.
function(sm_test name)
  cmake_parse_arguments(T "" "TIMEOUT;WORKDIR" "SOURCES;LIBS;LABELS;ARGS;ENV" ${ARGN})
  add_executable(${name} ${T_SOURCES})
  sm_target_warnings(${name})
  target_include_directories(${name} PRIVATE ${CMAKE_SOURCE_DIR}/tests/unit)
  target_link_libraries(${name} PRIVATE ${T_LIBS})
  if(NOT T_LABELS)
    set(T_LABELS unit)
  endif()
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 300)
  endif()
  if(NOT T_WORKDIR)
    set(T_WORKDIR ${CMAKE_CURRENT_BINARY_DIR})
  endif()
  add_test(NAME ${name} COMMAND ${name} ${T_ARGS} WORKING_DIRECTORY ${T_WORKDIR})
  set_tests_properties(${name} PROPERTIES LABELS "${T_LABELS}" TIMEOUT ${T_TIMEOUT}
    SKIP_RETURN_CODE 77
    ENVIRONMENT "SM_SOURCE_DIR=${CMAKE_SOURCE_DIR};SM_BINARY_DIR=${CMAKE_BINARY_DIR};${T_ENV}")
endfunction()

# sm_script_test(<name> COMMAND ... [LABELS ...]): a shell/python integration test.
function(sm_script_test name)
  cmake_parse_arguments(T "" "TIMEOUT" "COMMAND;LABELS;ENV" ${ARGN})
  if(NOT T_LABELS)
    set(T_LABELS integration)
  endif()
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 600)
  endif()
  add_test(NAME ${name} COMMAND ${T_COMMAND} WORKING_DIRECTORY ${CMAKE_BINARY_DIR})
  set_tests_properties(${name} PROPERTIES LABELS "${T_LABELS}" TIMEOUT ${T_TIMEOUT}
    SKIP_RETURN_CODE 77
    ENVIRONMENT "SM_SOURCE_DIR=${CMAKE_SOURCE_DIR};SM_BINARY_DIR=${CMAKE_BINARY_DIR};${T_ENV}")
endfunction()

# sm_fuzz_target(<name> SOURCES ... LIBS ... [CORPUS dir] [SECONDS n])
#   The harness defines LLVMFuzzerTestOneInput. Always builds <name>_replay
#   (harness + tests/fuzz/replay_main.c) and registers a ctest that runs every
#   corpus file through it (label "fuzz"). With SM_FUZZ=ON (clang) it also
#   builds <name> with -fsanitize=fuzzer and registers <name>_run, a short
#   fuzz session seeded from the corpus (label "fuzz").
function(sm_fuzz_target name)
  cmake_parse_arguments(F "" "CORPUS;SECONDS" "SOURCES;LIBS" ${ARGN})
  if(NOT F_SECONDS)
    set(F_SECONDS 20)
  endif()
  if(NOT F_CORPUS)
    set(F_CORPUS ${CMAKE_SOURCE_DIR}/tests/fuzz/corpus/${name})
  endif()
  add_executable(${name}_replay ${F_SOURCES} ${CMAKE_SOURCE_DIR}/tests/fuzz/replay_main.c)
  sm_target_warnings(${name}_replay)
  target_link_libraries(${name}_replay PRIVATE ${F_LIBS})
  add_test(NAME ${name}_corpus COMMAND ${name}_replay ${F_CORPUS})
  set_tests_properties(${name}_corpus PROPERTIES LABELS "fuzz" TIMEOUT 300)
  if(SM_FUZZ)
    add_executable(${name} ${F_SOURCES})
    target_compile_options(${name} PRIVATE -fsanitize=fuzzer)
    target_link_options(${name} PRIVATE -fsanitize=fuzzer)
    target_link_libraries(${name} PRIVATE ${F_LIBS})
    set(workdir ${CMAKE_BINARY_DIR}/fuzz-work/${name})
    file(MAKE_DIRECTORY ${workdir})
    add_test(NAME ${name}_run
      COMMAND ${name} -max_total_time=${F_SECONDS} -rss_limit_mb=1024 -timeout=10
              -print_final_stats=1 ${workdir} ${F_CORPUS})
    set_tests_properties(${name}_run PROPERTIES LABELS "fuzz" TIMEOUT 600)
  endif()
endfunction()
