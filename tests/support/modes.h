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

#include "cuda/driver.h"
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

// The device a suite's compiled functions run on: cpu, or cuda in the suites' cuda builds
// (compiled with KILN_TEST_CUDA, ctest label cuda), whose tests skip on a machine without
// a usable GPU. Inline: the macro differs per test binary.
inline Device test_device() {
#ifdef KILN_TEST_CUDA
  return Device::cuda;
#else
  return Device::cpu;
#endif
}
inline bool test_device_usable() { return test_device() == Device::cpu || cuda::available(); }
inline std::vector<Tensor> on_test_device(const std::vector<Tensor>& tensors) {
  std::vector<Tensor> out;
  for (const Tensor& t : tensors) out.push_back(t.to(test_device()));
  return out;
}
inline TensorMap on_test_device(const TensorMap& tensors) {
  TensorMap out;
  for (const auto& [name, t] : tensors) out[name] = t.to(test_device());
  return out;
}
#define KILN_SKIP_WITHOUT_TEST_DEVICE()       \
  if (!::kiln::testing::test_device_usable()) \
  GTEST_SKIP() << "no usable GPU: " << ::kiln::cuda::unavailable_reason()

class ModeRun {
 public:
  explicit ModeRun(const ModeConfig& config);  // a fresh KILN_CACHE_DIR for this run
  ~ModeRun();                                  // asserts the worker-mode contract
 private:
  ModeConfig config_;
  std::map<std::string, int64_t> before_;
  std::string cache_dir_;
  std::string previous_cache_dir_;
};

// Every `stride`-th index of `n` (all of them for stride 1): the CI subset of a long suite.
std::vector<size_t> sampled(size_t n, size_t stride);

}  // namespace kiln::testing
