// The audit trail's hash chain: every kind of damage the issue names is detected, at the line
// where it happened, and rotation keeps one chain across files. The expected hashes are
// recomputed here with sha256 over the line's bytes, independently of AuditLog's own code path.
#include <fstream>
#include <iterator>

#include <gtest/gtest.h>

#include "dermcds/clinical/audit_log.hpp"
#include "dermcds/error.hpp"
#include "dermcds/sha256.hpp"
#include "test_support.hpp"

namespace dermcds::clinical {
namespace {

namespace fs = std::filesystem;
using ordered_json = nlohmann::ordered_json;

std::string read_text(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}
void write_text(const fs::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
}
std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::size_t start = 0;
  for (std::size_t end; (end = text.find('\n', start)) != std::string::npos; start = end + 1)
    lines.push_back(text.substr(start, end - start));
  return lines;
}

void write_events(const fs::path& file, int count, std::uint64_t max_bytes = 64ull << 20) {
  AuditLog log({file, max_bytes, true});
  for (int i = 0; i < count; ++i)
    log.append({{"action", "classify"}, {"request_id", "r" + std::to_string(i)}, {"image_sha256", std::string(64, 'a')}});
}

TEST(AuditLog, LinesFormAHashChainThatVerifies) {
  test::TemporaryDirectory dir;
  const fs::path file = dir.path() / "audit.log";
  write_events(file, 5);
  const std::vector<std::string> lines = lines_of(read_text(file));
  ASSERT_EQ(lines.size(), 5u);
  std::string prev(kGenesisHash);
  for (std::size_t i = 0; i < lines.size(); ++i) {
    const ordered_json record = ordered_json::parse(lines[i]);
    EXPECT_EQ(record["seq"], i);
    EXPECT_EQ(record["prev"], prev);
    // hash = sha256(the line without its hash field), recomputed from the bytes.
    const std::string body = lines[i].substr(0, lines[i].size() - 75) + "}";
    const std::string hash = sha256_hex(std::span(reinterpret_cast<const std::uint8_t*>(body.data()), body.size()));
    EXPECT_EQ(record["hash"], hash);
    EXPECT_EQ(record.begin().key(), "seq");
    EXPECT_EQ(record["action"], "classify");
    prev = hash;
  }
  const AuditVerifyReport report = verify_audit_chain({file});
  EXPECT_TRUE(report.ok) << report.problem;
  EXPECT_EQ(report.lines, 5u);
  EXPECT_EQ(report.last_hash, prev);
}

TEST(AuditLog, ResumesTheChainWhenReopened) {
  test::TemporaryDirectory dir;
  const fs::path file = dir.path() / "audit.log";
  write_events(file, 2);
  write_events(file, 2);
  const AuditVerifyReport report = verify_audit_chain({file});
  EXPECT_TRUE(report.ok) << report.problem;
  EXPECT_EQ(report.lines, 4u);
  EXPECT_EQ(report.last_seq, 3u);
}

TEST(AuditLog, ATamperedByteIsDetectedAtItsLine) {
  test::TemporaryDirectory dir;
  const fs::path file = dir.path() / "audit.log";
  write_events(file, 5);
  const std::string text = read_text(file);
  for (const std::size_t line : {0u, 2u, 4u}) {  // the first, a middle and the last line
    std::string tampered = text;
    std::size_t at = 0;
    for (std::size_t i = 0; i < line; ++i) at = tampered.find('\n', at) + 1;
    const std::size_t digit = tampered.find("r" + std::to_string(line), at) + 1;  // the request id's digit
    tampered[digit] = tampered[digit] == '9' ? '8' : static_cast<char>(tampered[digit] + 1);
    write_text(file, tampered);
    const AuditVerifyReport report = verify_audit_chain({file});
    EXPECT_FALSE(report.ok);
    EXPECT_EQ(report.line, line + 1);
    EXPECT_NE(report.problem.find("does not match its hash"), std::string::npos) << report.problem;
  }
}

TEST(AuditLog, ARemovedLineIsDetected) {
  test::TemporaryDirectory dir;
  const fs::path file = dir.path() / "audit.log";
  write_events(file, 5);
  std::vector<std::string> lines = lines_of(read_text(file));
  lines.erase(lines.begin() + 2);
  std::string text;
  for (const auto& l : lines) text += l + "\n";
  write_text(file, text);
  const AuditVerifyReport report = verify_audit_chain({file});
  EXPECT_FALSE(report.ok);
  EXPECT_EQ(report.line, 3u);  // the line after the gap
  EXPECT_NE(report.problem.find("missing"), std::string::npos) << report.problem;

  // Removing the first line: the chain no longer starts at the genesis hash.
  lines = lines_of(read_text(file));
  lines.erase(lines.begin());
  text.clear();
  for (const auto& l : lines) text += l + "\n";
  write_text(file, text);
  EXPECT_FALSE(verify_audit_chain({file}).ok);
}

TEST(AuditLog, ATruncatedFileIsDetected) {
  test::TemporaryDirectory dir;
  const fs::path file = dir.path() / "audit.log";
  write_events(file, 4);
  const std::string text = read_text(file);
  const std::string head = verify_audit_chain({file}).last_hash;

  // Cut mid-line (what a crash or `truncate -s` leaves).
  write_text(file, text.substr(0, text.size() - 30));
  AuditVerifyReport report = verify_audit_chain({file});
  EXPECT_FALSE(report.ok);
  EXPECT_EQ(report.line, 4u);
  EXPECT_NE(report.problem.find("incomplete"), std::string::npos) << report.problem;
  // ... and the service refuses to append to it rather than hide the break.
  EXPECT_THROW(AuditLog({file, 64ull << 20, true}), Error);

  // Cut at a line boundary: only an anchor kept elsewhere can tell; --expect-head is that check.
  write_text(file, text.substr(0, text.rfind('\n', text.size() - 2) + 1));
  EXPECT_TRUE(verify_audit_chain({file}).ok);
  report = verify_audit_chain({file}, {.expect_head = head});
  EXPECT_FALSE(report.ok);
  EXPECT_NE(report.problem.find("removed from the end"), std::string::npos) << report.problem;
}

TEST(AuditLog, RotationKeepsOneChainAcrossFiles) {
  test::TemporaryDirectory dir;
  const fs::path file = dir.path() / "audit.log";
  write_events(file, 60, 4096);  // each line is about 230 bytes: several rotations
  std::vector<fs::path> files;
  for (int i = 1; fs::exists(file.string() + "." + std::string(6 - std::to_string(i).size(), '0') + std::to_string(i)); ++i)
    files.push_back(file.string() + "." + std::string(6 - std::to_string(i).size(), '0') + std::to_string(i));
  ASSERT_GE(files.size(), 2u);
  files.push_back(file);
  for (const fs::path& f : files) EXPECT_LE(fs::file_size(f), 4096u) << f;

  // The first line of each newer file names the last hash of the one before.
  for (std::size_t i = 1; i < files.size(); ++i) {
    const auto previous = lines_of(read_text(files[i - 1]));
    const ordered_json first = ordered_json::parse(lines_of(read_text(files[i])).front());
    EXPECT_EQ(first["action"], "audit.rotated");
    EXPECT_EQ(first["prev"], ordered_json::parse(previous.back())["hash"]);
    EXPECT_EQ(first["previous_file"], files[i - 1].filename().string());
  }
  AuditVerifyReport report = verify_audit_chain(files);
  EXPECT_TRUE(report.ok) << report.file << ":" << report.line << " " << report.problem;
  EXPECT_EQ(report.lines, 60u + (files.size() - 1));

  // A rotated file missing from the set, or one cut at its end, breaks the chain at the next file.
  std::vector<fs::path> without_middle = files;
  without_middle.erase(without_middle.begin() + 1);
  report = verify_audit_chain(without_middle);
  EXPECT_FALSE(report.ok);
  EXPECT_EQ(report.file, files[2].string());
  const std::string first_file = read_text(files[0]);
  write_text(files[0], first_file.substr(0, first_file.rfind('\n', first_file.size() - 2) + 1));
  report = verify_audit_chain(files);
  EXPECT_FALSE(report.ok);
  EXPECT_EQ(report.file, files[1].string());
  EXPECT_EQ(report.line, 1u);
  // The newest file alone is a continuation: accepted only when asked for.
  EXPECT_FALSE(verify_audit_chain({file}).ok);
  EXPECT_TRUE(verify_audit_chain({file}, {.partial = true}).ok);
}

TEST(AuditLog, OneWriterPerFile) {
  test::TemporaryDirectory dir;
  const fs::path file = dir.path() / "audit.log";
  AuditLog first({file, 64ull << 20, false});
  EXPECT_THROW(AuditLog({file, 64ull << 20, false}), Error);
}

TEST(AuditLog, ReservedFieldsAreRefused) {
  test::TemporaryDirectory dir;
  AuditLog log({dir.path() / "audit.log", 64ull << 20, false});
  EXPECT_THROW(log.append({{"prev", "x"}}), Error);
  EXPECT_THROW(log.append({{"hash", "x"}}), Error);
}

}  // namespace
}  // namespace dermcds::clinical
