// sae train: train an autoencoder and report how exactly it reproduces the validation counts.
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <iterator>
#include <optional>
#include <string>

#include "backend/communicator_factory.hpp"
#include "cli/commands.hpp"
#include "cli/data_source.hpp"
#include "cli/html_output.hpp"
#include "cli/options.hpp"
#include "cli/progress.hpp"
#include "cli/recipe_search_command.hpp"
#include "cli/report.hpp"
#include "cli/train_plan.hpp"
#include "core/communicator.hpp"
#include "core/json.hpp"
#include "sparseae/checkpoint.hpp"
#include "sparseae/compare.hpp"
#include "sparseae/error.hpp"
#include "sparseae/fit.hpp"
#include "sparseae/inference.hpp"
#include "sparseae/io.hpp"
#include "sparseae/pca.hpp"
#include "sparseae/recipe_search.hpp"
#include "sparseae/trainer.hpp"

namespace sparseae::cli {

namespace {

// The signal (SIGINT, SIGTERM) that asked training to stop, 0 while none has.
volatile std::sig_atomic_t stop_signal = 0;

extern "C" void request_stop(int signal) { stop_signal = signal; }

// While alive, SIGINT and SIGTERM finish the running step and end training (the trainer asks
// stop_signal after every step) instead of killing the process mid-write.
class StopOnSignals {
 public:
  StopOnSignals() {
    stop_signal = 0;
    struct sigaction action {};
    action.sa_handler = request_stop;
    sigemptyset(&action.sa_mask);
    sigaction(SIGINT, &action, &previous_int_);
    sigaction(SIGTERM, &action, &previous_term_);
  }
  ~StopOnSignals() {
    sigaction(SIGINT, &previous_int_, nullptr);
    sigaction(SIGTERM, &previous_term_, nullptr);
  }
  StopOnSignals(const StopOnSignals&) = delete;
  StopOnSignals& operator=(const StopOnSignals&) = delete;

