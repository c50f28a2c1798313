# Target-cluster stand-in: a Python (stdlib) imitation of the Elasticsearch/
# OpenSearch REST API subset searchmig uses (docs/standins.md). Tests start it
# as /usr/bin/python3 ${SM_SOURCE_DIR}/tests/standins/target/target_standin.py
# --port 0 --port-file FILE --flavor ... (SM_SOURCE_DIR is set for every test).
set(SM_TARGET_STANDIN ${CMAKE_CURRENT_LIST_DIR}/target/target_standin.py)
sm_script_test(standin_target
  COMMAND /usr/bin/python3 ${CMAKE_CURRENT_LIST_DIR}/target/test_target_standin.py
  LABELS integration TIMEOUT 300)
