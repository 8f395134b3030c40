#include "dermcds/file_bytes.hpp"

#include <cerrno>
#include <cstring>
#include <fstream>

#include "dermcds/error.hpp"

namespace dermcds {

std::vector<std::uint8_t> read_file_bytes(const std::filesystem::path& path, std::uint64_t max_bytes) {
  std::error_code ec;
  const auto status = std::filesystem::status(path, ec);
  if (!std::filesystem::exists(status)) throw Error(ErrorCode::kNotFound, "no such file: " + path.string());
  if (std::filesystem::is_directory(status)) throw Error(ErrorCode::kInvalidArgument, path.string() + " is a directory, not a file");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(ErrorCode::kIoError, "cannot open " + path.string() + ": " + std::strerror(errno));
  in.seekg(0, std::ios::end);
  const std::streamoff size = in.tellg();
  if (size < 0) throw Error(ErrorCode::kIoError, "cannot read " + path.string());
  if (static_cast<std::uint64_t>(size) > max_bytes)
    throw Error(ErrorCode::kInvalidArgument,
                path.string() + " is " + std::to_string(size) + " bytes, over the limit of " + std::to_string(max_bytes));
  std::vector<std::uint8_t> bytes(static_cast<std::size_t>(size));
  in.seekg(0);
  if (size > 0 && !in.read(reinterpret_cast<char*>(bytes.data()), size))
    throw Error(ErrorCode::kIoError, "cannot read " + path.string() + ": " + std::strerror(errno));
  return bytes;
}

}  // namespace dermcds
