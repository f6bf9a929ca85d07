#pragma once
// Status checks for the CUDA runtime, cuBLAS, cuSPARSE and cuSOLVER. Each macro evaluates its
// argument once and, on failure, throws sparseae::Error with a one-line message naming the call,
// file:line and the library's own name and description of the status, e.g.
//   cudaMalloc(&pointer, bytes) failed at cuda_backend.cpp:42: CUDA error
//   cudaErrorMemoryAllocation (out of memory)
// Usable from host code compiled by either the C++ compiler or nvcc.
#include <cublas_v2.h>
#include <cuda_runtime_api.h>
#include <cusolver_common.h>
#include <cusparse.h>

namespace sparseae::detail {

[[noreturn]] void throw_cuda_error(cudaError_t status, const char* call, const char* file,
                                   int line);
[[noreturn]] void throw_cublas_error(cublasStatus_t status, const char* call, const char* file,
                                     int line);
[[noreturn]] void throw_cusparse_error(cusparseStatus_t status, const char* call, const char* file,
                                       int line);
[[noreturn]] void throw_cusolver_error(cusolverStatus_t status, const char* call, const char* file,
                                       int line);

// "CUSOLVER_STATUS_INVALID_VALUE" etc.; cuSOLVER itself has no such function.
const char* cusolver_status_name(cusolverStatus_t status);

}  // namespace sparseae::detail

// The call is stringified here, before macro expansion, so the message shows it as written.
#define SAE_DETAIL_CHECK(type, success, thrower, call, text)                    \
  do {                                                                          \
    const type sae_check_status_ = (call);                                      \
    if (sae_check_status_ != (success))                                         \
      ::sparseae::detail::thrower(sae_check_status_, text, __FILE__, __LINE__); \
  } while (false)

#define SAE_CUDA_CHECK(call) \
  SAE_DETAIL_CHECK(cudaError_t, cudaSuccess, throw_cuda_error, call, #call)
#define SAE_CUBLAS_CHECK(call) \
  SAE_DETAIL_CHECK(cublasStatus_t, CUBLAS_STATUS_SUCCESS, throw_cublas_error, call, #call)
#define SAE_CUSPARSE_CHECK(call) \
  SAE_DETAIL_CHECK(cusparseStatus_t, CUSPARSE_STATUS_SUCCESS, throw_cusparse_error, call, #call)
#define SAE_CUSOLVER_CHECK(call) \
  SAE_DETAIL_CHECK(cusolverStatus_t, CUSOLVER_STATUS_SUCCESS, throw_cusolver_error, call, #call)
