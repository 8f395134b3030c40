// "May this version serve?": the one rule, used wherever a version is chosen to answer requests
// (ModelRepository's active version, the service at start-up and on the admin API's load,
// activate and rollback, the CLI's model directories, the lifecycle's promote and rollback).
// docs/lifecycle.md, "The serving rule", is its description for users.
//
// A version may serve when
//   1. its manifest does not mark it a rejected candidate (lifecycle.status "rejected"), and
//   2. its parity evidence (the manifest's "parity" section, written by `dermcds parity` or a
//      build) covers every artifact the manifest lists now: each was compared, with the sha256 it
//      has now, in pairs that all passed (or was reported as not runnable on the machine that
//      checked it), and the evidence compares at least one pair.
// Editing an artifact and re-stamping its sha256 in the manifest, or deleting the evidence,
// therefore makes a version unservable. Artifacts whose check failed are moved out of
// "artifacts" by the build (lifecycle.rejected_artifacts), so that the rest of a version serves.
//
// The development override (ServingPolicy::allow_unverified, the service's and CLI's explicit
// --allow-unverified-models flag) waives condition 2 only; a rejected candidate never serves.
// Thread safety: pure functions.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "dermcds/manifest.hpp"

namespace dermcds {

struct ServingPolicy {
  // Development only: serve versions without covering parity evidence. Whoever sets it must log
  // it at start and mark every answer (docs/service.md, "Development override").
  bool allow_unverified = false;
};

struct ServingVerdict {
  bool servable = false;
  bool rejected = false;    // condition 1 failed
  bool unverified = false;  // condition 2 failed (even if the policy waived it)
  std::string reason;       // what is missing, naming the files; "" when servable and verified
  explicit operator bool() const noexcept { return servable; }
};

// The manifest marks the version a rejected candidate.
bool is_rejected(const Manifest& manifest);
// Condition 2 alone. `why` names what is missing when it returns false.
bool has_covering_evidence(const Manifest& manifest, std::string* why = nullptr);
ServingVerdict serving_verdict(const Manifest& manifest, const ServingPolicy& policy = {});
// Stricter than coverage, for one artifact: the evidence ran it, with the sha256 it has now, in
// at least one pair, and every pair it is the candidate of passed (being reported as not
// runnable where parity ran does not count). What the automatic precision choice asks before it
// prefers an int8 artifact over the reference (Classifier, choose_runtime). `why` says what is
// missing when it returns false.
bool artifact_passed_parity(const Manifest& manifest, const ArtifactEntry& artifact, std::string* why = nullptr);
// Reads <package_dir>/manifest.json first; a manifest that cannot be read is not servable, with
// the read error as the reason.
ServingVerdict serving_verdict(const std::filesystem::path& package_dir, const ServingPolicy& policy = {});

}  // namespace dermcds
