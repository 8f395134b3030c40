// dermcds parity PACKAGE --images DIR [--report OUT]: measure how far the package's runtimes and
// precisions are from ONNX Runtime fp32 and from the PyTorch source model (docs/parity.md).
#include <cstdio>
#include <iostream>
#include <memory>

#include "classifier_flags.hpp"
#include "command.hpp"
#include "dermcds/error.hpp"
#include "dermcds/model_repository.hpp"
#include "dermcds/pipeline/parity.hpp"
#include "dermcds/pipeline/parity_report.hpp"
#include "exit_status.hpp"

namespace dermcds::cli {

namespace {

struct ParityFlags {
  std::string package;
  std::string images;
  std::string report;
  std::string policy;
  std::string checkpoint;
  std::vector<std::string> only;
  bool no_torch = false;
  bool no_record = false;
  bool json = false;
  int threads = 0;
  int device_id = 0;
  std::vector<std::string> provider_options;  // "key=value"
};

void run(const ParityFlags& flags) {
  pipeline::ParityRequest request;
  request.package_dir = resolve_package_dir(flags.package);
  request.images_dir = flags.images;
  request.torch_reference = !flags.no_torch;
  request.checkpoint = flags.checkpoint;
  request.only = flags.only;
  request.threads = flags.threads;
  request.device_id = flags.device_id;
  request.gpu_provider_options = parse_provider_options(flags.provider_options);
  if (!flags.policy.empty()) request.policy = pipeline::read_policy_file(flags.policy);
  request.progress = [](const std::string& line) { std::fprintf(stderr, "dermcds: %s\n", line.c_str()); };

  const pipeline::ParityReport report = pipeline::run_parity(request);
  std::optional<pipeline::ReportFiles> files;
  if (!flags.report.empty()) {
    files = pipeline::write_report_files(report, flags.report, request.python);
    std::fprintf(stderr, "dermcds: wrote %s, %s and %s\n", files->json.c_str(), files->markdown.c_str(), files->plot.c_str());
  }
  if (!flags.no_record) {
    pipeline::record_in_manifest(report, files);
    std::fprintf(stderr, "dermcds: recorded the result in %s\n", (report.package_dir / "manifest.json").c_str());
  }
  if (flags.json) {
    std::cout << pipeline::to_json(report, false).dump(2) << std::endl;
  } else {
    std::cout << pipeline::to_markdown(report);
  }
  if (!report.passed) {
    std::size_t failed = 0;
    for (const auto& pair : report.pairs) failed += pair.check.passed ? 0 : 1;
    throw CheckFailed(report.pairs.empty() ? std::string("no pair of runtimes was compared")
                                           : std::to_string(failed) + " of " + std::to_string(report.pairs.size()) +
                                                 " runtime pairs broke the package's parity bounds");
  }
}

}  // namespace

void register_parity_command(CLI::App& app) {
  auto flags = std::make_shared<ParityFlags>();
  CLI::App* command =
      app.add_subcommand("parity",
                         "Run validation images through every runtime, precision and provider the package carries (and the PyTorch source "
                         "model), compare each with ONNX Runtime fp32, and check the package's bounds; exit status 1 when one is broken");
  command->add_option("package", flags->package, "Package directory, or model directory (its active version)")->required();
  command->add_option("--images", flags->images, "Directory of validation images (JPEG/PNG)")->required();
  command->add_option("--report", flags->report, "Directory to write parity.json, parity.md and parity.png into");
  command->add_option("--policy", flags->policy, "JSON file with parity bounds laid over the package's policy (docs/parity.md)");
  command->add_option("--checkpoint", flags->checkpoint,
                      "PyTorch checkpoint for the ground truth (default: the one the manifest's provenance names)");
  command
      ->add_option("--only", flags->only,
                   "Run only subjects whose id starts with one of these (e.g. tflite/int8, pytorch); the ONNX Runtime fp32 "
                   "reference always runs")
      ->delimiter(',');
  command->add_flag("--no-torch", flags->no_torch, "Skip the PyTorch ground truth");
  command->add_flag("--no-record", flags->no_record, "Do not store the result in the package's manifest");
  command->add_option("--threads", flags->threads, "Inference threads per runtime (0: the runtime's default)")
      ->check(CLI::Range(0, 256))
      ->capture_default_str();
  command->add_option("--device", flags->device_id, "GPU device id for the cuda and tensorrt subjects")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  command->add_option("--provider-option", flags->provider_options,
                      "Provider option KEY=VALUE for the cuda and tensorrt subjects, e.g. tensorrt:trt_fp16_enable=1 (repeatable)");
  command->add_flag("--json", flags->json, "Print the JSON report instead of the Markdown summary");
  command->callback([flags] { run(*flags); });
}

}  // namespace dermcds::cli
