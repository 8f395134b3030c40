#include "dermcds/pipeline/parity_report.hpp"

#include <algorithm>
#include <cstdio>

#include "dermcds/error.hpp"
#include "dermcds/file_util.hpp"
#include "dermcds/manifest.hpp"
#include "dermcds/sha256.hpp"

namespace dermcds::pipeline {

namespace {

using ordered_json = nlohmann::ordered_json;

ordered_json disagreements_json(const std::vector<Disagreement>& list) {
  ordered_json out = ordered_json::array();
  for (const Disagreement& d : list)
    out.push_back({{"image", d.image},
                   {"reference", d.reference},
                   {"candidate", d.candidate},
                   {"reference_score", d.reference_score},
                   {"candidate_score", d.candidate_score},
                   {"reference_margin", d.reference_margin}});
  return out;
}

ordered_json pair_json(const PairResult& pair) {
  const PairMetrics& m = pair.metrics;
  ordered_json per_class = ordered_json::array();
  for (const ClassDifference& c : m.per_class)
    per_class.push_back({{"code", c.code}, {"max_abs_diff", c.max_abs_diff}, {"mean_abs_diff", c.mean_abs_diff}});
  return {
      {"reference", pair.reference},
      {"candidate", pair.candidate},
      {"bound_key", pair.bound_key},
      {"bounds", pair.bounds ? to_json(*pair.bounds) : ordered_json(nullptr)},
      {"passed", pair.check.passed},
      {"violations", pair.check.violations},
      {"images", m.images},
      {"candidate_failures", m.candidate_failures},
      {"max_abs_diff", m.max_abs_diff},
      {"mean_abs_diff", m.mean_abs_diff},
      {"worst_image", m.worst_image},
      {"top1_agreement", m.top1_agreement},
      {"triage_agreement", m.triage_agreement},
      {"assessment_images", m.assessment_images},
      {"assessment_agreement", m.assessment_agreement},
      {"per_class", per_class},
      {"top1_disagreements", disagreements_json(m.top1_disagreements)},
      {"triage_disagreements", disagreements_json(m.triage_disagreements)},
      {"assessment_disagreements", disagreements_json(m.assessment_disagreements)},
      // Out of distribution, unchecked (docs/parity.md): null when the set has none.
      {"real_photographs", pair.photographs ? ordered_json{{"images", pair.photographs->images},
                                                           {"max_abs_diff", pair.photographs->max_abs_diff},
                                                           {"mean_abs_diff", pair.photographs->mean_abs_diff},
                                                           {"top1_agreement", pair.photographs->top1_agreement},
                                                           {"triage_agreement", pair.photographs->triage_agreement},
                                                           {"top1_disagreements", disagreements_json(pair.photographs->top1_disagreements)}}
                                            : ordered_json(nullptr)}};
}

ordered_json subject_json(const SubjectRun& s) {
  std::size_t failures = 0;
  for (const auto& e : s.errors) failures += e.empty() ? 0 : 1;
  return {{"id", s.id},
          {"runtime", s.runtime},
          {"runtime_version", s.runtime_version},
          {"provider", s.provider},
          {"precision", s.precision},
          {"artifact", s.artifact},
          {"sha256", s.sha256},
          {"failed_images", failures},
          {"seconds", s.seconds}};
}

ordered_json skipped_json(const std::vector<SkippedSubject>& skipped) {
  ordered_json out = ordered_json::array();
  for (const SkippedSubject& s : skipped) out.push_back({{"id", s.id}, {"reason", s.reason}});
  return out;
}

ordered_json images_json(const ParityReport& report) {
  std::size_t unusable = 0;
  for (const auto& e : report.image_errors) unusable += e.empty() ? 0 : 1;
  // Reports are stored inside packages: the set is named by its folder's name and identified by
  // its sha256, never by a path of the machine that checked it.
  return {{"directory", report.image_set.directory.filename().string()},
          {"count", report.images.size()},
          {"unusable", unusable},
          {"sha256", report.image_set.sha256}};
}

std::string fixed(double value, int digits) {
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, "%.*f", digits, value);
  return buffer;
}

std::string general(double value) {
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, "%.3g", value);
  return buffer;
}

std::string percent(double fraction) { return fixed(100.0 * fraction, 1) + "%"; }

