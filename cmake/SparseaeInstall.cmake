# Installs libsparseae.a, the public headers and the CMake package, so that another project does
#   find_package(sparseae REQUIRED)
#   target_link_libraries(app PRIVATE sparseae::sparseae)
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

set(SPARSEAE_CMAKE_DIR "${CMAKE_INSTALL_LIBDIR}/cmake/sparseae")
install(TARGETS sparseae EXPORT sparseaeTargets
  ARCHIVE DESTINATION "${CMAKE_INSTALL_LIBDIR}"
  INCLUDES DESTINATION "${CMAKE_INSTALL_INCLUDEDIR}")
install(DIRECTORY include/sparseae DESTINATION "${CMAKE_INSTALL_INCLUDEDIR}")
install(TARGETS sae RUNTIME DESTINATION "${CMAKE_INSTALL_BINDIR}")
install(EXPORT sparseaeTargets NAMESPACE sparseae:: DESTINATION "${SPARSEAE_CMAKE_DIR}")

configure_package_config_file(cmake/sparseaeConfig.cmake.in
  "${CMAKE_CURRENT_BINARY_DIR}/sparseaeConfig.cmake"
  INSTALL_DESTINATION "${SPARSEAE_CMAKE_DIR}")
write_basic_package_version_file("${CMAKE_CURRENT_BINARY_DIR}/sparseaeConfigVersion.cmake"
  COMPATIBILITY SameMinorVersion)
install(FILES
  "${CMAKE_CURRENT_BINARY_DIR}/sparseaeConfig.cmake"
  "${CMAKE_CURRENT_BINARY_DIR}/sparseaeConfigVersion.cmake"
  cmake/FindSparseaeOpenBLAS.cmake
  DESTINATION "${SPARSEAE_CMAKE_DIR}")
