// The TensorFlow Lite backend behind dermcds::Classifier, on a model package that the converter
// fills with fp32, fp16 and int8 artifacts (the demo-trained MobileNetV3-Large exported by the Python
// pipeline: random networks amplify float16 rounding, docs/converter.md).
// ONNX Runtime on the package's ONNX artifact is the reference.
#include <algorithm>
#include <cmath>
#include <fstream>
#include <set>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <tensorflow/lite/c/c_api.h>
#include <nlohmann/json.hpp>

#include "dermcds/classifier.hpp"
#include "dermcds/converter.hpp"
#include "dermcds/error.hpp"
#include "dermcds/file_bytes.hpp"
#include "dermcds/manifest.hpp"
#include "dermcds/sha256.hpp"
#include "test_support.hpp"

namespace dermcds::test {
namespace {

using ::testing::HasSubstr;

std::filesystem::path packages() { return work_dir() / "tflite-packages"; }
std::filesystem::path full_package() { return packages() / "derm-tflite-test" / "1"; }
std::filesystem::path int8_io_package() { return packages() / "derm-tflite-int8io" / "1"; }
std::filesystem::path tflite_only_package() { return packages() / "derm-tflite-only" / "1"; }

constexpr std::size_t kCalibrationImages = 32;

nlohmann::json manifest_for(const std::string& name, const std::filesystem::path& onnx) {
  nlohmann::json labels = nlohmann::json::array();
  for (const auto& [code, label] : std::vector<std::pair<std::string, std::string>>{{"MEL", "Melanoma"},
                                                                                    {"NV", "Melanocytic nevus"},
                                                                                    {"BCC", "Basal cell carcinoma"},
                                                                                    {"AK", "Actinic keratosis"},
                                                                                    {"BKL", "Benign keratosis"},
                                                                                    {"DF", "Dermatofibroma"},
                                                                                    {"VASC", "Vascular lesion"},
                                                                                    {"SCC", "Squamous cell carcinoma"}})
    labels.push_back({{"code", code}, {"name", label}});
  return {
      {"format", "dermcds-model-package"},
      {"format_version", 1},
      {"name", name},
      {"version", "1"},
      {"architecture", "mobilenet_v3_large"},
      {"input",
       {{"name", "image"},
        {"layout", "NCHW"},
        {"color", "RGB"},
        {"size", 224},
        {"resize", {{"policy", "shorter_side_then_center_crop"}, {"shorter_side", 256}, {"interpolation", "bilinear"}}},
        {"scale", 255},
        {"mean", {0.485, 0.456, 0.406}},
        {"std", {0.229, 0.224, 0.225}}}},
      {"output", {{"name", "logits"}, {"kind", "logits"}}},
      {"labels", labels},
      {"triage",
       {{"rules",
         {{{"tier", "urgent_referral"}, {"classes", {"MEL", "BCC", "SCC"}}, {"threshold", 0.30}},
          {{"tier", "dermatology_review"}, {"classes", {"MEL", "BCC", "SCC", "AK"}}, {"threshold", 0.15}}}},
        {"default_tier", "routine"}}},
      {"artifacts",
       {{{"runtime", "onnxruntime"},
         {"precision", "fp32"},
         {"file", "model.onnx"},
         {"sha256", sha256_file_hex(onnx)},
         {"bytes", std::filesystem::file_size(onnx)},
         {"layout", "NCHW"}}}},
  };
}

void make_package(const std::filesystem::path& dir, const std::string& name) {
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  std::filesystem::copy_file(work_dir() / "converter-classifiers" / "mobilenet_v3_large.onnx", dir / "model.onnx");
  write_manifest(dir, manifest_for(name, dir / "model.onnx"));
}

// The packages every test below reads, made once by the ctest fixture tflite.make_packages (this
// binary with --gtest_also_run_disabled_tests --gtest_filter=TflitePackages.DISABLED_Make): ctest
// runs each test in a process of its own, two at a time, so none of them may write these.
void make_packages() {
  std::filesystem::remove_all(tflite_only_package());  // the completion mark, until the end
  make_package(full_package(), "derm-tflite-test");
  for (const char* precision : {"fp32", "fp16", "int8"}) {
    converter::PackageConversion c;
    c.package_dir = full_package();
    c.precision = converter::parse_precision(precision);
    c.calibration_dir = work_dir() / "converter-calibration";
    // int8 on a subset (its search is slow); fp16 on all 100: its selection needs the images
    // near a decision boundary that a small subset may lack (docs/converter.md, "fp16").
    c.calibration_limit = c.precision == converter::Precision::kInt8 ? kCalibrationImages : 0;
    if (c.precision == converter::Precision::kFp32) c.calibration_dir.clear();
    converter::convert_package(c);
  }
  make_package(int8_io_package(), "derm-tflite-int8io");
  converter::PackageConversion io;
  io.package_dir = int8_io_package();
  io.precision = converter::Precision::kInt8;
  io.int8_io = true;
  io.calibration_dir = work_dir() / "converter-calibration";
  io.calibration_limit = kCalibrationImages;
  converter::convert_package(io);

  // A package with nothing but a TFLite artifact, as a phone would get it.
  std::filesystem::remove_all(tflite_only_package());
  std::filesystem::create_directories(tflite_only_package());
  std::filesystem::copy_file(full_package() / "model_fp32.tflite", tflite_only_package() / "model_fp32.tflite");
  nlohmann::json m = read_manifest(full_package()).document;
  m["name"] = "derm-tflite-only";
  nlohmann::json only = nlohmann::json::array();
  for (const auto& a : m["artifacts"])
    if (a["runtime"] == "tflite" && a["precision"] == "fp32") only.push_back(a);
  m["artifacts"] = only;
  write_manifest(tflite_only_package(), m);
}

TEST(TflitePackages, DISABLED_Make) { make_packages(); }

class TfliteBackendTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // The package made last: its presence means the fixture completed.
    ASSERT_TRUE(std::filesystem::exists(tflite_only_package() / "manifest.json"))
        << tflite_only_package() << " is missing: run through ctest (fixture tflite_packages)";
  }