std::string bounds_text(const std::optional<ParityBounds>& b) {
  if (!b) return "none";
  std::vector<std::string> parts;
  if (b->max_abs_diff) parts.push_back("max " + general(*b->max_abs_diff));
  if (b->mean_abs_diff) parts.push_back("mean " + general(*b->mean_abs_diff));
  if (b->min_top1_agreement) parts.push_back("top-1 >= " + percent(*b->min_top1_agreement));
  if (b->min_triage_agreement) parts.push_back("triage >= " + percent(*b->min_triage_agreement));
  return join(parts);
}

bool inside(const std::filesystem::path& file, const std::filesystem::path& dir) {
  const auto f = std::filesystem::weakly_canonical(file), d = std::filesystem::weakly_canonical(dir);
  const auto rel = f.lexically_relative(d);
  return !rel.empty() && *rel.begin() != "..";
}

}  // namespace

ordered_json to_json(const ParityReport& report, bool per_image) {
  ordered_json j;
  j["format"] = kParityReportFormat;
  j["format_version"] = kParityReportFormatVersion;
  j["package"] = {{"name", report.package_name}, {"version", report.package_version}};
  j["created"] = report.created;
  j["passed"] = report.passed;
  j["reference"] = kReferenceSubject;
  const bool torch =
      std::any_of(report.subjects.begin(), report.subjects.end(), [](const SubjectRun& s) { return s.id == kGroundTruthSubject; });
  j["ground_truth"] = torch ? nlohmann::ordered_json(kGroundTruthSubject) : nlohmann::ordered_json(nullptr);
  j["images"] = images_json(report);
  j["reference_spread"] = report.reference_spread;
  j["policy"] = report.policy.to_json();
  ordered_json subjects = ordered_json::array();
  for (const SubjectRun& s : report.subjects) subjects.push_back(subject_json(s));
  j["subjects"] = subjects;
  j["skipped"] = skipped_json(report.skipped);
  ordered_json pairs = ordered_json::array();
  for (const PairResult& p : report.pairs) pairs.push_back(pair_json(p));
  j["pairs"] = pairs;
  ordered_json near = ordered_json::array();
  for (const NearThresholdImage& n : report.near_threshold) {
    ordered_json tiers = ordered_json::object();
    for (const auto& [id, tier] : n.tiers) tiers[id] = tier;
    near.push_back({{"image", n.image},
                    {"reference_tier", n.reference_tier},
                    {"nearest_rule", n.nearest_rule},
                    {"reference_margin", n.reference_margin},
                    {"disagreement", n.disagreement},
                    {"tiers", tiers}});
  }
  j["near_threshold"] = near;
  ordered_json failures = ordered_json::array();
  for (std::size_t i = 0; i < report.images.size(); ++i) {
    for (const SubjectRun& s : report.subjects)
      if (!s.errors[i].empty()) failures.push_back({{"image", report.images[i]}, {"subject", s.id}, {"error", s.errors[i]}});
  }
  j["failures"] = failures;
  if (per_image) {
    ordered_json labels = ordered_json::array();
    for (const Label& l : report.labels) labels.push_back(l.code);
    j["labels"] = labels;
    ordered_json rows = ordered_json::array();
    for (std::size_t i = 0; i < report.images.size(); ++i) {
      ordered_json probabilities = ordered_json::object();
      for (const SubjectRun& s : report.subjects)
        probabilities[s.id] = s.answers[i] ? ordered_json(s.answers[i]->probabilities) : ordered_json(nullptr);
      rows.push_back({{"image", report.images[i]}, {"probabilities", probabilities}});
    }
    j["per_image"] = rows;
  }
  return j;
}

ordered_json manifest_evidence(const ParityReport& report) {
  ordered_json j = to_json(report, false);
  j.erase("format");
  j.erase("format_version");
  j.erase("package");
  j.erase("failures");
  // Every image's tiers would bloat the manifest; the count and the disagreeing ones stay.
  ordered_json near = ordered_json::array();
  for (const auto& n : j["near_threshold"])
    if (n["disagreement"].get<bool>()) near.push_back(n);
  j["near_threshold_images"] = j["near_threshold"].size();
  j["near_threshold"] = near;
  return j;
}

