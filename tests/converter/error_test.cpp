// Inputs the converter must refuse, each with an error that says what is wrong, and no output.
#include <fstream>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "dermcds/converter.hpp"
#include "dermcds/error.hpp"
#include "reference_runners.hpp"
#include "test_support.hpp"

namespace dermcds::test {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;

std::filesystem::path model(const std::string& name) { return work_dir() / "converter-ops" / name; }

// Runs `f`, expects a dermcds::Error with `code` whose message matches `matcher`.
template <typename F, typename M>
void expect_error(F&& f, ErrorCode code, M matcher) {
  try {
    f();
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), code) << e.what();
    EXPECT_THAT(std::string(e.what()), matcher);
  }
}

TEST(ConverterErrors, UnsupportedOperatorNamesNodeAndOp) {
  expect_error([] { converter::convert_onnx_file(model("error_unsupported_op.onnx"), {}); }, ErrorCode::kUnsupportedModel,
               AllOf(HasSubstr("node 'the_erf_node' (Erf)"), HasSubstr("operator Erf is not supported"), HasSubstr("Conv")));
}

// The check after writing: TFLite 2.9 itself refuses the converted model (a 6-D TRANSPOSE), so
// conversion fails naming the operator, and the command line writes nothing.
TEST(ConverterErrors, ModelTfliteCannotRunIsRefusedNamingTheOperator) {
  expect_error([] { converter::convert_onnx_file(model("error_tflite_refuses.onnx"), {}); }, ErrorCode::kUnsupportedModel,
               AllOf(HasSubstr("TensorFlow Lite 2.9"), HasSubstr("cannot run the model converted from"), HasSubstr("TRANSPOSE"),
                     HasSubstr("nothing was written")));
}

// An attribute the operator's schema does not define is refused by the ONNX checker at import
// (a malformed model); an attribute the schema defines but a lowering does not read is refused by
// Attributes::check_all_read (the single-operator error cases above).
TEST(ConverterErrors, UnknownAttributeIsRefusedNotIgnored) {
  expect_error([] { converter::convert_onnx_file(model("error_unknown_attribute.onnx"), {}); }, ErrorCode::kInvalidArgument,
               AllOf(HasSubstr("keep_names"), HasSubstr("Squeeze")));
}

TEST(ConverterErrors, UnsupportedAttributeValueNamesNode) {
  expect_error([] { converter::convert_onnx_file(model("error_unsupported_attribute.onnx"), {}); }, ErrorCode::kUnsupportedModel,
               AllOf(HasSubstr("(Pad)"), HasSubstr("pad mode 'edge' is not supported")));
}

TEST(ConverterErrors, UsedMaxPoolIndicesAreRefused) {
  expect_error([] { converter::convert_onnx_file(model("error_maxpool_indices.onnx"), {}); }, ErrorCode::kUnsupportedModel,
               AllOf(HasSubstr("(MaxPool)"), HasSubstr("Indices output")));
}

TEST(ConverterErrors, OneDimensionalConvolutionIsRefused) {
  expect_error([] { converter::convert_onnx_file(model("error_conv1d.onnx"), {}); }, ErrorCode::kUnsupportedModel,
               AllOf(HasSubstr("(Conv)"), HasSubstr("2-D convolutions")));
}

// A stride of 0 divided by zero inside ONNX's own shape inference (a fuzz finding); the import
// refuses it before inference runs.
TEST(ConverterErrors, ZeroStrideIsRefusedBeforeShapeInference) {
  expect_error([] { converter::convert_onnx_file(model("error_zero_stride.onnx"), {}); }, ErrorCode::kInvalidArgument,
               AllOf(HasSubstr("node 'the_conv' (Conv)"), HasSubstr("strides holds 0"), HasSubstr("at least 1")));
}

TEST(ConverterErrors, ControlFlowIsRefused) {
  expect_error([] { converter::convert_onnx_file(model("error_control_flow.onnx"), {}); }, ErrorCode::kUnsupportedModel,
               AllOf(HasSubstr("node 'the_if' (If)"), HasSubstr("subgraph"), HasSubstr("no control flow")));
}

