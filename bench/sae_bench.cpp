// sae-bench: training throughput of the users' model on generated counts, on one backend, against
// a floor computed from the workload.
//
// A workload is the users' model (512-256-128-32, mirrored decoder, relu; identity output), one
// loss and one batch size, named "users/<loss>/b<batch>/fp32". Each trains on the same rows of
// the embedded generator (about 20 non-zeros per row, all rows training rows) through the
// library's Trainer: --warmup untimed epochs, then --epochs timed ones, each timed by the
// Trainer's own epoch report (permutation, every step, and the epoch's loss read-back; the
// validation pass is not part of it, and there are no validation rows here).
//
// The floor of an epoch is max(counted FLOPs / peak FLOP/s, counted bytes / peak bytes/s): the
// counts come from the workload (below, workload_costs), the peaks are measured on the same
// backend in the same run (a large square GEMM, and a large device-to-device copy), or given
// with --peak-flops / --peak-bandwidth.
//
//   sae-bench --backend cpu --rows 100000 --epochs 3 --warmup 1 --losses mse,poisson
//             --batches 256,1024,4096 [--placements resident,stream] [--json out.json]
//             [--write-dense rows.npy]
//
// --placements: where the rows live while training (TrainConfig::placement): resident on the
// device (the default), or streamed from host memory (workload names end in /stream).
// --precisions: the dense products' precision (TrainConfig::precision): fp32 (the default), tf32
// or bf16 (emulated on cpu, where it is slower than fp32); the workload names end in it.
// --steps: how each step is issued (TrainConfig::capture_step): plain (the default), or captured
// once an epoch and replayed (a CUDA graph on cuda; workload names end in /captured).
// --layer-forwards: the dense layers' forward (TrainConfig::layer_forward): separate (the
// default) GEMM and bias + activation kernel, or fused (cublasLt's epilogue on cuda; workload
// names end in /fused).
//
// Prints a table, and with --json writes the run and every workload as one JSON object.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "core/json.hpp"
#include "sparseae/backend.hpp"
#include "sparseae/buffer.hpp"
#include "sparseae/error.hpp"
#include "sparseae/generator.hpp"
#include "sparseae/io.hpp"
#include "sparseae/model.hpp"
#include "sparseae/trainer.hpp"

