// The status-check macros of kernels/cuda_check.hpp. Each test passes a literal status, so none
// needs a GPU (or even a driver): the name and description tables are host code.
#include <gtest/gtest.h>

#include <string>

#include "kernels/cuda_check.hpp"
#include "sparseae/error.hpp"
#include "test_util.hpp"

namespace sparseae {
namespace {

using test::error_message;

void expect_contains(const std::string& message, const std::string& part) {
  EXPECT_NE(message.find(part), std::string::npos) << "'" << part << "' missing from: " << message;
}

// Where the message says the failing call was: this file, at line.
std::string location(int line) { return "cuda_check_test.cpp:" + std::to_string(line); }

TEST(CudaCheck, CudaFailureNamesCallLocationAndError) {
  int line = 0;
  const std::string message = error_message([&] {
    line = __LINE__ + 1;
    SAE_CUDA_CHECK(cudaErrorInvalidValue);
  });
  expect_contains(message, "cudaErrorInvalidValue failed at");
  expect_contains(message, location(line));
  expect_contains(message, "CUDA error cudaErrorInvalidValue");
  expect_contains(message, cudaGetErrorString(cudaErrorInvalidValue));
  EXPECT_EQ(message.find('\n'), std::string::npos) << "the message is one line";
}

TEST(CudaCheck, CublasFailureNamesCallLocationAndError) {
  int line = 0;
  const std::string message = error_message([&] {
    line = __LINE__ + 1;
    SAE_CUBLAS_CHECK(CUBLAS_STATUS_INVALID_VALUE);
  });
  expect_contains(message, "CUBLAS_STATUS_INVALID_VALUE failed at");
  expect_contains(message, location(line));
  expect_contains(message, "cuBLAS error CUBLAS_STATUS_INVALID_VALUE");
  expect_contains(message, cublasGetStatusString(CUBLAS_STATUS_INVALID_VALUE));
}

TEST(CudaCheck, CusparseFailureNamesCallLocationAndError) {
  int line = 0;
  const std::string message = error_message([&] {
    line = __LINE__ + 1;
    SAE_CUSPARSE_CHECK(CUSPARSE_STATUS_INVALID_VALUE);
  });
  expect_contains(message, "CUSPARSE_STATUS_INVALID_VALUE failed at");
  expect_contains(message, location(line));
  expect_contains(message, "cuSPARSE error CUSPARSE_STATUS_INVALID_VALUE");
  expect_contains(message, cusparseGetErrorString(CUSPARSE_STATUS_INVALID_VALUE));
}

TEST(CudaCheck, CusolverFailureNamesCallLocationAndError) {
  int line = 0;
  const std::string message = error_message([&] {
    line = __LINE__ + 1;
    SAE_CUSOLVER_CHECK(CUSOLVER_STATUS_INVALID_VALUE);
  });
  expect_contains(message, "CUSOLVER_STATUS_INVALID_VALUE failed at");
  expect_contains(message, location(line));
  expect_contains(message, "cuSOLVER error CUSOLVER_STATUS_INVALID_VALUE (status 3)");
}

// Stands for a library entry point that is a macro, as cublasCreate is (for cublasCreate_v2).
#define SAE_TEST_FAILING_CALL(handle) ((void)(handle), CUBLAS_STATUS_NOT_INITIALIZED)

TEST(CudaCheck, MessageShowsTheCallAsWrittenNotItsExpansion) {
  const std::string message = error_message([] {
    cublasHandle_t handle = nullptr;
    SAE_CUBLAS_CHECK(SAE_TEST_FAILING_CALL(&handle));
  });
  expect_contains(message, "SAE_TEST_FAILING_CALL(&handle) failed at");
}

#undef SAE_TEST_FAILING_CALL

TEST(CudaCheck, SuccessDoesNotThrowAndEvaluatesTheCallOnce) {
  int calls = 0;
  const auto succeed = [&calls](auto status) {
    ++calls;
    return status;
  };
  EXPECT_NO_THROW(SAE_CUDA_CHECK(succeed(cudaSuccess)));
  EXPECT_NO_THROW(SAE_CUBLAS_CHECK(succeed(CUBLAS_STATUS_SUCCESS)));
  EXPECT_NO_THROW(SAE_CUSPARSE_CHECK(succeed(CUSPARSE_STATUS_SUCCESS)));
  EXPECT_NO_THROW(SAE_CUSOLVER_CHECK(succeed(CUSOLVER_STATUS_SUCCESS)));
  EXPECT_EQ(calls, 4);
}

TEST(CudaCheck, FailureEvaluatesTheCallOnce) {
  int calls = 0;
  const auto fail = [&calls] {
    ++calls;
    return CUSPARSE_STATUS_INTERNAL_ERROR;
  };
  EXPECT_THROW(SAE_CUSPARSE_CHECK(fail()), Error);
  EXPECT_EQ(calls, 1);
}

TEST(CudaCheck, CusolverStatusNamesCoverEveryStatus) {
  EXPECT_STREQ(detail::cusolver_status_name(CUSOLVER_STATUS_SUCCESS), "CUSOLVER_STATUS_SUCCESS");
  EXPECT_STREQ(detail::cusolver_status_name(CUSOLVER_STATUS_NOT_INITIALIZED),
               "CUSOLVER_STATUS_NOT_INITIALIZED");
  EXPECT_STREQ(detail::cusolver_status_name(CUSOLVER_STATUS_ZERO_PIVOT),
               "CUSOLVER_STATUS_ZERO_PIVOT");
  EXPECT_STREQ(detail::cusolver_status_name(CUSOLVER_STATUS_IRS_MATRIX_SINGULAR),
               "CUSOLVER_STATUS_IRS_MATRIX_SINGULAR");
  EXPECT_STREQ(detail::cusolver_status_name(CUSOLVER_STATUS_INVALID_WORKSPACE),
               "CUSOLVER_STATUS_INVALID_WORKSPACE");
  EXPECT_STREQ(detail::cusolver_status_name(static_cast<cusolverStatus_t>(999)),
               "CUSOLVER_STATUS_UNKNOWN");
}

}  // namespace
}  // namespace sparseae
