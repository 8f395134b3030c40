#include <fstream>
#include <functional>

#include <gtest/gtest.h>

#include "dermcds/error.hpp"
#include "dermcds/model_repository.hpp"
#include "dermcds/serving_rule.hpp"
#include "dermcds/sha256.hpp"
#include "manifest_fixture.hpp"
#include "test_support.hpp"

namespace dermcds {
namespace {

TEST(ModelRepository, VersionsSortNumerically) {
  test::TemporaryDirectory tmp;
  for (const char* v : {"1", "2", "10"}) test::write_package(tmp.path(), "x", "derm-test", v);
  std::filesystem::create_directories(tmp.path() / "derm-test" / "notaversion");
  std::filesystem::create_directories(tmp.path() / "derm-test" / "7");  // no manifest: not a version
  const ModelRepository repository(tmp.path());
  EXPECT_EQ(repository.versions("derm-test"), (std::vector<std::string>{"1", "2", "10"}));
  EXPECT_EQ(repository.model_names(), (std::vector<std::string>{"derm-test"}));
  EXPECT_EQ(repository.next_version("derm-test"), "11");
  EXPECT_EQ(repository.next_version("other"), "1");
}

TEST(ModelRepository, ActiveVersionIsTheMarkerOrTheHighest) {
  test::TemporaryDirectory tmp;
  for (const char* v : {"1", "2", "3"}) test::add_covering_evidence(test::write_package(tmp.path(), "x", "derm-test", v));
  const ModelRepository repository(tmp.path());
  EXPECT_EQ(repository.active_version("derm-test"), "3");
  repository.set_active_version("derm-test", "2");
  EXPECT_EQ(repository.active_version("derm-test"), "2");
  EXPECT_EQ(resolve_package_dir(tmp.path() / "derm-test"), tmp.path() / "derm-test" / "2");
  EXPECT_THROW(repository.set_active_version("derm-test", "9"), Error);
  EXPECT_EQ(repository.active_version("derm-test"), "2");
}

TEST(ModelRepository, MarkerNamingAMissingVersionIsAnError) {
  test::TemporaryDirectory tmp;
  test::add_covering_evidence(test::write_package(tmp.path(), "x", "derm-test", "1"));
  std::ofstream(tmp.path() / "derm-test" / "ACTIVE") << "5\n";
  EXPECT_THROW(ModelRepository(tmp.path()).active_version("derm-test"), Error);
}

TEST(ModelRepository, ResolvesVersionDirectoriesAsGiven) {
  test::TemporaryDirectory tmp;
  const auto dir = test::write_package(tmp.path(), "x", "derm-test", "4");
  EXPECT_EQ(resolve_package_dir(dir), dir);
  try {
    resolve_package_dir(tmp.path() / "missing");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kNotFound);
  }
}

TEST(ModelRepository, RejectsMalformedNames) {
  test::TemporaryDirectory tmp;
  const ModelRepository repository(tmp.path());
  EXPECT_THROW(repository.package_dir("../etc", "1"), Error);
  EXPECT_THROW(repository.package_dir("derm", "0"), Error);
  EXPECT_THROW(repository.package_dir("derm", "1a"), Error);
}

// The serving rule (serving_rule.hpp) as the repository applies it.
ErrorCode code_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.code();
  }
  return ErrorCode::kInternal;  // nothing thrown never matches an expected code
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(ServingRule, VersionsWithoutEvidenceNeverServe) {
  test::TemporaryDirectory tmp;
  test::add_covering_evidence(test::write_package(tmp.path(), "one", "derm-test", "1"));
  test::write_package(tmp.path(), "two", "derm-test", "2");  // e.g. fresh from `models export`
  const ModelRepository repository(tmp.path());
  // Without ACTIVE the highest version that may serve does: not 2.
  EXPECT_EQ(repository.active_version("derm-test"), "1");
  const std::string why = error_of([&] { repository.set_active_version("derm-test", "2"); });
  EXPECT_NE(why.find("no parity evidence"), std::string::npos) << why;
  EXPECT_EQ(code_of([&] { repository.set_active_version("derm-test", "2"); }), ErrorCode::kFailedPrecondition);
  // A marker written by hand that names it is refused, naming why.
  std::ofstream(tmp.path() / "derm-test" / "ACTIVE") << "2\n";
  EXPECT_EQ(code_of([&] { repository.active_version("derm-test"); }), ErrorCode::kFailedPrecondition);
  EXPECT_EQ(code_of([&] { resolve_package_dir(tmp.path() / "derm-test"); }), ErrorCode::kFailedPrecondition);
  // The development override waives the evidence, and only that.
  const ModelRepository lenient(tmp.path(), ServingPolicy{.allow_unverified = true});
  EXPECT_EQ(lenient.active_version("derm-test"), "2");
  const ServingVerdict verdict = lenient.serving_verdict("derm-test", "2");
  EXPECT_TRUE(verdict.servable);
  EXPECT_TRUE(verdict.unverified);
}

