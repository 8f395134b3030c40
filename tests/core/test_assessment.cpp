// The photograph quality checks (core/src/assessment.cpp) on synthetic lesion photographs from
// our generator (fixture core.make_quality_lesions) and on deliberately degraded copies of them:
// every original passes, every degraded copy fails the check its degradation targets.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "dermcds/assessment.hpp"
#include "dermcds/file_bytes.hpp"
#include "dermcds/image.hpp"
#include "test_support.hpp"

namespace dermcds {
namespace {

constexpr int kModelInput = 224;  // MobileNetV3-Large's; the lesions' shorter sides are 300-640

std::vector<RgbImage> lesions() {
  std::vector<RgbImage> out;
  const auto dir = test::work_dir() / "core" / "quality-lesions";
  std::vector<std::filesystem::path> files;
  for (const auto& entry : std::filesystem::directory_iterator(dir))
    if (entry.path().extension() == ".png") files.push_back(entry.path());
  std::sort(files.begin(), files.end());
  for (const auto& file : files) out.push_back(decode_image(read_file_bytes(file)));
  return out;
}

bool has(const std::vector<AssessmentReason>& reasons, const std::string& code) {
  return std::any_of(reasons.begin(), reasons.end(), [&](const AssessmentReason& r) { return r.code == code; });
}

// Separable box blur of radius r, repeated three times (close to a Gaussian of sigma ~ r).
RgbImage blurred(const RgbImage& in, int r) {
  RgbImage out = in;
  std::vector<std::uint8_t> tmp(out.pixels.size());
  for (int pass = 0; pass < 6; ++pass) {
    const bool horizontal = pass % 2 == 0;
    for (int y = 0; y < out.height; ++y)
      for (int x = 0; x < out.width; ++x)
        for (int c = 0; c < 3; ++c) {
          int sum = 0, n = 0;
          for (int d = -r; d <= r; ++d) {
            const int xx = horizontal ? std::clamp(x + d, 0, out.width - 1) : x;
            const int yy = horizontal ? y : std::clamp(y + d, 0, out.height - 1);
            sum += out.pixels[3 * (static_cast<std::size_t>(yy) * out.width + xx) + c];
            ++n;
          }
          tmp[3 * (static_cast<std::size_t>(y) * out.width + x) + c] = static_cast<std::uint8_t>((sum + n / 2) / n);
        }
    out.pixels.swap(tmp);
  }
  return out;
}

RgbImage exposed(const RgbImage& in, double gain) {
  RgbImage out = in;
  for (auto& v : out.pixels) v = static_cast<std::uint8_t>(std::clamp(std::lround(v * gain), 0L, 255L));
  return out;
}

RgbImage shrunk(const RgbImage& in, int shorter) {
  const double f = static_cast<double>(std::min(in.width, in.height)) / shorter;
  RgbImage out;
  out.width = static_cast<int>(in.width / f);
  out.height = static_cast<int>(in.height / f);
  out.pixels.resize(3 * static_cast<std::size_t>(out.width) * out.height);
  for (int y = 0; y < out.height; ++y)
    for (int x = 0; x < out.width; ++x)
      for (int c = 0; c < 3; ++c)
        out.pixels[3 * (static_cast<std::size_t>(y) * out.width + x) + c] =
            in.pixels[3 * (static_cast<std::size_t>(y * f) * in.width + static_cast<std::size_t>(x * f)) + c];
  return out;
}

TEST(Quality, LaplacianVarianceMatchesAHandComputedValue) {
  // A 4x4 grey image with one bright pixel: interior Laplacians at (1,1),(2,1),(1,2),(2,2) are
  // -4*255, 255, 255, 0 for a single 255 at (1,1); mean -127.5, variance as computed below.
  RgbImage image;
  image.width = image.height = 4;
  image.pixels.assign(48, 0);
  for (int c = 0; c < 3; ++c) image.pixels[3 * (1 * 4 + 1) + c] = 255;
  const QualityScores q = measure_quality(image, 4);
  const double values[] = {-1020.0, 255.0, 255.0, 0.0};
  const double mean = (values[0] + values[1] + values[2] + values[3]) / 4;
  double variance = 0;
  for (double v : values) variance += (v - mean) * (v - mean) / 4;
  // Luma of (255,255,255) is 255 up to float rounding of the 601 weights.
  EXPECT_NEAR(q.laplacian_variance, variance, variance * 1e-5);
  EXPECT_DOUBLE_EQ(q.overexposed_fraction, 1.0 / 16);
  EXPECT_DOUBLE_EQ(q.underexposed_fraction, 15.0 / 16);
  EXPECT_DOUBLE_EQ(q.mean_chroma, 0.0);  // white and black: no colour
}

TEST(Quality, MeanChromaMatchesAHandComputedValue) {
  // (10, 20, 40): max - min = 30; (200, 200, 200): 0; (0, 255, 0): 255. Mean 285 / 3 = 95.
  RgbImage image;
  image.width = 3;
  image.height = 1;
  image.pixels = {10, 20, 40, 200, 200, 200, 0, 255, 0};
  EXPECT_DOUBLE_EQ(measure_quality(image, 1).mean_chroma, 95.0);
}

TEST(Quality, LesionPhotographsPassEveryCheck) {
  const auto images = lesions();
  ASSERT_GE(images.size(), 8u);
  for (const RgbImage& image : images) {
    const auto reasons = quality_reasons(measure_quality(image, kModelInput), kModelInput);
    EXPECT_TRUE(reasons.empty()) << image.width << "x" << image.height << ": " << (reasons.empty() ? "" : reasons[0].message);
  }
}

TEST(Quality, BlurredCopiesAreFlaggedBlurred) {
  const auto images = lesions();
  // Half of the set: the naive box blur is the slow part of this test.
  for (std::size_t i = 0; i < images.size(); i += 2) {
    const RgbImage& image = images[i];
    // Radius ~ 1.5% of the shorter side: about 3-4 pixels at the model's 224.
    const int radius = std::max(2, std::min(image.width, image.height) * 3 / 200);
    const auto reasons = quality_reasons(measure_quality(blurred(image, radius), kModelInput), kModelInput);
    EXPECT_TRUE(has(reasons, "blurred")) << image.width << "x" << image.height << " radius " << radius << ": variance "
                                         << measure_quality(blurred(image, radius), kModelInput).laplacian_variance;
  }
}

TEST(Quality, OverAndUnderExposedCopiesAreFlagged) {
  for (const RgbImage& image : lesions()) {
    EXPECT_TRUE(has(quality_reasons(measure_quality(exposed(image, 3.0), kModelInput), kModelInput), "overexposed"));
    EXPECT_TRUE(has(quality_reasons(measure_quality(exposed(image, 0.02), kModelInput), kModelInput), "underexposed"));
  }
}

// Grey copies: Pillow's convert("L") luma in all three channels, as a phone's black-and-white
// mode or a scanned print gives; and the same with 2% of the colour left.
RgbImage desaturated(const RgbImage& in, double colour_left) {
  RgbImage out = in;
  for (std::size_t i = 0; i + 2 < out.pixels.size(); i += 3) {
    const double luma = 0.299 * in.pixels[i] + 0.587 * in.pixels[i + 1] + 0.114 * in.pixels[i + 2];
    for (int c = 0; c < 3; ++c)
      out.pixels[i + c] = static_cast<std::uint8_t>(std::clamp(std::lround(luma + colour_left * (in.pixels[i + c] - luma)), 0L, 255L));
  }
  return out;
}

TEST(Quality, GreyCopiesAreFlaggedMonochrome) {
  for (const RgbImage& image : lesions()) {
    const auto reasons = quality_reasons(measure_quality(desaturated(image, 0.0), kModelInput), kModelInput);
    ASSERT_TRUE(has(reasons, "monochrome"));
    EXPECT_EQ(reasons.back().score, 0.0);
    EXPECT_TRUE(has(quality_reasons(measure_quality(desaturated(image, 0.02), kModelInput), kModelInput), "monochrome"))
        << "2% of the colour: mean chroma " << measure_quality(desaturated(image, 0.02), kModelInput).mean_chroma << ", original "
        << measure_quality(image, kModelInput).mean_chroma;
  }
}

TEST(Quality, ShrunkCopiesAreFlaggedTooSmallWithTheirSize) {
  for (const RgbImage& image : lesions()) {
    const RgbImage small = shrunk(image, kModelInput - 24);
    const auto reasons = quality_reasons(measure_quality(small, kModelInput), kModelInput);
    ASSERT_TRUE(has(reasons, "too_small"));
    const auto& r = *std::find_if(reasons.begin(), reasons.end(), [](const auto& x) { return x.code == "too_small"; });
    EXPECT_EQ(r.score, std::min(small.width, small.height));
    EXPECT_EQ(r.threshold, kModelInput);
  }
}

TEST(Ood, ScoreAboveTheThresholdIsAReasonAndNaNNeverPasses) {
  const OodGuard guard{"ood_score", "mahalanobis", 2.5};
  EXPECT_FALSE(ood_reason(2.5, guard));
  ASSERT_TRUE(ood_reason(2.6, guard));
  EXPECT_EQ(ood_reason(2.6, guard)->code, "out_of_distribution");
  EXPECT_TRUE(ood_reason(std::nan(""), guard));
}

}  // namespace
}  // namespace dermcds
