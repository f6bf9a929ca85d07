#include "sparseae/checkpoint.hpp"

#include <cmath>
#include <cstring>
#include <fstream>
#include <iterator>
#include <limits>
#include <vector>

#include "checkpoint/checksum.hpp"
#include "core/json.hpp"
#include "core/number_text.hpp"
#include "io/atomic_file.hpp"
#include "sparseae/error.hpp"

namespace sparseae {

namespace {

constexpr char kMagic[8] = {'S', 'P', 'A', 'R', 'S', 'E', 'A', 'E'};

Json widths_json(const std::vector<std::int64_t>& widths) {
  std::vector<Json> items;
  for (std::int64_t w : widths) items.push_back(Json::integer(w));
  return Json::array(std::move(items));
}

std::vector<std::int64_t> widths_from(const Json& array) {
  std::vector<std::int64_t> widths;
  for (const Json& item : array.items()) widths.push_back(item.as_int());
  return widths;
}

// Appends the bytes of a value or an array to a byte string.
class ByteWriter {
 public:
  template <typename T>
  void put(const T& value) {
    const auto* p = reinterpret_cast<const unsigned char*>(&value);
    bytes.insert(bytes.end(), p, p + sizeof(T));
  }
  void put_floats(const std::vector<float>& values) {
    const auto* p = reinterpret_cast<const unsigned char*>(values.data());
    bytes.insert(bytes.end(), p, p + values.size() * sizeof(float));
  }
  std::vector<unsigned char> bytes;
};

class ByteReader {
 public:
  // Reads bytes[0, end).
  ByteReader(const std::vector<unsigned char>& bytes, std::size_t end, std::string path)
      : bytes_(bytes), end_(end), path_(std::move(path)) {}
  template <typename T>
  T get(const char* what) {
    T value;
    take(&value, sizeof(T), what);
    return value;
  }
  std::vector<float> get_floats(std::uint64_t count, const char* what) {
    require(count <= (end_ - position_) / sizeof(float),
            path_ + ": truncated checkpoint (" + what + ")");
    std::vector<float> values(count);
    take(values.data(), count * sizeof(float), what);
    return values;
  }
  std::string get_text(std::uint64_t size, const char* what) {
    require(size <= end_ - position_, path_ + ": truncated checkpoint (" + what + ")");
    std::string text(reinterpret_cast<const char*>(bytes_.data() + position_), size);
    position_ += size;
    return text;
  }
  std::size_t bytes_left() const { return end_ - position_; }

