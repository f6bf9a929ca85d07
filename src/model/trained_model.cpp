#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <numeric>

#include "math/loss_math.hpp"
#include "model/batch_input.hpp"
#include "sparseae/error.hpp"
#include "sparseae/inference.hpp"

namespace sparseae {

namespace {

std::string width_mismatch(const char* what, std::int64_t got, std::int64_t expected) {
  return std::string(what) + " have " + std::to_string(got) + " columns, the model expects " +
         std::to_string(expected);
}

// The configuration with the model's output layer shaped for the loss's heads.
RunConfig with_heads(RunConfig config) {
  config.model = with_loss_heads(config.model, config.train.loss, config.train.loss_params);
  return config;
}

// How the model of config turns an entry's outputs into a value and a count: never beyond the
// largest training count, where the model knows it.
EntryDecoder entry_decoder(const RunConfig& config, DecodeMode decode, double hurdle_threshold) {
  return EntryDecoder(config.train.loss, config.scale, decode, hurdle_threshold,
                      config.largest_training_count > 0.0
                          ? config.largest_training_count
                          : std::numeric_limits<double>::infinity());
}

}  // namespace

// A code of any real value (identity) or of any non-negative one (relu, kept so by projection)
// can be refined. Quantised codes (a latent prior) and selected ones (TopK, BatchTopK) are not
// points a gradient can move; a bounded activation's codes would leave the range the decoder was
// trained on.
namespace {

// Why model's codes cannot be refined (as the end of a sentence); empty when they can.
std::string refinement_obstacle(const ModelConfig& model) {
  if (model.latent_prior)
    return "needs real-valued codes; this model's are quantised under a latent prior "
           "(--rate-lambda)";
  if (model.latent_sparsity != LatentSparsity::none)
    return "needs dense codes; this model's latent is " +
           std::string(latent_sparsity_name(model.latent_sparsity));
  if (model.latent_activation != Activation::identity &&
      model.latent_activation != Activation::relu)
    return "needs an identity or relu latent activation; this one is " +
           std::string(activation_name(model.latent_activation));
  return {};
}

}  // namespace

bool can_refine_latent_codes(const ModelConfig& model) {
  return refinement_obstacle(model).empty();
}

void check_latent_refinement(const ModelConfig& model, const LatentRefinement& refinement) {
  if (refinement.steps == 0) return;
  const std::string obstacle = refinement_obstacle(model);
  require(obstacle.empty(), "model: refining latent codes (latent_refinement) " + obstacle);
}

TrainedModel::TrainedModel(Backend& backend, const RunConfig& config,
                           const std::vector<float>& parameters, std::int64_t batch_rows)
    : backend_(&backend), config_(with_heads(config)), network_(backend, ModelLayout(config_.model), batch_rows) {
  // A stored decode the loss cannot give comes from an edited file: refused here, where every
  // command that decodes opens the model, rather than at the first decode.
  require(!config_.decode || *config_.decode != DecodeMode::mode ||
              has_count_likelihood(config_.train.loss),
          std::string("model: the stored decode mode needs a count likelihood; the loss is ") +
              loss_name(config_.train.loss));
  require(static_cast<std::int64_t>(parameters.size()) == network_.layout().parameter_count(),
          "model: " + std::to_string(parameters.size()) + " parameters given, the model has " +
              std::to_string(network_.layout().parameter_count()));
  set_latent_refinement(config_.latent_refinement);  // its checks, for a stored refinement
  network_.parameters().upload(parameters);
  const std::int64_t prior_offset = network_.layout().prior_offset();
  if (prior_offset >= 0)
    prior_.assign(parameters.begin() + prior_offset,
                  parameters.begin() + prior_offset + 2 * latent_width());
}

void TrainedModel::set_latent_refinement(const LatentRefinement& refinement) {
  validate_latent_refinement(refinement, "model: latent_refinement");
  check_latent_refinement(config_.model, refinement);
  config_.latent_refinement = refinement;
}

template <typename Input, typename Target>
void TrainedModel::forward_refined(const Input& input, const Target& target, std::size_t end_layer,
                                   const float* output_log_offsets) {
  const std::size_t encoder_layers = network_.layout().encoder_layers();
  const bool refines =
      config_.latent_refinement.steps > 0 && (end_layer == 0 || end_layer == encoder_layers);
  if (!refines) {
    network_.forward(input, end_layer, output_log_offsets);
    return;
  }
  network_.forward(input, encoder_layers, output_log_offsets);
  refine_latents(target, output_log_offsets);
  if (end_layer == 0) network_.run_decoder(output_log_offsets);
}

template <typename Target>
void TrainedModel::refine_latents(const Target& target, const float* output_log_offsets) {
  const DenseView codes = network_.latent();
  const std::int64_t n = codes.size();
  const std::size_t capacity = static_cast<std::size_t>(network_.max_batch() * latent_width());
  if (refine_moments_[0].empty()) {
    for (Buffer<float>& moment : refine_moments_) moment = Buffer<float>(*backend_, capacity);
    refine_row_loss_ = Buffer<float>(*backend_, static_cast<std::size_t>(network_.max_batch()));
    refine_zero_bias_ = Buffer<float>(*backend_, static_cast<std::size_t>(latent_width()));
    refine_zero_bias_.fill_zero();
  }
  for (Buffer<float>& moment : refine_moments_)
    backend_->fill_zero_bytes(moment.data(), static_cast<std::size_t>(n) * sizeof(float));
  OptimizerConfig adam;
  adam.kind = OptimizerKind::adam;
  adam.learning_rate = static_cast<float>(config_.latent_refinement.rate);
  // The loss averages over every entry of the batch, and a code moves only its own row's terms:
  // times the entries, each code's gradient is that of its row's summed loss, whatever the
  // batch's size, and stays well above Adam's epsilon.
  const float entries = static_cast<float>(codes.rows) * static_cast<float>(input_width());
  const bool non_negative = config_.model.latent_activation == Activation::relu;
  for (std::int64_t step = 1; step <= config_.latent_refinement.steps; ++step) {
    network_.run_decoder(output_log_offsets);
    backend_->reconstruction_loss(config_.train.loss, config_.train.loss_params, network_.output(),
                                  target, network_.output_gradient(), refine_row_loss_.data());
    const DenseView gradient = network_.latent_gradient();
    backend_->scale_values(gradient.data, n, entries);
    backend_->optimizer_step(adam, step, n, codes.data, gradient.data, refine_moments_[0].data(),
                             refine_moments_[1].data(), nullptr);
    if (non_negative)
      backend_->bias_activation_forward(Activation::relu, codes, refine_zero_bias_.data(), codes);
  }
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
  detail::BatchInput input(*backend_,
                           {config_.train.input_transform, config_.train.loss_params.size_factors,
                            config_.reference_library_size},
                           batch_rows, widest_batch_nnz);
  for (std::int64_t first = 0; first < counts.rows; first += batch_rows) {
    const std::int64_t count = std::min(batch_rows, counts.rows - first);
    const std::int64_t nnz =
        backend_->gather_rows(data.view(), row_ids.data() + first, count, batch.output());
    const CsrView rows = batch.view(count, nnz);
    const float* log_offsets = input.log_offsets(rows);
    forward_refined(input.input(rows), rows, end_layer, log_offsets);
    visit(first, count);
  }
}

namespace {

// Appends rows x cols of a backend matrix to a host matrix.
void append_rows(Backend& backend, DenseView source, HostDense& target, std::int64_t first) {
  backend.download_bytes(target.values.data() + first * target.cols, source.data,
                         static_cast<std::size_t>(source.size()) * sizeof(float));
}

// Keeps the codes (rows.rows x width) and total counts of a batch's rows while fewer than
// kLatentSampleRows are kept.
void keep_latent_sample(const std::vector<float>& codes, CsrView rows, std::int64_t width,
                        std::vector<float>& sample_codes, std::vector<double>& sample_totals) {
  for (std::int64_t r = 0; r < rows.rows; ++r) {
    if (static_cast<std::int64_t>(sample_totals.size()) >= kLatentSampleRows) return;
    double total = 0.0;
    for (RowOffset k = rows.row_offsets[r]; k < rows.row_offsets[r + 1]; ++k)
      total += rows.values[k];
    sample_totals.push_back(total);
    sample_codes.insert(sample_codes.end(), codes.begin() + r * width,
                        codes.begin() + (r + 1) * width);
  }
}

}  // namespace

template <typename Visit>
void TrainedModel::for_each_batch(const HostDense& rows, std::size_t end_layer, Visit visit) {
  require(rows.cols == input_width(), width_mismatch("the data", rows.cols, input_width()));
  const std::int64_t batch_rows = network_.max_batch();
  Buffer<float> batch(*backend_, static_cast<std::size_t>(batch_rows * rows.cols));
  // The input transform and size factors the model trained with, as the sparse path applies them.
  detail::BatchInput transformed(
      *backend_,
      {config_.train.input_transform, config_.train.loss_params.size_factors,
       config_.reference_library_size},
      batch_rows, batch_rows * rows.cols);
  std::vector<float> scaled;
  for (std::int64_t first = 0; first < rows.rows; first += batch_rows) {
    const std::int64_t count = std::min(batch_rows, rows.rows - first);
    scaled.assign(rows.values.begin() + first * rows.cols,
                  rows.values.begin() + (first + count) * rows.cols);
    if (config_.scale != 1.0f)
      for (float& v : scaled) v /= config_.scale;
    batch.upload(scaled);
    const ConstDenseView counts(batch.matrix(count, rows.cols));
    const float* log_offsets = transformed.log_offsets(counts);
    forward_refined(transformed.input(counts), counts, end_layer, log_offsets);
    visit(first, count);
  }
}

template <typename Rows>
HostDense TrainedModel::encode_rows(const Rows& counts) {
  HostDense latents{counts.rows, latent_width(),
                    std::vector<float>(static_cast<std::size_t>(counts.rows * latent_width()))};
  for_each_batch(counts, network_.layout().encoder_layers(), [&](std::int64_t first, std::int64_t) {
    append_rows(*backend_, network_.latent(), latents, first);
  });
  return latents;
}

HostDense TrainedModel::encode(const HostCsr& counts) { return encode_rows(counts); }

HostDense TrainedModel::encode(const HostDense& rows) { return encode_rows(rows); }

void TrainedModel::set_hurdle_threshold(double threshold) {
  require(threshold >= 0.0 && threshold <= 1.0,
          "model: hurdle threshold " + std::to_string(threshold) + " is not in [0, 1]");
  config_.hurdle_threshold = threshold;
}

void TrainedModel::check_outputs(const HostDense& outputs) const {
  const std::int64_t width = input_width() * output_heads(config_.train.loss);
  require(outputs.cols == width, width_mismatch("the outputs", outputs.cols, width));
}

HostDense TrainedModel::values_from_outputs(const HostDense& outputs) const {
  check_outputs(outputs);
  // Round is the decode every loss allows; value() does not depend on it.
  const EntryDecoder decoder = entry_decoder(config_, DecodeMode::round, config_.hurdle_threshold);
  const std::int64_t heads = decoder.heads();
  const std::int64_t cols = input_width();
  HostDense values{outputs.rows, cols, std::vector<float>(static_cast<std::size_t>(outputs.rows * cols))};
  float h[math::kMaxHeads] = {};
  for (std::int64_t r = 0; r < outputs.rows; ++r)
    for (std::int64_t c = 0; c < cols; ++c) {
      for (std::int64_t k = 0; k < heads; ++k) h[k] = outputs.values[r * outputs.cols + k * cols + c];
      values.values[r * cols + c] = decoder.value(h);
    }
  return values;
}

HostCsr TrainedModel::counts_from_outputs(const HostDense& outputs, DecodeMode decode) const {
  check_outputs(outputs);
  const EntryDecoder decoder = entry_decoder(config_, decode, config_.hurdle_threshold);
  const std::int64_t heads = decoder.heads();
  const std::int64_t cols = input_width();
  HostCsr counts;
  counts.rows = outputs.rows;
  counts.cols = cols;
  counts.row_offsets.assign(1, 0);
  float h[math::kMaxHeads] = {};
  for (std::int64_t r = 0; r < outputs.rows; ++r) {
    for (std::int64_t c = 0; c < cols; ++c) {
      for (std::int64_t k = 0; k < heads; ++k) h[k] = outputs.values[r * outputs.cols + k * cols + c];
      const float count = decoder.count(h);
      if (count != 0.0f) {
        counts.col_indices.push_back(static_cast<ColIndex>(c));
        counts.values.push_back(count);
      }
    }
    counts.row_offsets.push_back(static_cast<RowOffset>(counts.values.size()));
  }
  return counts;
}

void TrainedModel::for_each_output_batch(
    const HostCsr& counts, const std::function<void(std::int64_t, ConstDenseView)>& visit) {
  std::vector<float> host;
  for_each_batch(counts, 0, [&](std::int64_t first, std::int64_t count) {
    const DenseView out = network_.output();
    host.resize(static_cast<std::size_t>(out.size()));
    backend_->download_bytes(host.data(), out.data, host.size() * sizeof(float));
    visit(first, ConstDenseView(host.data(), count, out.cols));
  });
}

template <typename Rows>
HostDense TrainedModel::output_rows(const Rows& counts) {
  const std::int64_t width = input_width() * output_heads(config_.train.loss);
  HostDense outputs{counts.rows, width,
                    std::vector<float>(static_cast<std::size_t>(counts.rows * width))};
  for_each_batch(counts, 0, [&](std::int64_t first, std::int64_t) {
    append_rows(*backend_, network_.output(), outputs, first);
  });
  return outputs;
}

HostDense TrainedModel::outputs(const HostCsr& counts) { return output_rows(counts); }

HostDense TrainedModel::outputs(const HostDense& rows) { return output_rows(rows); }

HostDense TrainedModel::reconstruct(const HostCsr& counts) {
  return values_from_outputs(outputs(counts));
}

HostDense TrainedModel::decode_outputs(const HostDense& latents) {
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
  return outputs;
}

HostDense TrainedModel::decode(const HostDense& latents) {
  return values_from_outputs(decode_outputs(latents));
}

ReconstructionMetrics TrainedModel::evaluate(const HostCsr& counts) {
  return evaluate(counts, default_decode());
}

ReconstructionMetrics TrainedModel::evaluate(const HostCsr& counts, DecodeMode decode) {
  return evaluate(counts, decode, nullptr);
}

ReconstructionMetrics TrainedModel::evaluate(const HostCsr& counts, DecodeMode decode,
                                             ReconstructionDetail* detail) {
  return evaluate_summed(counts, decode, detail, nullptr);
}

ReconstructionMetrics TrainedModel::evaluate(
    const HostCsr& counts, DecodeMode decode,
    const std::function<void(std::vector<double>&)>& sum_over_ranks) {
  return evaluate_summed(counts, decode, nullptr, sum_over_ranks);
}

ReconstructionMetrics TrainedModel::evaluate_summed(
    const HostCsr& counts, DecodeMode decode, ReconstructionDetail* detail,
    const std::function<void(std::vector<double>&)>& sum_over_ranks) {
  MetricsAccumulator metrics(entry_decoder(config_, decode, config_.hurdle_threshold));
  if (detail != nullptr) metrics.collect_detail();
  const CsrView all = counts.view();
  const std::int64_t width = latent_width();
  std::vector<float> codes;
  double code_nats = 0.0;
  // Per latent, the rows where it is non-zero (latent_l0, dead and dense latents).
  std::vector<std::int64_t> firing_rows(static_cast<std::size_t>(width), 0);
  std::vector<float> sample_codes;
  std::vector<double> sample_totals;
  for_each_output_batch(counts, [&](std::int64_t first, ConstDenseView out) {
    const std::int64_t count = out.rows;
    const CsrView rows{count,
                       all.cols,
                       all.row_offsets[first + count] - all.row_offsets[first],
                       all.row_offsets + first,
                       all.col_indices,
                       all.values};
    metrics.add(out, rows);
    codes.resize(static_cast<std::size_t>(count * width));
    backend_->download_bytes(codes.data(), network_.latent().data, codes.size() * sizeof(float));
    for (std::int64_t i = 0; i < count * width; ++i)
      firing_rows[static_cast<std::size_t>(i % width)] +=
          codes[static_cast<std::size_t>(i)] != 0.0f;
    if (detail != nullptr) keep_latent_sample(codes, rows, width, sample_codes, sample_totals);
    if (prior_.empty()) return;
    // The batch's integer codes (the forward rounded them), each under its dimension's prior.
    for (std::int64_t i = 0; i < count * width; ++i) {
      const std::size_t j = static_cast<std::size_t>(i % width);
      code_nats += math::latent_rate_term(codes[static_cast<std::size_t>(i)], prior_[j],
                                          prior_[j + static_cast<std::size_t>(width)])
                       .value;
    }
  });
  if (sum_over_ranks) {
    // The accumulator's sums, then each latent's firing rows, then the codes' nats.
    std::vector<double> sums = metrics.sums(counts.cols);
    const std::size_t accumulated = sums.size();
    sums.insert(sums.end(), firing_rows.begin(), firing_rows.end());
    sums.push_back(code_nats);
    sum_over_ranks(sums);
    metrics.set_sums(std::vector<double>(sums.begin(), sums.begin() + accumulated));
    for (std::size_t j = 0; j < firing_rows.size(); ++j)
      firing_rows[j] = static_cast<std::int64_t>(sums[accumulated + j]);
    code_nats = sums.back();
  }
  ReconstructionMetrics result = metrics.result();
  if (detail != nullptr) {
    *detail = metrics.detail();
    detail->latent_sample = std::move(sample_codes);
    detail->latent_sample_totals = std::move(sample_totals);
    for (const std::int64_t fired : firing_rows)
      detail->latent_firing.push_back(
          result.rows > 0 ? static_cast<double>(fired) / static_cast<double>(result.rows) : 0.0);
  }
  if (result.rows > 0) {
    std::int64_t nonzeros = 0;
    std::int64_t dead = 0;
    std::int64_t dense = 0;
    for (const std::int64_t fired : firing_rows) {
      nonzeros += fired;
      dead += fired == 0;
      dense += 2 * fired > result.rows;
    }
    const auto rows = static_cast<double>(result.rows);
    result.latent_l0 = static_cast<double>(nonzeros) / rows;
    result.dead_latent_fraction = static_cast<double>(dead) / static_cast<double>(width);
    result.dense_latent_fraction = static_cast<double>(dense) / static_cast<double>(width);
  }
  if (!prior_.empty() && result.rows > 0) {
    result.code_bits_per_row = code_nats / std::log(2.0) / static_cast<double>(result.rows);
    result.description_bits_per_row = result.code_bits_per_row + result.nll_bits_per_row;
  }
  return result;
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

DecodeMeasurement measure_decodes(TrainedModel& model, const HostCsr& validation,
                                  std::optional<DecodeMode> asked, ReconstructionDetail* detail,
                                  const std::function<void(std::vector<double>&)>& sum_over_ranks) {
  require(!sum_over_ranks || detail == nullptr,
          "measure_decodes: the detail of rows spread over ranks is not gathered");
  const auto evaluate = [&](DecodeMode decode, ReconstructionDetail* into) {
    return sum_over_ranks ? model.evaluate(validation, decode, sum_over_ranks)
                          : model.evaluate(validation, decode, into);
  };
  const LossKind loss = model.config().train.loss;
  DecodeMeasurement measured;
  measured.decode = asked.value_or(default_decode(loss));
  measured.metrics = evaluate(measured.decode, detail);
  const auto other = alternative_decode(loss, measured.decode);
  if (!other || measured.metrics.rows == 0) return measured;
  ReconstructionDetail other_detail;
  ReconstructionMetrics other_metrics =
      evaluate(*other, detail != nullptr ? &other_detail : nullptr);
  if (asked || other_metrics.exact_f1 <= measured.metrics.exact_f1) {
    measured.other = *other;
    measured.other_f1 = other_metrics.exact_f1;
    return measured;
  }
  measured.other = measured.decode;
  measured.other_f1 = measured.metrics.exact_f1;
  measured.decode = *other;
  measured.metrics = std::move(other_metrics);
  if (detail != nullptr) *detail = std::move(other_detail);
  return measured;
}

double choose_hurdle_threshold(TrainedModel& model, const HostCsr& validation,
                               std::vector<ThresholdScore>* scores,
                               const std::function<void(std::vector<double>&)>& sum_over_ranks) {
  const RunConfig& config = model.config();
  require(has_support_head(config.train.loss),
          std::string("choose_hurdle_threshold: the model's loss is ") +
              loss_name(config.train.loss) + ", not hurdle or hurdle_nb");
  // The grid i / 20, i = 1..19; per threshold, the exactly reproduced and the predicted
  // non-zeros of the decoded counts (decode mode); the true non-zeros are the same for all.
  constexpr int kGrid = 19;
  std::vector<EntryDecoder> decoders;
  for (int i = 1; i <= kGrid; ++i)
    decoders.push_back(entry_decoder(config, DecodeMode::mode, i / 20.0));
  std::vector<std::int64_t> exact(kGrid, 0), predicted(kGrid, 0);
  std::int64_t true_nonzeros = 0;
  const std::int64_t cols = model.input_width();
  const CsrView target = validation.view();
  std::vector<float> dense_row(static_cast<std::size_t>(cols));
  model.for_each_output_batch(validation, [&](std::int64_t first, ConstDenseView out) {
    for (std::int64_t r = 0; r < out.rows; ++r) {
      std::fill(dense_row.begin(), dense_row.end(), 0.0f);
      for (RowOffset k = target.row_offsets[first + r]; k < target.row_offsets[first + r + 1]; ++k)
        dense_row[target.col_indices[k]] = target.values[k];
      for (std::int64_t c = 0; c < cols; ++c) {
        const float x = dense_row[c];
        const float h[math::kMaxHeads] = {out(r, c), out(r, c + cols), 0.0f};
        true_nonzeros += x != 0.0f;
        for (int i = 0; i < kGrid; ++i) {
          const float k = decoders[i].count(h);
          predicted[i] += k != 0.0f;
          exact[i] += x != 0.0f && k == x;
        }
      }
    }
  });
  if (sum_over_ranks) {
    // The counts as doubles: exact below 2^53 entries.
    std::vector<double> sums(exact.begin(), exact.end());
    sums.insert(sums.end(), predicted.begin(), predicted.end());
    sums.push_back(static_cast<double>(true_nonzeros));
    sum_over_ranks(sums);
    for (int i = 0; i < kGrid; ++i) {
      exact[i] = static_cast<std::int64_t>(sums[i]);
      predicted[i] = static_cast<std::int64_t>(sums[kGrid + i]);
    }
    true_nonzeros = static_cast<std::int64_t>(sums.back());
  }
  if (scores != nullptr) {
    const auto ratio = [](double a, double b) { return b > 0 ? a / b : 0.0; };
    scores->clear();
    for (int i = 0; i < kGrid; ++i) {
      const auto hits = static_cast<double>(exact[i]);
      scores->push_back({(i + 1) / 20.0,
                         ratio(2.0 * hits, static_cast<double>(predicted[i] + true_nonzeros)),
                         ratio(hits, static_cast<double>(predicted[i])),
                         ratio(hits, static_cast<double>(true_nonzeros))});
    }
  }
  // Without true non-zeros every F1 is 0: the tie goes to the default.
  if (true_nonzeros == 0) return kDefaultHurdleThreshold;
  // F1_i = 2 exact_i / (predicted_i + true), compared as fractions by cross-multiplying (the
  // products are exact in long double's 64-bit mantissa below 2^32 entries).
  const auto f1_greater = [&](int a, int b) {
    return static_cast<long double>(exact[a]) * static_cast<long double>(predicted[b] + true_nonzeros) >
           static_cast<long double>(exact[b]) * static_cast<long double>(predicted[a] + true_nonzeros);
  };
  const auto distance = [](int i) { return std::abs(i - 10); };  // from 0.5 = 10 / 20, in steps
  int best = 9;  // 0.5
  for (int i = 0; i < kGrid; ++i) {
    if (f1_greater(i, best) ||
        (!f1_greater(best, i) && distance(i + 1) < distance(best + 1)))
      best = i;
  }
  return (best + 1) / 20.0;
}

HostCsr round_to_counts(const HostDense& reconstruction) {
  return decode_to_counts(reconstruction, LossKind::mse, DecodeMode::round);
}

}  // namespace sparseae
