# kiln_target_options(target): kiln's own warnings, -Werror in CI, sanitizers. PRIVATE
# only, so nothing of this is exported on kiln::kiln.
function(kiln_target_options target)
  target_compile_options(${target} PRIVATE -Wall -Wextra)
  # GCC 12 warns falsely on std::string concatenation at -O3 (GCC bug 105329).
  if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU" AND CMAKE_CXX_COMPILER_VERSION VERSION_LESS 13)
    target_compile_options(${target} PRIVATE -Wno-restrict)
  endif()
  if(KILN_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
  if(KILN_SANITIZE)
    target_compile_options(${target} PRIVATE -fsanitize=${KILN_SANITIZE} -fno-omit-frame-pointer
                                              -fno-sanitize-recover=all)
    target_link_options(${target} PRIVATE -fsanitize=${KILN_SANITIZE})
  endif()
  if(KILN_FUZZ)
    target_compile_options(${target} PRIVATE -fsanitize=fuzzer-no-link)
  endif()
endfunction()
