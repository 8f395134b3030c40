#include "dermcds/assessment.hpp"

#include <algorithm>
#include <cmath>
#include <sstream>

namespace dermcds {

namespace {

std::string format(double value) {
  std::ostringstream out;
  out.precision(4);
  out << value;
  return out.str();
}

}  // namespace

QualityScores measure_quality(const RgbImage& image, int model_input) {
  QualityScores q;
  q.width = image.width;
  q.height = image.height;
  const std::size_t pixels = static_cast<std::size_t>(image.width) * static_cast<std::size_t>(image.height);
  if (pixels == 0) return q;

  std::size_t over = 0, under = 0;
  std::uint64_t chroma = 0;
  std::vector<float> grey(pixels);
  for (std::size_t i = 0; i < pixels; ++i) {
    const std::uint8_t r = image.pixels[3 * i], g = image.pixels[3 * i + 1], b = image.pixels[3 * i + 2];
    over += r >= kClippedHigh && g >= kClippedHigh && b >= kClippedHigh;
    under += r <= kClippedLow && g <= kClippedLow && b <= kClippedLow;
    chroma += static_cast<std::uint64_t>(std::max({r, g, b}) - std::min({r, g, b}));
    grey[i] = 0.299f * r + 0.587f * g + 0.114f * b;  // ITU-R 601 luma, as Pillow's convert("L")
  }
  q.overexposed_fraction = static_cast<double>(over) / static_cast<double>(pixels);
  q.underexposed_fraction = static_cast<double>(under) / static_cast<double>(pixels);
  q.mean_chroma = static_cast<double>(chroma) / static_cast<double>(pixels);

  // Block-average down to about the model's scale.
  const int shorter = std::min(image.width, image.height);
  const int f = model_input > 0 ? std::max(1, shorter / model_input) : 1;
  const int w = image.width / f, h = image.height / f;
  std::vector<double> small(static_cast<std::size_t>(w) * static_cast<std::size_t>(h));
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      double sum = 0;
      for (int dy = 0; dy < f; ++dy)
        for (int dx = 0; dx < f; ++dx)
          sum += grey[static_cast<std::size_t>(y * f + dy) * static_cast<std::size_t>(image.width) + static_cast<std::size_t>(x * f + dx)];
      small[static_cast<std::size_t>(y) * static_cast<std::size_t>(w) + static_cast<std::size_t>(x)] = sum / (f * f);
    }
  // Variance of the Laplacian over the interior (two-pass, in double).
  if (w < 3 || h < 3) return q;
  std::vector<double> laplacian;
  laplacian.reserve(static_cast<std::size_t>(w - 2) * static_cast<std::size_t>(h - 2));
  auto at = [&](int x, int y) { return small[static_cast<std::size_t>(y) * static_cast<std::size_t>(w) + static_cast<std::size_t>(x)]; };
  for (int y = 1; y + 1 < h; ++y)
    for (int x = 1; x + 1 < w; ++x) laplacian.push_back(at(x - 1, y) + at(x + 1, y) + at(x, y - 1) + at(x, y + 1) - 4 * at(x, y));
  double mean = 0;
  for (double v : laplacian) mean += v;
  mean /= static_cast<double>(laplacian.size());
  double variance = 0;
  for (double v : laplacian) variance += (v - mean) * (v - mean);
  q.laplacian_variance = variance / static_cast<double>(laplacian.size());
  return q;
}

std::vector<AssessmentReason> quality_reasons(const QualityScores& q, int model_input, const QualityThresholds& t) {
  std::vector<AssessmentReason> reasons;
  const int shorter = std::min(q.width, q.height);
  if (shorter < model_input)
    reasons.push_back({"too_small", static_cast<double>(shorter), static_cast<double>(model_input),
                       "the photograph is " + std::to_string(q.width) + "x" + std::to_string(q.height) +
                           " pixels; its shorter side is below the model's input of " + std::to_string(model_input) + " pixels"});
  if (q.laplacian_variance < t.min_laplacian_variance)
    reasons.push_back({"blurred", q.laplacian_variance, t.min_laplacian_variance,
                       "the photograph is out of focus or blurred (variance of the Laplacian " + format(q.laplacian_variance) +
                           ", at least " + format(t.min_laplacian_variance) + " needed)"});
  if (q.overexposed_fraction > t.max_overexposed_fraction)
    reasons.push_back({"overexposed", q.overexposed_fraction, t.max_overexposed_fraction,
                       format(100 * q.overexposed_fraction) + "% of the photograph is blown out to white (at most " +
                           format(100 * t.max_overexposed_fraction) + "% allowed)"});
  if (q.underexposed_fraction > t.max_underexposed_fraction)
    reasons.push_back({"underexposed", q.underexposed_fraction, t.max_underexposed_fraction,
                       format(100 * q.underexposed_fraction) + "% of the photograph is black (at most " +
                           format(100 * t.max_underexposed_fraction) + "% allowed)"});
  if (q.mean_chroma < t.min_mean_chroma)
    reasons.push_back({"monochrome", q.mean_chroma, t.min_mean_chroma,
                       "the photograph has no colour (mean chroma " + format(q.mean_chroma) + " of 255, at least " +
                           format(t.min_mean_chroma) + " needed): a lesion's colours cannot be judged in grey"});
  return reasons;
}

std::optional<AssessmentReason> ood_reason(double ood_score, const OodGuard& guard) {
  // A NaN score (a broken runtime) must never pass as in-distribution.
  if (ood_score <= guard.threshold) return std::nullopt;
  return AssessmentReason{"out_of_distribution", ood_score, guard.threshold,
                          "the image does not look like the skin lesion photographs the model was trained on (" + guard.method + " score " +
                              format(ood_score) + " above the threshold " + format(guard.threshold) + ")"};
}

}  // namespace dermcds
