// Reading whole files (images, tensors) with the errors a user can act on.
#pragma once

#include <cstdint>
#include <filesystem>
#include <vector>

namespace dermcds {

// Throws kNotFound (no such file), kInvalidArgument (a directory, or larger than max_bytes),
// kIoError (unreadable), each naming the path.
std::vector<std::uint8_t> read_file_bytes(const std::filesystem::path& path, std::uint64_t max_bytes = std::uint64_t{1} << 30);

}  // namespace dermcds
