#include "dermcds/converter.hpp"

#include <cstdio>
#include <fstream>
#include <random>
#include <set>

#include "calibration.hpp"
#include "dermcds/error.hpp"
#include "dermcds/file_bytes.hpp"
#include "dermcds/file_util.hpp"
#include "dermcds/tflite_model_runner.hpp"
#include "fp16_selection.hpp"
#include "fp16_weights.hpp"
#include "graph_passes.hpp"
#include "int8_analysis.hpp"
#include "int8_rewrites.hpp"
#include "lowering.hpp"
#include "onnx_import.hpp"
#include "quantize.hpp"
#include "tflite_int8_evaluator.hpp"
#include "tflite_passes.hpp"
#include "tflite_writer.hpp"

namespace dermcds::converter {

std::string_view to_string(Precision precision) noexcept {
  switch (precision) {
    case Precision::kFp32:
      return "fp32";
    case Precision::kFp16:
      return "fp16";
    case Precision::kInt8:
      return "int8";
  }
  return "?";
}

Precision parse_precision(std::string_view text) {
  if (text == "fp32") return Precision::kFp32;
  if (text == "fp16") return Precision::kFp16;
  if (text == "int8") return Precision::kInt8;
  throw Error(ErrorCode::kInvalidArgument, "precision must be fp32, fp16 or int8, not '" + std::string(text) + "'");
}

std::string_view to_string(CalibrationMethod method) noexcept {
  switch (method) {
    case CalibrationMethod::kMinMax:
      return "minmax";
    case CalibrationMethod::kPercentile:
      return "percentile";
    case CalibrationMethod::kMse:
      return "mse";
  }
  return "?";
}

CalibrationMethod parse_calibration_method(std::string_view text) {
  if (text == "minmax") return CalibrationMethod::kMinMax;
  if (text == "percentile") return CalibrationMethod::kPercentile;
  if (text == "mse") return CalibrationMethod::kMse;
  throw Error(ErrorCode::kInvalidArgument, "calibration method must be minmax, percentile or mse, not '" + std::string(text) + "'");
}

std::vector<std::string> supported_onnx_operators() { return supported_operators(); }

namespace {

void check_options(const ConvertOptions& options) {
  if (options.int8_io && options.precision != Precision::kInt8)
    throw Error(ErrorCode::kInvalidArgument, "int8 input/output needs --precision int8");
  if (options.precision == Precision::kInt8 && options.calibration.samples.empty())
    throw Error(ErrorCode::kInvalidArgument, "int8 conversion needs calibration samples (images preprocessed as at inference)");
  if (options.precision == Precision::kFp32 && !options.calibration.samples.empty())
    throw Error(ErrorCode::kInvalidArgument, "calibration samples are used by int8 and fp16 conversion only, not fp32");
  if (options.fp16.max_abs_diff < 0 || options.fp16.max_float32_fraction < 0 || options.fp16.max_float32_fraction > 1)
    throw Error(ErrorCode::kInvalidArgument, "fp16 options: max_abs_diff must be >= 0 and max_float32_fraction in [0, 1]");
}

void progress(const ConvertOptions& options, const std::string& line) {
  if (options.progress) options.progress(line);
}

}  // namespace

ConversionResult convert_onnx(std::span<const std::uint8_t> onnx_bytes, const std::string& origin, const ConvertOptions& options) {
  check_options(options);
  ConversionResult result;
  ConversionReport& report = result.report;

  Graph graph = import_onnx(onnx_bytes, origin);
  report.onnx_opset = graph.opset;
  report.onnx_nodes = graph.nodes.size();
  report.dynamic_batch = !graph.dynamic_batch_inputs.empty();
  const SimplifyReport simplified = simplify_graph(graph);
  report.folded_batch_norms = simplified.folded_batch_norms;
  progress(options, "read " + origin + ": opset " + std::to_string(graph.opset) + ", " + std::to_string(report.onnx_nodes) + " nodes, " +
                        std::to_string(graph.nodes.size()) + " after simplification");

  TflModel model = lower_graph(graph);
  report.fused_activations = optimize_tflite(model).fused_activations;
  model.description = "dermcds converter: " + std::string(to_string(options.precision)) + " from " + origin;

  std::vector<std::uint8_t> float_bytes;  // int8: the float model it was quantized from
  switch (options.precision) {
    case Precision::kFp32:
      break;
    case Precision::kFp16: {
      std::set<int> keep;
      if (!options.calibration.samples.empty()) {
        const Fp16Selection chosen =
            choose_float32_weights(model, options.fp16_min_elements, options.calibration.samples, options.fp16, options.progress);
        keep = chosen.float32_tensors;
        report.fp16_samples = options.calibration.samples.size();
        report.fp16_all_rounded_max_abs_diff = chosen.all_rounded_max_abs_diff;
        report.fp16_max_abs_diff = chosen.chosen_max_abs_diff;
        report.fp16_goal_met = chosen.goal_met;
        for (const int t : keep) report.fp16_float32_weights.push_back(model.tensors[static_cast<std::size_t>(t)].name);
      }
      store_weights_as_fp16(model, options.fp16_min_elements, keep);
      break;
    }
    case Precision::kInt8: {
      rewrite_for_int8(model);
      float_bytes = serialize_tflite(model);
      const std::map<int, TensorRange> ranges = calibrate(model, options.calibration, options.progress);
      // Which operators stay float, bias correction and range methods: measured on the
      // calibration samples against the float model (int8_analysis.hpp).
      TfliteInt8Evaluator evaluator(model, ranges, options.calibration.samples, options.int8.triage, options.int8_io);
      AnalysisOptions analysis_options;
      analysis_options.goal = options.int8.goal;
      analysis_options.mixed_precision = options.int8.mixed_precision;
      analysis_options.full_table = options.int8.sensitivity_table;
      analysis_options.max_model_bytes = options.int8.max_file_bytes;
      analysis_options.calibration_method = options.calibration.method;
      analysis_options.progress = options.progress;
      const AnalysisResult analysis = analyse_and_choose(evaluator, analysis_options);
      const Int8Plan plan = evaluator.plan_for(analysis.chosen);
      for (std::size_t i : evaluator.forced_float_operators()) {
        const BuiltinOperator code = model.operators[i].code;
        const bool no_kernel = xnnpack_lacks_int8(code);
        report.float_operators.push_back(std::string(operator_name(code)) + " '" +
                                         model.tensors[static_cast<std::size_t>(model.operators[i].outputs.at(0))].name + "' (" +
                                         (no_kernel ? "no int8 kernel in XNNPACK 2.9" : "feeds only a secondary output") + ")");
      }
      for (std::size_t u : analysis.chosen.float_units)
        report.float_operators.push_back(evaluator.units()[u].op + " '" + evaluator.units()[u].output + "'");
      QuantizeReport quantized;
      model = build_int8_model(model, ranges, plan, &quantized);
      report.calibration_samples = options.calibration.samples.size();
      // The method the analysis chose for the activations (the one asked for unless another measured better).
      const CalibrationMethod method = analysis.chosen.method.value_or(options.calibration.method);
      report.calibration_method = std::string(to_string(method));
      report.quantized_tensors = quantized.quantized_activations + quantized.quantized_weights;
      report.int8_goal_met = analysis.goal_met;
      report.int8_full_integer = analysis.full_int8;
      report.int8_chosen = analysis.chosen_agreement;
      report.boundary_operators = quantized.boundary_operators;
      report.bias_corrections = quantized.bias_corrections;
      report.range_methods[std::string(to_string(method))] = ranges.size() - plan.methods.size();
      for (const auto& [t, method] : plan.methods) ++report.range_methods[std::string(to_string(method))];
      report.sensitivity = analysis.table;
      for (Int8Sensitivity& row : report.sensitivity) {
        const auto m = analysis.chosen.output_methods.find(row.unit);
        row.range_method = std::string(to_string(m != analysis.chosen.output_methods.end() ? m->second : method));
      }
      break;
    }
  }

  result.flatbuffer = serialize_tflite(model);
  report.tflite_operators = model.operators.size();
  for (const TflOperator& op : model.operators) ++report.operator_counts[std::string(operator_name(op.code))];
  if (!model.inputs.empty()) {
    const TflTensor& in = model.tensors[static_cast<std::size_t>(model.inputs[0])];
    report.input_name = in.name;
    report.input_shape.assign(in.shape.begin(), in.shape.end());
  }
  if (!model.outputs.empty()) {
    const TflTensor& out = model.tensors[static_cast<std::size_t>(model.outputs[0])];
    report.output_name = out.name;
    report.output_shape.assign(out.shape.begin(), out.shape.end());
  }
  progress(options, "checking that TensorFlow Lite runs it");
  verify_tflite_runs(result.flatbuffer, origin, report);
  if (options.precision == Precision::kInt8) {
    // int8 must leave nothing on TFLite's own kernels that XNNPACK runs in float: compared with
    // the float model it came from, operator by operator type.
    ConversionReport float_report;
    verify_tflite_runs(float_bytes, origin + " (float, before quantization)", float_report);
    report.xnnpack_delegates_all = true;
    std::string added, both;
    for (const auto& [name, count] : report.xnnpack_undelegated) {
      const auto f = float_report.xnnpack_undelegated.find(name);
      const std::size_t in_float = f == float_report.xnnpack_undelegated.end() ? 0 : f->second;
      if (count > in_float) {
        report.xnnpack_delegates_all = false;
        added += (added.empty() ? "" : ", ") + name + " x" + std::to_string(count - in_float);
      }
      if (in_float > 0) both += (both.empty() ? "" : ", ") + name + " x" + std::to_string(std::min(count, in_float));
    }
    report.xnnpack_delegation =
        report.xnnpack_delegates_all ? "XNNPACK runs every operator it runs in float" : "int8 leaves to TFLite's own kernels: " + added;
    if (!both.empty()) report.xnnpack_delegation += "; on TFLite's kernels in float and int8 alike (XNNPACK 2.9 has no kernel): " + both;
  }
  progress(options, "wrote " + std::to_string(report.tflite_operators) + " TFLite operators, " + std::to_string(result.flatbuffer.size()) +
                        " bytes");
  return result;
}

namespace {

std::string node_operator_name(const runtimes::tflite::UndelegatedNode& node) {
  if (!node.custom_name.empty()) return node.custom_name;
  const std::string_view name = operator_name(static_cast<BuiltinOperator>(node.builtin_code));
  return name.empty() ? "builtin operator " + std::to_string(node.builtin_code) : std::string(name);
}

}  // namespace

void verify_tflite_runs(const std::vector<std::uint8_t>& flatbuffer, const std::string& origin, ConversionReport& report) {
  // Builtin kernels are what every TFLite build has (and where XNNPACK falls back to); XNNPACK
  // is what the backend runs by default. A kernel's refusal to prepare, or a failing inference,
  // on either is the converter's error, not the user's surprise at load time.
  for (const bool xnnpack : {false, true}) {
    const std::string kernels = xnnpack ? "with XNNPACK" : "on its builtin kernels";
    try {
      runtimes::tflite::RunnerOptions options;
      options.xnnpack = xnnpack;
      options.xnnpack_int8 = xnnpack;
      runtimes::tflite::ModelRunner runner(flatbuffer, options, "the converted " + origin);
      runner.set_sample_inputs(20260101);
      runner.invoke();
      if (xnnpack) {
        report.xnnpack_undelegated.clear();
        for (const runtimes::tflite::UndelegatedNode& node : runner.undelegated()) ++report.xnnpack_undelegated[node_operator_name(node)];
      }
    } catch (const Error& e) {
      throw Error(ErrorCode::kUnsupportedModel, "TensorFlow Lite " + runtimes::tflite::version() + " cannot run the model converted from " +
                                                    origin + " (" + kernels + "), so nothing was written: " + e.what());
    }
  }
  report.verified_with = "TensorFlow Lite " + runtimes::tflite::version();
}

ConversionResult convert_onnx_file(const std::filesystem::path& onnx_file, const ConvertOptions& options) {
  // 2 GiB is the protobuf limit; read_file_bytes names the file in its errors.
  const std::vector<std::uint8_t> bytes = read_file_bytes(onnx_file, std::uint64_t{2} << 30);
  return convert_onnx(bytes, onnx_file.string(), options);
}

void write_file_atomically(const std::filesystem::path& path, std::span<const std::uint8_t> bytes) {
  dermcds::write_file_atomically(path, bytes);  // the one implementation (core, fsync'ed)
}

}  // namespace dermcds::converter
