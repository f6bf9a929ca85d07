// Lossless mode: the deterministic decoder (the same bits on every backend and batch size, and
// close to the network it stands for), the rANS coder and the half conversion, and compress /
// decompress: exact round trips for every loss and latent format at odd block and batch sizes,
// across backends where a device answers, every corrupted byte and every truncation detected,
// sizes that are the file's, and bad input refused with one line.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <random>
#include <string>
#include <system_error>
#include <vector>

#include "backend_fixture.hpp"
#include "compress/deterministic_decoder.hpp"
#include "compress/entry_coding.hpp"
#include "compress/order0.hpp"
#include "compress/rans.hpp"
#include "math/deterministic_decode.hpp"
#include "sparseae/checkpoint.hpp"
#include "sparseae/compare.hpp"
#include "sparseae/generator.hpp"
#include "sparseae/inference.hpp"
#include "sparseae/lossless.hpp"
#include "sparseae/trainer.hpp"
#include "test_util.hpp"

namespace sparseae {
namespace {

namespace fs = std::filesystem;
using test::contains;
using test::error_message;

// This process's scratch directory, removed with what it holds when the process exits: ctest
// runs every test in a process of its own, and each left one behind before.
struct ScratchDirectory {
  fs::path path;
  ~ScratchDirectory() {
    std::error_code ignored;
    fs::remove_all(path, ignored);
  }
};

fs::path scratch_dir() {
  static const ScratchDirectory dir{fs::temp_directory_path() /
                                    ("sparseae-lossless-" + std::to_string(::getpid()))};
  fs::create_directories(dir.path);
  return dir.path;
}

std::string scratch(const std::string& name) { return (scratch_dir() / name).string(); }

std::vector<unsigned char> read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void write_bytes(const std::string& path, const std::vector<unsigned char>& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()),
            static_cast<std::streamsize>(bytes.size()));
}

std::vector<std::uint32_t> bits_of(const std::vector<float>& values) {
  std::vector<std::uint32_t> bits(values.size());
  std::memcpy(bits.data(), values.data(), values.size() * sizeof(float));
  return bits;
}

HostCsr topic_data(std::int64_t rows, std::int64_t cols, std::uint64_t seed = 7) {
  TopicDataConfig config;
  config.rows = rows;
  config.cols = cols;
  config.topics = 4;
  config.columns_per_topic = static_cast<int>(cols / 4);
  config.mean_nonzeros = std::min(6.0, static_cast<double>(cols) / 4);
  config.seed = seed;
  return generate_topic_counts(config);
}

struct TrainedModelFile {
  RunConfig config;
  std::vector<float> parameters;
};

// A tiny model trained for one epoch on data, finished as sae train finishes one (scale, training
// histogram, hurdle threshold).
TrainedModelFile train_tiny(Backend& backend, LossKind loss, const HostCsr& data,
                            const std::function<void(RunConfig&)>& adjust = {}) {
  RunConfig run;
  run.model.input_dim = data.cols;
  run.model.hidden = {16};
  run.model.latent = 5;
  run.train.loss = loss;
  run.train.epochs = 1;
  run.train.batch_size = 32;
  run.train.optimizer.learning_rate = 3e-3f;
  if (adjust) adjust(run);
  Trainer trainer(backend, run.model, run.train, data);
  trainer.train();
  finished_model(backend, trainer, run);
  return {run, trainer.state().parameters};
}

// Decompresses path into one matrix.
HostCsr decompress_all(Backend& backend, const TrainedModelFile& model, const std::string& path,
                       std::int64_t batch_rows) {
  HostCsr all;
  all.row_offsets.assign(1, 0);
  decompress_lossless(
      backend, model.config, model.parameters, path, batch_rows,
      [&](const LosslessFileInfo& info) {
        all.rows = info.rows;
        all.cols = info.cols;
      },
      [&](std::int64_t, const HostCsr& block) {
        for (std::int64_t r = 0; r < block.rows; ++r) {
          for (RowOffset k = block.row_offsets[r]; k < block.row_offsets[r + 1]; ++k) {
            all.col_indices.push_back(block.col_indices[k]);
            all.values.push_back(block.values[k]);
          }
          all.row_offsets.push_back(static_cast<RowOffset>(all.values.size()));
        }
      });
  return all;
}

void expect_same_counts(const HostCsr& a, const HostCsr& b, const std::string& what) {
  EXPECT_EQ(a.rows, b.rows) << what;
  EXPECT_EQ(a.cols, b.cols) << what;
  EXPECT_EQ(a.row_offsets, b.row_offsets) << what;
  EXPECT_EQ(a.col_indices, b.col_indices) << what;
  EXPECT_EQ(a.values, b.values) << what;
}

// ---- the deterministic math ----

TEST(DeterministicMath, ExpAndLog1pAreAccurate) {
  for (float x = -86.9f; x < 88.7f; x += 0.0137f) {
    const double exact = std::exp(static_cast<double>(x));
    EXPECT_NEAR(math::deterministic::exp(x), exact, 3e-7 * exact) << x;
  }
  EXPECT_EQ(math::deterministic::exp(-200.0f), 0.0f);
  EXPECT_EQ(math::deterministic::exp(100.0f), std::numeric_limits<float>::infinity());
  EXPECT_EQ(math::deterministic::exp(0.0f), 1.0f);
  for (float u = 0.0f; u <= 1.0f; u += 0.001f)
    EXPECT_NEAR(math::deterministic::log1p_unit(u), std::log1p(static_cast<double>(u)),
                3e-7 * std::log1p(static_cast<double>(u)) + 1e-30)
        << u;
  for (const Activation a : {Activation::sigmoid, Activation::tanh, Activation::softplus})
    for (float x = -20.0f; x <= 20.0f; x += 0.01f)
      EXPECT_NEAR(math::deterministic::activate(a, x), math::activate(a, x),
                  1e-6f * (1.0f + std::fabs(math::activate(a, x))))
          << static_cast<int>(a) << " at " << x;
}

