// Latency of the converter's zoo (tests/converter/export_zoo.py): each ONNX model on ONNX Runtime
// (CPU provider, through the core's runtime interface) next to its fp32 conversion on TensorFlow
// Lite with XNNPACK (through the TFLite runtime's public ModelRunner), both with one thread,
// alternating one inference each per round so that drift in machine load affects both alike.
// Also prints how many TFLite operators XNNPACK left on TFLite's own kernels.
//
//   converter_zoo_bench --zoo build/test-work/converter-zoo --opset 17 --iterations 50
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "bench_stats.hpp"
#include "dermcds/converter.hpp"
#include "dermcds/error.hpp"
#include "dermcds/runtime.hpp"
#include "dermcds/tflite_model_runner.hpp"

namespace {

using dermcds::bench::Clock;
using dermcds::bench::elapsed_ms;

struct Options {
  std::string zoo;
  int opset = 17;
  int iterations = 50;
  int warmup = 5;
  std::vector<std::string> only;
};

int run(const Options& o) {
  const dermcds::RuntimeDescriptor* ort = dermcds::find_runtime("onnxruntime");
  // available() also initializes the runtime's library (the ONNX Runtime API table).
  if (!ort || !ort->available())
    throw dermcds::Error(dermcds::ErrorCode::kRuntimeUnavailable, "ONNX Runtime is not available in this build");
  std::vector<std::filesystem::path> models;
  const std::string suffix = ".opset" + std::to_string(o.opset) + ".onnx";
  for (const auto& entry : std::filesystem::directory_iterator(o.zoo)) {
    const std::string name = entry.path().filename().string();
    if (name.size() <= suffix.size() || name.compare(name.size() - suffix.size(), suffix.size(), suffix) != 0) continue;
    const std::string network = name.substr(0, name.size() - suffix.size());
    if (!o.only.empty() && std::find(o.only.begin(), o.only.end(), network) == o.only.end()) continue;
    models.push_back(entry.path());
  }
  std::sort(models.begin(), models.end());
  if (models.empty()) throw dermcds::Error(dermcds::ErrorCode::kNotFound, "no *" + suffix + " in " + o.zoo);

  std::printf(
      "| network (opset %d) | input | ONNX Runtime median ms | TFLite XNNPACK median ms | TFLite / ORT | undelegated TFLite operators |\n",
      o.opset);
  std::printf("|---|---|---:|---:|---:|---|\n");
  for (const auto& path : models) {
    const dermcds::converter::ConversionResult converted = dermcds::converter::convert_onnx_file(path, {});
    const auto& shape = converted.report.input_shape;  // NHWC
    dermcds::runtimes::tflite::ModelRunner tflite(converted.flatbuffer, {}, path.string());
    tflite.set_sample_inputs(1);

    dermcds::BackendRequest request;
    request.model_file = path;
    request.precision = "fp32";
    request.input_name = converted.report.input_name;
    request.output_name = converted.report.output_name;
    request.input_size = static_cast<int>(shape.at(1));
    request.num_classes = static_cast<int>(converted.report.output_shape.back());
    request.options.provider = "cpu";
    request.options.threads = 1;
    const std::unique_ptr<dermcds::InferenceBackend> backend = ort->create(request);
    dermcds::Tensor image;
    image.shape = {1, 3, shape[1], shape[2]};
    image.data.assign(static_cast<std::size_t>(3 * shape[1] * shape[2]), 0.25F);

    std::vector<double> ort_ms, tflite_ms;
    for (int i = 0; i < o.warmup + o.iterations; ++i) {
      auto start = Clock::now();
      backend->run(image);
      const double a = elapsed_ms(start);
      start = Clock::now();
      tflite.invoke();
      const double b = elapsed_ms(start);
      if (i >= o.warmup) {
        ort_ms.push_back(a);
        tflite_ms.push_back(b);
      }
    }
    const auto ort_summary = dermcds::bench::summarize(ort_ms), tflite_summary = dermcds::bench::summarize(tflite_ms);
    std::string undelegated;
    for (const auto& [op, count] : converted.report.xnnpack_undelegated)
      undelegated += (undelegated.empty() ? "" : ", ") + op + " x" + std::to_string(count);
    std::printf("| %s | %lldx%lld | %.3f | %.3f | %.2f | %s |\n", path.filename().string().c_str(), static_cast<long long>(shape[1]),
                static_cast<long long>(shape[2]), ort_summary.median, tflite_summary.median, tflite_summary.median / ort_summary.median,
                undelegated.empty() ? "none" : undelegated.c_str());
    std::fflush(stdout);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  CLI::App app{"Latency of the converter's zoo: ONNX Runtime vs the converted fp32 model on TFLite XNNPACK, one thread each"};
  app.add_option("--zoo", o.zoo, "directory of export_zoo.py's <network>.opset<N>.onnx files")->required();
  app.add_option("--opset", o.opset, "which export to measure (17 or 13)");
  app.add_option("--iterations", o.iterations, "measured inferences per model and runtime");
  app.add_option("--warmup", o.warmup, "unmeasured inferences first");
  app.add_option("--only", o.only, "networks to measure (default: all)");
  CLI11_PARSE(app, argc, argv);
  try {
    return run(o);
  } catch (const dermcds::Error& e) {
    std::fprintf(stderr, "converter_zoo_bench: %s\n", e.what());
    return 1;
  }
}
