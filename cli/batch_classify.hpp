// `dermcds classify DIR|FILES... --output FILE.csv|FILE.jsonl`: batch runs (docs/cli.md).
#pragma once

#include <string>
#include <vector>

#include "dermcds/classifier.hpp"

namespace dermcds::cli {

struct BatchOptions {
  std::vector<std::string> inputs;  // files and directories (walked recursively)
  std::string output;               // .csv (ISIC predictions) or .jsonl
  bool resume = false;              // skip images already in the output, append the rest
  bool force = false;               // overwrite an existing output
  int batch = 8;                    // images per inference
};

// Throws kInvalidArgument for bad options, an existing output without --resume/--force, or
// inputs with no image. One unreadable image is an error row, not a failure of the run.
void run_batch(const Classifier& classifier, const BatchOptions& options);

}  // namespace dermcds::cli