TEST(ConverterErrors, DynamicSpatialDimensionIsRefused) {
  expect_error([] { converter::convert_onnx_file(model("error_dynamic_height.onnx"), {}); }, ErrorCode::kUnsupportedModel,
               AllOf(HasSubstr("input 'x'"), HasSubstr("dynamic dimension at axis 2"), HasSubstr("'height'")));
}

TEST(ConverterErrors, OpsetOutsideRangeIsRefused) {
  expect_error([] { converter::convert_onnx_file(model("error_opset9.onnx"), {}); }, ErrorCode::kUnsupportedModel,
               AllOf(HasSubstr("opset 9"), HasSubstr("11-17")));
}

TEST(ConverterErrors, ExternalDataIsRefused) {
  expect_error([] { converter::convert_onnx_file(model("error_external_data.onnx"), {}); }, ErrorCode::kUnsupportedModel,
               HasSubstr("external file"));
}

TEST(ConverterErrors, TruncatedModelIsRefused) {
  expect_error([] { converter::convert_onnx_file(model("error_truncated.onnx"), {}); }, ErrorCode::kInvalidArgument,
               AllOf(HasSubstr("error_truncated.onnx"), HasSubstr("not a valid ONNX model")));
}

TEST(ConverterErrors, EveryTruncationOfAValidModelIsRefusedCleanly) {
  // Cut a valid model at many lengths: each must parse-fail, or be rejected by the checker or
  // shape inference; never crash, never convert a model with missing parts.
  const std::vector<std::uint8_t> full = read_bytes(model("valid_conv.onnx"));
  ASSERT_NO_THROW(converter::convert_onnx(full, "valid_conv.onnx", {}));
  for (std::size_t cut = 0; cut < full.size(); cut += std::max<std::size_t>(1, full.size() / 97)) {
    const std::vector<std::uint8_t> part(full.begin(), full.begin() + static_cast<std::ptrdiff_t>(cut));
    try {
      converter::convert_onnx(part, "cut", {});
      ADD_FAILURE() << "a model cut at " << cut << " of " << full.size() << " bytes converted";
    } catch (const Error& e) {
      EXPECT_TRUE(e.code() == ErrorCode::kInvalidArgument || e.code() == ErrorCode::kUnsupportedModel) << cut << ": " << e.what();
    }
  }
}

TEST(ConverterErrors, GarbageAndEmptyFilesAreRefused) {
  expect_error([] { converter::convert_onnx_file(model("error_garbage.onnx"), {}); }, ErrorCode::kInvalidArgument, HasSubstr("ONNX"));
  expect_error([] { converter::convert_onnx(std::vector<std::uint8_t>{}, "empty.onnx", {}); }, ErrorCode::kInvalidArgument,
               HasSubstr("empty"));
  expect_error([] { converter::convert_onnx_file(work_dir() / "no-such-model.onnx", {}); }, ErrorCode::kNotFound,
               HasSubstr("no-such-model"));
}

TEST(ConverterErrors, Int8NeedsCalibrationSamples) {
  converter::ConvertOptions options;
  options.precision = converter::Precision::kInt8;
  expect_error([&] { converter::convert_onnx_file(model("valid_conv.onnx"), options); }, ErrorCode::kInvalidArgument,
               HasSubstr("calibration"));
  converter::ConvertOptions io;
  io.int8_io = true;
  expect_error([&] { converter::convert_onnx_file(model("valid_conv.onnx"), io); }, ErrorCode::kInvalidArgument, HasSubstr("int8"));
}

TEST(ConverterErrors, CalibrationSamplesOfTheWrongShapeAreRefused) {
  converter::ConvertOptions options;
  options.precision = converter::Precision::kInt8;
  options.calibration.samples.push_back(random_tensor({1, 8, 8, 3}, 1, -1, 1));
  options.calibration.samples.push_back(random_tensor({1, 9, 8, 3}, 2, -1, 1));
  expect_error([&] { converter::convert_onnx_file(model("valid_conv.onnx"), options); }, ErrorCode::kInvalidArgument,
               AllOf(HasSubstr("calibration sample 1"), HasSubstr("shape")));
}

