#include "cds_hooks.hpp"

#include <cmath>
#include <cstdio>

#include "dermcds/error.hpp"
#include "dermcds/file_util.hpp"

namespace dermcds::service {

namespace {

using json = nlohmann::json;
using ordered_json = nlohmann::ordered_json;

[[noreturn]] void bad(const std::string& message) { throw Error(ErrorCode::kInvalidArgument, message); }

const json& member(const json& object, const char* key, const std::string& where) {
  const auto it = object.find(key);
  if (it == object.end()) bad(where + " has no \"" + key + "\"");
  return *it;
}

std::string string_member(const json& object, const char* key, const std::string& where) {
  const json& value = member(object, key, where);
  if (!value.is_string() || value.get<std::string>().empty()) bad(where + "." + key + " must be a non-empty string");
  return value.get<std::string>();
}

std::string tier_words(std::string tier) {
  for (char& c : tier)
    if (c == '_') c = ' ';
  if (!tier.empty()) tier[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(tier[0])));
  return tier;
}

std::string percent_text(float p) {
  char text[32];
  std::snprintf(text, sizeof text, "%.1f %%", static_cast<double>(p) * 100.0);
  return text;
}

}  // namespace

std::string decode_base64(std::string_view text, const std::string& what) {
  const auto value = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
  };
  std::string out;
  out.reserve(text.size() / 4 * 3);
  std::uint32_t bits = 0;
  int count = 0, padding = 0;
  for (const char c : text) {
    if (c == '\n' || c == '\r') continue;
    if (c == '=') {
      ++padding;
      continue;
    }
    const int v = value(c);
    if (v < 0 || padding > 0) bad(what + " is not base64");
    bits = (bits << 6) | static_cast<std::uint32_t>(v);
    if (++count == 4) {
      out.push_back(static_cast<char>(bits >> 16));
      out.push_back(static_cast<char>((bits >> 8) & 0xff));
      out.push_back(static_cast<char>(bits & 0xff));
      bits = 0;
      count = 0;
    }
  }
  if (count == 1 || padding > 2) bad(what + " is not base64 (its length is wrong)");
  if (count == 2) out.push_back(static_cast<char>(bits >> 4));
  if (count == 3) {
    out.push_back(static_cast<char>(bits >> 10));
    out.push_back(static_cast<char>((bits >> 2) & 0xff));
  }
  return out;
}

ordered_json cds_discovery(const std::string& hook) {
  return {{"services",
           ordered_json::array({{{"hook", hook},
                                 {"title", "Dermatology lesion triage (derm-cds)"},
                                 {"description",
                                  "Classifies a photograph of a skin lesion into the ISIC 2019 classes and suggests a triage tier "
                                  "(urgent referral, dermatology review, routine), with a preliminary FHIR RiskAssessment to record."},
                                 {"id", kCdsServiceId},
                                 // The EHR resolves this and sends the Media with its base64 data; the service
                                 // itself never calls back to the FHIR server.
                                 {"prefetch", {{"image", "Media/{{context.mediaId}}"}}},
                                 {"usageRequirements",
                                  "context.patientId and context.mediaId; the Media's content must carry contentType image/jpeg "
                                  "or image/png and base64 data"}}})}};
}

