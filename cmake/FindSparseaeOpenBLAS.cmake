# Finds OpenBLAS itself, never the reference BLAS that Debian installs as the default libblas
# (about 30x slower). Defines the imported target sparseae::openblas.
#
# The OpenMP build comes first: it shares libgomp's thread pool with our own OpenMP loops. The
# pthread build keeps a pool of its own whose idle threads spin in sched_yield and took most of
# the cpu backend's time on 2 cores (measured: 1 100 vs 115 000 samples/s on a small model).
find_path(SparseaeOpenBLAS_INCLUDE_DIR cblas.h
  PATH_SUFFIXES openblas-openmp openblas-pthread openblas openblas64-pthread
  PATHS /usr/include/x86_64-linux-gnu /usr/include/aarch64-linux-gnu /usr/include
  NO_DEFAULT_PATH)
find_path(SparseaeOpenBLAS_INCLUDE_DIR cblas.h PATH_SUFFIXES openblas)
# SPARSEAE_OPENBLAS_STATIC links libopenblas.a, so binaries carried to a machine without
# OpenBLAS (the GPU check bundle) need nothing beyond the C and Fortran runtimes.
if(SPARSEAE_OPENBLAS_STATIC)
  set(_sparseae_openblas_names libopenblas.a)
else()
  set(_sparseae_openblas_names openblas)
endif()
find_library(SparseaeOpenBLAS_LIBRARY NAMES ${_sparseae_openblas_names}
  PATH_SUFFIXES openblas-openmp openblas-pthread)

include(FindPackageHandleStandardArgs)
find_package_handle_standard_args(SparseaeOpenBLAS
  REQUIRED_VARS SparseaeOpenBLAS_LIBRARY SparseaeOpenBLAS_INCLUDE_DIR
  REASON_FAILURE_MESSAGE "install Debian's libopenblas-dev")

if(SparseaeOpenBLAS_FOUND AND NOT TARGET sparseae::openblas)
  add_library(sparseae::openblas UNKNOWN IMPORTED)
  set_target_properties(sparseae::openblas PROPERTIES
    IMPORTED_LOCATION "${SparseaeOpenBLAS_LIBRARY}"
    INTERFACE_INCLUDE_DIRECTORIES "${SparseaeOpenBLAS_INCLUDE_DIR}")
  if(SPARSEAE_OPENBLAS_STATIC)
    set_property(TARGET sparseae::openblas PROPERTY INTERFACE_LINK_LIBRARIES gfortran pthread m)
  endif()
endif()
mark_as_advanced(SparseaeOpenBLAS_INCLUDE_DIR SparseaeOpenBLAS_LIBRARY)
