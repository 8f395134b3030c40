// POST /v1/classify's FHIR answer (Accept: application/fhir+json): the Bundle of
// dermcds_clinical's fhir_bundle, served as application/fhir+json (docs/fhir-cds-hooks.md).
#pragma once

#include <span>
#include <string>

#include "dermcds/manifest.hpp"
#include "dermcds/result.hpp"
#include "http_server.hpp"

namespace dermcds::service {

// The client asked for FHIR: its Accept header names application/fhir+json.
bool wants_fhir(const HttpRequest& request);

// The "subject" query parameter or form field, checked; throws kInvalidArgument (400) naming
// the parameter when it is missing or not a Patient/Group reference.
std::string fhir_subject(const HttpRequest& request);

HttpResponse fhir_classification_response(const ClassificationResult& result, const Manifest& manifest, const std::string& subject,
                                          std::span<const std::uint8_t> image);

}  // namespace dermcds::service
