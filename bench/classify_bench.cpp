// End-to-end latency of derm-cds next to the floors it is judged against:
//   - a bare ONNX Runtime session (same model file, same settings) on the same tensor,
//   - our JPEG/PNG decode alone (so "bare session + decode" is the floor we compare against),
//   - PyTorch eager (Pillow decode + torchvision transform + forward), via bench/pytorch_eager.py.
//
// Every subject runs in a process of its own, one after another. ONNX Runtime's intra-op pool
// spins after each run by default, so two sessions alive in one process steal the cores from
// each other (measured on the 2-core build machine: 64.9 ms alternating vs 33.9 ms alone for
// EfficientNet-B4). A child process per subject keeps every figure a figure of that subject
// alone, and gives each its own peak working set. The subjects take turns in `--rounds` rounds
// (ours, bare, PyTorch, ours, ...), each round a fresh process per subject with its share of the
// iterations: on shared cloud cores whose speed drifts over minutes (the same binary measured
// 57 to 78 ms in consecutive runs), drift then slows every subject alike instead of whichever
// ran last; the per-round speed-ups show how much it moved.
//
// The report follows onnxruntime_perf_test: session creation, first inference, p50/p90/p95/p99/
// p999, inferences per second and peak working set, per subject; `--batch N` adds the
// throughput of one N-image batch. `--provider`/`--device` select the execution provider (CUDA
// and TensorRT on GPU machines; scripts/gpu-check.sh uses this), `--precision` the artifact.
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>

#include <unistd.h>

#include <onnxruntime_cxx_api.h>
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "bench_stats.hpp"
#include "dermcds/classifier.hpp"
#include "dermcds/error.hpp"
#include "dermcds/file_bytes.hpp"
#include "dermcds/image.hpp"
#include "dermcds/model_package.hpp"
#include "dermcds/model_repository.hpp"
#include "dermcds/pipeline/subprocess.hpp"
#include "dermcds/preprocess.hpp"

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
  int rounds = 3;
  int threads = 0;
  int batch = 1;
  std::string provider = "cpu";
  int device = 0;
  std::string precision = "fp32";
  bool pytorch = true;
  bool bare = true;
  std::string json_out;
  // Where the bare session writes ONNX Runtime's optimized graph (which kernels run: QLinearConv
  // for an int8 QDQ model, not DequantizeLinear feeding a float Conv).
  std::string optimized_model;
  // Internal: run one subject and write its figures to `out` (the parent starts these).
  std::string subject;
  std::string out;
};

nlohmann::json summary_json(const std::vector<double>& samples) {
  const auto s = summarize(samples);
  return {{"min", s.min},       {"mean", s.mean},
          {"median", s.median}, {"p90", s.p90},
          {"p95", s.p95},       {"p99", s.p99},
          {"p999", s.p999},     {"max", s.max},
          {"n", s.count},       {"inferences_per_second", s.mean > 0 ? 1000.0 / s.mean : 0.0}};
}

std::vector<double> samples_of(const nlohmann::json& summary_holder, const char* key) {
  return summary_holder.at(key).get<std::vector<double>>();
}