namespace {

using sparseae::Json;
using sparseae::require;

struct Arguments {
  std::string backend = "auto";
  std::int64_t rows = 1000000;
  int epochs = 3;
  int warmup = 1;
  std::vector<std::string> losses{"mse", "poisson"};
  std::vector<std::int64_t> batches{256, 1024, 4096};
  std::vector<std::string> placements{"resident"};
  std::vector<std::string> precisions{"fp32"};
  std::vector<std::string> steps{"plain"};
  std::vector<std::string> layer_forwards{"separate"};
  std::int64_t loss_every = 0;  // 0: the loss is read back at epoch end only
  double peak_flops = 0;        // 0: measured
  double peak_bandwidth = 0;    // 0: measured
  std::string json;
  std::string write_dense;
};

std::vector<std::string> split_list(const std::string& text) {
  std::vector<std::string> items;
  std::stringstream stream(text);
  for (std::string item; std::getline(stream, item, ',');)
    if (!item.empty()) items.push_back(item);
  require(!items.empty(), "empty list '" + text + "'");
  return items;
}

const char* const kUsage =
    "usage: sae-bench [--backend auto|cpu|cuda] [--rows N] [--epochs N] [--warmup N]\n"
    "                 [--losses mse,poisson] [--batches 256,1024,4096] [--loss-every K]\n"
    "                 [--placements resident,stream] [--precisions fp32,tf32,bf16]\n"
    "                 [--steps plain,captured] [--layer-forwards separate,fused]\n"
    "                 [--peak-flops F] [--peak-bandwidth B]\n"
    "                 [--json PATH] [--write-dense PATH]\n";

Arguments parse(int argc, char** argv) {
  Arguments a;
  for (int i = 1; i < argc; ++i) {
    const std::string name = argv[i];
    if (name == "--help") {
      std::fputs(kUsage, stdout);
      std::exit(0);
    }
    require(i + 1 < argc, name + " needs a value");
    const std::string value = argv[++i];
    if (name == "--backend")
      a.backend = value;
    else if (name == "--rows")
      a.rows = std::stoll(value);
    else if (name == "--epochs")
      a.epochs = std::stoi(value);
    else if (name == "--warmup")
      a.warmup = std::stoi(value);
    else if (name == "--losses")
      a.losses = split_list(value);
    else if (name == "--batches") {
      a.batches.clear();
      for (const std::string& b : split_list(value)) a.batches.push_back(std::stoll(b));
    } else if (name == "--placements") {
      a.placements = split_list(value);
      for (const std::string& p : a.placements)
        require(p == "resident" || p == "stream",
                "--placements takes resident and stream, not '" + p + "'");
    } else if (name == "--precisions") {
      a.precisions = split_list(value);
      for (const std::string& p : a.precisions) sparseae::parse_matmul_precision(p);
    } else if (name == "--steps") {
      a.steps = split_list(value);
      for (const std::string& step : a.steps)
        require(step == "plain" || step == "captured",
                "--steps takes plain and captured, not '" + step + "'");
    } else if (name == "--layer-forwards") {
      a.layer_forwards = split_list(value);
      for (const std::string& mode : a.layer_forwards) sparseae::parse_layer_forward(mode);
    } else if (name == "--loss-every")
      a.loss_every = std::stoll(value);
    else if (name == "--peak-flops")
      a.peak_flops = std::stod(value);
    else if (name == "--peak-bandwidth")
      a.peak_bandwidth = std::stod(value);
    else if (name == "--json")
      a.json = value;
    else if (name == "--write-dense")
      a.write_dense = value;
    else
      throw sparseae::Error("unknown option " + name + "\n" + kUsage);
  }
  require(a.rows >= 2, "--rows must be at least 2");
  require(a.epochs >= 1 && a.warmup >= 0, "--epochs >= 1 and --warmup >= 0");
  for (std::int64_t b : a.batches) require(b > 0, "batch sizes must be positive");
  require(a.loss_every >= 0, "--loss-every must not be negative");
  return a;
}

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  const std::size_t n = values.size();
  return n % 2 == 1 ? values[n / 2] : 0.5 * (values[n / 2 - 1] + values[n / 2]);
}

// The backend's attainable peaks, measured: FLOP/s of a square fp32 GEMM (the best of a few), and
// bytes/s of a device-to-device copy (read + write counted).
struct Peaks {
  double flops = 0;
  double bandwidth = 0;
  bool flops_measured = false;
  bool bandwidth_measured = false;
};

template <typename Op>
double best_seconds(sparseae::Backend& backend, int repeats, const Op& op) {
  op();  // warm-up: library initialisation, workspace growth
  backend.synchronize();
  double best = 0;
  for (int r = 0; r < repeats; ++r) {
    const auto start = std::chrono::steady_clock::now();
    op();
    backend.synchronize();
    const double s = seconds_since(start);
    best = r == 0 ? s : std::min(best, s);
  }
  return best;
}

Peaks measure_peaks(sparseae::Backend& backend, const Arguments& a) {
  Peaks peaks{a.peak_flops, a.peak_bandwidth, false, false};
  const bool cpu = backend.kind() == sparseae::BackendKind::cpu;
  if (peaks.flops <= 0) {
    const std::int64_t n = cpu ? 1024 : 8192;
    sparseae::Buffer<float> x(backend, static_cast<std::size_t>(n * n));
    sparseae::Buffer<float> y(backend, static_cast<std::size_t>(n * n));
    x.fill_zero();
    const sparseae::DenseView xv = x.matrix(n, n);
    const sparseae::DenseView yv = y.matrix(n, n);
    const double s = best_seconds(backend, 3, [&] {
      backend.gemm(sparseae::Transpose::no, sparseae::Transpose::no, 1.0f, xv, xv, 0.0f, yv);
    });
    peaks.flops = 2.0 * static_cast<double>(n) * n * n / s;
    peaks.flops_measured = true;
  }
  if (peaks.bandwidth <= 0) {
    const std::size_t bytes = std::size_t{cpu ? 256u : 1024u} << 20;
    sparseae::Buffer<char> from(backend, bytes);
    sparseae::Buffer<char> to(backend, bytes);
    from.fill_zero();
    to.fill_zero();  // touched once, so the timed copy does not pay for first-touch page faults
    const double s =
        best_seconds(backend, 3, [&] { backend.copy_bytes(to.data(), from.data(), bytes); });
    peaks.bandwidth = 2.0 * static_cast<double>(bytes) / s;
    peaks.bandwidth_measured = true;
  }
  return peaks;
}

