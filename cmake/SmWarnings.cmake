# One warnings policy for every searchmig target: sm_target_warnings(<target>)
function(sm_target_warnings tgt)
  target_compile_options(${tgt} PRIVATE -Wall -Wextra -Wshadow -Wformat=2 -Wno-unused-parameter
                         -Wstrict-prototypes -Wmissing-prototypes -Wvla)
  if(SM_WERROR)
    target_compile_options(${tgt} PRIVATE -Werror)
  endif()
endfunction()
