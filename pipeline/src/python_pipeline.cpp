#include "dermcds/pipeline/python_pipeline.hpp"

#include <cstdlib>

#include "dermcds/error.hpp"
#include "dermcds/pipeline/subprocess.hpp"

namespace dermcds::pipeline {

PythonPipeline PythonPipeline::from_environment() {
  PythonPipeline pipeline{DERMCDS_PYTHON, DERMCDS_PYTHON_DIR};
  if (const char* interpreter = std::getenv("DERMCDS_PYTHON"); interpreter && *interpreter) pipeline.interpreter = interpreter;
  if (const char* dir = std::getenv("DERMCDS_PYTHON_DIR"); dir && *dir) pipeline.package_dir = dir;
  return pipeline;
}

void PythonPipeline::run(const std::vector<std::string>& arguments) const {
  std::error_code ec;
  if (!std::filesystem::is_directory(package_dir / "dermcds_export", ec))
    throw Error(ErrorCode::kNotFound,
                "the export pipeline is not at " + (package_dir / "dermcds_export").string() + " (set DERMCDS_PYTHON_DIR)");
  ProcessRequest request;
  request.argv = {interpreter.string(), "-m", "dermcds_export"};
  request.argv.insert(request.argv.end(), arguments.begin(), arguments.end());
  request.environment = {{"PYTHONPATH", package_dir.string()}, {"PYTHONUNBUFFERED", "1"}};
  const int status = run_process(request);
  if (status == 0) return;
  // The pipeline's exit statuses (python/dermcds_export/errors.py) keep their meaning here, so a
  // full disk during an export reads as no_space, not as a failed runtime.
  const std::string what = "python export pipeline '" + (arguments.empty() ? std::string() : arguments.front()) + "' failed";
  switch (status) {
    case 2:
      throw Error(ErrorCode::kInvalidArgument, what + " on its input (exit status 2; its message is above)");
    case 3:
      throw Error(ErrorCode::kNotFound, what + ": a file it needs is missing (exit status 3; its message is above)");
    case 8:
      throw Error(ErrorCode::kIoError, what + ": an I/O error (its message is above)");
    case 10:
      throw Error(ErrorCode::kPermissionDenied, what + ": permission denied (its message is above)");
    case 12:
      throw Error(ErrorCode::kNoSpace, what + ": a write did not fit (disk full, quota or file size limit; its message is above)");
    default:
      throw Error(ErrorCode::kRuntimeFailure, what + " with exit status " + std::to_string(status));
  }
}

}  // namespace dermcds::pipeline