 private:
  void take(void* out, std::size_t size, const char* what) {
    require(size <= end_ - position_, path_ + ": truncated checkpoint (" + what + ")");
    if (size == 0) return;  // out may be the null data() of an empty vector
    std::memcpy(out, bytes_.data() + position_, size);
    position_ += size;
  }
  const std::vector<unsigned char>& bytes_;
  std::size_t end_;
  std::string path_;
  std::size_t position_ = 0;
};

// Runs read, naming what in any Error it throws that does not name it already: the errors of the
// JSON values (a missing key, a wrong type, an unknown name) and of the model know no file.
template <typename Read>
auto naming(const std::string& what, Read&& read) -> decltype(read()) {
  try {
    return read();
  } catch (const Error& error) {
    const std::string message = error.what();
    if (message.rfind(what + ": ", 0) == 0) throw;
    throw Error(what + ": " + message);
  }
}

}  // namespace

std::uint64_t checkpoint_checksum(const unsigned char* data, std::size_t size) {
  std::uint64_t hash = 0xcbf29ce484222325ull;
  for (std::size_t i = 0; i < size; ++i) hash = (hash ^ data[i]) * 0x100000001b3ull;
  return hash;
}

namespace {

// RunConfig::training_count_histogram as one array a column of its non-empty bins, [bin, rows,
// bin, rows, ...]: a column holds a few counts, so most of its 65 bins are empty.
Json training_count_histogram_json(const RunConfig& config) {
  std::vector<Json> columns;
  for (std::int64_t c = 0; c < config.model.input_dim; ++c) {
    std::vector<Json> bins;
    for (int bin = 0; bin < kTrainingHistogramBins; ++bin) {
      const std::uint64_t rows =
          config
              .training_count_histogram[static_cast<std::size_t>(c * kTrainingHistogramBins + bin)];
      if (rows == 0) continue;
      bins.push_back(Json::integer(bin));
      bins.push_back(Json::unsigned_integer(rows));
    }
    columns.push_back(Json::array(std::move(bins)));
  }
  return Json::array(std::move(columns));
}

// The counts stored by training_count_histogram_json; every column must account for the same rows.
std::vector<std::uint64_t> training_count_histogram_from(const Json& columns,
                                                         std::int64_t input_dim,
                                                         const std::string& what) {
  require(static_cast<std::int64_t>(columns.items().size()) == input_dim,
          what + ": training_count_histogram has " + std::to_string(columns.items().size()) +
              " columns, the model " + std::to_string(input_dim));
  std::vector<std::uint64_t> counts(static_cast<std::size_t>(input_dim * kTrainingHistogramBins),
                                    0);
  std::uint64_t first_column_rows = 0;
  for (std::int64_t c = 0; c < input_dim; ++c) {
    const std::vector<Json>& bins = columns.items()[static_cast<std::size_t>(c)].items();
    const std::string where = what + ": training_count_histogram column " + std::to_string(c + 1);
    require(bins.size() % 2 == 0, where + " is not a list of bin, rows pairs");
    std::uint64_t rows = 0;
    for (std::size_t i = 0; i < bins.size(); i += 2) {
      const std::int64_t bin = bins[i].as_int();
      require(bin >= 0 && bin < kTrainingHistogramBins,
              where + ": bin " + std::to_string(bin) + " outside [0, " +
                  std::to_string(kTrainingHistogramBins) + ")");
      counts[static_cast<std::size_t>(c * kTrainingHistogramBins + bin)] += bins[i + 1].as_uint();
      rows += bins[i + 1].as_uint();
    }
    if (c == 0) first_column_rows = rows;
    require(rows == first_column_rows, where + " counts " + std::to_string(rows) +
                                           " rows, column 1 " + std::to_string(first_column_rows));
  }
  return counts;
}

Json run_config_json(const RunConfig& config) {
  const ModelConfig& m = config.model;
  const TrainConfig& t = config.train;
  const OptimizerConfig& o = t.optimizer;
  Json model = Json::object();
  model.set("input_dim", Json::integer(m.input_dim))
      .set("hidden", widths_json(m.hidden))
      .set("latent", Json::integer(m.latent))
      .set("mirror_decoder", Json::boolean(m.mirror_decoder))
      .set("decoder_hidden", widths_json(m.decoder_hidden))
      .set("tied_weights", Json::boolean(m.tied_weights))
      .set("hidden_activation", Json::string(activation_name(m.hidden_activation)))
      .set("latent_activation", Json::string(activation_name(m.latent_activation)))
      .set("output_activation", Json::string(activation_name(m.output_activation)))
      .set("seed", Json::unsigned_integer(m.seed))
      .set("linear_skip", Json::boolean(m.linear_skip))
      .set("latent_prior", Json::boolean(m.latent_prior))
      .set("latent_sparsity", Json::string(latent_sparsity_name(m.latent_sparsity)))
      .set("latent_k", Json::integer(m.latent_k));
  Json optimizer = Json::object();
  optimizer.set("kind", Json::string(optimizer_name(o.kind)))
      .set("learning_rate", Json::number(o.learning_rate))
      .set("beta1", Json::number(o.beta1))
      .set("beta2", Json::number(o.beta2))
      .set("epsilon", Json::number(o.epsilon))
      .set("weight_decay", Json::number(o.weight_decay))
      .set("momentum", Json::number(o.momentum))
      .set("max_grad_norm", Json::number(o.max_grad_norm));
  Json penalty = Json::object();
  penalty.set("l1_weight", Json::number(t.penalty.l1_weight))
      .set("kl_beta", Json::number(t.penalty.kl_beta))
      .set("kl_rho", Json::number(t.penalty.kl_rho))
      .set("layer", Json::integer(t.penalty.layer));
  Json loss_params = Json::object();
  loss_params.set("cosine_weight", Json::number(t.loss_params.cosine_weight))
      .set("zero_weight", Json::number(t.loss_params.zero_weight))
      .set("huber_delta", Json::number(t.loss_params.huber_delta))
      .set("dispersion", Json::string(dispersion_name(t.loss_params.dispersion)))
      .set("size_factors", Json::boolean(t.loss_params.size_factors));
  Json train = Json::object();
  train.set("loss", Json::string(loss_name(t.loss)))
      .set("loss_params", loss_params)
      .set("input_transform", Json::string(input_transform_name(t.input_transform)))
      .set("scale", Json::string(scale_mode_name(t.scale)))
      .set("epochs", Json::integer(t.epochs))
      .set("batch_size", Json::integer(t.batch_size))
      .set("val_fraction", Json::number(t.val_fraction))
      .set("seed", Json::unsigned_integer(t.seed))
      .set("optimizer", optimizer)
      .set("schedule", Json::string(lr_schedule_name(t.schedule)))
      .set("warmup_steps", Json::integer(t.warmup_steps))
      .set("patience", Json::integer(t.patience))
      .set("on_nonfinite", Json::string(nonfinite_policy_name(t.on_nonfinite)))
      .set("loss_every", Json::integer(t.loss_every))
      .set("penalty", penalty)
      .set("rate_lambda", Json::number(t.rate_lambda))
      .set("aux_k", Json::integer(t.aux_k))
      .set("aux_weight", Json::number(t.aux_weight))
      .set("aux_dead_steps", Json::integer(t.aux_dead_steps))
      .set("decoder_norm", Json::boolean(t.decoder_norm));
  Json root = Json::object();
  root.set("model", model)
      .set("train", train)
      .set("scale", Json::number(config.scale))
      .set("data_source", Json::string(config.data_source))
      .set("hurdle_threshold", Json::number(config.hurdle_threshold))
      .set("reference_library_size", Json::number(config.reference_library_size));
  if (config.decode) root.set("decode", Json::string(decode_mode_name(*config.decode)));
  if (!config.data_source_relative_to_checkpoint.empty())
    root.set("data_source_relative_to_checkpoint",
             Json::string(config.data_source_relative_to_checkpoint));
  if (config.largest_training_count > 0.0)
    root.set("largest_training_count", Json::number(config.largest_training_count));
  if (!config.training_count_histogram.empty())
    root.set("training_count_histogram", training_count_histogram_json(config));
  if (config.latent_refinement.steps > 0) {
    Json refinement = Json::object();
    refinement.set("steps", Json::integer(config.latent_refinement.steps))
        .set("rate", Json::number(config.latent_refinement.rate));
    root.set("latent_refinement", refinement);
  }
  return root;
}

RunConfig run_config_from(const Json& root, const std::string& what) {
  const Json& model = root.at("model");
  const Json& train = root.at("train");
  const Json& optimizer = train.at("optimizer");
  const Json& penalty = train.at("penalty");
  const Json& loss_params = train.at("loss_params");
  RunConfig config;
  ModelConfig& m = config.model;
  m.input_dim = model.at("input_dim").as_int();
  m.hidden = widths_from(model.at("hidden"));
  m.latent = model.at("latent").as_int();
  m.mirror_decoder = model.at("mirror_decoder").as_bool();
  m.decoder_hidden = widths_from(model.at("decoder_hidden"));
  m.tied_weights = model.at("tied_weights").as_bool();
  m.hidden_activation = parse_activation(model.at("hidden_activation").as_string());
  m.latent_activation = parse_activation(model.at("latent_activation").as_string());
  m.output_activation = parse_activation(model.at("output_activation").as_string());
  m.seed = model.at("seed").as_uint();
  // Absent from checkpoints written before linear skips existed.
  m.linear_skip = model.contains("linear_skip") && model.at("linear_skip").as_bool();
  // Absent from checkpoints written before rate-aware training existed, as is rate_lambda.
  m.latent_prior = model.contains("latent_prior") && model.at("latent_prior").as_bool();
  // Absent from checkpoints written before sparse latents existed: no selection.
  if (model.contains("latent_sparsity")) {
    m.latent_sparsity = parse_latent_sparsity(model.at("latent_sparsity").as_string());
    m.latent_k = model.at("latent_k").as_int();
  }
  TrainConfig& t = config.train;
  t.loss = parse_loss(train.at("loss").as_string());
  t.loss_params.cosine_weight = static_cast<float>(loss_params.at("cosine_weight").as_double());
  t.loss_params.zero_weight = static_cast<float>(loss_params.at("zero_weight").as_double());
  t.loss_params.huber_delta = static_cast<float>(loss_params.at("huber_delta").as_double());
  t.loss_params.dispersion = parse_dispersion(loss_params.at("dispersion").as_string());
  t.loss_params.size_factors = loss_params.at("size_factors").as_bool();
  t.input_transform = parse_input_transform(train.at("input_transform").as_string());
  t.scale = parse_scale_mode(train.at("scale").as_string());
  t.epochs = static_cast<int>(train.at("epochs").as_int());
  t.batch_size = train.at("batch_size").as_int();
  t.val_fraction = train.at("val_fraction").as_double();
  t.seed = train.at("seed").as_uint();
  OptimizerConfig& o = t.optimizer;
  o.kind = parse_optimizer(optimizer.at("kind").as_string());
  o.learning_rate = static_cast<float>(optimizer.at("learning_rate").as_double());
  o.beta1 = static_cast<float>(optimizer.at("beta1").as_double());
  o.beta2 = static_cast<float>(optimizer.at("beta2").as_double());
  o.epsilon = static_cast<float>(optimizer.at("epsilon").as_double());
  o.weight_decay = static_cast<float>(optimizer.at("weight_decay").as_double());
  o.momentum = static_cast<float>(optimizer.at("momentum").as_double());
  o.max_grad_norm = static_cast<float>(optimizer.at("max_grad_norm").as_double());
  t.schedule = parse_lr_schedule(train.at("schedule").as_string());
  t.warmup_steps = train.at("warmup_steps").as_int();
  t.patience = static_cast<int>(train.at("patience").as_int());
  t.on_nonfinite = parse_nonfinite_policy(train.at("on_nonfinite").as_string());
  t.loss_every = train.at("loss_every").as_int();
  t.penalty.l1_weight = static_cast<float>(penalty.at("l1_weight").as_double());
  t.penalty.kl_beta = static_cast<float>(penalty.at("kl_beta").as_double());
  t.penalty.kl_rho = static_cast<float>(penalty.at("kl_rho").as_double());
  t.penalty.layer = static_cast<int>(penalty.at("layer").as_int());
  if (train.contains("rate_lambda"))
    t.rate_lambda = static_cast<float>(train.at("rate_lambda").as_double());
  // Absent from checkpoints written before AuxK existed: off.
  if (train.contains("aux_k")) {
    t.aux_k = train.at("aux_k").as_int();
    t.aux_weight = static_cast<float>(train.at("aux_weight").as_double());
    t.aux_dead_steps = static_cast<std::int32_t>(train.at("aux_dead_steps").as_int());
  }
  // Absent from checkpoints written before decoder normalisation existed: off.
  t.decoder_norm = train.contains("decoder_norm") && train.at("decoder_norm").as_bool();
  config.scale = static_cast<float>(root.at("scale").as_double());
  config.data_source = root.at("data_source").as_string();
  if (root.contains("data_source_relative_to_checkpoint"))
    config.data_source_relative_to_checkpoint =
        root.at("data_source_relative_to_checkpoint").as_string();
  config.hurdle_threshold = root.at("hurdle_threshold").as_double();
  require(
      config.hurdle_threshold >= 0.0 && config.hurdle_threshold <= 1.0,
      what + ": hurdle_threshold " + std::to_string(config.hurdle_threshold) + " is not in [0, 1]");
  config.reference_library_size = root.at("reference_library_size").as_double();
  require(config.reference_library_size > 0.0 && std::isfinite(config.reference_library_size),
          what + ": reference_library_size " + std::to_string(config.reference_library_size) +
              " is not positive");
  if (root.contains("decode")) config.decode = parse_decode_mode(root.at("decode").as_string());
  if (root.contains("largest_training_count")) {
    config.largest_training_count = root.at("largest_training_count").as_double();
    require(config.largest_training_count > 0.0 && std::isfinite(config.largest_training_count),
            what + ": largest_training_count " + std::to_string(config.largest_training_count) +
                " is not positive");
  }
  if (root.contains("training_count_histogram"))
    config.training_count_histogram =
        training_count_histogram_from(root.at("training_count_histogram"), m.input_dim, what);
  if (root.contains("latent_refinement")) {
    const Json& refinement = root.at("latent_refinement");
    config.latent_refinement.steps = refinement.at("steps").as_int();
    config.latent_refinement.rate = refinement.at("rate").as_double();
    validate_latent_refinement(config.latent_refinement, what + ": latent_refinement",
                               std::numeric_limits<double>::max());
  }
  // Not stored: the output layer's shape follows from the loss and its parameters.
  m = with_loss_heads(m, t.loss, t.loss_params);
  return config;
}

// The configuration's optional key for TrainingState::latent_dead_steps (see checkpoint.hpp).
constexpr const char* kDeadStepsKey = "auxk_latent_dead_steps";

}  // namespace

void validate_latent_refinement(const LatentRefinement& refinement, const std::string& what,
                                double max_rate) {
  require(refinement.steps >= 0 && refinement.steps <= kMaxRefineSteps,
          what + ": " + std::to_string(refinement.steps) + " refinement steps; from 0 to " +
              std::to_string(kMaxRefineSteps));
  require(refinement.rate > 0.0 && refinement.rate <= max_rate && std::isfinite(refinement.rate),
          what + ": refinement rate " + detail::number_text(refinement.rate) + " is not in (0, " +
              detail::number_text(max_rate) + "]");
}

std::string run_config_to_json(const RunConfig& config) { return run_config_json(config).dump(); }

RunConfig run_config_from_json(const std::string& text, const std::string& what) {
  return run_config_from(Json::parse(text, what), what);
}

void save_checkpoint(const std::string& path, const Checkpoint& checkpoint) {
  const TrainingState& s = checkpoint.state;
  Json configuration = run_config_json(checkpoint.config);
  if (!s.latent_dead_steps.empty()) {
    std::vector<Json> counters;
    for (const std::int32_t counter : s.latent_dead_steps)
      counters.push_back(Json::integer(counter));
    configuration.set(kDeadStepsKey, Json::array(std::move(counters)));
  }
  const std::string json = configuration.dump();
  ByteWriter w;
  w.bytes.insert(w.bytes.end(), kMagic, kMagic + sizeof kMagic);
  w.put(kCheckpointVersion);
  w.put(std::uint32_t{0});
  w.put(static_cast<std::uint64_t>(json.size()));
  w.bytes.insert(w.bytes.end(), json.begin(), json.end());
  w.put(static_cast<std::uint64_t>(s.parameters.size()));
  for (const auto* values :
       {&s.parameters, &s.first_moment, &s.second_moment, &s.best_parameters}) {
    require(values->size() == s.parameters.size(), "checkpoint: state arrays differ in length");
    w.put_floats(*values);
  }
  w.put(static_cast<std::int64_t>(s.epoch));
  w.put(s.step);
  w.put(s.best_val_loss);
  w.put(static_cast<std::int64_t>(s.epochs_without_improvement));
  w.put(checkpoint_checksum(w.bytes.data(), w.bytes.size()));
  AtomicFile file(path);
  file.write(w.bytes.data(), w.bytes.size());
  file.commit();
}

Checkpoint load_checkpoint(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  require(in.good(), path + ": cannot open checkpoint");
  const std::vector<unsigned char> bytes((std::istreambuf_iterator<char>(in)),
                                         std::istreambuf_iterator<char>());
  require(!bytes.empty(), path + ": empty file (expected a sparseae checkpoint)");
  require(bytes.size() >= sizeof kMagic && std::memcmp(bytes.data(), kMagic, sizeof kMagic) == 0,
          path + ": not a sparseae checkpoint (wrong magic)");
  require(bytes.size() >= sizeof kMagic + 16, path + ": truncated checkpoint (header)");
  std::uint64_t stored_hash;
  std::memcpy(&stored_hash, bytes.data() + bytes.size() - sizeof stored_hash, sizeof stored_hash);
  ByteReader r(bytes, bytes.size() - sizeof stored_hash, path);
  r.get_text(sizeof kMagic, "magic");
  const auto version = r.get<std::uint32_t>("version");
  require(version == kCheckpointVersion, path + ": checkpoint format version " +
                                             std::to_string(version) + ", this build reads " +
                                             std::to_string(kCheckpointVersion));
  require(checkpoint_checksum(bytes.data(), bytes.size() - sizeof stored_hash) == stored_hash,
          path + ": checkpoint checksum mismatch (the file is corrupt)");
  r.get<std::uint32_t>("flags");
  Checkpoint checkpoint;
  const std::string json = r.get_text(r.get<std::uint64_t>("configuration size"), "configuration");
  const std::string configuration = path + ": configuration";
  const Json root = Json::parse(json, configuration);
  checkpoint.config = naming(configuration, [&] { return run_config_from(root, configuration); });
  const auto count = r.get<std::uint64_t>("parameter count");
  TrainingState& s = checkpoint.state;
  // Absent from checkpoints of runs without AuxK and from those written before it was stored.
  if (root.contains(kDeadStepsKey))
    naming(configuration, [&] {
      for (const Json& counter : root.at(kDeadStepsKey).items())
        s.latent_dead_steps.push_back(static_cast<std::int32_t>(counter.as_int()));
    });
  s.parameters = r.get_floats(count, "parameters");
  s.first_moment = r.get_floats(count, "first moment");
  s.second_moment = r.get_floats(count, "second moment");
  s.best_parameters = r.get_floats(count, "best parameters");
  s.epoch = static_cast<int>(r.get<std::int64_t>("epoch"));
  s.step = r.get<std::int64_t>("step");
  s.best_val_loss = r.get<double>("best validation loss");
  s.epochs_without_improvement = static_cast<int>(r.get<std::int64_t>("patience counter"));
  require(r.bytes_left() == 0, path + ": " + std::to_string(r.bytes_left()) +
                                   " unexpected bytes after the last field (patience counter)");
  const std::int64_t needed =
      naming(configuration, [&] { return ModelLayout(checkpoint.config.model).parameter_count(); });
  require(static_cast<std::int64_t>(count) == needed,
          path + ": checkpoint holds " + std::to_string(count) +
              " parameters, its model configuration needs " + std::to_string(needed));
  return checkpoint;
}

}  // namespace sparseae
