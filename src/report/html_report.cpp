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

// A line chart with axes, five ticks a side, and a legend to the right of the plot.
// integer_x: the x values are whole numbers (epochs, columns): ticks on whole numbers.
std::string line_chart(const std::string& label, const std::string& x_label,
                       const std::string& y_label, const std::vector<Series>& series, Axis x_axis,
                       Axis y_axis, bool integer_x) {
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
  for (int i = 0; i <= 4; ++i) {
    const double fy = y_axis.low + (y_axis.high - y_axis.low) * i / 4.0;
    double fx = x_axis.low + (x_axis.high - x_axis.low) * i / 4.0;
    if (integer_x) fx = std::round(fx);
    svg += "<line x1=\"" + px(left) + "\" y1=\"" + px(sy(fy)) + "\" x2=\"" + px(right) +
           "\" y2=\"" + px(sy(fy)) + "\" stroke=\"#e0e0e0\"/>\n";
    svg += "<text x=\"" + px(left - 6) + "\" y=\"" + px(sy(fy) + 4) + "\" text-anchor=\"end\">" +
           format("%.3g", fy) + "</text>\n";
    svg += "<text x=\"" + px(sx(fx)) + "\" y=\"" + px(bottom + 16) + "\" text-anchor=\"middle\">" +
           format("%.4g", fx) + "</text>\n";
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

std::string metrics_table(const std::vector<ComparisonRow>& runs) {
  std::string html =
      "<table>\n<thead><tr><th>loss</th><th>decode</th><th>exact-entry F1 %</th>"
      "<th>exact precision %</th><th>non-zeros exact (exact recall) %</th>"
      "<th>rows exact %</th><th>support P %</th><th>support R %</th><th>support F1 %</th>"
      "<th>non-zero MAE</th><th>MSE</th><th>explained variance</th><th>Poisson deviance</th>"
      "<th>NLL bits/row</th><th>seconds</th><th>samples/s</th></tr></thead>\n<tbody>\n";
  for (const ComparisonRow& run : runs) {
    const ReconstructionMetrics& m = run.metrics;
    const std::string cells[] = {run_name(run),
                                 decode_mode_name(run.decode),
                                 percent(m.exact_f1),
                                 percent(m.exact_precision),
                                 percent(m.nonzero_exact_fraction),
                                 percent(m.row_exact_fraction),
                                 percent(m.support_precision),
                                 percent(m.support_recall),
                                 percent(m.support_f1),
                                 format("%.4g", m.nonzero_mae),
                                 format("%.4g", m.mse),
                                 format("%.4g", m.explained_variance),
                                 format("%.4g", m.poisson_deviance),
                                 format("%.4g", m.nll_bits_per_row),
                                 format("%.2f", run.seconds),
                                 format("%.0f", run.samples_per_second)};
    html += "<tr>";
    for (std::size_t c = 0; c < std::size(cells); ++c)
      html += (c == 0 ? "<th scope=\"row\">" : "<td>") + html_escape(cells[c]) +
              (c == 0 ? "</th>" : "</td>");
    html += "</tr>\n";
  }
  return html + "</tbody>\n</table>\n";
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

std::string column_exactness(const std::vector<ComparisonRow>& runs) {
  std::vector<Series> series;
  for (std::size_t i = 0; i < runs.size(); ++i) {
    const ReconstructionDetail& d = runs[i].detail;
    Series s{run_name(runs[i]), colour(i), false, {}};
    for (std::size_t c = 0; c < d.column_nonzeros.size(); ++c)
      s.points.emplace_back(static_cast<double>(c),
                            d.column_nonzeros[c] > 0
                                ? static_cast<double>(d.column_exact_nonzeros[c]) /
                                      static_cast<double>(d.column_nonzeros[c])
                                : kNaN);
    series.push_back(std::move(s));
  }
  return "<figure>\n" +
         line_chart("exactness per column", "column", "non-zeros exact (fraction)", series,
                    axis_of(series, true, false), {0, 1}, true) +
         "<figcaption>Per column: the fraction of its non-zero validation entries that come back "
         "exactly. Columns without a non-zero leave a gap.</figcaption>\n</figure>\n";
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
      "</style>\n</head>\n<body>\n<h1>" +
      html_escape(report.title) + "</h1>\n";
  if (!report.facts.empty()) {
    html += "<ul>\n";
    for (const auto& [name, value] : report.facts)
      html += "<li>" + html_escape(name) + ": " + html_escape(value) + "</li>\n";
    html += "</ul>\n";
  }
  html += "<h2>Metrics on the validation rows</h2>\n" + metrics_table(report.runs);
  html += "<h2>Training curves</h2>\n";
  // The PCA baseline is fitted, not trained: it has no curves.
  for (std::size_t i = 0; i < report.runs.size(); ++i)
    if (!report.runs[i].pca) html += training_curves(report.runs[i], i);
  html += "<h2>Exactness per column</h2>\n" + column_exactness(report.runs);
  html += "<h2>Wrong entries per row</h2>\n" + row_error_histogram(report.runs);
  const std::string firing = latent_firing_chart(report.runs);
  if (!firing.empty()) html += "<h2>Latent firing frequencies</h2>\n" + firing;
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
