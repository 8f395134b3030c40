// SHA-256 digests (OpenSSL's implementation), as lowercase hex.
#pragma once

#include <cstdint>
#include <filesystem>
#include <span>
#include <string>

namespace dermcds {

std::string sha256_hex(std::span<const std::uint8_t> bytes);
// Streams the file; throws kNotFound or kIoError naming the path.
std::string sha256_file_hex(const std::filesystem::path& path);

}  // namespace dermcds
