// Where the Python export pipeline (python/dermcds_export) is and how to start it.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace dermcds::pipeline {

struct PythonPipeline {
  std::filesystem::path interpreter;  // Debian's /usr/bin/python3, which has torch and onnx
  std::filesystem::path package_dir;  // the folder that holds dermcds_export/

  // Build-time defaults, overridden by $DERMCDS_PYTHON and $DERMCDS_PYTHON_DIR.
  static PythonPipeline from_environment();

  // Runs `python -m dermcds_export <arguments...>`; throws kRuntimeFailure naming the
  // subcommand if it exits non-zero (its own message is already on stderr).
  void run(const std::vector<std::string>& arguments) const;
};

}  // namespace dermcds::pipeline
