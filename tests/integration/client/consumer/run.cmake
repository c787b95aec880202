# Install librstmdb into WORK/prefix and build the consumer project against it
# three ways: find_package + rstmdb::rstmdb, find_package + rstmdb::rstmdb_static,
# and the compiler driven by pkg-config. Each binary must run and print "ok".
file(REMOVE_RECURSE ${WORK})
file(MAKE_DIRECTORY ${WORK})
set(PREFIX ${WORK}/prefix)

function(step)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "failed (${rc}): ${ARGN}\n${out}\n${err}")
  endif()
  set(STEP_OUT "${out}" PARENT_SCOPE)
endfunction()

function(expect_ok)
  step(${ARGN})
  if(NOT STEP_OUT MATCHES "^ok")
    message(FATAL_ERROR "${ARGN} printed: ${STEP_OUT}")
  endif()
endfunction()

step(${CMAKE_COMMAND} --install ${BUILD_DIR} --prefix ${PREFIX})
foreach(f include/rstmdb/rstmdb.h include/rstmdb/client.h include/rstmdb/ops.h include/rstmdb/sync.h)
  if(NOT EXISTS ${PREFIX}/${f})
    message(FATAL_ERROR "not installed: ${f}")
  endif()
endforeach()

# find_package(rstmdb): shared and static.
foreach(kind shared static)
  set(B ${WORK}/build-${kind})
  if(kind STREQUAL "static")
    set(static ON)
  else()
    set(static OFF)
  endif()
  step(${CMAKE_COMMAND} -S ${PROJECT_SRC} -B ${B} -DCMAKE_PREFIX_PATH=${PREFIX}
       -DCMAKE_C_COMPILER=${CC} -DCONSUMER_STATIC=${static}
       "-DCMAKE_C_FLAGS=${EXTRA_FLAGS}" "-DCMAKE_EXE_LINKER_FLAGS=${EXTRA_FLAGS}")
  step(${CMAKE_COMMAND} --build ${B})
  expect_ok(${B}/consumer)
endforeach()

# pkg-config, as a Makefile user would.
file(GLOB pcdirs ${PREFIX}/lib*/pkgconfig ${PREFIX}/lib/*/pkgconfig)
list(JOIN pcdirs ":" pcpath)
set(ENV{PKG_CONFIG_PATH} "${pcpath}")
# No --define-prefix: the installed .pc must find its prefix by itself
# (${pcfiledir}), since the tree was configured for another prefix.
step(pkg-config --cflags --libs rstmdb)
string(STRIP "${STEP_OUT}" flags)
separate_arguments(flags UNIX_COMMAND "${EXTRA_FLAGS} ${flags}")
step(${CC} ${PROJECT_SRC}/main.c -o ${WORK}/consumer-pc ${flags})
file(GLOB libdirs ${PREFIX}/lib* ${PREFIX}/lib/*)
list(JOIN libdirs ":" ldpath)
set(ENV{LD_LIBRARY_PATH} "${ldpath}")
expect_ok(${WORK}/consumer-pc)
message(STATUS "consumer built and ran against ${PREFIX}")
