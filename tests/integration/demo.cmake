# The README's demo, run on this build and checked (needs root for live capture on lo).
sm_script_test(demo COMMAND /usr/bin/python3 ${CMAKE_SOURCE_DIR}/tests/integration/demo/test_demo.py TIMEOUT 900)