 private:
  struct sigaction previous_int_ {};
  struct sigaction previous_term_ {};
};

Options train_options() {
  Options o("sae train",
            "Trains an autoencoder on a count matrix (default: the embedded dataset) and reports\n"
            "the exact-reconstruction metrics on the validation rows. Under mpirun, trains\n"
            "data-parallel: each rank reads its share of the rows (README, \"Train across "
            "ranks\").");
  add_data_options(o);
  add_training_options(o, "epochs");
  o.value("decoder-hidden", "W,W,...", "", "decoder widths (default: mirror the encoder)")
      .flag("tied", "decoder uses the transposed encoder weights")
      .flag("pca-anchor",
            "start at PCA: linear skips around the hidden layers, set to the PCA of the training "
            "rows, with the nonlinear branches at zero (latent activation identity)")
      .value("hidden-act", "NAME", "relu", "hidden activation")
      .value("latent-act", "NAME|topk:K|batchtopk:K", "relu",
             "latent activation; topk:K keeps each row's K largest latents (relu after the "
             "selection), batchtopk:K the batch's K x rows largest while training and at use "
             "those above a threshold training estimates")
      .value("output-act", "NAME", "identity",
             "output activation (bce always outputs logits, poisson/nb/zinb/hurdle log-rates "
             "and logits: identity)")
      .value("loss", "mse|mae|bce|mse_cosine|poisson|weighted_mse|huber|nb|zinb|hurdle|hurdle_nb",
             "mse",
             "reconstruction loss (poisson, nb, zinb, hurdle, hurdle_nb: negative log-likelihood "
             "of the counts; nb: negative binomial, zinb: zero-inflated nb, hurdle: support "
             "logit + zero-truncated Poisson, hurdle_nb: support logit + zero-truncated nb; these "
             "output 2-3 values per column)")
      .value("cosine-weight", "W", "0.1", "weight of the cosine term of mse_cosine")
      .value("zero-weight", "W", "0.1", "weight of the zero-target entries in weighted_mse")
      .value("huber-delta", "D", "1", "where the huber loss turns from quadratic to linear")
      .value("scale", "none|max", "none",
             "divide counts by the data's maximum (bce needs max; poisson, nb, zinb, hurdle none)")
      .value("l1", "W", "0", "L1 activity penalty weight")
      .value("kl-beta", "W", "0",
             "KL sparsity penalty weight (the penalised layer must be sigmoid)")
      .value("kl-rho", "P", "0.05", "KL sparsity target mean activation")
      .value("penalty-layer", "L", "-1", "layer the penalties act on (-1: latent)")
      .value("rate-lambda", "L", "0",
             "rate-aware training for lossless mode: integer codes under a learned prior, the "
             "loss adding L x their bits (1 with a count likelihood: the shortest code plus "
             "counts; smaller: fidelity first; latent activation identity). 0: off")
      .value("aux-k", "K", "0",
             "AuxK for a topk/batchtopk latent: each row's K dead latents with the largest "
             "pre-activations also learn from the loss's gradient, to revive them. 0: off")
      .value("aux-weight", "W", "0.03125", "weight of AuxK's gradient (1/32, Gao et al.)")
      .value("aux-dead-steps", "N", "256",
             "a latent is dead for AuxK after more than N training batches without firing")
      .flag("decoder-norm",
            "rescale each latent's decoder weights (its dictionary vector) to unit L2 norm at "
            "the start and after every step, so that a latent's size lives in its code")
      .value("optimizer", "adam|adamw|sgd", "adam", "optimizer")
      .value("weight-decay", "W", "0", "weight decay (L2 for adam/sgd, decoupled for adamw)")
      .value("momentum", "M", "0.9", "sgd momentum")
      .value("schedule", "constant|cosine", "constant", "learning-rate schedule")
      .value("warmup", "STEPS", "0", "linear learning-rate warm-up steps")
      .value("patience", "N", "0", "stop after N epochs without validation improvement (0: off)")
      .value("select", "auto|f1|loss", "auto",
             "which epoch's parameters the run keeps: the best validation exact F1 (the start "
             "included) or the lowest validation loss (with --rate-lambda: code plus counts); "
             "auto: loss with --rate-lambda, else f1; without validation rows, the last. A run "
             "option, not in the checkpoint: resume with the run's own (--auto: always f1)")
      .value("on-nan", "stop|skip", "stop",
             "a step whose loss or gradient is NaN or Inf: stop with an error naming it (the "
             "last epoch's checkpoint stays the last good state), or skip its update and go on")
      .value("resume", "PATH", "",
             "continue the run saved in this checkpoint, with its configuration (and, without "
             "--data or --rows, its data)")
      .value("metrics-log", "PATH", "", "JSON lines, one per epoch")
      .value("latents", "PATH", "",
             "write every row's latent code (.npy or .npz float32, .csv, or .h5ad obsm)")
      .value("reconstruction", "PATH", "",
             "write every row's reconstruction (.mtx, .npz, .h5ad or .csv decoded counts, or .npy "
             "values)")
      .value("loss-every", "N", "50", "steps between loss read-backs for the progress bar")
      .value("placement", "auto|resident|stream", "auto",
             "where the rows live while training: resident on the device (each batch gathered "
             "there), streamed from host memory (each batch copied while the one before "
             "computes: for data larger than the device), or auto: resident when they fit "
             "--device-memory-budget")
      .value("precision", "fp32|tf32|bf16", "fp32",
             "dense matrix products while training: fp32, tf32 or bf16 (operands rounded to a 10- "
             "or 7-bit mantissa, fp32 accumulation: tensor cores on cuda, emulated on cpu, "
             "slower, to predict their cost); the trained model is evaluated in fp32")
      .value("layer-forward", "separate|fused", "separate",
             "the dense layers' forward while training: the GEMM, then the bias + activation "
             "kernel, or one op (on cuda the bias and relu in cublasLt's GEMM epilogue)")
      .value("step-graph", "on|off", "off",
             "capture the training step once per epoch (a CUDA graph on cuda) and replay it for "
             "every full batch after the epoch's first: one launch a step instead of dozens")
      .value("device-memory-budget", "MIB", "0",
             "device memory the rows may take resident under --placement auto (0: half the "
             "device's free memory)")
      .value("report", "PATH", "",
             "also write a self-contained HTML report (metrics, training curves, exactness per "
             "column, wrong entries per row, and images for square column counts)")
      .flag("json", "print the final report as JSON")
      .flag("auto",
            "search the recipe (loss and decode, latent activation, learning rate) that "
            "reproduces the validation rows most exactly: short runs of every candidate, the "
            "better half trained on to twice the epochs (up to --epochs) until one is left; "
            "prints the table and writes the best as -o")
      .value("auto-budget", "SECONDS", "600",
             "--auto: the time the search may take; no round starts that would end after "
             "it, counting the refinement trial that follows the rounds "
             "(--epochs, default 128 with --auto, caps its epochs)")
      .value("auto-rows", "N", std::to_string(kAutoSearchRows),
             "--auto: the most rows that rank the recipes (0: every row); on more, they are ranked "
             "on a random sample of N rows within half the budget, and the best then trains on "
             "every row for what is left of it");
  add_decode_option(o,
                    " for the report, --reconstruction and --select f1, stored in the checkpoint",
                    "the loss's (mean for count likelihoods, round otherwise) or mode, whichever "
                    "reproduces more validation entries exactly");
  add_count_model_options(o);
  add_refinement_options(o, false);
  add_pca_option(o);
  add_model_file_options(o, "sae-model.ckpt", "checkpoint written after every epoch");
  add_quiet_option(o);
  return o;
}

// Where the rows live, the precision of the products and the captured step are not part of the
// configuration a checkpoint holds (run options, like the backend), so a resumed run takes them
// too.
void apply_placement_options(const Options& o, TrainConfig& t) {
  t.placement = parse_data_placement(o.text("placement"));
  t.precision = parse_matmul_precision(o.text("precision"));
  const std::string step_graph = o.text("step-graph");
  require(step_graph == "on" || step_graph == "off",
          "sae train: --step-graph takes on or off, not '" + step_graph + "'");
  t.capture_step = step_graph == "on";
  t.layer_forward = parse_layer_forward(o.text("layer-forward"));
  const double budget_mib = o.real("device-memory-budget");
  require(budget_mib >= 0.0 && budget_mib < 1e12,
          "sae train: --device-memory-budget must be a size in MiB, at least 0");
  t.device_memory_budget = static_cast<std::int64_t>(budget_mib * 1024.0 * 1024.0);
}

// --latent-act: an activation name, or topk:K / batchtopk:K (a relu latent whose code keeps K
// latents a row, ModelConfig::latent_sparsity), checked against --latent.
void parse_latent_act(const std::string& text, ModelConfig& m) {
  const std::size_t colon = text.find(':');
  if (colon == std::string::npos) {
    m.latent_activation = parse_activation(text);
    return;
  }
  const std::string kind = text.substr(0, colon);
  const std::string k = text.substr(colon + 1);
  require(kind == "topk" || kind == "batchtopk",
          "sae train: --latent-act takes an activation, topk:K or batchtopk:K, not '" + text + "'");
  require(!k.empty() && k.size() <= 18 && k.find_first_not_of("0123456789") == std::string::npos,
          "sae train: --latent-act " + kind +
              ":K takes a whole number K of latents to keep, not '" + k + "'");
  m.latent_sparsity = parse_latent_sparsity(kind);
  m.latent_k = std::stoll(k);
  m.latent_activation = Activation::relu;
  require(m.latent_k >= 1 && m.latent_k <= m.latent,
          "sae train: --latent-act " + text + " keeps K of the " + std::to_string(m.latent) +
              " latents of --latent: K from 1 to " + std::to_string(m.latent));
}

RunConfig config_from(const Options& o, std::int64_t input_dim) {
  if (!o.flag_set("auto"))
    for (const char* option : {"auto-budget", "auto-rows"})
      require(!o.given(option),
              std::string("sae train: --") + option + " sets the recipe search: give --auto");
  else
    require(!o.given("rate-lambda"),
            "sae train: --auto searches for exact reconstruction, --rate-lambda trains for a "
            "small lossless file: train with --rate-lambda without --auto");
  RunConfig run;
  ModelConfig& m = run.model;
  m.input_dim = input_dim;
  m.hidden = o.integer_list("hidden");
  m.latent = o.integer("latent");
  m.decoder_hidden = o.integer_list("decoder-hidden");
  m.mirror_decoder = !o.given("decoder-hidden");
  m.tied_weights = o.flag_set("tied");
  m.hidden_activation = parse_activation(o.text("hidden-act"));
  parse_latent_act(o.text("latent-act"), m);
  m.linear_skip = o.flag_set("pca-anchor");
  if (m.linear_skip) {
    require(!o.given("latent-act") || m.latent_activation == Activation::identity,
            "sae train: --pca-anchor starts the codes at PCA's, which are signed: its latent "
            "activation is identity (drop --latent-act)");
    m.latent_activation = Activation::identity;
    require(!m.tied_weights, "sae train: --pca-anchor needs untied weights (drop --tied)");
    require(!m.hidden.empty() && (m.mirror_decoder || !m.decoder_hidden.empty()),
            "sae train: --pca-anchor puts a nonlinear branch beside each linear path: it needs "
            "hidden layers on both sides (--hidden, --decoder-hidden)");
  }
  TrainConfig& t = run.train;
  t.rate_lambda = static_cast<float>(o.real("rate-lambda"));
  require(std::isfinite(t.rate_lambda) && t.rate_lambda >= 0.0f,
          "sae train: --rate-lambda must be finite and at least 0");
  m.latent_prior = t.rate_lambda > 0.0f;
  if (m.latent_prior) {
    require(!o.given("latent-act") || m.latent_activation == Activation::identity,
            "sae train: --rate-lambda codes the latents as signed integers: its latent "
            "activation is identity (drop --latent-act)");
    m.latent_activation = Activation::identity;
  }
  t.decoder_norm = o.flag_set("decoder-norm");
  t.aux_k = o.integer("aux-k");
  t.aux_weight = static_cast<float>(o.real("aux-weight"));
  // Its field is 32 bits: a larger count would wrap before the Trainer could check it.
  require(o.integer("aux-dead-steps") >= 0 && o.integer("aux-dead-steps") <= 0x7fffffff,
          "sae train: --aux-dead-steps takes a count of batches from 0 to 2^31 - 1");
  t.aux_dead_steps = static_cast<std::int32_t>(o.integer("aux-dead-steps"));
  validate_sparse_code_training(m, t);
  t.loss = parse_loss(o.text("loss"));
  // A count likelihood's outputs are log-rates, log-dispersions and logits: any output
  // activation but identity would bound them.
  const bool count_likelihood = has_count_likelihood(t.loss);
  require(
      !count_likelihood || !o.given("output-act") ||
          parse_activation(o.text("output-act")) == Activation::identity,
      std::string("sae train: --loss ") + loss_name(t.loss) +
          (t.loss == LossKind::poisson ? " outputs log-rates" : " outputs log-rates and logits") +
          ": its output activation is identity (drop --output-act)");
  require(!m.tied_weights || output_heads(t.loss) == 1,
          std::string("sae train: --tied needs one output per column; --loss ") +
              loss_name(t.loss) + " has " + std::to_string(output_heads(t.loss)) +
              " (drop --tied)");
  m.output_activation = t.loss == LossKind::bce || count_likelihood
                            ? Activation::identity
                            : parse_activation(o.text("output-act"));
  t.loss_params.cosine_weight = static_cast<float>(o.real("cosine-weight"));
  t.loss_params.zero_weight = static_cast<float>(o.real("zero-weight"));
  t.loss_params.huber_delta = static_cast<float>(o.real("huber-delta"));
  apply_count_model_options(o, t);
  t.on_nonfinite = parse_nonfinite_policy(o.text("on-nan"));
  validate_loss_params(t.loss_params);
  t.scale = parse_scale_mode(o.text("scale"));
  require(t.loss != LossKind::bce || t.scale == ScaleMode::max,
          "sae train: --loss bce needs targets in [0, 1]: add --scale max");
  require(!count_likelihood || t.scale == ScaleMode::none,
          std::string("sae train: --loss ") + loss_name(t.loss) +
              " models the counts themselves, which must stay integers: use --scale none");
  t.penalty.l1_weight = static_cast<float>(o.real("l1"));
  t.penalty.kl_beta = static_cast<float>(o.real("kl-beta"));
  t.penalty.kl_rho = static_cast<float>(o.real("kl-rho"));
  t.penalty.layer = static_cast<int>(o.integer("penalty-layer"));
  t.epochs = static_cast<int>(o.integer("epochs"));
  t.batch_size = o.integer("batch");
  t.val_fraction = o.real("val-frac");
  t.seed = static_cast<std::uint64_t>(o.integer("seed"));
  m.seed = t.seed;
  OptimizerConfig& opt = t.optimizer;
  opt.kind = parse_optimizer(o.text("optimizer"));
  opt.learning_rate = static_cast<float>(o.real("lr"));
  opt.weight_decay = static_cast<float>(o.real("weight-decay"));
  opt.momentum = static_cast<float>(o.real("momentum"));
  opt.max_grad_norm = static_cast<float>(o.real("clip-norm"));
  t.schedule = parse_lr_schedule(o.text("schedule"));
  t.warmup_steps = o.integer("warmup");
  t.patience = static_cast<int>(o.integer("patience"));
  t.loss_every = o.integer("loss-every");
  apply_placement_options(o, t);
  require(t.epochs >= 0, "sae train: --epochs must not be negative");
  require(t.batch_size > 0, "sae train: --batch must be positive");
  validate_optimization(t);
  // The penalty layer must exist, and the KL penalty needs a sigmoid layer: the Trainer's own
  // check, run here so that it fails before the data is read.
  validate_penalty(m, t.penalty);
  // With --auto, the refinement its best model tries, checked against the model after the
  // options --auto chooses (run_recipe_search).
  const bool search = o.flag_set("auto");
  run.latent_refinement =
      refinement_option(o, LatentRefinement{search ? kAutoRefineSteps : 0, kDefaultRefineRate});
  if (!search) check_latent_refinement(m, run.latent_refinement);
  return run;
}

// What --resume may be given with: where the data and the outputs come from, how long to train,
// and how to report. Everything else would change the configuration the checkpoint holds.
constexpr const char* kResumeOptions[] = {
    "resume",      "epochs",     "data",           "rows",   "backend",   "out",
    "metrics-log", "latents",    "reconstruction", "json",   "quiet",     "loss-every",
    "decode",      "report",     "no-pca",         "on-nan", "placement", "device-memory-budget",
    "precision",   "step-graph", "layer-forward",  "select", "force"};

// --select: true when the run keeps its parameters of the best validation exact F1, false for
// those of the lowest validation loss. A rate-aware run (rate_lambda > 0) trains for the
// description length, which its validation loss measures: auto selects by it.
bool selects_by_f1(const Options& o, float rate_lambda) {
  const std::string select = o.text("select");
  require(select == "auto" || select == "f1" || select == "loss",
          "sae train: --select takes auto, f1 or loss, not '" + select + "'");
  return select == "f1" || (select == "auto" && rate_lambda <= 0.0f);
}

void check_resume_options(const Options& o) {
  for (const std::string& name : o.given_names()) {
    const bool allowed = std::find(std::begin(kResumeOptions), std::end(kResumeOptions), name) !=
                         std::end(kResumeOptions);
    require(allowed, "sae train: --" + name +
                         " cannot change a resumed run (its configuration comes from the "
                         "checkpoint)");
  }
  if (o.given("epochs"))
    require(o.integer("epochs") >= 0, "sae train: --epochs must not be negative");
  if (o.given("loss-every")) o.integer("loss-every");
  TrainConfig placement_check;
  apply_placement_options(o, placement_check);
}

void write_epoch_log(std::ofstream& log, const EpochReport& r) {
  Json line = Json::object();
  line.set("epoch", Json::integer(r.epoch))
      .set("steps", Json::integer(r.steps))
      .set("train_loss", Json::number_significant(r.train_loss, 9))
      .set("val_loss", Json::number_significant(r.val_loss, 9));
  if (std::isfinite(r.score)) line.set("val_f1", Json::number_fixed(r.score, 6));
  line.set("best", Json::boolean(r.best))
      .set("seconds", Json::number_significant(r.seconds, 6))
      .set("samples_per_second", Json::number_significant(r.samples_per_second, 6))
      .set("learning_rate", Json::number_significant(r.learning_rate, 6))
      .set("skipped_steps", Json::integer(r.skipped_steps));
  log << line.dump() << '\n' << std::flush;
}

// The run's configuration for the counts it trains on: a resumed run's must fit their columns,
// a new one's is read from the flags; either records where the counts came from and decodes as
// asked (the checkpoints of every epoch then decode so; without --decode the decode is chosen,
// and stored, once training ends).
void bind_run_to_counts(const Options& o, bool resume, const Counts& counts,
                        std::optional<DecodeMode> asked_decode, RunConfig& run) {
  if (resume) {
    require_model_columns(counts, run.model.input_dim, o.text("resume"));
  } else {
    run = config_from(o, counts.matrix.cols);
  }
  run.data_source = counts.recorded_source;
  run.data_source_relative_to_checkpoint = source_relative_to_checkpoint(counts, o.text("out"));
  if (asked_decode) run.decode = asked_decode;
}

// What sae train does as it trains, in one process or on the rank that writes: the progress
// line, the metrics log (--metrics-log, appended on --resume) and the checkpoint after every
// epoch; and the stop that Ctrl-C or SIGTERM requests, on every rank. The observer it hands out
// refers to it, to the run and to the trainer: all three outlive the training.
class EpochReporting {
 public:
  EpochReporting(const Options& o, bool writes, bool quiet, bool resume, int epochs)
      : quiet_(quiet),
        checkpoint_path_(writes ? o.text("out") : std::string()),
        progress_(!quiet && isatty(STDERR_FILENO), epochs) {
    if (writes && o.given("metrics-log")) {
      log_.open(o.text("metrics-log"), resume ? std::ios::app : std::ios::trunc);
      require(log_.good(), "sae train: cannot write the metrics log " + o.text("metrics-log"));
    }
  }
  EpochReporting(const EpochReporting&) = delete;
  EpochReporting& operator=(const EpochReporting&) = delete;

