// Shared by the service integration tests: the fixture repository (make_service_repository.py),
// starting the real pms-derm-cds on loopback, and small HTTP helpers.
#pragma once

#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include "dermcds/file_bytes.hpp"
#include "server_process.hpp"
#include "test_support.hpp"

namespace dermcds::test {

using nlohmann::json;
using service::harness::ServerOptions;
using service::harness::ServerProcess;

inline std::filesystem::path service_fixture_dir() { return work_dir() / "service"; }
inline std::filesystem::path fixture_repository() { return service_fixture_dir() / "repository"; }

inline json service_references() { return json::parse(std::ifstream(service_fixture_dir() / "service_reference.json")); }

inline std::string file_text(const std::filesystem::path& path) {
  const auto bytes = read_file_bytes(path);
  return {bytes.begin(), bytes.end()};
}

// A private copy of the fixture repository, for tests that change it (ACTIVE markers, broken
// versions); the copy lives in the test's temporary directory.
inline std::filesystem::path copy_fixture_repository(const TemporaryDirectory& tmp) {
  const auto copy = tmp.path() / "repository";
  std::filesystem::copy(fixture_repository(), copy, std::filesystem::copy_options::recursive);
  return copy;
}

struct StartOptions {
  std::filesystem::path repository = fixture_repository();
  std::vector<std::string> arguments;  // besides --repository and --no-banner
  std::map<std::string, std::string> environment;
  bool wait_until_ready = true;
};

// Starts pms-derm-cds for the current test; its logs go to the test's work directory.
inline std::unique_ptr<ServerProcess> start_server(StartOptions options = {}) {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  ServerOptions server;
  server.binary = PMS_DERM_CDS_BINARY;
  server.work_dir = work_dir() / "service-runs" / (std::string(info->test_suite_name()) + "." + info->name());
  std::filesystem::remove_all(server.work_dir);
  server.arguments = {"--repository", options.repository.string(), "--no-banner", "--warmup-runs", "1"};
  server.arguments.insert(server.arguments.end(), options.arguments.begin(), options.arguments.end());
  server.environment = std::move(options.environment);
  server.wait_until_ready = options.wait_until_ready;
  return std::make_unique<ServerProcess>(std::move(server));
}

inline std::unique_ptr<ServerProcess> start_server_with(std::vector<std::string> arguments) {
  return start_server({fixture_repository(), std::move(arguments), {}, true});
}

inline std::unique_ptr<httplib::Client> client_for(const ServerProcess& server) {
  auto client = std::make_unique<httplib::Client>(server.host(), server.port());
  client->set_tcp_nodelay(true);
  client->set_read_timeout(std::chrono::seconds(60));
  client->set_write_timeout(std::chrono::seconds(60));
  return client;
}

inline std::string content_type_of(const std::filesystem::path& image) { return image.extension() == ".png" ? "image/png" : "image/jpeg"; }

inline httplib::Result post_image(httplib::Client& client, const std::filesystem::path& image, const std::string& query = "",
                                  const httplib::Headers& headers = {}) {
  return client.Post(("/v1/classify" + query).c_str(), headers, file_text(image), content_type_of(image).c_str());
}

// The JSON body of a response, failing the test (not crashing) when there is none.
inline json body_of(const httplib::Result& result) {
  if (!result) {
    ADD_FAILURE() << "no HTTP response: " << httplib::to_string(result.error());
    return json();
  }
  const json body = json::parse(result->body, nullptr, false);
  if (body.is_discarded()) ADD_FAILURE() << "response is not JSON: " << result->body.substr(0, 200);
  return body;
}

inline int status_of(const httplib::Result& result) { return result ? result->status : -1; }

inline std::vector<double> probabilities_of(const json& result) {
  std::vector<double> out;
  for (const auto& entry : result.at("probabilities")) out.push_back(entry.at("probability").get<double>());
  return out;
}

inline double max_abs_difference(const std::vector<double>& a, const std::vector<double>& b) {
  EXPECT_EQ(a.size(), b.size());
  double worst = 0;
  for (std::size_t i = 0; i < std::min(a.size(), b.size()); ++i) worst = std::max(worst, std::abs(a[i] - b[i]));
  return worst;
}

}  // namespace dermcds::test
