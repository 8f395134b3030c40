// Hot swap under load: clients classify without pause while an operator activates, rolls back,
// loads and unloads versions. No request may fail, and every answer must be exactly what the
// version it names computes for that photograph (no request is half-served by two versions).
#include <atomic>
#include <thread>

#include "service_test_support.hpp"

namespace dermcds::test {
namespace {

constexpr const char* kKey = "hot-swap-key";
constexpr int kClients = 4;

struct Tally {
  std::atomic<int> answered{0};
  std::atomic<int> failed{0};
  std::atomic<int> wrong{0};
  std::atomic<int> by_version[3] = {};
  std::mutex mutex;
  std::vector<std::string> failures;
};

void client_loop(const ServerProcess& server, const json& references, const std::atomic<bool>& stop, Tally& tally, int seed) {
  const auto client = client_for(server);
  for (std::size_t i = static_cast<std::size_t>(seed); !stop; ++i) {
    const json& reference = references[i % references.size()];
    const auto result = post_image(*client, reference["image"].get<std::string>());
    if (status_of(result) != 200) {
      ++tally.failed;
      std::lock_guard lock(tally.mutex);
      tally.failures.push_back(result ? std::to_string(result->status) + " " + result->body : httplib::to_string(result.error()));
      continue;
    }
    const json body = json::parse(result->body);
    const std::string version = body["model_version"];
    const double difference = max_abs_difference(probabilities_of(body), reference["probabilities"][version].get<std::vector<double>>());
    if (difference > 1e-4) ++tally.wrong;
    ++tally.by_version[std::stoi(version)];
    ++tally.answered;
  }
}

TEST(HotSwap, SwapsUnderLoadFailNoRequest) {
  TemporaryDirectory tmp;
  const auto repository = copy_fixture_repository(tmp);
  const auto server =
      start_server({repository, {"--model", "tiny", "--default-model", "tiny", "--max-queue-size", "1000"}, {{"DERMCDS_ADMIN_KEY", kKey}}});
  const json references = service_references();
  std::atomic<bool> stop{false};
  Tally tally;
  std::vector<std::thread> clients;
  for (int c = 0; c < kClients; ++c) clients.emplace_back([&, c] { client_loop(*server, references, stop, tally, c); });

  const auto admin = client_for(*server);
  // Each step waits for clients to get a number of further answers (not for a time), so every
  // swap happens with requests in flight.
  auto after_answers = [&](int more) {
    const int target = tally.answered + more;
    while (tally.answered < target && tally.failed == 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  };
  auto operate = [&](const std::string& path, const json& body = json::object()) {
    after_answers(40);
    const auto result = admin->Post(path.c_str(), {{"X-API-Key", kKey}}, body.dump(), "application/json");
    EXPECT_EQ(status_of(result), 200) << path << ": " << (result ? result->body : "");
  };
  for (int round = 0; round < 3; ++round) {
    operate("/v2/repository/models/tiny/activate", {{"version", "2"}});
    operate("/v2/repository/models/tiny/rollback");
    operate("/v2/repository/models/tiny/activate", {{"version", "2"}});
    operate("/v2/repository/models/tiny/unload", {{"parameters", {{"version", "1"}}}});
    operate("/v2/repository/models/tiny/activate", {{"version", "1"}});  // loads 1 again, then swaps
    operate("/v2/repository/models/tiny/load");                          // reload of the active version
  }
  after_answers(40);
  stop = true;
  for (auto& t : clients) t.join();

  EXPECT_EQ(tally.failed, 0) << (tally.failures.empty() ? "" : tally.failures.front());
  EXPECT_EQ(tally.wrong, 0);
  EXPECT_GT(tally.by_version[1], 0);
  EXPECT_GT(tally.by_version[2], 0);
  std::printf("hot swap: %d requests answered (%d by version 1, %d by version 2) across 18 repository operations\n", tally.answered.load(),
              tally.by_version[1].load(), tally.by_version[2].load());
}

}  // namespace
}  // namespace dermcds::test