std::string to_markdown(const ParityReport& r) {
  std::string md;
  md += "# Parity: " + r.package_name + " version " + r.package_version + "\n\n";
  md += std::string("**") + (r.passed ? "PASSED" : "FAILED") + "**: " + std::to_string(r.pairs.size()) + " pair" +
        (r.pairs.size() == 1 ? "" : "s") + " on " + std::to_string(r.images.size()) + " images from `" +
        r.image_set.directory.filename().string() + "` (set sha256 " + r.image_set.sha256.substr(0, 16) + "), " + r.created + ".\n\n";
  const bool torch = std::any_of(r.subjects.begin(), r.subjects.end(), [](const SubjectRun& s) { return s.id == kGroundTruthSubject; });
  md += "Reference: `" + std::string(kReferenceSubject) +
        "`; ground truth for the ONNX export: " + (torch ? "`" + std::string(kGroundTruthSubject) + "`" : std::string("not run")) +
        ". Differences are absolute differences of class probabilities.\n\n";
  md += "| reference | candidate | images | max abs diff | mean abs diff | top-1 agreement | triage agreement | bounds | verdict |\n";
  md += "|---|---|---:|---:|---:|---:|---:|---|---|\n";
  for (const PairResult& p : r.pairs) {
    const PairMetrics& m = p.metrics;
    md += "| " + p.reference + " | " + p.candidate + " | " + std::to_string(m.images) + " | " + general(m.max_abs_diff) + " | " +
          general(m.mean_abs_diff) + " | " + percent(m.top1_agreement) + " | " + percent(m.triage_agreement) + " | " +
          bounds_text(p.bounds) + " | " + (p.check.passed ? "pass" : "**FAIL**") + " |\n";
  }
  if (std::any_of(r.pairs.begin(), r.pairs.end(), [](const PairResult& p) { return p.photographs.has_value(); })) {
    // Out of distribution: shown so that nobody mistakes them for checked, never a pass or a fail.
    md += "\n## Real photographs (out of distribution, not checked against the bounds)\n\n";
    md +=
        "The figures above are on the lesion images only. The set's real photographs are not skin lesions: far from the "
        "training data the demo model's answers are meaningless and precisions may differ by whole probability units.\n\n";
    md += "| reference | candidate | images | max abs diff | mean abs diff | top-1 agreement | triage agreement |\n";
    md += "|---|---|---:|---:|---:|---:|---:|\n";
    for (const PairResult& p : r.pairs) {
      if (!p.photographs) continue;
      const PairMetrics& m = *p.photographs;
      md += "| " + p.reference + " | " + p.candidate + " | " + std::to_string(m.images) + " | " + general(m.max_abs_diff) + " | " +
            general(m.mean_abs_diff) + " | " + percent(m.top1_agreement) + " | " + percent(m.triage_agreement) + " |\n";
    }
  }
  md += "\n## Maximum absolute difference per class\n\n| candidate |";
  for (const Label& l : r.labels) md += " " + l.code + " |";
  md += "\n|---|";
  for (std::size_t c = 0; c < r.labels.size(); ++c) md += "---:|";
  md += "\n";
  for (const PairResult& p : r.pairs) {
    md += "| " + p.candidate + (p.reference == kReferenceSubject ? "" : " (vs " + p.reference + ")") + " |";
    // Appended piecewise: GCC 12 warns (-Wrestrict, a false positive) on " " + std::string here.
    for (const ClassDifference& c : p.metrics.per_class) md.append(" ").append(general(c.max_abs_diff)).append(" |");
    md += "\n";
  }
  bool any_violation = false;
  for (const PairResult& p : r.pairs) any_violation = any_violation || !p.check.violations.empty();
  if (any_violation) {
    md += "\n## Broken bounds\n\n";
    for (const PairResult& p : r.pairs)
      for (const std::string& v : p.check.violations) md += "- " + p.candidate + " vs " + p.reference + ": " + v + "\n";
  }
  bool any_disagreement = false;
  for (const PairResult& p : r.pairs)
    any_disagreement = any_disagreement || !p.metrics.triage_disagreements.empty() || !p.metrics.top1_disagreements.empty() ||
                       !p.metrics.assessment_disagreements.empty();
  if (any_disagreement) {
    md += "\n## Disagreements\n\n| candidate | image | kind | reference | candidate's | reference margin |\n|---|---|---|---|---|---:|\n";
    for (const PairResult& p : r.pairs) {
      for (const Disagreement& d : p.metrics.triage_disagreements)
        md += "| " + p.candidate + " | " + d.image + " | triage | " + d.reference + " (" + fixed(d.reference_score, 4) + ") | " +
              d.candidate + " (" + fixed(d.candidate_score, 4) + ") | " + fixed(d.reference_margin, 4) + " |\n";
      for (const Disagreement& d : p.metrics.assessment_disagreements)
        md += "| " + p.candidate + " | " + d.image + " | assessment | " + d.reference + " (guard " + fixed(d.reference_score, 4) + ") | " +
              d.candidate + " (guard " + fixed(d.candidate_score, 4) + ") | " + fixed(d.reference_margin, 4) + " |\n";
      for (const Disagreement& d : p.metrics.top1_disagreements)
        md += "| " + p.candidate + " | " + d.image + " | top-1 | " + d.reference + " (" + fixed(d.reference_score, 4) + ") | " +
              d.candidate + " (" + fixed(d.candidate_score, 4) + ") | " + fixed(d.reference_margin, 4) + " |\n";
    }
  }
  md += "\n## Images near a triage threshold\n\n";
  if (r.near_threshold.empty()) {
    md += "None within " + general(r.policy.near_threshold_margin) + " of a threshold.\n";
  } else {
    md += "Reference margin below " + general(r.policy.near_threshold_margin) + ", or runtimes disagreeing.\n\n";
    md += "| image | reference tier | margin | nearest rule | tiers | disagreement |\n|---|---|---:|---|---|---|\n";
    for (const NearThresholdImage& n : r.near_threshold) {
      std::string tiers;
      for (const auto& [id, tier] : n.tiers)
        if (tier != n.reference_tier) tiers += (tiers.empty() ? "" : ", ") + id + ": " + tier;
      md += "| " + n.image + " | " + n.reference_tier + " | " + fixed(n.reference_margin, 4) + " | " + n.nearest_rule + " | " +
            (tiers.empty() ? "all agree" : tiers) + " | " + (n.disagreement ? "**yes**" : "no") + " |\n";
    }
  }
  md += "\n## Subjects\n\n| subject | runtime version | artifact | failed images | seconds |\n|---|---|---|---:|---:|\n";
  for (const SubjectRun& s : r.subjects) {
    std::size_t failures = 0;
    for (const auto& e : s.errors) failures += e.empty() ? 0 : 1;
    md += "| " + s.id + " | " + s.runtime_version + " | " + s.artifact + " | " + std::to_string(failures) + " | " + fixed(s.seconds, 2) +
          " |\n";
  }
  if (!r.skipped.empty()) {
    md += "\nNot run on this machine:\n\n";
    for (const SkippedSubject& s : r.skipped) md += "- " + s.id + ": " + s.reason + "\n";
  }
  md += "\nReference outputs vary by up to " + fixed(r.reference_spread, 3) +
        " in probability between images (a model that answers the same for every image would show ~0).\n";
  return md;
}

