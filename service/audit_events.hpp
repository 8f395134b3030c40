// The service's audit records (docs/audit.md): who asked, what was done with which model, and a
// digest of what was answered. Each is one line of the hash-chained log (dermcds_clinical's
// AuditLog), written before the answer is sent. Without an audit log configured, these do nothing.
//
// Privacy: no pixels ever, only the image's sha256; patient identifiers (a FHIR subject, a CDS
// Hooks patientId, free-text comments) only when audit_patient_ids is set.
#pragma once

#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "dermcds/error.hpp"
#include "dermcds/result.hpp"
#include "routes.hpp"

namespace dermcds::service {

std::string sha256_text(std::string_view bytes);

// {"id": "admin:<first 12 hex of the key's sha256>" or "anonymous", "address": "<peer ip>"}.
nlohmann::ordered_json audit_client(const HttpRequest& request, const ServiceConfig& config);

// {"name", "version", "runtime", "runtime_version", "provider", "precision", "artifact_sha256"}.
nlohmann::ordered_json audit_model(const ClassificationResult& result, const Manifest& manifest);

// Writes {"action", "request_id", "route", "client", ...fields}. Throws kIoError when the line
// cannot be written: the request then fails rather than being answered unaudited.
void audit(const ServiceContext& context, const HttpRequest& request, std::string_view action, nlohmann::ordered_json fields);

// A failed request's line: its status and error code.
void audit_failure(const ServiceContext& context, const HttpRequest& request, std::string_view action, const Error& error,
                   nlohmann::ordered_json fields = nlohmann::ordered_json::object());

// An admin endpoint's line: "admin.<verb>" (index, load, unload, activate, rollback), the model
// named in the path, the status answered, and who asked (refused attempts included).
void audit_admin_action(const ServiceContext& context, const HttpRequest& request, int status);

}  // namespace dermcds::service
