// Small file-system mechanisms every layer needs, written once: replacing a file atomically and
// durably, an advisory lock between processes, and joining names for messages.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <ranges>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace dermcds {

// Replaces `path` with `bytes` so that a reader, or the machine after a crash or a SIGKILL at any
// point, sees the old content or the new one, never a part: a hidden temporary sibling is
// written, fsync'ed, renamed over `path`, and the directory is fsync'ed so the rename itself is
// durable. On failure `path` is unchanged and the temporary file is gone. Throws dermcds::Error
// with the code of the system's error (kNoSpace for a full disk or RLIMIT_FSIZE, kPermissionDenied,
// kIoError), naming the file.
void write_file_atomically(const std::filesystem::path& path, std::span<const std::uint8_t> bytes);
void write_file_atomically(const std::filesystem::path& path, std::string_view text);

// fsync of a directory, so that renames and creations inside it survive a crash. Throws as above.
void sync_directory(const std::filesystem::path& directory);

// An exclusive advisory lock (flock) on a file, held for the object's lifetime: serialises
// builds, promotions, rollbacks and activations of one model across processes. The kernel drops
// it when the process dies, so a SIGKILL never leaves a model locked.
class FileLock {
 public:
  // Creates the file if needed and blocks until the lock is ours. Throws as above.
  explicit FileLock(const std::filesystem::path& path);
  ~FileLock();
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;

 private:
  int fd_ = -1;
};

// "a, b, c" (or with another separator): names in messages. `name` turns each element into
// text std::string can append (a string, a string_view, a C string); it may be a member pointer,
// e.g. join(fields, ", ", &Field::key).
template <std::ranges::input_range Parts, class Name = std::identity>
std::string join(const Parts& parts, std::string_view separator = ", ", Name name = {}) {
  std::string out;
  for (const auto& part : parts) {
    if (!out.empty()) out.append(separator);
    out.append(std::invoke(name, part));
  }
  return out;
}

}  // namespace dermcds
