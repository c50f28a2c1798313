sm_script_test(replay_e2e COMMAND /usr/bin/python3 ${CMAKE_SOURCE_DIR}/tests/integration/replay/test_replay_e2e.py)
sm_script_test(replay_bulk_retries COMMAND /usr/bin/python3 ${CMAKE_SOURCE_DIR}/tests/integration/replay/test_replay_bulk.py)
