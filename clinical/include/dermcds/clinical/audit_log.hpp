// The tamper-evident audit trail (docs/audit.md): one JSON line per audited event, each line
// carrying the hash of the line before it, so that editing, removing or reordering a line breaks
// the chain where it happened.
//
// Line format (byte-exact; verify_audit_chain re-hashes the bytes, it never re-serialises):
//   {"seq":N,"time":"...","prev":"<64 hex>", ...the event's fields..., "hash":"<64 hex>"}\n
// where hash = sha256 of the line's bytes up to (not including) `,"hash":"`, followed by "}".
// The first line of a chain has seq 0 and prev = 64 zeros.
//
// Durability: append() writes the whole line with one write(2) on an O_APPEND descriptor and,
// unless fsync is off, fdatasync(2)s before it returns; callers send their answer only after
// append() returned, so every answer the service gave is on disk first.
//
// Rotation: before a line would take the file past max_bytes, the file is renamed to
// FILE.000001 (then .000002, ...; never overwritten or deleted) and a new FILE starts with an
// "audit.rotated" line whose prev is the last hash of the rotated file: the chain runs on
// across files, which `dermcds audit verify FILE.* FILE` checks in order.
//
// Ownership and threads: AuditLog owns its descriptor (closed by the destructor) and holds an
// exclusive flock on it, so a second process cannot interleave lines. append() is thread-safe;
// lines are serialised, which is what makes them a chain.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <mutex>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace dermcds::clinical {

inline constexpr std::string_view kGenesisHash = "0000000000000000000000000000000000000000000000000000000000000000";

struct AuditLogOptions {
  std::filesystem::path file;
  std::uint64_t max_bytes = 64ull << 20;  // rotate before a line would pass this size
  bool fsync = true;                      // fdatasync after every line (docs/audit.md)
};

class AuditLog {
 public:
  // Opens (or creates) the file and resumes the chain from its last line, or from the newest
  // rotated file when the current one is empty. Throws kIoError naming the file when it cannot
  // be opened or locked, or when it ends in an incomplete line (a crash mid-write, or a
  // truncation): appending to a broken chain would hide the break.
  explicit AuditLog(AuditLogOptions options);
  ~AuditLog();
  AuditLog(const AuditLog&) = delete;
  AuditLog& operator=(const AuditLog&) = delete;

  // Adds seq, time and prev in front of `fields` (an object; its own keys must not be seq, time,
  // prev or hash), writes the line and returns its hash. Throws kIoError when the line could not
  // be written and synced; the chain is then unchanged.
  std::string append(const nlohmann::ordered_json& fields);

  const std::filesystem::path& file() const { return options_.file; }
  std::string last_hash() const;

 private:
  void open_current();
  void rotate();
  void write_line(const std::string& line);

  AuditLogOptions options_;
  mutable std::mutex mutex_;
  int fd_ = -1;
  std::uint64_t size_ = 0;
  std::uint64_t next_seq_ = 0;
  std::string prev_hash_;
};

// One audit line as the chain sees it.
struct AuditLineCheck {
  std::uint64_t seq = 0;
  std::string prev;
  std::string hash;
};

// Checks one line's own hash and shape; throws kInvalidArgument saying what is wrong.
AuditLineCheck check_audit_line(std::string_view line);

struct AuditVerifyOptions {
  // The first file may start mid-chain (its predecessors were archived elsewhere): its first
  // line's prev is then taken on trust instead of having to be the genesis hash.
  bool partial = false;
  // When set, the last line's hash must be this (an anchor kept outside the file, e.g. from the
  // service's log): detects lines removed from the end, which the chain alone cannot.
  std::string expect_head;
};

struct AuditVerifyReport {
  bool ok = true;
  std::string file;         // where the first break is ("" when ok)
  std::uint64_t line = 0;   // 1-based line number in that file
  std::string problem;      // what is wrong there
  std::uint64_t lines = 0;  // lines checked
  std::uint64_t first_seq = 0, last_seq = 0;
  std::string last_hash;
};

// Checks the files as one chain, in the order given; stops at the first break.
AuditVerifyReport verify_audit_chain(const std::vector<std::filesystem::path>& files, const AuditVerifyOptions& options = {});

// The current time as ISO 8601 UTC with milliseconds ("2026-12-02T06:41:03.123Z"): audit lines,
// FHIR dateTime/instant values and CDS Hooks timestamps use the same clock and form.
std::string utc_now_iso8601();
std::string utc_iso8601(std::chrono::system_clock::time_point time);

}  // namespace dermcds::clinical
