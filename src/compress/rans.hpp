#pragma once
// A byte-wise rANS coder (Duda 2013; the 32-bit state and renormalisation of Giesen's
// ryg_rans) with symbols given as (start, frequency) in a total of 2^bits, and the adaptive
// binary models lossless mode builds its adaptive codes from.
//
// rANS decodes in the reverse of the order it encodes. The encoder therefore buffers the
// symbols of a stream, each with the frequencies its model held when it was put (so adaptive
// models update in the order the decoder will see them), and codes them backwards in finish().
#include <cstdint>
#include <vector>

namespace sparseae::lossless {

// A probability (of a 0) in 12 bits, moved 1/32 of the way towards each coded bit.
class AdaptiveBit {
 public:
  static constexpr int kBits = 12;
  std::uint32_t zero_frequency() const { return zero_; }
  void update(int bit) {
    if (bit == 0)
      zero_ += ((1u << kBits) - zero_) >> kShift;
    else
      zero_ -= zero_ >> kShift;
  }

 private:
  // With this shift the probability stays within [1, 4065] / 4096: never 0 or 1.
  static constexpr int kShift = 5;
  std::uint32_t zero_ = 1u << (kBits - 1);
};

class RansEncoder {
 public:
  // Codes the symbol whose slots are [start, start + frequency) of 2^bits (bits <= 16,
  // frequency >= 1).
  void put(std::uint32_t start, std::uint32_t frequency, int bits);
  void put_bit(AdaptiveBit& model, int bit);
  // A bit of probability 1/2.
  void put_raw_bit(int bit) { put(static_cast<std::uint32_t>(bit), 1, 1); }
  // The coded bytes of every symbol put since the last finish(); empties the buffer.
  std::vector<std::uint8_t> finish();

 private:
  struct Symbol {
    std::uint32_t start;
    std::uint32_t frequency;
    int bits;
  };
  std::vector<Symbol> symbols_;
};

class RansDecoder {
 public:
  // Throws Error when the stream is too short to hold a state.
  RansDecoder(const std::uint8_t* data, std::size_t size);
  // The slot in [0, 2^bits) of the next symbol; advance() with its start and frequency next.
  std::uint32_t peek(int bits) const { return state_ & ((1u << bits) - 1u); }
  // Throws Error when the stream ends early (corrupt data).
  void advance(std::uint32_t start, std::uint32_t frequency, int bits);
  int get_bit(AdaptiveBit& model);
  int get_raw_bit();
  // Throws Error unless every byte was read and the state is back where the encoder began: the
  // stream decoded the symbols it was coded from.
  void finish() const;

 private:
  const std::uint8_t* data_;
  std::size_t size_;
  std::size_t position_ = 0;
  std::uint32_t state_ = 0;
};

// An unsigned integer (below 2^32 - 1) in Elias-gamma form with adaptive models: the length of
// v + 1 in unary, each unary bit with its own model, then its bits below the leading one with
// one model per (length, position) pair for the top three and probability 1/2 below.
class AdaptiveInteger {
 public:
  void put(RansEncoder& encoder, std::uint32_t value);
  std::uint32_t get(RansDecoder& decoder);

 private:
  static constexpr int kLengths = 33;
  static constexpr int kModelledBits = 3;
  AdaptiveBit length_[kLengths];
  AdaptiveBit mantissa_[kLengths][kModelledBits];
};

// A byte through a binary tree of 255 adaptive bits (most significant first).
class AdaptiveByte {
 public:
  void put(RansEncoder& encoder, std::uint32_t byte);
  std::uint32_t get(RansDecoder& decoder);

 private:
  AdaptiveBit node_[256];
};

}  // namespace sparseae::lossless
