// A private temporary directory, removed with everything in it when the object goes away.
#pragma once

#include <filesystem>
#include <string>

namespace dermcds::pipeline {

class ScratchDirectory {
 public:
  // Creates <parent>/<prefix>-<pid>-<random>; parent defaults to the system's temporary directory.
  explicit ScratchDirectory(const std::string& prefix, const std::filesystem::path& parent = {});
  ~ScratchDirectory();
  ScratchDirectory(const ScratchDirectory&) = delete;
  ScratchDirectory& operator=(const ScratchDirectory&) = delete;

  const std::filesystem::path& path() const noexcept { return path_; }

 private:
  std::filesystem::path path_;
};

}  // namespace dermcds::pipeline
