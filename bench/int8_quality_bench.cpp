// int8 against ONNX Runtime fp32 on lesion images, for one model package (issue 9's goal), and
// the int8 latency with XNNPACK next to fp32.
//
// For every image of --images (preprocessed by the core exactly as at inference): the package's
// ONNX artifact on ONNX Runtime (CPU, fp32) is the reference; its tflite int8 artifact runs with
// XNNPACK's int8 operators and with TFLite's own kernels. Prints mean and max |dp| over all
// classes, top-1 agreement and triage agreement (the manifest's policy) per kernel set, then the
// latency of int8 and fp32 TFLite with XNNPACK (and ONNX Runtime fp32), one inference of each per
// round so that drift in machine load affects all alike. bench/int8_seeds.sh runs it for several
// checkpoints of the demo recipe; docs/converter.md has the figures.
//
//   int8_quality_bench --package DIR --images DIR [--iterations 50] [--json-out FILE]
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "bench_stats.hpp"
#include "dermcds/error.hpp"
#include "dermcds/file_bytes.hpp"
#include "dermcds/image.hpp"
#include "dermcds/model_package.hpp"
#include "dermcds/model_repository.hpp"
#include "dermcds/postprocess.hpp"
#include "dermcds/preprocess.hpp"
#include "dermcds/runtime.hpp"

