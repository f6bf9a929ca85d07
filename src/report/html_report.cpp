#include "report/html_report.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>
#include <limits>

#include "io/atomic_file.hpp"
#include "sparseae/ops.hpp"

namespace sparseae::report {

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// Colours told apart by most readers, one per run (repeating after eight).
constexpr const char* kPalette[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e",
                                    "#9467bd", "#8c564b", "#e377c2", "#17becf"};

const char* colour(std::size_t index) {
  return kPalette[index % (sizeof kPalette / sizeof kPalette[0])];
}

std::string format(const char* spec, double value) {
  if (!std::isfinite(value)) return "-";
  char text[64];
  std::snprintf(text, sizeof text, spec, value);
  return text;
}

std::string percent(double fraction) { return format("%.2f", 100.0 * fraction); }

// A coordinate in the SVG, to a tenth of a pixel.
std::string px(double value) { return format("%.1f", value); }

struct Series {
  std::string name;
  std::string colour;
  bool dashed = false;
  std::vector<std::pair<double, double>> points;  // (x, y); a non-finite y breaks the line
};

struct Axis {
  double low = 0;
  double high = 1;
};

Axis axis_of(const std::vector<Series>& series, bool use_x, bool from_zero) {
  double low = std::numeric_limits<double>::infinity();
  double high = -low;
  for (const Series& s : series)
    for (const auto& [x, y] : s.points) {
      const double v = use_x ? x : y;
      if (!std::isfinite(v)) continue;
      low = std::min(low, v);
      high = std::max(high, v);
    }
  if (!std::isfinite(low)) return {0, 1};
  if (from_zero) low = std::min(low, 0.0);
  if (high - low <= 0) {
    const double pad = low != 0 ? std::abs(low) * 0.05 : 0.5;
    low -= pad;
    high += pad;
  }
  return {low, high};
}

// Ticks at round values: a step of 1, 2 or 5 times a power of ten that cuts the axis into
// about five intervals (a whole step where the values are whole numbers), the axis widened to
// the ticks around its ends.
struct Ticks {
  Axis axis;
  double step = 1;
  long count() const { return std::lround((axis.high - axis.low) / step); }
  double at(long i) const {
    const double value = axis.low + step * static_cast<double>(i);
    return std::abs(value) < step * 1e-9 ? 0.0 : value;  // no "-0" or "1e-17" at zero
  }
};

Ticks round_ticks(Axis axis, bool whole) {
  const double raw = (axis.high - axis.low) / 5.0;
  const double power = std::pow(10.0, std::floor(std::log10(raw)));
  const double mantissa = raw / power;
  double step = power * (mantissa < 1.5 ? 1.0 : mantissa < 3.5 ? 2.0 : mantissa < 7.5 ? 5.0 : 10.0);
  if (whole) step = std::max(1.0, std::round(step));
  // The tolerance keeps an end that lies on a tick (0, 1) from moving a whole step out.
  return {{std::floor(axis.low / step + 1e-9) * step, std::ceil(axis.high / step - 1e-9) * step},
          step};
}

// A line chart with axes, round ticks (round_ticks), and a legend to the right of the plot.
// integer_x: the x values are whole numbers (epochs, columns): ticks on whole numbers.
std::string line_chart(const std::string& label, const std::string& x_label,
                       const std::string& y_label, const std::vector<Series>& series, Axis x_axis,
                       Axis y_axis, bool integer_x) {
  const Ticks x_ticks = round_ticks(x_axis, integer_x);
  const Ticks y_ticks = round_ticks(y_axis, false);
  x_axis = x_ticks.axis;
  y_axis = y_ticks.axis;
  const double width = 760, height = 300;
  const double left = 70, right = 560, top = 20, bottom = 250;
  const auto sx = [&](double x) {
    return left + (x - x_axis.low) / (x_axis.high - x_axis.low) * (right - left);
  };
  const auto sy = [&](double y) {
    return bottom - (y - y_axis.low) / (y_axis.high - y_axis.low) * (bottom - top);
  };
  std::string svg = "<svg class=\"chart\" role=\"img\" aria-label=\"" + html_escape(label) +
                    "\" width=\"" + px(width) + "\" height=\"" + px(height) + "\" viewBox=\"0 0 " +
                    px(width) + " " + px(height) + "\">\n";
  svg += "<rect x=\"0\" y=\"0\" width=\"" + px(width) + "\" height=\"" + px(height) +
         "\" fill=\"#ffffff\"/>\n";
  for (long i = 0; i <= y_ticks.count(); ++i) {
    const double fy = y_ticks.at(i);
    svg += "<line x1=\"" + px(left) + "\" y1=\"" + px(sy(fy)) + "\" x2=\"" + px(right) +
           "\" y2=\"" + px(sy(fy)) + "\" stroke=\"#e0e0e0\"/>\n";
    svg += "<text x=\"" + px(left - 6) + "\" y=\"" + px(sy(fy) + 4) + "\" text-anchor=\"end\">" +
           format("%.6g", fy) + "</text>\n";
  }
  for (long i = 0; i <= x_ticks.count(); ++i) {
    const double fx = x_ticks.at(i);
    svg += "<text x=\"" + px(sx(fx)) + "\" y=\"" + px(bottom + 16) + "\" text-anchor=\"middle\">" +
           format("%.6g", fx) + "</text>\n";
  }
  svg += "<line x1=\"" + px(left) + "\" y1=\"" + px(bottom) + "\" x2=\"" + px(right) + "\" y2=\"" +
         px(bottom) + "\" stroke=\"#333333\"/>\n";
  svg += "<line x1=\"" + px(left) + "\" y1=\"" + px(top) + "\" x2=\"" + px(left) + "\" y2=\"" +
         px(bottom) + "\" stroke=\"#333333\"/>\n";
  svg += "<text x=\"" + px((left + right) / 2) + "\" y=\"" + px(bottom + 36) +
         "\" text-anchor=\"middle\">" + html_escape(x_label) + "</text>\n";
  svg += "<text transform=\"translate(16 " + px((top + bottom) / 2) +
         ") rotate(-90)\" text-anchor=\"middle\">" + html_escape(y_label) + "</text>\n";
  for (std::size_t i = 0; i < series.size(); ++i) {
    const Series& s = series[i];
    // Many points (a line per column): thinner and see-through, so overlapping runs show.
    const bool dense = s.points.size() > 100;
    const std::string style = "\" fill=\"none\" stroke=\"" + s.colour + "\" stroke-width=\"" +
                              (dense ? "1.1\" stroke-opacity=\"0.7\"" : "1.6\"") +
                              (s.dashed ? " stroke-dasharray=\"6 4\"" : "") + "/>\n";
    std::string points;
    const auto flush = [&] {
      if (!points.empty()) svg += "<polyline points=\"" + points + style;
      points.clear();
    };
    for (const auto& [x, y] : s.points) {
      if (!std::isfinite(y)) {
        flush();
        continue;
      }
      points += (points.empty() ? "" : " ") + px(sx(x)) + "," + px(sy(y));
    }
    flush();
    if (s.points.size() == 1 && std::isfinite(s.points[0].second))  // a lone point: a dot
      svg += "<circle cx=\"" + px(sx(s.points[0].first)) + "\" cy=\"" + px(sy(s.points[0].second)) +
             "\" r=\"3\" fill=\"" + s.colour + "\"/>\n";
    const double ly = top + 8 + 18.0 * static_cast<double>(i);
    svg += "<line x1=\"" + px(right + 16) + "\" y1=\"" + px(ly) + "\" x2=\"" + px(right + 40) +
           "\" y2=\"" + px(ly) + "\" stroke=\"" + s.colour + "\" stroke-width=\"2\"" +
           (s.dashed ? " stroke-dasharray=\"6 4\"" : "") + "/>\n";
    svg += "<text x=\"" + px(right + 46) + "\" y=\"" + px(ly + 4) + "\">" + html_escape(s.name) +
           "</text>\n";
  }
  return svg + "</svg>\n";
}

std::string run_name(const ComparisonRow& run) {
  if (run.pca) return "pca";
  std::string name = loss_name(run.loss);
  if (run.scale == ScaleMode::max) name += " (scale max)";
  return name;
}

// A row per run under header, its name first: two tables, so that each fits a page's width.
std::string run_table(const std::vector<ComparisonRow>& runs, const std::string& header,
                      const std::function<std::vector<std::string>(const ComparisonRow&)>& cells) {
  std::string html = "<table>\n<thead><tr><th>loss</th>" + header + "</tr></thead>\n<tbody>\n";
  for (const ComparisonRow& run : runs) {
    html += "<tr><th scope=\"row\">" + html_escape(run_name(run)) + "</th>";
    for (const std::string& cell : cells(run)) html += "<td>" + html_escape(cell) + "</td>";
    html += "</tr>\n";
  }
  return html + "</tbody>\n</table>\n";
}

std::string metrics_tables(const std::vector<ComparisonRow>& runs) {
  return run_table(runs,
                   "<th>decode</th><th>exact-entry F1 %</th><th>exact precision %</th>"
                   "<th>non-zeros exact (exact recall) %</th><th>rows exact %</th>"
                   "<th>support P %</th><th>support R %</th><th>support F1 %</th>",
                   [](const ComparisonRow& run) -> std::vector<std::string> {
                     const ReconstructionMetrics& m = run.metrics;
                     return {decode_mode_name(run.decode),  percent(m.exact_f1),
                             percent(m.exact_precision),    percent(m.nonzero_exact_fraction),
                             percent(m.row_exact_fraction), percent(m.support_precision),
                             percent(m.support_recall),     percent(m.support_f1)};
                   }) +
         run_table(runs,
                   "<th>non-zero MAE</th><th>MSE</th><th>explained variance</th>"
                   "<th>Poisson deviance</th><th>NLL bits/row</th><th>seconds</th>"
                   "<th>samples/s</th>",
                   [](const ComparisonRow& run) -> std::vector<std::string> {
                     const ReconstructionMetrics& m = run.metrics;
                     return {
                         format("%.4g", m.nonzero_mae),         format("%.4g", m.mse),
                         format("%.4g", m.explained_variance),  format("%.4g", m.poisson_deviance),
                         format("%.4g", m.nll_bits_per_row),    format("%.2f", run.seconds),
                         format("%.0f", run.samples_per_second)};
                   });
}

std::string training_curves(const ComparisonRow& run, std::size_t index) {
  Series train{"train", colour(index), false, {}};
  Series validation{"validation", colour(index), true, {}};
  for (const EpochReport& e : run.epochs) {
    train.points.emplace_back(e.epoch, e.train_loss);
    validation.points.emplace_back(e.epoch, e.val_loss);
  }
  const std::vector<Series> series{train, validation};
  Axis x = axis_of(series, true, false);
  if (run.epochs.size() <= 1) x = {0, 2};
  return "<figure>\n" +
         line_chart("training curves of " + run_name(run), "epoch",
                    std::string(loss_name(run.loss)) + " loss", series, x,
                    axis_of(series, false, false), true) +
         "<figcaption>" + html_escape(run_name(run)) +
         ": mean loss per epoch, train (solid) and validation (dashed).</figcaption>\n"
         "</figure>\n";
}

// Columns ranked by how many validation rows hold them non-zero, most often first, in bins of
// equal width: each run's fraction of the bin's non-zero entries that come back exactly. Ranked
// by the first run's counts: every run of a report is measured on the same rows.
std::string column_exactness(const std::vector<ComparisonRow>& runs) {
  const std::vector<std::int64_t>& nonzeros = runs.front().detail.column_nonzeros;
  std::vector<std::size_t> ranked;
  for (std::size_t c = 0; c < nonzeros.size(); ++c)
    if (nonzeros[c] > 0) ranked.push_back(c);
  std::stable_sort(ranked.begin(), ranked.end(),
                   [&](std::size_t a, std::size_t b) { return nonzeros[a] > nonzeros[b]; });
  const std::size_t columns = ranked.size();
  const std::size_t bin = std::max<std::size_t>(1, (columns + 31) / 32);
  std::vector<Series> series;
  for (std::size_t i = 0; i < runs.size(); ++i) {
    const ReconstructionDetail& d = runs[i].detail;
    Series s{run_name(runs[i]), colour(i), runs[i].pca, {}};
    if (d.column_nonzeros.size() != nonzeros.size()) continue;
    for (std::size_t first = 0; first < columns; first += bin) {  // a step line per bin
      const std::size_t last = std::min(columns, first + bin);
      double exact = 0, all = 0;
      for (std::size_t r = first; r < last; ++r) {
        exact += static_cast<double>(d.column_exact_nonzeros[ranked[r]]);
        all += static_cast<double>(d.column_nonzeros[ranked[r]]);
      }
      s.points.emplace_back(static_cast<double>(first), exact / all);
      s.points.emplace_back(static_cast<double>(last), exact / all);
    }
    series.push_back(std::move(s));
  }
  const std::size_t never = nonzeros.size() - columns;
  return "<figure>\n" +
         line_chart("exactness per column", "columns, most often non-zero first",
                    "non-zeros exact (fraction)", series,
                    {0, static_cast<double>(std::max<std::size_t>(columns, 1))}, {0, 1}, true) +
         "<figcaption>Columns ranked by how many validation rows hold them non-zero, most often "
         "first, in bins of " +
         std::to_string(bin) + (bin == 1 ? " column" : " columns") +
         ": the fraction of the bin's non-zero entries that each model reproduces exactly "
         "(PCA dashed)." +
         (never > 0 ? " " + std::to_string(never) + (never == 1 ? " column is" : " columns are") +
                          " zero in every validation row and left out."
                    : std::string()) +
         "</figcaption>\n</figure>\n";
}

// Each coder's bytes per row of the validation rows, smallest first.
std::string size_table(std::vector<LosslessSizeRow> sizes) {
  std::stable_sort(sizes.begin(), sizes.end(),
                   [](const LosslessSizeRow& a, const LosslessSizeRow& b) {
                     return a.bytes_per_row < b.bytes_per_row;
                   });
  std::string html =
      "<table>\n<thead><tr><th class=\"text\">coder</th><th>bytes per row</th>"
      "<th class=\"text\">detail</th></tr></thead>\n"
      "<tbody>\n";
  for (const LosslessSizeRow& row : sizes)
    html += "<tr><th scope=\"row\">" + html_escape(row.coder) + "</th><td>" +
            format("%.2f", row.bytes_per_row) + "</td><td class=\"text\">" +
            html_escape(row.detail) + "</td></tr>\n";
  return html +
         "</tbody>\n</table>\n<p class=\"note\">The validation rows compressed losslessly in "
         "memory, as sae compress stores them (every file decompresses to the exact counts); sae "
         "compress --stats adds gzip, zstd and xz of the .mtx and PCA.</p>\n";
}

// Per run, the entries by true and decoded count class, each row of the table in percent of its
// entries: the diagonal is what comes back exactly.
std::string confusion_tables(const std::vector<ComparisonRow>& runs) {
  static const char* const kClassNames[kCountClasses] = {"0", "1", "2", "3", "4+"};
  std::string html;
  for (const ComparisonRow& run : runs) {
    const std::vector<std::int64_t>& cells = run.detail.count_confusion;
    if (cells.size() != static_cast<std::size_t>(kCountClasses * kCountClasses)) continue;
    html += "<table class=\"confusion\">\n<caption>" + html_escape(run_name(run)) +
            ", decoded by " + decode_mode_name(run.decode) +
            "</caption>\n<thead><tr><th>true \\ decoded</th>";
    for (const char* name : kClassNames) html += std::string("<th>") + name + "</th>";
    html += "<th>entries</th></tr></thead>\n<tbody>\n";
    for (int t = 0; t < kCountClasses; ++t) {
      std::int64_t entries = 0;
      for (int k = 0; k < kCountClasses; ++k) entries += cells[kCountClasses * t + k];
      html += std::string("<tr><th scope=\"row\">") + kClassNames[t] + "</th>";
      for (int k = 0; k < kCountClasses; ++k) {
        const auto share = entries > 0 ? static_cast<double>(cells[kCountClasses * t + k]) /
                                             static_cast<double>(entries)
                                       : kNaN;
        html += (k == t ? "<td class=\"hit\">" : "<td>") + percent(share) + "</td>";
      }
      html += "<td>" + std::to_string(entries) + "</td></tr>\n";
    }
    html += "</tbody>\n</table>\n";
  }
  if (html.empty()) return html;
  return "<div class=\"tables\">\n" + html +
         "</div>\n<p class=\"note\">Validation entries by their true count (rows) and the "
         "count the model returns (columns), in percent of the row's entries; the diagonal "
         "(shaded) comes back exactly, except that 4+ also holds a large count returned as "
         "another large one.</p>\n";
}

// A hurdle run's exact F1, precision and recall at each support threshold its mode decode was
// chosen from.
std::string threshold_chart(const ComparisonRow& run, std::size_t index) {
  Series f1{"exact F1", colour(index), false, {}};
  Series precision{"exact precision", "#555555", true, {}};
  Series recall{"exact recall", "#999999", false, {}};
  for (const ThresholdScore& score : run.threshold_scores) {
    f1.points.emplace_back(score.threshold, score.exact_f1);
    precision.points.emplace_back(score.threshold, score.exact_precision);
    recall.points.emplace_back(score.threshold, score.exact_recall);
  }
  return "<figure>\n" +
         line_chart("hurdle threshold of " + run_name(run), "support threshold",
                    "on the validation rows", {f1, precision, recall}, {0, 1}, {0, 1}, false) +
         "<figcaption>" + html_escape(run_name(run)) +
         ", decoded by its mode: an entry is non-zero where its support probability reaches the "
         "threshold. Chosen: " +
         format("%.2f", run.hurdle_threshold) +
         ", the best exact F1 on the validation rows.</figcaption>\n</figure>\n";
}

// The first two principal axes of codes (rows x width, row-major), by power iteration on their
// covariance, and each row's coordinates on them; the share of the variance each axis holds.
struct Plane {
  std::vector<std::pair<double, double>> points;
  double share[2] = {0, 0};
};

Plane principal_plane(const std::vector<float>& codes, std::size_t width) {
  const std::size_t rows = codes.size() / width;
  const auto n = static_cast<double>(rows);
  std::vector<double> mean(width, 0.0), covariance(width * width, 0.0);
  for (std::size_t r = 0; r < rows; ++r)
    for (std::size_t j = 0; j < width; ++j) mean[j] += codes[r * width + j] / n;
  for (std::size_t r = 0; r < rows; ++r)
    for (std::size_t a = 0; a < width; ++a)
      for (std::size_t b = 0; b < width; ++b)
        covariance[a * width + b] +=
            (codes[r * width + a] - mean[a]) * (codes[r * width + b] - mean[b]) / n;
  double trace = 0;
  for (std::size_t j = 0; j < width; ++j) trace += covariance[j * width + j];
  Plane plane;
  std::vector<std::vector<double>> axes;
  for (int axis = 0; axis < 2 && axis < static_cast<int>(width); ++axis) {
    // Not orthogonal to any axis in practice: every entry differs.
    std::vector<double> v(width), next(width);
    for (std::size_t j = 0; j < width; ++j) v[j] = 1.0 + 0.1 * static_cast<double>(j);
    double value = 0;
    for (int iteration = 0; iteration < 300; ++iteration) {
      for (const std::vector<double>& u : axes) {  // deflation: stay orthogonal to axis 1
        double along = 0;
        for (std::size_t j = 0; j < width; ++j) along += u[j] * v[j];
        for (std::size_t j = 0; j < width; ++j) v[j] -= along * u[j];
      }
      double norm = 0;
      for (std::size_t a = 0; a < width; ++a) {
        next[a] = 0;
        for (std::size_t b = 0; b < width; ++b) next[a] += covariance[a * width + b] * v[b];
        norm += next[a] * next[a];
      }
      norm = std::sqrt(norm);
      if (!(norm > 0)) break;
      value = norm;
      for (std::size_t j = 0; j < width; ++j) v[j] = next[j] / norm;
    }
    plane.share[axis] = trace > 0 ? value / trace : 0.0;
    axes.push_back(v);
  }
  for (std::size_t r = 0; r < rows; ++r) {
    double c[2] = {0, 0};
    for (std::size_t axis = 0; axis < axes.size(); ++axis)
      for (std::size_t j = 0; j < width; ++j)
        c[axis] += (codes[r * width + j] - mean[j]) * axes[axis][j];
    plane.points.emplace_back(c[0], c[1]);
  }
  return plane;
}

// From light yellow (t = 0) to dark purple (t = 1): the ends of viridis, readable on white.
std::string ramp(double t) {
  const auto mix = [&](int a, int b) {
    return static_cast<int>(std::lround(a + (b - a) * std::clamp(t, 0.0, 1.0)));
  };
  char text[8];
  std::snprintf(text, sizeof text, "#%02x%02x%02x", mix(0xfd, 0x44), mix(0xe7, 0x01),
                mix(0x25, 0x54));
  return text;
}

// A run's codes of the first validation rows on the plane of their two principal axes, each
// row a dot coloured by its total count.
std::string latent_scatter(const ComparisonRow& run) {
  const std::size_t width = run.detail.latent_firing.size();
  const std::vector<double>& totals = run.detail.latent_sample_totals;
  if (width == 0 || totals.size() < 2 || run.detail.latent_sample.size() != totals.size() * width)
    return "";
  const Plane plane = principal_plane(run.detail.latent_sample, width);
  const auto [low_total, high_total] = std::minmax_element(totals.begin(), totals.end());
  const double low = std::log1p(*low_total), high = std::log1p(*high_total);
  std::vector<Series> axes_only{{"", "", false, {}}};
  for (const auto& point : plane.points) axes_only[0].points.push_back(point);
  const Axis x = axis_of(axes_only, true, false), y = axis_of(axes_only, false, false);
  const double size = 320, margin = 12;
  const auto sx = [&](double v) { return margin + (v - x.low) / (x.high - x.low) * size; };
  const auto sy = [&](double v) { return margin + size - (v - y.low) / (y.high - y.low) * size; };
  const std::string extent = px(size + 2 * margin);
  std::string svg = "<svg class=\"scatter\" role=\"img\" aria-label=\"latent codes of " +
                    html_escape(run_name(run)) + "\" width=\"" + extent + "\" height=\"" + extent +
                    "\" viewBox=\"0 0 " + extent + " " + extent +
                    "\">\n<rect x=\"0\" y=\"0\" width=\"" + extent + "\" height=\"" + extent +
                    "\" fill=\"#ffffff\" stroke=\"#cccccc\"/>\n";
  for (std::size_t r = 0; r < plane.points.size(); ++r) {
    const double t = high > low ? (std::log1p(totals[r]) - low) / (high - low) : 0.5;
    svg += "<circle cx=\"" + px(sx(plane.points[r].first)) + "\" cy=\"" +
           px(sy(plane.points[r].second)) + "\" r=\"2\" fill=\"" + ramp(t) +
           "\" fill-opacity=\"0.8\"/>\n";
  }
  return "<figure class=\"scatter\">\n" + svg + "</svg>\n<figcaption>" +
         html_escape(run_name(run)) + ": the codes of " + std::to_string(totals.size()) +
         " validation rows on their first two principal axes (" +
         format("%.0f", 100 * plane.share[0]) + " % and " + format("%.0f", 100 * plane.share[1]) +
         " % of the codes' variance); colour: the row's total count, from " +
         format("%.0f", *low_total) + " (light) to " + format("%.0f", *high_total) +
         " (dark), on a log scale.</figcaption>\n</figure>\n";
}

// Each run's latents by how often they fire, most often first: a sparse code's dead latents are
// the tail at 0, its dense ones the head above 1/2.
std::string latent_firing_chart(const std::vector<ComparisonRow>& runs) {
  std::vector<Series> series;
  for (std::size_t i = 0; i < runs.size(); ++i) {
    std::vector<double> firing = runs[i].detail.latent_firing;
    if (firing.empty()) continue;
    std::sort(firing.begin(), firing.end(), std::greater<>());
    Series s{run_name(runs[i]), colour(i), false, {}};
    for (std::size_t j = 0; j < firing.size(); ++j)
      s.points.emplace_back(static_cast<double>(j + 1), firing[j]);
    series.push_back(std::move(s));
  }
  if (series.empty()) return "";
  return "<figure>\n" +
         line_chart("latent firing frequencies", "latent, most often firing first",
                    "fraction of rows where it is non-zero", series, axis_of(series, true, false),
                    {0, 1}, true) +
         "<figcaption>Per latent of the code: the fraction of validation rows whose code holds it "
         "non-zero, latents sorted from the most to the least often firing. Latents at 0 are "
         "dead; above 1/2, dense.</figcaption>\n</figure>\n";
}

std::string row_error_histogram(const std::vector<ComparisonRow>& runs) {
  std::int64_t most = 0;
  for (const ComparisonRow& run : runs)
    for (std::int64_t wrong : run.detail.row_wrong_entries) most = std::max(most, wrong);
  // At most 40 bins, each of a whole number of entries.
  const std::int64_t bin = std::max<std::int64_t>(1, (most + 40) / 40);
  const std::int64_t bins = most / bin + 1;
  std::vector<Series> series;
  for (std::size_t i = 0; i < runs.size(); ++i) {
    const std::vector<std::int64_t>& wrong = runs[i].detail.row_wrong_entries;
    std::vector<double> counts(static_cast<std::size_t>(bins), 0.0);
    for (std::int64_t w : wrong) counts[static_cast<std::size_t>(w / bin)] += 1;
    Series s{run_name(runs[i]), colour(i), false, {}};
    for (std::int64_t b = 0; b < bins; ++b) {  // a step line: flat across each bin
      const double fraction =
          wrong.empty() ? 0.0 : counts[static_cast<std::size_t>(b)] / wrong.size();
      s.points.emplace_back(static_cast<double>(b * bin), fraction);
      s.points.emplace_back(static_cast<double>((b + 1) * bin), fraction);
    }
    series.push_back(std::move(s));
  }
  return "<figure>\n" +
         line_chart("wrong entries per row", "wrong entries in the row (zeros included)",
                    "fraction of rows", series, {0, static_cast<double>(bins * bin)},
                    axis_of(series, false, true), true) +
         "<figcaption>How many entries of each validation row come back wrong, in bins of " +
         std::to_string(bin) + (bin == 1 ? " entry" : " entries") +
         "; the bin at 0 holds the rows reproduced exactly.</figcaption>\n</figure>\n";
}

std::vector<float> dense_row(const HostCsr& m, std::int64_t r) {
  std::vector<float> row(static_cast<std::size_t>(m.cols), 0.0f);
  if (r >= m.rows) return row;
  for (RowOffset k = m.row_offsets[r]; k < m.row_offsets[r + 1]; ++k)
    row[m.col_indices[k]] = m.values[k];
  return row;
}

// One image: side x side grey squares, white for 0 and black for the original row's largest
// value (brighter values are clipped to it).
std::string image(const std::vector<float>& values, std::int64_t side, double x0, double y0,
                  double cell, float top) {
  std::string svg = "<rect x=\"" + px(x0) + "\" y=\"" + px(y0) + "\" width=\"" + px(cell * side) +
                    "\" height=\"" + px(cell * side) + "\" fill=\"#ffffff\" stroke=\"#999999\"/>\n";
  for (std::int64_t i = 0; i < side * side; ++i) {
    const float v = values[static_cast<std::size_t>(i)];
    if (v <= 0) continue;
    const int grey = 255 - static_cast<int>(std::lround(255.0 * std::min(1.0f, v / top)));
    char fill[8];
    std::snprintf(fill, sizeof fill, "#%02x%02x%02x", grey, grey, grey);
    svg += "<rect x=\"" + px(x0 + cell * static_cast<double>(i % side)) + "\" y=\"" +
           px(y0 + cell * static_cast<double>(i / side)) + "\" width=\"" + px(cell) +
           "\" height=\"" + px(cell) + "\" fill=\"" + fill + "\"/>\n";
  }
  return svg;
}

std::string image_grid(const HtmlReport& report) {
  const std::int64_t side = image_side(report.sample_originals.cols);
  const std::int64_t samples = report.sample_originals.rows;
  const double cell = std::max(3.0, 84.0 / static_cast<double>(side));
  const double box = cell * static_cast<double>(side), gap = 12, label = 18, head = 40;
  const double width = label + (box + gap) * static_cast<double>(report.runs.size() + 1);
  const double height = head + (box + gap) * static_cast<double>(samples);
  std::string svg =
      "<svg class=\"grid\" role=\"img\" aria-label=\"originals and "
      "reconstructions\" width=\"" +
      px(width) + "\" height=\"" + px(height) + "\" viewBox=\"0 0 " + px(width) + " " + px(height) +
      "\">\n<rect x=\"0\" y=\"0\" width=\"" + px(width) + "\" height=\"" + px(height) +
      "\" fill=\"#ffffff\"/>\n";
  const auto column_x = [&](std::size_t column) {
    return label + (box + gap) * static_cast<double>(column);
  };
  svg += "<text x=\"" + px(column_x(0) + box / 2) + "\" y=\"" + px(head - 14) +
         "\" text-anchor=\"middle\">original</text>\n";
  for (std::size_t i = 0; i < report.runs.size(); ++i)
    svg += "<text x=\"" + px(column_x(i + 1) + box / 2) + "\" y=\"" +
           px(head - 14 - 12.0 * static_cast<double>(i % 2)) + "\" text-anchor=\"middle\">" +
           html_escape(run_name(report.runs[i])) + "</text>\n";
  for (std::int64_t r = 0; r < samples; ++r) {
    const double y = head + (box + gap) * static_cast<double>(r);
    const std::vector<float> original = dense_row(report.sample_originals, r);
    const float top = std::max(1.0f, *std::max_element(original.begin(), original.end()));
    svg += image(original, side, column_x(0), y, cell, top);
    for (std::size_t i = 0; i < report.runs.size(); ++i)
      svg += image(dense_row(report.runs[i].sample_counts, r), side, column_x(i + 1), y, cell, top);
  }
  return "<figure>\n" + svg + "</svg>\n<figcaption>" + std::to_string(side) + "x" +
         std::to_string(side) +
         " images: validation rows (left) and each loss's decoded reconstruction, grey from white "
         "(0) to black (the original's largest value).</figcaption>\n</figure>\n";
}

}  // namespace

