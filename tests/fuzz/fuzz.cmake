# libFuzzer targets: tests/fuzz/fuzz_*.c. Configure with CC=clang and
# -DEGRESSD_FUZZ=ON; the whole tree is then instrumented for coverage and
# built with ASan + UBSan (the options are set in CMakeLists.txt, before the
# core library is defined).
file(GLOB FUZZ_TARGETS CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/tests/fuzz/fuzz_*.c)
foreach(src ${FUZZ_TARGETS})
  get_filename_component(name ${src} NAME_WE)
  add_executable(${name} ${src})
  target_link_libraries(${name} PRIVATE egressd_core)
  target_include_directories(${name} PRIVATE ${CMAKE_SOURCE_DIR}/src) # private headers
  target_link_options(${name} PRIVATE -fsanitize=fuzzer)
endforeach()
# Seed corpus writer: one file per packet of the given captures.
add_executable(fuzz-seeds ${CMAKE_SOURCE_DIR}/tests/fuzz/seeds.c)
target_link_libraries(fuzz-seeds PRIVATE egressd_core)
