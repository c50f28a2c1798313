# searchmig-agent under floods (SYN flood, half-open connections, a 10 MiB
# header, unfillable holes) with small --max-flows/--mem-cap: exits 0, peak RSS
# under 64 MiB, the flood reported in its summary, complete transactions still
# recorded exactly. Capture files written at test time; no timing assertions.
# Under SM_SANITIZE the RSS bound is not checked (ASan's shadow memory and
# quarantine), the agent's own flow memory peak still is.
sm_script_test(agent_flood
  COMMAND /usr/bin/python3 ${CMAKE_SOURCE_DIR}/tests/integration/agent_flood/flood_test.py
          $<TARGET_FILE:searchmig-agent>
  LABELS integration
  ENV "SM_SANITIZED=${SM_SANITIZE}"
  TIMEOUT 300)
