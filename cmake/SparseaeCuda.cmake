# Decides whether the cuda backend is built. CUDA is on by default when nvcc is found; turn it off
# with -DSPARSEAE_ENABLE_CUDA=OFF. The default architecture is 90 (H100/H200); choose others with
# the usual -DCMAKE_CUDA_ARCHITECTURES="80;90".
set(SPARSEAE_HAVE_CUDA OFF)
if(SPARSEAE_ENABLE_CUDA)
  include(CheckLanguage)
  check_language(CUDA)
  if(CMAKE_CUDA_COMPILER)
    if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES)
      set(CMAKE_CUDA_ARCHITECTURES 90 CACHE STRING "CUDA architectures to build for")
    endif()
    enable_language(CUDA)
    set(CMAKE_CUDA_STANDARD 17)
    set(CMAKE_CUDA_STANDARD_REQUIRED ON)
    find_package(CUDAToolkit REQUIRED)
    set(SPARSEAE_HAVE_CUDA ON)
    message(STATUS "sparseae: cuda backend ON (architectures ${CMAKE_CUDA_ARCHITECTURES}, "
                   "CUDA ${CUDAToolkit_VERSION})")
  else()
    message(STATUS "sparseae: nvcc not found, building the cpu backend only")
  endif()
else()
  message(STATUS "sparseae: cuda backend turned off (SPARSEAE_ENABLE_CUDA=OFF)")
endif()
