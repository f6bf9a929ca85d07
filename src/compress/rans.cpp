#include "compress/rans.hpp"

#include <algorithm>

#include "sparseae/error.hpp"

namespace sparseae::lossless {

namespace {

// The state lives in [kLow, 2^8 kLow) between symbols: bytes move in and out one at a time.
constexpr std::uint32_t kLow = 1u << 23;

}  // namespace

void RansEncoder::put(std::uint32_t start, std::uint32_t frequency, int bits) {
  symbols_.push_back({start, frequency, bits});
}

void RansEncoder::put_bit(AdaptiveBit& model, int bit) {
  const std::uint32_t zero = model.zero_frequency();
  if (bit == 0)
    put(0, zero, AdaptiveBit::kBits);
  else
    put(zero, (1u << AdaptiveBit::kBits) - zero, AdaptiveBit::kBits);
  model.update(bit);
}

std::vector<std::uint8_t> RansEncoder::finish() {
  std::vector<std::uint8_t> reversed;
  std::uint32_t state = kLow;
  for (auto symbol = symbols_.rbegin(); symbol != symbols_.rend(); ++symbol) {
    const std::uint32_t limit = ((kLow >> symbol->bits) << 8) * symbol->frequency;
    while (state >= limit) {
      reversed.push_back(static_cast<std::uint8_t>(state & 0xff));
      state >>= 8;
    }
    state =
        ((state / symbol->frequency) << symbol->bits) + state % symbol->frequency + symbol->start;
  }
  for (int i = 0; i < 4; ++i) {
    reversed.push_back(static_cast<std::uint8_t>(state & 0xff));
    state >>= 8;
  }
  symbols_.clear();
  return {reversed.rbegin(), reversed.rend()};
}

RansDecoder::RansDecoder(const std::uint8_t* data, std::size_t size) : data_(data), size_(size) {
  require(size >= 4, "coded stream of " + std::to_string(size) + " bytes, shorter than its state");
  for (int i = 0; i < 4; ++i) state_ = (state_ << 8) | data_[position_++];
}

void RansDecoder::advance(std::uint32_t start, std::uint32_t frequency, int bits) {
  const std::uint32_t mask = (1u << bits) - 1u;
  state_ = frequency * (state_ >> bits) + (state_ & mask) - start;
  while (state_ < kLow) {
    require(position_ < size_, "coded stream ends early");
    state_ = (state_ << 8) | data_[position_++];
  }
}

int RansDecoder::get_bit(AdaptiveBit& model) {
  const std::uint32_t zero = model.zero_frequency();
  const int bit = peek(AdaptiveBit::kBits) < zero ? 0 : 1;
  if (bit == 0)
    advance(0, zero, AdaptiveBit::kBits);
  else
    advance(zero, (1u << AdaptiveBit::kBits) - zero, AdaptiveBit::kBits);
  model.update(bit);
  return bit;
}

int RansDecoder::get_raw_bit() {
  const int bit = static_cast<int>(peek(1));
  advance(static_cast<std::uint32_t>(bit), 1, 1);
  return bit;
}

void RansDecoder::finish() const {
  require(position_ == size_ && state_ == kLow, "coded stream does not end where its symbols do");
}

void AdaptiveInteger::put(RansEncoder& encoder, std::uint32_t value) {
  const std::uint64_t shifted = static_cast<std::uint64_t>(value) + 1;
  int length = 0;  // bits of value + 1 below its leading one
  while ((shifted >> (length + 1)) != 0) ++length;
  for (int i = 0; i < length; ++i) encoder.put_bit(length_[i], 1);
  encoder.put_bit(length_[length], 0);
  for (int b = length - 1; b >= 0; --b) {
    const int bit = static_cast<int>((shifted >> b) & 1u);
    const int from_top = length - 1 - b;
    if (from_top < kModelledBits)
      encoder.put_bit(mantissa_[length][from_top], bit);
    else
      encoder.put_raw_bit(bit);
  }
}

std::uint32_t AdaptiveInteger::get(RansDecoder& decoder) {
  int length = 0;
  while (decoder.get_bit(length_[length]) == 1) {
    ++length;
    require(length < kLengths - 1, "coded integer longer than 32 bits");
  }
  std::uint64_t shifted = 1;
  for (int b = length - 1; b >= 0; --b) {
    const int from_top = length - 1 - b;
    const int bit = from_top < kModelledBits ? decoder.get_bit(mantissa_[length][from_top])
                                             : decoder.get_raw_bit();
    shifted = (shifted << 1) | static_cast<std::uint64_t>(bit);
  }
  require(shifted - 1 <= UINT32_MAX, "coded integer beyond 32 bits");
  return static_cast<std::uint32_t>(shifted - 1);
}

void AdaptiveByte::put(RansEncoder& encoder, std::uint32_t byte) {
  std::uint32_t node = 1;
  for (int b = 7; b >= 0; --b) {
    const int bit = static_cast<int>((byte >> b) & 1u);
    encoder.put_bit(node_[node], bit);
    node = (node << 1) | static_cast<std::uint32_t>(bit);
  }
}

std::uint32_t AdaptiveByte::get(RansDecoder& decoder) {
  std::uint32_t node = 1;
  for (int b = 7; b >= 0; --b)
    node = (node << 1) | static_cast<std::uint32_t>(decoder.get_bit(node_[node]));
  return node & 0xffu;
}

}  // namespace sparseae::lossless
