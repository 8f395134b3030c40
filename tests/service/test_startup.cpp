// Starting pms-derm-cds with good and bad configurations: --help, --print-config, flag and file
// errors (exit 2), a repository that cannot be served (exit 1), each with a message that says
// what is wrong.
#include <sys/wait.h>

#include <cstdio>

#include "service_test_support.hpp"

namespace dermcds::test {
namespace {

struct Outcome {
  int status = -1;
  std::string output;  // stdout and stderr together
};

Outcome run_binary(const std::string& arguments) {
  const std::string command = std::string(PMS_DERM_CDS_BINARY) + " " + arguments + " 2>&1";
  Outcome outcome;
  FILE* pipe = ::popen(command.c_str(), "r");
  if (!pipe) return outcome;
  char buffer[4096];
  for (std::size_t n; (n = std::fread(buffer, 1, sizeof buffer, pipe)) > 0;) outcome.output.append(buffer, n);
  const int status = ::pclose(pipe);
  outcome.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return outcome;
}

TEST(Startup, HelpListsTheFlags) {
  const Outcome help = run_binary("--help");
  EXPECT_EQ(help.status, 0);
  for (const char* flag : {"--repository", "--max-batch-size", "--max-queue-delay-ms", "--no-batching", "--admin-key-file",
                           "--request-timeout-ms", "--config"})
    EXPECT_NE(help.output.find(flag), std::string::npos) << flag;
}

TEST(Startup, PrintConfigShowsTheEffectiveSettingsButNotTheKey) {
  TemporaryDirectory tmp;
  std::ofstream(tmp.path() / "service.json") << R"({"max_batch_size": 4, "repository": "/srv/models"})";
  const Outcome printed =
      run_binary("--config " + (tmp.path() / "service.json").string() + " --port 9001 --print-config DERMCDS_ADMIN_KEY=x");
  // (A stray positional argument is an error; the environment variable goes the usual way.)
  EXPECT_EQ(printed.status, 2) << printed.output;
  const Outcome config = run_binary("--config " + (tmp.path() / "service.json").string() + " --port 9001 --print-config");
  ASSERT_EQ(config.status, 0) << config.output;
  const json document = json::parse(config.output);
  EXPECT_EQ(document["max_batch_size"], 4);
  EXPECT_EQ(document["repository"], "/srv/models");
  EXPECT_EQ(document["port"], 9001);
  EXPECT_EQ(document["max_queue_delay_ms"], 5.0);  // a default
  EXPECT_EQ(document["admin_key"], "(not set: repository API disabled)");
}

TEST(Startup, BadConfigurationExits2NamingTheProblem) {
  const Outcome flag = run_binary("--max-batch-size 0 --repository " + fixture_repository().string());
  EXPECT_EQ(flag.status, 2);
  EXPECT_NE(flag.output.find("max_batch_size"), std::string::npos) << flag.output;
  const Outcome unknown_flag = run_binary("--batch-size 4");
  EXPECT_EQ(unknown_flag.status, 2);
  EXPECT_NE(unknown_flag.output.find("--batch-size"), std::string::npos) << unknown_flag.output;

  TemporaryDirectory tmp;
  std::ofstream(tmp.path() / "service.json") << R"({"max_batch": 4})";
  const Outcome file = run_binary("--config " + (tmp.path() / "service.json").string());
  EXPECT_EQ(file.status, 2);
  EXPECT_NE(file.output.find("\"max_batch\""), std::string::npos) << file.output;
  const Outcome level = run_binary("--log-level loud --repository " + fixture_repository().string());
  EXPECT_EQ(level.status, 2);
  EXPECT_NE(level.output.find("loud"), std::string::npos) << level.output;
}

TEST(Startup, MissingRepositoryExits1WithAClearMessage) {
  const Outcome missing = run_binary("--port 0 --repository /nonexistent/models --no-banner");
  EXPECT_EQ(missing.status, 1);
  EXPECT_NE(missing.output.find("no model repository at /nonexistent/models"), std::string::npos) << missing.output;
  EXPECT_NE(missing.output.find("\"event\":\"startup_failed\""), std::string::npos) << missing.output;
}

}  // namespace
}  // namespace dermcds::test
