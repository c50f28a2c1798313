# The command lines and option tables in README.md and docs/ use options the
# programs accept (their --help): a renamed option fails here, not in a user's shell.
sm_script_test(docs_options
  COMMAND /usr/bin/python3 ${CMAKE_SOURCE_DIR}/tests/integration/docs/check_doc_options.py
  LABELS unit TIMEOUT 120)