// The host runs a layer's outputs 16 at a time (layer_output_lanes) while the device runs
// layer_output per output: the two must give the same bits, for plain and transposed weights,
// with and without a bias-only range and a row offset, at every lane position that fits.
TEST(DeterministicMath, OutputLanesGiveLayerOutputsBits) {
  std::mt19937_64 rng(77);
  std::uniform_real_distribution<float> uniform(-2.0f, 2.0f);
  constexpr std::int64_t kIn = 37;
  constexpr std::int64_t kOut = 70;
  std::vector<float> weights(kIn * kOut), bias(kOut), in_row(kIn);
  for (float& w : weights) w = uniform(rng);
  for (float& b : bias) b = uniform(rng);
  for (float& x : in_row) x = uniform(rng);
  for (const bool transposed : {false, true})
    for (const std::int64_t bias_only_begin : {std::int64_t{0}, std::int64_t{20}})
      for (const Activation activation :
           {Activation::identity, Activation::tanh, Activation::softplus, Activation::relu}) {
        DeterministicLayer layer;
        layer.weights = weights.data();
        layer.bias = bias.data();
        layer.in = kIn;
        layer.out = kOut;
        layer.transposed_weight = transposed;
        // Bias-only outputs [20, 26) when asked (plain weights only, as the decoder builds them).
        layer.bias_only_begin = transposed ? 0 : bias_only_begin;
        layer.bias_only_end = transposed || bias_only_begin == 0 ? layer.bias_only_begin : 26;
        layer.weight_cols = transposed ? kIn : kOut - (layer.bias_only_end - layer.bias_only_begin);
        layer.offset_begin = 10;
        layer.offset_end = 50;
        layer.activation = activation;
        SCOPED_TRACE("transposed " + std::to_string(transposed) + ", bias-only from " +
                     std::to_string(layer.bias_only_begin) + ", activation " +
                     std::to_string(static_cast<int>(activation)));
        std::int64_t fitted = 0;
        for (std::int64_t j0 = 0; j0 < kOut; ++j0) {
          if (!math::deterministic::lanes_fit(layer, j0)) continue;
          ++fitted;
          float lanes[math::deterministic::kOutputLanes];
          math::deterministic::layer_output_lanes(layer, in_row.data(), 0.75f, j0, lanes);
          for (std::int64_t l = 0; l < math::deterministic::kOutputLanes; ++l) {
            const float one =
                math::deterministic::layer_output(layer, in_row.data(), 0.75f, j0 + l);
            EXPECT_EQ(std::memcmp(&lanes[l], &one, sizeof one), 0)
                << "output " << j0 + l << ": " << lanes[l] << " against " << one;
          }
        }
        // Lanes never straddle the bias-only range: 70 - 16 + 1 positions without one, and
        // with [20, 26) those ending by 20 (0..4) and starting from 26 (26..54).
        EXPECT_EQ(fitted, layer.bias_only_end > layer.bias_only_begin ? 5 + 29 : kOut - 15);
      }
}

// A decoder with every activation and the output shapes lossless mode meets: several heads,
// a bias-only dispersion head, an offset head; and a tied model.
std::vector<RunConfig> decoder_configs() {
  std::vector<RunConfig> configs;
  RunConfig nb;
  nb.model.input_dim = 23;
  nb.model.hidden = {19, 11};
  nb.model.latent = 7;
  nb.model.hidden_activation = Activation::tanh;
  nb.model.latent_activation = Activation::sigmoid;
  nb.model.output_activation = Activation::identity;
  nb.train.loss = LossKind::nb;
  nb.train.loss_params.dispersion = Dispersion::feature;
  nb.train.loss_params.size_factors = true;
  nb.reference_library_size = 9.0;
  configs.push_back(nb);
  RunConfig tied;
  tied.model.input_dim = 17;
  tied.model.hidden = {13};
  tied.model.latent = 5;
  tied.model.tied_weights = true;
  tied.model.hidden_activation = Activation::softplus;
  tied.model.latent_activation = Activation::leaky_relu;
  tied.model.output_activation = Activation::softplus;
  configs.push_back(tied);
  // Linear skips: the output layer over [last hidden | code], around a bias-only head; and with
  // one hidden layer, whose output is the joined row's first columns and whose input its last.
  RunConfig skip;
  skip.model.input_dim = 19;
  skip.model.hidden = {11, 8};
  skip.model.latent = 4;
  skip.model.latent_activation = Activation::identity;
  skip.model.hidden_activation = Activation::tanh;
  skip.model.output_activation = Activation::identity;
  skip.model.linear_skip = true;
  skip.train.loss = LossKind::hurdle_nb;
  skip.train.loss_params.dispersion = Dispersion::feature;
  configs.push_back(skip);
  RunConfig shallow_skip = skip;
  shallow_skip.model.hidden = {6};
  shallow_skip.train.loss = LossKind::mse;
  shallow_skip.train.loss_params = {};
  configs.push_back(shallow_skip);
  return configs;
}

std::vector<float> random_values(std::size_t n, std::uint32_t seed, float spread) {
  std::mt19937 generator(seed);
  std::normal_distribution<float> normal(0.0f, spread);
  std::vector<float> values(n);
  for (float& v : values) v = normal(generator);
  return values;
}

class DeterministicDecoderTest : public test::BackendTest {};

// The decoder's outputs are the same bits on this backend as on the cpu, for any batch size, and
// agree with the network they stand for (to float rounding).
TEST_P(DeterministicDecoderTest, SameBitsOnEveryBackendAndBatchAndCloseToTheNetwork) {
  const auto cpu = make_backend(BackendChoice::cpu);
  for (const RunConfig& config : decoder_configs()) {
    const ModelLayout layout(
        with_loss_heads(config.model, config.train.loss, config.train.loss_params));
    std::vector<float> parameters =
        random_values(static_cast<std::size_t>(layout.parameter_count()), 11, 0.4f);
    const std::int64_t rows = 41;
    lossless::DeterministicDecoder probe(*cpu, config, parameters, 1);
    const std::vector<float> latents =
        random_values(static_cast<std::size_t>(rows * probe.latent_width()), 12, 1.0f);
    const std::vector<float> offsets = random_values(static_cast<std::size_t>(rows), 13, 0.5f);
    const auto decode = [&](Backend& backend, std::int64_t batch) {
      lossless::DeterministicDecoder decoder(backend, config, parameters, batch);
      std::vector<float> outputs(static_cast<std::size_t>(rows * decoder.output_width()));
      decoder.decode(latents.data(), rows, offsets.data(), outputs.data());
      return outputs;
    };
    const std::vector<float> reference = decode(*cpu, rows);
    for (const std::int64_t batch : {1, 4, 7, 41})
      EXPECT_EQ(bits_of(decode(backend(), batch)), bits_of(reference)) << "batch " << batch;

    // Without offsets the decoder is the network's decoder: TrainedModel::decode_outputs.
    if (!lossless::DeterministicDecoder(*cpu, config, parameters, 1).takes_offsets()) {
      TrainedModel model(*cpu, config, parameters);
      const HostDense network =
          model.decode_outputs(HostDense{rows, probe.latent_width(), latents});
      for (std::size_t i = 0; i < reference.size(); ++i)
        EXPECT_NEAR(reference[i], network.values[i], 1e-4f * (1.0f + std::fabs(network.values[i])))
            << i;
    }
  }
}

SPARSEAE_INSTANTIATE_FOR_EACH_BACKEND(DeterministicDecoderTest);

// ---- the coders ----

