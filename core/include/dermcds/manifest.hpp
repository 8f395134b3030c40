// The model package manifest (manifest.json), format documented in docs/model-package.md.
//
// A Manifest keeps the whole JSON document it was read from, so that fields written by newer
// tools (parity results, policies) survive when an older tool rewrites the file.
// Errors: parse_manifest throws kInvalidPackage naming the field and what is wrong with it.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "dermcds/preprocess.hpp"

namespace dermcds {

inline constexpr std::string_view kManifestFormat = "dermcds-model-package";
inline constexpr int kManifestFormatVersion = 1;
inline constexpr std::string_view kManifestFileName = "manifest.json";

struct Label {
  std::string code;  // "MEL"
  std::string name;  // "Melanoma"
};

// Triage: rules are tried in order; a rule fires when the summed probability of its classes
// reaches its threshold, and the first rule that fires names the tier. When none fires the
// lesion gets default_tier.
struct TriageRule {
  std::string tier;                  // "urgent_referral"
  std::vector<std::string> classes;  // label codes whose probabilities are summed
  double threshold = 0.0;            // in [0, 1]
};

struct TriagePolicy {
  std::vector<TriageRule> rules;
  std::string default_tier = "routine";
};

// The out-of-distribution guard (manifest "safety.ood", docs/safety.md): the model's second
// output is a score, higher meaning less like the lesions it was trained on; above `threshold`
// the image is not assessable. The threshold was fixed at export from held-out lesions.
struct OodGuard {
  std::string output;  // tensor name, "ood_score"
  std::string method;  // how the export computes it: one of python/dermcds_export/safety.py's METHODS
  double threshold = 0.0;
};

struct ArtifactEntry {
  std::string runtime;    // "onnxruntime" | "tflite"
  std::string precision;  // "fp32" | "fp16" | "int8"
  std::string file;       // relative to the package directory, no ".." and no absolute path
  std::string sha256;     // lowercase hex
  std::uint64_t bytes = 0;
  TensorLayout layout = TensorLayout::kNCHW;  // of the artifact's image input
  nlohmann::json details;                     // the artifact's whole JSON object (source, calibration, ...)
};

struct Manifest {
  std::string name;          // lower-case, [a-z0-9._-]
  std::string version;       // decimal digits, "1", "2", ...
  std::string architecture;  // "efficientnet_b4", "mobilenet_v3_large"
  InputSpec input;
  std::string input_name = "image";
  std::string output_name = "logits";
  std::vector<Label> labels;
  TriagePolicy triage;
  std::optional<OodGuard> ood;  // absent in packages exported before the guard existed
  std::vector<ArtifactEntry> artifacts;
  nlohmann::json document;  // the full manifest as read (or as built)

  // First artifact for runtime (and precision, unless empty); nullptr if there is none.
  const ArtifactEntry* find_artifact(std::string_view runtime, std::string_view precision = {}) const;
  // The artifact every other one is compared with (docs/parity.md): the first ONNX Runtime fp32
  // one, the export's direct image of the PyTorch model. nullptr if the package has none.
  const ArtifactEntry* reference_artifact() const;
  std::optional<std::size_t> label_index(std::string_view code) const;
};

// Validates and reads a manifest document. `origin` names it in error messages.
Manifest parse_manifest(const nlohmann::json& document, const std::string& origin);

// Reads and parses <dir>/manifest.json (no checksum verification: see ModelPackage).
Manifest read_manifest(const std::filesystem::path& package_dir);

// Writes the manifest's document atomically (temporary file, then rename).
void write_manifest(const std::filesystem::path& package_dir, const nlohmann::json& document);

}  // namespace dermcds
