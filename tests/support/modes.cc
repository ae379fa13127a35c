#include "support/modes.h"

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>

namespace kiln::testing {

CompileOptions ModeConfig::options(const std::string& graph_name) const {
  CompileOptions o;
  o.mode = mode;
  o.worker_start = start;
  o.compile_threads = 2;
  o.name = graph_name;
  return o;
}

std::vector<ModeConfig> all_mode_configs() {
  return {{CompileMode::InProcess, WorkerStart::Subprocess, "inprocess"},
          {CompileMode::Subprocess, WorkerStart::Subprocess, "subprocess_subprocess"},
          {CompileMode::Subprocess, WorkerStart::Fork, "subprocess_fork"},
          {CompileMode::Subprocess, WorkerStart::Spawn, "subprocess_spawn"},
          {CompileMode::Async, WorkerStart::Subprocess, "async"},
          {CompileMode::Progressive, WorkerStart::Subprocess, "progressive"},
          {CompileMode::AsyncProgressive, WorkerStart::Subprocess, "async_progressive"}};
}

std::string mode_config_name(const ::testing::TestParamInfo<ModeConfig>& info) {
  return info.param.name;
}

ModeRun::ModeRun(const ModeConfig& config) : config_(config), before_(stats()) {
  static std::atomic<int> counter{0};
  // Beside the suite's shared cache (under the build tree), else in the temp directory.
  const char* shared = std::getenv("KILN_CACHE_DIR");
  if (shared) previous_cache_dir_ = shared;
  std::string base =
      shared ? std::filesystem::path(shared).parent_path().string() : ::testing::TempDir();
  cache_dir_ = fmt::format("{}/mode-cache/{}-{}-{}", base, config.name, getpid(), counter++);
  std::filesystem::remove_all(cache_dir_);
  setenv("KILN_CACHE_DIR", cache_dir_.c_str(), 1);
}

ModeRun::~ModeRun() {
  auto after = stats();
  if (config_.in_workers()) {
    EXPECT_EQ(after["compile.in_process"], before_["compile.in_process"])
        << config_.name << ": a worker mode compiled in the host process";
    EXPECT_GT(after["compile.subprocess"], before_["compile.subprocess"])
        << config_.name << ": no worker compiled";
  }
  std::error_code ec;
  std::filesystem::remove_all(cache_dir_, ec);
  // The next run's cache goes beside the suite's again, not inside this removed one.
  if (previous_cache_dir_.empty())
    unsetenv("KILN_CACHE_DIR");
  else
    setenv("KILN_CACHE_DIR", previous_cache_dir_.c_str(), 1);
}

std::vector<size_t> sampled(size_t n, size_t stride) {
  std::vector<size_t> out;
  for (size_t i = 0; i < n; i += std::max<size_t>(stride, 1)) out.push_back(i);
  return out;
}

}  // namespace kiln::testing