// Rows whose pmfs were prepared together (on the threads, in uneven batches) code the same bits as
// rows whose pmfs each put computes as it comes, and decode back the same, escapes included.
TEST(RowCoder, PreparedRowsCodeTheSameBitsAsRowsOneByOne) {
  constexpr std::int64_t kRows = 37, kCols = 96;
  const int heads = output_heads(LossKind::hurdle_nb);
  std::mt19937 random(5);
  std::uniform_real_distribution<float> uniform(-3.0f, 3.0f);
  std::vector<float> outputs(static_cast<std::size_t>(kRows * heads * kCols));
  for (float& value : outputs) value = uniform(random);
  std::vector<float> counts(static_cast<std::size_t>(kRows * kCols));
  for (std::size_t i = 0; i < counts.size(); ++i)
    counts[i] = static_cast<float>(i % 7 == 0 ? 200 + i % 13 : i % 3);  // some escapes
  const std::int64_t row_width = heads * kCols;
  const auto code = [&](std::int64_t prepared_rows) {
    lossless::RowCoder coder(LossKind::hurdle_nb, 1.0f, kCols);
    lossless::RansEncoder encoder;
    double nll = 0.0;
    for (std::int64_t r = 0; r < kRows; ++r) {
      if (prepared_rows > 0 && r % prepared_rows == 0)
        coder.prepare(outputs.data() + r * row_width, std::min(prepared_rows, kRows - r));
      nll += coder.put(encoder, outputs.data() + r * row_width, counts.data() + r * kCols);
    }
    return std::make_pair(encoder.finish(), nll);
  };
  const auto one_by_one = code(0);
  for (const std::int64_t prepared_rows : {1, 5, 16, 64}) {
    const auto prepared = code(prepared_rows);
    EXPECT_EQ(prepared.first, one_by_one.first) << prepared_rows << " rows prepared at a time";
    EXPECT_EQ(prepared.second, one_by_one.second) << prepared_rows;
    lossless::RowCoder coder(LossKind::hurdle_nb, 1.0f, kCols);
    lossless::RansDecoder decoder(prepared.first.data(), prepared.first.size());
    std::vector<float> back(static_cast<std::size_t>(kCols));
    for (std::int64_t r = 0; r < kRows; ++r) {
      if (r % prepared_rows == 0)
        coder.prepare(outputs.data() + r * row_width, std::min(prepared_rows, kRows - r));
      coder.get(decoder, outputs.data() + r * row_width, back.data());
      ASSERT_EQ(back,
                std::vector<float>(counts.begin() + r * kCols, counts.begin() + (r + 1) * kCols))
          << "row " << r << ", " << prepared_rows << " rows prepared at a time";
    }
    decoder.finish();
  }
}

TEST(Rans, RoundTripsMixedSymbolsAndDetectsAStreamThatDoesNotEnd) {
  std::mt19937 generator(5);
  lossless::RansEncoder encoder;
  lossless::AdaptiveBit bit_model;
  lossless::AdaptiveInteger integer_model;
  lossless::AdaptiveByte byte_model;
  std::vector<std::uint32_t> values;
  for (int i = 0; i < 5000; ++i) values.push_back(generator());
  for (int i = 0; i < 5000; ++i) {
    const std::uint32_t v = values[static_cast<std::size_t>(i)];
    encoder.put_bit(bit_model, (v & 7u) == 0);
    integer_model.put(encoder, i % 3 == 0 ? v : v % 40);
    byte_model.put(encoder, v >> 24);
    encoder.put(v % 1000, 17, 16);
  }
  const std::vector<std::uint8_t> bytes = encoder.finish();
  lossless::RansDecoder decoder(bytes.data(), bytes.size());
  lossless::AdaptiveBit bit_read;
  lossless::AdaptiveInteger integer_read;
  lossless::AdaptiveByte byte_read;
  for (int i = 0; i < 5000; ++i) {
    const std::uint32_t v = values[static_cast<std::size_t>(i)];
    ASSERT_EQ(decoder.get_bit(bit_read), (v & 7u) == 0 ? 1 : 0) << i;
    ASSERT_EQ(integer_read.get(decoder), i % 3 == 0 ? v : v % 40) << i;
    ASSERT_EQ(byte_read.get(decoder), v >> 24) << i;
    const std::uint32_t slot = decoder.peek(16);
    ASSERT_GE(slot, v % 1000);
    ASSERT_LT(slot, v % 1000 + 17);
    decoder.advance(v % 1000, 17, 16);
  }
  EXPECT_NO_THROW(decoder.finish());
  lossless::RansDecoder early(bytes.data(), bytes.size());
  EXPECT_TRUE(contains(error_message([&] { early.finish(); }), "does not end"));
}

TEST(Half, EveryHalfRoundTripsAndFloatsRoundToNearestEven) {
  for (std::uint32_t h = 0; h < 65536; ++h) {
    const float f = lossless::half_to_float(static_cast<std::uint16_t>(h));
    if (std::isnan(f)) continue;
    if (std::isinf(f)) continue;  // clamped to the largest finite half on the way back
    ASSERT_EQ(lossless::float_to_half(f), h) << h;
  }
  EXPECT_EQ(lossless::half_to_float(lossless::float_to_half(1.0f + 0x1p-11f)), 1.0f)
      << "tie to even";
  EXPECT_EQ(lossless::half_to_float(lossless::float_to_half(1.0f + 3 * 0x1p-11f)), 1.0f + 0x1p-9f);
  EXPECT_EQ(lossless::half_to_float(lossless::float_to_half(1e6f)), 65504.0f);
  EXPECT_EQ(lossless::half_to_float(lossless::float_to_half(-1e6f)), -65504.0f);
  EXPECT_EQ(lossless::half_to_float(lossless::float_to_half(0x1p-25f)), 0.0f) << "tie to even 0";
  EXPECT_EQ(lossless::half_to_float(lossless::float_to_half(0x1.8p-24f)), 0x1p-23f);
}

// The quantised pmf gives every count a slot, sums to the total and follows the probabilities.
TEST(QuantisedPmf, CoversEveryCountAndFollowsThePoissonPmf) {
  for (const float eta : {-12.0f, -2.0f, 0.0f, 1.5f, 3.0f, 6.0f}) {
    lossless::QuantisedPmf pmf;
    const float h[3] = {eta, 0.0f, 0.0f};
    lossless::quantised_pmf(LossKind::poisson, h, pmf);
    const int n = pmf.explicit_counts;
    ASSERT_GE(n, 1);
    EXPECT_EQ(pmf.cumulative[n + 1], 1u << lossless::kPmfBits);
    for (int s = 0; s <= n; ++s) EXPECT_GT(pmf.cumulative[s + 1], pmf.cumulative[s]);
    const double mu = std::exp(static_cast<double>(eta));
    for (int k = 0; k < n; ++k) {
      const double p = std::exp(-mu + k * std::log(mu) - std::lgamma(k + 1.0));
      const double q = (pmf.cumulative[k + 1] - pmf.cumulative[k]) / 65536.0;
      EXPECT_NEAR(q, p, 1e-4 + 2.0 * (n + 1) / 65536.0) << "eta " << eta << " k " << k;
    }
  }
}

// ---- compress and decompress ----

struct RoundTripCase {
  LossKind loss;
  int latent_bits;
};

// Every loss, each with a latent format, at an odd block size and odd batch sizes that differ
// between compress and decompress.
TEST(Lossless, RoundTripIsExactForEveryLoss) {
  const auto cpu = make_backend(BackendChoice::cpu);
  const HostCsr data = topic_data(150, 48);
  const RoundTripCase cases[] = {
      {LossKind::mse, 32},        {LossKind::mae, 16},     {LossKind::bce, 8},
      {LossKind::mse_cosine, 32}, {LossKind::poisson, 16}, {LossKind::weighted_mse, 8},
      {LossKind::huber, 32},      {LossKind::nb, 8},       {LossKind::zinb, 32},
      {LossKind::hurdle, 16},     {LossKind::hurdle_nb, 8}};
  for (const RoundTripCase& c : cases) {
    const std::string what =
        std::string(loss_name(c.loss)) + ", " + std::to_string(c.latent_bits) + "-bit latents";
    const TrainedModelFile model = train_tiny(*cpu, c.loss, data);
    LosslessOptions options;
    options.latent_bits = c.latent_bits;
    options.block_rows = 37;
    options.batch_rows = 13;
    options.order0_fallback = false;  // the model's coding, which a tiny model would lose
    CsrRowSource source(data);
    const std::string path = scratch("round-trip.sae");
    const LosslessSizes sizes =
        compress_lossless(*cpu, model.config, model.parameters, source, path, options);
    EXPECT_EQ(sizes.total(), static_cast<std::int64_t>(fs::file_size(path))) << what;
    EXPECT_EQ(sizes.nonzeros, data.nnz()) << what;
    EXPECT_EQ(std::isnan(sizes.nll_bits), !has_count_likelihood(c.loss)) << what;
    expect_same_counts(decompress_all(*cpu, model, path, 5), data, what);
  }
}

