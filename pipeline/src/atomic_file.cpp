#include "atomic_file.hpp"

#include <unistd.h>

#include <fstream>

#include "dermcds/error.hpp"

namespace dermcds::pipeline {

void write_text_atomically(const std::filesystem::path& path, std::string_view text) {
  const std::filesystem::path temporary = path.string() + ".tmp-" + std::to_string(::getpid());
  {
    std::ofstream out(temporary, std::ios::binary | std::ios::trunc);
    out.write(text.data(), static_cast<std::streamsize>(text.size()));
    out.flush();
    if (!out) {
      std::error_code ignored;
      std::filesystem::remove(temporary, ignored);
      throw Error(ErrorCode::kIoError, "cannot write " + temporary.string());
    }
  }
  std::error_code ec;
  std::filesystem::rename(temporary, path, ec);
  if (ec) {
    std::error_code ignored;
    std::filesystem::remove(temporary, ignored);
    throw Error(ErrorCode::kIoError, "cannot replace " + path.string() + ": " + ec.message());
  }
}

}  // namespace dermcds::pipeline