// What one epoch of a workload must do at the least, counted from its shapes.
//
// FLOPs: the matrix products only (the element-wise work is a few FLOPs per activation, under 2 %
// here). The sparse first layer costs 2·nnz·out forward and the same for its weight gradient (no
// input gradient); every other layer 2·in·out per row forward, and twice that backward (weight
// and input gradients).
//
// Bytes: each tensor at its compulsory number of passes, 4 bytes a float: every layer's output
// written once and read twice (by the next layer and by the backward pass), and its gradient
// likewise; the parameters read forward and backward and their gradient written once, then the
// Adam update reading parameters, gradients and both moments and writing three of them back;
// the batch's non-zeros (value and column, 8 bytes) gathered (read + write) and then read by the
// first layer forward, its weight gradient and the loss; the row ids and offsets (16 bytes a row)
// twice.
struct WorkloadCosts {
  double flops = 0;
  double bytes = 0;
};

WorkloadCosts workload_costs(const sparseae::ModelLayout& layout, std::int64_t rows,
                             std::int64_t nnz, std::int64_t batch) {
  const auto& layers = layout.layers();
  double flops = 0;
  double activation_floats = 0;
  for (std::size_t l = 0; l < layers.size(); ++l) {
    const double product = static_cast<double>(layers[l].in) * static_cast<double>(layers[l].out);
    flops += l == 0 ? 4.0 * static_cast<double>(nnz) * static_cast<double>(layers[l].out)
                    : 6.0 * product * static_cast<double>(rows);
    activation_floats += static_cast<double>(layers[l].out) * static_cast<double>(rows);
  }
  const double steps = static_cast<double>((rows + batch - 1) / batch);
  const double parameter_passes = 2 + 1 + 7;
  const double bytes =
      4.0 * (activation_floats * 6.0) +
      4.0 * parameter_passes * static_cast<double>(layout.parameter_count()) * steps +
      8.0 * static_cast<double>(nnz) * 5.0 + 16.0 * static_cast<double>(rows) * 2;
  return {flops, bytes};
}

struct Result {
  std::string name;
  std::string loss;
  std::int64_t batch = 0;
  std::string placement;  // "resident" or "stream"
  std::string precision;  // "fp32", "tf32" or "bf16"
  std::string step;       // "plain" or "captured"
  std::string layer_forward;  // "separate" or "fused"
  std::int64_t steps_per_epoch = 0;
  std::vector<double> epoch_seconds;  // the timed epochs
  double median_seconds = 0;
  double samples_per_second = 0;
  WorkloadCosts costs;
  double floor_seconds = 0;
  double final_loss = 0;
  std::size_t peak_device_bytes = 0;
  double setup_seconds = 0;
};

