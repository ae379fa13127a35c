// Subcommands of the kiln CLI (DESIGN §8).
#pragma once

#include <map>
#include <string>

namespace kiln::cli {

struct RunArgs {
  std::string graph_path;
  std::string mode;
  std::string constants_path;
  std::map<std::string, int64_t> dims;
  uint64_t seed = 0;
};

// Runs a text graph on seeded random inputs; prints each output's type and checksums.
int run_command(const RunArgs& args);

}  // namespace kiln::cli
