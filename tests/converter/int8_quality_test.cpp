// int8 post-training quantization, measured against ONNX Runtime running the float ONNX model.
//
// The requirement (issue 9, docs/converter.md "The int8 goal"): on lesion images the int8
// artifact keeps mean |p_int8 - p_fp32| <= 0.01 over all classes, top-1 agreement >= 97% and
// triage agreement >= 99%, with XNNPACK's int8 operators and with TFLite's own int8 kernels,
// and the file is at most 6 MB. It must hold for any checkpoint of the demo recipe on any x86-64
// CPU, so it is checked on two: the demo checkpoint (the package `make models` built) and the
// same recipe trained with seed 2. Calibration: 100 synthetic lesions (seed 101); measurement:
// 200 held-out lesions drawn with another seed (202), never seen by calibration or training.
//
// The single-operator cases are also quantized (calibrated on random inputs, every operator
// int8) and must stay within a few quantization steps of the float result: a check that every
// operator's int8 plumbing (fixed scales, shared scales, biases, per-channel weights) is right,
// independent of how well a whole network quantizes.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <set>

#include <gtest/gtest.h>
#include <onnx/onnx_pb.h>
#include <nlohmann/json.hpp>

#include "classifier_inputs.hpp"
#include "dermcds/converter.hpp"
#include "dermcds/error.hpp"
#include "dermcds/manifest.hpp"
#include "dermcds/model_repository.hpp"
#include "dermcds/postprocess.hpp"
#include "onnx_qdq.hpp"
#include "reference_runners.hpp"
#include "test_support.hpp"