Result run_workload(sparseae::Backend& backend, const sparseae::HostCsr& data, const Arguments& a,
                    const std::string& loss, std::int64_t batch, const std::string& placement,
                    const std::string& precision, const std::string& step,
                    const std::string& layer_forward, const Peaks& peaks) {
  Result r;
  r.loss = loss;
  r.batch = batch;
  r.placement = placement;
  r.precision = precision;
  r.step = step;
  r.layer_forward = layer_forward;
  r.name = "users/" + loss + "/b" + std::to_string(batch) + "/" + precision +
           (placement == "stream" ? "/stream" : "") + (step == "captured" ? "/captured" : "") +
           (layer_forward == "fused" ? "/fused" : "");
  sparseae::ModelConfig model;  // the defaults are the users' model
  model.input_dim = data.cols;
  sparseae::TrainConfig config;
  config.loss = sparseae::parse_loss(loss);
  config.batch_size = batch;
  config.epochs = a.warmup + a.epochs;
  config.val_fraction = 0.0;
  config.loss_every = a.loss_every;
  config.placement = sparseae::parse_data_placement(placement);
  config.precision = sparseae::parse_matmul_precision(precision);
  config.capture_step = step == "captured";
  config.layer_forward = sparseae::parse_layer_forward(layer_forward);
  const auto setup_start = std::chrono::steady_clock::now();
  sparseae::Trainer trainer(backend, model, config, data);
  backend.synchronize();
  r.setup_seconds = seconds_since(setup_start);
  r.steps_per_epoch = (trainer.train_rows() + batch - 1) / batch;
  std::fprintf(stderr, "%s: data %s\n%s: step %s\n", r.name.c_str(),
               trainer.data_placement().c_str(), r.name.c_str(), trainer.step_execution().c_str());

  sparseae::TrainObserver observer;
  // With an on_step the trainer reads the loss back every loss_every steps, as the CLI's
  // progress bar makes it; without one, only at epoch end.
  if (a.loss_every > 0) observer.on_step = [](int, std::int64_t, std::int64_t, double, double) {};
  observer.on_epoch = [&](const sparseae::EpochReport& report) {
    r.peak_device_bytes = std::max(r.peak_device_bytes, backend.device_memory_used());
    if (report.epoch > a.warmup) r.epoch_seconds.push_back(report.seconds);
    r.final_loss = report.train_loss;
  };
  trainer.train(observer);

  r.median_seconds = median(r.epoch_seconds);
  r.samples_per_second = static_cast<double>(trainer.train_rows()) / r.median_seconds;
  r.costs = workload_costs(trainer.network().layout(), trainer.train_rows(), data.nnz(), batch);
  r.floor_seconds = std::max(r.costs.flops / peaks.flops, r.costs.bytes / peaks.bandwidth);
  return r;
}

std::string utc_now() {
  const std::time_t now = std::time(nullptr);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&now));
  return text;
}

// Benchmark numbers to 6 significant digits: their runs vary by more.
Json number(double value) { return Json::number_significant(value, 6); }

void write_json(const std::string& path, const std::string& description, const Arguments& a,
                const sparseae::HostCsr& data, const Peaks& peaks,
                const std::vector<Result>& results) {
  std::vector<Json> workloads;
  for (const Result& r : results) {
    std::vector<Json> seconds;
    for (const double epoch_seconds : r.epoch_seconds) seconds.push_back(number(epoch_seconds));
    Json workload = Json::object();
    workload.set("name", Json::string(r.name))
        .set("loss", Json::string(r.loss))
        .set("batch", Json::integer(r.batch))
        .set("precision", Json::string(r.precision))
        .set("placement", Json::string(r.placement))
        .set("step", Json::string(r.step))
        .set("layer_forward", Json::string(r.layer_forward))
        .set("steps_per_epoch", Json::integer(r.steps_per_epoch))
        .set("epoch_seconds", Json::array(std::move(seconds)))
        .set("median_epoch_ms", number(1e3 * r.median_seconds))
        .set("samples_per_second", number(r.samples_per_second))
        .set("epoch_flops", number(r.costs.flops))
        .set("epoch_bytes", number(r.costs.bytes))
        .set("achieved_flops_per_second", number(r.costs.flops / r.median_seconds))
        .set("achieved_bytes_per_second", number(r.costs.bytes / r.median_seconds))
        .set("floor_epoch_ms", number(1e3 * r.floor_seconds))
        .set("times_floor", number(r.median_seconds / r.floor_seconds))
        .set("peak_device_bytes", Json::unsigned_integer(r.peak_device_bytes))
        .set("final_train_loss", number(r.final_loss))
        .set("setup_seconds", number(r.setup_seconds));
    workloads.push_back(std::move(workload));
  }
  Json run = Json::object();
  run.set("tool", Json::string("sae-bench"))
      .set("date", Json::string(utc_now()))
      .set("backend", Json::string(description))
      .set("build", Json::string(sparseae::build_info()))
      .set("rows", Json::integer(data.rows))
      .set("cols", Json::integer(data.cols))
      .set("nnz", Json::integer(data.nnz()))
      .set("model", Json::string("512-256-128-32 mirrored, relu, identity output"))
      .set("optimizer", Json::string("adam"))
      .set("warmup_epochs", Json::integer(a.warmup))
      .set("timed_epochs", Json::integer(a.epochs))
      .set("loss_every", Json::integer(a.loss_every))
      .set("peak_flops", number(peaks.flops))
      .set("peak_flops_measured", Json::boolean(peaks.flops_measured))
      .set("peak_bandwidth", number(peaks.bandwidth))
      .set("peak_bandwidth_measured", Json::boolean(peaks.bandwidth_measured))
      .set("workloads", Json::array(std::move(workloads)));
  std::ofstream out(path);
  require(static_cast<bool>(out), "cannot write " + path);
  out << run.dump() << '\n';
}

