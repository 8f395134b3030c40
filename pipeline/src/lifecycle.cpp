#include "dermcds/pipeline/lifecycle.hpp"

#include <algorithm>

#include "atomic_file.hpp"
#include "dermcds/error.hpp"
#include "dermcds/file_bytes.hpp"
#include "file_lock.hpp"
#include "utc_time.hpp"

namespace dermcds::pipeline {

namespace {

constexpr int kLifecycleFormatVersion = 1;

nlohmann::ordered_json event_json(const LifecycleEvent& e) {
  nlohmann::ordered_json j{{"at", e.at}, {"action", e.action}, {"version", e.version}};
  if (!e.from.empty()) j["from"] = e.from;
  if (!e.detail.empty()) j["detail"] = e.detail;
  return j;
}

LifecycleEvent event_from(const nlohmann::json& j) {
  return {j.value("at", ""), j.value("action", ""), j.value("version", ""), j.value("from", ""), j.value("detail", "")};
}

std::string join(const std::vector<std::string>& parts) {
  std::string out;
  for (const auto& p : parts) out += (out.empty() ? "" : ", ") + p;
  return out;
}

}  // namespace

bool is_rejected(const Manifest& manifest) {
  const nlohmann::json& d = manifest.document;
  return d.contains("lifecycle") && d["lifecycle"].is_object() && d["lifecycle"].value("status", "") == "rejected";
}

bool has_passing_evidence(const Manifest& manifest, std::string* why) {
  auto fail = [why](const std::string& reason) {
    if (why) *why = reason;
    return false;
  };
  const nlohmann::json& d = manifest.document;
  if (!d.contains("parity") || !d["parity"].is_object()) return fail("no parity evidence in the manifest");
  const nlohmann::json& parity = d["parity"];
  if (!parity.value("passed", false)) return fail("its parity run failed");
  const nlohmann::json subjects = parity.value("subjects", nlohmann::json::array());
  const nlohmann::json skipped = parity.value("skipped", nlohmann::json::array());
  std::vector<std::string> uncovered;
  for (const ArtifactEntry& a : manifest.artifacts) {
    const std::string prefix = a.runtime + "/" + a.precision;
    const bool compared = std::any_of(subjects.begin(), subjects.end(), [&](const nlohmann::json& s) {
      return s.value("runtime", "") == a.runtime && s.value("precision", "") == a.precision && s.value("sha256", "") == a.sha256;
    });
    // An artifact whose runtime could not run on the machine that checked it (a GPU-only engine,
    // a runtime missing from that build) is covered by being reported as such.
    const bool reported = std::any_of(skipped.begin(), skipped.end(), [&](const nlohmann::json& s) {
      return s.value("id", "") == prefix;
    });
    if (!compared && !reported) uncovered.push_back(a.file);
  }
  if (!uncovered.empty()) return fail("its parity evidence does not cover the current " + join(uncovered));
  return true;
}

std::filesystem::path lifecycle_lock_path(const std::filesystem::path& model_dir) { return model_dir / ".lifecycle.lock"; }

ModelLifecycle::ModelLifecycle(std::filesystem::path repository, std::string model)
    : repository_(std::move(repository)), model_(std::move(model)) {
  model_dir_ = repository_.root() / model_;
  repository_.package_dir(model_, "1");  // validates the model name
}

ModelLifecycle::State ModelLifecycle::load() const {
  State state;
  const std::filesystem::path path = model_dir_ / kLifecycleFileName;
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) return state;
  try {
    const nlohmann::json j = nlohmann::json::parse(read_file_bytes(path, 64 << 20));
    if (j.value("format", "") != kLifecycleFormat)
      throw Error(ErrorCode::kInvalidPackage, path.string() + " is not a " + std::string(kLifecycleFormat) + " document");
    state.stack = j.value("active_stack", std::vector<std::string>{});
    for (const auto& e : j.value("events", nlohmann::json::array())) state.events.push_back(event_from(e));
  } catch (const nlohmann::json::exception& e) {
    throw Error(ErrorCode::kInvalidPackage, path.string() + " is malformed: " + e.what());
  }
  return state;
}

void ModelLifecycle::save(const State& state) const {
  nlohmann::ordered_json j{{"format", kLifecycleFormat},
                           {"format_version", kLifecycleFormatVersion},
                           {"model", model_},
                           {"active_stack", state.stack}};
  nlohmann::ordered_json events = nlohmann::ordered_json::array();
  for (const LifecycleEvent& e : state.events) events.push_back(event_json(e));
  j["events"] = events;
  write_text_atomically(model_dir_ / kLifecycleFileName, j.dump(2) + "\n");
}

void ModelLifecycle::reconcile(State& state) const {
  const std::optional<std::string> active = repository_.active_version(model_);
  if (active && (state.stack.empty() || state.stack.back() != *active)) state.stack.push_back(*active);
}

std::optional<std::string> ModelLifecycle::active_version() const { return repository_.active_version(model_); }

