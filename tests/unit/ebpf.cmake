# eBPF engines: event -> stream logic of ebpf-socket, ring-buffer sizing,
# port map updates (the map part skips without root/BPF).
if(SM_WITH_EBPF)
  sm_test(test_ebpf SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_ebpf.c LIBS agent_capture)
endif()
