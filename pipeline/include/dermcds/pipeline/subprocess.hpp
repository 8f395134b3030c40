// Running the Python export pipeline (and other tools) as child processes.
#pragma once

#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace dermcds::pipeline {

struct ProcessRequest {
  std::vector<std::string> argv;                   // argv[0] is the program path; no shell involved
  std::map<std::string, std::string> environment;  // added to (or replacing in) ours
  // The child's stdout goes to our stderr, so that tools whose stdout is machine-readable
  // (--json) stay clean while the child's progress remains visible.
  bool stdout_to_stderr = true;
};

// Runs to completion and returns the exit status (128 + signal number if killed by a signal).
// Throws kNotFound if the program does not exist, kIoError if it cannot be started.
int run_process(const ProcessRequest& request);

}  // namespace dermcds::pipeline
