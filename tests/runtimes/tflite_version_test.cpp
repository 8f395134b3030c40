// The TFLite backend reproduces TF 2.9's XNNPACK options struct (tflite_api.hpp), so it must run
// only on a 2.9.x library: available() is the version check, and the library we ship passes it.
#include <gtest/gtest.h>
#include <tensorflow/lite/c/c_api.h>

#include "dermcds/runtime.hpp"
#include "tflite_api.hpp"

namespace dermcds::runtimes::tflite {
namespace {

TEST(TfliteVersionGuard, AcceptsOnlyThe29Series) {
  for (const char* ok : {"2.9.0", "2.9.1", "2.9.3", "2.9.12", "2.9.0-rc1"}) EXPECT_TRUE(supported_version(ok)) << ok;
  // 2.10 added a weights_cache pointer to the options; 2.90 and 12.9 only look alike.
  for (const char* no : {"2.10.0", "2.8.4", "2.90.0", "12.9.0", "2.9", "2.9.", "2.9.x", "3.9.0", ""})
    EXPECT_FALSE(supported_version(no)) << no;
}

TEST(TfliteVersionGuard, TheShippedLibraryIs29AndAvailable) {
  const std::string loaded = TfLiteVersion();
  EXPECT_TRUE(loaded.starts_with("2.9.")) << loaded;  // scripts/deps.lock pins 2.9.0
  EXPECT_EQ(library_supported(), supported_version(loaded));
  const RuntimeDescriptor* descriptor = find_runtime("tflite");
  ASSERT_NE(descriptor, nullptr);
  EXPECT_EQ(descriptor->available(), supported_version(loaded));
  EXPECT_EQ(descriptor->version(), loaded);
}

}  // namespace
}  // namespace dermcds::runtimes::tflite
