// A classification as FHIR R4 resources (docs/fhir-cds-hooks.md): a Bundle of type collection
// holding a RiskAssessment (the AI's suggestion, status preliminary), the Device that made it
// (the model, its runtime and precision) and the Media it is based on (the photograph's sha256,
// never its pixels). POST /v1/classify with Accept: application/fhir+json, the CDS Hooks card's
// suggestion and `dermcds classify --format fhir` all build their resources here, so they agree.
//
// Every value mapping (tier -> qualitativeRisk, ISIC code -> SNOMED CT) lives in this file's
// .cpp and is documented in docs/fhir-cds-hooks.md.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "dermcds/manifest.hpp"
#include "dermcds/result.hpp"

namespace dermcds::clinical {

// Canonical URLs of our own code systems and extensions. ".invalid" (RFC 6761) never resolves:
// a deployment that publishes these definitions replaces this one constant with its own base.
inline constexpr std::string_view kFhirCanonicalBase = "https://derm-cds.invalid/fhir";
inline constexpr std::string_view kFhirMediaType = "application/fhir+json";

struct FhirImage {
  std::string sha256;        // of the bytes as received
  std::string content_type;  // image/jpeg or image/png ("" when unknown)
  std::uint64_t bytes = 0;
};

struct FhirClassification {
  const ClassificationResult* result = nullptr;
  const TriagePolicy* triage = nullptr;  // the manifest's rules: which classes drove the tier
  std::string subject;                   // "Patient/123", checked by require_subject_reference
  FhirImage image;
  std::string artifact_sha256;  // of the model artifact that ran, as its manifest pins it
  std::string occurrence;       // when the classification ran (ISO 8601)
};

// Throws kInvalidArgument naming `parameter` unless `reference` is a FHIR relative reference to
// a Patient or Group, as RiskAssessment.subject requires: "Patient/123".
void require_subject_reference(std::string_view reference, std::string_view parameter);

// The risk-probability code for a triage tier ("high", "moderate", "low"), or "" for a tier
// that grades nothing (not_assessable, or a tier this version does not know).
std::string_view qualitative_risk_for_tier(std::string_view tier);

// The three resources, each without id (the Bundle names them by urn:uuid fullUrls).
struct FhirResources {
  nlohmann::ordered_json risk_assessment, device, media;
  std::string risk_assessment_url, device_url, media_url;  // urn:uuid:...
};
FhirResources fhir_resources(const FhirClassification& input);

// The Bundle (type collection, timestamp = occurrence) of those resources.
nlohmann::ordered_json fhir_bundle(const FhirClassification& input);

// "image/jpeg" or "image/png" from the file's signature; "" for anything else.
std::string_view sniff_image_media_type(std::span<const std::uint8_t> bytes);

// The sha256 the manifest pins for the artifact that produced `result` ("" if none matches).
std::string artifact_sha256_for(const Manifest& manifest, const ClassificationResult& result);

// A random (version 4) UUID in its canonical lower-case form.
std::string random_uuid();

}  // namespace dermcds::clinical
