sm_script_test(replay_report COMMAND /usr/bin/python3 ${CMAKE_SOURCE_DIR}/tests/integration/report/test_report.py
               LABELS integration)
