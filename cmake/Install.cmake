# Install rules for librstmdb: the static and shared library, the public
# headers, rstmdb.pc, and a CMake package (find_package(rstmdb) gives
# rstmdb::rstmdb, the shared library, and rstmdb::rstmdb_static).
include(CMakePackageConfigHelpers)

set(RSTMDB_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/rstmdb)

set_target_properties(rstmdb_shared PROPERTIES EXPORT_NAME rstmdb)
set_target_properties(rstmdb_static PROPERTIES EXPORT_NAME rstmdb_static)
target_link_options(rstmdb_shared PRIVATE -Wl,--version-script=${CMAKE_CURRENT_LIST_DIR}/rstmdb.map)
set_property(TARGET rstmdb_shared APPEND PROPERTY LINK_DEPENDS ${CMAKE_CURRENT_LIST_DIR}/rstmdb.map)

install(TARGETS rstmdb_shared rstmdb_static EXPORT rstmdbTargets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR}
  INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(DIRECTORY ${PROJECT_SOURCE_DIR}/include/rstmdb
  DESTINATION ${CMAKE_INSTALL_INCLUDEDIR} FILES_MATCHING PATTERN "*.h")

install(EXPORT rstmdbTargets NAMESPACE rstmdb:: DESTINATION ${RSTMDB_CMAKE_DIR})
configure_package_config_file(${CMAKE_CURRENT_LIST_DIR}/rstmdbConfig.cmake.in
  ${CMAKE_CURRENT_BINARY_DIR}/rstmdbConfig.cmake INSTALL_DESTINATION ${RSTMDB_CMAKE_DIR})
write_basic_package_version_file(${CMAKE_CURRENT_BINARY_DIR}/rstmdbConfigVersion.cmake
  VERSION ${PROJECT_VERSION} COMPATIBILITY SameMinorVersion)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/rstmdbConfig.cmake
  ${CMAKE_CURRENT_BINARY_DIR}/rstmdbConfigVersion.cmake DESTINATION ${RSTMDB_CMAKE_DIR})

# rstmdb.pc: the .pc wants paths relative to ${prefix} where it can have them,
# so a relocated prefix (DESTDIR packaging) still works.
foreach(kind LIBDIR INCLUDEDIR)
  if(IS_ABSOLUTE "${CMAKE_INSTALL_${kind}}")
    set(RSTMDB_PC_${kind} "${CMAKE_INSTALL_${kind}}")
  else()
    set(RSTMDB_PC_${kind} "\${prefix}/${CMAKE_INSTALL_${kind}}")
  endif()
endforeach()
# ${pcfiledir} makes the prefix follow the installed tree: `cmake --install
# --prefix X` after configuring for /usr/local must still point at X.
if(IS_ABSOLUTE "${CMAKE_INSTALL_LIBDIR}")
  set(RSTMDB_PC_PREFIX "${CMAKE_INSTALL_PREFIX}")
else()
  file(RELATIVE_PATH _pc_up "/p/${CMAKE_INSTALL_LIBDIR}/pkgconfig" "/p")
  string(REGEX REPLACE "/$" "" _pc_up "${_pc_up}")
  set(RSTMDB_PC_PREFIX "\${pcfiledir}/${_pc_up}")
endif()
configure_file(${CMAKE_CURRENT_LIST_DIR}/rstmdb.pc.in ${CMAKE_CURRENT_BINARY_DIR}/rstmdb.pc @ONLY)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/rstmdb.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
