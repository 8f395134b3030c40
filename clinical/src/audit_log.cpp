#include "dermcds/clinical/audit_log.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>
#include <fstream>
#include <iterator>

#include "dermcds/error.hpp"
#include "dermcds/sha256.hpp"

namespace dermcds::clinical {

namespace {

namespace fs = std::filesystem;
using ordered_json = nlohmann::ordered_json;

constexpr std::string_view kHashKey = ",\"hash\":\"";
constexpr std::size_t kHashSuffix = kHashKey.size() + 64 + 2;  // ,"hash":"<64 hex>"}

std::string sha256_of(std::string_view text) {
  return sha256_hex(std::span(reinterpret_cast<const std::uint8_t*>(text.data()), text.size()));
}

bool is_hex64(std::string_view s) { return s.size() == 64 && s.find_first_not_of("0123456789abcdef") == std::string_view::npos; }

[[noreturn]] void io_error(const std::string& what, const fs::path& path) {
  throw Error(ErrorCode::kIoError, what + " " + path.string() + ": " + std::strerror(errno));
}

void fsync_directory(const fs::path& file) {
  const fs::path dir = file.has_parent_path() ? file.parent_path() : fs::path(".");
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) io_error("cannot open the audit log's directory", dir);
  const int rc = ::fsync(fd);
  ::close(fd);
  if (rc != 0) io_error("cannot sync the audit log's directory", dir);
}

// The rotated files FILE.000001, FILE.000002, ...: the highest number in use (0: none).
unsigned highest_rotation(const fs::path& file) {
  const fs::path dir = file.has_parent_path() ? file.parent_path() : fs::path(".");
  const std::string prefix = file.filename().string() + ".";
  unsigned highest = 0;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.size() != prefix.size() + 6 || name.compare(0, prefix.size(), prefix) != 0) continue;
    const std::string digits = name.substr(prefix.size());
    if (digits.find_first_not_of("0123456789") != std::string::npos) continue;
    highest = std::max(highest, static_cast<unsigned>(std::stoul(digits)));
  }
  return highest;
}

fs::path rotation_path(const fs::path& file, unsigned number) {
  char suffix[16];
  std::snprintf(suffix, sizeof suffix, ".%06u", number);
  return fs::path(file.string() + suffix);
}

std::string read_all(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) io_error("cannot read the audit log", path);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// The last line of a non-empty chain file, checked; throws kIoError when the file ends in an
// incomplete line.
AuditLineCheck last_line_of(const fs::path& path) {
  const std::string text = read_all(path);
  if (text.back() != '\n')
    throw Error(ErrorCode::kIoError, "the audit log " + path.string() +
                                         " ends in an incomplete line (a crash mid-write or a truncation); run "
                                         "`dermcds audit verify` on it and move it aside before starting again");
  const std::size_t start = text.rfind('\n', text.size() - 2);
  const std::string_view line = std::string_view(text).substr(start == std::string::npos ? 0 : start + 1,
                                                              text.size() - 1 - (start == std::string::npos ? 0 : start + 1));
  try {
    return check_audit_line(line);
  } catch (const Error& e) {
    throw Error(ErrorCode::kIoError, "the last line of the audit log " + path.string() + " is broken: " + e.what());
  }
}

}  // namespace

std::string utc_now_iso8601() { return utc_iso8601(std::chrono::system_clock::now()); }

std::string utc_iso8601(std::chrono::system_clock::time_point time) {
  const std::time_t seconds = std::chrono::system_clock::to_time_t(time);
  const auto millis = std::chrono::duration_cast<std::chrono::milliseconds>(time.time_since_epoch()).count() % 1000;
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  char text[40];
  const std::size_t n = std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%S", &utc);
  std::snprintf(text + n, sizeof text - n, ".%03dZ", static_cast<int>(millis));
  return text;
}

