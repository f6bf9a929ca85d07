// Finite-difference check of a whole small model's gradient: Network::forward, the backend's
// reconstruction loss, the activity penalty applied in the backward hook exactly as the trainer
// applies it, and Network::backward (and Network::latent_gradient, the decoder's gradient in the
// codes that latent refinement follows), against central differences of the same loss computed by
// an independent float64 forward pass written here from the ModelLayout (layers, offsets, tied
// weights). Every loss, both penalties, tied weights, a non-mirrored decoder and the dense input
// path; once per backend.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <random>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "backend_fixture.hpp"
#include "model/batch_input.hpp"
#include "reference.hpp"
#include "sparseae/csr.hpp"
#include "sparseae/model.hpp"
#include "sparseae/network.hpp"
#include "sparseae/trainer.hpp"

namespace sparseae::test {
namespace {

using reference::DoubleMatrix;

// Central differences in float64 with step kStep: truncation error ~ kStep^2 * |f'''| ~ 1e-8 and
// cancellation ~ 1e-16 * |f| / kStep ~ 1e-12, both far below the tolerance.
constexpr double kStep = 1e-4;

// The backend runs in float32: each gradient carries a few float roundings per layer of each
// product, ~1e-7 of the largest gradient (measured on cpu: 4e-8 to 1.3e-7 over the cases).
// 1e-5 of the largest gradient leaves a margin of about 100x for other summation orders, while a
// wrong factor, sign, transpose or missing term moves some gradient by a sizeable fraction.
constexpr double kGradientTolerance = 1e-5;

// The backend's batch loss (sum of row losses plus the penalty) against the float64 one: sums of
// a few dozen float terms.
constexpr double kLossTolerance = 1e-5;

struct GradientCase {
  std::string label;
  ModelConfig model;
  LossKind loss = LossKind::mse;
  LossParams loss_params;
  PenaltyConfig penalty;
  bool dense_input = false;  // feed the first layer the dense batch (gemm) instead of CSR (spmm)
  InputTransform input_transform = InputTransform::none;
  // > 0: size factors against this reference library size, added to the output's offset head.
  double reference_library_size = 0.0;
};

LossParams cosine(float weight) { return reference::cosine_params(weight); }

ModelConfig small_model(Activation hidden, Activation latent, Activation output) {
  ModelConfig m;
  m.input_dim = 9;
  m.hidden = {7};
  m.latent = 4;
  m.hidden_activation = hidden;
  m.latent_activation = latent;
  m.output_activation = output;
  m.seed = 3;
  return m;
}

std::vector<GradientCase> gradient_cases() {
  std::vector<GradientCase> cases;
  const ModelConfig base = small_model(Activation::tanh, Activation::sigmoid, Activation::identity);
  cases.push_back({"mse", base, LossKind::mse, {}, {}, false});
  // mae's kink at y = x: softplus outputs are > 0 (never at a zero target), and the non-zero
  // targets are lifted by 10, far above any output of this model.
  cases.push_back({"mae",
                   small_model(Activation::tanh, Activation::sigmoid, Activation::softplus),
                   LossKind::mae,
                   {},
                   {},
                   false});
  cases.push_back({"bce", base, LossKind::bce, {}, {}, false});
  cases.push_back({"mse_cosine", base, LossKind::mse_cosine, cosine(0.7f), {}, false});
  {
    // l1's kink at a = 0: a tanh latent with random biases keeps every code away from 0 (checked).
    GradientCase c{"mse + l1 on the latent",
                   small_model(Activation::softplus, Activation::tanh, Activation::identity),
                   LossKind::mse,
                   {},
                   {},
                   false};
    c.penalty.l1_weight = 0.3f;
    cases.push_back(c);
  }
  // The kl penalty needs a sigmoid penalised layer (checked in the test): base's latent, or a
  // sigmoid hidden layer.
  {
    GradientCase c{"mse + kl on the latent", base, LossKind::mse, {}, {}, false};
    c.penalty.kl_beta = 0.5f;
    c.penalty.kl_rho = 0.1f;
    cases.push_back(c);
  }
  {
    GradientCase c{"mse_cosine + l1 + kl on hidden layer 0",
                   base,
                   LossKind::mse_cosine,
                   cosine(0.3f),
                   {},
                   false};
    c.model.hidden_activation = Activation::sigmoid;
    c.penalty.l1_weight = 0.2f;
    c.penalty.kl_beta = 0.4f;
    c.penalty.layer = 0;
    cases.push_back(c);
  }
  {
    GradientCase c{"tied weights", base, LossKind::mse, {}, {}, false};
    c.model.tied_weights = true;
    cases.push_back(c);
  }
  {
    GradientCase c{"tied weights, two hidden layers, bce", base, LossKind::bce, {}, {}, false};
    c.model.hidden = {7, 5};
    c.model.tied_weights = true;
    cases.push_back(c);
  }
  {
    GradientCase c{"non-mirrored decoder 4-5-8-9", base, LossKind::mse, {}, {}, false};
    c.model.mirror_decoder = false;
    c.model.decoder_hidden = {5, 8};
    c.model.hidden_activation = Activation::softplus;
    cases.push_back(c);
  }
  // The count losses. poisson reads the identity output as a log-rate; weighted_mse weighs the
  // zero targets by 0.3; huber's kink at |y - x| = delta: delta 0.5 puts most zero-target
  // entries (|y| < 0.5) on the quadratic side and every count (>= 1, far above any output) on
  // the linear one, and the test checks that no entry sits near the kink.
  cases.push_back({"poisson", base, LossKind::poisson, {}, {}, false});
  {
    GradientCase c{"weighted_mse", base, LossKind::weighted_mse, {}, {}, false};
    c.loss_params.zero_weight = 0.3f;
    cases.push_back(c);
  }
  {
    GradientCase c{"huber", base, LossKind::huber, {}, {}, false};
    c.loss_params.huber_delta = 0.5f;
    cases.push_back(c);
  }
  {
    GradientCase c{
        "poisson, tied weights, dense input path", base, LossKind::poisson, {}, {}, true};
    c.model.tied_weights = true;
    cases.push_back(c);
  }
  // The count likelihoods with several outputs per entry: the output layer has K units per
  // column (log-mean, log-dispersion, dropout logit; support logit, log-rate), head-major.
  for (const LossKind kind : {LossKind::nb, LossKind::zinb, LossKind::hurdle}) {
    for (const bool dense : {false, true}) {
      GradientCase c{std::string(loss_name(kind)) + (dense ? ", dense input path" : ""),
                     base,
                     kind,
                     {},
                     {},
                     dense};
      c.model.output_heads = output_heads(kind);
      cases.push_back(c);
    }
  }
  {
    GradientCase c{"hurdle_nb", base, LossKind::hurdle_nb, {}, {}, false};
    c.model.output_heads = 3;
    cases.push_back(c);
  }
  // A dispersion per feature: the output layer computes that head from its bias alone (no weight
  // columns), set here by hand rather than by with_loss_heads.
  for (const LossKind kind : {LossKind::nb, LossKind::zinb, LossKind::hurdle_nb}) {
    GradientCase c{std::string(loss_name(kind)) + ", dispersion per feature",
                   base,
                   kind,
                   {},
                   {},
                   kind == LossKind::zinb};
    c.loss_params.dispersion = Dispersion::feature;
    c.model.output_heads = output_heads(kind);
    c.model.feature_head = dispersion_head(kind);
    cases.push_back(c);
  }
  // Library size: log1p input, and each row's log size factor on the log-mean head.
  for (const LossKind kind : {LossKind::poisson, LossKind::zinb, LossKind::hurdle}) {
    GradientCase c{std::string(loss_name(kind)) + ", log1p input + size factors",
                   base,
                   kind,
                   {},
                   {},
                   kind == LossKind::hurdle};
    c.loss_params.size_factors = true;
    c.model.output_heads = output_heads(kind);
    c.model.offset_head = log_mean_head(kind);
    c.input_transform = InputTransform::log1p;
    c.reference_library_size = 13.0;
    cases.push_back(c);
  }
  // Linear skips (input to latent, latent to output): on the sparse and the dense first layer,
  // with a penalty's hook at the latent the skip feeds, and around a per-feature head's
  // bias-only columns.
  for (const bool dense : {false, true}) {
    GradientCase c{std::string("linear skip, l1 on the latent") + (dense ? ", dense input" : ""),
                   small_model(Activation::tanh, Activation::identity, Activation::identity),
                   LossKind::mse,
                   {},
                   {},
                   dense};
    c.model.linear_skip = true;
    c.penalty.l1_weight = 0.3f;
    cases.push_back(c);
  }
  {
    GradientCase c{"linear skip, hurdle_nb, dispersion per feature, log1p input",
                   small_model(Activation::tanh, Activation::identity, Activation::identity),
                   LossKind::hurdle_nb,
                   {},
                   {},
                   false};
    c.model.linear_skip = true;
    c.model.hidden = {7, 5};
    c.loss_params.dispersion = Dispersion::feature;
    c.model.output_heads = output_heads(LossKind::hurdle_nb);
    c.model.feature_head = dispersion_head(LossKind::hurdle_nb);
    c.input_transform = InputTransform::log1p;
    cases.push_back(c);
  }
  // Sparse latents: the gradient reaches the kept entries only. A latent of 6 keeping 3 a row,
  // or 3 x rows of the batch (so that rows keep unequal counts).
  for (const LatentSparsity sparsity : {LatentSparsity::topk, LatentSparsity::batchtopk}) {
    GradientCase c{std::string("latent ") + latent_sparsity_name(sparsity) + ":3",
                   small_model(Activation::tanh, Activation::relu, Activation::identity),
                   LossKind::mse,
                   {},
                   {},
                   false};
    c.model.latent = 6;
    c.model.latent_sparsity = sparsity;
    c.model.latent_k = 3;
    cases.push_back(c);
  }
  {
    GradientCase c{"dense input path", base, LossKind::mse_cosine, cosine(0.5f), {}, true};
    c.penalty.kl_beta = 0.2f;
    cases.push_back(c);
  }
  return cases;
}

// ---- the float64 model ----

DoubleMatrix dense_input(const HostCsr& x) {
  DoubleMatrix dense(x.rows, x.cols, x.cols, 0.0);
  for (std::int64_t r = 0; r < x.rows; ++r)
    for (RowOffset e = x.row_offsets[r]; e < x.row_offsets[r + 1]; ++e)
      dense(r, x.col_indices[e]) += x.values[e];
  return dense;
}

// The groups the latent's selection (ModelConfig::latent_sparsity) chooses in: each row (topk),
// or the whole batch (batchtopk, as in training), with how many each keeps.
std::vector<std::pair<std::vector<double*>, std::int64_t>> selection_groups(
    const ModelConfig& config, DoubleMatrix& a) {
  std::vector<std::pair<std::vector<double*>, std::int64_t>> groups;
  for (std::int64_t r = 0; r < a.rows; ++r) {
    if (config.latent_sparsity == LatentSparsity::topk || groups.empty())
      groups.push_back({{},
                        config.latent_sparsity == LatentSparsity::topk ? config.latent_k
                                                                       : config.latent_k * a.rows});
    for (std::int64_t j = 0; j < a.cols; ++j) groups.back().first.push_back(&a(r, j));
  }
  return groups;
}

// The selection on the latent's relu outputs: the largest of each group kept, the rest 0. Ties
// are not broken (the check keeps the selection's edge away from them).
void select_latent(const ModelConfig& config, DoubleMatrix& a) {
  if (config.latent_sparsity == LatentSparsity::none) return;
  for (auto& [entries, keep] : selection_groups(config, a)) {
    std::sort(entries.begin(), entries.end(), [](double* x, double* y) { return *x > *y; });
    for (std::size_t i = static_cast<std::size_t>(keep); i < entries.size(); ++i) *entries[i] = 0.0;
  }
}

// How far the latent's pre-activations p lie from where a step could change the selected code:
// every |p| from the relu's kink, and in each group whose keep-th largest p is positive, that p
// from the next (below it the kept entries are relu zeros, whichever they are).
double selection_margin(const ModelConfig& config, DoubleMatrix& p) {
  double margin = 1e300;
  for (auto& [entries, keep] : selection_groups(config, p)) {
    std::sort(entries.begin(), entries.end(), [](double* x, double* y) { return *x > *y; });
    for (const double* v : entries) margin = std::min(margin, std::fabs(*v));
    const double last_kept = *entries[static_cast<std::size_t>(keep - 1)];
    if (last_kept > 0.0 && static_cast<std::size_t>(keep) < entries.size())
      margin = std::min(margin, last_kept - *entries[static_cast<std::size_t>(keep)]);
  }
  return margin;
}

// Every layer's output, y = activation(x W + b), W read from the flat parameters at the layer's
// offset: in x out row-major, or for a tied layer the encoder's matrix read as out x in.
// The output columns in [bias_only_begin, bias_only_end) have no weights (z = bias); the others
// read weight column j, or j minus the bias-only width past that range, of an in x weight_cols
// matrix. offsets (one per row, or empty) are added to the output layer's offset head.
// latent, when given, replaces the encoder: its layers output nothing but the latent layer,
// which outputs latent, and the decoder runs from it.
std::vector<DoubleMatrix> forward_double(const ModelLayout& layout,
                                         const std::vector<double>& params, const DoubleMatrix& x,
                                         const std::vector<double>& offsets,
                                         const DoubleMatrix* latent = nullptr) {
  std::vector<DoubleMatrix> outputs;
  const DoubleMatrix* in = &x;
  const ModelConfig& config = layout.config();
  for (const LayerShape& layer : layout.layers()) {
    const bool is_output = outputs.size() + 1 == layout.layers().size();
    if (latent != nullptr && outputs.size() < layout.encoder_layers()) {
      outputs.push_back(outputs.size() + 1 == layout.encoder_layers() ? *latent : DoubleMatrix());
      in = &outputs.back();
      continue;
    }
    DoubleMatrix out(in->rows, layer.out, layer.out, 0.0);
    for (std::int64_t r = 0; r < in->rows; ++r)
      for (std::int64_t j = 0; j < layer.out; ++j) {
        double z = params[static_cast<std::size_t>(layer.bias_offset + j)];
        const bool bias_only = j >= layer.bias_only_begin && j < layer.bias_only_end;
        const std::int64_t column =
            j < layer.bias_only_begin ? j : j - (layer.bias_only_end - layer.bias_only_begin);
        for (std::int64_t i = 0; i < layer.in && !bias_only; ++i) {
          const std::int64_t w =
              layer.transposed_weight ? j * layer.in + i : i * layer.weight_cols + column;
          z += (*in)(r, i) * params[static_cast<std::size_t>(layer.weight_offset + w)];
        }
        if (layer.has_skip && !bias_only) {
          const DoubleMatrix& source = layer.skip_source == LayerShape::kSkipFromInput
                                           ? x
                                           : outputs[static_cast<std::size_t>(layer.skip_source)];
          for (std::int64_t i = 0; i < layer.skip_in; ++i)
            z += source(r, i) * params[static_cast<std::size_t>(layer.skip_weight_offset +
                                                                i * layer.weight_cols + column)];
        }
        if (is_output && !offsets.empty() && config.offset_head >= 0 &&
            j / config.input_dim == config.offset_head)
          z += offsets[static_cast<std::size_t>(r)];
        out(r, j) = reference::activate(layer.activation, z);
      }
    if (outputs.size() + 1 == layout.encoder_layers()) select_latent(config, out);
    outputs.push_back(std::move(out));
    in = &outputs.back();
  }
  return outputs;
}

std::size_t penalty_layer(const GradientCase& c, const ModelLayout& layout) {
  return penalised_layer(layout, c.penalty);
}

// The batch loss: reconstruction plus the penalties at the penalised layer.
// What the first layer reads (log1p or the counts) and each row's log size factor
// log(max(1, total)) - log(reference), or no offsets.
DoubleMatrix model_input(const GradientCase& c, const DoubleMatrix& counts) {
  DoubleMatrix input = counts;
  if (c.input_transform == InputTransform::log1p)
    for (double& v : input.data) v = std::log1p(v);
  return input;
}

std::vector<double> row_offsets(const GradientCase& c, const DoubleMatrix& counts) {
  if (c.reference_library_size <= 0.0) return {};
  std::vector<double> offsets;
  for (std::int64_t r = 0; r < counts.rows; ++r) {
    double total = 0.0;
    for (std::int64_t j = 0; j < counts.cols; ++j) total += counts(r, j);
    offsets.push_back(std::log(std::max(total, 1.0)) - std::log(c.reference_library_size));
  }
  return offsets;
}

double loss_double(const GradientCase& c, const ModelLayout& layout,
                   const std::vector<double>& params, const DoubleMatrix& x,
                   const HostCsr& target) {
  const std::vector<DoubleMatrix> outputs =
      forward_double(layout, params, model_input(c, x), row_offsets(c, x));
  double loss = 0.0;
  for (const double row :
       reference::reconstruction_loss(c.loss, c.loss_params, outputs.back(), target).row_loss)
    loss += row;
  const DoubleMatrix& a = outputs[penalty_layer(c, layout)];
  const DoubleMatrix zeros(a.rows, a.cols, a.cols, 0.0);
  if (c.penalty.l1_weight > 0.0f)
    loss += reference::l1_activity_penalty(c.penalty.l1_weight, a, zeros).loss;
  if (c.penalty.kl_beta > 0.0f)
    loss += reference::kl_sparsity_penalty(c.penalty.kl_rho, c.penalty.kl_beta, a, zeros).loss;
  return loss;
}

// ---- the check ----

class GradientCheck : public BackendTest {
 protected:
  void check(const GradientCase& c, std::uint64_t seed) {
    SCOPED_TRACE(c.label);
    ASSERT_NO_THROW(validate_penalty(c.model, c.penalty)) << "a penalty the trainer refuses";
    const ModelLayout layout(c.model);
    std::mt19937_64 rng(seed);

    // 6 rows of 9 counts, rows 1 and 4 empty.
    HostCsr batch = reference::random_csr(rng, 6, c.model.input_dim, 0.5, 0.0);
    for (const std::int64_t empty : {1, 4}) {
      const RowOffset begin = batch.row_offsets[empty];
      const RowOffset length = batch.row_offsets[empty + 1] - begin;
      batch.col_indices.erase(batch.col_indices.begin() + begin,
                              batch.col_indices.begin() + begin + length);
      batch.values.erase(batch.values.begin() + begin, batch.values.begin() + begin + length);
      for (std::size_t r = static_cast<std::size_t>(empty) + 1; r < batch.row_offsets.size(); ++r)
        batch.row_offsets[r] -= length;
    }
    batch.validate();
    ASSERT_GT(batch.nnz(), 0);
    if (c.loss == LossKind::bce)
      for (float& v : batch.values) v /= 21.0f;  // targets in (0, 1]: counts reach 20 at most
    if (c.loss == LossKind::mae)
      for (float& v : batch.values) v += 10.0f;

    // Random weights and biases (non-zero biases give empty rows non-trivial outputs); the
    // padding between tensors gets values too, and must get a zero gradient.
    std::vector<float> params(static_cast<std::size_t>(layout.parameter_count()));
    for (float& p : params) p = static_cast<float>(reference::uniform(rng, -0.6, 0.6));

    // ---- the backend: forward, loss, backward with the trainer's penalty hook ----
    Network net(backend(), layout, batch.rows);
    net.parameters().upload(params);
    // BatchTopK's gradient is that of its training selection (the batch's k * rows largest).
    net.set_latent_training(c.model.latent_sparsity == LatentSparsity::batchtopk);
    const BackendCsr batch_on(backend(), batch);
    const reference::FloatMatrix dense_batch = [&] {
      reference::FloatMatrix m(batch.rows, batch.cols, batch.cols, 0.0f);
      const DoubleMatrix d = dense_input(batch);
      for (std::size_t i = 0; i < m.data.size(); ++i) m.data[i] = static_cast<float>(d.data[i]);
      return m;
    }();
    const BackendMatrix dense_on = upload(dense_batch);
    detail::BatchInput input(backend(),
                             {c.input_transform, c.reference_library_size > 0.0,
                              c.reference_library_size > 0.0 ? c.reference_library_size : 1.0},
                             batch.rows, batch.rows * batch.cols);
    // One input path per case: both share the transformed-values buffer.
    CsrView sparse_input = batch_on.view();
    ConstDenseView dense_input_view = dense_on.const_view();
    if (c.dense_input) {
      dense_input_view = input.input(dense_input_view);
      net.forward(dense_input_view, 0, input.log_offsets(dense_on.const_view()));
    } else {
      sparse_input = input.input(sparse_input);
      net.forward(sparse_input, 0, input.log_offsets(batch_on.view()));
    }
    Buffer<float> row_loss(backend(), static_cast<std::size_t>(batch.rows));
    backend().reconstruction_loss(c.loss, c.loss_params, net.output(), batch_on.view(),
                                  net.output_gradient(), row_loss.data());
    Buffer<float> penalty_loss = upload(std::vector<float>{0.0f, 0.0f});
    const std::size_t hooked_layer = penalty_layer(c, layout);
    int hook_calls = 0;
    const Network::ActivationHook hook = [&](std::size_t layer, ConstDenseView a, DenseView grad) {
      if (layer != hooked_layer) return;
      ++hook_calls;
      if (c.penalty.l1_weight > 0.0f)
        backend().l1_activity_penalty(c.penalty.l1_weight, a, grad, penalty_loss.data());
      if (c.penalty.kl_beta > 0.0f)
        backend().kl_sparsity_penalty(c.penalty.kl_rho, c.penalty.kl_beta, a, grad,
                                      penalty_loss.data() + 1);
    };
    if (c.dense_input) {
      net.backward(dense_input_view, hook);
    } else {
      net.backward(sparse_input, hook);
    }
    EXPECT_EQ(hook_calls, 1) << "the hook must see the penalised layer exactly once";
    const std::vector<float> grads = net.gradients().download();

    // ---- float64: the loss and its central differences ----
    const std::vector<double> base(params.begin(), params.end());
    const DoubleMatrix x = dense_input(batch);
    if (c.penalty.l1_weight > 0.0f) {
      // The l1 term is smooth only away from a = 0: every code must stay clear of it by far more
      // than a step moves it.
      const std::vector<DoubleMatrix> outputs =
          forward_double(layout, base, model_input(c, x), row_offsets(c, x));
      const DoubleMatrix& a = outputs[hooked_layer];
      double closest = 1e300;
      for (std::int64_t r = 0; r < a.rows; ++r)
        for (std::int64_t j = 0; j < a.cols; ++j) closest = std::min(closest, std::fabs(a(r, j)));
      ASSERT_GT(closest, 1e-3) << "a penalised activation sits on l1's kink; change the seed";
    }
    if (c.model.latent_sparsity != LatentSparsity::none) {
      // The selection is smooth only while a step changes no kept entry into a dropped one and
      // moves no kept entry across the relu's kink.
      ModelConfig pre_activations = c.model;
      pre_activations.latent_sparsity = LatentSparsity::none;
      pre_activations.latent_activation = Activation::identity;
      const std::size_t latent = layout.encoder_layers() - 1;
      DoubleMatrix p = forward_double(ModelLayout(pre_activations), base, model_input(c, x),
                                      row_offsets(c, x))[latent];
      ASSERT_GT(selection_margin(c.model, p), 1e-3)
          << "a latent sits on the selection's edge or the relu's kink; change the seed";
    }
    if (c.loss == LossKind::huber) {
      // huber is smooth only away from |y - x| = delta: every output must stay clear of it by
      // far more than a step moves it, and both sides must be exercised.
      const DoubleMatrix y = forward_double(layout, base, x, {}).back();
      const double delta = c.loss_params.huber_delta;
      double closest = 1e300;
      int quadratic = 0;
      for (std::int64_t r = 0; r < y.rows; ++r)
        for (std::int64_t j = 0; j < y.cols; ++j) {
          const double d = std::fabs(y(r, j) - x(r, j));
          closest = std::min(closest, std::fabs(d - delta));
          quadratic += d <= delta;
        }
      ASSERT_GT(closest, 1e-3) << "an output sits on huber's kink; change the seed or delta";
      ASSERT_GT(quadratic, 0) << "no entry on the quadratic side";
      ASSERT_LT(quadratic, y.rows * y.cols) << "no entry on the linear side";
    }
    const double loss = loss_double(c, layout, base, x, batch);
    double backend_loss = 0.0;
    for (const float v : row_loss.download()) backend_loss += v;
    for (const float v : penalty_loss.download()) backend_loss += v;
    EXPECT_NEAR(backend_loss, loss, kLossTolerance * std::fabs(loss)) << "batch loss";

    std::vector<double> numeric(params.size());
    std::vector<double> shifted = base;
    for (std::size_t i = 0; i < params.size(); ++i) {
      shifted[i] = base[i] + kStep;
      const double up = loss_double(c, layout, shifted, x, batch);
      shifted[i] = base[i] - kStep;
      const double down = loss_double(c, layout, shifted, x, batch);
      shifted[i] = base[i];
      numeric[i] = (up - down) / (2.0 * kStep);
    }

    double largest = 0.0;
    for (const double g : numeric) largest = std::max(largest, std::fabs(g));
    ASSERT_GT(largest, 0.0);
    // The padding between tensors affects nothing: its gradient must be exactly zero.
    std::vector<bool> used(params.size(), false);
    for (const LayerShape& layer : layout.layers()) {
      for (std::int64_t k = 0; k < layer.in * layer.weight_cols; ++k)
        used[static_cast<std::size_t>(layer.weight_offset + k)] = true;
      for (std::int64_t k = 0; k < layer.out; ++k)
        used[static_cast<std::size_t>(layer.bias_offset + k)] = true;
      for (std::int64_t k = 0; layer.has_skip && k < layer.skip_in * layer.weight_cols; ++k)
        used[static_cast<std::size_t>(layer.skip_weight_offset + k)] = true;
    }
    std::size_t with_gradient = 0;
    std::size_t used_count = 0;
    for (std::size_t i = 0; i < params.size(); ++i) {
      used_count += used[i];
      if (!used[i]) {
        EXPECT_EQ(grads[i], 0.0f) << "padding parameter " << i << " got a gradient";
      }
      with_gradient += numeric[i] != 0.0;
    }
    // Not vacuous: only first-layer weights of columns absent from every row have none.
    EXPECT_GT(with_gradient, used_count * 3 / 4);

    double worst = 0.0;
    std::size_t worst_index = 0;
    for (std::size_t i = 0; i < params.size(); ++i) {
      const double error = std::fabs(grads[i] - numeric[i]);
      if (!(error <= worst)) {  // NaN counts as worst
        worst = error;
        worst_index = i;
      }
    }
    RecordProperty("worst_relative_error_" + std::to_string(seed), std::to_string(worst / largest));
    std::printf("  %-45s worst |backend - central difference| / max |gradient| = %.2g\n",
                c.label.c_str(), worst / largest);
    EXPECT_LE(worst / largest, kGradientTolerance)
        << "parameter " << worst_index << ": backend " << grads[worst_index]
        << ", central difference " << numeric[worst_index] << ", largest |gradient| " << largest;

    // ---- Network::latent_gradient: the reconstruction loss's gradient in the latent codes,
    // through the decoder alone, against central differences of the float64 decoder's loss ----
    backend().reconstruction_loss(c.loss, c.loss_params, net.output(), batch_on.view(),
                                  net.output_gradient(), row_loss.data());
    const std::vector<float> latent_grads = [&] {
      const DenseView g = net.latent_gradient();
      std::vector<float> host(static_cast<std::size_t>(g.size()));
      backend().download_bytes(host.data(), g.data, host.size() * sizeof(float));
      return host;
    }();
    EXPECT_EQ(net.gradients().download(), grads) << "latent_gradient changed gradients()";
    const DoubleMatrix codes = [&] {
      const DenseView z = net.latent();
      std::vector<float> host(static_cast<std::size_t>(z.size()));
      backend().download_bytes(host.data(), z.data, host.size() * sizeof(float));
      DoubleMatrix m(z.rows, z.cols, z.cols, 0.0);
      for (std::size_t i = 0; i < host.size(); ++i) m.data[i] = host[i];
      return m;
    }();
    const std::vector<double> offsets = row_offsets(c, x);
    const auto decoder_loss = [&](const DoubleMatrix& z) {
      const DoubleMatrix y = forward_double(layout, base, x, offsets, &z).back();
      double total = 0.0;
      for (const double row :
           reference::reconstruction_loss(c.loss, c.loss_params, y, batch).row_loss)
        total += row;
      return total;
    };
    std::vector<double> latent_numeric(codes.data.size());
    DoubleMatrix moved = codes;
    for (std::size_t i = 0; i < codes.data.size(); ++i) {
      moved.data[i] = codes.data[i] + kStep;
      const double up = decoder_loss(moved);
      moved.data[i] = codes.data[i] - kStep;
      const double down = decoder_loss(moved);
      moved.data[i] = codes.data[i];
      latent_numeric[i] = (up - down) / (2.0 * kStep);
    }
    double latent_largest = 0.0;
    for (const double g : latent_numeric) latent_largest = std::max(latent_largest, std::fabs(g));
    ASSERT_GT(latent_largest, 0.0);
    ASSERT_EQ(latent_grads.size(), latent_numeric.size());
    double latent_worst = 0.0;
    for (std::size_t i = 0; i < latent_numeric.size(); ++i) {
      const double error = std::fabs(latent_grads[i] - latent_numeric[i]);
      if (!(error <= latent_worst)) latent_worst = error;
    }
    EXPECT_LE(latent_worst / latent_largest, kGradientTolerance) << "latent gradient";
  }
};

TEST_P(GradientCheck, WholeModelMatchesCentralDifferences) {
  std::uint64_t seed = 100;
  for (const GradientCase& c : gradient_cases()) check(c, ++seed);
}

SPARSEAE_INSTANTIATE_FOR_EACH_BACKEND(GradientCheck);

}  // namespace
}  // namespace sparseae::test
