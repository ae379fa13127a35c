// Subcommands of the kiln CLI (docs/design.md §8).
#pragma once

#include <map>
#include <string>

namespace kiln::cli {

struct RunArgs {
  std::string graph_path;
  std::string profile_path;  // --profile: a Chrome trace of the run
  std::string trace_dir;     // --trace: KILN_TRACE for this run
  std::string mode;
  std::string device = "cpu";  // --device: where the inputs and constants live, so where it runs
  std::string constants_path;
  std::map<std::string, int64_t> dims;
  uint64_t seed = 0;
  std::string inputs_path;   // --inputs: the graph's inputs by name (else random ones)
  std::string outputs_path;  // --outputs: the outputs written as output0, output1, ...
  int repeat = 0;            // --repeat: time this many further calls
};

// Runs a text graph on its inputs from a safetensors file, or seeded random ones; prints each
// output's type and checksums, and the time per call when asked to repeat.
int run_command(const RunArgs& args);

// kiln repro FILE: replays a repro file; exit 0 when compiled matches eager, 1 on a
// mismatch, 2 on an error.
int repro_command(const std::string& path);
// kiln minify FILE [--out PATH]: the smallest graph that fails as FILE does.
int minify_command(const std::string& path, const std::string& out_path);

// kiln cache stats|clear|autotune-table: the cache root's entries and bytes, remove every
// entry, or print the tuned configs as a lookup table (JSON).
int cache_command(const std::string& action);
// kiln pool status: starts a pool (start method, workers), waits until it is ready, prints
// each worker, and stops it.
int pool_status_command(const std::string& start, int threads, double timeout_seconds);

}  // namespace kiln::cli
