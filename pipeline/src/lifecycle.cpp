#include "dermcds/pipeline/lifecycle.hpp"

#include <algorithm>

#include "dermcds/error.hpp"

namespace dermcds::pipeline {

ModelLifecycle::ModelLifecycle(std::filesystem::path repository, std::string model, ServingPolicy policy)
    : repository_(std::move(repository), policy), model_(std::move(model)) {
  model_dir_ = repository_.root() / model_;
  repository_.package_dir(model_, "1");  // validates the model name
}

std::optional<std::string> ModelLifecycle::active_version() const {
  if (auto marker = repository_.active_marker(model_)) return marker;
  return repository_.active_version(model_);
}

std::vector<LifecycleEvent> ModelLifecycle::events() const { return repository_.lifecycle_state(model_).events; }

void ModelLifecycle::record(LifecycleEvent event) { repository_.record_event(model_, std::move(event)); }

std::vector<VersionState> ModelLifecycle::versions() const {
  const LifecycleState state = repository_.lifecycle_state(model_);
  const std::optional<std::string> active = active_version();
  std::vector<VersionState> out;
  for (const std::string& version : repository_.versions(model_)) {
    VersionState v;
    v.version = version;
    try {
      const Manifest manifest = read_manifest(repository_.package_dir(model_, version));
      const nlohmann::json& d = manifest.document;
      if (d.contains("parity") && d["parity"].is_object()) v.parity_passed = d["parity"].value("passed", false);
      if (d.contains("lifecycle") && d["lifecycle"].is_object()) {
        v.fingerprint = d["lifecycle"].value("fingerprint", "");
        v.created = d["lifecycle"].value("built", "");
        for (const auto& r : d["lifecycle"].value("rejected_artifacts", nlohmann::json::array()))
          if (r.is_object()) v.rejected_artifacts.push_back(r.value("file", "") + ": " + r.value("reason", ""));
      }
      const ServingVerdict verdict = serving_verdict(manifest);
      if (verdict.rejected) {
        v.status = "rejected";
        v.reason = d["lifecycle"].value("reason", "");
      } else if (active && *active == version) {
        v.status = "active";
        v.reason = verdict.reason;  // an ACTIVE marker written by hand may name an unverified version
      } else if (verdict.unverified) {
        v.status = "unverified";
        v.reason = verdict.reason;
      } else if (std::find(state.stack.begin(), state.stack.end(), version) != state.stack.end() ||
                 std::any_of(state.events.begin(), state.events.end(), [&](const LifecycleEvent& e) {
                   return e.version == version && (e.action == "promote" || e.action == "activate" || e.action == "rollback");
                 })) {
        v.status = "retired";
      } else {
        v.status = "candidate";
      }
    } catch (const Error& e) {
      v.status = "unverified";
      v.reason = e.what();
    }
    out.push_back(std::move(v));
  }
  return out;
}

std::string ModelLifecycle::promote(const std::string& version, const std::string& detail) {
  repository_.package_dir(model_, version);  // validates the version's name
  try {
    return repository_.activate(model_, version, "promote", detail);
  } catch (const Error& e) {
    if (e.code() != ErrorCode::kFailedPrecondition) throw;
    throw Error(e.code(), std::string(e.what()) + "; it is not promoted (`dermcds parity` records evidence)");
  }
}

std::optional<std::string> ModelLifecycle::pin_active_version(const std::string& detail) {
  if (repository_.active_marker(model_) || repository_.versions(model_).empty()) return std::nullopt;
  const std::optional<std::string> implicit = repository_.active_version(model_);
  if (!implicit) return std::nullopt;
  repository_.activate(model_, *implicit, "pin", detail);
  return implicit;
}

std::string ModelLifecycle::rollback(const std::string& detail) { return repository_.rollback(model_, detail); }

}  // namespace dermcds::pipeline