// ---- subject: derm-cds (Classifier) -------------------------------------------------------
nlohmann::json run_ours(const Options& options) {
  const std::vector<std::uint8_t> bytes = dermcds::read_file_bytes(options.image);
  dermcds::ClassifierOptions classifier_options;
  classifier_options.package = dermcds::resolve_package_dir(options.model);
  classifier_options.runtime = "onnxruntime";
  classifier_options.precision = options.precision;
  classifier_options.execution.provider = options.provider;
  classifier_options.execution.threads = options.threads;
  classifier_options.execution.device_id = options.device;

  auto start = Clock::now();
  const auto classifier = dermcds::Classifier::create(classifier_options);
  const double create_ms = elapsed_ms(start);

  start = Clock::now();
  classifier->classify(bytes);
  const double first_ms = elapsed_ms(start);
  for (int i = 0; i < options.warmup; ++i) classifier->classify(bytes);

  std::vector<double> decode, preprocess, inference, postprocess, total;
  for (int i = 0; i < options.iterations; ++i) {
    const auto t = Clock::now();
    const auto result = classifier->classify(bytes);
    total.push_back(elapsed_ms(t));
    decode.push_back(result.timings.decode_ms);
    preprocess.push_back(result.timings.preprocess_ms);
    inference.push_back(result.timings.inference_ms);
    postprocess.push_back(result.timings.postprocess_ms);
  }

  std::vector<double> decode_alone;
  for (int i = 0; i < options.iterations; ++i) {
    const auto t = Clock::now();
    dermcds::decode_image(bytes);
    decode_alone.push_back(elapsed_ms(t));
  }

  const auto& info = classifier->backend_info();
  nlohmann::json report = {
      {"model", classifier->manifest().name + "/" + classifier->manifest().version},
      {"runtime", info.runtime},
      {"runtime_version", info.runtime_version},
      {"provider", info.provider},
      {"precision", info.precision},
      {"fallbacks", info.fallbacks},
      {"session_creation_ms", create_ms},
      {"first_inference_ms", first_ms},
      {"samples_ms",
       {{"decode", decode},
        {"preprocess", preprocess},
        {"inference", inference},
        {"postprocess", postprocess},
        {"total", total},
        {"decode_alone", decode_alone}}},
  };

  if (options.batch > 1) {
    const int batch = std::min(options.batch, classifier->max_batch() > 0 ? classifier->max_batch() : options.batch);
    const std::vector<dermcds::PreparedImage> images(static_cast<std::size_t>(batch), classifier->prepare(bytes));
    classifier->classify_batch(images);  // the first batch of this size pays for its allocations
    std::vector<double> batch_ms;
    for (int i = 0; i < std::max(3, options.iterations / batch); ++i) {
      const auto t = Clock::now();
      classifier->classify_batch(images);
      batch_ms.push_back(elapsed_ms(t));
    }
    const double median = summarize(batch_ms).median;
    report["batch"] = {
        {"size", batch}, {"latency_ms", summary_json(batch_ms)}, {"images_per_second", median > 0 ? 1000.0 * batch / median : 0.0}};
  }
  report["peak_rss_mib"] = dermcds::bench::peak_rss_mib();
  return report;
}

// ---- subject: a bare ONNX Runtime session ------------------------------------------------
// Configured as our backend configures its CPU session. The input tensor is made by the core's
// public preprocessing, without a Classifier, so that no second session exists in this process.
nlohmann::json run_bare(const Options& options) {
  const OrtApi* api = OrtGetApiBase()->GetApi(ORT_API_VERSION);
  if (!api) throw dermcds::Error(dermcds::ErrorCode::kRuntimeUnavailable, "ONNX Runtime C API unavailable");
  Ort::InitApi(api);

  const auto package = dermcds::ModelPackage::open(dermcds::resolve_package_dir(options.model));
  const dermcds::Manifest& manifest = package.manifest();
  const auto* artifact = manifest.find_artifact("onnxruntime", options.precision);
  if (!artifact)
    throw dermcds::Error(dermcds::ErrorCode::kInvalidArgument, "the package has no onnxruntime " + options.precision + " artifact");
  const auto model = package.artifact_path(*artifact);
  dermcds::Tensor tensor =
      dermcds::preprocess(dermcds::decode_image(dermcds::read_file_bytes(options.image)), manifest.input, dermcds::TensorLayout::kNCHW);

  auto start = Clock::now();
  Ort::Env env(ORT_LOGGING_LEVEL_WARNING, "bench");
  Ort::SessionOptions session_options;
  session_options.SetGraphOptimizationLevel(GraphOptimizationLevel::ORT_ENABLE_ALL);
  if (options.threads > 0) session_options.SetIntraOpNumThreads(options.threads);
  session_options.SetInterOpNumThreads(1);
  session_options.SetExecutionMode(ExecutionMode::ORT_SEQUENTIAL);
  if (!options.optimized_model.empty()) session_options.SetOptimizedModelFilePath(options.optimized_model.c_str());
  Ort::Session session(env, model.c_str(), session_options);
  const double create_ms = elapsed_ms(start);

  Ort::AllocatorWithDefaultOptions allocator;
  const std::string input_name = session.GetInputNameAllocated(0, allocator).get();
  const std::string output_name = session.GetOutputNameAllocated(0, allocator).get();
  const Ort::MemoryInfo memory = Ort::MemoryInfo::CreateCpu(OrtArenaAllocator, OrtMemTypeDefault);
  auto run = [&] {
    Ort::Value value =
        Ort::Value::CreateTensor<float>(memory, tensor.data.data(), tensor.data.size(), tensor.shape.data(), tensor.shape.size());
    const char* in[] = {input_name.c_str()};
    const char* out[] = {output_name.c_str()};
    session.Run(Ort::RunOptions{nullptr}, in, &value, 1, out, 1);
  };

  start = Clock::now();
  run();
  const double first_ms = elapsed_ms(start);
  for (int i = 0; i < options.warmup; ++i) run();
  std::vector<double> inference;
  for (int i = 0; i < options.iterations; ++i) {
    const auto t = Clock::now();
    run();
    inference.push_back(elapsed_ms(t));
  }
  return {{"session_creation_ms", create_ms},
          {"first_inference_ms", first_ms},
          {"samples_ms", {{"inference", inference}}},
          {"peak_rss_mib", dermcds::bench::peak_rss_mib()}};
}