// The model shapes with their own decoder paths: size factors (the row totals travel in the
// file), a per-feature dispersion (bias-only outputs), tied weights, a log1p input.
TEST(Lossless, RoundTripIsExactForSizeFactorsFeatureDispersionTiedWeightsAndLinearSkips) {
  const auto cpu = make_backend(BackendChoice::cpu);
  const HostCsr data = topic_data(120, 40, 9);
  const std::vector<std::pair<LossKind, std::function<void(RunConfig&)>>> variants = {
      {LossKind::nb,
       [](RunConfig& r) {
         r.train.loss_params.size_factors = true;
         r.train.input_transform = InputTransform::log1p;
       }},
      {LossKind::zinb, [](RunConfig& r) { r.train.loss_params.dispersion = Dispersion::feature; }},
      {LossKind::poisson, [](RunConfig& r) { r.train.loss_params.size_factors = true; }},
      {LossKind::mse, [](RunConfig& r) { r.model.tied_weights = true; }},
      {LossKind::huber,
       [](RunConfig& r) {
         r.model.linear_skip = true;
         r.model.latent_activation = Activation::identity;
       }},
      {LossKind::hurdle_nb, [](RunConfig& r) {
         r.model.linear_skip = true;
         r.model.latent_activation = Activation::identity;
       }}};
  for (const auto& [loss, adjust] : variants) {
    const TrainedModelFile model = train_tiny(*cpu, loss, data, adjust);
    LosslessOptions options;
    options.block_rows = 29;
    options.batch_rows = 11;
    options.order0_fallback = false;  // the model's coding, which a tiny model would lose
    CsrRowSource source(data);
    const std::string path = scratch("variants.sae");
    compress_lossless(*cpu, model.config, model.parameters, source, path, options);
    expect_same_counts(decompress_all(*cpu, model, path, 3), data, loss_name(loss));
  }
}

class LosslessAcrossBackends : public test::BackendTest {};

// Compressed on this backend and decompressed on the cpu, and the other way round.
TEST_P(LosslessAcrossBackends, CompressOnOneBackendDecompressOnTheOther) {
  const auto cpu = make_backend(BackendChoice::cpu);
  const HostCsr data = topic_data(90, 32, 11);
  for (const LossKind loss : {LossKind::nb, LossKind::mse, LossKind::hurdle}) {
    const TrainedModelFile model = train_tiny(*cpu, loss, data);
    LosslessOptions options;
    options.block_rows = 31;
    options.batch_rows = 9;
    options.order0_fallback = false;  // the model's coding, which a tiny model would lose
    const std::string here = scratch("here.sae"), there = scratch("there.sae");
    CsrRowSource source_here(data), source_there(data);
    compress_lossless(backend(), model.config, model.parameters, source_here, here, options);
    compress_lossless(*cpu, model.config, model.parameters, source_there, there, options);
    EXPECT_EQ(read_bytes(here), read_bytes(there)) << loss_name(loss) << ": same file either way";
    expect_same_counts(decompress_all(*cpu, model, here, 7), data, loss_name(loss));
    expect_same_counts(decompress_all(backend(), model, there, 4), data, loss_name(loss));
  }
}

SPARSEAE_INSTANTIATE_FOR_EACH_BACKEND(LosslessAcrossBackends);

class LosslessFile : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    backend_ = make_backend(BackendChoice::cpu).release();
    data_ = new HostCsr(topic_data(30, 24, 3));
    model_ = new TrainedModelFile(train_tiny(*backend_, LossKind::nb, *data_));
    LosslessOptions options;
    options.block_rows = 12;
    options.order0_fallback = false;
    CsrRowSource source(*data_);
    compress_lossless(*backend_, model_->config, model_->parameters, source, scratch("f.sae"),
                      options);
    options.codec = LosslessCodec::order0;
    CsrRowSource order0_source(*data_);
    compress_lossless(order0_source, scratch("o.sae"), options);
    options.codec = LosslessCodec::order0_training;
    CsrRowSource training_source(*data_);
    compress_lossless(*backend_, model_->config, model_->parameters, training_source,
                      scratch("t.sae"), options);
  }
  static void TearDownTestSuite() {
    delete model_;
    delete data_;
    delete backend_;
    fs::remove_all(scratch_dir());
  }
  static std::string decompress_error(const std::string& path) {
    return error_message([&] { decompress_all(*backend_, *model_, path, 8); });
  }

  static Backend* backend_;
  static HostCsr* data_;
  static TrainedModelFile* model_;
};

Backend* LosslessFile::backend_ = nullptr;
HostCsr* LosslessFile::data_ = nullptr;
TrainedModelFile* LosslessFile::model_ = nullptr;

// A model-coded file, an order0 one and an order0_training one.
TEST_F(LosslessFile, EveryCorruptedByteIsDetected) {
  for (const char* name : {"f.sae", "o.sae", "t.sae"}) {
    const std::vector<unsigned char> good = read_bytes(scratch(name));
    ASSERT_GT(good.size(), 150u) << name;
    const std::string bad = scratch("corrupt.sae");
    for (std::size_t at = 0; at < good.size(); ++at) {
      std::vector<unsigned char> bytes = good;
      bytes[at] ^= static_cast<unsigned char>(1u << (at % 8));
      write_bytes(bad, bytes);
      const std::string message = decompress_error(bad);
      ASSERT_TRUE(contains(message, bad)) << name << ", byte " << at << ": " << message;
    }
  }
}

TEST_F(LosslessFile, TruncationAndTrailingBytesAreDetected) {
  for (const char* name : {"f.sae", "o.sae", "t.sae"}) {
    const std::vector<unsigned char> good = read_bytes(scratch(name));
    const std::string bad = scratch("truncated.sae");
    for (std::size_t length = 0; length < good.size(); length += 7) {
      write_bytes(bad, std::vector<unsigned char>(good.begin(), good.begin() + length));
      ASSERT_TRUE(contains(decompress_error(bad), bad)) << name << ", length " << length;
    }
    std::vector<unsigned char> longer = good;
    longer.push_back(0);
    write_bytes(bad, longer);
    EXPECT_TRUE(contains(decompress_error(bad), "trailer"))
        << name << ": " << decompress_error(bad);
  }
}

