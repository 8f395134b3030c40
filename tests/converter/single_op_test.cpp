// Every single-operator case of make_op_models.py, converted to fp32 TFLite and run in TFLite
// 2.9 (its own kernels and XNNPACK) against ONNX Runtime on the same random inputs.
#include <fstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "dermcds/converter.hpp"
#include "reference_runners.hpp"
#include "test_support.hpp"

namespace dermcds::test {
namespace {

const char* const kCases[] = {
#include "op_cases.inc"
};

std::filesystem::path op_models_dir() { return work_dir() / "converter-ops"; }

nlohmann::json case_index() {
  std::ifstream in(op_models_dir() / "cases.json");
  if (!in) throw std::runtime_error("no cases.json in " + op_models_dir().string() + " (run the converter.make_op_models fixture)");
  return nlohmann::json::parse(in);
}

class SingleOpTest : public ::testing::TestWithParam<const char*> {};

TEST_P(SingleOpTest, MatchesOnnxRuntime) {
  const std::string name = GetParam();
  const nlohmann::json entry = case_index().at(name);
  const std::filesystem::path onnx_file = op_models_dir() / entry.at("file").get<std::string>();

  std::vector<NamedTensor> inputs;
  std::uint32_t seed = 1;
  for (const auto& spec : entry.at("inputs")) {
    const bool positive = spec.value("positive", false);
    inputs.push_back(
        {spec.at("name"), random_tensor(spec.at("shape").get<std::vector<std::int64_t>>(), seed++, positive ? 0.5f : -2.0f, 2.0f)});
  }
  OrtModel reference(onnx_file);
  const std::vector<Tensor> expected = reference.run(inputs);

  const converter::ConversionResult converted = converter::convert_onnx_file(onnx_file, {});
  std::vector<Tensor> tflite_inputs;
  for (const NamedTensor& in : inputs) tflite_inputs.push_back(in.tensor);

  for (TfliteKernels kernels : {TfliteKernels::kBuiltin, TfliteKernels::kXnnpack}) {
    SCOPED_TRACE(kernels == TfliteKernels::kBuiltin ? "TFLite builtin kernels" : "TFLite XNNPACK");
    const std::vector<Tensor> actual = run_tflite(converted.flatbuffer, tflite_inputs, kernels);
    ASSERT_EQ(actual.size(), expected.size());
    for (std::size_t i = 0; i < actual.size(); ++i) {
      EXPECT_EQ(actual[i].shape, expected[i].shape) << "output " << i;
      EXPECT_LE(tolerance_ratio(actual[i], expected[i], 1e-4, 1e-4), 1.0)
          << "output " << i << ": max |TFLite - ONNX Runtime| = " << max_abs_difference(actual[i], expected[i]);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Ops, SingleOpTest, ::testing::ValuesIn(kCases),
                         [](const ::testing::TestParamInfo<const char*>& info) { return std::string(info.param); });

}  // namespace
}  // namespace dermcds::test
