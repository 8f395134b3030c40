// Repository administration: the API key, Triton's index/load/unload, activate and rollback, and
// a failed load that leaves the serving version in place. Each test serves a private copy of the
// fixture repository, since activation writes its ACTIVE marker.
#include <functional>

#include "service_test_support.hpp"

namespace dermcds::test {
namespace {

constexpr const char* kKey = "s3cret-admin-key-for-tests";

struct AdminServer {
  TemporaryDirectory tmp;
  std::filesystem::path repository = copy_fixture_repository(tmp);
  std::unique_ptr<ServerProcess> server;
  std::unique_ptr<httplib::Client> client;

  explicit AdminServer(std::vector<std::string> extra = {}, bool with_key = true, bool wait_until_ready = true) {
    std::vector<std::string> arguments = {"--model", "tiny", "--default-model", "tiny"};
    arguments.insert(arguments.end(), extra.begin(), extra.end());
    StartOptions options{repository, arguments, {}, wait_until_ready};
    if (with_key) options.environment["DERMCDS_ADMIN_KEY"] = kKey;
    server = start_server(options);
    client = client_for(*server);
  }

  httplib::Result admin(const std::string& path, const json& body = json::object()) {
    return client->Post(path.c_str(), {{"Authorization", std::string("Bearer ") + kKey}}, body.dump(), "application/json");
  }
  // The active version answering a plain classification of `image`, checked against the numpy
  // reference of the version it names.
  std::string classify_and_check(std::size_t reference_index, const std::string& query = "") {
    const json reference = service_references()[reference_index];
    const auto result = post_image(*client, reference["image"].get<std::string>(), query);
    if (status_of(result) != 200) {
      ADD_FAILURE() << "classification failed: " << (result ? result->body : "no response");
      return "";
    }
    const json body = body_of(result);
    const std::string version = body["model_version"];
    EXPECT_LE(max_abs_difference(probabilities_of(body), reference["probabilities"][version].get<std::vector<double>>()), 1e-4)
        << "version " << version;
    return version;
  }
  std::string active_marker() const { return file_text(repository / "tiny" / "ACTIVE"); }
};

TEST(RepositoryAdmin, DisabledWithoutAConfiguredKey) {
  AdminServer s({}, /*with_key=*/false);
  for (const char* path : {"/v2/repository/index", "/v2/repository/models/tiny/load", "/v2/repository/models/tiny/unload",
                           "/v2/repository/models/tiny/activate", "/v2/repository/models/tiny/rollback"}) {
    const auto result = s.admin(path);
    EXPECT_EQ(status_of(result), 403) << path;
    EXPECT_TRUE(body_of(result).contains("error"));
  }
  EXPECT_EQ(s.classify_and_check(0), "1");  // nothing changed
}

TEST(RepositoryAdmin, MissingOrWrongKeyIs401) {
  AdminServer s;
  const auto missing = s.client->Post("/v2/repository/index", "{}", "application/json");
  EXPECT_EQ(status_of(missing), 401);
  EXPECT_NE(missing->get_header_value("WWW-Authenticate").find("Bearer"), std::string::npos);
  EXPECT_EQ(status_of(s.client->Post("/v2/repository/index", {{"Authorization", "Bearer wrong"}}, "{}", "application/json")), 401);
  EXPECT_EQ(
      status_of(s.client->Post("/v2/repository/index", {{"Authorization", std::string("Bearer ") + kKey + "x"}}, "{}", "application/json")),
      401);
  EXPECT_EQ(status_of(s.client->Post("/v2/repository/index", {{"X-API-Key", kKey}}, "{}", "application/json")), 200);
  EXPECT_EQ(status_of(s.admin("/v2/repository/index")), 200);
  // The key never shows up in the log.
  EXPECT_EQ(s.server->log().find(kKey), std::string::npos);
}

TEST(RepositoryAdmin, IndexListsEveryVersionWithItsState) {
  AdminServer s;
  const json index = body_of(s.admin("/v2/repository/index"));
  std::map<std::string, std::string> states;
  for (const auto& entry : index) {
    EXPECT_EQ(entry.size(), 4u) << entry;  // name, version, state, reason: Triton's fields
    states[entry["name"].get<std::string>() + "/" + entry["version"].get<std::string>()] = entry["state"];
  }
  EXPECT_EQ(states["tiny/1"], "READY");
  EXPECT_EQ(states["tiny/2"], "UNAVAILABLE");
  EXPECT_EQ(states["tiny-conv/1"], "UNAVAILABLE");
  const json ready_only = body_of(s.admin("/v2/repository/index", {{"ready", true}}));
  ASSERT_EQ(ready_only.size(), 1u);
  EXPECT_EQ(ready_only[0]["name"], "tiny");
}

TEST(RepositoryAdmin, LoadingAVersionMakesItCallableWithoutActivatingIt) {
  AdminServer s;
  const auto loaded = s.admin("/v2/repository/models/tiny/load", {{"parameters", {{"version", "2"}}}});
  ASSERT_EQ(status_of(loaded), 200) << loaded->body;
  EXPECT_EQ(body_of(loaded)["loaded"], "2");
  EXPECT_EQ(s.classify_and_check(1, "?version=2"), "2");
  EXPECT_EQ(s.classify_and_check(1), "1");  // the active version is unchanged
  EXPECT_EQ(status_of(s.client->Get("/v2/models/tiny/versions/2/ready")), 200);
  EXPECT_EQ(body_of(s.client->Get("/v2/models/tiny"))["versions"], json::array({"1", "2"}));
  EXPECT_EQ(s.active_marker(), "1\n");
}

TEST(RepositoryAdmin, ActivateSwapsTheServingVersionAndRecordsIt) {
  AdminServer s;
  EXPECT_EQ(s.classify_and_check(2), "1");
  const auto activated = s.admin("/v2/repository/models/tiny/activate", {{"parameters", {{"version", "2"}}}});
  ASSERT_EQ(status_of(activated), 200) << activated->body;
  EXPECT_EQ(body_of(activated)["active_version"], "2");
  EXPECT_EQ(s.classify_and_check(2), "2");
  EXPECT_EQ(s.active_marker(), "2\n");
  const std::string metrics = s.client->Get("/metrics")->body;
  EXPECT_NE(metrics.find("dermcds_model_active_version{model=\"tiny\"} 2\n"), std::string::npos);
  // Without a version, activation is a client error.
  EXPECT_EQ(status_of(s.admin("/v2/repository/models/tiny/activate")), 400);
  EXPECT_EQ(status_of(s.admin("/v2/repository/models/tiny/activate", {{"version", "9"}})), 404);
}

TEST(RepositoryAdmin, RollbackReturnsToThePreviousVersion) {
  AdminServer s;
  ASSERT_EQ(status_of(s.admin("/v2/repository/models/tiny/activate", {{"version", "2"}})), 200);
  EXPECT_EQ(s.classify_and_check(3), "2");
  const auto rolled_back = s.admin("/v2/repository/models/tiny/rollback");
  ASSERT_EQ(status_of(rolled_back), 200) << rolled_back->body;
  EXPECT_EQ(body_of(rolled_back)["active_version"], "1");
  EXPECT_EQ(s.classify_and_check(3), "1");
  EXPECT_EQ(s.active_marker(), "1\n");
  // Nothing earlier to go back to.
  EXPECT_EQ(status_of(s.admin("/v2/repository/models/tiny/rollback")), 404);
}

TEST(RepositoryAdmin, UnloadVersionsAndWholeModels) {
  AdminServer s;
  ASSERT_EQ(status_of(s.admin("/v2/repository/models/tiny/load", {{"parameters", {{"version", "2"}}}})), 200);
  ASSERT_EQ(status_of(s.admin("/v2/repository/models/tiny/unload", {{"parameters", {{"version", "2"}}}})), 200);
  EXPECT_EQ(status_of(s.client->Get("/v2/models/tiny/versions/2/ready")), 400);
  // The active version cannot go on its own.
  EXPECT_EQ(status_of(s.admin("/v2/repository/models/tiny/unload", {{"parameters", {{"version", "1"}}}})), 400);
  EXPECT_EQ(s.classify_and_check(0), "1");

  ASSERT_EQ(status_of(s.admin("/v2/repository/models/tiny/unload")), 200);
  EXPECT_EQ(status_of(post_image(*s.client, real_photographs()[0], "?model=tiny")), 404);
  EXPECT_EQ(status_of(s.client->Get("/v2/models/tiny/ready")), 400);
  EXPECT_EQ(status_of(s.client->Get("/v2/health/ready")), 400);  // nothing left to serve
  EXPECT_EQ(status_of(s.admin("/v2/repository/models/tiny/unload")), 404);

  // Loading without a version brings back what the repository marks active.
  ASSERT_EQ(status_of(s.admin("/v2/repository/models/tiny/load")), 200);
  EXPECT_EQ(status_of(s.client->Get("/v2/health/ready")), 200);
  EXPECT_EQ(s.classify_and_check(0), "1");
}

// Version 3: version 2's files with one byte of the model changed after its checksum was taken.
// Version 3: a copy of version 2, its manifest changed by `edit`.
std::filesystem::path add_version_3(const std::filesystem::path& repository, const std::function<void(json&)>& edit = {}) {
  const auto v3 = repository / "tiny" / "3";
  std::filesystem::copy(repository / "tiny" / "2", v3, std::filesystem::copy_options::recursive);
  json manifest = json::parse(std::ifstream(v3 / "manifest.json"));
  manifest["version"] = "3";
  if (edit) edit(manifest);
  std::ofstream(v3 / "manifest.json") << manifest.dump(2);
  return v3;
}

void add_tampered_version(const std::filesystem::path& repository) {
  const auto v3 = add_version_3(repository);
  std::fstream model(v3 / "model.onnx", std::ios::in | std::ios::out | std::ios::binary);
  model.seekp(-5, std::ios::end);
  model.put('\x42');
}

TEST(RepositoryAdmin, FailedActivationKeepsTheOldVersionServing) {
  AdminServer s;
  add_tampered_version(s.repository);
  const auto failed = s.admin("/v2/repository/models/tiny/activate", {{"parameters", {{"version", "3"}}}});
  EXPECT_EQ(status_of(failed), 500);
  const std::string error = body_of(failed)["error"];
  EXPECT_NE(error.find("model.onnx"), std::string::npos) << error;  // the operator is told what failed
  EXPECT_EQ(s.classify_and_check(4), "1");
  EXPECT_EQ(status_of(s.client->Get("/v2/health/ready")), 200);
  EXPECT_EQ(s.active_marker(), "1\n");
  bool reported = false;
  for (const auto& entry : body_of(s.admin("/v2/repository/index")))
    if (entry["name"] == "tiny" && entry["version"] == "3") {
      EXPECT_EQ(entry["state"], "UNAVAILABLE");
      reported = entry["reason"].get<std::string>().find("model.onnx") != std::string::npos;
    }
  EXPECT_TRUE(reported);
  // A later good activation still works.
  EXPECT_EQ(status_of(s.admin("/v2/repository/models/tiny/activate", {{"version", "2"}})), 200);
  EXPECT_EQ(s.classify_and_check(4), "2");
}

TEST(RepositoryAdmin, RejectedCandidateIsNeverLoaded) {
  AdminServer s;
  // What the lifecycle writes into a version whose parity gate failed (docs/lifecycle.md).
  add_version_3(s.repository, [](json& m) { m["lifecycle"] = {{"status", "rejected"}}; });
  for (const char* action : {"load", "activate"}) {
    SCOPED_TRACE(action);
    const auto refused = s.admin(std::string("/v2/repository/models/tiny/") + action, {{"parameters", {{"version", "3"}}}});
    EXPECT_EQ(status_of(refused), 409);  // the serving rule: failed_precondition
    const std::string error = body_of(refused)["error"];
    EXPECT_NE(error.find("rejected candidate"), std::string::npos) << error;
  }
  EXPECT_EQ(status_of(post_image(*s.client, service_references()[4]["image"].get<std::string>(), "?version=3")), 404);
  EXPECT_EQ(s.classify_and_check(4), "1");
  EXPECT_EQ(s.active_marker(), "1\n");
}

TEST(RepositoryAdmin, ServerWhoseModelCannotLoadIsLiveButNotReady) {
  TemporaryDirectory tmp;
  const auto repository = copy_fixture_repository(tmp);
  add_tampered_version(repository);
  std::ofstream(repository / "tiny" / "ACTIVE") << "3\n";
  StartOptions options{repository, {"--model", "tiny", "--default-model", "tiny"}, {{"DERMCDS_ADMIN_KEY", kKey}}, false};
  const auto server = start_server(options);
  const auto client = client_for(*server);
  // Give it the time its start-up needs: wait for the load failure to be logged.
  for (int i = 0; i < 1000 && server->log().find("model_load_failed") == std::string::npos; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_EQ(status_of(client->Get("/v2/health/live")), 200);
  EXPECT_EQ(status_of(client->Get("/v2/health/ready")), 400);
  EXPECT_EQ(status_of(client->Get("/v2/models/tiny/ready")), 400);
  EXPECT_EQ(status_of(post_image(*client, real_photographs()[0])), 503);
  // Activating a good version repairs it.
  EXPECT_EQ(
      status_of(client->Post("/v2/repository/models/tiny/activate", {{"X-API-Key", kKey}}, R"({"version": "1"})", "application/json")),
      200);
  EXPECT_EQ(status_of(client->Get("/v2/health/ready")), 200);
}

}  // namespace
}  // namespace dermcds::test