void print_table(const std::vector<Result>& results, bool device_memory) {
  std::printf(
      "| workload | samples/s (median) | ms/epoch | floor ms | x floor | GFLOP/s | GB/s |%s\n",
      device_memory ? " peak device MiB |" : "");
  std::printf("| --- | --- | --- | --- | --- | --- | --- |%s\n", device_memory ? " --- |" : "");
  for (const Result& r : results) {
    std::printf("| %s | %.0f | %.1f | %.2f | %.1f | %.1f | %.2f |", r.name.c_str(),
                r.samples_per_second, 1e3 * r.median_seconds, 1e3 * r.floor_seconds,
                r.median_seconds / r.floor_seconds, r.costs.flops / r.median_seconds / 1e9,
                r.costs.bytes / r.median_seconds / 1e9);
    if (device_memory)
      std::printf(" %.0f |", static_cast<double>(r.peak_device_bytes) / (1024.0 * 1024.0));
    std::printf("\n");
  }
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const Arguments a = parse(argc, argv);
    std::string notice;
    const auto backend = sparseae::make_backend(sparseae::parse_backend_choice(a.backend), &notice);
    if (!notice.empty()) std::fprintf(stderr, "%s\n", notice.c_str());
    const std::string description = backend->description();
    std::printf("backend %s\n", description.c_str());

    auto start = std::chrono::steady_clock::now();
    sparseae::TopicDataConfig data_config;
    data_config.rows = a.rows;
    const sparseae::HostCsr data = sparseae::generate_topic_counts(data_config);
    std::printf(
        "data: %lld rows x %lld columns, %lld non-zeros (%.1f a row), generated in %.1f s\n",
        static_cast<long long>(data.rows), static_cast<long long>(data.cols),
        static_cast<long long>(data.nnz()),
        static_cast<double>(data.nnz()) / static_cast<double>(data.rows), seconds_since(start));
    if (!a.write_dense.empty()) sparseae::write_npy(a.write_dense, sparseae::to_dense(data));

    const Peaks peaks = measure_peaks(*backend, a);
    std::printf("peaks: %.1f GFLOP/s (%s), %.1f GB/s (%s)\n", peaks.flops / 1e9,
                peaks.flops_measured ? "measured: square fp32 gemm" : "given",
                peaks.bandwidth / 1e9,
                peaks.bandwidth_measured ? "measured: device copy" : "given");
    std::printf("timing: median of %d epochs after %d warm-up, loss read back %s\n", a.epochs,
                a.warmup,
                a.loss_every > 0 ? ("every " + std::to_string(a.loss_every) + " steps").c_str()
                                 : "at epoch end");
    std::fflush(stdout);

    std::vector<Result> results;
    for (const std::string& loss : a.losses)
      for (std::int64_t batch : a.batches)
        for (const std::string& precision : a.precisions)
          for (const std::string& placement : a.placements)
            for (const std::string& step : a.steps)
              for (const std::string& layer_forward : a.layer_forwards) {
                results.push_back(run_workload(*backend, data, a, loss, batch, placement, precision,
                                               step, layer_forward, peaks));
                std::fprintf(stderr, "%s: %.0f samples/s\n", results.back().name.c_str(),
                             results.back().samples_per_second);
              }
    print_table(results, backend->kind() == sparseae::BackendKind::cuda);
    if (!a.json.empty()) write_json(a.json, description, a, data, peaks, results);
  } catch (const std::exception& error) {
    std::fprintf(stderr, "sae-bench: %s\n", error.what());
    return 1;
  }
  return 0;
}
