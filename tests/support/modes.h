// The compile configurations the conformance suites run under: every compile mode, and
// Subprocess under each worker start method. A ModeRun gives the configuration a cache
// of its own (so that worker modes really compile in workers) and checks, when it ends,
// that a worker mode compiled nothing in this process.
#pragma once

#include <gtest/gtest.h>

#include <map>
#include <ostream>
#include <string>
#include <vector>

#include "kiln/kiln.h"

namespace kiln::testing {

struct ModeConfig {
  CompileMode mode;
  WorkerStart start;
  std::string name;  // a gtest-friendly name: inprocess, subprocess_fork, ...
  bool in_workers() const { return mode == CompileMode::Subprocess; }
  CompileOptions options(const std::string& graph_name) const;
};

// InProcess, Subprocess × {subprocess, fork, spawn}, Async, Progressive, AsyncProgressive.
std::vector<ModeConfig> all_mode_configs();
std::string mode_config_name(const ::testing::TestParamInfo<ModeConfig>& info);
inline void PrintTo(const ModeConfig& config, std::ostream* os) { *os << config.name; }

class ModeRun {
 public:
  explicit ModeRun(const ModeConfig& config);  // a fresh KILN_CACHE_DIR for this run
  ~ModeRun();                                  // asserts the worker-mode contract
 private:
  ModeConfig config_;
  std::map<std::string, int64_t> before_;
  std::string cache_dir_;
};

// Every `stride`-th index of `n` (all of them for stride 1): the CI subset of a long suite.
std::vector<size_t> sampled(size_t n, size_t stride);

}  // namespace kiln::testing
