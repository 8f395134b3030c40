#include "dermcds/pipeline/subprocess.hpp"

#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "dermcds/error.hpp"

extern char** environ;

namespace dermcds::pipeline {

namespace {

std::vector<std::string> merged_environment(const std::map<std::string, std::string>& extra) {
  std::vector<std::string> out;
  for (char** entry = environ; *entry; ++entry) {
    const std::string kv = *entry;
    const std::string key = kv.substr(0, kv.find('='));
    if (!extra.contains(key)) out.push_back(kv);
  }
  for (const auto& [key, value] : extra) out.push_back(key + "=" + value);
  return out;
}

std::vector<char*> c_strings(std::vector<std::string>& strings) {
  std::vector<char*> out;
  for (std::string& s : strings) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

class SpawnFileActions {
 public:
  SpawnFileActions() { posix_spawn_file_actions_init(&actions_); }
  ~SpawnFileActions() { posix_spawn_file_actions_destroy(&actions_); }
  SpawnFileActions(const SpawnFileActions&) = delete;
  SpawnFileActions& operator=(const SpawnFileActions&) = delete;
  posix_spawn_file_actions_t* get() { return &actions_; }

 private:
  posix_spawn_file_actions_t actions_;
};

}  // namespace

int run_process(const ProcessRequest& request) {
  if (request.argv.empty()) throw Error(ErrorCode::kInternal, "run_process: empty argv");
  if (::access(request.argv[0].c_str(), X_OK) != 0)
    throw Error(ErrorCode::kNotFound, "cannot run " + request.argv[0] + ": " + std::strerror(errno));

  std::vector<std::string> argv_strings = request.argv;
  std::vector<std::string> env_strings = merged_environment(request.environment);
  std::vector<char*> argv = c_strings(argv_strings);
  std::vector<char*> envp = c_strings(env_strings);

  SpawnFileActions actions;
  if (request.stdout_to_stderr) posix_spawn_file_actions_adddup2(actions.get(), STDERR_FILENO, STDOUT_FILENO);
  pid_t pid = 0;
  const int spawn_error = posix_spawn(&pid, argv[0], actions.get(), nullptr, argv.data(), envp.data());
  if (spawn_error != 0) throw Error(ErrorCode::kIoError, "cannot start " + request.argv[0] + ": " + std::strerror(spawn_error));

  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) throw Error(ErrorCode::kIoError, "lost track of " + request.argv[0] + ": " + std::strerror(errno));
  }
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return 255;
}

}  // namespace dermcds::pipeline
