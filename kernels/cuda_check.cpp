#include "kernels/cuda_check.hpp"

#include <cstring>
#include <string>

#include "sparseae/error.hpp"

namespace sparseae::detail {

namespace {

// __FILE__ is an absolute build path; the file name alone is unique in this project and keeps
// the message one short line.
const char* base_name(const char* file) {
  const char* slash = std::strrchr(file, '/');
  return slash != nullptr ? slash + 1 : file;
}

[[noreturn]] void throw_status(const char* call, const char* file, int line, const char* library,
                               const std::string& status) {
  throw Error(std::string(call) + " failed at " + base_name(file) + ":" + std::to_string(line) +
              ": " + library + " error " + status);
}

struct CusolverStatusName {
  cusolverStatus_t status;
  const char* name;
};

#define SAE_CUSOLVER_STATUS(name) \
  CusolverStatusName { name, #name }
constexpr CusolverStatusName kCusolverStatusNames[] = {
    SAE_CUSOLVER_STATUS(CUSOLVER_STATUS_SUCCESS),
    SAE_CUSOLVER_STATUS(CUSOLVER_STATUS_NOT_INITIALIZED),
    SAE_CUSOLVER_STATUS(CUSOLVER_STATUS_ALLOC_FAILED),
    SAE_CUSOLVER_STATUS(CUSOLVER_STATUS_INVALID_VALUE),
    SAE_CUSOLVER_STATUS(CUSOLVER_STATUS_ARCH_MISMATCH),
    SAE_CUSOLVER_STATUS(CUSOLVER_STATUS_MAPPING_ERROR),
    SAE_CUSOLVER_STATUS(CUSOLVER_STATUS_EXECUTION_FAILED),
    SAE_CUSOLVER_STATUS(CUSOLVER_STATUS_INTERNAL_ERROR),
    SAE_CUSOLVER_STATUS(CUSOLVER_STATUS_MATRIX_TYPE_NOT_SUPPORTED),
    SAE_CUSOLVER_STATUS(CUSOLVER_STATUS_NOT_SUPPORTED),
    SAE_CUSOLVER_STATUS(CUSOLVER_STATUS_ZERO_PIVOT),
    SAE_CUSOLVER_STATUS(CUSOLVER_STATUS_INVALID_LICENSE),
    SAE_CUSOLVER_STATUS(CUSOLVER_STATUS_IRS_PARAMS_NOT_INITIALIZED),
    SAE_CUSOLVER_STATUS(CUSOLVER_STATUS_IRS_PARAMS_INVALID),
    SAE_CUSOLVER_STATUS(CUSOLVER_STATUS_IRS_PARAMS_INVALID_PREC),
    SAE_CUSOLVER_STATUS(CUSOLVER_STATUS_IRS_PARAMS_INVALID_REFINE),
    SAE_CUSOLVER_STATUS(CUSOLVER_STATUS_IRS_PARAMS_INVALID_MAXITER),
    SAE_CUSOLVER_STATUS(CUSOLVER_STATUS_IRS_INTERNAL_ERROR),
    SAE_CUSOLVER_STATUS(CUSOLVER_STATUS_IRS_NOT_SUPPORTED),
    SAE_CUSOLVER_STATUS(CUSOLVER_STATUS_IRS_OUT_OF_RANGE),
    SAE_CUSOLVER_STATUS(CUSOLVER_STATUS_IRS_NRHS_NOT_SUPPORTED_FOR_REFINE_GMRES),
    SAE_CUSOLVER_STATUS(CUSOLVER_STATUS_IRS_INFOS_NOT_INITIALIZED),
    SAE_CUSOLVER_STATUS(CUSOLVER_STATUS_IRS_INFOS_NOT_DESTROYED),
    SAE_CUSOLVER_STATUS(CUSOLVER_STATUS_IRS_MATRIX_SINGULAR),
    SAE_CUSOLVER_STATUS(CUSOLVER_STATUS_INVALID_WORKSPACE),
};
#undef SAE_CUSOLVER_STATUS

}  // namespace

const char* cusolver_status_name(cusolverStatus_t status) {
  for (const auto& entry : kCusolverStatusNames)
    if (entry.status == status) return entry.name;
  return "CUSOLVER_STATUS_UNKNOWN";
}

void throw_cuda_error(cudaError_t status, const char* call, const char* file, int line) {
  // A failed runtime call also latches as this thread's last error; clear it, or the next
  // launch check (cudaGetLastError) would report this failure a second time. Sticky errors
  // (a faulted context) stay whatever we do.
  static_cast<void>(cudaGetLastError());
  throw_status(call, file, line, "CUDA",
               std::string(cudaGetErrorName(status)) + " (" + cudaGetErrorString(status) + ")");
}

void throw_cublas_error(cublasStatus_t status, const char* call, const char* file, int line) {
  throw_status(
      call, file, line, "cuBLAS",
      std::string(cublasGetStatusName(status)) + " (" + cublasGetStatusString(status) + ")");
}

void throw_cusparse_error(cusparseStatus_t status, const char* call, const char* file, int line) {
  throw_status(
      call, file, line, "cuSPARSE",
      std::string(cusparseGetErrorName(status)) + " (" + cusparseGetErrorString(status) + ")");
}

void throw_cusolver_error(cusolverStatus_t status, const char* call, const char* file, int line) {
  throw_status(call, file, line, "cuSOLVER",
               std::string(cusolver_status_name(status)) + " (status " +
                   std::to_string(static_cast<int>(status)) + ")");
}

}  // namespace sparseae::detail
