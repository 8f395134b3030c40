#include "dermcds/manifest.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>

#include "dermcds/error.hpp"
#include "dermcds/file_util.hpp"

namespace dermcds {

namespace {

using json = nlohmann::json;

// Manifests are a few kilobytes; anything this large is not one.
constexpr std::uintmax_t kMaxManifestBytes = 16u << 20;

// Reads typed fields of one JSON object, naming "<origin>: <path>" in every error.
class FieldReader {
 public:
  FieldReader(const json& object, const std::string& origin, std::string path) : object_(object), origin_(origin), path_(std::move(path)) {
    if (!object_.is_object()) fail(path_.empty() ? "the document" : path_, "must be a JSON object");
  }

  [[noreturn]] void fail(const std::string& field, const std::string& problem) const {
    throw Error(ErrorCode::kInvalidPackage, origin_ + ": " + field + " " + problem);
  }
  std::string field(std::string_view key) const { return path_.empty() ? std::string(key) : path_ + "." + std::string(key); }

  const json& required(std::string_view key) const {
    auto it = object_.find(key);
    if (it == object_.end()) fail(field(key), "is missing");
    return *it;
  }
  bool has(std::string_view key) const { return object_.contains(key); }

  std::string string(std::string_view key) const {
    const json& value = required(key);
    if (!value.is_string() || value.get_ref<const std::string&>().empty()) fail(field(key), "must be a non-empty string");
    return value.get<std::string>();
  }
  std::string string_or(std::string_view key, std::string fallback) const { return has(key) ? string(key) : fallback; }

  std::string one_of(std::string_view key, std::initializer_list<std::string_view> allowed) const {
    std::string value = string(key);
    if (std::find(allowed.begin(), allowed.end(), value) == allowed.end())
      fail(field(key), "is '" + value + "', expected one of: " + join(allowed));
    return value;
  }

  std::int64_t integer(std::string_view key, std::int64_t min, std::int64_t max) const {
    const json& value = required(key);
    if (!value.is_number_integer()) fail(field(key), "must be an integer");
    const auto v = value.get<std::int64_t>();
    if (v < min || v > max)
      fail(field(key), "is " + std::to_string(v) + ", outside [" + std::to_string(min) + ", " + std::to_string(max) + "]");
    return v;
  }

  double number(std::string_view key, double min, double max) const {
    const json& value = required(key);
    if (!value.is_number()) fail(field(key), "must be a number");
    const double v = value.get<double>();
    if (!(v >= min && v <= max)) {
      std::ostringstream range;
      range << "is " << v << ", outside [" << min << ", " << max << "]";
      fail(field(key), range.str());
    }
    return v;
  }

  const json& array(std::string_view key, bool allow_empty = false) const {
    const json& value = required(key);
    if (!value.is_array()) fail(field(key), "must be an array");
    if (!allow_empty && value.empty()) fail(field(key), "must not be empty");
    return value;
  }

  FieldReader object(std::string_view key) const { return FieldReader(required(key), origin_, field(key)); }
  FieldReader element(const json& array, std::string_view key, std::size_t index) const {
    return FieldReader(array[index], origin_, field(key) + "[" + std::to_string(index) + "]");
  }

