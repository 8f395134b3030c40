// The Pillow/torchvision reference data written by make_reference_data.py (the CTest fixture
// imaging_reference_data) and the element-wise comparisons the imaging tests report.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "dermcds/image.hpp"
#include "dermcds/preprocess.hpp"

namespace dermcds::testing {

struct PreprocessCheck {
  std::string spec;
  int resized_width = 0;
  int resized_height = 0;
  std::optional<std::filesystem::path> resized;  // absent for huge extreme-aspect resizes
  std::filesystem::path tensor;                  // [3, S, S] float32
};

struct DecodeCase {
  std::string name;
  std::string category;
  std::string pillow_mode;
  std::filesystem::path file;
  int width = 0;
  int height = 0;
  std::filesystem::path rgb;
  std::vector<PreprocessCheck> checks;
};

struct SweepCase {
  std::filesystem::path source;
  int width = 0;
  int height = 0;
  int size = 0;
  Interpolation interpolation = Interpolation::kBilinear;
  int out_width = 0;
  int out_height = 0;
  std::filesystem::path resized;
};

struct InvalidCase {
  std::string name;
  std::filesystem::path file;
  std::string error;    // dermcds::to_string(ErrorCode)
  std::string message;  // a substring our message must contain
  std::string pillow;   // what Pillow does with the same bytes, for the report
};

struct ReferenceData {
  std::map<std::string, InputSpec> specs;
  std::vector<DecodeCase> cases;
  std::vector<SweepCase> sweep;
  std::vector<InvalidCase> invalid;

  std::vector<const DecodeCase*> in_category(const std::string& category) const;
  const DecodeCase& named(const std::string& name) const;
};

// Loaded once from DERMCDS_TEST_WORK_DIR/imaging; throws std::runtime_error naming the command
// that makes the data when it is missing.
const ReferenceData& reference_data();

std::vector<std::uint8_t> read_bytes(const std::filesystem::path& path);
std::vector<float> read_floats(const std::filesystem::path& path);
RgbImage read_rgb(const std::filesystem::path& path, int width, int height);

struct DiffStats {
  std::size_t count = 0;
  std::size_t differing = 0;
  double max_abs = 0.0;
  double mean_abs = 0.0;

  bool exact() const { return count > 0 && differing == 0; }
  std::string summary() const;
};

DiffStats compare(std::span<const std::uint8_t> actual, std::span<const std::uint8_t> expected);
DiffStats compare(std::span<const float> actual, std::span<const float> expected);

// [3, S, S] -> [S, S, 3]
std::vector<float> chw_to_hwc(std::span<const float> chw, int size);

}  // namespace dermcds::testing
