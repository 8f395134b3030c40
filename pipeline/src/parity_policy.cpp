#include "dermcds/pipeline/parity_policy.hpp"

#include <algorithm>
#include <cmath>

#include "dermcds/file_bytes.hpp"

namespace dermcds::pipeline {

namespace {

// The promise for float artifacts: answers differ by less than 1% and the triage tier
// never changes.
ParityBounds float_bounds() {
  ParityBounds b;
  b.max_abs_diff = 0.01;
  b.min_triage_agreement = 1.0;
  return b;
}

std::optional<double> read_fraction(const nlohmann::json& object, const char* key, const std::string& where, ErrorCode code) {
  const auto it = object.find(key);
  if (it == object.end()) return std::nullopt;
  if (!it->is_number() || !std::isfinite(it->get<double>()) || it->get<double>() < 0.0 || it->get<double>() > 1.0)
    throw Error(code, where + "." + key + " must be a number in [0, 1]");
  return it->get<double>();
}

ParityBounds parse_bounds(const nlohmann::json& object, const std::string& where, ErrorCode code) {
  if (!object.is_object()) throw Error(code, where + " must be an object");
  static const char* const kKeys[] = {"max_abs_diff", "mean_abs_diff", "min_top1_agreement", "min_triage_agreement"};
  for (const auto& [key, value] : object.items()) {
    if (std::find(std::begin(kKeys), std::end(kKeys), key) == std::end(kKeys))
      throw Error(code, where + " has an unknown bound '" + key +
                            "' (known: max_abs_diff, mean_abs_diff, min_top1_agreement, min_triage_agreement)");
  }
  ParityBounds b;
  b.max_abs_diff = read_fraction(object, "max_abs_diff", where, code);
  b.mean_abs_diff = read_fraction(object, "mean_abs_diff", where, code);
  b.min_top1_agreement = read_fraction(object, "min_top1_agreement", where, code);
  b.min_triage_agreement = read_fraction(object, "min_triage_agreement", where, code);
  return b;
}

}  // namespace

void ParityBounds::overlay(const ParityBounds& other) {
  if (other.max_abs_diff) max_abs_diff = other.max_abs_diff;
  if (other.mean_abs_diff) mean_abs_diff = other.mean_abs_diff;
  if (other.min_top1_agreement) min_top1_agreement = other.min_top1_agreement;
  if (other.min_triage_agreement) min_triage_agreement = other.min_triage_agreement;
}

ParityPolicy ParityPolicy::defaults() {
  ParityPolicy policy;
  policy.bounds["fp32"] = float_bounds();
  policy.bounds["fp16"] = float_bounds();
  policy.bounds[std::string(kGroundTruthBoundKey)] = float_bounds();
  return policy;
}

ParityPolicy ParityPolicy::for_manifest(const Manifest& manifest) {
  ParityPolicy policy = defaults();
  const nlohmann::json& document = manifest.document;
  if (document.contains("policy") && document["policy"].is_object() && document["policy"].contains("parity"))
    policy.overlay(document["policy"]["parity"], manifest.name + "/" + manifest.version + " manifest policy.parity",
                   ErrorCode::kInvalidPackage);
  return policy;
}

void ParityPolicy::overlay(const nlohmann::json& parity, const std::string& origin, ErrorCode code) {
  if (!parity.is_object()) throw Error(code, origin + " must be an object");
  for (const auto& [key, value] : parity.items()) {
    if (key == "bounds") {
      if (!value.is_object()) throw Error(code, origin + ".bounds must be an object keyed by precision");
      for (const auto& [precision, object] : value.items())
        bounds[precision].overlay(parse_bounds(object, origin + ".bounds." + precision, code));
    } else if (key == "near_threshold_margin") {
      if (!value.is_number() || value.get<double>() < 0.0 || value.get<double>() > 1.0)
        throw Error(code, origin + ".near_threshold_margin must be a number in [0, 1]");
      near_threshold_margin = value.get<double>();
    } else if (key != "source" && key != "note") {  // free-text justification is allowed
      throw Error(code, origin + " has an unknown field '" + key + "' (known: bounds, near_threshold_margin, source, note)");
    }
  }
}

const ParityBounds* ParityPolicy::find(std::string_view key) const {
  const auto it = bounds.find(key);
  return it == bounds.end() || it->second.empty() ? nullptr : &it->second;
}

nlohmann::ordered_json to_json(const ParityBounds& b) {
  nlohmann::ordered_json j = nlohmann::ordered_json::object();
  if (b.max_abs_diff) j["max_abs_diff"] = *b.max_abs_diff;
  if (b.mean_abs_diff) j["mean_abs_diff"] = *b.mean_abs_diff;
  if (b.min_top1_agreement) j["min_top1_agreement"] = *b.min_top1_agreement;
  if (b.min_triage_agreement) j["min_triage_agreement"] = *b.min_triage_agreement;
  return j;
}

nlohmann::ordered_json ParityPolicy::to_json() const {
  nlohmann::ordered_json b = nlohmann::ordered_json::object();
  for (const auto& [key, value] : bounds) b[key] = pipeline::to_json(value);
  return {{"bounds", b}, {"near_threshold_margin", near_threshold_margin}};
}

nlohmann::json read_policy_file(const std::filesystem::path& path) {
  nlohmann::json document;
  try {
    document = nlohmann::json::parse(read_file_bytes(path, 1 << 20));
  } catch (const nlohmann::json::exception& e) {
    throw Error(ErrorCode::kInvalidArgument, path.string() + " is not valid JSON: " + e.what());
  }
  if (document.is_object() && document.contains("parity")) document = document["parity"];
  ParityPolicy check;
  check.overlay(document, path.string(), ErrorCode::kInvalidArgument);  // refuse a malformed file now
  return document;
}

}  // namespace dermcds::pipeline
