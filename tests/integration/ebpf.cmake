# eBPF capture engines (ebpf-tc, ebpf-socket): live loopback and netns
# comparisons with pcap, run-time port changes, clean detach, --cleanup.
# Tests exit 77 (skipped) where BPF is not permitted.
if(SM_WITH_EBPF)
  # driver: capture_dump (tests/integration/agent_capture.cmake)
  set(_ebpfdir ${CMAKE_CURRENT_SOURCE_DIR}/integration/ebpf)
  # 32-bit calls from a 64-bit process (int $0x80) must not be taken for 64-bit ones
  add_executable(compat_server ${_ebpfdir}/compat_server.c)
  sm_target_warnings(compat_server)
  foreach(mode lo netns ports iov compat detach cleanup gone procfilter)
    sm_script_test(ebpf_${mode} COMMAND /usr/bin/python3 ${_ebpfdir}/run_ebpf.py ${mode} TIMEOUT 180)
  endforeach()
  set_tests_properties(ebpf_lo ebpf_netns ebpf_ports ebpf_iov ebpf_compat ebpf_detach ebpf_cleanup ebpf_gone
                       ebpf_procfilter PROPERTIES RESOURCE_LOCK capture_lo)
endif()
