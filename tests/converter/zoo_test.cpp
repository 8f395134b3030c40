// The converter's zoo: small variants of torchvision classifiers of every family (export_zoo.py:
// ResNet, ResNeXt, RegNet X/Y, DenseNet, MobileNetV3, EfficientNet V1/V2, SqueezeNet,
// ShuffleNetV2, MNASNet, GoogLeNet, ConvNeXt, ViT, Swin), each exported at opsets 17 and 13,
// converted at fp32 and fp16 and run by TensorFlow Lite (XNNPACK) against ONNX Runtime on the
// same inputs.
//
// Bounds: max |p_tflite - p_onnxruntime| <= 1e-4 at fp32, on probabilities that depend on the
// input (a vacuous network would pass anything). fp16 is asserted against ONNX Runtime on the
// model with its weights rounded through float16 (what the fp16 artifact stores), which isolates
// the conversion: <= 1e-4 there too. Issue 15's 2e-3 against the original weights is printed,
// not asserted: these random-weight networks miss it through float16's rounding of their
// weights, not through the conversion (docs/converter.md, "The zoo").
// Delegation: every operator XNNPACK 2.9 implements must be delegated. What stays on TFLite's own
// kernels must be one of the operators TFLite 2.9's XNNPACK delegate has no implementation of
// (kXnnpack29Lacks; docs/converter.md), so a mis-encoded operator the delegate would refuse
// fails here; networks free of them must run fully delegated.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <ostream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "classifier_inputs.hpp"
#include "dermcds/converter.hpp"
#include "reference_runners.hpp"
#include "test_support.hpp"

namespace dermcds::test {
namespace {

struct ZooCase {
  std::string network;
  int side = 0;
  int opset = 0;
};

// "name side" lines from export_zoo.py --list, read when CMake configures (zoo_cases.inc).
const char* const kZooList[] = {
#include "zoo_cases.inc"
};

std::vector<ZooCase> zoo_cases() {
  std::vector<ZooCase> cases;
  for (const char* line : kZooList) {
    std::istringstream in(line);
    ZooCase c;
    in >> c.network >> c.side;
    for (int opset : {17, 13}) {
      c.opset = opset;
      cases.push_back(c);
    }
  }
  return cases;
}

void PrintTo(const ZooCase& c, std::ostream* os) { *os << c.network << " opset " << c.opset; }

std::filesystem::path zoo_dir() { return work_dir() / "converter-zoo"; }

std::string stem(const ZooCase& c) { return c.network + ".opset" + std::to_string(c.opset); }

// TFLite operators the XNNPACK delegate of TF 2.9 does not take (those the converter writes):
// concatenation, split and strided slice (DenseNet, Inception, SqueezeNet, grouped convolutions,
// channel shuffles), TRANSPOSE (channel shuffle, attention heads), PADV2, GELU, BATCH_MATMUL
// (attention), and MEAN over anything but height and width (layer normalization).
const std::set<std::string> kXnnpack29Lacks = {"CONCATENATION", "SPLIT", "SPLIT_V",      "STRIDED_SLICE", "TRANSPOSE",
                                               "PADV2",         "GELU",  "BATCH_MATMUL", "MEAN"};

struct Measured {
  double max_dp = 0;
  double spread = 0;  // largest change of a reference probability between inputs
  std::size_t inputs = 0;
  converter::ConversionReport report;
};

Measured compare(const ZooCase& c, converter::Precision precision, const std::filesystem::path& reference_file) {
  const std::filesystem::path onnx = zoo_dir() / (stem(c) + ".onnx");
  converter::ConvertOptions options;
  options.precision = precision;
  const converter::ConversionResult converted = converter::convert_onnx_file(onnx, options);
  OrtModel reference(reference_file);
  TfliteModel model(converted.flatbuffer, TfliteKernels::kXnnpack, 1);
  Measured m;
  m.report = converted.report;
  std::vector<std::vector<float>> seen;
  for (std::uint32_t seed = 1; seed <= 4; ++seed) {
    const Tensor image = random_tensor({1, 3, c.side, c.side}, seed, -2.0F, 2.0F);
    const std::vector<float> p = probabilities(reference.run({{"image", image}}).at(0));
    const std::vector<float> q = probabilities(model.run({image}).at(0));
    for (std::size_t k = 0; k < p.size(); ++k) m.max_dp = std::max(m.max_dp, std::fabs(static_cast<double>(p[k]) - q[k]));
    for (const auto& other : seen)
      for (std::size_t k = 0; k < p.size(); ++k) m.spread = std::max(m.spread, std::fabs(static_cast<double>(p[k]) - other[k]));
    seen.push_back(p);
    ++m.inputs;
  }
  std::string undelegated;
  for (const auto& [op, count] : m.report.xnnpack_undelegated) undelegated += " " + op + "x" + std::to_string(count);
  std::printf("zoo %s %s: max |dp| %.3g, reference spread %.3f, %zu TFLite operators, undelegated:%s\n", stem(c).c_str(),
              std::string(converter::to_string(precision)).c_str(), m.max_dp, m.spread, m.report.tflite_operators,
              undelegated.empty() ? " none" : undelegated.c_str());
  return m;
}

class ZooTest : public ::testing::TestWithParam<ZooCase> {
 protected:
  void SetUp() override {
    const std::filesystem::path failed = zoo_dir() / (stem(GetParam()) + ".failed");
    if (std::filesystem::exists(failed)) {
      std::ifstream in(failed);
      std::stringstream text;
      text << in.rdbuf();
      FAIL() << "torch.onnx could not export " << stem(GetParam()) << ": " << text.str();
    }
    ASSERT_TRUE(std::filesystem::exists(onnx())) << onnx() << " is missing (fixture converter_zoo)";
  }
  std::filesystem::path onnx() const { return zoo_dir() / (stem(GetParam()) + ".onnx"); }
};

TEST_P(ZooTest, Fp32MatchesOnnxRuntimeAndXnnpackTakesAllItImplements) {
  const Measured m = compare(GetParam(), converter::Precision::kFp32, onnx());
  EXPECT_GT(m.spread, 0.02) << "the reference's outputs barely depend on the input";
  EXPECT_LE(m.max_dp, 1e-4);
  EXPECT_FALSE(m.report.verified_with.empty());
  for (const auto& [op, count] : m.report.xnnpack_undelegated)
    EXPECT_TRUE(kXnnpack29Lacks.count(op)) << count << " " << op << " left on TFLite's own kernels, which XNNPACK 2.9 implements";
}

TEST_P(ZooTest, Fp16MatchesOnnxRuntime) {
  // Against the original weights the figure is printed, not asserted: these networks have random
  // weights, which amplify float16's rounding of each weight far more than a trained network does
  // (docs/converter.md: the trained MobileNetV3-Large moves by 3.8e-4; converter_classifier_tests
  // asserts 2e-3 on it). The conversion itself is asserted exactly, on the same rounded weights.
  const Measured m = compare(GetParam(), converter::Precision::kFp16, onnx());
  EXPECT_GT(m.spread, 0.02);
  const Measured exact = compare(GetParam(), converter::Precision::kFp16, zoo_dir() / (stem(GetParam()) + ".fp16-weights.onnx"));
  EXPECT_LE(exact.max_dp, 1e-4) << "against ONNX Runtime on the same float16-rounded weights";
}

INSTANTIATE_TEST_SUITE_P(Zoo, ZooTest, ::testing::ValuesIn(zoo_cases()), [](const ::testing::TestParamInfo<ZooCase>& info) {
  return info.param.network + "_opset" + std::to_string(info.param.opset);
});

}  // namespace
}  // namespace dermcds::test