  // Empty on a rank that does not write, or with -o ''.
  const std::string& checkpoint_path() const { return checkpoint_path_; }

  // Trains run on trainer through the library's fit, reporting every epoch, until done or
  // stopped by a signal, and saves the last checkpoint: the final model's, or where a stop left
  // the run (FitResult::interrupted). steps says what fit needs besides: resume, anchor, ranks.
  // A signal that comes after the last step lets fit finish and the final checkpoint be saved.
  FitResult fit_run(Backend& backend, Trainer& trainer, RunConfig& run,
                    std::optional<DecodeMode> asked_decode, bool select_f1, const FitSteps& steps) {
    FitOptions options;
    options.decode = asked_decode;
    options.select_by_f1 = select_f1;
    options.observer.on_step = [this](int epoch, std::int64_t step, std::int64_t steps_in_epoch,
                                      double rate, double loss) {
      progress_.step(epoch, step, steps_in_epoch, rate, loss);
    };
    options.observer.on_epoch = [this, &run, &trainer](const EpochReport& report) {
      if (!quiet_) progress_.epoch(report);
      if (log_.is_open()) write_epoch_log(log_, report);
      if (!checkpoint_path_.empty()) save_checkpoint(checkpoint_path_, {run, trainer.state()});
    };
    options.observer.stop_requested = [] { return stop_signal != 0; };
    FitResult fitted;
    {
      const StopOnSignals stop_on_signals;
      fitted = fit(backend, trainer, run, options, steps);
    }
    // The final checkpoint keeps the decode of the headline, for eval and decode to reproduce it.
    if (!checkpoint_path_.empty()) save_checkpoint(checkpoint_path_, fitted.checkpoint());
    return fitted;
  }