TEST(ServingRule, ArtifactEditedAndRestampedIsNotCovered) {
  test::TemporaryDirectory tmp;
  const auto dir = test::write_package(tmp.path(), "weights", "derm-test", "1");
  test::add_covering_evidence(dir);
  ASSERT_TRUE(serving_verdict(dir).servable) << serving_verdict(dir).reason;
  // The attack: other bytes, and the manifest's sha256 and size re-stamped to match them.
  std::ofstream(dir / "model.onnx", std::ios::binary) << "edited weights";
  nlohmann::json manifest = read_manifest(dir).document;
  const std::string edited = "edited weights";
  manifest["artifacts"][0]["sha256"] = sha256_hex({reinterpret_cast<const std::uint8_t*>(edited.data()), edited.size()});
  manifest["artifacts"][0]["bytes"] = edited.size();
  write_manifest(dir, manifest);
  const ServingVerdict verdict = serving_verdict(dir);
  EXPECT_FALSE(verdict.servable);
  EXPECT_NE(verdict.reason.find("model.onnx"), std::string::npos) << verdict.reason;
  EXPECT_NE(verdict.reason.find("evidence was taken on"), std::string::npos) << verdict.reason;
  EXPECT_EQ(code_of([&] { ModelRepository(tmp.path()).require_servable("derm-test", "1"); }), ErrorCode::kFailedPrecondition);
}

TEST(ServingRule, FailedPairsAndRejectionAreNotEvidence) {
  test::TemporaryDirectory tmp;
  const auto dir = test::write_package(tmp.path(), "x", "derm-test", "1");
  test::add_covering_evidence(dir);
  nlohmann::json manifest = read_manifest(dir).document;
  // The reference artifact answers for the export: a failed check against PyTorch uncovers it.
  manifest["parity"]["pairs"][0]["passed"] = false;
  manifest["parity"]["pairs"][0]["violations"] = {"max abs diff 0.2 > 0.01"};
  write_manifest(dir, manifest);
  EXPECT_NE(serving_verdict(dir).reason.find("max abs diff 0.2"), std::string::npos) << serving_verdict(dir).reason;
  // No pair compared at all.
  manifest["parity"]["pairs"] = nlohmann::json::array();
  write_manifest(dir, manifest);
  EXPECT_FALSE(serving_verdict(dir).servable);
  // Rejected: never, not even with the override.
  test::add_covering_evidence(dir);
  manifest = read_manifest(dir).document;
  manifest["lifecycle"] = {{"status", "rejected"}, {"reason", "int8 missed its bounds"}};
  write_manifest(dir, manifest);
  const ServingVerdict verdict = serving_verdict(dir, ServingPolicy{.allow_unverified = true});
  EXPECT_FALSE(verdict.servable);
  EXPECT_TRUE(verdict.rejected);
  EXPECT_NE(verdict.reason.find("int8 missed its bounds"), std::string::npos);
}

TEST(ServingRule, HistoryIsPersistedAndSharedByEveryActivation) {
  test::TemporaryDirectory tmp;
  for (const char* v : {"1", "2", "3"}) test::add_covering_evidence(test::write_package(tmp.path(), v, "derm-test", v));
  {
    const ModelRepository repository(tmp.path());
    repository.activate("derm-test", "1", "promote", "test");
    repository.activate("derm-test", "3", "activate", "test");
  }
  // Another process (a fresh object reading the files) rolls back to where the first was.
  // Before the first activation version 3 served implicitly (no ACTIVE): it is where the
  // history starts.
  const ModelRepository later(tmp.path());
  EXPECT_EQ(later.lifecycle_state("derm-test").stack, (std::vector<std::string>{"3", "1", "3"}));
  EXPECT_EQ(later.rollback("derm-test"), "1");
  EXPECT_EQ(later.active_version("derm-test"), "1");
  EXPECT_EQ(later.rollback("derm-test"), "3");
  EXPECT_EQ(code_of([&] { later.rollback("derm-test"); }), ErrorCode::kNotFound);
  EXPECT_EQ(later.active_version("derm-test"), "3");
  const auto events = later.lifecycle_state("derm-test").events;
  ASSERT_EQ(events.size(), 4u);
  EXPECT_EQ(events[2].action, "rollback");
  EXPECT_EQ(events[2].from, "3");
  EXPECT_EQ(events[2].version, "1");
  // A failing step before the switch changes nothing.
  EXPECT_THROW(
      later.activate("derm-test", "2", "activate", "", [](const std::string&) { throw Error(ErrorCode::kRuntimeFailure, "load failed"); }),
      Error);
  EXPECT_EQ(later.active_version("derm-test"), "3");
  EXPECT_EQ(later.lifecycle_state("derm-test").events.size(), 4u);
}

}  // namespace
}  // namespace dermcds
