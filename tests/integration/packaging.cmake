# Debian packages built, installed with dpkg, used, verified and purged. It
# changes the machine (dpkg -i/-r), so it runs in the plain build only.
if(NOT SM_SANITIZE)
  sm_script_test(packaging_deb COMMAND bash ${CMAKE_SOURCE_DIR}/tests/integration/packaging/test_packages.sh TIMEOUT 600)
  set_tests_properties(packaging_deb PROPERTIES RUN_SERIAL TRUE)
endif()
find_program(YAMLLINT yamllint)
if(YAMLLINT)
  sm_script_test(packaging_yamllint
    COMMAND ${YAMLLINT} -s -d "{extends: relaxed, rules: {line-length: {max: 130}}}"
            ${CMAKE_SOURCE_DIR}/packaging/k8s ${CMAKE_SOURCE_DIR}/packaging/compose
    LABELS unit)
endif()
# Every shipped command line (systemd ExecStart with the example configs,
# Dockerfile defaults, Kubernetes and compose commands) parses: --check-config.
sm_script_test(packaging_configs
  COMMAND /usr/bin/python3 ${CMAKE_SOURCE_DIR}/tests/integration/packaging/check_configs.py
          ${CMAKE_SOURCE_DIR} ${CMAKE_BINARY_DIR}
  LABELS unit TIMEOUT 120)
