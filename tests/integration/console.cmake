sm_script_test(console_config COMMAND /usr/bin/python3 ${CMAKE_SOURCE_DIR}/tests/integration/console/test_console.py TIMEOUT 120)
