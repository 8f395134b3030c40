#include "dermcds/file_util.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <random>

#include "dermcds/error.hpp"

namespace dermcds {

namespace {

// Closes the descriptor on every path out.
struct Descriptor {
  int fd;
  ~Descriptor() {
    if (fd >= 0) ::close(fd);
  }
};

}  // namespace

void sync_directory(const std::filesystem::path& directory) {
  const std::filesystem::path dir = directory.empty() ? "." : directory;
  Descriptor d{::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC)};
  if (d.fd < 0) throw errno_error(errno, "cannot open directory " + dir.string());
  // Some file systems (and some container overlays) cannot sync a directory; the data is synced.
  if (::fsync(d.fd) != 0 && errno != EINVAL && errno != EROFS) throw errno_error(errno, "cannot sync directory " + dir.string());
}

void write_file_atomically(const std::filesystem::path& path, std::span<const std::uint8_t> bytes) {
  // Hidden and unique: repository listings skip it, and two writers never share one.
  std::random_device random;
  std::string name(".");
  name.append(path.filename().string()).append(".tmp-").append(std::to_string(::getpid())).append("-").append(std::to_string(random()));
  const std::filesystem::path temporary = path.parent_path() / name;
  auto fail = [&](int error, const std::string& what) {
    ::unlink(temporary.c_str());
    return errno_error(error, what);
  };
  {
    Descriptor d{::open(temporary.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644)};
    if (d.fd < 0) throw errno_error(errno, "cannot create " + temporary.string() + " (to write " + path.string() + ")");
    std::size_t written = 0;
    while (written < bytes.size()) {
      const ssize_t n = ::write(d.fd, bytes.data() + written, bytes.size() - written);
      if (n < 0 && errno == EINTR) continue;
      // write() returning 0 for a non-empty request only happens when nothing more fits.
      if (n <= 0) throw fail(n < 0 ? errno : ENOSPC, "cannot write " + path.string());
      written += static_cast<std::size_t>(n);
    }
    if (::fsync(d.fd) != 0) throw fail(errno, "cannot write " + path.string() + " to disk");
  }
  if (::rename(temporary.c_str(), path.c_str()) != 0) throw fail(errno, "cannot replace " + path.string());
  sync_directory(path.parent_path());
}

void write_file_atomically(const std::filesystem::path& path, std::string_view text) {
  write_file_atomically(path, {reinterpret_cast<const std::uint8_t*>(text.data()), text.size()});
}

FileLock::FileLock(const std::filesystem::path& path) {
  fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd_ < 0) throw errno_error(errno, "cannot open lock file " + path.string());
  while (::flock(fd_, LOCK_EX) != 0) {
    if (errno == EINTR) continue;
    const int error = errno;
    ::close(fd_);
    throw errno_error(error, "cannot lock " + path.string());
  }
}

FileLock::~FileLock() {
  if (fd_ >= 0) ::close(fd_);  // closing releases the lock
}

}  // namespace dermcds