TEST(ConverterErrors, WrongCalibrationDirectoriesAreRefused) {
  TemporaryDirectory dir;
  const InputSpec spec;
  expect_error([&] { converter::load_calibration_images(dir.path() / "missing", spec); }, ErrorCode::kNotFound,
               HasSubstr("does not exist"));
  expect_error([&] { converter::load_calibration_images(dir.path(), spec); }, ErrorCode::kInvalidArgument,
               HasSubstr("no JPEG or PNG images"));
  std::ofstream(dir.path() / "notes.txt") << "not an image";
  expect_error([&] { converter::load_calibration_images(dir.path(), spec); }, ErrorCode::kInvalidArgument,
               HasSubstr("no JPEG or PNG images"));
  expect_error([&] { converter::load_calibration_images(dir.path() / "notes.txt", spec); }, ErrorCode::kInvalidArgument,
               HasSubstr("not a directory"));
  std::ofstream(dir.path() / "broken.jpg") << "JFIF? no";
  expect_error([&] { converter::load_calibration_images(dir.path(), spec); }, ErrorCode::kInvalidArgument,
               AllOf(HasSubstr("broken.jpg"), HasSubstr("cannot be used")));
}

TEST(ConverterErrors, CalibrationSetIsIdentifiedByItsContents) {
  TemporaryDirectory dir;
  const std::vector<std::filesystem::path> photos = real_photographs();
  std::filesystem::copy_file(photos[1], dir.path() / "a.png");
  std::filesystem::copy_file(photos[2], dir.path() / "b.png");
  const InputSpec spec;
  const converter::CalibrationSet first = converter::load_calibration_images(dir.path(), spec);
  EXPECT_EQ(first.samples.size(), 2u);
  EXPECT_EQ(first.samples[0].shape, (std::vector<std::int64_t>{1, 224, 224, 3}));
  EXPECT_EQ(first.sha256.size(), 64u);
  EXPECT_EQ(converter::load_calibration_images(dir.path(), spec).sha256, first.sha256);
  EXPECT_EQ(converter::load_calibration_images(dir.path(), spec, 1).samples.size(), 1u);
  std::filesystem::copy_file(photos[3], dir.path() / "c.jpg");
  EXPECT_NE(converter::load_calibration_images(dir.path(), spec).sha256, first.sha256);
}

TEST(ConverterErrors, FailedWriteLeavesNoFile) {
  TemporaryDirectory dir;
  const std::vector<std::uint8_t> bytes(1000, 7);
  // A missing directory is ENOENT, which the core's errno translation names kNotFound (error.hpp).
  expect_error([&] { converter::write_file_atomically(dir.path() / "missing-dir" / "model.tflite", bytes); }, ErrorCode::kNotFound,
               HasSubstr("model.tflite"));
  // A successful write replaces the target whole and leaves no temporary file behind.
  converter::write_file_atomically(dir.path() / "model.tflite", bytes);
  converter::write_file_atomically(dir.path() / "model.tflite", std::vector<std::uint8_t>(10, 1));
  EXPECT_EQ(std::filesystem::file_size(dir.path() / "model.tflite"), 10u);
  std::size_t files = 0;
  for ([[maybe_unused]] const auto& entry : std::filesystem::directory_iterator(dir.path())) ++files;
  EXPECT_EQ(files, 1u);
}

TEST(ConverterErrors, ParsesPrecisionAndMethodNames) {
  EXPECT_EQ(converter::parse_precision("fp16"), converter::Precision::kFp16);
  EXPECT_EQ(converter::parse_calibration_method("mse"), converter::CalibrationMethod::kMse);
  expect_error([] { converter::parse_precision("int4"); }, ErrorCode::kInvalidArgument, HasSubstr("int4"));
  expect_error([] { converter::parse_calibration_method("kl"); }, ErrorCode::kInvalidArgument, HasSubstr("kl"));
}

}  // namespace
}  // namespace dermcds::test
