// dermcds models build | promote | rollback | history: the automated model lifecycle
// (docs/lifecycle.md). Hooked into `dermcds models` by models_command.cpp.
#include <cstdio>
#include <iostream>
#include <memory>

#include "command.hpp"
#include "dermcds/error.hpp"
#include "dermcds/pipeline/lifecycle.hpp"
#include "dermcds/pipeline/model_build.hpp"
#include "dermcds/pipeline/parity_policy.hpp"
#include "exit_status.hpp"

namespace dermcds::cli {

namespace {

void print_progress(const std::string& line) { std::fprintf(stderr, "dermcds: %s\n", line.c_str()); }

struct BuildFlags {
  pipeline::BuildRequest request;
  std::string policy;
  bool json = false;
};

std::string_view result_name(pipeline::BuildResult result) {
  switch (result) {
    case pipeline::BuildResult::kUpToDate:
      return "up-to-date";
    case pipeline::BuildResult::kAccepted:
      return "accepted";
    case pipeline::BuildResult::kRejected:
      return "rejected";
  }
  return "?";
}

void build(BuildFlags& flags) {
  pipeline::BuildRequest request = flags.request;
  request.progress = print_progress;
  if (!flags.policy.empty()) request.policy = pipeline::read_policy_file(flags.policy);
  const pipeline::BuildOutcome outcome = pipeline::build_model(request);
  if (flags.json) {
    nlohmann::ordered_json j{{"result", result_name(outcome.result)},
                             {"version", outcome.version},
                             {"package", outcome.package_dir.string()},
                             {"fingerprint", outcome.fingerprint},
                             {"promoted", outcome.promoted}};
    if (!outcome.reason.empty()) j["reason"] = outcome.reason;
    if (!outcome.rejected_artifacts.empty()) j["rejected_artifacts"] = outcome.rejected_artifacts;
    std::cout << j.dump(2) << std::endl;
  } else {
    std::printf("%s %s\n", std::string(result_name(outcome.result)).c_str(), outcome.package_dir.c_str());
  }
  switch (outcome.result) {
    case pipeline::BuildResult::kUpToDate:
      print_progress("nothing to build: " + outcome.reason);
      // Rebuilding from the same inputs would be rejected again; the failure stays visible.
      if (outcome.matched_status == "rejected")
        throw CheckFailed("version " + outcome.version +
                          ", built from these inputs, is a rejected candidate; change an input (or use --force)");
      break;
    case pipeline::BuildResult::kAccepted:
      for (const std::string& line : outcome.rejected_artifacts)
        print_progress("WARNING: artifact rejected and left out of version " + outcome.version + ": " + line);
      print_progress("version " + outcome.version + " passed its parity gate" +
                     (outcome.promoted ? " and is now active" : "; `dermcds models promote` makes it active"));
      break;
    case pipeline::BuildResult::kRejected:
      throw CheckFailed("version " + outcome.version + " is kept as a rejected candidate and will never be active: " + outcome.reason);
  }
}

void history(const std::string& repository, const std::string& model, bool json) {
  const pipeline::ModelLifecycle lifecycle(repository, model);
  const std::vector<pipeline::VersionState> versions = lifecycle.versions();
  if (versions.empty()) throw Error(ErrorCode::kNotFound, "the repository " + repository + " has no model " + model);
  const std::vector<pipeline::LifecycleEvent> events = lifecycle.events();
  if (json) {
    nlohmann::ordered_json out{{"model", model}};
    nlohmann::ordered_json vs = nlohmann::ordered_json::array();
    for (const auto& v : versions) {
      nlohmann::ordered_json entry{{"version", v.version}, {"status", v.status}};
      entry["parity_passed"] = v.parity_passed ? nlohmann::ordered_json(*v.parity_passed) : nlohmann::ordered_json(nullptr);
      if (!v.reason.empty()) entry["reason"] = v.reason;
      if (!v.fingerprint.empty()) entry["fingerprint"] = v.fingerprint;
      if (!v.created.empty()) entry["built"] = v.created;
      vs.push_back(std::move(entry));
    }
    out["versions"] = vs;
    nlohmann::ordered_json es = nlohmann::ordered_json::array();
    for (const auto& e : events)
      es.push_back({{"at", e.at}, {"action", e.action}, {"version", e.version}, {"from", e.from}, {"detail", e.detail}});
    out["events"] = es;
    std::cout << out.dump(2) << std::endl;
    return;
  }
  std::printf("%s\n", model.c_str());
  for (const auto& v : versions) {
    const char* parity = !v.parity_passed ? "no parity evidence" : *v.parity_passed ? "parity passed" : "parity FAILED";
    std::printf("  v%-4s %-10s %-18s %s%s%s\n", v.version.c_str(), v.status.c_str(), parity,
                v.fingerprint.empty() ? "" : ("inputs " + v.fingerprint.substr(0, 12)).c_str(), v.reason.empty() ? "" : "  ",
                v.reason.c_str());
  }
  if (!events.empty()) std::printf("events:\n");
  for (const auto& e : events)
    std::printf("  %s %-8s v%s%s%s%s\n", e.at.c_str(), e.action.c_str(), e.version.c_str(),
                e.from.empty() ? "" : (" (from v" + e.from + ")").c_str(), e.detail.empty() ? "" : ": ", e.detail.c_str());
}

}  // namespace

void register_models_lifecycle_commands(CLI::App* models) {
  auto flags = std::make_shared<BuildFlags>();
  flags->request.repository = "models";
  CLI::App* build_command = models->add_subcommand(
      "build",
      "Build a new package version (export, TFLite conversion, parity gate) when its inputs changed; otherwise do nothing and "
      "say so. A version that fails its parity gate is kept as a rejected candidate (exit status 1)");
  build_command->add_option("--arch", flags->request.architecture, "Architecture: efficientnet_b4, mobilenet_v3_large, ...")->required();
  build_command->add_option("--checkpoint", flags->request.checkpoint,
                            "PyTorch state_dict file; without it the demo model is trained (or taken from the cache)");
  build_command->add_option("-r,--repository", flags->request.repository, "Model repository")->capture_default_str();
  build_command->add_option("--name", flags->request.name, "Package name (default: derived from --arch)");
  build_command->add_option("--tflite", flags->request.tflite_precisions, "TFLite artifacts to convert: fp32,fp16,int8 (default: none)")
      ->delimiter(',')
      ->check(CLI::IsMember({"fp32", "fp16", "int8"}));
  build_command->add_flag("--onnx-int8", flags->request.onnx_int8,
                          "Also quantize the ONNX model to an ONNX Runtime int8 (QDQ) artifact, judged by the parity gate like the others "
                          "(needs --calibration)");
  build_command->add_option("--calibration", flags->request.calibration_dir, "int8 and TFLite fp16: directory of calibration images");
  build_command->add_option("--calibration-limit", flags->request.calibration_limit, "int8: use at most this many images (0: all)")
      ->capture_default_str();
  build_command->add_option("--images", flags->request.validation_dir, "Validation images for the parity gate")->required();
  build_command->add_option("--policy", flags->policy, "JSON parity policy to write into the package (docs/parity.md)");
  build_command->add_flag("--promote", flags->request.promote, "Make the new version active if it passes its parity gate");
  build_command->add_flag("--force", flags->request.force, "Build a new version even if one was built from the same inputs");
  build_command->add_option("--check-samples", flags->request.check_samples, "Sample inputs for the export's ONNX Runtime vs PyTorch check")
      ->check(CLI::Range(1, 64))
      ->capture_default_str();
  build_command->add_option("--threads", flags->request.threads, "Inference threads per runtime during parity (0: default)")
      ->check(CLI::Range(0, 256))
      ->capture_default_str();
  build_command->add_flag("--json", flags->json, "Print the outcome as JSON");
  build_command->callback([flags] { build(*flags); });

  struct Target {
    std::string repository = "models";
    std::string model;
    std::string version;
    bool json = false;
  };
  auto promote = std::make_shared<Target>();
  CLI::App* promote_command =
      models->add_subcommand("promote", "Make a version active (it must carry passing parity evidence; rejected candidates never are)");
  promote_command->add_option("model", promote->model, "Model name")->required();
  promote_command->add_option("version", promote->version, "Version to make active")->required();
  promote_command->add_option("-r,--repository", promote->repository, "Model repository")->capture_default_str();
  promote_command->callback([promote] {
    pipeline::ModelLifecycle lifecycle(promote->repository, promote->model);
    const std::string previous = lifecycle.promote(promote->version, "dermcds models promote");
    if (previous == promote->version) {
      std::printf("%s version %s is already active\n", promote->model.c_str(), promote->version.c_str());
    } else {
      std::printf("%s version %s is active (was %s)\n", promote->model.c_str(), promote->version.c_str(),
                  previous.empty() ? "none" : ("version " + previous).c_str());
    }
  });

  auto rollback = std::make_shared<Target>();
  CLI::App* rollback_command = models->add_subcommand("rollback", "Make the version that was active before the current one active again");
  rollback_command->add_option("model", rollback->model, "Model name")->required();
  rollback_command->add_option("-r,--repository", rollback->repository, "Model repository")->capture_default_str();
  rollback_command->callback([rollback] {
    pipeline::ModelLifecycle lifecycle(rollback->repository, rollback->model);
    const std::string before = lifecycle.active_version().value_or("none");
    const std::string now = lifecycle.rollback("dermcds models rollback");
    std::printf("%s version %s is active (rolled back from version %s)\n", rollback->model.c_str(), now.c_str(), before.c_str());
  });

  auto show = std::make_shared<Target>();
  CLI::App* history_command = models->add_subcommand(
      "history", "A model's versions with their lifecycle status (active, candidate, retired, rejected, unverified) and events");
  history_command->add_option("model", show->model, "Model name")->required();
  history_command->add_option("-r,--repository", show->repository, "Model repository")->capture_default_str();
  history_command->add_flag("--json", show->json, "Print JSON");
  history_command->callback([show] { history(show->repository, show->model, show->json); });
}

}  // namespace dermcds::cli
