# sm_bpf_object(<name> <file.bpf.c> [<header>...])
#   Compiles an eBPF program with clang -target bpf against a vmlinux.h made
#   in the build tree from the running kernel's BTF (or the saved copy named
#   by SM_VMLINUX_H), then embeds it with `bpftool gen skeleton`. Creates the
#   INTERFACE target <name>_skel whose include directory holds <name>.skel.h.
#   Nothing generated lands in the source tree.
set(SM_VMLINUX_H "" CACHE FILEPATH "saved vmlinux.h to use instead of dumping /sys/kernel/btf/vmlinux")
set(SM_VMLINUX_BTF "/sys/kernel/btf/vmlinux" CACHE FILEPATH "kernel BTF to generate vmlinux.h from")

set(_sm_bpf_gen ${CMAKE_BINARY_DIR}/ebpf-gen)
file(MAKE_DIRECTORY ${_sm_bpf_gen})
# vmlinux.h is made once, at configure time: a build-time rule shared by the
# two skeleton targets raced under parallel make (both ran it at once).
if(SM_VMLINUX_H)
  configure_file(${SM_VMLINUX_H} ${_sm_bpf_gen}/vmlinux.h COPYONLY)
elseif(NOT EXISTS ${_sm_bpf_gen}/vmlinux.h)
  execute_process(COMMAND ${BPFTOOL} btf dump file ${SM_VMLINUX_BTF} format c
                  OUTPUT_FILE ${_sm_bpf_gen}/vmlinux.h.tmp RESULT_VARIABLE _sm_btf_rc ERROR_VARIABLE _sm_btf_err)
  if(NOT _sm_btf_rc EQUAL 0)
    file(REMOVE ${_sm_bpf_gen}/vmlinux.h.tmp)
    message(FATAL_ERROR "vmlinux.h: bpftool btf dump ${SM_VMLINUX_BTF} failed: ${_sm_btf_err}"
                        " (configure with -DSM_WITH_EBPF=OFF, or -DSM_VMLINUX_H=<saved vmlinux.h>)")
  endif()
  file(RENAME ${_sm_bpf_gen}/vmlinux.h.tmp ${_sm_bpf_gen}/vmlinux.h)
endif()

function(sm_bpf_object name src)
  set(obj ${_sm_bpf_gen}/${name}.bpf.o)
  set(skel ${_sm_bpf_gen}/${name}.skel.h)
  get_filename_component(srcabs ${src} ABSOLUTE)
  get_filename_component(srcdir ${srcabs} DIRECTORY)
  set(deps)
  foreach(h ${ARGN})
    get_filename_component(habs ${h} ABSOLUTE)
    list(APPEND deps ${habs})
  endforeach()
  add_custom_command(OUTPUT ${obj}
    COMMAND ${CLANG} -g -O2 -target bpf -D__TARGET_ARCH_x86 -Wall -Werror
            -I${_sm_bpf_gen} -I${srcdir} -c ${srcabs} -o ${obj}
    DEPENDS ${srcabs} ${deps} ${_sm_bpf_gen}/vmlinux.h
    COMMENT "BPF ${name}.bpf.o")
  add_custom_command(OUTPUT ${skel}
    COMMAND ${BPFTOOL} gen skeleton ${obj} name ${name} > ${skel}.tmp
    COMMAND ${CMAKE_COMMAND} -E rename ${skel}.tmp ${skel}
    DEPENDS ${obj}
    COMMENT "BPF skeleton ${name}.skel.h")
  add_custom_target(${name}_skel_gen DEPENDS ${skel})
  add_library(${name}_skel INTERFACE)
  add_dependencies(${name}_skel ${name}_skel_gen)
  target_include_directories(${name}_skel INTERFACE ${_sm_bpf_gen} ${srcdir})
  target_link_libraries(${name}_skel INTERFACE PkgConfig::LIBBPF)
endfunction()