namespace {

using dermcds::bench::Clock;
using dermcds::bench::elapsed_ms;

struct Options {
  std::string package;
  std::string images;
  int iterations = 50;
  int threads = 1;
  std::string json_out;
};

struct Subject {
  std::string label;
  std::unique_ptr<dermcds::InferenceBackend> backend;
  std::vector<double> latency;
  // agreement with the reference
  double total_abs = 0, max_abs = 0;
  std::size_t values = 0, top1 = 0, triage = 0, images = 0;
};

std::unique_ptr<dermcds::InferenceBackend> open(const dermcds::ModelPackage& package, const std::string& runtime,
                                                const std::string& precision, const std::string& provider, int threads) {
  const dermcds::Manifest& m = package.manifest();
  const dermcds::ArtifactEntry* a = m.find_artifact(runtime, precision);
  if (!a) throw dermcds::Error(dermcds::ErrorCode::kNotFound, "the package has no " + runtime + " " + precision + " artifact");
  const dermcds::RuntimeDescriptor* descriptor = dermcds::find_runtime(runtime);
  if (!descriptor) throw dermcds::Error(dermcds::ErrorCode::kRuntimeUnavailable, "this build has no " + runtime + " runtime");
  dermcds::BackendRequest request;
  request.model_file = package.artifact_path(*a);
  request.precision = a->precision;
  request.input_name = m.input_name;
  request.output_name = m.output_name;
  request.input_size = m.input.crop_size;
  request.num_classes = static_cast<int>(m.labels.size());
  request.options.provider = provider;
  request.options.threads = threads;
  return descriptor->create(request);
}

std::vector<float> probabilities_of(const dermcds::Tensor& logits) { return dermcds::softmax(logits.data); }

std::size_t argmax(const std::vector<float>& p) { return static_cast<std::size_t>(std::max_element(p.begin(), p.end()) - p.begin()); }

int run(const Options& o) {
  const dermcds::ModelPackage package = dermcds::ModelPackage::open(dermcds::resolve_package_dir(o.package));
  const dermcds::Manifest& m = package.manifest();
  std::vector<std::filesystem::path> files;
  for (const auto& entry : std::filesystem::directory_iterator(o.images)) {
    const std::string ext = entry.path().extension().string();
    if (ext == ".png" || ext == ".jpg" || ext == ".jpeg") files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  if (files.empty()) throw dermcds::Error(dermcds::ErrorCode::kInvalidArgument, "no JPEG/PNG images in " + o.images);

  Subject reference{"ONNX Runtime fp32", open(package, "onnxruntime", "fp32", "cpu", o.threads)};
  std::vector<Subject> subjects;
  subjects.push_back({"int8, XNNPACK", open(package, "tflite", "int8", "xnnpack", o.threads)});
  subjects.push_back({"int8, TFLite kernels", open(package, "tflite", "int8", "builtin", o.threads)});
  Subject fp32{"fp32, XNNPACK", open(package, "tflite", "fp32", "xnnpack", o.threads)};
  for (const Subject& s : subjects)
    for (const std::string& f : s.backend->info().fallbacks)
      std::fprintf(stderr, "int8_quality_bench: %s fallback: %s\n", s.label.c_str(), f.c_str());

  std::size_t done = 0;
  dermcds::Tensor latency_input_nchw, latency_input_nhwc;
  for (const std::filesystem::path& file : files) {
    const dermcds::RgbImage image = dermcds::decode_image(dermcds::read_file_bytes(file));
    const dermcds::Tensor nchw = dermcds::preprocess(image, m.input, dermcds::TensorLayout::kNCHW);
    const dermcds::Tensor nhwc = dermcds::preprocess(image, m.input, dermcds::TensorLayout::kNHWC);
    if (done == 0) latency_input_nchw = nchw, latency_input_nhwc = nhwc;
    const std::vector<float> p = probabilities_of(reference.backend->run(nchw));
    const std::string tier = dermcds::decide_triage(p, m.labels, m.triage).tier;
    for (Subject& s : subjects) {
      const bool nhwc_input = s.backend->input_layout() == dermcds::TensorLayout::kNHWC;
      const std::vector<float> q = probabilities_of(s.backend->run(nhwc_input ? nhwc : nchw));
      for (std::size_t k = 0; k < p.size(); ++k) {
        const double d = std::fabs(static_cast<double>(p[k]) - q[k]);
        s.total_abs += d;
        s.max_abs = std::max(s.max_abs, d);
        ++s.values;
      }
      s.top1 += argmax(p) == argmax(q);
      s.triage += dermcds::decide_triage(q, m.labels, m.triage).tier == tier;
      ++s.images;
    }
    if (++done % 50 == 0) std::fprintf(stderr, "int8_quality_bench: %zu/%zu images\n", done, files.size());
  }

  // Latency, round-robin: int8 XNNPACK, fp32 XNNPACK, ONNX Runtime fp32.
  std::vector<Subject*> timed{&subjects[0], &fp32, &reference};
  for (Subject* s : timed)
    for (int i = 0; i < 5; ++i)
      s->backend->run(s->backend->input_layout() == dermcds::TensorLayout::kNHWC ? latency_input_nhwc : latency_input_nchw);
  for (int i = 0; i < o.iterations; ++i)
    for (Subject* s : timed) {
      const dermcds::Tensor& in = s->backend->input_layout() == dermcds::TensorLayout::kNHWC ? latency_input_nhwc : latency_input_nchw;
      const auto start = Clock::now();
      s->backend->run(in);
      s->latency.push_back(elapsed_ms(start));
    }

  const auto bytes = [&](const char* runtime, const char* precision) { return m.find_artifact(runtime, precision)->bytes; };
  std::printf("package %s: %zu images of %s; int8 %.2f MB, fp32 %.2f MB\n", o.package.c_str(), files.size(), o.images.c_str(),
              static_cast<double>(bytes("tflite", "int8")) / 1e6, static_cast<double>(bytes("tflite", "fp32")) / 1e6);
  nlohmann::ordered_json results = nlohmann::ordered_json::array();
  for (const Subject& s : subjects) {
    const double n = static_cast<double>(s.images);
    const double mean = s.total_abs / static_cast<double>(s.values), top1 = static_cast<double>(s.top1) / n,
                 triage = static_cast<double>(s.triage) / n;
    const bool goal = mean <= 0.01 && top1 >= 0.97 && triage >= 0.99;
    std::printf("%-22s mean |dp| %.4f  max %.3f  top-1 %.1f%%  triage %.1f%%  goal %s\n", s.label.c_str(), mean, s.max_abs, 100 * top1,
                100 * triage, goal ? "met" : "NOT met");
    results.push_back({{"kernels", s.label},
                       {"images", s.images},
                       {"mean_abs_diff", mean},
                       {"max_abs_diff", s.max_abs},
                       {"top1_agreement", top1},
                       {"triage_agreement", triage},
                       {"goal_met", goal}});
  }
  nlohmann::ordered_json latency = nlohmann::ordered_json::object();
  for (const Subject* s : timed) {
    const dermcds::bench::Summary sum = dermcds::bench::summarize(s->latency);
    std::printf("latency %-20s %s\n", s->label.c_str(), dermcds::bench::format_summary(sum).c_str());
    latency[s->label] = {{"median_ms", sum.median}, {"min_ms", sum.min}, {"p90_ms", sum.p90}};
  }
  if (!o.json_out.empty()) {
    std::ofstream out(o.json_out);
    out << nlohmann::ordered_json{{"package", o.package},
                                  {"int8_bytes", bytes("tflite", "int8")},
                                  {"fp32_bytes", bytes("tflite", "fp32")},
                                  {"threads", o.threads},
                                  {"agreement", results},
                                  {"latency", latency}}
               .dump(2)
        << "\n";
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  CLI::App app{"int8 TFLite artifact against ONNX Runtime fp32 on lesion images (issue 9's goal), and its latency"};
  app.add_option("--package", o.package, "Package directory with onnxruntime fp32, tflite fp32 and tflite int8 artifacts")->required();
  app.add_option("--images", o.images, "Directory of held-out lesion images (JPEG/PNG)")->required();
  app.add_option("--iterations", o.iterations, "Timed inferences per configuration")->check(CLI::Range(1, 100000))->capture_default_str();
  app.add_option("--threads", o.threads, "Inference threads")->check(CLI::Range(1, 256))->capture_default_str();
  app.add_option("--json-out", o.json_out, "Also write the figures as JSON");
  CLI11_PARSE(app, argc, argv);
  try {
    return run(o);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "int8_quality_bench: %s\n", e.what());
    return 1;
  }
}
