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