ReportFiles write_report_files(const ParityReport& report, const std::filesystem::path& dir, const PythonPipeline& python) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) throw Error(ErrorCode::kIoError, "cannot create " + dir.string() + ": " + ec.message());
  ReportFiles files{dir / "parity.json", dir / "parity.md", dir / "parity.png"};
  write_file_atomically(files.json, to_json(report, true).dump(2) + "\n");
  write_file_atomically(files.markdown, to_markdown(report));
  python.run(
      {"parity-plot", "--report", std::filesystem::absolute(files.json).string(), "--out", std::filesystem::absolute(files.plot).string()});
  return files;
}

void record_in_manifest(const ParityReport& report, const std::optional<ReportFiles>& files) {
  const Manifest manifest = read_manifest(report.package_dir);
  // The evidence must describe the artifacts the manifest lists now.
  for (const SubjectRun& s : report.subjects) {
    if (s.runtime == "pytorch") continue;
    const ArtifactEntry* artifact = manifest.find_artifact(s.runtime, s.precision);
    if (!artifact || artifact->sha256 != s.sha256)
      throw Error(ErrorCode::kInvalidPackage, "the " + s.runtime + " " + s.precision + " artifact of " + report.package_dir.string() +
                                                  " changed while parity ran; nothing recorded");
  }
  nlohmann::json document = manifest.document;
  ordered_json evidence = manifest_evidence(report);
  if (files && inside(files->json, report.package_dir)) {
    ordered_json listed = ordered_json::object();
    for (const auto& path : {files->json, files->markdown, files->plot})
      listed[std::filesystem::weakly_canonical(path).lexically_relative(std::filesystem::weakly_canonical(report.package_dir)).string()] =
          sha256_file_hex(path);
    evidence["report_files"] = listed;
  }
  document["parity"] = nlohmann::json::parse(evidence.dump());
  write_manifest(report.package_dir, document);
}

}  // namespace dermcds::pipeline
