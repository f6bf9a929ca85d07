# Finds OpenBLAS itself, never the reference BLAS that Debian installs as the default libblas
# (about 30x slower). Defines the imported targets sparseae::openblas and sparseae::lapacke.
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

# LAPACKE (the C interface of LAPACK, for the PCA's eigen-decomposition) from Debian's
# liblapacke-dev, always linked statically: its LAPACK calls then resolve to OpenBLAS's own LAPACK
# above. The shared liblapacke would load liblapack.so.3, which Debian's alternatives may point at
# the reference LAPACK or at OpenBLAS's pthread build (a second thread pool).
find_path(SparseaeOpenBLAS_LAPACKE_INCLUDE_DIR lapacke.h)
find_library(SparseaeOpenBLAS_LAPACKE_LIBRARY NAMES liblapacke.a)

include(FindPackageHandleStandardArgs)
find_package_handle_standard_args(SparseaeOpenBLAS
  REQUIRED_VARS SparseaeOpenBLAS_LIBRARY SparseaeOpenBLAS_INCLUDE_DIR
                SparseaeOpenBLAS_LAPACKE_LIBRARY SparseaeOpenBLAS_LAPACKE_INCLUDE_DIR
  REASON_FAILURE_MESSAGE "install Debian's libopenblas-openmp-dev and liblapacke-dev")

if(SparseaeOpenBLAS_FOUND AND NOT TARGET sparseae::openblas)
  add_library(sparseae::openblas UNKNOWN IMPORTED)
  set_target_properties(sparseae::openblas PROPERTIES
    IMPORTED_LOCATION "${SparseaeOpenBLAS_LIBRARY}"
    INTERFACE_INCLUDE_DIRECTORIES "${SparseaeOpenBLAS_INCLUDE_DIR}")
  if(SPARSEAE_OPENBLAS_STATIC)
    set_property(TARGET sparseae::openblas PROPERTY INTERFACE_LINK_LIBRARIES gfortran pthread m)
  endif()
endif()
if(SparseaeOpenBLAS_FOUND AND NOT TARGET sparseae::lapacke)
  add_library(sparseae::lapacke STATIC IMPORTED)
  set_target_properties(sparseae::lapacke PROPERTIES
    IMPORTED_LOCATION "${SparseaeOpenBLAS_LAPACKE_LIBRARY}"
    INTERFACE_INCLUDE_DIRECTORIES "${SparseaeOpenBLAS_LAPACKE_INCLUDE_DIR}"
    INTERFACE_LINK_LIBRARIES sparseae::openblas)
endif()
mark_as_advanced(SparseaeOpenBLAS_INCLUDE_DIR SparseaeOpenBLAS_LIBRARY
                 SparseaeOpenBLAS_LAPACKE_INCLUDE_DIR SparseaeOpenBLAS_LAPACKE_LIBRARY)
