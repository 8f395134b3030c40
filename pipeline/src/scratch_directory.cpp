#include "scratch_directory.hpp"

#include <unistd.h>

#include <random>

#include "dermcds/error.hpp"

namespace dermcds::pipeline {

ScratchDirectory::ScratchDirectory(const std::string& prefix, const std::filesystem::path& parent) {
  const std::filesystem::path base = parent.empty() ? std::filesystem::temp_directory_path() : parent;
  std::random_device random;
  path_ = base / (prefix + "-" + std::to_string(::getpid()) + "-" + std::to_string(random()));
  std::error_code ec;
  std::filesystem::create_directories(path_, ec);
  if (ec) throw Error(ErrorCode::kIoError, "cannot create " + path_.string() + ": " + ec.message());
}

ScratchDirectory::~ScratchDirectory() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

}  // namespace dermcds::pipeline
