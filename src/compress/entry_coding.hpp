#pragma once
// How lossless mode codes the counts of a row, given the deterministic decoder's outputs for it
// (K = output_heads(loss) heads per column, head-major), and how it codes the latents.
//
// For a count likelihood (poisson, nb, zinb, hurdle, hurdle_nb, at scale 1) each entry is coded
// with the model's own predicted pmf, quantised to 2^16 slots: counts 0..n-1 explicitly, n the
// first count whose preceding mass leaves less than 2^-17 (or kMaxExplicitCounts), and an escape
// for counts >= n followed by the excess in an adaptive Elias-gamma code. Every explicit count
// and the escape get at least one slot, so any count can be coded. The pmf comes from the
// loss's per-entry NLL (src/math/loss_math.hpp) in double on the host: deterministic on one
// machine, but lgamma and exp may differ between libm versions (the file's probe hash catches
// that). Every other loss codes the residual x - round(predicted mean) with adaptive models.
#include <cstdint>
#include <vector>

#include "compress/fnv.hpp"
#include "compress/rans.hpp"
#include "sparseae/lossless.hpp"
#include "sparseae/matrix.hpp"
#include "sparseae/ops.hpp"

namespace sparseae::lossless {

enum class ResidualCoding : std::uint32_t { count_pmf = 1, adaptive_residual = 2 };

// count_pmf for a count likelihood at scale 1, else adaptive_residual.
ResidualCoding residual_coding(LossKind loss, float scale);

constexpr int kPmfBits = 16;
constexpr int kMaxExplicitCounts = 64;

// A pmf over counts quantised to 2^kPmfBits slots: counts [0, explicit_counts) then the escape.
struct CountPmf {
  int explicit_counts = 0;
  // cumulative[s] = slots before symbol s; cumulative[explicit_counts + 1] = 2^kPmfBits.
  std::uint32_t cumulative[kMaxExplicitCounts + 2] = {};
};

// One entry's pmf under the model.
struct QuantisedPmf : CountPmf {
  // The NLL in nats of each explicit count, for the statistics.
  double nll_nats[kMaxExplicitCounts] = {};
};

// The entry's pmf under the loss from its heads h.
void quantised_pmf(LossKind loss, const float* h, QuantisedPmf& pmf);

// Quantises the probabilities of the counts [0, n) and of the escape: each of the n + 1 symbols
// gets one slot, so that any count can be coded, and the rest are shared in proportion.
void quantise_pmf(const double* probability, int n, double escape, CountPmf& pmf);

// Codes count with pmf: its symbol, then for the escape the excess over the explicit counts in
// the adaptive code excess.
void put_count(RansEncoder& encoder, const CountPmf& pmf, AdaptiveInteger& excess,
               std::uint32_t count);
std::uint64_t get_count(RansDecoder& decoder, const CountPmf& pmf, AdaptiveInteger& excess);
// The NLL in nats of count x under the loss from heads h (scale 1).
double count_nll_nats(LossKind loss, const float* h, float x);

// Codes rows of counts, each against the decoder's outputs for it. Adaptive state starts fresh
// with each coder: one per block.
class RowCoder {
 public:
  RowCoder(LossKind loss, float scale, std::int64_t cols);
  // The rows put and get code next, rows x (K * cols) contiguous outputs: their entries' pmfs
  // (count_pmf), computed on the host's threads. Each entry's pmf depends on its own outputs
  // only, so the bits are those one thread gives. Without it, put and get compute each row's
  // pmfs as it comes.
  void prepare(const float* outputs, std::int64_t rows);
  // counts: the row, dense (cols values); outputs: its K * cols decoder outputs. Returns the
  // row's NLL in nats under the model (count_pmf), 0 otherwise.
  double put(RansEncoder& encoder, const float* outputs, const float* counts);
  void get(RansDecoder& decoder, const float* outputs, float* counts);
  // The row totals a model with size factors needs before it decodes a row.
  void put_total(RansEncoder& encoder, std::uint32_t total) { totals_.put(encoder, total); }
  std::uint32_t get_total(RansDecoder& decoder) { return totals_.get(decoder); }

 private:
  // The context of the adaptive residual models: the predicted count, capped.
  static constexpr int kContexts = 4;
  float prediction(const float* outputs, std::int64_t c, float* h) const;
  // The next row's prepared pmfs (preparing the row of outputs alone when none is left).
  const QuantisedPmf* next_row_pmfs(const float* outputs);

  LossKind loss_;
  float scale_;
  std::int64_t cols_;
  int heads_;
  ResidualCoding coding_;
  std::vector<QuantisedPmf> pmfs_;  // prepared_rows_ x cols_
  std::int64_t prepared_rows_ = 0;
  std::int64_t next_row_ = 0;
  AdaptiveInteger escape_;
  AdaptiveInteger totals_;
  AdaptiveBit exact_[kContexts];
  AdaptiveBit sign_[kContexts];
  AdaptiveInteger magnitude_[kContexts];
};

// Latent codes as stored: float32 bits, float16 (round to nearest even, clamped to the finite
// range) or 8 bits per value, linear between each column's minimum and maximum over the block;
// or (kPriorLatentBits) the integer codes of a model with a latent prior
// (ModelConfig::latent_prior), each dimension coded with the pmf its prior gives the integers:
// counted outwards from the integer nearest the prior's location (0, -1, +1, -2, ...), explicit
// while the tail keeps 2^-17 of the mass (64 at most), and an escape with the excess beyond.
// put() replaces the latents by what get() will return, the values the decoder then reads.
class LatentCoder {
 public:
  // bits: 32, 16 or 8.
  explicit LatentCoder(int bits);
  // kPriorLatentBits: prior holds the 2 * width floats of the model's prior (the locations, then
  // the log-scales; ModelLayout::prior_offset).
  LatentCoder(const float* prior, std::int64_t width);
  // latents: rows x width, contiguous.
  void put(RansEncoder& encoder, std::int64_t rows, std::int64_t width, float* latents) const;
  void get(RansDecoder& decoder, std::int64_t rows, std::int64_t width, float* latents) const;
  // Adds the prior's quantised pmfs to hash (the file's probe); nothing for the other codings.
  void hash_prior(Fnv1a& hash) const;

 private:
  int bits_;
  std::vector<CountPmf> prior_pmfs_;   // kPriorLatentBits: one per dimension
  std::vector<std::int64_t> centres_;  // the integer each dimension's symbol 0 stands for
};

// Adds to hash what the entry models of one row are, given its outputs: the quantised pmfs
// (count_pmf) or the predicted counts (adaptive_residual). The probe of a file's header.
void hash_entry_models(LossKind loss, float scale, const float* outputs, std::int64_t cols,
                       Fnv1a& hash);

// float <-> IEEE binary16, exposed for the tests.
std::uint16_t float_to_half(float value);
float half_to_float(std::uint16_t half);

}  // namespace sparseae::lossless
