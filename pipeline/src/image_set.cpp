#include "dermcds/pipeline/image_set.hpp"

#include <algorithm>
#include <cctype>

#include "dermcds/error.hpp"
#include "dermcds/image_set_digest.hpp"
#include "dermcds/sha256.hpp"

namespace dermcds::pipeline {

bool is_image_file_name(const std::filesystem::path& path) {
  std::string ext = path.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return ext == ".jpg" || ext == ".jpeg" || ext == ".png";
}

ImageSet list_image_set(const std::filesystem::path& directory, std::size_t limit, const std::string& what) {
  std::error_code ec;
  if (!std::filesystem::exists(directory, ec))
    throw Error(ErrorCode::kNotFound, what + " directory " + directory.string() + " does not exist");
  if (!std::filesystem::is_directory(directory, ec))
    throw Error(ErrorCode::kInvalidArgument, what + " input " + directory.string() + " is not a directory of images");
  ImageSet set;
  set.directory = directory;
  for (const auto& entry : std::filesystem::directory_iterator(directory))
    if (entry.is_regular_file() && is_image_file_name(entry.path())) set.files.push_back(entry.path());
  std::sort(set.files.begin(), set.files.end());
  if (set.files.empty())
    throw Error(ErrorCode::kInvalidArgument,
                what + " directory " + directory.string() + " holds no JPEG or PNG images (*.jpg, *.jpeg, *.png)");
  if (limit > 0 && set.files.size() > limit) set.files.resize(limit);
  std::vector<std::pair<std::string, std::string>> listing;
  for (const std::filesystem::path& file : set.files) listing.emplace_back(file.filename().string(), sha256_file_hex(file));
  set.sha256 = image_set_sha256(listing);
  return set;
}

}  // namespace dermcds::pipeline
