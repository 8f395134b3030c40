// End-to-end single-image latency of derm-cds, side by side in one run with:
//   - a bare ONNX Runtime session (same model file, same settings) on the same tensor,
//   - our JPEG/PNG decode alone (so "bare session + decode" is the floor we compare against),
//   - PyTorch eager (Pillow decode + torchvision transform + forward), via bench/pytorch_eager.py.
// Runs alternate between our pipeline and the bare session so that drift in machine load
// affects both alike. Prints per-stage min/median/p90/p99 and the ratios the goals are about.
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>

#include <unistd.h>

#include <CLI/CLI.hpp>
#include <onnxruntime_cxx_api.h>

#include "bench_stats.hpp"
#include "dermcds/classifier.hpp"
#include "dermcds/error.hpp"
#include "dermcds/file_bytes.hpp"
#include "dermcds/model_repository.hpp"
#include "dermcds/pipeline/subprocess.hpp"

namespace {

using dermcds::bench::Clock;
using dermcds::bench::elapsed_ms;
using dermcds::bench::format_summary;
using dermcds::bench::summarize;

struct Options {
  std::string model = "models/derm-effnet-b4";
  std::string image = "/usr/share/matplotlib/mpl-data/sample_data/grace_hopper.jpg";
  int iterations = 50;
  int warmup = 5;
  int threads = 0;
  bool pytorch = true;
  std::string json_out;
};

// A plain ONNX Runtime session configured as our backend configures its CPU session.
class BareSession {
 public:
  BareSession(const std::filesystem::path& model, int threads)
      : env_(ORT_LOGGING_LEVEL_WARNING, "bench"), memory_(Ort::MemoryInfo::CreateCpu(OrtArenaAllocator, OrtMemTypeDefault)) {
    Ort::SessionOptions options;
    options.SetGraphOptimizationLevel(GraphOptimizationLevel::ORT_ENABLE_ALL);
    if (threads > 0) options.SetIntraOpNumThreads(threads);
    options.SetInterOpNumThreads(1);
    options.SetExecutionMode(ExecutionMode::ORT_SEQUENTIAL);
    session_.emplace(env_, model.c_str(), options);
    Ort::AllocatorWithDefaultOptions allocator;
    input_name_ = session_->GetInputNameAllocated(0, allocator).get();
    output_name_ = session_->GetOutputNameAllocated(0, allocator).get();
  }
  void run(std::vector<float>& input, const std::vector<std::int64_t>& shape) {
    Ort::Value tensor = Ort::Value::CreateTensor<float>(memory_, input.data(), input.size(), shape.data(), shape.size());
    const char* in[] = {input_name_.c_str()};
    const char* out[] = {output_name_.c_str()};
    session_->Run(Ort::RunOptions{nullptr}, in, &tensor, 1, out, 1);
  }

