#include <fstream>

#include <gtest/gtest.h>

#include "dermcds/error.hpp"
#include "dermcds/model_package.hpp"
#include "dermcds/sha256.hpp"
#include "manifest_fixture.hpp"
#include "test_support.hpp"

namespace dermcds {
namespace {

std::string read_text(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}

void expect_refused(const std::filesystem::path& dir, ErrorCode code, const std::string& needle) {
  try {
    ModelPackage::open(dir);
    FAIL() << "package was accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), code) << e.what();
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

TEST(Sha256, KnownAnswers) {
  // FIPS 180-2 test vectors.
  const std::string abc = "abc";
  EXPECT_EQ(sha256_hex({reinterpret_cast<const std::uint8_t*>(abc.data()), abc.size()}),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(sha256_hex({}), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

TEST(ModelPackage, IntactPackageOpens) {
  test::TemporaryDirectory tmp;
  const auto dir = test::write_package(tmp.path(), "model bytes");
  const ModelPackage package = ModelPackage::open(dir);
  EXPECT_EQ(package.manifest().name, "derm-test");
  EXPECT_EQ(package.artifact_path(package.manifest().artifacts[0]), dir / "model.onnx");
  for (const PackageCheck& check : verify_package(dir)) EXPECT_TRUE(check.ok) << check.subject << ": " << check.detail;
}

TEST(ModelPackage, AlteredArtifactIsRefused) {
  test::TemporaryDirectory tmp;
  const auto dir = test::write_package(tmp.path(), "model bytes");
  std::ofstream(dir / "model.onnx", std::ios::binary) << "model bytez";  // same size, one byte changed
  expect_refused(dir, ErrorCode::kInvalidPackage, "model.onnx: sha256");
}

TEST(ModelPackage, TruncatedArtifactIsRefused) {
  test::TemporaryDirectory tmp;
  const auto dir = test::write_package(tmp.path(), "model bytes");
  std::ofstream(dir / "model.onnx", std::ios::binary) << "model";
  expect_refused(dir, ErrorCode::kInvalidPackage, "truncated or replaced");
}

TEST(ModelPackage, MissingArtifactIsRefused) {
  test::TemporaryDirectory tmp;
  const auto dir = test::write_package(tmp.path(), "model bytes");
  std::filesystem::remove(dir / "model.onnx");
  expect_refused(dir, ErrorCode::kInvalidPackage, "missing");
}

TEST(ModelPackage, MalformedManifestIsRefused) {
  test::TemporaryDirectory tmp;
  const auto dir = test::write_package(tmp.path(), "model bytes");
  const std::string text = read_text(dir / "manifest.json");
  std::ofstream(dir / "manifest.json", std::ios::binary) << text.substr(0, text.size() / 2);
  expect_refused(dir, ErrorCode::kInvalidPackage, "not valid JSON");
}

TEST(ModelPackage, ManifestMustMatchItsDirectory) {
  test::TemporaryDirectory tmp;
  const auto dir = test::write_package(tmp.path(), "model bytes", "derm-test", "1");
  std::filesystem::rename(dir, tmp.path() / "derm-test" / "2");
  expect_refused(tmp.path() / "derm-test" / "2", ErrorCode::kInvalidPackage, "stored at derm-test/2");
}

TEST(ModelPackage, MissingPackageIsNotFound) {
  test::TemporaryDirectory tmp;
  expect_refused(tmp.path() / "nothing" / "1", ErrorCode::kNotFound, "nothing");
  std::filesystem::create_directories(tmp.path() / "empty" / "1");
  expect_refused(tmp.path() / "empty" / "1", ErrorCode::kNotFound, "no manifest.json");
}

TEST(ModelPackage, VerifyReportsEveryProblem) {
  test::TemporaryDirectory tmp;
  const auto dir = test::write_package(tmp.path(), "model bytes");
  nlohmann::json manifest = read_manifest(dir).document;
  manifest["artifacts"].push_back({{"runtime", "tflite"},
                                   {"precision", "int8"},
                                   {"file", "model_int8.tflite"},
                                   {"sha256", std::string(64, 'a')},
                                   {"bytes", 10},
                                   {"layout", "NHWC"}});
  write_manifest(dir, manifest);
  std::ofstream(dir / "model.onnx", std::ios::binary) << "MODEL BYTES";
  const std::vector<PackageCheck> checks = verify_package(dir);
  int failures = 0;
  for (const PackageCheck& c : checks) failures += c.ok ? 0 : 1;
  EXPECT_EQ(failures, 2);
  ASSERT_EQ(checks.size(), 3u);
  EXPECT_TRUE(checks[0].ok);
  EXPECT_EQ(checks[1].subject, "model.onnx");
  EXPECT_EQ(checks[2].subject, "model_int8.tflite");
}

TEST(ModelPackage, WriteManifestReplacesAtomically) {
  test::TemporaryDirectory tmp;
  const auto dir = test::write_package(tmp.path(), "model bytes");
  nlohmann::json manifest = read_manifest(dir).document;
  manifest["note"] = "second";
  write_manifest(dir, manifest);
  EXPECT_EQ(read_manifest(dir).document["note"], "second");
  for (const auto& entry : std::filesystem::directory_iterator(dir))
    EXPECT_EQ(entry.path().filename().string().find(".tmp"), std::string::npos) << entry.path();
}

}  // namespace
}  // namespace dermcds
