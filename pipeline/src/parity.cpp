#include "dermcds/pipeline/parity.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <memory>
#include <set>

#include <nlohmann/json.hpp>

#include "dermcds/classifier.hpp"
#include "dermcds/error.hpp"
#include "dermcds/file_bytes.hpp"
#include "dermcds/file_util.hpp"
#include "dermcds/model_package.hpp"
#include "dermcds/model_repository.hpp"
#include "dermcds/pipeline/torch_reference.hpp"
#include "dermcds/postprocess.hpp"
#include "dermcds/runtime.hpp"
#include "scratch_directory.hpp"

namespace dermcds::pipeline {

namespace {

bool wanted(const std::string& id, const std::vector<std::string>& only) {
  if (id == kReferenceSubject || only.empty()) return true;
  return std::any_of(only.begin(), only.end(), [&](const std::string& prefix) { return id.starts_with(prefix); });
}

struct DecodedImages {
  std::vector<std::optional<RgbImage>> images;
  std::vector<std::string> errors;
};

// Photographs are a few megabytes; a far larger file in a validation folder is a mistake.
constexpr std::uint64_t kMaxImageBytes = 64ull << 20;

DecodedImages decode_all(const ImageSet& set) {
  DecodedImages out;
  for (const auto& file : set.files) {
    try {
      out.images.emplace_back(decode_image(read_file_bytes(file, kMaxImageBytes)));
      out.errors.emplace_back();
    } catch (const Error& e) {
      out.images.emplace_back(std::nullopt);
      out.errors.emplace_back(e.what());
    }
  }
  return out;
}

using Progress = std::function<void(const std::string&)>;

// Runs every decoded image through one classifier; per-image failures are recorded.
void answer_all(const Classifier& classifier, const DecodedImages& decoded, const Manifest& manifest, SubjectRun& run,
                const Progress& progress) {
  const auto start = std::chrono::steady_clock::now();
  const std::size_t n = decoded.images.size();
  for (std::size_t i = 0; i < n; ++i) {
    if (!decoded.images[i]) {
      run.answers.emplace_back(std::nullopt);
      run.errors.push_back(decoded.errors[i]);
      continue;
    }
    try {
      ClassificationResult result = classifier.classify(*decoded.images[i]);
      Answer answer = make_answer(std::move(result.probabilities), manifest);
      if (manifest.ood) {
        answer.assessment = std::string(result.assessment.status());
        answer.ood_score = result.ood_score;
      }
      answer.quality_flagged = std::any_of(result.assessment.reasons.begin(), result.assessment.reasons.end(),
                                           [](const AssessmentReason& reason) { return reason.code != "out_of_distribution"; });
      run.answers.emplace_back(std::move(answer));
      run.errors.emplace_back();
    } catch (const Error& e) {
      run.answers.emplace_back(std::nullopt);
      run.errors.emplace_back(e.what());
    }
    if ((i + 1) % 25 == 0 && i + 1 < n) progress(run.id + ": " + std::to_string(i + 1) + "/" + std::to_string(n) + " images");
  }
  run.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  progress(run.id + ": " + std::to_string(n) + " images in " + std::to_string(static_cast<int>(run.seconds * 1000)) + " ms");
}

// Runs one artifact on one provider, or says why it cannot run here.
std::optional<SubjectRun> run_subject(const ModelPackage& package, const ArtifactEntry& artifact, const std::string& provider,
                                      const ParityRequest& request, const DecodedImages& decoded, std::vector<SkippedSubject>& skipped) {
  const std::string id = artifact.runtime + "/" + artifact.precision + "/" + provider;
  ClassifierOptions options;
  options.package = package.directory();
  options.runtime = artifact.runtime;
  options.precision = artifact.precision;
  options.execution.provider = provider;
  options.execution.threads = request.threads;
  const RuntimeDescriptor* runtime = find_runtime(artifact.runtime);
  if (runtime != nullptr &&
      std::find(runtime->device_providers.begin(), runtime->device_providers.end(), provider) != runtime->device_providers.end()) {
    options.execution.device_id = request.device_id;
    options.execution.provider_options = request.gpu_provider_options;
  }
  std::unique_ptr<Classifier> classifier;
  try {
    classifier = Classifier::create(options);
  } catch (const Error& e) {
    // The reference must run; anything else that cannot start here is reported, not fatal.
    if (id == kReferenceSubject) throw;
    skipped.push_back({id, e.what()});
    return std::nullopt;
  }
  const BackendInfo& info = classifier->backend_info();
  if (info.provider != provider) {
    skipped.push_back({id, info.fallbacks.empty() ? "ran on " + info.provider + " instead" : join(info.fallbacks, "; ")});
    if (id == kReferenceSubject) throw Error(ErrorCode::kRuntimeUnavailable, "the reference " + id + " cannot run here");
    return std::nullopt;
  }
  SubjectRun run;
  run.id = id;
  run.runtime = artifact.runtime;
  run.precision = artifact.precision;
  run.provider = provider;
  run.runtime_version = info.runtime_version;
  run.artifact = artifact.file;
  run.sha256 = artifact.sha256;
  request.progress("running " + id + " (" + artifact.file + ")");
  answer_all(*classifier, decoded, package.manifest(), run, request.progress);
  return run;
}

// `ort_reference` lends the photograph checks, which depend on the image alone: PyTorch's status is
// its own guard output against the manifest's threshold, plus those checks.
SubjectRun run_pytorch(const ParityRequest& request, const ModelPackage& package, const ImageSet& set,
                       const std::filesystem::path& work_dir, const SubjectRun& ort_reference) {
  request.progress("running " + std::string(kGroundTruthSubject) + " (the PyTorch source model, via the Python pipeline)");
  const auto start = std::chrono::steady_clock::now();
  TorchReferenceRequest torch;
  torch.package_dir = package.directory();
  torch.images = set.files;
  torch.checkpoint = request.checkpoint;
  torch.work_dir = work_dir;
  torch.python = request.python;
  const TorchReference reference = run_torch_reference(torch);
  SubjectRun run;
  run.id = std::string(kGroundTruthSubject);
  run.runtime = "pytorch";
  run.precision = "fp32";
  run.provider = "cpu";
  run.runtime_version = reference.torch_version;
  run.artifact = reference.checkpoint_file;
  run.sha256 = reference.checkpoint_sha256;
  for (std::size_t i = 0; i < reference.logits.size(); ++i) {
    if (reference.logits[i]) {
      Answer answer = make_answer(softmax(*reference.logits[i]), package.manifest());
      const std::optional<OodGuard>& guard = package.manifest().ood;
      if (guard && i < reference.ood_scores.size() && reference.ood_scores[i] && i < ort_reference.answers.size() &&
          ort_reference.answers[i]) {
        answer.quality_flagged = ort_reference.answers[i]->quality_flagged;
        answer.ood_score = reference.ood_scores[i];
        const bool ood = ood_reason(*reference.ood_scores[i], *guard).has_value();
        answer.assessment = ood || answer.quality_flagged ? "not_assessable" : "assessable";
      }
      run.answers.emplace_back(std::move(answer));
    } else {
      run.answers.emplace_back(std::nullopt);
    }
    run.errors.push_back(reference.errors[i]);
  }
  run.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return run;
}

double spread(const std::vector<std::optional<Answer>>& answers) {
  double out = 0;
  const std::size_t n = answers.size();
  for (std::size_t a = 0; a < n; ++a)
    for (std::size_t b = a + 1; b < n; ++b) {
      if (!answers[a] || !answers[b]) continue;
      for (std::size_t c = 0; c < answers[a]->probabilities.size(); ++c)
        out = std::max(out, std::fabs(static_cast<double>(answers[a]->probabilities[c]) - answers[b]->probabilities[c]));
    }
  return out;
}

// The images (and both subjects' answers) of one kind: lesions or real photographs.
PairMetrics compare_kind(const ParityReport& report, const SubjectRun& reference, const SubjectRun& candidate, bool photographs) {
  std::vector<std::string> images;
  std::vector<std::optional<Answer>> r, c;
  for (std::size_t i = 0; i < report.images.size(); ++i) {
    if ((i < report.real_photograph.size() && report.real_photograph[i]) != photographs) continue;
    images.push_back(report.images[i]);
    r.push_back(reference.answers[i]);
    c.push_back(candidate.answers[i]);
  }
  return compare_answers(images, r, c, report.labels);
}

PairResult compare_pair(const ParityReport& report, const SubjectRun& reference, const SubjectRun& candidate,
                        const std::string& bound_key) {
  PairResult pair;
  pair.reference = reference.id;
  pair.candidate = candidate.id;
  pair.bound_key = bound_key;
  const ParityBounds* bounds = report.policy.find(bound_key);
  if (bounds) pair.bounds = *bounds;
  // The bounds are requirements on lesion images; real photographs are out of distribution for
  // the demo model (a separate guard handles them) and are shown apart, unchecked.
  pair.metrics = compare_kind(report, reference, candidate, false);
  if (std::find(report.real_photograph.begin(), report.real_photograph.end(), true) != report.real_photograph.end())
    pair.photographs = compare_kind(report, reference, candidate, true);
  pair.check = check_bounds(pair.metrics, bounds, bound_key);
  if (pair.metrics.assessment_images > 0 && pair.metrics.assessment_agreement < ParityPolicy::kMinAssessmentAgreement) {
    char text[128];
    std::snprintf(text, sizeof text, "assessment agreement %.4f < %.4f", pair.metrics.assessment_agreement,
                  ParityPolicy::kMinAssessmentAgreement);
    pair.check.violations.emplace_back(text);
    pair.check.passed = false;
  }
  return pair;
}

// Which images of the set are real photographs, from the image-set.json written with it
// (python/dermcds_export/image_sets.py); a directory without one holds lesions only.
std::vector<bool> real_photographs_of(const ImageSet& set) {
  std::vector<bool> out(set.files.size(), false);
  const std::filesystem::path index = set.directory / "image-set.json";
  if (!std::filesystem::exists(index)) return out;
  nlohmann::json document;
  try {
    document = nlohmann::json::parse(read_file_bytes(index, 16u << 20));
  } catch (const nlohmann::json::exception& e) {
    throw Error(ErrorCode::kInvalidArgument, index.string() + " is not valid JSON: " + e.what());
  }
  std::set<std::string> photographs;
  for (const auto& f : document.value("files", nlohmann::json::array()))
    if (f.is_object() && f.value("origin", "") == "real photograph") photographs.insert(f.value("file", ""));
  for (std::size_t i = 0; i < set.files.size(); ++i) out[i] = photographs.count(set.files[i].filename().string()) > 0;
  return out;
}

// PyTorch checks the ONNX export (the reference is the candidate there); the reference checks
// every other subject, bounded by the subject's precision.
std::vector<PairResult> compare_subjects(const ParityReport& report, const SubjectRun* pytorch) {
  std::vector<PairResult> pairs;
  const SubjectRun& reference = report.subjects.front();
  if (pytorch) pairs.push_back(compare_pair(report, *pytorch, reference, std::string(kGroundTruthBoundKey)));
  for (std::size_t s = 1; s < report.subjects.size(); ++s)
    pairs.push_back(compare_pair(report, reference, report.subjects[s], report.subjects[s].precision));
  return pairs;
}

}  // namespace

ParityReport run_parity(const ParityRequest& request) {
  const ModelPackage package = ModelPackage::open(request.package_dir);
  const Manifest& manifest = package.manifest();
  ParityReport report;
  report.package_name = manifest.name;
  report.package_version = manifest.version;
  report.package_dir = package.directory();
  report.labels = manifest.labels;
  report.created = utc_timestamp();
  report.policy = ParityPolicy::for_manifest(manifest);
  if (request.policy) report.policy.overlay(*request.policy, "the given parity policy", ErrorCode::kInvalidArgument);
  if (!manifest.reference_artifact())
    throw Error(ErrorCode::kInvalidPackage, "package " + manifest.name + "/" + manifest.version +
                                                " has no ONNX Runtime fp32 artifact, the reference every runtime is compared with");

  report.image_set = list_image_set(request.images_dir, 0, "validation image");
  for (const auto& file : report.image_set.files) report.images.push_back(file.filename().string());
  request.progress("decoding " + std::to_string(report.images.size()) + " images from " + request.images_dir.string());
  const DecodedImages decoded = decode_all(report.image_set);
  report.image_errors = decoded.errors;
  report.real_photograph = real_photographs_of(report.image_set);

  // The reference first, then every other artifact and provider.
  const ArtifactEntry* reference_artifact = manifest.reference_artifact();
  report.subjects.push_back(*run_subject(package, *reference_artifact, "cpu", request, decoded, report.skipped));
  for (const ArtifactEntry& artifact : manifest.artifacts) {
    const RuntimeDescriptor* runtime = find_runtime(artifact.runtime);
    if (!runtime || !runtime->available()) {
      report.skipped.push_back(
          {artifact.runtime + "/" + artifact.precision, runtime ? "runtime " + artifact.runtime + " cannot be loaded on this machine"
                                                                : "runtime " + artifact.runtime + " is not part of this build"});
      continue;
    }
    // Every provider the runtime's descriptor lists; one that cannot run here is listed as
    // skipped, with the reason (run_subject).
    for (const std::string_view provider_name : runtime->providers) {
      const std::string provider(provider_name);
      const std::string id = artifact.runtime + "/" + artifact.precision + "/" + provider;
      if (id == kReferenceSubject || !wanted(id, request.only)) continue;
      if (auto run = run_subject(package, artifact, provider, request, decoded, report.skipped)) report.subjects.push_back(std::move(*run));
    }
  }

  std::optional<ScratchDirectory> scratch;
  std::filesystem::path work_dir = request.work_dir;
  if (work_dir.empty()) {
    scratch.emplace("dermcds-parity");
    work_dir = scratch->path();
  }
  std::optional<SubjectRun> pytorch;
  if (request.torch_reference && wanted(std::string(kGroundTruthSubject), request.only))
    pytorch = run_pytorch(request, package, report.image_set, work_dir, report.subjects.front());

  report.pairs = compare_subjects(report, pytorch ? &*pytorch : nullptr);
  if (pytorch) report.subjects.push_back(std::move(*pytorch));
  const SubjectRun& reference = report.subjects.front();

  for (std::size_t i = 0; i < report.images.size(); ++i) {
    const auto& r = reference.answers[i];
    if (!r) continue;
    NearThresholdImage near{report.images[i], r->triage.tier, r->triage.nearest_rule_tier, r->triage.margin, {}, false};
    for (const SubjectRun& subject : report.subjects) {
      const std::string tier = subject.answers[i] ? subject.answers[i]->triage.tier : std::string("(no answer)");
      near.disagreement = near.disagreement || tier != r->triage.tier;
      near.tiers.emplace_back(subject.id, tier);
    }
    if (near.disagreement || r->triage.margin < report.policy.near_threshold_margin) report.near_threshold.push_back(std::move(near));
  }
  std::sort(report.near_threshold.begin(), report.near_threshold.end(),
            [](const auto& a, const auto& b) { return a.reference_margin < b.reference_margin; });

  report.reference_spread = spread(reference.answers);
  report.passed =
      !report.pairs.empty() && std::all_of(report.pairs.begin(), report.pairs.end(), [](const PairResult& p) { return p.check.passed; });
  return report;
}

}  // namespace dermcds::pipeline