  static std::vector<std::vector<std::uint8_t>> images() {
    std::vector<std::vector<std::uint8_t>> out;
    for (const auto& p : real_photographs()) out.push_back(read_file_bytes(p));
    std::size_t lesions = 0;
    for (const auto& entry : std::filesystem::directory_iterator(work_dir() / "converter-heldout")) {
      if (entry.path().extension() != ".png" || lesions++ >= 6) continue;
      out.push_back(read_file_bytes(entry.path()));
    }
    return out;
  }

  static std::unique_ptr<Classifier> open(const std::filesystem::path& package, const std::string& runtime, const std::string& precision,
                                          const std::string& provider = "auto", int threads = 0) {
    ClassifierOptions o;
    o.package = package;
    o.runtime = runtime;
    o.precision = precision;
    o.execution.provider = provider;
    o.execution.threads = threads;
    return Classifier::create(o);
  }

  // mean |p - q| over every class of the held-out lesions.
  static double mean_difference_on_lesions(const Classifier& a, const Classifier& b) {
    double total = 0;
    std::size_t values = 0;
    for (const auto& entry : std::filesystem::directory_iterator(work_dir() / "converter-heldout")) {
      if (entry.path().extension() != ".png") continue;
      const std::vector<std::uint8_t> image = read_file_bytes(entry.path());
      const ClassificationResult x = a.classify(image), y = b.classify(image);
      for (std::size_t k = 0; k < x.probabilities.size(); ++k, ++values)
        total += std::fabs(static_cast<double>(x.probabilities[k]) - y.probabilities[k]);
    }
    return values ? total / static_cast<double>(values) : 1.0;
  }

