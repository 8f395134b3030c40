// ModelManager in process, on copies of the service fixture repository: the serving rule at
// start-up and on load/activate, the LOADING state and the failure count on every way a load
// ends, readiness that a model with no servable version does not hold hostage, the shared and
// persisted rollback history, and an index that needs no readable repository.
#include <fstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "dermcds/error.hpp"
#include "dermcds/file_bytes.hpp"
#include "dermcds/sha256.hpp"
#include "model_manager.hpp"
#include "repository_watcher.hpp"
#include "test_support.hpp"

namespace dermcds::service {
namespace {

using nlohmann::json;

std::filesystem::path fixture() { return test::work_dir() / "service" / "repository"; }

struct Loads {
  std::vector<std::string> log;  // "model/version ok|failed", in order
};

struct Fixture {
  test::TemporaryDirectory tmp;
  std::filesystem::path repository = tmp.path() / "repository";
  Loads loads;
  Fixture() { std::filesystem::copy(fixture(), repository, std::filesystem::copy_options::recursive); }

  std::unique_ptr<ModelManager> manager(std::vector<std::string> models = {"tiny"}, bool allow_unverified = false) {
    ModelManagerOptions options;
    options.repository = repository;
    options.startup_models = std::move(models);
    options.batching.max_batch_size = 2;
    options.serving.allow_unverified = allow_unverified;
    ModelEvents events;
    events.load_finished = [this](const std::string& m, const std::string& v, bool ok) {
      loads.log.push_back(m + "/" + v + (ok ? " ok" : " failed"));
    };
    return std::make_unique<ModelManager>(options, events);
  }
  void edit(const std::string& model, const std::string& version, const std::function<void(json&)>& change) {
    const auto path = repository / model / version / "manifest.json";
    json manifest = json::parse(std::ifstream(path));
    change(manifest);
    std::ofstream(path) << manifest.dump(2);
  }
};

ErrorCode code_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.code();
  }
  return ErrorCode::kInternal;
}

const IndexEntry* find(const std::vector<IndexEntry>& index, const std::string& model, const std::string& version) {
  for (const auto& e : index)
    if (e.name == model && e.version == version) return &e;
  return nullptr;
}
// An index returned by value dies at the end of the full expression: keep it in a variable first.
const IndexEntry* find(std::vector<IndexEntry>&& index, const std::string& model, const std::string& version) = delete;

TEST(ModelManagerUnit, LoadsTheActiveVersionAndRefusesUnverifiedOnes) {
  Fixture f;
  f.edit("tiny", "2", [](json& m) { m.erase("parity"); });
  auto manager = f.manager();
  EXPECT_EQ(manager->load_startup_models(), 1);
  EXPECT_TRUE(manager->ready());
  EXPECT_EQ(manager->serving("tiny")->version(), "1");
  EXPECT_EQ(code_of([&] { manager->load("tiny", "2"); }), ErrorCode::kFailedPrecondition);
  EXPECT_EQ(code_of([&] { manager->activate("tiny", "2"); }), ErrorCode::kFailedPrecondition);
  EXPECT_EQ(f.loads.log, std::vector<std::string>{"tiny/1 ok"});  // refused before any load
  const auto index = manager->index(false);
  ASSERT_NE(find(index, "tiny", "2"), nullptr);
  EXPECT_NE(find(index, "tiny", "2")->reason.find("no parity evidence"), std::string::npos) << find(index, "tiny", "2")->reason;
  // The development override lets it load.
  auto lenient = f.manager({"tiny"}, /*allow_unverified=*/true);
  lenient->load_startup_models();
  EXPECT_EQ(lenient->load("tiny", "2"), "2");
}

TEST(ModelManagerUnit, AFailedLoadLeavesNoLoadingStateAndIsCountedOnce) {
  Fixture f;
  // A corrupted artifact whose manifest still says the old sha256: the package check fails.
  {
    std::fstream model(f.repository / "tiny" / "2" / "model.onnx", std::ios::in | std::ios::out | std::ios::binary);
    model.seekp(-5, std::ios::end);
    model.put('\x42');
  }
  auto manager = f.manager();
  manager->load_startup_models();
  const ErrorCode code = code_of([&] { manager->load("tiny", "2"); });
  EXPECT_NE(code, ErrorCode::kInternal);
  EXPECT_EQ(f.loads.log, (std::vector<std::string>{"tiny/1 ok", "tiny/2 failed"}));
  const std::vector<IndexEntry> index = manager->index(false);
  const IndexEntry* entry = find(index, "tiny", "2");
  ASSERT_NE(entry, nullptr);
  EXPECT_EQ(entry->state, "UNAVAILABLE");
  EXPECT_NE(entry->reason.find("model.onnx"), std::string::npos) << entry->reason;
  // An artifact file removed: the same, and never LOADING afterwards.
  std::filesystem::remove(f.repository / "tiny" / "2" / "model.onnx");
  EXPECT_THROW(manager->load("tiny", "2"), Error);
  const std::vector<IndexEntry> after_removal = manager->index(false);
  ASSERT_NE(find(after_removal, "tiny", "2"), nullptr);
  EXPECT_EQ(find(after_removal, "tiny", "2")->state, "UNAVAILABLE");
  EXPECT_EQ(f.loads.log.back(), "tiny/2 failed");
  EXPECT_EQ(manager->serving("tiny")->version(), "1");  // what served still does
}

