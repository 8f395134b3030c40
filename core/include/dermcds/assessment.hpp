// Whether an image can be assessed at all (docs/safety.md): photograph quality checks on the
// decoded image, and the model's own out-of-distribution score against the manifest's threshold.
// An image with any reason is "not_assessable", and no triage tier is suggested for it.
// Thread safety: reentrant.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "dermcds/image.hpp"
#include "dermcds/manifest.hpp"

namespace dermcds {

// The quality thresholds. Each is a fixed rule, not fitted to a model; docs/safety.md says how
// each was chosen and tests/core/assessment_test.cpp checks it on degraded lesion photographs.
struct QualityThresholds {
  // Variance of the 4-neighbour Laplacian of the grey image (0..255), measured at about the
  // model's scale (see measure_quality). Below: out of focus, motion blur.
  double min_laplacian_variance = 2.0;
  // Fraction of pixels whose three channels are all >= 250: blown-out highlights, flash glare.
  double max_overexposed_fraction = 0.25;
  // Fraction of pixels whose three channels are all <= 5. Higher than the overexposed limit: a
  // contact dermatoscope's dark field-of-view rim legitimately blackens a large part of the frame.
  double max_underexposed_fraction = 0.70;
  // Mean over the pixels of max(R, G, B) - min(R, G, B), in levels of 255. Below: a grey-scale
  // (or fully desaturated) image. Colour is part of what is judged (the "C" of the ABCD rule), and
  // none of a lesion's colour survives in grey; a grey image re-encoded as JPEG keeps about 1.
  double min_mean_chroma = 3.0;
};

inline constexpr QualityThresholds kQualityThresholds{};
inline constexpr int kClippedHigh = 250;
inline constexpr int kClippedLow = 5;

struct QualityScores {
  int width = 0;
  int height = 0;
  double laplacian_variance = 0.0;
  double overexposed_fraction = 0.0;
  double underexposed_fraction = 0.0;
  double mean_chroma = 0.0;
};

// Measures the photograph. For an image much larger than the model's input the grey image is
// first averaged over f x f blocks, f = floor(shorter side / model_input), so that focus is
// judged at the detail the model sees and not at a phone camera's full resolution.
QualityScores measure_quality(const RgbImage& image, int model_input);

struct AssessmentReason {
  std::string code;  // "out_of_distribution", "blurred", "overexposed", "underexposed", "monochrome", "too_small"
  double score = 0.0;
  double threshold = 0.0;
  std::string message;
};

struct Assessment {
  std::vector<AssessmentReason> reasons;  // empty: assessable
  bool assessable() const noexcept { return reasons.empty(); }
  std::string_view status() const noexcept { return assessable() ? "assessable" : "not_assessable"; }
};

// The tier shown instead of a triage tier when the image is not assessable.
inline constexpr std::string_view kNotAssessableTier = "not assessable: retake the photograph";

// Reasons from the quality scores (none for an image that passes every check).
std::vector<AssessmentReason> quality_reasons(const QualityScores& scores, int model_input,
                                              const QualityThresholds& thresholds = kQualityThresholds);

// The out-of-distribution reason, if `ood_score` exceeds the guard's threshold.
std::optional<AssessmentReason> ood_reason(double ood_score, const OodGuard& guard);

}  // namespace dermcds
