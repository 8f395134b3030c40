#include "reference_data.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <stdexcept>

namespace dermcds::testing {
namespace {

std::filesystem::path data_dir() { return std::filesystem::path(DERMCDS_TEST_WORK_DIR) / "imaging"; }

Interpolation parse_interpolation(const std::string& name) {
  if (name == "bilinear") return Interpolation::kBilinear;
  if (name == "bicubic") return Interpolation::kBicubic;
  throw std::runtime_error("unknown interpolation in manifest: " + name);
}

ReferenceData load() {
  const auto manifest_path = data_dir() / "manifest.json";
  std::ifstream in(manifest_path);
  if (!in)
    throw std::runtime_error("no imaging reference data at " + manifest_path.string() +
                             "; run the tests through ctest (fixture imaging_reference_data) or " DERMCDS_PYTHON
                             " tests/imaging/make_reference_data.py --out " +
                             data_dir().string() + " --photos .deps/photos --grace-hopper <grace_hopper.jpg>");
  const auto json = nlohmann::json::parse(in);
  const auto dir = data_dir();
  ReferenceData data;
  for (const auto& [name, spec] : json.at("specs").items()) {
    InputSpec s;
    s.crop_size = spec.at("crop");
    s.resize_size = spec.at("resize");
    s.interpolation = parse_interpolation(spec.at("interpolation"));
    for (int c = 0; c < 3; ++c) {
      s.mean[c] = spec.at("mean")[c].get<float>();
      s.std[c] = spec.at("std")[c].get<float>();
    }
    data.specs[name] = s;
  }
  for (const auto& item : json.at("cases")) {
    DecodeCase c;
    c.name = item.at("name");
    c.category = item.at("category");
    c.pillow_mode = item.at("pillow_mode");
    c.file = dir / item.at("file").get<std::string>();
    c.width = item.at("width");
    c.height = item.at("height");
    c.rgb = dir / item.at("rgb").get<std::string>();
    for (const auto& check : item.at("preprocess")) {
      PreprocessCheck p;
      p.spec = check.at("spec");
      p.resized_width = check.at("resized_width");
      p.resized_height = check.at("resized_height");
      if (check.contains("resized")) p.resized = dir / check.at("resized").get<std::string>();
      p.tensor = dir / check.at("tensor").get<std::string>();
      c.checks.push_back(std::move(p));
    }
    data.cases.push_back(std::move(c));
  }
  for (const auto& item : json.at("sweep")) {
    SweepCase s;
    s.source = dir / item.at("source").get<std::string>();
    s.width = item.at("width");
    s.height = item.at("height");
    s.size = item.at("size");
    s.interpolation = parse_interpolation(item.at("interpolation"));
    s.out_width = item.at("out_width");
    s.out_height = item.at("out_height");
    s.resized = dir / item.at("resized").get<std::string>();
    data.sweep.push_back(std::move(s));
  }
  for (const auto& item : json.at("invalid")) {
    data.invalid.push_back(
        {item.at("name"), dir / item.at("file").get<std::string>(), item.at("error"), item.at("message"), item.at("pillow")});
  }
  return data;
}

template <typename T>
DiffStats compare_values(std::span<const T> actual, std::span<const T> expected) {
  if (actual.size() != expected.size())
    throw std::runtime_error("comparing " + std::to_string(actual.size()) + " values with " + std::to_string(expected.size()));
  DiffStats stats;
  stats.count = actual.size();
  double sum = 0.0;
  for (std::size_t i = 0; i < actual.size(); ++i) {
    const double diff = std::fabs(static_cast<double>(actual[i]) - static_cast<double>(expected[i]));
    if (actual[i] != expected[i]) ++stats.differing;
    stats.max_abs = std::max(stats.max_abs, diff);
    sum += diff;
  }
  stats.mean_abs = stats.count > 0 ? sum / static_cast<double>(stats.count) : 0.0;
  return stats;
}

}  // namespace

std::vector<const DecodeCase*> ReferenceData::in_category(const std::string& category) const {
  std::vector<const DecodeCase*> out;
  for (const auto& c : cases)
    if (c.category == category) out.push_back(&c);
  return out;
}

const DecodeCase& ReferenceData::named(const std::string& name) const {
  for (const auto& c : cases)
    if (c.name == name) return c;
  throw std::runtime_error("no reference case named " + name);
}

const ReferenceData& reference_data() {
  static const ReferenceData data = load();
  return data;
}

std::vector<std::uint8_t> read_bytes(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot open " + path.string());
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

std::vector<float> read_floats(const std::filesystem::path& path) {
  const auto bytes = read_bytes(path);
  if (bytes.size() % sizeof(float) != 0) throw std::runtime_error(path.string() + " is not raw float32");
  std::vector<float> values(bytes.size() / sizeof(float));
  std::memcpy(values.data(), bytes.data(), bytes.size());  // little-endian host, as written
  return values;
}

RgbImage read_rgb(const std::filesystem::path& path, int width, int height) {
  RgbImage image{width, height, read_bytes(path)};
  if (image.pixels.size() != 3 * static_cast<std::size_t>(width) * static_cast<std::size_t>(height))
    throw std::runtime_error(path.string() + " does not hold " + std::to_string(width) + " x " + std::to_string(height) + " RGB pixels");
  return image;
}

DiffStats compare(std::span<const std::uint8_t> actual, std::span<const std::uint8_t> expected) { return compare_values(actual, expected); }

DiffStats compare(std::span<const float> actual, std::span<const float> expected) { return compare_values(actual, expected); }

std::string DiffStats::summary() const {
  char text[160];
  std::snprintf(text, sizeof text, "max abs diff %.6g, mean abs diff %.3g, %zu of %zu differ%s", max_abs, mean_abs, differing, count,
                exact() ? " (bit-exact)" : "");
  return text;
}

std::vector<float> chw_to_hwc(std::span<const float> chw, int size) {
  const std::size_t plane = static_cast<std::size_t>(size) * static_cast<std::size_t>(size);
  std::vector<float> hwc(chw.size());
  for (std::size_t i = 0; i < plane; ++i)
    for (std::size_t c = 0; c < 3; ++c) hwc[3 * i + c] = chw[c * plane + i];
  return hwc;
}

}  // namespace dermcds::testing
