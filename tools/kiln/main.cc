// kiln: the command-line tool (docs/design.md §8): run, repro, minify, cache, pool.
#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include <charconv>
#include <iostream>
#include <limits>

#include "commands.h"
#include "kiln/error.h"
#include "kiln/version.h"

namespace {
constexpr int kExitError = 2;
}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"kiln: a tensor-graph JIT compiler"};
  app.set_version_flag("--version", fmt::format("kiln {}", kiln::version()));
  app.require_subcommand(0, 1);

  kiln::cli::RunArgs run;
  std::vector<std::string> dims;
  CLI::App* run_cmd = app.add_subcommand("run", "run a text graph on given or random inputs");
  run_cmd->add_option("graph", run.graph_path, "the graph file (.kiln)")->required();
  run_cmd->add_option("--mode", run.mode,
                      "compile mode: inprocess, subprocess, async, progressive, "
                      "async+progressive (default: KILN_COMPILE_MODE, else inprocess)");
  run_cmd->add_option("--device", run.device, "cpu or cuda (default: cpu)")
      ->check(CLI::IsMember({"cpu", "cuda"}));
  run_cmd->add_option("--dim", dims, "size of a dynamic dim, as s0=N (repeatable)");
  run_cmd->add_option("--seed", run.seed, "seed of the random inputs");
  run_cmd->add_option("--constants", run.constants_path,
                      "safetensors file with the graph's constants (default: GRAPH with "
                      ".safetensors in place of .kiln, when it exists)");
  run_cmd->add_option("--profile", run.profile_path,
                      "write a Chrome trace of the run (compile and kernels) here");
  run_cmd->add_option("--trace", run.trace_dir,
                      "write the structured trace and repro files here (as KILN_TRACE)");
  run_cmd->add_option("--inputs", run.inputs_path,
                      "safetensors file with the graph's inputs, by input name (default: random "
                      "inputs from --seed)");
  run_cmd->add_option("--outputs", run.outputs_path,
                      "write the outputs here as safetensors (output0, output1, ...)");
  run_cmd->add_option("--repeat", run.repeat, "time this many further calls; print per call")
      ->check(CLI::Range(0, 1000000));
  std::string repro_path, minify_path, minify_out;
  CLI::App* repro_cmd =
      app.add_subcommand("repro", "replay a repro file: compile, run, compare with eager");
  repro_cmd->add_option("file", repro_path, "a graph_runnable_*.json file")->required();
  CLI::App* minify_cmd =
      app.add_subcommand("minify", "shrink a failing repro to the smallest graph that still fails");
  minify_cmd->add_option("file", minify_path, "a graph_runnable_*.json file")->required();
  minify_cmd->add_option("--out", minify_out,
                         "where to write the minimal repro (default: beside FILE)");
  std::string cache_action;
  CLI::App* cache_cmd = app.add_subcommand("cache", "the persistent cache (KILN_CACHE_DIR)");
  cache_cmd
      ->add_option(
          "action", cache_action,
          "stats, clear, or autotune-table (the tuned configs as a KILN_AUTOTUNE_LOOKUP_TABLE)")
      ->required()
      ->check(CLI::IsMember({"stats", "clear", "autotune-table"}));

  std::string pool_action, pool_start;
  int pool_threads = 0;
  double pool_timeout = 60;
  CLI::App* pool_cmd = app.add_subcommand("pool", "the compile worker pool");
  pool_cmd->add_option("action", pool_action, "status")
      ->required()
      ->check(CLI::IsMember({"status"}));
  pool_cmd->add_option("--start", pool_start, "worker start method: subprocess, fork, spawn");
  pool_cmd->add_option("--threads", pool_threads,
                       "workers (default: KILN_COMPILE_THREADS, else the CPUs)");
  pool_cmd->add_option("--timeout", pool_timeout, "seconds to wait for the workers");
  // Exit codes (docs/design.md §8): 0 success, 1 a repro mismatch, 2 any error.
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : kExitError;  // --help and --version are successes
  }
  if (app.get_subcommands().empty()) {  // plain `kiln`: what it can do, not a parse error
    std::cout << app.help();
    return kExitError;
  }

  try {
    for (const std::string& d : dims) {
      auto eq = d.find('=');
      if (eq == std::string::npos || eq == 0)
        throw kiln::Error(fmt::format("--dim {}: expected SYMBOL=SIZE, e.g. s0=128", d));
      const std::string digits = d.substr(eq + 1);
      int64_t size = -1;
      auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), size);
      if (ec != std::errc() || end != digits.data() + digits.size() || size < 0)
        throw kiln::Error(
            fmt::format("--dim {}: '{}' is not a size (expected SYMBOL=SIZE with SIZE an integer "
                        "from 0 to {}, e.g. s0=128)",
                        d, digits, std::numeric_limits<int64_t>::max()));
      run.dims[d.substr(0, eq)] = size;
    }
    if (run_cmd->parsed()) return kiln::cli::run_command(run);
    if (cache_cmd->parsed()) return kiln::cli::cache_command(cache_action);
    if (repro_cmd->parsed()) return kiln::cli::repro_command(repro_path);
    if (minify_cmd->parsed()) return kiln::cli::minify_command(minify_path, minify_out);
    if (pool_cmd->parsed())
      return kiln::cli::pool_status_command(pool_start, pool_threads, pool_timeout);
  } catch (const kiln::Error& e) {
    std::cerr << "kiln: error: " << e.what() << "\n";
    return kExitError;
  } catch (const std::exception& e) {
    std::cerr << "kiln: error: " << e.what() << "\n";
    return kExitError;
  }
  return 0;
}
