// The flags every command that opens a classifier shares (--model, --runtime, --provider, ...).
#pragma once

#include <map>
#include <memory>
#include <string>

#include <CLI/CLI.hpp>

#include "dermcds/classifier.hpp"

namespace dermcds::cli {

struct ClassifierFlags {
  std::string model;  // package or model directory; DERMCDS_MODEL when not given
  ClassifierOptions options;
  std::vector<std::string> provider_options;  // "key=value"
};

void add_classifier_flags(CLI::App& command, ClassifierFlags& flags);

// --provider-option values ("KEY=VALUE", repeatable) as ExecutionOptions::provider_options.
std::map<std::string, std::string> parse_provider_options(const std::vector<std::string>& key_values);

// Resolves --model (a model directory means its active version) and opens the classifier.
std::unique_ptr<Classifier> open_classifier(ClassifierFlags& flags);

}  // namespace dermcds::cli