CdsRequest parse_cds_request(std::string_view body, const std::string& hook) {
  const json request = json::parse(body, nullptr, false);
  if (request.is_discarded() || !request.is_object()) bad("the CDS Hooks request must be a JSON object");
  CdsRequest out;
  out.hook = string_member(request, "hook", "the request");
  if (out.hook != hook) bad("this service answers hook \"" + hook + "\", not \"" + out.hook + "\"");
  out.hook_instance = string_member(request, "hookInstance", "the request");
  const json& context = member(request, "context", "the request");
  if (!context.is_object()) bad("context must be an object");
  out.patient_id = string_member(context, "patientId", "context");

  const auto prefetch = request.find("prefetch");
  if (prefetch == request.end() || prefetch->is_null())
    throw CdsPreconditionFailed("prefetch.image is missing: the service needs the Media the prefetch template names");
  if (!prefetch->is_object()) bad("prefetch must be an object");
  const auto image = prefetch->find("image");
  if (image == prefetch->end() || image->is_null()) throw CdsPreconditionFailed("prefetch.image is missing or could not be fetched (null)");
  if (!image->is_object() || image->value("resourceType", "") != "Media") bad("prefetch.image must be a FHIR Media resource");
  if (const auto id = image->find("id"); id != image->end() && id->is_string()) out.media_id = id->get<std::string>();
  const auto content = image->find("content");
  if (content == image->end() || !content->is_object()) bad("prefetch.image has no content attachment");
  const auto data = content->find("data");
  if (data == content->end() || data->is_null())
    throw CdsPreconditionFailed("prefetch.image.content has no data (a url alone is not fetched): send the image as base64");
  if (!data->is_string()) bad("prefetch.image.content.data must be a base64 string");
  out.image_content_type = content->value("contentType", "");
  if (out.image_content_type != "image/jpeg" && out.image_content_type != "image/png")
    bad("prefetch.image.content.contentType must be image/jpeg or image/png" +
        (out.image_content_type.empty() ? std::string() : ", not " + out.image_content_type));
  out.image = decode_base64(data->get<std::string>(), "prefetch.image.content.data");
  if (out.image.empty()) bad("prefetch.image.content.data is empty");
  return out;
}

std::string_view cds_indicator_for_tier(std::string_view tier) {
  if (tier == "urgent_referral") return "critical";
  if (tier == "routine") return "info";
  return "warning";  // dermatology_review, not_assessable, and any tier we do not know
}

ordered_json cds_response(const CdsCardInput& input) {
  const ClassificationResult& r = *input.result;
  const auto top = static_cast<std::size_t>(r.top1);
  // A photograph the safety guard refuses gets no suggested diagnosis, only the request to retake
  // it and the guard's reason codes (docs/fhir-cds-hooks.md).
  const std::string reasons = join(r.assessment.reasons, ", ", &AssessmentReason::code);
  std::string summary = r.assessment.assessable() ? tier_words(r.triage.tier) + " suggested: " + r.labels[top].name + " " +
                                                        percent_text(r.probabilities[top]) + " (AI, awaiting review)"
                                                  : "Not assessable: retake the photograph (AI: " + reasons + ")";
  if (summary.size() > 139) summary = summary.substr(0, 136) + "...";  // the spec: under 140 characters

  std::string detail = "**AI suggestion awaiting clinician review.** Triage tier: **" + tier_words(r.triage.tier) + "**";
  char margin[64];
  std::snprintf(margin, sizeof margin, " (margin %.4f to the nearest rule threshold).\n\n", r.triage.margin);
  detail += margin;
  detail += "| Class | Probability |\n|---|---|\n";
  for (std::size_t i = 0; i < r.labels.size(); ++i)
    detail += "| " + r.labels[i].name + " (" + r.labels[i].code + ") | " + percent_text(r.probabilities[i]) + " |\n";
  detail += "\nModel " + r.model_name + " version " + r.model_version + " on " + r.runtime + " " + r.runtime_version + " (" + r.provider +
            ", " + r.precision + "). Image sha256 `" + input.image_sha256 + "`.";

  // The suggestion's RiskAssessment points at what the EHR has: its own Media (by id), and the
  // model by identifier, since the Device resource exists only in our Bundle.
  clinical::FhirClassification fhir;
  fhir.result = &r;
  fhir.triage = &input.manifest->triage;
  fhir.subject = "Patient/" + input.request->patient_id;
  fhir.image = {input.image_sha256, input.request->image_content_type, input.request->image.size()};
  fhir.artifact_sha256 = clinical::artifact_sha256_for(*input.manifest, r);
  fhir.occurrence = input.occurrence;
  clinical::FhirResources resources = clinical::fhir_resources(fhir);
  ordered_json& assessment = resources.risk_assessment;
  assessment["performer"] = {{"identifier", resources.device["identifier"][0]}, {"display", r.model_name + " version " + r.model_version}};
  assessment["basis"] = input.request->media_id.empty() ? ordered_json::array({{{"identifier", resources.media["identifier"][0]}}})
                                                        : ordered_json::array({{{"reference", "Media/" + input.request->media_id}}});

  ordered_json card = {
      {"uuid", clinical::random_uuid()},
      {"summary", summary},
      {"indicator", cds_indicator_for_tier(r.triage.tier)},
      {"detail", detail},
      {"source", {{"label", "derm-cds " + r.model_name + " version " + r.model_version}}},
      {"suggestions", ordered_json::array({{{"label", "Record the AI risk assessment (preliminary)"},
                                            {"uuid", clinical::random_uuid()},
                                            {"actions", ordered_json::array({{{"type", "create"},
                                                                              {"description",
                                                                               "Create a preliminary RiskAssessment "
                                                                               "with the model's probabilities"},
                                                                              {"resource", std::move(assessment)}}})}}})},
      {"selectionBehavior", "at-most-one"},
      {"links", ordered_json::array({{{"label", "Open the derm-cds clinician page"}, {"url", input.page_url}, {"type", "absolute"}}})},
  };
  return {{"cards", ordered_json::array({std::move(card)})}};
}

