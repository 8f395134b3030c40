// Replacing a file so that readers see the old content or the new, never a part.
#pragma once

#include <filesystem>
#include <string_view>

namespace dermcds::pipeline {

// Writes a temporary file beside `path`, flushes it, and renames it over `path`. Throws kIoError;
// on failure `path` is unchanged and the temporary file is removed.
void write_text_atomically(const std::filesystem::path& path, std::string_view text);

}  // namespace dermcds::pipeline