TEST(ModelManagerUnit, AModelWithNoServableVersionDoesNotHoldReadinessHostage) {
  Fixture f;
  f.edit("tiny-conv", "1", [](json& m) { m["lifecycle"] = {{"status", "rejected"}, {"reason", "int8 missed its goal"}}; });
  auto manager = f.manager({"tiny", "tiny-conv"});
  EXPECT_EQ(manager->load_startup_models(), 1);
  EXPECT_TRUE(manager->ready());
  for (const ModelStatus& m : manager->status())
    if (m.name == "tiny-conv") {
      EXPECT_FALSE(m.ready);
      EXPECT_NE(m.unservable.find("none of its versions may serve"), std::string::npos) << m.unservable;
    }
  const std::vector<IndexEntry> index = manager->index(false);
  ASSERT_NE(find(index, "tiny-conv", "1"), nullptr);
  EXPECT_NE(find(index, "tiny-conv", "1")->reason.find("int8 missed its goal"), std::string::npos);
  EXPECT_EQ(code_of([&] { manager->serving("tiny-conv"); }), ErrorCode::kRuntimeUnavailable);
  // A servable version that fails to load is a real failure: not ready.
  Fixture g;
  std::filesystem::remove(g.repository / "tiny" / "1" / "model.onnx");
  auto broken = g.manager({"tiny", "tiny-conv"});
  broken->load_startup_models();
  EXPECT_FALSE(broken->ready());
  // Nothing serving at all is never ready.
  Fixture h;
  h.edit("tiny", "1", [](json& m) { m.erase("parity"); });
  h.edit("tiny", "2", [](json& m) { m.erase("parity"); });
  auto none = h.manager({"tiny"});
  none->load_startup_models();
  EXPECT_FALSE(none->ready());
}

TEST(ModelManagerUnit, RollbackHistoryIsTheRepositorysAndOutlivesTheManager) {
  Fixture f;
  {
    auto manager = f.manager();
    manager->load_startup_models();
    manager->activate("tiny", "2");
    EXPECT_EQ(manager->serving("tiny")->version(), "2");
  }
  auto restarted = f.manager();
  restarted->load_startup_models();
  EXPECT_EQ(restarted->serving("tiny")->version(), "2");
  EXPECT_EQ(restarted->rollback("tiny"), "1");
  EXPECT_EQ(restarted->serving("tiny")->version(), "1");
  EXPECT_EQ(code_of([&] { restarted->rollback("tiny"); }), ErrorCode::kNotFound);
  EXPECT_EQ(ModelRepository(f.repository).lifecycle_state("tiny").stack, std::vector<std::string>{"1"});
}

TEST(ModelManagerUnit, IndexAndStatusNeedNoReadableRepository) {
  Fixture f;
  auto manager = f.manager();
  manager->load_startup_models();
  std::filesystem::rename(f.repository, f.tmp.path() / "gone");
  const auto index = manager->index(false);
  ASSERT_NE(find(index, "tiny", "1"), nullptr);
  EXPECT_EQ(find(index, "tiny", "1")->state, "READY");
  EXPECT_TRUE(manager->ready());
  EXPECT_EQ(manager->status().front().active_version, "1");
  EXPECT_EQ(code_of([&] { manager->activate("tiny", "2"); }), ErrorCode::kNotFound);
  EXPECT_EQ(manager->serving("tiny")->version(), "1");
}

// One replica's view of a shared repository (docs/deploy.md): a changed ACTIVE is loaded and
// switched to; a version that fails verification is never switched to, the index says why, the
// version that served keeps serving, and the failed load is not retried every period.
TEST(RepositoryWatcher, FollowsActiveAndNeverSwitchesToAVersionThatFailsVerification) {
  Fixture f;
  const auto artifact = f.repository / "tiny" / "2" / "model.onnx";
  const std::vector<std::uint8_t> good = read_file_bytes(artifact);
  std::vector<std::uint8_t> bad = good;
  bad[bad.size() - 5] ^= 0x42;  // the manifest still says the old sha256
  const auto write = [&](const std::vector<std::uint8_t>& bytes) {
    std::ofstream(artifact, std::ios::binary)
        .write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  };
  write(bad);
  auto manager = f.manager();
  ASSERT_EQ(manager->load_startup_models(), 1);
  RepositoryWatcher watcher(*manager, std::chrono::hours(1));  // its own thread stays idle: polled by hand
  EXPECT_EQ(watcher.poll_once(), 0);                           // ACTIVE names 1, and 1 serves
  const auto set_active = [&](const char* version) { std::ofstream(f.repository / "tiny" / "ACTIVE") << version << "\n"; };

  set_active("2");
  EXPECT_EQ(watcher.poll_once(), 0);
  EXPECT_EQ(manager->serving("tiny")->version(), "1");
  EXPECT_TRUE(manager->ready());
  const std::vector<IndexEntry> index = manager->index(false);
  const IndexEntry* entry = find(index, "tiny", "2");
  ASSERT_NE(entry, nullptr);
  EXPECT_EQ(entry->state, "UNAVAILABLE");
  EXPECT_NE(entry->reason.find("model.onnx"), std::string::npos) << entry->reason;
  EXPECT_EQ(watcher.poll_once(), 0);
  EXPECT_EQ(f.loads.log, (std::vector<std::string>{"tiny/1 ok", "tiny/2 failed"}));  // not retried

  // Repaired, and wanted again after the repository changed its mind once: switched to.
  set_active("1");
  EXPECT_EQ(watcher.poll_once(), 0);
  write(good);
  set_active("2");
  EXPECT_EQ(watcher.poll_once(), 1);
  EXPECT_EQ(manager->serving("tiny")->version(), "2");
  EXPECT_EQ(f.loads.log.back(), "tiny/2 ok");
  EXPECT_EQ(watcher.poll_once(), 0);
}

}  // namespace
}  // namespace dermcds::service
