// kiln repro FILE, kiln minify FILE.
#include <fcntl.h>
#include <fmt/format.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>

#include "commands.h"
#include "driver/replay_repro.h"
#include "kiln/error.h"
#include "observe/minifier.h"
#include "observe/repro.h"
#include "support/files.h"

extern char** environ;

namespace kiln::cli {

namespace {

// Runs `kiln repro FILE` in a child process of this very binary, its output discarded:
// a candidate that crashes or hangs takes only that process down.
ReproFailure run_in_child(const std::string& file) {
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0);
  std::string self = std::filesystem::read_symlink("/proc/self/exe").string();
  std::vector<std::string> args = {self, "repro", file};
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = 0;
  int rc = posix_spawn(&pid, self.c_str(), &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) throw Error(fmt::format("minify: cannot start {}: {}", self, std::strerror(rc)));
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFSIGNALED(status)) return ReproFailure::crash;
  switch (WEXITSTATUS(status)) {
    case 0:
      return ReproFailure::none;
    case 1:
      return ReproFailure::mismatch;
    default:
      return ReproFailure::error;
  }
}

}  // namespace

int repro_command(const std::string& path) {
  ReproOutcome outcome = run_repro(read_repro(path));
  fmt::print("{}\n", outcome.report);
  return outcome.exit_code;
}

int minify_command(const std::string& path, const std::string& out_path) {
  Repro failing = read_repro(path);
  // mkdtemp: a new directory only this user can enter (a predictable name was one an
  // attacker could make first and fill with symlinks).
  const std::string scratch = make_private_temp_directory("kiln-minify");
  MinifyResult result;
  try {
    result = minify(
        failing,
        [&](const Repro& candidate) { return run_in_child(write_repro(scratch, candidate)); },
        [](const std::string& line) { fmt::print("minify: {}\n", line); });
  } catch (...) {
    std::filesystem::remove_all(scratch);
    throw;
  }
  std::filesystem::remove_all(scratch);
  std::string dir =
      std::filesystem::path(out_path.empty() ? path : out_path).parent_path().string();
  std::string written = write_repro(dir.empty() ? "." : dir, result.minimal);
  if (!out_path.empty()) {
    std::filesystem::rename(written, out_path);
    written = out_path;  // its safetensors companions keep the names the JSON gives them
  }
  std::string ops;
  for (const Node& n : result.minimal.graph.nodes)
    ops += fmt::format("{}{}", ops.empty() ? "" : ", ", op_name(n.op));
  fmt::print("minify: {} nodes -> {} ({}), still {}, {} candidates run; wrote {}\n",
             failing.graph.nodes.size(), result.minimal.graph.nodes.size(), ops,
             repro_failure_name(result.failure), result.tried, written);
  return 0;
}

}  // namespace kiln::cli
