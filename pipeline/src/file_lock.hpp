// An exclusive advisory lock (flock) on a file, held for the object's lifetime: serialises
// builds, promotions and rollbacks of one model across processes.
#pragma once

#include <filesystem>

namespace dermcds::pipeline {

class FileLock {
 public:
  // Creates the file if needed and blocks until the lock is ours. Throws kIoError.
  explicit FileLock(const std::filesystem::path& path);
  ~FileLock();
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;

 private:
  int fd_ = -1;
};

}  // namespace dermcds::pipeline