AuditLineCheck check_audit_line(std::string_view line) {
  if (line.size() < kHashSuffix + 2 || line.front() != '{' || line.substr(line.size() - 2) != "\"}" ||
      line.substr(line.size() - kHashSuffix, kHashKey.size()) != kHashKey)
    throw Error(ErrorCode::kInvalidArgument, "not an audit line: it must end in ,\"hash\":\"<64 hex digits>\"}");
  AuditLineCheck check;
  check.hash = std::string(line.substr(line.size() - 66, 64));
  const std::string body = std::string(line.substr(0, line.size() - kHashSuffix)) + "}";
  if (!is_hex64(check.hash)) throw Error(ErrorCode::kInvalidArgument, "the line's hash is not 64 lowercase hex digits");
  if (sha256_of(body) != check.hash)
    throw Error(ErrorCode::kInvalidArgument, "the line's content does not match its hash (the line was changed)");
  const ordered_json record = ordered_json::parse(body, nullptr, false);
  if (record.is_discarded() || !record.is_object()) throw Error(ErrorCode::kInvalidArgument, "the line is not a JSON object");
  const auto seq = record.find("seq");
  const auto prev = record.find("prev");
  if (seq == record.end() || !seq->is_number_unsigned()) throw Error(ErrorCode::kInvalidArgument, "the line has no \"seq\" number");
  if (prev == record.end() || !prev->is_string() || !is_hex64(prev->get<std::string>()))
    throw Error(ErrorCode::kInvalidArgument, "the line has no \"prev\" hash");
  check.seq = seq->get<std::uint64_t>();
  check.prev = prev->get<std::string>();
  return check;
}

AuditLog::AuditLog(AuditLogOptions options) : options_(std::move(options)), prev_hash_(kGenesisHash) {
  if (options_.file.empty()) throw Error(ErrorCode::kInvalidArgument, "the audit log needs a file name");
  if (options_.max_bytes < 4096) throw Error(ErrorCode::kInvalidArgument, "audit_max_bytes must be at least 4096");
  std::error_code ec;
  const bool has_lines = fs::exists(options_.file, ec) && fs::file_size(options_.file, ec) > 0;
  if (has_lines) {
    const AuditLineCheck last = last_line_of(options_.file);
    next_seq_ = last.seq + 1;
    prev_hash_ = last.hash;
  } else if (const unsigned rotated = highest_rotation(options_.file); rotated > 0) {
    const fs::path previous = rotation_path(options_.file, rotated);
    if (fs::file_size(previous, ec) > 0) {
      const AuditLineCheck last = last_line_of(previous);
      next_seq_ = last.seq + 1;
      prev_hash_ = last.hash;
    }
  }
  open_current();
}

AuditLog::~AuditLog() {
  if (fd_ >= 0) ::close(fd_);  // closing releases the flock
}

void AuditLog::open_current() {
  fd_ = ::open(options_.file.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
  if (fd_ < 0) io_error("cannot open the audit log", options_.file);
  if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
    ::close(fd_);
    fd_ = -1;
    throw Error(ErrorCode::kIoError,
                "the audit log " + options_.file.string() + " is in use by another process (one writer per file keeps the chain whole)");
  }
  struct stat st {};
  if (::fstat(fd_, &st) != 0) io_error("cannot stat the audit log", options_.file);
  size_ = static_cast<std::uint64_t>(st.st_size);
  if (options_.fsync) fsync_directory(options_.file);  // a new file's name is durable too
}

std::string AuditLog::last_hash() const {
  std::lock_guard lock(mutex_);
  return prev_hash_;
}

void AuditLog::write_line(const std::string& line) {
  std::size_t done = 0;
  while (done < line.size()) {
    const ssize_t n = ::write(fd_, line.data() + done, line.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) io_error("cannot write the audit log", options_.file);
    done += static_cast<std::size_t>(n);
  }
  if (options_.fsync && ::fdatasync(fd_) != 0) io_error("cannot sync the audit log", options_.file);
  size_ += line.size();
}

void AuditLog::rotate() {
  const fs::path previous = rotation_path(options_.file, highest_rotation(options_.file) + 1);
  if (::fsync(fd_) != 0) io_error("cannot sync the audit log", options_.file);
  ::close(fd_);
  fd_ = -1;
  std::error_code ec;
  fs::rename(options_.file, previous, ec);
  if (ec) throw Error(ErrorCode::kIoError, "cannot rotate the audit log to " + previous.string() + ": " + ec.message());
  open_current();
}

