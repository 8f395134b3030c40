// dermcds convert: ONNX -> TensorFlow Lite with derm-cds's own converter (docs/converter.md).
//
//   dermcds convert model.onnx -o model.tflite --precision fp16
//   dermcds convert --package models/derm-mnv3/1 --precision int8 --calibration calib/
//   dermcds convert --package models/derm-effnet-b4/1 --onnx-int8 --calibration calib/   (ONNX QDQ for the server)
#include <cmath>
#include <cstdio>
#include <memory>

#include <nlohmann/json.hpp>

#include "command.hpp"
#include "dermcds/converter.hpp"
#include "dermcds/error.hpp"
#include "dermcds/sha256.hpp"

namespace dermcds::cli {

namespace {

struct ConvertFlags {
  std::string model;
  std::string output;
  std::string package;
  std::string precision = "fp32";
  std::string calibration;
  std::size_t calibration_limit = 0;
  std::string calibration_method = "mse";
  bool int8_io = false;
  bool onnx_int8 = false;
  int input_size = 224;
  int resize = 0;
  std::string interpolation = "bilinear";
  bool json = false;
};

void print_progress(const std::string& line) { std::fprintf(stderr, "dermcds: %s\n", line.c_str()); }

nlohmann::ordered_json report_json(const converter::ConversionReport& r) {
  nlohmann::ordered_json j;
  j["onnx_opset"] = r.onnx_opset;
  j["onnx_nodes"] = r.onnx_nodes;
  j["tflite_operators"] = r.tflite_operators;
  j["operator_counts"] = r.operator_counts;
  j["input"] = {{"name", r.input_name}, {"shape", r.input_shape}};
  j["output"] = {{"name", r.output_name}, {"shape", r.output_shape}};
  j["folded_batch_norms"] = r.folded_batch_norms;
  j["fused_activations"] = r.fused_activations;
  // The check after writing: TFLite ran the file; operators XNNPACK left on TFLite's kernels.
  j["verified_with"] = r.verified_with;
  j["xnnpack_undelegated"] = r.xnnpack_undelegated;
  if (r.calibration_samples > 0) {
    j["calibration"] = {{"samples", r.calibration_samples}, {"method", r.calibration_method}};
    j["quantized_tensors"] = r.quantized_tensors;
  }
  return j;
}

void print_result(const ConvertFlags& flags, const std::string& path, std::uint64_t bytes, const std::string& sha256,
                  const converter::ConversionReport& report) {
  if (flags.json) {
    nlohmann::ordered_json j{{"file", path}, {"precision", flags.precision}, {"bytes", bytes}, {"sha256", sha256}};
    j["report"] = report_json(report);
    std::printf("%s\n", j.dump(2).c_str());
    return;
  }
  std::printf("%s: %s, %.2f MB, %zu TFLite operators, sha256 %s\n", path.c_str(), flags.precision.c_str(),
              static_cast<double>(bytes) / 1e6, report.tflite_operators, sha256.c_str());
  if (report.calibration_samples > 0)
    std::printf("  int8 calibrated on %zu images (%s ranges)\n", report.calibration_samples, report.calibration_method.c_str());
}

// --onnx-int8: the package's ONNX model quantized into ONNX QDQ form, for ONNX Runtime.
void run_onnx_int8(const ConvertFlags& flags) {
  if (flags.package.empty() || !flags.model.empty() || !flags.output.empty())
    throw Error(ErrorCode::kInvalidArgument, "--onnx-int8 works on a package: give --package DIR, without MODEL and -o");
  if (flags.precision != "fp32" && flags.precision != "int8")  // fp32: the flag's default, not asked for
    throw Error(ErrorCode::kInvalidArgument, "--onnx-int8 makes an int8 artifact; --precision " + flags.precision + " does not apply");
  if (flags.calibration.empty()) throw Error(ErrorCode::kInvalidArgument, "--onnx-int8 needs --calibration DIR (images preprocessed as at inference)");
  converter::PackageConversion request;
  request.package_dir = flags.package;
  request.precision = converter::Precision::kInt8;
  request.int8_io = flags.int8_io;
  request.calibration_dir = flags.calibration;
  request.calibration_limit = flags.calibration_limit;
  request.calibration_method = converter::parse_calibration_method(flags.calibration_method);
  request.progress = print_progress;
  const converter::OnnxInt8PackageResult r = converter::quantize_package_onnx_int8(request);
  if (flags.json) {
    const nlohmann::ordered_json j{{"file", r.artifact.string()}, {"runtime", "onnxruntime"}, {"precision", "int8"}, {"format", "qdq"},
                                   {"bytes", r.bytes}, {"sha256", r.sha256}, {"onnx_opset", r.opset},
                                   {"convolutions", r.convolutions}, {"quantized_convolutions", r.quantized_convolutions},
                                   {"quantized_activations", r.quantized_activations},
                                   {"calibration", {{"samples", r.calibration_samples}, {"method", flags.calibration_method}}},
                                   {"unquantized", r.unquantized}};
    std::printf("%s\n", j.dump(2).c_str());
    return;
  }
  std::printf("%s: onnxruntime int8 (QDQ), %.2f MB, %zu of %zu convolutions int8, calibrated on %zu images, sha256 %s\n",
              r.artifact.string().c_str(), static_cast<double>(r.bytes) / 1e6, r.quantized_convolutions, r.convolutions,
              r.calibration_samples, r.sha256.c_str());
  for (const std::string& why : r.unquantized) std::printf("  float: %s\n", why.c_str());
}

void run(const ConvertFlags& flags) {
  if (flags.onnx_int8) return run_onnx_int8(flags);
  const converter::Precision precision = converter::parse_precision(flags.precision);
  const converter::CalibrationMethod method = converter::parse_calibration_method(flags.calibration_method);
  if (precision == converter::Precision::kInt8 && flags.calibration.empty())
    throw Error(ErrorCode::kInvalidArgument, "--precision int8 needs --calibration DIR (images preprocessed as at inference)");
  if (precision != converter::Precision::kInt8 && (!flags.calibration.empty() || flags.int8_io))
    throw Error(ErrorCode::kInvalidArgument, "--calibration and --int8-io apply to --precision int8 only");

  if (!flags.package.empty()) {
    if (!flags.model.empty() || !flags.output.empty())
      throw Error(ErrorCode::kInvalidArgument, "with --package the ONNX model and the output file come from the package; drop MODEL and -o");
    converter::PackageConversion request;
    request.package_dir = flags.package;
    request.precision = precision;
    request.int8_io = flags.int8_io;
    request.calibration_dir = flags.calibration;
    request.calibration_limit = flags.calibration_limit;
    request.calibration_method = method;
    request.progress = print_progress;
    const converter::PackageConversionResult result = converter::convert_package(request);
    print_result(flags, result.artifact.string(), result.bytes, result.sha256, result.report);
    return;
  }

  if (flags.model.empty() || flags.output.empty())
    throw Error(ErrorCode::kInvalidArgument, "give MODEL.onnx and -o OUT.tflite, or --package DIR");
  converter::ConvertOptions options;
  options.precision = precision;
  options.int8_io = flags.int8_io;
  options.calibration.method = method;
  options.progress = print_progress;
  if (precision == converter::Precision::kInt8) {
    InputSpec spec;
    spec.crop_size = flags.input_size;
    spec.resize_size = flags.resize > 0 ? flags.resize : static_cast<int>(std::lround(flags.input_size * 256.0 / 224.0));
    spec.interpolation = flags.interpolation == "bicubic" ? Interpolation::kBicubic : Interpolation::kBilinear;
    converter::CalibrationSet set = converter::load_calibration_images(flags.calibration, spec, flags.calibration_limit, print_progress);
    options.calibration.samples = std::move(set.samples);
  }
  const converter::ConversionResult result = converter::convert_onnx_file(flags.model, options);
  converter::write_file_atomically(flags.output, result.flatbuffer);
  print_result(flags, flags.output, result.flatbuffer.size(), sha256_hex(result.flatbuffer), result.report);
}

}  // namespace

void register_convert_command(CLI::App& app) {
  auto flags = std::make_shared<ConvertFlags>();
  CLI::App* command = app.add_subcommand(
      "convert",
      "Convert an ONNX model to TensorFlow Lite (fp32, fp16 weights, or int8 full-integer quantization), to a file or into a "
      "model package");
  command->add_option("model", flags->model, "ONNX model file (not with --package)");
  command->add_option("-o,--output", flags->output, "TFLite file to write (atomically; nothing is written on failure)");
  command->add_option("--package", flags->package,
                      "Model package directory: convert its ONNX artifact, write model_<precision>.tflite there and add it to "
                      "manifest.json");
  command->add_option("--precision", flags->precision, "fp32, fp16 or int8")
      ->check(CLI::IsMember({"fp32", "fp16", "int8"}))
      ->capture_default_str();
  command->add_option("--calibration", flags->calibration, "int8: directory of calibration images (JPEG/PNG)");
  command->add_option("--calibration-limit", flags->calibration_limit, "int8: use at most this many images (0: all)")
      ->capture_default_str();
  command->add_option("--calibration-method", flags->calibration_method, "int8 range estimation: mse, percentile or minmax")
      ->check(CLI::IsMember({"mse", "percentile", "minmax"}))
      ->capture_default_str();
  command->add_flag("--int8-io", flags->int8_io, "int8: quantized input and output tensors (default: float in, float out)");
  command->add_option("--input-size", flags->input_size, "Without --package: image side the model takes (for calibration)")
      ->check(CLI::Range(16, 4096))
      ->capture_default_str();
  command->add_option("--resize", flags->resize, "Without --package: shorter side before the centre crop (default: size * 256/224)")
      ->check(CLI::Range(16, 8192));
  command->add_option("--interpolation", flags->interpolation, "Without --package: bilinear or bicubic")
      ->check(CLI::IsMember({"bilinear", "bicubic"}))
      ->capture_default_str();
  command->add_flag("--onnx-int8", flags->onnx_int8,
                    "With --package: quantize its ONNX model to int8 in ONNX QDQ form for ONNX Runtime (model_int8.onnx; "
                    "needs --calibration), instead of converting to TFLite");
  command->add_flag("--json", flags->json, "Print the result as JSON");
  command->callback([flags] { run(*flags); });
}

}  // namespace dermcds::cli
