#include "cli/progress.hpp"

#include <chrono>
#include <cmath>
#include <cstdio>

namespace sparseae::cli {

void Progress::step(int epoch, std::int64_t step, std::int64_t steps, double samples_per_second,
                    double loss) {
  if (!live_) return;
  const auto now = std::chrono::steady_clock::now();
  if (step == 1) epoch_start_ = now;
  // Redrawing every step would cost more than a small step; about 50 redraws an epoch suffice.
  const std::int64_t every = steps / 50 + 1;
  if (step != steps && step - last_drawn_step_ < every) return;
  last_drawn_step_ = step;
  constexpr int kWidth = 24;
  const int filled = static_cast<int>(kWidth * step / steps);
  char bar[kWidth + 1];
  for (int i = 0; i < kWidth; ++i) bar[i] = i < filled ? '#' : '.';
  bar[kWidth] = '\0';
  const double seconds_per_step =
      std::chrono::duration<double>(now - epoch_start_).count() / static_cast<double>(step);
  const double steps_left =
      static_cast<double>(steps - step) + static_cast<double>(epochs_ - epoch) * steps;
  char loss_text[32] = "-";
  if (!std::isnan(loss)) std::snprintf(loss_text, sizeof loss_text, "%.5g", loss);
  std::fprintf(stderr,
               "\r\033[Kepoch %d/%d [%s] step %lld/%lld  loss %s  %.0f samples/s  ETA %.0f s",
               epoch, epochs_, bar, static_cast<long long>(step), static_cast<long long>(steps),
               loss_text, samples_per_second, seconds_per_step * steps_left);
  std::fflush(stderr);
}

void Progress::epoch(const EpochReport& report) {
  if (live_) std::fprintf(stderr, "\r\033[K");
  // NaN train loss: no step of the epoch ran in this process (EpochReport::train_loss).
  char train_loss_text[32] = "-";
  if (!std::isnan(report.train_loss))
    std::snprintf(train_loss_text, sizeof train_loss_text, "%.6g", report.train_loss);
  char score_text[32] = "";
  if (std::isfinite(report.score))
    std::snprintf(score_text, sizeof score_text, "  val F1 %.4f", report.score);
  std::fprintf(stderr,
               "epoch %d/%d  train loss %s  val loss %.6g%s%s  %.0f samples/s  %.2f s  lr %.3g\n",
               report.epoch, epochs_, train_loss_text, report.val_loss, score_text,
               report.best ? " (best)" : "", report.samples_per_second, report.seconds,
               report.learning_rate);
  last_drawn_step_ = -1;
}

}  // namespace sparseae::cli