namespace dermcds::test {
namespace {

std::filesystem::path calibration_dir() { return work_dir() / "converter-calibration"; }
constexpr std::size_t kCalibrationImages = 100;
std::filesystem::path held_out_dir() { return work_dir() / "converter-heldout"; }

std::vector<Label> isic_labels() {
  std::vector<Label> labels;
  for (const char* code : {"MEL", "NV", "BCC", "AK", "BKL", "DF", "VASC", "SCC"}) labels.push_back({code, code});
  return labels;
}

// docs/model-package.md's example policy, used when the model does not come from a package.
TriagePolicy default_policy() {
  TriagePolicy p;
  p.rules = {{"urgent_referral", {"MEL", "BCC", "SCC"}, 0.30}, {"dermatology_review", {"MEL", "BCC", "SCC", "AK"}, 0.15}};
  return p;
}

struct Quality {
  std::size_t images = 0;
  double mean_abs = 0;  // over every class of every image
  double max_abs = 0;
  std::size_t top1_agreements = 0;
  std::size_t triage_agreements = 0;
  double reference_spread = 0;
};

struct Subject {
  std::filesystem::path onnx;
  InputSpec spec;
  std::vector<Label> labels = isic_labels();
  TriagePolicy policy = default_policy();
  std::string origin;
};

// The demo-trained mobile package when `make models` has built it, else the exported network.
Subject mobile_subject() {
  Subject s;
  const std::filesystem::path model_dir = test_repository() / "derm-mnv3-large";
  if (std::filesystem::exists(model_dir)) {
    const std::filesystem::path package = resolve_package_dir(model_dir);
    const Manifest m = read_manifest(package);
    if (const ArtifactEntry* onnx = m.find_artifact("onnxruntime")) {
      s.onnx = package / onnx->file;
      s.spec = m.input;
      s.labels = m.labels;
      s.policy = m.triage;
      s.origin = "package " + package.string();
      return s;
    }
  }
  s.onnx = work_dir() / "converter-classifiers" / "mobilenet_v3_large.onnx";
  s.origin = "exported mobilenet_v3_large (batch-norm recalibrated, untrained)";
  return s;
}

// The demo recipe trained with another seed (fixture converter_classifiers), under the demo
// package's labels and triage policy when it exists.
Subject second_seed_subject() {
  Subject s = mobile_subject();
  s.onnx = work_dir() / "converter-classifiers" / "mobilenet_v3_large_seed2.onnx";
  s.origin = "the demo recipe trained with seed 2";
  return s;
}

Quality measure(const Subject& s, const std::vector<std::uint8_t>& tflite, TfliteKernels kernels) {
  OrtModel reference(s.onnx);
  TfliteModel model(tflite, kernels, 2);
  Quality q;
  std::vector<std::vector<float>> seen;
  double total = 0;
  for (const PreparedInput& in : prepare_inputs(images_in(held_out_dir(), 1000), s.spec)) {
    const std::vector<float> p = probabilities(reference.run({{"image", in.nchw}}).at(0));
    const std::vector<float> r = probabilities(model.run({in.nchw}).at(0));
    for (std::size_t k = 0; k < p.size(); ++k) {
      const double d = std::fabs(static_cast<double>(p[k]) - r[k]);
      total += d;
      q.max_abs = std::max(q.max_abs, d);
    }
    q.top1_agreements += top_k(p, 1)[0] == top_k(r, 1)[0];
    q.triage_agreements += decide_triage(p, s.labels, s.policy).tier == decide_triage(r, s.labels, s.policy).tier;
    for (const auto& other : seen)
      for (std::size_t k = 0; k < p.size(); ++k)
        q.reference_spread = std::max(q.reference_spread, std::fabs(static_cast<double>(p[k]) - other[k]));
    if (seen.size() < 16) seen.push_back(p);
    ++q.images;
  }
  q.mean_abs = q.images ? total / static_cast<double>(q.images * s.labels.size()) : 0;
  return q;
}

void print(const char* what, const Quality& q) {
  std::printf(
      "%s: %zu held-out images: mean |dp| %.4f, max |dp| %.4f, top-1 agreement %.1f%% (%zu), triage agreement %.1f%% (%zu), "
      "reference spread %.3f\n",
      what, q.images, q.mean_abs, q.max_abs, 100.0 * static_cast<double>(q.top1_agreements) / static_cast<double>(q.images),
      q.top1_agreements, 100.0 * static_cast<double>(q.triage_agreements) / static_cast<double>(q.images), q.triage_agreements,
      q.reference_spread);
}

converter::ConversionResult convert_int8(const Subject& s, converter::CalibrationMethod method, bool int8_io = false) {
  converter::ConvertOptions options;
  options.precision = converter::Precision::kInt8;
  options.int8_io = int8_io;
  options.calibration.method = method;
  options.calibration.samples = converter::load_calibration_images(calibration_dir(), s.spec, kCalibrationImages).samples;
  // Triage agreement under the subject's policy counts towards the goal, as in convert_package.
  options.int8.triage = converter::triage_function(s.labels, s.policy);
  options.progress = [](const std::string& line) { std::printf("  %s\n", line.c_str()); };
  return converter::convert_onnx_file(s.onnx, options);
}

// Checks the int8 goal on held-out lesions for one checkpoint.
void expect_int8_goal(const Subject& s) {
  ASSERT_TRUE(std::filesystem::exists(s.onnx)) << s.onnx;
  std::printf("subject: %s\n", s.origin.c_str());
  const converter::ConversionResult int8 = convert_int8(s, converter::CalibrationMethod::kMse);
  const converter::ConversionResult fp32 = converter::convert_onnx_file(s.onnx, {});
  const converter::ConversionReport& r = int8.report;
  std::printf("int8 file %zu bytes (fp32 %zu), %zu calibration images, %zu operator(s) float:", int8.flatbuffer.size(),
              fp32.flatbuffer.size(), r.calibration_samples, r.float_operators.size());
  for (const std::string& op : r.float_operators) std::printf(" %s", op.c_str());
  std::printf("\nXNNPACK: %s\n", r.xnnpack_delegation.c_str());

  // Requirement: the int8 file is at most 6 MB.
  EXPECT_LE(int8.flatbuffer.size(), 6'000'000u);
  // Requirement: no operator falls back to TFLite's reference kernels under XNNPACK.
  EXPECT_TRUE(r.xnnpack_delegates_all) << r.xnnpack_delegation;
  for (TfliteKernels kernels : {TfliteKernels::kXnnpackInt8, TfliteKernels::kBuiltin}) {
    const bool xnnpack = kernels == TfliteKernels::kXnnpackInt8;
    SCOPED_TRACE(xnnpack ? "XNNPACK int8 operators" : "TFLite int8 kernels");
    const Quality q = measure(s, int8.flatbuffer, kernels);
    print(xnnpack ? "int8, XNNPACK with int8 operators" : "int8, TFLite's own kernels", q);
    ASSERT_GE(q.images, 100u);
    // Not a requirement but a precondition: the reference answers depend on the image.
    EXPECT_GT(q.reference_spread, 0.05) << "the reference outputs barely depend on the input";
    // Requirement: mean |dp| <= 0.01, top-1 agreement >= 97%, triage agreement >= 99%.
    EXPECT_LE(q.mean_abs, 0.01);
    EXPECT_GE(static_cast<double>(q.top1_agreements), 0.97 * static_cast<double>(q.images));
    EXPECT_GE(static_cast<double>(q.triage_agreements), 0.99 * static_cast<double>(q.images));
  }
}

TEST(Int8Quality, MobileNetV3LargeOnHeldOutImages) { expect_int8_goal(mobile_subject()); }

// Issue 9 item 6: a second checkpoint of the same recipe, so that no bound rests on one.
TEST(Int8Quality, SecondSeedOfTheRecipeOnHeldOutImages) { expect_int8_goal(second_seed_subject()); }

// ---- every single-operator case, quantized ----

nlohmann::json op_cases() {
  std::ifstream in(work_dir() / "converter-ops" / "cases.json");
  if (!in) throw std::runtime_error("no converter-ops/cases.json (fixture converter_op_models)");
  return nlohmann::json::parse(in);
}

const char* const kOpCases[] = {
#include "op_cases.inc"
};

class Int8OpTest : public ::testing::TestWithParam<const char*> {};

TEST_P(Int8OpTest, StaysWithinQuantizationError) {
  const std::string name = GetParam();
  const nlohmann::json entry = op_cases().at(name);
  if (entry.at("inputs").size() != 1) GTEST_SKIP() << "int8 calibration takes single-input models";
  const auto shape = entry.at("inputs")[0].at("shape").get<std::vector<std::int64_t>>();
  const std::filesystem::path onnx = work_dir() / "converter-ops" / entry.at("file").get<std::string>();

  converter::ConvertOptions options;
  options.precision = converter::Precision::kInt8;
  for (std::uint32_t i = 0; i < 16; ++i) options.calibration.samples.push_back(nchw_to_nhwc(random_tensor(shape, 100 + i, -2.0f, 2.0f)));
  options.calibration.method = converter::CalibrationMethod::kMinMax;
  options.int8.mixed_precision = false;  // every operator int8: this test checks their int8 plumbing
  converter::ConversionResult converted;
  try {
    converted = converter::convert_onnx_file(onnx, options);
  } catch (const Error& e) {
    if (e.code() == ErrorCode::kUnsupportedModel && std::string(e.what()).find("no int8 kernel") != std::string::npos)
      GTEST_SKIP() << e.what();
    throw;
  }
  OrtModel reference(onnx);
  for (TfliteKernels kernels : {TfliteKernels::kBuiltin, TfliteKernels::kXnnpackInt8}) {
    SCOPED_TRACE(kernels == TfliteKernels::kBuiltin ? "TFLite int8 kernels" : "XNNPACK int8 operators");
    TfliteModel model(converted.flatbuffer, kernels);
    for (std::uint32_t i = 0; i < 4; ++i) {
      const Tensor input = random_tensor(shape, 100 + i, -2.0f, 2.0f);  // inside the calibrated range
      const Tensor expected = reference.run({{entry.at("inputs")[0].at("name"), input}}).at(0);
      const Tensor actual = model.run({input}).at(0);
      ASSERT_EQ(actual.shape, expected.shape);
      const auto [lo, hi] = std::minmax_element(expected.data.begin(), expected.data.end());
      // 256 levels over the output's span (which int8 widens to include 0): a few steps allow for
      // the input's own rounding carried through the operator.
      const double span =
          std::max({1e-3, static_cast<double>(*hi - *lo), std::fabs(static_cast<double>(*lo)), std::fabs(static_cast<double>(*hi))});
      EXPECT_LE(max_abs_difference(actual, expected), 0.04 * span) << "output span " << span;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Ops, Int8OpTest, ::testing::ValuesIn(kOpCases),
                         [](const ::testing::TestParamInfo<const char*>& info) { return std::string(info.param); });

// ---- ONNX int8 (QDQ) for ONNX Runtime, on every single-operator case with a convolution ----
//
// The same calibration as above (16 random inputs, min/max ranges), quantize_onnx_qdq, and ONNX
// Runtime running both the float model and the QDQ model (whose optimizer turns the pattern into
// int8 kernels). Every convolution is accounted for: quantized (per-channel weights, int32 bias,
// a QuantizeLinear/DequantizeLinear pair on its input and output), or listed as float with the
// reason. Two known gaps of this first step stay float (the calibration runs on the converter's
// float lowering, where these tensors do not exist): a convolution whose output a
// BatchNormalization follows (folded into it) and one whose input is a Transpose (absorbed into
// the layout); the test expects exactly that, so closing a gap shows here. The answer must stay
// within 4% of the output's span, the bound the TFLite int8 path meets on the same cases, for one
// quantized convolution; with k quantized convolutions in a chain the independent roundings add
// up, bounded here by 4% x sqrt(k) (small_network, 5 convolutions: measured 4.4%, bound 8.9%).
const std::set<std::string> kConvolutionsLeftFloat = {"conv_batchnorm_folded", "transpose_then_conv"};

onnx::ModelProto parse_onnx(const std::filesystem::path& file) {
  onnx::ModelProto model;
  std::ifstream in(file, std::ios::binary);
  if (!model.ParseFromIstream(&in)) ADD_FAILURE() << "cannot parse " << file;
  return model;
}

// Nodes of type `op_type` in an ONNX file.
std::size_t count_nodes(const std::filesystem::path& file, const std::string& op_type) {
  const onnx::ModelProto model = parse_onnx(file);
  return static_cast<std::size_t>(std::count_if(model.graph().node().begin(), model.graph().node().end(),
                                                [&](const onnx::NodeProto& n) { return n.op_type() == op_type; }));
}

// The Sigmoids of a float model that read a convolution's output: quantized with it (over [0, 1]),
// ONNX Runtime runs them as QLinearSigmoid.
std::size_t sigmoids_after_convolutions(const std::filesystem::path& file) {
  const onnx::ModelProto model = parse_onnx(file);
  std::set<std::string> conv_outputs;
  for (const auto& n : model.graph().node())
    if (n.op_type() == "Conv") conv_outputs.insert(n.output(0));
  return static_cast<std::size_t>(std::count_if(model.graph().node().begin(), model.graph().node().end(), [&](const onnx::NodeProto& n) {
    return n.op_type() == "Sigmoid" && conv_outputs.count(n.input(0));
  }));
}

// The convolutions of a float model that ONNX Runtime can turn into QLinearConv once quantized:
// those whose output, or the output of the Relu that follows, is not a graph output. A graph
// output stays float and exact (onnx_qdq.hpp), so the convolution that makes one keeps a float
// Conv (the single-operator cases' only convolution, mostly).
std::size_t fusable_convolutions(const std::filesystem::path& file) {
  const onnx::ModelProto model = parse_onnx(file);
  std::set<std::string> outputs;
  for (const auto& o : model.graph().output()) outputs.insert(o.name());
  std::map<std::string, std::string> relu_output;
  for (const auto& n : model.graph().node())
    if (n.op_type() == "Relu") relu_output[n.input(0)] = n.output(0);
  return static_cast<std::size_t>(std::count_if(model.graph().node().begin(), model.graph().node().end(), [&](const onnx::NodeProto& n) {
    if (n.op_type() != "Conv" || outputs.count(n.output(0))) return false;
    const auto relu = relu_output.find(n.output(0));
    return relu == relu_output.end() || !outputs.count(relu->second);
  }));
}

class OnnxQdqOpTest : public ::testing::TestWithParam<const char*> {};

TEST_P(OnnxQdqOpTest, QuantizesEveryConvolutionAndStaysWithinQuantizationError) {
  const std::string name = GetParam();
  const nlohmann::json entry = op_cases().at(name);
  if (entry.at("inputs").size() != 1) GTEST_SKIP() << "int8 calibration takes single-input models";
  const auto shape = entry.at("inputs")[0].at("shape").get<std::vector<std::int64_t>>();
  const std::filesystem::path onnx = work_dir() / "converter-ops" / entry.at("file").get<std::string>();

  converter::OnnxQdqOptions options;
  for (std::uint32_t i = 0; i < 16; ++i) options.calibration.samples.push_back(nchw_to_nhwc(random_tensor(shape, 100 + i, -2.0f, 2.0f)));
  options.calibration.method = converter::CalibrationMethod::kMinMax;
  const std::vector<std::uint8_t> bytes = read_bytes(onnx);
  converter::OnnxQdqResult quantized;
  try {
    quantized = converter::quantize_onnx_qdq(bytes, onnx.string(), options);
  } catch (const Error& e) {
    // Operators the float lowering (and so the calibration) does not take: not this test's subject.
    if (e.code() == ErrorCode::kUnsupportedModel) GTEST_SKIP() << e.what();
    throw;
  }
  if (quantized.report.convolutions == 0) GTEST_SKIP() << "no convolution to quantize";
  const converter::OnnxQdqReport& report = quantized.report;
  EXPECT_EQ(report.calibration_samples, 16u);
  EXPECT_EQ(report.quantized_convolutions + report.unquantized.size(), report.convolutions);
  if (kConvolutionsLeftFloat.count(name)) {
    EXPECT_EQ(report.quantized_convolutions, 0u);
    ASSERT_EQ(report.unquantized.size(), 1u);
    EXPECT_NE(report.unquantized[0].find("no calibrated range"), std::string::npos) << report.unquantized[0];
  } else {
    EXPECT_EQ(report.quantized_convolutions, report.convolutions) << (report.unquantized.empty() ? "" : report.unquantized.front());
    EXPECT_GE(report.quantized_activations, 2u);  // at least the input and the output
  }

  const std::filesystem::path qdq = work_dir() / "converter-ops-qdq" / (name + ".onnx");
  std::filesystem::create_directories(qdq.parent_path());
  std::ofstream(qdq, std::ios::binary)
      .write(reinterpret_cast<const char*>(quantized.model.data()), static_cast<std::streamsize>(quantized.model.size()));
  OrtModel reference(onnx);
  const std::filesystem::path optimized = work_dir() / "converter-ops-qdq" / (name + ".optimized.onnx");
  OrtModel model(qdq, optimized);
  // ONNX Runtime must run int8 kernels, not DequantizeLinear feeding a float Conv: every quantized
  // convolution that does not make a graph output becomes a QLinearConv in its optimized graph.
  // (With int8 activations instead of uint8 three of these cases failed here: onnx_qdq.cpp.)
  EXPECT_EQ(count_nodes(optimized, "QLinearConv"), report.quantized_convolutions == 0 ? 0 : fusable_convolutions(onnx));
  EXPECT_EQ(count_nodes(optimized, "QLinearSigmoid"), report.quantized_convolutions == 0 ? 0 : sigmoids_after_convolutions(onnx));
  for (std::uint32_t i = 0; i < 4; ++i) {
    const Tensor input = random_tensor(shape, 100 + i, -2.0f, 2.0f);  // inside the calibrated range
    const std::string input_name = entry.at("inputs")[0].at("name");
    const Tensor expected = reference.run({{input_name, input}}).at(0);
    const Tensor actual = model.run({{input_name, input}}).at(0);
    ASSERT_EQ(actual.shape, expected.shape);
    const auto [lo, hi] = std::minmax_element(expected.data.begin(), expected.data.end());
    const double span =
        std::max({1e-3, static_cast<double>(*hi - *lo), std::fabs(static_cast<double>(*lo)), std::fabs(static_cast<double>(*hi))});
    const double layers = std::max<double>(1, static_cast<double>(report.quantized_convolutions));
    EXPECT_LE(max_abs_difference(actual, expected), 0.04 * std::sqrt(layers) * span) << "output span " << span;
  }
}

INSTANTIATE_TEST_SUITE_P(Ops, OnnxQdqOpTest, ::testing::ValuesIn(kOpCases),
                         [](const ::testing::TestParamInfo<const char*>& info) { return std::string(info.param); });

}  // namespace
}  // namespace dermcds::test