// A file of a format older than this build reads (its version field sits where it always did)
// is refused with one line that says which build reads it; versions 2 and 3, whose order-0
// tables follow the header, are still read; a model-coded file needs its model.
TEST_F(LosslessFile, AnOlderVersionAndAMissingModelAreRefusedWithOneLine) {
  const std::vector<unsigned char> file = read_bytes(scratch("f.sae"));
  std::vector<unsigned char> bytes = file;
  const std::uint32_t version_1 = 1;
  std::memcpy(bytes.data() + 8, &version_1, sizeof version_1);
  write_bytes(scratch("v1.sae"), bytes);
  const std::string old = decompress_error(scratch("v1.sae"));
  EXPECT_TRUE(contains(old,
                       "format version 1, this build reads versions 2 to 4: decompress it with "
                       "the build that wrote it"))
      << old;
  EXPECT_EQ(old.find('\n'), std::string::npos) << old;

  // f.sae keeps the model in every block, so it holds no tables; o.sae's end before its 32-byte
  // trailer. Their version 3 layout: f's 88-byte header, the tables with their checksum, f's
  // blocks and trailer. The header's checksum (over its first 80 bytes) and the trailer's (over
  // every byte before it) are written anew.
  const std::vector<unsigned char> order0 = read_bytes(scratch("o.sae"));
  std::uint64_t table_bytes = 0;
  std::memcpy(&table_bytes, file.data() + 72, sizeof table_bytes);
  ASSERT_GT(table_bytes, 0u);
  const auto tables = order0.end() - 32 - static_cast<std::ptrdiff_t>(table_bytes + 8);
  const auto fnv = [](const std::vector<unsigned char>& of, std::size_t end) {
    std::uint64_t hash = 0xcbf29ce484222325ull;
    for (std::size_t i = 0; i < end; ++i) hash = (hash ^ of[i]) * 0x100000001b3ull;
    return hash;
  };
  for (const std::uint32_t version : {3u, 2u}) {
    bytes.assign(file.begin(), file.begin() + 88);
    bytes.insert(bytes.end(), tables, tables + static_cast<std::ptrdiff_t>(table_bytes + 8));
    bytes.insert(bytes.end(), file.begin() + 88, file.end());
    std::memcpy(bytes.data() + 8, &version, sizeof version);
    const std::uint64_t header_checksum = fnv(bytes, 80);
    std::memcpy(bytes.data() + 80, &header_checksum, sizeof header_checksum);
    const std::uint64_t file_checksum = fnv(bytes, bytes.size() - 8);
    std::memcpy(bytes.data() + bytes.size() - 8, &file_checksum, sizeof file_checksum);
    const std::string name = "v" + std::to_string(version) + ".sae";
    write_bytes(scratch(name), bytes);
    expect_same_counts(decompress_all(*backend_, *model_, scratch(name), 8), *data_,
                       "a version " + std::to_string(version) + " file");
  }
  const std::string no_model = error_message([] {
    decompress_lossless(
        scratch("f.sae"), [](const auto&) {}, [](auto, const auto&) {});
  });
  EXPECT_TRUE(contains(no_model, "compressed with a model (--codec model)")) << no_model;
  EXPECT_EQ(no_model.find('\n'), std::string::npos) << no_model;
}

TEST_F(LosslessFile, AnotherModelIsRefusedWithOneLine) {
  TrainedModelFile other = *model_;
  other.parameters[0] += 1.0f;
  const std::string message =
      error_message([&] { decompress_all(*backend_, other, scratch("f.sae"), 8); });
  EXPECT_TRUE(contains(message, "compressed with another model")) << message;
  EXPECT_EQ(message.find('\n'), std::string::npos) << message;
  // An order0_training file's tables are the model's: another histogram is another model.
  TrainedModelFile other_counts = *model_;
  ++other_counts.config.training_count_histogram[1];
  --other_counts.config.training_count_histogram[0];
  const std::string tables =
      error_message([&] { decompress_all(*backend_, other_counts, scratch("t.sae"), 8); });
  EXPECT_TRUE(contains(tables, "compressed with another model's tables")) << tables;
  EXPECT_EQ(tables.find('\n'), std::string::npos) << tables;
  const std::string no_model = error_message([] {
    decompress_lossless(
        scratch("t.sae"), [](const auto&) {}, [](auto, const auto&) {});
  });
  EXPECT_TRUE(contains(no_model, "(--codec order0-training): decompress with that checkpoint"))
      << no_model;
}

TEST_F(LosslessFile, NonIntegerCountsAndWrongColumnsAreRefused) {
  HostCsr fractional = *data_;
  fractional.values[3] = 1.5f;
  CsrRowSource source(fractional);
  const std::string message = error_message([&] {
    compress_lossless(*backend_, model_->config, model_->parameters, source, scratch("x.sae"),
                      LosslessOptions{});
  });
  EXPECT_TRUE(contains(message, "is not an integer count")) << message;
  EXPECT_FALSE(fs::exists(scratch("x.sae"))) << "no partial file";
  const HostCsr narrow = topic_data(10, 20);
  CsrRowSource narrow_source(narrow);
  EXPECT_TRUE(contains(error_message([&] {
                         compress_lossless(*backend_, model_->config, model_->parameters,
                                           narrow_source, scratch("x.sae"), LosslessOptions{});
                       }),
                       "columns, the model expects 24"));
}

// ---- the order-0 code and the per-block choice ----

// Topic rows with the edge cases lossless mode must survive: empty rows, an all-zero column,
// and counts far beyond the explicit ones (the escape), up to the largest exact count.
HostCsr awkward_data() {
  HostCsr data = topic_data(80, 20, 13);
  HostCsr out;
  out.rows = data.rows;
  out.cols = data.cols;
  out.row_offsets.assign(1, 0);
  for (std::int64_t r = 0; r < data.rows; ++r) {
    if (r % 9 != 4)  // every ninth row empty
      for (RowOffset k = data.row_offsets[r]; k < data.row_offsets[r + 1]; ++k) {
        if (data.col_indices[k] == 6) continue;  // column 7 all zero
        out.col_indices.push_back(data.col_indices[k]);
        out.values.push_back(r % 17 == 3 ? data.values[k] + 1000.0f : data.values[k]);
      }
    out.row_offsets.push_back(static_cast<RowOffset>(out.values.size()));
  }
  // A last row: the largest count beside the first count past the explicit ones.
  out.col_indices.insert(out.col_indices.end(), {2, 11});
  out.values.insert(out.values.end(), {static_cast<float>(io_limits::max_exact_count),
                                       static_cast<float>(lossless::kMaxExplicitCounts)});
  out.row_offsets.push_back(static_cast<RowOffset>(out.values.size()));
  ++out.rows;
  return out;
}

HostCsr decompress_all(const std::string& path) {
  HostCsr all;
  all.row_offsets.assign(1, 0);
  decompress_lossless(
      path,
      [&](const LosslessFileInfo& info) {
        EXPECT_EQ(info.codec, LosslessCodec::order0);
        all.rows = info.rows;
        all.cols = info.cols;
      },
      [&](std::int64_t, const HostCsr& block) {
        for (std::int64_t r = 0; r < block.rows; ++r) {
          for (RowOffset k = block.row_offsets[r]; k < block.row_offsets[r + 1]; ++k) {
            all.col_indices.push_back(block.col_indices[k]);
            all.values.push_back(block.values[k]);
          }
          all.row_offsets.push_back(static_cast<RowOffset>(all.values.size()));
        }
      });
  return all;
}

