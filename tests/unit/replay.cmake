sm_test(test_replay_accum SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_replay_accum.c LIBS replay_core)
sm_test(test_replay_transform SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_replay_transform.c LIBS replay_core)
sm_test(test_replay_tuple SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_replay_tuple.c LIBS replay_core)
sm_test(test_replay_tuple_writer SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_replay_tuple_writer.c LIBS replay_core)
