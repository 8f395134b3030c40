// dermcds models ... : inspect, verify and export model packages.
#include <cstdio>
#include <iostream>

#include "command.hpp"
#include "dermcds/classifier.hpp"
#include "dermcds/error.hpp"
#include "dermcds/model_package.hpp"
#include "dermcds/model_repository.hpp"
#include "dermcds/pipeline/export.hpp"

namespace dermcds::cli {

namespace {

void verify(const std::string& path) {
  const std::vector<PackageCheck> checks = verify_package(resolve_package_dir(path));
  int failures = 0;
  for (const PackageCheck& check : checks) {
    std::printf("%-4s %s: %s\n", check.ok ? "ok" : "FAIL", check.subject.c_str(), check.detail.c_str());
    failures += check.ok ? 0 : 1;
  }
  if (failures > 0)
    throw Error(ErrorCode::kInvalidPackage, std::to_string(failures) + " problem" + (failures == 1 ? "" : "s") + " in " + path);
  std::printf("package %s is intact\n", path.c_str());
}

void list(const std::string& root, bool json) {
  const ModelRepository repository(root);
  nlohmann::ordered_json out = nlohmann::ordered_json::array();
  for (const std::string& model : repository.model_names()) {
    std::optional<std::string> active;
    std::string active_error;
    try {
      active = repository.active_version(model);
    } catch (const Error& e) {
      active_error = e.what();  // an ACTIVE marker naming a version that may not serve: shown, not fatal
    }
    if (!active_error.empty()) std::fprintf(stderr, "dermcds: warning: %s\n", active_error.c_str());
    for (const std::string& version : repository.versions(model)) {
      nlohmann::ordered_json entry{{"name", model}, {"version", version}, {"active", active && *active == version}};
      // The serving rule's verdict (docs/lifecycle.md): whether a server would serve it, and why not.
      const ServingVerdict verdict = repository.serving_verdict(model, version);
      entry["servable"] = verdict.servable;
      if (!verdict.reason.empty()) entry["reason"] = verdict.reason;
      try {
        const Manifest manifest = read_manifest(repository.package_dir(model, version));
        nlohmann::ordered_json artifacts = nlohmann::ordered_json::array();
        for (const ArtifactEntry& a : manifest.artifacts) artifacts.push_back(a.runtime + "/" + a.precision);
        entry["architecture"] = manifest.architecture;
        entry["artifacts"] = artifacts;
        entry["usable_runtimes"] = usable_runtimes(manifest);
      } catch (const Error& e) {
        entry["error"] = e.what();
      }
      out.push_back(std::move(entry));
    }
  }
  if (json) {
    std::cout << out.dump(2) << std::endl;
    return;
  }
  for (const auto& e : out) {
    std::printf("%s %-24s v%-4s %s", e["active"].get<bool>() ? "*" : " ", e["name"].get<std::string>().c_str(),
                e["version"].get<std::string>().c_str(), e.value("architecture", "").c_str());
    if (e.contains("error"))
      std::printf("  ERROR: %s", e["error"].get<std::string>().c_str());
    else
      for (const auto& a : e["artifacts"]) std::printf("  %s", a.get<std::string>().c_str());
    if (!e["servable"].get<bool>()) std::printf("  NOT SERVABLE: %s", e.value("reason", "").c_str());
    std::printf("\n");
  }
}

void export_model(pipeline::ExportRequest request) {
  request.progress = [](const std::string& line) { std::fprintf(stderr, "dermcds: %s\n", line.c_str()); };
  const pipeline::ExportOutcome outcome = pipeline::export_package(request);
  std::printf("%s\n", outcome.package_dir.c_str());
  std::fprintf(stderr,
               "dermcds: ONNX Runtime %s vs PyTorch on %d samples: max |diff| logit %.3g, probability %.3g; output spread "
               "across samples %.3f\n",
               outcome.check.runtime_version.c_str(), outcome.check.samples, outcome.check.max_abs_diff_logit,
               outcome.check.max_abs_diff_probability, outcome.check.output_spread);
}

}  // namespace

void register_models_command(CLI::App& app) {
  CLI::App* models = app.add_subcommand("models", "Inspect, verify and export model packages");
  models->require_subcommand(1);

  auto package = std::make_shared<std::string>();
  CLI::App* verify_command = models->add_subcommand("verify", "Check a package's manifest and every artifact's sha256");
  verify_command->add_option("package", *package, "Package directory, or model directory (its active version)")->required();
  verify_command->callback([package] { verify(*package); });

  auto repository = std::make_shared<std::string>("models");
  auto json = std::make_shared<bool>(false);
  CLI::App* list_command = models->add_subcommand("list", "List the models and versions of a repository");
  list_command->add_option("-r,--repository", *repository, "Model repository directory")->capture_default_str();
  list_command->add_flag("--json", *json, "Print JSON");
  list_command->callback([repository, json] { list(*repository, *json); });

  auto request = std::make_shared<pipeline::ExportRequest>();
  request->repository = "models";
  CLI::App* export_command =
      models->add_subcommand("export", "Export a PyTorch checkpoint (or the demo checkpoint) to a verified ONNX model package");
  export_command->add_option("--arch", request->architecture, "Architecture: efficientnet_b4, mobilenet_v3_large, ...")->required();
  export_command->add_option("--checkpoint", request->checkpoint,
                             "PyTorch state_dict file; without it the demo model is trained (or taken from the cache)");
  export_command->add_option("-r,--repository", request->repository, "Model repository to add the package to")->capture_default_str();
  export_command->add_option("--name", request->name, "Package name (default: derived from --arch)");
  export_command->add_option("--version", request->version, "Version number (default: the next free one)");
  export_command->add_option("--check-samples", request->check_samples, "Sample inputs for the ONNX Runtime vs PyTorch check")
      ->check(CLI::Range(1, 64))
      ->capture_default_str();
  export_command->callback([request] { export_model(*request); });
  register_models_lifecycle_commands(models);
}

}  // namespace dermcds::cli