// ---- the parent: one child process per subject --------------------------------------------
nlohmann::json run_child(const Options& options, const std::string& subject) {
  const std::string out =
      std::filesystem::temp_directory_path() / ("classify-bench-" + subject + "-" + std::to_string(::getpid()) + ".json");
  dermcds::pipeline::ProcessRequest request;
  if (subject == "pytorch") {
    request.argv = {DERMCDS_PYTHON, std::string(DERMCDS_SOURCE_DIR) + "/bench/pytorch_eager.py",
                    "--package",    dermcds::resolve_package_dir(options.model).string(),
                    "--image",      options.image,
                    "--iterations", std::to_string(options.iterations),
                    "--warmup",     std::to_string(options.warmup),
                    "--threads",    std::to_string(options.threads > 0 ? options.threads : 2),
                    "--out",        out};
  } else {
    request.argv = {std::filesystem::read_symlink("/proc/self/exe").string(),
                    "--subject",
                    subject,
                    "--out",
                    out,
                    "--model",
                    options.model,
                    "--image",
                    options.image,
                    "--iterations",
                    std::to_string(options.iterations),
                    "--warmup",
                    std::to_string(options.warmup),
                    "--threads",
                    std::to_string(options.threads),
                    "--batch",
                    std::to_string(options.batch),
                    "--provider",
                    options.provider,
                    "--device",
                    std::to_string(options.device),
                    "--precision",
                    options.precision};
    if (subject == "bare" && !options.optimized_model.empty())
      request.argv.insert(request.argv.end(), {"--optimized-model", options.optimized_model});
  }
  std::fflush(stdout);
  const int status = dermcds::pipeline::run_process(request);
  if (status != 0) {
    std::filesystem::remove(out);
    throw dermcds::Error(dermcds::ErrorCode::kRuntimeFailure,
                         "the " + subject + " subject failed (exit status " + std::to_string(status) + ")");
  }
  nlohmann::json figures = nlohmann::json::parse(std::ifstream(out));
  std::filesystem::remove(out);
  return figures;
}

void print_row(const char* name, const std::vector<double>& samples) {
  std::printf("  %-26s %s\n", name, format_summary(summarize(samples)).c_str());
}

// One subject's rounds as one run: the samples of every round pooled; session creation, first
// inference, peak working set and any batch figures are the first round's.
nlohmann::json pool_rounds(const std::vector<nlohmann::json>& rounds) {
  nlohmann::json pooled = rounds.front();
  for (std::size_t r = 1; r < rounds.size(); ++r)
    for (const auto& [stage, values] : rounds[r]["samples_ms"].items())
      for (const auto& v : values) pooled["samples_ms"][stage].push_back(v);
  return pooled;
}

double median_total(const nlohmann::json& run) { return summarize(samples_of(run["samples_ms"], "total")).median; }

