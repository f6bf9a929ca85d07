// Compiled with -ffp-contract=off (src/CMakeLists.txt): the pmf, the predictions and the
// dequantised latents must come out the same at compression and at decompression, whichever
// call site the compiler inlines them into.
#include "compress/entry_coding.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>

#include "math/loss_math.hpp"
#include "sparseae/error.hpp"
#include "sparseae/metrics.hpp"

namespace sparseae::lossless {

namespace {

constexpr std::uint32_t kPmfTotal = 1u << kPmfBits;
// Counts are made explicit until the mass left beyond them is below this.
constexpr double kTailMass = 1.0 / (1u << (kPmfBits + 1));

std::uint32_t float_bits(float value) {
  std::uint32_t bits;
  std::memcpy(&bits, &value, sizeof bits);
  return bits;
}

float bits_float(std::uint32_t bits) {
  float value;
  std::memcpy(&value, &bits, sizeof value);
  return value;
}

void put_raw_word(RansEncoder& encoder, std::uint32_t word) {
  for (int b = 31; b >= 0; --b) encoder.put_raw_bit(static_cast<int>((word >> b) & 1u));
}

std::uint32_t get_raw_word(RansDecoder& decoder) {
  std::uint32_t word = 0;
  for (int b = 31; b >= 0; --b)
    word = (word << 1) | static_cast<std::uint32_t>(decoder.get_raw_bit());
  return word;
}

// The 8-bit code's value for level q of a column quantised from minimum with step.
float dequantise(float minimum, float step, std::uint32_t q) {
  return minimum + static_cast<float>(q) * step;
}

}  // namespace

ResidualCoding residual_coding(LossKind loss, float scale) {
  return has_count_likelihood(loss) && scale == 1.0f ? ResidualCoding::count_pmf
                                                     : ResidualCoding::adaptive_residual;
}

double count_nll_nats(LossKind loss, const float* h, float x) {
  if (loss == LossKind::poisson) {
    const math::RateD r = math::rate_d(h[0]);
    const double xd = x;
    return r.rate - (x != 0.0f ? xd * r.log_rate : 0.0) + math::log_gamma_d(xd + 1.0);
  }
  return math::head_loss_term(loss, h, x).value;
}

void quantise_pmf(const double* probability, int n, double escape, CountPmf& pmf) {
  double mass = 0.0;
  for (int s = 0; s < n; ++s) mass += probability[s];
  const double spare = static_cast<double>(kPmfTotal - static_cast<std::uint32_t>(n + 1));
  const double share = spare / std::max(mass, 1.0);
  std::uint32_t frequency[kMaxExplicitCounts + 1];
  std::uint32_t total = 0;
  int largest = 0;
  for (int s = 0; s <= n; ++s) {
    const double p = s < n ? probability[s] : escape;
    frequency[s] = 1u + static_cast<std::uint32_t>(std::floor(p * share));
    total += frequency[s];
    if (frequency[s] > frequency[largest]) largest = s;
  }
  frequency[largest] += kPmfTotal - total;
  pmf.explicit_counts = n;
  pmf.cumulative[0] = 0;
  for (int s = 0; s <= n; ++s) pmf.cumulative[s + 1] = pmf.cumulative[s] + frequency[s];
}

void quantised_pmf(LossKind loss, const float* h, QuantisedPmf& pmf) {
  double probability[kMaxExplicitCounts];
  double mass = 0.0;
  int n = 0;
  while (n < kMaxExplicitCounts) {
    const double nats = count_nll_nats(loss, h, static_cast<float>(n));
    const double p = std::exp(-nats);
    // A broken model (NaN or infinite outputs) still gives a valid code, just a long one.
    probability[n] = p >= 0.0 && p <= 1.0 ? p : 0.0;
    pmf.nll_nats[n] = nats;
    mass += probability[n];
    ++n;
    if (1.0 - mass < kTailMass) break;
  }
  quantise_pmf(probability, n, mass < 1.0 ? 1.0 - mass : 0.0, pmf);
}

void put_count(RansEncoder& encoder, const CountPmf& pmf, AdaptiveInteger& excess,
               std::uint32_t count) {
  const auto n = static_cast<std::uint32_t>(pmf.explicit_counts);
  const std::uint32_t symbol = std::min(count, n);
  encoder.put(pmf.cumulative[symbol], pmf.cumulative[symbol + 1] - pmf.cumulative[symbol],
              kPmfBits);
  if (symbol == n) excess.put(encoder, count - n);
}

std::uint64_t get_count(RansDecoder& decoder, const CountPmf& pmf, AdaptiveInteger& excess) {
  const int n = pmf.explicit_counts;
  const std::uint32_t slot = decoder.peek(kPmfBits);
  int symbol = 0;
  while (pmf.cumulative[symbol + 1] <= slot) ++symbol;
  decoder.advance(pmf.cumulative[symbol], pmf.cumulative[symbol + 1] - pmf.cumulative[symbol],
                  kPmfBits);
  return symbol < n ? static_cast<std::uint64_t>(symbol)
                    : static_cast<std::uint64_t>(n) + excess.get(decoder);
}

RowCoder::RowCoder(LossKind loss, float scale, std::int64_t cols)
    : loss_(loss),
      scale_(scale),
      cols_(cols),
      heads_(output_heads(loss)),
      coding_(residual_coding(loss, scale)) {}

float RowCoder::prediction(const float* outputs, std::int64_t c, float* h) const {
  for (int k = 0; k < heads_; ++k) h[k] = outputs[k * cols_ + c];
  return math::head_count(loss_, DecodeMode::round, h, scale_);
}

void RowCoder::prepare(const float* outputs, std::int64_t rows) {
  prepared_rows_ = rows;
  next_row_ = 0;
  if (coding_ != ResidualCoding::count_pmf) return;
  const std::int64_t entries = rows * cols_;
  if (static_cast<std::int64_t>(pmfs_.size()) < entries)
    pmfs_.resize(static_cast<std::size_t>(entries));
  const std::int64_t row_width = heads_ * cols_;
  // A row's 512 pmfs take tens of microseconds: fewer entries are not worth the threads.
  constexpr std::int64_t kEntriesWorthThreads = 2048;
#pragma omp parallel for schedule(static) if (entries >= kEntriesWorthThreads)
  for (std::int64_t e = 0; e < entries; ++e) {
    const std::int64_t r = e / cols_;
    const std::int64_t c = e - r * cols_;
    float h[math::kMaxHeads] = {};
    for (int k = 0; k < heads_; ++k) h[k] = outputs[r * row_width + k * cols_ + c];
    quantised_pmf(loss_, h, pmfs_[static_cast<std::size_t>(e)]);
  }
}

const QuantisedPmf* RowCoder::next_row_pmfs(const float* outputs) {
  if (next_row_ >= prepared_rows_) prepare(outputs, 1);
  return pmfs_.data() + (next_row_++) * cols_;
}

double RowCoder::put(RansEncoder& encoder, const float* outputs, const float* counts) {
  float h[math::kMaxHeads] = {};
  double nll = 0.0;
  const QuantisedPmf* pmfs =
      coding_ == ResidualCoding::count_pmf ? next_row_pmfs(outputs) : nullptr;
  for (std::int64_t c = 0; c < cols_; ++c) {
    const float x = counts[c];
    if (coding_ == ResidualCoding::count_pmf) {
      const QuantisedPmf& pmf = pmfs[c];
      const auto count = static_cast<std::uint32_t>(x);
      put_count(encoder, pmf, escape_, count);
      if (count < static_cast<std::uint32_t>(pmf.explicit_counts)) {
        nll += pmf.nll_nats[count];
      } else {
        for (int k = 0; k < heads_; ++k) h[k] = outputs[k * cols_ + c];
        nll += count_nll_nats(loss_, h, x);
      }
      continue;
    }
    const float predicted = prediction(outputs, c, h);
    const std::int64_t residual =
        static_cast<std::int64_t>(x) - static_cast<std::int64_t>(predicted);
    const int context = static_cast<int>(std::min(predicted, static_cast<float>(kContexts - 1)));
    encoder.put_bit(exact_[context], residual != 0);
    if (residual == 0) continue;
    encoder.put_bit(sign_[context], residual < 0);
    magnitude_[context].put(encoder, static_cast<std::uint32_t>(std::llabs(residual) - 1));
  }
  return nll;
}

void RowCoder::get(RansDecoder& decoder, const float* outputs, float* counts) {
  float h[math::kMaxHeads] = {};
  const QuantisedPmf* pmfs =
      coding_ == ResidualCoding::count_pmf ? next_row_pmfs(outputs) : nullptr;
  for (std::int64_t c = 0; c < cols_; ++c) {
    if (coding_ == ResidualCoding::count_pmf) {
      counts[c] = static_cast<float>(get_count(decoder, pmfs[c], escape_));
      continue;
    }
    const float predicted = prediction(outputs, c, h);
    const int context = static_cast<int>(std::min(predicted, static_cast<float>(kContexts - 1)));
    std::int64_t value = static_cast<std::int64_t>(predicted);
    if (decoder.get_bit(exact_[context]) != 0) {
      const bool negative = decoder.get_bit(sign_[context]) != 0;
      const std::int64_t magnitude =
          static_cast<std::int64_t>(magnitude_[context].get(decoder)) + 1;
      value += negative ? -magnitude : magnitude;
    }
    require(value >= 0, "coded count is negative");
    counts[c] = static_cast<float>(value);
  }
}

void hash_entry_models(LossKind loss, float scale, const float* outputs, std::int64_t cols,
                       Fnv1a& hash) {
  const int heads = output_heads(loss);
  float h[math::kMaxHeads] = {};
  QuantisedPmf pmf;
  for (std::int64_t c = 0; c < cols; ++c) {
    for (int k = 0; k < heads; ++k) h[k] = outputs[k * cols + c];
    if (residual_coding(loss, scale) == ResidualCoding::count_pmf) {
      quantised_pmf(loss, h, pmf);
      hash.add(pmf.cumulative,
               sizeof(std::uint32_t) * static_cast<std::size_t>(pmf.explicit_counts + 2));
    } else {
      hash.add_value(math::head_count(loss, DecodeMode::round, h, scale));
    }
  }
}

std::uint16_t float_to_half(float value) {
  const std::uint32_t bits = float_bits(value);
  const std::uint32_t sign = (bits >> 16) & 0x8000u;
  const std::uint32_t magnitude = bits & 0x7fffffffu;
  if (magnitude > 0x7f800000u) return static_cast<std::uint16_t>(sign | 0x7e00u);  // NaN
  // At or above 65520 the nearest half would be infinite: clamp to the largest finite, 65504.
  if (magnitude >= 0x477ff000u) return static_cast<std::uint16_t>(sign | 0x7bffu);
  if (magnitude < 0x38800000u) {
    // A subnormal half: the value in units of 2^-24, rounded to nearest even.
    if (magnitude < 0x33000000u) return static_cast<std::uint16_t>(sign);
    const std::uint32_t mantissa = (magnitude & 0x7fffffu) | 0x800000u;
    const int shift = 126 - static_cast<int>(magnitude >> 23);  // 14 + (113 - exponent) - 1
    const std::uint32_t units = mantissa >> (shift);
    const std::uint32_t rest = mantissa & ((1u << shift) - 1u);
    const std::uint32_t half_way = 1u << (shift - 1);
    const std::uint32_t rounded = units + (rest > half_way || (rest == half_way && (units & 1u)));
    return static_cast<std::uint16_t>(sign | rounded);
  }
  // A normal half: rebias the exponent and round the 13 dropped mantissa bits to nearest even
  // (a carry into the exponent is the right result).
  const std::uint32_t rebased = magnitude - (112u << 23);
  const std::uint32_t rest = rebased & 0x1fffu;
  std::uint32_t half = rebased >> 13;
  if (rest > 0x1000u || (rest == 0x1000u && (half & 1u))) ++half;
  return static_cast<std::uint16_t>(sign | half);
}

float half_to_float(std::uint16_t half) {
  const std::uint32_t sign = static_cast<std::uint32_t>(half & 0x8000u) << 16;
  const std::uint32_t exponent = (half >> 10) & 0x1fu;
  const std::uint32_t mantissa = half & 0x3ffu;
  if (exponent == 0x1f) return bits_float(sign | 0x7f800000u | (mantissa << 13));
  if (exponent != 0) return bits_float(sign | ((exponent + 112u) << 23) | (mantissa << 13));
  // Zero or subnormal: mantissa * 2^-24, exact in float.
  const float magnitude = static_cast<float>(mantissa) * 0x1p-24f;
  return sign != 0 ? -magnitude : magnitude;
}

namespace {

// The offset from a dimension's centre of prior symbol s: 0, -1, +1, -2, +2, ...
std::int64_t symbol_offset(std::uint64_t symbol) {
  return symbol % 2 == 0 ? static_cast<std::int64_t>(symbol / 2)
                         : -static_cast<std::int64_t>((symbol + 1) / 2);
}
std::uint64_t offset_symbol(std::int64_t offset) {
  return offset >= 0 ? 2 * static_cast<std::uint64_t>(offset)
                     : 2 * static_cast<std::uint64_t>(-offset) - 1;
}

}  // namespace

LatentCoder::LatentCoder(int bits) : bits_(bits) {
  require(bits == 32 || bits == 16 || bits == 8,
          "latent bits " + std::to_string(bits) + " is not 32, 16 or 8");
}

LatentCoder::LatentCoder(const float* prior, std::int64_t width) : bits_(kPriorLatentBits) {
  prior_pmfs_.resize(static_cast<std::size_t>(width));
  centres_.resize(static_cast<std::size_t>(width));
  for (std::int64_t j = 0; j < width; ++j) {
    const float location = prior[j];
    const float log_scale = prior[width + j];
    const float centre = math::latent_code(std::isfinite(location) ? location : 0.0f);
    centres_[static_cast<std::size_t>(j)] = static_cast<std::int64_t>(centre);
    double probability[kMaxExplicitCounts];
    double mass = 0.0;
    int n = 0;
    while (n < kMaxExplicitCounts) {
      const auto value =
          static_cast<float>(static_cast<double>(centre) +
                             static_cast<double>(symbol_offset(static_cast<std::uint64_t>(n))));
      const double p =
          std::exp(-static_cast<double>(math::latent_rate_term(value, location, log_scale).value));
      // A broken prior (NaN) still gives a valid code, just a long one.
      probability[n] = p >= 0.0 && p <= 1.0 ? p : 0.0;
      mass += probability[n];
      ++n;
      if (1.0 - mass < kTailMass) break;
    }
    quantise_pmf(probability, n, mass < 1.0 ? 1.0 - mass : 0.0,
                 prior_pmfs_[static_cast<std::size_t>(j)]);
  }
}

void LatentCoder::hash_prior(Fnv1a& hash) const {
  for (const CountPmf& pmf : prior_pmfs_)
    hash.add(pmf.cumulative,
             sizeof(std::uint32_t) * static_cast<std::size_t>(pmf.explicit_counts + 2));
}

void LatentCoder::put(RansEncoder& encoder, std::int64_t rows, std::int64_t width,
                      float* latents) const {
  if (bits_ == kPriorLatentBits) {
    AdaptiveInteger excess;
    for (std::int64_t r = 0; r < rows; ++r)
      for (std::int64_t j = 0; j < width; ++j) {
        float& v = latents[r * width + j];
        v = math::latent_code(v);
        const auto offset = static_cast<std::int64_t>(v) - centres_[static_cast<std::size_t>(j)];
        put_count(encoder, prior_pmfs_[static_cast<std::size_t>(j)], excess,
                  static_cast<std::uint32_t>(offset_symbol(offset)));
      }
    return;
  }
  if (bits_ == 8) {
    std::vector<AdaptiveByte> models(static_cast<std::size_t>(width));
    for (std::int64_t j = 0; j < width; ++j) {
      float minimum = latents[j], maximum = latents[j];
      for (std::int64_t r = 0; r < rows; ++r) {
        const float v = latents[r * width + j];
        require(std::isfinite(v), "latent " + std::to_string(j + 1) + " of row " +
                                      std::to_string(r + 1) +
                                      " of a block is not finite: use --latent-bits 32");
        minimum = std::min(minimum, v);
        maximum = std::max(maximum, v);
      }
      const float step = (maximum - minimum) / 255.0f;
      put_raw_word(encoder, float_bits(minimum));
      put_raw_word(encoder, float_bits(step));
      for (std::int64_t r = 0; r < rows; ++r) {
        float& v = latents[r * width + j];
        const float level = step > 0.0f ? std::rint((v - minimum) / step) : 0.0f;
        const auto q = static_cast<std::uint32_t>(std::clamp(level, 0.0f, 255.0f));
        models[static_cast<std::size_t>(j)].put(encoder, q);
        v = dequantise(minimum, step, q);
      }
    }
    return;
  }
  const int bytes = bits_ / 8;
  AdaptiveByte models[4];
  for (std::int64_t i = 0; i < rows * width; ++i) {
    std::uint32_t word = float_bits(latents[i]);
    if (bits_ == 16) {
      word = float_to_half(latents[i]);
      latents[i] = half_to_float(static_cast<std::uint16_t>(word));
    }
    for (int b = bytes - 1; b >= 0; --b) models[b].put(encoder, (word >> (8 * b)) & 0xffu);
  }
}

void LatentCoder::get(RansDecoder& decoder, std::int64_t rows, std::int64_t width,
                      float* latents) const {
  if (bits_ == kPriorLatentBits) {
    AdaptiveInteger excess;
    for (std::int64_t r = 0; r < rows; ++r)
      for (std::int64_t j = 0; j < width; ++j) {
        const std::uint64_t symbol =
            get_count(decoder, prior_pmfs_[static_cast<std::size_t>(j)], excess);
        const std::int64_t code =
            centres_[static_cast<std::size_t>(j)] +
            symbol_offset(std::min<std::uint64_t>(symbol, std::uint64_t{1} << 40));
        require(std::llabs(code) <= static_cast<long long>(math::kMaxLatentCode),
                "latent code " + std::to_string(code) + " beyond 2^24: the stream is corrupt");
        latents[r * width + j] = static_cast<float>(code);
      }
    return;
  }
  if (bits_ == 8) {
    std::vector<AdaptiveByte> models(static_cast<std::size_t>(width));
    for (std::int64_t j = 0; j < width; ++j) {
      const float minimum = bits_float(get_raw_word(decoder));
      const float step = bits_float(get_raw_word(decoder));
      for (std::int64_t r = 0; r < rows; ++r)
        latents[r * width + j] =
            dequantise(minimum, step, models[static_cast<std::size_t>(j)].get(decoder));
    }
    return;
  }
  const int bytes = bits_ / 8;
  AdaptiveByte models[4];
  for (std::int64_t i = 0; i < rows * width; ++i) {
    std::uint32_t word = 0;
    for (int b = bytes - 1; b >= 0; --b) word |= models[b].get(decoder) << (8 * b);
    latents[i] = bits_ == 16 ? half_to_float(static_cast<std::uint16_t>(word)) : bits_float(word);
  }
}

}  // namespace sparseae::lossless