TEST(Order0Tables, FollowTheHistogramAndRoundTrip) {
  lossless::ColumnHistogram histogram(3);
  for (int r = 0; r < 100; ++r) {
    const float row[3] = {static_cast<float>(r % 4), 0.0f, r % 10 == 0 ? 500.0f : 1.0f};
    histogram.add(row);
  }
  const lossless::Order0Tables tables(histogram);
  EXPECT_EQ(tables.column(0).explicit_counts, 4);
  EXPECT_EQ(tables.column(1).explicit_counts, 1) << "an all-zero column: 0 and the escape";
  EXPECT_EQ(tables.column(2).explicit_counts, 2);
  const auto slots = [&](std::int64_t c, int s) {
    return tables.column(c).cumulative[s + 1] - tables.column(c).cumulative[s];
  };
  for (int s = 0; s < 4; ++s) EXPECT_NEAR(slots(0, s), 16384.0, 2.0) << s;
  EXPECT_EQ(slots(0, 4), 1u) << "a never-seen escape keeps one slot";
  EXPECT_NEAR(slots(2, 2), 6554.0, 2.0) << "the escape of column 3: one row in ten";
  const std::vector<std::uint8_t> bytes = tables.encode();
  const lossless::Order0Tables read(bytes.data(), bytes.size(), 3);
  for (std::int64_t c = 0; c < 3; ++c) {
    ASSERT_EQ(read.column(c).explicit_counts, tables.column(c).explicit_counts) << c;
    for (int s = 0; s <= tables.column(c).explicit_counts + 1; ++s)
      EXPECT_EQ(read.column(c).cumulative[s], tables.column(c).cumulative[s]) << c << " " << s;
  }
  EXPECT_TRUE(
      contains(error_message([&] { lossless::Order0Tables(bytes.data(), bytes.size(), 4); }),
               "coded stream"));
}

// Every codec at block layouts from one row to all of them, and an empty matrix.
TEST(Lossless, Order0AndModelCodecsRoundTripEveryBlockLayoutExactly) {
  const auto cpu = make_backend(BackendChoice::cpu);
  const HostCsr data = awkward_data();
  // The model never saw the edge cases: trained on plain topic rows.
  const TrainedModelFile model = train_tiny(*cpu, LossKind::nb, topic_data(80, 20, 14));
  for (const std::int64_t block_rows : {1, 7, 81, 4096}) {
    LosslessOptions options;
    options.block_rows = block_rows;
    options.batch_rows = 6;
    options.latent_bits = 8;
    const std::string layout = std::to_string(block_rows) + " rows per block";
    options.codec = LosslessCodec::order0;
    CsrRowSource order0_source(data);
    const LosslessSizes order0 = compress_lossless(order0_source, scratch("o0.sae"), options);
    EXPECT_EQ(order0.total(), static_cast<std::int64_t>(fs::file_size(scratch("o0.sae"))))
        << layout;
    EXPECT_EQ(order0.order0_blocks, order0.blocks) << layout;
    expect_same_counts(decompress_all(scratch("o0.sae")), data, "order0, " + layout);
    expect_same_counts(decompress_all(*cpu, model, scratch("o0.sae"), 5), data,
                       "order0 with a model given, " + layout);
    options.codec = LosslessCodec::model;
    for (const bool fallback : {true, false}) {
      options.order0_fallback = fallback;
      CsrRowSource source(data);
      const LosslessSizes sizes = compress_lossless(*cpu, model.config, model.parameters, source,
                                                    scratch("m.sae"), options);
      EXPECT_EQ(sizes.total(), static_cast<std::int64_t>(fs::file_size(scratch("m.sae"))))
          << layout;
      if (!fallback) {
        EXPECT_EQ(sizes.order0_blocks, 0) << layout;
      }
      expect_same_counts(decompress_all(*cpu, model, scratch("m.sae"), 5), data,
                         "model, fallback " + std::to_string(fallback) + ", " + layout);
    }
  }
  const HostCsr empty = topic_data(0, 20);
  LosslessOptions options;
  options.codec = LosslessCodec::order0;
  CsrRowSource source(empty);
  compress_lossless(source, scratch("empty.sae"), options);
  expect_same_counts(decompress_all(scratch("empty.sae")), empty, "no rows");
}

// The training histogram travels in the checkpoint's configuration, sparse, and comes back the
// same; one whose columns count different rows, or of another width, is refused; a configuration
// without it (checkpoints written before it was stored) has none.
TEST(TrainingHistogram, RoundTripsThroughTheConfigurationAndIsChecked) {
  RunConfig run;
  run.model.input_dim = 3;
  run.model.hidden = {4};
  run.model.latent = 2;
  run.training_count_histogram.assign(3 * kTrainingHistogramBins, 0);
  const auto bin = [&](std::int64_t c, int count) -> std::uint64_t& {
    return run
        .training_count_histogram[static_cast<std::size_t>(c * kTrainingHistogramBins + count)];
  };
  bin(0, 0) = 7;
  bin(0, 64) = 3;
  bin(1, 0) = 10;
  bin(2, 1) = 4;
  bin(2, 5) = 6;
  const std::string json = run_config_to_json(run);
  EXPECT_TRUE(
      contains(json, "\"training_count_histogram\": [[0, 7, 64, 3], [0, 10], [1, 4, 5, 6]]"))
      << json;
  EXPECT_EQ(run_config_from_json(json, "test").training_count_histogram,
            run.training_count_histogram);
  EXPECT_EQ(run_config_from_json(json, "test").largest_training_count, 0.0) << "none stored";
  run.largest_training_count = 70.0;
  EXPECT_EQ(run_config_from_json(run_config_to_json(run), "test").largest_training_count, 70.0);
  const auto refused = [&](const std::string& from, const std::string& to) {
    std::string bad = json;
    bad.replace(bad.find(from), from.size(), to);
    return error_message([&] { run_config_from_json(bad, "test"); });
  };
  EXPECT_TRUE(contains(refused("[1, 4, 5, 6]", "[1, 4, 5, 5]"),
                       "test: training_count_histogram column 3 counts 9 rows, column 1 10"));
  EXPECT_TRUE(contains(refused("[0, 10], ", ""),
                       "training_count_histogram has 2 columns, the "
                       "model 3"));
  EXPECT_TRUE(contains(refused("[0, 10]", "[65, 10]"), "bin 65 outside [0, 65)"));
  EXPECT_TRUE(contains(refused("[0, 10]", "[0]"), "is not a list of bin, rows pairs"));
  run.training_count_histogram.clear();
  EXPECT_FALSE(contains(run_config_to_json(run), "training_count_histogram"));
  EXPECT_TRUE(
      run_config_from_json(run_config_to_json(run), "test").training_count_histogram.empty());
}

