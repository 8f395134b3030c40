#include "dermcds/serving_rule.hpp"

#include <algorithm>

#include "dermcds/error.hpp"
#include "dermcds/file_util.hpp"

namespace dermcds {

namespace {

using json = nlohmann::json;

std::string short_sha(const std::string& sha256) { return sha256.substr(0, 12); }

// The parity subjects that ran `artifact`: those on the bytes it has now, and the sha256 of
// those that ran other bytes under the same runtime and precision.
struct ArtifactSubjects {
  std::vector<std::string> ids;
  std::vector<std::string> other_sha;
};
ArtifactSubjects subjects_of(const ArtifactEntry& artifact, const json& parity) {
  ArtifactSubjects found;
  for (const json& s : parity.value("subjects", json::array())) {
    if (!s.is_object() || s.value("runtime", "") != artifact.runtime || s.value("precision", "") != artifact.precision) continue;
    if (s.value("sha256", "") == artifact.sha256)
      found.ids.push_back(s.value("id", artifact.runtime + "/" + artifact.precision));
    else
      found.other_sha.push_back(s.value("sha256", ""));
  }
  return found;
}

// Why `artifact` is not covered by `parity`, or "" when it is.
std::string uncovered_because(const ArtifactEntry& artifact, const json& parity) {
  const json pairs = parity.value("pairs", json::array());
  const json skipped = parity.value("skipped", json::array());
  const std::string prefix = artifact.runtime + "/" + artifact.precision;
  const ArtifactSubjects found = subjects_of(artifact, parity);
  const std::vector<std::string>& ids = found.ids;
  const std::vector<std::string>& other_sha = found.other_sha;
  if (ids.empty()) {
    // An artifact whose runtime could not run where parity was checked (a GPU-only engine, a
    // runtime missing from that build) is covered by being reported as such.
    const bool reported =
        std::any_of(skipped.begin(), skipped.end(), [&](const json& s) { return s.is_object() && s.value("id", "") == prefix; });
    if (reported) return "";
    if (!other_sha.empty())
      return artifact.file + " (sha256 " + short_sha(artifact.sha256) + "... now; the evidence was taken on " +
             short_sha(other_sha.front()) + "...)";
    return artifact.file + " (never compared)";
  }
  const std::string reference = parity.value("reference", "");
  const bool is_reference = std::find(ids.begin(), ids.end(), reference) != ids.end();
  for (const json& p : pairs) {
    if (!p.is_object()) continue;
    const std::string candidate = p.value("candidate", "");
    // The reference artifact answers for the export itself: its check against the PyTorch source.
    const bool concerns =
        std::find(ids.begin(), ids.end(), candidate) != ids.end() || (is_reference && p.value("bound_key", "") == "pytorch");
    if (concerns && !p.value("passed", false)) {
      const json violations = p.value("violations", json::array());
      return artifact.file + " (its check " + candidate + " vs " + p.value("reference", "") + " failed" +
             (violations.empty() || !violations.front().is_string() ? "" : ": " + violations.front().get<std::string>()) + ")";
    }
  }
  return "";
}

}  // namespace

bool is_rejected(const Manifest& manifest) {
  const json& d = manifest.document;
  return d.contains("lifecycle") && d["lifecycle"].is_object() && d["lifecycle"].value("status", "") == "rejected";
}

bool has_covering_evidence(const Manifest& manifest, std::string* why) {
  auto fail = [why](const std::string& reason) {
    if (why) *why = reason;
    return false;
  };
  const json& d = manifest.document;
  if (!d.contains("parity") || !d["parity"].is_object()) return fail("it carries no parity evidence (run `dermcds parity` on it)");
  const json& parity = d["parity"];
  if (!parity.contains("pairs") || !parity["pairs"].is_array() || parity["pairs"].empty())
    return fail("its parity evidence compares no pair of runtimes");
  std::vector<std::string> uncovered;
  for (const ArtifactEntry& a : manifest.artifacts)
    if (std::string because = uncovered_because(a, parity); !because.empty()) uncovered.push_back(std::move(because));
  if (!uncovered.empty()) return fail("its parity evidence does not cover the current " + join(uncovered, "; "));
  return true;
}

bool artifact_passed_parity(const Manifest& manifest, const ArtifactEntry& artifact, std::string* why) {
  auto fail = [why](const std::string& reason) {
    if (why) *why = reason;
    return false;
  };
  const json& d = manifest.document;
  if (!d.contains("parity") || !d["parity"].is_object()) return fail("the version carries no parity evidence");
  const json& parity = d["parity"];
  if (std::string because = uncovered_because(artifact, parity); !because.empty()) return fail("its parity check: " + because);
  // Covered; but an artifact reported as not runnable where parity ran was never compared.
  const std::vector<std::string> ids = subjects_of(artifact, parity).ids;
  for (const json& p : parity.value("pairs", json::array()))
    if (p.is_object() && p.value("passed", false) && std::find(ids.begin(), ids.end(), p.value("candidate", "")) != ids.end()) return true;
  return fail(artifact.file + " was not compared where parity ran (reported as not runnable there)");
}

ServingVerdict serving_verdict(const Manifest& manifest, const ServingPolicy& policy) {
  ServingVerdict verdict;
  if (is_rejected(manifest)) {
    verdict.rejected = true;
    verdict.reason = "it is a rejected candidate (" + manifest.document["lifecycle"].value("reason", "its parity gate failed") + ")";
    return verdict;
  }
  std::string why;
  verdict.unverified = !has_covering_evidence(manifest, &why);
  verdict.reason = why;
  verdict.servable = !verdict.unverified || policy.allow_unverified;
  return verdict;
}

ServingVerdict serving_verdict(const std::filesystem::path& package_dir, const ServingPolicy& policy) {
  try {
    return serving_verdict(read_manifest(package_dir), policy);
  } catch (const Error& e) {
    ServingVerdict verdict;
    verdict.reason = e.what();
    return verdict;
  }
}

}  // namespace dermcds
