// torchvision classifiers exported to ONNX (batch-norm statistics recomputed on synthetic lesion
// images, so outputs depend on the input), converted to TFLite fp32 and fp16, and compared with
// ONNX Runtime on real photographs and synthetic lesion images preprocessed by the core.
//
// Bounds: max |p_tflite - p_onnxruntime| over all classes and images is at most 1e-4 for fp32
// and 2e-3 for fp16 (the figures).
//
// fp16 is checked twice. Against ONNX Runtime on the original model, the 2e-3 bound is asserted on
// the demo-trained MobileNetV3-Large and EfficientNet-B4 (docs/converter.md: not met by every
// MobileNetV3 checkpoint yet); the other networks have random weights, and such networks
// amplify any perturbation of their weights (their fp32 logits already differ between ONNX Runtime
// and TFLite by 1e-3 of their magnitude from summation order alone), so float16's rounding of
// each weight moves their probabilities by up to 2e-2: a property of the network, reported, not
// asserted. The conversion itself is checked exactly on every network: export_classifiers.py
// writes each model again with its large weights rounded through float16 (what the fp16 conversion
// stores), and ONNX Runtime on that file must agree with the fp16 TFLite model as closely as fp32
// agrees with the original.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "classifier_inputs.hpp"
#include "dermcds/converter.hpp"
#include "reference_runners.hpp"
#include "test_support.hpp"

namespace dermcds::test {
namespace {

struct Architecture {
  const char* name;
  int size;
  int resize;
  bool trained;  // demo weights (see export_classifiers.py)
};

#ifdef DERMCDS_SLOW_CLASSIFIERS
const Architecture kArchitectures[] = {{"efficientnet_b4", 380, 384, true}};
#else
const Architecture kArchitectures[] = {
    {"mobilenet_v3_large", 224, 256, true}, {"mobilenet_v3_small", 224, 256, false}, {"mobilenet_v2", 224, 256, false},
    {"resnet18", 224, 256, false},          {"efficientnet_b0", 224, 256, false},
};
#endif

struct Comparison {
  double max_probability_difference = 0;
  double max_logit_difference = 0;
  double max_abs_logit = 0;     // of the reference
  double reference_spread = 0;  // largest change of any class probability between inputs (ONNX Runtime)
  std::size_t top1_agreements = 0;
  std::size_t images = 0;
};

class ClassifierTest : public ::testing::TestWithParam<Architecture> {
 protected:
  static std::filesystem::path model_file(const Architecture& a) {
    return work_dir() / "converter-classifiers" / (std::string(a.name) + ".onnx");
  }

  static std::vector<PreparedInput> inputs(const Architecture& a) {
    InputSpec spec;
    spec.crop_size = a.size;
    spec.resize_size = a.resize;
    std::vector<std::filesystem::path> images = real_photographs();
    for (const auto& lesion : images_in(work_dir() / "converter-lesions", 8)) images.push_back(lesion);
    return prepare_inputs(images, spec);
  }

  static std::filesystem::path fp16_weights_file(const Architecture& a) {
    return work_dir() / "converter-classifiers" / (std::string(a.name) + ".fp16-weights.onnx");
  }