std::vector<LifecycleEvent> ModelLifecycle::events() const { return load().events; }

void ModelLifecycle::record(LifecycleEvent event) {
  std::filesystem::create_directories(model_dir_);
  FileLock lock(lifecycle_lock_path(model_dir_));
  State state = load();
  if (event.at.empty()) event.at = utc_timestamp();
  state.events.push_back(std::move(event));
  save(state);
}

std::vector<VersionState> ModelLifecycle::versions() const {
  const State state = load();
  const std::optional<std::string> active = repository_.active_version(model_);
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
      }
      std::string why;
      if (is_rejected(manifest)) {
        v.status = "rejected";
        v.reason = d["lifecycle"].value("reason", "");
      } else if (active && *active == version) {
        v.status = "active";
        if (!has_passing_evidence(manifest, &why)) v.reason = why;
      } else if (!has_passing_evidence(manifest, &why)) {
        v.status = "unverified";
        v.reason = why;
      } else if (std::find(state.stack.begin(), state.stack.end(), version) != state.stack.end() ||
                 std::any_of(state.events.begin(), state.events.end(), [&](const LifecycleEvent& e) {
                   return e.version == version && (e.action == "promote" || e.action == "rollback");
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
  const std::filesystem::path dir = repository_.package_dir(model_, version);
  const std::vector<std::string> present = repository_.versions(model_);
  if (std::find(present.begin(), present.end(), version) == present.end())
    throw Error(ErrorCode::kNotFound, "model " + model_ + " has no version " + version + " in " + repository_.root().string());
  FileLock lock(lifecycle_lock_path(model_dir_));
  const Manifest manifest = read_manifest(dir);
  if (is_rejected(manifest))
    throw Error(ErrorCode::kInvalidPackage, model_ + " version " + version + " is a rejected candidate (" +
                                                manifest.document["lifecycle"].value("reason", "its parity gate failed") +
                                                "); it is never promoted");
  std::string why;
  if (!has_passing_evidence(manifest, &why))
    throw Error(ErrorCode::kInvalidPackage, model_ + " version " + version + " cannot be promoted: " + why +
                                                " (run dermcds parity on it first)");

  State state = load();
  reconcile(state);
  const std::string previous = state.stack.empty() ? "" : state.stack.back();
  // Without a marker the highest version serves implicitly; promoting it still writes ACTIVE, so
  // that a later build does not take its place unasked.
  std::error_code ec;
  const bool marked = std::filesystem::exists(model_dir_ / kActiveVersionFileName, ec);
  if (previous == version && marked) return previous;
  repository_.set_active_version(model_, version);  // what the service follows: first
  if (previous != version) state.stack.push_back(version);
  state.events.push_back({utc_timestamp(), "promote", version, previous == version ? "" : previous, detail});
  save(state);
  return previous;
}

std::optional<std::string> ModelLifecycle::pin_active_version(const std::string& detail) {
  std::error_code ec;
  if (std::filesystem::exists(model_dir_ / kActiveVersionFileName, ec) || repository_.versions(model_).empty()) return std::nullopt;
  FileLock lock(lifecycle_lock_path(model_dir_));
  const std::optional<std::string> implicit = repository_.active_version(model_);
  if (!implicit) return std::nullopt;
  State state = load();
  reconcile(state);
  repository_.set_active_version(model_, *implicit);
  state.events.push_back({utc_timestamp(), "pin", *implicit, "", detail});
  save(state);
  return implicit;
}

std::string ModelLifecycle::rollback(const std::string& detail) {
  if (repository_.versions(model_).empty())
    throw Error(ErrorCode::kNotFound, "the repository " + repository_.root().string() + " has no model " + model_);
  FileLock lock(lifecycle_lock_path(model_dir_));
  State state = load();
  reconcile(state);
  if (state.stack.empty()) throw Error(ErrorCode::kNotFound, "model " + model_ + " has no active version to roll back from");
  const std::string current = state.stack.back();
  const std::vector<std::string> present = repository_.versions(model_);
  std::vector<std::string> stack = state.stack;
  stack.pop_back();
  // Versions removed from the repository, or rejected since, are passed over.
  while (!stack.empty()) {
    const std::string& candidate = stack.back();
    if (std::find(present.begin(), present.end(), candidate) != present.end() && candidate != current) {
      const Manifest manifest = read_manifest(repository_.package_dir(model_, candidate));
      if (!is_rejected(manifest)) break;
    }
    stack.pop_back();
  }
  if (stack.empty())
    throw Error(ErrorCode::kNotFound, "model " + model_ + " has no earlier active version to roll back to (version " + current +
                                          " is the first that was made active)");
  const std::string target = stack.back();
  repository_.set_active_version(model_, target);
  state.stack = stack;
  state.events.push_back({utc_timestamp(), "rollback", target, current, detail});
  save(state);
  return target;
}

}  // namespace dermcds::pipeline