 private:
  const json& object_;
  const std::string& origin_;
  std::string path_;
};

TensorLayout parse_layout(const FieldReader& reader, std::string_view key) {
  return reader.one_of(key, {"NCHW", "NHWC"}) == "NCHW" ? TensorLayout::kNCHW : TensorLayout::kNHWC;
}

std::array<float, 3> parse_triple(const FieldReader& reader, std::string_view key, double min, double max) {
  const json& values = reader.array(key);
  if (values.size() != 3) reader.fail(reader.field(key), "must have 3 numbers (R, G, B)");
  std::array<float, 3> out{};
  for (std::size_t i = 0; i < 3; ++i) {
    if (!values[i].is_number()) reader.fail(reader.field(key), "must hold numbers");
    const double v = values[i].get<double>();
    if (!(v >= min && v <= max))
      reader.fail(reader.field(key), "has a value outside [" + std::to_string(min) + ", " + std::to_string(max) + "]");
    out[i] = static_cast<float>(v);
  }
  return out;
}

// Artifact paths stay inside the package: relative, no "..", no hidden tricks.
bool is_safe_relative_path(const std::string& file) {
  if (file.empty() || file.front() == '/' || file.find('\\') != std::string::npos || file.find('\0') != std::string::npos) return false;
  for (const auto& part : std::filesystem::path(file))
    if (part == ".." || part == ".") return false;
  return true;
}

bool is_sha256_hex(const std::string& s) {
  return s.size() == 64 && std::all_of(s.begin(), s.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

InputSpec parse_input(const FieldReader& input, Manifest& manifest) {
  manifest.input_name = input.string_or("name", "image");
  input.one_of("color", {"RGB"});
  InputSpec spec;
  spec.crop_size = static_cast<int>(input.integer("size", 8, 4096));
  const FieldReader resize = input.object("resize");
  resize.one_of("policy", {"shorter_side_then_center_crop"});
  spec.resize_size = static_cast<int>(resize.integer("shorter_side", spec.crop_size, 8192));
  spec.interpolation =
      resize.one_of("interpolation", {"bilinear", "bicubic"}) == "bilinear" ? Interpolation::kBilinear : Interpolation::kBicubic;
  if (input.number("scale", 255, 255) != 255) input.fail(input.field("scale"), "must be 255");
  spec.mean = parse_triple(input, "mean", -10, 10);
  spec.std = parse_triple(input, "std", 1e-6, 10);
  parse_layout(input, "layout");
  return spec;
}

std::vector<Label> parse_labels(const FieldReader& root) {
  const json& labels = root.array("labels");
  std::vector<Label> out;
  std::set<std::string> seen;
  for (std::size_t i = 0; i < labels.size(); ++i) {
    const FieldReader label = root.element(labels, "labels", i);
    Label l{label.string("code"), label.string("name")};
    if (!seen.insert(l.code).second) label.fail(label.field("code"), "'" + l.code + "' appears twice");
    out.push_back(std::move(l));
  }
  return out;
}

TriagePolicy parse_triage(const FieldReader& triage, const std::vector<Label>& labels) {
  TriagePolicy policy;
  policy.default_tier = triage.string("default_tier");
  const json& rules = triage.array("rules", /*allow_empty=*/true);
  for (std::size_t i = 0; i < rules.size(); ++i) {
    const FieldReader rule = triage.element(rules, "rules", i);
    TriageRule r;
    r.tier = rule.string("tier");
    r.threshold = rule.number("threshold", 0.0, 1.0);
    const json& classes = rule.array("classes");
    for (const json& c : classes) {
      if (!c.is_string()) rule.fail(rule.field("classes"), "must hold label codes");
      const auto& code = c.get_ref<const std::string&>();
      if (std::none_of(labels.begin(), labels.end(), [&](const Label& l) { return l.code == code; }))
        rule.fail(rule.field("classes"), "names '" + code + "', which is not one of the labels");
      r.classes.push_back(code);
    }
    policy.rules.push_back(std::move(r));
  }
  return policy;
}

std::vector<ArtifactEntry> parse_artifacts(const FieldReader& root) {
  const json& artifacts = root.array("artifacts");
  std::vector<ArtifactEntry> out;
  std::set<std::string> files;
  for (std::size_t i = 0; i < artifacts.size(); ++i) {
    const FieldReader entry = root.element(artifacts, "artifacts", i);
    ArtifactEntry a;
    a.runtime = entry.string("runtime");
    a.precision = entry.one_of("precision", {"fp32", "fp16", "int8"});
    a.file = entry.string("file");
    if (!is_safe_relative_path(a.file)) entry.fail(entry.field("file"), "'" + a.file + "' must be a relative path inside the package");
    if (a.file == kManifestFileName) entry.fail(entry.field("file"), "cannot be the manifest itself");
    if (!files.insert(a.file).second) entry.fail(entry.field("file"), "'" + a.file + "' is listed twice");
    a.sha256 = entry.string("sha256");
    if (!is_sha256_hex(a.sha256)) entry.fail(entry.field("sha256"), "must be 64 lowercase hex digits");
    a.bytes = static_cast<std::uint64_t>(entry.integer("bytes", 1, std::int64_t{1} << 40));
    a.layout = entry.has("layout") ? parse_layout(entry, "layout") : TensorLayout::kNCHW;
    a.details = artifacts[i];
    out.push_back(std::move(a));
  }
  return out;
}

}  // namespace

const ArtifactEntry* Manifest::find_artifact(std::string_view runtime, std::string_view precision) const {
  for (const ArtifactEntry& a : artifacts)
    if (a.runtime == runtime && (precision.empty() || a.precision == precision)) return &a;
  return nullptr;
}

const ArtifactEntry* Manifest::reference_artifact() const { return find_artifact("onnxruntime", "fp32"); }

std::optional<std::size_t> Manifest::label_index(std::string_view code) const {
  for (std::size_t i = 0; i < labels.size(); ++i)
    if (labels[i].code == code) return i;
  return std::nullopt;
}

Manifest parse_manifest(const json& document, const std::string& origin) {
  const FieldReader root(document, origin, "");
  if (root.string("format") != kManifestFormat)
    root.fail("format", "is not '" + std::string(kManifestFormat) + "': not a derm-cds model package");
  root.integer("format_version", kManifestFormatVersion, kManifestFormatVersion);

  Manifest m;
  m.name = root.string("name");
  static const std::regex kName("[a-z0-9][a-z0-9._-]*");
  if (!std::regex_match(m.name, kName)) root.fail("name", "'" + m.name + "' must match [a-z0-9][a-z0-9._-]*");
  m.version = root.string("version");
  static const std::regex kVersion("[1-9][0-9]{0,8}");
  if (!std::regex_match(m.version, kVersion)) root.fail("version", "'" + m.version + "' must be a positive decimal integer");
  m.architecture = root.string("architecture");
  m.input = parse_input(root.object("input"), m);
  const FieldReader output = root.object("output");
  m.output_name = output.string_or("name", "logits");
  output.one_of("kind", {"logits"});
  m.labels = parse_labels(root);
  m.triage = parse_triage(root.object("triage"), m.labels);
  if (root.has("safety")) {
    const FieldReader safety = root.object("safety");
    if (safety.has("ood")) {
      const FieldReader ood = safety.object("ood");
      OodGuard guard;
      guard.output = ood.string("output");
      if (guard.output == m.output_name) ood.fail("safety.ood.output", "must differ from output.name");
      guard.method =
          ood.one_of("method", {"mahalanobis", "feature_residual", "block_mahalanobis", "normalized_residual", "energy", "max_logit"});
      ood.one_of("direction", {"higher_is_out_of_distribution"});
      guard.threshold = ood.number("threshold", -1e30, 1e30);
      m.ood = std::move(guard);
    }
  }
  m.artifacts = parse_artifacts(root);
  if (root.has("provenance") && !document["provenance"].is_object()) root.fail("provenance", "must be a JSON object");
  m.document = document;
  return m;
}

Manifest read_manifest(const std::filesystem::path& package_dir) {
  const std::filesystem::path path = package_dir / kManifestFileName;
  std::error_code ec;
  if (!std::filesystem::is_directory(package_dir, ec))
    throw Error(ErrorCode::kNotFound, "no model package directory at " + package_dir.string());
  if (!std::filesystem::is_regular_file(path, ec))
    throw Error(ErrorCode::kNotFound, "no manifest.json in " + package_dir.string() + ": not a model package");
  const auto size = std::filesystem::file_size(path, ec);
  if (ec || size > kMaxManifestBytes) throw Error(ErrorCode::kInvalidPackage, path.string() + ": too large to be a manifest");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(ErrorCode::kIoError, "cannot read " + path.string());
  json document;
  try {
    document = json::parse(in);
  } catch (const json::parse_error& e) {
    throw Error(ErrorCode::kInvalidPackage, path.string() + ": not valid JSON (" + e.what() + ")");
  }
  return parse_manifest(document, path.string());
}

void write_manifest(const std::filesystem::path& package_dir, const json& document) {
  // The old manifest is replaced only by a complete, durable new one.
  write_file_atomically(package_dir / kManifestFileName, document.dump(2) + "\n");
}

}  // namespace dermcds
