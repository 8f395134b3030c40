// How subcommands plug into the dermcds tool. Each *_command.cpp defines one
// register_<name>_command(); main.cpp calls them all.
//
// A command's callback throws dermcds::Error (or CLI11's errors for usage mistakes); main()
// turns either into a message on stderr and the exit status from exit_status.hpp. Commands
// write results to stdout and progress to stderr, so `--json` output stays machine-readable.
#pragma once

#include <CLI/CLI.hpp>

namespace dermcds::cli {

void register_classify_command(CLI::App& app);
void register_models_command(CLI::App& app);
void register_models_lifecycle_commands(CLI::App* models);  // models_lifecycle_command.cpp
void register_convert_command(CLI::App& app);
void register_parity_command(CLI::App& app);
void register_audit_command(CLI::App& app);  // audit_command.cpp
void register_evaluate_command(CLI::App& app);

}  // namespace dermcds::cli
