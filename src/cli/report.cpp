#include "cli/report.hpp"
#include "sparseae/recipe_search.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "core/number_text.hpp"
#include "metrics/metrics_json.hpp"
#include "sparseae/error.hpp"
#include "sparseae/inference.hpp"

namespace sparseae::cli {

namespace {

// The metrics of m, a line each; with beside, a second column with its metrics (the PCA
// baseline's), under a header naming the two.
void print_metrics_table(const ReconstructionMetrics& m,
                         const ReconstructionMetrics* beside = nullptr) {
  if (beside != nullptr) std::printf("  %-27s%12s%12s\n", "", "model", "pca");
  const auto percent = [&](const char* label, double ReconstructionMetrics::*field) {
    std::printf("  %-27s%10.2f %%", label, 100.0 * (m.*field));
    if (beside != nullptr) std::printf("%10.2f %%", 100.0 * (beside->*field));
    std::printf("\n");
  };
  const auto one_number = [](double value) {
    if (std::isfinite(value))
      std::printf("%10.5g", value);
    else
      std::printf("%10s", "n/a");
  };
  const auto number = [&](const char* label, double ReconstructionMetrics::*field) {
    std::printf("  %-27s", label);
    one_number(m.*field);
    if (beside != nullptr) {
      std::printf("  ");
      one_number(beside->*field);
    }
    std::printf("\n");
  };
  using M = ReconstructionMetrics;
  percent("exact-entry F1", &M::exact_f1);
  percent("exact precision", &M::exact_precision);
  percent("exact recall (nz exact)", &M::nonzero_exact_fraction);
  percent("rows exact", &M::row_exact_fraction);
  percent("support precision", &M::support_precision);
  percent("support recall", &M::support_recall);
  percent("support F1", &M::support_f1);
  number("non-zero mae (counts)", &M::nonzero_mae);
  number("mse", &M::mse);
  number("mae", &M::mae);
  number("explained variance", &M::explained_variance);
  number("poisson deviance / entry", &M::poisson_deviance);
  if (std::isfinite(m.nll_bits_per_row)) number("nll bits / row", &M::nll_bits_per_row);
  if (std::isfinite(m.code_bits_per_row)) {
    number("code bits / row (prior)", &M::code_bits_per_row);
    number("code + nll bits / row", &M::description_bits_per_row);
  }
  number("raw csr bytes / row", &M::raw_csr_bytes_per_row);
  if (std::isfinite(m.latent_l0)) {
    number("latent L0 (non-zeros / row)", &M::latent_l0);
    percent("dead latents", &M::dead_latent_fraction);
    percent("dense latents (> 1/2 rows)", &M::dense_latent_fraction);
  }
}

// How the JSON of sae train names a DecodeChoice.
const char* decode_choice_name(DecodeChoice choice) {
  if (choice == DecodeChoice::option) return "--decode";
  return choice == DecodeChoice::loss_default ? "loss default" : "validation exact F1";
}

}  // namespace

Json hurdle_threshold_json(double threshold) { return Json::number_significant(threshold, 6); }

void add_refinement_options(Options& o, bool of_model) {
  const std::string stored = of_model ? "" : " (stored in the checkpoint)";
  o.value("refine-steps", "N", of_model ? "" : "0",
          "refine each row's latent code by N Adam steps on the model's loss of that row, "
          "through the decoder, before decoding it" +
              stored +
              ": closes part of the encoder's gap on rows it was not trained on, at N decoder "
              "passes per row; 0: the encoder's code" +
              (of_model ? " (default: the checkpoint's; a support head's threshold is chosen "
                          "again for other codes, on the checkpoint's validation rows)"
                        : "; --auto tries " + std::to_string(kAutoRefineSteps) +
                              " on its best model and keeps them where they raise its F1"))
      .value("refine-rate", "R", of_model ? "" : detail::number_text(kDefaultRefineRate),
             "the refinement's Adam learning rate, in (0, " + detail::number_text(kMaxRefineRate) +
                 "]" + stored + (of_model ? " (default: the checkpoint's)" : ""));
}

LatentRefinement refinement_option(const Options& o, LatentRefinement base) {
  if (o.given("refine-steps")) base.steps = o.integer("refine-steps");
  if (o.given("refine-rate")) base.rate = o.real("refine-rate");
  try {
    validate_latent_refinement(base, o.command() + ": --refine-steps/--refine-rate");
  } catch (const Error& e) {
    throw UsageError(e.what());
  }
  if (o.given("refine-rate") && base.steps == 0)
    throw UsageError(o.command() + ": --refine-rate sets the rate of refinement steps, and " +
                     (o.given("refine-steps") ? "--refine-steps is 0"
                                              : "there are none: give --refine-steps N"));
  return base;
}

void add_count_model_options(Options& o) {
  o.value("dispersion", "entry|feature", "entry",
          "nb, zinb, hurdle_nb: a dispersion per entry (an output head) or per column (learned "
          "as a bias, shared by every row)")
      .flag("size-factors",
            "losses with a log-mean (poisson, nb, zinb, hurdles): offset it by each row's log "
            "size factor, its total count over the training rows' median")
      .value("input-transform", "none|log1p", "log1p",
             "what the first layer reads: the counts, or log(1 + count) (the default: it "
             "reproduced more counts exactly in 14 of 15 real sets x losses measured, and keeps "
             "counts in the thousands from diverging; bench/real-data/README.md)");
}

void apply_count_model_options(const Options& o, TrainConfig& train) {
  train.loss_params.dispersion = parse_dispersion(o.text("dispersion"));
  train.loss_params.size_factors = o.flag_set("size-factors");
  train.input_transform = parse_input_transform(o.text("input-transform"));
}

void add_training_options(Options& o, const std::string& epochs_help) {
  o.value("backend", "auto|cpu|cuda", "auto", "where to train")
      .value("hidden", "W,W,...", "256,128", "encoder widths between input and latent")
      .value("latent", "W", "32", "latent width")
      .value("epochs", "N", "20", epochs_help)
      .value("batch", "N", "256", "batch size")
      .value("lr", "R", "0.001", "learning rate")
      .value("clip-norm", "N", "1",
             "clip gradients to this global norm (0: off; the default 1 kept the Poisson hurdle "
             "from diverging and reproduced as much or more on 14 of 15 real sets x losses; "
             "bench/real-data/README.md)")
      .value("seed", "N", "1", "seed of the split, the shuffles and the initialisation")
      .value("val-frac", "F", "0.1", "fraction of rows held out for validation");
}

void add_pca_option(Options& o) {
  o.flag("no-pca",
         "do not fit the PCA baseline (as many components as the latent width, on the training "
         "rows) that the report shows beside the model");
}

Json pca_json(const ComparisonRow& pca, std::int64_t components) {
  Json json = Json::object();
  json.set("components", Json::integer(components))
      .set("seconds", Json::number_significant(pca.seconds, 6))
      .set("validation", metrics_json(pca.metrics));
  return json;
}

void add_decode_option(Options& o, const std::string& use, const std::string& otherwise) {
  o.value("decode", "round|mode|mean", "",
          "how outputs become counts" + use +
              ": round, mode (of the predicted distribution; count likelihoods only) or mean "
              "(default: " +
              otherwise + ")");
}

std::optional<DecodeMode> decode_option(const Options& o, LossKind loss) {
  if (!o.given("decode")) return std::nullopt;
  const DecodeMode decode = parse_decode_mode(o.text("decode"));
  check_decode(loss, decode);
  return decode;
}

void print_metrics(const std::string& title, const ReconstructionMetrics& metrics, bool json) {
  if (json) {
    std::printf("%s\n", metrics.to_json().c_str());
    return;
  }
  std::printf("%s (%lld rows), counts decoded by %s:\n", title.c_str(),
              static_cast<long long>(metrics.rows), decode_mode_name(metrics.decode));
  print_metrics_table(metrics);
}

void print_training_summary(const TrainingSummary& s, bool json) {
  std::vector<double> rates;
  for (const EpochReport& r : s.reports) rates.push_back(r.samples_per_second);
  std::sort(rates.begin(), rates.end());
  const double median_rate = rates.empty() ? 0.0 : rates[rates.size() / 2];
  const double train_loss = s.reports.empty() ? 0.0 : s.reports.back().train_loss;
  if (json) {
    Json summary = Json::object();
    summary.set("backend", Json::string(s.backend))
        .set("epochs", Json::integer(s.epochs))
        .set("select", Json::string(s.select))
        .set("median_samples_per_second", Json::number_significant(median_rate, 6))
        .set("train_loss", Json::number_significant(train_loss, 9))
        .set("validation_loss", Json::number_significant(s.validation_loss, 9))
        .set("validation", metrics_json(s.metrics))
        .set("decode", Json::object()
                           .set("name", Json::string(decode_mode_name(s.metrics.decode)))
                           .set("chosen_by", Json::string(decode_choice_name(s.decode_choice))));
    if (s.kept_epoch >= 0) summary.set("kept_epoch", Json::integer(s.kept_epoch));
    if (s.hurdle_threshold >= 0)
      summary.set("hurdle_threshold", hurdle_threshold_json(s.hurdle_threshold));
    if (s.aux_k > 0)
      summary.set("auxk", Json::object()
                              .set("k", Json::integer(s.aux_k))
                              .set("weight", Json::number_significant(s.aux_weight, 6))
                              .set("dead_steps", Json::integer(s.aux_dead_steps)));
    if (s.decoder_norm) summary.set("decoder_norm", Json::boolean(true));
    if (s.latent_refinement.steps > 0)
      summary.set("latent_refinement",
                  Json::object()
                      .set("steps", Json::integer(s.latent_refinement.steps))
                      .set("rate", Json::number_significant(s.latent_refinement.rate, 6)));
    if (s.pca.pca) summary.set("pca", pca_json(s.pca, s.pca_components));
    if (s.alternative_decode_f1 >= 0)
      summary.set("alternative_decode",
                  Json::object()
                      .set("decode", Json::string(decode_mode_name(s.alternative_decode)))
                      .set("exact_f1", Json::number_fixed(s.alternative_decode_f1, 6)));
    std::printf("%s\n", summary.dump().c_str());
    return;
  }
  std::printf("backend     %s\n", s.backend.c_str());
  std::printf("model       %s\n", s.model.c_str());
  if (s.aux_k > 0)
    std::printf("auxk        %lld dead latents a row, weight %g, dead after %lld batches\n",
                static_cast<long long>(s.aux_k), static_cast<double>(s.aux_weight),
                static_cast<long long>(s.aux_dead_steps));
  if (s.decoder_norm) std::printf("decoder     unit-norm columns (--decoder-norm)\n");
  if (s.latent_refinement.steps > 0)
    std::printf(
        "codes       refined by %lld Adam steps of rate %g on each row's loss "
        "(--refine-steps)\n",
        static_cast<long long>(s.latent_refinement.steps), s.latent_refinement.rate);
  std::printf("epochs      %d (median %.0f samples/s)\n", s.epochs, median_rate);
  // NaN: the last epoch ran no step in this process (EpochReport::train_loss).
  char train_loss_text[32] = "-";
  if (!std::isnan(train_loss))
    std::snprintf(train_loss_text, sizeof train_loss_text, "%.6g", train_loss);
  std::printf("loss        train %s, validation %.6g\n", train_loss_text, s.validation_loss);
  const char* selected_by =
      s.select == "f1" ? "the best validation exact F1" : "the lowest validation loss";
  if (s.kept_epoch == 0)
    std::printf("kept        the start, %s (--select)\n", selected_by);
  else if (s.kept_epoch > 0)
    std::printf("kept        epoch %d, %s (--select)\n", s.kept_epoch, selected_by);
  if (!s.checkpoint.empty()) std::printf("checkpoint  %s\n", s.checkpoint.c_str());
  if (s.hurdle_threshold >= 0)
    std::printf("hurdle      support threshold %.2f (best exact-match F1 on the validation rows)\n",
                s.hurdle_threshold);
  if (s.pca.pca)
    std::printf(
        "pca         %lld components fitted on the training rows in %.2f s, counts decoded by "
        "round (--no-pca: none)\n",
        static_cast<long long>(s.pca_components), s.pca.seconds);
  if (s.decode_choice == DecodeChoice::validation_f1)
    std::printf(
        "decode      %s: validation exact-entry F1 %.2f %% against %.2f %% by %s (stored in the "
        "checkpoint; --decode to choose)\n",
        decode_mode_name(s.metrics.decode), 100.0 * s.metrics.exact_f1,
        100.0 * s.alternative_decode_f1, decode_mode_name(s.alternative_decode));
  std::printf("validation rows (%lld), counts decoded by %s:\n",
              static_cast<long long>(s.metrics.rows), decode_mode_name(s.metrics.decode));
  print_metrics_table(s.metrics, s.pca.pca ? &s.pca.metrics : nullptr);
  if (s.decode_choice == DecodeChoice::option && s.alternative_decode_f1 >= 0)
    std::printf("decoded by %s instead, the exact-entry F1 would be %.2f %% (--decode %s)\n",
                decode_mode_name(s.alternative_decode), 100.0 * s.alternative_decode_f1,
                decode_mode_name(s.alternative_decode));
  if (s.pca.pca && !s.pca_anchored && !s.rate_aware && s.pca.metrics.exact_f1 > s.metrics.exact_f1)
    std::printf(
        "hint        pca reproduces more entries exactly than this model: --pca-anchor starts at "
        "pca and keeps its best validation F1 from there; --auto searches recipes with it\n");
}

void write_reconstruction(const std::string& path, MatrixFormat format, const TrainedModel& model,
                          const HostDense& outputs, DecodeMode decode) {
  if (format == MatrixFormat::npy)
    write_npy(path, model.values_from_outputs(outputs));
  else
    write_counts(path, format, model.counts_from_outputs(outputs, decode));
}

}  // namespace sparseae::cli
