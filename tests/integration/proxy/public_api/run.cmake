# The daemon built against the INSTALLED librstmdb: install into WORK/prefix,
# then compile every daemon/*.c with the installed public headers, the
# internal common/ headers and daemon/ itself on the include path, and
# nothing of client/: a daemon file that reaches a private client header
# fails here. The result links against the installed static library (which
# carries common/'s objects) and must answer --version.
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

step(${CMAKE_COMMAND} --install ${BUILD_DIR} --prefix ${PREFIX})
file(GLOB libs ${PREFIX}/lib*/librstmdb.a ${PREFIX}/lib/*/librstmdb.a)
list(GET libs 0 lib)
step(pkg-config --cflags --libs libmicrohttpd libevent_core libevent_openssl libcjson openssl)
string(STRIP "${STEP_OUT}" deps)
separate_arguments(deps UNIX_COMMAND "${deps}")
separate_arguments(extra UNIX_COMMAND "${EXTRA_FLAGS}")
file(GLOB srcs ${SRC}/daemon/*.c)
list(APPEND srcs ${BUILD_DIR}/daemon/openapi_parts.c) # generated from daemon/openapi_parts.json
step(${CC} -std=c11 -D_GNU_SOURCE -DRSTMDB_PROXY_VERSION="public-api" ${extra}
     -I${PREFIX}/include -I${SRC}/common -I${SRC}/daemon ${srcs} ${lib} ${deps} -lm
     -o ${WORK}/rstmdb-proxy)
step(${WORK}/rstmdb-proxy --version)
if(NOT STEP_OUT MATCHES "public-api")
  message(FATAL_ERROR "--version printed: ${STEP_OUT}")
endif()
message(STATUS "the daemon built against ${PREFIX}'s public headers and ran")
