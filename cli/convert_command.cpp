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
  bool full_integer = false;
  std::string report;
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
    j["int8"] = {{"goal_met_on_calibration", r.int8_goal_met},
                 {"full_integer", r.int8_full_integer},
                 {"chosen", r.int8_chosen},
                 {"float_operators", r.float_operators},
                 {"boundary_operators", r.boundary_operators},
                 {"bias_corrections", r.bias_corrections},
                 {"range_methods", r.range_methods},
                 {"xnnpack_delegates_all", r.xnnpack_delegates_all},
                 {"xnnpack_delegation", r.xnnpack_delegation}};
  }
  if (r.fp16_samples > 0)
    j["fp16"] = {{"samples", r.fp16_samples},
                 {"goal_met_on_calibration", r.fp16_goal_met},
                 {"all_rounded_max_abs_diff", r.fp16_all_rounded_max_abs_diff},
                 {"chosen_max_abs_diff", r.fp16_max_abs_diff},
                 {"float32_weights", r.fp16_float32_weights}};
  return j;
}

std::string percent(double v) {
  char text[32];
  std::snprintf(text, sizeof text, "%.1f%%", 100 * v);
  return text;
}

std::string figure(double v) {
  char text[32];
  std::snprintf(text, sizeof text, "%.4f", v);
  return text;
}

// The int8 analysis as Markdown: summary, then one row per operator (docs/converter.md).
void write_report(const std::string& path, const std::string& model, const converter::ConversionReport& r) {
  std::string out = "# int8 analysis of " + model + "\n\n";
  out += "Measured on " + std::to_string(r.calibration_samples) + " calibration samples against the float model in TFLite; " +
         "figures: mean |dp| over all classes, top-1 and triage agreement.\n\n";
  const auto line = [&](const char* what, const converter::Int8Agreement& a) {
    out += std::string("- ") + what + ": mean |dp| " + figure(a.mean_abs_diff) + ", max " + figure(a.max_abs_diff) + ", top-1 " +
           percent(a.top1_agreement) + ", triage " + percent(a.triage_agreement) + "\n";
  };
  line("full integer (every operator int8)", r.int8_full_integer);
  line("written model (worst of XNNPACK and TFLite's kernels)", r.int8_chosen);
  out += "- goal met on the calibration samples (with margin): " + std::string(r.int8_goal_met ? "yes" : "no") + "\n";
  out += "- operators kept float: " + std::to_string(r.float_operators.size()) +
         "; QUANTIZE/DEQUANTIZE at the boundaries: " + std::to_string(r.boundary_operators) +
         "; bias corrections: " + std::to_string(r.bias_corrections) + "\n";
  out += "- XNNPACK delegation: " + std::string(r.xnnpack_delegates_all ? "every operator" : "NOT every operator") + " (" +
         r.xnnpack_delegation + ")\n\n";
  out +=
      "| # | operator | output | only this int8: mean \\|dp\\| | top-1 | only this float: mean \\|dp\\| | top-1 | range | kept float |\n";
  out += "|---:|---|---|---:|---:|---:|---:|---|---|\n";
  for (const converter::Int8Sensitivity& row : r.sensitivity) {
    const auto cell = [](const converter::Int8Agreement& a, bool mean) {
      return a.samples == 0 ? std::string("-") : mean ? figure(a.mean_abs_diff) : percent(a.top1_agreement);
    };
    out += "| " + std::to_string(row.unit) + " | " + row.op + " | " + row.output + " | " + cell(row.only_quantized, true) + " | " +
           cell(row.only_quantized, false) + " | " + cell(row.only_float, true) + " | " + cell(row.only_float, false) + " | " +
           row.range_method + " | " + (row.kept_float ? "yes" : "") + " |\n";
  }
  converter::write_file_atomically(path, std::span<const std::uint8_t>(reinterpret_cast<const std::uint8_t*>(out.data()), out.size()));
  std::fprintf(stderr, "dermcds: wrote the int8 report %s\n", path.c_str());
}

void print_result(const ConvertFlags& flags, const std::string& path, std::uint64_t bytes, const std::string& sha256,
                  const converter::ConversionReport& report) {
  if (flags.json) {
    nlohmann::ordered_json j{{"file", path}, {"precision", flags.precision}, {"bytes", bytes}, {"sha256", sha256}};
    j["report"] = report_json(report);
    std::printf("%s\n", j.dump(2).c_str());
    return;
  }
  std::printf("%s: %s, %.2f MB, %zu TFLite operators, sha256 %s\n", path.c_str(), flags.precision.c_str(), static_cast<double>(bytes) / 1e6,
              report.tflite_operators, sha256.c_str());
  if (report.calibration_samples > 0) {
    std::printf("  int8 calibrated on %zu images (%s ranges)\n", report.calibration_samples, report.calibration_method.c_str());
    std::printf(
        "  on them: mean |dp| %.4f, top-1 %.1f%%, triage %.1f%% (full integer: %.4f, %.1f%%, %.1f%%); %zu operator(s) float; XNNPACK %s\n",
        report.int8_chosen.mean_abs_diff, 100 * report.int8_chosen.top1_agreement, 100 * report.int8_chosen.triage_agreement,
        report.int8_full_integer.mean_abs_diff, 100 * report.int8_full_integer.top1_agreement,
        100 * report.int8_full_integer.triage_agreement, report.float_operators.size(),
        report.xnnpack_delegates_all ? "delegates every operator" : "does NOT delegate every operator");
  }
  if (report.fp16_samples > 0)
    std::printf("  fp16 measured on %zu images: max |dp| %.2g (every weight float16: %.2g) with %zu weight tensor(s) float32; goal %s\n",
                report.fp16_samples, report.fp16_max_abs_diff, report.fp16_all_rounded_max_abs_diff, report.fp16_float32_weights.size(),
                report.fp16_goal_met ? "met" : "NOT met");
}

