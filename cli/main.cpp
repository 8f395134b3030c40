// dermcds: the command-line face of libdermcds. Subcommands live in *_command.cpp.
#include <cstdio>
#include <exception>

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <CLI/CLI.hpp>

#include "command.hpp"
#include "dermcds/error.hpp"
#include "exit_status.hpp"

int main(int argc, char** argv) {
  CLI::App app{
      "dermcds: classify dermoscopic lesion images into the ISIC 2019 classes with a triage tier, "
      "and build, convert and verify the model packages that do it."};
  app.set_version_flag("--version", "dermcds " DERMCDS_VERSION);
  app.require_subcommand(1);
  app.fallthrough(false);
  // Results go to stdout, diagnostics to stderr, so `--json` output can be piped as is.
  spdlog::set_default_logger(spdlog::stderr_color_mt("dermcds"));
  std::string log_level = "warn";
  app.add_option("--log-level", log_level, "Diagnostics on stderr: trace, debug, info, warn, error, off")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "off"}))
      ->capture_default_str();
  app.parse_complete_callback([&log_level] { spdlog::set_level(spdlog::level::from_str(log_level)); });

  dermcds::cli::register_classify_command(app);
  dermcds::cli::register_models_command(app);
  dermcds::cli::register_audit_command(app);
#ifdef DERMCDS_HAVE_CONVERTER
  dermcds::cli::register_convert_command(app);
#endif
#ifdef DERMCDS_HAVE_PARITY
  dermcds::cli::register_parity_command(app);
#endif
  dermcds::cli::register_evaluate_command(app);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help and --version arrive here as "successes"; real parse errors become status 2.
    const int status = app.exit(e);
    return status == 0 ? dermcds::cli::kExitOk : dermcds::cli::kExitUsage;
  } catch (const dermcds::cli::CheckFailed& e) {
    std::fprintf(stderr, "dermcds: check failed: %s\n", e.what());
    return dermcds::cli::kExitCheckFailed;
  } catch (const dermcds::Error& e) {
    std::fprintf(stderr, "dermcds: error (%s): %s\n", std::string(dermcds::to_string(e.code())).c_str(), e.what());
    return dermcds::cli::exit_status_for(e.code());
  } catch (...) {
    // The last edge: a file-system or system error a module let through still leaves with its
    // named code and exit status; only what is none of those is an internal error (70).
    const dermcds::Error e = dermcds::current_exception_as_error();
    if (e.code() == dermcds::ErrorCode::kInternal)
      std::fprintf(stderr, "dermcds: internal error: %s\n", e.what());
    else
      std::fprintf(stderr, "dermcds: error (%s): %s\n", std::string(dermcds::to_string(e.code())).c_str(), e.what());
    return dermcds::cli::exit_status_for(e.code());
  }
  return dermcds::cli::kExitOk;
}
