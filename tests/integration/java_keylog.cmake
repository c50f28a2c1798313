# JSSE key log agent (packaging/java-keylog) attached at run time to a JDK
# HttpsServer; curl TLS 1.3/1.2, tcpdump on lo, searchmig-agent --tls-keylog.
# The jars are built by the script with javac into the build dir (exit 77
# without java/javac/keytool/curl/tcpdump).
sm_script_test(java_keylog_attach
  COMMAND /usr/bin/python3 ${CMAKE_CURRENT_SOURCE_DIR}/integration/java_keylog/run_java_keylog.py
          ${CMAKE_SOURCE_DIR}/packaging/java-keylog/build.sh
          ${CMAKE_CURRENT_BINARY_DIR}/java_keylog
          ${CMAKE_CURRENT_SOURCE_DIR}/integration/java_keylog/TlsEchoServer.java
          $<TARGET_FILE:searchmig-agent>
  TIMEOUT 180)
set_tests_properties(java_keylog_attach PROPERTIES RESOURCE_LOCK capture_lo)
