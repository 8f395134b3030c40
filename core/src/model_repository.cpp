#include "dermcds/model_repository.hpp"

#include <algorithm>
#include <ctime>
#include <fstream>
#include <regex>

#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>

#include "dermcds/error.hpp"
#include "dermcds/file_bytes.hpp"
#include "dermcds/file_util.hpp"
#include "dermcds/manifest.hpp"

namespace dermcds {

namespace {

constexpr int kLifecycleFormatVersion = 1;

bool is_version_name(const std::string& s) {
  static const std::regex kVersion("[1-9][0-9]{0,8}");
  return std::regex_match(s, kVersion);
}

void check_model_name(std::string_view model) {
  static const std::regex kName("[a-z0-9][a-z0-9._-]*");
  if (!std::regex_match(std::string(model), kName))
    throw Error(ErrorCode::kInvalidArgument, "'" + std::string(model) + "' is not a model name ([a-z0-9][a-z0-9._-]*)");
}

nlohmann::ordered_json event_json(const LifecycleEvent& e) {
  nlohmann::ordered_json j{{"at", e.at}, {"action", e.action}, {"version", e.version}};
  if (!e.from.empty()) j["from"] = e.from;
  if (!e.detail.empty()) j["detail"] = e.detail;
  return j;
}

LifecycleEvent event_from(const nlohmann::json& j) {
  return {j.value("at", ""), j.value("action", ""), j.value("version", ""), j.value("from", ""), j.value("detail", "")};
}

bool contains(const std::vector<std::string>& items, std::string_view item) {
  return std::find(items.begin(), items.end(), item) != items.end();
}

}  // namespace

std::string utc_timestamp() {
  const std::time_t now = std::time(nullptr);
  std::tm utc{};
  gmtime_r(&now, &utc);
  char buffer[32];
  std::strftime(buffer, sizeof buffer, "%Y-%m-%dT%H:%M:%SZ", &utc);
  return buffer;
}

ModelRepository::ModelRepository(std::filesystem::path root, ServingPolicy policy) : root_(std::move(root)), policy_(policy) {}

std::vector<std::string> ModelRepository::model_names() const {
  std::vector<std::string> names;
  std::error_code ec;
  if (!std::filesystem::is_directory(root_, ec))
    throw Error(ec && ec != std::errc::no_such_file_or_directory ? error_code_for(ec) : ErrorCode::kNotFound,
                "no model repository at " + root_.string() + (ec ? " (" + ec.message() + ")" : ""));
  std::filesystem::directory_iterator it(root_, ec);
  if (ec) throw system_error(ec, "cannot list the model repository " + root_.string());
  for (const auto& entry : it)
    // Hidden directories are tools' staging areas, never models.
    if (entry.is_directory(ec) && !entry.path().filename().string().starts_with(".") && !versions(entry.path().filename().string()).empty())
      names.push_back(entry.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

std::vector<std::string> ModelRepository::versions(std::string_view model) const {
  check_model_name(model);
  std::vector<std::string> out;
  std::error_code ec;
  const std::filesystem::path dir = root_ / std::string(model);
  if (!std::filesystem::is_directory(dir, ec)) return out;
  std::filesystem::directory_iterator it(dir, ec);
  if (ec) throw system_error(ec, "cannot list " + dir.string());
  for (const auto& entry : it) {
    const std::string name = entry.path().filename().string();
    if (entry.is_directory(ec) && is_version_name(name) && std::filesystem::exists(entry.path() / kManifestFileName, ec))
      out.push_back(name);
  }
  std::sort(out.begin(), out.end(), [](const std::string& a, const std::string& b) { return std::stoll(a) < std::stoll(b); });
  return out;
}

std::optional<std::string> ModelRepository::active_marker(std::string_view model) const {
  check_model_name(model);
  std::ifstream marker(root_ / std::string(model) / kActiveVersionFileName);
  std::string version;
  if (marker >> version) return version;
  return std::nullopt;
}

ServingVerdict ModelRepository::serving_verdict(std::string_view model, std::string_view version) const {
  return dermcds::serving_verdict(package_dir(model, version), policy_);
}

void ModelRepository::require_servable(std::string_view model, std::string_view version) const {
  const std::vector<std::string> present = versions(model);
  if (present.empty()) throw Error(ErrorCode::kNotFound, "the repository " + root_.string() + " has no model '" + std::string(model) + "'");
  if (!contains(present, version))
    throw Error(ErrorCode::kNotFound, "model '" + std::string(model) + "' has no version " + std::string(version));
  const ServingVerdict verdict = serving_verdict(model, version);
  if (!verdict)
    throw Error(ErrorCode::kFailedPrecondition,
                "version " + std::string(version) + " of model '" + std::string(model) + "' may not serve: " + verdict.reason);
}

std::optional<std::string> ModelRepository::active_version(std::string_view model) const {
  const std::vector<std::string> present = versions(model);
  if (const auto version = active_marker(model)) {
    const std::filesystem::path marker = root_ / std::string(model) / kActiveVersionFileName;
    if (!contains(present, *version))
      throw Error(ErrorCode::kNotFound, marker.string() + " names version " + *version + ", which is not in the repository");
    const ServingVerdict verdict = serving_verdict(model, *version);
    if (!verdict)
      throw Error(ErrorCode::kFailedPrecondition,
                  marker.string() + " names version " + *version + ", which may not serve: " + verdict.reason);
    return version;
  }
  for (auto it = present.rbegin(); it != present.rend(); ++it)
    if (serving_verdict(model, *it)) return *it;
  return std::nullopt;
}

std::filesystem::path ModelRepository::lock_path(std::string_view model) const { return root_ / std::string(model) / ".lifecycle.lock"; }

LifecycleState ModelRepository::lifecycle_state(std::string_view model) const {
  check_model_name(model);
  LifecycleState state;
  const std::filesystem::path path = root_ / std::string(model) / kLifecycleFileName;
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) return state;
  try {
    const nlohmann::json j = nlohmann::json::parse(read_file_bytes(path, 64 << 20));
    if (!j.is_object() || j.value("format", "") != kLifecycleFormat)
      throw Error(ErrorCode::kInvalidPackage, path.string() + " is not a " + std::string(kLifecycleFormat) + " document");
    state.stack = j.value("active_stack", std::vector<std::string>{});
    for (const auto& e : j.value("events", nlohmann::json::array())) state.events.push_back(event_from(e));
  } catch (const nlohmann::json::exception& e) {
    throw Error(ErrorCode::kInvalidPackage, path.string() + " is malformed: " + e.what());
  }
  return state;
}

// A writer killed between creating its temporary file and renaming it leaves the temporary
// behind (never the target half-written). Whoever holds the model's lock next removes them: every
// writer of ACTIVE and lifecycle.json holds that lock, so none of them is still being written.
static void remove_stale_temporaries(const std::filesystem::path& model_dir) {
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(model_dir, ec)) {
    const std::string name = entry.path().filename().string();
    for (std::string_view target : {kActiveVersionFileName, kLifecycleFileName})
      // (append(), not "." + string: GCC 12 warns falsely about the latter, -Wrestrict)
      if (name.starts_with(std::string(".").append(target).append(".tmp-"))) std::filesystem::remove(entry.path(), ec);
  }
}

void ModelRepository::save_state(std::string_view model, const LifecycleState& state) const {
  nlohmann::ordered_json j{
      {"format", kLifecycleFormat}, {"format_version", kLifecycleFormatVersion}, {"model", model}, {"active_stack", state.stack}};
  nlohmann::ordered_json events = nlohmann::ordered_json::array();
  for (const LifecycleEvent& e : state.events) events.push_back(event_json(e));
  j["events"] = events;
  write_file_atomically(root_ / std::string(model) / kLifecycleFileName, j.dump(2) + "\n");
}

void ModelRepository::reconcile(std::string_view model, LifecycleState& state) const {
  std::optional<std::string> active = active_marker(model);
  if (!active) {
    // Without ACTIVE the highest servable version serves implicitly; rollback returns to it.
    for (const auto& v : [&] {
           auto all = versions(model);
           std::reverse(all.begin(), all.end());
           return all;
         }())
      if (serving_verdict(model, v)) {
        active = v;
        break;
      }
  }
  if (active && (state.stack.empty() || state.stack.back() != *active)) state.stack.push_back(*active);
}

void ModelRepository::record_event(std::string_view model, LifecycleEvent event) const {
  check_model_name(model);
  std::filesystem::create_directories(root_ / std::string(model));
  FileLock lock(lock_path(model));
  remove_stale_temporaries(root_ / std::string(model));
  LifecycleState state = lifecycle_state(model);
  if (event.at.empty()) event.at = utc_timestamp();
  state.events.push_back(std::move(event));
  save_state(model, state);
}

std::string ModelRepository::activate(std::string_view model, std::string_view version, std::string_view action, std::string_view detail,
                                      const BeforeSwitch& before_switch) const {
  require_servable(model, version);
  FileLock lock(lock_path(model));
  remove_stale_temporaries(root_ / std::string(model));
  require_servable(model, version);  // again, under the lock: it may have changed meanwhile
  LifecycleState state = lifecycle_state(model);
  reconcile(model, state);
  const std::string previous = state.stack.empty() ? "" : state.stack.back();
  const std::string target(version);
  if (before_switch) before_switch(target);
  if (previous == target && active_marker(model) == target) return previous;
  // What the service follows first; the history is reconciled with it if we die in between.
  write_file_atomically(root_ / std::string(model) / kActiveVersionFileName, target + "\n");
  if (previous != target) state.stack.push_back(target);
  state.events.push_back({utc_timestamp(), std::string(action), target, previous == target ? "" : previous, std::string(detail)});
  save_state(model, state);
  return previous;
}

std::string ModelRepository::rollback_target(std::string_view model, const LifecycleState& state) const {
  if (state.stack.empty()) throw Error(ErrorCode::kNotFound, "model '" + std::string(model) + "' has no active version to roll back from");
  const std::string current = state.stack.back();
  const std::vector<std::string> present = versions(model);
  // Versions removed from the repository, or no longer servable (rejected since, evidence gone),
  // are passed over.
  for (auto it = state.stack.rbegin() + 1; it != state.stack.rend(); ++it)
    if (*it != current && contains(present, *it) && serving_verdict(model, *it)) return *it;
  throw Error(ErrorCode::kNotFound, "model '" + std::string(model) + "' has no earlier servable version to roll back to (version " +
                                        current + " is the first that was made active)");
}

std::string ModelRepository::rollback_target(std::string_view model) const {
  LifecycleState state = lifecycle_state(model);
  reconcile(model, state);
  return rollback_target(model, state);
}

std::string ModelRepository::rollback(std::string_view model, std::string_view detail, const BeforeSwitch& before_switch) const {
  if (versions(model).empty())
    throw Error(ErrorCode::kNotFound, "the repository " + root_.string() + " has no model '" + std::string(model) + "'");
  FileLock lock(lock_path(model));
  remove_stale_temporaries(root_ / std::string(model));
  LifecycleState state = lifecycle_state(model);
  reconcile(model, state);
  const std::string current = state.stack.back();
  const std::string target = rollback_target(model, state);
  if (before_switch) before_switch(target);
  write_file_atomically(root_ / std::string(model) / kActiveVersionFileName, target + "\n");
  while (!state.stack.empty() && state.stack.back() != target) state.stack.pop_back();
  state.events.push_back({utc_timestamp(), "rollback", target, current, std::string(detail)});
  save_state(model, state);
  return target;
}

std::string ModelRepository::next_version(std::string_view model) const {
  const std::vector<std::string> present = versions(model);
  return present.empty() ? "1" : std::to_string(std::stoll(present.back()) + 1);
}

bool ModelRepository::is_rejected(std::string_view model, std::string_view version) const {
  return serving_verdict(model, version).rejected;
}

std::filesystem::path ModelRepository::package_dir(std::string_view model, std::string_view version) const {
  check_model_name(model);
  if (!is_version_name(std::string(version)))
    throw Error(ErrorCode::kInvalidArgument, "'" + std::string(version) + "' is not a version (a positive integer)");
  return root_ / std::string(model) / std::string(version);
}

std::filesystem::path resolve_package_dir(const std::filesystem::path& path, const ServingPolicy& policy) {
  std::error_code ec;
  if (std::filesystem::is_regular_file(path / kManifestFileName, ec)) {
    if (const ServingVerdict verdict = serving_verdict(path, policy); !verdict || verdict.unverified)
      spdlog::warn("{} may not serve from a repository: {}", path.string(), verdict.reason);
    return path;
  }
  if (!std::filesystem::is_directory(path, ec))
    throw Error(ErrorCode::kNotFound, "no model package or model directory at " + path.string());
  const std::filesystem::path normal = std::filesystem::absolute(path).lexically_normal();
  const std::filesystem::path model_dir = normal.has_filename() ? normal : normal.parent_path();
  const ModelRepository repository(model_dir.parent_path(), policy);
  const std::string model = model_dir.filename().string();
  const auto version = repository.active_version(model);
  if (!version) {
    if (repository.versions(model).empty())
      throw Error(ErrorCode::kNotFound, path.string() + " holds neither a manifest.json nor any model version");
    throw Error(ErrorCode::kFailedPrecondition, path.string() +
                                                    ": no version may serve (none is both not rejected and covered by "
                                                    "parity evidence; `dermcds models history` says why for each)");
  }
  return repository.package_dir(model, *version);
}

}  // namespace dermcds
