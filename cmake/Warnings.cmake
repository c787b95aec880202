# Picky warnings for every target in the tree (-Werror with RSTMDB_WERROR).
set(RSTMDB_WARNINGS
  -Wall -Wextra -Wpedantic -Wshadow -Wformat=2 -Wwrite-strings -Wcast-qual
  -Wpointer-arith -Wstrict-prototypes -Wmissing-prototypes -Wold-style-definition
  -Wundef -Wvla -Wnull-dereference -Wdouble-promotion -Wimplicit-fallthrough)
if(CMAKE_C_COMPILER_ID STREQUAL "GNU")
  list(APPEND RSTMDB_WARNINGS -Wlogical-op -Wduplicated-cond -Wduplicated-branches)
endif()
if(RSTMDB_WERROR)
  list(APPEND RSTMDB_WARNINGS -Werror)
endif()
add_compile_options(${RSTMDB_WARNINGS})
add_compile_definitions(_GNU_SOURCE)
