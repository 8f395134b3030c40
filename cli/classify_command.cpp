// dermcds classify IMAGE... : classify lesion photographs with a model package.
#include <cstdio>
#include <iostream>
#include <optional>

#include "batch_classify.hpp"
#include "classifier_flags.hpp"
#include "command.hpp"
#include "dermcds/clinical/audit_log.hpp"
#include "dermcds/clinical/fhir_bundle.hpp"
#include "dermcds/error.hpp"
#include "dermcds/file_bytes.hpp"
#include "dermcds/sha256.hpp"
#include "exit_status.hpp"

namespace dermcds::cli {

namespace {

struct ClassifyFlags {
  ClassifierFlags classifier;
  std::vector<std::string> images;
  bool json = false;
  std::string format = "text";  // text | json | fhir
  std::string subject;          // FHIR reference for --format fhir
  BatchOptions batch;
};

// Files larger than this are not photographs of a lesion; refusing them early keeps a typo
// (a video, a disk image) from being read into memory.
constexpr std::uint64_t kMaxImageFileBytes = 64ull << 20;

void print_human(const std::string& image, const ClassificationResult& r) {
  const auto top = static_cast<std::size_t>(r.top1);
  std::printf("%s: %s (%s) %.4f, triage %s (margin %.4f to the %s threshold)\n", image.c_str(), r.labels[top].code.c_str(),
              r.labels[top].name.c_str(), r.probabilities[top], r.triage.tier.c_str(), r.triage.margin, r.triage.nearest_rule_tier.c_str());
  if (!r.assessment.assessable()) {
    std::printf("  NOT ASSESSABLE: retake the photograph (no triage tier is suggested)\n");
    for (const AssessmentReason& reason : r.assessment.reasons) std::printf("    %s: %s\n", reason.code.c_str(), reason.message.c_str());
  }
  std::printf(" ");
  for (std::size_t i = 0; i < r.labels.size(); ++i) std::printf(" %s %.4f", r.labels[i].code.c_str(), r.probabilities[i]);
  std::printf(
      "\n  model %s v%s, %s %s, provider %s, %s; decode %.1f ms, preprocess %.1f ms, inference %.1f ms, "
      "postprocess %.2f ms\n",
      r.model_name.c_str(), r.model_version.c_str(), r.runtime.c_str(), r.runtime_version.c_str(), r.provider.c_str(), r.precision.c_str(),
      r.timings.decode_ms, r.timings.preprocess_ms, r.timings.inference_ms, r.timings.postprocess_ms);
  for (const std::string& fallback : r.fallbacks) std::printf("  fallback: %s\n", fallback.c_str());
}

// --format fhir: one FHIR R4 Bundle per image, one compact JSON document per line (JSON Lines),
// the same Bundle POST /v1/classify answers with Accept: application/fhir+json.
void print_fhir(const Classifier& classifier, const std::vector<std::uint8_t>& bytes, const ClassificationResult& result,
                const std::string& subject) {
  clinical::FhirClassification input;
  input.result = &result;
  input.triage = &classifier.manifest().triage;
  input.subject = subject;
  input.image = {sha256_hex(bytes), std::string(clinical::sniff_image_media_type(bytes)), bytes.size()};
  input.artifact_sha256 = clinical::artifact_sha256_for(classifier.manifest(), result);
  input.occurrence = clinical::utc_now_iso8601();
  std::cout << clinical::fhir_bundle(input).dump() << std::endl;
}

void run(ClassifyFlags& flags) {
  if (flags.json) flags.format = "json";
  if (flags.format == "fhir") clinical::require_subject_reference(flags.subject, "--subject");
  const bool fhir = flags.format == "fhir";
  flags.json = flags.format == "json";
  const std::unique_ptr<Classifier> classifier = open_classifier(flags.classifier);
  if (!flags.batch.output.empty()) {
    flags.batch.inputs = flags.images;
    run_batch(*classifier, flags.batch);
    return;
  }
  if (flags.batch.resume || flags.batch.force) throw Error(ErrorCode::kInvalidArgument, "--resume and --force need --output");
  nlohmann::ordered_json documents = nlohmann::ordered_json::array();
  std::optional<Error> first_failure;
  std::size_t failures = 0;

  // Every image gets an answer or an error; one bad file does not hide the others' results.
  for (const std::string& image : flags.images) {
    try {
      const std::vector<std::uint8_t> bytes = read_file_bytes(image, kMaxImageFileBytes);
      const ClassificationResult result = classifier->classify(bytes);
      if (fhir) {
        print_fhir(*classifier, bytes, result, flags.subject);
      } else if (flags.json) {
        nlohmann::ordered_json doc{{"image", image}};
        doc.update(to_json(result));
        documents.push_back(std::move(doc));
      } else {
        print_human(image, result);
      }
    } catch (const Error& e) {
      if (!first_failure) first_failure = e;
      ++failures;
      std::fprintf(stderr, "dermcds: %s: %s (%s)\n", image.c_str(), e.what(), std::string(to_string(e.code())).c_str());
      if (flags.json) documents.push_back({{"image", image}, {"error", e.what()}, {"code", to_string(e.code())}});
    }
  }
  if (flags.json) std::cout << documents.dump(2) << std::endl;
  if (first_failure)
    throw Error(first_failure->code(),
                std::to_string(failures) + " of " + std::to_string(flags.images.size()) + " images could not be classified");
}

}  // namespace

void register_classify_command(CLI::App& app) {
  auto flags = std::make_shared<ClassifyFlags>();
  CLI::App* command = app.add_subcommand("classify", "Classify lesion images (JPEG or PNG) with a model package");
  command->add_option("images", flags->images, "Image files, or directories (walked recursively) with --output")->required();
  add_classifier_flags(*command, flags->classifier);
  command->add_flag("--json", flags->json, "Print a JSON array of results (docs/result.md) instead of text");
  command
      ->add_option("--format", flags->format,
                   "text, json (= --json), or fhir: a FHIR R4 Bundle per image, one per line (docs/fhir-cds-hooks.md)")
      ->check(CLI::IsMember({"text", "json", "fhir"}))
      ->capture_default_str();
  command->add_option("--subject", flags->subject, "With --format fhir: the patient, a FHIR reference such as Patient/123");
  command->add_option("--output", flags->batch.output,
                      "Batch run: write FILE.csv (ISIC predictions: image,MEL,...,SCC) or FILE.jsonl (one result per line)");
  command->add_flag("--resume", flags->batch.resume, "With --output: skip images already in it and append the rest");
  command->add_flag("--force", flags->batch.force, "With --output: overwrite an existing file");
  command->add_option("--batch", flags->batch.batch, "With --output: images per inference (default 8)")->check(CLI::Range(1, 256));
  command->callback([flags] { run(*flags); });
}

}  // namespace dermcds::cli
