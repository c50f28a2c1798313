# Replay speed (label "bench": not run by default; ctest -L bench -R bench_replay):
# maximum rate vs wrk against the same local server, timing fidelity at
# speedup 1 and ~5k requests/s, peak RSS with 10k open source connections.
# bench_replay_httpd and bench_replay_gen are built in integration/replay_timing.cmake.
sm_script_test(bench_replay
  COMMAND /usr/bin/python3 ${CMAKE_CURRENT_SOURCE_DIR}/bench/bench_replay.py
  LABELS bench TIMEOUT 900
  ENV "SM_REPLAY_HTTPD=$<TARGET_FILE:bench_replay_httpd>;SM_REPLAY_GEN=$<TARGET_FILE:bench_replay_gen>")