 private:
  bool quiet_;
  std::string checkpoint_path_;
  Progress progress_;
  std::ofstream log_;
};

// --report: the run as the one row of an HTML report, with a few validation rows for the image
// grid of square data and the validation rows' lossless sizes.
void write_train_report(const Options& o, const Args& args, const RunConfig& run,
                        const TrainingSummary& summary, const Trainer& trainer, TrainedModel& model,
                        const std::vector<float>& parameters, DecodeMode decode,
                        const Counts& counts, Backend& backend, ComparisonRow row) {
  row.loss = run.train.loss;
  row.scale = run.train.scale;
  row.decode = decode;
  row.hurdle_threshold = run.hurdle_threshold;
  row.epochs = summary.reports;
  row.validation_loss = summary.validation_loss;
  row.metrics = summary.metrics;
  std::vector<double> rates;
  for (const EpochReport& r : summary.reports) {
    row.seconds += r.seconds;
    rates.push_back(r.samples_per_second);
  }
  std::sort(rates.begin(), rates.end());
  row.samples_per_second = rates.empty() ? 0.0 : rates[rates.size() / 2];
  const HostCsr samples = first_rows(trainer.validation_counts(), kReportSampleRows);
  row.sample_counts = model.counts_from_outputs(model.outputs(samples), decode);
  std::vector<ComparisonRow> runs{std::move(row)};
  if (summary.pca.pca) runs.push_back(summary.pca);
  char learning_rate[32];
  std::snprintf(learning_rate, sizeof learning_rate, "%g", run.train.optimizer.learning_rate);
  // Counts past the lossless format's range (2^24) have no lossless size: the report leaves the
  // table out and stderr says why.
  std::vector<report::LosslessSizeRow> sizes;
  if (summary.metrics.rows > 0) {
    try {
      sizes = lossless_sizes(backend, run, parameters, trainer.validation_counts());
    } catch (const Error& error) {
      if (!o.flag_set("quiet"))
        std::cerr << "sae train: the report shows no lossless sizes: " << error.what() << "\n";
    }
  }
  write_run_report(
      o.text("report"), "sae train", args, counts,
      {{"model", summary.model},
       {"backend", backend.description()},
       {"training", std::string("loss ") + loss_name(run.train.loss) + ", decode " +
                        decode_mode_name(decode) + ", " + std::to_string(summary.epochs) +
                        " epochs, batch " + std::to_string(run.train.batch_size) + ", lr " +
                        learning_rate + ", seed " + std::to_string(run.train.seed) +
                        ", epoch kept by " + summary.select},
       {"validation rows", std::to_string(summary.metrics.rows)}},
      runs, samples, sizes, o.flag_set("quiet"));
}

// What sae train prints of a finished fit, in one process and on the rank that writes.
TrainingSummary summarise_fit(const FitResult& fitted, Trainer& trainer, const Backend& backend,
                              std::optional<DecodeMode> asked_decode, bool select_f1,
                              const std::string& checkpoint_path) {
  const RunConfig& run = fitted.run;
  TrainingSummary summary;
  summary.backend = backend_name(backend.kind());
  summary.model = trainer.network().layout().describe();
  summary.epochs = trainer.completed_epochs();
  summary.reports = fitted.epochs;
  summary.select = select_f1 ? "f1" : "loss";
  summary.pca_anchored = run.model.linear_skip;
  summary.rate_aware = run.model.latent_prior;
  summary.aux_k = run.train.aux_k;
  summary.aux_weight = run.train.aux_weight;
  summary.aux_dead_steps = run.train.aux_dead_steps;
  summary.decoder_norm = run.train.decoder_norm;
  summary.latent_refinement = run.latent_refinement;
  // Without validation rows there is nothing to select by: the run keeps its last parameters.
  if (trainer.validation_rows() > 0) summary.kept_epoch = fitted.kept_epoch;
  summary.validation_loss = fitted.validation_loss;
  summary.metrics = fitted.validation;
  summary.decode_choice = asked_decode          ? DecodeChoice::option
                          : fitted.other_decode ? DecodeChoice::validation_f1
                                                : DecodeChoice::loss_default;
  if (fitted.other_decode) {
    summary.alternative_decode = *fitted.other_decode;
    summary.alternative_decode_f1 = fitted.other_decode_f1;
  }
  summary.checkpoint = checkpoint_path;
  if (has_support_head(run.train.loss)) summary.hurdle_threshold = run.hurdle_threshold;
  return summary;
}

// What a run across ranks cannot do, refused before any data is read: each needs every row on
// one rank (--pca-anchor's PCA, --auto's candidates, the report's samples and lossless sizes,
// --latents and --reconstruction of every row, --select f1's F1 score each epoch).
void check_across_ranks(const Options& o) {
  for (const char* option : {"pca-anchor", "report", "latents", "reconstruction"})
    require(!o.given(option), std::string("sae train: --") + option +
                                  " needs every row on one rank: run it in one process "
                                  "(sae train without mpirun), or on the trained checkpoint");
  require(o.text("select") != "f1",
          "sae train: --select f1 scores every epoch on all the validation rows, which no rank "
          "holds: across ranks the run keeps the epoch of the lowest validation loss "
          "(--select loss)");
}

// sae train as one rank of a data-parallel run: this rank's rows only, the Trainer's sharded
// constructor, and everything written (progress, log, checkpoints, the summary) by rank 0 alone,
// so the files are those one process writes. Every rank runs every collective in the same order.
int train_across_ranks(const Options& o, Backend& backend, Communicator& ranks, bool resume,
                       RunConfig run, const Trainer::State& resumed,
                       std::optional<DecodeMode> asked_decode) {
  const bool writer = ranks.rank() == 0;
  const bool quiet = o.flag_set("quiet") || !writer;
  RowShard shard;
  Counts counts = resume && !o.given("data") && !o.given("rows")
                      ? load_counts_shard_from_checkpoint(run, o.text("resume"), ranks.rank(),
                                                          ranks.size(), shard)
                      : load_counts_shard(o, ranks.rank(), ranks.size(), shard);
  if (!quiet)
    std::cerr << "data: " << counts.source << ": " << shard.total_rows << " rows x "
              << counts.matrix.cols << " columns over " << ranks.size()
              << " ranks (rank 0: rows 0 to " << counts.matrix.rows - 1 << ")\n";
  bind_run_to_counts(o, resume, counts, asked_decode, run);

  Trainer trainer = counts.dense
                        ? Trainer(backend, run.model, run.train, counts.dense_matrix, shard, ranks)
                        : Trainer(backend, run.model, run.train, counts.matrix, shard, ranks);
  if (resume) trainer.restore(resumed);
  if (!quiet)
    std::cerr << "model: " << trainer.network().layout().describe() << "\nbackend "
              << backend_name(backend.kind()) << ": " << backend.description() << "\nranks "
              << ranks.description() << "\ntrain " << trainer.train_rows() << " rows, validation "
              << trainer.validation_rows() << " rows, loss " << loss_name(run.train.loss)
              << (resume ? ", resumed at epoch " + std::to_string(trainer.completed_epochs())
                         : std::string())
              << "\nstep " << trainer.step_execution() << "\n";

  EpochReporting reporting(o, writer, quiet, resume, run.train.epochs);
  const std::string& checkpoint_path = reporting.checkpoint_path();
  FitSteps steps;
  steps.resumed = resume;
  steps.sum_over_ranks = [&ranks](std::vector<double>& sums) {
    ranks.all_reduce_sum(sums.data(), static_cast<std::int64_t>(sums.size()));
  };
  // No rank holds every validation row to score each epoch by: the epoch of the lowest
  // validation loss is kept (check_across_ranks).
  const FitResult fitted = reporting.fit_run(backend, trainer, run, asked_decode, false, steps);
  if (fitted.interrupted) {
    if (writer)
      std::cerr << "\nsae: stopped after step " << trainer.completed_steps()
                << (checkpoint_path.empty() ? std::string()
                                            : "; resume with sae train --resume " + checkpoint_path)
                << "\n";
    return 128 + (stop_signal != 0 ? static_cast<int>(stop_signal) : SIGINT);
  }
  if (writer)
    print_training_summary(
        summarise_fit(fitted, trainer, backend, asked_decode, false, checkpoint_path),
        o.flag_set("json"));
  return 0;
}

// Runs train on this rank, and when it throws on any rank, ends every rank with one line that
// names the rank: the others may be waiting in a collective for it and would never return. The
// last checkpoint written stays as it was (checkpoints are written atomically, by rank 0).
int run_as_rank(Communicator& ranks, const std::function<int()>& train) {
  try {
    return train();
  } catch (const std::exception& error) {
    std::cerr << "sae: error: rank " << ranks.rank() << " of " << ranks.size() << ": "
              << error.what() << "\n"
              << std::flush;
    ranks.abort(1);
  }
  return 1;  // not reached: abort ends the job
}

}  // namespace

int run_train(const Args& args) {
  Options o = train_options();
  if (!o.parse(args)) return 0;
  const auto latents_format = output_option_format(o, "sae train", "latents", kCodeFormats);
  const auto reconstruction_format =
      output_option_format(o, "sae train", "reconstruction", kReconstructionFormats);
  selects_by_f1(o, 0.0f);  // its value checked before anything is read
  // A run resumed from the default file goes on writing it, as the run it continues did.
  std::error_code absent;  // either file missing: not the same file
  const bool resumes_default_file =
      o.given("resume") && std::filesystem::equivalent(o.text("resume"), o.text("out"), absent);
  if (!resumes_default_file) refuse_unasked_overwrite(o, "sae train");
  if (o.flag_set("auto")) return run_recipe_search(o, config_from(o, 1));
  const bool resume = o.given("resume");
  // Every option is checked before the data is read, so that a mistyped one fails at once, in
  // one line, rather than after loading a large file (the width is the data's, known later).
  // A resumed run takes its configuration from the checkpoint, read here too.
  RunConfig run;
  Trainer::State resumed;
  if (resume) {
    check_resume_options(o);
    Checkpoint checkpoint = load_checkpoint(o.text("resume"));
    run = std::move(checkpoint.config);
    resumed = std::move(checkpoint.state);
    if (o.given("epochs")) run.train.epochs = static_cast<int>(o.integer("epochs"));
    if (o.given("loss-every")) run.train.loss_every = o.integer("loss-every");
    if (o.given("on-nan")) run.train.on_nonfinite = parse_nonfinite_policy(o.text("on-nan"));
    apply_placement_options(o, run.train);
  } else {
    config_from(o, 1);
  }
  const bool select_f1 =
      selects_by_f1(o, resume ? run.train.rate_lambda : static_cast<float>(o.real("rate-lambda")));
  // --decode is checked against the loss before the data is read.
  const std::optional<DecodeMode> asked_decode =
      decode_option(o, resume ? run.train.loss : parse_loss(o.text("loss")));
  // Under mpirun, each rank takes its own GPU before the backend opens on it.
  if (launched_by_mpi()) detail::choose_rank_device();
  const auto backend = open_backend(o);
  if (launched_by_mpi()) {
    const std::unique_ptr<Communicator> ranks = detail::make_communicator(*backend);
    if (ranks->size() > 1)
      return run_as_rank(*ranks, [&] {
        check_across_ranks(o);
        return train_across_ranks(o, *backend, *ranks, resume, run, resumed, asked_decode);
      });
  }
  // Without --data or --rows, a resumed run goes on with the data its checkpoint names.
  Counts counts = resume && !o.given("data") && !o.given("rows")
                      ? load_counts_from_checkpoint(run, o.text("resume"))
                      : load_counts(o);
  const bool quiet = o.flag_set("quiet");
  if (!quiet) std::cerr << describe(counts) << "\n";
  require_trainable_rows(counts);

  bind_run_to_counts(o, resume, counts, asked_decode, run);

  Trainer trainer = counts.dense ? Trainer(*backend, run.model, run.train, counts.dense_matrix)
                                 : Trainer(*backend, run.model, run.train, counts.matrix);
  if (resume) trainer.restore(resumed);
  if (!quiet)
    std::cerr << "model: " << trainer.network().layout().describe() << "\nbackend "
              << backend_name(backend->kind()) << ": " << backend->description() << "\n"
              << "train " << trainer.train_rows() << " rows, validation "
              << trainer.validation_rows() << " rows, loss " << loss_name(run.train.loss)
              << ", precision " << matmul_precision_name(run.train.precision)
              << (backend->kind() == BackendKind::cpu &&
                          run.train.precision != MatmulPrecision::fp32
                      ? " (emulated)"
                      : "")
              << (resume ? ", resumed at epoch " + std::to_string(trainer.completed_epochs())
                         : std::string())
              << "\nplacement " << trainer.data_placement() << "\nstep " << trainer.step_execution()
              << "\n";

  EpochReporting reporting(o, true, quiet, resume, run.train.epochs);
  const std::string& checkpoint_path = reporting.checkpoint_path();
  FitSteps steps;
  steps.resumed = resume;
  steps.on_anchor = [quiet](const PcaModel& anchor) {
    if (quiet) return;
    double explained = 0.0;
    for (const double ratio : anchor.explained_variance_ratio()) explained += ratio;
    std::cerr << "anchor: PCA-" << anchor.component_count() << " of the " << anchor.rows
              << " training rows (" << Json::number_fixed(100.0 * explained, 1).dump()
              << " % of their variance)\n";
  };
  ComparisonRow report_row;  // --report: this run as the one row of the report
  steps.threshold_scores = &report_row.threshold_scores;
  if (o.given("report")) steps.decode_detail = &report_row.detail;
  const FitResult fitted =
      reporting.fit_run(*backend, trainer, run, asked_decode, select_f1, steps);
  if (fitted.interrupted) {
    const int signal = stop_signal;
    // A stop after an epoch's last step ends training once that epoch has counted.
    const bool at_epoch_end =
        trainer.completed_steps() == trainer.completed_epochs() * trainer.steps_per_epoch();
    std::cerr << "\nsae: " << (signal == SIGTERM ? "SIGTERM" : "SIGINT") << ": stopped after step "
              << trainer.completed_steps()
              << (at_epoch_end ? " (the end of epoch " + std::to_string(trainer.completed_epochs())
                               : " (epoch " + std::to_string(trainer.completed_epochs() + 1))
              << ")"
              << (checkpoint_path.empty()
                      ? "; no checkpoint was asked for (-o \"\"), nothing was saved\n"
                      : "; " + checkpoint_path + " holds it: resume with sae train --resume " +
                            checkpoint_path + "\n");
    return 128 + signal;
  }
  TrainingSummary summary =
      summarise_fit(fitted, trainer, *backend, asked_decode, select_f1, checkpoint_path);
  TrainedModel model = fitted.model(*backend);
  const DecodeMode decode = *run.decode;
  // PCA with the latent width on the same split, unless turned off or impossible (no
  // validation rows, or a latent wider than the data).
  if (!o.flag_set("no-pca") && summary.metrics.rows > 0 && run.model.latent <= counts.matrix.cols) {
    summary.pca_components = run.model.latent;
    summary.pca = pca_baseline(*backend, counts.matrix, run.model.latent, run.train.val_fraction,
                               run.train.seed, o.given("report") ? kReportSampleRows : 0);
  }
  print_training_summary(summary, o.flag_set("json"));
  if (o.given("report"))
    write_train_report(o, args, run, summary, trainer, model, fitted.state.parameters, decode,
                       counts, *backend, std::move(report_row));

  if (latents_format) write_values(o.text("latents"), *latents_format, model.encode(counts.matrix));
  if (reconstruction_format)
    write_reconstruction(o.text("reconstruction"), *reconstruction_format, model,
                         model.outputs(counts.matrix), decode);
  return 0;
}

TrainPlan plan_training(const Args& args, std::int64_t input_dim) {
  Options o = train_options();
  o.parse(args);
  TrainPlan plan;
  plan.run = config_from(o, input_dim);
  plan.decode = decode_option(o, plan.run.train.loss);
  plan.select_by_f1 = selects_by_f1(o, plan.run.train.rate_lambda);
  plan.backend = parse_backend_choice(o.text("backend"));
  return plan;
}

SearchPlan plan_recipe_search(const Args& args, std::int64_t input_dim) {
  Options o = train_options();
  o.parse(args);
  require(o.flag_set("auto"), "sae train: the recipe search's flags need --auto");
  SearchPlan plan;
  plan.search = recipe_search_config(o, config_from(o, input_dim));
  plan.backend = parse_backend_choice(o.text("backend"));
  return plan;
}

}  // namespace sparseae::cli
