#include "dermcds/pipeline/model_build.hpp"

#include <algorithm>

#include "artifact_conversion.hpp"
#include "dermcds/error.hpp"
#include "dermcds/file_bytes.hpp"
#include "dermcds/file_util.hpp"
#include "dermcds/manifest.hpp"
#include "dermcds/model_repository.hpp"
#include "dermcds/pipeline/export.hpp"
#include "dermcds/pipeline/lifecycle.hpp"
#include "dermcds/pipeline/parity_report.hpp"
#include "dermcds/serving_rule.hpp"
#include "dermcds/sha256.hpp"
#include "scratch_directory.hpp"

namespace dermcds::pipeline {

namespace {

const std::vector<std::string> kPrecisionOrder = {"fp32", "fp16", "int8"};

std::vector<std::string> normalized_precisions(const std::vector<std::string>& requested) {
  for (const auto& p : requested)
    if (std::find(kPrecisionOrder.begin(), kPrecisionOrder.end(), p) == kPrecisionOrder.end())
      throw Error(ErrorCode::kInvalidArgument, "unknown TFLite precision '" + p + "' (fp32, fp16, int8)");
  std::vector<std::string> out;
  for (const auto& p : kPrecisionOrder)
    if (std::find(requested.begin(), requested.end(), p) != requested.end()) out.push_back(p);
  return out;
}

// Asks the Python pipeline for its version and the checkpoint (training the demo one if needed).
nlohmann::json python_inputs(const BuildRequest& request, const std::filesystem::path& work_dir) {
  const std::filesystem::path out = work_dir / "build-inputs.json";
  std::vector<std::string> arguments = {"build-inputs", "--arch", request.architecture, "--out", out.string()};
  if (!request.checkpoint.empty()) {
    arguments.push_back("--checkpoint");
    arguments.push_back(std::filesystem::absolute(request.checkpoint).string());
  }
  request.python.run(arguments);
  try {
    return nlohmann::json::parse(read_file_bytes(out));
  } catch (const nlohmann::json::exception& e) {
    throw Error(ErrorCode::kRuntimeFailure, out.string() + " is not the pipeline's build-inputs document: " + e.what());
  }
}

// Versions of the model that lifecycle builds made from the same inputs, newest first.
std::optional<std::pair<std::string, std::string>> version_with_fingerprint(const ModelRepository& repository, const std::string& model,
                                                                            const std::string& fingerprint) {
  std::vector<std::string> versions = repository.versions(model);
  std::reverse(versions.begin(), versions.end());
  for (const std::string& version : versions) {
    try {
      const Manifest m = read_manifest(repository.package_dir(model, version));
      const nlohmann::json& d = m.document;
      if (d.contains("lifecycle") && d["lifecycle"].is_object() && d["lifecycle"].value("fingerprint", "") == fingerprint)
        return std::make_pair(version, d["lifecycle"].value("status", ""));
    } catch (const Error&) {
      // A broken package is nobody's match; `models verify` reports it.
    }
  }
  return std::nullopt;
}

std::string rejection_reason(const ParityReport& report) {
  std::vector<std::string> reasons;
  for (const PairResult& pair : report.pairs)
    for (const std::string& v : pair.check.violations) reasons.push_back(pair.candidate + " vs " + pair.reference + ": " + v);
  if (report.pairs.empty()) reasons.push_back("no pair of runtimes was compared");
  return join(reasons, "; ");
}

// The artifacts whose own checks failed, when the reference (ONNX fp32, checked against
// PyTorch) passed: those are dropped from the version, the rest of it may serve. Empty when the
// whole version must be rejected (the reference failed, or nothing was compared).
struct FailedArtifact {
  ArtifactEntry artifact;
  std::vector<const PairResult*> pairs;
};
std::optional<std::vector<FailedArtifact>> failed_artifacts(const ParityReport& report, const Manifest& manifest) {
  std::vector<FailedArtifact> failed;
  if (report.pairs.empty()) return std::nullopt;
  for (const PairResult& pair : report.pairs) {
    if (pair.check.passed) continue;
    const auto subject =
        std::find_if(report.subjects.begin(), report.subjects.end(), [&](const SubjectRun& s) { return s.id == pair.candidate; });
    if (pair.bound_key == "pytorch" || subject == report.subjects.end() || subject->runtime == "pytorch") return std::nullopt;
    const ArtifactEntry* artifact = manifest.find_artifact(subject->runtime, subject->precision);
    if (!artifact) return std::nullopt;
    if (artifact == manifest.reference_artifact()) return std::nullopt;  // the reference itself
    auto it = std::find_if(failed.begin(), failed.end(), [&](const FailedArtifact& f) { return f.artifact.file == artifact->file; });
    if (it == failed.end()) it = failed.insert(failed.end(), FailedArtifact{*artifact, {}});
    it->pairs.push_back(&pair);
  }
  return failed;
}

// Moves each failed artifact out of the version (into rejected/, unlisted, kept as evidence) and
// records it with its figures in lifecycle.rejected_artifacts. Returns one line per artifact.
std::vector<std::string> drop_failed_artifacts(const std::filesystem::path& package, nlohmann::json& document,
                                               const std::vector<FailedArtifact>& failed) {
  std::vector<std::string> lines;
  std::filesystem::create_directories(package / "rejected");
  nlohmann::json kept = nlohmann::json::array();
  for (const auto& a : document["artifacts"])
    if (std::none_of(failed.begin(), failed.end(), [&](const FailedArtifact& f) { return f.artifact.file == a.value("file", ""); }))
      kept.push_back(a);
  document["artifacts"] = kept;
  for (const FailedArtifact& f : failed) {
    const std::filesystem::path moved = std::filesystem::path("rejected") / std::filesystem::path(f.artifact.file).filename();
    std::filesystem::rename(package / f.artifact.file, package / moved);
    nlohmann::json figures = nlohmann::json::array();
    std::vector<std::string> violations;
    for (const PairResult* p : f.pairs) {
      figures.push_back({{"candidate", p->candidate},
                         {"reference", p->reference},
                         {"mean_abs_diff", p->metrics.mean_abs_diff},
                         {"max_abs_diff", p->metrics.max_abs_diff},
                         {"top1_agreement", p->metrics.top1_agreement},
                         {"triage_agreement", p->metrics.triage_agreement},
                         {"violations", p->check.violations}});
      for (const std::string& v : p->check.violations) violations.push_back(p->candidate + ": " + v);
    }
    const std::string reason = join(violations, "; ");
    document["lifecycle"]["rejected_artifacts"].push_back({{"file", moved.string()},
                                                           {"runtime", f.artifact.runtime},
                                                           {"precision", f.artifact.precision},
                                                           {"sha256", f.artifact.sha256},
                                                           {"reason", reason},
                                                           {"figures", figures}});
    lines.push_back(f.artifact.runtime + "/" + f.artifact.precision + " (" + f.artifact.file + "): " + reason);
  }
  return lines;
}

}  // namespace

nlohmann::ordered_json BuildInputs::to_json() const {
  nlohmann::ordered_json j;
  j["architecture"] = architecture;
  j["name"] = package_name;
  j["checkpoint"] = checkpoint;
  j["exporter_version"] = exporter_version;
  j["tflite_precisions"] = tflite_precisions;
  // Only when asked for, so that the fingerprints of versions built without it stay what they were.
  if (onnx_int8) j["onnx_int8"] = true;
  if (!tflite_precisions.empty() || onnx_int8) j["converter_version"] = converter_version;
  if (calibration)
    j["calibration"] = {{"sha256", calibration->sha256}, {"images", calibration->files.size()}, {"limit", calibration_limit}};
  if (policy) j["parity_policy"] = nlohmann::ordered_json::parse(policy->dump());  // sorted keys: canonical
  return j;
}

std::string BuildInputs::fingerprint() const {
  // The checkpoint's location is not an input: the same bytes elsewhere build the same package.
  nlohmann::ordered_json j = to_json();
  j["checkpoint"] = checkpoint.value("sha256", "");
  const std::string text = j.dump();
  return sha256_hex({reinterpret_cast<const std::uint8_t*>(text.data()), text.size()});
}

BuildInputs resolve_build_inputs(const BuildRequest& request) {
  if (request.architecture.empty()) throw Error(ErrorCode::kInvalidArgument, "a build needs an architecture (--arch)");
  BuildInputs inputs;
  inputs.architecture = request.architecture;
  inputs.package_name = request.name.empty() ? default_package_name(request.architecture) : request.name;
  ModelRepository(request.repository).package_dir(inputs.package_name, "1");  // validates the name early
  inputs.tflite_precisions = normalized_precisions(request.tflite_precisions);
  inputs.onnx_int8 = request.onnx_int8;
  if (!inputs.tflite_precisions.empty() || inputs.onnx_int8) {
    if (!converter_compiled_in())
      throw Error(ErrorCode::kRuntimeUnavailable, std::string(inputs.onnx_int8 ? "an ONNX int8" : "TFLite") +
                                                      " artifact was asked for, but this build of dermcds has no converter");
    inputs.converter_version = converter_version();
  }
  const auto wants = [&](const char* precision) {
    return std::find(inputs.tflite_precisions.begin(), inputs.tflite_precisions.end(), precision) != inputs.tflite_precisions.end();
  };
  if ((wants("int8") || inputs.onnx_int8) && request.calibration_dir.empty())
    throw Error(ErrorCode::kInvalidArgument, "an int8 artifact needs --calibration DIR");
  if (!request.calibration_dir.empty()) {
    // fp16 measures which weights stay float32 on the same images (docs/converter.md, "fp16").
    if (!wants("int8") && !wants("fp16") && !inputs.onnx_int8)
      throw Error(ErrorCode::kInvalidArgument, "--calibration applies to int8 and fp16 artifacts only");
    inputs.calibration = list_image_set(request.calibration_dir, request.calibration_limit, "calibration image");
    inputs.calibration_limit = request.calibration_limit;
    if (inputs.onnx_int8 && inputs.calibration->files.size() < onnx_int8_min_calibration_images())
      throw Error(ErrorCode::kInvalidArgument, "calibration directory " + request.calibration_dir.string() + " holds " +
                                                   std::to_string(inputs.calibration->files.size()) + " images; ONNX int8 needs at least " +
                                                   std::to_string(onnx_int8_min_calibration_images()));
  }

  inputs.policy = request.policy;

  ScratchDirectory scratch("dermcds-build-inputs");
  const nlohmann::json python = python_inputs(request, scratch.path());
  try {
    inputs.exporter_version = python.at("exporter").at("version").get<std::string>();
    const nlohmann::json& c = python.at("checkpoint");
    inputs.checkpoint = {{"source", c.at("source").get<std::string>()},
                         {"file", c.at("file").get<std::string>()},
                         {"sha256", c.at("sha256").get<std::string>()}};
    if (c.contains("path")) inputs.checkpoint["path"] = c["path"].get<std::string>();
  } catch (const nlohmann::json::exception& e) {
    throw Error(ErrorCode::kRuntimeFailure, std::string("the pipeline's build-inputs document lacks a field: ") + e.what());
  }
  return inputs;
}

namespace {

BuildOutcome build_model_unchecked(const BuildRequest& request) {
  if (request.validation_dir.empty()) throw Error(ErrorCode::kInvalidArgument, "a build needs validation images (--images DIR)");
  list_image_set(request.validation_dir, 0, "validation image");  // fail before any work if there are none
  const BuildInputs inputs = resolve_build_inputs(request);
  const std::string fingerprint = inputs.fingerprint();
  const std::string& name = inputs.package_name;

  std::filesystem::create_directories(request.repository / name);
  const ModelRepository repository(request.repository);
  // One build of a model at a time; promotions take their own lock.
  FileLock build_lock(request.repository / name / ".build.lock");

  BuildOutcome outcome;
  outcome.fingerprint = fingerprint;
  if (!request.force) {
    if (const auto match = version_with_fingerprint(repository, name, fingerprint)) {
      outcome.result = BuildResult::kUpToDate;
      outcome.version = match->first;
      outcome.package_dir = repository.package_dir(name, match->first);
      outcome.matched_status = match->second;
      outcome.reason = "version " + match->first + " (" + match->second + ") was built from these inputs";
      return outcome;
    }
  }

  const std::string version = repository.next_version(name);
  const std::filesystem::path destination = repository.package_dir(name, version);
  // Inside the model's folder, hidden: the repository never lists it, and the final move is a
  // rename on one file system.
  ScratchDirectory staging(".build-" + version, request.repository / name);
  request.progress("building " + name + " version " + version + " (inputs " + fingerprint.substr(0, 12) + ")");

  ExportRequest export_request;
  export_request.architecture = request.architecture;
  export_request.checkpoint = request.checkpoint;
  export_request.repository = staging.path();
  export_request.name = name;
  export_request.version = version;
  export_request.check_samples = request.check_samples;
  export_request.python = request.python;
  export_request.progress = request.progress;
  const std::filesystem::path package = export_package(export_request).package_dir;

  // The exporter must have used the very checkpoint the inputs were resolved from.
  {
    const Manifest exported = read_manifest(package);
    const std::string exported_sha = exported.document.value("/provenance/checkpoint/sha256"_json_pointer, std::string());
    if (exported_sha != inputs.checkpoint.value("sha256", ""))
      throw Error(ErrorCode::kInternal, "the exporter recorded checkpoint sha256 " + exported_sha + ", the build resolved " +
                                            inputs.checkpoint.value("sha256", "") + "; nothing installed");
  }

  for (const std::string& precision : inputs.tflite_precisions) {
    request.progress("converting to TFLite " + precision);
    ArtifactConversion conversion;
    conversion.package_dir = package;
    conversion.precision = precision;
    if (precision == "int8" || precision == "fp16") {
      conversion.calibration_dir = request.calibration_dir;
      conversion.calibration_limit = request.calibration_limit;
    }
    conversion.progress = request.progress;
    convert_package_to_tflite(conversion);
  }
  if (inputs.onnx_int8) {
    request.progress("quantizing the ONNX model to int8 (QDQ)");
    ArtifactConversion conversion;
    conversion.package_dir = package;
    conversion.calibration_dir = request.calibration_dir;
    conversion.calibration_limit = request.calibration_limit;
    conversion.progress = request.progress;
    quantize_package_to_onnx_int8(conversion);
  }

  {
    nlohmann::json document = read_manifest(package).document;
    if (request.policy) document["policy"]["parity"] = *request.policy;
    document["lifecycle"] = {{"status", "pending"},
                             {"fingerprint", fingerprint},
                             {"inputs", nlohmann::json::parse(inputs.to_json().dump())},
                             {"built", utc_timestamp()}};
    write_manifest(package, document);
  }

  ParityRequest parity;
  parity.package_dir = package;
  parity.images_dir = request.validation_dir;
  parity.checkpoint = request.checkpoint;
  parity.threads = request.threads;
  parity.python = request.python;
  parity.progress = request.progress;
  ParityReport report = run_parity(parity);
  ParityReport shown = report;  // the files name the package where it will be, not the staging area
  shown.package_dir = destination;
  const ReportFiles files = write_report_files(shown, package / "parity", request.python);
  record_in_manifest(report, files);

  nlohmann::json document = read_manifest(package).document;
  // A version keeps the artifacts that passed (docs/lifecycle.md, "A failing artifact"): when
  // only non-reference artifacts failed, they leave the version and the rest is accepted.
  bool accepted = report.passed;
  std::vector<std::string> dropped;
  if (!report.passed) {
    if (const auto failed = failed_artifacts(report, read_manifest(package)); failed && !failed->empty()) {
      dropped = drop_failed_artifacts(package, document, *failed);
      accepted = true;
    }
  }
  document["lifecycle"]["status"] = accepted ? "accepted" : "rejected";
  if (!accepted) document["lifecycle"]["reason"] = rejection_reason(report);
  write_manifest(package, document);
  for (const std::string& line : dropped) request.progress("artifact rejected, not part of version " + version + ": " + line);

  if (std::filesystem::exists(destination))
    throw Error(ErrorCode::kInvalidArgument, destination.string() + " appeared during the build; versions are never overwritten");
  ModelLifecycle lifecycle(request.repository, name);
  // The new version must not start serving by being the highest one: only promotion makes it active.
  if (const auto pinned = lifecycle.pin_active_version("kept active while version " + version + " is installed"))
    request.progress("version " + *pinned + " served without an ACTIVE marker; marked it active before installing " + version);
  std::filesystem::rename(package, destination);
  sync_directory(destination.parent_path());
  request.progress("installed " + destination.string() + (accepted ? " (accepted)" : " (REJECTED)"));

  outcome.version = version;
  outcome.package_dir = destination;
  outcome.result = accepted ? BuildResult::kAccepted : BuildResult::kRejected;
  outcome.reason = accepted ? "" : rejection_reason(report);
  outcome.rejected_artifacts = dropped;
  report.package_dir = destination;
  outcome.parity = std::move(report);

  lifecycle.record({utc_timestamp(), "build", version, "",
                    outcome.result == BuildResult::kRejected ? "rejected: " + outcome.reason
                    : dropped.empty()                        ? "accepted"
                                                             : "accepted without " + join(dropped, "; ")});
  if (outcome.result == BuildResult::kAccepted && request.promote) {
    lifecycle.promote(version, "promoted by the build that made it");
    outcome.promoted = true;
  }
  return outcome;
}

}  // namespace

BuildOutcome build_model(const BuildRequest& request) {
  // The module's edge: a std::filesystem error (a full disk, a permission) leaves as the named
  // code, not as an unknown exception the CLI would call a bug. The staging directory is gone by
  // now (ScratchDirectory), so nothing partial is left in the repository.
  try {
    return build_model_unchecked(request);
  } catch (...) {
    throw current_exception_as_error();
  }
}

}  // namespace dermcds::pipeline
