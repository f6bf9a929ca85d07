// anchor_at_pca: a model with linear skips started at PCA of its training rows (pca.hpp).
#include <cmath>
#include <string>
#include <vector>

#include "math/op_math.hpp"
#include "sparseae/error.hpp"
#include "sparseae/pca.hpp"
#include "sparseae/trainer.hpp"

namespace sparseae {

namespace {

// The losses whose single output is the count itself, through an identity output: a least-squares
// linear decoder is their PCA reconstruction. The count heads (log-means, logits) are not.
bool output_is_count(LossKind loss, Activation output_activation) {
  return output_heads(loss) == 1 && log_mean_head(loss) < 0 && loss != LossKind::bce &&
         output_activation == Activation::identity;
}

// Solves g·x = b in place for every column of b (k x cols, row-major), g symmetric positive
// definite (k x k): Cholesky, then two triangular solves.
void solve_positive_definite(std::vector<double> g, std::int64_t k, std::vector<double>& b,
                             std::int64_t cols) {
  for (std::int64_t j = 0; j < k; ++j) {
    double diagonal = g[j * k + j];
    for (std::int64_t p = 0; p < j; ++p) diagonal -= g[j * k + p] * g[j * k + p];
    require(diagonal > 0.0, "pca anchor: the training rows' codes are linearly dependent (" +
                                std::to_string(k) + " components of data of lower rank)");
    g[j * k + j] = std::sqrt(diagonal);
    for (std::int64_t i = j + 1; i < k; ++i) {
      double value = g[i * k + j];
      for (std::int64_t p = 0; p < j; ++p) value -= g[i * k + p] * g[j * k + p];
      g[i * k + j] = value / g[j * k + j];
    }
  }
  for (std::int64_t c = 0; c < cols; ++c) {
    for (std::int64_t i = 0; i < k; ++i) {
      double value = b[i * cols + c];
      for (std::int64_t p = 0; p < i; ++p) value -= g[i * k + p] * b[p * cols + c];
      b[i * cols + c] = value / g[i * k + i];
    }
    for (std::int64_t i = k; i-- > 0;) {
      double value = b[i * cols + c];
      for (std::int64_t p = i + 1; p < k; ++p) value -= g[p * k + i] * b[p * cols + c];
      b[i * cols + c] = value / g[i * k + i];
    }
  }
}

}  // namespace

PcaModel anchor_at_pca(Backend& backend, Trainer& trainer) {
  require(trainer.completed_steps() == 0,
          "pca anchor: the model has trained already; anchoring starts a run");
  const ModelLayout& layout = trainer.network().layout();
  const ModelConfig& model = layout.config();
  require(model.linear_skip, "pca anchor: the model has no linear skip (ModelConfig::linear_skip)");
  require(model.latent_activation == Activation::identity,
          std::string("pca anchor: the latent activation must be identity (PCA codes are signed), "
                      "not ") +
              activation_name(model.latent_activation));
  const TrainConfig& config = trainer.config();
  // The training rows as the model sees them: targets in model units (after the scale), the
  // encoder's input after the input transform too.
  HostCsr targets = trainer.training_counts();
  for (float& value : targets.values) value /= trainer.scale();
  HostCsr inputs = targets;
  for (float& value : inputs.values) value = math::transform_input(config.input_transform, value);

  PcaConfig pca_config;
  pca_config.components = model.latent;
  pca_config.seed = config.seed;
  const PcaModel pca = fit_pca(backend, inputs, pca_config);

  const std::int64_t k = model.latent;
  const std::int64_t cols = model.input_dim;
  const std::size_t latent_layer = layout.encoder_layers() - 1;
  const LayerShape& latent = layout.layers()[latent_layer];
  const LayerShape& output = layout.layers().back();
  Trainer::State state = trainer.state();
  std::vector<float>& parameters = state.parameters;
  // Encoder: the branch's last layer zero, the skip the principal axes, the bias -μ·W.
  std::fill_n(parameters.begin() + latent.weight_offset, latent.in * latent.weight_cols, 0.0f);
  for (std::int64_t c = 0; c < cols; ++c)
    for (std::int64_t i = 0; i < k; ++i)
      parameters[latent.skip_weight_offset + c * k + i] = pca.components[i * cols + c];
  std::vector<double> mean_code(static_cast<std::size_t>(k), 0.0);
  for (std::int64_t i = 0; i < k; ++i) {
    for (std::int64_t c = 0; c < cols; ++c)
      mean_code[i] += static_cast<double>(pca.mean[c]) * pca.components[i * cols + c];
    parameters[latent.bias_offset + i] = static_cast<float>(-mean_code[i]);
  }

  if (output_is_count(config.loss, model.output_activation)) {
    // Decoder: the branch's last layer zero, the skip the least-squares map from the codes z to
    // the targets y, S = (ZᵀZ)⁻¹ Zᵀ(Y - ȳ), and the bias ȳ. Without an input transform S is
    // the principal axes transposed, and the model at step 0 is PCA itself.
    std::vector<double> gram(static_cast<std::size_t>(k * k), 0.0);
    std::vector<double> cross(static_cast<std::size_t>(k * cols), 0.0);
    std::vector<double> code_sum(static_cast<std::size_t>(k), 0.0);
    std::vector<double> target_mean(static_cast<std::size_t>(cols), 0.0);
    std::vector<double> code(static_cast<std::size_t>(k));
    for (std::int64_t r = 0; r < inputs.rows; ++r) {
      for (std::int64_t i = 0; i < k; ++i) code[i] = -mean_code[i];
      for (std::int64_t e = inputs.row_offsets[r]; e < inputs.row_offsets[r + 1]; ++e)
        for (std::int64_t i = 0; i < k; ++i)
          code[i] += static_cast<double>(inputs.values[e]) *
                     pca.components[i * cols + inputs.col_indices[e]];
      for (std::int64_t i = 0; i < k; ++i) {
        code_sum[i] += code[i];
        for (std::int64_t j = 0; j < k; ++j) gram[i * k + j] += code[i] * code[j];
      }
      for (std::int64_t e = targets.row_offsets[r]; e < targets.row_offsets[r + 1]; ++e) {
        const std::int64_t c = targets.col_indices[e];
        target_mean[c] += targets.values[e];
        for (std::int64_t i = 0; i < k; ++i) cross[i * cols + c] += code[i] * targets.values[e];
      }
    }
    for (double& mean : target_mean) mean /= static_cast<double>(targets.rows);
    for (std::int64_t i = 0; i < k; ++i)
      for (std::int64_t c = 0; c < cols; ++c) cross[i * cols + c] -= code_sum[i] * target_mean[c];
    solve_positive_definite(gram, k, cross, cols);
    std::fill_n(parameters.begin() + output.weight_offset, output.in * output.weight_cols, 0.0f);
    for (std::size_t i = 0; i < cross.size(); ++i)
      parameters[output.skip_weight_offset + i] = static_cast<float>(cross[i]);
    for (std::int64_t c = 0; c < cols; ++c)
      parameters[output.bias_offset + c] = static_cast<float>(target_mean[c]);
  } else {
    // Count heads read the code through the decoder's branch as initialised; the skip starts at
    // zero and learns what is linear in them.
    std::fill_n(parameters.begin() + output.skip_weight_offset, output.skip_in * output.weight_cols,
                0.0f);
  }
  state.best_parameters = parameters;
  trainer.restore(state);
  return pca;
}

}  // namespace sparseae
