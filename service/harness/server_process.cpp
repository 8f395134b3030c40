#include "server_process.hpp"

#include <csignal>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <httplib.h>

#include "dermcds/error.hpp"

extern char** environ;

namespace dermcds::service::harness {

namespace {

using Clock = std::chrono::steady_clock;

std::string read_text(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

std::string tail(const std::string& text, std::size_t bytes) {
  return text.size() <= bytes ? text : "..." + text.substr(text.size() - bytes);
}

}  // namespace

ServerProcess::ServerProcess(ServerOptions options) : options_(std::move(options)) {
  if (!std::filesystem::is_regular_file(options_.binary))
    throw Error(ErrorCode::kNotFound, "no pms-derm-cds binary at " + options_.binary.string());
  std::filesystem::create_directories(options_.work_dir);
  port_file_ = options_.work_dir / "port";
  stdout_path_ = options_.work_dir / "stdout.log";
  stderr_path_ = options_.work_dir / "stderr.log";
  std::filesystem::remove(port_file_);

  std::vector<std::string> argv = {options_.binary.string(), "--host", "127.0.0.1", "--port", "0", "--port-file", port_file_.string()};
  argv.insert(argv.end(), options_.arguments.begin(), options_.arguments.end());
  std::vector<char*> argv_pointers;
  for (auto& a : argv) argv_pointers.push_back(a.data());
  argv_pointers.push_back(nullptr);

  std::vector<std::string> environment;
  for (char** e = environ; *e; ++e) {
    const std::string entry = *e;
    const std::string name = entry.substr(0, entry.find('='));
    if (!options_.environment.count(name)) environment.push_back(entry);
  }
  for (const auto& [name, value] : options_.environment) environment.push_back(name + "=" + value);
  std::vector<char*> environment_pointers;
  for (auto& e : environment) environment_pointers.push_back(e.data());
  environment_pointers.push_back(nullptr);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, stdout_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, stderr_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  // The child starts with default signal handling whatever the caller blocked.
  posix_spawnattr_t attributes;
  posix_spawnattr_init(&attributes);
  sigset_t none;
  sigemptyset(&none);
  posix_spawnattr_setsigmask(&attributes, &none);
  posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETSIGMASK);
  const int rc = posix_spawn(&pid_, argv[0].c_str(), &actions, &attributes, argv_pointers.data(), environment_pointers.data());
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attributes);
  if (rc != 0) {
    pid_ = -1;
    throw Error(ErrorCode::kIoError, "cannot start " + argv[0] + ": " + std::strerror(rc));
  }

  const auto deadline = Clock::now() + options_.start_timeout;
  try {
    wait_until_listening(deadline);
    if (options_.wait_until_ready) wait_until_ready(deadline);
  } catch (...) {
    stop(std::chrono::seconds(10));
    throw;
  }
}

ServerProcess::~ServerProcess() {
  if (running()) stop();
}

void ServerProcess::fail(ErrorCode code, const std::string& why) {
  throw Error(code, "pms-derm-cds " + why + "; its log ends with:\n" + tail(log(), 3000));
}

void ServerProcess::wait_until_listening(Clock::time_point deadline) {
  while (Clock::now() < deadline) {
    if (wait_for_exit(std::chrono::milliseconds(0)) >= 0) fail(ErrorCode::kInternal, "exited during start-up");
    std::ifstream in(port_file_);
    if (in >> port_ && port_ > 0) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  fail(ErrorCode::kDeadlineExceeded, "did not start listening in time");
}

void ServerProcess::wait_until_ready(Clock::time_point deadline) {
  httplib::Client client(host(), port_);
  client.set_connection_timeout(std::chrono::seconds(5));
  while (Clock::now() < deadline) {
    if (wait_for_exit(std::chrono::milliseconds(0)) >= 0) fail(ErrorCode::kInternal, "exited during start-up");
    if (const auto response = client.Get("/v2/health/ready"); response && response->status == 200) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  fail(ErrorCode::kDeadlineExceeded, "did not become ready in time");
}

void ServerProcess::send_signal(int signal) const {
  if (pid_ > 0) ::kill(pid_, signal);
}

int ServerProcess::wait_for_exit(std::chrono::milliseconds timeout) {
  if (pid_ <= 0) return -1;
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    int status = 0;
    const pid_t done = ::waitpid(pid_, &status, WNOHANG);
    if (done == pid_) {
      pid_ = -1;
      return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    }
    if (Clock::now() >= deadline) return -1;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

int ServerProcess::stop(std::chrono::milliseconds grace) {
  if (pid_ <= 0) return -1;
  send_signal(SIGTERM);
  const int status = wait_for_exit(grace);
  if (status >= 0) return status;
  send_signal(SIGKILL);
  wait_for_exit(std::chrono::seconds(10));
  return -1;
}

std::string ServerProcess::log() const { return read_text(stderr_path_); }

std::string ServerProcess::output() const { return read_text(stdout_path_); }

}  // namespace dermcds::service::harness