std::string AuditLog::append(const ordered_json& fields) {
  if (!fields.is_object()) throw Error(ErrorCode::kInternal, "an audit record must be a JSON object");
  std::lock_guard lock(mutex_);
  const auto make_line = [this](const ordered_json& event, std::uint64_t seq, const std::string& prev, std::string& hash) {
    ordered_json record = {{"seq", seq}, {"time", utc_now_iso8601()}, {"prev", prev}};
    for (const auto& [key, value] : event.items()) {
      if (key == "seq" || key == "time" || key == "prev" || key == "hash")
        throw Error(ErrorCode::kInternal, "audit field \"" + key + "\" is reserved");
      record[key] = value;
    }
    // Invalid UTF-8 from a client (a header, a comment) is replaced, never a reason to lose a line.
    const std::string body = record.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
    hash = sha256_of(body);
    return body.substr(0, body.size() - 1) + std::string(kHashKey) + hash + "\"}\n";
  };
  std::string hash;
  std::string line = make_line(fields, next_seq_, prev_hash_, hash);
  if (size_ > 0 && size_ + line.size() > options_.max_bytes) {
    const std::string rotated_from = rotation_path(options_.file, highest_rotation(options_.file) + 1).filename().string();
    rotate();
    std::string rotate_hash;
    write_line(make_line({{"action", "audit.rotated"}, {"previous_file", rotated_from}}, next_seq_, prev_hash_, rotate_hash));
    ++next_seq_;
    prev_hash_ = rotate_hash;
    line = make_line(fields, next_seq_, prev_hash_, hash);
  }
  write_line(line);
  ++next_seq_;
  prev_hash_ = hash;
  return hash;
}

AuditVerifyReport verify_audit_chain(const std::vector<fs::path>& files, const AuditVerifyOptions& options) {
  AuditVerifyReport report;
  bool first = true;
  std::uint64_t last_seq = 0;
  std::string last_hash;
  const auto fail = [&report](const fs::path& file, std::uint64_t line, std::string problem) {
    report.ok = false;
    report.file = file.string();
    report.line = line;
    report.problem = std::move(problem);
    return report;
  };
  for (const fs::path& file : files) {
    std::string text;
    try {
      text = read_all(file);
    } catch (const Error& e) {
      return fail(file, 0, e.what());
    }
    std::uint64_t number = 0;
    std::size_t start = 0;
    while (start < text.size()) {
      ++number;
      const std::size_t end = text.find('\n', start);
      if (end == std::string::npos) return fail(file, number, "the line is incomplete: the file ends without a newline (truncated?)");
      const std::string_view line = std::string_view(text).substr(start, end - start);
      start = end + 1;
      AuditLineCheck check;
      try {
        check = check_audit_line(line);
      } catch (const Error& e) {
        return fail(file, number, e.what());
      }
      if (first) {
        if (!options.partial && (check.seq != 0 || check.prev != kGenesisHash))
          return fail(file, number,
                      "the chain does not start here (seq " + std::to_string(check.seq) +
                          "): give the earlier files first, or --partial if they were archived");
        report.first_seq = check.seq;
      } else if (check.seq != last_seq + 1) {
        return fail(
            file, number,
            "seq " + std::to_string(check.seq) + " follows seq " + std::to_string(last_seq) + ": a line is missing or out of order");
      } else if (check.prev != last_hash) {
        return fail(file, number, "prev does not match the hash of the line before: a line was removed, inserted or changed");
      }
      first = false;
      last_seq = check.seq;
      last_hash = check.hash;
      ++report.lines;
    }
  }
  report.last_seq = last_seq;
  report.last_hash = last_hash;
  if (!options.expect_head.empty() && options.expect_head != last_hash)
    return fail(files.empty() ? fs::path() : files.back(), 0,
                "the last line's hash is " + (last_hash.empty() ? std::string("(none)") : last_hash) + ", not the expected " +
                    options.expect_head + ": lines were removed from the end");
  return report;
}

}  // namespace dermcds::clinical
