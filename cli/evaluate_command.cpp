// dermcds evaluate --model DIR --images DIR --ground-truth FILE.csv [--json FILE] [--report DIR]
//
// Classifies every image of a labelled set and scores the answers as the ISIC 2019 challenge
// does (docs/cli.md). This file checks the inputs and runs the classifier; the metrics, the
// Markdown report and the plots are python/dermcds_export/evaluation.py's, which the command
// runs on the answers (`evaluate-report`).
#include <unistd.h>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "classifier_flags.hpp"
#include "command.hpp"
#include "dermcds/error.hpp"
#include "dermcds/file_bytes.hpp"
#include "dermcds/pipeline/image_set.hpp"
#include "dermcds/pipeline/python_pipeline.hpp"

namespace dermcds::cli {

namespace {

struct EvaluateFlags {
  ClassifierFlags classifier;
  std::string images;
  std::string ground_truth;
  std::string json;
  std::string report;
  bool force = false;
};

constexpr std::uint64_t kMaxImageFileBytes = 64ull << 20;
constexpr std::uint64_t kMaxCsvBytes = 256ull << 20;
constexpr std::size_t kListed = 5;  // names quoted in an error before "and N more"

[[noreturn]] void bad(const std::string& message) { throw Error(ErrorCode::kInvalidArgument, message); }

std::string some(const std::vector<std::string>& names) {
  std::string out;
  for (std::size_t i = 0; i < names.size() && i < kListed; ++i) out += (i ? ", " : "") + names[i];
  if (names.size() > kListed) out += " and " + std::to_string(names.size() - kListed) + " more";
  return out;
}

std::vector<std::string> split(const std::string& line) {
  std::vector<std::string> cells;
  std::stringstream stream(line);
  std::string cell;
  while (std::getline(stream, cell, ',')) cells.push_back(cell);
  if (!line.empty() && line.back() == ',') cells.emplace_back();
  return cells;
}

// image name -> class code, from an ISIC 2019 ground-truth CSV (image,MEL,NV,...,SCC,UNK).
std::map<std::string, std::string> read_ground_truth(const std::string& path, const Manifest& manifest, std::size_t& unknown_rows) {
  const std::vector<std::uint8_t> bytes = read_file_bytes(path, kMaxCsvBytes);
  std::stringstream text(std::string(bytes.begin(), bytes.end()));
  std::string line;
  std::vector<std::string> header;
  while (header.empty() && std::getline(text, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (!line.empty()) header = split(line);
  }
  if (header.empty()) bad(path + ": the ground-truth file is empty (expected the header image," + "MEL,NV,BCC,AK,BKL,DF,VASC,SCC,UNK)");
  if (header.front() != "image") bad(path + ": the first column is '" + header.front() + "', expected 'image'");
  std::vector<std::string> unknown_columns;
  std::set<std::string> seen;
  for (std::size_t c = 1; c < header.size(); ++c) {
    if (!seen.insert(header[c]).second) bad(path + ": column '" + header[c] + "' appears twice");
    if (header[c] != "UNK" && !manifest.label_index(header[c])) unknown_columns.push_back(header[c]);
  }
  if (!unknown_columns.empty())
    bad(path + ": unknown column(s) " + some(unknown_columns) + "; the model's classes are the ISIC 2019 codes of its manifest (and UNK)");
  std::vector<std::string> missing_columns;
  for (const Label& label : manifest.labels)
    if (!seen.count(label.code)) missing_columns.push_back(label.code);
  if (!missing_columns.empty()) bad(path + ": the ground truth does not match the model: no column for " + some(missing_columns));

  std::map<std::string, std::string> truth;
  std::size_t number = 1;
  while (std::getline(text, line)) {
    ++number;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) continue;
    const std::vector<std::string> cells = split(line);
    const std::string where = path + " line " + std::to_string(number);
    if (cells.size() != header.size())
      bad(where + " has " + std::to_string(cells.size()) + " cells, the header has " + std::to_string(header.size()));
    if (cells[0].empty()) bad(where + " has no image name");
    std::string hot;
    for (std::size_t c = 1; c < cells.size(); ++c) {
      double value = 0;
      try {
        std::size_t used = 0;
        value = std::stod(cells[c], &used);
        if (used != cells[c].size()) throw std::invalid_argument("trailing");
      } catch (const std::exception&) {
        bad(where + ": column " + header[c] + " is '" + cells[c] + "', not a number");
      }
      if (value != 0.0 && value != 1.0) bad(where + ": column " + header[c] + " is " + cells[c] + "; ground truth is one-hot (0 or 1)");
      if (value == 1.0) {
        if (!hot.empty()) bad(where + ": more than one class is 1 (" + hot + ", " + header[c] + ")");
        hot = header[c];
      }
    }
    if (hot.empty()) bad(where + ": no class is 1");
    if (hot == "UNK") {
      ++unknown_rows;  // the model has no UNK class: such images cannot be scored
      continue;
    }
    if (!truth.emplace(cells[0], hot).second) bad(where + ": image " + cells[0] + " appears twice");
  }
  if (truth.empty()) bad(path + ": no ground-truth rows (only a header, or only UNK rows)");
  return truth;
}

void refuse_overwrite(const std::string& path, bool force, const char* what) {
  std::error_code ec;
  if (!path.empty() && std::filesystem::exists(path, ec) && !force)
    bad(std::string(what) + " " + path + " exists; give --force to overwrite it");
}

void run(EvaluateFlags& flags) {
  refuse_overwrite(flags.json, flags.force, "--json");
  refuse_overwrite(flags.report, flags.force, "--report");
  const std::unique_ptr<Classifier> classifier = open_classifier(flags.classifier);
  const Manifest& manifest = classifier->manifest();
  std::size_t unknown_rows = 0;
  const auto truth = read_ground_truth(flags.ground_truth, manifest, unknown_rows);
  const pipeline::ImageSet set = pipeline::list_image_set(flags.images, 0, "--images");

  std::vector<std::pair<std::string, std::filesystem::path>> images;  // name without extension, file
  std::vector<std::string> not_in_truth, duplicates;
  std::set<std::string> names;
  for (const auto& file : set.files) {
    const std::string name = file.stem().string();
    if (!names.insert(name).second) duplicates.push_back(file.filename().string());
    if (!truth.count(name)) not_in_truth.push_back(file.filename().string());
    images.emplace_back(name, file);
  }
  if (!duplicates.empty()) bad(flags.images + ": two files share a name without extension: " + some(duplicates));
  if (!not_in_truth.empty())
    bad(std::to_string(not_in_truth.size()) + " image(s) of " + flags.images + " are missing from the ground truth " + flags.ground_truth +
        ": " + some(not_in_truth));
  std::vector<std::string> without_image;
  for (const auto& [name, code] : truth)
    if (!names.count(name)) without_image.push_back(name);
  if (!without_image.empty())
    bad(std::to_string(without_image.size()) + " ground-truth row(s) have no image in " + flags.images + ": " + some(without_image));
  if (unknown_rows > 0)
    std::fprintf(stderr, "dermcds: evaluate: %zu UNK row(s) of the ground truth are left out: the model has no UNK class\n", unknown_rows);

  nlohmann::json document;
  document["model"] = {{"name", manifest.name},
                       {"version", manifest.version},
                       {"runtime", classifier->backend_info().runtime},
                       {"precision", classifier->backend_info().precision}};
  document["labels"] = nlohmann::json::array();
  for (const Label& label : manifest.labels) document["labels"].push_back(label.code);
  document["triage"] = manifest.document.at("triage");
  document["images"] = nlohmann::json::array();
  const auto start = std::chrono::steady_clock::now();
  auto last = start;
  for (std::size_t i = 0; i < images.size(); ++i) {
    const auto& [name, file] = images[i];
    // An image that cannot be read fails the evaluation: leaving it out would score a subset.
    ClassificationResult result;
    try {
      result = classifier->classify(read_file_bytes(file, kMaxImageFileBytes));
    } catch (const Error& e) {
      throw Error(e.code(), file.string() + ": " + e.what() + " (every image of the set must be classified)");
    }
    document["images"].push_back(
        {{"image", name}, {"truth", truth.at(name)}, {"probabilities", result.probabilities}, {"assessment", result.assessment.status()}});
    const auto now = std::chrono::steady_clock::now();
    if (now - last > std::chrono::seconds(5) || i + 1 == images.size()) {
      last = now;
      const double seconds = std::chrono::duration<double>(now - start).count();
      std::fprintf(stderr, "dermcds: evaluate: %zu/%zu images, %.1f images/s\n", i + 1, images.size(), (i + 1) / seconds);
    }
  }

  const std::filesystem::path predictions =
      std::filesystem::temp_directory_path() / ("dermcds-evaluate-" + std::to_string(::getpid()) + ".json");
  {
    std::ofstream out(predictions, std::ios::trunc);
    out << document.dump();
    if (!out) throw Error(ErrorCode::kIoError, "cannot write " + predictions.string());
  }
  std::vector<std::string> arguments = {"evaluate-report", "--predictions", predictions.string()};
  if (!flags.json.empty()) arguments.insert(arguments.end(), {"--json", flags.json});
  if (!flags.report.empty()) arguments.insert(arguments.end(), {"--report", flags.report});
  try {
    pipeline::PythonPipeline::from_environment().run(arguments);
  } catch (...) {
    std::filesystem::remove(predictions);
    throw;
  }
  std::filesystem::remove(predictions);
}

}  // namespace

void register_evaluate_command(CLI::App& app) {
  auto flags = std::make_shared<EvaluateFlags>();
  CLI::App* command = app.add_subcommand(
      "evaluate", "Score a model on labelled images (ISIC 2019 ground-truth CSV): balanced accuracy, per-class metrics, ECE");
  add_classifier_flags(*command, flags->classifier);
  command->add_option("--images", flags->images, "Directory of JPEG/PNG images, named as the ground truth's image column")->required();
  command->add_option("--ground-truth", flags->ground_truth, "ISIC 2019 ground-truth CSV: image,MEL,NV,BCC,AK,BKL,DF,VASC,SCC,UNK")
      ->required();
  command->add_option("--json", flags->json, "Write the metrics as JSON to FILE (default: print them)");
  command->add_option("--report", flags->report, "Write evaluation.json, evaluation.md and PNG plots into DIR");
  command->add_flag("--force", flags->force, "Overwrite --json FILE or --report DIR if they exist");
  command->callback([flags] { run(*flags); });
}

}  // namespace dermcds::cli