int run_parent(const Options& options) {
  Options per_round = options;
  per_round.iterations = (options.iterations + options.rounds - 1) / options.rounds;
  const int measured = per_round.iterations * options.rounds;
  const bool with_bare = options.bare && options.provider == "cpu";
  std::vector<nlohmann::json> ours_rounds, bare_rounds, torch_rounds;
  for (int r = 0; r < options.rounds; ++r) {
    std::fprintf(stderr, "classify_bench: round %d/%d\n", r + 1, options.rounds);
    // The batch figures are the first round's (pool_rounds), timed over that round's share of the
    // iterations; later rounds would measure them only to be dropped.
    per_round.batch = r == 0 ? options.batch : 1;
    ours_rounds.push_back(run_child(per_round, "ours"));
    if (with_bare) bare_rounds.push_back(run_child(per_round, "bare"));
    if (options.pytorch) torch_rounds.push_back(run_child(per_round, "pytorch"));
  }
  const nlohmann::json ours = pool_rounds(ours_rounds);
  const auto& s = ours["samples_ms"];
  std::printf(
      "derm-cds end-to-end, %s on %s %s (provider %s, %s), image %s, %d iterations after %d warm-up in %d rounds, "
      "each subject in its own process\n",
      ours["model"].get<std::string>().c_str(), ours["runtime"].get<std::string>().c_str(),
      ours["runtime_version"].get<std::string>().c_str(), ours["provider"].get<std::string>().c_str(),
      ours["precision"].get<std::string>().c_str(), options.image.c_str(), measured, options.warmup, options.rounds);
  for (const auto& fallback : ours["fallbacks"]) std::printf("fallback: %s\n", fallback.get<std::string>().c_str());
  std::printf("ours: session creation %.1f ms (incl. package sha256 check), first classify %.1f ms, peak RSS %.0f MiB\n",
              ours["session_creation_ms"].get<double>(), ours["first_inference_ms"].get<double>(), ours["peak_rss_mib"].get<double>());
  std::printf("latency in ms:\n");
  print_row("ours: decode", samples_of(s, "decode"));
  print_row("ours: preprocess", samples_of(s, "preprocess"));
  print_row("ours: inference", samples_of(s, "inference"));
  print_row("ours: postprocess", samples_of(s, "postprocess"));
  print_row("ours: end-to-end", samples_of(s, "total"));
  print_row("decode alone", samples_of(s, "decode_alone"));

  const double ours_median = summarize(samples_of(s, "total")).median;
  nlohmann::json report = {
      {"model", ours["model"]},
      {"image", options.image},
      {"iterations", measured},
      {"warmup", options.warmup},
      {"rounds", options.rounds},
      {"threads", options.threads},
      {"isolation", "one process per subject"},
      {"ours",
       {{"runtime", ours["runtime"]},
        {"runtime_version", ours["runtime_version"]},
        {"provider", ours["provider"]},
        {"precision", ours["precision"]},
        {"fallbacks", ours["fallbacks"]},
        {"session_creation_ms", ours["session_creation_ms"]},
        {"first_inference_ms", ours["first_inference_ms"]},
        {"decode", summary_json(samples_of(s, "decode"))},
        {"preprocess", summary_json(samples_of(s, "preprocess"))},
        {"inference", summary_json(samples_of(s, "inference"))},
        {"postprocess", summary_json(samples_of(s, "postprocess"))},
        {"total", summary_json(samples_of(s, "total"))},
        {"peak_rss_mib", ours["peak_rss_mib"]}}},
      {"decode_alone", summary_json(samples_of(s, "decode_alone"))},
  };
  if (ours.contains("batch")) {
    report["ours"]["batch"] = ours["batch"];
    std::printf("batch of %d: median %.2f ms, %.1f images/s\n", ours["batch"]["size"].get<int>(),
                ours["batch"]["latency_ms"]["median"].get<double>(), ours["batch"]["images_per_second"].get<double>());
  }

  // The bare session is a CPU session; on another provider it would measure something else.
  if (with_bare) {
    const nlohmann::json bare = pool_rounds(bare_rounds);
    const auto bare_inference = samples_of(bare["samples_ms"], "inference");
    print_row("bare session run", bare_inference);
    const double floor_median = summarize(bare_inference).median + summarize(samples_of(s, "decode_alone")).median;
    std::printf("bare session: creation %.1f ms, first run %.1f ms, peak RSS %.0f MiB\n", bare["session_creation_ms"].get<double>(),
                bare["first_inference_ms"].get<double>(), bare["peak_rss_mib"].get<double>());
    std::printf("ratio ours end-to-end / (bare session + decode), medians: %.3f  (goal <= 1.05)\n", ours_median / floor_median);
    report["bare_session"] = {{"session_creation_ms", bare["session_creation_ms"]},
                              {"first_inference_ms", bare["first_inference_ms"]},
                              {"inference", summary_json(bare_inference)},
                              {"peak_rss_mib", bare["peak_rss_mib"]}};
    report["ratio_ours_to_bare_plus_decode"] = ours_median / floor_median;
  }

  if (options.pytorch) {
    const nlohmann::json torch = pool_rounds(torch_rounds);
    const auto& stages = torch["samples_ms"];
    print_row("pytorch: decode (Pillow)", samples_of(stages, "decode"));
    print_row("pytorch: preprocess", samples_of(stages, "preprocess"));
    print_row("pytorch: inference", samples_of(stages, "inference"));
    print_row("pytorch: end-to-end", samples_of(stages, "total"));
    const double torch_median = summarize(samples_of(stages, "total")).median;
    std::printf("speed-up over PyTorch eager, medians: %.2fx\n", torch_median / ours_median);
    nlohmann::json per_round_speedups = nlohmann::json::array();
    std::printf("  per round:");
    for (int r = 0; r < options.rounds; ++r) {
      const double speedup = median_total(torch_rounds[r]) / median_total(ours_rounds[r]);
      per_round_speedups.push_back(speedup);
      std::printf(" %.2fx", speedup);
    }
    std::printf("\n");
    report["pytorch_eager"] = {{"total", summary_json(samples_of(stages, "total"))},
                               {"inference", summary_json(samples_of(stages, "inference"))},
                               {"torch_version", torch["torch_version"]}};
    report["speedup_over_pytorch"] = torch_median / ours_median;
    report["speedup_over_pytorch_per_round"] = per_round_speedups;
  }
  if (!options.json_out.empty()) std::ofstream(options.json_out) << report.dump(2) << "\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Options options;
  CLI::App app{
      "classify_bench: derm-cds end-to-end latency vs a bare ONNX Runtime session and PyTorch eager, "
      "each subject in its own process"};
  app.add_option("--model", options.model, "Model package or model directory")->capture_default_str();
  app.add_option("--image", options.image, "Image to classify")->check(CLI::ExistingFile)->capture_default_str();
  app.add_option("--iterations", options.iterations, "Measured iterations")->check(CLI::Range(1, 100000))->capture_default_str();
  app.add_option("--warmup", options.warmup, "Warm-up iterations (in every subject's process, every round)")
      ->check(CLI::Range(0, 1000))
      ->capture_default_str();
  app.add_option("--rounds", options.rounds, "Rounds the subjects take turns in, each with its share of the iterations")
      ->check(CLI::Range(1, 100))
      ->capture_default_str();
  app.add_option("--threads", options.threads, "Intra-op threads (0: ONNX Runtime's default; PyTorch gets 2)")
      ->check(CLI::Range(0, 256))
      ->capture_default_str();
  app.add_option("--batch", options.batch, "Also measure the throughput of one batch of this many images")
      ->check(CLI::Range(1, 256))
      ->capture_default_str();
  app.add_option("--provider", options.provider, "ONNX Runtime execution provider for derm-cds")
      ->check(CLI::IsMember({"cpu", "cuda", "tensorrt", "auto"}))
      ->capture_default_str();
  app.add_option("--device", options.device, "GPU device id")->check(CLI::Range(0, 64))->capture_default_str();
  app.add_option("--precision", options.precision, "Artifact precision")
      ->check(CLI::IsMember({"fp32", "fp16", "int8"}))
      ->capture_default_str();
  app.add_option("--optimized-model", options.optimized_model,
                 "Write the bare session's optimized graph (ONNX Runtime's optimized_model_filepath) here, to see which "
                 "kernels run");
  app.add_flag("!--no-pytorch", options.pytorch, "Skip the PyTorch eager comparison");
  app.add_flag("!--no-bare", options.bare, "Skip the bare ONNX Runtime session");
  app.add_option("--json", options.json_out, "Also write the figures as JSON to this file");
  app.add_option("--subject", options.subject, "(internal) run one subject: ours or bare")
      ->check(CLI::IsMember({"ours", "bare"}))
      ->group("");
  app.add_option("--out", options.out, "(internal) where --subject writes its figures")->group("");
  CLI11_PARSE(app, argc, argv);
  try {
    if (options.subject.empty()) return run_parent(options);
    const nlohmann::json figures = options.subject == "ours" ? run_ours(options) : run_bare(options);
    std::ofstream(options.out) << figures.dump() << "\n";
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "classify_bench: %s\n", e.what());
    return 1;
  }
}
