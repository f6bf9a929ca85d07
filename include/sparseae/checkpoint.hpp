#pragma once
// Checkpoints: everything a run needs to continue, or a model needs to encode and decode, in one
// versioned binary file, written to a temporary file and renamed so a crash never leaves half of
// one behind.
//
// Layout (little-endian): "SPARSEAE" | u32 format version | u32 0 | u64 n | n bytes of JSON (the
// resolved run configuration) | u64 P | f32[P] parameters | f32[P] first moment | f32[P] second
// moment | f32[P] best parameters | i64 epoch | i64 step | f64 best validation loss | i64 epochs
// without improvement | u64 FNV-1a hash of every byte before it.
//
// AuxK's dead-step counters (TrainingState::latent_dead_steps) travel in the JSON, under the
// optional root key "auxk_latent_dead_steps" (an array of integers, one a latent), written only
// when there are any: a checkpoint without it resumes counting from 0.
//
// The random state is the seed in the configuration plus the epoch: every draw (split, per-epoch
// permutation, initialisation) is a counter-based hash of those, so nothing else needs saving.
#include <cstdint>
#include <optional>
#include <string>

#include "sparseae/model.hpp"
#include "sparseae/train_config.hpp"

namespace sparseae {

// 2: the configuration's train.loss_params (cosine_weight, zero_weight, huber_delta) replaced
// train.cosine_weight. 3: the configuration holds hurdle_threshold. 4: train.loss_params holds
// dispersion and size_factors, train holds input_transform and on_nonfinite, and the
// configuration reference_library_size. Other versions are refused with a message that names both.
// The configuration's optional "decode" came within version 4: readers ignore keys they do not
// know, and a configuration without it decodes by its loss's default, as before. So did the
// optional "data_source_relative_to_checkpoint", written only when not empty.
constexpr std::uint32_t kCheckpointVersion = 4;

// The bins of RunConfig::training_count_histogram: each count from 0 to 63 its own, then one for
// every count of 64 or more (lossless mode's explicit counts and escape).
constexpr int kTrainingHistogramBins = 65;

// Each row's latent code refined before it is decoded (semi-amortised inference): from the
// encoder's code, steps Adam steps of rate on the model's own loss of that row, through the
// decoder alone (TrainedModel). The encoder of a model trained on other rows gives codes its
// decoder does better with: on held-out protein k-mers, 40 steps lowered the loss by 4 % and
// raised the exact F1 from 0.378 to 0.389 (bench/real-data/README.md). 0 steps: the encoder's
// code, as for checkpoints written before it was stored (the optional key "latent_refinement",
// within version 4).
constexpr std::int64_t kMaxRefineSteps = 10000;
constexpr double kDefaultRefineRate = 0.03;
// An Adam step moves each coordinate by about the rate; codes are of order 1, so a rate above
// this jumps past any optimum rather than refining it.
constexpr double kMaxRefineRate = 10.0;
struct LatentRefinement {
  std::int64_t steps = 0;
  double rate = kDefaultRefineRate;
};
// Throws Error, what first, for steps outside [0, kMaxRefineSteps] or a rate outside
// (0, max_rate] (a checkpoint is read with no bound but finiteness: files written before
// kMaxRefineRate still load, and a rate given for the run replaces theirs).
void validate_latent_refinement(const LatentRefinement& refinement, const std::string& what,
                                double max_rate = kMaxRefineRate);

// The resolved configuration of a run: what a model needs to be rebuilt and used.
struct RunConfig {
  ModelConfig model;
  TrainConfig train;
  float scale = 1.0f;  // data units per model unit (from TrainConfig::scale)
  // Where the training data came from: a path, or "embedded:rows=N,seed=S" for the built-in
  // generator, so that eval can rebuild the same validation rows.
  std::string data_source;
  // data_source's file as a path relative to the directory of the checkpoint that holds this
  // configuration, so that a directory holding both can be moved; empty when there is none (the
  // embedded generator, a program's own rows, checkpoints written before it was stored).
  std::string data_source_relative_to_checkpoint;
  // hurdle, decode mode: the support probability from which an entry decodes to a non-zero.
  // sae train and compare_losses set it at the end of training to choose_hurdle_threshold on
  // the validation rows (a checkpoint written after an epoch holds the previous value); every
  // decode of the model reads it. kDefaultHurdleThreshold for other losses.
  double hurdle_threshold = kDefaultHurdleThreshold;
  // LossParams::size_factors: the training rows' median total count in model units, against
  // which each row's size factor is taken (Trainer::reference_library_size).
  double reference_library_size = 1.0;
  // How the model's outputs become counts unless a command is told otherwise (--decode): the
  // decode sae train reported its headline with, so that eval and decode reproduce it. None:
  // the loss's default (default_decode), as for checkpoints written before it was stored and
  // for PCA models. Checked against the loss where the model is used (TrainedModel).
  std::optional<DecodeMode> decode;
  // How many training rows hold each count in each column: input_dim x kTrainingHistogramBins,
  // row-major. Lossless mode fits its order-0 code on it (LosslessCodec::order0_training), so a
  // file coded with it holds no tables. Set with the model at the end of training; empty for
  // data that are not integer counts, for PCA models and for models written before it was stored
  // (the optional key "training_count_histogram", within version 4).
  std::vector<std::uint64_t> training_count_histogram;
  // The largest count of the training rows: no entry decodes to more (EntryDecoder::
  // largest_count). 0 where unknown (values that are not counts, PCA models, models written
  // before it was stored: the optional key "largest_training_count", within version 4).
  double largest_training_count = 0.0;
  // How every use of the model refines its codes (LatentRefinement): none unless asked.
  LatentRefinement latent_refinement;
};

std::string run_config_to_json(const RunConfig& config);
RunConfig run_config_from_json(const std::string& json, const std::string& what);

struct Checkpoint {
  RunConfig config;
  TrainingState state;
};

void save_checkpoint(const std::string& path, const Checkpoint& checkpoint);
// Throws Error naming the file and the reason: not a checkpoint (magic), an unknown version, a
// checksum mismatch, truncation, or an inconsistent size.
Checkpoint load_checkpoint(const std::string& path);

}  // namespace sparseae
