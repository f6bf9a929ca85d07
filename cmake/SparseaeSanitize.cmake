# -DSPARSEAE_SANITIZE=address,undefined builds every C++ target (library, sae, tests) with those
# sanitizers: the second, CPU-only build that scripts/run-tests.sh runs the test suite in. Any
# finding aborts the test that made it (no recovery), with a stack trace that names lines
# (frame pointers kept, line tables only).
# -DSPARSEAE_BUILD_FUZZERS=ON (clang only) also instruments everything for libFuzzer's coverage
# feedback and builds tests/fuzz.
set(SPARSEAE_SANITIZE "" CACHE STRING "Sanitizers to build with, e.g. address,undefined")
option(SPARSEAE_BUILD_FUZZERS "Build the libFuzzer harnesses of the file parsers (clang)" OFF)

if(SPARSEAE_SANITIZE)
  set(sanitize_flags -fsanitize=${SPARSEAE_SANITIZE} -fno-sanitize-recover=all
                     -fno-omit-frame-pointer -g1)
  add_compile_options("$<$<COMPILE_LANGUAGE:CXX>:${sanitize_flags}>")
  add_link_options("-fsanitize=${SPARSEAE_SANITIZE}")
endif()

if(SPARSEAE_BUILD_FUZZERS)
  if(NOT CMAKE_CXX_COMPILER_ID MATCHES "Clang")
    message(FATAL_ERROR "SPARSEAE_BUILD_FUZZERS needs clang's libFuzzer: configure with "
                        "-DCMAKE_CXX_COMPILER=clang++")
  endif()
  add_compile_options("$<$<COMPILE_LANGUAGE:CXX>:-fsanitize=fuzzer-no-link>")
endif()
