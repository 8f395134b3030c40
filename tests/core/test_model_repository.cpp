#include <fstream>

#include <gtest/gtest.h>

#include "dermcds/error.hpp"
#include "dermcds/model_repository.hpp"
#include "manifest_fixture.hpp"
#include "test_support.hpp"

namespace dermcds {
namespace {

TEST(ModelRepository, VersionsSortNumerically) {
  test::TemporaryDirectory tmp;
  for (const char* v : {"1", "2", "10"}) test::write_package(tmp.path(), "x", "derm-test", v);
  std::filesystem::create_directories(tmp.path() / "derm-test" / "notaversion");
  std::filesystem::create_directories(tmp.path() / "derm-test" / "7");  // no manifest: not a version
  const ModelRepository repository(tmp.path());
  EXPECT_EQ(repository.versions("derm-test"), (std::vector<std::string>{"1", "2", "10"}));
  EXPECT_EQ(repository.model_names(), (std::vector<std::string>{"derm-test"}));
  EXPECT_EQ(repository.next_version("derm-test"), "11");
  EXPECT_EQ(repository.next_version("other"), "1");
}

TEST(ModelRepository, ActiveVersionIsTheMarkerOrTheHighest) {
  test::TemporaryDirectory tmp;
  for (const char* v : {"1", "2", "3"}) test::write_package(tmp.path(), "x", "derm-test", v);
  const ModelRepository repository(tmp.path());
  EXPECT_EQ(repository.active_version("derm-test"), "3");
  repository.set_active_version("derm-test", "2");
  EXPECT_EQ(repository.active_version("derm-test"), "2");
  EXPECT_EQ(resolve_package_dir(tmp.path() / "derm-test"), tmp.path() / "derm-test" / "2");
  EXPECT_THROW(repository.set_active_version("derm-test", "9"), Error);
  EXPECT_EQ(repository.active_version("derm-test"), "2");
}

TEST(ModelRepository, MarkerNamingAMissingVersionIsAnError) {
  test::TemporaryDirectory tmp;
  test::write_package(tmp.path(), "x", "derm-test", "1");
  std::ofstream(tmp.path() / "derm-test" / "ACTIVE") << "5\n";
  EXPECT_THROW(ModelRepository(tmp.path()).active_version("derm-test"), Error);
}

TEST(ModelRepository, ResolvesVersionDirectoriesAsGiven) {
  test::TemporaryDirectory tmp;
  const auto dir = test::write_package(tmp.path(), "x", "derm-test", "4");
  EXPECT_EQ(resolve_package_dir(dir), dir);
  try {
    resolve_package_dir(tmp.path() / "missing");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kNotFound);
  }
}

TEST(ModelRepository, RejectsMalformedNames) {
  test::TemporaryDirectory tmp;
  const ModelRepository repository(tmp.path());
  EXPECT_THROW(repository.package_dir("../etc", "1"), Error);
  EXPECT_THROW(repository.package_dir("derm", "0"), Error);
  EXPECT_THROW(repository.package_dir("derm", "1a"), Error);
}

}  // namespace
}  // namespace dermcds
