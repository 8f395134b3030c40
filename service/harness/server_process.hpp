// A pms-derm-cds process for tests and benchmarks: started on 127.0.0.1 with a free port,
// awaited until ready, stopped with SIGTERM as an operator would.
//
// Ownership: the object owns the child process; destruction sends SIGTERM and waits (SIGKILL
// after the grace period), so no test leaves a server behind.
// Errors: the constructor throws dermcds::Error (kNotFound for a missing binary, kDeadlineExceeded
// when the server does not become ready in time, kInternal when it exits early), with the end of
// the server's log in the message.
#pragma once

#include <chrono>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include <sys/types.h>

#include "dermcds/error.hpp"

namespace dermcds::service::harness {

struct ServerOptions {
  std::filesystem::path binary;                    // the pms-derm-cds executable
  std::vector<std::string> arguments;              // flags besides --host, --port and --port-file
  std::map<std::string, std::string> environment;  // added to this process's environment
  std::filesystem::path work_dir;                  // port file, stdout and stderr logs go here
  bool wait_until_ready = true;                    // else only until it listens
  std::chrono::seconds start_timeout{180};         // B4 loads and warms up in a few seconds; CI is slow
};

class ServerProcess {
 public:
  explicit ServerProcess(ServerOptions options);
  ~ServerProcess();
  ServerProcess(const ServerProcess&) = delete;
  ServerProcess& operator=(const ServerProcess&) = delete;

  int port() const { return port_; }
  std::string host() const { return "127.0.0.1"; }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  pid_t pid() const { return pid_; }

  void send_signal(int signal) const;
  // Waits for the process to exit; returns its exit status (128 + signal if killed), or -1 if
  // it is still running after `timeout`.
  int wait_for_exit(std::chrono::milliseconds timeout);
  // SIGTERM, then wait_for_exit; SIGKILL if the grace period passes (and -1 is returned).
  int stop(std::chrono::milliseconds grace = std::chrono::seconds(60));
  bool running() const { return pid_ > 0; }

  std::string log() const;     // everything the server wrote to stderr (its JSON log)
  std::string output() const;  // and to stdout (the banner)
  const std::filesystem::path& log_path() const { return stderr_path_; }

 private:
  void wait_until_listening(std::chrono::steady_clock::time_point deadline);
  void wait_until_ready(std::chrono::steady_clock::time_point deadline);
  [[noreturn]] void fail(ErrorCode code, const std::string& why);

  ServerOptions options_;
  std::filesystem::path port_file_, stdout_path_, stderr_path_;
  pid_t pid_ = -1;
  int port_ = 0;
};

}  // namespace dermcds::service::harness
