// A directory of images used as evidence (a validation set) or as a build input (a calibration
// set), identified by the content of its files.
//
// The digest is the one the converter records for int8 calibration sets (converter.hpp): sha256
// over the lines "<file name> <file sha256>\n" of the JPEG/PNG files directly in the directory,
// sorted by name. Two directories with the same images under the same names have the same digest,
// wherever they are.
// Errors: kNotFound (no such directory), kInvalidArgument (not a directory, or no images).
// Thread safety: reentrant.
#pragma once

#include <cstddef>
#include <filesystem>
#include <string>
#include <vector>

namespace dermcds::pipeline {

struct ImageSet {
  std::filesystem::path directory;
  std::vector<std::filesystem::path> files;  // sorted by name
  std::string sha256;
};

// `limit` > 0 keeps only the first `limit` files (as the converter's --calibration-limit does);
// `what` names the set in error messages ("validation images").
ImageSet list_image_set(const std::filesystem::path& directory, std::size_t limit = 0, const std::string& what = "image");

// Whether the file name ends in .jpg, .jpeg or .png (any case).
bool is_image_file_name(const std::filesystem::path& path);

}  // namespace dermcds::pipeline
