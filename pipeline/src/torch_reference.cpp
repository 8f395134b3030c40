#include "dermcds/pipeline/torch_reference.hpp"

#include <fstream>

#include <nlohmann/json.hpp>

#include "dermcds/error.hpp"
#include "dermcds/file_bytes.hpp"

namespace dermcds::pipeline {

TorchReference run_torch_reference(const TorchReferenceRequest& request) {
  std::filesystem::create_directories(request.work_dir);
  const std::filesystem::path list = request.work_dir / "torch-images.txt";
  const std::filesystem::path out = request.work_dir / "torch-reference.json";
  {
    std::ofstream stream(list, std::ios::trunc);
    for (const auto& image : request.images) stream << std::filesystem::absolute(image).string() << "\n";
    if (!stream) throw Error(ErrorCode::kIoError, "cannot write " + list.string());
  }
  std::vector<std::string> arguments = {"torch-reference", "--package",   std::filesystem::absolute(request.package_dir).string(),
                                        "--images",        list.string(), "--out",
                                        out.string()};
  if (!request.checkpoint.empty()) {
    arguments.push_back("--checkpoint");
    arguments.push_back(std::filesystem::absolute(request.checkpoint).string());
  }
  request.python.run(arguments);

  nlohmann::json document;
  try {
    document = nlohmann::json::parse(read_file_bytes(out));
    TorchReference result;
    result.torch_version = document.at("torch").get<std::string>();
    result.checkpoint_file = document.at("checkpoint").at("file").get<std::string>();
    result.checkpoint_sha256 = document.at("checkpoint").at("sha256").get<std::string>();
    const auto& results = document.at("results");
    if (!results.is_array() || results.size() != request.images.size())
      throw Error(ErrorCode::kInvalidPackage, out.string() + ": expected one result per image");
    for (std::size_t i = 0; i < results.size(); ++i) {
      const auto& entry = results[i];
      if (entry.contains("logits")) {
        result.logits.emplace_back(entry["logits"].get<std::vector<float>>());
        result.ood_scores.push_back(entry.contains("ood_score") ? std::optional<float>(entry["ood_score"].get<float>()) : std::nullopt);
        result.errors.emplace_back();
      } else {
        result.logits.emplace_back(std::nullopt);
        result.ood_scores.emplace_back(std::nullopt);
        result.errors.push_back(entry.value("error", std::string("no logits")));
      }
    }
    return result;
  } catch (const nlohmann::json::exception& e) {
    throw Error(ErrorCode::kInvalidPackage, out.string() + " is not the runner's result document: " + e.what());
  }
}

}  // namespace dermcds::pipeline