 private:
  Ort::Env env_;
  Ort::MemoryInfo memory_;
  std::optional<Ort::Session> session_;
  std::string input_name_, output_name_;
};

struct Series {
  std::vector<double> decode, preprocess, inference, postprocess, total;
};

void print_row(const char* name, const std::vector<double>& samples) {
  std::printf("  %-26s %s\n", name, format_summary(summarize(samples)).c_str());
}

nlohmann::json summary_json(const std::vector<double>& samples) {
  const auto s = summarize(samples);
  return {{"min", s.min}, {"median", s.median}, {"p90", s.p90}, {"p99", s.p99}, {"max", s.max}, {"n", s.count}};
}

int run(const Options& options) {
  const OrtApi* api = OrtGetApiBase()->GetApi(ORT_API_VERSION);
  if (!api) throw dermcds::Error(dermcds::ErrorCode::kRuntimeUnavailable, "ONNX Runtime C API unavailable");
  Ort::InitApi(api);

  const std::vector<std::uint8_t> bytes = dermcds::read_file_bytes(options.image);
  dermcds::ClassifierOptions classifier_options;
  classifier_options.package = dermcds::resolve_package_dir(options.model);
  classifier_options.runtime = "onnxruntime";
  classifier_options.execution.provider = "cpu";
  classifier_options.execution.threads = options.threads;

  auto start = Clock::now();
  const auto classifier = dermcds::Classifier::create(classifier_options);
  const double create_ms = elapsed_ms(start);
  const dermcds::Manifest& manifest = classifier->manifest();
  const auto onnx = classifier->package().artifact_path(*manifest.find_artifact("onnxruntime", "fp32"));

  start = Clock::now();
  BareSession bare(onnx, options.threads);
  const double bare_create_ms = elapsed_ms(start);

  std::vector<float> tensor = classifier->prepare(bytes).input;
  const std::vector<std::int64_t> shape{1, 3, manifest.input.crop_size, manifest.input.crop_size};

  start = Clock::now();
  classifier->classify(bytes);
  const double first_ms = elapsed_ms(start);
  for (int i = 0; i < options.warmup; ++i) {
    classifier->classify(bytes);
    bare.run(tensor, shape);
  }

  Series ours, bare_series, decode_only;
  for (int i = 0; i < options.iterations; ++i) {
    auto t = Clock::now();
    const auto result = classifier->classify(bytes);
    ours.total.push_back(elapsed_ms(t));
    ours.decode.push_back(result.timings.decode_ms);
    ours.preprocess.push_back(result.timings.preprocess_ms);
    ours.inference.push_back(result.timings.inference_ms);
    ours.postprocess.push_back(result.timings.postprocess_ms);

    t = Clock::now();
    bare.run(tensor, shape);
    bare_series.inference.push_back(elapsed_ms(t));

    t = Clock::now();
    dermcds::decode_image(bytes);
    decode_only.decode.push_back(elapsed_ms(t));
  }

  const double ours_median = summarize(ours.total).median;
  const double floor_median = summarize(bare_series.inference).median + summarize(decode_only.decode).median;
  std::printf("derm-cds end-to-end vs bare ONNX Runtime %s, %s/%s (%dx%d), image %s, %d iterations after %d warm-up\n",
              classifier->backend_info().runtime_version.c_str(), manifest.name.c_str(), manifest.version.c_str(),
              manifest.input.crop_size, manifest.input.crop_size, options.image.c_str(), options.iterations, options.warmup);
  std::printf("session creation: ours %.1f ms (incl. package sha256 check), bare %.1f ms; first classify %.1f ms\n",
              create_ms, bare_create_ms, first_ms);
  std::printf("latency in ms:\n");
  print_row("ours: decode", ours.decode);
  print_row("ours: preprocess", ours.preprocess);
  print_row("ours: inference", ours.inference);
  print_row("ours: postprocess", ours.postprocess);
  print_row("ours: end-to-end", ours.total);
  print_row("bare session run", bare_series.inference);
  print_row("decode alone", decode_only.decode);
  std::printf("ratio ours end-to-end / (bare session + decode), medians: %.3f  (goal <= 1.05)\n", ours_median / floor_median);

  nlohmann::json report = {
      {"model", manifest.name + "/" + manifest.version},
      {"image", options.image},
      {"iterations", options.iterations},
      {"session_creation_ms", {{"ours", create_ms}, {"bare", bare_create_ms}}},
      {"first_classify_ms", first_ms},
      {"ours", {{"decode", summary_json(ours.decode)}, {"preprocess", summary_json(ours.preprocess)},
                {"inference", summary_json(ours.inference)}, {"postprocess", summary_json(ours.postprocess)},
                {"total", summary_json(ours.total)}}},
      {"bare_session", summary_json(bare_series.inference)},
      {"decode_alone", summary_json(decode_only.decode)},
      {"ratio_ours_to_bare_plus_decode", ours_median / floor_median},
      {"peak_rss_mib", dermcds::bench::peak_rss_mib()},
  };

  if (options.pytorch) {
    const std::string out = std::filesystem::temp_directory_path() / ("pytorch-eager-" + std::to_string(::getpid()) + ".json");
    dermcds::pipeline::ProcessRequest request;
    request.argv = {DERMCDS_PYTHON, std::string(DERMCDS_SOURCE_DIR) + "/bench/pytorch_eager.py", "--package",
                    classifier_options.package.string(), "--image", options.image, "--iterations",
                    std::to_string(options.iterations), "--warmup", std::to_string(options.warmup), "--threads",
                    std::to_string(options.threads > 0 ? options.threads : 2), "--out", out};
    std::fflush(stdout);
    if (dermcds::pipeline::run_process(request) != 0)
      throw dermcds::Error(dermcds::ErrorCode::kRuntimeFailure, "PyTorch benchmark failed");
    const nlohmann::json torch = nlohmann::json::parse(std::ifstream(out));
    std::filesystem::remove(out);
    const auto stages = torch["samples_ms"];
    print_row("pytorch: decode (Pillow)", stages["decode"].get<std::vector<double>>());
    print_row("pytorch: preprocess", stages["preprocess"].get<std::vector<double>>());
    print_row("pytorch: inference", stages["inference"].get<std::vector<double>>());
    print_row("pytorch: end-to-end", stages["total"].get<std::vector<double>>());
    const double torch_median = summarize(stages["total"].get<std::vector<double>>()).median;
    std::printf("speed-up over PyTorch eager, medians: %.2fx  (goal >= 2)\n", torch_median / ours_median);
    report["pytorch_eager"] = {{"total", summary_json(stages["total"].get<std::vector<double>>())},
                               {"inference", summary_json(stages["inference"].get<std::vector<double>>())},
                               {"torch_version", torch["torch_version"]}};
    report["speedup_over_pytorch"] = torch_median / ours_median;
  }
  std::printf("peak RSS %.0f MiB\n", dermcds::bench::peak_rss_mib());
  if (!options.json_out.empty()) std::ofstream(options.json_out) << report.dump(2) << "\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Options options;
  CLI::App app{"classify_bench: derm-cds end-to-end latency vs a bare ONNX Runtime session and PyTorch eager"};
  app.add_option("--model", options.model, "Model package or model directory")->capture_default_str();
  app.add_option("--image", options.image, "Image to classify")->capture_default_str();
  app.add_option("--iterations", options.iterations, "Measured iterations")->check(CLI::Range(1, 100000))->capture_default_str();
  app.add_option("--warmup", options.warmup, "Warm-up iterations")->check(CLI::Range(0, 1000))->capture_default_str();
  app.add_option("--threads", options.threads, "Intra-op threads (0: ONNX Runtime's default; PyTorch gets 2)")->capture_default_str();
  app.add_flag("!--no-pytorch", options.pytorch, "Skip the PyTorch eager comparison");
  app.add_option("--json", options.json_out, "Also write the figures as JSON to this file");
  CLI11_PARSE(app, argc, argv);
  try {
    return run(options);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "classify_bench: %s\n", e.what());
    return 1;
  }
}