  // max |p - q| over every class of every image.
  static double max_difference(const Classifier& a, const Classifier& b) {
    double worst = 0;
    for (const auto& image : images()) {
      const ClassificationResult x = a.classify(image), y = b.classify(image);
      for (std::size_t k = 0; k < x.probabilities.size(); ++k)
        worst = std::max(worst, std::fabs(static_cast<double>(x.probabilities[k]) - y.probabilities[k]));
    }
    return worst;
  }
};

TEST_F(TfliteBackendTest, RuntimeIsCompiledIn) {
  const RuntimeDescriptor* tflite = find_runtime("tflite");
  ASSERT_NE(tflite, nullptr);
  EXPECT_TRUE(tflite->available());
  EXPECT_EQ(tflite->version(), "2.9.0");
}

TEST_F(TfliteBackendTest, ManifestRecordsEveryConversion) {
  const ModelPackage package = ModelPackage::open(full_package());  // verifies every sha256
  const Manifest& m = package.manifest();
  const std::string onnx_sha = sha256_file_hex(full_package() / "model.onnx");
  for (const char* precision : {"fp32", "fp16", "int8"}) {
    const ArtifactEntry* a = m.find_artifact("tflite", precision);
    ASSERT_NE(a, nullptr) << precision;
    EXPECT_EQ(a->file, std::string("model_") + precision + ".tflite");
    EXPECT_EQ(a->layout, TensorLayout::kNHWC);
    EXPECT_EQ(a->sha256, sha256_file_hex(full_package() / a->file));
    EXPECT_EQ(a->bytes, std::filesystem::file_size(full_package() / a->file));
    EXPECT_EQ(a->details.at("source").at("file"), "model.onnx");
    EXPECT_EQ(a->details.at("source").at("sha256"), onnx_sha);
  }
  const nlohmann::json calibration = m.find_artifact("tflite", "int8")->details.at("calibration");
  EXPECT_EQ(calibration.at("images"), kCalibrationImages);
  EXPECT_EQ(calibration.at("method"), "mse");
  EXPECT_EQ(calibration.at("sha256").get<std::string>().size(), 64u);
  EXPECT_EQ(m.find_artifact("tflite", "fp32")->details.count("calibration"), 0u);
  // fp16 measured on the same images which weights stay float32 (docs/converter.md, "fp16").
  const nlohmann::json& fp16 = m.find_artifact("tflite", "fp16")->details;
  EXPECT_GE(fp16.at("calibration").at("images").get<std::size_t>(), 100u);
  EXPECT_EQ(fp16.at("calibration").at("sha256").get<std::string>().size(), 64u);
  const nlohmann::json& float16 = fp16.at("float16");
  EXPECT_TRUE(float16.at("goal_met_on_calibration").get<bool>()) << float16.dump();
  EXPECT_LE(float16.at("chosen_max_abs_diff_on_calibration").get<double>(), float16.at("goal").at("max_abs_diff").get<double>());
  EXPECT_LE(float16.at("chosen_max_abs_diff_on_calibration").get<double>(),
            float16.at("all_rounded_max_abs_diff_on_calibration").get<double>());
  // fp16 halves the file; int8 quarters it.
  EXPECT_LT(m.find_artifact("tflite", "fp16")->bytes, m.find_artifact("tflite", "fp32")->bytes * 6 / 10);
  EXPECT_LT(m.find_artifact("tflite", "int8")->bytes, m.find_artifact("tflite", "fp32")->bytes * 35 / 100);
}

TEST_F(TfliteBackendTest, ReconvertingReplacesTheArtifactEntry) {
  TemporaryDirectory tmp;  // a private copy: other tests read the shared package meanwhile
  const std::filesystem::path copy = tmp.path() / "derm-tflite-test" / "1";
  std::filesystem::create_directories(copy.parent_path());
  std::filesystem::copy(full_package(), copy, std::filesystem::copy_options::recursive);
  converter::PackageConversion c;
  c.package_dir = copy;
  c.precision = converter::Precision::kFp32;
  converter::convert_package(c);
  const Manifest m = read_manifest(copy);
  EXPECT_EQ(std::count_if(m.artifacts.begin(), m.artifacts.end(),
                          [](const ArtifactEntry& a) { return a.runtime == "tflite" && a.precision == "fp32"; }),
            1);
  EXPECT_EQ(m.artifacts.size(), 4u);
}

