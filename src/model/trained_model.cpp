#include <numeric>

#include "kernels/loss_math.hpp"
#include "sparseae/error.hpp"
#include "sparseae/inference.hpp"

namespace sparseae {

namespace {

std::string width_mismatch(const char* what, std::int64_t got, std::int64_t expected) {
  return std::string(what) + " have " + std::to_string(got) + " columns, the model expects " +
         std::to_string(expected);
}

// The configuration with the model's output layer sized for the loss's heads.
RunConfig with_heads(RunConfig config) {
  config.model.output_heads = output_heads(config.train.loss);
  return config;
}

}  // namespace

TrainedModel::TrainedModel(Backend& backend, const RunConfig& config,
                           const std::vector<float>& parameters, std::int64_t batch_rows)
    : backend_(&backend), config_(with_heads(config)), network_(backend, ModelLayout(config_.model), batch_rows) {
  require(static_cast<std::int64_t>(parameters.size()) == network_.layout().parameter_count(),
          "model: " + std::to_string(parameters.size()) + " parameters given, the model has " +
              std::to_string(network_.layout().parameter_count()));
  network_.parameters().upload(parameters);
}

template <typename Visit>
void TrainedModel::for_each_batch(const HostCsr& counts, std::size_t end_layer, Visit visit) {
  require(counts.cols == input_width(), width_mismatch("the data", counts.cols, input_width()));
  HostCsr scaled = counts;
  if (config_.scale != 1.0f)
    for (float& v : scaled.values) v /= config_.scale;
  const BackendCsr data(*backend_, scaled);
  const std::int64_t batch_rows = network_.max_batch();
  std::vector<std::int64_t> ids(static_cast<std::size_t>(counts.rows));
  std::iota(ids.begin(), ids.end(), std::int64_t{0});
  const Buffer<std::int64_t> row_ids(*backend_, ids);
  std::int64_t widest_batch_nnz = 1;
  for (std::int64_t first = 0; first < counts.rows; first += batch_rows) {
    const std::int64_t last = std::min(first + batch_rows, counts.rows);
    widest_batch_nnz = std::max(widest_batch_nnz, counts.row_offsets[last] - counts.row_offsets[first]);
  }
  const CsrBatchBuffer batch(*backend_, counts.cols, batch_rows, widest_batch_nnz);
  for (std::int64_t first = 0; first < counts.rows; first += batch_rows) {
    const std::int64_t count = std::min(batch_rows, counts.rows - first);
    const std::int64_t nnz =
        backend_->gather_rows(data.view(), row_ids.data() + first, count, batch.output());
    network_.forward(batch.view(count, nnz), end_layer);
    visit(first, count);
  }
}

namespace {

// Appends rows x cols of a backend matrix to a host matrix.
void append_rows(Backend& backend, DenseView source, HostDense& target, std::int64_t first) {
  backend.download_bytes(target.values.data() + first * target.cols, source.data,
                         static_cast<std::size_t>(source.size()) * sizeof(float));
}

}  // namespace

HostDense TrainedModel::encode(const HostCsr& counts) {
  HostDense latents{counts.rows, latent_width(),
                    std::vector<float>(static_cast<std::size_t>(counts.rows * latent_width()))};
  for_each_batch(counts, network_.layout().encoder_layers(), [&](std::int64_t first, std::int64_t) {
    append_rows(*backend_, network_.latent(), latents, first);
  });
  return latents;
}

HostDense TrainedModel::to_data_units(HostDense outputs) const {
  const LossKind loss = config_.train.loss;
  const std::int64_t heads = output_heads(loss);
  if (heads == 1) {
    for (float& y : outputs.values) y = math::decoded_value(loss, y, config_.scale);
    return outputs;
  }
  // rows x (K * D) heads to rows x D means.
  const std::int64_t cols = outputs.cols / heads;
  HostDense means{outputs.rows, cols, std::vector<float>(static_cast<std::size_t>(outputs.rows * cols))};
  float h[math::kMaxHeads] = {};
  for (std::int64_t r = 0; r < outputs.rows; ++r)
    for (std::int64_t c = 0; c < cols; ++c) {
      for (std::int64_t k = 0; k < heads; ++k) h[k] = outputs.values[r * outputs.cols + k * cols + c];
      means.values[r * cols + c] = math::head_mean(loss, h, config_.scale);
    }
  return means;
}

HostDense TrainedModel::reconstruct(const HostCsr& counts) {
  const std::int64_t width = input_width() * output_heads(config_.train.loss);
  HostDense outputs{counts.rows, width,
                    std::vector<float>(static_cast<std::size_t>(counts.rows * width))};
  for_each_batch(counts, 0, [&](std::int64_t first, std::int64_t) {
    append_rows(*backend_, network_.output(), outputs, first);
  });
  return to_data_units(std::move(outputs));
}

HostDense TrainedModel::decode(const HostDense& latents) {
  require(latents.cols == latent_width(), width_mismatch("the codes", latents.cols, latent_width()));
  const std::int64_t width = input_width() * output_heads(config_.train.loss);
  HostDense outputs{latents.rows, width,
                    std::vector<float>(static_cast<std::size_t>(latents.rows * width))};
  const std::int64_t batch_rows = network_.max_batch();
  Buffer<float> codes(*backend_, static_cast<std::size_t>(batch_rows * latent_width()));
  for (std::int64_t first = 0; first < latents.rows; first += batch_rows) {
    const std::int64_t count = std::min(batch_rows, latents.rows - first);
    backend_->upload_bytes(codes.data(), latents.values.data() + first * latent_width(),
                           static_cast<std::size_t>(count * latent_width()) * sizeof(float));
    network_.decode(codes.matrix(count, latent_width()));
    append_rows(*backend_, network_.output(), outputs, first);
  }
  return to_data_units(std::move(outputs));
}

ReconstructionMetrics TrainedModel::evaluate(const HostCsr& counts) {
  return evaluate(counts, default_decode());
}

ReconstructionMetrics TrainedModel::evaluate(const HostCsr& counts, DecodeMode decode) {
  return evaluate(counts, decode, nullptr);
}

ReconstructionMetrics TrainedModel::evaluate(const HostCsr& counts, DecodeMode decode,
                                             ReconstructionDetail* detail) {
  MetricsAccumulator metrics(config_.train.loss, config_.scale, decode);
  if (detail != nullptr) metrics.collect_detail();
  std::vector<float> host;
  const CsrView all = counts.view();
  for_each_batch(counts, 0, [&](std::int64_t first, std::int64_t count) {
    const DenseView out = network_.output();
    host.resize(static_cast<std::size_t>(out.size()));
    backend_->download_bytes(host.data(), out.data, host.size() * sizeof(float));
    const CsrView rows{count,
                       all.cols,
                       all.row_offsets[first + count] - all.row_offsets[first],
                       all.row_offsets + first,
                       all.col_indices,
                       all.values};
    metrics.add(ConstDenseView(host.data(), count, out.cols), rows);
  });
  if (detail != nullptr) *detail = metrics.detail();
  return metrics.result();
}

HostCsr TrainedModel::to_counts(const HostDense& reconstruction) const {
  return to_counts(reconstruction, default_decode());
}

HostCsr TrainedModel::to_counts(const HostDense& reconstruction, DecodeMode decode) const {
  return decode_to_counts(reconstruction, config_.train.loss, decode);
}

HostCsr decode_to_counts(const HostDense& reconstruction, LossKind loss, DecodeMode decode) {
  check_decode(loss, decode);
  require(decode != DecodeMode::mode || output_heads(loss) == 1,
          std::string("--decode mode for --loss ") + loss_name(loss) +
              " needs the model's outputs, not a reconstruction (its mean): use mean or round");
  HostDense counts = reconstruction;
  for (float& v : counts.values) v = math::count_from_value(loss, decode, v);
  return to_csr(counts);
}

HostCsr round_to_counts(const HostDense& reconstruction) {
  return decode_to_counts(reconstruction, LossKind::mse, DecodeMode::round);
}

}  // namespace sparseae