// The order-0 code fitted on a model's training rows: counts the training rows never held (empty
// rows, an all-zero column, counts past the explicit ones up to the largest exact one) round-trip
// at every block layout, the file holds no tables, and on the training rows themselves it is
// smaller than the order0 file, which codes them with the same histogram but stores it.
TEST(Lossless, Order0OfTheTrainingRowsRoundTripsWithoutTables) {
  const auto cpu = make_backend(BackendChoice::cpu);
  const HostCsr seen = topic_data(80, 20, 14);
  const TrainedModelFile model = train_tiny(*cpu, LossKind::nb, seen, [](RunConfig& run) {
    run.train.val_fraction = 0.0;  // every row a training row, as the histogram sees them
  });
  ASSERT_EQ(model.config.training_count_histogram.size(), 20u * kTrainingHistogramBins);
  EXPECT_EQ(model.config.largest_training_count,
            *std::max_element(seen.values.begin(), seen.values.end()));
  for (std::int64_t c = 0; c < 20; ++c) {  // the histogram is the rows' own
    std::vector<std::uint64_t> expected(kTrainingHistogramBins, 0);
    for (std::int64_t r = 0; r < seen.rows; ++r) {
      float value = 0.0f;
      for (RowOffset k = seen.row_offsets[r]; k < seen.row_offsets[r + 1]; ++k)
        if (seen.col_indices[k] == c) value = seen.values[k];
      ++expected[static_cast<std::size_t>(std::min(value, 64.0f))];
    }
    const auto first = model.config.training_count_histogram.begin() + c * kTrainingHistogramBins;
    EXPECT_EQ(std::vector<std::uint64_t>(first, first + kTrainingHistogramBins), expected) << c;
  }
  const HostCsr data = awkward_data();
  for (const std::int64_t block_rows : {1, 7, 81, 4096}) {
    LosslessOptions options;
    options.codec = LosslessCodec::order0_training;
    options.block_rows = block_rows;
    const std::string layout = std::to_string(block_rows) + " rows per block";
    CsrRowSource source(data);
    const LosslessSizes sizes =
        compress_lossless(*cpu, model.config, model.parameters, source, scratch("t0.sae"), options);
    EXPECT_EQ(sizes.table_bytes, 0) << layout;
    EXPECT_EQ(sizes.order0_blocks, sizes.blocks) << layout;
    EXPECT_EQ(sizes.total(), static_cast<std::int64_t>(fs::file_size(scratch("t0.sae")))) << layout;
    expect_same_counts(decompress_all(*cpu, model, scratch("t0.sae"), 5), data,
                       "order0_training, " + layout);
  }
  LosslessOptions options;
  options.codec = LosslessCodec::order0_training;
  CsrRowSource seen_source(seen), order0_source(seen);
  const LosslessSizes training_tables =
      compress_lossless(*cpu, model.config, model.parameters, seen_source, "", options);
  options.codec = LosslessCodec::order0;
  const LosslessSizes own_tables = compress_lossless(order0_source, "", options);
  EXPECT_GT(own_tables.table_bytes, 0);
  EXPECT_EQ(training_tables.order0_bytes, own_tables.order0_bytes) << "the same histogram";
  EXPECT_EQ(training_tables.total() + own_tables.table_bytes, own_tables.total());

  TrainedModelFile without = model;
  without.config.training_count_histogram.clear();
  options.codec = LosslessCodec::order0_training;
  CsrRowSource source(data);
  const std::string message = error_message([&] {
    compress_lossless(*cpu, without.config, without.parameters, source, scratch("x.sae"), options);
  });
  EXPECT_TRUE(contains(message, "holds no count histogram of its training rows")) << message;
  EXPECT_FALSE(fs::exists(scratch("x.sae")));
}

// ---- rate-aware models: integer latents under the learned prior ----

// A tiny model trained with the rate term: a latent prior, an identity latent.
void rate_aware(RunConfig& run) {
  run.model.latent_prior = true;
  run.model.latent_activation = Activation::identity;
  run.train.rate_lambda = 1.0f;
}

// The prior's pmf of each dimension follows the logistic mass of the integers around its
// location, and integers far outside it (the escape) round-trip too.
TEST(LatentCoder, PriorPmfFollowsTheLogisticAndEveryIntegerRoundTrips) {
  const std::vector<float> prior = {0.3f, -2.6f, 40.0f, 0.0f, 1.0f, -3.0f};  // locations, logs
  const lossless::LatentCoder coder(prior.data(), 3);
  // Centre 0 (0.3 rounds to 0), unit scale: symbol 0 is the integer 0, 1 is -1, 2 is +1.
  const auto logistic_mass = [](double k, double location, double scale) {
    const auto cdf = [&](double x) { return 1.0 / (1.0 + std::exp(-(x - location) / scale)); };
    return cdf(k + 0.5) - cdf(k - 0.5);
  };
  std::vector<float> latents;
  const std::vector<float> row_values[] = {{0.0f, -3.0f, 40.0f},
                                           {-1.0f, -2.0f, 41.0f},
                                           {1.0f, 5000.0f, -16777216.0f},
                                           {-250.0f, -3.0f, 16777216.0f},
                                           {2.0f, -1e6f, 39.0f}};
  for (const auto& row : row_values) latents.insert(latents.end(), row.begin(), row.end());
  const std::vector<float> kept = latents;
  lossless::RansEncoder encoder;
  coder.put(encoder, 5, 3, latents.data());
  EXPECT_EQ(latents, kept) << "integer codes are stored as they are";
  const std::vector<std::uint8_t> bytes = encoder.finish();
  lossless::RansDecoder decoder(bytes.data(), bytes.size());
  std::vector<float> back(latents.size(), -7.0f);
  coder.get(decoder, 5, 3, back.data());
  EXPECT_EQ(back, kept);
  // The probabilities: 2000 rows of one code cost what the logistic masses say, to the
  // quantisation of the pmfs (each symbol holds at least one of 2^16 slots) and the stream's end.
  const std::vector<float> code = {0.0f, -3.0f, 40.0f};
  std::vector<float> repeated;
  for (int r = 0; r < 2000; ++r) repeated.insert(repeated.end(), code.begin(), code.end());
  lossless::RansEncoder many;
  coder.put(many, 2000, 3, repeated.data());
  const double bits = 8.0 * static_cast<double>(many.finish().size());
  const double expected = -2000.0 * (std::log2(logistic_mass(0.0, 0.3, 1.0)) +
                                     std::log2(logistic_mass(-3.0, -2.6, std::exp(1.0))) +
                                     std::log2(logistic_mass(40.0, 40.0, std::exp(-3.0))));
  EXPECT_NEAR(bits, expected, 0.01 * expected + 64.0);
  // Non-integer latents are rounded (ties to even) before they are stored.
  std::vector<float> fractional = {0.5f, -2.5f, 39.6f};
  lossless::RansEncoder rounding;
  coder.put(rounding, 1, 3, fractional.data());
  EXPECT_EQ(fractional, (std::vector<float>{0.0f, -2.0f, 40.0f}));
}

// A rate-trained model's file at every block layout, with and without the order-0 fallback, on
// rows with empty rows, an all-zero column and counts far beyond training; a prior moved far from
// every code (each one escapes) still round-trips, only longer.
TEST(Lossless, RateAwareModelsRoundTripTheirIntegerCodesExactly) {
  const auto cpu = make_backend(BackendChoice::cpu);
  const HostCsr data = awkward_data();
  for (const LossKind loss : {LossKind::hurdle_nb, LossKind::poisson, LossKind::mse}) {
    TrainedModelFile model = train_tiny(*cpu, loss, topic_data(80, 20, 16), rate_aware);
    for (const std::int64_t block_rows : {1, 7, 81}) {
      for (const bool fallback : {true, false}) {
        LosslessOptions options;
        options.latent_bits = kPriorLatentBits;
        options.block_rows = block_rows;
        options.batch_rows = 6;
        options.order0_fallback = fallback;
        const std::string what = std::string(loss_name(loss)) + ", " + std::to_string(block_rows) +
                                 " rows per block, fallback " + std::to_string(fallback);
        CsrRowSource source(data);
        const LosslessSizes sizes = compress_lossless(*cpu, model.config, model.parameters, source,
                                                      scratch("rate.sae"), options);
        EXPECT_EQ(sizes.total(), static_cast<std::int64_t>(fs::file_size(scratch("rate.sae"))))
            << what;
        expect_same_counts(decompress_all(*cpu, model, scratch("rate.sae"), 5), data, what);
      }
    }
    LosslessOptions options;
    options.latent_bits = kPriorLatentBits;
    options.order0_fallback = false;
    CsrRowSource near_source(data);
    const LosslessSizes near = compress_lossless(*cpu, model.config, model.parameters, near_source,
                                                 scratch("near.sae"), options);
    const ModelLayout layout(model.config.model);
    for (std::int64_t j = 0; j < model.config.model.latent; ++j)
      model.parameters[static_cast<std::size_t>(layout.prior_offset() + j)] += 1000.0f;
    CsrRowSource far_source(data);
    const LosslessSizes far = compress_lossless(*cpu, model.config, model.parameters, far_source,
                                                scratch("far.sae"), options);
    EXPECT_GT(far.latent_bytes, near.latent_bytes) << loss_name(loss);
    expect_same_counts(decompress_all(*cpu, model, scratch("far.sae"), 5), data,
                       std::string(loss_name(loss)) + ", codes far from the prior");
  }
}

