# searchmig-rfs backfill --metadata-report: type rules of the metadata
# migration (split/union) and legacy booleans, against the target stand-in
# (tests/integration/typerules/test_typerules.py).
sm_script_test(rfs_typerules
  COMMAND /usr/bin/python3 ${CMAKE_CURRENT_LIST_DIR}/typerules/test_typerules.py
  LABELS integration TIMEOUT 300)
