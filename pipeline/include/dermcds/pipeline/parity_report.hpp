// What a parity run leaves behind: a JSON report, a Markdown summary, a PNG plot of the per-class
// difference distributions, and the evidence recorded in the package's manifest
// (docs/parity.md describes every field).
// Errors: kIoError (writing), kRuntimeFailure (the plotting script failed), kInvalidPackage
// (the manifest cannot be read back).
#pragma once

#include <filesystem>
#include <string>

#include <nlohmann/json.hpp>

#include "dermcds/pipeline/parity.hpp"
#include "dermcds/pipeline/python_pipeline.hpp"

namespace dermcds::pipeline {

inline constexpr std::string_view kParityReportFormat = "dermcds-parity-report";
inline constexpr int kParityReportFormatVersion = 1;

// The full report; with `per_image`, every subject's probabilities for every image too (what the
// plot is drawn from).
nlohmann::ordered_json to_json(const ParityReport& report, bool per_image);

// The summary the manifest keeps: verdict, images, subjects, per-pair metrics and bounds; no
// per-image data beyond the disagreements.
nlohmann::ordered_json manifest_evidence(const ParityReport& report);

// A human summary: tables per pair and per class, disagreements, images near a threshold.
std::string to_markdown(const ParityReport& report);

struct ReportFiles {
  std::filesystem::path json;      // <dir>/parity.json
  std::filesystem::path markdown;  // <dir>/parity.md
  std::filesystem::path plot;      // <dir>/parity.png
};

// Writes the three files into `dir` (created if needed). The plot is drawn by
// `python -m dermcds_export parity-plot` (matplotlib).
ReportFiles write_report_files(const ParityReport& report, const std::filesystem::path& dir, const PythonPipeline& python);

// Stores manifest_evidence() as the manifest's "parity" object (replacing an earlier run's),
// written atomically. When the report files lie inside the package, "parity.report" names them
// with their sha256, so the package carries the full evidence.
void record_in_manifest(const ParityReport& report, const std::optional<ReportFiles>& files);

}  // namespace dermcds::pipeline
