#include "batch_classify.hpp"

#include <unistd.h>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <deque>
#include <fstream>
#include <future>
#include <set>
#include <thread>

#include <nlohmann/json.hpp>

#include "dermcds/error.hpp"
#include "dermcds/file_bytes.hpp"
#include "dermcds/pipeline/image_set.hpp"

namespace dermcds::cli {

namespace {

using Clock = std::chrono::steady_clock;
constexpr std::uint64_t kMaxImageFileBytes = 64ull << 20;

[[noreturn]] void bad(const std::string& message) { throw Error(ErrorCode::kInvalidArgument, message); }

std::vector<std::filesystem::path> collect(const std::vector<std::string>& inputs) {
  std::vector<std::filesystem::path> files;
  for (const std::string& input : inputs) {
    std::error_code ec;
    if (std::filesystem::is_directory(input, ec)) {
      std::vector<std::filesystem::path> found;
      for (const auto& entry : std::filesystem::recursive_directory_iterator(input, ec))
        if (entry.is_regular_file() && pipeline::is_image_file_name(entry.path())) found.push_back(entry.path());
      if (ec) throw Error(ErrorCode::kIoError, "cannot walk " + input + ": " + ec.message());
      if (found.empty()) bad("directory " + input + " holds no JPEG or PNG images (*.jpg, *.jpeg, *.png)");
      std::sort(found.begin(), found.end());
      files.insert(files.end(), found.begin(), found.end());
    } else {
      // A named file is classified (or gets an error row) whatever its extension.
      files.emplace_back(input);
    }
  }
  return files;
}

std::string csv_field(const std::string& text) {
  if (text.find_first_of(",\"\n") == std::string::npos) return text;
  std::string quoted = "\"";
  for (char c : text) quoted += c == '"' ? std::string("\"\"") : std::string(1, c);
  return quoted + "\"";
}

// Image names (the first field) already in an output file.
std::set<std::string> done_names(const std::string& path, bool csv) {
  std::set<std::string> names;
  std::ifstream in(path);
  std::string line;
  bool header = csv;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    if (header) {
      header = false;
      continue;
    }
    if (csv) {
      names.insert(line.substr(0, line.find(',')));
    } else {
      const auto doc = nlohmann::json::parse(line, nullptr, false);
      if (doc.is_object() && doc.contains("image") && doc["image"].is_string()) names.insert(doc["image"].get<std::string>());
    }
  }
  return names;
}

class Progress {
 public:
  explicit Progress(std::size_t total) : total_(total), start_(Clock::now()), last_(start_), tty_(::isatty(2) == 1) {}
  void update(std::size_t done, bool final = false) {
    const auto now = Clock::now();
    // A terminal gets a redrawn bar a few times a second; a log gets a line every 5 s.
    if (!final && now - last_ < (tty_ ? std::chrono::milliseconds(200) : std::chrono::milliseconds(5000))) return;
    last_ = now;
    const double seconds = std::chrono::duration<double>(now - start_).count();
    const double rate = seconds > 0 ? static_cast<double>(done) / seconds : 0.0;
    const double eta = rate > 0 ? static_cast<double>(total_ - done) / rate : 0.0;
    if (tty_) {
      constexpr int kWidth = 30;
      const int filled = total_ ? static_cast<int>(kWidth * done / total_) : kWidth;
      std::fprintf(stderr, "\r[%s%s] %zu/%zu  %.1f images/s  ETA %.0fs ", std::string(filled, '#').c_str(),
                   std::string(kWidth - filled, '.').c_str(), done, total_, rate, eta);
      if (final) std::fputc('\n', stderr);
    } else {
      std::fprintf(stderr, "dermcds: classify: %zu/%zu images, %.1f images/s, ETA %.0f s\n", done, total_, rate, eta);
    }
    std::fflush(stderr);
  }

 private:
  std::size_t total_;
  Clock::time_point start_, last_;
  bool tty_;
};

struct Prepared {
  std::filesystem::path file;
  std::optional<PreparedImage> image;
  std::string error, code;
};

}  // namespace

