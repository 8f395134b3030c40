// Loading calibration images: decoded and preprocessed by the core exactly as at inference.
#include <algorithm>
#include <cctype>

#include "dermcds/converter.hpp"
#include "dermcds/error.hpp"
#include "dermcds/file_bytes.hpp"
#include "dermcds/image.hpp"
#include "dermcds/image_set_digest.hpp"
#include "dermcds/sha256.hpp"

namespace dermcds::converter {

namespace {

bool is_image_name(const std::filesystem::path& path) {
  std::string ext = path.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return ext == ".jpg" || ext == ".jpeg" || ext == ".png";
}

// Photographs are a few megabytes; anything far larger in a calibration folder is a mistake.
constexpr std::uint64_t kMaxImageBytes = 64ull << 20;

}  // namespace

CalibrationSet load_calibration_images(const std::filesystem::path& dir, const InputSpec& spec, std::size_t max_images,
                                       const std::function<void(const std::string&)>& progress) {
  std::error_code ec;
  if (!std::filesystem::exists(dir, ec)) throw Error(ErrorCode::kNotFound, "calibration directory " + dir.string() + " does not exist");
  if (!std::filesystem::is_directory(dir, ec))
    throw Error(ErrorCode::kInvalidArgument, "calibration input " + dir.string() + " is not a directory of images");

  std::vector<std::filesystem::path> files;
  for (const auto& entry : std::filesystem::directory_iterator(dir))
    if (entry.is_regular_file() && is_image_name(entry.path())) files.push_back(entry.path());
  std::sort(files.begin(), files.end());
  if (files.empty())
    throw Error(ErrorCode::kInvalidArgument,
                "calibration directory " + dir.string() + " holds no JPEG or PNG images (*.jpg, *.jpeg, *.png)");
  if (max_images > 0 && files.size() > max_images) files.resize(max_images);

  CalibrationSet set;
  std::vector<std::pair<std::string, std::string>> listing;
  for (std::size_t i = 0; i < files.size(); ++i) {
    const std::vector<std::uint8_t> bytes = read_file_bytes(files[i], kMaxImageBytes);
    RgbImage image;
    try {
      image = decode_image(bytes);
    } catch (const Error& e) {
      throw Error(ErrorCode::kInvalidArgument, "calibration image " + files[i].string() + " cannot be used: " + e.what());
    }
    set.samples.push_back(preprocess(image, spec, TensorLayout::kNHWC));
    set.files.push_back(files[i]);
    listing.emplace_back(files[i].filename().string(), sha256_hex(bytes));
    if (progress && ((i + 1) % 50 == 0 || i + 1 == files.size()))
      progress("calibration images: " + std::to_string(i + 1) + "/" + std::to_string(files.size()) + " preprocessed");
  }
  set.sha256 = image_set_sha256(listing);  // the digest the lifecycle's fingerprint records too
  return set;
}

}  // namespace dermcds::converter
