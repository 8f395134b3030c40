// Recording a converted artifact in a model package's manifest: the one place both package
// writers (TFLite, package_artifact.cpp; ONNX QDQ, package_onnx_int8.cpp) go through.
#pragma once

#include <filesystem>
#include <functional>
#include <string>

#include <nlohmann/json.hpp>

#include "dermcds/manifest.hpp"

namespace dermcds::converter {

// Replaces the manifest's artifact of `runtime` and `precision` (if any) by `entry` and writes
// manifest.json atomically (write_manifest); reports it through `progress` when given.
inline void record_artifact(const std::filesystem::path& dir, const Manifest& manifest, const std::string& runtime,
                            const std::string& precision, nlohmann::json entry, const std::function<void(const std::string&)>& progress) {
  nlohmann::json document = manifest.document;
  nlohmann::json artifacts = nlohmann::json::array();
  for (const auto& a : document.value("artifacts", nlohmann::json::array()))
    if (!(a.value("runtime", "") == runtime && a.value("precision", "") == precision)) artifacts.push_back(a);
  const std::string file = entry.value("file", "");
  artifacts.push_back(std::move(entry));
  document["artifacts"] = std::move(artifacts);
  write_manifest(dir, document);
  if (progress) progress("recorded " + file + " in " + (dir / std::string(kManifestFileName)).string());
}

}  // namespace dermcds::converter