void run_batch(const Classifier& classifier, const BatchOptions& options) {
  const std::string extension = std::filesystem::path(options.output).extension().string();
  const bool csv = extension == ".csv";
  if (!csv && extension != ".jsonl") bad("--output " + options.output + " must end in .csv (ISIC predictions) or .jsonl");
  std::error_code ec;
  const bool exists = std::filesystem::exists(options.output, ec);
  if (exists && !options.resume && !options.force)
    bad("--output " + options.output + " exists; give --resume to continue it or --force to overwrite it");
  const std::vector<std::filesystem::path> all = collect(options.inputs);
  const std::set<std::string> done = exists && options.resume ? done_names(options.output, csv) : std::set<std::string>{};
  std::vector<std::filesystem::path> files;
  for (const auto& file : all)
    if (!done.count(file.stem().string())) files.push_back(file);
  if (!done.empty())
    std::fprintf(stderr, "dermcds: classify: --resume: %zu of %zu images are already in %s\n", all.size() - files.size(), all.size(),
                 options.output.c_str());

  const Manifest& manifest = classifier.manifest();
  std::ofstream out(options.output, exists && options.resume ? std::ios::app : std::ios::trunc);
  if (!out) throw Error(ErrorCode::kIoError, "cannot write " + options.output);
  if (csv && !(exists && options.resume)) {
    out << "image";
    for (const Label& label : manifest.labels) out << ',' << label.code;
    out << '\n';
  }

  // Decoding and preprocessing run on worker threads, ahead of the inference on this one.
  const unsigned workers = std::max(1u, std::thread::hardware_concurrency());
  const std::size_t window = static_cast<std::size_t>(options.batch) * 2 + workers;
  std::deque<std::future<Prepared>> pending;
  std::size_t next = 0, written = 0, failures = 0;
  auto launch = [&] {
    while (next < files.size() && pending.size() < window) {
      const std::filesystem::path file = files[next++];
      pending.push_back(std::async(std::launch::async, [&classifier, file] {
        Prepared p{file, std::nullopt, {}, {}};
        try {
          p.image = classifier.prepare(read_file_bytes(file, kMaxImageFileBytes));
        } catch (const Error& e) {
          p.error = e.what();
          p.code = std::string(to_string(e.code()));
        }
        return p;
      }));
    }
  };
  auto write_error = [&](const Prepared& p) {
    ++failures;
    std::fprintf(stderr, "%sdermcds: %s: %s (%s)\n", ::isatty(2) ? "\n" : "", p.file.c_str(), p.error.c_str(), p.code.c_str());
    if (csv) {
      out << csv_field(p.file.stem().string());
      for (std::size_t c = 0; c < manifest.labels.size(); ++c) out << ',';  // empty cells: no answer
      out << '\n';
    } else {
      out << nlohmann::json{{"image", p.file.stem().string()}, {"file", p.file.string()}, {"error", p.error}, {"code", p.code}}.dump()
          << '\n';
    }
  };

  Progress progress(files.size());
  launch();
  while (!pending.empty()) {
    std::vector<Prepared> batch;
    while (!pending.empty() && batch.size() < static_cast<std::size_t>(options.batch)) {
      batch.push_back(pending.front().get());
      pending.pop_front();
      launch();
    }
    std::vector<PreparedImage> images;
    std::vector<const Prepared*> owners;
    for (Prepared& p : batch)
      if (p.image) {
        images.push_back(std::move(*p.image));
        owners.push_back(&p);
      }
    std::vector<ClassificationResult> results;
    if (!images.empty()) results = classifier.classify_batch(images);
    std::size_t r = 0;
    for (const Prepared& p : batch) {
      if (!p.image && !p.error.empty()) {
        write_error(p);
        continue;
      }
      const ClassificationResult& result = results[r++];
      if (csv) {
        out << csv_field(p.file.stem().string());
        char number[32];
        for (float probability : result.probabilities) {
          std::snprintf(number, sizeof number, ",%.7f", probability);
          out << number;
        }
        out << '\n';
      } else {
        nlohmann::ordered_json doc{{"image", p.file.stem().string()}, {"file", p.file.string()}};
        doc.update(to_json(result));
        out << doc.dump() << '\n';
      }
    }
    out.flush();  // every finished batch is on disk: --resume continues from it
    if (!out) throw Error(ErrorCode::kIoError, "writing " + options.output + " failed");
    written += batch.size();
    progress.update(written);
  }
  progress.update(written, true);
  std::fprintf(stderr, "dermcds: classify: %zu images written to %s, %zu could not be read\n", written, options.output.c_str(), failures);
}

}  // namespace dermcds::cli
