// The one digest of an image set (validation or calibration images), which the lifecycle's input
// fingerprint, the converter's calibration record and the parity report must agree on: sha256 of
// the lines "<file name> <sha256 of its bytes>\n", in the order given (sorted by name).
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace dermcds {

// (file name, lowercase hex sha256 of its bytes) per image.
std::string image_set_sha256(const std::vector<std::pair<std::string, std::string>>& files);

}  // namespace dermcds
