// CDS Hooks 2.0 for derm-cds (docs/fhir-cds-hooks.md): the discovery document, reading a hook
// request, the cards of a classification and reading feedback. Pure functions over JSON, so the
// spec's field rules are tested without a server; routes_cds_hooks.cpp serves them.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "dermcds/clinical/fhir_bundle.hpp"
#include "dermcds/manifest.hpp"
#include "dermcds/result.hpp"

namespace dermcds::service {

inline constexpr std::string_view kCdsServiceId = "derm-lesion-triage";

// The request lacks data the service needs and could not fetch (CDS Hooks: 412).
class CdsPreconditionFailed : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

nlohmann::ordered_json cds_discovery(const std::string& hook);

struct CdsRequest {
  std::string hook;
  std::string hook_instance;
  std::string patient_id;          // context.patientId
  std::string media_id;            // prefetch.image.id ("" when the Media has none)
  std::string image_content_type;  // image/jpeg or image/png
  std::string image;               // the decoded bytes of prefetch.image.content.data
};

// Throws kInvalidArgument (400) for a malformed request (not JSON, wrong hook, missing
// hookInstance or context.patientId, a Media that is not one, a content type we do not read,
// base64 that is not), CdsPreconditionFailed (412) when prefetch.image is missing or null, or
// carries no data (a url alone: this service fetches nothing).
CdsRequest parse_cds_request(std::string_view body, const std::string& hook);

struct CdsCardInput {
  const ClassificationResult* result = nullptr;
  const Manifest* manifest = nullptr;
  const CdsRequest* request = nullptr;
  std::string page_url;    // absolute URL of the clinician page
  std::string occurrence;  // ISO 8601
  std::string image_sha256;
};

// "critical", "warning" or "info" for a triage tier; unknown and not-assessable tiers "warning".
std::string_view cds_indicator_for_tier(std::string_view tier);

// {"cards": [one card]}: summary, indicator, source, detail with every probability, a link to
// the page, and one suggestion creating the RiskAssessment (selectionBehavior at-most-one).
nlohmann::ordered_json cds_response(const CdsCardInput& input);

struct CdsFeedback {
  std::string card;
  std::string outcome;  // accepted | overridden
  std::vector<std::string> accepted_suggestions;
  nlohmann::ordered_json override_reason;  // the Coding, or null
  std::string user_comment;
  std::string outcome_timestamp;
};

// Throws kInvalidArgument naming the field that breaks the spec's feedback shape.
std::vector<CdsFeedback> parse_cds_feedback(std::string_view body);

// Strict base64 (RFC 4648, padding optional, no whitespace other than line breaks); throws
// kInvalidArgument naming `what`.
std::string decode_base64(std::string_view text, const std::string& what);

}  // namespace dermcds::service
