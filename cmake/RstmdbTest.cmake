# Helpers to declare tests (Check unit tests driven by ctest).

# Test scripts use Debian's python3 (its python3-jsonschema, python3-jwt),
# whatever else is first on PATH.
find_program(RSTMDB_PYTHON3 python3 PATHS /usr/bin NO_DEFAULT_PATH)
find_program(RSTMDB_PYTHON3 python3)

# rstmdb_check_test(NAME SOURCES a.c b.c LIBS x y [TIMEOUT s] [LABELS l])
function(rstmdb_check_test name)
  cmake_parse_arguments(T "" "TIMEOUT" "SOURCES;LIBS;LABELS" ${ARGN})
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 300)
  endif()
  add_executable(${name} ${T_SOURCES})
  target_link_libraries(${name} PRIVATE ${T_LIBS} PkgConfig::CHECK)
  add_test(NAME ${name} COMMAND ${name})
  # Check forks each test (CK_FORK unset): LeakSanitizer and ASan run in that
  # child, so a leak or overflow fails that one test ("Received signal 6") with
  # the report on stderr, and CK_DEFAULT_TIMEOUT can stop a hung test.
  # CK_VERBOSITY=normal makes Check print its "NN%: Checks: ..." summary.
  set_tests_properties(${name} PROPERTIES TIMEOUT ${T_TIMEOUT}
    ENVIRONMENT "CK_DEFAULT_TIMEOUT=120;CK_VERBOSITY=normal")
  if(T_LABELS)
    set_tests_properties(${name} PROPERTIES LABELS "${T_LABELS}")
  endif()
endfunction()