  // `reference_onnx`: the model ONNX Runtime runs (default: the converted one).
  static Comparison compare(const Architecture& a, converter::Precision precision, std::filesystem::path reference_onnx = {}) {
    const std::filesystem::path onnx = model_file(a);
    if (reference_onnx.empty()) reference_onnx = onnx;
    if (!std::filesystem::exists(onnx)) throw std::runtime_error(onnx.string() + " is missing (fixture converter_classifiers)");
    converter::ConvertOptions options;
    options.precision = precision;
    const converter::ConversionResult converted = converter::convert_onnx_file(onnx, options);
    OrtModel reference(reference_onnx);
    TfliteModel model(converted.flatbuffer, TfliteKernels::kXnnpack, 2);

    Comparison c;
    std::vector<std::vector<float>> reference_probabilities;
    for (const PreparedInput& in : inputs(a)) {
      const Tensor expected = reference.run({{"image", in.nchw}}).at(0);
      const Tensor actual = model.run({in.nchw}).at(0);
      const std::vector<float> p = probabilities(expected), q = probabilities(actual);
      c.max_logit_difference = std::max(c.max_logit_difference, max_abs_difference(actual, expected));
      for (float v : expected.data) c.max_abs_logit = std::max(c.max_abs_logit, std::fabs(static_cast<double>(v)));
      for (std::size_t k = 0; k < p.size(); ++k)
        c.max_probability_difference = std::max(c.max_probability_difference, std::fabs(static_cast<double>(p[k]) - q[k]));
      const auto top = [](const std::vector<float>& v) { return std::max_element(v.begin(), v.end()) - v.begin(); };
      c.top1_agreements += top(p) == top(q);
      for (const auto& other : reference_probabilities)
        for (std::size_t k = 0; k < p.size(); ++k)
          c.reference_spread = std::max(c.reference_spread, std::fabs(static_cast<double>(p[k]) - other[k]));
      reference_probabilities.push_back(p);
      ++c.images;
    }
    std::printf(
        "%s %s: %zu images, max |dp| %.3g, max |dlogit| %.3g (max |logit| %.3g), top-1 agreement %zu/%zu, reference spread %.3f, "
        "%zu bytes\n",
        a.name, std::string(converter::to_string(precision)).c_str(), c.images, c.max_probability_difference, c.max_logit_difference,
        c.max_abs_logit, c.top1_agreements, c.images, c.reference_spread, converted.flatbuffer.size());
    return c;
  }
};

TEST_P(ClassifierTest, Fp32MatchesOnnxRuntime) {
  const Comparison c = compare(GetParam(), converter::Precision::kFp32);
  EXPECT_GE(c.images, 10u);
  // An untrained network answers the same for every image; the comparison would prove nothing.
  EXPECT_GT(c.reference_spread, 0.01) << "the reference model's outputs barely depend on the input";
  EXPECT_LE(c.max_probability_difference, 1e-4);
  EXPECT_EQ(c.top1_agreements, c.images);
}

TEST_P(ClassifierTest, Fp16MatchesOnnxRuntime) {
  const Comparison c = compare(GetParam(), converter::Precision::kFp16);
  EXPECT_GT(c.reference_spread, 0.01);
  if (GetParam().trained) {
    EXPECT_LE(c.max_probability_difference, 2e-3);
    EXPECT_EQ(c.top1_agreements, c.images);
  }
}

TEST_P(ClassifierTest, Fp16MatchesOnnxRuntimeOnTheSameRoundedWeights) {
  const Comparison c = compare(GetParam(), converter::Precision::kFp16, fp16_weights_file(GetParam()));
  EXPECT_LE(c.max_probability_difference, 1e-4);
  EXPECT_EQ(c.top1_agreements, c.images);
}

TEST_P(ClassifierTest, Fp16FileIsAboutHalfTheSize) {
  converter::ConvertOptions fp16;
  fp16.precision = converter::Precision::kFp16;
  const auto full = converter::convert_onnx_file(model_file(GetParam()), {});
  const auto half = converter::convert_onnx_file(model_file(GetParam()), fp16);
  const double ratio = static_cast<double>(half.flatbuffer.size()) / static_cast<double>(full.flatbuffer.size());
  std::printf("%s: fp32 %zu bytes, fp16 %zu bytes (%.3f)\n", GetParam().name, full.flatbuffer.size(), half.flatbuffer.size(), ratio);
  EXPECT_GT(ratio, 0.45);
  EXPECT_LT(ratio, 0.55);
}

INSTANTIATE_TEST_SUITE_P(Classifiers, ClassifierTest, ::testing::ValuesIn(kArchitectures),
                         [](const ::testing::TestParamInfo<Architecture>& info) { return std::string(info.param.name); });

}  // namespace
}  // namespace dermcds::test
