// The package side of ONNX int8 (QDQ): calibration set, artifact file and manifest entry.
#include <nlohmann/json.hpp>

#include "dermcds/converter.hpp"
#include "dermcds/error.hpp"
#include "dermcds/file_bytes.hpp"
#include "dermcds/manifest.hpp"
#include "dermcds/sha256.hpp"
#include "onnx_qdq.hpp"
#include "package_manifest.hpp"

namespace dermcds::converter {

OnnxInt8PackageResult quantize_package_onnx_int8(const PackageConversion& request) {
  if (request.precision != Precision::kInt8)
    throw Error(ErrorCode::kInvalidArgument, "an ONNX Runtime artifact is converted only to int8 (QDQ); fp32 is the package's own");
  if (request.int8_io) throw Error(ErrorCode::kInvalidArgument, "the ONNX int8 artifact takes and gives float tensors; drop --int8-io");
  if (request.calibration_dir.empty())
    throw Error(ErrorCode::kInvalidArgument, "ONNX int8 quantization needs a calibration image directory");
  const std::filesystem::path& dir = request.package_dir;
  const Manifest manifest = read_manifest(dir);
  const ArtifactEntry* source = manifest.find_artifact("onnxruntime", "fp32");
  if (!source) throw Error(ErrorCode::kNotFound, "package " + dir.string() + " has no fp32 ONNX Runtime artifact to quantize");

  // The calibration set first: a bad one is the caller's mistake and must cost nothing.
  const CalibrationSet calibration =
      load_calibration_images(request.calibration_dir, manifest.input, request.calibration_limit, request.progress);
  if (calibration.samples.size() < kMinOnnxInt8CalibrationImages)
    throw Error(ErrorCode::kInvalidArgument, "calibration directory " + request.calibration_dir.string() + " holds " +
                                                 std::to_string(calibration.samples.size()) + " usable images; ONNX int8 needs at least " +
                                                 std::to_string(kMinOnnxInt8CalibrationImages));

  const std::filesystem::path onnx = dir / source->file;
  const std::vector<std::uint8_t> bytes = read_file_bytes(onnx, std::uint64_t{2} << 30);
  // Never quantize something other than what the manifest vouches for.
  const std::string onnx_sha256 = sha256_hex(bytes);
  if (onnx_sha256 != source->sha256)
    throw Error(ErrorCode::kInvalidPackage, onnx.string() + " does not match the sha256 in the manifest (modified or corrupt)");

  OnnxQdqOptions options;
  options.calibration.samples = calibration.samples;
  options.calibration.method = request.calibration_method;
  options.progress = request.progress;
  const OnnxQdqResult quantized = quantize_onnx_qdq(bytes, onnx.string(), options);

  OnnxInt8PackageResult result;
  const std::string file = "model_int8.onnx";
  result.artifact = dir / file;
  write_file_atomically(result.artifact, quantized.model);
  result.bytes = quantized.model.size();
  result.sha256 = sha256_hex(quantized.model);
  result.opset = quantized.report.opset;
  result.convolutions = quantized.report.convolutions;
  result.quantized_convolutions = quantized.report.quantized_convolutions;
  result.quantized_activations = quantized.report.quantized_activations;
  result.calibration_samples = quantized.report.calibration_samples;
  result.unquantized = quantized.report.unquantized;

  nlohmann::json entry{
      {"runtime", "onnxruntime"},
      {"precision", "int8"},
      {"file", file},
      {"sha256", result.sha256},
      {"bytes", result.bytes},
      {"layout", "NCHW"},
      {"format", "qdq"},
      {"source", {{"file", source->file}, {"sha256", onnx_sha256}}},
      {"converter", {{"name", "dermcds convert --onnx-int8"}, {"onnx_opset", result.opset}}},
      {"calibration",
       {{"images", calibration.samples.size()},
        {"sha256", calibration.sha256},
        {"method", to_string(request.calibration_method)},
        {"preprocessing", "the manifest's input specification"}}},
      {"quantized_convolutions", result.quantized_convolutions},
      {"convolutions", result.convolutions},
  };
  record_artifact(dir, manifest, "onnxruntime", "int8", std::move(entry), request.progress);
  return result;
}

}  // namespace dermcds::converter
