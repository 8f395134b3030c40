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
    throw Error(ErrorCode::kNotFound, "the export pipeline is not at " + (package_dir / "dermcds_export").string() +
                                          " (set DERMCDS_PYTHON_DIR)");
  ProcessRequest request;
  request.argv = {interpreter.string(), "-m", "dermcds_export"};
  request.argv.insert(request.argv.end(), arguments.begin(), arguments.end());
  request.environment = {{"PYTHONPATH", package_dir.string()}, {"PYTHONUNBUFFERED", "1"}};
  const int status = run_process(request);
  if (status != 0)
    throw Error(ErrorCode::kRuntimeFailure, "python export pipeline '" + (arguments.empty() ? std::string() : arguments.front()) +
                                                "' failed with exit status " + std::to_string(status));
}

}  // namespace dermcds::pipeline
