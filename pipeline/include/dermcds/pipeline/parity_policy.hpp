// The bounds a model package's runtimes must keep to each other (docs/parity.md).
//
// A package's policy lives in its manifest under "policy": {"parity": ...}:
//
//   "policy": {"parity": {
//     "bounds": {
//       "fp32":    {"max_abs_diff": 0.01, "min_triage_agreement": 1.0},
//       "fp16":    {"max_abs_diff": 0.01, "min_triage_agreement": 1.0},
//       "int8":    {"max_abs_diff": 0.10, "mean_abs_diff": 0.01, "min_top1_agreement": 0.95, "min_triage_agreement": 0.95},
//       "pytorch": {"max_abs_diff": 0.01, "min_triage_agreement": 1.0}
//     },
//     "near_threshold_margin": 0.02
//   }}
//
// Bounds are keyed by the precision of the candidate compared with the reference (ONNX Runtime
// fp32 on the CPU); "pytorch" bounds the reference against the PyTorch source model. Differences
// are absolute differences of class probabilities; agreements are fractions of images. The
// defaults (fp32, fp16, pytorch: at most 0.01 and full triage agreement) apply where a package
// says nothing; int8 has no default: its bounds come from measurement and must be written into the
// package, or the int8 pair fails.
// Errors: kInvalidPackage (malformed policy in a manifest), kInvalidArgument (malformed policy
// given by a caller), each naming the field.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "dermcds/error.hpp"
#include "dermcds/manifest.hpp"

namespace dermcds::pipeline {

inline constexpr std::string_view kGroundTruthBoundKey = "pytorch";

struct ParityBounds {
  std::optional<double> max_abs_diff;          // largest |p_candidate - p_reference| over all images and classes
  std::optional<double> mean_abs_diff;         // mean over all images and classes
  std::optional<double> min_top1_agreement;    // fraction of images with the same top-1 class
  std::optional<double> min_triage_agreement;  // fraction of images with the same triage tier

  bool empty() const { return !max_abs_diff && !mean_abs_diff && !min_top1_agreement && !min_triage_agreement; }
  // Fields set in `other` replace ours.
  void overlay(const ParityBounds& other);
};

struct ParityPolicy {
  std::map<std::string, ParityBounds, std::less<>> bounds;  // "fp32", "fp16", "int8", "pytorch"
  // Images whose reference triage score lies within this distance of a rule's threshold are listed
  // in the report with every runtime's tier, agreeing or not.
  double near_threshold_margin = 0.02;
  // The assessment status (assessable or not) must agree between every pair of subjects on at
  // least this fraction of images (issue 10). A fixed requirement: no policy file changes it.
  static constexpr double kMinAssessmentAgreement = 0.99;

  static ParityPolicy defaults();
  // The defaults with the manifest's "policy.parity" laid over them.
  static ParityPolicy for_manifest(const Manifest& manifest);
  // Lays a "policy.parity"-shaped object over this policy. `origin` names it in errors; `code` is
  // the error code for a malformed object.
  void overlay(const nlohmann::json& parity_policy, const std::string& origin, ErrorCode code);

  // nullptr when the policy has no bound for that key.
  const ParityBounds* find(std::string_view key) const;
  nlohmann::ordered_json to_json() const;
};

nlohmann::ordered_json to_json(const ParityBounds& bounds);

// Reads a policy file: either {"parity": {...}} or the "policy.parity" object itself.
// Throws kNotFound or kInvalidArgument naming the file.
nlohmann::json read_policy_file(const std::filesystem::path& path);

}  // namespace dermcds::pipeline
