#include "dermcds/classifier.hpp"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <sstream>

#include <spdlog/spdlog.h>

#include "dermcds/error.hpp"
#include "dermcds/file_util.hpp"
#include "dermcds/postprocess.hpp"
#include "dermcds/preprocess.hpp"
#include "dermcds/serving_rule.hpp"

namespace dermcds {

namespace {

using Clock = std::chrono::steady_clock;
double milliseconds_since(Clock::time_point start) { return std::chrono::duration<double, std::milli>(Clock::now() - start).count(); }

// The artifacts `auto` may take among those of runtime `only` (null: of every compiled runtime
// available here) at `precision` (empty: any), best first as each runtime's descriptor ranks
// them for this machine; a tie goes to the artifact listed first in the manifest.
std::vector<const ArtifactEntry*> ranked_artifacts(const Manifest& manifest, const RuntimeDescriptor* only, std::string_view precision) {
  const MachineKind machine = this_machine();
  std::vector<std::pair<int, const ArtifactEntry*>> ranked;
  for (const ArtifactEntry& artifact : manifest.artifacts) {
    if (!precision.empty() && artifact.precision != precision) continue;
    const RuntimeDescriptor* runtime = only ? (artifact.runtime == only->name ? only : nullptr) : find_runtime(artifact.runtime);
    if (!runtime || (!only && !runtime->available())) continue;
    ranked.emplace_back(runtime->preference(machine, artifact.precision), &artifact);
  }
  std::stable_sort(ranked.begin(), ranked.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<const ArtifactEntry*> out;
  for (const auto& r : ranked) out.push_back(r.second);
  return out;
}

// Whether `provider` of `runtime` executes on the CPU: a provider that is not one of its device
// providers, or "auto" where no GPU exists.
bool executes_on_cpu(const RuntimeDescriptor& runtime, std::string_view provider) {
  const auto& device = runtime.device_providers;
  if (provider == "auto") return device.empty() || !this_machine_has_nvidia_gpu();
  return std::find(device.begin(), device.end(), provider) == device.end();
}

// The one rule for int8 under `auto` precision on a server (docs/service.md, "Which artifact
// serves"): a runtime may rank its int8 artifact first there (ONNX Runtime's QDQ artifact), but
// it is taken only on the CPU and only when the version's parity evidence shows that very
// artifact passed its check. Otherwise the next artifact serves and the reason joins the
// result's fallbacks. On phones the version-level serving rule alone decides, as before.
// "" when `artifact` may be taken.
std::string why_not_automatically(const Manifest& manifest, const ArtifactEntry& artifact, std::string_view provider) {
  if (artifact.precision != "int8" || this_machine() != MachineKind::kServer) return "";
  const RuntimeDescriptor* runtime = find_runtime(artifact.runtime);
  if (runtime && !executes_on_cpu(*runtime, provider)) return "int8 is served automatically on the CPU only";
  std::string why;
  return artifact_passed_parity(manifest, artifact, &why) ? "" : why;
}

RuntimeChoice pick(const Manifest& manifest, const RuntimeDescriptor* only, std::string_view precision, std::string_view provider) {
  const std::vector<const ArtifactEntry*> ranked = ranked_artifacts(manifest, only, precision);
  RuntimeChoice choice;
  if (ranked.empty()) return choice;
  const auto descriptor = [&](const ArtifactEntry* a) { return only ? only : find_runtime(a->runtime); };
  if (!precision.empty()) return {ranked.front(), descriptor(ranked.front()), {}};
  for (const ArtifactEntry* artifact : ranked) {
    if (const std::string why = why_not_automatically(manifest, *artifact, provider); !why.empty()) {
      choice.passed_over.push_back(artifact->runtime + "/" + artifact->precision + " (" + artifact->file + ") not served: " + why);
      continue;
    }
    choice.artifact = artifact;
    choice.runtime = descriptor(artifact);
    return choice;
  }
  // Nothing else to serve: the version-level serving rule has admitted the version, so its only
  // artifacts serve, as an explicit precision would.
  return {ranked.front(), descriptor(ranked.front()), {}};
}

std::string compiled_runtime_names() { return join(compiled_runtimes(), ", ", &RuntimeDescriptor::name); }

std::string shape_text(const std::vector<std::int64_t>& shape) {
  std::ostringstream out;
  out << '[';
  for (std::size_t i = 0; i < shape.size(); ++i) out << (i ? "," : "") << shape[i];
  out << ']';
  return out.str();
}

void check_batch_shape(const Tensor& images, TensorLayout layout, int size) {
  const std::vector<std::int64_t> expected_tail =
      layout == TensorLayout::kNCHW ? std::vector<std::int64_t>{3, size, size} : std::vector<std::int64_t>{size, size, 3};
  const bool ok = images.shape.size() == 4 && images.shape[0] >= 1 &&
                  std::equal(expected_tail.begin(), expected_tail.end(), images.shape.begin() + 1) &&
                  Tensor::checked_element_count(images.shape) == static_cast<std::int64_t>(images.data.size());
  if (!ok) {
    std::ostringstream message;
    message << "input tensor has shape " << shape_text(images.shape) << " (" << images.data.size() << " values); the model takes [N,"
            << shape_text(expected_tail).substr(1) << " in " << to_string(layout);
    throw Error(ErrorCode::kInvalidArgument, message.str());
  }
}

}  // namespace

RuntimeChoice choose_runtime(const Manifest& manifest, std::string_view runtime, std::string_view precision, std::string_view provider) {
  const std::string_view wanted_precision = precision == "auto" ? std::string_view{} : precision;
  if (runtime != "auto") {
    const RuntimeDescriptor* descriptor = find_runtime(runtime);
    if (!descriptor)
      throw Error(ErrorCode::kRuntimeUnavailable,
                  "runtime '" + std::string(runtime) + "' is not part of this build (it has: " + compiled_runtime_names() + ")");
    if (!descriptor->available())
      throw Error(ErrorCode::kRuntimeUnavailable, "runtime '" + std::string(runtime) + "' cannot be loaded on this machine");
    RuntimeChoice choice = pick(manifest, descriptor, wanted_precision, provider);
    if (!choice.artifact)
      throw Error(ErrorCode::kNotFound, "package " + manifest.name + "/" + manifest.version + " has no " + std::string(runtime) +
                                            (wanted_precision.empty() ? "" : " " + std::string(wanted_precision)) + " artifact");
    return choice;
  }
  if (RuntimeChoice choice = pick(manifest, nullptr, wanted_precision, provider); choice.artifact) return choice;
  throw Error(ErrorCode::kRuntimeUnavailable, "no artifact of package " + manifest.name + "/" + manifest.version +
                                                  (wanted_precision.empty() ? "" : " at precision " + std::string(wanted_precision)) +
                                                  " can run with the runtimes of this build (" + compiled_runtime_names() + ")");
}

std::vector<std::string> usable_runtimes(const Manifest& manifest) {
  std::vector<std::string> out;
  for (const RuntimeDescriptor* r : compiled_runtimes())
    if (r->available() && manifest.find_artifact(r->name)) out.emplace_back(r->name);
  return out;
}

Classifier::Classifier(ModelPackage package, std::unique_ptr<InferenceBackend> backend, DecodeLimits limits,
                       std::vector<std::string> passed_over)
    : package_(std::move(package)), backend_(std::move(backend)), info_(backend_->info()), limits_(limits) {
  info_.fallbacks.insert(info_.fallbacks.begin(), passed_over.begin(), passed_over.end());
}

Classifier::~Classifier() = default;

std::unique_ptr<Classifier> Classifier::create(const ClassifierOptions& options) {
  ModelPackage package = ModelPackage::open(options.package);
  const Manifest& manifest = package.manifest();
  const RuntimeChoice choice = choose_runtime(manifest, options.runtime, options.precision, options.execution.provider);

  BackendRequest request;
  request.model_file = package.artifact_path(*choice.artifact);
  request.precision = choice.artifact->precision;
  request.input_name = manifest.input_name;
  request.output_name = manifest.output_name;
  if (manifest.ood) request.ood_output_name = manifest.ood->output;
  request.input_size = manifest.input.crop_size;
  request.num_classes = static_cast<int>(manifest.labels.size());
  request.options = options.execution;
  std::unique_ptr<InferenceBackend> backend = choice.runtime->create(request);
  if (backend->input_layout() != choice.artifact->layout)
    throw Error(ErrorCode::kModelMismatch, request.model_file.string() + ": the manifest says its input is " +
                                               std::string(to_string(choice.artifact->layout)) + ", the runtime reads " +
                                               std::string(to_string(backend->input_layout())));
  for (const std::string& fallback : choice.passed_over) spdlog::warn("{}: {}", manifest.name, fallback);
  for (const std::string& fallback : backend->info().fallbacks) spdlog::warn("{}: {}", manifest.name, fallback);
  spdlog::info("loaded {}/{} on {} {} ({} provider, {})", manifest.name, manifest.version, backend->info().runtime,
               backend->info().runtime_version, backend->info().provider, backend->info().precision);
  return std::unique_ptr<Classifier>(new Classifier(std::move(package), std::move(backend), options.limits, choice.passed_over));
}

PreparedImage Classifier::prepare(std::span<const std::uint8_t> encoded_image) const {
  const auto start = Clock::now();
  RgbImage image = decode_image(encoded_image, limits_);
  const double decode_ms = milliseconds_since(start);
  PreparedImage prepared = prepare(image);
  prepared.timings.decode_ms = decode_ms;
  return prepared;
}

PreparedImage Classifier::prepare(const RgbImage& image) const {
  const auto start = Clock::now();
  const int size = manifest().input.crop_size;
  PreparedImage prepared;
  prepared.input.resize(static_cast<std::size_t>(3) * size * size);
  preprocess_into(image, manifest().input, input_layout(), prepared.input);
  prepared.quality = quality_reasons(measure_quality(image, size), size);
  prepared.timings.preprocess_ms = milliseconds_since(start);
  return prepared;
}

ClassificationResult Classifier::classify(std::span<const std::uint8_t> encoded_image) const {
  const PreparedImage prepared = prepare(encoded_image);
  return std::move(classify_batch({&prepared, 1}).front());
}

ClassificationResult Classifier::classify(const RgbImage& image) const {
  const PreparedImage prepared = prepare(image);
  return std::move(classify_batch({&prepared, 1}).front());
}

std::vector<ClassificationResult> Classifier::classify_batch(std::span<const PreparedImage> images) const {
  std::vector<ClassificationResult> results;
  if (images.empty()) return results;
  const Manifest& m = manifest();
  const std::size_t per_image = static_cast<std::size_t>(3) * m.input.crop_size * m.input.crop_size;
  const std::size_t limit = max_batch() > 0 ? static_cast<std::size_t>(max_batch()) : images.size();
  results.reserve(images.size());

  for (std::size_t first = 0; first < images.size(); first += limit) {
    const std::size_t count = std::min(limit, images.size() - first);
    Tensor batch;
    batch.shape = input_layout() == TensorLayout::kNCHW
                      ? std::vector<std::int64_t>{static_cast<std::int64_t>(count), 3, m.input.crop_size, m.input.crop_size}
                      : std::vector<std::int64_t>{static_cast<std::int64_t>(count), m.input.crop_size, m.input.crop_size, 3};
    batch.data.resize(count * per_image);
    for (std::size_t i = 0; i < count; ++i) {
      const PreparedImage& image = images[first + i];
      if (image.input.size() != per_image)
        throw Error(ErrorCode::kInvalidArgument,
                    "prepared image has " + std::to_string(image.input.size()) + " values, this model needs " + std::to_string(per_image));
      std::memcpy(batch.data.data() + i * per_image, image.input.data(), per_image * sizeof(float));
    }

    const auto inference_start = Clock::now();
    const InferenceOutputs outputs = run_serialized(batch);
    const Tensor& logits = outputs.logits;
    const double inference_ms = milliseconds_since(inference_start);

    const std::size_t classes = m.labels.size();
    for (std::size_t i = 0; i < count; ++i) {
      const auto post_start = Clock::now();
      ClassificationResult r;
      const BackendInfo& info = backend_info();
      r.model_name = m.name;
      r.model_version = m.version;
      r.runtime = info.runtime;
      r.runtime_version = info.runtime_version;
      r.provider = info.provider;
      r.precision = info.precision;
      r.fallbacks = info.fallbacks;
      r.labels = m.labels;
      r.probabilities = softmax({logits.data.data() + i * classes, classes});
      r.top1 = top_k(r.probabilities, 1).front();
      r.triage = decide_triage(r.probabilities, m.labels, m.triage);
      r.assessment.reasons = images[first + i].quality;
      if (m.ood) {
        r.ood_score = outputs.ood_score.data[i];
        if (auto reason = ood_reason(*r.ood_score, *m.ood)) r.assessment.reasons.insert(r.assessment.reasons.begin(), std::move(*reason));
      }
      if (!r.assessment.assessable()) {
        // No tier is suggested for an image that cannot be assessed (docs/safety.md).
        r.triage = TriageDecision{};
        r.triage.tier = std::string(kNotAssessableTier);
        r.triage.margin = 0.0;
      }
      r.batch_size = static_cast<int>(count);
      r.timings = images[first + i].timings;
      r.timings.inference_ms = inference_ms;
      r.timings.postprocess_ms = milliseconds_since(post_start);
      results.push_back(std::move(r));
    }
  }
  return results;
}

Tensor Classifier::infer(const Tensor& images) const { return infer_outputs(images).logits; }

InferenceOutputs Classifier::infer_outputs(const Tensor& images) const {
  check_batch_shape(images, input_layout(), manifest().input.crop_size);
  if (max_batch() > 0 && images.shape[0] > max_batch())
    throw Error(ErrorCode::kInvalidArgument,
                "batch of " + std::to_string(images.shape[0]) + " exceeds this model's maximum of " + std::to_string(max_batch()));
  return run_serialized(images);
}

InferenceOutputs Classifier::run_serialized(const Tensor& images) const {
  InferenceOutputs outputs;
  {
    std::lock_guard lock(run_mutex_);
    outputs = backend_->run_outputs(images);
  }
  const Tensor& logits = outputs.logits;
  const auto classes = static_cast<std::int64_t>(manifest().labels.size());
  if (logits.shape.size() != 2 || logits.shape[0] != images.shape[0] || logits.shape[1] != classes ||
      static_cast<std::int64_t>(logits.data.size()) != logits.shape[0] * classes)
    throw Error(ErrorCode::kModelMismatch,
                "runtime returned an output that is not [" + std::to_string(images.shape[0]) + "," + std::to_string(classes) + "] logits");
  if (manifest().ood && (outputs.ood_score.shape != std::vector<std::int64_t>{images.shape[0], 1} ||
                         static_cast<std::int64_t>(outputs.ood_score.data.size()) != images.shape[0]))
    throw Error(ErrorCode::kModelMismatch, "runtime returned no [" + std::to_string(images.shape[0]) + ",1] " + manifest().ood->output +
                                               " output, which the manifest's safety guard needs");
  return outputs;
}

}  // namespace dermcds
