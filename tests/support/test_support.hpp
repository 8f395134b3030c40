// Small helpers shared by the gtest suites: paths the build passes in, temporary directories,
// and the real photographs provisioning unpacks.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace dermcds::test {

inline std::filesystem::path source_dir() { return DERMCDS_SOURCE_DIR; }
inline std::filesystem::path work_dir() { return DERMCDS_TEST_WORK_DIR; }
inline std::filesystem::path test_repository() { return DERMCDS_TEST_REPOSITORY; }

// Real photographs (JPEG and PNG) from Debian packages, unpacked by scripts/provision.sh.
inline std::vector<std::filesystem::path> real_photographs() {
  const std::filesystem::path photos = std::filesystem::path(DERMCDS_DEPS_DIR) / "photos";
  return {"/usr/share/matplotlib/mpl-data/sample_data/grace_hopper.jpg",
          photos / "coffee.png",
          photos / "chelsea.png",
          photos / "rocket.jpg",
          photos / "astronaut.png",
          photos / "retina.jpg"};
}

// A fresh, empty directory for one test, removed when it goes out of scope.
class TemporaryDirectory {
 public:
  TemporaryDirectory() {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    path_ = work_dir() / "tmp" / (std::string(info->test_suite_name()) + "." + info->name());
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~TemporaryDirectory() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TemporaryDirectory(const TemporaryDirectory&) = delete;
  TemporaryDirectory& operator=(const TemporaryDirectory&) = delete;
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

}  // namespace dermcds::test