// --onnx-int8: the package's ONNX model quantized into ONNX QDQ form, for ONNX Runtime.
void run_onnx_int8(const ConvertFlags& flags) {
  if (flags.package.empty() || !flags.model.empty() || !flags.output.empty())
    throw Error(ErrorCode::kInvalidArgument, "--onnx-int8 works on a package: give --package DIR, without MODEL and -o");
  if (flags.precision != "fp32" && flags.precision != "int8")  // fp32: the flag's default, not asked for
    throw Error(ErrorCode::kInvalidArgument, "--onnx-int8 makes an int8 artifact; --precision " + flags.precision + " does not apply");
  if (flags.calibration.empty())
    throw Error(ErrorCode::kInvalidArgument, "--onnx-int8 needs --calibration DIR (images preprocessed as at inference)");
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
    const nlohmann::ordered_json j{{"file", r.artifact.string()},
                                   {"runtime", "onnxruntime"},
                                   {"precision", "int8"},
                                   {"format", "qdq"},
                                   {"bytes", r.bytes},
                                   {"sha256", r.sha256},
                                   {"onnx_opset", r.opset},
                                   {"convolutions", r.convolutions},
                                   {"quantized_convolutions", r.quantized_convolutions},
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
  if (precision != converter::Precision::kInt8 && (flags.int8_io || flags.full_integer || !flags.report.empty()))
    throw Error(ErrorCode::kInvalidArgument, "--int8-io, --full-integer and --report apply to --precision int8 only");
  if (precision == converter::Precision::kFp32 && !flags.calibration.empty())
    throw Error(ErrorCode::kInvalidArgument, "--calibration applies to --precision int8 and fp16 only");
  converter::Int8Options int8;
  int8.mixed_precision = !flags.full_integer;
  int8.sensitivity_table = !flags.report.empty();

  if (!flags.package.empty()) {
    if (!flags.model.empty() || !flags.output.empty())
      throw Error(ErrorCode::kInvalidArgument,
                  "with --package the ONNX model and the output file come from the package; drop MODEL and -o");
    converter::PackageConversion request;
    request.package_dir = flags.package;
    request.precision = precision;
    request.int8_io = flags.int8_io;
    request.calibration_dir = flags.calibration;
    request.calibration_limit = flags.calibration_limit;
    request.calibration_method = method;
    request.progress = print_progress;
    request.int8 = int8;
    const converter::PackageConversionResult result = converter::convert_package(request);
    if (!flags.report.empty()) write_report(flags.report, flags.package, result.report);
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
  options.int8 = int8;
  if (!flags.calibration.empty()) {
    InputSpec spec;
    spec.crop_size = flags.input_size;
    spec.resize_size = flags.resize > 0 ? flags.resize : static_cast<int>(std::lround(flags.input_size * 256.0 / 224.0));
    spec.interpolation = flags.interpolation == "bicubic" ? Interpolation::kBicubic : Interpolation::kBilinear;
    converter::CalibrationSet set = converter::load_calibration_images(flags.calibration, spec, flags.calibration_limit, print_progress);
    options.calibration.samples = std::move(set.samples);
  }
  const converter::ConversionResult result = converter::convert_onnx_file(flags.model, options);
  converter::write_file_atomically(flags.output, result.flatbuffer);
  if (!flags.report.empty()) write_report(flags.report, flags.model, result.report);
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
  command->add_option("--calibration", flags->calibration,
                      "int8: directory of calibration images (JPEG/PNG); fp16: optional, measures which weights stay float32");
  command->add_option("--calibration-limit", flags->calibration_limit, "int8, fp16: use at most this many images (0: all)")
      ->capture_default_str();
  command->add_option("--calibration-method", flags->calibration_method, "int8 range estimation: mse, percentile or minmax")
      ->check(CLI::IsMember({"mse", "percentile", "minmax"}))
      ->capture_default_str();
  command->add_flag("--int8-io", flags->int8_io, "int8: quantized input and output tensors (default: float in, float out)");
  command->add_flag("--full-integer", flags->full_integer,
                    "int8: every operator int8 (default: keep the fewest operators float that reach the int8 goal on the "
                    "calibration images)");
  command->add_option("--report", flags->report,
                      "int8: write the sensitivity analysis (per operator: error when only it is int8, when only it stays "
                      "float; what was kept float) as a Markdown table to FILE (slower: twice as many measurements)");
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
