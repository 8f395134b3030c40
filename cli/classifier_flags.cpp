#include "classifier_flags.hpp"

#include <cstdlib>

#include "dermcds/error.hpp"
#include "dermcds/model_repository.hpp"

namespace dermcds::cli {

void add_classifier_flags(CLI::App& command, ClassifierFlags& flags) {
  command.add_option("-m,--model", flags.model,
                     "Model package directory (<repo>/<name>/<version>) or model directory (<repo>/<name>: its active "
                     "version). Default: $DERMCDS_MODEL");
  command.add_option("--runtime", flags.options.runtime, "Runtime: auto, onnxruntime or tflite")->capture_default_str();
  command.add_option("--precision", flags.options.precision, "Artifact precision: auto, fp32, fp16 or int8")
      ->check(CLI::IsMember({"auto", "fp32", "fp16", "int8"}))
      ->capture_default_str();
  command
      .add_option("--provider", flags.options.execution.provider,
                  "Execution provider. onnxruntime: auto, cpu, cuda, tensorrt; tflite: auto, xnnpack, builtin, nnapi")
      ->capture_default_str();
  command.add_option("--threads", flags.options.execution.threads, "Inference threads (0: the runtime's choice)")
      ->check(CLI::Range(0, 256))
      ->capture_default_str();
  command.add_option("--device", flags.options.execution.device_id, "GPU device id for cuda/tensorrt")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  command.add_option("--provider-option", flags.provider_options,
                     "Provider option KEY=VALUE, e.g. tensorrt:trt_fp16_enable=1 (repeatable)");
}

std::map<std::string, std::string> parse_provider_options(const std::vector<std::string>& key_values) {
  std::map<std::string, std::string> options;
  for (const std::string& kv : key_values) {
    const auto eq = kv.find('=');
    if (eq == std::string::npos || eq == 0) throw Error(ErrorCode::kInvalidArgument, "--provider-option '" + kv + "' is not KEY=VALUE");
    options[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  return options;
}

std::unique_ptr<Classifier> open_classifier(ClassifierFlags& flags) {
  std::string model = flags.model;
  if (model.empty()) {
    const char* from_environment = std::getenv("DERMCDS_MODEL");
    if (!from_environment || !*from_environment)
      throw Error(ErrorCode::kInvalidArgument, "no model given: pass --model DIR or set DERMCDS_MODEL");
    model = from_environment;
  }
  flags.options.execution.provider_options = parse_provider_options(flags.provider_options);
  flags.options.package = resolve_package_dir(model);
  return Classifier::create(flags.options);
}

}  // namespace dermcds::cli
