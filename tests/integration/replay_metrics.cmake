# searchmig-replay --metrics-listen and --summary-interval against the target stand-in:
# /metrics scraped with curl while records arrive (stdin, and Kafka through
# sm-kafka-standin), counters equal to what was replayed; summary lines as log lines,
# and redrawn in place on a pseudo-terminal.
sm_script_test(replay_metrics
  COMMAND /usr/bin/python3 ${CMAKE_CURRENT_SOURCE_DIR}/integration/replay_metrics/test_replay_metrics.py
  LABELS integration TIMEOUT 180
  ENV "SM_KAFKA_STANDIN=$<TARGET_FILE:sm-kafka-standin>")
