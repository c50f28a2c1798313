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
if(SM_VMLINUX_H)
  add_custom_command(OUTPUT ${_sm_bpf_gen}/vmlinux.h
    COMMAND ${CMAKE_COMMAND} -E copy ${SM_VMLINUX_H} ${_sm_bpf_gen}/vmlinux.h
    DEPENDS ${SM_VMLINUX_H}
    COMMENT "vmlinux.h from ${SM_VMLINUX_H}")
else()
  add_custom_command(OUTPUT ${_sm_bpf_gen}/vmlinux.h
    COMMAND ${BPFTOOL} btf dump file ${SM_VMLINUX_BTF} format c > ${_sm_bpf_gen}/vmlinux.h.tmp
    COMMAND ${CMAKE_COMMAND} -E rename ${_sm_bpf_gen}/vmlinux.h.tmp ${_sm_bpf_gen}/vmlinux.h
    COMMENT "vmlinux.h from ${SM_VMLINUX_BTF}")
endif()
add_custom_target(sm_vmlinux_h DEPENDS ${_sm_bpf_gen}/vmlinux.h)

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
