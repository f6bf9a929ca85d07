// Google Benchmark micro-benchmarks of the step's custom kernels (kernels/*.cu on cuda, their
// twins in the cpu backend), each against its memory-bandwidth floor: the bytes the op must move
// at the least (every operand read once, every result written once) at the backend's copy
// bandwidth, measured at start-up by a large device-to-device copy.
//
//   kernels_bench [--backend=cpu|cuda] [Google Benchmark flags, e.g. --benchmark_filter=adam]
//
// Counters: bytes_per_second (Google Benchmark's), and of_bandwidth: the fraction of the copy
// bandwidth achieved (wall-clock time over the whole loop), 1 meaning the op runs at its floor. On
// cuda an iteration queues kOpsPerIteration launches and waits once, so that the wait's latency
// does not hide the kernels' time; the reported time is that of kOpsPerIteration ops.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <numeric>
#include <string>
#include <vector>

#include "sparseae/backend.hpp"
#include "sparseae/buffer.hpp"
#include "sparseae/csr.hpp"
#include "sparseae/error.hpp"
#include "sparseae/generator.hpp"

namespace {

using namespace sparseae;

constexpr int kOpsPerIteration = 16;

Backend* g_backend = nullptr;
double g_copy_bandwidth = 0;  // bytes/s, read + write counted

double measure_copy_bandwidth(Backend& backend) {
  const std::size_t bytes = std::size_t{backend.kind() == BackendKind::cpu ? 256u : 1024u} << 20;
  Buffer<char> from(backend, bytes);
  Buffer<char> to(backend, bytes);
  from.fill_zero();
  to.fill_zero();
  double best = 0;
  for (int r = 0; r < 4; ++r) {
    backend.synchronize();
    const auto start = std::chrono::steady_clock::now();
    backend.copy_bytes(to.data(), from.data(), bytes);
    backend.synchronize();
    const double s =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (r > 0) best = best == 0 ? s : std::min(best, s);  // r == 0 warms up
  }
  return 2.0 * static_cast<double>(bytes) / best;
}

// Runs op kOpsPerIteration times per iteration and reports bytes_per_op against the floor.
template <typename Op>
void run(benchmark::State& state, double bytes_per_op, const Op& op) {
  Backend& backend = *g_backend;
  op();  // warm-up: workspace growth, first-touch
  backend.synchronize();
  const auto start = std::chrono::steady_clock::now();
  for (auto _ : state) {
    for (int i = 0; i < kOpsPerIteration; ++i) op();
    backend.synchronize();
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const double bytes = bytes_per_op * kOpsPerIteration * static_cast<double>(state.iterations());
  state.SetBytesProcessed(static_cast<std::int64_t>(bytes));
  // A plain counter (Google Benchmark's rate counters would print it as a rate per second).
  state.counters["of_bandwidth"] = bytes / g_copy_bandwidth / seconds;
}

std::vector<float> ramp(std::int64_t n) {
  std::vector<float> values(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) values[i] = static_cast<float>(i % 97) * 0.01f - 0.4f;
  return values;
}

// Rows x cols of the users' model at batch 1024 and 4096: the first hidden layer and the output.
void layer_shapes(benchmark::internal::Benchmark* b) {
  for (std::int64_t rows : {1024, 4096})
    for (std::int64_t cols : {256, 512}) b->Args({rows, cols});
}

void BM_bias_relu_forward(benchmark::State& state) {
  const std::int64_t rows = state.range(0);
  const std::int64_t cols = state.range(1);
  Buffer<float> z(*g_backend, ramp(rows * cols));
  Buffer<float> bias(*g_backend, ramp(cols));
  const DenseView view = z.matrix(rows, cols);
  // In place, as the network runs it: read z, write y.
  run(state, 8.0 * static_cast<double>(rows * cols),
      [&] { g_backend->bias_activation_forward(Activation::relu, view, bias.data(), view); });
}
BENCHMARK(BM_bias_relu_forward)->Apply(layer_shapes)->UseRealTime();

// A relu layer of the users' model into rows x cols from 256 inputs, forward: the GEMM and then
// the bias + relu kernel (fused = 0), or one gemm_bias_activation (fused = 1: on cuda the bias and
// relu in cublasLt's epilogue). Which is faster decides LayerForward's default; the bytes counted
// are the output written once, so of_bandwidth compares the two paths, not a floor.
void BM_layer_forward(benchmark::State& state) {
  constexpr std::int64_t kInputs = 256;
  const std::int64_t rows = state.range(0);
  const std::int64_t cols = state.range(1);
  const bool fused = state.range(2) != 0;
  Buffer<float> x(*g_backend, ramp(rows * kInputs));
  Buffer<float> w(*g_backend, ramp(kInputs * cols));
  Buffer<float> bias(*g_backend, ramp(cols));
  Buffer<float> y(*g_backend, static_cast<std::size_t>(rows * cols));
  const ConstDenseView input = x.matrix(rows, kInputs);
  const ConstDenseView weights = w.matrix(kInputs, cols);
  const DenseView out = y.matrix(rows, cols);
  run(state, 4.0 * static_cast<double>(rows * cols), [&] {
    if (fused) {
      g_backend->gemm_bias_activation(Activation::relu, Transpose::no, Transpose::no, input,
                                      weights, bias.data(), out);
    } else {
      g_backend->gemm(Transpose::no, Transpose::no, 1.0f, input, weights, 0.0f, out);
      g_backend->bias_activation_forward(Activation::relu, out, bias.data(), out);
    }
  });
}
BENCHMARK(BM_layer_forward)
    ->ArgsProduct({{1024, 4096}, {128, 512}, {0, 1}})
    ->ArgNames({"rows", "cols", "fused"})
    ->UseRealTime();

void BM_relu_backward_with_bias_gradient(benchmark::State& state) {
  const std::int64_t rows = state.range(0);
  const std::int64_t cols = state.range(1);
  Buffer<float> y(*g_backend, ramp(rows * cols));
  Buffer<float> dy(*g_backend, ramp(rows * cols));
  Buffer<float> bias_grad(*g_backend, static_cast<std::size_t>(cols));
  const DenseView yv = y.matrix(rows, cols);
  const DenseView dyv = dy.matrix(rows, cols);
  // Read y and dy, write dz (in place over dy); the bias gradient is cols floats.
  run(state, 12.0 * static_cast<double>(rows * cols),
      [&] { g_backend->activation_backward(Activation::relu, yv, dyv, dyv, bias_grad.data()); });
}
BENCHMARK(BM_relu_backward_with_bias_gradient)->Apply(layer_shapes)->UseRealTime();

// The generator's rows (about 20 non-zeros each), as the trainer's batches hold them.
HostCsr batch_counts(std::int64_t rows) {
  TopicDataConfig config;
  config.rows = rows;
  return generate_topic_counts(config);
}

void loss_benchmark(benchmark::State& state, LossKind loss) {
  const std::int64_t rows = state.range(0);
  const HostCsr target_host = batch_counts(rows);
  const std::int64_t cols = target_host.cols;
  const BackendCsr target(*g_backend, target_host);
  Buffer<float> y(*g_backend, ramp(rows * cols));
  Buffer<float> grad(*g_backend, static_cast<std::size_t>(rows * cols));
  Buffer<float> row_loss(*g_backend, static_cast<std::size_t>(rows));
  // Read y, write the gradient; read the target's non-zeros (value and column) and offsets.
  const double bytes = 8.0 * static_cast<double>(rows * cols) +
                       8.0 * static_cast<double>(target_host.nnz()) + 8.0 * (rows + 1);
  run(state, bytes, [&] {
    g_backend->reconstruction_loss(loss, LossParams{}, y.matrix(rows, cols), target.view(),
                                   grad.matrix(rows, cols), row_loss.data());
  });
}

void BM_mse_loss_csr_target(benchmark::State& state) { loss_benchmark(state, LossKind::mse); }
BENCHMARK(BM_mse_loss_csr_target)->Arg(1024)->Arg(4096)->UseRealTime();

void BM_poisson_loss_csr_target(benchmark::State& state) {
  loss_benchmark(state, LossKind::poisson);
}
BENCHMARK(BM_poisson_loss_csr_target)->Arg(1024)->Arg(4096)->UseRealTime();

void BM_adam_step(benchmark::State& state) {
  const std::int64_t n = state.range(0);
  Buffer<float> params(*g_backend, ramp(n));
  Buffer<float> grads(*g_backend, ramp(n));
  Buffer<float> m(*g_backend, static_cast<std::size_t>(n));
  Buffer<float> v(*g_backend, static_cast<std::size_t>(n));
  m.fill_zero();
  v.fill_zero();
  const OptimizerConfig config;
  std::int64_t step = 0;
  // Read parameters, gradients and both moments; write parameters and both moments.
  run(state, 28.0 * static_cast<double>(n), [&] {
    g_backend->optimizer_step(config, ++step, n, params.data(), grads.data(), m.data(), v.data(),
                              nullptr);
  });
}
// 329 504: the users' model's parameters (ModelLayout::describe).
BENCHMARK(BM_adam_step)->Arg(329504)->Arg(1 << 22)->UseRealTime();

// --decoder-norm after each step: the first decoder layer's latent x width weights, a read and a
// write of each. 32 x 128: the users' model (its latent into its 128-wide decoder layer); 4096 x
// 1024: a wide TopK dictionary.
void BM_unit_norm_rows(benchmark::State& state) {
  const std::int64_t rows = state.range(0);
  const std::int64_t cols = state.range(1);
  Buffer<float> weights(*g_backend, ramp(rows * cols));
  const DenseView view = weights.matrix(rows, cols);
  run(state, 8.0 * static_cast<double>(rows * cols), [&] { g_backend->unit_norm_rows(view); });
}
BENCHMARK(BM_unit_norm_rows)->Args({32, 128})->Args({4096, 1024})->UseRealTime();

void BM_gather_rows(benchmark::State& state) {
  const std::int64_t batch = state.range(0);
  // Generated once: Google Benchmark calls this function again for each trial run.
  static const HostCsr source_host = batch_counts(100000);
  const BackendCsr source(*g_backend, source_host);
  std::vector<std::int64_t> ids(static_cast<std::size_t>(batch));
  for (std::int64_t i = 0; i < batch; ++i) ids[i] = (i * 7919) % source_host.rows;
  Buffer<std::int64_t> row_ids(*g_backend, ids);
  std::int64_t nnz = 0;
  for (std::int64_t id : ids) nnz += source_host.row_offsets[id + 1] - source_host.row_offsets[id];
  CsrBatchBuffer out(*g_backend, source_host.cols, batch, nnz);
  // Read the rows' non-zeros and offsets and the ids; write the batch's non-zeros and offsets.
  const double bytes = 16.0 * static_cast<double>(nnz) + 32.0 * static_cast<double>(batch);
  run(state, bytes,
      [&] { g_backend->gather_rows(source.view(), row_ids.data(), batch, out.output()); });
}
BENCHMARK(BM_gather_rows)->Arg(1024)->Arg(4096)->UseRealTime();

// The dense path's batch gather: batch rows of 512 columns from 20 000, ids spread as a shuffle
// spreads them.
void BM_gather_dense_rows(benchmark::State& state) {
  constexpr std::int64_t kSourceRows = 20000;
  constexpr std::int64_t kCols = 512;
  const std::int64_t batch = state.range(0);
  Buffer<float> source(*g_backend, ramp(kSourceRows * kCols));
  std::vector<std::int64_t> ids(static_cast<std::size_t>(batch));
  for (std::int64_t i = 0; i < batch; ++i) ids[i] = (i * 7919) % kSourceRows;
  Buffer<std::int64_t> row_ids(*g_backend, ids);
  Buffer<float> out(*g_backend, static_cast<std::size_t>(batch * kCols));
  // Read the rows and the ids; write the batch.
  run(state, 8.0 * static_cast<double>(batch * kCols) + 8.0 * static_cast<double>(batch), [&] {
    g_backend->gather_dense_rows(source.matrix(kSourceRows, kCols), row_ids.data(), batch,
                                 out.matrix(batch, kCols));
  });
}
BENCHMARK(BM_gather_dense_rows)->Arg(1024)->Arg(4096)->UseRealTime();

// The epoch's shuffle of n row ids (a radix sort of hashed keys on cuda).
void BM_random_permutation(benchmark::State& state) {
  const std::int64_t n = state.range(0);
  Buffer<std::int64_t> out(*g_backend, static_cast<std::size_t>(n));
  std::uint64_t seed = 0;
  // Write n ids: the floor ignores the sort's passes over its keys.
  run(state, 8.0 * static_cast<double>(n),
      [&] { g_backend->random_permutation(++seed, n, out.data()); });
}
BENCHMARK(BM_random_permutation)->Arg(100000)->Arg(1000000)->UseRealTime();

// The activity penalties on a latent layer of the users' model (rows x 32).
void penalty_benchmark(benchmark::State& state, bool kl) {
  constexpr std::int64_t kLatent = 32;
  const std::int64_t rows = state.range(0);
  std::vector<float> activations = ramp(rows * kLatent);
  for (float& a : activations) a = 0.5f + 0.5f * a;  // in (0, 1): sigmoid outputs for KL
  Buffer<float> a(*g_backend, activations);
  Buffer<float> grad(*g_backend, ramp(rows * kLatent));
  Buffer<float> loss(*g_backend, 1);
  const DenseView av = a.matrix(rows, kLatent);
  const DenseView gv = grad.matrix(rows, kLatent);
  // Read a; read and write the gradient.
  run(state, 12.0 * static_cast<double>(rows * kLatent), [&] {
    if (kl)
      g_backend->kl_sparsity_penalty(0.05f, 1e-3f, av, gv, loss.data());
    else
      g_backend->l1_activity_penalty(1e-3f, av, gv, loss.data());
  });
}
void BM_l1_activity_penalty(benchmark::State& state) { penalty_benchmark(state, false); }
BENCHMARK(BM_l1_activity_penalty)->Arg(1024)->Arg(4096)->UseRealTime();
void BM_kl_sparsity_penalty(benchmark::State& state) { penalty_benchmark(state, true); }
BENCHMARK(BM_kl_sparsity_penalty)->Arg(1024)->Arg(4096)->UseRealTime();

// The sparse latents' selections, k = 32, in place as the network runs them: the floor reads and
// writes z once (the radix select reads it five times). After the first op z holds the kept
// entries and zeros, which costs the same passes.
void sparse_latent_shapes(benchmark::internal::Benchmark* b) {
  for (std::int64_t rows : {256, 1024})
    for (std::int64_t cols : {1024, 4096}) b->Args({rows, cols});
}

void BM_topk_rows(benchmark::State& state) {
  const std::int64_t rows = state.range(0);
  const std::int64_t cols = state.range(1);
  Buffer<float> z(*g_backend, ramp(rows * cols));
  const DenseView view = z.matrix(rows, cols);
  run(state, 8.0 * static_cast<double>(rows * cols), [&] { g_backend->topk_rows(32, view); });
}
BENCHMARK(BM_topk_rows)->Apply(sparse_latent_shapes)->UseRealTime();

void BM_batch_topk(benchmark::State& state) {
  const std::int64_t rows = state.range(0);
  const std::int64_t cols = state.range(1);
  Buffer<float> z(*g_backend, ramp(rows * cols));
  Buffer<float> threshold(*g_backend, std::vector<float>{-1.0f});
  const DenseView view = z.matrix(rows, cols);
  run(state, 8.0 * static_cast<double>(rows * cols),
      [&] { g_backend->batch_topk(32, view, threshold.data()); });
}
BENCHMARK(BM_batch_topk)->Apply(sparse_latent_shapes)->UseRealTime();

// AuxK's two ops on the same shapes. The counters' update reads the selected code once at the
// most (a column stops at its first non-zero): the code has 32 non-zeros a row, each row's at the
// next 32 columns, so that every latent fires in some row. The backward, with every other latent
// dead and k = 32 auxiliary latents a row, reads pre, z and dz and writes dz once (the counters
// and the bias gradient are a row's worth).
std::vector<std::int32_t> every_other_dead(std::int64_t cols) {
  std::vector<std::int32_t> steps(static_cast<std::size_t>(cols), 0);
  for (std::int64_t c = 0; c < cols; c += 2) steps[c] = 1;
  return steps;
}

std::vector<float> code_of_32_a_row(std::int64_t rows, std::int64_t cols) {
  std::vector<float> z(static_cast<std::size_t>(rows * cols), 0.0f);
  for (std::int64_t r = 0; r < rows; ++r)
    for (std::int64_t j = 0; j < 32; ++j) z[r * cols + (r * 32 + j) % cols] = 1.0f;
  return z;
}

void BM_latent_dead_steps(benchmark::State& state) {
  const std::int64_t rows = state.range(0);
  const std::int64_t cols = state.range(1);
  Buffer<float> z(*g_backend, code_of_32_a_row(rows, cols));
  Buffer<std::int32_t> dead_steps(*g_backend, every_other_dead(cols));
  const ConstDenseView view = z.matrix(rows, cols);
  run(state, 4.0 * static_cast<double>(rows * cols),
      [&] { g_backend->latent_dead_steps(view, dead_steps.data()); });
}
BENCHMARK(BM_latent_dead_steps)->Apply(sparse_latent_shapes)->UseRealTime();

void BM_auxk_backward(benchmark::State& state) {
  const std::int64_t rows = state.range(0);
  const std::int64_t cols = state.range(1);
  Buffer<float> pre(*g_backend, ramp(rows * cols));
  Buffer<float> z(*g_backend, code_of_32_a_row(rows, cols));
  Buffer<float> dz(*g_backend, ramp(rows * cols));
  Buffer<std::int32_t> dead_steps(*g_backend, every_other_dead(cols));
  Buffer<float> bias_grad(*g_backend, static_cast<std::size_t>(cols));
  const DenseView dz_view = dz.matrix(rows, cols);
  run(state, 16.0 * static_cast<double>(rows * cols), [&] {
    g_backend->auxk_backward(32, 1.0f / 32, 0, dead_steps.data(), pre.matrix(rows, cols),
                             z.matrix(rows, cols), dz_view, bias_grad.data());
  });
}
BENCHMARK(BM_auxk_backward)->Apply(sparse_latent_shapes)->UseRealTime();

// The squared gradient norm that clipping reads, over the users' model's parameters.
void BM_sum_of_squares(benchmark::State& state) {
  const std::int64_t n = state.range(0);
  Buffer<float> x(*g_backend, ramp(n));
  Buffer<float> out(*g_backend, 1);
  run(state, 4.0 * static_cast<double>(n),
      [&] { g_backend->sum_of_squares(x.data(), n, out.data()); });
}
BENCHMARK(BM_sum_of_squares)->Arg(329504)->Arg(1 << 22)->UseRealTime();

// A rank's gradient weighted by its share of the batch before the all-reduce (data-parallel
// training), over the users' model's parameters: a read and a write of each.
void BM_scale_values(benchmark::State& state) {
  const std::int64_t n = state.range(0);
  Buffer<float> x(*g_backend, ramp(n));
  run(state, 8.0 * static_cast<double>(n), [&] { g_backend->scale_values(x.data(), n, 0.999f); });
}
BENCHMARK(BM_scale_values)->Arg(337184)->Arg(1 << 22)->UseRealTime();

// Library size on a generated batch: the log1p input transform of its values, and each row's log
// size factor.
void BM_log1p_input(benchmark::State& state) {
  const HostCsr batch_host = batch_counts(state.range(0));
  const std::int64_t n = batch_host.nnz();
  Buffer<float> values(*g_backend, batch_host.values);
  Buffer<float> out(*g_backend, static_cast<std::size_t>(n));
  run(state, 8.0 * static_cast<double>(n),
      [&] { g_backend->transform_values(InputTransform::log1p, values.data(), n, out.data()); });
}
BENCHMARK(BM_log1p_input)->Arg(1024)->Arg(4096)->UseRealTime();

void BM_row_log_size_factors(benchmark::State& state) {
  const std::int64_t rows = state.range(0);
  const HostCsr batch_host = batch_counts(rows);
  const BackendCsr batch(*g_backend, batch_host);
  Buffer<float> out(*g_backend, static_cast<std::size_t>(rows));
  // Read the values and offsets; write a float a row.
  run(state, 4.0 * static_cast<double>(batch_host.nnz()) + 12.0 * static_cast<double>(rows) + 8.0,
      [&] { g_backend->row_log_size_factors(batch.view(), 0.0f, out.data()); });
}
BENCHMARK(BM_row_log_size_factors)->Arg(1024)->Arg(4096)->UseRealTime();

// Column sums (the PCA's means; the step's loss total over its rows) of rows x 256.
void BM_column_sums(benchmark::State& state) {
  constexpr std::int64_t kCols = 256;
  const std::int64_t rows = state.range(0);
  Buffer<float> x(*g_backend, ramp(rows * kCols));
  Buffer<float> out(*g_backend, static_cast<std::size_t>(kCols));
  run(state, 4.0 * static_cast<double>(rows * kCols),
      [&] { g_backend->column_sums(x.matrix(rows, kCols), 1.0f, out.data()); });
}
BENCHMARK(BM_column_sums)->Arg(1024)->Arg(4096)->UseRealTime();

// The first layer of the users' model (1024 rows x 512 columns into 256 units), forward and
// weight gradient, on a batch of the density given (per mille), by one of three paths: densified
// first and through GEMM (path 0), through SpMM on the CSR batch (path 1: cuSPARSE on cuda), or
// through SpMM captured once and replayed (path 2: on cuda the kernels of kernels/csr_spmm.cu, what
// a captured training step runs). Where the times of paths 0 and 1 cross is the density from
// which densifying pays; paths 1 and 2 compare cuSPARSE with the captured kernels. The counter
// of_bandwidth means nothing here.
void BM_first_layer(benchmark::State& state) {
  constexpr std::int64_t kRows = 1024, kCols = 512, kUnits = 256;
  const double density = static_cast<double>(state.range(0)) / 1000.0;
  const std::int64_t path = state.range(1);
  HostCsr host;
  host.rows = kRows;
  host.cols = kCols;
  host.row_offsets.assign(1, 0);
  std::uint64_t hash = 0x9e3779b97f4a7c15ull;
  for (std::int64_t r = 0; r < kRows; ++r) {
    for (std::int64_t c = 0; c < kCols; ++c) {
      hash = hash * 6364136223846793005ull + 1442695040888963407ull;
      if (static_cast<double>(hash >> 11) * 0x1.0p-53 < density) {
        host.col_indices.push_back(static_cast<ColIndex>(c));
        host.values.push_back(static_cast<float>(1 + (hash >> 60) % 3));
      }
    }
    host.row_offsets.push_back(static_cast<RowOffset>(host.col_indices.size()));
  }
  const BackendCsr batch(*g_backend, host);
  Buffer<float> dense(*g_backend, static_cast<std::size_t>(kRows * kCols));
  Buffer<float> w(*g_backend, ramp(kCols * kUnits));
  Buffer<float> z(*g_backend, static_cast<std::size_t>(kRows * kUnits));
  Buffer<float> dz(*g_backend, ramp(kRows * kUnits));
  Buffer<float> dw(*g_backend, static_cast<std::size_t>(kCols * kUnits));
  dw.fill_zero();
  const DenseView x = dense.matrix(kRows, kCols);
  const auto sparse_products = [&] {
    g_backend->spmm(Transpose::no, 1.0f, batch.view(), w.matrix(kCols, kUnits), 0.0f,
                    z.matrix(kRows, kUnits));
    g_backend->spmm(Transpose::yes, 1.0f, batch.view(), dz.matrix(kRows, kUnits), 1.0f,
                    dw.matrix(kCols, kUnits));
  };
  const std::unique_ptr<CapturedOps> captured =
      path == 2 ? g_backend->capture(sparse_products) : nullptr;
  run(state, 1.0, [&] {
    if (captured != nullptr) {
      g_backend->replay(*captured);
    } else if (path == 1) {
      sparse_products();
    } else {
      g_backend->csr_to_dense(batch.view(), x);
      g_backend->gemm(Transpose::no, Transpose::no, 1.0f, x, w.matrix(kCols, kUnits), 0.0f,
                      z.matrix(kRows, kUnits));
      g_backend->gemm(Transpose::yes, Transpose::no, 1.0f, x, dz.matrix(kRows, kUnits), 1.0f,
                      dw.matrix(kCols, kUnits));
    }
  });
  state.counters["density"] = static_cast<double>(host.values.size()) / (kRows * kCols);
}
BENCHMARK(BM_first_layer)
    ->ArgsProduct({{10, 20, 40, 80, 120, 140, 160, 320, 640}, {0, 1, 2}})
    ->ArgNames({"permille", "path"})
    ->UseRealTime();

}  // namespace

int main(int argc, char** argv) {
  std::string backend_name = "auto";
  std::vector<char*> rest;
  for (int i = 0; i < argc; ++i) {
    if (std::strncmp(argv[i], "--backend=", 10) == 0)
      backend_name = argv[i] + 10;
    else
      rest.push_back(argv[i]);
  }
  int rest_count = static_cast<int>(rest.size());
  benchmark::Initialize(&rest_count, rest.data());
  if (benchmark::ReportUnrecognizedArguments(rest_count, rest.data())) return 1;
  try {
    const std::unique_ptr<Backend> backend = make_backend(parse_backend_choice(backend_name));
    g_backend = backend.get();
    g_copy_bandwidth = measure_copy_bandwidth(*backend);
    benchmark::AddCustomContext("sparseae_backend", backend->description());
    benchmark::AddCustomContext("copy_bandwidth_GBps", std::to_string(g_copy_bandwidth / 1e9));
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
  } catch (const std::exception& error) {
    std::fprintf(stderr, "kernels_bench: %s\n", error.what());
    return 1;
  }
  return 0;
}