TEST_F(TfliteBackendTest, Fp32MatchesOnnxRuntimeAndNamesWhatRan) {
  const auto tflite = open(full_package(), "tflite", "fp32");
  const auto ort = open(full_package(), "onnxruntime", "fp32");
  EXPECT_LE(max_difference(*tflite, *ort), 1e-4);
  const ClassificationResult r = tflite->classify(images().front());
  EXPECT_EQ(r.runtime, "tflite");
  EXPECT_EQ(r.runtime_version, "2.9.0");
  EXPECT_EQ(r.provider, "xnnpack");
  EXPECT_EQ(r.precision, "fp32");
  EXPECT_TRUE(r.fallbacks.empty());
  EXPECT_EQ(tflite->input_layout(), TensorLayout::kNHWC);
}

TEST_F(TfliteBackendTest, OutputsDependOnTheImage) {
  const auto tflite = open(full_package(), "tflite", "fp32");
  const auto all = images();
  const ClassificationResult first = tflite->classify(all.front());
  double spread = 0;
  for (const auto& image : all) {
    const ClassificationResult r = tflite->classify(image);
    for (std::size_t k = 0; k < r.probabilities.size(); ++k)
      spread = std::max(spread, std::fabs(static_cast<double>(r.probabilities[k]) - first.probabilities[k]));
  }
  EXPECT_GT(spread, 0.01);
}

TEST_F(TfliteBackendTest, BuiltinKernelsAndThreadsAgree) {
  const auto xnnpack = open(full_package(), "tflite", "fp32", "xnnpack", 1);
  const auto builtin = open(full_package(), "tflite", "fp32", "builtin", 2);
  EXPECT_EQ(builtin->backend_info().provider, "builtin");
  EXPECT_LE(max_difference(*xnnpack, *builtin), 1e-4);
}

TEST_F(TfliteBackendTest, Fp16MatchesOnnxRuntime) {
  const auto tflite = open(full_package(), "tflite", "fp16");
  EXPECT_EQ(tflite->backend_info().precision, "fp16");
  EXPECT_LE(max_difference(*tflite, *open(full_package(), "onnxruntime", "fp32")), 2e-3);
}

TEST_F(TfliteBackendTest, Int8RunsOnXnnpackWithoutFallback) {
  const auto int8 = open(full_package(), "tflite", "int8");
  EXPECT_EQ(int8->backend_info().provider, "xnnpack");
  EXPECT_TRUE(int8->backend_info().fallbacks.empty());  // the int8 delegate prepared the whole model
  // XNNPACK's int8 operators and TFLite's own compute the same quantized network but requantize
  // differently (XNNPACK with a float scale, TFLite with a fixed-point multiplier). Requirement
  // (issue 9): each keeps mean |dp| <= 0.01 against fp32 on lesions, so by the triangle
  // inequality the two are at most 0.02 apart on average over the lesions. Real photographs are
  // out of distribution and carry no requirement (docs/parity.md).
  EXPECT_LE(mean_difference_on_lesions(*int8, *open(full_package(), "tflite", "int8", "builtin")), 0.02);
}

