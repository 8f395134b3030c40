// Converting a model package's ONNX artifact and recording the result in its manifest.
#include <nlohmann/json.hpp>

#include "dermcds/converter.hpp"
#include "dermcds/error.hpp"
#include "dermcds/manifest.hpp"
#include "dermcds/postprocess.hpp"
#include "dermcds/sha256.hpp"
#include "package_manifest.hpp"

namespace dermcds::converter {

namespace {

void check_signature(const ConversionReport& report, const Manifest& m, const std::string& origin) {
  const std::vector<std::int64_t> input{1, m.input.crop_size, m.input.crop_size, 3};
  const std::vector<std::int64_t> output{1, static_cast<std::int64_t>(m.labels.size())};
  if (report.input_name != m.input_name || report.output_name != m.output_name || report.input_shape != input ||
      report.output_shape != output)
    throw Error(ErrorCode::kModelMismatch, origin + " converts to a model taking '" + report.input_name + "' and giving '" +
                                               report.output_name + "', which does not fit the manifest's '" + m.input_name + "' [1," +
                                               std::to_string(m.input.crop_size) + "," + std::to_string(m.input.crop_size) + ",3] -> '" +
                                               m.output_name + "' [1," + std::to_string(m.labels.size()) + "]");
}

}  // namespace

std::function<int(std::span<const double>)> triage_function(const std::vector<Label>& labels, const TriagePolicy& policy) {
  return [labels, policy](std::span<const double> p) {
    const std::vector<float> probabilities(p.begin(), p.end());
    const std::string tier = decide_triage(probabilities, labels, policy).tier;
    // The tier's position among the policy's rules, or -1 for the default tier.
    for (std::size_t r = 0; r < policy.rules.size(); ++r)
      if (policy.rules[r].tier == tier) return static_cast<int>(r);
    return -1;
  };
}

PackageConversionResult convert_package(const PackageConversion& request) {
  const std::filesystem::path& dir = request.package_dir;
  const Manifest manifest = read_manifest(dir);
  const ArtifactEntry* source = manifest.find_artifact("onnxruntime");
  if (!source) throw Error(ErrorCode::kNotFound, "package " + dir.string() + " has no ONNX (onnxruntime) artifact to convert");
  const std::filesystem::path onnx = dir / source->file;
  // Never convert something other than what the manifest vouches for.
  const std::string onnx_sha256 = sha256_file_hex(onnx);
  if (onnx_sha256 != source->sha256)
    throw Error(ErrorCode::kInvalidPackage, onnx.string() + " does not match the sha256 in the manifest (modified or corrupt)");

  ConvertOptions options;
  options.precision = request.precision;
  options.int8_io = request.int8_io;
  options.progress = request.progress;
  options.calibration.method = request.calibration_method;
  options.int8 = request.int8;
  // Triage agreement under the package's own policy.
  if (!options.int8.triage) options.int8.triage = triage_function(manifest.labels, manifest.triage);
  CalibrationSet calibration;
  if (request.precision == Precision::kInt8 && request.calibration_dir.empty())
    throw Error(ErrorCode::kInvalidArgument, "int8 conversion needs a calibration image directory");
  if (request.precision == Precision::kFp32 && !request.calibration_dir.empty())
    throw Error(ErrorCode::kInvalidArgument, "a calibration image directory applies to int8 and fp16 conversion only");
  if (!request.calibration_dir.empty()) {
    calibration = load_calibration_images(request.calibration_dir, manifest.input, request.calibration_limit, request.progress);
    options.calibration.samples = calibration.samples;
  }

  ConversionResult converted = convert_onnx_file(onnx, options);
  check_signature(converted.report, manifest, onnx.string());

  PackageConversionResult result;
  const std::string file = "model_" + std::string(to_string(request.precision)) + ".tflite";
  result.artifact = dir / file;
  write_file_atomically(result.artifact, converted.flatbuffer);
  result.bytes = converted.flatbuffer.size();
  result.sha256 = sha256_hex(converted.flatbuffer);
  result.report = std::move(converted.report);

  nlohmann::json entry{
      {"runtime", "tflite"},
      {"precision", to_string(request.precision)},
      {"file", file},
      {"sha256", result.sha256},
      {"bytes", result.bytes},
      {"layout", "NHWC"},
      {"io", request.int8_io ? "int8" : "float"},
      {"source", {{"file", source->file}, {"sha256", onnx_sha256}}},
      {"converter", {{"name", "dermcds convert"}, {"onnx_opset", result.report.onnx_opset}}},
  };
  if (request.precision == Precision::kInt8)
    entry["calibration"] = {{"images", calibration.samples.size()},
                            {"sha256", calibration.sha256},
                            {"method", result.report.calibration_method},  // the one used: the analysis may choose another
                            {"preprocessing", "the manifest's input specification"}};
  if (request.precision == Precision::kFp16 && !calibration.samples.empty()) {
    const ConversionReport& r = result.report;
    entry["calibration"] = {
        {"images", calibration.samples.size()}, {"sha256", calibration.sha256}, {"preprocessing", "the manifest's input specification"}};
    entry["float16"] = {
        {"goal", {{"max_abs_diff", options.fp16.max_abs_diff}, {"max_float32_fraction", options.fp16.max_float32_fraction}}},
        {"goal_met_on_calibration", r.fp16_goal_met},
        {"all_rounded_max_abs_diff_on_calibration", r.fp16_all_rounded_max_abs_diff},
        {"chosen_max_abs_diff_on_calibration", r.fp16_max_abs_diff},
        {"float32_weights", r.fp16_float32_weights}};
  }
  if (request.precision == Precision::kInt8) {
    const ConversionReport& r = result.report;
    entry["quantization"] = {{"goal",
                              {{"max_mean_abs_diff", request.int8.goal.max_mean_abs_diff},
                               {"min_top1_agreement", request.int8.goal.min_top1_agreement},
                               {"min_triage_agreement", request.int8.goal.min_triage_agreement}}},
                             {"goal_met_on_calibration", r.int8_goal_met},
                             {"full_integer_on_calibration", r.int8_full_integer},
                             {"chosen_on_calibration", r.int8_chosen},
                             {"float_operators", r.float_operators},
                             {"boundary_operators", r.boundary_operators},
                             {"bias_corrections", r.bias_corrections},
                             {"range_methods", r.range_methods},
                             {"xnnpack_delegates_all", r.xnnpack_delegates_all}};
  }

  record_artifact(dir, manifest, "tflite", std::string(to_string(request.precision)), std::move(entry), request.progress);
  return result;
}

}  // namespace dermcds::converter
