#include "dermcds/clinical/fhir_bundle.hpp"

#include <algorithm>
#include <cmath>
#include <random>

#include "dermcds/error.hpp"

namespace dermcds::clinical {

namespace {

using ordered_json = nlohmann::ordered_json;

std::string canonical(std::string_view path) { return std::string(kFhirCanonicalBase) + "/" + std::string(path); }

// HL7's AI Transparency on FHIR tag: "AI asserted".
ordered_json ai_asserted_meta() {
  return {{"security", ordered_json::array({{{"system", "http://terminology.hl7.org/CodeSystem/v3-ObservationValue"},
                                             {"code", "AIAST"},
                                             {"display", "Artificial Intelligence asserted"}}})}};
}

// SNOMED CT concepts beside our ISIC codes, only where a source names the concept for that
// diagnosis (docs/fhir-cds-hooks.md cites each). The other classes carry the ISIC code alone:
// BKL, for one, groups several SNOMED CT disorders, and no single code would be honest.
struct SnomedCode {
  std::string_view isic, code, display;
};
constexpr SnomedCode kSnomedCodes[] = {
    {"NV", "400096001", "Melanocytic nevus"},
    {"BCC", "254701007", ""},
};

ordered_json outcome_for(const Label& label) {
  ordered_json codings =
      ordered_json::array({{{"system", canonical("CodeSystem/isic-2019-diagnosis")}, {"code", label.code}, {"display", label.name}}});
  for (const SnomedCode& s : kSnomedCodes)
    if (s.isic == label.code) {
      ordered_json coding = {{"system", "http://snomed.info/sct"}, {"code", s.code}};
      if (!s.display.empty()) coding["display"] = s.display;
      codings.push_back(std::move(coding));
    }
  return {{"coding", std::move(codings)}, {"text", label.name}};
}

std::string_view risk_display(std::string_view code) {
  if (code == "high") return "High likelihood";
  if (code == "moderate") return "Moderate likelihood";
  return "Low likelihood";
}

// R4 reads probabilityDecimal as a percentage (ras-2: at most 100). Probabilities are rounded to
// 7 decimals in [0, 1], so 5 decimals of percent keep every digit; the clamp only guards the
// representation of 1.0 * 100.
double percent(float probability) {
  const double value = std::round(static_cast<double>(probability) * 1e7) / 1e5;
  return std::clamp(value, 0.0, 100.0);
}

double rounded(double value, double scale) { return std::round(value * scale) / scale; }

std::string tier_words(std::string tier) {
  std::replace(tier.begin(), tier.end(), '_', ' ');
  return tier;
}

}  // namespace

std::string random_uuid() {
  thread_local std::mt19937_64 generator{[] {
    std::random_device device;
    return (std::uint64_t{device()} << 32) ^ device();
  }()};
  std::uint64_t high = generator(), low = generator();
  high = (high & 0xffffffffffff0fffull) | 0x0000000000004000ull;  // version 4
  low = (low & 0x3fffffffffffffffull) | 0x8000000000000000ull;    // RFC 4122 variant
  char text[37];
  std::snprintf(text, sizeof text, "%08x-%04x-%04x-%04x-%012llx", static_cast<unsigned>(high >> 32),
                static_cast<unsigned>((high >> 16) & 0xffff), static_cast<unsigned>(high & 0xffff), static_cast<unsigned>(low >> 48),
                static_cast<unsigned long long>(low & 0xffffffffffffull));
  return text;
}

std::string_view sniff_image_media_type(std::span<const std::uint8_t> bytes) {
  if (bytes.size() >= 3 && bytes[0] == 0xff && bytes[1] == 0xd8 && bytes[2] == 0xff) return "image/jpeg";
  static constexpr std::uint8_t kPng[] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  if (bytes.size() >= sizeof kPng && std::equal(std::begin(kPng), std::end(kPng), bytes.begin())) return "image/png";
  return "";
}

std::string artifact_sha256_for(const Manifest& manifest, const ClassificationResult& result) {
  const ArtifactEntry* artifact = manifest.find_artifact(result.runtime, result.precision);
  return artifact ? artifact->sha256 : std::string();
}

void require_subject_reference(std::string_view reference, std::string_view parameter) {
  const std::string p(parameter);
  if (reference.empty())
    throw Error(ErrorCode::kInvalidArgument,
                "the FHIR answer needs the \"" + p + "\" parameter: the patient the photograph shows, e.g. Patient/123");
  const auto slash = reference.find('/');
  const std::string_view type = reference.substr(0, slash);
  const std::string_view id = slash == std::string_view::npos ? std::string_view() : reference.substr(slash + 1);
  // FHIR ids: 1-64 of [A-Za-z0-9-.].
  const bool id_ok = !id.empty() && id.size() <= 64 && std::all_of(id.begin(), id.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '.';
  });
  if ((type != "Patient" && type != "Group") || !id_ok)
    throw Error(ErrorCode::kInvalidArgument, "\"" + p +
                                                 "\" must be a FHIR reference to a Patient or Group, such as "
                                                 "Patient/123 (an id of letters, digits, '-' and '.')");
}