// What the backend must do for an int8 interface, written out by hand on TFLite's C API from the
// TFLite quantization spec (real = scale * (q - zero_point); inputs rounded to nearest and
// clamped to [-128, 127]): the logits it returns must be exactly these.
std::vector<float> int8_io_logits_by_hand(const std::vector<std::uint8_t>& flatbuffer, const std::vector<float>& nhwc) {
  TfLiteModel* model = TfLiteModelCreate(flatbuffer.data(), flatbuffer.size());
  TfLiteInterpreterOptions* options = TfLiteInterpreterOptionsCreate();
  TfLiteInterpreter* interpreter = TfLiteInterpreterCreate(model, options);
  std::vector<float> logits;
  if (interpreter && TfLiteInterpreterAllocateTensors(interpreter) == kTfLiteOk) {
    TfLiteTensor* in = TfLiteInterpreterGetInputTensor(interpreter, 0);
    EXPECT_EQ(TfLiteTensorType(in), kTfLiteInt8);
    EXPECT_EQ(TfLiteTensorByteSize(in), nhwc.size());
    const TfLiteQuantizationParams qi = TfLiteTensorQuantizationParams(in);
    std::vector<std::int8_t> q(nhwc.size());
    for (std::size_t i = 0; i < q.size(); ++i)
      q[i] = static_cast<std::int8_t>(std::clamp(std::nearbyint(nhwc[i] / qi.scale) + static_cast<float>(qi.zero_point), -128.0f, 127.0f));
    TfLiteTensorCopyFromBuffer(in, q.data(), q.size());
    EXPECT_EQ(TfLiteInterpreterInvoke(interpreter), kTfLiteOk);
    const TfLiteTensor* out = TfLiteInterpreterGetOutputTensor(interpreter, 0);
    EXPECT_EQ(TfLiteTensorType(out), kTfLiteInt8);
    const TfLiteQuantizationParams qo = TfLiteTensorQuantizationParams(out);
    std::vector<std::int8_t> r(TfLiteTensorByteSize(out));
    TfLiteTensorCopyToBuffer(out, r.data(), r.size());
    for (std::int8_t v : r) logits.push_back(qo.scale * static_cast<float>(v - qo.zero_point));
  } else {
    ADD_FAILURE() << "TFLite cannot load the int8-io artifact";
  }
  TfLiteInterpreterDelete(interpreter);
  TfLiteInterpreterOptionsDelete(options);
  TfLiteModelDelete(model);
  return logits;
}

TEST_F(TfliteBackendTest, Int8InputAndOutputAreHandledTransparently) {
  const Manifest manifest = read_manifest(int8_io_package());
  const ArtifactEntry* artifact = manifest.find_artifact("tflite", "int8");
  ASSERT_NE(artifact, nullptr);
  EXPECT_EQ(artifact->details.at("io"), "int8");
  const std::vector<std::uint8_t> flatbuffer = read_file_bytes(int8_io_package() / artifact->file);
  const auto int8_io = open(int8_io_package(), "tflite", "int8", "builtin");
  EXPECT_EQ(int8_io->input_layout(), TensorLayout::kNHWC);
  const int size = manifest.input.crop_size;
  std::set<std::vector<float>> distinct;
  for (const auto& image : images()) {
    const PreparedImage prepared = int8_io->prepare(image);
    Tensor tensor;
    tensor.shape = {1, size, size, 3};
    tensor.data = prepared.input;
    const Tensor logits = int8_io->infer(tensor);
    const std::vector<float> expected = int8_io_logits_by_hand(flatbuffer, prepared.input);
    ASSERT_EQ(logits.data.size(), expected.size());
    for (std::size_t k = 0; k < expected.size(); ++k) EXPECT_EQ(logits.data[k], expected[k]) << "class " << k;
    // classify() reports the softmax of those logits.
    const ClassificationResult r = int8_io->classify(image);
    const float top = *std::max_element(expected.begin(), expected.end());
    double sum = 0;
    for (float v : expected) sum += std::exp(static_cast<double>(v - top));
    for (std::size_t k = 0; k < expected.size(); ++k)
      EXPECT_NEAR(r.probabilities[k], std::exp(static_cast<double>(expected[k] - top)) / sum, 1e-6);
    distinct.insert(expected);
  }
  EXPECT_GT(distinct.size(), 1u) << "the answers do not depend on the image";
}