TEST(Lossless, IntegerLatentsNeedAModelWithAPrior) {
  const auto cpu = make_backend(BackendChoice::cpu);
  const HostCsr data = topic_data(40, 20, 17);
  const TrainedModelFile model = train_tiny(*cpu, LossKind::nb, data);
  LosslessOptions options;
  options.latent_bits = kPriorLatentBits;
  CsrRowSource source(data);
  EXPECT_TRUE(contains(error_message([&] {
                         compress_lossless(*cpu, model.config, model.parameters, source,
                                           scratch("no-prior.sae"), options);
                       }),
                       "need a model trained with --rate-lambda"));
  EXPECT_FALSE(fs::exists(scratch("no-prior.sae"))) << "nothing half-written";
}

// A model that knows nothing (every parameter 0) on rows it never saw: every block falls back on
// the order-0 coding, and the file is the size of the order0 one (the same header, tables and
// framing), far below the model's own coding.
TEST(Lossless, AUselessModelCostsNothingOverOrder0) {
  const auto cpu = make_backend(BackendChoice::cpu);
  const HostCsr data = awkward_data();
  TrainedModelFile useless = train_tiny(*cpu, LossKind::poisson, topic_data(60, 20, 15));
  std::fill(useless.parameters.begin(), useless.parameters.end(), 0.0f);
  LosslessOptions options;
  options.block_rows = 16;
  CsrRowSource source(data), order0_source(data);
  const LosslessSizes sizes = compress_lossless(*cpu, useless.config, useless.parameters, source,
                                                scratch("u.sae"), options);
  options.codec = LosslessCodec::order0;
  const LosslessSizes order0 = compress_lossless(order0_source, "", options);
  EXPECT_EQ(sizes.order0_blocks, sizes.blocks);
  EXPECT_EQ(sizes.blocks, 6);  // 81 rows
  EXPECT_EQ(sizes.total(), order0.total());
  EXPECT_GT(sizes.model_coding_bytes, 2 * order0.order0_bytes) << "the model alone is far worse";
  expect_same_counts(decompress_all(*cpu, useless, scratch("u.sae"), 3), data, "useless model");
}

// A file of both codings: the rows the model was trained on keep its coding, rows of counts far
// beyond them fall back on order-0, and the tables follow the blocks, once; a file whose every
// block keeps the model's coding holds no tables.
TEST(Lossless, TheTablesTravelOnlyWithTheBlocksThatUseThem) {
  const auto cpu = make_backend(BackendChoice::cpu);
  const HostCsr seen = topic_data(64, 20, 15);
  const TrainedModelFile model = train_tiny(*cpu, LossKind::nb, seen, [](RunConfig& run) {
    run.model.latent = 1;  // at 8 bits, a byte a row: enough to tell 4 topics apart
    run.train.epochs = 300;
    run.train.optimizer.learning_rate = 1e-2f;
  });
  HostCsr data = seen;
  for (std::int64_t r = 0; r < 32; ++r) {  // 32 rows of 500 in every column
    for (ColIndex c = 0; c < 20; ++c) {
      data.col_indices.push_back(c);
      data.values.push_back(500.0f);
    }
    data.row_offsets.push_back(static_cast<RowOffset>(data.values.size()));
  }
  data.rows += 32;
  LosslessOptions options;
  options.block_rows = 16;
  options.latent_bits = 8;
  CsrRowSource source(data);
  const LosslessSizes mixed = compress_lossless(*cpu, model.config, model.parameters, source,
                                                scratch("mixed.sae"), options);
  EXPECT_EQ(mixed.blocks, 6);
  EXPECT_EQ(mixed.order0_blocks, 2) << "the blocks of 500s, and only they";
  EXPECT_GT(mixed.table_bytes, 8);
  EXPECT_EQ(mixed.total(), static_cast<std::int64_t>(fs::file_size(scratch("mixed.sae"))));
  expect_same_counts(decompress_all(*cpu, model, scratch("mixed.sae"), 5), data, "mixed");

  options.order0_fallback = false;  // every block in the model's coding
  CsrRowSource seen_source(seen);
  const LosslessSizes model_only = compress_lossless(*cpu, model.config, model.parameters,
                                                     seen_source, scratch("seen.sae"), options);
  EXPECT_EQ(model_only.order0_blocks, 0);
  EXPECT_EQ(model_only.table_bytes, 0);
  EXPECT_EQ(model_only.total(), model_only.model_coding_bytes + model_only.framing_bytes);
  EXPECT_EQ(model_only.total(), static_cast<std::int64_t>(fs::file_size(scratch("seen.sae"))));
  expect_same_counts(decompress_all(*cpu, model, scratch("seen.sae"), 5), seen, "model only");
}

// The streaming reader returns the blocks read_matrix_market's matrix holds, and refuses a file
// out of row order by the error compress falls back on.
TEST(MatrixMarketRowReader, StreamsBlocksOfTheMatrixAndRefusesUnsortedRows) {
  const HostCsr data = topic_data(53, 16, 5);
  const std::string path = scratch("rows.mtx");
  write_matrix_market(path, data, true);
  MatrixMarketRowSource source(path);
  EXPECT_EQ(source.rows(), 53);
  CsrRowSource expected(data);
  HostCsr block, want;
  for (int i = 0; i < 6; ++i) {
    source.next(10, block);
    expected.next(10, want);
    expect_same_counts(block, want, "block " + std::to_string(i));
  }
  EXPECT_EQ(block.rows, 3);
  source.next(10, block);
  EXPECT_EQ(block.rows, 0);

  std::ofstream(scratch("unsorted.mtx"))
      << "%%MatrixMarket matrix coordinate integer general\n3 4 3\n2 1 5\n1 2 3\n3 3 1\n";
  MatrixMarketRowSource unsorted(scratch("unsorted.mtx"));
  try {
    unsorted.next(10, block);
    ADD_FAILURE() << "no error for rows out of order";
  } catch (const MatrixMarketOrderError& error) {
    EXPECT_TRUE(contains(error.what(), "unsorted.mtx:4: row 1 after row 2")) << error.what();
  }
}

}  // namespace
}  // namespace sparseae
