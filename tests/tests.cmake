# Test suite. Unit tests: tests/unit/test_<module>.c, one cmocka program per
# module. End-to-end tests: tests/e2e/test_*.sh and test_*.py, run with the
# environment below. ../shared is beside the repository root.
pkg_check_modules(CMOCKA REQUIRED IMPORTED_TARGET cmocka)
get_filename_component(EGRESSD_SHARED ${CMAKE_SOURCE_DIR}/../shared ABSOLUTE)
set(EGRESSD_TEST_ENV
  "EGRESSD_BIN=$<TARGET_FILE:egressd>"
  "EGRESSD_PKTGEN=${CMAKE_BINARY_DIR}/egressd-pktgen"
  "EGRESSD_SRC=${CMAKE_SOURCE_DIR}"
  "EGRESSD_SHARED=${EGRESSD_SHARED}"
  "EGRESSD_BUILD=${CMAKE_BINARY_DIR}"
  "ASAN_OPTIONS=detect_leaks=1:abort_on_error=1"
  "UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1")

file(GLOB UNIT_TESTS CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/tests/unit/test_*.c)
foreach(src ${UNIT_TESTS})
  get_filename_component(name ${src} NAME_WE)
  add_executable(${name} ${src})
  target_include_directories(${name} PRIVATE ${CMAKE_SOURCE_DIR}/src ${CMAKE_SOURCE_DIR}/tests/lib)
  target_link_libraries(${name} PRIVATE egressd_core egressd_pktgen PkgConfig::CMOCKA)
  add_test(NAME unit.${name} COMMAND ${name})
  set_tests_properties(unit.${name} PROPERTIES ENVIRONMENT "${EGRESSD_TEST_ENV}" TIMEOUT 300)
endforeach()

file(GLOB E2E_TESTS CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/tests/e2e/test_*.sh
  ${CMAKE_SOURCE_DIR}/tests/e2e/test_*.py)
foreach(src ${E2E_TESTS})
  get_filename_component(name ${src} NAME_WE)
  # The image and the package ship release builds; a sanitizer build
  # needs runtime libraries they do not have.
  if(EGRESSD_SANITIZE AND (name STREQUAL "test_image" OR name STREQUAL "test_docker" OR
                            name STREQUAL "test_package"))
    continue()
  endif()
  if(src MATCHES "\\.py$")
    add_test(NAME e2e.${name} COMMAND python3 ${src})
  else()
    add_test(NAME e2e.${name} COMMAND bash ${src})
  endif()
  # Exit status 77: skipped, with the reason on stdout (a tool that cannot
  # run on this machine, e.g. dockerd).
  set_tests_properties(e2e.${name} PROPERTIES ENVIRONMENT "${EGRESSD_TEST_ENV}" TIMEOUT 900
                       SKIP_RETURN_CODE 77)
  if(name STREQUAL "test_docker")
    set_tests_properties(e2e.${name} PROPERTIES TIMEOUT 1800) # a first image build fetches packages
  endif()
endforeach()
