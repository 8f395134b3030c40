// Promotion, rollback, rejected candidates and input fingerprints, on a temporary repository of
// tiny packages whose parity evidence comes from real parity runs (tests/parity fixture).
#include <gtest/gtest.h>

#include <fstream>

#include <nlohmann/json.hpp>

#include "dermcds/error.hpp"
#include "dermcds/file_bytes.hpp"
#include "dermcds/model_repository.hpp"
#include "dermcds/pipeline/lifecycle.hpp"
#include "dermcds/pipeline/model_build.hpp"
#include "dermcds/pipeline/parity.hpp"
#include "dermcds/pipeline/parity_report.hpp"
#include "dermcds/sha256.hpp"
#include "test_support.hpp"

namespace dermcds::pipeline {
namespace {

const std::string kModel = "tiny-parity";

std::filesystem::path fixture() { return test::work_dir() / "parity"; }

class Lifecycle : public ::testing::Test {
 protected:
  test::TemporaryDirectory tmp;
  std::filesystem::path repo() const { return tmp.path(); }
  std::filesystem::path dir(const std::string& version) const { return repo() / kModel / version; }

  // A copy of the fixture package as `version`.
  void add_version(const std::string& version) {
    std::filesystem::create_directories(dir(version).parent_path());
    std::filesystem::copy(fixture() / "repository" / kModel / "1", dir(version));
    nlohmann::json document = read_manifest(dir(version)).document;
    document["version"] = version;
    write_manifest(dir(version), document);
  }
  // Runs parity on the version and records the evidence, as a build does.
  bool check(const std::string& version) {
    ParityRequest request;
    request.package_dir = dir(version);
    request.images_dir = fixture() / "images";
    request.torch_reference = false;
    request.threads = 1;
    const ParityReport report = run_parity(request);
    record_in_manifest(report, std::nullopt);
    return report.passed;
  }
  void mark(const std::string& version, const std::string& status) {
    nlohmann::json document = read_manifest(dir(version)).document;
    document["lifecycle"] = {{"status", status}, {"reason", "test"}};
    write_manifest(dir(version), document);
  }
  std::string active_marker() const {
    std::ifstream in(repo() / kModel / "ACTIVE");
    std::string v;
    in >> v;
    return v;
  }
  static ErrorCode code_of(const std::function<void()>& f) {
    try {
      f();
    } catch (const Error& e) {
      return e.code();
    }
    return ErrorCode::kInternal;  // "nothing thrown" never matches an expected code below
  }
};

TEST_F(Lifecycle, PromotionNeedsPassingEvidence) {
  add_version("1");
  ModelLifecycle lifecycle(repo(), kModel);
  EXPECT_EQ(code_of([&] { lifecycle.promote("1"); }), ErrorCode::kFailedPrecondition);
  EXPECT_FALSE(std::filesystem::exists(repo() / kModel / "ACTIVE"));
  ASSERT_TRUE(check("1"));
  // Without ACTIVE the only version serves implicitly; promoting it writes the marker.
  EXPECT_EQ(lifecycle.promote("1"), "1");
  EXPECT_EQ(active_marker(), "1");
  const std::size_t events = lifecycle.events().size();
  EXPECT_EQ(lifecycle.promote("1"), "1");  // already active: nothing changes
  EXPECT_EQ(lifecycle.events().size(), events);
  EXPECT_EQ(code_of([&] { lifecycle.promote("7"); }), ErrorCode::kNotFound);
}

TEST_F(Lifecycle, FailedParityCannotBePromoted) {
  add_version("1");
  // The perturbed package's fp16 artifact, with its sha256, in place of the honest one.
  std::filesystem::copy_file(fixture() / "repository" / "tiny-perturbed" / "1" / "model_fp16.onnx", dir("1") / "model_fp16.onnx",
                             std::filesystem::copy_options::overwrite_existing);
  nlohmann::json document = read_manifest(dir("1")).document;
  for (auto& a : document["artifacts"])
    if (a["file"] == "model_fp16.onnx") a["sha256"] = sha256_file_hex(dir("1") / "model_fp16.onnx");
  write_manifest(dir("1"), document);
  ASSERT_FALSE(check("1"));
  ModelLifecycle lifecycle(repo(), kModel);
  try {
    lifecycle.promote("1");
    FAIL();
  } catch (const Error& e) {
    // The failing artifact is named, with the check it failed.
    EXPECT_NE(std::string(e.what()).find("model_fp16.onnx (its check"), std::string::npos) << e.what();
  }
}

TEST_F(Lifecycle, EvidenceMustDescribeTheCurrentArtifacts) {
  add_version("1");
  ASSERT_TRUE(check("1"));
  // An artifact swapped after the parity run (manifest updated, so the package still verifies).
  std::filesystem::copy_file(fixture() / "repository" / "tiny-perturbed" / "1" / "model_fp16.onnx", dir("1") / "model_fp16.onnx",
                             std::filesystem::copy_options::overwrite_existing);
  nlohmann::json document = read_manifest(dir("1")).document;
  for (auto& a : document["artifacts"])
    if (a["file"] == "model_fp16.onnx") a["sha256"] = sha256_file_hex(dir("1") / "model_fp16.onnx");
  write_manifest(dir("1"), document);
  std::string why;
  EXPECT_FALSE(has_covering_evidence(read_manifest(dir("1")), &why));
  EXPECT_NE(why.find("model_fp16.onnx"), std::string::npos) << why;
  EXPECT_EQ(code_of([&] { ModelLifecycle(repo(), kModel).promote("1"); }), ErrorCode::kFailedPrecondition);
}

TEST_F(Lifecycle, RejectedCandidatesNeverServe) {
  for (const char* v : {"1", "2", "3"}) {
    add_version(v);
    ASSERT_TRUE(check(v));
  }
  mark("3", "rejected");
  const ModelRepository repository(repo());
  // Without ACTIVE the highest version serves, unless it is rejected.
  EXPECT_EQ(repository.active_version(kModel), "2");
  EXPECT_EQ(resolve_package_dir(repo() / kModel), dir("2"));
  EXPECT_EQ(code_of([&] { repository.set_active_version(kModel, "3"); }), ErrorCode::kFailedPrecondition);
  EXPECT_EQ(code_of([&] { ModelLifecycle(repo(), kModel).promote("3"); }), ErrorCode::kFailedPrecondition);
  // A marker written by hand that names it is an error, not a silent choice.
  std::ofstream(repo() / kModel / "ACTIVE") << "3\n";
  EXPECT_EQ(code_of([&] { repository.active_version(kModel); }), ErrorCode::kFailedPrecondition);
  // Only rejected versions: none serves.
  mark("1", "rejected");
  mark("2", "rejected");
  std::filesystem::remove(repo() / kModel / "ACTIVE");
  EXPECT_EQ(repository.active_version(kModel), std::nullopt);
}

TEST_F(Lifecycle, RollbackWalksBackThroughPromotions) {
  ModelLifecycle lifecycle(repo(), kModel);
  // As builds with --promote do: each new version is checked, then made active.
  for (const char* v : {"1", "2", "3"}) {
    add_version(v);
    ASSERT_TRUE(check(v));
    lifecycle.promote(v);
  }
  EXPECT_EQ(active_marker(), "3");
  EXPECT_EQ(lifecycle.rollback(), "2");
  EXPECT_EQ(active_marker(), "2");
  EXPECT_EQ(lifecycle.rollback(), "1");
  EXPECT_EQ(active_marker(), "1");
  EXPECT_EQ(code_of([&] { lifecycle.rollback(); }), ErrorCode::kNotFound);
  EXPECT_EQ(active_marker(), "1");

  const std::vector<LifecycleEvent> events = lifecycle.events();
  ASSERT_EQ(events.size(), 5u);
  EXPECT_EQ(events[3].action, "rollback");
  EXPECT_EQ(events[3].version, "2");
  EXPECT_EQ(events[3].from, "3");
  const std::vector<VersionState> states = lifecycle.versions();
  ASSERT_EQ(states.size(), 3u);
  EXPECT_EQ(states[0].status, "active");
  EXPECT_EQ(states[1].status, "retired");
  EXPECT_EQ(states[2].status, "retired");
}

TEST_F(Lifecycle, RollbackFollowsActiveChangedElsewhere) {
  for (const char* v : {"1", "2", "3"}) {
    add_version(v);
    ASSERT_TRUE(check(v));
  }
  ModelLifecycle lifecycle(repo(), kModel);
  lifecycle.promote("1");
  // The service's admin API writes ACTIVE directly.
  ModelRepository(repo()).set_active_version(kModel, "3");
  EXPECT_EQ(lifecycle.rollback(), "1");
  EXPECT_EQ(active_marker(), "1");
}

TEST_F(Lifecycle, RollbackPassesOverRemovedAndRejectedVersions) {
  for (const char* v : {"1", "2", "3", "4"}) {
    add_version(v);
    ASSERT_TRUE(check(v));
  }
  ModelLifecycle lifecycle(repo(), kModel);
  for (const char* v : {"1", "2", "3", "4"}) lifecycle.promote(v);
  std::filesystem::remove_all(dir("3"));
  mark("2", "rejected");  // e.g. found wanting by a later parity rule
  EXPECT_EQ(lifecycle.rollback(), "1");
}

TEST_F(Lifecycle, VersionStatesTellCandidatesFromUnverified) {
  ModelLifecycle lifecycle(repo(), kModel);
  add_version("1");
  ASSERT_TRUE(check("1"));
  lifecycle.promote("1");
  for (const char* v : {"2", "3", "4"}) add_version(v);
  ASSERT_TRUE(check("2"));
  mark("3", "rejected");
  const std::vector<VersionState> states = lifecycle.versions();
  ASSERT_EQ(states.size(), 4u);
  EXPECT_EQ(states[0].status, "active");
  EXPECT_EQ(states[1].status, "candidate");
  EXPECT_EQ(states[2].status, "rejected");
  EXPECT_EQ(states[2].reason, "test");
  EXPECT_EQ(states[3].status, "unverified");
  EXPECT_NE(states[3].reason.find("no parity evidence"), std::string::npos);
  EXPECT_TRUE(*states[1].parity_passed);
  EXPECT_FALSE(states[2].parity_passed.has_value());
}

TEST_F(Lifecycle, ImplicitlyServingVersionIsWhereRollbackReturns) {
  // No ACTIVE: the highest version serves. Promoting another, then rolling back, returns to it.
  for (const char* v : {"1", "2"}) {
    add_version(v);
    ASSERT_TRUE(check(v));
  }
  ModelLifecycle lifecycle(repo(), kModel);
  EXPECT_EQ(lifecycle.promote("1"), "2");
  EXPECT_EQ(lifecycle.rollback(), "2");
  EXPECT_EQ(active_marker(), "2");
}

TEST_F(Lifecycle, PinKeepsTheImplicitlyServingVersionWhenANewOneArrives) {
  ModelLifecycle lifecycle(repo(), kModel);
  EXPECT_EQ(lifecycle.pin_active_version("test"), std::nullopt);  // no model yet
  add_version("1");                                               // e.g. made by `models export`: no evidence, so it does not serve at all
  EXPECT_EQ(lifecycle.pin_active_version("test"), std::nullopt);
  ASSERT_TRUE(check("1"));  // now it serves implicitly (no ACTIVE): pinning marks it
  EXPECT_EQ(lifecycle.pin_active_version("test"), "1");
  EXPECT_EQ(active_marker(), "1");
  add_version("2");
  EXPECT_EQ(ModelRepository(repo()).active_version(kModel), "1");
  EXPECT_EQ(lifecycle.pin_active_version("test"), std::nullopt);  // ACTIVE exists: nothing to do
  ASSERT_TRUE(check("2"));
  EXPECT_EQ(lifecycle.promote("2"), "1");
  EXPECT_EQ(lifecycle.rollback(), "1");
  EXPECT_EQ(lifecycle.events().front().action, "pin");
}

TEST_F(Lifecycle, StateSurvivesAsReadableJson) {
  add_version("1");
  ASSERT_TRUE(check("1"));
  ModelLifecycle(repo(), kModel).promote("1", "first");
  const nlohmann::json state = nlohmann::json::parse(read_file_bytes(repo() / kModel / "lifecycle.json"));
  EXPECT_EQ(state["format"], "dermcds-model-lifecycle");
  EXPECT_EQ(state["active_stack"], nlohmann::json::array({"1"}));
  EXPECT_EQ(state["events"][0]["detail"], "first");
  // The repository still lists exactly the version directories.
  EXPECT_EQ(ModelRepository(repo()).model_names(), std::vector<std::string>{kModel});
}

TEST(BuildInputs, FingerprintFollowsEveryInputButNotTheCheckpointsPlace) {
  BuildInputs base;
  base.architecture = "mobilenet_v3_large";
  base.package_name = "derm-mnv3-large";
  base.checkpoint = {{"source", "demo"}, {"file", "demo.pt"}, {"sha256", std::string(64, 'a')}, {"path", "/a/demo.pt"}};
  base.exporter_version = "1";
  base.converter_version = "sources-sha256:1";
  base.tflite_precisions = {"fp32", "int8"};
  base.calibration = ImageSet{"/c", {"/c/1.png"}, std::string(64, 'c')};
  base.policy = nlohmann::json::parse(R"({"bounds": {"int8": {"max_abs_diff": 0.1, "mean_abs_diff": 0.01}}})");
  const std::string fingerprint = base.fingerprint();
  EXPECT_EQ(fingerprint.size(), 64u);
  // Key order in the policy file does not matter.
  BuildInputs reordered = base;
  reordered.policy = nlohmann::json::parse(R"({"bounds": {"int8": {"mean_abs_diff": 0.01, "max_abs_diff": 0.1}}})");
  EXPECT_EQ(reordered.fingerprint(), fingerprint);

  BuildInputs moved = base;
  moved.checkpoint["path"] = "/elsewhere/demo.pt";
  moved.calibration->directory = "/elsewhere";
  EXPECT_EQ(moved.fingerprint(), fingerprint);

  std::vector<std::function<void(BuildInputs&)>> changes = {
      [](BuildInputs& b) { b.checkpoint["sha256"] = std::string(64, 'b'); },
      [](BuildInputs& b) { b.exporter_version = std::string(1, '2'); },  // not = "2": GCC 12 -Wrestrict false positive
      [](BuildInputs& b) { b.converter_version = "sources-sha256:2"; },
      [](BuildInputs& b) { b.tflite_precisions = {"fp32"}; },
      [](BuildInputs& b) { b.calibration->sha256 = std::string(64, 'd'); },
      [](BuildInputs& b) { b.calibration_limit = 10; },
      [](BuildInputs& b) { b.architecture = "efficientnet_b4"; },
      [](BuildInputs& b) { b.policy = nlohmann::json::parse(R"({"bounds": {"int8": {"max_abs_diff": 0.2}}})"); },
  };
  for (std::size_t i = 0; i < changes.size(); ++i) {
    BuildInputs changed = base;
    changes[i](changed);
    EXPECT_NE(changed.fingerprint(), fingerprint) << "change " << i;
  }
  // Without TFLite artifacts the converter does not matter.
  BuildInputs onnx_only = base;
  onnx_only.tflite_precisions.clear();
  onnx_only.calibration.reset();
  BuildInputs other_converter = onnx_only;
  other_converter.converter_version = "sources-sha256:2";
  EXPECT_EQ(other_converter.fingerprint(), onnx_only.fingerprint());
}

}  // namespace
}  // namespace dermcds::pipeline
