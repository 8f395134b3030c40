#include "fhir_response.hpp"

#include "dermcds/clinical/audit_log.hpp"
#include "dermcds/clinical/fhir_bundle.hpp"
#include "dermcds/sha256.hpp"

namespace dermcds::service {

bool wants_fhir(const HttpRequest& request) {
  const std::string accept = request.header("accept").value_or("");
  return accept.find(clinical::kFhirMediaType) != std::string::npos;
}

std::string fhir_subject(const HttpRequest& request) {
  std::string subject = request.query("subject").value_or("");
  for (const FormPart& part : request.parts)
    if (!part.is_file && part.name == "subject") subject = std::string(part.content);
  clinical::require_subject_reference(subject, "subject");
  return subject;
}

HttpResponse fhir_classification_response(const ClassificationResult& result, const Manifest& manifest, const std::string& subject,
                                          std::span<const std::uint8_t> image) {
  clinical::FhirClassification input;
  input.result = &result;
  input.triage = &manifest.triage;
  input.subject = subject;
  input.image = {sha256_hex(image), std::string(clinical::sniff_image_media_type(image)), image.size()};
  input.artifact_sha256 = clinical::artifact_sha256_for(manifest, result);
  input.occurrence = clinical::utc_now_iso8601();
  return HttpResponse::text(clinical::fhir_bundle(input).dump(), std::string(clinical::kFhirMediaType));
}

}  // namespace dermcds::service