std::string_view qualitative_risk_for_tier(std::string_view tier) {
  if (tier == "urgent_referral") return "high";
  if (tier == "dermatology_review") return "moderate";
  if (tier == "routine") return "low";
  return "";
}

FhirResources fhir_resources(const FhirClassification& input) {
  if (!input.result || !input.triage) throw Error(ErrorCode::kInternal, "fhir_resources needs a result and its triage policy");
  const ClassificationResult& r = *input.result;
  require_subject_reference(input.subject, "subject");
  FhirResources out;
  out.risk_assessment_url = "urn:uuid:" + random_uuid();
  out.device_url = "urn:uuid:" + random_uuid();
  out.media_url = "urn:uuid:" + random_uuid();

  out.device = {
      {"resourceType", "Device"},
      {"identifier",
       ordered_json::array({{{"system", canonical("NamingSystem/model-artifact-sha256")}, {"value", input.artifact_sha256}}})},
      {"status", "active"},
      {"deviceName", ordered_json::array({{{"name", r.model_name}, {"type", "model-name"}}})},
      {"type", {{"text", "Skin lesion classification model (software)"}}},
      {"version", ordered_json::array({{{"type", {{"text", "model version"}}}, {"value", r.model_version}},
                                       {{"type", {{"text", "runtime"}}}, {"value", r.runtime + " " + r.runtime_version}}})},
      {"property", ordered_json::array({{{"type", {{"text", "runtime"}}}, {"valueCode", {{{"text", r.runtime}}}}},
                                        {{"type", {{"text", "execution provider"}}}, {"valueCode", {{{"text", r.provider}}}}},
                                        {{"type", {{"text", "precision"}}}, {"valueCode", {{{"text", r.precision}}}}}})},
  };

  ordered_json content = {{"size", input.image.bytes}};
  if (!input.image.content_type.empty()) content = {{"contentType", input.image.content_type}, {"size", input.image.bytes}};
  out.media = {{"resourceType", "Media"},
               {"identifier", ordered_json::array({{{"system", canonical("NamingSystem/image-sha256")}, {"value", input.image.sha256}}})},
               {"status", "completed"},
               {"subject", {{"reference", input.subject}}},
               {"content", std::move(content)}};

  // The classes of the rule that set the tier carry its grade; the others, and every class when
  // the default tier applies, are "low". A tier that grades nothing (not assessable) gives none.
  const TriageDecision& triage = r.triage;
  std::vector<std::string> rule_classes;
  for (const TriageRule& rule : input.triage->rules)
    if (rule.tier == triage.rule_tier) rule_classes = rule.classes;
  const std::string_view tier_risk = qualitative_risk_for_tier(triage.tier);
  ordered_json predictions = ordered_json::array();
  for (std::size_t i = 0; i < r.labels.size(); ++i) {
    ordered_json prediction = {{"outcome", outcome_for(r.labels[i])}, {"probabilityDecimal", percent(r.probabilities[i])}};
    if (!tier_risk.empty()) {
      const bool drove_tier = std::find(rule_classes.begin(), rule_classes.end(), r.labels[i].code) != rule_classes.end();
      const std::string_view risk = drove_tier ? tier_risk : std::string_view("low");
      prediction["qualitativeRisk"] = {
          {"coding",
           ordered_json::array(
               {{{"system", "http://terminology.hl7.org/CodeSystem/risk-probability"}, {"code", risk}, {"display", risk_display(risk)}}})}};
    }
    predictions.push_back(std::move(prediction));
  }

  ordered_json extensions = ordered_json::array(
      // A FHIR code, so the not-assessable tier's sentence becomes its code, not_assessable.
      {{{"url", canonical("StructureDefinition/triage-tier")},
        {"valueCode", input.result->assessment.assessable() ? triage.tier : std::string("not_assessable")}},
       {{"url", canonical("StructureDefinition/triage-margin")}, {"valueDecimal", rounded(triage.margin, 1e7)}}});
  if (!triage.rule_tier.empty())
    extensions.push_back({{"url", canonical("StructureDefinition/triage-rule-score")}, {"valueDecimal", rounded(triage.score, 1e7)}});
  std::string note = "AI suggestion awaiting clinician review. Triage tier: " + tier_words(triage.tier) + " (margin " +
                     std::to_string(rounded(triage.margin, 1e4)).substr(0, 6) + " to the nearest rule threshold).";
  // The safety guard's verdict (docs/safety.md): the status as an extension, the reasons in the note.
  const Assessment& assessment = input.result->assessment;
  extensions.push_back({{"url", canonical("StructureDefinition/assessment-status")}, {"valueCode", std::string(assessment.status())}});
  note += " Assessment: " + std::string(assessment.status());
  for (std::size_t i = 0; i < assessment.reasons.size(); ++i)
    note += (i == 0 ? " (" : "; ") + assessment.reasons[i].code + (i + 1 == assessment.reasons.size() ? ")" : "");
  note += ".";

  out.risk_assessment = {
      {"resourceType", "RiskAssessment"},
      {"meta", ai_asserted_meta()},
      {"extension", std::move(extensions)},
      {"status", "preliminary"},
      {"subject", {{"reference", input.subject}}},
      {"occurrenceDateTime", input.occurrence},
      {"performer", {{"reference", out.device_url}, {"display", r.model_name + " version " + r.model_version}}},
      {"method",
       {{"coding",
         ordered_json::array({{{"system", canonical("CodeSystem/model")}, {"version", r.model_version}, {"code", r.model_name}}})},
        {"text", r.model_name + " version " + r.model_version + " on " + r.runtime + " " + r.runtime_version + ", provider " + r.provider +
                     ", precision " + r.precision}}},
      {"basis", ordered_json::array({{{"reference", out.media_url}}})},
      {"prediction", std::move(predictions)},
      {"note", ordered_json::array({{{"text", note}}})},
  };
  return out;
}

ordered_json fhir_bundle(const FhirClassification& input) {
  FhirResources resources = fhir_resources(input);
  return {{"resourceType", "Bundle"},
          {"meta", ai_asserted_meta()},
          {"identifier", {{"system", "urn:ietf:rfc:3986"}, {"value", "urn:uuid:" + random_uuid()}}},
          {"type", "collection"},
          {"timestamp", input.occurrence},
          {"entry", ordered_json::array({{{"fullUrl", resources.risk_assessment_url}, {"resource", std::move(resources.risk_assessment)}},
                                         {{"fullUrl", resources.device_url}, {"resource", std::move(resources.device)}},
                                         {{"fullUrl", resources.media_url}, {"resource", std::move(resources.media)}}})}};
}

}  // namespace dermcds::clinical
