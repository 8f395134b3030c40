// dermcds audit verify FILE... : checks the hash chain of pms-derm-cds audit logs (docs/audit.md).
#include <cstdio>
#include <filesystem>
#include <memory>

#include "command.hpp"
#include "dermcds/clinical/audit_log.hpp"
#include "exit_status.hpp"

namespace dermcds::cli {

namespace {

struct VerifyFlags {
  std::vector<std::filesystem::path> files;
  bool partial = false;
  std::string expect_head;
};

void verify(const VerifyFlags& flags) {
  const clinical::AuditVerifyReport report =
      clinical::verify_audit_chain(flags.files, {.partial = flags.partial, .expect_head = flags.expect_head});
  if (!report.ok) {
    if (report.line > 0)
      std::printf("BROKEN %s:%llu: %s\n", report.file.c_str(), static_cast<unsigned long long>(report.line), report.problem.c_str());
    else
      std::printf("BROKEN %s: %s\n", report.file.c_str(), report.problem.c_str());
    throw CheckFailed("the audit chain is broken at " + report.file +
                      (report.line > 0 ? ":" + std::to_string(report.line) : std::string()));
  }
  std::printf("ok: %llu lines in %zu files, seq %llu to %llu, last hash %s\n", static_cast<unsigned long long>(report.lines),
              flags.files.size(), static_cast<unsigned long long>(report.first_seq), static_cast<unsigned long long>(report.last_seq),
              report.last_hash.empty() ? "(none)" : report.last_hash.c_str());
}

}  // namespace

void register_audit_command(CLI::App& app) {
  CLI::App* audit = app.add_subcommand("audit", "Work with pms-derm-cds audit logs (docs/audit.md)");
  audit->require_subcommand(1);
  auto flags = std::make_shared<VerifyFlags>();
  CLI::App* command = audit->add_subcommand(
      "verify", "Check the hash chain of audit log files, oldest first (FILE.000001 ... FILE); exit 1 at the first broken line");
  command->add_option("files", flags->files, "Audit log files in chain order")->required()->check(CLI::ExistingFile);
  command->add_flag("--partial", flags->partial, "The first file may continue a chain whose earlier files are not given (archived)");
  command->add_option("--expect-head", flags->expect_head,
                      "The hash the last line must have (an anchor kept elsewhere): detects lines cut from the end");
  command->callback([flags] { verify(*flags); });
}

}  // namespace dermcds::cli
