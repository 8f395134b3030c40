// Inference latency of a package's TensorFlow Lite artifacts (fp32, fp16, int8), each with
// XNNPACK and with TFLite's own kernels, through the same backend `dermcds classify --runtime
// tflite` uses. Configurations run round-robin, one inference each per round, so drift in machine
// load affects all alike. Prints min/median/p90/p99 per configuration, file sizes, and each
// median relative to fp32 on XNNPACK (the goal: int8 <= 0.6x).
//
//   tflite_bench --package models/derm-mnv3-large --threads 1
#include <algorithm>
#include <cstdio>
#include <fstream>
#include <map>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "bench_stats.hpp"
#include "dermcds/error.hpp"
#include "dermcds/file_bytes.hpp"
#include "dermcds/image.hpp"
#include "dermcds/model_package.hpp"
#include "dermcds/model_repository.hpp"
#include "dermcds/preprocess.hpp"
#include "dermcds/runtime.hpp"

namespace {

using dermcds::bench::Clock;
using dermcds::bench::elapsed_ms;

struct Options {
  std::string package = "models/derm-mnv3-large";
  std::string image = "/usr/share/matplotlib/mpl-data/sample_data/grace_hopper.jpg";
  int iterations = 100;
  int warmup = 10;
  int threads = 1;
  bool builtin = true;
  bool int8_without_xnnpack_int8 = true;
  std::string json_out;
};

struct Config {
  std::string label;
  const dermcds::ArtifactEntry* artifact;
  dermcds::ExecutionOptions execution;
  std::unique_ptr<dermcds::InferenceBackend> backend;
  std::vector<double> samples;
};

int run(const Options& o) {
  const dermcds::ModelPackage package = dermcds::ModelPackage::open(dermcds::resolve_package_dir(o.package));
  const dermcds::Manifest& m = package.manifest();
  const dermcds::RuntimeDescriptor* tflite = dermcds::find_runtime("tflite");
  if (!tflite) throw dermcds::Error(dermcds::ErrorCode::kRuntimeUnavailable, "this build has no tflite runtime");

  std::vector<Config> configs;
  for (const dermcds::ArtifactEntry& a : m.artifacts) {
    if (a.runtime != "tflite") continue;
    auto add = [&](const std::string& provider, std::map<std::string, std::string> provider_options, const std::string& suffix) {
      Config c;
      c.label = a.precision + " " + provider + suffix;
      c.artifact = &a;
      c.execution.provider = provider;
      c.execution.threads = o.threads;
      c.execution.provider_options = std::move(provider_options);
      configs.push_back(std::move(c));
    };
    add("xnnpack", {}, "");
    if (a.precision == "int8" && o.int8_without_xnnpack_int8) add("xnnpack", {{"xnnpack_int8", "0"}}, " (int8 ops on TFLite kernels)");
    if (o.builtin) add("builtin", {}, "");
  }
  if (configs.empty()) throw dermcds::Error(dermcds::ErrorCode::kNotFound, "package " + o.package + " has no tflite artifacts");

  const dermcds::RgbImage image = dermcds::decode_image(dermcds::read_file_bytes(o.image));
  const dermcds::Tensor input = dermcds::preprocess(image, m.input, dermcds::TensorLayout::kNHWC);

  for (Config& c : configs) {
    dermcds::BackendRequest request;
    request.model_file = package.artifact_path(*c.artifact);
    request.precision = c.artifact->precision;
    request.input_name = m.input_name;
    request.output_name = m.output_name;
    request.input_size = m.input.crop_size;
    request.num_classes = static_cast<int>(m.labels.size());
    request.options = c.execution;
    const auto start = Clock::now();
    c.backend = tflite->create(request);
    std::fprintf(stderr, "tflite_bench: %-45s loaded in %.1f ms (provider %s)\n", c.label.c_str(), elapsed_ms(start),
                 c.backend->info().provider.c_str());
    for (const std::string& f : c.backend->info().fallbacks) std::fprintf(stderr, "tflite_bench:   fallback: %s\n", f.c_str());
    for (int i = 0; i < o.warmup; ++i) c.backend->run(input);
  }
  for (int i = 0; i < o.iterations; ++i)
    for (Config& c : configs) {
      const auto start = Clock::now();
      c.backend->run(input);
      c.samples.push_back(elapsed_ms(start));
    }

  double reference = 0;
  for (const Config& c : configs)
    if (c.artifact->precision == "fp32" && c.label == "fp32 xnnpack") reference = dermcds::bench::summarize(c.samples).median;
  std::printf("TensorFlow Lite %s, %d thread(s), %d iterations, image %s\n", tflite->version().c_str(), o.threads, o.iterations,
              o.image.c_str());
  nlohmann::ordered_json results = nlohmann::ordered_json::array();
  for (const Config& c : configs) {
    const dermcds::bench::Summary s = dermcds::bench::summarize(c.samples);
    const double ratio = reference > 0 ? s.median / reference : 0;
    std::printf("%-45s %7.2f MB  %s  median/fp32-xnnpack %.2f\n", c.label.c_str(), static_cast<double>(c.artifact->bytes) / 1e6,
                dermcds::bench::format_summary(s).c_str(), ratio);
    results.push_back({{"config", c.label},
                       {"file", c.artifact->file},
                       {"bytes", c.artifact->bytes},
                       {"median_ms", s.median},
                       {"p90_ms", s.p90},
                       {"min_ms", s.min},
                       {"ratio_to_fp32_xnnpack", ratio}});
  }
  if (!o.json_out.empty()) {
    std::ofstream out(o.json_out);
    out << nlohmann::ordered_json{{"threads", o.threads}, {"iterations", o.iterations}, {"results", results}}.dump(2) << "\n";
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  CLI::App app{"Latency of a model package's TFLite artifacts (fp32, fp16, int8) with XNNPACK and TFLite kernels"};
  app.add_option("--package", o.package, "Package directory or model directory (its active version)")->capture_default_str();
  app.add_option("--image", o.image, "Image to classify")->capture_default_str();
  app.add_option("--iterations", o.iterations, "Timed inferences per configuration")->check(CLI::Range(1, 100000))->capture_default_str();
  app.add_option("--warmup", o.warmup, "Untimed inferences per configuration first")->check(CLI::Range(0, 10000))->capture_default_str();
  app.add_option("--threads", o.threads, "Inference threads (XNNPACK thread pool / TFLite kernels)")
      ->check(CLI::Range(1, 256))
      ->capture_default_str();
  app.add_flag("!--no-builtin", o.builtin, "Skip the TFLite-kernel configurations");
  app.add_flag("!--no-int8-comparison", o.int8_without_xnnpack_int8, "Skip int8 with XNNPACK's int8 operators disabled");
  app.add_option("--json-out", o.json_out, "Also write the figures as JSON");
  CLI11_PARSE(app, argc, argv);
  try {
    return run(o);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "tflite_bench: %s\n", e.what());
    return 1;
  }
}
