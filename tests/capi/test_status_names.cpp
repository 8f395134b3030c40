// Every dermcds::ErrorCode reaches C as its own status, named as the CLI and the service name it.
#include <set>
#include <string>

#include <gtest/gtest.h>

#include "dermcds/dermcds.h"
#include "dermcds/error.hpp"

namespace dermcds {
namespace {

TEST(CStatus, EveryErrorCodeHasItsOwnStatusWithTheSameName) {
  std::set<std::string> seen;
  for (int code = static_cast<int>(ErrorCode::kInvalidArgument); code <= static_cast<int>(kLastErrorCode); ++code) {
    const std::string name(to_string(static_cast<ErrorCode>(code)));
    int statuses_with_name = 0;
    for (int status = 0; status <= DERMCDS_FAILED_PRECONDITION; ++status)
      if (name == dermcds_status_name(static_cast<dermcds_status>(status))) ++statuses_with_name;
    EXPECT_EQ(statuses_with_name, 1) << name;
    seen.insert(name);
  }
  EXPECT_EQ(seen.size(), static_cast<std::size_t>(kLastErrorCode));
}

TEST(CStatus, StatusNumbersAreTheAbi) {
  // Apps compiled against dermcds.h compare these numbers; they never change within an ABI.
  EXPECT_EQ(DERMCDS_OK, 0);
  EXPECT_EQ(DERMCDS_INVALID_ARGUMENT, 1);
  EXPECT_EQ(DERMCDS_INVALID_IMAGE, 4);
  EXPECT_EQ(DERMCDS_RUNTIME_UNAVAILABLE, 9);
  EXPECT_EQ(DERMCDS_OUT_OF_MEMORY, 15);
  EXPECT_EQ(DERMCDS_PERMISSION_DENIED, 16);  // added after 15: the ABI grows, never renumbers
  EXPECT_EQ(DERMCDS_NO_SPACE, 17);
  EXPECT_EQ(DERMCDS_FAILED_PRECONDITION, 18);
  EXPECT_EQ(dermcds_abi_version(), static_cast<std::uint32_t>(DERMCDS_ABI_VERSION));
}

}  // namespace
}  // namespace dermcds