TEST_F(TfliteBackendTest, BatchesEqualSingleImages) {
  const auto tflite = open(full_package(), "tflite", "fp32");
  const auto all = images();
  std::vector<PreparedImage> prepared;
  for (std::size_t i = 0; i < 3; ++i) prepared.push_back(tflite->prepare(all[i]));
  const std::vector<ClassificationResult> batch = tflite->classify_batch(prepared);
  ASSERT_EQ(batch.size(), 3u);
  for (std::size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(batch[i].batch_size, 3);
    EXPECT_EQ(batch[i].probabilities, tflite->classify(all[i]).probabilities);
  }
}

TEST_F(TfliteBackendTest, NnapiFallsBackOutsideAndroid) {
  const auto c = open(full_package(), "tflite", "fp32", "nnapi");
  EXPECT_EQ(c->backend_info().provider, "xnnpack");
  ASSERT_EQ(c->backend_info().fallbacks.size(), 1u);
  EXPECT_THAT(c->backend_info().fallbacks[0], HasSubstr("nnapi"));
}

TEST_F(TfliteBackendTest, AutoChoosesByPackageAndMachine) {
#if !defined(__aarch64__)
  // x86_64: the ONNX model on ONNX Runtime when the package has one...
  EXPECT_EQ(open(full_package(), "auto", "auto")->backend_info().runtime, "onnxruntime");
#endif
  // ...TFLite when that is all the package carries, or when the precision asked for is TFLite's.
  EXPECT_EQ(open(tflite_only_package(), "auto", "auto")->backend_info().runtime, "tflite");
  const auto int8 = open(full_package(), "auto", "int8");
  EXPECT_EQ(int8->backend_info().runtime, "tflite");
  EXPECT_EQ(int8->backend_info().precision, "int8");
}

BackendRequest request_for(const std::filesystem::path& file) {
  BackendRequest r;
  r.model_file = file;
  r.precision = "fp32";
  r.input_name = "image";
  r.output_name = "logits";
  r.input_size = 224;
  r.num_classes = 8;
  return r;
}

TEST_F(TfliteBackendTest, BadRequestsAreRefused) {
  const RuntimeDescriptor* tflite = find_runtime("tflite");
  BackendRequest r = request_for(full_package() / "model_fp32.tflite");
  r.options.provider = "gpu";
  try {
    tflite->create(r);
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
    EXPECT_THAT(e.what(), HasSubstr("gpu"));
  }
  r = request_for(full_package() / "model_fp32.tflite");
  r.options.provider_options["trt_fp16"] = "1";
  EXPECT_THROW(tflite->create(r), Error);
  r = request_for(full_package() / "model_fp32.tflite");
  r.output_name = "probabilities";
  try {
    tflite->create(r);
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kModelMismatch);
    EXPECT_THAT(e.what(), HasSubstr("probabilities"));
  }
  r = request_for(full_package() / "model_fp32.tflite");
  r.num_classes = 7;
  EXPECT_THROW(tflite->create(r), Error);
}

TEST_F(TfliteBackendTest, CorruptModelFilesAreRefused) {
  TemporaryDirectory dir;
  const std::vector<std::uint8_t> model = read_file_bytes(full_package() / "model_fp32.tflite");
  std::ofstream(dir.path() / "garbage.tflite") << "this is not a flatbuffer at all";
  {
    std::ofstream cut(dir.path() / "cut.tflite", std::ios::binary);
    cut.write(reinterpret_cast<const char*>(model.data()), static_cast<std::streamsize>(model.size() / 3));
  }
  for (const char* name : {"garbage.tflite", "cut.tflite"}) {
    try {
      find_runtime("tflite")->create(request_for(dir.path() / name));
      ADD_FAILURE() << name;
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument) << name << ": " << e.what();
      EXPECT_THAT(e.what(), HasSubstr(name));
    }
  }
}

}  // namespace
}  // namespace dermcds::test