std::string html_escape(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  for (const char ch : text) {
    switch (ch) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += ch;
    }
  }
  return out;
}

std::int64_t image_side(std::int64_t cols) {
  if (cols <= 1) return 0;
  auto side = static_cast<std::int64_t>(std::llround(std::sqrt(static_cast<double>(cols))));
  while (side * side > cols) --side;
  while ((side + 1) * (side + 1) <= cols) ++side;
  return side * side == cols ? side : 0;
}

std::string render_html_report(const HtmlReport& report) {
  std::string html =
      "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>" +
      html_escape(report.title) +
      "</title>\n<style>\n"
      "body { font-family: sans-serif; margin: 24px; color: #222; }\n"
      "table { border-collapse: collapse; font-size: 14px; }\n"
      "th, td { border: 1px solid #ccc; padding: 4px 8px; text-align: right; }\n"
      "thead th { background: #f0f0f0; }\n"
      "tbody th { text-align: left; }\n"
      "figure { margin: 16px 0; }\n"
      "figcaption { font-size: 13px; color: #555; max-width: 760px; }\n"
      "svg text { font-family: sans-serif; font-size: 12px; fill: #222; }\n"
      ".tables, .figures { display: flex; flex-wrap: wrap; gap: 16px; align-items: flex-start; }\n"
      "table.confusion caption { font-size: 13px; padding: 4px; }\n"
      "td.hit { background: #e6f0e6; }\n"
      "figure.scatter figcaption { max-width: 344px; }\n"
      "p.note { font-size: 13px; color: #555; max-width: 760px; }\n"
      "th.text, td.text { text-align: left; }\n"
      // The title and facts such as the command line hold paths with no place to break; they wrap
      // anywhere rather than run off the page.
      "h1, ul.facts { overflow-wrap: anywhere; }\n"
      "table + table { margin-top: 12px; }\n"
      "</style>\n</head>\n<body>\n<h1>" +
      html_escape(report.title) + "</h1>\n";
  if (!report.facts.empty()) {
    html += "<ul class=\"facts\">\n";
    for (const auto& [name, value] : report.facts)
      html += "<li>" + html_escape(name) + ": " + html_escape(value) + "</li>\n";
    html += "</ul>\n";
  }
  html += "<h2>Metrics on the validation rows</h2>\n" + metrics_tables(report.runs);
  if (!report.sizes.empty()) html += "<h2>Lossless size</h2>\n" + size_table(report.sizes);
  html += "<h2>Training curves</h2>\n";
  // The PCA baseline is fitted, not trained: it has no curves.
  for (std::size_t i = 0; i < report.runs.size(); ++i)
    if (!report.runs[i].pca) html += training_curves(report.runs[i], i);
  if (!report.runs.empty())
    html += "<h2>Exactness per column</h2>\n" + column_exactness(report.runs);
  const std::string confusion = confusion_tables(report.runs);
  if (!confusion.empty()) html += "<h2>True and decoded counts</h2>\n" + confusion;
  std::string thresholds;
  for (std::size_t i = 0; i < report.runs.size(); ++i)
    if (!report.runs[i].threshold_scores.empty()) thresholds += threshold_chart(report.runs[i], i);
  if (!thresholds.empty()) html += "<h2>Hurdle threshold</h2>\n" + thresholds;
  html += "<h2>Wrong entries per row</h2>\n" + row_error_histogram(report.runs);
  const std::string firing = latent_firing_chart(report.runs);
  if (!firing.empty()) html += "<h2>Latent firing frequencies</h2>\n" + firing;
  std::string scatters;
  for (const ComparisonRow& run : report.runs) scatters += latent_scatter(run);
  if (!scatters.empty())
    html += "<h2>Latent codes</h2>\n<div class=\"figures\">\n" + scatters + "</div>\n";
  if (image_side(report.sample_originals.cols) > 0 && report.sample_originals.rows > 0)
    html += "<h2>Originals and reconstructions</h2>\n" + image_grid(report);
  return html + "</body>\n</html>\n";
}

void write_html_report(const std::string& path, const HtmlReport& report) {
  const std::string html = render_html_report(report);
  AtomicFile file(path);
  file.write(html);
  file.commit();
}

}  // namespace sparseae::report
