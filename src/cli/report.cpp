#include "cli/report.hpp"

#include <algorithm>
#include <cstdio>

#include "sparseae/error.hpp"
#include "sparseae/inference.hpp"

namespace sparseae::cli {

namespace {

bool ends_with(const std::string& text, const std::string& suffix) {
  return text.size() >= suffix.size() &&
         text.compare(text.size() - suffix.size(), suffix.size(), suffix) == 0;
}

void print_metrics_table(const ReconstructionMetrics& m) {
  std::printf("  non-zero entries exact   %8.2f %%\n", 100.0 * m.nonzero_exact_fraction);
  std::printf("  rows exact               %8.2f %%\n", 100.0 * m.row_exact_fraction);
  std::printf("  support precision        %8.2f %%\n", 100.0 * m.support_precision);
  std::printf("  support recall           %8.2f %%\n", 100.0 * m.support_recall);
  std::printf("  mse                      %10.5g\n", m.mse);
  std::printf("  mae                      %10.5g\n", m.mae);
}

}  // namespace

void print_metrics(const std::string& title, const ReconstructionMetrics& metrics, bool json) {
  if (json) {
    std::printf("%s\n", metrics.to_json().c_str());
    return;
  }
  std::printf("%s (%lld rows):\n", title.c_str(), static_cast<long long>(metrics.rows));
  print_metrics_table(metrics);
}

void print_training_summary(const TrainingSummary& s, bool json) {
  std::vector<double> rates;
  for (const EpochReport& r : s.reports) rates.push_back(r.samples_per_second);
  std::sort(rates.begin(), rates.end());
  const double median_rate = rates.empty() ? 0.0 : rates[rates.size() / 2];
  const double train_loss = s.reports.empty() ? 0.0 : s.reports.back().train_loss;
  if (json) {
    std::printf(
        "{\"backend\": \"%s\", \"epochs\": %d, \"median_samples_per_second\": %.6g, "
        "\"train_loss\": %.9g, \"validation_loss\": %.9g, \"validation\": %s}\n",
        s.backend.c_str(), s.epochs, median_rate, train_loss, s.validation_loss,
        s.metrics.to_json().c_str());
    return;
  }
  std::printf("backend     %s\n", s.backend.c_str());
  std::printf("model       %s\n", s.model.c_str());
  std::printf("epochs      %d (median %.0f samples/s)\n", s.epochs, median_rate);
  std::printf("loss        train %.6g, validation %.6g\n", train_loss, s.validation_loss);
  if (!s.checkpoint.empty()) std::printf("checkpoint  %s\n", s.checkpoint.c_str());
  std::printf("validation rows (%lld), reconstruction rounded to counts:\n",
              static_cast<long long>(s.metrics.rows));
  print_metrics_table(s.metrics);
}

void write_reconstruction(const std::string& path, const HostDense& reconstruction) {
  if (ends_with(path, ".npy")) {
    write_npy(path, reconstruction);
  } else if (ends_with(path, ".mtx")) {
    write_matrix_market(path, round_to_counts(reconstruction), true);
  } else {
    throw Error(path + ": reconstructions are written as .mtx (rounded counts) or .npy (values)");
  }
}

}  // namespace sparseae::cli