std::vector<CdsFeedback> parse_cds_feedback(std::string_view body) {
  const json request = json::parse(body, nullptr, false);
  if (request.is_discarded() || !request.is_object()) bad("the feedback must be a JSON object");
  const json& entries = member(request, "feedback", "the request");
  if (!entries.is_array() || entries.empty()) bad("feedback must be a non-empty array");
  std::vector<CdsFeedback> out;
  for (std::size_t i = 0; i < entries.size(); ++i) {
    const std::string where = "feedback[" + std::to_string(i) + "]";
    const json& entry = entries[i];
    if (!entry.is_object()) bad(where + " must be an object");
    CdsFeedback f;
    f.card = string_member(entry, "card", where);
    f.outcome = string_member(entry, "outcome", where);
    if (f.outcome != "accepted" && f.outcome != "overridden") bad(where + ".outcome must be accepted or overridden");
    f.outcome_timestamp = string_member(entry, "outcomeTimestamp", where);
    if (const auto accepted = entry.find("acceptedSuggestions"); accepted != entry.end()) {
      if (!accepted->is_array()) bad(where + ".acceptedSuggestions must be an array");
      for (const json& s : *accepted) {
        if (!s.is_object() || !s.contains("id") || !s["id"].is_string())
          bad(where + ".acceptedSuggestions entries must be {\"id\": \"<suggestion uuid>\"}");
        f.accepted_suggestions.push_back(s["id"].get<std::string>());
      }
    }
    if (const auto reason = entry.find("overrideReason"); reason != entry.end()) {
      if (!reason->is_object()) bad(where + ".overrideReason must be an object");
      if (const auto coding = reason->find("reason"); coding != reason->end()) {
        if (!coding->is_object()) bad(where + ".overrideReason.reason must be a Coding");
        f.override_reason = ordered_json::object();
        for (const char* key : {"system", "code", "display"})
          if (coding->contains(key) && (*coding)[key].is_string()) f.override_reason[key] = (*coding)[key];
      }
      if (const auto comment = reason->find("userComment"); comment != reason->end()) {
        if (!comment->is_string()) bad(where + ".overrideReason.userComment must be a string");
        f.user_comment = comment->get<std::string>();
      }
    }
    if (f.outcome == "accepted" && !f.override_reason.is_null()) bad(where + ": an accepted card has no overrideReason");
    out.push_back(std::move(f));
  }
  return out;
}

}  // namespace dermcds::service
